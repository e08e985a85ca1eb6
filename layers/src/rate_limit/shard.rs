//! One shard of the local table: its keys' counters, and making room when it is full.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::time::Duration;

use super::key::StoredHash;
use super::{Admission, Key, Limits, Refusal, Slot, WhenFull};

/// One key's state. 24 bytes; with its [`Key`] and the map's control byte, 57 bytes a bucket.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    /// GCRA theoretical arrival time, in nanoseconds on the policy's clock. At or before `now`
    /// it carries no history, which is why a new entry can start at 0.
    tat: u64,
    /// The shard tick that created this entry, handed out as the slot id of its connections:
    /// a slot of an entry dropped since (by `forget`) then cannot release into a newer entry
    /// under the same key.
    generation: u64,
    /// Open connections counted.
    count: u32,
    /// Low half of the shard tick at the entry's last acquire or release. Compared as an age
    /// (`tick - last_used`, wrapping), so 32 bits are enough to find the least recently seen.
    last_used: u32,
}

impl Entry {
    fn new(generation: u64) -> Entry {
        Entry {
            tat: 0,
            generation,
            count: 0,
            last_used: generation as u32,
        }
    }

    /// No open connection and no rate history: dropping it changes no decision.
    fn is_idle(&self, now: u64) -> bool {
        self.count == 0 && self.tat <= now
    }

    /// Both limits, all or nothing: a refusal changes nothing.
    fn admit(&mut self, now: u64, limits: &Limits) -> Admission {
        if limits.max_concurrent.is_some_and(|max| self.count >= max) {
            return Admission::Refused(Refusal::Concurrency);
        }
        if let Some(rate) = limits.rate {
            match rate.admit(self.tat, now) {
                Ok(tat) => self.tat = tat,
                Err(wait) => {
                    let retry_after = match wait {
                        u64::MAX => Duration::MAX,
                        wait => Duration::from_nanos(wait),
                    };
                    return Admission::Refused(Refusal::Rate { retry_after });
                }
            }
        }
        if limits.max_concurrent.is_none() {
            return Admission::Admitted(None);
        }
        self.count += 1;
        Admission::Admitted(Some(Slot::new(self.generation)))
    }
}

/// When an entry without open connections becomes idle, as `next_idle` counts: never
/// `u64::MAX`, which means "no such entry", even for a TAT saturated by a huge window.
fn idle_at(tat: u64) -> u64 {
    tat.min(u64::MAX - 1)
}

/// A map of keys to entries with at most `cap` of them.
#[derive(Debug)]
pub(super) struct Shard {
    // Keys carry their hash: a lookup hashes nothing.
    map: HashMap<Key, Entry, BuildHasherDefault<StoredHash>>,
    cap: usize,
    /// Counts acquires and releases: the shard's logical clock for generations and recency.
    /// 64 bits never wrap, so a generation is never handed out twice.
    tick: u64,
    /// The latest `now` seen. The clock is monotonic, so an entry whose TAT is at or before it
    /// has no history left, even when the entry's last check was long ago.
    now: u64,
    /// No entry with no open connection has its TAT before this (`u64::MAX`: there is no such
    /// entry). A lower bound, made exact by every scan: a full shard rescans only when a scan
    /// can find something, instead of on every new key of a flood.
    next_idle: u64,
    /// Buckets the map has allocated.
    buckets: usize,
}

impl Shard {
    pub(super) fn new(cap: usize) -> Shard {
        Shard {
            map: HashMap::default(),
            cap,
            tick: 0,
            now: 0,
            next_idle: u64::MAX,
            buckets: 0,
        }
    }

    pub(super) fn acquire(
        &mut self,
        key: &Key,
        now: u64,
        limits: &Limits,
        when_full: WhenFull,
    ) -> Admission {
        self.now = self.now.max(now);
        self.tick += 1;
        if let Some(entry) = self.map.get_mut(key) {
            entry.last_used = self.tick as u32;
            return entry.admit(now, limits);
        }
        let mut entry = Entry::new(self.tick);
        let admission = entry.admit(now, limits);
        if matches!(admission, Admission::Refused(_)) || entry.is_idle(now) {
            // Nothing to keep: the refusal changed nothing, and an entry without state answers
            // exactly as a key never seen.
            return admission;
        }
        if self.map.len() >= self.cap && !self.make_room(when_full) {
            return Admission::Refused(Refusal::Full);
        }
        if entry.count == 0 {
            self.next_idle = self.next_idle.min(idle_at(entry.tat));
        }
        if self.map.len() >= self.map.capacity() {
            self.rebuild();
        }
        self.map.insert(key.clone(), entry);
        admission
    }

    /// Give the map room for one more key, in a fresh table: this shard, not the map, decides
    /// when it grows.
    ///
    /// Removals leave tombstones that use up the map's room just as keys do. Left to itself,
    /// std's map clears them by doubling its buckets whenever it is more than half full, which
    /// at this shard's cap would double the memory per key. A fresh table sized for the keys
    /// plus an eighth clears them for good, and costs one move per key every eighth of the
    /// shard's inserts at most.
    fn rebuild(&mut self) {
        let len = self.map.len();
        let wanted = (len * 2).max(8).min(self.cap).max(len + len / 8 + 1);
        let old = std::mem::replace(
            &mut self.map,
            HashMap::with_capacity_and_hasher(wanted, BuildHasherDefault::default()),
        );
        self.map.extend(old);
        // Right after a build the map has no tombstones, and keeps 7 in 8 buckets usable
        // (all but one below 8).
        let capacity = self.map.capacity();
        self.buckets = if capacity < 8 {
            capacity + 1
        } else {
            (capacity * 8 / 7).next_power_of_two()
        };
    }

    pub(super) fn release(&mut self, key: &Key, slot: Slot) {
        self.tick += 1;
        let Some(entry) = self.map.get_mut(key) else {
            return;
        };
        if entry.generation != slot.id() || entry.count == 0 {
            // The slot's entry is gone; this one was made after it and never counted it.
            return;
        }
        entry.count -= 1;
        entry.last_used = self.tick as u32;
        if entry.count == 0 {
            if entry.tat <= self.now {
                // Dropped at once, so that with only a concurrency limit the table holds just
                // the keys with open connections.
                self.map.remove(key);
            } else {
                self.next_idle = self.next_idle.min(idle_at(entry.tat));
            }
        }
    }

    /// Drop every entry without state, as of `now`; returns how many.
    pub(super) fn sweep(&mut self, now: u64) -> usize {
        self.now = self.now.max(now);
        let now = self.now;
        let before = self.map.len();
        let mut next_idle = u64::MAX;
        self.map.retain(|_, e| {
            if e.count == 0 && e.tat > now {
                next_idle = next_idle.min(idle_at(e.tat));
            }
            !e.is_idle(now)
        });
        self.next_idle = next_idle;
        before - self.map.len()
    }

    /// Free at least one place for a new key; whether that worked.
    fn make_room(&mut self, when_full: WhenFull) -> bool {
        if self.next_idle <= self.now && self.sweep(self.now) > 0 {
            return true;
        }
        match when_full {
            WhenFull::RefuseNewKeys => false,
            WhenFull::EvictOldest => self.evict_oldest() > 0,
        }
    }

    /// Drop the least recently seen entries with no open connection, a sixteenth of the shard
    /// at a time: a flood of new keys then pays one scan per many keys, not one per key.
    fn evict_oldest(&mut self) -> usize {
        if self.next_idle == u64::MAX {
            // Every entry has open connections: nothing may go.
            return 0;
        }
        let tick = self.tick as u32;
        let age = |e: &Entry| tick.wrapping_sub(e.last_used);
        let mut ages: Vec<u32> = self
            .map
            .values()
            .filter(|e| e.count == 0)
            .map(age)
            .collect();
        if ages.is_empty() {
            self.next_idle = u64::MAX;
            return 0;
        }
        let batch = (self.cap / 16).clamp(1, ages.len());
        // Entries carry distinct ticks, so `batch` entries are at least this old.
        let (_, &mut youngest_evicted, _) = ages.select_nth_unstable_by(batch - 1, |a, b| b.cmp(a));
        let mut evicted = 0;
        let mut next_idle = u64::MAX;
        self.map.retain(|_, e| {
            if e.count > 0 {
                return true;
            }
            if evicted < batch && age(e) >= youngest_evicted {
                evicted += 1;
                return false;
            }
            next_idle = next_idle.min(idle_at(e.tat));
            true
        });
        self.next_idle = next_idle;
        evicted
    }

    /// Drop `key`'s state whatever it holds; whether it had any.
    pub(super) fn forget(&mut self, key: &Key) -> bool {
        self.map.remove(key).is_some()
    }

    /// Open connections counted under `key`.
    pub(super) fn connections(&self, key: &Key) -> u32 {
        self.map.get(key).map_or(0, |e| e.count)
    }

    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    /// Bytes the map has allocated: one key, one entry and one control byte per bucket.
    pub(super) fn table_bytes(&self) -> usize {
        self.buckets * (std::mem::size_of::<(Key, Entry)>() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate_limit::Rate;

    const S: u64 = 1_000_000_000;

    fn key(n: u32) -> Key {
        Key::from(std::net::IpAddr::from(std::net::Ipv4Addr::from(n)))
    }

    fn conc(max: u32) -> Limits {
        Limits {
            max_concurrent: Some(max),
            rate: None,
        }
    }

    fn both(max: u32, per_window: u32, window_s: u64) -> Limits {
        Limits {
            max_concurrent: Some(max),
            rate: Some(Rate::new(per_window, Duration::from_secs(window_s))),
        }
    }

    fn slot(a: Admission) -> Slot {
        match a {
            Admission::Admitted(Some(slot)) => slot,
            other => panic!("expected a slot, got {other:?}"),
        }
    }

    #[test]
    fn entry_is_24_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 24);
        assert_eq!(std::mem::size_of::<(Key, Entry)>(), 56);
    }

    #[test]
    fn concurrency_counts_up_and_down_and_drops_empty_entries() {
        let mut shard = Shard::new(10);
        let limits = conc(2);
        let a = slot(shard.acquire(&key(1), S, &limits, WhenFull::RefuseNewKeys));
        let b = slot(shard.acquire(&key(1), S, &limits, WhenFull::RefuseNewKeys));
        assert_eq!(
            shard.acquire(&key(1), S, &limits, WhenFull::RefuseNewKeys),
            Admission::Refused(Refusal::Concurrency)
        );
        assert_eq!(shard.connections(&key(1)), 2);
        shard.release(&key(1), a);
        assert_eq!(shard.connections(&key(1)), 1);
        shard.release(&key(1), b);
        assert_eq!(
            shard.len(),
            0,
            "an entry with no state left is dropped at once"
        );
    }

    #[test]
    fn a_refusal_changes_nothing() {
        let mut shard = Shard::new(10);
        let limits = both(1, 5, 10);
        let held = slot(shard.acquire(&key(1), S, &limits, WhenFull::RefuseNewKeys));
        // Refused by concurrency: the rate budget is not spent.
        for _ in 0..10 {
            shard.acquire(&key(1), S, &limits, WhenFull::RefuseNewKeys);
        }
        shard.release(&key(1), held);
        for _ in 0..4 {
            let s = slot(shard.acquire(&key(1), S, &limits, WhenFull::RefuseNewKeys));
            shard.release(&key(1), s);
        }
        assert!(matches!(
            shard.acquire(&key(1), S, &limits, WhenFull::RefuseNewKeys),
            Admission::Refused(Refusal::Rate { .. })
        ));
        // A refused new key leaves no entry behind.
        let mut shard = Shard::new(10);
        assert_eq!(
            shard.acquire(&key(2), S, &conc(0), WhenFull::RefuseNewKeys),
            Admission::Refused(Refusal::Concurrency)
        );
        assert_eq!(shard.len(), 0);
    }

    #[test]
    fn full_shard_refuses_new_keys_but_serves_known_ones() {
        let mut shard = Shard::new(2);
        let limits = both(5, 1, 10);
        let full = WhenFull::RefuseNewKeys;
        let a = slot(shard.acquire(&key(1), S, &limits, full));
        slot(shard.acquire(&key(2), S, &limits, full));
        assert_eq!(
            shard.acquire(&key(3), S, &limits, full),
            Admission::Refused(Refusal::Full)
        );
        // Known keys still get their normal answer.
        assert!(matches!(
            shard.acquire(&key(1), S, &limits, full),
            Admission::Refused(Refusal::Rate { .. })
        ));
        // Key 1 still has rate history after its connection ends: no room yet.
        shard.release(&key(1), a);
        assert_eq!(
            shard.acquire(&key(3), 2 * S, &limits, full),
            Admission::Refused(Refusal::Full)
        );
        // Its history runs out at 11 s; then the sweep makes room.
        slot(shard.acquire(&key(3), 11 * S, &limits, full));
        assert_eq!(shard.len(), 2);
        assert_eq!(shard.connections(&key(2)), 1);
    }

    #[test]
    fn evict_oldest_drops_the_least_recently_seen_idle_entry() {
        let mut shard = Shard::new(3);
        let rate_only = Limits {
            max_concurrent: None,
            rate: Some(Rate::new(5, Duration::from_secs(60))),
        };
        let evict = WhenFull::EvictOldest;
        for k in 1..=3 {
            shard.acquire(&key(k), S, &rate_only, evict);
        }
        // Key 1 seen again: key 2 is now the oldest.
        shard.acquire(&key(1), S, &rate_only, evict);
        shard.acquire(&key(4), S, &rate_only, evict);
        assert_eq!(shard.len(), 3);
        assert!(shard.map.contains_key(&key(1)));
        assert!(!shard.map.contains_key(&key(2)));
        assert!(shard.map.contains_key(&key(3)));
        assert!(shard.map.contains_key(&key(4)));
    }

    #[test]
    fn an_entry_with_open_connections_is_never_evicted() {
        let mut shard = Shard::new(2);
        let limits = both(5, 5, 60);
        let evict = WhenFull::EvictOldest;
        // Key 1 is the oldest and holds a connection; key 2 is idle but has rate history.
        let held = slot(shard.acquire(&key(1), S, &limits, evict));
        let s2 = slot(shard.acquire(&key(2), S, &limits, evict));
        shard.release(&key(2), s2);
        // Key 3 takes key 2's place, not key 1's.
        let s3 = slot(shard.acquire(&key(3), S, &limits, evict));
        assert_eq!(shard.connections(&key(1)), 1);
        assert!(!shard.map.contains_key(&key(2)));
        // Now both entries hold connections: a new key is refused, nobody is evicted.
        assert_eq!(
            shard.acquire(&key(4), S, &limits, evict),
            Admission::Refused(Refusal::Full)
        );
        assert_eq!(shard.len(), 2);
        // Releases still land on the right entries.
        shard.release(&key(1), held);
        shard.release(&key(3), s3);
        assert_eq!(shard.connections(&key(1)) + shard.connections(&key(3)), 0);
    }

    #[test]
    fn a_slot_of_a_dropped_generation_does_not_touch_the_new_entry() {
        let mut shard = Shard::new(10);
        let limits = conc(3);
        let old = slot(shard.acquire(&key(1), S, &limits, WhenFull::EvictOldest));
        assert!(shard.forget(&key(1)));
        let new = slot(shard.acquire(&key(1), S, &limits, WhenFull::EvictOldest));
        assert_ne!(old, new);
        shard.release(&key(1), old);
        assert_eq!(
            shard.connections(&key(1)),
            1,
            "the old slot counted nothing here"
        );
        shard.release(&key(1), new);
        assert_eq!(shard.connections(&key(1)), 0);
        // Releasing twice, or after the entry is gone, is harmless.
        shard.release(&key(1), new);
        shard.release(&key(1), old);
        assert_eq!(shard.len(), 0);
    }

    #[test]
    fn evicting_a_batch_keeps_the_newest() {
        let mut shard = Shard::new(64);
        let rate_only = Limits {
            max_concurrent: None,
            rate: Some(Rate::new(5, Duration::from_secs(60))),
        };
        for k in 0..65 {
            shard.acquire(&key(k), S, &rate_only, WhenFull::EvictOldest);
        }
        // 64 / 16 = 4 evicted at once to make room for key 64.
        assert_eq!(shard.len(), 61);
        for k in 0..4 {
            assert!(!shard.map.contains_key(&key(k)));
        }
        for k in 4..65 {
            assert!(shard.map.contains_key(&key(k)));
        }
    }

    #[test]
    fn zero_capacity_keeps_nothing() {
        let mut shard = Shard::new(0);
        for full in [WhenFull::EvictOldest, WhenFull::RefuseNewKeys] {
            assert_eq!(
                shard.acquire(&key(1), S, &conc(1), full),
                Admission::Refused(Refusal::Full)
            );
        }
        // Without any limit there is nothing to keep, so nothing to refuse.
        assert_eq!(
            shard.acquire(&key(1), S, &Limits::default(), WhenFull::RefuseNewKeys),
            Admission::Admitted(None)
        );
    }
}
