//! Failure counts that several servers can share: the [`FailureCounter`] trait, what it counts
//! under ([`FailureKey`]), and the in-process counter ([`LocalFailures`]).

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::net::IpAddr;
use std::pin::Pin;
use std::time::Duration;

use tokio::time::Instant;
use tower_mail::BoxError;

use super::DEFAULT_MAX_KEYS;
use super::recent::RecentFailures;

/// The answer of [`FailureCounter::record`]: the failures within the window, this one included.
///
/// ```
/// use tower_mail_layers::auth::FailureFuture;
/// let three: FailureFuture = Box::pin(async { Ok(3) });
/// # drop(three);
/// ```
pub type FailureFuture = Pin<Box<dyn Future<Output = Result<usize, BoxError>> + Send + 'static>>;

/// What one failure is counted under: the layer that counts it (its scope: `"delay"` for
/// [`FailureDelayLayer`](super::FailureDelayLayer), `"ban"` for
/// [`AutoBanLayer`](super::AutoBanLayer)) and the address or user name that failed.
///
/// - Addresses in their canonical form (IPv4-mapped IPv6 as IPv4).
/// - User names without case and hashed (the first 128 bits of SHA-1 of the lower-case name):
///   the same key on every server, the same size for every name, and no name in Redis.
///
/// ```
/// use tower_mail_layers::auth::FailureKey;
///
/// let ip = FailureKey::ip("ban", "::ffff:192.0.2.1".parse().unwrap());
/// assert_eq!(ip.to_string(), "ban:ip:192.0.2.1");
/// assert_eq!(FailureKey::user("delay", "Alice"), FailureKey::user("delay", "alice"));
/// assert!(FailureKey::user("delay", "alice").to_string().starts_with("delay:user:"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FailureKey {
    scope: &'static str,
    subject: Subject,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Subject {
    Ip(IpAddr),
    User(u128),
}

impl FailureKey {
    /// Failures from `ip`, counted by the layer of `scope`.
    pub fn ip(scope: &'static str, ip: IpAddr) -> FailureKey {
        FailureKey {
            scope,
            subject: Subject::Ip(ip.to_canonical()),
        }
    }

    /// Failures for the user name `name`, as sent (known or not), counted by the layer of
    /// `scope`.
    pub fn user(scope: &'static str, name: &str) -> FailureKey {
        let digest = sha1_smol::Sha1::from(name.to_lowercase()).digest().bytes();
        let mut first = [0; 16];
        first.copy_from_slice(&digest[..16]);
        FailureKey {
            scope,
            subject: Subject::User(u128::from_be_bytes(first)),
        }
    }

    /// The layer that counts under it.
    ///
    /// ```
    /// use tower_mail_layers::auth::FailureKey;
    /// assert_eq!(FailureKey::user("delay", "alice").scope(), "delay");
    /// ```
    pub fn scope(&self) -> &'static str {
        self.scope
    }
}

impl fmt::Display for FailureKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.subject {
            Subject::Ip(ip) => write!(f, "{}:ip:{ip}", self.scope),
            Subject::User(hash) => write!(f, "{}:user:{hash:032x}", self.scope),
        }
    }
}

impl fmt::Debug for FailureKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FailureKey({self})")
    }
}

/// What a layer counts: failures within `window`, at most `keep` per key (a layer that only
/// asks whether `N` were reached keeps `N`), and the key forgotten in the same step once the
/// count reaches `clear_at` (so that of concurrent failures only one sees it reached;
/// `usize::MAX`: never).
///
/// ```
/// use std::time::Duration;
/// use tower_mail_layers::auth::FailureWindow;
///
/// let ban_after_ten = FailureWindow { window: Duration::from_secs(300), keep: 10, clear_at: 10 };
/// # drop(ban_after_ten);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureWindow {
    /// How long a failure counts.
    pub window: Duration,
    /// How many failures per key are kept at most (at least 1).
    pub keep: usize,
    /// Forget the key when its count reaches this.
    pub clear_at: usize,
}

/// Recent failed logins per key, in this process ([`LocalFailures`]) or shared by every server
/// that uses the same Redis (`RedisFailures`, feature `redis`), for
/// [`FailureDelayLayer::shared`](super::FailureDelayLayer::shared) and
/// [`AutoBanLayer::shared`](super::AutoBanLayer::shared).
///
/// The layers always count in their own process too: when the shared counter fails (Redis is
/// down) or takes too long, they decide on their own count, so a Redis outage never blocks a
/// login, and log it at most once per 10 s at warn level.
///
/// # Contract
///
/// - [`record`](FailureCounter::record) counts one failure of `key` now, atomically, and
///   answers how many `key` has had within `window.window`, this one included, at most
///   `window.keep`. When that reaches `window.clear_at`, the key is forgotten in the same step.
/// - It answers in bounded time (a networked counter has a deadline of its own).
/// - [`clear`](FailureCounter::clear) forgets a key. It must not block: a networked counter
///   sends it in the background.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use tower_mail_layers::auth::{FailureCounter, FailureFuture, FailureKey, FailureWindow};
///
/// /// Counts every failure forever, for every key together.
/// #[derive(Default)]
/// struct Total(AtomicUsize);
///
/// impl FailureCounter for Total {
///     fn record(&self, _key: &FailureKey, window: FailureWindow) -> FailureFuture {
///         let count = self.0.fetch_add(1, Ordering::Relaxed) + 1;
///         Box::pin(std::future::ready(Ok(count.min(window.keep))))
///     }
///     fn clear(&self, _key: &FailureKey) {}
/// }
/// ```
pub trait FailureCounter: Send + Sync + 'static {
    /// Count a failure of `key` now. See the [contract](FailureCounter#contract).
    fn record(&self, key: &FailureKey, window: FailureWindow) -> FailureFuture;

    /// Forget `key`'s failures.
    fn clear(&self, key: &FailureKey);
}

/// Failure counts in this process: a sliding log of the last failure times per key, for at
/// most `max_keys` keys, the longest quiet evicted first. What the layers count with on their
/// own; as a [`FailureCounter`] it lets several layer stacks in one process share counts.
/// Give each layer the windows it was made with (the key's scope keeps the layers apart).
///
/// ```
/// use std::time::Duration;
/// use futures_util::FutureExt;
/// use tower_mail_layers::auth::{FailureCounter, FailureKey, FailureWindow, LocalFailures};
///
/// let counter = LocalFailures::new(1000);
/// let key = FailureKey::ip("ban", "192.0.2.1".parse().unwrap());
/// let window = FailureWindow { window: Duration::from_secs(60), keep: 3, clear_at: 3 };
/// let mut counts = Vec::new();
/// for _ in 0..4 {
///     counts.push(counter.record(&key, window).now_or_never().unwrap().unwrap());
/// }
/// assert_eq!(counts, [1, 2, 3, 1], "forgotten when it reached 3");
/// ```
pub struct LocalFailures {
    recent: RecentFailures<FailureKey>,
}

impl LocalFailures {
    /// At most `max_keys` keys (at least 1).
    pub fn new(max_keys: usize) -> LocalFailures {
        LocalFailures {
            // The window and keep of each call apply; these two are unused.
            recent: RecentFailures::new(Duration::ZERO, 1, max_keys),
        }
    }

    /// How many keys are tracked (some may have expired since their last failure).
    ///
    /// ```
    /// use tower_mail_layers::auth::LocalFailures;
    /// assert_eq!(LocalFailures::default().tracked(), 0);
    /// ```
    pub fn tracked(&self) -> usize {
        self.recent.len()
    }
}

impl Default for LocalFailures {
    /// At most [`DEFAULT_MAX_KEYS`] keys.
    fn default() -> Self {
        LocalFailures::new(DEFAULT_MAX_KEYS)
    }
}

impl FailureCounter for LocalFailures {
    fn record(&self, key: &FailureKey, window: FailureWindow) -> FailureFuture {
        let count = self.recent.record_within(
            *key,
            Instant::now(),
            window.clear_at,
            window.window,
            window.keep,
        );
        Box::pin(std::future::ready(Ok(count)))
    }

    fn clear(&self, key: &FailureKey) {
        self.recent.clear(key);
    }
}

impl fmt::Debug for LocalFailures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalFailures")
            .field("tracked", &self.tracked())
            .finish()
    }
}

/// A counter behind an `Arc` counts as the counter: clones share it.
impl<C: FailureCounter + ?Sized> FailureCounter for std::sync::Arc<C> {
    fn record(&self, key: &FailureKey, window: FailureWindow) -> FailureFuture {
        (**self).record(key, window)
    }

    fn clear(&self, key: &FailureKey) {
        (**self).clear(key);
    }
}
