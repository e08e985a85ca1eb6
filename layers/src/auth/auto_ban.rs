//! Addresses that fail to log in too often are banned for a while (fail2ban, in process).

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tower_layer::Layer;
use tower_mail::auth::{AuthError, Authenticator, Credentials, User};
use tower_service::Service;

use super::failure_counter::{FailureCounter, FailureKey, FailureWindow};
use super::recent::RecentFailures;
use super::warn_every::{WarnEvery, counter_failed};
use super::{AuthFuture, DEFAULT_MAX_KEYS, client_ip};
use crate::ip_block::{CidrSet, IpBlock};

/// The scope of this layer's [`FailureKey`]s.
const SCOPE: &str = "ban";

/// How many failed logins within the window ban an address, by default.
///
/// ```
/// assert_eq!(tower_mail_layers::auth::DEFAULT_BAN_FAILURES, 10);
/// ```
pub const DEFAULT_BAN_FAILURES: usize = 10;

/// The window the failures must fall within, by default.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(tower_mail_layers::auth::DEFAULT_BAN_WINDOW, Duration::from_secs(300));
/// ```
pub const DEFAULT_BAN_WINDOW: Duration = Duration::from_secs(300);

/// How long a ban lasts, by default.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(tower_mail_layers::auth::DEFAULT_BAN, Duration::from_secs(900));
/// ```
pub const DEFAULT_BAN: Duration = Duration::from_secs(900);

/// Where an [`AutoBanLayer`] bans addresses: an [`IpBlock`], which then refuses their
/// connections (and ends their open sessions, when made with
/// [`IpBlock::ending_denied_sessions`]), or a firewall, say.
///
/// ```
/// use std::net::IpAddr;
/// use std::sync::Mutex;
/// use std::time::Duration;
/// use tower_mail_layers::auth::BanSink;
///
/// /// Keeps a list for the operator.
/// #[derive(Default)]
/// struct Report(Mutex<Vec<(IpAddr, Duration)>>);
///
/// impl BanSink for Report {
///     fn ban(&self, ip: IpAddr, duration: Duration) -> usize {
///         self.0.lock().unwrap().push((ip, duration));
///         0
///     }
/// }
/// ```
pub trait BanSink: Send + Sync + 'static {
    /// Refuse `ip` for `duration`; answer how many open sessions that ended. Called from the
    /// failing login's future: it must not block.
    fn ban(&self, ip: IpAddr, duration: Duration) -> usize;
}

impl BanSink for IpBlock {
    fn ban(&self, ip: IpAddr, duration: Duration) -> usize {
        IpBlock::ban(self, ip, duration)
    }
}

/// Bans an address whose logins failed ([`AuthError::InvalidCredentials`]) `failures` times
/// within `window`, for `ban`: by default 10 failures within 5 minutes, a 15-minute ban,
/// through [`IpBlock::ban`], so that the [`IpBlockLayer`](crate::ip_block::IpBlockLayer) using
/// the same `IpBlock` refuses its next connections.
///
/// - Exactly `failures` within the last `window` (a sliding log per address), then the
///   address's count starts again from zero, for when the ban ends.
/// - Addresses in the [`exempt`](AutoBanLayer::exempt) networks (monitoring, a webmail front
///   end that logs in for many users) are never counted nor banned. None by default.
/// - Logins without a session (no address) are not counted. Successes change nothing.
/// - Each ban is logged at warn level (`ip`, `failures`, `ban_seconds`, `ended_sessions`) and
///   counted (`mail_auth_bans_total`).
/// - **Bounded memory**: at most [`max_keys`](AutoBanLayer::max_keys) addresses
///   ([`DEFAULT_MAX_KEYS`] by default, about 350 bytes each with 10 failures kept, so 18 MB at
///   most), the longest quiet evicted first when full. An address that keeps failing stays
///   the newest, so a spray of other addresses cannot shield it.
/// - The session whose failure brings the ban is not ended by this layer; an `IpBlock` made
///   with [`IpBlock::ending_denied_sessions`] ends it, and the address's other sessions.
///
/// Services made by one layer (and its clones) share the counts. To count the failures of
/// several servers together, give the layer a shared [`FailureCounter`]
/// ([`shared`](Self::shared)): each failure is counted there as well, in one round trip, and
/// the ban falls when the shared count reaches `failures`. When the shared counter fails or is
/// late, the count of this process decides (logged at warn level at most once per 10 s). To
/// share the bans themselves, ban through a sink that does (`RedisBans`, feature `redis`).
///
/// ```
/// use std::time::Duration;
/// use tower::{Layer, ServiceExt};
/// use tower_mail::auth::{AuthError, Credentials, User};
/// use tower_mail_layers::auth::AutoBanLayer;
/// use tower_mail_layers::ip_block::{CidrSet, IpBlock, IpLists};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let ip_block = IpBlock::new(IpLists::default());
/// let layer = AutoBanLayer::new(ip_block.clone())
///     .failures(5)
///     .window(Duration::from_secs(60))
///     .ban(Duration::from_secs(3600))
///     .exempt(CidrSet::parse_list("127.0.0.0/8\n::1").unwrap());
/// let auth = layer.layer(tower::service_fn(|_: Credentials| async {
///     Err::<User, _>(AuthError::InvalidCredentials)
/// }));
/// # let _ = auth.oneshot(Credentials::new("alice", "guess")).await;
/// # }
/// ```
pub struct AutoBanLayer<B = IpBlock> {
    state: Arc<FailureBans<B>>,
}

#[derive(Clone)]
struct Config {
    failures: usize,
    window: Duration,
    ban: Duration,
    exempt: CidrSet,
    max_keys: usize,
}

/// What the clones of one [`AutoBanLayer`] share: where bans go, the recent failures per
/// address that trigger them, and the counter shared with other servers, if any.
struct FailureBans<B> {
    sink: Arc<B>,
    config: Config,
    recent: RecentFailures<IpAddr>,
    /// Counts shared with other servers, if any.
    counter: Option<Arc<dyn FailureCounter>>,
    warn: WarnEvery,
}

impl<B> Clone for AutoBanLayer<B> {
    fn clone(&self) -> Self {
        AutoBanLayer {
            state: self.state.clone(),
        }
    }
}

impl<B: BanSink> AutoBanLayer<B> {
    /// Ban through `sink` ([`IpBlock`], usually) after [`DEFAULT_BAN_FAILURES`] failures within
    /// [`DEFAULT_BAN_WINDOW`], for [`DEFAULT_BAN`], with no exempt network.
    ///
    /// ```
    /// use tower_mail_layers::auth::AutoBanLayer;
    /// use tower_mail_layers::ip_block::{IpBlock, IpLists};
    /// let layer = AutoBanLayer::new(IpBlock::new(IpLists::default()));
    /// assert_eq!(layer.tracked(), 0);
    /// ```
    pub fn new(sink: B) -> Self {
        Self::build(
            Arc::new(sink),
            Config {
                failures: DEFAULT_BAN_FAILURES,
                window: DEFAULT_BAN_WINDOW,
                ban: DEFAULT_BAN,
                exempt: CidrSet::new(),
                max_keys: DEFAULT_MAX_KEYS,
            },
            None,
        )
    }

    /// How many failures within the window ban an address. 0 never bans.
    pub fn failures(self, failures: usize) -> Self {
        self.with(|config| config.failures = failures)
    }

    /// The window the failures must fall within.
    pub fn window(self, window: Duration) -> Self {
        self.with(|config| config.window = window)
    }

    /// How long a ban lasts.
    pub fn ban(self, ban: Duration) -> Self {
        self.with(|config| config.ban = ban)
    }

    /// Networks never counted nor banned ([`CidrSet::parse_list`] reads a list;
    /// [`parse_net`](crate::ip_block::parse_net) one network).
    pub fn exempt(self, exempt: CidrSet) -> Self {
        self.with(|config| config.exempt = exempt)
    }

    /// How many addresses are counted at most (at least 1).
    pub fn max_keys(self, max_keys: usize) -> Self {
        self.with(|config| config.max_keys = max_keys)
    }

    /// Count failures in `counter` too, shared with the other servers that use it (a
    /// `RedisFailures`, feature `redis`): `failures` from an address across all of them ban
    /// it. The counts of this process still decide when the counter fails.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tower_mail_layers::auth::{AutoBanLayer, LocalFailures};
    /// use tower_mail_layers::ip_block::{IpBlock, IpLists};
    ///
    /// let counter = Arc::new(LocalFailures::default());
    /// let layer = AutoBanLayer::new(IpBlock::new(IpLists::default())).shared(counter);
    /// # drop(layer);
    /// ```
    pub fn shared(self, counter: impl FailureCounter) -> Self {
        Self::build(
            self.state.sink.clone(),
            self.state.config.clone(),
            Some(Arc::new(counter)),
        )
    }

    fn with(self, change: impl FnOnce(&mut Config)) -> Self {
        let mut config = self.state.config.clone();
        change(&mut config);
        Self::build(self.state.sink.clone(), config, self.state.counter.clone())
    }

    fn build(sink: Arc<B>, config: Config, counter: Option<Arc<dyn FailureCounter>>) -> Self {
        AutoBanLayer {
            state: Arc::new(FailureBans {
                sink,
                recent: RecentFailures::new(config.window, config.failures, config.max_keys),
                config,
                counter,
                warn: WarnEvery::default(),
            }),
        }
    }

    /// How many failures `ip` has had within the window (the count starts again after a ban),
    /// by the counts of this process.
    ///
    /// ```
    /// use tower_mail_layers::auth::AutoBanLayer;
    /// use tower_mail_layers::ip_block::{IpBlock, IpLists};
    /// let layer = AutoBanLayer::new(IpBlock::new(IpLists::default()));
    /// assert_eq!(layer.recent_failures("192.0.2.1".parse().unwrap()), 0);
    /// ```
    pub fn recent_failures(&self, ip: IpAddr) -> usize {
        self.state.recent.count(&ip.to_canonical(), Instant::now())
    }

    /// How many addresses are counted now (some may have expired since their last failure).
    pub fn tracked(&self) -> usize {
        self.state.recent.len()
    }
}

impl<B: BanSink> FailureBans<B> {
    /// Count a failure from `ip`; ban it when that makes `failures`.
    async fn failed(&self, ip: IpAddr) {
        let Config {
            failures,
            window,
            ban,
            ref exempt,
            ..
        } = self.config;
        if failures == 0 || exempt.contains(ip) {
            return;
        }
        let mut count = self.recent.record(ip, Instant::now(), failures);
        if let Some(counter) = &self.counter {
            let window = FailureWindow {
                window,
                keep: failures,
                clear_at: failures,
            };
            match counter.record(&FailureKey::ip(SCOPE, ip), window).await {
                Ok(state) => count = state,
                Err(error) => counter_failed(&self.warn, Some(ip), &error),
            }
        }
        if count < failures {
            return;
        }
        // The count starts again after a ban, here too.
        self.recent.clear(&ip);
        let ended_sessions = self.sink.ban(ip, ban);
        tracing::warn!(
            event = "auth_ban",
            ip = %ip,
            failures = count,
            ban_seconds = ban.as_secs(),
            ended_sessions,
            "address banned after repeated failed logins"
        );
        #[cfg(feature = "metrics")]
        ::metrics::counter!("mail_auth_bans_total").increment(1);
    }
}

impl<B> fmt::Debug for AutoBanLayer<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = &self.state.config;
        f.debug_struct("AutoBanLayer")
            .field("failures", &config.failures)
            .field("window", &config.window)
            .field("ban", &config.ban)
            .field("exempt_ranges", &config.exempt.ranges())
            .field("recent", &self.state.recent)
            .field("shared", &self.state.counter.is_some())
            .finish()
    }
}

impl<A, B> Layer<A> for AutoBanLayer<B> {
    type Service = AutoBanService<A, B>;

    fn layer(&self, inner: A) -> Self::Service {
        AutoBanService {
            inner,
            state: self.state.clone(),
        }
    }
}

/// The service [`AutoBanLayer`] makes.
///
/// ```
/// use tower::Layer;
/// use tower_mail::auth::{AuthError, Authenticator, Credentials, User};
/// use tower_mail_layers::auth::{AutoBanLayer, AutoBanService};
/// use tower_mail_layers::ip_block::{IpBlock, IpLists};
///
/// let inner = tower::service_fn(|c: Credentials| async move { Ok::<_, AuthError>(User::new(c.user)) });
/// let service: AutoBanService<_> = AutoBanLayer::new(IpBlock::new(IpLists::default())).layer(inner);
/// fn usable(_: impl Authenticator) {}
/// usable(service);
/// ```
pub struct AutoBanService<A, B = IpBlock> {
    inner: A,
    state: Arc<FailureBans<B>>,
}

impl<A: Clone, B> Clone for AutoBanService<A, B> {
    fn clone(&self) -> Self {
        AutoBanService {
            inner: self.inner.clone(),
            state: self.state.clone(),
        }
    }
}

impl<A: fmt::Debug, B> fmt::Debug for AutoBanService<A, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AutoBanService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<A: Authenticator, B: BanSink> Service<Credentials> for AutoBanService<A, B> {
    type Response = User;
    type Error = AuthError;
    type Future = AuthFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), AuthError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, credentials: Credentials) -> AuthFuture {
        let mut inner = super::take_ready(&mut self.inner);
        let state = self.state.clone();
        let ip = client_ip(&credentials);
        Box::pin(async move {
            let answer = inner.call(credentials).await;
            if let (Err(AuthError::InvalidCredentials), Some(ip)) = (&answer, ip) {
                state.failed(ip).await;
            }
            answer
        })
    }
}
