//! [`RedisUserSessions`]: per-user session counts in Redis, a sorted set of leased members per
//! user.

use std::fmt;
use std::sync::{Arc, LazyLock};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use redis::Script;
use tower_mail::BoxError;

use super::{RedisAuth, within};
use crate::auth::UserSessionStore;

/// One acquire (`sessions.lua`): drop the expired leases, compare the count with `max`, add
/// the member if below.
static ACQUIRE: LazyLock<Script> =
    LazyLock::new(|| crate::redis_support::script(include_str!("sessions.lua")));

/// A [`UserSessionStore`] in Redis, from [`RedisAuth::user_sessions`]: a user's sessions on
/// every server that uses the same Redis and prefix count together, so that
/// `max_sessions_per_user = 15` holds across a fleet.
///
/// - **One Lua script per acquire**, on Redis' clock: drop the expired members of
///   `<prefix>sessions:{<user>}` (one member per open session, scored by its lease deadline),
///   compare the count with `max`, and only if below add a fresh member, whose number is the
///   slot.
/// - **Release** is `ZREM`, queued to a background task (a session ends in a `Drop`), which
///   also renews the leases of this server's open sessions every `lease / 3`. A server that
///   crashes stops renewing, and its sessions stop counting when their leases run out
///   ([`RedisAuthBuilder::lease`](super::RedisAuthBuilder::lease), 60 s by default).
/// - **An acquire dropped** before its answer (the client went away) gives back the member it
///   may have added. An acquire that gets no answer within the deadline
///   ([`RedisAuthBuilder::timeout`](super::RedisAuthBuilder::timeout)) fails, and gives back
///   the same way.
/// - **Redis down**: an acquire fails (at once while the circuit breaker is open), and
///   [`UserSessionsLayer`](super::super::UserSessionsLayer) lets the login in uncounted by
///   default ([`fail_open`](super::super::UserSessionsLayer::fail_open)).
///
/// ```no_run
/// use tower::{Layer, ServiceExt};
/// use tower_mail::auth::{AuthError, Credentials, User};
/// use tower_mail_layers::auth::{RedisAuth, UserSessionsLayer};
///
/// # async fn run() -> Result<(), tower_mail::BoxError> {
/// let redis = RedisAuth::connect("redis://127.0.0.1:6379").await?;
/// let sessions = redis.user_sessions();
/// assert_eq!(sessions.set_key("alice"), "tower-mail:auth:sessions:{alice}");
/// let layer = UserSessionsLayer::with_store(2, sessions);
/// let auth = layer.layer(tower::service_fn(|c: Credentials| async move {
///     Ok::<_, AuthError>(User::new(c.user))
/// }));
/// let session = auth.oneshot(Credentials::new("alice", "secret")).await?;
/// // ... alice's session counts on every server until it is dropped.
/// drop(session);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisUserSessions {
    redis: RedisAuth,
}

impl RedisUserSessions {
    pub(super) fn new(redis: RedisAuth) -> RedisUserSessions {
        RedisUserSessions { redis }
    }

    /// The Redis key of `user`'s open sessions: `<prefix>sessions:{<user>}`.
    pub fn set_key(&self, user: &str) -> String {
        self.redis.key("sessions", user)
    }

    /// The sorted-set member that `slot` of this store stands for.
    ///
    /// ```no_run
    /// use futures_util::FutureExt;
    /// use tower_mail_layers::auth::{RedisAuth, UserSessionStore};
    /// # async fn run(redis: RedisAuth) -> Result<(), tower_mail::BoxError> {
    /// let sessions = redis.user_sessions();
    /// if let Some(slot) = sessions.acquire("alice", 15).await? {
    ///     println!("ZSCORE {} {}", sessions.set_key("alice"), sessions.member(slot));
    ///     sessions.release("alice", slot);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn member(&self, slot: u64) -> String {
        self.redis.inner.leases.member_id(slot)
    }
}

impl UserSessionStore for RedisUserSessions {
    type Future = BoxFuture<'static, Result<Option<u64>, BoxError>>;

    fn acquire(&self, user: &str, max: u32) -> Self::Future {
        let ticket = match self.redis.ticket() {
            Ok(ticket) => ticket,
            // Redis failed a moment ago: do not wait for it again yet.
            Err(refusal) => return std::future::ready(Err(refusal)).boxed(),
        };
        let inner = &self.redis.inner;
        let set: Arc<str> = self.set_key(user).into();
        let counted = inner.leases.counted(set.clone());
        let mut invocation = ACQUIRE.prepare_invoke();
        invocation
            .key(&*set)
            .arg(max.max(1))
            .arg(inner.leases.member_id(counted.member))
            .arg(inner.leases.lease_ms());
        let mut connection = self.redis.connection();
        let reply = async move { invocation.invoke_async::<i64>(&mut connection).await };
        let call = self.redis.call(ticket, reply.boxed(), Some(counted));
        let timeout = inner.timeout;
        async move {
            let (reply, counted) = within(timeout, call).await?;
            let counted = counted.expect("the call carries its member");
            match reply {
                Ok(1) => {
                    let slot = counted.member;
                    // Renewed from now on; its release comes after this.
                    counted.opened();
                    Ok(Some(slot))
                }
                Ok(0) => Ok(None),
                Ok(other) => {
                    counted.release();
                    Err(format!("unexpected reply from the sessions script: {other}").into())
                }
                Err(err) => {
                    // The script may have run and its reply been lost: give it back.
                    counted.release();
                    Err(err.into())
                }
            }
        }
        .boxed()
    }

    fn release(&self, user: &str, slot: u64) {
        self.redis
            .inner
            .leases
            .release(self.set_key(user).into(), slot);
    }
}

impl fmt::Debug for RedisUserSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisUserSessions")
            .field("redis", &self.redis)
            .finish()
    }
}
