//! Per-key connection limits: open connections at once, and new connections over time.
//!
//! Every connection is counted under a [`Key`]: the client address by default, or its `/24`
//! (IPv4) or `/64` (IPv6) network, or whatever a function of the [`Session`](tower_mail::Session)
//! says ([`RateLimitKey`]). Two limits apply per key, each optional:
//!
//! - **Open connections** (`max_concurrent`): the reference guide's per-IP counter, but given
//!   back by a drop guard ([`RateLimitPermit`]) that the layer holds for the session's whole
//!   life, so it cannot leak or count twice, whatever way the connection ends.
//! - **New connections per window** (`max_per_window`): GCRA, one timestamp per key ([`Rate`]
//!   has the exact arithmetic). A key quiet for a window may open `max_per_window` connections
//!   at once, then one each `window / max_per_window`. Not tower's `RateLimit`, which is one
//!   fixed window for everybody and not `Clone`.
//!
//! Both are checked, and counted, atomically: a refused connection spends nothing.
//!
//! # State
//!
//! The state lives behind [`RateLimitStore`], whose contract (an atomic async acquire, a
//! synchronous release by slot id, generations) lets a Redis store fit without changing the
//! layer. The default is [`LocalStore`]:
//!
//! - sharded by a keyed hash into up to 64 mutex-guarded open-addressing tables, so that a check
//!   is one lock of one shard and one probe of a slot that holds the key and its state together,
//!   with no allocation for address keys;
//! - bounded to `max_keys` entries, so a flood from millions of addresses cannot grow memory
//!   without bound. Entries go as soon as they hold no state; when a shard is still full,
//!   [`WhenFull`] either refuses new keys or evicts the least recently seen keys that have no
//!   open connection. An entry with open connections is never evicted, and each slot carries
//!   its entry's generation, so a release can never land on a newer entry under the same key;
//! - 48 bytes per slot, at most 60 bytes per key once the tables have grown to `max_keys` (see
//!   [`LocalStore`]).
//!
//! A check on the local store reads the settings without a lock (an `ArcSwap`), hashes the
//! key once (std's keyed SipHash, kept in the [`Key`] for the release), takes the time from
//! the session (a connection counts at the moment it was accepted,
//! [`Session::started`](tower_mail::Session::started), so no clock is read), and takes one
//! shard lock for one lookup; it allocates nothing for address keys. Dropping the permit takes
//! the shard lock once more to give the slot back.
//!
//! When a store fails or is slow (`store_timeout`), `fail_open` lets the connection in
//! uncounted, or refuses it with a generic text.
//!
//! With the `redis` feature, `RedisStore` keeps the counts in Redis instead, shared by every
//! server that uses the same Redis: `RateLimit::with_store(config, store)`. Each check is one
//! Lua script on Redis' clock (one round trip, the same GCRA arithmetic); releases and lease
//! renewals go through a background task, and a crashed server's connections stop counting
//! when their leases run out. To pick the store at run time (from a configuration file),
//! [`AnyStore`] is either, as one type.
//!
//! ```
//! use std::time::Duration;
//! use tower::ServiceBuilder;
//! use tower_mail_layers::rate_limit::{RateLimitConfig, RateLimitKey, RateLimitLayer, WhenFull};
//!
//! let layer = RateLimitLayer::new(RateLimitConfig {
//!     key: RateLimitKey::Ip,
//!     max_concurrent: Some(10),
//!     max_per_window: Some(60),
//!     window: Duration::from_secs(3600),
//!     message: "Too many connections from this IP".into(),
//!     max_keys: 100_000,
//!     when_full: WhenFull::EvictOldest,
//!     ..RateLimitConfig::default()
//! });
//! # let service = tower::service_fn(|c: tower_mail::Connection| async move {
//! #     Ok::<_, tower_mail::BoxError>(
//! #         tower_mail::CloseReport::new(c.session(), tower_mail::CloseReason::Logout))
//! # });
//! let stack = ServiceBuilder::new().layer(layer).service(service);
//! # drop(stack);
//! ```

mod any;
mod config;
mod future;
mod gcra;
mod key;
mod local;
mod outage;
mod permit;
mod policy;
#[cfg(feature = "redis")]
mod redis;
mod settings;
mod shard;
mod store;
#[cfg(test)]
mod tests;

pub use any::{AnyAcquire, AnyStore};
pub use config::{Limits, RateLimitConfig, WhenFull};
pub use future::RateLimitFuture;
pub use gcra::Rate;
pub use key::{Key, KeyFn, RateLimitKey};
pub use local::LocalStore;
pub use permit::RateLimitPermit;
pub use policy::{Clock, RateLimit};
#[cfg(feature = "redis")]
pub use redis::{REDIS_DEFAULT_PREFIX, RedisAcquire, RedisStore, RedisStoreBuilder};
pub use store::{Admission, RateLimitStore, Refusal, Slot, StoreError};

use crate::policy::{PolicyLayer, PolicyService};

/// The name refusals of this layer carry in metrics and logs.
///
/// ```
/// use tower_mail_layers::policy::Policy;
/// use tower_mail_layers::rate_limit::{RateLimit, RateLimitConfig, LAYER_NAME};
/// assert_eq!(RateLimit::new(RateLimitConfig::default()).name(), LAYER_NAME);
/// ```
pub const LAYER_NAME: &str = "rate_limit";

/// Limits connections per key. See the [module docs](self).
pub type RateLimitLayer<S = LocalStore> = PolicyLayer<RateLimit<S>>;

/// The service [`RateLimitLayer`] makes.
///
/// ```
/// use tower::Layer;
/// use tower_mail::{BoxError, CloseReason, CloseReport, Connection};
/// use tower_mail_layers::rate_limit::{RateLimitConfig, RateLimitLayer, RateLimitService};
///
/// let inner = tower::service_fn(|c: Connection| async move {
///     Ok::<_, BoxError>(CloseReport::new(c.session(), CloseReason::Logout))
/// });
/// let service: RateLimitService<_> = RateLimitLayer::new(RateLimitConfig::default()).layer(inner);
/// # drop(service);
/// ```
pub type RateLimitService<Svc, S = LocalStore> = PolicyService<Svc, RateLimit<S>>;

impl RateLimitLayer {
    /// Enforce `config` with a [`LocalStore`]. To keep a handle for
    /// [`reconfigure`](RateLimit::reconfigure), build the [`RateLimit`] and use
    /// [`from_policy`](PolicyLayer::from_policy) with a clone.
    ///
    /// ```
    /// use tower_mail_layers::rate_limit::{RateLimitConfig, RateLimitLayer};
    /// let layer = RateLimitLayer::new(RateLimitConfig::default());
    /// assert_eq!(layer.policy().limits().max_concurrent, Some(10));
    /// ```
    pub fn new(config: RateLimitConfig) -> Self {
        PolicyLayer::from_policy(RateLimit::new(config))
    }
}
