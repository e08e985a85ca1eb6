//! Recent failures per key, in bounded memory: what [`FailureDelayLayer`](super::FailureDelayLayer)
//! and [`AutoBanLayer`](super::AutoBanLayer) both count with.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How many failures each key had within the last `window`, exactly (a sliding log of the
/// failure times), for at most `max_keys` keys.
///
/// - A key keeps the times of its last `keep` failures only: a caller that only needs to know
///   whether the count reached `keep` pays for no more.
/// - A key whose last failure is older than `window` is forgotten at the next update.
/// - When a new key comes and `max_keys` keys are tracked, the key whose last failure is the
///   oldest is evicted. A key that keeps failing stays the newest, so a spray of other keys only
///   evicts keys that have gone quiet the longest.
///
/// One mutex over the whole table: logins are rare next to the work of checking a password, and
/// an update is a hash lookup and a B-tree update (O(log max_keys)).
///
/// Memory: about `170 + 16 × keep` bytes per key (the key in a hash map and in the age index,
/// and the failure times), so `max_keys` bounds it.
pub(crate) struct RecentFailures<K> {
    window: Duration,
    keep: usize,
    max_keys: usize,
    table: Mutex<Table<K>>,
}

struct Table<K> {
    entries: HashMap<K, Entry>,
    /// Keys by their last failure (then by update order), oldest first: the keys that expire,
    /// or are evicted, first.
    by_age: BTreeMap<(Instant, u64), K>,
    updates: u64,
}

struct Entry {
    /// The last failures, oldest first, within the window as of the last update.
    times: VecDeque<Instant>,
    /// This key in `by_age`.
    age: (Instant, u64),
}

impl<K: Hash + Eq + Clone> RecentFailures<K> {
    /// Count failures within `window`, up to `keep` per key (at least 1), for at most
    /// `max_keys` keys (at least 1).
    pub(crate) fn new(window: Duration, keep: usize, max_keys: usize) -> Self {
        RecentFailures {
            window,
            keep: keep.max(1),
            max_keys: max_keys.max(1),
            table: Mutex::new(Table {
                entries: HashMap::new(),
                by_age: BTreeMap::new(),
                updates: 0,
            }),
        }
    }

    /// Count a failure of `key` at `now` and answer how many failures it has had within the
    /// window, this one included (at most `keep`). When that reaches `clear_at`, the key is
    /// forgotten in the same step, so that of concurrent failures only one sees it reached.
    pub(crate) fn record(&self, key: K, now: Instant, clear_at: usize) -> usize {
        self.record_within(key, now, clear_at, self.window, self.keep)
    }

    /// [`record`](RecentFailures::record) with another `window` and `keep` (at least 1) than
    /// the table's, for a table whose callers say what they count. Keys are expired and evicted
    /// by their last failure, so the table stays exact as long as its callers pass the same
    /// window.
    pub(crate) fn record_within(
        &self,
        key: K,
        now: Instant,
        clear_at: usize,
        window: Duration,
        keep: usize,
    ) -> usize {
        let keep = keep.max(1);
        let mut table = self.lock();
        let Table {
            entries,
            by_age,
            updates,
        } = &mut *table;
        *updates += 1;
        Self::expire(entries, by_age, now, window);
        if let Some(entry) = entries.get_mut(&key) {
            // Callers read `now` before they lock: keep each key's times in order.
            let now = now.max(entry.age.0);
            while entry.times.front().is_some_and(|&t| t + window <= now) {
                entry.times.pop_front();
            }
            while entry.times.len() >= keep {
                entry.times.pop_front();
            }
            entry.times.push_back(now);
            let count = entry.times.len();
            by_age.remove(&entry.age);
            if count >= clear_at {
                entries.remove(&key);
            } else {
                entry.age = (now, *updates);
                by_age.insert(entry.age, key);
            }
            return count;
        }
        if clear_at <= 1 {
            return 1;
        }
        if entries.len() >= self.max_keys
            && let Some((_, oldest)) = by_age.pop_first()
        {
            entries.remove(&oldest);
        }
        let age = (now, *updates);
        by_age.insert(age, key.clone());
        entries.insert(
            key,
            Entry {
                times: VecDeque::from([now]),
                age,
            },
        );
        1
    }

    /// How many failures `key` has had within the window before `now` (at most `keep`).
    pub(crate) fn count(&self, key: &K, now: Instant) -> usize {
        self.lock().entries.get(key).map_or(0, |entry| {
            entry
                .times
                .iter()
                .filter(|&&t| t + self.window > now)
                .count()
        })
    }

    /// Forget `key`'s failures.
    pub(crate) fn clear(&self, key: &K) {
        let mut table = self.lock();
        if let Some(entry) = table.entries.remove(key) {
            table.by_age.remove(&entry.age);
        }
    }

    /// How many keys are tracked (some may have expired since the last update).
    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Drop the keys whose last failure is out of the window.
    fn expire(
        entries: &mut HashMap<K, Entry>,
        by_age: &mut BTreeMap<(Instant, u64), K>,
        now: Instant,
        window: Duration,
    ) {
        while let Some(entry) = by_age.first_entry() {
            if entry.key().0 + window > now {
                break;
            }
            entries.remove(&entry.remove());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table<K>> {
        // The table is consistent between statements: a panic elsewhere cannot leave it torn.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<K> std::fmt::Debug for RecentFailures<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys = self
            .table
            .lock()
            .map_or_else(|p| p.into_inner().entries.len(), |t| t.entries.len());
        f.debug_struct("RecentFailures")
            .field("window", &self.window)
            .field("keys", &keys)
            .field("max_keys", &self.max_keys)
            .finish()
    }
}
