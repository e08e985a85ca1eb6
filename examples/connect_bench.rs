//! What do the connection layers cost per connection? A load generator that compares three
//! POP3 stacks served on loopback:
//!
//! 1. `bare`: `Pop3Service` alone;
//! 2. `hooks`: the same behind an `OnConnectLayer` and an `OnCloseLayer` whose hooks do
//!    nothing, so what is measured is the layers' own machinery (the on-connect future and
//!    its deadline, the close guard);
//! 3. `full`: the whole default stack as the example server composes it: logging, metrics,
//!    an on-close hook, the shutdown check (a function policy, `PolicyLayer::from_fn`), the IP
//!    block (empty lists), the time window (always open), the rate limit (a concurrency cap per
//!    address, high enough for every client here, which all come from 127.0.0.1), load
//!    shedding and the server-wide concurrency limit.
//!
//! No tracing subscriber is installed, so the logging layer's events are the cheap no-ops they
//! are in a server that filters them out; the metrics go nowhere either unless `--prometheus`
//! installs the Prometheus recorder the example server uses (without its HTTP listener).
//!
//! Client tasks connect, read the greeting, send `QUIT`, read `+OK`, and read to EOF: the
//! server closes first, so the TIME_WAIT state lands on the server's side and the client does
//! not run out of ephemeral ports. Rounds run every stack, in an order that rotates from round
//! to round, so that drift in the machine's load hits all alike. The goals (issue 4): hooks
//! cost under 2% of the connection rate, the full stack under 5%.
//!
//! ```text
//! cargo run --release --example connect_bench
//! cargo run --release --example connect_bench -- --connections 5000 --concurrency 32 --rounds 10
//! cargo run --release --example connect_bench -- --prometheus
//! ```
//!
//! For a figure the machine's noise cannot move, count instructions (user and kernel, client
//! and server alike) per connection with each stack alone, and compare:
//!
//! ```text
//! perf stat -e instructions ./target/release/examples/connect_bench --only bare --prometheus
//! perf stat -e instructions ./target/release/examples/connect_bench --only full --prometheus
//! ```
//!
//! Where `perf` cannot count (`perf stat -e instructions true` says "not supported", as in
//! many VMs), valgrind's callgrind counts the user-space instructions, the same for the same
//! binary and inputs whatever else the machine does. Run each stack at two sizes and divide the
//! difference by the connections between them, so that start-up cancels out (the warm-up is a
//! tenth of `--connections`: 1,100 and 5,500 connections here, 4,400 apart):
//!
//! ```text
//! valgrind --tool=callgrind --callgrind-out-file=bare.1000 \
//!     ./target/release/examples/connect_bench --only bare --prometheus --connections 1000 --rounds 1 --concurrency 8
//! valgrind --tool=callgrind --callgrind-out-file=bare.5000 \
//!     ./target/release/examples/connect_bench --only bare --prometheus --connections 5000 --rounds 1 --concurrency 8
//! # the same for --only full; then (total(x.5000) - total(x.1000)) / 4400 per stack
//! ```
//!
//! The first use of the Prometheus recorder calibrates `quanta`'s clock in a loop whose length
//! depends on wall time, so under valgrind it differs between runs by up to a few million
//! instructions: subtract the inclusive count of `quanta::Clock::new` from each run's total
//! (`callgrind_annotate --inclusive=yes`) before taking the difference.
//!
//! `bench/instructions.sh` counts the kernel's share too on such machines: it runs these
//! commands in a QEMU guest whose clock advances one nanosecond per executed instruction
//! (`-icount shift=0`), so a guest clock interval is the instruction count of everything the
//! guest ran, kernel and user, client and server. Measured so on 2026-12-05 (Debian's 6.1
//! cloud kernel, three rounds): 183,691-184,059 bare and 188,213-188,420 full per connection,
//! **1.023x** (rounds 1.0229-1.0257), within the 5% budget; of the 4,300 more, user space is
//! about 4,000 (below).
//!
//! Measured so after the example server's shutdown check became a function policy
//! (2026-12-05, two runs): 30,272-30,330 bare and 34,320-34,427 full, 3,989-4,155 more
//! (1.13-1.14x); the async on-connect hook it replaced boxed its check and cloned the rest of
//! the stack, about 700 of them.
//!
//! Before that (2026-12-05, two cores, two runs each): 29,250-29,420 user-space instructions
//! per connection bare and 34,080-34,140 with the full stack, 4,660-4,895 more (1.16x; client
//! and server both counted; the kernel's TCP work, most of a connection's cost, is not). Before
//! that day's work the full stack cost 6,805 more (1.23x): the metrics layer's handle lookups
//! (about 800 saved), the close report cloned for each hook, a 192-byte `Connection` moved
//! through every layer (now 72: settings and extensions are made on first use, the first
//! observer is kept inline), and a 2.8 KiB connection task that missed the allocator's fast
//! size classes (now 880 bytes, as with no stack: the stack is boxed and the task's `Drive`
//! future no longer keeps the stack's future twice). By CPU time, kernel included, the same
//! binary measured full/bare 1.058 (median of 8 rounds 1.053, rounds 1.034-1.113) on a machine
//! busy with builds, and on the same machine quiet (12 rounds of 20,000 connections, 32 at
//! once) 1.040 (median of rounds 1.041, rounds 0.974-1.108), with the rate at 0.961 of bare's.
//!
//! The defaults (10 rounds of 5,000 connections per stack, 32 clients at once: 150,000
//! connections) take under a minute on two busy cores. Client and server share the process and
//! its cores, and the kernel's TCP work dominates, so the absolute rates are a floor and depend
//! on the machine; the ratios are the figures to read. Beside the connection rate it reports the
//! process's CPU time per connection (Linux), a second view that leaves out time spent waiting
//! for a core; each ratio comes with its round-to-round spread, which shows how far to trust
//! it (a busy machine easily varies 5-10% between rounds).

#[path = "server/prometheus.rs"]
mod prometheus;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower_mail::auth::PasswdFile;
use tower_mail::pop3::{Pop3Config, Pop3Service};
use tower_mail::server::{Endpoint, Server, ServerConfig, TlsMode};
use tower_mail::store::MemoryStore;
use tower_mail::{CloseReport, Connection, Protocol, Reject, Session};
use tower_mail_layers::ip_block::{IpBlock, IpBlockLayer, IpLists};
use tower_mail_layers::logging::LoggingLayer;
use tower_mail_layers::metrics::MetricsLayer;
use tower_mail_layers::on_close::OnCloseLayer;
use tower_mail_layers::on_connect::OnConnectLayer;
use tower_mail_layers::policy::PolicyLayer;
use tower_mail_layers::rate_limit::{RateLimit, RateLimitConfig};
use tower_mail_layers::time_window::Schedule;
use tower_service::Service;

/// Command-line settings.
#[derive(Debug, Clone)]
struct Args {
    /// Connections per stack per round.
    connections: usize,
    /// Client tasks running at once.
    concurrency: usize,
    /// Measured rounds; each runs every stack.
    rounds: usize,
    /// Install a Prometheus recorder, as the example server does.
    prometheus: bool,
    /// Run this stack alone (for `perf stat`), instead of comparing all three.
    only: Option<String>,
}

const USAGE: &str = "usage: connect_bench [--connections N] [--concurrency N] [--rounds N] [--prometheus] \
     [--only bare|hooks|full]";

fn parse_args() -> Result<Args, String> {
    let mut parsed = Args {
        connections: 5_000,
        concurrency: 32,
        rounds: 10,
        prometheus: false,
        only: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let target = match flag.as_str() {
            "--prometheus" => {
                parsed.prometheus = true;
                continue;
            }
            "--only" => {
                parsed.only = Some(args.next().ok_or("--only needs a stack name")?);
                continue;
            }
            "--connections" => &mut parsed.connections,
            "--concurrency" => &mut parsed.concurrency,
            "--rounds" => &mut parsed.rounds,
            "--help" | "-h" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        };
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a number"))?;
        *target = value
            .parse()
            .ok()
            .filter(|&n: &usize| n > 0)
            .ok_or_else(|| format!("{flag}: {value:?} is not a positive number"))?;
    }
    Ok(parsed)
}

fn pop3() -> Pop3Service<PasswdFile, MemoryStore> {
    Pop3Service::new(
        PasswdFile::parse("a:{PLAIN}b"),
        MemoryStore::new(),
        Pop3Config::default(),
    )
}

/// Serve `stack` on an ephemeral loopback port.
async fn listen<S>(server: &Server, stack: S) -> SocketAddr
where
    S: Service<Connection, Response = CloseReport> + Clone + Send + 'static,
    S::Error: Into<tower_mail::BoxError>,
    S::Future: Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    server.serve(
        listener,
        Endpoint::new(Protocol::Pop3, TlsMode::None),
        stack,
    );
    addr
}

/// Read until the buffer holds a whole line and check it is a `+OK` reply.
async fn expect_ok(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    buf.clear();
    let mut chunk = [0u8; 256];
    while !buf.ends_with(b"\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    if buf.starts_with(b"+OK") {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "unexpected reply {:?}",
            String::from_utf8_lossy(buf)
        )))
    }
}

/// One connection: greeting, QUIT, `+OK`, then EOF from the server.
async fn one_connection(addr: SocketAddr, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    expect_ok(&mut stream, buf).await?;
    stream.write_all(b"QUIT\r\n").await?;
    expect_ok(&mut stream, buf).await?;
    // Wait for the server's FIN, so that it closes first.
    let mut rest = [0u8; 64];
    while stream.read(&mut rest).await? != 0 {}
    Ok(())
}

/// CPU time this process has used so far: the sum over its threads of the scheduler's
/// on-CPU time (Linux `/proc/self/task/*/schedstat`, nanoseconds). Unlike wall time it leaves
/// out waiting for a core taken by another process. `None` where unavailable.
fn process_cpu_time() -> Option<Duration> {
    let mut total = 0u64;
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let Ok(entry) = entry else { continue };
        // A thread that exited since the listing has nothing more to add.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("schedstat")) else {
            continue;
        };
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

/// What one round measured.
#[derive(Debug, Clone, Copy)]
struct Round {
    /// Connections per second of wall time.
    rate: f64,
    /// CPU time (client and server together) per connection, in microseconds.
    cpu_us: Option<f64>,
}

/// Run `connections` connections against `addr` from `concurrency` tasks. Any failed
/// connection aborts the benchmark: a rate over failures means nothing.
async fn run_round(addr: SocketAddr, connections: usize, concurrency: usize) -> Round {
    let remaining = Arc::new(AtomicUsize::new(connections));
    let cpu_before = process_cpu_time();
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let remaining = remaining.clone();
            tokio::spawn(async move {
                let mut buf = Vec::with_capacity(256);
                // Claim one connection at a time so the tasks share the count evenly.
                while remaining
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
                {
                    let attempt = tokio::time::timeout(
                        Duration::from_secs(10),
                        one_connection(addr, &mut buf),
                    );
                    match attempt.await {
                        Ok(Ok(())) => {}
                        Ok(Err(err)) => return Err(err.to_string()),
                        Err(_) => return Err("a connection took over 10 s".to_owned()),
                    }
                }
                Ok(())
            })
        })
        .collect();
    for task in tasks {
        if let Err(err) = task.await.expect("client task panicked") {
            eprintln!("connect_bench: connection to {addr} failed: {err}");
            std::process::exit(1);
        }
    }
    let elapsed = started.elapsed();
    let cpu = cpu_before
        .zip(process_cpu_time())
        .map(|(a, b)| b.saturating_sub(a));
    Round {
        rate: connections as f64 / elapsed.as_secs_f64(),
        cpu_us: cpu.map(|cpu| cpu.as_secs_f64() * 1e6 / connections as f64),
    }
}

/// The rounds of one stack; every round runs the same number of connections.
#[derive(Default)]
struct Tally {
    rounds: Vec<Round>,
}

impl Tally {
    /// Connections per second over all rounds: total connections over total time, which for
    /// equal rounds is the harmonic mean of the rates.
    fn rate(&self) -> f64 {
        let seconds_per_connection: f64 = self.rounds.iter().map(|r| 1.0 / r.rate).sum();
        self.rounds.len() as f64 / seconds_per_connection
    }

    /// CPU microseconds per connection over all rounds.
    fn cpu_us(&self) -> Option<f64> {
        let total: Option<f64> = self.rounds.iter().map(|r| r.cpu_us).sum();
        total.map(|t| t / self.rounds.len() as f64)
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

fn spread(values: &[f64]) -> (f64, f64) {
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (low, high)
}

/// The example server's Prometheus recorder (without its HTTP listener), with its upkeep
/// (draining histogram samples) every 5 seconds as the server's exporter does, so that samples
/// do not pile up over a run.
fn install_prometheus() -> Result<(), String> {
    let handle = prometheus::builder()?
        .install_recorder()
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            handle.run_upkeep();
        }
    });
    Ok(())
}

/// One stack under test: its name, where it listens, and how much overhead it may add.
struct Stack {
    name: &'static str,
    addr: SocketAddr,
    goal_percent: f64,
    tally: Tally,
    /// This stack's rate and CPU per connection over the bare stack's, per round.
    rate_ratios: Vec<f64>,
    cpu_ratios: Vec<f64>,
}

impl Stack {
    fn new(name: &'static str, addr: SocketAddr, goal_percent: f64) -> Stack {
        Stack {
            name,
            addr,
            goal_percent,
            tally: Tally::default(),
            rate_ratios: Vec::new(),
            cpu_ratios: Vec::new(),
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    if args.prometheus
        && let Err(err) = install_prometheus()
    {
        eprintln!("connect_bench: Prometheus recorder: {err}");
        return ExitCode::FAILURE;
    }

    let server = Server::new(ServerConfig::default());
    let bare = listen(&server, pop3()).await;
    let hooked_stack = ServiceBuilder::new()
        .layer(OnCloseLayer::new(|_: &Session, _: &CloseReport| {}))
        .layer(OnConnectLayer::new(|_: Arc<Session>| async {
            Ok::<(), Reject>(())
        }))
        .service(pop3());
    let hooked = listen(&server, hooked_stack).await;
    // The example server's whole default stack (examples/server.rs), with every policy set so
    // that nobody here is refused.
    let full_stack = ServiceBuilder::new()
        .layer(LoggingLayer::new())
        .layer(MetricsLayer::new())
        .layer(OnCloseLayer::new(|_: &Session, _: &CloseReport| {}))
        // The example server's shutdown check: a function policy, decided on the spot.
        .layer(PolicyLayer::from_fn("shutdown", |_: &Session| Ok(())))
        .layer(IpBlockLayer::new(IpBlock::new(IpLists::default())))
        .layer(PolicyLayer::from_policy(Schedule::always_open()))
        .layer(PolicyLayer::from_policy(RateLimit::new(RateLimitConfig {
            // Every client comes from 127.0.0.1: room for all of them at once, so the limit
            // counts each connection but never refuses one.
            max_concurrent: Some(10_000),
            ..RateLimitConfig::default()
        })))
        .layer(LoadShedLayer::new())
        // The example server's default [limits] max_connections.
        .layer(GlobalConcurrencyLimitLayer::new(10_000))
        .service(pop3());
    let full = listen(&server, full_stack).await;
    // The bare stack first: the others are measured against it.
    let mut stacks = [
        Stack::new("bare", bare, 0.0),
        Stack::new("hooks", hooked, 2.0),
        Stack::new("full", full, 5.0),
    ];

    println!(
        "connect_bench: {} connections per stack per round, {} concurrent clients, {} rounds",
        args.connections, args.concurrency, args.rounds
    );
    println!(
        "no tracing subscriber installed: the logging layer's events are no-ops; metrics: {}",
        if args.prometheus {
            "Prometheus recorder installed (no HTTP listener)"
        } else {
            "no recorder installed (no-ops; --prometheus installs one)"
        }
    );
    // Warm-up: first connections pay for page faults, lazy allocations and cold caches.
    let warm_up = (args.connections / 10).max(args.concurrency);
    if let Some(name) = &args.only {
        let Some(stack) = stacks.iter().find(|s| s.name == name) else {
            eprintln!("connect_bench: no stack {name:?}\n{USAGE}");
            return ExitCode::FAILURE;
        };
        run_round(stack.addr, warm_up, args.concurrency).await;
        let mut tally = Tally::default();
        for _ in 0..args.rounds {
            tally
                .rounds
                .push(run_round(stack.addr, args.connections, args.concurrency).await);
        }
        println!(
            "{name} alone: {} connections ({warm_up} to warm up), {:.0} conn/s{}",
            warm_up + args.rounds * args.connections,
            tally.rate(),
            tally
                .cpu_us()
                .map(|cpu| format!(", {cpu:.1} us CPU/conn"))
                .unwrap_or_default()
        );
        server.shutdown(Duration::from_secs(5)).await;
        return ExitCode::SUCCESS;
    }
    for stack in &stacks {
        run_round(stack.addr, warm_up, args.concurrency).await;
    }

    for round in 1..=args.rounds {
        // Rotate which stack goes first so none always runs on a warmer (or more loaded)
        // machine.
        let mut results = vec![None; stacks.len()];
        for k in 0..stacks.len() {
            let i = (round + k) % stacks.len();
            results[i] = Some(run_round(stacks[i].addr, args.connections, args.concurrency).await);
        }
        let results: Vec<Round> = results.into_iter().map(Option::unwrap).collect();
        let base = results[0];
        let mut line = format!("round {round:>2}:");
        for (stack, result) in stacks.iter_mut().zip(&results) {
            stack.tally.rounds.push(*result);
            line += &format!("  {} {:>7.0} conn/s", stack.name, result.rate);
            if let (Some(b), Some(c)) = (base.cpu_us, result.cpu_us) {
                line += &format!(" {c:>5.1} us");
                stack.cpu_ratios.push(c / b);
            }
            stack.rate_ratios.push(result.rate / base.rate);
        }
        println!("{line}");
    }

    let (bare, measured) = stacks.split_first().expect("the bare stack");
    println!(
        "bare: {:.0} conn/s{}",
        bare.tally.rate(),
        bare.tally
            .cpu_us()
            .map(|cpu| format!(", {cpu:.1} us CPU/conn"))
            .unwrap_or_default()
    );
    for stack in measured {
        let (name, goal) = (stack.name, stack.goal_percent);
        let ratio = stack.tally.rate() / bare.tally.rate();
        let (low, high) = spread(&stack.rate_ratios);
        println!(
            "{name}: {:.0} conn/s; rate ratio {name}/bare {ratio:.3} (median of rounds {:.3}, \
             rounds ranged {low:.3} to {high:.3}); overhead by connection rate {:.1}% \
             (goal: under {goal}%)",
            stack.tally.rate(),
            median(stack.rate_ratios.clone()),
            (1.0 - ratio) * 100.0,
        );
        if let (Some(bare_cpu), Some(cpu)) = (bare.tally.cpu_us(), stack.tally.cpu_us()) {
            let (low, high) = spread(&stack.cpu_ratios);
            println!(
                "{name}: {cpu:.1} us CPU/conn; CPU ratio {name}/bare {:.3} (median of rounds \
                 {:.3}, rounds ranged {low:.3} to {high:.3}); overhead by CPU time {:.1}% \
                 (goal: under {goal}%)",
                cpu / bare_cpu,
                median(stack.cpu_ratios.clone()),
                (cpu / bare_cpu - 1.0) * 100.0,
            );
        }
    }
    server.shutdown(Duration::from_secs(5)).await;
    ExitCode::SUCCESS
}
