//! The connection stack, composed in code with `ServiceBuilder`: the same layers in front of
//! the IMAP and the POP3 service.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower::util::{BoxCloneService, MapRequestLayer};
use tower_mail::{BoxError, CloseReport, Connection, Reject, Session};
use tower_mail_layers::ip_block::IpBlockLayer;
use tower_mail_layers::logging::LoggingLayer;
use tower_mail_layers::metrics::MetricsLayer;
use tower_mail_layers::on_close::OnCloseLayer;
use tower_mail_layers::policy::PolicyLayer;
use tower_mail_layers::sessions::{SessionRegistry, SessionRegistryLayer};

use crate::config::{Layers, Plaintext};
use crate::policies::{Policies, with_mode};

/// A finished stack; boxed so that both protocols' stacks have one type.
pub type Stack = BoxCloneService<Connection, CloseReport, BoxError>;

/// What every protocol's stack shares.
pub struct Shared {
    pub policies: Policies,
    /// One semaphore for every listener: a server-wide cap, not one per listener.
    pub global_limit: GlobalConcurrencyLimitLayer,
    /// Every connection's end, counted to show at shutdown that none was lost.
    pub closed: Arc<AtomicU64>,
    pub shutting_down: CancellationToken,
    /// `[auth] plaintext_without_tls`.
    pub plaintext: Plaintext,
    /// The live sessions, for the admin endpoints.
    pub sessions: SessionRegistry,
}

/// The layers, outermost first, in front of `service`.
pub fn build<S>(service: S, shared: &Shared, layers: &Layers) -> Stack
where
    S: tower::Service<Connection, Response = CloseReport> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    let closed = shared.closed.clone();
    let shutting_down = shared.shutting_down.clone();
    let time_window_mode = layers
        .time_window
        .as_ref()
        .map(|t| t.mode)
        .unwrap_or_default();
    let stack = ServiceBuilder::new()
        // Outermost, so that logs and metrics see refusals by every layer inside.
        .layer(LoggingLayer::new())
        .layer(MetricsLayer::new())
        .layer(OnCloseLayer::new(move |_: &Session, _: &CloseReport| {
            closed.fetch_add(1, Ordering::Relaxed);
        }))
        // Connections accepted in the race with shutdown get a clean refusal: decided on the
        // spot, so it costs no allocation per connection as an async hook would.
        .layer(PolicyLayer::from_fn(
            "shutdown",
            move |_: &Session| match shutting_down.is_cancelled() {
                true => Err(Reject::new("Server shutting down")),
                false => Ok(()),
            },
        ))
        // Cheap refusals first, before a connection may take a global permit.
        .layer(with_mode(
            IpBlockLayer::new(shared.policies.ip_block.clone()),
            layers.ip_block.mode,
        ))
        // Addresses `[layers.auto_ban]` banned, told its message.
        .option_layer(shared.policies.bans.clone().map(PolicyLayer::from_policy))
        .layer(with_mode(
            PolicyLayer::from_policy(shared.policies.time_window.clone()),
            time_window_mode,
        ))
        .layer(with_mode(
            PolicyLayer::from_policy(shared.policies.rate_limit.clone()),
            layers.rate_limit.mode,
        ))
        .layer(plaintext_layer(shared.plaintext))
        .layer(LoadShedLayer::new())
        .layer(shared.global_limit.clone())
        // Innermost: only connections that get a session are listed.
        .layer(SessionRegistryLayer::new(shared.sessions.clone()))
        .service(service);
    BoxCloneService::new(stack)
}

/// `plaintext_without_tls = "loopback"`: allow logins without TLS on this connection only if
/// the client (after PROXY, so the real client behind a load balancer) has a loopback address.
/// `true` and `false` are the protocol services' own setting and leave the connection alone.
fn plaintext_layer(
    plaintext: Plaintext,
) -> MapRequestLayer<impl FnMut(Connection) -> Connection + Clone> {
    MapRequestLayer::new(move |mut conn: Connection| {
        if plaintext == Plaintext::Loopback {
            let loopback = conn
                .session()
                .remote_addr()
                .ip()
                .to_canonical()
                .is_loopback();
            conn.settings_mut().allow_plaintext_login = Some(loopback);
        }
        conn
    })
}
