//! Authentication policies: layers over the authentication service.
//!
//! Authentication is a service, [`Authenticator`] (`Service<Credentials, Response = User,
//! Error = AuthError>`), so what happens around a password check is a layer over it, and each
//! layer here makes an [`Authenticator`] again:
//!
//! - [`VerifyLimitLayer`]: at most N verifications at once (the number of cores, say), each
//!   waiting at most a queue deadline for its turn, then [`AuthError::Unavailable`]. A
//!   verification that started runs to its end in a task of its own, holding its slot, even if
//!   the client goes away.
//! - [`FailureDelayLayer`]: each failed login is answered late, 2 s doubled per recent failure
//!   from the same address or for the same user name, up to 15 s (Dovecot's
//!   `auth_failure_delay` with anvil's penalty).
//! - [`UserSessionsLayer`]: at most 15 sessions per user (WildDuck's `maxConnections`), IMAP and
//!   POP3 together; the slot is a lease the session holds ([`User::hold`]) and gives back when
//!   it ends. The counts live behind [`UserSessionStore`], so that they can move to Redis.
//! - [`AutoBanLayer`]: 10 failed logins from one address within 5 minutes ban it for 15 minutes
//!   through [`IpBlock::ban`](crate::ip_block::IpBlock::ban), or any other [`BanSink`].
//!
//! Every SASL mechanism ends in one call of the authentication service (a password, a bearer
//! token or a SCRAM proof in [`Credentials::secret`]), so these layers count, delay and bound
//! logins alike whatever the mechanism; none of them looks at the secret.
//!
//! Failures are counted per key in bounded memory by one shared structure: a sliding log of
//! the last failure times per key, with at most `max_keys` keys, the longest quiet evicted
//! first.
//!
//! # Shared across servers
//!
//! With the `redis` feature, `RedisAuth` shares all of it through one Redis (or Redis
//! Cluster) connection, so that several servers enforce one policy:
//!
//! - per-user session counts: `RedisUserSessions`, a [`UserSessionStore`] for
//!   [`UserSessionsLayer::with_store`];
//! - failure counts: `RedisFailures`, a [`FailureCounter`] for
//!   [`FailureDelayLayer::shared`] and [`AutoBanLayer::shared`];
//! - bans: `RedisBans`, a [`BanSink`] that bans in the local
//!   [`IpBlock`](crate::ip_block::IpBlock) at once and in Redis, and applies the other
//!   servers' bans to the local `IpBlock` within a second.
//!
//! Each login asks Redis in one round trip, with a deadline and the circuit breaker of the
//! rate limit's `RedisStore`; when Redis is down or late, logins go on: session caps are not
//! enforced (fail open, [`UserSessionsLayer::fail_open`]), failures are counted in this
//! process, and bans are local.
//!
//! # Order
//!
//! Outermost first, as `ServiceBuilder` lists them:
//!
//! 1. [`UserSessionsLayer`]: counts only logins that everything below let through.
//! 2. [`FailureDelayLayer`]: above the verification bound, so that a delayed answer does not
//!    hold a verification slot while it sleeps.
//! 3. [`AutoBanLayer`]: below the delay, so that the ban falls as the answer comes, not 15 s
//!    later.
//! 4. [`VerifyLimitLayer`]: right over the service that does the expensive work.
//!
//! ```
//! use std::time::Duration;
//! use tower::ServiceBuilder;
//! use tower_mail::auth::{AuthError, Authenticator, Credentials, User};
//! use tower_mail_layers::auth::{
//!     AutoBanLayer, FailureDelayLayer, UserSessionsLayer, VerifyLimitLayer,
//! };
//! use tower_mail_layers::ip_block::{IpBlock, IpLists};
//!
//! // The IpBlock that also refuses connections (IpBlockLayer): bans land there.
//! let ip_block = IpBlock::new(IpLists::default());
//! # let passwd = tower::service_fn(|c: Credentials| async move {
//! #     if c.password() == Some("secret") { Ok(User::new(c.user)) } else { Err(AuthError::InvalidCredentials) }
//! # });
//! let auth = ServiceBuilder::new()
//!     .layer(UserSessionsLayer::new(15))
//!     .layer(FailureDelayLayer::new())
//!     .layer(AutoBanLayer::new(ip_block.clone()))
//!     .layer(VerifyLimitLayer::per_core().queue_timeout(Duration::from_secs(2)))
//!     .service(passwd);
//!
//! fn usable(_: impl Authenticator) {}
//! usable(auth); // give the same stack (clones of it) to the IMAP and the POP3 service
//! ```
//!
//! [`Authenticator`]: tower_mail::auth::Authenticator
//! [`AuthError::Unavailable`]: tower_mail::auth::AuthError::Unavailable
//! [`User::hold`]: tower_mail::auth::User::hold

mod auto_ban;
mod failure_counter;
mod failure_delay;
mod recent;
#[cfg(feature = "redis")]
mod redis;
mod session_store;
#[cfg(test)]
mod shared_tests;
#[cfg(test)]
mod tests;
mod user_sessions;
mod verify_limit;
mod warn_every;

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use tower_mail::auth::{AuthError, Credentials, User};

pub use auto_ban::{
    AutoBanLayer, AutoBanService, BanSink, DEFAULT_BAN, DEFAULT_BAN_FAILURES, DEFAULT_BAN_WINDOW,
};
pub use failure_counter::{
    FailureCounter, FailureFuture, FailureKey, FailureWindow, LocalFailures,
};
pub use failure_delay::{
    DEFAULT_BASE_DELAY, DEFAULT_DELAY_WINDOW, DEFAULT_MAX_DELAY, FailureDelayLayer,
    FailureDelayService,
};
#[cfg(feature = "redis")]
pub use redis::{
    REDIS_AUTH_DEFAULT_PREFIX, RedisAuth, RedisAuthBuilder, RedisBans, RedisFailures,
    RedisUserSessions,
};
pub use session_store::{LocalUserSessions, UserSessionStore};
pub use user_sessions::{DEFAULT_MAX_USER_SESSIONS, UserSessionsLayer, UserSessionsService};
pub use verify_limit::{DEFAULT_QUEUE_TIMEOUT, VerifyLimitLayer, VerifyLimitService};

/// How many keys (addresses, user names) a failure count keeps at most, by default. See
/// [`FailureDelayLayer::max_keys`] and [`AutoBanLayer::max_keys`].
///
/// ```
/// assert_eq!(tower_mail_layers::auth::DEFAULT_MAX_KEYS, 50_000);
/// ```
pub const DEFAULT_MAX_KEYS: usize = 50_000;

/// The future of every service in this module: boxed, one allocation per login, nothing next
/// to a password hash, and a type that the layers stacked on top can name.
///
/// ```
/// use tower_mail::auth::User;
/// use tower_mail_layers::auth::AuthFuture;
///
/// let answer: AuthFuture = Box::pin(async { Ok(User::new("alice")) });
/// # drop(answer);
/// ```
pub type AuthFuture = Pin<Box<dyn Future<Output = Result<User, AuthError>> + Send + 'static>>;

/// The client's address, when the credentials came with a session; IPv4-mapped IPv6 addresses
/// in their IPv4 form, so that one client is one key.
fn client_ip(credentials: &Credentials) -> Option<IpAddr> {
    credentials
        .session
        .as_ref()
        .map(|session| session.remote_addr().ip().to_canonical())
}

/// The instance `poll_ready` made ready, a fresh clone left in its place: tower's
/// clone-and-call pattern, for a call whose future outlives `&mut self`.
fn take_ready<S: Clone>(inner: &mut S) -> S {
    let clone = inner.clone();
    std::mem::replace(inner, clone)
}
