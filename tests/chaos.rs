//! A bounded chaos run through the example server (issue 13): some 1,500 loopback clients that
//! reset, half-close or send garbage at points chosen by a seeded RNG, while an honest client
//! keeps logging in and working. Afterwards nothing may be left behind: every accepted
//! connection's task ended, each has its close hook run, log line and metric, no session is
//! listed, no gauge is above zero, and the server still serves a fresh login.
//!
//! The run is bounded in count (`CONNECTIONS`) and waits only for events and metrics, under
//! generous deadlines; nothing is timed. Each chaos connection comes from its own loopback
//! address (all of 127.0.0.0/8 is loopback), so the per-address policies (concurrency per IP,
//! handshakes per address) never refuse them and every connection reaches the point the RNG
//! chose.
//!
//! ```text
//! cargo build --example server && cargo test -p tower-mail --test chaos -- --nocapture
//! ```
//!
//! Needs `python3` (the harness parses JSON logs with it) and `curl` (metrics and the admin
//! endpoint).

mod common;
mod support_example;
mod support_shared;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::Client;
use support_example::{
    ExampleServer, Metrics, PASSWORD, RawClient, SOON, USER, events_of, parse_json_lines, poll,
};
use support_shared::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Chaos connections in the run.
const CONNECTIONS: usize = 1_500;

/// Chaos connections open at once.
const AT_ONCE: usize = 8;

/// The seed: a failure names the run it came from, and the same seed replays it.
const SEED: u64 = 0x13_c4a0_5eed;

/// `[auth] max_sessions_per_user`'s default: sessions demo may have at once.
const DEMO_SESSIONS: usize = 15;

/// The honest client's user name and password.
const HONEST: &str = "honest";

/// The message POP3 clients drop out of mid-RETR: larger than the loopback socket buffers,
/// so the server is still writing it when the client goes.
const LARGE: usize = 4 << 20;

/// Where in the conversation a chaos client gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Point {
    /// Connected, greeting not read (IMAP or POP3).
    BeforeGreeting,
    /// Just after the greeting.
    AfterGreeting,
    /// Half a command line, no line end.
    MidCommand,
    /// Random octets, some with line ends.
    Garbage,
    /// IMAP `{100}` announced and continued, a few of its octets sent.
    MidLiteral,
    /// IMAP AUTHENTICATE PLAIN, at its `+` continuation.
    AuthContinuation,
    /// Logged in, INBOX selected, in IDLE.
    Idle,
    /// POP3 RETR of the large message, a few lines read.
    MidRetr,
    /// Implicit-TLS port, part of a ClientHello sent.
    TlsHandshake,
}

const POINTS: [Point; 9] = [
    Point::BeforeGreeting,
    Point::AfterGreeting,
    Point::MidCommand,
    Point::Garbage,
    Point::MidLiteral,
    Point::AuthContinuation,
    Point::Idle,
    Point::MidRetr,
    Point::TlsHandshake,
];

/// How a chaos client leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum End {
    /// RST (SO_LINGER 0), as a crashed client or a middlebox.
    Reset,
    /// FIN of its side only, then read until the server closes: the server must notice.
    HalfClose,
}

/// The `n`th chaos connection's own loopback source address (127.1.x.y, never 127.0.0.1,
/// the honest client's).
fn source(n: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 1, (n / 250) as u8, (n % 250 + 1) as u8))
}

async fn connect(n: usize, addr: SocketAddr) -> Client<TcpStream> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source(n), 0)).unwrap();
    let stream = tokio::time::timeout(SOON, socket.connect(addr))
        .await
        .expect("connect in time")
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    Client::new(stream)
}

/// Send without caring whether the server is still there (it may have closed on garbage).
async fn send(client: &mut Client<TcpStream>, bytes: &[u8]) {
    let _ = client.get_mut().write_all(bytes).await;
}

/// Read until the line starting with `prefix`; `None` if the server closed first.
async fn until(client: &mut Client<TcpStream>, prefix: &str) -> Option<String> {
    loop {
        let line = client.line().await?;
        if line.starts_with(prefix) {
            return Some(line);
        }
    }
}

/// The start of a TLS 1.2/1.3 ClientHello record: a record header announcing 512 octets, a
/// handshake header, version, and random octets for the rest.
fn client_hello_prefix(rng: &mut Rng) -> Vec<u8> {
    let mut hello = vec![
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    hello.extend(rng.bytes(64));
    let len = 1 + rng.below(hello.len());
    hello.truncate(len);
    hello
}

/// One chaos connection: go to `point`, then leave by `end`.
/// Whether the point was reached (a login refused on a lock or a session limit stops short).
async fn chaos(server: Servers, n: usize, point: Point, end: End, mut rng: Rng) -> bool {
    let imap = rng.below(2) == 0;
    let mut client = match point {
        Point::TlsHandshake => connect(n, server.imaps).await,
        Point::MidLiteral | Point::AuthContinuation | Point::Idle => connect(n, server.imap).await,
        Point::MidRetr => connect(n, server.pop3).await,
        _ if imap => connect(n, server.imap).await,
        _ => connect(n, server.pop3).await,
    };
    match point {
        Point::BeforeGreeting => {}
        Point::TlsHandshake => send(&mut client, &client_hello_prefix(&mut rng)).await,
        _ => {
            client.line().await.expect("a greeting");
        }
    }
    match point {
        Point::BeforeGreeting | Point::AfterGreeting | Point::TlsHandshake => {}
        Point::MidCommand => {
            let line: &[u8] = if imap {
                b"a1 LOGIN demo de"
            } else {
                b"USER de"
            };
            let cut = 1 + rng.below(line.len());
            send(&mut client, &line[..cut]).await;
        }
        Point::Garbage => {
            let len = 1 + rng.below(300);
            let mut junk = rng.bytes(len);
            if rng.below(2) == 0 {
                junk.extend_from_slice(b"\r\n");
            }
            send(&mut client, &junk).await;
        }
        Point::MidLiteral => {
            send(&mut client, b"a1 LOGIN {100}\r\n").await;
            until(&mut client, "+")
                .await
                .expect("the literal's continuation");
            let len = 1 + rng.below(99);
            let part = rng.bytes(len);
            send(&mut client, &part).await;
        }
        Point::AuthContinuation => {
            send(&mut client, b"a1 AUTHENTICATE PLAIN\r\n").await;
            until(&mut client, "+")
                .await
                .expect("AUTHENTICATE's continuation");
        }
        Point::Idle => {
            send(
                &mut client,
                format!("a1 LOGIN {USER} {PASSWORD}\r\n").as_bytes(),
            )
            .await;
            let reply = until(&mut client, "a1 ").await.expect("LOGIN's reply");
            // Chaos sessions of demo still ending may hold its session slots.
            if !reply.starts_with("a1 OK") {
                assert!(
                    reply.starts_with("a1 NO [LIMIT]"),
                    "chaos LOGIN #{n}: {reply}"
                );
                return leave(client, n, point, end, true).await;
            }
            send(&mut client, b"a2 SELECT INBOX\r\n").await;
            until(&mut client, "a2 OK").await.expect("SELECT's reply");
            send(&mut client, b"a3 IDLE\r\n").await;
            until(&mut client, "+").await.expect("IDLE's continuation");
        }
        Point::MidRetr => {
            send(&mut client, format!("USER {USER}\r\n").as_bytes()).await;
            client.line().await.expect("USER's reply");
            send(&mut client, format!("PASS {PASSWORD}\r\n").as_bytes()).await;
            let reply = client.line().await.expect("PASS's reply");
            // POP3 locks the maildrop (RFC 1939): another chaos RETR of demo's, or one still
            // ending, holds it.
            if !reply.starts_with("+OK") {
                assert!(
                    reply.starts_with("-ERR [IN-USE]"),
                    "chaos PASS #{n}: {reply}"
                );
                return leave(client, n, point, end, true).await;
            }
            send(&mut client, b"RETR 1\r\n").await;
            let reply = client.line().await.expect("RETR's reply");
            assert!(reply.starts_with("+OK"), "chaos RETR #{n}: {reply}");
            for _ in 0..1 + rng.below(20) {
                client.line().await.expect("a line of the message");
            }
        }
    }
    leave(client, n, point, end, false).await
}

/// Leave by `end`; `refused`: the login was refused, so the point was not reached. Returns
/// whether the point was reached.
async fn leave(client: Client<TcpStream>, n: usize, point: Point, end: End, refused: bool) -> bool {
    let stream = client.into_inner();
    match end {
        End::Reset => common::reset(stream),
        End::HalfClose => {
            let mut stream = stream;
            let _ = stream.shutdown().await;
            // The server must close its side too; what it sends until then does not matter
            // (the rest of a message, a BYE, a TLS alert), and a reset also ends it.
            let mut sink = Vec::new();
            tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut sink))
                .await
                .unwrap_or_else(|_| {
                    panic!("#{n} at {point:?}: the server kept a half-closed connection")
                })
                .ok();
        }
    }
    !refused
}

/// Sets its flag when dropped, by a normal end or a panic.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The listeners the chaos clients use.
#[derive(Clone, Copy)]
struct Servers {
    imap: SocketAddr,
    imaps: SocketAddr,
    pop3: SocketAddr,
}

/// An honest IMAP session and an honest POP3 one, which must work.
fn honest_round(server: &ExampleServer, round: usize) {
    let mut imap = RawClient::connect(server.imap);
    let greeting = imap.line().expect("an IMAP greeting");
    assert!(greeting.starts_with("* OK"), "round {round}: {greeting}");
    let reply = imap.cmd(&format!("a1 LOGIN {HONEST} {HONEST}"));
    assert!(reply.starts_with("a1 OK"), "round {round}: LOGIN: {reply}");
    imap.send_raw(b"a2 SELECT INBOX\r\n");
    let selected = imap.lines_until("a2 ");
    assert!(
        selected.last().unwrap().starts_with("a2 OK"),
        "round {round}: {selected:?}"
    );
    assert!(
        selected.iter().any(|l| l == "* 1 EXISTS"),
        "round {round}: {selected:?}"
    );
    imap.send_raw(b"a3 FETCH 1 (RFC822.SIZE)\r\n");
    let fetched = imap.lines_until("a3 ");
    assert!(
        fetched.last().unwrap().starts_with("a3 OK"),
        "round {round}: {fetched:?}"
    );
    assert!(
        fetched[0].starts_with(&format!("* 1 FETCH (RFC822.SIZE {LARGE})")),
        "round {round}: {fetched:?}"
    );
    assert!(imap.cmd("a4 LOGOUT").starts_with("* BYE"));

    let mut pop3 = RawClient::connect(server.pop3);
    pop3.login(HONEST, HONEST);
    let stat = pop3.cmd("STAT");
    assert_eq!(stat, format!("+OK 1 {LARGE}"), "round {round}");
    assert!(pop3.cmd("QUIT").starts_with("+OK"));
}

/// `LARGE` octets of CRLF lines.
fn large_message() -> Vec<u8> {
    let mut message = b"Subject: large\r\n\r\n".to_vec();
    let line = [b'x'; 76];
    while message.len() + 78 <= LARGE {
        message.extend_from_slice(&line);
        message.extend_from_slice(b"\r\n");
    }
    let pad = LARGE - message.len() - 2;
    message.extend(std::iter::repeat_n(b'y', pad));
    message.extend_from_slice(b"\r\n");
    message
}

#[test]
fn resets_half_closes_and_garbage_leave_nothing_behind() {
    let server = ExampleServer::start();
    // The honest client is a user of its own: POP3 locks a maildrop per user, and the chaos
    // clients' sessions of demo count against demo's session limit.
    let mut users = std::fs::OpenOptions::new()
        .append(true)
        .open(server.passwd_file())
        .unwrap();
    writeln!(users, "{HONEST}:{{PLAIN}}{HONEST}").unwrap();
    server.log_barrier();
    server.deliver(&large_message());
    server.deliver_to(HONEST, &large_message());
    let servers = Servers {
        imap: server.imap,
        imaps: server.imaps,
        pop3: server.pop3,
    };

    // The plan, drawn up front from the seed: the same seed, the same run.
    let mut rng = Rng(SEED);
    let plan: Vec<(Point, End, Rng)> = (0..CONNECTIONS)
        .map(|_| {
            let point = POINTS[rng.below(POINTS.len())];
            let end = if rng.below(3) == 0 {
                End::HalfClose
            } else {
                End::Reset
            };
            (point, end, Rng(rng.next() | 1))
        })
        .collect();
    let mut tally: BTreeMap<(Point, End), usize> = BTreeMap::new();
    for (point, end, _) in &plan {
        *tally.entry((*point, *end)).or_default() += 1;
    }

    let chaos_done = Arc::new(AtomicBool::new(false));
    let mut stopped_short = 0;
    let honest_rounds = std::thread::scope(|scope| {
        let honest = scope.spawn(|| {
            let mut rounds = 0;
            // At least one round, and rounds for as long as the chaos goes on.
            loop {
                honest_round(&server, rounds);
                rounds += 1;
                if chaos_done.load(Ordering::Relaxed) {
                    return rounds;
                }
            }
        });
        // Stops the honest client also when a chaos client panics.
        let stop_honest = StopOnDrop(&chaos_done);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut tasks = tokio::task::JoinSet::<bool>::new();
            for (n, (point, end, rng)) in plan.into_iter().enumerate() {
                if tasks.len() >= AT_ONCE && !tasks.join_next().await.unwrap().unwrap() {
                    stopped_short += 1;
                }
                tasks.spawn(chaos(servers, n, point, end, rng));
            }
            while let Some(done) = tasks.join_next().await {
                if !done.unwrap() {
                    stopped_short += 1;
                }
            }
        });
        drop(stop_honest);
        honest.join().expect("the honest client")
    });

    // Still serving: a fresh login after it all.
    honest_round(&server, honest_rounds);

    // Every connection accepted has ended, and each is accounted for once: a session that
    // closed, a refusal, or a failed setup (TLS handshake) that never reached the stack.
    let metrics = server.settled_metrics(|m| {
        m.sum("mail_connections_active", &[]) == 0.0
            && m.sum("mail_connections_in_setup", &[]) == 0.0
    });
    let accepted = metrics.sum("mail_server_connections_accepted_total", &[]);
    let finished = metrics.sum("mail_server_connections_finished_total", &[]);
    let sessions = metrics.sum("mail_connections_total", &[("outcome", "accepted")]);
    let rejected = metrics.sum("mail_connections_total", &[("outcome", "rejected")]);
    let closed = metrics.sum("mail_connections_closed_total", &[]);
    let setup_failures = metrics.sum("mail_setup_failures_total", &[]);
    let text = &metrics.text;
    assert_eq!(accepted, finished, "{text}");
    assert_eq!(closed, sessions, "{text}");
    assert_eq!(rejected, 0.0, "nothing here is refused by policy:\n{text}");
    assert_eq!(sessions + setup_failures, accepted, "{text}");
    assert_eq!(metrics.sum("mail_connections_active", &[]), 0.0, "{text}");
    assert_eq!(
        metrics.sum("mail_connections_tarpitted", &[]),
        0.0,
        "{text}"
    );
    // One honest IMAP and one POP3 connection per round, the last round after the chaos.
    let tried = CONNECTIONS + 2 * (honest_rounds + 1);
    assert_eq!(accepted as usize, tried, "{text}");

    // No session left in the registry (per address and per user, the admin endpoint's list).
    let listed = poll(SOON, || {
        let body = admin_sessions(&server);
        (body.trim() == "[]").then_some(body)
    });
    assert!(
        listed.is_some(),
        "sessions left: {}",
        admin_sessions(&server)
    );

    // demo's per-user session count is back to 0: all of its default 15 sessions are free,
    // though hundreds of its chaos sessions vanished mid-way.
    let demo_sessions: Vec<RawClient> = (0..DEMO_SESSIONS)
        .map(|i| {
            // Each from an address of its own: one address may have only 10 at once.
            let source = IpAddr::V4(Ipv4Addr::new(127, 2, 0, i as u8 + 1));
            let mut client = RawClient::connect_from(source, server.imap);
            let greeting = client.line().expect("an IMAP greeting");
            assert!(
                greeting.starts_with("* OK"),
                "demo's session {i}: {greeting}"
            );
            let reply = client.cmd(&format!("a1 LOGIN {USER} {PASSWORD}"));
            assert!(reply.starts_with("a1 OK"), "demo's session {i}: {reply}");
            client
        })
        .collect();
    drop(demo_sessions);
    let tried = tried + DEMO_SESSIONS;
    server.settled_metrics(|m| {
        m.sum("mail_server_connections_accepted_total", &[]) as usize == tried
            && m.sum("mail_connections_active", &[]) == 0.0
    });
    let metrics = server.scrape();
    let closed = metrics.sum("mail_connections_closed_total", &[]);

    // One close log line per session.
    let events = parse_json_lines(&server.json_lines());
    let close_lines = events_of(&events, "close").len();
    assert_eq!(close_lines as f64, closed, "{text}");

    // The close hook ran once per session: the server says how often at shutdown.
    let mut server = server;
    server.signal("TERM");
    server.wait_exit(SOON).expect("the server exits on SIGTERM");
    let stopped = server
        .stdout()
        .into_iter()
        .find(|l| l.contains("connections closed"))
        .expect("the shutdown line");
    let hooks: f64 = stopped
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .expect("a count in the shutdown line");
    assert_eq!(hooks, closed, "{stopped}");

    report(&tally, honest_rounds, tried, &metrics, close_lines, hooks);
    println!("chaos logins refused (maildrop locked, session limit): {stopped_short}");
}

/// The figures of the run, for RELIABILITY.md (`--nocapture` shows them).
fn report(
    tally: &BTreeMap<(Point, End), usize>,
    honest_rounds: usize,
    tried: usize,
    metrics: &Metrics,
    close_lines: usize,
    hooks: f64,
) {
    println!("seed {SEED:#x}: {tried} connections ({CONNECTIONS} chaos, {AT_ONCE} at once)");
    for ((point, end), count) in tally {
        println!("  {point:?} / {end:?}: {count}");
    }
    println!("honest rounds during the chaos: {honest_rounds}");
    for sample in &metrics.samples {
        if [
            "mail_server_connections_accepted_total",
            "mail_server_connections_finished_total",
            "mail_connections_closed_total",
            "mail_connections_active",
            "mail_connections_in_setup",
        ]
        .contains(&sample.name.as_str())
            || (sample.name == "mail_setup_failures_total" && sample.value > 0.0)
        {
            println!("  {} {:?} = {}", sample.name, sample.labels, sample.value);
        }
    }
    println!("close log lines: {close_lines}; close hooks run: {hooks}");
}

fn admin_sessions(server: &ExampleServer) -> String {
    let url = format!("http://{}/sessions", server.metrics);
    let out = support_example::curl_success(&["-sS", &url]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}
