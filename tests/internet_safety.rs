//! End-to-end tests of what keeps the example server safe on the open internet (issue 9): what
//! a client may do before it logs in, the policies around every password check, and what the
//! server does with connections that never reach a session. Each test runs the real server
//! binary with a generated configuration and talks to it over loopback sockets, as an attacker
//! or a user would.
//!
//! Loopback is all of 127.0.0.0/8, so clients bind source addresses of their own (127.0.0.7
//! is "the guesser", 127.0.0.8 "a bystander", ...) and the server tells them apart as it
//! would tell remote hosts apart. A non-loopback client is played through a PROXY header from
//! a trusted 127.0.0.1.
//!
//! Timing: deadlines and delays are configured small, and the tests wait for events (a line,
//! a metric, a log line) rather than sleeping. Delays are checked from below only (a failure
//! answered no sooner than its delay), or by the order of two answers; the one bound from
//! above is the tarpit cap's "answered at once", held well under the 5 s it would otherwise
//! take.
//!
//! ```text
//! cargo build --example server && cargo test -p tower-mail --test internet_safety
//! ```
//!
//! Needs `python3` (the harness parses JSON logs with it) and `curl` (metrics scrapes), as
//! tests/example_server.rs does; every client here is a raw socket.

mod support_example;
mod support_shared;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support_example::{
    ExampleServer, LogEvent, PASSWORD, RawClient, SOON, USER, events_of, parse_json_lines, poll,
    run_server_expecting_exit, stderr, toml_str,
};

const IMAP: (&str, &str) = ("protocol", "imap");
const POP3: (&str, &str) = ("protocol", "pop3");

/// The loopback address `127.0.0.<last>`.
fn lo(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// Connect to an IMAP listener from `source` and read a positive greeting.
fn imap_from(source: IpAddr, addr: SocketAddr) -> RawClient {
    let mut client = RawClient::connect_from(source, addr);
    imap_greeting(&mut client);
    client
}

fn imap(addr: SocketAddr) -> RawClient {
    imap_from(lo(1), addr)
}

#[track_caller]
fn imap_greeting(client: &mut RawClient) -> String {
    let greeting = client.line().expect("no IMAP greeting");
    assert!(greeting.starts_with("* OK"), "greeting: {greeting}");
    greeting
}

/// Send `<tag> <command>` and read up to the tagged reply: (untagged lines, tagged line).
#[track_caller]
fn tagged(client: &mut RawClient, tag: &str, command: &str) -> (Vec<String>, String) {
    client.send_raw(format!("{tag} {command}\r\n").as_bytes());
    read_tagged(client, tag)
}

#[track_caller]
fn read_tagged(client: &mut RawClient, tag: &str) -> (Vec<String>, String) {
    let prefix = format!("{tag} ");
    let mut untagged = Vec::new();
    loop {
        let line = client
            .line()
            .unwrap_or_else(|| panic!("closed before {tag}'s reply; got {untagged:?}"));
        if line.starts_with(&prefix) {
            return (untagged, line);
        }
        untagged.push(line);
    }
}

/// IMAP LOGIN as demo, which must succeed.
#[track_caller]
fn imap_login(client: &mut RawClient, tag: &str) {
    let (_, reply) = tagged(client, tag, &format!("LOGIN {USER} {PASSWORD}"));
    assert!(reply.starts_with(&format!("{tag} OK")), "LOGIN: {reply}");
}

/// The capabilities a CAPABILITY command lists.
fn capabilities(client: &mut RawClient, tag: &str) -> Vec<String> {
    let (untagged, reply) = tagged(client, tag, "CAPABILITY");
    assert!(
        reply.starts_with(&format!("{tag} OK")),
        "CAPABILITY: {reply}"
    );
    let line = untagged
        .iter()
        .find(|l| l.starts_with("* CAPABILITY "))
        .unwrap_or_else(|| panic!("no capability line in {untagged:?}"));
    line["* CAPABILITY ".len()..]
        .split(' ')
        .map(str::to_owned)
        .collect()
}

/// POP3 CAPA: the capability lines between `+OK` and `.`.
fn capa(client: &mut RawClient) -> Vec<String> {
    let first = client.cmd("CAPA");
    assert!(first.starts_with("+OK"), "CAPA: {first}");
    let mut lines = Vec::new();
    loop {
        let line = client.line().expect("CAPA cut short");
        if line == "." {
            return lines;
        }
        lines.push(line);
    }
}

/// Connect from `source` and expect exactly `line` and then the server's close, in place of
/// the greeting.
#[track_caller]
fn refused(addr: SocketAddr, source: IpAddr, line: &str) {
    let mut client = RawClient::connect_from(source, addr);
    assert_eq!(
        client.line().as_deref(),
        Some(line),
        "what a client from {source} was told"
    );
    let rest = client.read_to_eof();
    assert!(
        rest.is_empty(),
        "more after the refusal: {:?}",
        String::from_utf8_lossy(&rest)
    );
}

/// Wait for JSON log lines with `"event": kind` that `pred` accepts, and return them.
#[track_caller]
fn log_events(
    server: &ExampleServer,
    kind: &str,
    pred: impl Fn(&LogEvent) -> bool,
) -> Vec<LogEvent> {
    poll(SOON, || {
        let events: Vec<LogEvent> = events_of(&parse_json_lines(&server.json_lines()), kind)
            .into_iter()
            .filter(|e| pred(e))
            .cloned()
            .collect();
        (!events.is_empty()).then_some(events)
    })
    .unwrap_or_else(|| panic!("no {kind} log line:\n{}", server.stdout().join("\n")))
}

// ---------------------------------------------------------------------------------------------
// Bounds before login
// ---------------------------------------------------------------------------------------------

/// RFC 3501 APPEND literal for `message`.
fn append_command(tag: &str, message: &[u8]) -> String {
    format!("{tag} APPEND INBOX {{{}}}", message.len())
}

const MESSAGE: &[u8] = b"From: a@example.com\r\nSubject: hi\r\n\r\nHello\r\n";

#[test]
fn pre_login_append_is_refused_before_the_continuation_and_the_connection_stays_usable() {
    let server = ExampleServer::start();
    let mut client = imap(server.imap);
    // 50 MiB announced before login: answered at once, with no `+` inviting the bytes.
    client.send_raw(b"a APPEND INBOX {52428800}\r\n");
    let reply = client.line().expect("closed instead of answering");
    assert!(
        reply.starts_with("a BAD") || reply.starts_with("a NO"),
        "a pre-login APPEND was answered {reply:?}, not refused by tag"
    );
    // The client did not send the literal, so the connection is still in step.
    let (_, noop) = tagged(&mut client, "b", "NOOP");
    assert!(noop.starts_with("b OK"), "NOOP after the refusal: {noop}");
    // A password in a literal within the login-size cap still works.
    client.send_raw(format!("c LOGIN {USER} {{{}}}\r\n", PASSWORD.len()).as_bytes());
    let go_on = client
        .line()
        .expect("no continuation for a small LOGIN literal");
    assert!(go_on.starts_with('+'), "LOGIN literal: {go_on}");
    client.send_raw(format!("{PASSWORD}\r\n").as_bytes());
    let (_, login) = read_tagged(&mut client, "c");
    assert!(login.starts_with("c OK"), "LOGIN with a literal: {login}");
    // After login APPEND takes its literal as before.
    client.send_raw(format!("{}\r\n", append_command("d", MESSAGE)).as_bytes());
    let go_on = client.line().expect("no continuation after login");
    assert!(go_on.starts_with('+'), "APPEND after login: {go_on}");
    client.send_raw(MESSAGE);
    client.send_raw(b"\r\n");
    let (_, appended) = read_tagged(&mut client, "d");
    assert!(appended.starts_with("d OK"), "APPEND: {appended}");
    assert_eq!(server.inbox_len(USER), 1);
}

#[test]
fn pre_login_non_synchronizing_literal_over_the_cap_ends_the_connection() {
    let server = ExampleServer::start();
    let mut client = imap(server.imap);
    // `{5000+}`: the client sends the bytes without waiting (RFC 7888), so the server cannot
    // refuse them and stay in step; 5000 is over the 4096-byte login-size cap.
    client.send_raw(b"a APPEND INBOX {5000+}\r\n");
    let reply = client.line().expect("closed without a word");
    assert!(reply.starts_with("* BYE"), "told {reply:?}");
    assert!(client.read_to_eof().is_empty(), "more after * BYE");
    // The same cap from the configuration: a smaller one also refuses a LOGIN literal over it.
    let server = ExampleServer::start_with("[limits]\nmax_unauthenticated_literal_bytes = 16\n");
    let mut client = imap(server.imap);
    client.send_raw(format!("a LOGIN {USER} {{100+}}\r\n").as_bytes());
    let reply = client.line().expect("closed without a word");
    assert!(reply.starts_with("* BYE"), "told {reply:?}");
    assert!(client.read_to_eof().is_empty(), "more after * BYE");
}

/// Send `bytes` without a line end; the server may close while they are still going out.
fn flood(client: &mut RawClient, bytes: &[u8]) {
    for chunk in bytes.chunks(8 * 1024) {
        if client.try_send_raw(chunk).is_err() {
            return;
        }
    }
}

#[test]
fn overlong_line_before_login_is_answered_at_once_and_closed() {
    // The idle deadlines before login are 60 s, and a reply must come within SOON (10 s):
    // the server answers as the line passes its cap, not when the client goes quiet.
    let server = ExampleServer::start();

    let mut client = imap(server.imap);
    flood(&mut client, &vec![b'A'; 100 * 1024]);
    let reply = client.line().expect("no answer to a 100 KB line");
    assert!(reply.starts_with("* BYE"), "IMAP told {reply:?}");
    assert!(client.read_to_eof().is_empty(), "more after * BYE");

    let mut client = RawClient::connect(server.pop3);
    client.greeting();
    flood(&mut client, &vec![b'A'; 10 * 1024]);
    let reply = client.line().expect("no answer to a 10 KB line");
    assert!(reply.starts_with("-ERR"), "POP3 told {reply:?}");
    assert!(client.read_to_eof().is_empty(), "more after -ERR");
}

#[test]
fn overlong_line_after_login_is_refused_and_the_session_goes_on() {
    let server = ExampleServer::start();
    let mut client = imap(server.imap);
    imap_login(&mut client, "a");
    let mut long = b"b NOOP ".to_vec();
    long.extend(vec![b'A'; 100 * 1024]);
    client.send_raw(&long);
    // Answered before the line ends...
    let reply = client.line().expect("closed after a long line");
    assert!(reply.contains("BAD"), "a long line after login: {reply:?}");
    // ... and its rest, when it comes, is skipped: the next command is understood.
    client.send_raw(b"\r\n");
    let (_, noop) = tagged(&mut client, "c", "NOOP");
    assert!(noop.starts_with("c OK"), "NOOP after a long line: {noop}");
}

#[test]
fn pop3_cuts_a_silent_client_before_login_but_not_an_idle_logged_in_one() {
    let server = ExampleServer::start_with("[limits]\npop3_login_seconds = 1\n");
    let mut logged_in = RawClient::connect(server.pop3);
    logged_in.login(USER, PASSWORD);
    let idle_since = Instant::now();
    // Two silent clients in a row, each cut at its deadline: meanwhile the logged-in client
    // stays silent for twice the pre-login deadline, with no sleep.
    for _ in 0..2 {
        let mut silent = RawClient::connect(server.pop3);
        silent.greeting();
        let greeted = Instant::now();
        let told = silent.line().expect("cut without a word");
        assert!(
            told.starts_with("-ERR"),
            "a silent client was told {told:?}"
        );
        assert!(silent.read_to_eof().is_empty(), "more after -ERR");
        let waited = greeted.elapsed();
        assert!(
            waited >= Duration::from_millis(900),
            "cut after {waited:?} with pop3_login_seconds = 1"
        );
    }
    let idle = idle_since.elapsed();
    assert!(idle >= Duration::from_millis(1500), "idle only {idle:?}");
    let stat = logged_in.cmd("STAT");
    assert!(
        stat.starts_with("+OK"),
        "a logged-in client idle for {idle:?} was cut: {stat}"
    );
}

/// Slowloris after the greeting: clients that keep their sessions busy without ever logging in
/// (IMAP NOOP after NOOP, POP3 CAPA after CAPA, each well within the idle timeout) or that
/// leave a line unfinished are told `Login timeout` at the login deadline and closed, while
/// honest clients log in and work all along; afterwards no session is left.
#[test]
fn busy_clients_that_never_log_in_are_cut_at_the_login_deadline_while_honest_ones_work() {
    let server = ExampleServer::start_with("[limits]\nlogin_deadline_seconds = 2\n");
    let cut = AtomicUsize::new(0);
    let honest_rounds = AtomicUsize::new(0);
    let slow_done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let mut slow = Vec::new();
        // Five addresses, four slow clients each: under the per-address connection cap.
        for n in 0..20u8 {
            let (server, cut) = (&server, &cut);
            slow.push(scope.spawn(move || {
                let source = lo(10 + n / 4);
                // Far past the 2 s deadline: a client still served then was never cut.
                let give_up = Instant::now() + Duration::from_secs(30);
                let told = match n % 4 {
                    // IMAP: NOOP after NOOP; each is answered, none is a login.
                    0 | 1 => {
                        let mut client = imap_from(source, server.imap);
                        let mut round = 0;
                        loop {
                            assert!(Instant::now() < give_up, "still served after {round} NOOPs");
                            round += 1;
                            client.send_raw(format!("n{round} NOOP\r\n").as_bytes());
                            let line = client.line().expect("answered or told why not");
                            if line.starts_with("* BYE") {
                                break line;
                            }
                            assert!(line.starts_with(&format!("n{round} OK")), "{line}");
                        }
                    }
                    // POP3: CAPA after CAPA.
                    2 => {
                        let mut client = RawClient::connect_from(source, server.pop3);
                        client.greeting();
                        loop {
                            assert!(Instant::now() < give_up, "still served CAPA");
                            client.send_raw(b"CAPA\r\n");
                            let first = client.line().expect("answered or told why not");
                            if first.starts_with("-ERR") {
                                break first;
                            }
                            while client.line().expect("the CAPA listing") != "." {}
                        }
                    }
                    // A command begun and never finished: silent, but not past the idle
                    // timeout (60 s) before the login deadline.
                    _ => {
                        let mut client = imap_from(source, server.imap);
                        client.send_raw(b"a LOGIN demo ");
                        client.line().expect("told why")
                    }
                };
                assert!(
                    told.contains("Login timeout"),
                    "a slow client was told {told:?}"
                );
                cut.fetch_add(1, Ordering::SeqCst);
            }));
        }
        // Meanwhile honest clients, from their own address, log in and work, again and again
        // until every slow client is gone.
        let honest = scope.spawn(|| {
            while !slow_done.load(Ordering::SeqCst) {
                let mut client = imap_from(lo(2), server.imap);
                imap_login(&mut client, "l");
                let (_, selected) = tagged(&mut client, "s", "SELECT INBOX");
                assert!(selected.starts_with("s OK"), "{selected}");
                let (_, bye) = tagged(&mut client, "z", "LOGOUT");
                assert!(bye.starts_with("z OK"), "{bye}");
                let mut pop3 = RawClient::connect_from(lo(3), server.pop3);
                pop3.login(USER, PASSWORD);
                assert!(pop3.cmd("STAT").starts_with("+OK"));
                assert!(pop3.cmd("QUIT").starts_with("+OK"));
                honest_rounds.fetch_add(1, Ordering::SeqCst);
            }
        });
        let slow: Vec<_> = slow.into_iter().map(|client| client.join()).collect();
        // Stop the honest client before reporting a slow client's failure, or the scope
        // would wait for it forever.
        slow_done.store(true, Ordering::SeqCst);
        honest.join().expect("the honest client's checks");
        for result in slow {
            result.expect("a slow client's checks");
        }
    });
    println!(
        "slow clients cut at the login deadline: {} of 20; honest rounds meanwhile (IMAP login, \
         SELECT, LOGOUT; POP3 login, STAT, QUIT): {}",
        cut.load(Ordering::SeqCst),
        honest_rounds.load(Ordering::SeqCst)
    );
    assert_eq!(cut.load(Ordering::SeqCst), 20);
    assert!(honest_rounds.load(Ordering::SeqCst) >= 1);
    // Every slow session ended for that reason, and none is left open.
    let metrics = server.metrics_when(|m| {
        m.sum(
            "mail_connections_closed_total",
            &[("reason", "login_timeout")],
        ) >= 20.0
            && m.sum("mail_connections_active", &[]) == 0.0
    });
    assert_eq!(
        metrics.sum(
            "mail_connections_closed_total",
            &[("reason", "login_timeout")]
        ),
        20.0
    );
}

/// One address floods the server with connections, far past its per-address cap, while
/// another address's logged-in session keeps working and new honest clients still get in:
/// the flood is refused at its own cap and costs the others nothing.
#[test]
fn one_address_flooding_does_not_stop_another_addresss_sessions() {
    const ROUNDS: usize = 5;
    let server = ExampleServer::start();
    // The flood starts once the honest session is in, and lasts until it has done its rounds.
    let start = std::sync::Barrier::new(5);
    let honest_done = AtomicBool::new(false);
    let (greeted, refused) = (AtomicUsize::new(0), AtomicUsize::new(0));
    std::thread::scope(|scope| {
        let flood: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    // Each flooder holds up to five connections at once: twenty from one
                    // address against its cap of ten.
                    let mut held = std::collections::VecDeque::new();
                    let mut attempts = 0;
                    while !honest_done.load(Ordering::SeqCst) {
                        attempts += 1;
                        assert!(attempts < 20_000, "the honest rounds never ended");
                        let mut client = RawClient::connect_from(lo(40), server.imap);
                        let first = client.line().expect("greeted or refused");
                        if first.starts_with("* OK") {
                            greeted.fetch_add(1, Ordering::SeqCst);
                            held.push_back(client);
                            if held.len() > 5 {
                                held.pop_front();
                            }
                        } else {
                            assert!(first.starts_with("* BYE"), "{first}");
                            refused.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        let honest = scope.spawn(|| {
            let mut session = imap_from(lo(41), server.imap);
            imap_login(&mut session, "l");
            start.wait();
            for round in 1..=ROUNDS {
                for command in ["NOOP", "SELECT INBOX", "STATUS INBOX (MESSAGES)"] {
                    let (_, done) = tagged(&mut session, &format!("h{round}"), command);
                    assert!(
                        done.starts_with(&format!("h{round} OK")),
                        "{command}: {done}"
                    );
                }
                // A new client from a third address gets in, greeted and served.
                let mut newcomer = imap_from(lo(42), server.imap);
                imap_login(&mut newcomer, "n");
                let (_, bye) = tagged(&mut newcomer, "z", "LOGOUT");
                assert!(bye.starts_with("z OK"), "{bye}");
            }
            honest_done.store(true, Ordering::SeqCst);
        });
        let honest = honest.join();
        // Stop the flood before reporting an honest client's failure.
        honest_done.store(true, Ordering::SeqCst);
        for flooder in flood {
            flooder.join().expect("a flooder's checks");
        }
        honest.expect("the honest clients' checks");
    });
    let (greeted, refused) = (greeted.into_inner(), refused.into_inner());
    println!(
        "flood: {greeted} greeted, {refused} refused during {ROUNDS} honest rounds \
         ({} commands and {ROUNDS} new sessions, all answered OK)",
        3 * ROUNDS
    );
    assert!(refused > 0, "the flood was never held to its cap");
    let metrics = server.metrics_when(|m| m.sum("mail_connections_active", &[]) == 0.0);
    assert_eq!(
        metrics.sum("mail_rejections_total", &[("layer", "rate_limit")]),
        refused as f64,
        "{}",
        metrics.text
    );
}

// ---------------------------------------------------------------------------------------------
// Plaintext logins without TLS
// ---------------------------------------------------------------------------------------------

#[test]
fn by_default_loopback_clients_may_log_in_without_tls() {
    let server = ExampleServer::start();
    let mut client = imap(server.imap);
    let caps = capabilities(&mut client, "a");
    assert!(!caps.iter().any(|c| c == "LOGINDISABLED"), "{caps:?}");
    assert!(caps.iter().any(|c| c == "AUTH=PLAIN"), "{caps:?}");
    imap_login(&mut client, "b");

    let mut client = RawClient::connect(server.pop3);
    client.greeting();
    assert!(capa(&mut client).iter().any(|c| c == "USER"));
    let reply = client.cmd(&format!("USER {USER}"));
    assert!(reply.starts_with("+OK"), "USER: {reply}");
    let reply = client.cmd(&format!("PASS {PASSWORD}"));
    assert!(reply.starts_with("+OK"), "PASS: {reply}");
}

/// What a client that may not send a password in the clear sees, on IMAP and POP3 plain ports
/// reached with `connect`.
fn assert_plaintext_refused(server: &ExampleServer, connect: impl Fn(SocketAddr) -> RawClient) {
    let mut client = connect(server.imap);
    imap_greeting(&mut client);
    let caps = capabilities(&mut client, "a");
    assert!(caps.iter().any(|c| c == "LOGINDISABLED"), "{caps:?}");
    assert!(caps.iter().any(|c| c == "STARTTLS"), "{caps:?}");
    assert!(!caps.iter().any(|c| c == "AUTH=PLAIN"), "{caps:?}");
    let (_, reply) = tagged(&mut client, "b", &format!("LOGIN {USER} {PASSWORD}"));
    assert!(
        reply.starts_with("b NO [PRIVACYREQUIRED]"),
        "LOGIN: {reply}"
    );
    // AUTHENTICATE PLAIN with an initial response: \0demo\0demo.
    let (_, reply) = tagged(&mut client, "c", "AUTHENTICATE PLAIN AGRlbW8AZGVtbw==");
    assert!(
        reply.starts_with("c NO [PRIVACYREQUIRED]"),
        "AUTHENTICATE: {reply}"
    );

    let mut client = connect(server.pop3);
    client.greeting();
    let caps = capa(&mut client);
    assert!(!caps.iter().any(|c| c == "USER"), "{caps:?}");
    assert!(caps.iter().any(|c| c == "STLS"), "{caps:?}");
    let reply = client.cmd(&format!("USER {USER}"));
    assert!(reply.starts_with("-ERR [AUTH]"), "USER: {reply}");
}

#[test]
fn plaintext_without_tls_false_refuses_even_loopback_clients() {
    let server = ExampleServer::start_with_auth("plaintext_without_tls = false", "");
    assert_plaintext_refused(&server, RawClient::connect);
}

/// A client behind a trusted proxy: the connection comes from 127.0.0.1 with a PROXY v1 header
/// naming `client` as the real peer.
fn proxied(client: Ipv4Addr) -> impl Fn(SocketAddr) -> RawClient {
    move |addr: SocketAddr| {
        let mut raw = RawClient::connect(addr);
        raw.send_raw(format!("PROXY TCP4 {client} 127.0.0.1 40001 {}\r\n", addr.port()).as_bytes());
        raw
    }
}

#[test]
fn loopback_mode_refuses_plaintext_from_a_remote_client_behind_a_proxy() {
    // The default, "loopback", decides on the address after PROXY: the real client's.
    let server = ExampleServer::start_with("[proxy]\ntrusted = [\"127.0.0.1/32\"]\n");
    assert_plaintext_refused(&server, proxied(Ipv4Addr::new(203, 0, 113, 5)));
    // The same proxy speaking for a loopback client: allowed.
    let mut client = proxied(Ipv4Addr::new(127, 0, 0, 9))(server.imap);
    imap_greeting(&mut client);
    imap_login(&mut client, "a");
}

/// Run the server with `config` (whole file) and expect it to exit with an error; return its
/// stderr.
fn start_fails(config: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.toml");
    let passwd = toml_str(&dir.path().join("users.passwd"));
    let maildir = toml_str(&dir.path().join("maildir"));
    let base = format!(
        "[pop3]\nlisten = \"127.0.0.1:0\"\ntls_listen = \"\"\n\
         [imap]\nlisten = \"127.0.0.1:0\"\ntls_listen = \"\"\n\
         [metrics]\nlisten = \"\"\n\
         [store]\nmaildir = {maildir}\n"
    );
    let config = config.replace("PASSWD", &passwd);
    std::fs::write(&path, format!("{base}{config}")).unwrap();
    let out = run_server_expecting_exit(dir.path(), &["--config".as_ref(), path.as_os_str()]);
    assert!(
        !out.status.success(),
        "the server started: {}",
        stderr(&out)
    );
    stderr(&out)
}

#[test]
fn settings_that_cannot_work_stop_the_server_with_a_clear_error() {
    let message =
        start_fails("[auth]\npasswd_file = PASSWD\nplaintext_without_tls = \"sometimes\"\n");
    assert!(
        message.contains("plaintext_without_tls") && message.contains("loopback"),
        "stderr: {message}"
    );
    let message = start_fails("[auth]\npasswd_file = PASSWD\nredis = \"rediss-nonsense\"\n");
    assert!(message.contains("auth.redis"), "stderr: {message}");
    let message = start_fails(
        "[auth]\npasswd_file = PASSWD\n[layers.auto_ban]\nexempt = [\"not-a-network\"]\n",
    );
    assert!(
        message.contains("layers.auto_ban.exempt"),
        "stderr: {message}"
    );
}

// ---------------------------------------------------------------------------------------------
// Authentication under policy
// ---------------------------------------------------------------------------------------------

#[test]
fn failed_logins_are_answered_late_and_a_right_password_is_not() {
    let server = ExampleServer::start_with_auth("failure_delay_ms = 500", "");
    let mut guesser = imap(server.imap);
    let timed = |client: &mut RawClient, tag: &str, command: &str| {
        let started = Instant::now();
        let (_, reply) = tagged(client, tag, command);
        (reply[tag.len() + 1..].to_owned(), started.elapsed())
    };
    let (wrong, took) = timed(&mut guesser, "a", &format!("LOGIN {USER} wrong"));
    assert!(wrong.starts_with("NO [AUTHENTICATIONFAILED]"), "{wrong}");
    assert!(
        took >= Duration::from_millis(500),
        "a wrong password answered after {took:?}"
    );
    // An unknown user: the same answer, as late (here later: the address failed before).
    let (unknown, took) = timed(&mut guesser, "b", "LOGIN nobody wrong");
    assert_eq!(
        unknown, wrong,
        "an unknown user is told apart from a wrong password"
    );
    assert!(
        took >= Duration::from_millis(500),
        "an unknown user answered after {took:?}"
    );

    // A third failure from the address now waits 2 s. Meanwhile the owner, from the same
    // address, logs in with the right password: answered first, so neither delayed nor held
    // up by the pending failure.
    guesser.send_raw(format!("c LOGIN {USER} wrong\r\n").as_bytes());
    let sent = Instant::now();
    let mut owner = imap(server.imap);
    imap_login(&mut owner, "a");
    let owner_in = sent.elapsed();
    let (_, third) = read_tagged(&mut guesser, "c");
    let third_told = sent.elapsed();
    assert!(third.starts_with("c NO [AUTHENTICATIONFAILED]"), "{third}");
    assert!(
        owner_in < third_told,
        "the right password ({owner_in:?}) waited for a pending failure ({third_told:?})"
    );
    // Counted: one delayed answer per failure.
    server.metrics_when(|m| m.sum("mail_auth_failures_delayed_total", &[]) == 3.0);
}

/// A passwd-file line for `user` whose hash takes about half a second or more to verify even
/// optimised: 64 MiB (Dovecot's ARGON2ID default) and 8 passes, the most `PasswdFile` accepts
/// at that memory.
fn slow_user(user: &str, password: &str) -> String {
    let params = argon2::Params::new(64 * 1024, 8, 1, None).unwrap();
    let argon2 = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let hash = argon2::PasswordHasher::hash_password(&argon2, password.as_bytes()).unwrap();
    format!("{user}:{{ARGON2ID}}{hash}\n")
}

#[test]
fn password_verifications_past_the_bound_fail_as_temporarily_unavailable() {
    let mut server = ExampleServer::start_with_auth(
        "max_concurrent_verifications = 1\nverification_queue_ms = 100\nfailure_delay_ms = 0\n",
        "",
    );
    let mut users = std::fs::read_to_string(server.passwd_file()).unwrap();
    users.push_str(&slow_user("slow", "right"));
    std::fs::write(server.passwd_file(), users).unwrap();
    server.signal("HUP");
    server.wait_for_stdout(SOON, |line| line.contains("user file reloaded"));

    // Two logins at once: one verifies (a second or so), the other finds no slot within
    // 100 ms and is told to come back, rather than piling up another 64 MiB hash.
    let mut first = imap(server.imap);
    let mut second = imap(server.imap);
    first.send_raw(b"a1 LOGIN slow right\r\n");
    second.send_raw(b"b1 LOGIN slow right\r\n");
    let answers = [
        read_tagged(&mut first, "a1").1,
        read_tagged(&mut second, "b1").1,
    ];
    let count = |what: &str| answers.iter().filter(|a| a.contains(what)).count();
    assert_eq!(
        (count(" OK "), count(" NO [UNAVAILABLE] ")),
        (1, 1),
        "one verified, one waited past the queue deadline: {answers:?}"
    );
    server.metrics_when(|m| {
        m.sum(
            "mail_auth_verifications_rejected_total",
            &[("reason", "queue_timeout")],
        ) == 1.0
    });
}

#[test]
fn a_user_may_have_at_most_max_sessions_per_user_across_imap_and_pop3() {
    let server = ExampleServer::start_with_auth("max_sessions_per_user = 2", "");
    let mut imap1 = imap(server.imap);
    imap_login(&mut imap1, "a");
    let mut pop1 = RawClient::connect(server.pop3);
    pop1.login(USER, PASSWORD);

    // One IMAP and one POP3 session: the third login is refused on either protocol.
    let mut imap2 = imap(server.imap);
    let (_, reply) = tagged(&mut imap2, "a", &format!("LOGIN {USER} {PASSWORD}"));
    assert_eq!(reply, "a NO [LIMIT] Too many sessions for this user");
    let mut pop2 = RawClient::connect(server.pop3);
    pop2.greeting();
    assert!(pop2.cmd(&format!("USER {USER}")).starts_with("+OK"));
    let reply = pop2.cmd(&format!("PASS {PASSWORD}"));
    // Not the maildrop lock ("Mailbox is locked ..."): the per-user cap.
    assert_eq!(reply, "-ERR [IN-USE] Too many sessions for this user");
    server.metrics_when(|m| m.sum("mail_auth_user_limit_total", &[]) == 2.0);

    // One session ends: its slot comes back (when the session's task has ended, just after
    // the client saw it end), and a new login gets in.
    let (_, logout) = tagged(&mut imap1, "z", "LOGOUT");
    assert!(logout.starts_with("z OK"), "LOGOUT: {logout}");
    assert!(imap1.read_to_eof().is_empty());
    let logged_in = poll(SOON, || {
        let mut client = imap(server.imap);
        let (_, reply) = tagged(&mut client, "a", &format!("LOGIN {USER} {PASSWORD}"));
        reply.starts_with("a OK").then_some(client)
    });
    assert!(logged_in.is_some(), "no login after a session ended");
}

#[test]
fn repeated_failed_logins_ban_the_address_with_the_auto_ban_message() {
    const MESSAGE: &str = "Banned for guessing";
    let mut server = ExampleServer::start_with_auth(
        "failure_delay_ms = 20",
        &format!(
            "[layers.auto_ban]\n\
             failures = 3\n\
             window_seconds = 60\n\
             ban_seconds = 600\n\
             exempt = [\"127.0.0.9/32\"]\n\
             message = \"{MESSAGE}\"\n"
        ),
    );
    // Three wrong passwords from 127.0.0.7 over IMAP.
    let mut guesser = imap_from(lo(7), server.imap);
    for tag in ["a", "b", "c"] {
        let (_, reply) = tagged(&mut guesser, tag, &format!("LOGIN {USER} wrong-{tag}"));
        assert!(reply.starts_with(&format!("{tag} NO")), "{reply}");
    }
    // New connections from it are refused with the auto-ban text, on both protocols.
    refused(server.pop3, lo(7), &format!("-ERR {MESSAGE}"));
    refused(server.imap, lo(7), &format!("* BYE {MESSAGE}"));
    // Another address is not.
    let mut bystander = RawClient::connect_from(lo(8), server.pop3);
    bystander.login(USER, PASSWORD);

    // An exempt address fails more often than that and is still served.
    let mut monitor = RawClient::connect_from(lo(9), server.pop3);
    monitor.greeting();
    for _ in 0..4 {
        assert!(monitor.cmd("USER probe").starts_with("+OK"));
        assert!(monitor.cmd("PASS wrong").starts_with("-ERR [AUTH]"));
    }
    let mut again = imap_from(lo(9), server.imap);
    imap_login(&mut again, "a");

    // The ban is logged and counted; the refusals are counted under the auto-ban layer.
    let bans = log_events(&server, "auth_ban", |_| true);
    assert_eq!(bans.len(), 1, "{bans:#?}");
    assert_eq!(bans[0]["ip"], "127.0.0.7");
    assert_eq!(bans[0]["ban_seconds"], "600");
    let metrics =
        server.metrics_when(|m| m.sum("mail_rejections_total", &[("layer", "auto_ban")]) == 2.0);
    assert_eq!(
        metrics.sum("mail_auth_bans_total", &[]),
        1.0,
        "{}",
        metrics.text
    );
    let rejects = log_events(&server, "reject", |e| e["layer"] == "auto_ban");
    assert!(
        rejects.iter().all(|e| e["message"] == MESSAGE),
        "{rejects:#?}"
    );

    // SIGHUP applies a new text; the ban stays.
    server.edit_config(|text| text.replace(MESSAGE, "Come back later"));
    server.reload_policies();
    refused(server.pop3, lo(7), "-ERR Come back later");
}

// ---------------------------------------------------------------------------------------------
// Connections that never reach a session, and refusals under load
// ---------------------------------------------------------------------------------------------

#[test]
fn a_failed_tls_handshake_is_counted_and_logged() {
    let server = ExampleServer::start();
    // Exported from the start, at 0: the server's setup failures and the auth layers' counts.
    let start = server.metrics_when(|m| {
        m.samples
            .iter()
            .any(|s| s.name == "mail_setup_failures_total")
    });
    for name in [
        "mail_auth_failures_delayed_total",
        "mail_auth_user_limit_total",
        "mail_auth_bans_total",
        "mail_auth_verifications_rejected_total",
        "mail_connections_in_setup",
        "mail_connections_tarpitted",
    ] {
        assert!(
            start.samples.iter().any(|s| s.name == name),
            "{name} missing:\n{}",
            start.text
        );
    }
    let handshake = ("reason", "tls_handshake");
    assert_eq!(
        start.sum("mail_setup_failures_total", &[IMAP, handshake]),
        0.0
    );

    // Not a ClientHello: the handshake fails before any layer sees the connection.
    let mut client = RawClient::connect(server.imaps);
    client.send_raw(b"a LOGIN demo demo\r\n");
    client.read_to_eof();

    let metrics =
        server.metrics_when(|m| m.sum("mail_setup_failures_total", &[IMAP, handshake]) == 1.0);
    assert_eq!(metrics.sum("mail_setup_failures_total", &[POP3]), 0.0);
    let logged = log_events(&server, "setup_failure", |e| e["reason"] == "tls_handshake");
    assert_eq!(logged[0]["protocol"], "imap");
}

#[test]
fn a_blocked_address_is_closed_before_the_tls_handshake() {
    let config = "[layers.ip_block]\ndeny = [\"127.0.0.2/32\"]\n";
    let server = ExampleServer::start_with(config);
    // The server does not wait for a ClientHello: the blocked peer is closed at once, and
    // its bytes are never read as one.
    let mut blocked = RawClient::connect_from(lo(2), server.imaps);
    assert!(blocked.read_to_eof().is_empty());
    let early = ("reason", "refused");
    server.metrics_when(|m| m.sum("mail_setup_failures_total", &[IMAP, early]) == 1.0);
    let logged = log_events(&server, "setup_failure", |e| e["reason"] == "refused");
    let error = logged[0].get("error").cloned().unwrap_or_default();
    assert!(error.contains("IP address blocked"), "{error}");
    // The plain port still tells it why; another address still gets its handshake.
    refused(server.imap, lo(2), "* BYE IP address blocked");
    let mut other = RawClient::connect_from(lo(3), server.imaps);
    other.send_raw(b"not a ClientHello\r\n");
    other.read_to_eof();
    server.metrics_when(|m| {
        m.sum(
            "mail_setup_failures_total",
            &[IMAP, ("reason", "tls_handshake")],
        ) == 1.0
    });

    // Turned off, the blocked peer is handshaken like any other (and told inside TLS).
    let late = ExampleServer::start_with(&format!(
        "[layers]\nrefuse_before_tls_handshake = false\n{config}"
    ));
    let mut blocked = RawClient::connect_from(lo(2), late.imaps);
    blocked.send_raw(b"not a ClientHello\r\n");
    blocked.read_to_eof();
    let metrics = late.metrics_when(|m| {
        m.sum(
            "mail_setup_failures_total",
            &[IMAP, ("reason", "tls_handshake")],
        ) == 1.0
    });
    assert_eq!(
        metrics.sum("mail_setup_failures_total", &[IMAP, early]),
        0.0
    );
}

#[test]
fn handshakes_past_the_per_address_setup_cap_are_closed_at_once() {
    let server = ExampleServer::start_with("[limits]\nmax_setup_per_address = 1\n");
    // A client that opens the TLS port and says nothing holds the address's one place.
    let _silent = RawClient::connect(server.imaps);
    server.metrics_when(|m| m.sum("mail_connections_in_setup", &[]) == 1.0);
    // The next one from the address is closed without a handshake, long before the 10 s
    // handshake deadline.
    let started = Instant::now();
    let mut second = RawClient::connect(server.imaps);
    assert!(second.read_to_eof().is_empty());
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "closed after {took:?}");
    server.metrics_when(|m| {
        m.sum(
            "mail_setup_failures_total",
            &[IMAP, ("reason", "setup_cap")],
        ) == 1.0
    });
}

#[test]
fn a_full_server_still_refuses_a_blocked_address_with_the_ip_block_message() {
    let server = ExampleServer::start_with(
        "[limits]\nmax_connections = 1\n\
         [layers.ip_block]\ndeny = [\"127.0.0.2/32\"]\n",
    );
    // One session holds the only slot.
    let mut holder = RawClient::connect(server.pop3);
    holder.greeting();
    // A blocked address is told why it is refused, not that the server is busy.
    refused(server.pop3, lo(2), "-ERR IP address blocked");
    refused(server.imap, lo(2), "* BYE IP address blocked");
    // Anyone else is told the server is full (so it was).
    refused(
        server.pop3,
        lo(3),
        "-ERR Too many connections, try again later",
    );
    let metrics =
        server.metrics_when(|m| m.sum("mail_rejections_total", &[("layer", "load_shed")]) == 1.0);
    assert_eq!(
        metrics.sum("mail_rejections_total", &[("layer", "ip_block")]),
        2.0,
        "{}",
        metrics.text
    );
    assert!(holder.cmd("QUIT").starts_with("+OK"));
}

#[test]
fn refusals_past_the_tarpit_cap_are_answered_at_once() {
    let server = ExampleServer::start_with(
        "[limits]\nmax_tarpitted = 1\n\
         [layers.ip_block]\ndeny = [\"127.0.0.2/32\", \"127.0.0.3/32\"]\ndelay_ms = 5000\n",
    );
    let addr = server.pop3;
    let (tx, rx) = mpsc::channel();
    let held = std::thread::spawn(move || {
        let mut client = RawClient::connect_from(lo(2), addr);
        tx.send(Instant::now()).unwrap();
        let line = client.line();
        (line, Instant::now())
    });
    let connected = rx.recv().unwrap();
    // The first refused client fills the tarpit...
    server.metrics_when(|m| m.sum("mail_connections_tarpitted", &[]) == 1.0);
    // ... so the next is answered at once instead of being held too.
    let started = Instant::now();
    refused(addr, lo(3), "-ERR IP address blocked");
    let took = started.elapsed();
    let answered = Instant::now();
    assert!(
        took < Duration::from_secs(3),
        "answered after {took:?} with the tarpit full (delay 5 s)"
    );
    let (line, told) = held.join().unwrap();
    assert_eq!(line.as_deref(), Some("-ERR IP address blocked"));
    assert!(answered < told, "the held client was not held");
    assert!(
        told - connected >= Duration::from_secs(4),
        "held only {:?} with delay_ms = 5000",
        told - connected
    );
}

// ---------------------------------------------------------------------------------------------
// Operators
// ---------------------------------------------------------------------------------------------

/// The admin listener's answer to `method path`, as curl gets it: (status, body).
fn admin(server: &ExampleServer, method: &str, path: &str) -> (u32, String) {
    let url = format!("http://{}{path}", server.metrics);
    let out = support_example::curl(&["-sS", "-X", method, "-w", "\n%{http_code}", &url]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').expect("curl's status line");
    (
        status.trim().parse().expect("an HTTP status"),
        body.to_owned(),
    )
}

fn sessions(server: &ExampleServer) -> Vec<serde_json::Value> {
    let (status, body) = admin(server, "GET", "/sessions");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("not a JSON array ({e}): {body:?}"))
}

#[test]
fn operators_list_sessions_and_kick_them_by_user_or_address() {
    let server = ExampleServer::start();
    let mut imap_session = imap(server.imap);
    imap_login(&mut imap_session, "a1");
    let mut pop3_session = RawClient::connect(server.pop3);
    pop3_session.login(USER, PASSWORD);
    let mut stranger = imap_from(lo(5), server.imap);

    let listed = poll(SOON, || {
        let listed = sessions(&server);
        (listed.len() == 3).then_some(listed)
    })
    .expect("three sessions listed");
    let of_demo: Vec<&str> = listed
        .iter()
        .filter(|s| s["user"] == USER)
        .map(|s| s["protocol"].as_str().unwrap())
        .collect();
    assert_eq!(of_demo.len(), 2, "{listed:#?}");
    assert!(of_demo.contains(&"imap") && of_demo.contains(&"pop3"));
    let anonymous = listed.iter().find(|s| s["user"].is_null()).unwrap();
    assert_eq!(anonymous["address"], "127.0.0.5");
    assert_eq!(anonymous["state"], "Not Authenticated");

    // `doveadm kick demo`: both of demo's sessions are told and closed.
    let (status, body) = admin(&server, "POST", &format!("/sessions/kick?user={USER}"));
    assert_eq!((status, body.trim()), (200, "{\"ended\":2}"));
    assert_eq!(
        imap_session.line().as_deref(),
        Some("* BYE Disconnected by the administrator")
    );
    assert_eq!(
        pop3_session.line().as_deref(),
        Some("-ERR Disconnected by the administrator")
    );
    // By address, before login too.
    let (_, body) = admin(&server, "POST", "/sessions/kick?addr=127.0.0.5");
    assert_eq!(body.trim(), "{\"ended\":1}");
    assert_eq!(
        stranger.line().as_deref(),
        Some("* BYE Disconnected by the administrator")
    );
    poll(SOON, || sessions(&server).is_empty().then_some(())).expect("the list empties");

    // Wrong requests are answered, not guessed at.
    assert_eq!(
        admin(&server, "POST", "/sessions/kick?addr=nonsense").0,
        400
    );
    assert_eq!(admin(&server, "GET", "/sessions/kick?user=demo").0, 405);
    assert_eq!(admin(&server, "GET", "/nothing").0, 404);
    // Metrics are still served on the same listener.
    assert!(server.scrape().text.contains("mail_connections_total"));
}

#[test]
fn an_address_at_its_rate_limit_is_closed_before_the_tls_handshake() {
    let server = ExampleServer::start_with("[layers.rate_limit]\nmax_concurrent_per_ip = 1\n");
    // One open session on the plain port holds the address's one place: the limit counts
    // across listeners.
    let mut first = imap_from(lo(40), server.imap);
    // The TLS port only peeks at that count: the next connection is closed without a
    // handshake, and nothing more is counted against the address.
    let mut second = RawClient::connect_from(lo(40), server.imaps);
    assert!(second.read_to_eof().is_empty());
    let early = ("reason", "refused");
    server.metrics_when(|m| m.sum("mail_setup_failures_total", &[IMAP, early]) == 1.0);
    let logged = log_events(&server, "setup_failure", |e| e["reason"] == "refused");
    let error = logged[0].get("error").cloned().unwrap_or_default();
    assert!(
        error.contains("rate_limit") && error.contains("Too many connections from this IP"),
        "{error}"
    );
    // Another address still gets its handshake (and fails it with garbage).
    let mut other = RawClient::connect_from(lo(41), server.imaps);
    other.send_raw(b"not a ClientHello\r\n");
    other.read_to_eof();
    let handshake = ("reason", "tls_handshake");
    server.metrics_when(|m| m.sum("mail_setup_failures_total", &[IMAP, handshake]) == 1.0);

    // Once the session has ended, the address gets its handshake again: the refused
    // connection took no place. (Its slot comes back when the session is dropped, a moment
    // after the goodbye, and the counter moves a moment after the close, so try until a
    // handshake has been counted; each try is one more, a refusal or a handshake.)
    let (_, bye) = tagged(&mut first, "a", "LOGOUT");
    assert!(bye.starts_with("a OK"), "LOGOUT: {bye}");
    first.read_to_eof();
    poll(SOON, || {
        let mut again = RawClient::connect_from(lo(40), server.imaps);
        // A refused peer may be gone before the write: that is a refusal, try again.
        let _ = again.try_send_raw(b"not a ClientHello\r\n");
        again.read_to_eof();
        let handshakes = server
            .scrape()
            .sum("mail_setup_failures_total", &[IMAP, handshake]);
        (handshakes >= 2.0).then_some(())
    })
    .unwrap_or_else(|| panic!("no handshake from 127.0.0.40:\n{}", server.scrape().text));
    // The plain port agrees: the address's one place is free, the handshakes took none.
    let _third = imap_from(lo(40), server.imap);
}
