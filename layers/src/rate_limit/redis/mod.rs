//! [`RedisStore`]: per-key counters in Redis, shared by every server that uses the same Redis.

mod future;
mod script;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;

pub use future::RedisAcquire;

use self::script::{ACQUIRE, Plan};
use super::{Key, LAYER_NAME, Limits, RateLimitStore, Slot, StoreError};
use crate::redis_support::breaker::Breaker;
use crate::redis_support::leases::Leases;
use crate::redis_support::{Client, Settings, redacted};

/// The key prefix unless [`RedisStoreBuilder::prefix`] says otherwise.
///
/// ```
/// assert_eq!(tower_mail_layers::rate_limit::REDIS_DEFAULT_PREFIX, "tower-mail:rl:");
/// ```
pub const REDIS_DEFAULT_PREFIX: &str = "tower-mail:rl:";

/// A [`RateLimitStore`] in Redis: open-connection counts and new-connection rates shared by
/// every server that uses the same Redis and prefix, so that `max_concurrent = 10` per address
/// holds across a fleet.
///
/// # How it works
///
/// - **One round trip per decision.** `acquire` runs one Lua script (`acquire.lua`, sent by
///   SHA and loaded on `NOSCRIPT`). The script reads Redis' `TIME` (one clock for all servers;
///   the layer's `now` is ignored), drops the expired members of the key's sorted set of open
///   connections, compares its size with `max_concurrent`, runs the GCRA step of
///   [`Rate::admit`](super::Rate::admit) in integer microseconds, and only if both pass adds
///   the connection's member and stores the new TAT. A refusal changes nothing.
/// - **Keys.** For a key `192.0.2.1` and the default prefix: `tower-mail:rl:conn:{192.0.2.1}`,
///   a sorted set of member id → lease deadline, and `tower-mail:rl:tat:{192.0.2.1}`, the TAT
///   with a `PX` expiry at the TAT, so idle keys vanish by themselves. The `{…}` hash tag puts
///   both keys of one client in one cluster slot. The set expires with its longest lease.
/// - **Members.** `<instance>-<counter>`: a random id per store and a counter whose value is
///   the [`Slot`]. Releasing is `ZREM`, which a `Drop` cannot wait for: it is queued to the
///   store's background task, which sends queued releases as one pipeline.
/// - **Leases.** Each member carries a deadline `lease` ahead (60 s by default); the task
///   renews its open members every `lease / 3`. A server that crashes, or is cut off from
///   Redis, stops renewing, and its connections stop counting when their leases run out. The
///   renewal adds a member back if it is gone (Redis restarted empty): the connection is still
///   open.
/// - **Failures.** A Redis error or a missing answer is a [`StoreError`]; the layer's
///   `store_timeout` and `fail_open` decide. An acquire dropped before its answer releases its
///   member, in case the script ran.
///
/// # Starting while Redis is down
///
/// [`RedisStoreBuilder::build`] connects lazily: it never waits and fails only on a bad URL,
/// so a server starts when Redis is down, and `fail_open` applies to its first connections.
/// The connection is made on the first command and made again after an I/O error, each
/// attempt bounded by `connect_timeout` with no retry loop. [`RedisStore::connect`] waits for a
/// first `PING` instead, for callers who would rather not start without Redis.
///
/// # While Redis is unreachable
///
/// A circuit breaker keeps an outage from costing every new connection a wait. After a check
/// finds Redis unreachable (connection refused or reset, a connect or response timeout, Redis
/// still loading its data) or gets no answer before the layer gives up on it
/// (`store_timeout`), the store answers the following checks at once with a [`StoreError`],
/// without touching Redis, for [`retry_after`](RedisStoreBuilder::retry_after) (1 s by
/// default): `fail_open` decides them instantly. Then one check goes to Redis as a probe while
/// the others keep failing at once; its answer closes the breaker, its failure opens it for
/// another `retry_after`. So during an outage, one check per `retry_after` waits (at most the
/// layer's `store_timeout`) and the rest do not; after Redis is back, checks count again
/// within `retry_after`. A script error (a Redis answer) does not open it. The background
/// releases and renewals do not go through the breaker.
///
/// # Redis Cluster
///
/// Every script touches the keys of one client only, which share a hash tag, so one cluster
/// slot: give [`RedisStore::builder`] a `redis+cluster://host:port,host:port` URL (or the
/// nodes' `redis://` URLs separated by commas) and the store uses the redis crate's cluster
/// client, which routes each call by its key's slot and follows the cluster's changes. The
/// background task then sends its releases one command per key (a pipeline must not span
/// slots), still all at once.
///
/// Needs Redis 5 or newer (or Valkey), and a Tokio runtime with the time driver.
///
/// # Example
///
/// ```no_run
/// use std::time::Duration;
/// use tower_mail_layers::rate_limit::{RateLimit, RateLimitConfig, RateLimitLayer, RedisStore};
///
/// # async fn run() -> Result<(), tower_mail_layers::rate_limit::StoreError> {
/// let store = RedisStore::builder("redis://127.0.0.1:6379")
///     .lease(Duration::from_secs(30))
///     .build()?;
/// let limit = RateLimit::with_store(
///     RateLimitConfig { max_concurrent: Some(10), fail_open: true, ..Default::default() },
///     store,
/// );
/// let layer = RateLimitLayer::from_policy(limit.clone());
/// // ... serve with `layer` in the stack; at shutdown, once the sessions have ended:
/// limit.store().flush().await?;
/// # drop(layer);
/// # Ok(()) }
/// ```
pub struct RedisStore {
    client: Client,
    prefix: Arc<str>,
    leases: Leases,
}

/// Settings of a [`RedisStore`], from [`RedisStore::builder`].
///
/// ```
/// use std::time::Duration;
/// use tower_mail_layers::rate_limit::RedisStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // Lazy: no Redis is needed until the first check.
/// let store = RedisStore::builder("redis://127.0.0.1:6379")
///     .prefix("mail-eu:rl:")
///     .lease(Duration::from_secs(30))
///     .connect_timeout(Duration::from_millis(500))
///     .response_timeout(Duration::from_secs(1))
///     .retry_after(Duration::from_secs(2))
///     .build()
///     .unwrap();
/// assert_eq!(store.prefix(), "mail-eu:rl:");
/// assert_eq!(store.lease(), Duration::from_secs(30));
/// assert_eq!(store.retry_after(), Duration::from_secs(2));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RedisStoreBuilder {
    settings: Settings,
    prefix: String,
    lease: Duration,
}

impl RedisStoreBuilder {
    /// Prefix of every key the store writes (default [`REDIS_DEFAULT_PREFIX`]). Servers that
    /// share limits must use the same prefix; a different prefix is a separate set of limits.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use tower_mail_layers::rate_limit::{Key, RedisStore};
    /// let store = RedisStore::builder("redis://127.0.0.1").prefix("rl:").build().unwrap();
    /// assert_eq!(store.set_key(&Key::from("user:alice")), "rl:conn:{user:alice}");
    /// # }
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long an open connection counts without being renewed (default 60 s; kept between
    /// 100 ms and one day). The store renews its open connections every `lease / 3`; a crashed
    /// server's connections stop counting at most `lease` after its last renewal. A renewal
    /// waits behind other calls, which may each take up to `connect_timeout` +
    /// `response_timeout` while Redis struggles: a lease shorter than three times that can let
    /// open connections lapse and count too few.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use tower_mail_layers::rate_limit::RedisStore;
    /// let store = RedisStore::builder("redis://127.0.0.1")
    ///     .lease(Duration::from_secs(90))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(store.lease(), Duration::from_secs(90));
    /// # }
    /// ```
    pub fn lease(mut self, lease: Duration) -> Self {
        // Past a day the script's millisecond arithmetic would overflow Redis' PEXPIRE, and
        // under 100 ms no renewal can keep up.
        self.lease = lease.clamp(Duration::from_millis(100), Duration::from_secs(86_400));
        self
    }

    /// Bound on each attempt to connect (default 1 s). There is no retry loop, and while Redis
    /// is unreachable only one check per [`retry_after`](RedisStoreBuilder::retry_after) makes
    /// an attempt: the layer's `fail_open` answers the others at once.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use tower_mail_layers::rate_limit::RedisStore;
    /// let store = RedisStore::builder("redis://127.0.0.1")
    ///     .connect_timeout(Duration::from_millis(250))
    ///     .build();
    /// assert!(store.is_ok());
    /// # }
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout = timeout;
        self
    }

    /// Bound on each command's answer (default 2 s). The layer's `store_timeout` (1 s by
    /// default) usually decides first for checks; this one bounds the background task's
    /// releases and renewals when Redis hangs.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use tower_mail_layers::rate_limit::RedisStore;
    /// let store = RedisStore::builder("redis://127.0.0.1")
    ///     .response_timeout(Duration::from_secs(5))
    ///     .build();
    /// assert!(store.is_ok());
    /// # }
    /// ```
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.settings.response_timeout = timeout;
        self
    }

    /// The circuit breaker's cool-down (default 1 s): after a check finds Redis unreachable,
    /// checks fail at once, without touching Redis, for this long; then one check probes
    /// Redis (see [While Redis is unreachable](RedisStore#while-redis-is-unreachable)).
    /// Shorter notices Redis' return sooner; longer makes fewer checks wait for a probe during
    /// an outage (one per `retry_after`, each waiting at most the layer's `store_timeout`).
    /// [`Duration::ZERO`] probes with the next check, still one probe at a time.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use tower_mail_layers::rate_limit::RedisStore;
    /// let store = RedisStore::builder("redis://127.0.0.1")
    ///     .retry_after(Duration::from_secs(5))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(store.retry_after(), Duration::from_secs(5));
    /// # }
    /// ```
    pub fn retry_after(mut self, cool_down: Duration) -> Self {
        self.settings.retry_after = cool_down;
        self
    }

    /// The Redis URL without its credentials, to print or log: the user part is masked and
    /// the query (where `redis+unix://` URLs carry `pass=`) left out.
    ///
    /// ```
    /// use tower_mail_layers::rate_limit::RedisStore;
    /// let builder = RedisStore::builder("redis://app:secret@10.0.0.5:6379/0");
    /// assert_eq!(builder.address(), "redis://***@10.0.0.5:6379/0");
    /// let builder = RedisStore::builder("redis+unix:///run/redis.sock?pass=secret");
    /// assert_eq!(builder.address(), "redis+unix:///run/redis.sock?...");
    /// ```
    pub fn address(&self) -> String {
        redacted(&self.settings.url)
    }

    /// The store, connecting lazily (see [Starting while Redis is down](RedisStore#starting-while-redis-is-down)).
    /// Fails on a URL the Redis client does not accept, or outside a Tokio runtime (the
    /// store's background task runs on it).
    ///
    /// ```
    /// use tower_mail_layers::rate_limit::RedisStore;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// assert!(RedisStore::builder("redis://127.0.0.1:6379/0").build().is_ok());
    /// assert!(RedisStore::builder("http://127.0.0.1").build().is_err());
    /// # }
    /// ```
    pub fn build(self) -> Result<RedisStore, StoreError> {
        let client = Client::open(&self.settings, LAYER_NAME).map_err(StoreError::new)?;
        let leases = Leases::start(client.connection.clone(), self.lease, LAYER_NAME);
        Ok(RedisStore {
            client,
            prefix: self.prefix.into(),
            leases,
        })
    }

    /// [`build`](RedisStoreBuilder::build), then wait for Redis to answer a `PING`: an error
    /// if it cannot be reached now.
    ///
    /// ```no_run
    /// use tower_mail_layers::rate_limit::RedisStore;
    /// # async fn run() -> Result<(), tower_mail_layers::rate_limit::StoreError> {
    /// let store = RedisStore::builder("redis://127.0.0.1:6379").connect().await?;
    /// # drop(store);
    /// # Ok(()) }
    /// ```
    pub async fn connect(self) -> Result<RedisStore, StoreError> {
        let store = self.build()?;
        store.ping().await?;
        Ok(store)
    }
}

impl RedisStore {
    /// Settings for a store on the Redis at `url` (`redis://[user:password@]host[:port][/db]`,
    /// or `redis+unix:///path`), or on a Redis Cluster
    /// (`redis+cluster://[user:password@]host:port,host:port`, or the nodes' URLs separated by
    /// commas; see [Redis Cluster](RedisStore#redis-cluster)).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use tower_mail_layers::rate_limit::{RedisStore, REDIS_DEFAULT_PREFIX};
    /// let store = RedisStore::builder("redis://127.0.0.1:6379").build().unwrap();
    /// assert_eq!(store.prefix(), REDIS_DEFAULT_PREFIX);
    /// # }
    /// ```
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            settings: Settings::new(url.into()),
            prefix: REDIS_DEFAULT_PREFIX.to_owned(),
            lease: Duration::from_secs(60),
        }
    }

    /// A store with the default settings on the Redis at `url`, once Redis has answered a
    /// `PING` (see [`RedisStoreBuilder::connect`]; [`RedisStoreBuilder::build`] does not wait).
    ///
    /// ```no_run
    /// use tower_mail_layers::rate_limit::{RateLimit, RateLimitConfig, RedisStore};
    /// # async fn run() -> Result<(), tower_mail_layers::rate_limit::StoreError> {
    /// let store = RedisStore::connect("redis://127.0.0.1:6379").await?;
    /// let limit = RateLimit::with_store(RateLimitConfig::default(), store);
    /// # drop(limit);
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: impl Into<String>) -> Result<RedisStore, StoreError> {
        RedisStore::builder(url).connect().await
    }

    /// Ask Redis for a `PONG`.
    ///
    /// ```no_run
    /// # async fn run(store: tower_mail_layers::rate_limit::RedisStore) {
    /// if let Err(err) = store.ping().await {
    ///     eprintln!("{err}; fail_open applies until Redis is back");
    /// }
    /// # }
    /// ```
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.client.ping().await.map_err(StoreError::new)
    }

    /// Wait until every release queued so far has been sent to Redis; an error if the last
    /// batch could not be sent (those members then stop counting when their leases run out).
    /// For a graceful shutdown: once the sessions have ended, flush so that the other
    /// servers see their slots free at once.
    ///
    /// ```no_run
    /// # async fn run(store: tower_mail_layers::rate_limit::RedisStore) {
    /// // After `Server::shutdown` has returned:
    /// if let Err(err) = store.flush().await {
    ///     eprintln!("{err}");
    /// }
    /// # }
    /// ```
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.leases.flush().await.map_err(StoreError::new)
    }

    /// Where its Redis is, without credentials (see [`RedisStoreBuilder::address`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use tower_mail_layers::rate_limit::RedisStore;
    /// let store = RedisStore::builder("redis://:secret@127.0.0.1").build().unwrap();
    /// assert_eq!(store.address(), "redis://***@127.0.0.1");
    /// # }
    /// ```
    pub fn address(&self) -> &str {
        &self.client.address
    }

    /// The prefix of its keys.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use tower_mail_layers::rate_limit::RedisStore;
    /// let store = RedisStore::builder("redis://127.0.0.1").prefix("x:").build().unwrap();
    /// assert_eq!(store.prefix(), "x:");
    /// # }
    /// ```
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// How long an open connection counts without renewal.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use tower_mail_layers::rate_limit::RedisStore;
    /// let store = RedisStore::builder("redis://127.0.0.1").build().unwrap();
    /// assert_eq!(store.lease(), Duration::from_secs(60));
    /// # }
    /// ```
    pub fn lease(&self) -> Duration {
        self.leases.lease()
    }

    /// The circuit breaker's cool-down (see [`RedisStoreBuilder::retry_after`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use tower_mail_layers::rate_limit::RedisStore;
    /// let store = RedisStore::builder("redis://127.0.0.1").build().unwrap();
    /// assert_eq!(store.retry_after(), Duration::from_secs(1));
    /// # }
    /// ```
    pub fn retry_after(&self) -> Duration {
        self.client.breaker.retry_after()
    }

    /// The Redis key of `key`'s sorted set of open connections: `<prefix>conn:{<key>}`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::net::IpAddr;
    /// use tower_mail_layers::rate_limit::{Key, RedisStore};
    /// let store = RedisStore::builder("redis://127.0.0.1").build().unwrap();
    /// let key = Key::from("192.0.2.1".parse::<IpAddr>().unwrap());
    /// assert_eq!(store.set_key(&key), "tower-mail:rl:conn:{192.0.2.1}");
    /// # }
    /// ```
    pub fn set_key(&self, key: &Key) -> String {
        format!("{}conn:{{{key}}}", self.prefix)
    }

    /// The Redis key of `key`'s GCRA theoretical arrival time (µs on Redis' clock):
    /// `<prefix>tat:{<key>}`. It exists only while the key has rate history.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use tower_mail_layers::rate_limit::{Key, RedisStore};
    /// let store = RedisStore::builder("redis://127.0.0.1").build().unwrap();
    /// let key = Key::from("192.0.2.0/24".parse::<ipnet::IpNet>().unwrap());
    /// assert_eq!(store.tat_key(&key), "tower-mail:rl:tat:{192.0.2.0/24}");
    /// # }
    /// ```
    pub fn tat_key(&self, key: &Key) -> String {
        format!("{}tat:{{{key}}}", self.prefix)
    }

    /// The sorted-set member that `slot` of this store stands for.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use tower_mail_layers::rate_limit::{Admission, Key, Limits, RateLimitStore, RedisStore};
    /// # async fn run(store: RedisStore) -> Result<(), Box<dyn std::error::Error>> {
    /// let limits = Limits { max_concurrent: Some(1), rate: None };
    /// let key = Key::from("user:alice");
    /// if let Admission::Admitted(Some(slot)) = store.acquire(&key, Duration::ZERO, &limits).await? {
    ///     println!("ZSCORE {} {}", store.set_key(&key), store.member(slot));
    ///     store.release(&key, slot);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn member(&self, slot: Slot) -> String {
        self.leases.member_id(slot.id())
    }
}

impl RateLimitStore for RedisStore {
    type Future = RedisAcquire;

    fn acquire(&self, key: &Key, _now: Duration, limits: &Limits) -> RedisAcquire {
        let args = match script::plan(limits) {
            Plan::Decided(admission) => return RedisAcquire::ready(Ok(admission)),
            Plan::Ask(args) => args,
        };
        let breaker = &self.client.breaker;
        let ticket = match breaker.try_call() {
            Ok(ticket) => ticket,
            // Redis failed a moment ago: do not wait for it again yet.
            Err(wait) => {
                return RedisAcquire::ready(Err(StoreError::new(Breaker::refusal(wait))));
            }
        };
        let set: Arc<str> = self.set_key(key).into();
        let counted = args.counts().then(|| self.leases.counted(set.clone()));
        let mut invocation = ACQUIRE.prepare_invoke();
        invocation
            .key(&*set)
            .key(self.tat_key(key))
            .arg(args.max_concurrent)
            .arg(args.interval_us)
            .arg(args.tolerance_us)
            .arg(match &counted {
                Some(counted) => self.leases.member_id(counted.member),
                None => String::new(),
            })
            .arg(self.leases.lease_ms());
        let mut connection = self.client.connection.clone();
        let reply = async move { invocation.invoke_async::<Vec<i64>>(&mut connection).await };
        RedisAcquire::asking(reply.boxed(), counted, breaker.clone(), ticket)
    }

    fn release(&self, key: &Key, slot: Slot) {
        self.leases.release(self.set_key(key).into(), slot.id());
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("lease", &self.leases.lease())
            .field("breaker", &*self.client.breaker)
            .field("instance", &format_args!("{:016x}", self.leases.instance()))
            .finish_non_exhaustive()
    }
}
