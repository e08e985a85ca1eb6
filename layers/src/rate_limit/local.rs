//! The in-process store: a sharded, bounded table.

use std::future::{Ready, ready};
use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use std::hash::RandomState;

use super::shard::Shard;
use super::{Admission, Key, Limits, RateLimitStore, Slot, StoreError, WhenFull};

/// Fewest keys per shard worth a shard of their own: below that, splitting only makes the
/// per-shard cap (and so "full") arrive sooner for unlucky keys.
const KEYS_PER_SHARD: usize = 256;
/// Most shards: enough that many cores rarely meet on one lock.
const MAX_SHARDS: usize = 64;

/// Per-key state in this process's memory: the default [`RateLimitStore`].
///
/// - **Sharded**: keys are spread by a keyed hash over up to 64 shards, each a
///   `Mutex<HashMap>`, so concurrent checks rarely wait on one another; a check takes one
///   shard lock for one lookup. The hash is SipHash with random keys (std's `RandomState`), so
///   clients cannot pick addresses that collide in one shard or one bucket.
/// - **Bounded**: at most `max_keys` entries, split evenly between the shards (a shard holds
///   `max_keys / shards`). An entry goes as soon as it holds no state (no open connection, no
///   rate history), at once when its last connection ends, otherwise in a sweep when its shard
///   is full. Then [`WhenFull`] decides.
/// - **Memory**: 48 bytes of key and entry plus one control byte per bucket; with the map's
///   load factor between 7/16 and 7/8, 56 to 112 bytes per key (measured: about 90 on average
///   while a flood fills it, under 10 MB at the default 100,000 keys). A [`Key::Text`] adds its
///   string on the heap. The map does not shrink back after a flood.
///
/// ```
/// use std::time::Duration;
/// use tower_mail_layers::rate_limit::{Admission, Key, Limits, LocalStore, RateLimitStore, WhenFull};
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
#[derive(Debug)]
pub struct LocalStore {
    shards: Box<[Padded<Mutex<Shard>>]>,
    hasher: RandomState,
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
            hasher: RandomState::new(),
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
    pub fn forget(&self, key: &Key) -> bool {
        self.shard(key).forget(key)
    }

    /// Drop every entry that holds no state as of `now` (on the policy's clock, see
    /// [`RateLimit::sweep`](super::RateLimit::sweep)); returns how many. Never needed for the
    /// bound, which full shards enforce by themselves; it keeps [`len`](LocalStore::len) close
    /// to the keys that matter.
    pub fn sweep(&self, now: Duration) -> usize {
        let now = nanos(now);
        self.shards.iter().map(|s| lock(&s.0).sweep(now)).sum()
    }

    /// Bytes the tables have allocated, not counting [`Key::Text`] strings.
    pub fn table_bytes(&self) -> usize {
        self.shards.iter().map(|s| lock(&s.0).table_bytes()).sum()
    }

    fn shard(&self, key: &Key) -> MutexGuard<'_, Shard> {
        // The shard count is a power of two; each shard's map hashes with its own keys, so
        // these bits do not also sort keys inside a shard.
        let index = self.hasher.hash_one(key) as usize & (self.shards.len() - 1);
        lock(&self.shards[index].0)
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
        let answer = self
            .shard(key)
            .acquire(key, nanos(now), limits, self.when_full);
        ready(Ok(answer))
    }

    fn release(&self, key: &Key, slot: Slot) {
        self.shard(key).release(key, slot);
    }
}
