//! [`RedisAuth`]: the auth layers' state in Redis, shared by every server that uses the same
//! Redis and prefix: per-user session counts, failure counts and bans.

mod ban_sync;
mod bans;
mod failures;
mod user_sessions;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tower_mail::BoxError;

pub use bans::RedisBans;
pub use failures::RedisFailures;
pub use user_sessions::RedisUserSessions;

use crate::ip_block::IpBlock;
use crate::redis_support::breaker::{Breaker, Ticket};
use crate::redis_support::call::{Call, Counted};
use crate::redis_support::connection::Connection;
use crate::redis_support::leases::Leases;
use crate::redis_support::{Client, Settings, redacted};

/// The key prefix unless [`RedisAuthBuilder::prefix`] says otherwise.
///
/// ```
/// assert_eq!(tower_mail_layers::auth::REDIS_AUTH_DEFAULT_PREFIX, "tower-mail:auth:");
/// ```
pub const REDIS_AUTH_DEFAULT_PREFIX: &str = "tower-mail:auth:";

/// The `layer` field of the Redis machinery's log events.
const LOG: &str = "auth";

/// One connection to Redis (or a Redis Cluster) for the auth layers, from which come the
/// shared stores: [`user_sessions`](RedisAuth::user_sessions) for a
/// [`UserSessionsLayer`](super::UserSessionsLayer), [`failures`](RedisAuth::failures) for a
/// [`FailureDelayLayer`](super::FailureDelayLayer) and an
/// [`AutoBanLayer`](super::AutoBanLayer), [`bans`](RedisAuth::bans) as the auto-ban's sink.
/// Clones share the connection.
///
/// # Like the rate limit's `RedisStore`
///
/// - **Lazy**: [`RedisAuthBuilder::build`] never waits, so a server starts while Redis is
///   down; [`RedisAuthBuilder::connect`] waits for a `PING`.
/// - **Redis' clock**: every decision is a Lua script that reads Redis `TIME`, so servers
///   agree on time without agreeing clocks.
/// - **One round trip per login**, with a deadline ([`timeout`](RedisAuthBuilder::timeout),
///   1 s by default) and a circuit breaker: after a call finds Redis unreachable or late, calls
///   fail at once for [`retry_after`](RedisAuthBuilder::retry_after) (1 s), then one probes.
/// - **Fails open**: when Redis fails, a login goes on as without Redis: no session cap
///   (unless [`UserSessionsLayer::fail_open(false)`](super::UserSessionsLayer::fail_open)),
///   failures counted in this process, bans local.
/// - **Keys** are hash-tagged (`{…}`), each script touching one cluster slot, so a Redis
///   Cluster works as well as one server: give a `redis+cluster://host:port,host:port` URL, or
///   the nodes' `redis://` URLs separated by commas.
///
/// Keys, for the default prefix:
///
/// | key | type | what |
/// |---|---|---|
/// | `tower-mail:auth:sessions:{alice}` | sorted set | alice's open sessions: member → lease deadline (µs) |
/// | `tower-mail:auth:fail:{delay:ip:192.0.2.1}` | sorted set | recent failures: member → time (µs) |
/// | `tower-mail:auth:fail:{delay:user:<hash>}` | sorted set | the same per user name ([`FailureKey`](super::FailureKey)) |
/// | `tower-mail:auth:fail:{ban:ip:192.0.2.1}` | sorted set | the auto-ban's count |
/// | `tower-mail:auth:{bans}:until` | sorted set | banned address → end of the ban (µs) |
/// | `tower-mail:auth:{bans}:log` | sorted set | banned address → when (µs), for incremental syncs |
///
/// Every key expires by itself once it says nothing any more.
///
/// Needs Redis 5 or newer (or Valkey), and a Tokio runtime.
///
/// ```no_run
/// use tower::ServiceBuilder;
/// use tower_mail_layers::auth::{
///     AutoBanLayer, FailureDelayLayer, RedisAuth, UserSessionsLayer, VerifyLimitLayer,
/// };
/// use tower_mail_layers::ip_block::{IpBlock, IpLists};
/// # use tower_mail::auth::{AuthError, Credentials, User};
///
/// # async fn run() -> Result<(), tower_mail::BoxError> {
/// let ip_block = IpBlock::new(IpLists::default()); // also in the connection stack
/// let redis = RedisAuth::builder("redis://10.0.0.5:6379").build()?;
/// # let passwd = tower::service_fn(|c: Credentials| async move { Ok::<_, AuthError>(User::new(c.user)) });
/// let auth = ServiceBuilder::new()
///     .layer(UserSessionsLayer::with_store(15, redis.user_sessions()))
///     .layer(FailureDelayLayer::new().shared(redis.failures()))
///     .layer(AutoBanLayer::new(redis.bans(ip_block.clone())).shared(redis.failures()))
///     .layer(VerifyLimitLayer::per_core())
///     .service(passwd);
/// // ... serve; at shutdown, once the sessions have ended:
/// redis.flush().await?;
/// # drop(auth);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisAuth {
    inner: Arc<Inner>,
}

struct Inner {
    /// Where the background tasks run: the runtime the connection was made on.
    runtime: tokio::runtime::Handle,
    client: Client,
    leases: Leases,
    prefix: String,
    timeout: Duration,
    ban_sync: Duration,
}

/// Settings of a [`RedisAuth`], from [`RedisAuth::builder`].
///
/// ```
/// use std::time::Duration;
/// use tower_mail_layers::auth::RedisAuth;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let redis = RedisAuth::builder("redis://127.0.0.1:6379")
///     .prefix("mail-eu:auth:")
///     .lease(Duration::from_secs(30))
///     .timeout(Duration::from_millis(500))
///     .connect_timeout(Duration::from_millis(500))
///     .response_timeout(Duration::from_secs(1))
///     .retry_after(Duration::from_secs(2))
///     .ban_sync(Duration::from_millis(500))
///     .build()
///     .unwrap();
/// assert_eq!(redis.prefix(), "mail-eu:auth:");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RedisAuthBuilder {
    settings: Settings,
    prefix: String,
    lease: Duration,
    timeout: Duration,
    ban_sync: Duration,
}

impl RedisAuthBuilder {
    /// Prefix of every key (default [`REDIS_AUTH_DEFAULT_PREFIX`]). Servers that share a policy
    /// must use the same prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long an open session counts without being renewed (default 60 s; kept between
    /// 100 ms and one day). The open sessions' leases are renewed every `lease / 3`; a crashed
    /// server's sessions stop counting at most `lease` after its last renewal.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.clamp(Duration::from_millis(100), Duration::from_secs(86_400));
        self
    }

    /// How long a login waits for Redis at most (default 1 s, the rate limit's
    /// `store_timeout`); past it, the login goes on as if Redis were down.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Bound on each attempt to connect (default 1 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout = timeout;
        self
    }

    /// Bound on each command's answer (default 2 s); [`timeout`](Self::timeout) usually
    /// decides first for logins, this one bounds the background work.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.settings.response_timeout = timeout;
        self
    }

    /// The circuit breaker's cool-down (default 1 s): after a login finds Redis unreachable or
    /// late, logins do not ask Redis for this long.
    pub fn retry_after(mut self, cool_down: Duration) -> Self {
        self.settings.retry_after = cool_down;
        self
    }

    /// How often [`RedisBans`] reads the bans made by other servers (default 1 s; at least
    /// 10 ms).
    pub fn ban_sync(mut self, every: Duration) -> Self {
        self.ban_sync = every.max(Duration::from_millis(10));
        self
    }

    /// The Redis URL without its credentials, to print or log.
    ///
    /// ```
    /// use tower_mail_layers::auth::RedisAuth;
    /// let builder = RedisAuth::builder("redis://app:secret@10.0.0.5:6379/0");
    /// assert_eq!(builder.address(), "redis://***@10.0.0.5:6379/0");
    /// ```
    pub fn address(&self) -> String {
        redacted(&self.settings.url)
    }

    /// The connection, made lazily: fails only on a URL the Redis client does not accept, or
    /// outside a Tokio runtime.
    ///
    /// ```
    /// use tower_mail_layers::auth::RedisAuth;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// assert!(RedisAuth::builder("redis://127.0.0.1:6379").build().is_ok());
    /// assert!(RedisAuth::builder("redis+cluster://10.0.0.1:7000,10.0.0.2:7000").build().is_ok());
    /// assert!(RedisAuth::builder("http://127.0.0.1").build().is_err());
    /// # }
    /// ```
    pub fn build(self) -> Result<RedisAuth, BoxError> {
        let client = Client::open(&self.settings, LOG)?;
        let leases = Leases::start(client.connection.clone(), self.lease, LOG);
        Ok(RedisAuth {
            inner: Arc::new(Inner {
                // `Client::open` checked there is one.
                runtime: tokio::runtime::Handle::current(),
                client,
                leases,
                prefix: self.prefix,
                timeout: self.timeout,
                ban_sync: self.ban_sync,
            }),
        })
    }

    /// [`build`](Self::build), then wait for Redis to answer a `PING`.
    ///
    /// ```no_run
    /// use tower_mail_layers::auth::RedisAuth;
    /// # async fn run() -> Result<(), tower_mail::BoxError> {
    /// let redis = RedisAuth::builder("redis://127.0.0.1:6379").connect().await?;
    /// # drop(redis);
    /// # Ok(()) }
    /// ```
    pub async fn connect(self) -> Result<RedisAuth, BoxError> {
        let redis = self.build()?;
        redis.ping().await?;
        Ok(redis)
    }
}

impl RedisAuth {
    /// Settings for the Redis at `url`: `redis://[user:password@]host[:port][/db]`,
    /// `redis+unix:///path`, or a cluster: `redis+cluster://[user:password@]host:port,host:port`
    /// or the nodes' URLs separated by commas.
    ///
    /// ```
    /// use tower_mail_layers::auth::{RedisAuth, REDIS_AUTH_DEFAULT_PREFIX};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let redis = RedisAuth::builder("redis://127.0.0.1").build().unwrap();
    /// assert_eq!(redis.prefix(), REDIS_AUTH_DEFAULT_PREFIX);
    /// # }
    /// ```
    pub fn builder(url: impl Into<String>) -> RedisAuthBuilder {
        RedisAuthBuilder {
            settings: Settings::new(url.into()),
            prefix: REDIS_AUTH_DEFAULT_PREFIX.to_owned(),
            lease: Duration::from_secs(60),
            timeout: Duration::from_secs(1),
            ban_sync: Duration::from_secs(1),
        }
    }

    /// The defaults on the Redis at `url`, once it has answered a `PING`.
    ///
    /// ```no_run
    /// use tower_mail_layers::auth::RedisAuth;
    /// # async fn run() -> Result<(), tower_mail::BoxError> {
    /// let redis = RedisAuth::connect("redis://127.0.0.1:6379").await?;
    /// # drop(redis);
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: impl Into<String>) -> Result<RedisAuth, BoxError> {
        RedisAuth::builder(url).connect().await
    }

    /// Ask Redis for a `PONG`.
    ///
    /// ```no_run
    /// # async fn run(redis: tower_mail_layers::auth::RedisAuth) {
    /// if let Err(err) = redis.ping().await {
    ///     eprintln!("Redis: {err}; logins go on without it");
    /// }
    /// # }
    /// ```
    pub async fn ping(&self) -> Result<(), BoxError> {
        Ok(self.inner.client.ping().await?)
    }

    /// Wait until every session release queued so far has been sent to Redis, so that the
    /// other servers see the slots free at once (at shutdown, once the sessions have ended).
    ///
    /// ```no_run
    /// # async fn run(redis: tower_mail_layers::auth::RedisAuth) {
    /// if let Err(err) = redis.flush().await {
    ///     eprintln!("{err}; those sessions stop counting when their leases run out");
    /// }
    /// # }
    /// ```
    pub async fn flush(&self) -> Result<(), BoxError> {
        Ok(self.inner.leases.flush().await?)
    }

    /// Where its Redis is, without credentials.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use tower_mail_layers::auth::RedisAuth;
    /// let redis = RedisAuth::builder("redis://:secret@127.0.0.1").build().unwrap();
    /// assert_eq!(redis.address(), "redis://***@127.0.0.1");
    /// # }
    /// ```
    pub fn address(&self) -> &str {
        &self.inner.client.address
    }

    /// The prefix of its keys.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// Per-user session counts in Redis, for
    /// [`UserSessionsLayer::with_store`](super::UserSessionsLayer::with_store).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use tower_mail_layers::auth::{RedisAuth, UserSessionsLayer};
    /// let redis = RedisAuth::builder("redis://127.0.0.1").build().unwrap();
    /// let layer = UserSessionsLayer::with_store(15, redis.user_sessions());
    /// # drop(layer);
    /// # }
    /// ```
    pub fn user_sessions(&self) -> RedisUserSessions {
        RedisUserSessions::new(self.clone())
    }

    /// Failure counts in Redis, for [`FailureDelayLayer::shared`](super::FailureDelayLayer::shared)
    /// and [`AutoBanLayer::shared`](super::AutoBanLayer::shared).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use tower_mail_layers::auth::{FailureDelayLayer, RedisAuth};
    /// let redis = RedisAuth::builder("redis://127.0.0.1").build().unwrap();
    /// let layer = FailureDelayLayer::new().shared(redis.failures());
    /// # drop(layer);
    /// # }
    /// ```
    pub fn failures(&self) -> RedisFailures {
        RedisFailures::new(self.clone())
    }

    /// Bans in Redis and in `ip_block`: a [`BanSink`](super::BanSink) for an
    /// [`AutoBanLayer`](super::AutoBanLayer), whose background task applies the other servers'
    /// bans to `ip_block` every [`ban_sync`](RedisAuthBuilder::ban_sync). Make one per
    /// `IpBlock` and keep it (or the layer) alive: the task stops when the last clone goes.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use tower_mail_layers::auth::{AutoBanLayer, RedisAuth};
    /// use tower_mail_layers::ip_block::{IpBlock, IpLists};
    /// let redis = RedisAuth::builder("redis://127.0.0.1").build().unwrap();
    /// let ip_block = IpBlock::new(IpLists::default());
    /// let layer = AutoBanLayer::new(redis.bans(ip_block.clone()));
    /// # drop(layer);
    /// # }
    /// ```
    pub fn bans(&self, ip_block: IpBlock) -> RedisBans {
        RedisBans::start(self.clone(), ip_block)
    }

    /// Leave to call Redis now, or the circuit breaker's refusal.
    fn ticket(&self) -> Result<Ticket, BoxError> {
        self.inner
            .client
            .breaker
            .try_call()
            .map_err(|wait| Breaker::refusal(wait).into())
    }

    /// The call of `reply`, allowed by `ticket`, that may add `counted`.
    fn call<T>(
        &self,
        ticket: Ticket,
        reply: BoxFuture<'static, redis::RedisResult<T>>,
        counted: Option<Counted>,
    ) -> Call<T> {
        Call::new(reply, counted, self.inner.client.breaker.clone(), ticket)
    }

    /// A handle on the connection, for one call.
    fn connection(&self) -> Connection {
        self.inner.client.connection.clone()
    }

    /// `<prefix><kind>:{<tag>}`: a key whose hash tag is `tag`.
    fn key(&self, kind: &str, tag: impl fmt::Display) -> String {
        format!("{}{kind}:{{{tag}}}", self.inner.prefix)
    }
}

impl fmt::Debug for RedisAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisAuth")
            .field("address", &self.address())
            .field("prefix", &self.inner.prefix)
            .field("lease", &self.inner.leases.lease())
            .field("timeout", &self.inner.timeout)
            .field("breaker", &*self.inner.client.breaker)
            .finish_non_exhaustive()
    }
}

/// Wait for `call` at most `timeout`: `Err` if Redis did not answer in time (the call is then
/// dropped, which gives back what it may have counted and tells the breaker).
async fn within<T>(
    timeout: Duration,
    call: Call<T>,
) -> Result<(redis::RedisResult<T>, Option<Counted>), BoxError> {
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| BoxError::from(format!("Redis did not answer within {timeout:?}")))
}
