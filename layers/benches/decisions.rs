//! The cost of one policy decision, per layer: what each connection pays before its greeting.
//!
//! ```text
//! cargo bench -p tower-mail-layers --bench decisions
//! ```
//!
//! Goal (issue 4): each decision under 200 ns. The decision is the policy's `check_now` on a
//! session, the same call `PolicyLayer` makes per connection for these policies, which all
//! decide on the spot (for the rate limit, plus dropping the permit it returns, which every
//! connection does when it ends).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use tower_mail::{Protocol, Session};
use tower_mail_layers::ip_block::{CidrSet, IpBlock, IpLists};
use tower_mail_layers::policy::Policy;
use tower_mail_layers::rate_limit::{Key, LocalStore, RateLimit, RateLimitConfig};
use tower_mail_layers::time_window::{Schedule, Time, Weekday};

/// Pseudo-random addresses, the same on every run.
fn addresses(n: usize) -> Vec<Ipv4Addr> {
    let mut x: u32 = 0x9e37_79b9;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            Ipv4Addr::from(x)
        })
        .collect()
}

fn session(ip: IpAddr) -> Arc<Session> {
    Arc::new(Session::new(
        Protocol::Imap,
        SocketAddr::new(ip, 50_000),
        "127.0.0.1:143".parse().unwrap(),
    ))
}

fn ip_block(c: &mut Criterion) {
    let deny: CidrSet = addresses(100_000)
        .into_iter()
        .enumerate()
        .map(|(i, ip)| {
            let len = if i % 4 == 0 { 24 } else { 32 };
            ipnet::IpNet::V4(ipnet::Ipv4Net::new(ip, len).unwrap().trunc())
        })
        .collect();
    let block = IpBlock::new(IpLists {
        deny,
        ..IpLists::default()
    });
    let probes: Vec<Arc<Session>> = addresses(1024)
        .into_iter()
        .map(|ip| session(IpAddr::V4(Ipv4Addr::from(u32::from(ip).rotate_left(7)))))
        .collect();
    let mut i = 0;
    c.bench_function("ip_block/100k_cidrs", |b| {
        b.iter(|| {
            i = (i + 1) % probes.len();
            black_box(
                block
                    .check_now(black_box(&probes[i]))
                    .is_some_and(|v| v.is_ok()),
            )
        })
    });
}

fn time_window(c: &mut Criterion) {
    let days = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
    ];
    let schedule = Schedule::new("Europe/Amsterdam").unwrap().open_weekdays(
        &days,
        Time::constant(9, 0, 0, 0),
        Time::constant(17, 0, 0, 0),
    );
    let probe = session("192.0.2.1".parse().unwrap());
    // Both verdicts, whatever the time of day the benchmark runs at.
    let open = Schedule::always_open();
    let closed = Schedule::new("Europe/Amsterdam").unwrap();
    for (name, schedule) in [
        ("time_window/business_hours_now", &schedule),
        ("time_window/open", &open),
        ("time_window/closed", &closed),
    ] {
        c.bench_function(name, |b| {
            b.iter(|| {
                black_box(
                    schedule
                        .check_now(black_box(&probe))
                        .is_some_and(|v| v.is_ok()),
                )
            })
        });
    }
}

/// Keys the rate-limit table holds while it is measured.
const RATE_LIMIT_KEYS: u32 = 1_000_000;
/// Where the table's keys start: 10.0.0.0/8 has room for all of them.
const TABLE_BASE: u32 = u32::from_be_bytes([10, 0, 0, 0]);
/// Where the never-seen keys come from, apart from the table's.
const NEW_KEY_BASE: u32 = u32::from_be_bytes([11, 0, 0, 0]);

fn v4(bits: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(bits))
}

/// Removes its key from the store when dropped. Criterion drops `iter_batched` outputs after
/// the batch's timing, so a measured "new key" insertion is undone off the clock and the table
/// stays at its size through the measurement.
struct ForgetAfter<'a> {
    store: &'a LocalStore,
    key: Key,
    _session: Arc<Session>,
}

impl Drop for ForgetAfter<'_> {
    fn drop(&mut self) {
        self.store.forget(&self.key);
    }
}

/// One decision of a [`RateLimit`] whose table holds a million keys, as under a flood from many
/// addresses: for a key it has (a returning client) and for a key it has not (a new one). Each
/// decision is the check plus dropping its permit, which gives the open-connection slot back:
/// what a connection costs the limit over its life, short of the session itself.
fn rate_limit(c: &mut Criterion) {
    let limit = RateLimit::new(RateLimitConfig {
        max_concurrent: Some(10),
        // Bursts of a million refilling over an hour: more than any key here uses (the cached
        // bench below checks each of its 256 keys some 100,000 times), so every measured
        // decision is an admission, which counts a slot and moves the key's rate state. Each
        // admission leaves the key 3.6 ms of rate history, so the permit's release keeps its
        // entry; nothing else removes entries before a shard is full, and at 1.1 million keys
        // none fills.
        max_per_window: Some(1_000_000),
        window: Duration::from_secs(3_600),
        max_keys: 1_100_000,
        ..RateLimitConfig::default()
    });
    // Counted rather than asserted inside the measured loop; checked at the end.
    let refused = std::cell::Cell::new(0u64);
    let decide = |session: &Arc<Session>| {
        let admitted = limit
            .check_now(session)
            .expect("the local store answers at once")
            .is_ok();
        if !admitted {
            refused.set(refused.get() + 1);
        }
    };

    let started = Instant::now();
    for i in 0..RATE_LIMIT_KEYS {
        decide(&session(v4(TABLE_BASE + i)));
    }
    let store = limit.store();
    let keys = store.len();
    assert_eq!(refused.get(), 0, "refusals while filling the table");
    assert_eq!(keys, RATE_LIMIT_KEYS as usize, "every key has its entry");
    eprintln!(
        "rate_limit/1m_keys: {keys} keys filled in {:.1?}; tables {:.1} MB, {:.1} bytes per key",
        started.elapsed(),
        store.table_bytes() as f64 / 1e6,
        store.table_bytes() as f64 / keys as f64,
    );

    // Existing keys in a scattered order, so that lookups miss the caches as a big table's do.
    let mut x: u32 = 0x2545_f491;
    let mut next_existing = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        session(v4(TABLE_BASE + x % RATE_LIMIT_KEYS))
    };
    c.bench_function("rate_limit/1m_keys/existing_key", |b| {
        b.iter_batched(
            &mut next_existing,
            |session| {
                decide(&session);
                // Returned, so that freeing the session is not measured.
                session
            },
            BatchSize::SmallInput,
        )
    });

    // The same decisions on a few keys only, whose entries (and their pages' translations)
    // stay in the caches: the decision's own work, without the memory latency of a big table.
    // The difference between the two is the machine's, not the code's.
    let cached: Vec<Arc<Session>> = (0..256).map(|_| next_existing()).collect();
    let mut i = 0;
    c.bench_function("rate_limit/1m_keys/existing_key_cached", |b| {
        b.iter_batched(
            || {
                i = (i + 1) % cached.len();
                cached[i].clone()
            },
            |session| {
                decide(&session);
                session
            },
            BatchSize::SmallInput,
        )
    });

    let mut n: u32 = 0;
    let mut next_new = move || {
        n = (n + 1) % (1 << 24);
        let ip = v4(NEW_KEY_BASE + n);
        // The key to forget is made here, off the clock: the check makes its own.
        (session(ip), Key::from(ip))
    };
    c.bench_function("rate_limit/1m_keys/new_key", |b| {
        b.iter_batched(
            &mut next_new,
            |(session, key)| {
                decide(&session);
                ForgetAfter {
                    store,
                    key,
                    _session: session,
                }
            },
            BatchSize::SmallInput,
        )
    });
    assert_eq!(
        store.len(),
        RATE_LIMIT_KEYS as usize,
        "the measured new keys were all forgotten again"
    );
    assert_eq!(
        refused.get(),
        0,
        "measured decisions must all be admissions"
    );
}

/// The default configuration: open connections only, no rate. Without a rate a check does
/// not read the clock, and a key's entry lives only while it has connections open, so each
/// decision here makes its key's entry and its permit's release drops it again.
fn rate_limit_concurrency_only(c: &mut Criterion) {
    let limit = RateLimit::new(RateLimitConfig::default());
    let sessions: Vec<Arc<Session>> = (0..256).map(|i| session(v4(TABLE_BASE + i))).collect();
    let mut i = 0;
    c.bench_function("rate_limit/concurrency_only", |b| {
        b.iter(|| {
            i = (i + 1) % sessions.len();
            let permit = limit.check_now(black_box(&sessions[i]));
            black_box(permit.expect("the local store answers at once").is_ok())
        })
    });
    assert!(limit.store().is_empty(), "every entry went with its permit");
}

/// Making a connection's key, as each decision does: the address and its keyed hash.
fn rate_limit_key(c: &mut Criterion) {
    let mut n: u32 = 0;
    c.bench_function("rate_limit/key_from_ipv4", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            black_box(Key::from(v4(black_box(n))))
        })
    });
    let v6 = IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]);
    c.bench_function("rate_limit/key_from_ipv6", |b| {
        b.iter(|| black_box(Key::from(black_box(v6))))
    });
}

/// The machine's floor under `rate_limit/1m_keys/existing_key`: one random read from a table as
/// big as that one (66 MB), each read depending on the one before, as a decision's lookup
/// depends on its key. A decision on a big table cannot cost less than this; the difference
/// between the two is the code's.
fn memory_latency(c: &mut Criterion) {
    const WORDS: usize = 66_000_000 / 8;
    // One random cycle through every word (Sattolo's shuffle), so that each read's address
    // comes from the read before and the prefetchers cannot guess it.
    let mut next: Vec<u64> = (0..WORDS as u64).collect();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..WORDS).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        next.swap(i, (x % i as u64) as usize);
    }
    let mut at = 0usize;
    c.bench_function("machine/random_read_66mb", |b| {
        b.iter(|| {
            at = next[at] as usize;
            black_box(at)
        })
    });
}

criterion_group!(
    benches,
    ip_block,
    time_window,
    rate_limit,
    rate_limit_concurrency_only,
    rate_limit_key,
    memory_latency
);
criterion_main!(benches);
