//! Regression tests for every way WildDuck's connection management breaks
//! (design/wildduck-flaws.md, rows 1-9 and 11), against POP3 through the real server.
//! Each asserts what the client sees and that close hooks ran exactly once.

mod common;
mod support_shared;

use std::future::pending;
use std::sync::Arc;
use std::time::Duration;

use common::{Client, Closes, SOON, pop3, pop3_login, serve};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tower::ServiceBuilder;
use tower_mail::server::{ProxyConfig, ServerConfig, TlsMode};
use tower_mail::store::MemoryStore;
use tower_mail::{CloseReason, Protocol, Reject, Session, State};
use tower_mail_layers::on_close::OnCloseLayer;
use tower_mail_layers::on_connect::OnConnectLayer;

/// POP3 over an in-memory store behind a close recorder: the set-up most rows need.
async fn serve_recorded(
    tls: TlsMode,
    config: ServerConfig,
) -> (tower_mail::server::Server, std::net::SocketAddr, Closes) {
    let closes = Closes::default();
    let stack = ServiceBuilder::new()
        .layer(OnCloseLayer::new(closes.hook()))
        .service(pop3(MemoryStore::new()));
    let (server, addr) = serve(Protocol::Pop3, tls, config, stack).await;
    (server, addr, closes)
}

/// A fresh client still gets a greeting and can log in: the server lives on.
async fn assert_server_alive(addr: std::net::SocketAddr) {
    let mut client = Client::connect(addr).await;
    pop3_login(&mut client).await;
    assert!(client.cmd("QUIT").await.starts_with("+OK"));
}

/// Row 1: a client that resets while an async onConnect is pending must not crash anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_during_pending_on_connect_runs_close_hook_once_and_server_lives() {
    let closes = Closes::default();
    let hook_entered = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let stack = {
        let (entered, release) = (hook_entered.clone(), release.clone());
        ServiceBuilder::new()
            .layer(OnCloseLayer::new(closes.hook()))
            .layer(OnConnectLayer::new(move |_: Arc<Session>| {
                let (entered, release) = (entered.clone(), release.clone());
                async move {
                    entered.notify_one();
                    release.notified().await;
                    Ok(())
                }
            }))
            .service(pop3(MemoryStore::new()))
    };
    let (server, addr) = serve(
        Protocol::Pop3,
        TlsMode::None,
        ServerConfig::default(),
        stack,
    )
    .await;

    let stream = TcpStream::connect(addr).await.unwrap();
    hook_entered.notified().await;
    common::reset(stream);
    release.notify_one();

    let closed = closes.wait_for(1).await;
    assert_eq!(closed[0].reason, CloseReason::ClientClosed);
    let second = tokio::spawn(assert_server_alive(addr));
    // The second connection's hook waits for a release too.
    hook_entered.notified().await;
    release.notify_one();
    second.await.unwrap();
    server.shutdown(SOON).await;
    assert_eq!(
        closes.count(),
        2,
        "one close per connection: {:?}",
        closes.all()
    );
}

async fn refusal_seen(hook_stack_addr: std::net::SocketAddr) -> String {
    let mut client = Client::connect(hook_stack_addr).await;
    let line = client.line().await.expect("a refusal line");
    assert!(client.closed().await, "the server closes after refusing");
    line
}

/// Row 2: a failing, panicking or never-finishing onConnect refuses that one connection with a
/// generic text (or "Timeout"), and the server lives on.
#[tokio::test]
async fn failing_panicking_and_hanging_hooks_refuse_only_their_connection() {
    #[derive(Clone, Copy, Debug)]
    enum Mode {
        Refuse,
        PanicAtCall,
        PanicWhenPolled,
        Hang,
        Allow,
    }
    let mode = Arc::new(std::sync::Mutex::new(Mode::Allow));
    let closes = Closes::default();
    let stack = {
        let mode = mode.clone();
        ServiceBuilder::new()
            .layer(OnCloseLayer::new(closes.hook()))
            .layer(
                OnConnectLayer::new(move |_: Arc<Session>| {
                    let mode = *mode.lock().unwrap();
                    if let Mode::PanicAtCall = mode {
                        panic!("hook bug at call");
                    }
                    async move {
                        match mode {
                            Mode::Refuse => Err(Reject::new("Connection rejected: Custom reason")),
                            Mode::PanicWhenPolled => panic!("hook bug while polled"),
                            Mode::Hang => pending().await,
                            Mode::Allow | Mode::PanicAtCall => Ok(()),
                        }
                    }
                })
                .deadline(Duration::from_millis(300)),
            )
            .service(pop3(MemoryStore::new()))
    };
    let (server, addr) = serve(
        Protocol::Pop3,
        TlsMode::None,
        ServerConfig::default(),
        stack,
    )
    .await;

    let cases = [
        (Mode::Refuse, "-ERR Connection rejected: Custom reason"),
        (Mode::PanicAtCall, "-ERR Service temporarily unavailable"),
        (
            Mode::PanicWhenPolled,
            "-ERR Service temporarily unavailable",
        ),
        (Mode::Hang, "-ERR Timeout"),
    ];
    for (n, (case, expected)) in cases.iter().enumerate() {
        *mode.lock().unwrap() = *case;
        assert_eq!(refusal_seen(addr).await, *expected, "{case:?}");
        // The refused connection's hook ran before its refusal was written (row 3).
        let refusals: Vec<_> = closes
            .all()
            .into_iter()
            .filter_map(|c| match c.reason {
                CloseReason::Rejected(reject) => Some(reject),
                _ => None,
            })
            .collect();
        assert_eq!(refusals.len(), n + 1, "{case:?}");
        assert_eq!(refusals[n].layer(), "on_connect");
        *mode.lock().unwrap() = Mode::Allow;
        assert_server_alive(addr).await;
    }
    server.shutdown(SOON).await;
    assert_eq!(closes.count(), 8, "{:?}", closes.all());
}

/// Row 3: close hooks run as soon as the connection is gone. The hook of a refused connection
/// has already run when the client reads its refusal: nothing waits on a force-close timer.
#[tokio::test]
async fn close_hook_has_run_when_the_refused_client_reads_its_refusal() {
    let closes = Closes::default();
    let stack = ServiceBuilder::new()
        .layer(OnCloseLayer::new(closes.hook()))
        .layer(OnConnectLayer::new(|_: Arc<Session>| async {
            Err(Reject::new("IP address blocked"))
        }))
        .service(pop3(MemoryStore::new()));
    let (server, addr) = serve(
        Protocol::Pop3,
        TlsMode::None,
        ServerConfig::default(),
        stack,
    )
    .await;
    let mut client = Client::connect(addr).await;
    assert_eq!(client.line().await.unwrap(), "-ERR IP address blocked");
    assert_eq!(
        closes.count(),
        1,
        "the hook ran before the refusal was written"
    );
    assert!(client.closed().await);
    server.shutdown(SOON).await;
    assert_eq!(closes.count(), 1);
}

/// Row 4: a client that half-closes (FIN, then waits) gets exactly one close hook call.
#[tokio::test]
async fn half_close_runs_the_close_hook_exactly_once() {
    let (server, addr, closes) = serve_recorded(TlsMode::None, ServerConfig::default()).await;
    let mut client = Client::connect(addr).await;
    pop3_login(&mut client).await;
    client.get_mut().shutdown().await.unwrap();
    assert!(
        client.closed().await,
        "the server closes its side after our FIN"
    );
    let closed = closes.wait_for(1).await;
    assert_eq!(closed[0].reason, CloseReason::ClientClosed);
    drop(client);
    server.shutdown(SOON).await;
    assert_eq!(closes.count(), 1);
}

/// Row 5: there is no callback to forget. Five connections ending five different ways give
/// five close reports, and the server holds no connection afterwards.
#[tokio::test]
async fn every_way_of_ending_gives_exactly_one_close_report() {
    let closes = Closes::default();
    let store = MemoryStore::new();
    let mut config = tower_mail::pop3::Pop3Config::default();
    config.allow_plaintext_login = true;
    config.unauthenticated_idle_timeout = Duration::from_millis(300);
    let service = tower_mail::pop3::Pop3Service::new(
        tower_mail::auth::PasswdFile::parse(common::USERS),
        store,
        config,
    );
    let stack = ServiceBuilder::new()
        .layer(OnCloseLayer::new(closes.hook()))
        .service(service);
    let (server, addr) = serve(
        Protocol::Pop3,
        TlsMode::None,
        ServerConfig::default(),
        stack,
    )
    .await;

    // QUIT
    let mut c = Client::connect(addr).await;
    pop3_login(&mut c).await;
    assert!(c.cmd("QUIT").await.starts_with("+OK"));
    // Orderly close without QUIT
    let mut c = Client::connect(addr).await;
    pop3_login(&mut c).await;
    drop(c);
    // Reset
    let mut c = Client::connect(addr).await;
    c.line().await.unwrap();
    common::reset(c.into_inner());
    // Idle timeout
    let mut c = Client::connect(addr).await;
    c.line().await.unwrap();
    assert!(c.line().await.unwrap().starts_with("-ERR"));
    assert!(c.closed().await);
    // Too many errors
    let mut c = Client::connect(addr).await;
    c.line().await.unwrap();
    for _ in 0..9 {
        assert!(c.cmd("BOGUS").await.starts_with("-ERR"));
    }
    c.send("BOGUS").await;
    assert!(c.line().await.unwrap().starts_with("-ERR"));
    assert!(c.line().await.unwrap().contains("Too many errors"));
    assert!(c.closed().await);

    let closed = closes.wait_for(5).await;
    server.shutdown(SOON).await;
    assert_eq!(closes.count(), 5);
    assert_eq!(server.connections(), 0);
    let mut reasons: Vec<&str> = closed.iter().map(|c| c.reason.as_str()).collect();
    reasons.sort_unstable();
    assert_eq!(
        reasons,
        [
            "client_closed",
            "client_closed",
            "idle_timeout",
            "logout",
            "protocol_errors"
        ]
    );
}

/// Row 6: the POP3 close hook after QUIT sees the whole session: user and final state.
#[tokio::test]
async fn close_hook_after_quit_sees_user_and_update_state() {
    let (server, addr, closes) = serve_recorded(TlsMode::None, ServerConfig::default()).await;
    let mut client = Client::connect(addr).await;
    pop3_login(&mut client).await;
    assert!(client.cmd("QUIT").await.starts_with("+OK"));
    let closed = closes.wait_for(1).await;
    assert_eq!(closed[0].user.as_deref(), Some("alice"));
    assert_eq!(closed[0].state, State::Update);
    assert_eq!(closed[0].reason, CloseReason::Logout);
    assert!(closed[0].report.commands >= 3);
    assert!(closed[0].report.bytes_in > 0 && closed[0].report.bytes_out > 0);
    server.shutdown(SOON).await;
}

/// Row 7: every documented session field is present, typed and current.
#[tokio::test]
async fn session_fields_are_present_and_current() {
    let closes = Closes::default();
    let seen_at_connect = Arc::new(std::sync::Mutex::new(None));
    let stack = {
        let seen = seen_at_connect.clone();
        ServiceBuilder::new()
            .layer(OnCloseLayer::new(closes.hook()))
            .layer(OnConnectLayer::new(move |session: Arc<Session>| {
                *seen.lock().unwrap() = Some((
                    session.remote_addr(),
                    session.local_addr(),
                    session.created(),
                    session.secure(),
                    session.state(),
                ));
                async { Ok(()) }
            }))
            .service(pop3(MemoryStore::new()))
    };
    let (server, addr) = serve(
        Protocol::Pop3,
        TlsMode::None,
        ServerConfig::default(),
        stack,
    )
    .await;
    let before = std::time::SystemTime::now();
    let mut client = Client::connect(addr).await;
    let client_addr = client.get_mut().local_addr().unwrap();
    pop3_login(&mut client).await;
    assert!(client.cmd("QUIT").await.starts_with("+OK"));
    let (remote, local, created, secure, state) = seen_at_connect.lock().unwrap().unwrap();
    assert_eq!(remote, client_addr, "remoteAddress and remotePort");
    assert_eq!(local, addr, "localAddress and localPort");
    assert!(created >= before - Duration::from_secs(1) && created <= std::time::SystemTime::now());
    assert!(!secure);
    assert_eq!(state, State::Authorization);
    let closed = closes.wait_for(1).await;
    assert_eq!(closed[0].remote_addr, client_addr);
    assert_eq!(closed[0].session_id.len(), 16);
    server.shutdown(SOON).await;
}

fn proxy_config() -> ServerConfig {
    let mut proxy = ProxyConfig::trusting(vec!["127.0.0.0/8".parse().unwrap()]);
    proxy.timeout = Duration::from_millis(300);
    let mut config = ServerConfig::default();
    config.proxy = proxy;
    config
}

/// Row 8: PROXY v1 and v2 from trusted networks set the real client address; truncated or
/// missing headers close that connection only.
#[tokio::test]
async fn proxy_headers_are_honoured_and_bad_ones_close_only_their_connection() {
    let (server, addr, closes) = serve_recorded(TlsMode::None, proxy_config()).await;

    // v1, with the first command in the same packet as the header.
    let mut c = Client::connect(addr).await;
    c.get_mut()
        .write_all(b"PROXY TCP4 203.0.113.7 127.0.0.1 40001 110\r\nQUIT\r\n")
        .await
        .unwrap();
    assert!(c.line().await.unwrap().starts_with("+OK"));
    assert!(
        c.line().await.unwrap().starts_with("+OK"),
        "QUIT after the header was read"
    );
    // v2
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    v2.extend_from_slice(&[
        0x21, 0x11, 0, 12, 198, 51, 100, 9, 127, 0, 0, 1, 0x9c, 0x41, 0, 110,
    ]);
    let mut c = Client::connect(addr).await;
    c.get_mut().write_all(&v2).await.unwrap();
    assert!(c.line().await.unwrap().starts_with("+OK"));
    assert!(c.cmd("QUIT").await.starts_with("+OK"));
    let closed = closes.wait_for(2).await;
    let mut remotes: Vec<String> = closed.iter().map(|c| c.remote_addr.to_string()).collect();
    remotes.sort();
    assert_eq!(remotes, ["198.51.100.9:40001", "203.0.113.7:40001"]);

    // Truncated header (WildDuck crashes here), and a proxy that never sends one.
    let mut c = Client::connect(addr).await;
    c.get_mut()
        .write_all(b"PROXY TCP4 1.2.3.4\r\n")
        .await
        .unwrap();
    assert!(
        c.closed().await,
        "a bad header closes that connection without a greeting"
    );
    let mut silent = Client::connect(addr).await;
    assert!(
        silent.closed().await,
        "the header deadline closes a silent proxy"
    );
    // Neither reached the stack, and the server lives on.
    let mut c = Client::connect(addr).await;
    c.get_mut()
        .write_all(b"PROXY TCP4 203.0.113.8 127.0.0.1 40002 110\r\n")
        .await
        .unwrap();
    pop3_login(&mut c).await;
    assert!(c.cmd("QUIT").await.starts_with("+OK"));
    closes.wait_for(3).await;
    server.shutdown(SOON).await;
    assert_eq!(closes.count(), 3);
}

/// Row 8, the other side: an untrusted peer's PROXY line is just a bad command.
#[tokio::test]
async fn proxy_header_from_untrusted_peer_is_not_honoured() {
    let (server, addr, closes) = serve_recorded(TlsMode::None, ServerConfig::default()).await;
    let mut c = Client::connect(addr).await;
    let local = c.get_mut().local_addr().unwrap();
    assert!(c.line().await.unwrap().starts_with("+OK"));
    assert!(
        c.cmd("PROXY TCP4 203.0.113.7 127.0.0.1 40001 110")
            .await
            .starts_with("-ERR")
    );
    assert!(c.cmd("QUIT").await.starts_with("+OK"));
    let closed = closes.wait_for(1).await;
    assert_eq!(closed[0].remote_addr, local);
    server.shutdown(SOON).await;
}

/// Row 11: a layer that never finishes is cut off by the server's setup deadline, even without
/// a deadline of its own.
#[tokio::test]
async fn a_stuck_layer_is_cut_off_by_the_setup_deadline() {
    let closes = Closes::default();
    let stack = ServiceBuilder::new()
        .layer(OnCloseLayer::new(closes.hook()))
        .layer(
            OnConnectLayer::new(|_: Arc<Session>| pending::<Result<(), Reject>>())
                .deadline(Duration::from_secs(3600)),
        )
        .service(pop3(MemoryStore::new()));
    let mut config = ServerConfig::default();
    config.setup_timeout = Duration::from_millis(300);
    let (server, addr) = serve(Protocol::Pop3, TlsMode::None, config, stack).await;
    let mut client = Client::connect(addr).await;
    assert_eq!(client.line().await.unwrap(), "-ERR Timeout");
    assert!(client.closed().await);
    let closed = closes.wait_for(1).await;
    // Recorded as what the client was told: a refusal before the session started.
    assert_eq!(
        closed[0].reason,
        CloseReason::Rejected(Reject::new("Timeout").with_layer("setup_timeout"))
    );
    server.shutdown(SOON).await;
    assert_eq!(closes.count(), 1);
}

/// Try a TLS handshake on `addr` with Python's ssl module, offering at most `max_version`
/// (`TLSv1_1`, `TLSv1_2`, ...), and return the first line the server sends or the error.
async fn python_tls_greeting(addr: std::net::SocketAddr, max_version: &str) -> String {
    let script = format!(
        r#"
import socket, ssl
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
# Let OpenSSL offer old versions at all, so that a refusal is the server's doing.
ctx.set_ciphers("ALL:@SECLEVEL=0")
ctx.minimum_version = ssl.TLSVersion.TLSv1
ctx.maximum_version = ssl.TLSVersion.{max_version}
try:
    with socket.create_connection(("{ip}", {port}), timeout=10) as raw:
        with ctx.wrap_socket(raw) as tls:
            print("OK", tls.version(), tls.recv(200).decode().strip())
except (ssl.SSLError, OSError) as err:
    print("FAILED", type(err).__name__)
"#,
        ip = addr.ip(),
        port = addr.port()
    );
    let output = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{}", support_shared::missing("python3", &e)));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Row 9: TLS 1.0 and 1.1 are refused; 1.2 and 1.3 work, and layers see `secure`.
#[tokio::test]
async fn tls_below_1_2_is_refused() {
    let (acceptor, _) = tower_mail::tls::self_signed(&["localhost"]).unwrap();
    let (server, addr, closes) =
        serve_recorded(TlsMode::Implicit(acceptor), ServerConfig::default()).await;
    assert!(
        python_tls_greeting(addr, "TLSv1_1")
            .await
            .starts_with("FAILED")
    );
    let tls12 = python_tls_greeting(addr, "TLSv1_2").await;
    assert!(tls12.starts_with("OK TLSv1.2 +OK"), "{tls12}");
    let tls13 = python_tls_greeting(addr, "TLSv1_3").await;
    assert!(tls13.starts_with("OK TLSv1.3 +OK"), "{tls13}");
    let closed = closes.wait_for(2).await;
    assert!(closed.iter().all(|c| c.secure));
    server.shutdown(SOON).await;
    assert_eq!(
        closes.count(),
        2,
        "a failed handshake never reaches the stack"
    );
}

/// Row 11: a client that connects to the TLS port and never starts the handshake is cut off
/// by the handshake deadline before any layer runs.
#[tokio::test]
async fn silent_client_on_the_tls_port_hits_the_handshake_deadline() {
    let (acceptor, _) = tower_mail::tls::self_signed(&["localhost"]).unwrap();
    let closes = Closes::default();
    let stack = ServiceBuilder::new()
        .layer(OnCloseLayer::new(closes.hook()))
        .service(pop3(MemoryStore::new()));
    let mut config = ServerConfig::default();
    config.tls_handshake_timeout = Duration::from_millis(300);
    let (server, addr) = serve(Protocol::Pop3, TlsMode::Implicit(acceptor), config, stack).await;
    let mut silent = Client::connect(addr).await;
    assert!(
        silent.closed().await,
        "the server gives up on the handshake"
    );
    server.shutdown(SOON).await;
    assert_eq!(closes.count(), 0);
}
