//! [`RateLimit`]: the limits as a [`Policy`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use tower_mail::{Reject, Session};

use super::future::verdict;
use super::outage::OutageLog;
use super::settings::{Settings, SettingsCell};
use super::{
    Key, LAYER_NAME, Limits, LocalStore, RateLimitConfig, RateLimitFuture, RateLimitKey,
    RateLimitPermit, RateLimitStore,
};
use crate::policy::{AddressPolicy, Policy};

/// The time since a fixed origin, never going back: what rate decisions are made on when set
/// with [`RateLimit::with_clock`] (tests, simulations). Without one, a connection counts at the
/// moment it was accepted, [`Session::started`], so no clock is read. A connection whose PROXY
/// header or TLS handshake was slow counts as arriving when it was accepted: its place in the
/// key's rate moves by at most the server's setup deadlines.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Instant;
/// use tower_mail_layers::rate_limit::Clock;
/// let origin = Instant::now();
/// let clock: Clock = Arc::new(move || origin.elapsed());
/// assert!(clock() < std::time::Duration::from_secs(60));
/// ```
pub type Clock = Arc<dyn Fn() -> Duration + Send + Sync>;

/// Per-key limits on open connections and on new connections over time, as a [`Policy`].
/// Clones share the store and the settings, so a clone kept aside can
/// [`reconfigure`](RateLimit::reconfigure) the layer at run time. See the
/// [module docs](super).
///
/// ```
/// use std::time::Duration;
/// use tower_mail_layers::rate_limit::{RateLimit, RateLimitConfig, RateLimitLayer};
///
/// let limit = RateLimit::new(RateLimitConfig {
///     max_concurrent: Some(10),
///     max_per_window: Some(30),
///     window: Duration::from_secs(60),
///     ..RateLimitConfig::default()
/// });
/// let layer = RateLimitLayer::from_policy(limit.clone());
/// // Later, on SIGHUP: new limits for new connections, open ones keep their slots.
/// limit.reconfigure(RateLimitConfig { max_concurrent: Some(5), ..RateLimitConfig::default() });
/// assert_eq!(limit.limits().max_concurrent, Some(5));
/// # drop(layer);
/// ```
pub struct RateLimit<S: RateLimitStore = LocalStore> {
    store: Arc<S>,
    // Read once per connection, replaced on reload.
    settings: Arc<SettingsCell>,
    // Times are measured from here.
    origin: Instant,
    // Store failures, logged per limit rather than per connection.
    outage: Arc<OutageLog>,
    // `None`: a connection's time is its accept instant, which the session already holds, so a
    // decision reads no clock (a clock read is some 45 ns of a ~200 ns check on a VM).
    clock: Option<Clock>,
}

impl RateLimit<LocalStore> {
    /// Enforce `config` with a [`LocalStore`] of `config.max_keys` keys.
    pub fn new(config: RateLimitConfig) -> Self {
        let store = LocalStore::new(config.max_keys, config.when_full);
        RateLimit::with_store(config, store)
    }

    /// Drop the local store's entries that no longer hold state (see
    /// [`LocalStore::sweep`]); returns how many.
    pub fn sweep(&self) -> usize {
        self.store.sweep(self.now())
    }
}

impl<S: RateLimitStore> RateLimit<S> {
    /// Enforce `config` with `store`; `max_keys` and `when_full` are the store's own business
    /// and are not used.
    ///
    /// ```
    /// use tower_mail_layers::rate_limit::{LocalStore, RateLimit, RateLimitConfig, WhenFull};
    /// let store = LocalStore::new(500, WhenFull::RefuseNewKeys);
    /// let limit = RateLimit::with_store(RateLimitConfig::default(), store);
    /// assert_eq!(limit.store().max_keys(), 500);
    /// ```
    pub fn with_store(config: RateLimitConfig, store: S) -> Self {
        RateLimit {
            store: Arc::new(store),
            settings: Arc::new(SettingsCell::new(Settings::from_config(config))),
            origin: Instant::now(),
            outage: Arc::default(),
            clock: None,
        }
    }

    /// Read the time from `clock` instead of the sessions' accept instants (for tests). It
    /// must not go back, and stays with this value and the clones made from it.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::time::Duration;
    /// use tower_mail_layers::rate_limit::{RateLimit, RateLimitConfig};
    ///
    /// let seconds = Arc::new(AtomicU64::new(0));
    /// let clock = seconds.clone();
    /// let limit = RateLimit::new(RateLimitConfig::default())
    ///     .with_clock(Arc::new(move || Duration::from_secs(clock.load(Ordering::Relaxed))));
    /// seconds.store(60, Ordering::Relaxed);
    /// assert_eq!(limit.now(), Duration::from_secs(60));
    /// ```
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The time on this limit's clock: since the limit was made, or what
    /// [`with_clock`](RateLimit::with_clock)'s clock says.
    pub fn now(&self) -> Duration {
        match &self.clock {
            Some(clock) => clock(),
            None => self.origin.elapsed(),
        }
    }

    /// When `session`'s connection counts: the moment it was accepted, on this limit's time
    /// line. A session accepted before the limit was made counts at its start.
    fn time_of(&self, session: &Session) -> Duration {
        match &self.clock {
            Some(clock) => clock(),
            None => session.started().saturating_duration_since(self.origin),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.settings.with(|settings| settings.limits)
    }

    /// Apply a new configuration to connections from now on, keeping every key's state: open
    /// connections keep their slots and release them normally, and rate history carries over.
    /// `max_keys` and `when_full` size the store and keep their first values.
    pub fn reconfigure(&self, config: RateLimitConfig) {
        let new = Settings::from_config(config);
        self.settings.replace(|old| Settings {
            // Rate history from the old limits still needs the time to run out.
            reads_clock: new.reads_clock || old.reads_clock,
            ..new.clone()
        });
    }
}

impl<S: RateLimitStore> Clone for RateLimit<S> {
    fn clone(&self) -> Self {
        RateLimit {
            store: self.store.clone(),
            settings: self.settings.clone(),
            origin: self.origin,
            outage: self.outage.clone(),
            clock: self.clock.clone(),
        }
    }
}

impl<S: RateLimitStore> Policy for RateLimit<S> {
    type Permit = RateLimitPermit<S>;
    type Future = RateLimitFuture<S>;

    fn name(&self) -> &'static str {
        LAYER_NAME
    }

    fn check(&self, session: &Arc<Session>) -> Self::Future {
        self.settings
            .with(|settings| match self.start(session, settings) {
                Start::Decided(verdict) => RateLimitFuture::decided(verdict),
                Start::Ask { key, now } => {
                    let acquire = self.store.acquire(&key, now, &settings.limits);
                    RateLimitFuture::asking(
                        acquire,
                        self.store.clone(),
                        key,
                        settings.clone(),
                        self.outage.clone(),
                    )
                }
            })
    }

    fn check_now(&self, session: &Arc<Session>) -> Option<Result<RateLimitPermit<S>, Reject>> {
        if !self.store.answers_now() {
            return None;
        }
        self.settings
            .with(|settings| match self.start(session, settings) {
                Start::Decided(verdict) => Some(verdict),
                // The store counted nothing: `check` asks it next.
                Start::Ask { .. } => None,
            })
    }
}

/// Before an implicit-TLS handshake, a peek at the store
/// ([`RateLimitStore::peek`]): a connection whose key already has `max_concurrent` open
/// connections, or has used up its rate, is refused without a handshake, and nothing is
/// counted, so a connection let through is counted once, by the layer after the handshake.
///
/// Only keys of the address: [`RateLimitKey::Ip`] and [`RateLimitKey::Prefix`]. A
/// [`Custom`](RateLimitKey::Custom) key function may read what the handshake brings (the TLS
/// server name) or stand for something else entirely, so its connections are let through to
/// the layer. So are all connections when the store cannot answer on the spot (the default of
/// [`peek`](RateLimitStore::peek): a Redis store).
///
/// ```
/// use std::sync::Arc;
/// use tower_mail::{Protocol, Session};
/// use tower_mail_layers::policy::{AddressPolicy, Policy};
/// use tower_mail_layers::rate_limit::{RateLimit, RateLimitConfig};
///
/// let limit = RateLimit::new(RateLimitConfig { max_concurrent: Some(1), ..Default::default() });
/// let session = || Arc::new(Session::new(Protocol::Imap,
///     "192.0.2.1:40000".parse().unwrap(), "127.0.0.1:993".parse().unwrap()));
/// let open = limit.check_now(&session()).unwrap().unwrap();
/// let refusal = limit.refuses_now(&session()).unwrap();
/// assert_eq!(refusal.message(), "Too many connections from this IP");
/// drop(open);
/// assert!(limit.refuses_now(&session()).is_none());
/// ```
impl<S: RateLimitStore> AddressPolicy for RateLimit<S> {
    fn refuses_now(&self, session: &Arc<Session>) -> Option<Reject> {
        self.settings.with(|settings| {
            if settings.limits.is_unlimited() {
                return None;
            }
            let key = match &settings.key {
                RateLimitKey::Ip | RateLimitKey::Prefix { .. } => settings.key.key_for(session)?,
                RateLimitKey::Custom(_) => return None,
            };
            // The same instant the layer counts the connection at: its accept.
            let now = if settings.reads_clock {
                self.time_of(session)
            } else {
                Duration::ZERO
            };
            let reason = self.store.peek(&key, now, &settings.limits)?;
            tracing::debug!(
                layer = LAYER_NAME,
                key = %key,
                ?reason,
                "rate limit refused a connection before its TLS handshake"
            );
            Some(settings.refusal.clone())
        })
    }
}

/// How far a check gets without waiting.
enum Start<S: RateLimitStore> {
    Decided(Result<RateLimitPermit<S>, Reject>),
    /// The store answers only through its future.
    Ask {
        key: Key,
        now: Duration,
    },
}

impl<S: RateLimitStore> RateLimit<S> {
    fn start(&self, session: &Session, settings: &Settings) -> Start<S> {
        if settings.limits.is_unlimited() {
            return Start::Decided(Ok(RateLimitPermit::empty()));
        }
        let Some(key) = settings.key.key_for(session) else {
            return Start::Decided(Ok(RateLimitPermit::empty()));
        };
        let now = if settings.reads_clock {
            self.time_of(session)
        } else {
            Duration::ZERO
        };
        match self.store.acquire_now(&key, now, &settings.limits) {
            Some(answer) => {
                Start::Decided(verdict(answer, &self.store, key, settings, &self.outage))
            }
            None => Start::Ask { key, now },
        }
    }
}

impl<S: RateLimitStore + std::fmt::Debug> std::fmt::Debug for RateLimit<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.settings.with(|settings| {
            f.debug_struct("RateLimit")
                .field("key", &settings.key)
                .field("limits", &settings.limits)
                .field("fail_open", &settings.fail_open)
                .field("store", &self.store)
                .finish()
        })
    }
}
