//! [`RedisFailures`]: failure counts in Redis, a sorted set of recent failure times per key.

use std::fmt;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::FutureExt;
use redis::Script;

use super::{RedisAuth, within};
use crate::auth::{FailureCounter, FailureFuture, FailureKey, FailureWindow};
use crate::redis_support::leases::member_id;
use crate::redis_support::millis;

/// One failure (`failures.lua`): trim to the window, add, trim to `keep`, count, clear at
/// `clear_at`.
static RECORD: LazyLock<Script> =
    LazyLock::new(|| crate::redis_support::script(include_str!("failures.lua")));

/// A [`FailureCounter`] in Redis, from [`RedisAuth::failures`]: the failed logins of an
/// address or a user name on every server that uses the same Redis and prefix count together,
/// for [`FailureDelayLayer::shared`](super::super::FailureDelayLayer::shared) and
/// [`AutoBanLayer::shared`](super::super::AutoBanLayer::shared).
///
/// - **One Lua script per key and failure**, on Redis' clock, on the sorted set
///   `<prefix>fail:{<key>}` of failure times: drop those out of the window, add this one,
///   keep the newest `keep`, count, and delete the key when the count reaches `clear_at`. The
///   key expires one window after its last failure. A failed login of the failure delay
///   records its address and its user name at once: two scripts, one round trip.
/// - **Deadline**: [`RedisAuthBuilder::timeout`](super::RedisAuthBuilder::timeout) (1 s by
///   default), and the circuit breaker; when Redis fails, the layers count in their own
///   process, so a Redis outage never blocks a login.
/// - [`clear`](FailureCounter::clear) (a success) deletes the key from a task of its own,
///   skipped while the breaker is open.
/// - Memory in Redis: a failing key costs one small sorted set (at most `keep` members) for
///   one window.
///
/// ```no_run
/// use std::time::Duration;
/// use tower_mail_layers::auth::{FailureCounter, FailureKey, FailureWindow, RedisAuth};
///
/// # async fn run() -> Result<(), tower_mail::BoxError> {
/// let redis = RedisAuth::connect("redis://127.0.0.1:6379").await?;
/// let failures = redis.failures();
/// let key = FailureKey::ip("ban", "192.0.2.1".parse()?);
/// assert_eq!(failures.key(&key), "tower-mail:auth:fail:{ban:ip:192.0.2.1}");
/// let window = FailureWindow { window: Duration::from_secs(300), keep: 10, clear_at: 10 };
/// let count = failures.record(&key, window).await?;
/// println!("{count} failures from 192.0.2.1 across the servers");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisFailures {
    redis: RedisAuth,
}

/// Numbers each failure of this process: with the store's instance id, a unique member.
static NEXT_FAILURE: AtomicU64 = AtomicU64::new(1);

impl RedisFailures {
    pub(super) fn new(redis: RedisAuth) -> RedisFailures {
        RedisFailures { redis }
    }

    /// The Redis key of `key`'s failures: `<prefix>fail:{<key>}`.
    pub fn key(&self, key: &FailureKey) -> String {
        self.redis.key("fail", key)
    }
}

impl FailureCounter for RedisFailures {
    fn record(&self, key: &FailureKey, window: FailureWindow) -> FailureFuture {
        let ticket = match self.redis.ticket() {
            Ok(ticket) => ticket,
            Err(refusal) => return std::future::ready(Err(refusal)).boxed(),
        };
        let inner = &self.redis.inner;
        let member = member_id(
            inner.leases.instance(),
            NEXT_FAILURE.fetch_add(1, Ordering::Relaxed),
        );
        let clear_at = if window.clear_at == usize::MAX {
            0
        } else {
            window.clear_at.max(1)
        };
        let mut invocation = RECORD.prepare_invoke();
        invocation
            .key(self.key(key))
            .arg(millis(window.window))
            .arg(window.keep.max(1))
            .arg(clear_at)
            .arg(member);
        let mut connection = self.redis.connection();
        let reply = async move { invocation.invoke_async::<u64>(&mut connection).await };
        let call = self.redis.call(ticket, reply.boxed(), None);
        let timeout = inner.timeout;
        async move {
            let (reply, _) = within(timeout, call).await?;
            let count = reply?;
            Ok(usize::try_from(count).unwrap_or(usize::MAX))
        }
        .boxed()
    }

    fn clear(&self, key: &FailureKey) {
        // Not worth a wait while Redis is known to be down; its key expires by itself.
        let Ok(ticket) = self.redis.ticket() else {
            return;
        };
        let mut connection = self.redis.connection();
        let key = self.key(key);
        let delete = async move { redis::cmd("DEL").arg(key).exec_async(&mut connection).await };
        let call = self.redis.call(ticket, delete.boxed(), None);
        let timeout = self.redis.inner.timeout;
        self.redis.inner.runtime.spawn(async move {
            let error = match within(timeout, call).await {
                Ok((Ok(()), _)) => return,
                Ok((Err(error), _)) => error.to_string(),
                Err(error) => error.to_string(),
            };
            tracing::debug!(
                event = "auth_failure_counter_error",
                error = %error,
                "failure count not cleared in Redis; it expires with its window"
            );
        });
    }
}

impl fmt::Debug for RedisFailures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisFailures")
            .field("redis", &self.redis)
            .finish()
    }
}
