//! Shutdown under load through the example server (issue 13): SIGTERM while 60 loopback
//! sessions sit in every state a session can wait in (IMAP before login, logged in, in IDLE,
//! after an acknowledged APPEND, mid-APPEND with part of the literal sent; POP3 before login
//! and in TRANSACTION). Every client must be told goodbye before the server closes, every
//! close hook must run, the server must exit 0 without dropping sessions at the end of its
//! grace period, and after a restart every acknowledged APPEND must be in the mailbox while
//! nothing of the cut ones is.
//!
//! Failed logins held in a failure delay far past a 1-second grace period are told goodbye at
//! once (shutdown cuts the delay short), beside sessions that leave when told; every close
//! hook runs once and the acknowledged APPENDs are kept. The hard stop itself, in process:
//! logins stuck on a hung authentication backend are cut at the end of the grace period and
//! told goodbye, and a client that does not read does not hold shutdown.
//!
//! Nothing is timed: the test waits for replies, the exit and metrics under generous bounds.
//!
//! ```text
//! cargo build --example server && cargo test -p tower-mail --test shutdown_under_load -- --nocapture
//! ```
//!
//! Needs `python3` (the harness parses JSON logs with it) and `curl` (metrics).

mod support_example;
mod support_shared;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use support_example::{
    ExampleServer, LogEvent, RawClient, SOON, events_of, parse_json_lines, poll,
};

/// The user every APPEND goes to: one mailbox to check after the restart. Its sessions (the
/// acknowledged and the cut APPENDs) stay under `max_sessions_per_user`'s default of 15.
const WRITER: &str = "writer";

/// Messages in the writer's INBOX before the load: the count after the restart is these plus
/// the acknowledged APPENDs.
const ALREADY_THERE: usize = 2;

/// `[limits] shutdown_grace_seconds`'s default: the server's own deadline for sessions to end.
const GRACE: Duration = Duration::from_secs(10);

/// The octets a cut APPEND announces; it sends less than half of them.
const CUT_LITERAL: usize = 2_000;

/// The state a session is in when SIGTERM comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum State {
    ImapBeforeLogin,
    ImapLoggedIn,
    ImapIdle,
    /// Logged in as the writer, one APPEND done and acknowledged (tagged OK).
    ImapAppended,
    /// Logged in as the writer, APPEND's literal announced, continued and partly sent.
    ImapMidAppend,
    Pop3BeforeLogin,
    Pop3Transaction,
    /// IMAP LOGIN with a wrong password sent, the answer held back by the failure delay: a
    /// session that cannot hear the end signal until its login returns.
    ImapFailedLogin,
    /// The same for POP3's PASS.
    Pop3FailedLogin,
}

/// How many sessions of each state: 60 in all.
const PLAN: [(State, usize); 7] = [
    (State::ImapBeforeLogin, 10),
    (State::ImapLoggedIn, 10),
    (State::ImapIdle, 10),
    (State::ImapAppended, 10),
    (State::ImapMidAppend, 4),
    (State::Pop3BeforeLogin, 8),
    (State::Pop3Transaction, 8),
];

fn acknowledged_subject(n: usize) -> String {
    format!("shutdown-acknowledged-{n}")
}

fn cut_subject(n: usize) -> String {
    format!("shutdown-cut-{n}")
}

#[track_caller]
fn imap_login(client: &mut RawClient, user: &str) {
    let greeting = client.line().expect("an IMAP greeting");
    assert!(greeting.starts_with("* OK"), "{greeting}");
    let reply = client.cmd(&format!("a1 LOGIN {user} {user}"));
    assert!(reply.starts_with("a1 OK"), "LOGIN {user}: {reply}");
}

/// Open session `n` and bring it to `state`.
fn open(server: &ExampleServer, n: usize, state: State) -> RawClient {
    // Each session from its own loopback address: the per-address concurrency cap (10)
    // must not refuse any of them.
    let source = IpAddr::V4(Ipv4Addr::new(127, 3, 0, n as u8 + 1));
    let user = format!("user{n}");
    let imap = || RawClient::connect_from(source, server.imap);
    let pop3 = || RawClient::connect_from(source, server.pop3);
    match state {
        State::ImapBeforeLogin => {
            let mut client = imap();
            let greeting = client.line().expect("an IMAP greeting");
            assert!(greeting.starts_with("* OK"), "{greeting}");
            client
        }
        State::ImapLoggedIn => {
            let mut client = imap();
            imap_login(&mut client, &user);
            client
        }
        State::ImapIdle => {
            let mut client = imap();
            imap_login(&mut client, &user);
            client.send_raw(b"a2 SELECT INBOX\r\n");
            let selected = client.lines_until("a2 ");
            assert!(
                selected.last().unwrap().starts_with("a2 OK"),
                "{selected:?}"
            );
            let reply = client.cmd("a3 IDLE");
            assert!(reply.starts_with('+'), "IDLE: {reply}");
            client
        }
        State::ImapAppended => {
            let mut client = imap();
            imap_login(&mut client, WRITER);
            let message = format!(
                "Subject: {}\r\n\r\nacknowledged before the shutdown\r\n",
                acknowledged_subject(n)
            );
            let reply = client.cmd(&format!("a2 APPEND INBOX {{{}}}", message.len()));
            assert!(reply.starts_with('+'), "APPEND: {reply}");
            client.send_raw(format!("{message}\r\n").as_bytes());
            let replies = client.lines_until("a2 ");
            assert!(replies.last().unwrap().starts_with("a2 OK"), "{replies:?}");
            client
        }
        State::ImapMidAppend => {
            let mut client = imap();
            imap_login(&mut client, WRITER);
            let reply = client.cmd(&format!("a2 APPEND INBOX {{{CUT_LITERAL}}}"));
            assert!(reply.starts_with('+'), "APPEND: {reply}");
            let head = format!("Subject: {}\r\n\r\n", cut_subject(n));
            let mut part = head.into_bytes();
            part.resize(CUT_LITERAL / 2 - 1, b'x');
            client.send_raw(&part);
            client
        }
        State::Pop3BeforeLogin => {
            let mut client = pop3();
            client.greeting();
            client
        }
        State::Pop3Transaction => {
            let mut client = pop3();
            // POP3 locks a maildrop per user: each session is a user of its own.
            client.login(&user, &user);
            let stat = client.cmd("STAT");
            assert!(stat.starts_with("+OK"), "STAT: {stat}");
            client
        }
        // The answer is not read: it comes only after the failure delay.
        State::ImapFailedLogin => {
            let mut client = imap();
            let greeting = client.line().expect("an IMAP greeting");
            assert!(greeting.starts_with("* OK"), "{greeting}");
            client.send_raw(format!("a1 LOGIN {user} wrong\r\n").as_bytes());
            client
        }
        State::Pop3FailedLogin => {
            let mut client = pop3();
            client.greeting();
            let reply = client.cmd(&format!("USER {user}"));
            assert!(reply.starts_with("+OK"), "USER: {reply}");
            client.send_raw(b"PASS wrong\r\n");
            client
        }
    }
}

/// What the client received from the SIGTERM to the server's close, as lines.
fn goodbye(client: &mut RawClient) -> Vec<String> {
    String::from_utf8_lossy(&client.read_to_eof())
        .lines()
        .map(str::to_owned)
        .collect()
}

/// What a client in `state` must have been told before the close.
#[track_caller]
fn assert_told(n: usize, state: State, told: &[String]) {
    let last = told.last().map(String::as_str).unwrap_or_default();
    match state {
        // The server is reading a literal: the connection must close; a BYE is welcome but
        // the client, busy sending octets, is in no state to read it.
        State::ImapMidAppend => {}
        State::Pop3BeforeLogin | State::Pop3Transaction => {
            assert!(
                last.starts_with("-ERR") && last.contains("shutting down"),
                "#{n} {state:?} was told {told:?}"
            );
            assert_eq!(told.len(), 1, "#{n} {state:?} was told {told:?}");
        }
        _ => {
            assert!(
                last.starts_with("* BYE") && last.contains("shutting down"),
                "#{n} {state:?} was told {told:?}"
            );
        }
    }
}

/// After the restart: the writer's INBOX as a fresh IMAP session sees it.
fn check_mailbox(server: &ExampleServer, sessions: &[(State, RawClient)]) -> usize {
    let mut client = RawClient::connect(server.imap);
    imap_login(&mut client, WRITER);
    client.send_raw(b"a2 SELECT INBOX\r\n");
    let selected = client.lines_until("a2 ");
    assert!(
        selected.last().unwrap().starts_with("a2 OK"),
        "{selected:?}"
    );
    let exists: usize = selected
        .iter()
        .find_map(|l| l.strip_prefix("* ")?.strip_suffix(" EXISTS")?.parse().ok())
        .expect("an EXISTS line");
    let acknowledged: Vec<usize> = sessions
        .iter()
        .enumerate()
        .filter(|(_, (state, _))| *state == State::ImapAppended)
        .map(|(n, _)| n)
        .collect();
    let cut: Vec<usize> = sessions
        .iter()
        .enumerate()
        .filter(|(_, (state, _))| *state == State::ImapMidAppend)
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        exists,
        ALREADY_THERE + acknowledged.len(),
        "acknowledged APPENDs lost or cut ones kept: {selected:?}"
    );
    for (i, n) in acknowledged.iter().chain(&cut).enumerate() {
        let (subject, want) = if i < acknowledged.len() {
            (acknowledged_subject(*n), 1)
        } else {
            (cut_subject(*n), 0)
        };
        client.send_raw(format!("s{i} SEARCH SUBJECT \"{subject}\"\r\n").as_bytes());
        let found = client.lines_until(&format!("s{i} "));
        assert!(found.last().unwrap().contains(" OK"), "{found:?}");
        let hits = found
            .iter()
            .filter_map(|l| l.strip_prefix("* SEARCH"))
            .flat_map(str::split_whitespace)
            .count();
        assert_eq!(hits, want, "SEARCH SUBJECT {subject}: {found:?}");
    }
    assert!(client.cmd("a9 LOGOUT").starts_with("* BYE"));
    exists
}

/// Users `user0`.. for `total` sessions and the writer, each with their name as password, and
/// the writer's messages from before the load.
fn add_users(server: &ExampleServer, total: usize) {
    let mut users = std::fs::OpenOptions::new()
        .append(true)
        .open(server.passwd_file())
        .unwrap();
    writeln!(users, "{WRITER}:{{PLAIN}}{WRITER}").unwrap();
    for n in 0..total {
        writeln!(users, "user{n}:{{PLAIN}}user{n}").unwrap();
    }
    drop(users);
    server.log_barrier();
    for n in 0..ALREADY_THERE {
        server.deliver_to(
            WRITER,
            format!("Subject: there-before-{n}\r\n\r\nold\r\n").as_bytes(),
        );
    }
}

/// Sessions opened and brought to their states as `plan` says, in its order.
fn open_all(server: &ExampleServer, plan: &[(State, usize)]) -> Vec<(State, RawClient)> {
    let mut sessions: Vec<(State, RawClient)> = Vec::new();
    for &(state, count) in plan {
        for _ in 0..count {
            let n = sessions.len();
            sessions.push((state, open(server, n, state)));
        }
    }
    sessions
}

#[test]
fn sigterm_under_load_tells_every_session_and_loses_no_acknowledged_write() {
    let mut server = ExampleServer::start();
    let total: usize = PLAN.iter().map(|(_, count)| count).sum();
    add_users(&server, total);
    let mut sessions = open_all(&server, &PLAN);
    // Every session is in place (each answered its last command), none ended: the server
    // holds all of them at the SIGTERM.
    let before = server.scrape();
    let accepted = before.sum("mail_server_connections_accepted_total", &[]) as usize;
    assert_eq!(accepted, total, "{}", before.text);
    let active = before.sum("mail_connections_active", &[]) as usize;
    assert_eq!(active, total, "{}", before.text);
    let finished = before.sum("mail_server_connections_finished_total", &[]);
    assert_eq!(finished, 0.0, "{}", before.text);

    server.signal("TERM");
    let mut with_bye = 0;
    for (n, (state, client)) in sessions.iter_mut().enumerate() {
        let told = goodbye(client);
        assert_told(n, *state, &told);
        if told
            .iter()
            .any(|l| l.starts_with("* BYE") || l.starts_with("-ERR"))
        {
            with_bye += 1;
        }
    }
    let closes =
        close_lines_after_a_clean_exit(&mut server, total, GRACE + Duration::from_secs(20));
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for close in &closes {
        *reasons.entry(close["reason"].clone()).or_default() += 1;
    }
    // Each session ended for the shutdown, none by an error or a client's own close.
    assert_eq!(reasons.get("shutdown"), Some(&total), "{reasons:?}");

    server.relaunch();
    let exists = check_mailbox(&server, &sessions);
    // A cut APPEND leaves no file behind that could later be taken for a message.
    let tmp = server.maildir_tmp_files(WRITER);
    assert!(tmp.is_empty(), "left in the writer's tmp/: {tmp:?}");

    println!(
        "{total} sessions at SIGTERM: {:?}",
        PLAN.iter()
            .map(|(state, count)| format!("{state:?} {count}"))
            .collect::<Vec<_>>()
    );
    println!(
        "told goodbye: {with_bye}; close log lines: {}",
        closes.len()
    );
    println!("close reasons: {reasons:?}");
    println!(
        "stopped; {total} connections closed; writer's INBOX after restart: {exists} messages"
    );
}

/// The plan of the failure-delay test: sessions that leave when told (IDLE, mid-APPEND,
/// silent POP3), an acknowledged APPEND, and logins held in a failure delay far longer than
/// the grace period.
const HELD_LOGINS_PLAN: [(State, usize); 6] = [
    (State::ImapIdle, 3),
    (State::ImapAppended, 2),
    (State::ImapMidAppend, 2),
    (State::Pop3BeforeLogin, 3),
    (State::ImapFailedLogin, 3),
    (State::Pop3FailedLogin, 2),
];

/// A grace period the failure delay would outlast many times over: short, so that a server
/// that waited for the delays would be cut at the hard stop (which the test would see).
const SHORT_GRACE: &str = "[limits]\nshutdown_grace_seconds = 1\n";

/// A failure delay far past the grace period: the failed logins are still waiting for their
/// answer when shutdown begins.
const LONG_FAILURE_DELAY: &str = "failure_delay_ms = 60000\nfailure_delay_max_ms = 60000";

/// Shutdown cuts a failure delay short, as Dovecot disconnects logins waiting for their
/// answer: the held logins are told goodbye within the grace period (IMAP `* BYE`, POP3 one
/// `-ERR`), with no verdict on their password, beside the sessions that leave when told; no
/// session is left for the hard stop, every close hook runs once, and the acknowledged
/// APPENDs are kept.
#[test]
fn failed_logins_held_in_the_failure_delay_are_told_goodbye_at_shutdown_and_every_hook_runs_once() {
    let mut server = ExampleServer::start_with_auth(LONG_FAILURE_DELAY, SHORT_GRACE);
    let total: usize = HELD_LOGINS_PLAN.iter().map(|(_, count)| count).sum();
    let held = |state: State| matches!(state, State::ImapFailedLogin | State::Pop3FailedLogin);
    let held_count: usize = HELD_LOGINS_PLAN
        .iter()
        .filter(|(state, _)| held(*state))
        .map(|(_, count)| count)
        .sum();
    add_users(&server, total);
    let mut sessions = open_all(&server, &HELD_LOGINS_PLAN);
    // Every failed login is in its delay (counted as it starts), every session in place.
    let before = poll(SOON, || {
        let metrics = server.scrape();
        let delayed = metrics.sum("mail_auth_failures_delayed_total", &[]) as usize;
        (delayed == held_count).then_some(metrics)
    })
    .unwrap_or_else(|| panic!("the failed logins never reached the delay"));
    assert_eq!(
        before.sum("mail_server_connections_accepted_total", &[]) as usize,
        total,
        "{}",
        before.text
    );
    assert_eq!(
        before.sum("mail_server_connections_finished_total", &[]),
        0.0,
        "{}",
        before.text
    );

    server.signal("TERM");
    let mut held_told = Vec::new();
    for (n, (state, client)) in sessions.iter_mut().enumerate() {
        let told = goodbye(client);
        if held(*state) {
            // The goodbye is the login's only answer: no verdict before the delay.
            assert!(
                !told.iter().any(|l| l.contains("Authentication")),
                "#{n} {state:?} was answered: {told:?}"
            );
            held_told.push(told.clone());
        }
        let as_told = match *state {
            State::ImapFailedLogin => State::ImapBeforeLogin,
            State::Pop3FailedLogin => State::Pop3BeforeLogin,
            other => other,
        };
        assert_told(n, as_told, &told);
    }
    // Waiting out the delays would take a minute.
    let closes = close_lines_after_a_clean_exit(&mut server, total, Duration::from_secs(20));
    let mut per_session: BTreeMap<String, usize> = BTreeMap::new();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for close in &closes {
        *per_session.entry(close["session_id"].clone()).or_default() += 1;
        *reasons.entry(close["reason"].clone()).or_default() += 1;
    }
    assert_eq!(per_session.len(), total, "{per_session:?}");
    assert_eq!(reasons.get("shutdown"), Some(&total), "{reasons:?}");

    // What was acknowledged is kept; nothing of the cut APPENDs is.
    server.relaunch();
    let exists = check_mailbox(&server, &sessions);
    let tmp = server.maildir_tmp_files(WRITER);
    assert!(tmp.is_empty(), "left in the writer's tmp/: {tmp:?}");

    println!("{total} sessions at SIGTERM, {held_count} held in the failure delay");
    println!("the held logins were told: {held_told:?}");
    println!(
        "close reasons: {reasons:?}; stopped; {total} connections closed; writer's INBOX after restart: {exists}"
    );
}

/// Sessions stuck where the end signal cannot reach them, counted as each gets there.
type Stuck = std::sync::Arc<std::sync::atomic::AtomicUsize>;

fn count(stuck: &Stuck) {
    stuck.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

/// An authentication backend that never answers (an LDAP or SQL server that hangs): a login
/// waiting on it cannot hear the end signal, so only the hard stop ends its session.
fn hung_backend(stuck: Stuck) -> impl tower_mail::auth::Authenticator {
    tower::service_fn(move |_: tower_mail::auth::Credentials| {
        count(&stuck);
        std::future::pending::<Result<tower_mail::auth::User, tower_mail::auth::AuthError>>()
    })
}

/// A session that fills its socket until the kernel takes no more (its client never reads),
/// then waits deaf: at the hard stop its goodbye cannot be written, and must not hold
/// shutdown.
async fn fill_then_hang(
    stuck: Stuck,
    conn: tower_mail::Connection,
) -> Result<tower_mail::CloseReport, std::convert::Infallible> {
    use futures_util::FutureExt;
    let parts = conn.into_parts().expect("the transport");
    let mut channel = tower_mail::wire::Channel::new(
        parts.transport,
        parts.session,
        1024,
        Duration::from_secs(3600),
    );
    // `now_or_never`: a write that would wait means the client's window and the server's send
    // buffer are full; the kernel says so, no clock does.
    loop {
        channel.out().extend_from_slice(&[b'x'; 64 * 1024]);
        if channel.flush().now_or_never().is_none() {
            break;
        }
    }
    count(&stuck);
    std::future::pending().await
}

/// Read what the server sends until it closes.
async fn read_to_eof(client: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut all = Vec::new();
    client.read_to_end(&mut all).await.expect("read to EOF");
    String::from_utf8_lossy(&all).into_owned()
}

/// Send `line` and read until the server has answered with a line that starts with `prefix`.
async fn send_after(client: &mut tokio::net::TcpStream, prefix: &str, line: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen)
        .lines()
        .any(|l| l.starts_with(prefix))
    {
        let mut buf = [0; 1024];
        let n = client.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before {prefix:?}: {seen:?}");
        seen.extend_from_slice(&buf[..n]);
    }
    client.write_all(line.as_bytes()).await.unwrap();
}

/// The hard stop itself, in process: logins stuck on a hung authentication backend cannot hear
/// the end signal, so they are still there when the grace period ends and are cut. Each client
/// is told the goodbye before EOF (IMAP `* BYE`, POP3 one `-ERR`), and no login answer. A
/// client that did not read, whose deaf session filled its socket and was cut in the middle of
/// a reply, is not sent a goodbye spliced into that reply: reading at last, it gets the reply's
/// first part and EOF.
#[tokio::test]
async fn sessions_cut_at_the_hard_stop_are_told_goodbye_and_a_non_reading_client_holds_nothing() {
    use tokio::net::{TcpListener, TcpStream};
    use tower_mail::Protocol;
    use tower_mail::imap::{ImapConfig, ImapService};
    use tower_mail::pop3::{Pop3Config, Pop3Service};
    use tower_mail::server::{Endpoint, Server, ServerConfig, TlsMode};
    use tower_mail::store::MemoryStore;

    let server = Server::new(ServerConfig::default());
    let mut imap_config = ImapConfig::default();
    imap_config.allow_plaintext_login = true;
    let mut pop3_config = Pop3Config::default();
    pop3_config.allow_plaintext_login = true;
    let stuck = Stuck::default();
    let imap = ImapService::new(hung_backend(stuck.clone()), MemoryStore::new(), imap_config);
    let pop3 = Pop3Service::new(hung_backend(stuck.clone()), MemoryStore::new(), pop3_config);
    let listen = || async { TcpListener::bind("127.0.0.1:0").await.unwrap() };
    let (imap_port, pop3_port, filler_port) = (listen().await, listen().await, listen().await);
    let (imap_addr, pop3_addr, filler_addr) = (
        imap_port.local_addr().unwrap(),
        pop3_port.local_addr().unwrap(),
        filler_port.local_addr().unwrap(),
    );
    server.serve(
        imap_port,
        Endpoint::new(Protocol::Imap, TlsMode::None),
        imap,
    );
    server.serve(
        pop3_port,
        Endpoint::new(Protocol::Pop3, TlsMode::None),
        pop3,
    );
    let filler_stuck = stuck.clone();
    let filler = tower::service_fn(move |conn| fill_then_hang(filler_stuck.clone(), conn));
    server.serve(
        filler_port,
        Endpoint::new(Protocol::Imap, TlsMode::None),
        filler,
    );

    let mut imap_logins = Vec::new();
    for n in 0..3 {
        let mut client = TcpStream::connect(imap_addr).await.unwrap();
        send_after(&mut client, "* OK", &format!("a1 LOGIN user{n} secret\r\n")).await;
        imap_logins.push(client);
    }
    let mut pop3_logins = Vec::new();
    for n in 0..2 {
        let mut client = TcpStream::connect(pop3_addr).await.unwrap();
        send_after(&mut client, "+OK", &format!("USER user{n}\r\n")).await;
        send_after(&mut client, "+OK", "PASS secret\r\n").await;
        pop3_logins.push(client);
    }
    // Never read from, kept open to the end.
    let not_reading = TcpStream::connect(filler_addr).await.unwrap();
    let total = 6;
    // Every session is stuck: the logins in the backend's hands, the filler's socket full.
    let all_stuck = async {
        while stuck.load(std::sync::atomic::Ordering::SeqCst) < total as usize {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(SOON, all_stuck)
        .await
        .expect("every session stuck");
    assert_eq!(server.connections_finished(), 0);

    // A grace period the stuck sessions cannot meet, whatever its length.
    let grace = Duration::from_millis(200);
    let shutdown = tokio::time::timeout(SOON, server.shutdown(grace));
    let told = async {
        let mut told = Vec::new();
        for client in imap_logins.iter_mut().chain(pop3_logins.iter_mut()) {
            told.push(read_to_eof(client).await);
        }
        told
    };
    // The client that did not read drains its socket now, so a goodbye written at the hard
    // stop would find room.
    let mut not_reading = not_reading;
    let (stopped, told, cut_reply) = tokio::join!(shutdown, told, read_to_eof(&mut not_reading));
    stopped.expect("shutdown ends though a client does not read");
    assert!(!cut_reply.is_empty());
    assert!(
        cut_reply.bytes().all(|b| b == b'x'),
        "a goodbye after a cut reply: {:?}",
        &cut_reply[cut_reply.len().saturating_sub(80)..]
    );
    for (n, told) in told.iter().enumerate() {
        let lines: Vec<&str> = told.lines().collect();
        if n < 3 {
            assert_eq!(lines, ["* BYE Server shutting down"], "IMAP #{n}");
        } else {
            assert_eq!(lines, ["-ERR Server shutting down"], "POP3 #{n}");
        }
    }
    // Every connection's task ended, the cut ones and the one that does not read included.
    assert_eq!(server.connections_finished(), total);
    assert_eq!(server.connections(), 0);
}

/// After SIGTERM: the server exits 0 within `bound` (a liveness bound, not a timing claim),
/// with no session left for the hard stop, says it closed `total` connections, and wrote one
/// close line per connection: those lines.
#[track_caller]
fn close_lines_after_a_clean_exit(
    server: &mut ExampleServer,
    total: usize,
    bound: Duration,
) -> Vec<LogEvent> {
    let status = server
        .wait_exit(bound)
        .expect("the server exits after SIGTERM");
    assert!(status.success(), "exit status {status}");
    let stdout = server.stdout();
    assert!(
        !stdout
            .iter()
            .any(|l| l.contains("shutdown grace period over")),
        "sessions were left for the hard stop:\n{}",
        stdout.join("\n")
    );
    let stopped = format!("stopped; {total} connections closed");
    assert!(
        stdout.contains(&stopped),
        "expected {stopped:?}:\n{}",
        stdout.join("\n")
    );
    let events = parse_json_lines(&server.json_lines());
    let closes: Vec<LogEvent> = events_of(&events, "close").into_iter().cloned().collect();
    assert_eq!(closes.len(), total, "{closes:#?}");
    closes
}

/// A session waiting for a lock another program holds on its mailbox (Dovecot's dot-lock on
/// the UID list, fresh, so two minutes from stale) does not hold the server past its grace
/// period: at the hard stop the wait gives up, its client is told the goodbye, the server exits
/// 0, and neither the other program's lock nor a draft of ours is left different from before.
#[test]
fn sigterm_while_a_login_waits_for_a_mailbox_lock_exits_after_the_grace_period() {
    let mut server = ExampleServer::start_with("[limits]\nshutdown_grace_seconds = 1\n");
    server.deliver(b"Subject: first\r\n\r\nalready known\r\n");
    let inbox = server.maildir().join(support_example::USER);
    // An MDA's delivery: the next login must give it a UID, under the UID list's lock.
    std::fs::write(
        inbox.join("new").join("1700000000.M1P1.mda"),
        b"Subject: second\r\n\r\nnew\r\n",
    )
    .unwrap();
    let lock = inbox.join("dovecot-uidlist.lock");
    std::fs::write(&lock, "held by another program").unwrap();
    let drafts = || {
        std::fs::read_dir(&inbox)
            .unwrap()
            .filter_map(|entry| entry.ok())
            .filter(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                name.starts_with("dovecot-uidlist.lock.") && name.ends_with(".tmp")
            })
            .count()
    };

    let mut client = RawClient::connect(server.pop3);
    client.greeting();
    assert!(client.cmd("USER demo").starts_with("+OK"));
    client.send_raw(b"PASS demo\r\n");
    // The login waits for the lock: its draft of our lock is there while it does.
    poll(SOON, || (drafts() == 1).then_some(())).expect("the login waits for the lock");

    server.signal("TERM");
    let status = server
        .wait_exit(SOON)
        .expect("the server exits though a session waits for a lock");
    assert!(status.success(), "exit status {status}");
    assert_eq!(
        client.line().as_deref(),
        Some("-ERR Server shutting down"),
        "the cut login's client is told why"
    );
    assert_eq!(client.line(), None);
    assert_eq!(
        std::fs::read_to_string(&lock).unwrap(),
        "held by another program"
    );
    assert_eq!(drafts(), 0, "the wait cleaned up after itself");
}
