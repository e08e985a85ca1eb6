//! Per-connection configuration: layers adjust the POP3 session from the connection's context
//! (greeting, idle timeout, plaintext policy, capabilities), hand values to inner layers through
//! extensions, watch the session with observers, and end it from elsewhere.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::net::TcpStream;
use tower::util::MapRequestLayer;
use tower::{Layer, Service, ServiceBuilder};
use tower_mail::server::{Server, ServerConfig, TlsMode};
use tower_mail::store::MemoryStore;
use tower_mail::{
    CloseReason, Connection, Protocol, Reject, Session, SessionEvent, SessionSettings,
};
use tower_mail_layers::on_close::OnCloseLayer;
use tower_mail_layers::on_connect::OnConnectLayer;

use common::{Client, Closed, Closes};

/// A POP3 server whose stack is: close-hook recorder, then `layer`, then the shared POP3
/// service (plaintext logins allowed) over a store where alice has one message.
struct Harness {
    server: Server,
    addr: SocketAddr,
    closes: Closes,
}

impl Harness {
    async fn start<L>(layer: L) -> Harness
    where
        L: Layer<tower_mail::pop3::Pop3Service<tower_mail::auth::PasswdFile, MemoryStore>>,
        L::Service:
            Service<Connection, Response = tower_mail::CloseReport> + Clone + Send + 'static,
        <L::Service as Service<Connection>>::Error: Into<tower_mail::BoxError>,
        <L::Service as Service<Connection>>::Future: Send + 'static,
    {
        let store = MemoryStore::new();
        common::deliver(&store, "alice", b"Subject: hello\r\n\r\nbody\r\n").await;
        let closes = Closes::default();
        let stack = ServiceBuilder::new()
            .layer(OnCloseLayer::new(closes.hook()))
            .layer(layer)
            .service(common::pop3(store));
        let (server, addr) = common::serve(
            Protocol::Pop3,
            TlsMode::None,
            ServerConfig::default(),
            stack,
        )
        .await;
        Harness {
            server,
            addr,
            closes,
        }
    }

    /// Connect and read the greeting, which must be `+OK`.
    async fn connect(&self) -> (Client<TcpStream>, String) {
        let mut client = Client::connect(self.addr).await;
        let greeting = client.line().await.expect("no greeting");
        assert!(greeting.starts_with("+OK"), "{greeting}");
        (client, greeting)
    }

    /// Shut down and check that the close hooks saw exactly `expected`, one per connection.
    async fn finish(self, expected: &[CloseReason]) -> Vec<Closed> {
        let closed = common::shutdown_and_collect(&self.server, &self.closes).await;
        common::assert_close_reasons(&closed, expected);
        closed
    }
}

/// A layer that changes every connection's settings with `change`, the way a policy layer
/// would after looking at the connection.
fn with_settings(
    change: impl Fn(&mut SessionSettings) + Clone + Send + Sync + 'static,
) -> MapRequestLayer<impl FnMut(Connection) -> Connection + Clone + Send + Sync + 'static> {
    MapRequestLayer::new(move |mut conn: Connection| {
        change(conn.settings_mut());
        conn
    })
}

async fn login<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    client: &mut Client<T>,
    user: &str,
    password: &str,
) -> String {
    let reply = client.cmd(&format!("USER {user}")).await;
    assert!(reply.starts_with("+OK"), "{reply}");
    client.cmd(&format!("PASS {password}")).await
}

async fn quit<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut client: Client<T>) {
    assert!(client.cmd("QUIT").await.starts_with("+OK"));
    assert!(client.closed().await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_layer_can_change_the_greeting() {
    let harness = Harness::start(with_settings(|s| {
        s.greeting = Some("Welcome to the branch office".into());
    }))
    .await;
    let (client, greeting) = harness.connect().await;
    assert_eq!(greeting, "+OK Welcome to the branch office");
    quit(client).await;
    harness.finish(&[CloseReason::Logout]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_layer_can_shorten_the_idle_timeout() {
    let harness = Harness::start(with_settings(|s| {
        s.idle_timeout = Some(Duration::from_millis(300));
    }))
    .await;
    let (mut client, _) = harness.connect().await;
    // Silent: the service's own idle timeout is minutes, this connection's 300 ms.
    let goodbye = client.line().await.expect("an -ERR before the close");
    assert!(goodbye.starts_with("-ERR"), "{goodbye}");
    assert!(client.closed().await);
    harness.finish(&[CloseReason::IdleTimeout]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_layer_can_forbid_plaintext_login() {
    let harness = Harness::start(with_settings(|s| {
        s.allow_plaintext_login = Some(false);
    }))
    .await;
    let (mut client, _) = harness.connect().await;
    let refused = client.cmd("USER alice").await;
    assert!(refused.starts_with("-ERR [AUTH]"), "{refused}");
    quit(client).await;
    harness.finish(&[CloseReason::Logout]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hidden_capability_is_neither_advertised_nor_accepted() {
    let harness = Harness::start(with_settings(|s| s.hide_capability("TOP"))).await;
    let (mut client, _) = harness.connect().await;
    let caps = common::pop3_capabilities(&mut client).await;
    assert!(!common::has_capability(&caps, "TOP"), "{caps:?}");
    assert!(
        common::has_capability(&caps, "UIDL"),
        "only TOP is hidden: {caps:?}"
    );

    assert!(
        login(&mut client, "alice", "secret")
            .await
            .starts_with("+OK")
    );
    // Message 1 exists (RETR works), so only the hiding can refuse TOP.
    assert!(client.cmd("RETR 1").await.starts_with("+OK"));
    client.body().await;
    let refused = client.cmd("TOP 1 0").await;
    assert!(refused.starts_with("-ERR"), "{refused}");
    quit(client).await;
    harness.finish(&[CloseReason::Logout]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn extra_capabilities_are_advertised() {
    let harness = Harness::start(with_settings(|s| {
        s.extra_capabilities.push("LOGIN-DELAY 900".into());
        s.extra_capabilities.push("X-TENANT acme".into());
    }))
    .await;
    let (mut client, _) = harness.connect().await;
    let caps = common::pop3_capabilities(&mut client).await;
    for extra in ["LOGIN-DELAY 900", "X-TENANT acme"] {
        assert!(
            caps.iter().any(|c| c == extra),
            "{extra} missing from {caps:?}"
        );
    }
    quit(client).await;
    harness.finish(&[CloseReason::Logout]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_extra_capability_cannot_break_the_capa_listing() {
    // Capability text may come from connection context (a tenant name, SNI); like every other
    // reply text it must stay one line of the listing (response.rs: "no caller-supplied text
    // can end a reply early or inject a line of its own").
    let harness = Harness::start(with_settings(|s| {
        s.extra_capabilities
            .push("X-TENANT evil\r\n.\r\n+OK injected".into());
    }))
    .await;
    let (mut client, _) = harness.connect().await;
    let caps = common::pop3_capabilities(&mut client).await;
    assert!(common::has_capability(&caps, "X-TENANT"), "{caps:?}");
    // Had the listing ended at the injected ".", the injected line would answer QUIT.
    let bye = client.cmd("QUIT").await;
    assert!(bye.starts_with("+OK Bye"), "QUIT answered by {bye:?}");
    assert!(client.closed().await);
    harness.finish(&[CloseReason::Logout]).await;
}

/// Which brand a connection is served under: attached by an outer layer, read by an inner one.
#[derive(Debug, Clone)]
struct Brand(&'static str);

/// An inner layer that greets with the [`Brand`] an outer layer attached.
#[derive(Clone)]
struct BrandGreeting<S>(S);

impl<S: Service<Connection>> Service<Connection> for BrandGreeting<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut conn: Connection) -> Self::Future {
        if let Some(Brand(brand)) = conn.extensions().get::<Brand>().cloned() {
            conn.settings_mut().greeting = Some(format!("{brand} POP3 ready"));
        }
        self.0.call(conn)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_extension_attached_by_an_outer_layer_is_read_by_an_inner_layer() {
    let layers = ServiceBuilder::new()
        .map_request(|mut conn: Connection| {
            conn.extensions_mut().insert(Brand("Example Mail"));
            conn
        })
        .layer_fn(BrandGreeting);
    let harness = Harness::start(layers).await;
    let (client, greeting) = harness.connect().await;
    assert_eq!(greeting, "+OK Example Mail POP3 ready");
    quit(client).await;
    harness.finish(&[CloseReason::Logout]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_observer_can_refuse_a_user_at_login() {
    let suspend_bob = MapRequestLayer::new(|mut conn: Connection| {
        conn.observe(Arc::new(
            |_: &Session, event: &SessionEvent<'_>| match event {
                SessionEvent::Authenticated { user: "bob" } => {
                    Err(Reject::new("Account suspended"))
                }
                _ => Ok(()),
            },
        ));
        conn
    });
    let harness = Harness::start(suspend_bob).await;

    let (mut bob, _) = harness.connect().await;
    assert_eq!(
        login(&mut bob, "bob", "hunter2").await,
        "-ERR Account suspended"
    );
    assert!(bob.closed().await, "a refused login ends the session");

    let (mut alice, _) = harness.connect().await;
    assert!(
        login(&mut alice, "alice", "secret")
            .await
            .starts_with("+OK")
    );
    quit(alice).await;

    let closed = harness
        .finish(&[
            CloseReason::Kicked("Account suspended".into()),
            CloseReason::Logout,
        ])
        .await;
    let bobs = closed
        .iter()
        .find(|c| c.reason != CloseReason::Logout)
        .unwrap();
    assert_eq!(bobs.user.as_deref(), Some("bob"));
}

/// Connect, bring the session to where `before_kick` leaves it (commands and their exact
/// replies), then end the session from another task, as an admin console would: the client
/// must be told why and disconnected, wherever the session was waiting for it.
async fn assert_admin_can_end_session(before_kick: &[(&str, &str)]) {
    let (sessions_tx, mut sessions) = tokio::sync::mpsc::unbounded_channel::<Arc<Session>>();
    // An admin console would keep sessions like this; here the test is the console.
    let register = OnConnectLayer::new(move |session: Arc<Session>| {
        let sessions_tx = sessions_tx.clone();
        async move {
            let _ = sessions_tx.send(session);
            Ok(())
        }
    });
    let harness = Harness::start(register).await;
    let (mut client, _) = harness.connect().await;
    for (command, reply) in before_kick {
        assert_eq!(client.cmd(command).await, *reply);
    }

    let session = tokio::time::timeout(common::SOON, sessions.recv())
        .await
        .expect("the hook did not report the session")
        .unwrap();
    tokio::spawn(async move { session.end(CloseReason::Kicked("Kicked by admin".into())) })
        .await
        .unwrap();

    assert_eq!(client.line().await.as_deref(), Some("-ERR Kicked by admin"));
    assert!(client.closed().await);
    harness
        .finish(&[CloseReason::Kicked("Kicked by admin".into())])
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn another_task_can_end_an_idle_session() {
    assert_admin_can_end_session(&[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn another_task_can_end_a_session_waiting_at_the_sasl_prompt() {
    // The client started AUTH PLAIN and sits at the `+ ` prompt (RFC 5034): still an idle
    // client the admin must be able to end.
    assert_admin_can_end_session(&[("AUTH PLAIN", "+ ")]).await;
}
