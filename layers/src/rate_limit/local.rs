//! The in-process store: a sharded, bounded table.

use std::future::{Ready, ready};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::shard::Shard;
use super::{Admission, Key, Limits, RateLimitStore, Refusal, Slot, StoreError, WhenFull};

/// Fewest keys per shard worth a shard of their own: below that, splitting only makes the
/// per-shard cap (and so "full") arrive sooner for unlucky keys.
const KEYS_PER_SHARD: usize = 256;
/// Most shards: enough that many cores rarely meet on one lock.
const MAX_SHARDS: usize = 64;

/// Per-key state in this process's memory: the default [`RateLimitStore`].
///
/// - **Sharded**: keys are spread over up to 64 shards, each a `Mutex` around an open-addressing
///   table, so concurrent checks rarely wait on one another. A check locks one shard for one
///   lookup and hashes nothing: the shard and the slot come from the hash the [`Key`] was made
///   with (keyed SipHash, so clients cannot pick addresses that collide in one shard or one
///   slot). Each slot holds a key with its state, so a lookup reads one or two neighbouring
///   cache lines.
/// - **Bounded**: at most `max_keys` entries, split evenly between the shards (a shard holds
///   `max_keys / shards`; with fewer than 512 keys there is one shard). An entry goes as soon as
///   it holds no state: at once when its last connection ends if it has no rate history,
///   otherwise in a sweep when its shard is full and the history has run out. Then [`WhenFull`]
///   decides.
/// - **Memory**: 48 bytes per slot (the key and its state, with no separate control bytes). A
///   table doubles while it fills, up to a last size that holds its shard's share of
///   `max_keys` four fifths full: 60 bytes per key at the cap, under 6 MB at the default 100,000
///   keys, and from 60 to 120 bytes per key on the way there. A text key adds its string on the
///   heap. The tables keep their size after a flood.
///
/// ```
/// use std::time::Duration;
/// use tower_mail_layers::rate_limit::{
///     Admission, Key, Limits, LocalStore, RateLimitStore, WhenFull,
/// };
///
/// let store = LocalStore::new(10_000, WhenFull::RefuseNewKeys);
/// let key = Key::from("192.0.2.1".parse::<std::net::IpAddr>().unwrap());
/// let limits = Limits { max_concurrent: Some(1), rate: None };
/// let now = Duration::from_secs(1);
/// let answer = store.acquire(&key, now, &limits).into_inner().unwrap();
/// let Admission::Admitted(Some(slot)) = answer else { panic!() };
/// assert_eq!(store.connections(&key), 1);
/// store.release(&key, slot);
/// assert_eq!(store.connections(&key), 0);
/// assert!(store.is_empty());
/// ```
pub struct LocalStore {
    shards: Box<[Padded<Mutex<Shard>>]>,
    max_keys: usize,
    when_full: WhenFull,
}

/// One shard per cache line pair, so that two cores locking neighbouring shards do not fight
/// over a line (128: Intel fetches lines in pairs, Apple's lines are 128 bytes).
#[derive(Debug)]
#[repr(align(128))]
struct Padded<T>(T);

impl LocalStore {
    /// A store of at most `max_keys` keys, with `when_full` for when it is full.
    pub fn new(max_keys: usize, when_full: WhenFull) -> LocalStore {
        // A power of two, so that picking a shard is a mask.
        let wanted = (max_keys / KEYS_PER_SHARD).clamp(1, MAX_SHARDS);
        let count = 1 << wanted.ilog2();
        // Spread the remainder so that the shards' caps add up to exactly `max_keys`.
        let shards = (0..count)
            .map(|i| {
                let cap = max_keys / count + usize::from(i < max_keys % count);
                Padded(Mutex::new(Shard::new(cap)))
            })
            .collect();
        LocalStore {
            shards,
            max_keys,
            when_full,
        }
    }

    /// The most keys this store keeps.
    pub fn max_keys(&self) -> usize {
        self.max_keys
    }

    /// What it does when full.
    pub fn when_full(&self) -> WhenFull {
        self.when_full
    }

    /// Keys with state now (each shard locked in turn, so only a snapshot under load).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(&s.0).len()).sum()
    }

    /// Whether no key has state.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Open connections counted under `key`.
    pub fn connections(&self, key: &Key) -> u32 {
        self.shard(key).connections(key)
    }

    /// Drop `key`'s state, lifting its limits at once; whether it had any. Connections still
    /// open under it were counted by the dropped entry, and their release does not touch a
    /// newer one.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_mail_layers::rate_limit::{
    ///     Admission, Key, Limits, LocalStore, RateLimitStore, WhenFull,
    /// };
    ///
    /// let store = LocalStore::new(100, WhenFull::EvictOldest);
    /// let limits = Limits { max_concurrent: Some(1), rate: None };
    /// let (key, now) = (Key::from("a"), Duration::ZERO);
    /// let acquire = || store.acquire(&key, now, &limits).into_inner().unwrap();
    /// let Admission::Admitted(Some(old)) = acquire() else { panic!() };
    /// assert!(store.forget(&key));
    /// let Admission::Admitted(Some(new)) = acquire() else { panic!() };
    /// store.release(&key, old); // counted by the forgotten entry: no effect
    /// assert_eq!(store.connections(&key), 1);
    /// store.release(&key, new);
    /// assert_eq!(store.connections(&key), 0);
    /// ```
    pub fn forget(&self, key: &Key) -> bool {
        self.shard(key).forget(key)
    }

    /// Drop every entry that holds no state as of `now` (on the policy's clock, see
    /// [`RateLimit::sweep`](super::RateLimit::sweep)); returns how many. Never needed for the
    /// bound, which full shards enforce by themselves; it keeps [`len`](LocalStore::len) close
    /// to the keys that matter.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_mail_layers::rate_limit::{
    ///     Key, Limits, LocalStore, Rate, RateLimitStore, WhenFull,
    /// };
    ///
    /// let store = LocalStore::new(100, WhenFull::EvictOldest);
    /// let rate = Rate::new(5, Duration::from_secs(60));
    /// let limits = Limits { max_concurrent: None, rate: Some(rate) };
    /// drop(store.acquire(&Key::from("a"), Duration::ZERO, &limits));
    /// // "a" has 12 s of rate history (one interval of 60 s / 5).
    /// assert_eq!(store.sweep(Duration::from_secs(11)), 0);
    /// assert_eq!(store.sweep(Duration::from_secs(12)), 1);
    /// assert!(store.is_empty());
    /// ```
    pub fn sweep(&self, now: Duration) -> usize {
        let now = nanos(now);
        self.shards.iter().map(|s| lock(&s.0).sweep(now)).sum()
    }

    /// Bytes the tables have allocated, not counting the strings of text keys.
    pub fn table_bytes(&self) -> usize {
        self.shards.iter().map(|s| lock(&s.0).table_bytes()).sum()
    }

    fn decide(&self, key: &Key, now: Duration, limits: &Limits) -> Admission {
        self.shard(key)
            .acquire(key, nanos(now), limits, self.when_full)
    }

    fn shard(&self, key: &Key) -> MutexGuard<'_, Shard> {
        // The shard count is a power of two. The table inside places keys by the low half of
        // the same hash; these bits are not in it, so keys of one shard still spread over its
        // slots.
        let index = (key.hash_value() >> 32) as usize & (self.shards.len() - 1);
        lock(&self.shards[index].0)
    }
}

impl std::fmt::Debug for LocalStore {
    // Not the entries: there may be 100,000 of them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalStore")
            .field("max_keys", &self.max_keys)
            .field("when_full", &self.when_full)
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

/// A panic cannot happen while a shard is locked (no user code runs under it), so a poisoned
/// lock still guards consistent state.
fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

/// 584 years of nanoseconds fit in a u64: saturating is only for nonsense clocks.
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl RateLimitStore for LocalStore {
    type Future = Ready<Result<Admission, StoreError>>;

    fn acquire(&self, key: &Key, now: Duration, limits: &Limits) -> Self::Future {
        ready(Ok(self.decide(key, now, limits)))
    }

    fn acquire_now(
        &self,
        key: &Key,
        now: Duration,
        limits: &Limits,
    ) -> Option<Result<Admission, StoreError>> {
        Some(Ok(self.decide(key, now, limits)))
    }

    fn answers_now(&self) -> bool {
        true
    }

    fn release(&self, key: &Key, slot: Slot) {
        self.shard(key).release(key, slot);
    }

    /// One shard lock, one lookup, nothing written.
    fn peek(&self, key: &Key, now: Duration, limits: &Limits) -> Option<Refusal> {
        self.shard(key).peek(key, nanos(now), limits)
    }
}
