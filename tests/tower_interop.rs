//! tower's own middleware in a connection stack, as architecture.md promises it "just works":
//! a global connection cap with load shedding, a session-length timeout, an async filter,
//! `option_layer` / `map_request` / `BoxCloneService`, and a panicking service. Each refusal
//! reaches the client as a POP3 `-ERR` line, and each connection's close hook runs exactly once.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tower::filter::AsyncFilterLayer;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower::timeout::TimeoutLayer;
use tower::util::BoxCloneService;
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_mail::server::{ServerConfig, TlsMode};
use tower_mail::store::MemoryStore;
use tower_mail::{
    BoxError, CloseReason, CloseReport, Connection, GENERIC_MESSAGE, OVERLOADED_MESSAGE, Protocol,
    Reject,
};
use tower_mail_layers::on_close::OnCloseLayer;

use common::{Client, Closes};

/// Serve `stack` for POP3 on a plain listener.
async fn serve<S>(stack: S) -> (tower_mail::server::Server, std::net::SocketAddr)
where
    S: tower::Service<Connection, Response = CloseReport> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    common::serve(
        Protocol::Pop3,
        TlsMode::None,
        ServerConfig::default(),
        stack,
    )
    .await
}

/// Connect and expect to be refused: exactly one `-ERR <text>` line, then the close.
async fn assert_refused(addr: std::net::SocketAddr, text: &str) {
    let mut client = Client::connect(addr).await;
    assert_eq!(client.rest().await, format!("-ERR {text}\r\n"));
}

/// Log in as alice, prove the session works, and QUIT.
async fn full_session(addr: std::net::SocketAddr) {
    let mut client = Client::connect(addr).await;
    common::pop3_login(&mut client).await;
    assert!(client.cmd("STAT").await.starts_with("+OK"));
    assert!(client.cmd("QUIT").await.starts_with("+OK"));
    assert!(client.closed().await);
}

/// The refusal a close hook recorded, or a panic naming what it saw instead.
fn rejected(reason: &CloseReason) -> &Reject {
    match reason {
        CloseReason::Rejected(reject) => reject,
        other => panic!("expected a refusal, the close hook saw {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_global_cap_with_load_shed_refuses_the_connection_over_the_cap_at_once() {
    let closes = Closes::default();
    let stack = ServiceBuilder::new()
        .layer(OnCloseLayer::new(closes.hook()))
        .layer(LoadShedLayer::new())
        .layer(GlobalConcurrencyLimitLayer::new(1))
        .service(common::pop3(MemoryStore::new()));
    let (server, addr) = serve(stack).await;

    let mut first = Client::connect(addr).await;
    common::pop3_login(&mut first).await;

    // Over the cap: refused at once, not queued behind the first session.
    assert_refused(addr, OVERLOADED_MESSAGE).await;

    assert!(first.cmd("QUIT").await.starts_with("+OK"));
    assert!(first.closed().await);
    // The permit goes back when the first connection's future is dropped, just after the
    // client sees the close; wait for that rather than race it.
    common::wait_until_idle(&server).await;
    full_session(addr).await;

    let closed = common::shutdown_and_collect(&server, &closes).await;
    common::assert_close_reasons(
        &closed,
        &[
            CloseReason::Rejected(Reject::new(OVERLOADED_MESSAGE).with_layer("load_shed")),
            CloseReason::Logout,
            CloseReason::Logout,
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn timeout_layer_ends_a_session_that_lasts_too_long() {
    let closes = Closes::default();
    let stack = ServiceBuilder::new()
        .layer(OnCloseLayer::new(closes.hook()))
        .layer(TimeoutLayer::new(Duration::from_millis(300)))
        .service(common::pop3(MemoryStore::new()));
    let (server, addr) = serve(stack).await;

    let mut client = Client::connect(addr).await;
    let greeting = client.line().await.expect("no greeting");
    assert!(greeting.starts_with("+OK"), "{greeting}");
    // Stay silent: the POP3 idle timeout is minutes, the cap on the session's life 300 ms.
    // The session is cut off with tower's `Elapsed` told in the fixed text, not dropped mute.
    assert_eq!(client.line().await.as_deref(), Some("-ERR Timeout"));
    assert!(client.closed().await, "the session must be cut off");

    let closed = common::shutdown_and_collect(&server, &closes).await;
    common::assert_close_reasons(&closed, &[CloseReason::Timeout]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_async_filter_refusal_reaches_the_client_with_its_text() {
    let closes = Closes::default();
    let open = Arc::new(AtomicBool::new(false));
    let gate = open.clone();
    let stack = ServiceBuilder::new()
        .layer(OnCloseLayer::new(closes.hook()))
        .layer(AsyncFilterLayer::new(move |conn: Connection| {
            let open = gate.load(Ordering::SeqCst);
            async move {
                if open {
                    Ok(conn)
                } else {
                    Err(Reject::new("Not today").with_layer("filter"))
                }
            }
        }))
        .service(common::pop3(MemoryStore::new()));
    let (server, addr) = serve(stack).await;

    assert_refused(addr, "Not today").await;
    // The same stack lets connections through once the predicate does.
    open.store(true, Ordering::SeqCst);
    full_session(addr).await;

    let closed = common::shutdown_and_collect(&server, &closes).await;
    common::assert_close_reasons(
        &closed,
        &[
            CloseReason::Rejected(Reject::new("Not today").with_layer("filter")),
            CloseReason::Logout,
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_async_filter_failure_that_is_not_a_refusal_never_leaks_its_cause() {
    let closes = Closes::default();
    let stack = ServiceBuilder::new()
        .layer(OnCloseLayer::new(closes.hook()))
        .layer(AsyncFilterLayer::new(|_conn: Connection| async {
            Err::<Connection, BoxError>("db password hunter2".into())
        }))
        .service(common::pop3(MemoryStore::new()));
    let (server, addr) = serve(stack).await;

    // `assert_refused` compares the whole conversation, so "hunter2" cannot hide anywhere.
    assert_refused(addr, GENERIC_MESSAGE).await;

    let closed = common::shutdown_and_collect(&server, &closes).await;
    assert_eq!(closed.len(), 1);
    let reject = rejected(&closed[0].reason);
    assert_eq!(reject.message(), GENERIC_MESSAGE);
    assert!(!reject.message().contains("hunter2"));
}

/// Which tenant a connection belongs to, attached by an outer `map_request`.
#[derive(Debug, Clone)]
struct Tenant(&'static str);

#[tokio::test(flavor = "multi_thread")]
async fn option_layer_map_request_and_box_clone_service_compose_into_a_working_stack() {
    let closes = Closes::default();
    let stack = ServiceBuilder::new()
        .layer(OnCloseLayer::new(closes.hook()))
        .option_layer(None::<TimeoutLayer>)
        .map_request(|mut conn: Connection| {
            conn.extensions_mut().insert(Tenant("acme"));
            conn
        })
        // Runs after the outer map_request: proves the extension travelled down the stack.
        .map_request(|mut conn: Connection| {
            let tenant = conn.extensions().get::<Tenant>().map(|t| t.0);
            conn.settings_mut().greeting = tenant.map(|t| format!("{t} mail ready"));
            conn
        })
        .service(common::pop3(MemoryStore::new()));
    let stack: BoxCloneService<Connection, CloseReport, BoxError> = BoxCloneService::new(stack);
    let (server, addr) = serve(stack).await;

    let mut client = Client::connect(addr).await;
    assert_eq!(client.line().await.unwrap(), "+OK acme mail ready");
    assert!(client.cmd("USER alice").await.starts_with("+OK"));
    assert!(client.cmd("PASS secret").await.starts_with("+OK"));
    assert!(client.cmd("QUIT").await.starts_with("+OK"));
    assert!(client.closed().await);

    let closed = common::shutdown_and_collect(&server, &closes).await;
    common::assert_close_reasons(&closed, &[CloseReason::Logout]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_future_that_panics_is_contained_to_its_connection() {
    let closes = Closes::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let pop3 = common::pop3(MemoryStore::new());
    // The first connection's future panics when polled; later ones get a real session.
    let session = service_fn(move |conn: Connection| {
        let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
        let pop3 = pop3.clone();
        async move {
            if first {
                panic!("handler bug");
            }
            pop3.oneshot(conn).await
        }
    });
    let stack = ServiceBuilder::new()
        .layer(OnCloseLayer::new(closes.hook()))
        .service(session);
    let (server, addr) = serve(stack).await;

    assert_refused(addr, GENERIC_MESSAGE).await;
    full_session(addr).await;

    let closed = common::shutdown_and_collect(&server, &closes).await;
    common::assert_close_reasons(&closed, &[CloseReason::Panic, CloseReason::Logout]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_whose_call_panics_is_contained_to_its_connection() {
    // A panic inside `call` itself, before any future exists: no close hook can see it (there is
    // no future to guard), but the client must still be answered and the server go on.
    let calls = Arc::new(AtomicUsize::new(0));
    let pop3 = common::pop3(MemoryStore::new());
    let stack = service_fn(move |conn: Connection| {
        if calls.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("handler bug");
        }
        pop3.clone().oneshot(conn)
    });
    let (server, addr) = serve(stack).await;

    assert_refused(addr, GENERIC_MESSAGE).await;
    full_session(addr).await;
    server.shutdown(Duration::from_secs(5)).await;
}

/// A client connecting from `source` (any 127.0.0.x works on loopback).
async fn connect_from(source: &str, addr: std::net::SocketAddr) -> Client<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    Client::new(socket.connect(addr).await.unwrap())
}

/// A delayed refusal (tarpit) holds no shared slot: with a global cap of one, a client kept
/// waiting for its refusal does not stop the next client from being served.
#[tokio::test]
async fn a_tarpitted_client_holds_no_concurrency_permit() {
    use tower_mail_layers::ip_block::{CidrSet, IpBlock, IpBlockLayer, IpLists};
    let closes = Closes::default();
    let ip_block = IpBlock::new(IpLists {
        deny: CidrSet::parse_list("127.0.0.2").unwrap(),
        ..IpLists::default()
    });
    let stack = ServiceBuilder::new()
        .layer(OnCloseLayer::new(closes.hook()))
        .layer(LoadShedLayer::new())
        .layer(GlobalConcurrencyLimitLayer::new(1))
        // The cap is outside the policy on purpose: the refused connection has taken the one
        // permit before the policy refuses it.
        .layer(IpBlockLayer::new(ip_block).delay_refusal(Duration::from_secs(3600)))
        .service(common::pop3(MemoryStore::new()));
    let (server, addr) = serve(stack).await;

    let mut tarpitted = connect_from("127.0.0.2", addr).await;
    // Its refusal is recorded (the stack finished) while the client still waits for a reply.
    let closed = closes.wait_for(1).await;
    assert_eq!(rejected(&closed[0].reason).layer(), "ip_block");
    full_session(addr).await;

    // Shutdown cuts the tarpit short: the client gets its refusal, not a silent close.
    server.shutdown(common::SOON).await;
    assert_eq!(
        tarpitted.line().await.as_deref(),
        Some("-ERR IP address blocked")
    );
    assert_eq!(closes.count(), 2);
}
