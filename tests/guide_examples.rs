//! End-to-end tests of the connection-management guide's examples (`examples/ip_blocking.rs`,
//! `business_hours.rs`, `connection_logging.rs`, `database_logging.rs`,
//! `redis_rate_limit.rs`): each runs as its own process on an ephemeral port, is driven over
//! real POP3 sockets, and is stopped with SIGTERM, after which it must exit 0.
//!
//! `cargo test` builds the examples before running tests; when selecting only this file
//! (`cargo test --test guide_examples`), run `cargo build --examples` first. The Redis example's
//! test starts its own `redis-server` (see `layers/tests/support_redis`).

mod common;
#[path = "../layers/tests/support_redis/mod.rs"]
mod support_redis;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{Client, SOON};
use support_redis::{RedisServer, nowhere_url};
use tokio::net::{TcpSocket, TcpStream};

/// Where cargo put the example `name`: tests run from <target>/debug/deps, examples are built
/// to <target>/debug/examples.
fn example_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --examples` first",
        path.display()
    );
    path
}

/// One running example process and everything it has printed.
struct Example {
    name: &'static str,
    child: Child,
    addr: SocketAddr,
    output: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
}

impl Example {
    fn start(name: &'static str, args: &[&str]) -> Example {
        Example::start_with_env(name, args, &[])
    }

    /// Run the example on `127.0.0.1:0` and wait for its `listening on ADDR` line.
    fn start_with_env(name: &'static str, args: &[&str], env: &[(&str, &str)]) -> Example {
        let path = example_path(name);
        let mut child = Command::new(&path)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", path.display()));

        let stdout = child.stdout.take().unwrap();
        let output = Arc::new(Mutex::new(Vec::new()));
        let (ready, listening) = mpsc::channel();
        let reader = {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(addr) = line.strip_prefix("listening on ") {
                        let _ = ready.send(addr.to_owned());
                    }
                    output.lock().unwrap().push(line);
                }
            })
        };
        let addr = match listening.recv_timeout(SOON) {
            Ok(addr) => addr.parse().unwrap(),
            Err(_) => {
                let _ = child.kill();
                panic!("{name} did not print `listening on ADDR` in time");
            }
        };
        Example {
            name,
            child,
            addr,
            output,
            reader: Some(reader),
        }
    }

    fn output(&self) -> Vec<String> {
        self.output.lock().unwrap().clone()
    }

    /// Send SIGTERM, require exit status 0 within [`SOON`], and return all the output.
    async fn stop(mut self) -> Vec<String> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + SOON;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit after SIGTERM; output: {:#?}",
                self.name,
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        // The pipe is at EOF once the process is gone: all output has been read.
        self.reader.take().unwrap().join().unwrap();
        let output = self.output();
        assert!(
            status.success(),
            "{} exited with {status}; output: {output:#?}",
            self.name
        );
        output
    }
}

impl Drop for Example {
    /// A failed test must not leave its server running.
    fn drop(&mut self) {
        if self.reader.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A client connecting from the loopback address `source` (any of 127.0.0.0/8 works on Linux).
async fn connect_from(source: &str, addr: SocketAddr) -> Client<TcpStream> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    Client::new(socket.connect(addr).await.unwrap())
}

/// Read the greeting, which must be `+OK`.
async fn greeted(mut client: Client<TcpStream>) -> Client<TcpStream> {
    let greeting = client.line().await;
    assert!(
        greeting
            .as_deref()
            .is_some_and(|line| line.starts_with("+OK")),
        "expected a greeting, got {greeting:?}"
    );
    client
}

/// Read the refusal, which must be exactly `-ERR <text>` followed by EOF.
async fn refused(mut client: Client<TcpStream>, text: &str) {
    assert_eq!(client.line().await, Some(format!("-ERR {text}")));
    assert!(
        client.closed().await,
        "the server kept a refused connection open"
    );
}

/// QUIT and wait for the server's `+OK` and EOF.
async fn quit(mut client: Client<TcpStream>) {
    assert!(client.cmd("QUIT").await.starts_with("+OK"));
    assert!(client.closed().await, "the server did not close after QUIT");
}

/// Connect from `source` until the server greets instead of refusing: close hooks run just
/// after the server closes a socket, so a slot freed by a close is free "soon", not at once.
async fn greeted_eventually(source: &str, addr: SocketAddr) -> Client<TcpStream> {
    let deadline = Instant::now() + SOON;
    loop {
        let mut client = connect_from(source, addr).await;
        match client.line().await {
            Some(line) if line.starts_with("+OK") => return client,
            other => assert!(
                Instant::now() < deadline,
                "still refused after {SOON:?}: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn ip_blocking_refuses_blocked_addresses() {
    let example = Example::start("ip_blocking", &["--block", "127.0.0.2"]);
    refused(
        connect_from("127.0.0.2", example.addr).await,
        "IP address blocked",
    )
    .await;
    quit(greeted(connect_from("127.0.0.1", example.addr).await).await).await;

    let output = example.stop().await;
    assert!(
        output
            .iter()
            .any(|line| line == "POP3 connection allowed from 127.0.0.1"),
        "{output:#?}"
    );
}

#[tokio::test]
async fn ip_blocking_counts_per_ip_exactly() {
    let example = Example::start("ip_blocking", &["--max-per-ip", "2"]);
    let addr = example.addr;
    let full = "Too many connections from this IP";

    let first = greeted(connect_from("127.0.0.3", addr).await).await;
    let second = greeted(connect_from("127.0.0.3", addr).await).await;
    refused(connect_from("127.0.0.3", addr).await, full).await;
    // The refusal must not have freed a slot it never took (the guide's onClose would have).
    refused(connect_from("127.0.0.3", addr).await, full).await;
    // Other addresses have their own count.
    quit(greeted(connect_from("127.0.0.4", addr).await).await).await;

    // A slot comes back when a session ends, by QUIT or by the client going away.
    quit(first).await;
    let third = greeted_eventually("127.0.0.3", addr).await;
    drop(second);
    let fourth = greeted_eventually("127.0.0.3", addr).await;
    quit(third).await;
    quit(fourth).await;

    // Nothing leaks: many sessions one after another never reach the limit (at most the
    // previous session's close can still be in flight, which leaves a slot free)...
    quit(greeted_eventually("127.0.0.3", addr).await).await;
    for _ in 0..20 {
        quit(greeted(connect_from("127.0.0.3", addr).await).await).await;
    }
    // ...and nothing is released twice: the limit still holds at exactly 2.
    let a = greeted_eventually("127.0.0.3", addr).await;
    let b = greeted(connect_from("127.0.0.3", addr).await).await;
    refused(connect_from("127.0.0.3", addr).await, full).await;
    quit(a).await;
    quit(b).await;

    // Every connection has exactly one close line: one per session id, and one per allowed
    // connection besides those of refused ones.
    let output = example.stop().await;
    let closes: Vec<_> = output
        .iter()
        .filter_map(|line| line.strip_prefix("POP3 connection closed: "))
        .collect();
    let mut ids: Vec<_> = closes.iter().filter_map(|c| c.split(' ').next()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), closes.len(), "{output:#?}");
    let allowed = output
        .iter()
        .filter(|line| line.starts_with("POP3 connection allowed from "))
        .count();
    let served = closes.iter().filter(|c| !c.contains("(rejected")).count();
    assert_eq!(allowed, served, "{output:#?}");
    assert_eq!(allowed, 2 + 1 + 2 + 1 + 20 + 2, "{output:#?}");
}

/// Start business_hours pretending it is `now`, connect once (QUIT if greeted), stop it, and
/// return the first line the client read and the example's output.
async fn business_hours_at(now: &str) -> (String, Vec<String>) {
    let example = Example::start("business_hours", &["--now", now]);
    let mut client = Client::connect(example.addr).await;
    let first = client.line().await.expect("no reply");
    if first.starts_with("+OK") {
        quit(client).await;
    } else {
        assert!(client.closed().await, "a refused connection stayed open");
    }
    (first, example.stop().await)
}

fn lasted_line(output: &[String]) -> bool {
    output.iter().any(|line| {
        line.strip_prefix("POP3 session ")
            .and_then(|rest| rest.split_once(" lasted "))
            .and_then(|(_id, ms)| ms.strip_suffix("ms"))
            .is_some_and(|ms| ms.parse::<u64>().is_ok())
    })
}

#[tokio::test]
async fn business_hours_open_on_weekdays_from_nine() {
    // 2026-11-25 is a Wednesday.
    for now in [
        "2026-11-25T10:00:00",
        "2026-11-25T09:00:00",
        "2026-11-25T16:59:59",
    ] {
        let (first, output) = business_hours_at(now).await;
        assert!(first.starts_with("+OK"), "{now}: {first}");
        let allowed = format!("POP3 connection allowed from 127.0.0.1 at {now}");
        assert!(output.contains(&allowed), "{now}: {output:#?}");
        assert!(lasted_line(&output), "{now}: {output:#?}");
    }
}

#[tokio::test]
async fn business_hours_closed_evenings_and_weekends() {
    let outside = "-ERR Service unavailable outside business hours";
    for (now, expected) in [
        ("2026-11-25T20:00:00", outside),
        ("2026-11-25T17:00:00", outside), // `hour >= 17`: 17:00 is closed
        ("2026-11-25T08:59:59", outside),
        (
            "2026-11-28T10:00:00",
            "-ERR Service unavailable on weekends",
        ), // Saturday
        (
            "2026-11-29T10:00:00",
            "-ERR Service unavailable on weekends",
        ), // Sunday
        ("2026-11-28T20:00:00", outside), // the guide checks the hours first
    ] {
        let (first, output) = business_hours_at(now).await;
        assert_eq!(first, expected, "{now}");
        // Refused connections reach the close hook too.
        assert!(lasted_line(&output), "{now}: {output:#?}");
    }
}

#[test]
fn business_hours_rejects_impossible_dates() {
    let output = Command::new(example_path("business_hours"))
        .args(["--listen", "127.0.0.1:0", "--now", "2026-02-29T10:00:00"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--now"));
}

#[tokio::test]
async fn connection_logging_logs_connect_and_close() {
    let example = Example::start_with_env(
        "connection_logging",
        &[],
        &[("RUST_LOG", "info,connection_logging=debug")],
    );
    let mut client = greeted(Client::connect(example.addr).await).await;
    assert!(client.cmd("USER demo").await.starts_with("+OK"));
    assert!(client.cmd("PASS demo").await.starts_with("+OK"));
    quit(client).await;

    let output = example.stop().await;
    let connect = output
        .iter()
        .find(|line| line.contains("New POP3 connection from 127.0.0.1"))
        .unwrap_or_else(|| panic!("no connect line: {output:#?}"));
    let id = connect
        .split_once("session_id=")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no session id in {connect:?}"));
    for expected in [
        format!("onConnect called for session: {id}"),
        format!("POP3 connection closed: {id}"),
    ] {
        assert!(
            output.iter().any(|line| line.contains(&expected)),
            "no {expected:?} in {output:#?}"
        );
    }
}

/// One row of the connection log.
#[derive(Debug)]
struct Row {
    status: String,
    duration_ms: Option<i64>,
    close_reason: Option<String>,
    refusal: Option<String>,
    user: Option<String>,
    bytes_out: Option<i64>,
}

fn rows(db: &std::path::Path) -> Vec<Row> {
    let db = rusqlite::Connection::open(db).unwrap();
    let mut query = db
        .prepare(
            "SELECT status, duration_ms, close_reason, refusal, user, bytes_out, protocol,
                    remote_address, timestamp
             FROM connections ORDER BY timestamp",
        )
        .unwrap();
    query
        .query_map([], |row| {
            assert_eq!(row.get::<_, String>(6)?, "POP3");
            assert_eq!(row.get::<_, String>(7)?, "127.0.0.1");
            assert!(
                row.get::<_, i64>(8)? > 1_700_000_000_000,
                "timestamp in Unix ms"
            );
            Ok(Row {
                status: row.get(0)?,
                duration_ms: row.get(1)?,
                close_reason: row.get(2)?,
                refusal: row.get(3)?,
                user: row.get(4)?,
                bytes_out: row.get(5)?,
            })
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn database_logging_records_every_session() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("log.sqlite3");
    let example = Example::start("database_logging", &["--db", db.to_str().unwrap()]);
    // Every session below lies within this span, so each recorded duration must too.
    let span = std::time::Instant::now();

    // A session that logs in and says goodbye.
    let mut client = greeted(Client::connect(example.addr).await).await;
    assert!(client.cmd("USER demo").await.starts_with("+OK"));
    assert!(client.cmd("PASS demo").await.starts_with("+OK"));
    quit(client).await;
    // A client that goes away without QUIT.
    drop(greeted(Client::connect(example.addr).await).await);
    // A session still open at shutdown: the server says goodbye and closes it.
    let mut open = greeted(Client::connect(example.addr).await).await;

    example.stop().await;
    let goodbye = open.line().await;
    assert!(goodbye.is_some_and(|line| line.starts_with("-ERR")));
    assert!(open.closed().await);

    let rows = rows(&db);
    assert_eq!(rows.len(), 3, "{rows:#?}");
    for row in &rows {
        assert_eq!(row.status, "disconnected", "{row:?}");
        let within = span.elapsed().as_millis() as i64;
        assert!(
            row.duration_ms.is_some_and(|ms| (0..=within).contains(&ms)),
            "a duration within the test's own {within} ms: {row:?}"
        );
        assert!(row.bytes_out.is_some_and(|n| n > 0), "{row:?}");
        assert_eq!(row.refusal, None);
    }
    let logged_in: Vec<_> = rows.iter().filter(|row| row.user.is_some()).collect();
    assert_eq!(logged_in.len(), 1, "{rows:#?}");
    assert_eq!(logged_in[0].user.as_deref(), Some("demo"));
    assert_eq!(logged_in[0].close_reason.as_deref(), Some("logout"));
    let mut reasons: Vec<_> = rows
        .iter()
        .filter_map(|r| r.close_reason.as_deref())
        .collect();
    reasons.sort_unstable();
    assert_eq!(reasons, ["client_closed", "logout", "shutdown"]);
}

#[tokio::test]
async fn database_logging_records_refusals_by_a_later_layer() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("log.sqlite3");
    let example = Example::start(
        "database_logging",
        &["--db", db.to_str().unwrap(), "--max-connections", "1"],
    );

    let first = greeted(Client::connect(example.addr).await).await;
    refused(
        Client::connect(example.addr).await,
        "Too many connections, try again later",
    )
    .await;
    quit(first).await;
    example.stop().await;

    let rows = rows(&db);
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let (rejected, served): (Vec<_>, Vec<_>) =
        rows.iter().partition(|row| row.status == "rejected");
    assert_eq!(rejected.len(), 1, "{rows:#?}");
    assert_eq!(
        rejected[0].refusal.as_deref(),
        Some("Too many connections, try again later")
    );
    assert_eq!(rejected[0].close_reason.as_deref(), Some("rejected"));
    assert_eq!(served[0].status, "disconnected");
    assert_eq!(served[0].close_reason.as_deref(), Some("logout"));
}

/// examples/custom_layer.rs serves with its hand-written layer and checks itself: a plain
/// client is refused with the layer's text, a TLS client is greeted.
#[test]
fn custom_layer_example_refuses_plaintext_and_serves_tls() {
    let exe = std::env::current_exe().unwrap();
    let example = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/custom_layer");
    let output = std::process::Command::new(&example)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (build the examples first)", example.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("plain: -ERR TLS required: use port 995"),
        "{stdout}"
    );
    assert!(stdout.contains("tls:   +OK"), "{stdout}");
}

/// examples/redis_rate_limit.rs, two processes on one real Redis with a budget of 3 new
/// connections per address per hour: the fourth connection from an address is refused by
/// either server, another address is served, the count is in Redis, and with Redis gone both
/// servers let everybody in (`fail_open`), warning once.
#[tokio::test]
async fn redis_rate_limit_is_shared_by_servers_and_fails_open() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    let args = ["--redis", url.as_str(), "--per-hour", "3"];
    let a = Example::start("redis_rate_limit", &args);
    let b = Example::start("redis_rate_limit", &args);
    let exceeded = "Rate limit exceeded";

    // Three new connections from 127.0.0.8, to either server (one of them still open: the
    // limit counts new connections, not open ones)...
    quit(greeted(connect_from("127.0.0.8", a.addr).await).await).await;
    quit(greeted(connect_from("127.0.0.8", b.addr).await).await).await;
    let open = greeted(connect_from("127.0.0.8", a.addr).await).await;
    // ...and the fourth is refused by both, with the guide's text. The refusals spend
    // nothing, but the budget only refills one connection per 20 minutes.
    refused(connect_from("127.0.0.8", b.addr).await, exceeded).await;
    refused(connect_from("127.0.0.8", a.addr).await, exceeded).await;
    // Another address has a budget of its own.
    for server in [&a, &b] {
        quit(greeted(connect_from("127.0.0.9", server.addr).await).await).await;
    }
    // The count is in Redis, and expires by itself once it no longer matters (an hour, the
    // time for the budget of 3 to refill).
    let ttl = redis.int(&["PTTL", "tower-mail:rl:tat:{127.0.0.8}"]);
    assert!((1..=3_600_000).contains(&ttl), "PTTL {ttl}");
    quit(open).await;

    // Redis gone: every connection is let in, uncounted, on both servers.
    redis.kill();
    for server in [&a, &b] {
        for source in [
            "127.0.0.8",
            "127.0.0.8",
            "127.0.0.8",
            "127.0.0.8",
            "127.0.0.9",
        ] {
            quit(greeted(connect_from(source, server.addr).await).await).await;
        }
    }

    for output in [a.stop().await, b.stop().await] {
        let started = format!(
            "rate limit: 3 new connections per address per hour, counted in Redis at {url}"
        );
        assert!(output.contains(&started), "{output:#?}");
        // Five connections let in while Redis was gone: one warning (then debug lines).
        let warnings = output
            .iter()
            .filter(|line| line.contains("rate limit store failed; letting connections in"))
            .count();
        assert_eq!(warnings, 1, "{output:#?}");
    }
}

/// examples/redis_rate_limit.rs starts without Redis (it connects lazily), says so, and lets
/// connections in.
#[tokio::test]
async fn redis_rate_limit_starts_and_serves_without_redis() {
    let url = nowhere_url();
    let example = Example::start_with_env(
        "redis_rate_limit",
        &["--per-hour", "1"],
        &[("REDIS_URL", url.as_str())],
    );
    for _ in 0..3 {
        quit(greeted(connect_from("127.0.0.10", example.addr).await).await).await;
    }
    let output = example.stop().await;
    let unreachable = format!("rate limit: Redis at {url} is not reachable yet");
    assert!(
        output.iter().any(|line| line.starts_with(&unreachable)),
        "{output:#?}"
    );
}
