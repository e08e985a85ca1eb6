//! The [`Server`]: accepts connections and runs each through a connection stack in its own
//! task.
//!
//! Order of events on a connection: accept → PROXY header (trusted networks only) → TLS
//! handshake (implicit-TLS listeners) → the layer stack → the protocol greeting and session.
//! Every phase before the greeting has a deadline, and nothing after accept runs in the accept
//! loop, so a slow client or layer slows only its own connection.

mod accept;
mod connection_task;
mod proxy;
mod rewind;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

pub use proxy::ProxyConfig;

use crate::close::CloseReport;
use crate::connection::Connection;
use crate::reject::BoxError;
use crate::session::Protocol;

/// How a listener uses TLS.
#[derive(Clone)]
pub enum TlsMode {
    /// Plaintext only.
    None,
    /// Plaintext, with STARTTLS (IMAP) / STLS (POP3) offered.
    Starttls(TlsAcceptor),
    /// TLS from the first byte (ports 993 and 995).
    Implicit(TlsAcceptor),
}

impl std::fmt::Debug for TlsMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsMode::None => "None",
            TlsMode::Starttls(_) => "Starttls",
            TlsMode::Implicit(_) => "Implicit",
        })
    }
}

/// What a listener serves: its protocol and TLS mode.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The protocol spoken.
    pub protocol: Protocol,
    /// How TLS is used.
    pub tls: TlsMode,
}

impl Endpoint {
    /// An endpoint for `protocol` with `tls`.
    pub fn new(protocol: Protocol, tls: TlsMode) -> Endpoint {
        Endpoint { protocol, tls }
    }
}

/// Deadlines and limits of the phases the server runs before a session starts.
///
/// ```
/// use std::time::Duration;
/// use tower_mail::server::ServerConfig;
/// let mut config = ServerConfig::default();
/// config.tls_handshake_timeout = Duration::from_secs(5);
/// # drop(config);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Who may send PROXY headers.
    pub proxy: ProxyConfig,
    /// Deadline for the TLS handshake on implicit-TLS listeners and for STARTTLS.
    pub tls_handshake_timeout: Duration,
    /// Deadline from accept until a session service takes the connection: bounds every layer
    /// (a hook that never finishes) before the greeting.
    pub setup_timeout: Duration,
    /// Deadline for writing a refusal to a client that does not read.
    pub refusal_write_timeout: Duration,
    /// Longest pause of the accept loop after resource errors such as EMFILE.
    pub max_accept_backoff: Duration,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            proxy: ProxyConfig::default(),
            tls_handshake_timeout: Duration::from_secs(10),
            setup_timeout: Duration::from_secs(30),
            refusal_write_timeout: Duration::from_secs(5),
            max_accept_backoff: Duration::from_secs(1),
        }
    }
}

struct Shared {
    config: ServerConfig,
    /// Cancelled to stop accepting and to ask every session to end.
    shutdown: CancellationToken,
    /// Cancelled when the shutdown grace period is over: sessions still running are dropped.
    hard_stop: CancellationToken,
    tasks: TaskTracker,
}

/// Accepts connections on any number of listeners and runs each through its stack.
///
/// Cloning gives another handle to the same server.
///
/// ```no_run
/// use std::time::Duration;
/// use tower_mail::server::{Endpoint, Server, ServerConfig, TlsMode};
/// use tower_mail::{CloseReason, CloseReport, Connection, Protocol};
///
/// # async fn run() -> std::io::Result<()> {
/// let server = Server::new(ServerConfig::default());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:1110").await?;
/// // Any `Service<Connection, Response = CloseReport>`: normally a layer stack over
/// // `Pop3Service`. This one just closes.
/// let stack = tower::service_fn(|conn: Connection| async move {
///     Ok::<_, std::convert::Infallible>(CloseReport::new(conn.session(), CloseReason::Logout))
/// });
/// server.serve(listener, Endpoint::new(Protocol::Pop3, TlsMode::None), stack);
/// tokio::signal::ctrl_c().await?;
/// server.shutdown(Duration::from_secs(10)).await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Server {
    shared: Arc<Shared>,
}

impl Server {
    /// A server with `config`.
    pub fn new(config: ServerConfig) -> Server {
        Server {
            shared: Arc::new(Shared {
                config,
                shutdown: CancellationToken::new(),
                hard_stop: CancellationToken::new(),
                tasks: TaskTracker::new(),
            }),
        }
    }

    /// Accept connections from `listener` for `endpoint` and run each through a clone of
    /// `stack`, until shutdown. Returns the accept loop's task.
    ///
    /// The stack's `poll_ready` runs in the connection's task, so a global concurrency limit
    /// holds its permit for the session's whole life, and a layer that waits makes only its
    /// own connection wait.
    pub fn serve<S>(&self, listener: TcpListener, endpoint: Endpoint, stack: S) -> JoinHandle<()>
    where
        S: Service<Connection, Response = CloseReport> + Clone + Send + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
    {
        let shared = self.shared.clone();
        tokio::spawn(accept::accept_loop(shared, listener, endpoint, stack))
    }

    /// Stop accepting, ask every session to end (clients are told `* BYE` / `-ERR`), and wait
    /// up to `grace` for them; sessions still running after that are dropped, which runs their
    /// close hooks. Returns when every connection task has finished.
    pub async fn shutdown(&self, grace: Duration) {
        self.shared.shutdown.cancel();
        self.shared.tasks.close();
        if tokio::time::timeout(grace, self.shared.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                remaining = self.shared.tasks.len(),
                "shutdown grace period over; dropping remaining sessions"
            );
            self.shared.hard_stop.cancel();
            self.shared.tasks.wait().await;
        }
    }

    /// Connections being handled now, in any phase.
    pub fn connections(&self) -> usize {
        self.shared.tasks.len()
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.shutdown.is_cancelled()
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.shared.config)
            .field("connections", &self.connections())
            .finish()
    }
}
