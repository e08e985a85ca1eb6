//! Where per-key state lives: the [`RateLimitStore`] trait and what it answers.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use tower_mail::BoxError;

use super::{Key, Limits};

/// Per-key counters behind a [`RateLimit`](super::RateLimit): in this process
/// ([`LocalStore`](super::LocalStore)), or shared by several servers (a Redis store).
///
/// # Contract
///
/// - [`acquire`](RateLimitStore::acquire) applies both [`Limits`] to `key` atomically: it checks
///   the open-connection count and the [`Rate`](super::Rate), and only if both pass does it
///   count the connection and advance the rate state. A refusal changes nothing.
/// - When `limits.max_concurrent` is set and the connection is admitted, the answer carries a
///   [`Slot`]; the layer gives it back with [`release`](RateLimitStore::release) exactly once,
///   when the connection ends on any path. No slot, no release.
/// - A slot names what it counted, not just the key: if the store dropped the key's state in
///   between (eviction, [`LocalStore::forget`](super::LocalStore::forget), a TTL), releasing the
///   old slot must not touch the new state. Stores tag state with a generation or a unique
///   member id and check it on release.
/// - `release` runs inside a `Drop`: it must not block or panic. A networked store hands it to
///   a background task.
/// - If the acquire future is dropped before it resolves (the layer's deadline passed), a
///   store that may already have counted the connection must give the slot back itself.
/// - `now` is when the connection was accepted, on this process's monotonic time line (the
///   [`RateLimit`](super::RateLimit)'s). A store shared between machines should use one clock
///   for all of them (Redis `TIME` inside the script) and may ignore `now`. Only the rate
///   needs it: a limit that has never had a rate passes [`Duration::ZERO`].
///
/// With the `redis` feature, `RedisStore` is one: one Lua script per acquire on Redis' clock,
/// a sorted-set member with a renewed lease per slot. [`AnyStore`](super::AnyStore) is the
/// local store or that one, picked at run time.
///
/// ```
/// use std::future::{ready, Ready};
/// use std::time::Duration;
/// use tower_mail_layers::rate_limit::{Admission, Key, Limits, RateLimitStore, StoreError};
///
/// /// A store that is down: with `fail_open`, every connection is let in uncounted.
/// struct Down;
///
/// impl RateLimitStore for Down {
///     type Future = Ready<Result<Admission, StoreError>>;
///     fn acquire(&self, _: &Key, _: Duration, _: &Limits) -> Self::Future {
///         ready(Err(StoreError::new("connection refused")))
///     }
///     fn release(&self, _: &Key, _: tower_mail_layers::rate_limit::Slot) {}
/// }
/// ```
pub trait RateLimitStore: Send + Sync + 'static {
    /// The answer to [`acquire`](RateLimitStore::acquire).
    type Future: Future<Output = Result<Admission, StoreError>> + Send + 'static;

    /// Check and, if admitted, count a new connection under `key` at `now` (time since the
    /// clock's origin). See the [contract](RateLimitStore#contract).
    fn acquire(&self, key: &Key, now: Duration, limits: &Limits) -> Self::Future;

    /// [`acquire`](RateLimitStore::acquire)'s answer right away, for a store that has it
    /// without waiting: the check then decides on the spot, without a future to poll, and a
    /// check dropped before it was polled still gives its slot back. `None`, the default,
    /// means "ask through `acquire`", and must have counted nothing.
    /// [`LocalStore`](super::LocalStore) answers here; a networked store keeps the default.
    fn acquire_now(
        &self,
        key: &Key,
        now: Duration,
        limits: &Limits,
    ) -> Option<Result<Admission, StoreError>> {
        let _ = (key, now, limits);
        None
    }

    /// Whether [`acquire_now`](RateLimitStore::acquire_now) answers. A store that says `false`
    /// (the default) is asked through [`acquire`](RateLimitStore::acquire) straight away,
    /// so that the layer works out a connection's key (a user's key function, perhaps) once.
    fn answers_now(&self) -> bool {
        false
    }

    /// Give back a slot that [`acquire`](RateLimitStore::acquire) counted under `key`.
    fn release(&self, key: &Key, slot: Slot);

    /// Why [`acquire`](RateLimitStore::acquire) would refuse a connection under `key` at
    /// `now` if it were asked now, for a store that can tell on the spot: what a
    /// [`RateLimit`](super::RateLimit) answers before an implicit-TLS handshake (see
    /// [`AddressPolicy`](crate::policy::AddressPolicy)), so that a peer over its limits costs
    /// no handshake.
    ///
    /// A peek: it must change nothing. It counts no connection, takes no slot, does not
    /// advance the rate, and makes, drops, evicts or refreshes no entry, so that the
    /// connection, if it gets through, is counted once, by `acquire`. `None` means "let it
    /// through, `acquire` decides": the store would admit it, or cannot tell without waiting
    /// or changing something. That is the default, right for a networked store.
    /// [`LocalStore`](super::LocalStore) answers from its table: the key's open connections
    /// at `max_concurrent` ([`Refusal::Concurrency`]) or its rate used up
    /// ([`Refusal::Rate`]); a key it has no room for is let through ([`Refusal::Full`] is
    /// never the answer: making room changes the table).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_mail_layers::rate_limit::{
    ///     Admission, Key, Limits, LocalStore, RateLimitStore, Refusal, WhenFull,
    /// };
    ///
    /// let store = LocalStore::new(100, WhenFull::EvictOldest);
    /// let limits = Limits { max_concurrent: Some(1), rate: None };
    /// let (key, now) = (Key::from("a"), Duration::ZERO);
    /// assert_eq!(store.peek(&key, now, &limits), None);
    /// let Admission::Admitted(Some(slot)) = store.acquire(&key, now, &limits).into_inner().unwrap()
    /// else { panic!() };
    /// assert_eq!(store.peek(&key, now, &limits), Some(Refusal::Concurrency));
    /// assert_eq!(store.connections(&key), 1, "the peeks counted nothing");
    /// store.release(&key, slot);
    /// assert_eq!(store.peek(&key, now, &limits), None);
    /// ```
    fn peek(&self, key: &Key, now: Duration, limits: &Limits) -> Option<Refusal> {
        let _ = (key, now, limits);
        None
    }
}

/// A store's decision on one connection.
///
/// ```
/// use std::time::Duration;
/// use tower_mail_layers::rate_limit::{
///     Admission, Key, Limits, LocalStore, Rate, RateLimitStore, Refusal, WhenFull,
/// };
///
/// let store = LocalStore::new(100, WhenFull::EvictOldest);
/// let limits = Limits { max_concurrent: None, rate: Some(Rate::new(1, Duration::from_secs(60))) };
/// let key = Key::from("a");
/// let now = Duration::from_secs(1);
/// // No concurrency limit: nothing is counted, so there is no slot to give back.
/// assert_eq!(store.acquire(&key, now, &limits).into_inner().unwrap(), Admission::Admitted(None));
/// assert_eq!(
///     store.acquire(&key, now, &limits).into_inner().unwrap(),
///     Admission::Refused(Refusal::Rate { retry_after: Duration::from_secs(60) })
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Let in. `Some` when an open-connection slot was counted and must be released.
    Admitted(Option<Slot>),
    /// Refused, and why.
    Refused(Refusal),
}

/// Why a store refused a connection. All reasons give the client the same text; the reason
/// goes to the debug log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The key has `max_concurrent` open connections.
    Concurrency,
    /// The key has used its new-connection budget; one more fits after `retry_after`
    /// ([`Duration::MAX`]: never, the limit is 0).
    Rate {
        /// When the next connection would be admitted.
        retry_after: Duration,
    },
    /// The key is new and the table is full ([`WhenFull::RefuseNewKeys`](super::WhenFull), or
    /// every entry has open connections).
    Full,
}

/// One counted open connection, handed back to [`RateLimitStore::release`]. What the number
/// means is the store's business: [`LocalStore`](super::LocalStore) puts the entry's
/// generation in it, a Redis store the sorted-set member id.
///
/// ```
/// use tower_mail_layers::rate_limit::Slot;
/// assert_eq!(Slot::new(7).id(), 7);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Slot(u64);

impl Slot {
    /// A slot with the store's id for it.
    pub fn new(id: u64) -> Slot {
        Slot(id)
    }

    /// The store's id for it.
    pub fn id(self) -> u64 {
        self.0
    }
}

/// A store that could not answer (Redis down, say). What happens then is
/// [`fail_open`](super::RateLimitConfig::fail_open)'s choice; the error itself is only logged.
///
/// ```
/// use tower_mail_layers::rate_limit::StoreError;
/// let err = StoreError::new("connection refused");
/// assert_eq!(err.to_string(), "rate limit store: connection refused");
/// ```
#[derive(Debug)]
pub struct StoreError(BoxError);

impl StoreError {
    /// A store error caused by `cause`.
    pub fn new(cause: impl Into<BoxError>) -> StoreError {
        StoreError(cause.into())
    }

    /// The store did not answer within the layer's `store_timeout`.
    pub fn timeout() -> StoreError {
        StoreError::new("no answer in time")
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rate limit store: {}", self.0)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}
