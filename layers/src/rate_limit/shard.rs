//! One shard of the local table: its keys' counters, and making room when it is full.
//!
//! The table is open addressing with linear probing in Robin Hood order: no entry sits further
//! from its home slot than an entry it had to pass. Each slot holds the key and its state
//! together, so a check reads the slot's cache line and, when the key had to move on, the next
//! one, instead of a control byte in one page and the entry in another: at a million keys, where
//! every check misses the caches and the TLB, that is half the misses. A lookup stops at a free
//! slot or at an entry closer to home than the key would be, so a key that is not there costs
//! about as much as one that is. A removal shifts the entries behind it back by one slot (no
//! tombstones), so the table never needs cleaning.
//!
//! Why not std's `HashMap`: the bound on memory under a spray of addresses. Under the churn of
//! a full shard (new keys in, the least recently seen out), a `HashMap` of the same entries
//! doubles its buckets once its tombstones use up its room (measured: 130 to 190 bytes per key
//! at these shard sizes, above the spray test's bound); this table stays at 60 at most.

use std::time::Duration;

use super::key::Repr;
use super::{Admission, Key, Limits, Refusal, Slot, WhenFull};

/// A table holds at most `LOAD_NUM / LOAD_DEN` entries per slot: at four fifths, an entry is on
/// average one slot from home (Robin Hood evens the distances out) and a lookup reads one or two
/// neighbouring cache lines.
const LOAD_NUM: usize = 4;
const LOAD_DEN: usize = 5;
/// Slots of a shard's first table.
const MIN_SLOTS: usize = 8;

/// One key and its state: 48 bytes, the whole of a slot (a free slot is the key's unused enum
/// tag).
#[derive(Debug, Clone)]
pub(super) struct Entry {
    /// GCRA theoretical arrival time, in nanoseconds on the policy's clock. At or before `now`
    /// it carries no history, which is why a new entry can start at 0.
    tat: u64,
    key: Repr,
    /// The low half of the key's hash, which places the entry in the table (the high half
    /// picked the shard).
    hash: u32,
    /// The shard's generation when this entry was made, handed out as the slot id of its
    /// connections: a slot of an entry forgotten since cannot release into a newer entry under
    /// the same key (see [`Shard::forget`]).
    generation: u32,
    /// Open connections counted.
    count: u32,
    /// Low half of the shard tick at the entry's last acquire or release. Compared as an age
    /// (`tick - last_used`, wrapping), so 32 bits are enough to find the least recently seen.
    last_used: u32,
}

impl Entry {
    fn new(key: &Key, hash: u32, generation: u32, tick: u32) -> Entry {
        Entry {
            tat: 0,
            key: key.repr().clone(),
            hash,
            generation,
            count: 0,
            last_used: tick,
        }
    }

    /// No open connection and no rate history: dropping it changes no decision.
    fn is_idle(&self, now: u64) -> bool {
        self.count == 0 && self.tat <= now
    }

    /// Both limits, all or nothing: a refusal changes nothing.
    fn admit(&mut self, now: u64, limits: &Limits) -> Admission {
        match judge(self.count, self.tat, now, limits) {
            Err(refusal) => Admission::Refused(refusal),
            Ok(tat) => {
                if let Some(tat) = tat {
                    self.tat = tat;
                }
                if limits.max_concurrent.is_none() {
                    return Admission::Admitted(None);
                }
                self.count += 1;
                Admission::Admitted(Some(Slot::new(u64::from(self.generation))))
            }
        }
    }
}

/// Both limits for a key with `count` open connections and TAT `tat`, at `now`: the refusal,
/// or the key's TAT after admitting the connection (`None` without a rate). Reads only.
fn judge(count: u32, tat: u64, now: u64, limits: &Limits) -> Result<Option<u64>, Refusal> {
    if limits.max_concurrent.is_some_and(|max| count >= max) {
        return Err(Refusal::Concurrency);
    }
    let Some(rate) = limits.rate else {
        return Ok(None);
    };
    rate.admit(tat, now).map(Some).map_err(|wait| {
        let retry_after = match wait {
            u64::MAX => Duration::MAX,
            wait => Duration::from_nanos(wait),
        };
        Refusal::Rate { retry_after }
    })
}

/// When an entry without open connections becomes idle, as `next_idle` counts: never
/// `u64::MAX`, which means "no such entry", even for a TAT saturated by a huge window.
fn idle_at(tat: u64) -> u64 {
    tat.min(u64::MAX - 1)
}

/// The slot an entry of `hash` belongs in, of `slots`: the hash scaled to the table, so that
/// any table size works (not only powers of two) and entries lie in the order of their hashes.
#[inline]
fn home(hash: u32, slots: usize) -> usize {
    ((u64::from(hash) * slots as u64) >> 32) as usize
}

/// How far the entry of `hash` at `pos` sits past its home slot, wrapping at the table's end.
#[inline]
fn distance(hash: u32, pos: usize, slots: usize) -> usize {
    let home = home(hash, slots);
    if pos >= home {
        pos - home
    } else {
        pos + slots - home
    }
}

#[inline]
fn next(pos: usize, slots: usize) -> usize {
    if pos + 1 == slots { 0 } else { pos + 1 }
}

fn free_slots(slots: usize) -> Box<[Option<Entry>]> {
    std::iter::repeat_with(|| None).take(slots).collect()
}

/// A table of keys and their entries with at most `cap` of them.
#[derive(Debug)]
pub(super) struct Shard {
    /// Never full: at least one slot is free, so every probe ends.
    slots: Box<[Option<Entry>]>,
    /// Entries in `slots`.
    len: usize,
    cap: usize,
    /// The most slots the table grows to: room for `cap` entries at the highest load.
    max_slots: usize,
    /// Counts acquires and releases: the shard's logical clock for recency.
    tick: u64,
    /// The generation of entries made now. It moves on only when an entry that still counts
    /// open connections is forgotten, so a slot's generation tells its entry apart from a newer
    /// one under the same key unless 2^32 such forgets came in between.
    generation: u32,
    /// The latest `now` seen. The clock is monotonic, so an entry whose TAT is at or before it
    /// has no history left, even when the entry's last check was long ago.
    now: u64,
    /// No entry with no open connection has its TAT before this (`u64::MAX`: there is no such
    /// entry). A lower bound, made exact by every scan: a full shard rescans only when a scan
    /// can find something, instead of on every new key of a flood.
    next_idle: u64,
}

impl Shard {
    pub(super) fn new(cap: usize) -> Shard {
        Shard {
            slots: free_slots(0),
            len: 0,
            cap,
            // At least `cap * LOAD_DEN / LOAD_NUM`, and one more so that a table is never full.
            max_slots: cap + cap / 4 + 1,
            tick: 0,
            generation: 0,
            now: 0,
            next_idle: u64::MAX,
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
        let tick = self.tick as u32;
        let hash = key.hash_value() as u32;
        if let Some(entry) = self
            .find(hash, key.repr())
            .and_then(|pos| self.slots[pos].as_mut())
        {
            entry.last_used = tick;
            return entry.admit(now, limits);
        }
        let mut entry = Entry::new(key, hash, self.generation, tick);
        let admission = entry.admit(now, limits);
        if matches!(admission, Admission::Refused(_)) || entry.is_idle(now) {
            // Nothing to keep: the refusal changed nothing, and an entry without state answers
            // exactly as a key never seen.
            return admission;
        }
        if self.len >= self.cap && !self.make_room(when_full) {
            return Admission::Refused(Refusal::Full);
        }
        if entry.count == 0 {
            self.next_idle = self.next_idle.min(idle_at(entry.tat));
        }
        self.reserve_one();
        self.insert(entry);
        admission
    }

    pub(super) fn release(&mut self, key: &Key, slot: Slot) {
        self.tick += 1;
        let tick = self.tick as u32;
        let Some(pos) = self.find(key.hash_value() as u32, key.repr()) else {
            return;
        };
        let Some(entry) = &mut self.slots[pos] else {
            return;
        };
        if u64::from(entry.generation) != slot.id() || entry.count == 0 {
            // The slot's entry is gone; this one was made after it and never counted it.
            return;
        }
        entry.count -= 1;
        entry.last_used = tick;
        if entry.count == 0 {
            if entry.tat <= self.now {
                // Dropped at once, so that with only a concurrency limit the table holds just
                // the keys with open connections.
                self.remove_at(pos);
            } else {
                self.next_idle = self.next_idle.min(idle_at(entry.tat));
            }
        }
    }

    /// Drop every entry without state, as of `now`; returns how many.
    pub(super) fn sweep(&mut self, now: u64) -> usize {
        self.now = self.now.max(now);
        let now = self.now;
        let before = self.len;
        let mut next_idle = u64::MAX;
        self.retain(|e| {
            if e.count == 0 && e.tat > now {
                next_idle = next_idle.min(idle_at(e.tat));
            }
            !e.is_idle(now)
        });
        self.next_idle = next_idle;
        before - self.len
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
            .slots
            .iter()
            .flatten()
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
        self.retain(|e| {
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
        let Some(pos) = self.find(key.hash_value() as u32, key.repr()) else {
            return false;
        };
        if self.slots[pos].as_ref().is_some_and(|e| e.count > 0) {
            // Its open connections hold slots of this generation: entries made from now on get
            // the next one, so that those slots cannot release into them.
            self.generation = self.generation.wrapping_add(1);
        }
        self.remove_at(pos);
        true
    }

    /// Why [`acquire`](Shard::acquire) would refuse `key` at `now`, without changing anything
    /// (not even the recency or the shard's clock); `None` if it would admit it, or refuse it
    /// only for want of room, which this does not try to make.
    pub(super) fn peek(&self, key: &Key, now: u64, limits: &Limits) -> Option<Refusal> {
        // A key not in the table has no state: what a new entry would start with.
        let (count, tat) = self
            .find(key.hash_value() as u32, key.repr())
            .and_then(|pos| self.slots[pos].as_ref())
            .map_or((0, 0), |e| (e.count, e.tat));
        judge(count, tat, now, limits).err()
    }

    /// Open connections counted under `key`.
    pub(super) fn connections(&self, key: &Key) -> u32 {
        self.find(key.hash_value() as u32, key.repr())
            .and_then(|pos| self.slots[pos].as_ref())
            .map_or(0, |e| e.count)
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Bytes the table has allocated: one entry per slot.
    pub(super) fn table_bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<Option<Entry>>()
    }

    /// Where `key` (whose hash has `hash` as its low half) is.
    #[inline(always)]
    fn find(&self, hash: u32, key: &Repr) -> Option<usize> {
        let slots = self.slots.len();
        if slots == 0 {
            return None;
        }
        let mut pos = home(hash, slots);
        let mut dist = 0;
        loop {
            // A free slot ends the probe: the key would be here or before.
            let entry = self.slots[pos].as_ref()?;
            if entry.hash == hash && entry.key == *key {
                return Some(pos);
            }
            if distance(entry.hash, pos, slots) < dist {
                // The key would have taken this entry's place on its way in.
                return None;
            }
            dist += 1;
            pos = next(pos, slots);
        }
    }

    /// Put `entry`, whose key is not in the table, in its place: the first slot that is free
    /// or whose entry is closer to home, which then moves on the same way.
    fn insert(&mut self, mut entry: Entry) {
        let slots = self.slots.len();
        debug_assert!(self.len < slots - 1, "the table keeps a free slot");
        let mut pos = home(entry.hash, slots);
        let mut dist = 0;
        loop {
            match &mut self.slots[pos] {
                free @ None => {
                    *free = Some(entry);
                    self.len += 1;
                    return;
                }
                Some(resident) => {
                    let theirs = distance(resident.hash, pos, slots);
                    if theirs < dist {
                        std::mem::swap(resident, &mut entry);
                        dist = theirs;
                    }
                }
            }
            dist += 1;
            pos = next(pos, slots);
        }
    }

    /// Remove the entry at `pos`, shifting the entries behind it that are away from home back
    /// by one slot.
    fn remove_at(&mut self, mut pos: usize) {
        let slots = self.slots.len();
        self.slots[pos] = None;
        self.len -= 1;
        loop {
            let after = next(pos, slots);
            match &self.slots[after] {
                Some(e) if distance(e.hash, after, slots) > 0 => {}
                _ => return,
            }
            self.slots[pos] = self.slots[after].take();
            pos = after;
        }
    }

    /// Keep only the entries `keep` says to, seeing each entry once.
    fn retain(&mut self, mut keep: impl FnMut(&Entry) -> bool) {
        let slots = self.slots.len();
        // Removals shift entries back, never across a free slot: starting after one, a single
        // pass sees every entry, and sees again only the one shifted into the slot it is at.
        let Some(free) = self.slots.iter().position(Option::is_none) else {
            return;
        };
        for i in 1..slots {
            let pos = (free + i) % slots;
            while let Some(entry) = &self.slots[pos] {
                if keep(entry) {
                    break;
                }
                self.remove_at(pos);
            }
        }
    }

    /// Make sure the table has room for one more entry at its highest load, growing it if not.
    /// The shard is under its cap, so at `max_slots` it always has.
    fn reserve_one(&mut self) {
        let fits = |slots: usize| (self.len + 1) * LOAD_DEN <= slots * LOAD_NUM;
        if fits(self.slots.len()) {
            return;
        }
        let mut slots = self.slots.len().max(MIN_SLOTS / 2);
        while !fits(slots) {
            slots *= 2;
        }
        let slots = slots.min(self.max_slots);
        let old = std::mem::replace(&mut self.slots, free_slots(slots));
        self.len = 0;
        for entry in old.into_vec().into_iter().flatten() {
            self.insert(entry);
        }
    }
}

#[cfg(test)]
mod tests;
