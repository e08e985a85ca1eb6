//! End-to-end tests of the example server binary (`examples/server.rs`), driven by real
//! clients: Python's poplib, curl, and raw sockets for what those cannot do.
//!
//! Each test starts its own server process on ephemeral ports with a fresh data directory, so
//! tests run in parallel and leave nothing behind. A plain `cargo test` builds the example
//! first; with a filter, build it yourself (the harness refuses a stale binary):
//!
//! ```text
//! cargo build --example server && cargo test --test example_server
//! ```
//!
//! Needs `python3` (poplib, ssl, json from the standard library) and `curl` with POP3 support,
//! as `.ci/run` checks.

mod support_example;
mod support_shared;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

use support_example::{
    ExampleServer, PASSWORD, PopMode, RawClient, SOON, Transcript, USER, as_poplib_sees_it,
    assert_same_bytes, events_of, parse_json_lines, poll, poplib, run_server_expecting_exit,
    stderr, unhex,
};

/// A plain message whose body has lines that need dot-stuffing: one starting with ".", one
/// that is a lone "." (which would end the reply if not stuffed) and one starting with "..".
const PLAIN_MESSAGE: &[u8] = b"From: Alice <alice@example.com>\r\n\
To: demo@localhost\r\n\
Subject: dots\r\n\
Message-ID: <dots@example.com>\r\n\
\r\n\
Hello demo,\r\n\
.a line starting with a dot\r\n\
.\r\n\
..two dots\r\n\
bye\r\n";

/// A multipart MIME message with a text part and a base64 attachment.
const MULTIPART_MESSAGE: &[u8] = b"From: Bob <bob@example.com>\r\n\
To: demo@localhost\r\n\
Subject: multipart\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"=_boundary_42\"\r\n\
\r\n\
This is a multi-part message in MIME format.\r\n\
\r\n\
--=_boundary_42\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln.\r\n\
.\r\n\
--=_boundary_42\r\n\
Content-Type: application/octet-stream; name=\"data.bin\"\r\n\
Content-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename=\"data.bin\"\r\n\
\r\n\
AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4\r\n\
OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3Bx\r\n\
--=_boundary_42--\r\n";

/// Deliver the two test messages, then check a poplib session over `mode` sees both, reads
/// them byte for byte and deletes the first; a second session must see only the second.
fn list_retrieve_delete(server: &ExampleServer, mode: PopMode) -> Transcript {
    server.deliver(PLAIN_MESSAGE);
    server.deliver(MULTIPART_MESSAGE);
    let (a, b) = (PLAIN_MESSAGE.len(), MULTIPART_MESSAGE.len());
    let addr = match mode {
        PopMode::Plain | PopMode::Stls => server.pop3,
        PopMode::Ssl => server.pop3s,
    };

    let first = poplib(
        mode,
        addr,
        USER,
        PASSWORD,
        &["stat", "list", "retr:1", "retr:2", "dele:1", "quit"],
    );
    assert!(first.errors().is_empty(), "{first:#?}");
    assert!(first.one("login").starts_with("+OK"), "{first:#?}");
    assert_eq!(first.one("stat"), format!("2 {}", a + b));
    assert_eq!(first.one("list"), format!("1:{a} 2:{b}"));
    let retrieved = first.all("retr");
    assert_eq!(retrieved.len(), 2, "{first:#?}");
    for (result, message) in retrieved.iter().zip([PLAIN_MESSAGE, MULTIPART_MESSAGE]) {
        let (octets, hex) = result.split_once(' ').expect("octets and body");
        assert_eq!(octets, message.len().to_string(), "RETR's octet count");
        assert_same_bytes(
            &unhex(hex),
            as_poplib_sees_it(message),
            "RETR returns the message as delivered",
        );
    }
    assert!(first.one("dele").starts_with("+OK"), "{first:#?}");
    assert!(first.one("quit").starts_with("+OK"), "{first:#?}");

    // QUIT committed the deletion: a new session sees only the multipart message.
    let second = poplib(
        mode,
        addr,
        USER,
        PASSWORD,
        &["stat", "list", "retr:1", "quit"],
    );
    assert!(second.errors().is_empty(), "{second:#?}");
    assert_eq!(second.one("stat"), format!("1 {b}"));
    assert_eq!(second.one("list"), format!("1:{b}"));
    let (_, hex) = second.one("retr").split_once(' ').unwrap();
    assert_same_bytes(
        &unhex(hex),
        as_poplib_sees_it(MULTIPART_MESSAGE),
        "RETR 1 after the deletion",
    );
    assert_eq!(server.inbox_len(USER), 1, "the store holds one message");
    first
}

#[test]
fn poplib_user_pass_on_the_plain_port_lists_retrieves_and_deletes() {
    let server = ExampleServer::start();
    let transcript = list_retrieve_delete(&server, PopMode::Plain);
    assert!(transcript.one("welcome").starts_with("+OK"));
}

#[test]
fn poplib_after_stls_lists_retrieves_and_deletes() {
    let server = ExampleServer::start();
    let transcript = list_retrieve_delete(&server, PopMode::Stls);
    assert!(transcript.one("stls").starts_with("+OK"), "{transcript:#?}");
    let version = transcript.one("tls_version");
    assert!(
        version == "TLSv1.2" || version == "TLSv1.3",
        "negotiated {version}"
    );
}

#[test]
fn poplib_over_implicit_tls_lists_retrieves_and_deletes() {
    let server = ExampleServer::start();
    let transcript = list_retrieve_delete(&server, PopMode::Ssl);
    assert!(transcript.one("welcome").starts_with("+OK"));
}

/// Run curl as demo with `transport` options then `args`; asserts curl succeeded and returns
/// its output.
fn curl_as_demo(transport: &[&str], args: &[&str]) -> Vec<u8> {
    support_example::curl_as_demo(&[transport, args].concat()).stdout
}

/// curl over one transport: LIST, RETR byte for byte (curl undoes the dot-stuffing), DELE,
/// then LIST again without the deleted message.
fn curl_list_retrieve_delete(server: &ExampleServer, base: &str, transport: &[&str]) {
    server.deliver(PLAIN_MESSAGE);
    server.deliver(MULTIPART_MESSAGE);
    let (a, b) = (PLAIN_MESSAGE.len(), MULTIPART_MESSAGE.len());
    let (mailbox, first) = (format!("{base}/"), format!("{base}/1"));

    let list = curl_as_demo(transport, &[&mailbox]);
    assert_same_bytes(&list, format!("1 {a}\r\n2 {b}\r\n").as_bytes(), "LIST");
    for (number, message) in [(1, PLAIN_MESSAGE), (2, MULTIPART_MESSAGE)] {
        let body = curl_as_demo(transport, &[&format!("{base}/{number}")]);
        assert_same_bytes(&body, message, &format!("RETR {number}"));
    }
    // A custom command takes the message number from the URL; -I (no body) because DELE's
    // reply is a single line. curl then sends QUIT, which commits the deletion.
    curl_as_demo(transport, &["-X", "DELE", "-I", &first]);
    let list = curl_as_demo(transport, &[&mailbox]);
    assert_same_bytes(&list, format!("1 {b}\r\n").as_bytes(), "LIST after DELE");
    let body = curl_as_demo(transport, &[&first]);
    assert_same_bytes(&body, MULTIPART_MESSAGE, "RETR 1 after DELE");
}

#[test]
fn curl_on_the_plain_port_lists_retrieves_and_deletes() {
    let server = ExampleServer::start();
    let base = format!("pop3://{}", server.pop3);
    curl_list_retrieve_delete(&server, &base, &[]);
}

#[test]
fn curl_with_stls_required_lists_retrieves_and_deletes() {
    let server = ExampleServer::start();
    let base = format!("pop3://{}", server.pop3);
    curl_list_retrieve_delete(&server, &base, &["--ssl-reqd", "-k"]);
}

#[test]
fn curl_over_pop3s_lists_retrieves_and_deletes() {
    let server = ExampleServer::start();
    let base = format!("pop3s://{}", server.pop3s);
    curl_list_retrieve_delete(&server, &base, &["-k"]);
}

/// Connect, log in, and vanish without QUIT.
fn drop_mid_session(server: &ExampleServer) {
    let mut client = RawClient::connect(server.pop3);
    client.login(USER, PASSWORD);
    drop(client);
}

/// Connect, fail to log in, then QUIT politely.
fn fail_login_then_quit(server: &ExampleServer, password: &str) -> RawClient {
    let mut client = RawClient::connect(server.pop3);
    client.greeting();
    assert!(client.cmd(&format!("USER {USER}")).starts_with("+OK"));
    let reply = client.cmd(&format!("PASS {password}"));
    assert!(
        reply.starts_with("-ERR"),
        "wrong password accepted: {reply}"
    );
    assert!(client.cmd("QUIT").starts_with("+OK"));
    assert!(client.read_to_eof().is_empty());
    client
}

#[test]
fn metrics_count_every_connection_once_and_none_stays_active() {
    let server = ExampleServer::start();
    server.deliver(PLAIN_MESSAGE);

    // 1, 2: successful sessions over both listeners.
    server.poplib_as_demo(&["stat", "quit"]);
    let tls = poplib(
        PopMode::Ssl,
        server.pop3s,
        USER,
        PASSWORD,
        &["stat", "quit"],
    );
    assert!(tls.errors().is_empty(), "{tls:#?}");
    // 3: a failed login, then QUIT.
    fail_login_then_quit(&server, "not-the-password");
    // 4: a client that drops mid-session.
    drop_mid_session(&server);
    // 5: a client that never logs in and QUITs.
    let mut client = RawClient::connect(server.pop3);
    client.greeting();
    assert!(client.cmd("QUIT").starts_with("+OK"));
    assert!(client.read_to_eof().is_empty());
    let connections = 5.0;

    let pop3 = ("protocol", "pop3");
    // Closes are recorded when each connection's task finishes, after the client saw the end:
    // wait for them (the closed counter is bumped after the gauge in the same hook).
    // Every connection ended, so no late double count can come after this page.
    let metrics = server.settled_metrics(|m| {
        m.sum("mail_connections_closed_total", &[pop3]) >= connections
            && m.sum("mail_connections_active", &[pop3]) == 0.0
    });

    let text = &metrics.text;
    assert_eq!(
        metrics.sum("mail_connections_active", &[pop3]),
        0.0,
        "{text}"
    );
    assert_eq!(
        metrics.sum("mail_connections_total", &[pop3, ("outcome", "accepted")]),
        connections,
        "{text}"
    );
    assert_eq!(
        metrics.sum("mail_connections_closed_total", &[pop3]),
        connections,
        "{text}"
    );
    assert_eq!(
        metrics.sum(
            "mail_connections_closed_total",
            &[pop3, ("reason", "logout")]
        ),
        4.0,
        "{text}"
    );
    assert_eq!(
        metrics.sum(
            "mail_connections_closed_total",
            &[pop3, ("reason", "client_closed")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        metrics.sum("mail_connections_total", &[pop3, ("outcome", "rejected")]),
        0.0,
        "{text}"
    );
    assert_eq!(
        metrics.sum("mail_session_duration_seconds_count", &[pop3]),
        connections,
        "{text}"
    );
}

#[test]
fn session_duration_is_exported_as_a_histogram() {
    // example-server.md promises a histogram: buckets aggregate across servers, the
    // quantiles of a summary do not.
    let server = ExampleServer::start();
    server.poplib_as_demo(&["quit"]);
    let pop3 = ("protocol", "pop3");
    let metrics = poll(SOON, || {
        let m = server.scrape();
        (m.sum("mail_session_duration_seconds_count", &[pop3]) >= 1.0).then_some(m)
    })
    .unwrap_or_else(|| panic!("no session duration:\n{}", server.scrape().text));
    let text = &metrics.text;
    assert!(
        text.lines()
            .any(|l| l == "# TYPE mail_session_duration_seconds histogram"),
        "mail_session_duration_seconds is not a histogram:\n{text}"
    );
    assert_eq!(
        metrics.sum(
            "mail_session_duration_seconds_bucket",
            &[pop3, ("le", "+Inf")]
        ),
        1.0,
        "{text}"
    );
}

#[test]
fn json_logs_have_one_connect_and_one_close_per_connection_and_no_password() {
    const SECRET: &str = "S3cret-carol-Pa55word";
    const WRONG: &str = "Wr0ng-guess-8812";
    let mut server = ExampleServer::start();
    // A user whose password differs from its name, so that a leak is detectable; the server
    // reloads the user file on SIGHUP.
    let mut passwd = std::fs::read_to_string(server.passwd_file()).unwrap();
    passwd.push_str(&format!("carol:{{PLAIN}}{SECRET}\n"));
    std::fs::write(server.passwd_file(), passwd).unwrap();
    server.signal("HUP");
    server.wait_for_stdout(SOON, |line| line.contains("user file reloaded"));

    let carol = poplib(
        PopMode::Plain,
        server.pop3,
        "carol",
        SECRET,
        &["stat", "quit"],
    );
    assert!(carol.errors().is_empty(), "{carol:#?}");
    let failed = fail_login_then_quit(&server, WRONG).local_addr();
    let silent = {
        let client = RawClient::connect(server.pop3);
        let addr = client.local_addr();
        drop(client);
        addr
    };
    let carol_addr = format!("127.0.0.1:{}", carol.local_port());
    let connections = 3;

    // The close line is written when the connection's task ends, just after the client sees
    // EOF: wait for all of them.
    poll(SOON, || {
        let closes = events_of(&parse_json_lines(&server.json_lines()), "close").len();
        (closes >= connections).then_some(())
    })
    .unwrap_or_else(|| panic!("close lines missing:\n{}", server.stdout().join("\n")));
    // Every connection ended and every line it wrote read: a second close line would show.
    server.settled_metrics(|_| true);
    server.log_barrier();
    let events = parse_json_lines(&server.json_lines());

    let (connects, closes) = (events_of(&events, "connect"), events_of(&events, "close"));
    assert_eq!(connects.len(), connections, "connect lines: {connects:#?}");
    assert_eq!(closes.len(), connections, "close lines: {closes:#?}");
    assert!(events_of(&events, "reject").is_empty());
    for event in connects.iter().chain(&closes) {
        for key in ["session_id", "protocol", "remote_addr"] {
            assert!(event.contains_key(key), "{key} missing in {event:#?}");
        }
        assert_eq!(event["protocol"], "pop3");
    }
    for close in &closes {
        for key in ["duration_ms", "reason", "bytes_in", "bytes_out", "commands"] {
            assert!(close.contains_key(key), "{key} missing in {close:#?}");
        }
        // Exactly one connect with the same session id, from the same address.
        let connect: Vec<_> = connects
            .iter()
            .filter(|c| c["session_id"] == close["session_id"])
            .collect();
        assert_eq!(connect.len(), 1, "connect for {close:#?}");
        assert_eq!(connect[0]["remote_addr"], close["remote_addr"]);
    }
    let close_from = |addr: &str| {
        closes
            .iter()
            .find(|c| c["remote_addr"] == addr)
            .unwrap_or_else(|| panic!("no close line for {addr} in {closes:#?}"))
    };
    let carol_close = close_from(&carol_addr);
    assert_eq!(carol_close.get("user").map(String::as_str), Some("carol"));
    assert_eq!(carol_close["reason"], "logout");
    assert_eq!(carol_close["commands"], "4", "USER PASS STAT QUIT");
    let failed_close = close_from(&failed.to_string());
    assert_eq!(failed_close.get("user"), None, "failed login is not a user");
    assert_eq!(failed_close["reason"], "logout");
    let silent_close = close_from(&silent.to_string());
    assert_eq!(silent_close["reason"], "client_closed");
    assert_eq!(silent_close["bytes_in"], "0");
    assert_eq!(silent_close["commands"], "0");

    for line in server.stdout() {
        assert!(
            !line.contains(SECRET) && !line.contains(WRONG),
            "a password is in the log: {line}"
        );
    }
}

/// A Python client on the implicit-TLS port that reads the greeting, says `ready`, and then
/// only listens: it prints the next line from the server as `told <line>` and then
/// `eof <bytes after it>`.
const IDLE_TLS_CLIENT: &str = r#"
import poplib, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
pop = poplib.POP3_SSL("127.0.0.1", int(sys.argv[1]), context=ctx, timeout=20)
print("ready", flush=True)
print("told", pop.file.readline().decode().rstrip(), flush=True)
print("eof", len(pop.file.read()), flush=True)
"#;

#[test]
fn sigterm_tells_idle_clients_and_exits_cleanly() {
    let mut server = ExampleServer::start();
    // One finished session before, to check the final count covers every connection.
    server.poplib_as_demo(&["quit"]);
    // Idle after login on the plain port.
    let mut idle = RawClient::connect(server.pop3);
    idle.login(USER, PASSWORD);
    // Idle before login over TLS: the goodbye must come through the TLS layer.
    let mut tls_client = Command::new("python3")
        .args(["-c", IDLE_TLS_CLIENT, &server.pop3s.port().to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}", support_shared::missing("python3", &e)));
    let mut tls_out = BufReader::new(tls_client.stdout.take().unwrap());
    let mut ready = String::new();
    tls_out.read_line(&mut ready).unwrap();
    assert_eq!(ready, "ready\n", "the TLS client did not connect");

    server.signal("TERM");
    let told = idle.line().expect("the server closed without a word");
    assert!(told.starts_with("-ERR"), "told {told:?}");
    assert!(
        told.to_lowercase().contains("shutting down"),
        "told {told:?}"
    );
    assert!(idle.read_to_eof().is_empty(), "nothing after the -ERR");
    let mut tls_told = String::new();
    tls_out.read_to_string(&mut tls_told).unwrap();
    assert!(
        tls_client.wait().unwrap().success(),
        "TLS client: {tls_told}"
    );
    let mut lines = tls_told.lines();
    let told = lines.next().unwrap_or_default();
    assert!(
        told.starts_with("told -ERR"),
        "TLS client was told {told:?}"
    );
    assert!(told.to_lowercase().contains("shutting down"), "{told:?}");
    assert_eq!(
        lines.next(),
        Some("eof 0"),
        "nothing after the -ERR over TLS"
    );

    let status = server
        .wait_exit(Duration::from_secs(20))
        .expect("the server did not exit after SIGTERM");
    assert!(status.success(), "exit status {status}");
    let stdout = server.stdout();
    assert!(
        stdout.iter().any(|l| l == "stopped; 3 connections closed"),
        "final line missing or wrong:\n{}",
        stdout.join("\n")
    );
    // The logs agree: the two idle sessions ended for the shutdown.
    let events = parse_json_lines(&server.json_lines());
    let closes = events_of(&events, "close");
    assert_eq!(closes.len(), 3, "{closes:#?}");
    let shutdown = closes.iter().filter(|c| c["reason"] == "shutdown").count();
    assert_eq!(shutdown, 2, "{closes:#?}");
}

/// The log lines of a shutdown are written before the process exits: the log writer queues
/// lines for a thread of its own, and a burst of them (every idle connection's close at once)
/// is still in the queue when the server stops.
#[test]
fn sigterm_writes_every_queued_log_line_before_exit() {
    const IDLE: usize = 200;
    let mut server = ExampleServer::start_with("[layers.rate_limit]\nmax_concurrent_per_ip = 0\n");
    let mut clients: Vec<RawClient> = (0..IDLE)
        .map(|_| {
            let mut client = RawClient::connect(server.pop3);
            client.greeting();
            client
        })
        .collect();

    server.signal("TERM");
    for client in &mut clients {
        let told = client.line().expect("the server closed without a word");
        assert!(told.starts_with("-ERR"), "told {told:?}");
    }
    let status = server
        .wait_exit(Duration::from_secs(20))
        .expect("the server did not exit after SIGTERM");
    assert!(status.success(), "exit status {status}");
    let events = parse_json_lines(&server.json_lines());
    let shutdown = events_of(&events, "close")
        .into_iter()
        .filter(|close| close["reason"] == "shutdown")
        .count();
    assert_eq!(shutdown, IDLE, "close lines of the shutdown written");
}

#[test]
fn sigterm_does_not_wait_out_a_pending_tls_handshake() {
    // A client that opens a TCP connection to the implicit-TLS port and never says hello.
    // Shutdown waits at most the grace period for connections: this one has no session to
    // tell yet, and must not hold the server for the whole TLS handshake deadline (10 s).
    let mut server = ExampleServer::start_with("[limits]\nshutdown_grace_seconds = 1\n");
    let silent = std::net::TcpStream::connect(server.pop3s).unwrap();
    // Wait until the server has accepted it and is in its handshake.
    poll(SOON, || {
        (server.scrape().sum("mail_connections_in_setup", &[]) == 1.0).then_some(())
    })
    .expect("the connection reaches its TLS handshake");

    let started = std::time::Instant::now();
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(20));
    let took = started.elapsed();
    drop(silent);
    assert!(status.is_some_and(|s| s.success()), "exit: {status:?}");
    assert!(
        took < Duration::from_secs(8),
        "shutdown with a 1 s grace took {took:?}: it waited for the TLS handshake deadline"
    );
}

#[test]
fn oversized_line_and_silent_client_do_not_disturb_the_server() {
    let server = ExampleServer::start();
    server.deliver(PLAIN_MESSAGE);

    let mut long = vec![b'A'; 10 * 1024];
    long.extend_from_slice(b"\r\n");
    // Before login a 10 KB line is no honest mistake: answered, then the connection closed.
    let mut client = RawClient::connect(server.pop3);
    client.greeting();
    client.send_raw(&long);
    let reply = client.line().expect("a long line is answered");
    assert!(reply.starts_with("-ERR"), "long line before login: {reply}");
    assert!(client.read_to_eof().is_empty());
    // After login it is refused, and the session goes on (the reader skips to the line's end).
    let mut client = RawClient::connect(server.pop3);
    client.greeting();
    assert!(client.cmd(&format!("USER {USER}")).starts_with("+OK"));
    let reply = client.cmd(&format!("PASS {PASSWORD}"));
    assert!(reply.starts_with("+OK"), "login: {reply}");
    client.send_raw(&long);
    let reply = client.line().expect("closed after a long line");
    assert!(reply.starts_with("-ERR"), "long line: {reply}");
    assert_eq!(client.cmd("STAT"), format!("+OK 1 {}", PLAIN_MESSAGE.len()));
    assert!(client.cmd("QUIT").starts_with("+OK"));
    assert!(client.read_to_eof().is_empty());

    // A client that connects and leaves without a word.
    drop(RawClient::connect(server.pop3));
    // The same without even waiting for the greeting, over TLS.
    drop(RawClient::connect(server.pop3s));

    let after = server.poplib_as_demo(&["stat", "retr:1", "quit"]);
    assert_eq!(after.one("stat"), format!("1 {}", PLAIN_MESSAGE.len()));
    let (_, hex) = after.one("retr").split_once(' ').unwrap();
    assert_eq!(unhex(hex), as_poplib_sees_it(PLAIN_MESSAGE));
}

#[test]
fn unknown_config_key_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.toml");
    std::fs::write(
        &config,
        "[pop3]\nlisten = \"127.0.0.1:0\"\nlisten_typo = \"x\"\n",
    )
    .unwrap();
    let out = run_server_expecting_exit(dir.path(), &["--config".as_ref(), config.as_os_str()]);
    assert!(!out.status.success(), "started with an unknown key");
    let message = stderr(&out);
    assert!(message.contains("listen_typo"), "stderr: {message}");
}

#[test]
fn missing_config_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("absent.toml");
    let out = run_server_expecting_exit(dir.path(), &["--config".as_ref(), config.as_os_str()]);
    assert!(!out.status.success(), "started without its config file");
    let message = stderr(&out);
    assert!(message.contains("absent.toml"), "stderr: {message}");
    // It failed before creating anything.
    assert!(!dir.path().join("data").exists());
}

/// Out of file descriptors (EMFILE), the accept loop backs off instead of spinning, and serves
/// again as soon as descriptors free up: clients that waited in the backlog are then greeted,
/// a fresh client logs in, and every connection is accounted for (accepted = finished =
/// closed, none left active).
#[test]
fn accept_backs_off_when_out_of_descriptors_and_recovers() {
    let mut server = ExampleServer::start();
    let fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", server.pid()))
            .expect("/proc fd list")
            .count()
    };
    // Room for three more connections only.
    let limit = fds() + 3;
    let prlimit = Command::new("prlimit")
        .arg(format!("--pid={}", server.pid()))
        .arg(format!("--nofile={limit}:{limit}"))
        .output()
        .unwrap_or_else(|e| panic!("{}", support_shared::missing("prlimit", &e)));
    assert!(prlimit.status.success(), "prlimit: {}", stderr(&prlimit));

    let mut served: Vec<RawClient> = (0..3).map(|_| RawClient::connect(server.pop3)).collect();
    for client in &mut served {
        client.greeting();
    }
    // These wait in the kernel's backlog while accept fails with EMFILE.
    let mut waiting: Vec<RawClient> = (0..2).map(|_| RawClient::connect(server.pop3)).collect();
    server.wait_for_stdout(SOON, |line| line.contains("accept failed; backing off"));

    // Free descriptors: the waiting clients are accepted and greeted.
    for mut client in served.drain(..) {
        assert!(client.cmd("QUIT").starts_with("+OK"));
    }
    for client in &mut waiting {
        client.greeting();
    }
    drop(waiting);
    let mut fresh = RawClient::connect(server.pop3);
    fresh.login(USER, PASSWORD);
    assert!(fresh.cmd("QUIT").starts_with("+OK"));
    // Nothing was lost on the way: every connection accepted (the 2 that waited included)
    // ended and was closed once, and no session is left open.
    let metrics =
        server.settled_metrics(|m| m.sum("mail_server_connections_accepted_total", &[]) == 6.0);
    assert_eq!(
        metrics.sum("mail_connections_closed_total", &[]),
        6.0,
        "{}",
        metrics.text
    );
    assert_eq!(
        metrics.sum("mail_connections_active", &[]),
        0.0,
        "{}",
        metrics.text
    );
}
