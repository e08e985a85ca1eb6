//! The [`Server`]: accepts connections and runs each through a connection stack in its own
//! task.
//!
//! Order of events on a connection: accept → PROXY header (trusted networks only) → address
//! checks (implicit-TLS listeners that have them) → TLS handshake (implicit-TLS listeners) →
//! the layer stack → the protocol greeting and session.
//! Every phase before the greeting has a deadline, and nothing after accept runs in the accept
//! loop, so a slow client or layer slows only its own connection.

mod accept;
mod address_check;
mod bind;
mod connection_task;
mod occupancy;
mod proxy;
mod rewind;
mod setup_failure;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

pub use address_check::AddressCheck;
pub use bind::{DEFAULT_BACKLOG, bind};
pub use proxy::ProxyConfig;
#[cfg(feature = "test-util")]
pub use proxy::read_proxy_header;
pub use setup_failure::SetupFailure;

use crate::close::CloseReport;
use crate::connection::Connection;
use crate::reject::BoxError;
use crate::session::Protocol;
use crate::tls::TlsAcceptor;
use occupancy::{Occupancy, PerAddress};
use setup_failure::SetupFailures;

/// How a listener uses TLS.
///
/// Without the `tls` feature, [`TlsAcceptor`] has no values: only
/// `None` can be built.
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
#[derive(Clone)]
#[non_exhaustive]
pub struct Endpoint {
    /// The protocol spoken.
    pub protocol: Protocol,
    /// How TLS is used.
    pub tls: TlsMode,
    /// Checks made before an implicit-TLS handshake.
    before_handshake: Option<Arc<dyn AddressCheck>>,
}

impl Endpoint {
    /// An endpoint for `protocol` with `tls`.
    pub fn new(protocol: Protocol, tls: TlsMode) -> Endpoint {
        Endpoint {
            protocol,
            tls,
            before_handshake: None,
        }
    }

    /// On an implicit-TLS listener, run `check` on each connection's addresses before the
    /// TLS handshake, and close a refused one without a handshake (see [`AddressCheck`] for
    /// what the client then gets). Without it, every peer gets the handshake and refusals
    /// come from the stack with their text inside TLS. Other listeners ignore it: their
    /// refusals cost no handshake anyway.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tower_mail::{Protocol, Reject, Session};
    /// use tower_mail::server::{Endpoint, TlsMode};
    ///
    /// # fn acceptor() -> tokio_rustls::TlsAcceptor {
    /// #     tower_mail::tls::self_signed(&["localhost"]).unwrap().0
    /// # }
    /// let only_ipv4 = |session: &Arc<Session>| match session.remote_addr().is_ipv4() {
    ///     true => Ok(()),
    ///     false => Err(Reject::new("IPv4 only")),
    /// };
    /// let imaps = Endpoint::new(Protocol::Imap, TlsMode::Implicit(acceptor()))
    ///     .refuse_before_handshake(only_ipv4);
    /// # drop(imaps);
    /// ```
    pub fn refuse_before_handshake(mut self, check: impl AddressCheck) -> Endpoint {
        self.before_handshake = Some(Arc::new(check));
        self
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("protocol", &self.protocol)
            .field("tls", &self.tls)
            .field("before_handshake", &self.before_handshake.is_some())
            .finish()
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
    /// Deadline from the session's start (its greeting) until the client has logged in;
    /// `None` for none. A client that keeps a session busy without logging in (CAPABILITY or
    /// NOOP over and over, a line trickled byte by byte, each within the idle timeout) holds
    /// its slot this long at most, then is told `Login timeout`
    /// ([`CloseReason::LoginTimeout`]). The IMAP and POP3 services enforce it with the timer
    /// of their idle timeout, so it costs an idle connection nothing.
    ///
    /// [`CloseReason::LoginTimeout`]: crate::CloseReason::LoginTimeout
    pub login_timeout: Option<Duration>,
    /// Deadline for writing a refusal to a client that does not read.
    pub refusal_write_timeout: Duration,
    /// Deadline for the goodbye (`* BYE` / `-ERR`) to a session still running at the end of
    /// the shutdown grace period, cut there: short, since shutdown waits for it, and a client
    /// that does not read must not hold shutdown.
    pub hard_stop_goodbye_timeout: Duration,
    /// Longest pause of the accept loop after resource errors such as EMFILE.
    pub max_accept_backoff: Duration,
    /// Connections still reading a PROXY header or in an implicit-TLS handshake, server-wide.
    /// Past it a new connection that needs either is closed at once, before any handshake
    /// work, and counted as [`SetupFailure::SetupCap`].
    pub max_setup_connections: usize,
    /// The same, per client address. Trusted PROXY senders (load balancers) are held only to
    /// the server-wide cap.
    pub max_setup_per_address: usize,
    /// Refused clients held at once for their refusal's delay ([`Reject::with_delay`],
    /// a tarpit). Past it, refusals are answered at once: a tarpit must not let a flood of
    /// refused peers hold every descriptor.
    ///
    /// [`Reject::with_delay`]: crate::Reject::with_delay
    pub max_tarpitted: usize,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            proxy: ProxyConfig::default(),
            tls_handshake_timeout: Duration::from_secs(10),
            setup_timeout: Duration::from_secs(30),
            login_timeout: Some(Duration::from_secs(180)),
            refusal_write_timeout: Duration::from_secs(5),
            hard_stop_goodbye_timeout: Duration::from_secs(1),
            max_accept_backoff: Duration::from_secs(1),
            max_setup_connections: 1024,
            max_setup_per_address: 16,
            max_tarpitted: 1024,
        }
    }
}

/// What every handle of one [`Server`] and each of its connection tasks share: the
/// configuration, the shutdown signals, the task tracker and the setup-phase bounds.
struct ServerState {
    config: ServerConfig,
    /// Cancelled to stop accepting and to ask every session to end.
    shutdown: CancellationToken,
    /// Cancelled when the shutdown grace period is over: sessions still running are dropped.
    hard_stop: CancellationToken,
    tasks: TaskTracker,
    setup: Arc<Occupancy>,
    setup_per_address: Arc<PerAddress>,
    tarpit: Arc<Occupancy>,
    failures: SetupFailures,
    /// Connections accepted, and connection tasks ended (on every path, a hard stop too).
    accepted: AtomicU64,
    finished: AtomicU64,
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
    state: Arc<ServerState>,
}

impl Server {
    /// A server with `config`.
    pub fn new(config: ServerConfig) -> Server {
        Server {
            state: Arc::new(ServerState {
                setup: Occupancy::new(config.max_setup_connections),
                setup_per_address: PerAddress::new(config.max_setup_per_address),
                tarpit: Occupancy::new(config.max_tarpitted),
                failures: SetupFailures::default(),
                accepted: AtomicU64::new(0),
                finished: AtomicU64::new(0),
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
        let state = self.state.clone();
        tokio::spawn(accept::accept_loop(state, listener, endpoint, stack))
    }

    /// Stop accepting, ask every session to end (clients are told `* BYE` / `-ERR`), and wait
    /// up to `grace` for them; sessions still running after that are dropped, which runs their
    /// close hooks, and their clients are told the same goodbye, each write bounded by
    /// [`ServerConfig::hard_stop_goodbye_timeout`]. Returns when every connection task has
    /// finished.
    pub async fn shutdown(&self, grace: Duration) {
        self.state.shutdown.cancel();
        self.state.tasks.close();
        if tokio::time::timeout(grace, self.state.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                remaining = self.state.tasks.len(),
                "shutdown grace period over; dropping remaining sessions"
            );
            self.state.hard_stop.cancel();
            self.state.tasks.wait().await;
        }
    }

    /// Connections being handled now, in any phase.
    pub fn connections(&self) -> usize {
        self.state.tasks.len()
    }

    /// Connections accepted since start.
    pub fn connections_accepted(&self) -> u64 {
        self.state.accepted.load(Ordering::Acquire)
    }

    /// Connection tasks that have ended since start, whatever way (refused, served, failed
    /// in setup, dropped at a hard stop). When it equals
    /// [`connections_accepted`](Server::connections_accepted), read in that order, every hook,
    /// log line and metric of those connections is final: what a test waits for before it
    /// checks that nothing was counted twice.
    pub fn connections_finished(&self) -> u64 {
        self.state.finished.load(Ordering::Acquire)
    }

    /// Connections that ended before their stack ran, for `protocol` and `failure`, since
    /// the server started: export these as a metric (the example server's
    /// `mail_setup_failures_total{protocol, reason}`), since such connections reach no layer.
    ///
    /// ```
    /// use tower_mail::Protocol;
    /// use tower_mail::server::{Server, ServerConfig, SetupFailure};
    /// let server = Server::new(ServerConfig::default());
    /// assert_eq!(server.setup_failures(Protocol::Imap, SetupFailure::TlsTimeout), 0);
    /// ```
    pub fn setup_failures(&self, protocol: Protocol, failure: SetupFailure) -> u64 {
        self.state.failures.count(protocol, failure)
    }

    /// Connections reading a PROXY header or in an implicit-TLS handshake now.
    pub fn connections_in_setup(&self) -> usize {
        self.state.setup.len()
    }

    /// Refused clients being held for their refusal's delay now.
    pub fn tarpitted(&self) -> usize {
        self.state.tarpit.len()
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.state.shutdown.is_cancelled()
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.state.config)
            .field("connections", &self.connections())
            .finish()
    }
}
