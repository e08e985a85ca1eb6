//! POP3 as a mail client sees it, through the server over loopback sockets: RFC 1939 (commands,
//! states, deletions committed only in UPDATE), RFC 2449 (CAPA, response codes), RFC 2595
//! (STLS), RFC 5034 (AUTH PLAIN) and RFC 6856 (UTF8), plus the session's defences against bad
//! input, silent clients and resets.

mod common;
mod support_shared;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tower::Layer;
use tower_mail::auth::PasswdFile;
use tower_mail::pop3::{Pop3Config, Pop3Service};
use tower_mail::server::{Server, ServerConfig, TlsMode};
use tower_mail::store::MemoryStore;
use tower_mail::{CloseReason, Protocol};
use tower_mail_layers::on_close::OnCloseLayer;

use common::{Client, Closed, Closes};
use support_shared::crlf;

/// A message already in CRLF form, with a body longer than two lines (for TOP).
const PLAIN: &[u8] =
    b"From: carol@example.com\r\nSubject: plain\r\n\r\nline one\r\nline two\r\nline three\r\n";
/// Lines starting with `.`, and one that is only `.`: RETR must dot-stuff them so that the
/// lone `.` does not end the reply early.
const DOTTED: &[u8] =
    b"Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nafter the lone dot\r\n";
/// Bare LF line endings, as some delivery agents store them: they must arrive as CRLF.
const BARE_LF: &[u8] = b"Subject: bare lf\n\nfirst\nsecond\n";
/// What alice's INBOX holds in most tests, as messages 1, 2 and 3.
const MESSAGES: [&[u8]; 3] = [PLAIN, DOTTED, BARE_LF];

/// `AUTH PLAIN` responses (RFC 4616): base64 of "\0alice\0secret" and of "\0alice\0wrong".
const PLAIN_ALICE: &str = "AGFsaWNlAHNlY3JldA==";
const PLAIN_ALICE_WRONG: &str = "AGFsaWNlAHdyb25n";

/// A POP3 server with a close-hook recorder outermost, as a deployment would stack it.
struct Harness {
    server: Server,
    addr: SocketAddr,
    closes: Closes,
}

impl Harness {
    /// The shared test service (plaintext logins allowed) over `store`, without TLS.
    async fn start(store: &MemoryStore) -> Harness {
        Harness::serve(common::pop3(store.clone()), TlsMode::None).await
    }

    async fn serve(service: Pop3Service<PasswdFile, MemoryStore>, tls: TlsMode) -> Harness {
        let closes = Closes::default();
        let stack = OnCloseLayer::new(closes.hook()).layer(service);
        let (server, addr) =
            common::serve(Protocol::Pop3, tls, ServerConfig::default(), stack).await;
        Harness {
            server,
            addr,
            closes,
        }
    }

    async fn connect(&self) -> Client<TcpStream> {
        Client::connect(self.addr).await
    }

    /// A client logged in as alice (greeting read, USER/PASS accepted).
    async fn login(&self) -> Client<TcpStream> {
        let mut client = self.connect().await;
        common::pop3_login(&mut client).await;
        client
    }

    /// Shut down and return the close records, after asserting one per connection with
    /// exactly these reasons.
    async fn finish(self, expected: &[CloseReason]) -> Vec<Closed> {
        let closed = common::shutdown_and_collect(&self.server, &self.closes).await;
        common::assert_close_reasons(&closed, expected);
        closed
    }
}

/// A store whose alice INBOX holds [`MESSAGES`].
async fn store_with_messages() -> MemoryStore {
    let store = MemoryStore::new();
    for message in MESSAGES {
        common::deliver(&store, "alice", message).await;
    }
    store
}

/// A POP3 service like the shared one, with `change` applied to its configuration.
fn pop3_with(
    store: &MemoryStore,
    change: impl FnOnce(&mut Pop3Config),
) -> Pop3Service<PasswdFile, MemoryStore> {
    let mut config = Pop3Config::default();
    config.allow_plaintext_login = true;
    change(&mut config);
    Pop3Service::new(PasswdFile::parse(common::USERS), store.clone(), config)
}

fn assert_ok(reply: &str) {
    assert!(reply.starts_with("+OK"), "expected +OK, got {reply:?}");
}

fn assert_err(reply: &str) {
    assert!(reply.starts_with("-ERR"), "expected -ERR, got {reply:?}");
}

/// Send a command answered by a message (RETR, TOP) and return the message as a client
/// rebuilds it: every line must end in CRLF, the lone `.` ends it, and one leading `.` is
/// removed from every other line (RFC 1939 section 3).
async fn fetch<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    client: &mut Client<T>,
    command: &str,
) -> Vec<u8> {
    assert_ok(&client.cmd(command).await);
    let mut message = Vec::new();
    loop {
        let line = client
            .raw_line()
            .await
            .expect("connection closed inside a message");
        assert!(
            line.ends_with(b"\r\n"),
            "line not ended by CRLF: {:?}",
            String::from_utf8_lossy(&line)
        );
        if line == b".\r\n" {
            return message;
        }
        message.extend_from_slice(line.strip_prefix(b".").unwrap_or(&line));
    }
}

/// A multi-line `number value` listing (LIST, UIDL).
async fn listing<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    client: &mut Client<T>,
    command: &str,
) -> BTreeMap<u32, String> {
    assert_ok(&client.cmd(command).await);
    client
        .body()
        .await
        .iter()
        .map(|line| {
            let (number, value) = line.split_once(' ').expect("`number value` line");
            (number.parse().expect("message number"), value.to_owned())
        })
        .collect()
}

/// The LIST entries `number -> size` that `messages` (numbered from 1) must produce.
fn expected_sizes(messages: &[(u32, &[u8])]) -> BTreeMap<u32, String> {
    messages
        .iter()
        .map(|&(number, message)| (number, crlf(message).len().to_string()))
        .collect()
}

async fn quit<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut client: Client<T>) {
    assert_ok(&client.cmd("QUIT").await);
    assert!(client.closed().await, "the server must close after QUIT");
}

/// STAT succeeds: the session in TRANSACTION survived whatever came before.
async fn assert_still_serving<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    client: &mut Client<T>,
) {
    assert_ok(&client.cmd("STAT").await);
}

// ---------------------------------------------------------------------------------------------
// RFC 1939: the TRANSACTION commands and the UPDATE state
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn retr_and_top_return_messages_byte_for_byte_with_crlf_and_dot_stuffing_undone() {
    let store = store_with_messages().await;
    let harness = Harness::start(&store).await;
    let mut client = harness.login().await;

    let total: usize = MESSAGES.iter().map(|m| crlf(m).len()).sum();
    assert_eq!(client.cmd("STAT").await, format!("+OK 3 {total}"));
    assert_eq!(
        listing(&mut client, "LIST").await,
        expected_sizes(&[(1, PLAIN), (2, DOTTED), (3, BARE_LF)])
    );
    assert_eq!(
        client.cmd("LIST 3").await,
        format!("+OK 3 {}", crlf(BARE_LF).len())
    );

    for (number, message) in (1..).zip(MESSAGES) {
        assert_eq!(
            fetch(&mut client, &format!("RETR {number}")).await,
            crlf(message),
            "RETR {number}"
        );
    }

    // TOP: the headers, the empty line, then at most n body lines.
    assert_eq!(
        fetch(&mut client, "TOP 1 0").await,
        b"From: carol@example.com\r\nSubject: plain\r\n\r\n"
    );
    assert_eq!(
        fetch(&mut client, "TOP 1 2").await,
        b"From: carol@example.com\r\nSubject: plain\r\n\r\nline one\r\nline two\r\n"
    );
    assert_eq!(
        fetch(&mut client, "TOP 3 1").await,
        b"Subject: bare lf\r\n\r\nfirst\r\n"
    );

    assert_ok(&client.cmd("NOOP").await);
    quit(client).await;
    harness.finish(&[CloseReason::Logout]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn uidl_is_stable_across_sessions_and_deletions_take_effect_only_after_quit() {
    let store = store_with_messages().await;
    let harness = Harness::start(&store).await;

    let mut first = harness.login().await;
    let uids = listing(&mut first, "UIDL").await;
    assert_eq!(uids.len(), 3);
    let distinct: BTreeSet<_> = uids.values().collect();
    assert_eq!(distinct.len(), 3, "unique ids must differ: {uids:?}");
    assert_eq!(first.cmd("UIDL 2").await, format!("+OK 2 {}", uids[&2]));
    quit(first).await;

    let mut second = harness.login().await;
    assert_eq!(
        listing(&mut second, "UIDL").await,
        uids,
        "UIDL changed between sessions"
    );

    assert_ok(&second.cmd("DELE 2").await);
    assert_eq!(
        listing(&mut second, "LIST").await,
        expected_sizes(&[(1, PLAIN), (3, BARE_LF)]),
        "a deleted message must vanish from LIST"
    );
    assert_err(&second.cmd("LIST 2").await);
    assert_err(&second.cmd("RETR 2").await);
    assert_err(&second.cmd("DELE 2").await);

    assert_ok(&second.cmd("RSET").await);
    assert_eq!(
        listing(&mut second, "LIST").await,
        expected_sizes(&[(1, PLAIN), (2, DOTTED), (3, BARE_LF)]),
        "RSET must undo the deletion"
    );

    assert_ok(&second.cmd("DELE 2").await);
    assert_ok(&second.cmd("NOOP").await);
    quit(second).await;

    // The deletion happened in UPDATE: the message is gone, the others keep their unique ids
    // and are renumbered.
    let mut third = harness.login().await;
    let remaining: usize = [PLAIN, BARE_LF].iter().map(|m| crlf(m).len()).sum();
    assert_eq!(third.cmd("STAT").await, format!("+OK 2 {remaining}"));
    let after: BTreeMap<u32, String> =
        BTreeMap::from([(1, uids[&1].clone()), (2, uids[&3].clone())]);
    assert_eq!(listing(&mut third, "UIDL").await, after);
    assert_eq!(fetch(&mut third, "RETR 2").await, crlf(BARE_LF));
    quit(third).await;

    harness
        .finish(&[
            CloseReason::Logout,
            CloseReason::Logout,
            CloseReason::Logout,
        ])
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_the_connection_without_quit_deletes_nothing() {
    let store = store_with_messages().await;
    let harness = Harness::start(&store).await;

    let mut client = harness.login().await;
    assert_ok(&client.cmd("DELE 1").await);
    assert_ok(&client.cmd("DELE 2").await);
    drop(client);
    // Wait for the session to end (and release the maildrop lock) before looking again.
    let closed = harness.closes.wait_for(1).await;
    assert_eq!(closed[0].reason, CloseReason::ClientClosed);

    let mut again = harness.login().await;
    let total: usize = MESSAGES.iter().map(|m| crlf(m).len()).sum();
    assert_eq!(again.cmd("STAT").await, format!("+OK 3 {total}"));
    quit(again).await;

    harness
        .finish(&[CloseReason::ClientClosed, CloseReason::Logout])
        .await;
}

// ---------------------------------------------------------------------------------------------
// Bad input: refused, counted, and harmless to the session and the server
// ---------------------------------------------------------------------------------------------

/// Log in, send each of `lines` (raw, with their CRLF), and expect each to be refused with
/// `-ERR` while the session goes on; then a fresh connection must still be served. Returns the
/// refusals.
async fn assert_refused_in_transaction(lines: &[&[u8]]) -> Vec<String> {
    let store = store_with_messages().await;
    let harness = Harness::start(&store).await;
    let mut client = harness.login().await;
    let mut replies = Vec::new();
    for line in lines {
        client.send_raw(line).await;
        let reply = client
            .line()
            .await
            .expect("connection closed after bad input");
        assert_err(&reply);
        assert_still_serving(&mut client).await;
        replies.push(reply);
    }
    quit(client).await;

    quit(harness.login().await).await;
    harness
        .finish(&[CloseReason::Logout, CloseReason::Logout])
        .await;
    replies
}

#[tokio::test(flavor = "multi_thread")]
async fn a_10000_byte_line_is_refused_as_too_long() {
    let mut line = vec![b'A'; 10_000];
    line.extend_from_slice(b"\r\n");
    let replies = assert_refused_in_transaction(&[&line]).await;
    assert!(
        replies[0].to_ascii_lowercase().contains("too long"),
        "{replies:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_binary_garbage_line_is_refused_without_echoing_the_garbage() {
    let replies =
        assert_refused_in_transaction(&[b"\xff\xfe\x00\x1b[2J\x80\x7f garbage \x01\r\n"]).await;
    // The reply reached the client as a line of text, so it was valid UTF-8; it must also be
    // free of the control bytes that were sent (a terminal escape must not reach a log viewer).
    assert!(
        replies[0].bytes().all(|b| (0x20..0x7f).contains(&b)),
        "{replies:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_command_is_refused() {
    assert_refused_in_transaction(&[b"XYZZY\r\n", b"FROBNICATE 1 2\r\n"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn retr_of_message_zero_a_missing_message_or_a_non_number_is_refused() {
    assert_refused_in_transaction(&[b"RETR 0\r\n", b"RETR 999\r\n", b"RETR x\r\n"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transaction_command_before_login_is_refused_and_login_still_works() {
    let store = store_with_messages().await;
    let harness = Harness::start(&store).await;
    let mut client = harness.connect().await;
    assert_ok(&client.line().await.unwrap());
    assert_err(&client.cmd("STAT").await);
    assert_err(&client.cmd("RETR 1").await);
    assert_ok(&client.cmd("USER alice").await);
    assert_ok(&client.cmd("PASS secret").await);
    assert_still_serving(&mut client).await;
    quit(client).await;

    quit(harness.login().await).await;
    harness
        .finish(&[CloseReason::Logout, CloseReason::Logout])
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn too_many_protocol_errors_close_the_connection() {
    let store = store_with_messages().await;
    let harness = Harness::start(&store).await;
    let max = Pop3Config::default().max_errors;
    assert!(max > 1);

    let mut client = harness.connect().await;
    assert_ok(&client.line().await.unwrap());
    for _ in 1..max {
        assert_err(&client.cmd("XYZZY").await);
    }
    // One error short of the limit the session still works.
    common::pop3_capabilities(&mut client).await;

    assert_err(&client.cmd("XYZZY").await);
    let rest = client.rest().await;
    let goodbye: Vec<&str> = rest.lines().collect();
    assert!(
        !goodbye.is_empty() && goodbye.iter().all(|line| line.starts_with("-ERR")),
        "expected a closing -ERR line, got {rest:?}"
    );

    // The server goes on serving others.
    quit(harness.login().await).await;
    harness
        .finish(&[CloseReason::ProtocolErrors, CloseReason::Logout])
        .await;
}

// ---------------------------------------------------------------------------------------------
// Authentication: USER/PASS, the maildrop lock, AUTH PLAIN (RFC 5034)
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_and_an_unknown_user_get_the_same_auth_error() {
    let store = store_with_messages().await;
    let harness = Harness::start(&store).await;
    let mut client = harness.connect().await;
    assert_ok(&client.line().await.unwrap());

    let known_user = client.cmd("USER alice").await;
    let wrong_password = client.cmd("PASS wrong").await;
    let unknown_user = client.cmd("USER mallory").await;
    let unknown_password = client.cmd("PASS wrong").await;

    assert!(
        wrong_password.starts_with("-ERR [AUTH] "),
        "{wrong_password}"
    );
    // No user enumeration: neither USER nor PASS tells the two cases apart.
    assert_eq!(known_user, unknown_user);
    assert_eq!(wrong_password, unknown_password);

    // Failed attempts do not spoil the session.
    assert_ok(&client.cmd("USER alice").await);
    assert_ok(&client.cmd("PASS secret").await);
    quit(client).await;
    harness.finish(&[CloseReason::Logout]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pass_without_user_is_refused() {
    let store = store_with_messages().await;
    let harness = Harness::start(&store).await;
    let mut client = harness.connect().await;
    assert_ok(&client.line().await.unwrap());
    assert_err(&client.cmd("PASS secret").await);
    assert_ok(&client.cmd("USER alice").await);
    assert_ok(&client.cmd("PASS secret").await);
    quit(client).await;
    harness.finish(&[CloseReason::Logout]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_session_gets_in_use_until_the_first_quits() {
    let store = store_with_messages().await;
    let harness = Harness::start(&store).await;
    let first = harness.login().await;

    let mut second = harness.connect().await;
    assert_ok(&second.line().await.unwrap());
    assert_ok(&second.cmd("USER alice").await);
    let locked = second.cmd("PASS secret").await;
    assert!(locked.starts_with("-ERR [IN-USE] "), "{locked}");

    quit(first).await;
    assert_ok(&second.cmd("USER alice").await);
    assert_ok(&second.cmd("PASS secret").await);
    assert_still_serving(&mut second).await;
    quit(second).await;
    harness
        .finish(&[CloseReason::Logout, CloseReason::Logout])
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_plain_with_an_initial_response_logs_in() {
    let store = store_with_messages().await;
    let harness = Harness::start(&store).await;
    let mut client = harness.connect().await;
    assert_ok(&client.line().await.unwrap());
    assert_ok(&client.cmd(&format!("AUTH PLAIN {PLAIN_ALICE}")).await);
    assert_still_serving(&mut client).await;
    quit(client).await;
    harness.finish(&[CloseReason::Logout]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_plain_without_an_initial_response_asks_for_it_with_a_continuation() {
    let store = store_with_messages().await;
    let harness = Harness::start(&store).await;
    let mut client = harness.connect().await;
    assert_ok(&client.line().await.unwrap());
    // RFC 5034: `+ ` and an empty challenge.
    assert_eq!(client.cmd("AUTH PLAIN").await, "+ ");
    assert_ok(&client.cmd(PLAIN_ALICE).await);
    assert_still_serving(&mut client).await;
    quit(client).await;
    harness.finish(&[CloseReason::Logout]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_cancelled_with_a_star_is_refused_and_the_session_goes_on() {
    let store = store_with_messages().await;
    let harness = Harness::start(&store).await;
    let mut client = harness.connect().await;
    assert_ok(&client.line().await.unwrap());
    assert_eq!(client.cmd("AUTH PLAIN").await, "+ ");
    assert_err(&client.cmd("*").await);
    assert_ok(&client.cmd("USER alice").await);
    assert_ok(&client.cmd("PASS secret").await);
    quit(client).await;
    harness.finish(&[CloseReason::Logout]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_plain_with_bad_base64_or_bad_credentials_is_refused() {
    let store = store_with_messages().await;
    let harness = Harness::start(&store).await;
    let mut client = harness.connect().await;
    assert_ok(&client.line().await.unwrap());

    assert_err(&client.cmd("AUTH PLAIN !!!notbase64").await);
    assert_eq!(client.cmd("AUTH PLAIN").await, "+ ");
    assert_err(&client.cmd("@@@notbase64").await);
    // Well-formed but wrong: AUTH-RESP-CODE (RFC 3206) says which kind of failure.
    let wrong = client.cmd(&format!("AUTH PLAIN {PLAIN_ALICE_WRONG}")).await;
    assert!(wrong.starts_with("-ERR [AUTH] "), "{wrong}");

    assert_ok(&client.cmd(&format!("AUTH PLAIN {PLAIN_ALICE}")).await);
    quit(client).await;
    harness.finish(&[CloseReason::Logout]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_without_a_mechanism_lists_plain() {
    let store = store_with_messages().await;
    let harness = Harness::start(&store).await;
    let mut client = harness.connect().await;
    assert_ok(&client.line().await.unwrap());
    assert_ok(&client.cmd("AUTH").await);
    let mechanisms = client.body().await;
    assert!(mechanisms.iter().any(|m| m == "PLAIN"), "{mechanisms:?}");
    quit(client).await;
    harness.finish(&[CloseReason::Logout]).await;
}

// ---------------------------------------------------------------------------------------------
// CAPA (RFC 2449) and UTF8 (RFC 6856)
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn capa_before_login_lists_every_supported_extension() {
    let store = store_with_messages().await;
    let harness = Harness::start(&store).await;
    let mut client = harness.connect().await;
    assert_ok(&client.line().await.unwrap());
    let caps = common::pop3_capabilities(&mut client).await;
    for keyword in [
        "USER",
        "TOP",
        "UIDL",
        "RESP-CODES",
        "AUTH-RESP-CODE",
        "PIPELINING",
        "UTF8",
    ] {
        assert!(
            common::has_capability(&caps, keyword),
            "{keyword} missing from {caps:?}"
        );
    }
    assert!(sasl_offers_plain(&caps), "SASL PLAIN missing from {caps:?}");
    quit(client).await;
    harness.finish(&[CloseReason::Logout]).await;
}

/// Whether the `SASL` capability lists the PLAIN mechanism.
fn sasl_offers_plain(caps: &[String]) -> bool {
    caps.iter().any(|line| {
        let mut words = line.split(' ');
        words.next() == Some("SASL") && words.any(|m| m.eq_ignore_ascii_case("PLAIN"))
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_utf8_command_is_accepted_before_login() {
    let store = store_with_messages().await;
    let harness = Harness::start(&store).await;
    let mut client = harness.connect().await;
    assert_ok(&client.line().await.unwrap());
    assert_ok(&client.cmd("UTF8").await);
    assert_ok(&client.cmd("USER alice").await);
    assert_ok(&client.cmd("PASS secret").await);
    quit(client).await;
    harness.finish(&[CloseReason::Logout]).await;
}

// ---------------------------------------------------------------------------------------------
// STLS (RFC 2595)
// ---------------------------------------------------------------------------------------------

/// A server offering STLS with a fresh self-signed certificate; returns the certificate's
/// PEM for the client to trust.
async fn start_with_stls(service: Pop3Service<PasswdFile, MemoryStore>) -> (Harness, String) {
    let (acceptor, cert_pem) = tower_mail::tls::self_signed(&["localhost"]).unwrap();
    (
        Harness::serve(service, TlsMode::Starttls(acceptor)).await,
        cert_pem,
    )
}

/// Run the client side of the TLS handshake after the server's `+OK` to STLS.
async fn handshake(client: Client<TcpStream>, cert_pem: &str) -> Client<TlsStream<TcpStream>> {
    // The server must say nothing in plaintext between its +OK and the handshake.
    assert!(
        client.buffered().is_empty(),
        "plaintext after +OK to STLS: {:?}",
        String::from_utf8_lossy(client.buffered())
    );
    let tls = common::tls_connector(cert_pem)
        .connect(
            ServerName::try_from("localhost").unwrap(),
            client.into_inner(),
        )
        .await
        .expect("TLS handshake after STLS");
    Client::new(tls)
}

#[tokio::test(flavor = "multi_thread")]
async fn stls_upgrades_the_session_to_tls_and_is_no_longer_offered() {
    let store = store_with_messages().await;
    let (harness, cert_pem) = start_with_stls(common::pop3(store.clone())).await;
    let mut client = harness.connect().await;
    assert_ok(&client.line().await.unwrap());
    assert!(common::has_capability(
        &common::pop3_capabilities(&mut client).await,
        "STLS"
    ));

    assert_ok(&client.cmd("STLS").await);
    let mut client = handshake(client, &cert_pem).await;

    let caps = common::pop3_capabilities(&mut client).await;
    assert!(
        !common::has_capability(&caps, "STLS"),
        "STLS offered over TLS: {caps:?}"
    );
    assert_err(&client.cmd("STLS").await);
    assert_ok(&client.cmd("USER alice").await);
    assert_ok(&client.cmd("PASS secret").await);
    assert_still_serving(&mut client).await;
    quit(client).await;

    let closed = harness.finish(&[CloseReason::Logout]).await;
    assert!(
        closed[0].secure,
        "the close hook must see the session as secure"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_pipelined_after_stls_in_plaintext_are_never_answered() {
    let store = store_with_messages().await;
    let (harness, cert_pem) = start_with_stls(common::pop3(store.clone())).await;
    let mut client = harness.connect().await;
    assert_ok(&client.line().await.unwrap());

    // A man in the middle appends a command to the client's STLS: it must be discarded, not
    // run once TLS is up (the STARTTLS command injection of CVE-2011-0411).
    client.send_raw(b"STLS\r\nCAPA\r\n").await;
    assert_ok(&client.line().await.unwrap());
    let mut client = handshake(client, &cert_pem).await;

    let first = client.cmd("QUIT").await;
    assert!(
        first.starts_with("+OK Bye"),
        "first reply over TLS was {first:?}, not QUIT's"
    );
    assert!(client.closed().await);
    let closed = harness.finish(&[CloseReason::Logout]).await;
    assert!(closed[0].secure);
}

#[tokio::test(flavor = "multi_thread")]
async fn stls_is_refused_on_a_listener_without_tls() {
    let store = store_with_messages().await;
    let harness = Harness::start(&store).await;
    let mut client = harness.connect().await;
    assert_ok(&client.line().await.unwrap());
    assert!(!common::has_capability(
        &common::pop3_capabilities(&mut client).await,
        "STLS"
    ));
    assert_err(&client.cmd("STLS").await);
    // Still a working plaintext session.
    assert_ok(&client.cmd("USER alice").await);
    assert_ok(&client.cmd("PASS secret").await);
    quit(client).await;
    harness.finish(&[CloseReason::Logout]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn plaintext_login_is_refused_until_tls_when_the_service_forbids_it() {
    let store = store_with_messages().await;
    let service = pop3_with(&store, |config| config.allow_plaintext_login = false);
    let (harness, cert_pem) = start_with_stls(service).await;
    let mut client = harness.connect().await;
    assert_ok(&client.line().await.unwrap());

    let caps = common::pop3_capabilities(&mut client).await;
    assert!(!common::has_capability(&caps, "USER"), "{caps:?}");
    assert!(!sasl_offers_plain(&caps), "{caps:?}");
    assert!(common::has_capability(&caps, "STLS"), "{caps:?}");
    let refused = client.cmd("USER alice").await;
    assert!(refused.starts_with("-ERR [AUTH]"), "{refused}");

    // Over TLS the same login is fine.
    assert_ok(&client.cmd("STLS").await);
    let mut client = handshake(client, &cert_pem).await;
    assert_ok(&client.cmd("USER alice").await);
    assert_ok(&client.cmd("PASS secret").await);
    quit(client).await;
    harness.finish(&[CloseReason::Logout]).await;
}

// ---------------------------------------------------------------------------------------------
// Silent and vanishing clients
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_client_is_told_and_disconnected_after_the_idle_timeout() {
    let store = store_with_messages().await;
    let service = pop3_with(&store, |config| {
        config.unauthenticated_idle_timeout = Duration::from_millis(300)
    });
    let harness = Harness::serve(service, TlsMode::None).await;
    let mut client = harness.connect().await;
    assert_ok(&client.line().await.unwrap());

    // Say nothing.
    assert_err(&client.line().await.expect("an -ERR before the close"));
    assert!(client.closed().await);
    harness.finish(&[CloseReason::IdleTimeout]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_silent_at_the_sasl_prompt_is_told_and_disconnected_after_the_idle_timeout() {
    let store = store_with_messages().await;
    let service = pop3_with(&store, |config| {
        config.unauthenticated_idle_timeout = Duration::from_millis(300)
    });
    let harness = Harness::serve(service, TlsMode::None).await;
    let mut client = harness.connect().await;
    assert_ok(&client.line().await.unwrap());
    assert_eq!(client.cmd("AUTH PLAIN").await, "+ ");

    // Never answer the challenge: the same goodbye as a client silent between commands.
    assert_err(&client.line().await.expect("an -ERR before the close"));
    assert!(client.closed().await);
    harness.finish(&[CloseReason::IdleTimeout]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_stops_reading_a_large_message_is_disconnected() {
    // Far more than loopback socket buffers hold, so the server's write must stall.
    let line = "x".repeat(998) + "\r\n";
    let big = format!("Subject: big\r\n\r\n{}", line.repeat(16 * 1024));
    let store = MemoryStore::new();
    common::deliver(&store, "alice", big.as_bytes()).await;
    let service = pop3_with(&store, |config| {
        config.idle_timeout = Duration::from_millis(300)
    });
    let harness = Harness::serve(service, TlsMode::None).await;
    let mut client = harness.connect().await;
    common::pop3_login(&mut client).await;

    // Ask for the message and never read it: the stalled client must not hold its
    // connection (and alice's maildrop lock) for ever.
    client.send("RETR 1").await;
    let closed = harness.closes.wait_for(1).await;
    assert!(
        matches!(
            closed[0].reason,
            CloseReason::IdleTimeout | CloseReason::Io(std::io::ErrorKind::TimedOut)
        ),
        "{:?}",
        closed[0].reason
    );
    drop(client);
    // ...and its close hook ran exactly once.
    harness.finish(&[closed[0].reason.clone()]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_reset_mid_session_ends_it_and_the_server_serves_the_next_client() {
    let store = store_with_messages().await;
    let harness = Harness::start(&store).await;
    let client = harness.login().await;
    // SO_LINGER 0: closing sends a RST instead of a FIN.
    let stream = client.into_inner();
    stream.set_zero_linger().unwrap();
    drop(stream);
    let closed = harness.closes.wait_for(1).await;
    assert_eq!(closed[0].reason, CloseReason::ClientClosed);

    let mut next = harness.login().await;
    assert_still_serving(&mut next).await;
    quit(next).await;
    harness
        .finish(&[CloseReason::ClientClosed, CloseReason::Logout])
        .await;
}
