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

impl Shard {
    fn contains(&self, key: &Key) -> bool {
        self.find(key.hash_value() as u32, key.repr()).is_some()
    }
}

impl Shard {
    /// The table's invariants: Robin Hood order, the count, a free slot, every entry
    /// findable where it is.
    fn check(&self) {
        let slots = self.slots.len();
        assert!(slots <= self.max_slots);
        assert!(self.len < slots || slots == 0, "a free slot is left");
        let mut len = 0;
        for (pos, entry) in self.slots.iter().enumerate() {
            let Some(entry) = entry else { continue };
            len += 1;
            let dist = distance(entry.hash, pos, slots);
            if dist > 0 {
                let before = (pos + slots - 1) % slots;
                let previous = self.slots[before].as_ref().expect("no gap before it");
                assert!(distance(previous.hash, before, slots) + 1 >= dist);
            }
            assert_eq!(self.find(entry.hash, &entry.key), Some(pos));
        }
        assert_eq!(len, self.len);
    }
}

#[test]
fn random_operations_keep_the_table_and_the_counts_right() {
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    for when_full in [WhenFull::EvictOldest, WhenFull::RefuseNewKeys] {
        let mut shard = Shard::new(40);
        // Slots held, with whether they still count (a forget makes them stale).
        let mut held: Vec<(u32, Slot, bool)> = Vec::new();
        let mut now = S;
        for step in 0..20_000 {
            let k = next(70) as u32;
            match next(10) {
                0..=4 => {
                    let limits = both(3, 4, 10);
                    if let Admission::Admitted(Some(slot)) =
                        shard.acquire(&key(k), now, &limits, when_full)
                    {
                        held.push((k, slot, true));
                    }
                }
                5 => {
                    let rate_only = Limits {
                        max_concurrent: None,
                        rate: Some(Rate::new(2, Duration::from_secs(5))),
                    };
                    shard.acquire(&key(k), now, &rate_only, when_full);
                }
                6 | 7 if !held.is_empty() => {
                    let (k, slot, _) = held.swap_remove(next(held.len() as u64) as usize);
                    shard.release(&key(k), slot);
                }
                8 if step % 7 == 0 => {
                    if shard.forget(&key(k)) {
                        for h in held.iter_mut().filter(|h| h.0 == k) {
                            h.2 = false;
                        }
                    }
                }
                9 if step % 50 == 0 => {
                    shard.sweep(now);
                }
                _ => now += S / 10,
            }
            shard.check();
            assert!(shard.len() <= 40);
            if step % 97 == 0 {
                for k in 0..70 {
                    let counted = held.iter().filter(|h| h.0 == k && h.2).count();
                    assert_eq!(shard.connections(&key(k)) as usize, counted, "key {k}");
                }
            }
        }
        for (k, slot, _) in held.drain(..) {
            shard.release(&key(k), slot);
        }
        shard.sweep(u64::MAX - 1);
        shard.check();
        assert_eq!(shard.len(), 0, "{when_full:?}");
    }
}

#[test]
fn the_table_stops_growing_at_its_cap() {
    for cap in [1, 2, 3, 7, 100, 1000] {
        let mut shard = Shard::new(cap);
        let rate_only = Limits {
            max_concurrent: None,
            rate: Some(Rate::new(5, Duration::from_secs(60))),
        };
        for k in 0..(3 * cap as u32) {
            shard.acquire(&key(k), S, &rate_only, WhenFull::EvictOldest);
            shard.check();
        }
        assert!(shard.len() <= cap);
        assert_eq!(shard.slots.len(), cap + cap / 4 + 1, "cap {cap}");
        assert!(shard.table_bytes() <= (cap + cap / 4 + 1) * 48);
    }
}

#[test]
fn text_and_ipv6_keys_live_beside_ipv4_ones() {
    let mut shard = Shard::new(100);
    let keys: Vec<Key> = (0..30u32)
        .flat_map(|i| {
            [
                key(i),
                Key::from(format!("user{i}")),
                Key::from(std::net::IpAddr::from(std::net::Ipv6Addr::from(
                    u128::from(i) << 64,
                ))),
            ]
        })
        .collect();
    let limits = conc(2);
    let slots: Vec<Slot> = keys
        .iter()
        .map(|k| slot(shard.acquire(k, S, &limits, WhenFull::RefuseNewKeys)))
        .collect();
    shard.check();
    for k in &keys {
        assert_eq!(shard.connections(k), 1);
    }
    for (k, s) in keys.iter().zip(slots) {
        shard.release(k, s);
    }
    assert_eq!(shard.len(), 0);
}

#[test]
fn a_forget_moves_the_generation_on_only_for_open_connections() {
    let mut shard = Shard::new(10);
    let rate_only = Limits {
        max_concurrent: None,
        rate: Some(Rate::new(5, Duration::from_secs(60))),
    };
    shard.acquire(&key(1), S, &rate_only, WhenFull::EvictOldest);
    assert!(shard.forget(&key(1)));
    assert_eq!(shard.generation, 0, "nothing held a slot of it");
    let held = slot(shard.acquire(&key(2), S, &conc(1), WhenFull::EvictOldest));
    assert!(shard.forget(&key(2)));
    assert_eq!(shard.generation, 1);
    assert_ne!(
        slot(shard.acquire(&key(2), S, &conc(1), WhenFull::EvictOldest)),
        held
    );
    assert!(!shard.forget(&key(3)));
}

#[test]
fn a_slot_is_48_bytes() {
    assert_eq!(std::mem::size_of::<Entry>(), 48);
    assert_eq!(std::mem::size_of::<Option<Entry>>(), 48);
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
fn a_peek_changes_nothing_and_answers_as_acquire() {
    let mut shard = Shard::new(2);
    let limits = both(1, 2, 10);
    let full = WhenFull::RefuseNewKeys;
    let snapshot = |shard: &Shard| {
        let entries: Vec<_> = shard.slots.iter().flatten().cloned().collect();
        let fields: Vec<_> = entries
            .iter()
            .map(|e| (e.tat, e.count, e.generation, e.last_used))
            .collect();
        (fields, shard.len, shard.tick, shard.now, shard.next_idle)
    };
    let held = slot(shard.acquire(&key(1), S, &limits, full));
    let before = snapshot(&shard);
    // Later than anything seen: a peek does not move the shard's clock either.
    for now in [S, 100 * S] {
        assert_eq!(
            shard.peek(&key(1), now, &limits),
            Some(Refusal::Concurrency)
        );
        assert_eq!(shard.peek(&key(2), now, &limits), None);
    }
    assert_eq!(snapshot(&shard), before);
    shard.release(&key(1), held);
    let again = slot(shard.acquire(&key(1), S, &limits, full));
    shard.release(&key(1), again);
    let refused = shard.acquire(&key(1), S, &limits, full);
    let before = snapshot(&shard);
    assert_eq!(
        shard.peek(&key(1), S, &limits).map(Admission::Refused),
        Some(refused)
    );
    assert_eq!(snapshot(&shard), before);
    // Refusing for want of room is left to acquire, which may make room.
    let other = slot(shard.acquire(&key(2), S, &limits, full));
    assert_eq!(
        shard.acquire(&key(3), S, &limits, full),
        Admission::Refused(Refusal::Full)
    );
    assert_eq!(shard.peek(&key(3), S, &limits), None);
    shard.release(&key(2), other);
    shard.check();
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
    assert!(shard.contains(&key(1)));
    assert!(!shard.contains(&key(2)));
    assert!(shard.contains(&key(3)));
    assert!(shard.contains(&key(4)));
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
    assert!(!shard.contains(&key(2)));
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
        assert!(!shard.contains(&key(k)));
    }
    for k in 4..65 {
        assert!(shard.contains(&key(k)));
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
