//! IMAP as clients see it, through the server over loopback sockets: Python's imaplib where a
//! real client fits, raw sockets for what no polite client sends. Covers the greeting and
//! capabilities, logins (LOGIN, AUTHENTICATE PLAIN with and without SASL-IR, STARTTLS and its
//! pipelining attack, plaintext refusal), ID and observers, mailbox commands, LOGOUT, idle
//! timeouts, ending a session from elsewhere, bad input and refusals by layers.
//!
//! Needs `python3` (imaplib and ssl from the standard library).

mod common;
mod support_shared;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tower::util::MapRequestLayer;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use tower_mail::auth::{AuthError, Credentials, PasswdFile, User};
use tower_mail::imap::{ImapConfig, ImapService};
use tower_mail::server::{Server, ServerConfig, TlsMode};
use tower_mail::store::{Flags, Mailstore, MemoryStore};
use tower_mail::{
    BoxError, CloseReason, CloseReport, Connection, Protocol, Reject, Session, SessionEvent, State,
};
use tower_mail_layers::on_close::OnCloseLayer;
use tower_mail_layers::on_connect::OnConnectLayer;

use common::{Client, SOON};

/// `AUTHENTICATE PLAIN` messages (RFC 4616): base64 of "\0alice\0secret" and "\0alice\0wrong".
const PLAIN_ALICE: &str = "AGFsaWNlAHNlY3JldA==";
const PLAIN_ALICE_WRONG: &str = "AGFsaWNlAHdyb25n";

const MESSAGE: &[u8] = b"From: carol@example.com\r\nSubject: hello\r\n\r\nHi there\r\n";

// ---- Harness ----

/// What a close hook saw, including the IMAP-specific state.
#[derive(Debug, Clone)]
struct Closed {
    reason: CloseReason,
    state: State,
    user: Option<String>,
    selected: Option<String>,
    user_agent: Option<String>,
    secure: bool,
}

/// Records every close hook call.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Closed>>>);

impl Recorder {
    fn hook(&self) -> impl Fn(&Session, &CloseReport) + Clone + Send + Sync + 'static {
        let seen = self.0.clone();
        move |session: &Session, report: &CloseReport| {
            seen.lock().unwrap().push(Closed {
                reason: report.reason.clone(),
                state: session.state(),
                user: session.user(),
                selected: session.selected(),
                user_agent: session.user_agent(),
                secure: session.secure(),
            });
        }
    }
}

struct Harness {
    server: Server,
    addr: SocketAddr,
    recorder: Recorder,
}

fn config() -> ImapConfig {
    let mut config = ImapConfig::default();
    config.allow_plaintext_login = true;
    config
}

fn imap(store: &MemoryStore, config: ImapConfig) -> ImapService<PasswdFile, MemoryStore> {
    ImapService::new(PasswdFile::parse(common::USERS), store.clone(), config)
}

impl Harness {
    /// `stack` behind a close-hook recorder, outermost as a deployment would put it.
    async fn serve<S>(tls: TlsMode, stack: S) -> Harness
    where
        S: Service<Connection, Response = CloseReport, Error = BoxError> + Clone + Send + 'static,
        S::Future: Send + 'static,
    {
        let recorder = Recorder::default();
        let stack = OnCloseLayer::new(recorder.hook()).layer(stack);
        let (server, addr) =
            common::serve(Protocol::Imap, tls, ServerConfig::default(), stack).await;
        Harness {
            server,
            addr,
            recorder,
        }
    }

    /// The service over `store` with `config`, plaintext, no other layer.
    async fn start(store: &MemoryStore, config: ImapConfig) -> Harness {
        Harness::serve(TlsMode::None, imap(store, config)).await
    }

    /// A client that has read the greeting.
    async fn connect(&self) -> Client<TcpStream> {
        let mut client = Client::connect(self.addr).await;
        let greeting = client.line().await.expect("a greeting");
        assert!(
            greeting.starts_with("* OK [CAPABILITY IMAP4REV1 "),
            "{greeting}"
        );
        client
    }

    /// A client logged in as alice.
    async fn login(&self) -> Client<TcpStream> {
        let mut client = self.connect().await;
        let reply = command(&mut client, "L1 LOGIN alice secret").await;
        assert!(reply[0].starts_with("L1 OK [CAPABILITY "), "{reply:?}");
        client
    }

    /// Shut down (which waits for every connection task), then check that the close hooks
    /// ran exactly once per connection, with these reasons in any order.
    ///
    /// Sessions whose client just left are given time to notice first, so that shutdown does
    /// not overtake them and turn their reason into `Shutdown`.
    async fn finish(self, expected: &[CloseReason]) -> Vec<Closed> {
        let settled = async {
            while self.recorder.0.lock().unwrap().len() < expected.len() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        let _ = tokio::time::timeout(SOON, settled).await;
        self.server.shutdown(SOON).await;
        let closed = self.recorder.0.lock().unwrap().clone();
        let mut seen: Vec<String> = closed.iter().map(|c| format!("{:?}", c.reason)).collect();
        let mut want: Vec<String> = expected.iter().map(|r| format!("{r:?}")).collect();
        seen.sort();
        want.sort();
        assert_eq!(seen, want, "close hook records: {closed:#?}");
        closed
    }
}

/// Send a tagged command; return every line up to and including its tagged completion.
async fn command<T: AsyncRead + AsyncWrite + Unpin>(
    client: &mut Client<T>,
    text: &str,
) -> Vec<String> {
    client.send(text).await;
    let tag = text.split(' ').next().unwrap().to_owned();
    until_tagged(client, &tag).await
}

async fn until_tagged<T: AsyncRead + AsyncWrite + Unpin>(
    client: &mut Client<T>,
    tag: &str,
) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let line = client
            .line()
            .await
            .expect("connection closed before completion");
        let done = line.starts_with(&format!("{tag} "));
        lines.push(line);
        if done {
            return lines;
        }
    }
}

/// The session still answers, and so does a new connection.
async fn still_works<T: AsyncRead + AsyncWrite + Unpin>(client: &mut Client<T>, harness: &Harness) {
    assert_eq!(command(client, "N1 NOOP").await, ["N1 OK NOOP completed"]);
    let mut fresh = harness.connect().await;
    assert_eq!(
        command(&mut fresh, "N2 NOOP").await,
        ["N2 OK NOOP completed"]
    );
    assert_eq!(command(&mut fresh, "N3 LOGOUT").await.len(), 2);
}

/// The capability words of a `* CAPABILITY` line or a `[CAPABILITY ...]` code.
fn capabilities(line: &str) -> Vec<String> {
    let start = line.find("CAPABILITY ").expect("a capability list") + "CAPABILITY ".len();
    let rest = &line[start..];
    let end = rest.find(']').unwrap_or(rest.len());
    rest[..end].split(' ').map(str::to_owned).collect()
}

/// Run an imaplib script against `addr`: `HOST`, `PORT` and `ctx` (a TLS context that trusts
/// anything) are predefined. Returns stdout; fails the test if the script fails.
async fn python(addr: SocketAddr, body: &str) -> String {
    let script = format!(
        "import imaplib, ssl\nHOST, PORT = '{}', {}\nctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)\nctx.check_hostname = False\nctx.verify_mode = ssl.CERT_NONE\n{}\n",
        addr.ip(),
        addr.port(),
        support_shared::dedent(body)
    );
    support_shared::run_python_async(&script).await
}

async fn deliver(store: &MemoryStore, mailbox: &str, flags: Flags) -> u32 {
    store.ensure_user("alice").await.unwrap();
    store
        .append(
            "alice",
            mailbox,
            Bytes::from_static(MESSAGE),
            flags.into(),
            None,
        )
        .await
        .unwrap()
}

/// A TLS client over `tcp`, trusting `cert_pem`.
async fn tls_client(
    cert_pem: &str,
    tcp: TcpStream,
) -> Client<tokio_rustls::client::TlsStream<TcpStream>> {
    let tls = common::tls_connector(cert_pem)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake");
    Client::new(tls)
}

// ---- Greeting, capabilities, login ----

/// The greeting is encoded once per service and situation: connections in other situations,
/// or whose layers changed their settings, must each still get their own.
#[tokio::test(flavor = "multi_thread")]
async fn one_service_greets_each_connection_as_its_settings_say() {
    let store = MemoryStore::new();
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    let stack = ServiceBuilder::new()
        .layer(MapRequestLayer::new(move |mut conn: Connection| {
            let settings = conn.settings_mut();
            match seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                1 => settings.allow_plaintext_login = Some(false),
                2 => settings.hide_capability("IDLE"),
                3 => settings.greeting = Some("hello from a layer".into()),
                4 => settings.extra_capabilities.push("XTENANT".into()),
                _ => {}
            }
            conn
        }))
        .service(imap(&store, config()));
    let harness = Harness::serve(TlsMode::None, stack).await;
    let mut greetings = Vec::new();
    for _ in 0..6 {
        let mut client = Client::connect(harness.addr).await;
        greetings.push(client.line().await.expect("a greeting"));
        assert_eq!(command(&mut client, "Z LOGOUT").await.len(), 2);
    }
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 6);
    let caps: Vec<Vec<String>> = greetings.iter().map(|g| capabilities(g)).collect();
    let has = |n: usize, cap: &str| caps[n].iter().any(|c| c == cap);
    // 0: the service's own; 5: the same again, byte for byte.
    assert!(has(0, "AUTH=PLAIN") && has(0, "IDLE") && !has(0, "LOGINDISABLED"));
    assert_eq!(greetings[5], greetings[0]);
    // 1: plaintext refused by a layer.
    assert!(
        has(1, "LOGINDISABLED") && !has(1, "AUTH=PLAIN"),
        "{:?}",
        caps[1]
    );
    // 2: IDLE withheld, the rest as the service's.
    assert!(!has(2, "IDLE") && has(2, "AUTH=PLAIN"), "{:?}", caps[2]);
    // 3: the layer's greeting text, the service's capabilities.
    assert!(
        greetings[3].ends_with("] hello from a layer"),
        "{}",
        greetings[3]
    );
    assert_eq!(caps[3], caps[0]);
    // 4: an extra capability.
    assert!(has(4, "XTENANT") && !has(0, "XTENANT"), "{:?}", caps[4]);
    harness.finish(&vec![CloseReason::Logout; 6]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn greeting_and_capability_advertise_only_what_is_served() {
    let harness = Harness::start(&MemoryStore::new(), config()).await;
    let mut client = Client::connect(harness.addr).await;
    let greeting = client.line().await.unwrap();
    assert!(
        greeting.ends_with("] tower-mail IMAP4rev1 server ready"),
        "{greeting}"
    );
    let reply = command(&mut client, "a1 CAPABILITY").await;
    assert_eq!(reply.len(), 2, "{reply:?}");
    assert!(reply[0].starts_with("* CAPABILITY IMAP4REV1 "));
    assert_eq!(reply[1], "a1 OK CAPABILITY completed");
    let caps = capabilities(&reply[0]);
    assert_eq!(capabilities(&greeting), caps);
    for expected in [
        "AUTH=PLAIN",
        "SASL-IR",
        "ID",
        "ENABLE",
        "NAMESPACE",
        "UNSELECT",
        "IDLE",
        "UIDPLUS",
        "MOVE",
        "LITERAL+",
        "CHILDREN",
        "SPECIAL-USE",
        "CONDSTORE",
        "QRESYNC",
    ] {
        assert!(
            caps.contains(&expected.to_owned()),
            "{expected} in {caps:?}"
        );
    }
    // No TLS on this listener, plaintext allowed.
    for absent in ["STARTTLS", "LOGINDISABLED"] {
        assert!(!caps.contains(&absent.to_owned()), "{absent} in {caps:?}");
    }
    assert_eq!(command(&mut client, "a2 LOGOUT").await.len(), 2);
    harness.finish(&[CloseReason::Logout]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn layers_add_and_withhold_capabilities_safely() {
    let tune = MapRequestLayer::new(|mut conn: Connection| {
        let settings = conn.settings_mut();
        settings.hide_capability("ID");
        settings.hide_capability("SASL-IR");
        settings.extra_capabilities.push("XYZZY".into());
        settings
            .extra_capabilities
            .push("X-EVIL\r\n* OK [ALERT] injected".into());
        settings.greeting = Some("Hello\r\n* BYE fake".into());
        conn
    });
    let store = MemoryStore::new();
    let harness = Harness::serve(TlsMode::None, tune.layer(imap(&store, config()))).await;
    let mut client = Client::connect(harness.addr).await;
    let greeting = client.line().await.unwrap();
    assert!(greeting.ends_with("] Hello* BYE fake"), "{greeting}");
    let reply = command(&mut client, "a1 CAPABILITY").await;
    let caps = capabilities(&reply[0]);
    assert!(caps.contains(&"XYZZY".to_owned()), "{caps:?}");
    assert!(!caps.contains(&"ID".to_owned()), "{caps:?}");
    assert!(!reply.iter().any(|l| l.contains("EVIL")), "{reply:?}");
    assert!(!caps.contains(&"SASL-IR".to_owned()), "{caps:?}");
    assert!(caps.contains(&"AUTH=PLAIN".to_owned()), "{caps:?}");
    let reply = command(&mut client, r#"a2 ID ("name" "x")"#).await;
    assert_eq!(reply, ["a2 BAD Unknown command"]);
    // Withheld SASL-IR: the response must come after the challenge.
    let reply = command(&mut client, &format!("a3 AUTHENTICATE PLAIN {PLAIN_ALICE}")).await;
    assert_eq!(reply, ["a3 BAD Unknown command"]);
    drop(client);
    harness.finish(&[CloseReason::ClientClosed]).await;
}

/// An IMAP server over one message in INBOX whose first connection is withheld capability
/// `hidden[0]` and every later one `hidden[1]`.
async fn hiding_in_turn(hidden: [&'static str; 2]) -> Harness {
    let store = MemoryStore::new();
    deliver(&store, "INBOX", Flags::EMPTY).await;
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stack = ServiceBuilder::new()
        .layer(MapRequestLayer::new(move |mut conn: Connection| {
            let nth = connections.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            conn.settings_mut().hide_capability(hidden[nth.min(1)]);
            conn
        }))
        .service(imap(&store, config()));
    Harness::serve(TlsMode::None, stack).await
}

/// SORT=DISPLAY withheld alone leaves SORT's other keys; SORT withheld takes both. Either way
/// a withheld capability's command is unknown, as for every other capability.
#[tokio::test(flavor = "multi_thread")]
async fn layers_withhold_sort_and_its_display_keys() {
    let harness = hiding_in_turn(["SORT=DISPLAY", "SORT"]).await;

    let mut client = harness.login().await;
    let caps = capabilities(&command(&mut client, "a1 CAPABILITY").await[0]);
    assert!(caps.contains(&"SORT".to_owned()), "{caps:?}");
    assert!(!caps.contains(&"SORT=DISPLAY".to_owned()), "{caps:?}");
    command(&mut client, "a2 SELECT INBOX").await;
    let reply = command(&mut client, "a3 SORT (FROM) UTF-8 ALL").await;
    assert_eq!(reply, ["* SORT 1", "a3 OK SORT completed"]);
    let reply = command(&mut client, "a4 SORT (DISPLAYFROM) UTF-8 ALL").await;
    assert_eq!(reply, ["a4 BAD Unknown command"]);
    drop(client);

    let mut client = harness.login().await;
    let caps = capabilities(&command(&mut client, "b1 CAPABILITY").await[0]);
    assert!(!caps.iter().any(|cap| cap.starts_with("SORT")), "{caps:?}");
    command(&mut client, "b2 SELECT INBOX").await;
    let reply = command(&mut client, "b3 UID SORT (FROM) UTF-8 ALL").await;
    assert_eq!(reply, ["b3 BAD Unknown command"]);
    drop(client);
    harness
        .finish(&[CloseReason::ClientClosed, CloseReason::ClientClosed])
        .await;
}

/// THREAD=REFERENCES withheld alone leaves ORDEREDSUBJECT; THREAD withheld takes every
/// algorithm. A withheld algorithm's command is unknown, as SORT's are.
#[tokio::test(flavor = "multi_thread")]
async fn layers_withhold_thread_algorithms() {
    let harness = hiding_in_turn(["THREAD=REFERENCES", "THREAD"]).await;

    let mut client = harness.login().await;
    let caps = capabilities(&command(&mut client, "a1 CAPABILITY").await[0]);
    assert!(
        caps.contains(&"THREAD=ORDEREDSUBJECT".to_owned()),
        "{caps:?}"
    );
    assert!(!caps.contains(&"THREAD=REFERENCES".to_owned()), "{caps:?}");
    command(&mut client, "a2 SELECT INBOX").await;
    let reply = command(&mut client, "a3 THREAD ORDEREDSUBJECT UTF-8 ALL").await;
    assert_eq!(reply, ["* THREAD (1)", "a3 OK THREAD completed"]);
    let reply = command(&mut client, "a4 THREAD REFERENCES UTF-8 ALL").await;
    assert_eq!(reply, ["a4 BAD Unknown command"]);
    drop(client);

    let mut client = harness.login().await;
    let caps = capabilities(&command(&mut client, "b1 CAPABILITY").await[0]);
    assert!(
        !caps.iter().any(|cap| cap.starts_with("THREAD")),
        "{caps:?}"
    );
    command(&mut client, "b2 SELECT INBOX").await;
    let reply = command(&mut client, "b3 UID THREAD ORDEREDSUBJECT UTF-8 ALL").await;
    assert_eq!(reply, ["b3 BAD Unknown command"]);
    drop(client);
    harness
        .finish(&[CloseReason::ClientClosed, CloseReason::ClientClosed])
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn login_with_imaplib_succeeds_and_fails_with_authenticationfailed() {
    let harness = Harness::start(&MemoryStore::new(), config()).await;
    let out = python(
        harness.addr,
        r#"
        M = imaplib.IMAP4(HOST, PORT)
        typ, data = M.login('alice', 'secret')
        print(typ, data[0].decode())
        print(M.logout()[0])
        M = imaplib.IMAP4(HOST, PORT)
        try:
            M.login('alice', 'wrong')
        except imaplib.IMAP4.error as err:
            print('FAILED', err)
        M.logout()
        "#,
    )
    .await;
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("OK [CAPABILITY IMAP4REV1 "), "{out}");
    assert!(lines[0].ends_with("] Logged in"), "{out}");
    assert!(
        !lines[0].contains("AUTH="),
        "no login capabilities once logged in: {out}"
    );
    assert_eq!(lines[1], "BYE");
    assert_eq!(
        lines[2],
        "FAILED b'[AUTHENTICATIONFAILED] Authentication failed'"
    );
    let closed = harness
        .finish(&[CloseReason::Logout, CloseReason::Logout])
        .await;
    let mut users: Vec<_> = closed.iter().map(|c| (c.user.clone(), c.state)).collect();
    users.sort_by_key(|(user, _)| user.clone());
    assert_eq!(
        users,
        [
            (None, State::Logout),
            (Some("alice".to_owned()), State::Logout)
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn authenticate_plain_with_sasl_ir_and_with_a_continuation() {
    let harness = Harness::start(&MemoryStore::new(), config()).await;
    // SASL-IR (RFC 4959): the response rides on the command.
    let mut client = harness.connect().await;
    let reply = command(&mut client, &format!("a1 AUTHENTICATE PLAIN {PLAIN_ALICE}")).await;
    assert!(
        reply[0].starts_with("a1 OK [CAPABILITY IMAP4REV1 "),
        "{reply:?}"
    );
    drop(client);

    // Without it: an empty challenge, then the response; a wrong one, then cancel with `*`.
    let mut client = harness.connect().await;
    client.send("b1 AUTHENTICATE PLAIN").await;
    assert_eq!(client.line().await.unwrap(), "+ ");
    client.send(PLAIN_ALICE_WRONG).await;
    assert_eq!(
        until_tagged(&mut client, "b1").await,
        ["b1 NO [AUTHENTICATIONFAILED] Authentication failed"]
    );
    client.send("b2 AUTHENTICATE PLAIN").await;
    assert_eq!(client.line().await.unwrap(), "+ ");
    client.send("*").await;
    assert_eq!(
        until_tagged(&mut client, "b2").await,
        ["b2 BAD Authentication cancelled"]
    );
    let reply = command(&mut client, "b3 AUTHENTICATE CRAM-MD5").await;
    assert_eq!(reply, ["b3 NO Unsupported authentication mechanism"]);
    drop(client);

    // imaplib sends the response after the continuation.
    let out = python(
        harness.addr,
        r#"
        M = imaplib.IMAP4(HOST, PORT)
        typ, _ = M.authenticate('PLAIN', lambda _: b'\0alice\0secret')
        print(typ, M.state)
        M.logout()
        "#,
    )
    .await;
    assert_eq!(out.trim(), "OK AUTH");
    let closed = harness
        .finish(&[
            CloseReason::ClientClosed,
            CloseReason::ClientClosed,
            CloseReason::Logout,
        ])
        .await;
    let users = closed.iter().filter(|c| c.user.as_deref() == Some("alice"));
    assert_eq!(users.count(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_service_errors_map_to_response_codes() {
    let auth = tower::service_fn(|credentials: Credentials| async move {
        match credentials.user.as_str() {
            "busy" => Err(AuthError::Limit),
            "down" => Err(AuthError::Unavailable),
            _ => Ok(User::new(credentials.user)),
        }
    });
    let service = ImapService::new(auth, MemoryStore::new(), config());
    let harness = Harness::serve(TlsMode::None, service).await;
    let mut client = harness.connect().await;
    assert_eq!(
        command(&mut client, "a1 LOGIN busy x").await,
        ["a1 NO [LIMIT] Too many sessions for this user"]
    );
    assert_eq!(
        command(&mut client, "a2 LOGIN down x").await,
        ["a2 NO [UNAVAILABLE] Authentication temporarily unavailable"]
    );
    drop(client);
    harness.finish(&[CloseReason::ClientClosed]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn plaintext_login_is_refused_before_starttls() {
    let (acceptor, _) = tower_mail::tls::self_signed(&["localhost"]).unwrap();
    let store = MemoryStore::new();
    let harness = Harness::serve(
        TlsMode::Starttls(acceptor),
        imap(&store, ImapConfig::default()),
    )
    .await;
    let mut client = Client::connect(harness.addr).await;
    let caps = capabilities(&client.line().await.unwrap());
    assert!(caps.contains(&"STARTTLS".to_owned()), "{caps:?}");
    assert!(caps.contains(&"LOGINDISABLED".to_owned()), "{caps:?}");
    assert!(!caps.iter().any(|c| c.starts_with("AUTH=")), "{caps:?}");
    let refused = "NO [PRIVACYREQUIRED] Plaintext login disallowed without TLS; use STARTTLS";
    assert_eq!(
        command(&mut client, "a1 LOGIN alice secret").await,
        [format!("a1 {refused}")]
    );
    assert_eq!(
        command(&mut client, &format!("a2 AUTHENTICATE PLAIN {PLAIN_ALICE}")).await,
        [format!("a2 {refused}")]
    );
    drop(client);
    let closed = harness.finish(&[CloseReason::ClientClosed]).await;
    assert_eq!(closed[0].user, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn starttls_then_login_with_imaplib() {
    let (acceptor, _) = tower_mail::tls::self_signed(&["localhost"]).unwrap();
    let store = MemoryStore::new();
    let harness = Harness::serve(
        TlsMode::Starttls(acceptor),
        imap(&store, ImapConfig::default()),
    )
    .await;
    let out = python(
        harness.addr,
        r#"
        M = imaplib.IMAP4(HOST, PORT)
        print(' '.join(M.capabilities))
        M.starttls(ssl_context=ctx)
        print(' '.join(M.capabilities))
        print(M.login('alice', 'secret')[0])
        M.logout()
        "#,
    )
    .await;
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split(' ').collect()).collect();
    assert!(lines[0].contains(&"STARTTLS") && lines[0].contains(&"LOGINDISABLED"));
    assert!(!lines[1].contains(&"STARTTLS"), "{out}");
    assert!(!lines[1].contains(&"LOGINDISABLED"), "{out}");
    assert!(lines[1].contains(&"AUTH=PLAIN"), "{out}");
    assert_eq!(lines[2], ["OK"]);
    let closed = harness.finish(&[CloseReason::Logout]).await;
    assert!(closed[0].secure);
    assert_eq!(closed[0].user.as_deref(), Some("alice"));
}

#[tokio::test(flavor = "multi_thread")]
async fn starttls_discards_commands_pipelined_in_plaintext() {
    let (acceptor, cert) = tower_mail::tls::self_signed(&["localhost"]).unwrap();
    let store = MemoryStore::new();
    let harness = Harness::serve(
        TlsMode::Starttls(acceptor),
        imap(&store, ImapConfig::default()),
    )
    .await;
    let mut client = harness.connect().await;
    // An attacker in the middle appends a command after STARTTLS, hoping the server runs it
    // as if the client had sent it over TLS (CVE-2011-0411 and kin).
    client.send_raw(b"a STARTTLS\r\nb CAPABILITY\r\n").await;
    assert_eq!(
        client.line().await.unwrap(),
        "a OK Begin TLS negotiation now"
    );
    assert!(client.buffered().is_empty());
    let mut tls = tls_client(&cert, client.into_inner()).await;
    // The first answer over TLS is to a command sent over TLS.
    assert_eq!(command(&mut tls, "c NOOP").await, ["c OK NOOP completed"]);
    let reply = command(&mut tls, "d CAPABILITY").await;
    assert!(!capabilities(&reply[0]).contains(&"STARTTLS".to_owned()));
    assert!(command(&mut tls, "e LOGIN alice secret").await[0].starts_with("e OK"));
    drop(tls);
    let closed = harness.finish(&[CloseReason::ClientClosed]).await;
    assert!(closed[0].secure);
}

#[tokio::test(flavor = "multi_thread")]
async fn starttls_on_an_implicit_tls_listener_is_bad() {
    let (acceptor, cert) = tower_mail::tls::self_signed(&["localhost"]).unwrap();
    let store = MemoryStore::new();
    let harness = Harness::serve(
        TlsMode::Implicit(acceptor),
        imap(&store, ImapConfig::default()),
    )
    .await;
    let tcp = TcpStream::connect(harness.addr).await.unwrap();
    let mut client = tls_client(&cert, tcp).await;
    let caps = capabilities(&client.line().await.unwrap());
    assert!(!caps.contains(&"STARTTLS".to_owned()), "{caps:?}");
    assert!(
        caps.contains(&"AUTH=PLAIN".to_owned()),
        "TLS is active: {caps:?}"
    );
    assert_eq!(
        command(&mut client, "a STARTTLS").await,
        ["a BAD TLS is already active"]
    );
    assert!(command(&mut client, "b LOGIN alice secret").await[0].starts_with("b OK"));
    drop(client);
    // imaplib over implicit TLS, too.
    let out = python(
        harness.addr,
        r#"
        M = imaplib.IMAP4_SSL(HOST, PORT, ssl_context=ctx)
        print(M.login('alice', 'secret')[0])
        M.logout()
        "#,
    )
    .await;
    assert_eq!(out.trim(), "OK");
    harness
        .finish(&[CloseReason::ClientClosed, CloseReason::Logout])
        .await;
}

// ---- ID and observers ----

#[tokio::test(flavor = "multi_thread")]
async fn id_is_recorded_for_layers_and_close_hooks() {
    let harness = Harness::start(&MemoryStore::new(), config()).await;
    let out = python(
        harness.addr,
        r#"
        M = imaplib.IMAP4(HOST, PORT)
        typ, _ = M.xatom('ID', '("name" "TestClient" "version" "1.0" "os" NIL)')
        print(typ, M.response('ID')[1][0].decode())
        M.logout()
        "#,
    )
    .await;
    assert_eq!(out.trim(), r#"OK ("name" "tower-mail")"#);
    let closed = harness.finish(&[CloseReason::Logout]).await;
    assert_eq!(closed[0].user_agent.as_deref(), Some("TestClient/1.0"));
}

/// Refuses clients whose ID names them BadClient, and selecting Trash.
fn gatekeeper() -> MapRequestLayer<impl Fn(Connection) -> Connection + Clone> {
    MapRequestLayer::new(|mut conn: Connection| {
        conn.observe(Arc::new(
            |session: &Session, event: &SessionEvent<'_>| match event {
                SessionEvent::ClientId { .. }
                    if session
                        .user_agent()
                        .is_some_and(|agent| agent.starts_with("BadClient")) =>
                {
                    Err(Reject::new("Please upgrade BadClient"))
                }
                SessionEvent::MailboxSelected { mailbox: "Trash" } => {
                    Err(Reject::new("Trash is off limits"))
                }
                _ => Ok(()),
            },
        ));
        conn
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn an_observer_refuses_a_client_by_its_user_agent() {
    let store = MemoryStore::new();
    let harness = Harness::serve(TlsMode::None, gatekeeper().layer(imap(&store, config()))).await;
    let mut good = harness.connect().await;
    let reply = command(&mut good, r#"a1 ID ("name" "GoodClient")"#).await;
    assert_eq!(
        reply,
        [r#"* ID ("name" "tower-mail")"#, "a1 OK ID completed"]
    );

    let mut bad = harness.connect().await;
    bad.send(r#"b1 ID ("name" "BadClient" "version" "2.1")"#)
        .await;
    assert_eq!(bad.rest().await, "* BYE Please upgrade BadClient\r\n");

    let mut client = harness.login().await;
    client.send("c1 SELECT Trash").await;
    let rest = client.rest().await;
    assert!(rest.ends_with("* BYE Trash is off limits\r\n"), "{rest}");
    assert!(!rest.contains("c1 OK"), "{rest}");

    drop(good);
    let closed = harness
        .finish(&[
            CloseReason::ClientClosed,
            CloseReason::Kicked("Please upgrade BadClient".into()),
            CloseReason::Kicked("Trash is off limits".into()),
        ])
        .await;
    let bad = closed.iter().find(|c| c.user_agent.is_some()).unwrap();
    assert_eq!(bad.user_agent.as_deref(), Some("BadClient/2.1"));
}

/// RFC 2971's largest ID (30 pairs, fields of 30 octets, values of 1024) is over the 8 KiB
/// line cap, and was answered `* BYE Command line too long` before login.
#[tokio::test(flavor = "multi_thread")]
async fn an_id_of_rfc_2971s_largest_size_is_taken_before_and_after_login() {
    let harness = Harness::start(&MemoryStore::new(), config()).await;
    let out = python(
        harness.addr,
        r#"
        imaplib.Commands['ID'] = ('NONAUTH', 'AUTH', 'SELECTED')
        def quoted(s):
            return '"' + s.replace('\\', '\\\\').replace('"', '\\"') + '"'
        def id_args(name, pairs, value):
            fields = [('field%d' % i).ljust(30, '-') for i in range(1, pairs)]
            return '("name" %s %s)' % (quoted(name), ' '.join(quoted(f) + ' ' + quoted(value) for f in fields))
        M = imaplib.IMAP4(HOST, PORT)
        typ, _ = M.xatom('ID', id_args('Before', 30, 'v' * 1024))
        print('before', typ, M.response('ID')[1][0].decode())
        M.login('alice', 'secret')
        # Every octet a quote or a backslash: the longest way to write the largest ID.
        typ, _ = M.xatom('ID', id_args('After', 30, '"\\' * 512))
        print('after', typ)
        for what, args in [('31 pairs', id_args('x', 31, 'v')), ('a long value', id_args('y', 2, 'v' * 1025))]:
            try:
                M.xatom('ID', args)
            except imaplib.IMAP4.error as e:
                print(what, e)
        print('noop', M.noop()[0])
        M.logout()
        "#,
    )
    .await;
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            r#"before OK ("name" "tower-mail")"#,
            "after OK",
            "31 pairs ID command error: BAD [b'ID takes at most 30 field-value pairs (RFC 2971)']",
            "a long value ID command error: BAD [b'ID values are at most 1024 octets (RFC 2971)']",
            "noop OK",
        ]
    );
    let closed = harness.finish(&[CloseReason::Logout]).await;
    assert_eq!(
        closed[0].user_agent.as_deref(),
        Some("After"),
        "the refused IDs replaced nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn id_values_may_be_literals_before_login_and_an_id_has_a_cap_of_its_own() {
    let harness = Harness::start(&MemoryStore::new(), config()).await;
    let mut client = harness.connect().await;
    // 30 values of 1024 octets, each a synchronizing literal: 30 KiB, far over the 4 KiB
    // literal cap before login, which LOGIN still has.
    let value = [b'v'; 1024];
    for i in 0..30 {
        let field = match i {
            0 => "a1 ID (\"name\"".to_owned(),
            i => format!(" \"field{i}\""),
        };
        client.send(&format!("{field} {{1024}}")).await;
        assert_eq!(
            client.line().await.unwrap(),
            "+ Ready for literal data",
            "{i}"
        );
        client.send_raw(&value).await;
    }
    client.send(")").await;
    assert_eq!(
        until_tagged(&mut client, "a1").await,
        [r#"* ID ("name" "tower-mail")"#, "a1 OK ID completed"]
    );
    assert_eq!(
        client.cmd("a2 LOGIN alice {5000}").await,
        "a2 BAD Literal too large"
    );

    // An ID line past its own cap (64,444 bytes) is answered at once, as any overlong line
    // before login: `* BYE`, without waiting for its end.
    client
        .send_raw(format!("b1 ID (\"name\" \"{}", "x".repeat(70_000)).as_bytes())
        .await;
    assert_eq!(client.rest().await, "* BYE Command line too long\r\n");
    harness.finish(&[CloseReason::ProtocolErrors]).await;
}

// ---- Mailboxes ----

#[tokio::test(flavor = "multi_thread")]
async fn select_and_examine_report_the_mailbox() {
    let store = MemoryStore::new();
    deliver(&store, "INBOX", Flags::SEEN).await;
    deliver(&store, "INBOX", Flags::EMPTY).await;
    let snapshot = store.snapshot("alice", "INBOX").await.unwrap();
    let (validity, highest) = (snapshot.uid_validity, snapshot.highest_modseq);
    let harness = Harness::start(&store, config()).await;
    let mut client = harness.login().await;
    let reply = command(&mut client, "s1 SELECT INBOX").await;
    assert_eq!(
        reply,
        [
            r"* FLAGS (\Answered \Flagged \Deleted \Seen \Draft)",
            "* 2 EXISTS",
            // Delivered before any session was told of them: recent for this first one.
            "* 2 RECENT",
            "* OK [UNSEEN 2] Message 2 is first unseen",
            &format!("* OK [UIDVALIDITY {validity}] UIDs valid"),
            "* OK [UIDNEXT 3] Predicted next UID",
            r"* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft \*)] Flags permitted",
            // RFC 7162: the one addition CONDSTORE makes for a client that never enables it.
            &format!("* OK [HIGHESTMODSEQ {highest}] Highest"),
            "s1 OK [READ-WRITE] SELECT completed",
        ]
    );
    let reply = command(&mut client, "s2 EXAMINE Sent").await;
    assert!(reply.contains(&"* 0 EXISTS".to_owned()), "{reply:?}");
    assert!(reply.contains(&"* OK [PERMANENTFLAGS ()] Flags permitted".to_owned()));
    // INBOX was selected: RFC 7162 section 3.2.11 marks where its responses end.
    assert_eq!(reply[0], "* OK [CLOSED] Previous mailbox closed");
    assert_eq!(reply.last().unwrap(), "s2 OK [READ-ONLY] EXAMINE completed");
    // A failed SELECT leaves no mailbox selected (RFC 3501 section 6.3.1).
    assert_eq!(
        command(&mut client, "s3 SELECT Nowhere").await,
        [
            "* OK [CLOSED] Previous mailbox closed",
            "s3 NO [NONEXISTENT] No such mailbox"
        ]
    );
    assert_eq!(
        command(&mut client, "s4 CLOSE").await,
        ["s4 BAD No mailbox selected"]
    );
    assert_eq!(
        command(&mut client, "s5 SELECT inbox")
            .await
            .last()
            .unwrap(),
        "s5 OK [READ-WRITE] SELECT completed"
    );
    assert_eq!(
        command(&mut client, "s6 FETCH 1 FLAGS").await,
        [r"* 1 FETCH (FLAGS (\Seen))", "s6 OK FETCH completed"]
    );
    assert_eq!(
        command(&mut client, "s7 UNSELECT").await,
        ["s7 OK UNSELECT completed"]
    );
    assert_eq!(
        command(&mut client, "s8 EXAMINE INBOX")
            .await
            .last()
            .unwrap(),
        "s8 OK [READ-ONLY] EXAMINE completed"
    );
    drop(client);

    // imaplib reads the same answers.
    let out = python(
        harness.addr,
        r#"
        M = imaplib.IMAP4(HOST, PORT)
        M.login('alice', 'secret')
        print(M.select('INBOX'))
        print(M.close()[0], M.state)
        M.logout()
        "#,
    )
    .await;
    assert_eq!(out, "('OK', [b'2'])\nOK AUTH\n");

    let closed = harness
        .finish(&[CloseReason::ClientClosed, CloseReason::Logout])
        .await;
    let dropped = closed
        .iter()
        .find(|c| c.reason == CloseReason::ClientClosed)
        .unwrap();
    assert_eq!(dropped.state, State::Selected);
    assert_eq!(dropped.selected.as_deref(), Some("INBOX"));
    let logged_out = closed
        .iter()
        .find(|c| c.reason == CloseReason::Logout)
        .unwrap();
    assert_eq!(logged_out.selected, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn close_expunges_unselect_does_not_and_the_selected_mailbox_follows_rename() {
    let store = MemoryStore::new();
    deliver(&store, "INBOX", Flags::DELETED).await;
    deliver(&store, "INBOX", Flags::EMPTY).await;
    let in_inbox = || async {
        store
            .snapshot("alice", "INBOX")
            .await
            .unwrap()
            .messages
            .len()
    };
    let harness = Harness::start(&store, config()).await;
    let mut client = harness.login().await;
    command(&mut client, "a SELECT INBOX").await;
    assert_eq!(
        command(&mut client, "b UNSELECT").await,
        ["b OK UNSELECT completed"]
    );
    assert_eq!(in_inbox().await, 2);
    command(&mut client, "c EXAMINE INBOX").await;
    assert_eq!(
        command(&mut client, "d CLOSE").await,
        ["d OK CLOSE completed"]
    );
    assert_eq!(in_inbox().await, 2, "EXAMINE is read-only");
    command(&mut client, "e SELECT INBOX").await;
    assert_eq!(
        command(&mut client, "f CLOSE").await,
        ["f OK CLOSE completed"]
    );
    assert_eq!(in_inbox().await, 1);

    command(&mut client, "g CREATE Work").await;
    command(&mut client, "h SELECT Work").await;
    let reply = command(&mut client, "i RENAME Work Play").await;
    assert_eq!(reply, ["i OK RENAME completed"]);
    let reply = command(&mut client, "j DELETE Play").await;
    assert_eq!(reply, ["j NO [INUSE] Close the mailbox before deleting it"]);
    drop(client);
    let closed = harness.finish(&[CloseReason::ClientClosed]).await;
    assert_eq!(closed[0].state, State::Selected);
    assert_eq!(closed[0].selected.as_deref(), Some("Play"));
}

#[tokio::test(flavor = "multi_thread")]
async fn list_shows_inbox_first_and_the_special_use_folders() {
    let store = MemoryStore::new();
    store.ensure_user("alice").await.unwrap();
    store.create_mailbox("alice", "Archive/2024").await.unwrap();
    let harness = Harness::start(&store, config()).await;
    let out = python(
        harness.addr,
        r#"
        M = imaplib.IMAP4(HOST, PORT)
        M.login('alice', 'secret')
        typ, data = M.list()
        print(typ)
        for line in data:
            print(line.decode())
        print('--')
        for line in M.list('""', '%')[1]:
            print(line.decode())
        print('--')
        for line in M.lsub()[1]:
            print(line.decode())
        M.logout()
        "#,
    )
    .await;
    let sections: Vec<Vec<&str>> = out.split("--\n").map(|s| s.lines().collect()).collect();
    assert_eq!(
        sections[0],
        [
            "OK",
            r#"(\HasNoChildren) "/" INBOX"#,
            r#"(\HasChildren) "/" Archive"#,
            r#"(\HasNoChildren) "/" Archive/2024"#,
            r#"(\HasNoChildren \Drafts) "/" Drafts"#,
            r#"(\HasNoChildren \Junk) "/" Junk"#,
            r#"(\HasNoChildren \Sent) "/" Sent"#,
            r#"(\HasNoChildren \Trash) "/" Trash"#,
        ],
        "{out}"
    );
    assert!(!sections[1].iter().any(|l| l.contains("2024")), "{out}");
    assert_eq!(sections[1].len(), 6, "{out}");
    // New users are subscribed to INBOX and the special-use folders, not to Archive.
    assert_eq!(sections[2].len(), 5, "{out}");
    assert!(!sections[2].iter().any(|l| l.contains("Archive")), "{out}");

    let mut client = harness.login().await;
    assert_eq!(
        command(&mut client, r#"d LIST "" """#).await,
        [r#"* LIST (\Noselect) "/" """#, "d OK LIST completed"]
    );
    assert_eq!(
        command(&mut client, r#"e LIST "Archive/" "*""#).await,
        [
            r#"* LIST (\HasNoChildren) "/" Archive/2024"#,
            "e OK LIST completed"
        ]
    );
    drop(client);
    harness
        .finish(&[CloseReason::Logout, CloseReason::ClientClosed])
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_rename_delete_and_subscribe_round_trip() {
    let store = MemoryStore::new();
    let harness = Harness::start(&store, config()).await;
    let out = python(
        harness.addr,
        r#"
        M = imaplib.IMAP4(HOST, PORT)
        M.login('alice', 'secret')
        def show(result):
            typ, data = result
            print(typ, data[0].decode() if data and data[0] else '')
        show(M.create('Projects/'))
        show(M.create('Projects/2025'))
        show(M.create('Projects'))
        show(M.rename('Projects/2025', 'Projects/Done'))
        show(M.subscribe('Projects/Done'))
        print([l.decode() for l in M.lsub('""', 'Projects*')[1] if l])
        show(M.unsubscribe('Projects/Done'))
        print([l.decode() for l in M.lsub('""', 'Projects*')[1] if l])
        show(M.delete('Projects/Done'))
        show(M.delete('Projects'))
        show(M.delete('INBOX'))
        show(M.delete('Projects'))
        print([l.decode() for l in M.list('""', 'Projects*')[1] if l])
        M.logout()
        "#,
    )
    .await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "OK CREATE completed",
            "OK CREATE completed",
            "NO [ALREADYEXISTS] Mailbox already exists",
            "OK RENAME completed",
            "OK SUBSCRIBE completed",
            r#"['(\\HasNoChildren) "/" Projects/Done']"#,
            "OK UNSUBSCRIBE completed",
            "[]",
            "OK DELETE completed",
            "OK DELETE completed",
            "NO [CANNOT] Not allowed on this mailbox",
            "NO [NONEXISTENT] No such mailbox",
            "[]",
        ],
        "{out}"
    );
    harness.finish(&[CloseReason::Logout]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn status_counts_messages_and_namespace_and_enable_answer() {
    let store = MemoryStore::new();
    deliver(&store, "INBOX", Flags::SEEN).await;
    deliver(&store, "INBOX", Flags::EMPTY).await;
    deliver(&store, "INBOX", Flags::DELETED).await;
    let validity = store.snapshot("alice", "INBOX").await.unwrap().uid_validity;
    let harness = Harness::start(&store, config()).await;
    let out = python(
        harness.addr,
        r#"
        M = imaplib.IMAP4(HOST, PORT)
        M.login('alice', 'secret')
        print(M.status('INBOX', '(MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)')[1][0].decode())
        print(M.status('Nowhere', '(MESSAGES)'))
        M.logout()
        "#,
    )
    .await;
    assert_eq!(
        out,
        format!(
            "INBOX (MESSAGES 3 RECENT 3 UIDNEXT 4 UIDVALIDITY {validity} UNSEEN 2)\n\
             ('NO', [b'[NONEXISTENT] No such mailbox'])\n"
        )
    );

    let mut client = harness.connect().await;
    assert_eq!(
        command(&mut client, "a ENABLE CONDSTORE").await,
        ["a BAD Log in first"]
    );
    command(&mut client, "b LOGIN alice secret").await;
    assert_eq!(
        command(&mut client, "c ENABLE CONDSTORE X-UNKNOWN").await,
        ["* ENABLED CONDSTORE", "c OK ENABLE completed"]
    );
    assert_eq!(
        command(&mut client, "d NAMESPACE").await,
        [
            r#"* NAMESPACE (("" "/")) NIL NIL"#,
            "d OK NAMESPACE completed"
        ]
    );
    command(&mut client, "e SELECT INBOX").await;
    assert_eq!(
        command(&mut client, "f ENABLE CONDSTORE").await,
        ["f BAD ENABLE is only valid before a mailbox is selected"]
    );
    drop(client);
    harness
        .finish(&[CloseReason::Logout, CloseReason::ClientClosed])
        .await;
}

// ---- Ending sessions ----

#[tokio::test(flavor = "multi_thread")]
async fn logout_says_bye_then_ok() {
    let harness = Harness::start(&MemoryStore::new(), config()).await;
    let mut client = harness.login().await;
    client.send("z LOGOUT").await;
    assert_eq!(
        client.rest().await,
        "* BYE Logging out\r\nz OK LOGOUT completed\r\n"
    );
    let closed = harness.finish(&[CloseReason::Logout]).await;
    assert_eq!(closed[0].state, State::Logout);
    assert_eq!(closed[0].user.as_deref(), Some("alice"));
}

/// On a paused clock, over an in-memory pipe: the timeouts are the subject, so virtual time
/// passes exactly as the test says, however slow the machine.
#[tokio::test(start_paused = true)]
async fn idle_timeout_is_short_before_login_and_long_after() {
    let mut config = config();
    config.unauthenticated_idle_timeout = Duration::from_secs(60);
    let service = imap(&MemoryStore::new(), config);
    let open = |service: ImapService<PasswdFile, MemoryStore>| {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let session = tokio::spawn(service.oneshot(Connection::for_test(Protocol::Imap, server)));
        (Client::new(client), session)
    };
    let (mut idle, idle_session) = open(service.clone());
    let (mut logged_in, logged_in_session) = open(service);
    assert!(idle.line().await.unwrap().starts_with("* OK"));
    assert!(logged_in.line().await.unwrap().starts_with("* OK"));
    assert!(command(&mut logged_in, "L LOGIN alice secret").await[0].starts_with("L OK"));

    // Silent for ten times the short timeout.
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(idle.rest().await, "* BYE Idle timeout\r\n");
    let report = idle_session.await.unwrap().unwrap();
    assert_eq!(report.reason, CloseReason::IdleTimeout);
    // The logged-in session has the long timeout (30 minutes): it still answers.
    assert_eq!(
        command(&mut logged_in, "a NOOP").await,
        ["a OK NOOP completed"]
    );
    // And past 30 minutes of silence it ends too.
    tokio::time::sleep(Duration::from_secs(31 * 60)).await;
    assert_eq!(logged_in.rest().await, "* BYE Idle timeout\r\n");
    let report = logged_in_session.await.unwrap().unwrap();
    assert_eq!(report.reason, CloseReason::IdleTimeout);
}

#[tokio::test(flavor = "multi_thread")]
async fn session_end_from_another_task_and_shutdown_say_bye() {
    let sessions: Arc<Mutex<Vec<Arc<Session>>>> = Arc::default();
    let keep = sessions.clone();
    let remember = MapRequestLayer::new(move |conn: Connection| {
        keep.lock().unwrap().push(conn.session().clone());
        conn
    });
    let store = MemoryStore::new();
    let harness = Harness::serve(TlsMode::None, remember.layer(imap(&store, config()))).await;
    let mut ended = harness.login().await;
    let mut stays = harness.login().await;
    let first = sessions.lock().unwrap()[0].clone();
    tokio::spawn(async move { first.end(CloseReason::Kicked("Maintenance".into())) });
    assert_eq!(ended.rest().await, "* BYE Maintenance\r\n");
    assert_eq!(command(&mut stays, "a NOOP").await, ["a OK NOOP completed"]);

    let (_, goodbye) = tokio::join!(harness.server.shutdown(SOON), stays.rest());
    assert_eq!(goodbye, "* BYE Server shutting down\r\n");
    // Shutting down again is a no-op: `finish` only collects the records.
    harness
        .finish(&[
            CloseReason::Kicked("Maintenance".into()),
            CloseReason::Shutdown,
        ])
        .await;
}

// ---- Bad input ----

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_answered_and_the_session_goes_on() {
    let harness = Harness::start(&MemoryStore::new(), config()).await;
    let mut client = harness.connect().await;

    // Garbage: a lone word (read as a tag without a command), then bytes that are no tag.
    assert_eq!(
        command(&mut client, "hello").await,
        ["hello BAD Unknown command or invalid arguments"]
    );
    client.send_raw(b"\xff\xfe\x01 garbage\r\n").await;
    assert_eq!(
        client.line().await.unwrap(),
        "* BAD Unknown command or invalid arguments"
    );
    still_works(&mut client, &harness).await;

    // A line over the 8 KiB cap before login: answered at once, and the connection closed.
    let long = format!("t1 NOOP {}\r\n", "x".repeat(10_000));
    let mut early = harness.connect().await;
    early.send_raw(long.as_bytes()).await;
    assert_eq!(early.rest().await, "* BYE Command line too long\r\n");

    // A synchronizing literal over the login-size cap: BAD instead of `+`, nothing is read.
    client.send("t2 LOGIN {100000}").await;
    assert_eq!(client.line().await.unwrap(), "t2 BAD Literal too large");
    still_works(&mut client, &harness).await;

    // Unknown command, and commands in the wrong state.
    assert_eq!(
        command(&mut client, "t3 FROBNICATE now").await,
        ["t3 BAD Unknown command or invalid arguments"]
    );
    assert_eq!(
        command(&mut client, "t4 SELECT INBOX").await,
        ["t4 BAD Log in first"]
    );
    assert!(command(&mut client, "t5 LOGIN alice secret").await[0].starts_with("t5 OK"));
    // After login the same line is skipped, and answered by its tag.
    client.send_raw(long.as_bytes()).await;
    assert_eq!(client.line().await.unwrap(), "t1 BAD Command line too long");
    assert_eq!(
        command(&mut client, "t6 LOGIN alice secret").await,
        ["t6 BAD Already logged in"]
    );
    assert_eq!(
        command(&mut client, "t7 UNSELECT").await,
        ["t7 BAD No mailbox selected"]
    );
    still_works(&mut client, &harness).await;
    drop(client);
    harness
        .finish(&[
            CloseReason::ClientClosed,
            CloseReason::ProtocolErrors,
            CloseReason::Logout,
            CloseReason::Logout,
            CloseReason::Logout,
        ])
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn literals_synchronizing_and_non_synchronizing() {
    let harness = Harness::start(&MemoryStore::new(), config()).await;
    let mut client = harness.connect().await;
    client.send("a LOGIN {5}").await;
    assert_eq!(client.line().await.unwrap(), "+ Ready for literal data");
    client.send_raw(b"alice {6}\r\n").await;
    assert_eq!(client.line().await.unwrap(), "+ Ready for literal data");
    client.send("secret").await;
    assert!(until_tagged(&mut client, "a").await[0].starts_with("a OK"));
    drop(client);

    // LITERAL+ (RFC 7888): no continuation request; the next line is the answer.
    let mut client = harness.connect().await;
    client
        .send_raw(b"b LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n")
        .await;
    assert!(client.line().await.unwrap().starts_with("b OK"));
    // One over the cap: the bytes are coming anyway, so the session ends.
    client.send("c CREATE {70000+}").await;
    assert_eq!(client.rest().await, "* BYE Literal too large\r\n");
    harness
        .finish(&[CloseReason::ClientClosed, CloseReason::ProtocolErrors])
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn too_many_errors_end_the_session() {
    let mut config = config();
    config.max_errors = 3;
    let harness = Harness::start(&MemoryStore::new(), config).await;
    let mut client = harness.connect().await;
    assert_eq!(command(&mut client, "a BOGUS").await.len(), 1);
    assert_eq!(command(&mut client, "b LOGIN alice wrong").await.len(), 1);
    client.send("c SELECT INBOX").await;
    assert_eq!(
        client.rest().await,
        "c BAD Log in first\r\n* BYE Too many errors\r\n"
    );
    harness.finish(&[CloseReason::ProtocolErrors]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_layer_refusal_reads_as_bye() {
    let block = OnConnectLayer::new(|_: Arc<Session>| async move {
        Err::<(), _>(Reject::new("IP address blocked"))
    });
    let store = MemoryStore::new();
    let stack = ServiceBuilder::new()
        .layer(block)
        .service(imap(&store, config()));
    let harness = Harness::serve(TlsMode::None, stack).await;
    let mut client = Client::connect(harness.addr).await;
    assert_eq!(client.rest().await, "* BYE IP address blocked\r\n");
    let closed = harness
        .finish(&[CloseReason::Rejected(
            Reject::new("IP address blocked").with_layer("on_connect"),
        )])
        .await;
    assert_eq!(closed[0].state, State::NotAuthenticated);
}
