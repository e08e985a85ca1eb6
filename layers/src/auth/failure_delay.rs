//! Failed logins answered late, later for each recent failure (Dovecot's `auth_failure_delay`
//! with anvil's penalty).

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tower_layer::Layer;
use tower_mail::Session;
use tower_mail::auth::{AuthError, Authenticator, Credentials, User};
use tower_service::Service;

use super::failure_counter::{FailureCounter, FailureKey, FailureWindow};
use super::recent::RecentFailures;
use super::warn_every::{WarnEvery, counter_failed};
use super::{AuthFuture, DEFAULT_MAX_KEYS, client_ip};

/// The scope of this layer's [`FailureKey`]s.
const SCOPE: &str = "delay";

/// The delay of a first failure, by default.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(tower_mail_layers::auth::DEFAULT_BASE_DELAY, Duration::from_secs(2));
/// ```
pub const DEFAULT_BASE_DELAY: Duration = Duration::from_secs(2);

/// The longest delay, by default.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(tower_mail_layers::auth::DEFAULT_MAX_DELAY, Duration::from_secs(15));
/// ```
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(15);

/// How long a failure counts as recent, by default.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(tower_mail_layers::auth::DEFAULT_DELAY_WINDOW, Duration::from_secs(300));
/// ```
pub const DEFAULT_DELAY_WINDOW: Duration = Duration::from_secs(300);

/// Answers each [`AuthError::InvalidCredentials`] late: `base`, doubled for each recent failure
/// from the same address or for the same user name (whichever has more), at most `max`.
///
/// With the defaults (2 s, 15 s, a 5-minute window) the failures of one address or one user
/// are answered after 2, 4, 8, 15, 15… seconds. The wait is a Tokio timer in the failing
/// login's own future: no other login or session waits for it, and a client that disconnects
/// stops it.
///
/// - **Unknown user or wrong password, the same**: both are `InvalidCredentials` from the inner
///   service, and both count under the address and the user name as sent, known or not. (That
///   the inner service takes as long for both is its business: `PasswdFile` hashes a decoy.)
/// - **Successes are never delayed.** A success clears the failures of its user name (the
///   owner has shown the password), not those of its address: an address's penalty ends only
///   when its failures leave the window. Dovecot clears the address on success; keeping it
///   stops an attacker who owns one account from resetting the penalty of the address it
///   sprays other accounts' passwords from.
/// - Other errors ([`AuthError::Unavailable`], [`AuthError::Limit`]) pass at once and do not
///   count.
/// - **A session asked to end stops waiting** (server shutdown, a kick, a ban of its address,
///   when the credentials carry the session): the failure is counted already, and the wait
///   ends at once with [`AuthError::Unavailable`] rather than the verdict; the IMAP and POP3
///   services then send no login answer, only their goodbye (`* BYE Server shutting down`,
///   as Dovecot disconnects pending logins). A delay longer than the shutdown grace period
///   would otherwise hold the session until the hard stop.
/// - User names are counted without case (`Alice` is `alice`), under a keyed 64-bit hash:
///   memory does not depend on how long the names are.
/// - Addresses are counted one by one (IPv4-mapped IPv6 as IPv4).
/// - **Bounded memory**: at most [`max_keys`](FailureDelayLayer::max_keys) addresses and as
///   many user names ([`DEFAULT_MAX_KEYS`] each by default, about 250 bytes per key, so 25 MB
///   at most for both), the longest quiet evicted first when full. A key that keeps failing
///   stays the newest, so a spray of other keys cannot shield it.
///
/// Services made by one layer (and its clones) share the counts: layer the IMAP and the POP3
/// service with the same layer, or wrap the authentication service once. To share them with
/// other servers too, give the layer a shared [`FailureCounter`] ([`shared`](Self::shared)):
/// each failure is then counted there as well, in one round trip, and the delay follows the
/// shared count. When the shared counter fails (Redis is down) or is late, the count of this
/// process decides, so logins go on; that is logged at warn level at most once per 10 s
/// (`event = "auth_failure_counter_error"`) and counted
/// (`mail_auth_failure_counter_errors_total`).
///
/// ```
/// use std::time::Duration;
/// use tower::{Layer, ServiceExt};
/// use tower_mail::auth::{AuthError, Credentials, User};
/// use tower_mail_layers::auth::FailureDelayLayer;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let layer = FailureDelayLayer::new()
///     .base(Duration::from_secs(1))
///     .max(Duration::from_secs(10))
///     .window(Duration::from_secs(600));
/// let auth = layer.layer(tower::service_fn(|c: Credentials| async move {
///     if c.password() == Some("secret") { Ok(User::new(c.user)) } else { Err(AuthError::InvalidCredentials) }
/// }));
/// let start = tokio::time::Instant::now();
/// let answer = auth.clone().oneshot(Credentials::new("alice", "guess")).await;
/// assert_eq!(answer, Err(AuthError::InvalidCredentials));
/// assert_eq!(start.elapsed(), Duration::from_secs(1));
/// assert_eq!(layer.next_delay(None, "alice"), Duration::from_secs(2));
/// # }
/// ```
#[derive(Clone)]
pub struct FailureDelayLayer {
    history: Arc<FailureHistory>,
}

#[derive(Clone, Copy)]
struct Config {
    base: Duration,
    max: Duration,
    window: Duration,
    max_keys: usize,
}

/// The recent failures every clone of one [`FailureDelayLayer`] counts, per address and per
/// user, and the delays they earn.
struct FailureHistory {
    config: Config,
    /// Failures kept per key: enough to reach `max`.
    keep: usize,
    by_ip: RecentFailures<IpAddr>,
    by_user: RecentFailures<u64>,
    /// Keys user names, so that a client cannot pick names that collide.
    hasher: RandomState,
    /// Counts shared with other servers, if any.
    counter: Option<Arc<dyn FailureCounter>>,
    warn: WarnEvery,
}

impl Default for FailureDelayLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl FailureDelayLayer {
    /// [`DEFAULT_BASE_DELAY`], doubled up to [`DEFAULT_MAX_DELAY`], for failures within
    /// [`DEFAULT_DELAY_WINDOW`], at most [`DEFAULT_MAX_KEYS`] addresses and user names each.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_mail_layers::auth::FailureDelayLayer;
    /// assert_eq!(FailureDelayLayer::new().next_delay(None, "alice"), Duration::from_secs(2));
    /// ```
    pub fn new() -> Self {
        Self::build(
            Config {
                base: DEFAULT_BASE_DELAY,
                max: DEFAULT_MAX_DELAY,
                window: DEFAULT_DELAY_WINDOW,
                max_keys: DEFAULT_MAX_KEYS,
            },
            None,
        )
    }

    /// The delay of a failure with no recent failure before it. `Duration::ZERO` turns the
    /// delay off.
    pub fn base(self, base: Duration) -> Self {
        Self::build(
            Config {
                base,
                ..self.history.config
            },
            self.history.counter.clone(),
        )
    }

    /// The longest delay.
    pub fn max(self, max: Duration) -> Self {
        Self::build(
            Config {
                max,
                ..self.history.config
            },
            self.history.counter.clone(),
        )
    }

    /// How long a failure counts as recent.
    pub fn window(self, window: Duration) -> Self {
        Self::build(
            Config {
                window,
                ..self.history.config
            },
            self.history.counter.clone(),
        )
    }

    /// How many addresses, and how many user names, are counted at most (at least 1 each).
    ///
    /// ```
    /// use tower_mail_layers::auth::FailureDelayLayer;
    /// let layer = FailureDelayLayer::new().max_keys(1000);
    /// assert_eq!(layer.tracked(), (0, 0));
    /// ```
    pub fn max_keys(self, max_keys: usize) -> Self {
        Self::build(
            Config {
                max_keys,
                ..self.history.config
            },
            self.history.counter.clone(),
        )
    }

    /// Count failures in `counter` too, shared with the other servers that use it (a
    /// `RedisFailures`, feature `redis`): the delay follows the failures of an address or a
    /// user name on all of them. The counts of this process still decide when the counter
    /// fails.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tower_mail_layers::auth::{FailureDelayLayer, LocalFailures};
    /// // Two stacks in one process that count together:
    /// let counter = Arc::new(LocalFailures::default());
    /// let imap = FailureDelayLayer::new().shared(counter.clone());
    /// let pop3 = FailureDelayLayer::new().shared(counter);
    /// # drop((imap, pop3));
    /// ```
    pub fn shared(self, counter: impl FailureCounter) -> Self {
        Self::build(self.history.config, Some(Arc::new(counter)))
    }

    fn build(config: Config, counter: Option<Arc<dyn FailureCounter>>) -> Self {
        // Enough failures per key to reach `max`: base·2^n ≥ max. Zero base: no delay, one
        // kept so that the counts still say something.
        let mut doublings = 0;
        while doublings < 31
            && !config.base.is_zero()
            && config.base.saturating_mul(1 << doublings) < config.max
        {
            doublings += 1;
        }
        let keep = doublings + 1;
        FailureDelayLayer {
            history: Arc::new(FailureHistory {
                config,
                keep,
                by_ip: RecentFailures::new(config.window, keep, config.max_keys),
                by_user: RecentFailures::new(config.window, keep, config.max_keys),
                hasher: RandomState::new(),
                counter,
                warn: WarnEvery::default(),
            }),
        }
    }

    /// How long a failure from `ip` for `user` would be delayed now, by the counts of this
    /// process.
    pub fn next_delay(&self, ip: Option<IpAddr>, user: &str) -> Duration {
        let now = Instant::now();
        let history = &self.history;
        let by_ip = ip.map_or(0, |ip| history.by_ip.count(&ip.to_canonical(), now));
        let by_user = history.by_user.count(&history.user_key(user), now);
        history.delay(by_ip.max(by_user))
    }

    /// How many addresses and user names are counted now (some may have expired since the
    /// last failure).
    pub fn tracked(&self) -> (usize, usize) {
        (self.history.by_ip.len(), self.history.by_user.len())
    }
}

impl FailureHistory {
    fn user_key(&self, user: &str) -> u64 {
        self.hasher.hash_one(user.to_lowercase())
    }

    /// `base` doubled `failures` times, at most `max`.
    fn delay(&self, failures: usize) -> Duration {
        let Config { base, max, .. } = self.config;
        let doublings = failures.min(31) as u32;
        base.saturating_mul(1 << doublings).min(max)
    }

    /// Count a failure and answer how long to hold it, with the failures counted before it.
    async fn failed(&self, ip: Option<IpAddr>, user: &str) -> (Duration, usize) {
        let now = Instant::now();
        let by_ip = ip.map_or(0, |ip| self.by_ip.record(ip, now, usize::MAX) - 1);
        let by_user = self.by_user.record(self.user_key(user), now, usize::MAX) - 1;
        let local = by_ip.max(by_user);
        let before = match &self.counter {
            Some(counter) => self
                .failed_shared(&**counter, ip, user)
                .await
                .unwrap_or(local),
            None => local,
        };
        (self.delay(before), before)
    }

    /// Count the failure in the shared counter: the failures before it, the larger of the
    /// address's and the user name's; `None` if the counter failed (then the local count
    /// decides).
    async fn failed_shared(
        &self,
        counter: &dyn FailureCounter,
        ip: Option<IpAddr>,
        user: &str,
    ) -> Option<usize> {
        let window = FailureWindow {
            window: self.config.window,
            keep: self.keep,
            clear_at: usize::MAX,
        };
        // Both at once: one round trip.
        let by_user = counter.record(&FailureKey::user(SCOPE, user), window);
        let by_ip = ip.map(|ip| counter.record(&FailureKey::ip(SCOPE, ip), window));
        let by_ip = async move {
            match by_ip {
                Some(count) => count.await,
                None => Ok(0),
            }
        };
        match futures_util::future::join(by_user, by_ip).await {
            (Ok(by_user), Ok(by_ip)) => Some(by_user.max(by_ip).saturating_sub(1)),
            (Err(error), _) | (_, Err(error)) => {
                counter_failed(&self.warn, ip, &error);
                None
            }
        }
    }
}

impl fmt::Debug for FailureDelayLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Config {
            base,
            max,
            window,
            max_keys,
        } = self.history.config;
        f.debug_struct("FailureDelayLayer")
            .field("base", &base)
            .field("max", &max)
            .field("window", &window)
            .field("max_keys", &max_keys)
            .field("tracked", &self.tracked())
            .field("shared", &self.history.counter.is_some())
            .finish()
    }
}

impl<A> Layer<A> for FailureDelayLayer {
    type Service = FailureDelayService<A>;

    fn layer(&self, inner: A) -> Self::Service {
        FailureDelayService {
            inner,
            history: self.history.clone(),
        }
    }
}

/// The service [`FailureDelayLayer`] makes.
///
/// ```
/// use tower::Layer;
/// use tower_mail::auth::{AuthError, Authenticator, Credentials, User};
/// use tower_mail_layers::auth::{FailureDelayLayer, FailureDelayService};
///
/// let inner = tower::service_fn(|c: Credentials| async move { Ok::<_, AuthError>(User::new(c.user)) });
/// let service: FailureDelayService<_> = FailureDelayLayer::new().layer(inner);
/// fn usable(_: impl Authenticator) {}
/// usable(service);
/// ```
#[derive(Clone)]
pub struct FailureDelayService<A> {
    inner: A,
    history: Arc<FailureHistory>,
}

impl<A: fmt::Debug> fmt::Debug for FailureDelayService<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailureDelayService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<A: Authenticator> Service<Credentials> for FailureDelayService<A> {
    type Response = User;
    type Error = AuthError;
    type Future = AuthFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), AuthError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, credentials: Credentials) -> AuthFuture {
        let mut inner = super::take_ready(&mut self.inner);
        let history = self.history.clone();
        let ip = client_ip(&credentials);
        let user = credentials.user.clone();
        let session = credentials.session.clone();
        Box::pin(async move {
            match inner.call(credentials).await {
                Ok(found) => {
                    history.by_user.clear(&history.user_key(&user));
                    if let Some(counter) = &history.counter {
                        counter.clear(&FailureKey::user(SCOPE, &user));
                    }
                    Ok(found)
                }
                Err(AuthError::InvalidCredentials) => {
                    let (delay, before) = history.failed(ip, &user).await;
                    if !delay.is_zero() {
                        tracing::debug!(
                            event = "auth_failure_delayed",
                            remote_addr = ip.map(tracing::field::display),
                            user = %user,
                            recent_failures = before,
                            delay_ms = delay.as_millis() as u64,
                            "failed login answered late"
                        );
                        #[cfg(feature = "metrics")]
                        ::metrics::counter!("mail_auth_failures_delayed_total").increment(1);
                        if !hold(delay, session.as_deref()).await {
                            return Err(AuthError::Unavailable);
                        }
                    }
                    Err(AuthError::InvalidCredentials)
                }
                Err(other) => Err(other),
            }
        })
    }
}

/// Wait out a failure's `delay`, unless its session is asked to end first (server shutdown, a
/// kick, a ban of its address): then `false` at once. The failure is counted already, so
/// nothing is lost; the session says its goodbye within the shutdown grace period instead of
/// being cut at its end, and the answer is [`AuthError::Unavailable`], never the verdict,
/// which a client gets only after the delay (the session services send none while ending).
async fn hold(delay: Duration, session: Option<&Session>) -> bool {
    let sleep = tokio::time::sleep(delay);
    let Some(session) = session else {
        sleep.await;
        return true;
    };
    tokio::select! {
        biased;
        _ = session.ending() => false,
        _ = sleep => true,
    }
}
