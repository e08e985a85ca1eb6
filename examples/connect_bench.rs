//! What do the hook layers cost per connection? A load generator that compares two POP3
//! stacks served on loopback:
//!
//! 1. `bare`: `Pop3Service` alone;
//! 2. `hooks`: the same behind an `OnConnectLayer` and an `OnCloseLayer` whose hooks do
//!    nothing, so what is measured is the layers' own machinery (the on-connect future and
//!    its deadline, the close guard).
//!
//! Client tasks connect, read the greeting, send `QUIT`, read `+OK`, and read to EOF: the
//! server closes first, so the TIME_WAIT state lands on the server's side and the client does
//! not run out of ephemeral ports. Rounds alternate the stacks (and the order within a round)
//! so that drift in the machine's load hits both alike. The goal: hooks cost under 2% of the
//! connection rate.
//!
//! ```text
//! cargo run --release --example connect_bench
//! cargo run --release --example connect_bench -- --connections 5000 --concurrency 32 --rounds 10
//! ```
//!
//! The defaults (10 rounds of 5,000 connections per stack, 32 clients at once: about 100,000
//! connections) take under 30 s on two busy cores. Client and server share the process and its
//! cores, and the kernel's TCP work dominates, so the absolute rates are a floor and depend on
//! the machine; the ratios are the figures to read. Beside the connection rate it reports the
//! process's CPU time per connection (Linux), a second view that leaves out time spent waiting
//! for a core; each ratio comes with its round-to-round spread, which shows how far to trust
//! it (a busy machine easily varies 5-10% between rounds).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceBuilder;
use tower_mail::auth::PasswdFile;
use tower_mail::pop3::{Pop3Config, Pop3Service};
use tower_mail::server::{Endpoint, Server, ServerConfig, TlsMode};
use tower_mail::store::MemoryStore;
use tower_mail::{CloseReport, Connection, Protocol, Reject, Session};
use tower_mail_layers::on_close::OnCloseLayer;
use tower_mail_layers::on_connect::OnConnectLayer;
use tower_service::Service;

/// Command-line settings.
#[derive(Debug, Clone, Copy)]
struct Args {
    /// Connections per stack per round.
    connections: usize,
    /// Client tasks running at once.
    concurrency: usize,
    /// Measured rounds; each runs both stacks.
    rounds: usize,
}

const USAGE: &str = "usage: connect_bench [--connections N] [--concurrency N] [--rounds N]";

fn parse_args() -> Result<Args, String> {
    let mut parsed = Args {
        connections: 5_000,
        concurrency: 32,
        rounds: 10,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let target = match flag.as_str() {
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

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };

    let server = Server::new(ServerConfig::default());
    let bare = listen(&server, pop3()).await;
    let hooked_stack = ServiceBuilder::new()
        .layer(OnCloseLayer::new(|_: &Session, _: &CloseReport| {}))
        .layer(OnConnectLayer::new(|_: Arc<Session>| async {
            Ok::<(), Reject>(())
        }))
        .service(pop3());
    let hooked = listen(&server, hooked_stack).await;

    println!(
        "connect_bench: {} connections per stack per round, {} concurrent clients, {} rounds",
        args.connections, args.concurrency, args.rounds
    );
    // Warm-up: first connections pay for page faults, lazy allocations and cold caches.
    let warm_up = (args.connections / 10).max(args.concurrency);
    run_round(bare, warm_up, args.concurrency).await;
    run_round(hooked, warm_up, args.concurrency).await;

    let (mut bare_tally, mut hooks_tally) = (Tally::default(), Tally::default());
    let (mut rate_ratios, mut cpu_ratios) = (Vec::new(), Vec::new());
    for round in 1..=args.rounds {
        // Alternate which stack goes first so neither always runs on a warmer (or more
        // loaded) machine.
        let (bare_round, hooks_round) = if round % 2 == 1 {
            let bare_round = run_round(bare, args.connections, args.concurrency).await;
            let hooks_round = run_round(hooked, args.connections, args.concurrency).await;
            (bare_round, hooks_round)
        } else {
            let hooks_round = run_round(hooked, args.connections, args.concurrency).await;
            let bare_round = run_round(bare, args.connections, args.concurrency).await;
            (bare_round, hooks_round)
        };
        bare_tally.rounds.push(bare_round);
        hooks_tally.rounds.push(hooks_round);
        let rate_ratio = hooks_round.rate / bare_round.rate;
        rate_ratios.push(rate_ratio);
        let cpu = match (bare_round.cpu_us, hooks_round.cpu_us) {
            (Some(b), Some(h)) => {
                cpu_ratios.push(h / b);
                format!("   CPU/conn bare {b:>6.1} us  hooks {h:>6.1} us")
            }
            _ => String::new(),
        };
        println!(
            "round {round:>2}: bare {:>7.0} conn/s  hooks {:>7.0} conn/s  ratio {rate_ratio:.3}{cpu}",
            bare_round.rate, hooks_round.rate
        );
    }

    let ratio = hooks_tally.rate() / bare_tally.rate();
    let (low, high) = spread(&rate_ratios);
    println!(
        "rate:  bare {:.0} conn/s, hooks {:.0} conn/s; ratio hooks/bare {ratio:.3} \
         (median of rounds {:.3}, rounds ranged {low:.3} to {high:.3})",
        bare_tally.rate(),
        hooks_tally.rate(),
        median(rate_ratios),
    );
    println!(
        "hook overhead by connection rate: {:.1}% (goal: under 2%)",
        (1.0 - ratio) * 100.0
    );
    if let (Some(bare_cpu), Some(hooks_cpu)) = (bare_tally.cpu_us(), hooks_tally.cpu_us()) {
        let (low, high) = spread(&cpu_ratios);
        println!(
            "CPU:   bare {bare_cpu:.1} us/conn, hooks {hooks_cpu:.1} us/conn; ratio hooks/bare {:.3} \
             (median of rounds {:.3}, rounds ranged {low:.3} to {high:.3})",
            hooks_cpu / bare_cpu,
            median(cpu_ratios),
        );
        println!(
            "hook overhead by CPU time per connection: {:.1}% (goal: under 2%)",
            (hooks_cpu / bare_cpu - 1.0) * 100.0
        );
    }
    server.shutdown(Duration::from_secs(5)).await;
    ExitCode::SUCCESS
}
