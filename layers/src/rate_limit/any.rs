//! [`AnyStore`]: the local store or the Redis store, picked at run time.

use std::fmt;
use std::future::{Future, Ready};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::{
    Admission, Key, Limits, LocalStore, RateLimitConfig, RateLimitStore, Refusal, Slot, StoreError,
};
#[cfg(feature = "redis")]
use super::{RedisAcquire, RedisStore};

/// A [`RateLimitStore`] picked at run time: a [`LocalStore`] or, with the `redis` feature, a
/// `RedisStore`. One type for the [`RateLimit`](super::RateLimit) (and its layer) whichever
/// it is, so that a configuration file can choose.
///
/// It answers as the store inside does: on the spot and with a
/// [`peek`](RateLimitStore::peek) for the local store, through a round trip for Redis.
/// [`flush`](AnyStore::flush) and [`ping`](AnyStore::ping) pass through to Redis and have
/// nothing to do locally.
///
/// `non_exhaustive`: the `Redis` variant exists only with the feature, so a `match` needs a
/// `_` arm to build both ways.
///
/// ```
/// use tower_mail_layers::rate_limit::{AnyStore, RateLimit, RateLimitConfig, RateLimitLayer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), tower_mail_layers::rate_limit::StoreError> {
/// let config = RateLimitConfig::default();
/// // From the configuration: empty to count in this process alone.
/// let redis_url = "";
/// # #[cfg(feature = "redis")] let redis_url = "redis://127.0.0.1:6379";
/// # #[cfg(feature = "redis")]
/// let store = if redis_url.is_empty() {
///     AnyStore::local(&config)
/// } else {
///     AnyStore::redis(redis_url)?
/// };
/// # #[cfg(not(feature = "redis"))] let store = AnyStore::local(&config);
/// let limit = RateLimit::with_store(config, store);
/// let layer = RateLimitLayer::from_policy(limit.clone());
/// // Serve with `layer` in the stack. At shutdown, once the sessions have ended, send the
/// // releases still queued for Redis (the local store has none):
/// limit.store().flush().await?;
/// # drop(layer);
/// # Ok(()) }
/// ```
#[non_exhaustive]
pub enum AnyStore {
    /// Counts in this process.
    Local(LocalStore),
    /// Counts in Redis, shared by every server that uses it.
    #[cfg(feature = "redis")]
    Redis(RedisStore),
}

impl AnyStore {
    /// A [`LocalStore`] sized by `config`'s `max_keys` and `when_full`, as
    /// [`RateLimit::new`](super::RateLimit::new) makes it.
    ///
    /// ```
    /// use tower_mail_layers::rate_limit::{AnyStore, RateLimitConfig};
    /// let store = AnyStore::local(&RateLimitConfig { max_keys: 500, ..Default::default() });
    /// assert!(matches!(&store, AnyStore::Local(local) if local.max_keys() == 500));
    /// ```
    pub fn local(config: &RateLimitConfig) -> AnyStore {
        AnyStore::Local(LocalStore::new(config.max_keys, config.when_full))
    }

    /// A [`RedisStore`] with the default settings on the Redis at `url`, connecting lazily
    /// (see [`RedisStoreBuilder::build`](super::RedisStoreBuilder::build)); for other settings,
    /// build the store and convert it with `into()`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use tower_mail_layers::rate_limit::{AnyStore, RedisStore};
    /// let store = AnyStore::redis("redis://127.0.0.1:6379").unwrap();
    /// assert!(matches!(store, AnyStore::Redis(_)));
    /// let store: AnyStore = RedisStore::builder("redis://127.0.0.1:6379")
    ///     .lease(Duration::from_secs(30))
    ///     .build()
    ///     .unwrap()
    ///     .into();
    /// # drop(store);
    /// # }
    /// ```
    #[cfg(feature = "redis")]
    pub fn redis(url: impl Into<String>) -> Result<AnyStore, StoreError> {
        RedisStore::builder(url).build().map(AnyStore::Redis)
    }

    /// Wait until the releases queued for Redis have been sent (see `RedisStore::flush`);
    /// `Ok` at once for the local store.
    pub async fn flush(&self) -> Result<(), StoreError> {
        match self {
            AnyStore::Local(_) => Ok(()),
            #[cfg(feature = "redis")]
            AnyStore::Redis(store) => store.flush().await,
        }
    }

    /// Ask Redis for a `PONG` (see `RedisStore::ping`); `Ok` at once for the local store.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            AnyStore::Local(_) => Ok(()),
            #[cfg(feature = "redis")]
            AnyStore::Redis(store) => store.ping().await,
        }
    }
}

impl From<LocalStore> for AnyStore {
    fn from(store: LocalStore) -> AnyStore {
        AnyStore::Local(store)
    }
}

#[cfg(feature = "redis")]
impl From<RedisStore> for AnyStore {
    fn from(store: RedisStore) -> AnyStore {
        AnyStore::Redis(store)
    }
}

impl fmt::Debug for AnyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnyStore::Local(store) => f.debug_tuple("Local").field(store).finish(),
            #[cfg(feature = "redis")]
            AnyStore::Redis(store) => f.debug_tuple("Redis").field(store).finish(),
        }
    }
}

/// The future of [`AnyStore`]'s [`acquire`](RateLimitStore::acquire): the inner store's.
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct AnyAcquire(Acquire);

#[derive(Debug)]
enum Acquire {
    Local(Ready<Result<Admission, StoreError>>),
    #[cfg(feature = "redis")]
    Redis(RedisAcquire),
}

impl Future for AnyAcquire {
    type Output = Result<Admission, StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            Acquire::Local(ready) => Pin::new(ready).poll(cx),
            #[cfg(feature = "redis")]
            Acquire::Redis(acquire) => Pin::new(acquire).poll(cx),
        }
    }
}

impl RateLimitStore for AnyStore {
    type Future = AnyAcquire;

    fn acquire(&self, key: &Key, now: Duration, limits: &Limits) -> AnyAcquire {
        AnyAcquire(match self {
            AnyStore::Local(store) => Acquire::Local(store.acquire(key, now, limits)),
            #[cfg(feature = "redis")]
            AnyStore::Redis(store) => Acquire::Redis(store.acquire(key, now, limits)),
        })
    }

    fn acquire_now(
        &self,
        key: &Key,
        now: Duration,
        limits: &Limits,
    ) -> Option<Result<Admission, StoreError>> {
        match self {
            AnyStore::Local(store) => store.acquire_now(key, now, limits),
            #[cfg(feature = "redis")]
            AnyStore::Redis(store) => store.acquire_now(key, now, limits),
        }
    }

    fn answers_now(&self) -> bool {
        match self {
            AnyStore::Local(store) => store.answers_now(),
            #[cfg(feature = "redis")]
            AnyStore::Redis(store) => store.answers_now(),
        }
    }

    fn release(&self, key: &Key, slot: Slot) {
        match self {
            AnyStore::Local(store) => store.release(key, slot),
            #[cfg(feature = "redis")]
            AnyStore::Redis(store) => store.release(key, slot),
        }
    }

    fn peek(&self, key: &Key, now: Duration, limits: &Limits) -> Option<Refusal> {
        match self {
            AnyStore::Local(store) => store.peek(key, now, limits),
            #[cfg(feature = "redis")]
            AnyStore::Redis(store) => store.peek(key, now, limits),
        }
    }
}
