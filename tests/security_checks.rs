//! Security checks of issue 13 that had no test of their own: an unknown user cannot be told
//! from a wrong password (by the reply, the delay, the counts, or SCRAM's first answer), and
//! a user name cannot lead out of the Maildir root. RELIABILITY.md's "Security checks" lists
//! these beside the checks that live in other files.
//!
//! The layer test runs on a paused clock; the others drive the example server binary over
//! loopback and wait for replies and metrics, never for a fixed time.
//!
//! ```text
//! cargo build --example server && cargo test -p tower-mail --test security_checks
//! ```
//!
//! Needs `python3` (the harness and the SCRAM client) and `curl` (metrics).

mod support_example;
mod support_shared;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use support_example::{ExampleServer, RawClient};
use support_shared::{base64, dedent, run_python};
use tower::{ServiceBuilder, ServiceExt};
use tower_mail::auth::{AuthError, Credentials, PasswdFile, Secret, User};
use tower_mail::{Protocol, Session};
use tower_mail_layers::auth::{AutoBanLayer, FailureDelayLayer, VerifyLimitLayer};
use tower_mail_layers::ip_block::{IpBlock, IpLists};

/// The loopback address `127.0.0.<last>`: each client its own, so that per-address counts
/// of one case do not reach another.
fn lo(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

// ---------------------------------------------------------------------------------------------
// Unknown user vs wrong password
// ---------------------------------------------------------------------------------------------

/// What one run of failed logins left behind, for comparison between the two kinds.
#[derive(Debug, PartialEq)]
struct Trace {
    /// Each answer, and how long (on the paused clock) it took.
    answers: Vec<(Result<User, AuthError>, Duration)>,
    /// The failure delay's next delay for the address, and for the name tried.
    next_delay_ip: Duration,
    next_delay_user: Duration,
    /// The auto-ban's count for the address, and whether the address may still connect.
    recent_failures: usize,
    permitted: bool,
}

/// Four failed logins of `user` with `password` from 192.0.2.1 through the layers the
/// example server stacks over a `PasswdFile` (failure delay, auto-ban, verification bound),
/// fresh ones for each run.
async fn failed_logins(user: &str, password: &str) -> Trace {
    let users = PasswdFile::parse(
        "alice:{SSHA512}1sa7i80muSW/62WFoRIdMWpPgCN7HBUG2Xy6G7sVbppc0BxDtS+bBo3yfZWL/6rdn1PEg1EC2qRCU3CsygiRKycRoFs=\n\
         bob:{SSHA512}1sa7i80muSW/62WFoRIdMWpPgCN7HBUG2Xy6G7sVbppc0BxDtS+bBo3yfZWL/6rdn1PEg1EC2qRCU3CsygiRKycRoFs=\n",
    );
    let ip_block = IpBlock::new(IpLists::default());
    let delay = FailureDelayLayer::new();
    let ban = AutoBanLayer::new(ip_block.clone()).failures(4);
    let auth = ServiceBuilder::new()
        .layer(delay.clone())
        .layer(ban.clone())
        .layer(VerifyLimitLayer::new(2))
        .service(users);
    let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let session = Arc::new(Session::new(
        Protocol::Imap,
        SocketAddr::new(ip, 50_000),
        "127.0.0.1:143".parse().unwrap(),
    ));
    let mut answers = Vec::new();
    for _ in 0..4 {
        let credentials = Credentials {
            user: user.into(),
            secret: Secret::Password(password.into()),
            session: Some(session.clone()),
        };
        let started = tokio::time::Instant::now();
        let answer = auth.clone().oneshot(credentials).await;
        answers.push((answer, started.elapsed()));
    }
    Trace {
        answers,
        next_delay_ip: delay.next_delay(Some(ip), "someone else"),
        next_delay_user: delay.next_delay(None, user),
        recent_failures: ban.recent_failures(ip),
        permitted: ip_block.permits(ip),
    }
}

/// The auth layers see one answer for both, `InvalidCredentials`, and so delay, count and
/// ban alike: the same replies after the same delays, the same counts after them.
#[tokio::test(start_paused = true)]
async fn the_auth_layers_treat_an_unknown_user_as_a_wrong_password() {
    let wrong_password = failed_logins("alice", "guess").await;
    let unknown_user = failed_logins("nobody", "guess").await;
    assert_eq!(unknown_user, wrong_password);
    // And what they are: delayed 2, 4, 8, 15 s; the fourth failure banned the address.
    let delays: Vec<Duration> = wrong_password.answers.iter().map(|(_, d)| *d).collect();
    assert_eq!(
        delays,
        [2, 4, 8, 15].map(Duration::from_secs),
        "{wrong_password:?}"
    );
    assert!(
        wrong_password
            .answers
            .iter()
            .all(|(answer, _)| *answer == Err(AuthError::InvalidCredentials))
    );
    assert!(!wrong_password.permitted, "banned after four failures");
}

/// The example server's passwd-file for the comparisons: demo (written at first start) and a
/// user with stored SCRAM keys (the Dovecot fixture's), whose iteration count is the one most
/// SCRAM-capable entries have.
const SCRAM_USER: &str = "scramsha256";

fn server_with_scram_user(auth_keys: &str) -> ExampleServer {
    let server = ExampleServer::start_with_auth(auth_keys, "");
    let field = include_str!("fixtures/dovecot_schemes.txt")
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{SCRAM_USER} pw-{SCRAM_USER} ")))
        .expect("the fixture's SCRAM line");
    let mut users = std::fs::OpenOptions::new()
        .append(true)
        .open(server.passwd_file())
        .unwrap();
    writeln!(users, "{SCRAM_USER}:{field}").unwrap();
    drop(users);
    server.log_barrier();
    server
}

/// What `user` with `password` is told over IMAP LOGIN, IMAP AUTHENTICATE PLAIN, and POP3
/// USER then PASS, each from the address `source`.
fn replies(server: &ExampleServer, source: IpAddr, user: &str, password: &str) -> Vec<String> {
    let mut imap = RawClient::connect_from(source, server.imap);
    imap.line().expect("an IMAP greeting");
    let login = imap.cmd(&format!("a LOGIN \"{user}\" \"{password}\""));
    let plain = base64(format!("\0{user}\0{password}").as_bytes());
    let authenticate = imap.cmd(&format!("b AUTHENTICATE PLAIN {plain}"));
    let mut pop3 = RawClient::connect_from(source, server.pop3);
    pop3.greeting();
    let user_reply = pop3.cmd(&format!("USER {user}"));
    let pass_reply = pop3.cmd(&format!("PASS {password}"));
    vec![login, authenticate, user_reply, pass_reply]
}

/// Through the example server: an unknown user gets the replies a wrong password gets, word
/// for word, on every plaintext path (POP3's USER says nothing about the name), and each
/// failure goes through the failure delay alike.
#[test]
fn an_unknown_user_is_answered_as_a_wrong_password_on_every_login_path() {
    let server = server_with_scram_user("failure_delay_ms = 1\nfailure_delay_max_ms = 1");
    let wrong_password = replies(&server, lo(21), support_example::USER, "guess");
    let unknown_user = replies(&server, lo(22), "nobody", "guess");
    assert_eq!(unknown_user, wrong_password);
    assert_eq!(
        wrong_password,
        [
            "a NO [AUTHENTICATIONFAILED] Authentication failed",
            "b NO [AUTHENTICATIONFAILED] Authentication failed",
            "+OK Send your password",
            "-ERR [AUTH] Authentication failed",
        ]
    );
    // Three failures each, every one of them delayed.
    server.metrics_when(|m| m.sum("mail_auth_failures_delayed_total", &[]) == 6.0);
}

/// A SCRAM-SHA-256 client's first message for `user`, from `source`: the server-first
/// message's salt length and iteration count, the salt asked twice (the same both times?),
/// and the reply to a made-up proof.
const SCRAM_PROBE: &str = r#"
    import base64, socket, sys
    port, source, user = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    b64 = lambda data: base64.b64encode(data).decode()

    def server_first():
        s = socket.create_connection(('127.0.0.1', port), timeout=20, source_address=(source, 0))
        f = s.makefile('rwb')
        f.readline()
        f.write(('a AUTHENTICATE SCRAM-SHA-256 %s\r\n' % b64(b'n,,n=%s,r=clientnonce' % user.encode())).encode())
        f.flush()
        line = f.readline().decode().rstrip('\r\n')
        assert line.startswith('+ '), line
        attributes = dict(a.split('=', 1) for a in base64.b64decode(line[2:]).decode().split(','))
        return f, attributes

    f, first = server_first()
    _, again = server_first()
    salt = base64.b64decode(first['s'])
    print(len(salt), first['i'], first['s'] == again['s'], first['r'].startswith('clientnonce'))
    final = 'c=biws,r=%s,p=%s' % (first['r'], b64(bytes(32)))
    f.write((b64(final.encode()) + '\r\n').encode())
    f.flush()
    print(f.readline().decode().rstrip('\r\n'))
"#;

/// RFC 5802 section 5.1: a server should not tell that a user does not exist; it answers
/// with a salt and iteration count that look like a real user's. Over IMAP AUTHENTICATE:
/// the unknown user's salt is as long, the count the same, the salt the same at each asking
/// (a random one would give the name away), and a wrong proof is refused in the same words.
#[test]
fn scram_answers_an_unknown_user_with_a_salt_and_count_like_a_real_one() {
    let server = server_with_scram_user("failure_delay_ms = 0\nscram = true");
    let probe = |source: u8, user: &str| {
        let args = [
            server.imap.port().to_string(),
            lo(source).to_string(),
            user.to_owned(),
        ];
        run_python(&dedent(SCRAM_PROBE), args)
    };
    let known = probe(31, SCRAM_USER);
    let unknown = probe(32, "nobody");
    assert_eq!(
        known,
        "16 4096 True True\na NO [AUTHENTICATIONFAILED] Authentication failed\n"
    );
    assert_eq!(unknown, known);
}

// ---------------------------------------------------------------------------------------------
// User names and the Maildir root
// ---------------------------------------------------------------------------------------------

/// Every file and directory under `dir`, as paths relative to it.
fn tree(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            found.push(path.strip_prefix(dir).unwrap().display().to_string());
            if path.is_dir() {
                pending.push(path);
            }
        }
    }
    found.sort();
    found
}

/// A passwd-file may hold any name (Dovecot's does), and a login with such a name succeeds
/// at the password: the store is what refuses to take a name as a path. Names that would
/// climb out of the Maildir root (`../x`, `..`), point elsewhere (`/abs`), hide (`.x`), or
/// nest (`a/b`) are refused with a NO / -ERR at login, and nothing is created anywhere,
/// inside the data directory or out of it. A name with NUL cannot even be presented.
#[test]
fn user_names_that_would_leave_the_maildir_root_are_refused_at_login() {
    let server = ExampleServer::start();
    let data_dir = server.maildir().parent().unwrap().to_path_buf();
    let outside = tempfile::tempdir().unwrap();
    let absolute = outside.path().join("stolen").display().to_string();
    let names = [
        "../escape".to_owned(),
        "../../escape".to_owned(),
        "..".to_owned(),
        ".".to_owned(),
        ".hidden".to_owned(),
        "a/b".to_owned(),
        "demo/../../escape".to_owned(),
        absolute.clone(),
    ];
    let mut users = std::fs::OpenOptions::new()
        .append(true)
        .open(server.passwd_file())
        .unwrap();
    for name in &names {
        writeln!(users, "{name}:{{PLAIN}}pencil").unwrap();
    }
    writeln!(users, "nul\0name:{{PLAIN}}pencil").unwrap();
    drop(users);
    server.log_barrier();
    let before = tree(&data_dir);

    for (n, name) in names.iter().enumerate() {
        let mut imap = RawClient::connect_from(lo(40 + n as u8), server.imap);
        imap.line().expect("an IMAP greeting");
        let reply = imap.cmd(&format!("a LOGIN \"{name}\" pencil"));
        assert_eq!(
            reply, "a NO [UNAVAILABLE] Mailbox temporarily unavailable",
            "IMAP LOGIN {name:?}"
        );
        let selected = imap.cmd("b SELECT INBOX");
        assert!(selected.starts_with("b BAD"), "{name:?}: {selected}");
        let mut pop3 = RawClient::connect_from(lo(40 + n as u8), server.pop3);
        pop3.greeting();
        assert_eq!(pop3.cmd(&format!("USER {name}")), "+OK Send your password");
        assert_eq!(
            pop3.cmd("PASS pencil"),
            "-ERR [SYS/TEMP] Mailbox temporarily unavailable",
            "POP3 {name:?}"
        );
    }
    // NUL: IMAP strings cannot carry it (RFC 3501's CHAR8 excludes it) and a POP3 line
    // holding it is no command.
    let mut imap = RawClient::connect_from(lo(60), server.imap);
    imap.line().expect("an IMAP greeting");
    let reply = imap.cmd("a LOGIN {8}");
    assert!(reply.starts_with('+'), "{reply}");
    let reply = imap.cmd("nul\0name pencil");
    assert!(reply.starts_with("a BAD"), "LOGIN with NUL: {reply:?}");
    let mut pop3 = RawClient::connect_from(lo(60), server.pop3);
    pop3.greeting();
    let reply = pop3.cmd("USER nul\0name");
    assert!(reply.starts_with("-ERR"), "USER with NUL: {reply:?}");

    assert_eq!(tree(&data_dir), before, "the data directory changed");
    assert!(
        std::fs::read_dir(outside.path()).unwrap().next().is_none(),
        "{absolute} was created"
    );
    // The honest user still logs in.
    let mut imap = RawClient::connect(server.imap);
    imap.line().expect("an IMAP greeting");
    let reply = imap.cmd(&format!(
        "a LOGIN {} {}",
        support_example::USER,
        support_example::PASSWORD
    ));
    assert!(reply.starts_with("a OK"), "{reply}");
}

// ---------------------------------------------------------------------------------------------
// Refusal texts
// ---------------------------------------------------------------------------------------------

/// A configured refusal that starts with `[` and carries a line break: the IMAP client gets
/// one `* BYE` line whose text cannot be read as a response code (a space goes before the
/// `[`) and nothing after it. (The CR/LF half over POP3: `tests/policy_layers.rs`.)
#[test]
fn an_imap_refusal_text_cannot_pass_for_a_response_code() {
    let server = ExampleServer::start_with(
        "[layers.ip_block]\n\
         deny = [\"127.0.0.70/32\"]\n\
         message = \"[ALERT] Forged\\r\\na1 OK LOGIN completed\"\n",
    );
    let mut client = RawClient::connect_from(lo(70), server.imap);
    assert_eq!(
        client.line().as_deref(),
        Some("* BYE  [ALERT] Forgeda1 OK LOGIN completed")
    );
    let rest = client.read_to_eof();
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
}

/// The POP3 twin: a configured refusal that starts with `[` must not reach a client that
/// speaks RESP-CODES (which the server advertises in CAPA) as `-ERR [IN-USE] ...`, RFC 2449's
/// "the maildrop is locked"; a space goes before it. The server's own codes still go out: a
/// wrong password is `-ERR [AUTH]`.
#[test]
fn a_pop3_refusal_text_cannot_pass_for_a_response_code() {
    let server = ExampleServer::start_with_auth(
        "failure_delay_ms = 0",
        "[layers.ip_block]\n\
         deny = [\"127.0.0.71/32\"]\n\
         message = \"[IN-USE] haha\"\n",
    );
    let mut refused = RawClient::connect_from(lo(71), server.pop3);
    assert_eq!(refused.line().as_deref(), Some("-ERR  [IN-USE] haha"));
    let rest = refused.read_to_eof();
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));

    let mut client = RawClient::connect_from(lo(72), server.pop3);
    client.greeting();
    assert!(client.cmd("USER demo").starts_with("+OK"));
    let reply = client.cmd("PASS wrong");
    assert!(reply.starts_with("-ERR [AUTH] "), "{reply}");
}
