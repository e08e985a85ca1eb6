//! The policy as a whole: permits, clocks, stores that fail, floods, threads, a real stack.

use std::future::{Pending, Ready, pending, ready};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::FutureExt;
use tower_mail::{Protocol, Reject, Session};

use super::*;
use crate::policy::{AddressPolicy, Policy};

fn session(ip: &str) -> Arc<Session> {
    Arc::new(Session::new(
        Protocol::Imap,
        SocketAddr::new(ip.parse().unwrap(), 40000),
        "127.0.0.1:143".parse().unwrap(),
    ))
}

fn ip_key(ip: &str) -> Key {
    Key::from(ip.parse::<IpAddr>().unwrap())
}

/// The check's verdict; the local store always answers on the first poll.
fn check<S: RateLimitStore>(limit: &RateLimit<S>, ip: &str) -> Result<RateLimitPermit<S>, Reject> {
    limit
        .check(&session(ip))
        .now_or_never()
        .expect("the local store answers at once")
}

/// A clock the test moves by hand.
fn manual_clock() -> (Arc<AtomicU64>, Clock) {
    let millis = Arc::new(AtomicU64::new(1_000_000));
    let read = millis.clone();
    let clock: Clock = Arc::new(move || Duration::from_millis(read.load(Ordering::SeqCst)));
    (millis, clock)
}

fn concurrent(max: u32) -> RateLimit {
    RateLimit::new(RateLimitConfig {
        max_concurrent: Some(max),
        ..RateLimitConfig::default()
    })
}

#[test]
fn n_open_connections_then_refused_then_allowed_again() {
    let limit = concurrent(3);
    let mut permits: Vec<_> = (0..3)
        .map(|_| check(&limit, "192.0.2.1").unwrap())
        .collect();
    let refusal = check(&limit, "192.0.2.1").unwrap_err();
    assert_eq!(refusal.message(), "Too many connections from this IP");
    assert_eq!(refusal.layer(), "rate_limit");
    // Another address has its own budget.
    let _other = check(&limit, "192.0.2.2").unwrap();
    permits.pop();
    let _again = check(&limit, "192.0.2.1").unwrap();
    assert!(check(&limit, "192.0.2.1").is_err());
}

#[test]
fn debug_output_stays_short_however_many_keys() {
    let limit = concurrent(1);
    let _permits: Vec<_> = (0..1000)
        .map(|i| check(&limit, &format!("10.0.{}.{}", i / 256, i % 256)).unwrap())
        .collect();
    let text = format!("{limit:?}");
    assert!(
        text.contains("max_keys: 100000") && text.len() < 300,
        "{text}"
    );
}

#[test]
fn permits_release_exactly_once_in_any_drop_order() {
    let limit = concurrent(3);
    let key = ip_key("192.0.2.1");
    let [a, b, c] = [(); 3].map(|_| check(&limit, "192.0.2.1").unwrap());
    assert_eq!(limit.store().connections(&key), 3);
    drop(b);
    assert_eq!(limit.store().connections(&key), 2);
    drop(a);
    assert_eq!(limit.store().connections(&key), 1);
    drop(c);
    assert_eq!(limit.store().connections(&key), 0);
    assert!(limit.store().is_empty());
}

#[test]
fn a_check_dropped_before_it_is_polled_gives_its_slot_back() {
    // A connection whose future goes before its first poll (its task cancelled, say): the
    // local store counted the slot in the check, so the check's future must give it back.
    let limit = concurrent(1);
    drop(limit.check(&session("192.0.2.1")));
    assert_eq!(limit.store().connections(&ip_key("192.0.2.1")), 0);
    assert!(limit.store().is_empty());
    let _permit = check(&limit, "192.0.2.1").unwrap();
}

#[test]
fn a_panicking_session_gives_its_slot_back() {
    let limit = concurrent(1);
    let held = limit.clone();
    let outcome = std::thread::spawn(move || {
        let _permit = check(&held, "192.0.2.1").unwrap();
        panic!("handler bug");
    })
    .join();
    assert!(outcome.is_err());
    assert_eq!(limit.store().connections(&ip_key("192.0.2.1")), 0);
    let _permit = check(&limit, "192.0.2.1").unwrap();
}

#[test]
fn ipv4_mapped_peers_share_the_ipv4_budget() {
    let limit = concurrent(1);
    let _permit = check(&limit, "192.0.2.1").unwrap();
    assert!(check(&limit, "::ffff:192.0.2.1").is_err());
}

#[test]
fn prefixes_share_one_budget() {
    let limit = RateLimit::new(RateLimitConfig {
        key: RateLimitKey::Prefix { v4: 24, v6: 64 },
        max_concurrent: Some(1),
        ..RateLimitConfig::default()
    });
    let _a = check(&limit, "10.0.0.1").unwrap();
    assert!(check(&limit, "10.0.0.200").is_err());
    let _b = check(&limit, "10.0.1.1").unwrap();
    let _c = check(&limit, "2001:db8:0:1::1").unwrap();
    assert!(check(&limit, "2001:db8:0:1::ffff").is_err());
    let _d = check(&limit, "2001:db8:0:2::1").unwrap();
}

#[test]
fn a_custom_key_of_none_is_unlimited() {
    // Loopback clients (a local webmail, say) are not limited; others by address.
    let limit = RateLimit::new(RateLimitConfig {
        key: RateLimitKey::custom(|s| {
            let ip = s.remote_addr().ip();
            (!ip.is_loopback()).then(|| Key::from(ip))
        }),
        max_concurrent: Some(1),
        ..RateLimitConfig::default()
    });
    let local: Vec<_> = (0..100)
        .map(|_| check(&limit, "127.0.0.1").unwrap())
        .collect();
    assert!(local.iter().all(|p| p.key().is_none()));
    let _remote = check(&limit, "192.0.2.1").unwrap();
    assert!(check(&limit, "192.0.2.1").is_err());
    assert_eq!(limit.store().len(), 1);
}

#[test]
fn rate_window_on_a_manual_clock() {
    let (millis, clock) = manual_clock();
    let limit = RateLimit::new(RateLimitConfig {
        max_concurrent: None,
        max_per_window: Some(3),
        window: Duration::from_secs(10),
        ..RateLimitConfig::default()
    })
    .with_clock(clock);
    for _ in 0..3 {
        assert!(check(&limit, "192.0.2.1").is_ok());
    }
    assert!(check(&limit, "192.0.2.1").is_err());
    // Smooth refill: one slot every 10/3 s, not the whole budget at a window's edge.
    millis.fetch_add(3_000, Ordering::SeqCst);
    assert!(check(&limit, "192.0.2.1").is_err());
    millis.fetch_add(334, Ordering::SeqCst);
    assert!(check(&limit, "192.0.2.1").is_ok());
    assert!(check(&limit, "192.0.2.1").is_err());
    // A whole quiet window later, the whole burst again.
    millis.fetch_add(13_334, Ordering::SeqCst);
    for _ in 0..3 {
        assert!(check(&limit, "192.0.2.1").is_ok());
    }
    assert!(check(&limit, "192.0.2.1").is_err());
    // Rate alone counts no open connections: nothing to release.
    assert!(check(&limit, "192.0.2.9").unwrap().key().is_none());
}

/// Without a clock of its own, a limit counts each connection at the moment it was accepted
/// (`Session::started`), however long the connection took to reach the check (a TLS
/// handshake, an earlier layer's delay).
#[test]
fn connections_count_at_their_accept_instant() {
    // One connection per interval. The accept instants are std's clock, which no test can
    // pause: the test waits for an interval to pass and relies on nothing else.
    const INTERVAL: Duration = Duration::from_millis(20);
    let limit = RateLimit::new(RateLimitConfig {
        max_concurrent: None,
        max_per_window: Some(1),
        window: INTERVAL,
        ..RateLimitConfig::default()
    });
    let first = session("192.0.2.1");
    while first.started().elapsed() < INTERVAL {
        std::thread::sleep(INTERVAL / 4);
    }
    // Accepted back to back, the third no later than the second.
    let third = session("192.0.2.1");
    let second = session("192.0.2.1");
    // All are checked now, but the first two arrived at least one interval apart.
    let verdict = |s: &Arc<Session>| limit.check(s).now_or_never().unwrap();
    assert!(verdict(&first).is_ok());
    assert!(verdict(&second).is_ok());
    // The third arrived within the interval of the second.
    assert!(verdict(&third).is_err());
}

#[test]
fn both_limits_together() {
    let (millis, clock) = manual_clock();
    let limit = RateLimit::new(RateLimitConfig {
        max_concurrent: Some(2),
        max_per_window: Some(4),
        window: Duration::from_secs(60),
        ..RateLimitConfig::default()
    })
    .with_clock(clock);
    let a = check(&limit, "192.0.2.1").unwrap();
    let _b = check(&limit, "192.0.2.1").unwrap();
    assert!(check(&limit, "192.0.2.1").is_err(), "two open");
    drop(a);
    drop(check(&limit, "192.0.2.1").unwrap());
    drop(check(&limit, "192.0.2.1").unwrap());
    assert!(check(&limit, "192.0.2.1").is_err(), "four in a minute");
    // One new connection per 15 s, and still no more than two open.
    millis.fetch_add(15_000, Ordering::SeqCst);
    let _e = check(&limit, "192.0.2.1").unwrap();
    millis.fetch_add(15_000, Ordering::SeqCst);
    assert!(check(&limit, "192.0.2.1").is_err(), "two open again");
}

#[test]
fn reconfigure_keeps_open_slots() {
    let limit = concurrent(2);
    let handle = limit.clone();
    let a = check(&limit, "192.0.2.1").unwrap();
    let _b = check(&limit, "192.0.2.1").unwrap();
    handle.reconfigure(RateLimitConfig {
        max_concurrent: Some(3),
        message: "Slow down".into(),
        ..RateLimitConfig::default()
    });
    let _c = check(&limit, "192.0.2.1").unwrap();
    assert_eq!(
        check(&limit, "192.0.2.1").unwrap_err().message(),
        "Slow down"
    );
    handle.reconfigure(RateLimitConfig {
        max_concurrent: None,
        ..RateLimitConfig::default()
    });
    // Slots taken under the old limits still go back.
    drop(a);
    assert_eq!(limit.store().connections(&ip_key("192.0.2.1")), 2);
}

#[test]
fn the_clock_is_read_only_once_a_rate_is_set() {
    let reads = Arc::new(AtomicU64::new(0));
    let counted = reads.clone();
    let clock: Clock = Arc::new(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        Duration::from_secs(1)
    });
    let limit = concurrent(5).with_clock(clock);
    drop(check(&limit, "192.0.2.1").unwrap());
    assert_eq!(
        reads.load(Ordering::SeqCst),
        0,
        "open connections need no time"
    );
    let rate = |per_window| RateLimitConfig {
        max_per_window: per_window,
        ..RateLimitConfig::default()
    };
    limit.reconfigure(rate(Some(100)));
    drop(check(&limit, "192.0.2.1").unwrap());
    assert_eq!(reads.load(Ordering::SeqCst), 1);
    // The rate history left behind still needs the time to run out.
    limit.reconfigure(rate(None));
    drop(check(&limit, "192.0.2.1").unwrap());
    assert_eq!(reads.load(Ordering::SeqCst), 2);
}

#[test]
fn eviction_through_the_policy() {
    // max_keys 4: one shard, so the order of eviction is exact.
    let (millis, clock) = manual_clock();
    let config = |when_full| RateLimitConfig {
        max_concurrent: Some(1),
        max_per_window: Some(5),
        window: Duration::from_secs(60),
        max_keys: 4,
        when_full,
        ..RateLimitConfig::default()
    };
    let refuse = RateLimit::new(config(WhenFull::RefuseNewKeys)).with_clock(clock.clone());
    let evict = RateLimit::new(config(WhenFull::EvictOldest)).with_clock(clock);
    for limit in [&refuse, &evict] {
        // Key .1 keeps a connection open; .2 to .4 leave rate history behind.
        let _open = check(limit, "192.0.2.1").unwrap();
        for ip in ["192.0.2.2", "192.0.2.3", "192.0.2.4"] {
            drop(check(limit, ip).unwrap());
        }
        assert_eq!(limit.store().len(), 4);
        let new_key = check(limit, "192.0.2.5");
        if std::ptr::eq(limit, &refuse) {
            assert!(new_key.is_err(), "a full table refuses new keys");
        } else {
            assert!(new_key.is_ok(), "the oldest idle key made room");
            assert_eq!(limit.store().connections(&ip_key("192.0.2.1")), 1);
        }
        assert_eq!(limit.store().len(), 4);
    }
    // Once rate history has run out, the refusing table has room again.
    millis.fetch_add(60_000, Ordering::SeqCst);
    assert!(check(&refuse, "192.0.2.5").is_ok());
}

#[test]
fn a_permit_of_a_forgotten_generation_does_not_corrupt_the_new_entry() {
    let limit = concurrent(1);
    let key = ip_key("192.0.2.1");
    let old = check(&limit, "192.0.2.1").unwrap();
    assert!(limit.store().forget(&key));
    let new = check(&limit, "192.0.2.1").unwrap();
    drop(old);
    assert_eq!(limit.store().connections(&key), 1);
    assert!(
        check(&limit, "192.0.2.1").is_err(),
        "the new connection still counts"
    );
    drop(new);
    assert_eq!(limit.store().connections(&key), 0);
}

fn sprayed_ip(i: u32) -> Key {
    // Spread over IPv4 and IPv6, as a botnet's addresses are.
    if i.is_multiple_of(2) {
        Key::from(IpAddr::from(std::net::Ipv4Addr::from(
            i.wrapping_mul(2_654_435_761),
        )))
    } else {
        Key::from(IpAddr::from(std::net::Ipv6Addr::from(
            u128::from(i) << 64 | 1,
        )))
    }
}

#[test]
fn a_million_sprayed_keys_stay_within_max_keys() {
    let limits = Limits {
        max_concurrent: Some(5),
        rate: Some(Rate::new(10, Duration::from_secs(3600))),
    };
    for when_full in [WhenFull::EvictOldest, WhenFull::RefuseNewKeys] {
        let store = LocalStore::new(10_000, when_full);
        let mut slots = Vec::new();
        let (mut admitted, mut peak) = (0, 0);
        for i in 0..1_000_000u32 {
            let key = sprayed_ip(i);
            let now = Duration::from_millis(u64::from(i));
            if let Admission::Admitted(Some(slot)) =
                store.acquire(&key, now, &limits).into_inner().unwrap()
            {
                admitted += 1;
                // Most sprayed connections close at once and leave rate history; one in a
                // thousand stays open.
                if i % 1000 == 0 {
                    slots.push((key, slot));
                } else {
                    store.release(&key, slot);
                }
            }
            if i % 10_000 == 0 {
                peak = peak.max(store.len());
            }
        }
        let len = store.len();
        assert!(
            len <= 10_000 && peak <= 10_000,
            "{when_full:?}: {len} keys, peak {peak}"
        );
        let per_key = store.table_bytes() / len;
        eprintln!("{when_full:?}: {admitted} admitted, {len} keys, {per_key} table bytes per key");
        assert!(
            store.table_bytes() <= 10_000 * 49 * 26 / 10,
            "{}",
            store.table_bytes()
        );
        match when_full {
            WhenFull::EvictOldest => assert!(admitted > 990_000, "{admitted}"),
            // New keys get in only as old keys' rate history (360 s) runs out.
            WhenFull::RefuseNewKeys => assert!(admitted < 40_000, "{admitted}"),
        }
        for (key, slot) in slots {
            store.release(&key, slot);
        }
        // Every open slot came back; after the rate history expires nothing is left.
        store.sweep(Duration::from_secs(1_000_000));
        assert!(store.is_empty());
    }
}

#[test]
fn threads_keep_counts_exact() {
    const THREADS: usize = 8;
    const ROUNDS: usize = 20_000;
    const MAX: u32 = 3;
    let limit = concurrent(MAX);
    let ips: Vec<String> = (0..16).map(|i| format!("198.51.100.{i}")).collect();
    // Per key, how many permits are held right now, by the test's own count.
    let held: Arc<Vec<AtomicU64>> = Arc::new((0..16).map(|_| AtomicU64::new(0)).collect());
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (limit, ips, held) = (limit.clone(), ips.clone(), held.clone());
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                for round in 0..ROUNDS {
                    let k = (t * 7 + round * 13) % 16;
                    if let Ok(permit) = check(&limit, &ips[k]) {
                        let now = held[k].fetch_add(1, Ordering::SeqCst) + 1;
                        assert!(now <= u64::from(MAX), "over-admitted: {now}");
                        mine.push((k, permit));
                    }
                    // Hold a few, release in a scattered order.
                    if mine.len() > 2 || round % 5 == 0 {
                        let i = round % mine.len().max(1);
                        if i < mine.len() {
                            let (k, permit) = mine.swap_remove(i);
                            held[k].fetch_sub(1, Ordering::SeqCst);
                            drop(permit);
                        }
                    }
                }
                for (k, permit) in mine {
                    held[k].fetch_sub(1, Ordering::SeqCst);
                    drop(permit);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    for ip in &ips {
        assert_eq!(limit.store().connections(&ip_key(ip)), 0);
    }
    assert!(
        limit.store().is_empty(),
        "every entry went with its last connection"
    );
}

#[test]
fn an_any_store_answers_as_the_local_store_inside() {
    let config = RateLimitConfig {
        max_concurrent: Some(1),
        ..RateLimitConfig::default()
    };
    let store = AnyStore::local(&config);
    let limit = RateLimit::with_store(config, store);
    let session = || session("192.0.2.1");
    let held = limit
        .check_now(&session())
        .expect("decided on the spot")
        .unwrap();
    assert!(check(&limit, "192.0.2.1").is_err());
    // The peek before a TLS handshake passes through too.
    assert!(limit.refuses_now(&session()).is_some());
    drop(held);
    assert!(limit.refuses_now(&session()).is_none());
    assert!(check(&limit, "192.0.2.1").is_ok());
    assert!(matches!(limit.store(), AnyStore::Local(local) if local.is_empty()));
    // Nothing to send anywhere.
    assert!(limit.store().flush().now_or_never().unwrap().is_ok());
    assert!(limit.store().ping().now_or_never().unwrap().is_ok());
}

/// A store that is down, or that never answers.
struct Broken<F>(fn() -> F);

impl<F> RateLimitStore for Broken<F>
where
    F: std::future::Future<Output = Result<Admission, StoreError>> + Send + 'static,
{
    type Future = F;
    fn acquire(&self, _: &Key, _: Duration, _: &Limits) -> F {
        (self.0)()
    }
    fn release(&self, _: &Key, _: Slot) {
        unreachable!("nothing was counted");
    }
}

fn down() -> Ready<Result<Admission, StoreError>> {
    ready(Err(StoreError::new("connection refused")))
}

fn stuck() -> Pending<Result<Admission, StoreError>> {
    pending()
}

fn broken_config(fail_open: bool) -> RateLimitConfig {
    RateLimitConfig {
        fail_open,
        store_timeout: Duration::from_millis(20),
        ..RateLimitConfig::default()
    }
}

#[test]
fn a_failing_store_fails_open_or_closed() {
    let open = RateLimit::with_store(broken_config(true), Broken(down));
    assert!(check(&open, "192.0.2.1").unwrap().key().is_none());
    let closed = RateLimit::with_store(broken_config(false), Broken(down));
    let refusal = check(&closed, "192.0.2.1").unwrap_err();
    assert_eq!(refusal.message(), tower_mail::GENERIC_MESSAGE);
    assert_eq!(refusal.layer(), "rate_limit");
}

/// A store that answers only through its future is asked straight away: the layer's
/// on-the-spot attempt does not work out the key first, so a key function runs once per
/// connection.
#[test]
fn a_key_function_runs_once_per_connection_with_a_store_that_must_be_asked() {
    let calls = Arc::new(AtomicU64::new(0));
    let counted = calls.clone();
    let limit = RateLimit::with_store(
        RateLimitConfig {
            key: RateLimitKey::custom(move |s: &Session| {
                counted.fetch_add(1, Ordering::SeqCst);
                Some(Key::from(s.remote_addr().ip()))
            }),
            ..broken_config(true)
        },
        Broken(down),
    );
    let session = session("192.0.2.1");
    assert!(limit.check_now(&session).is_none());
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert!(limit.check(&session).now_or_never().unwrap().is_ok());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

// On a paused clock: the store's 20 ms pass at once.
#[tokio::test(start_paused = true)]
async fn a_store_that_does_not_answer_in_time_fails_open_or_closed() {
    let open = RateLimit::with_store(broken_config(true), Broken(stuck));
    assert!(open.check(&session("192.0.2.1")).await.is_ok());
    let closed = RateLimit::with_store(broken_config(false), Broken(stuck));
    assert!(closed.check(&session("192.0.2.1")).await.is_err());
}

mod stack {
    use tower::{ServiceBuilder, ServiceExt};
    use tower_mail::{BoxError, CloseReason, CloseReport, Connection, Transport};

    use super::*;

    fn connection(ip: &str) -> Connection {
        let (client, server) = tokio::io::duplex(64);
        // The client end is not needed: the test services never read.
        drop(client);
        Connection::from_parts(session(ip), Transport::new(server))
    }

    // On a paused clock: the 10 ms given to the session that never ends pass at once.
    #[tokio::test(start_paused = true)]
    async fn the_permit_lives_as_long_as_the_session_on_every_path() {
        let limit = concurrent(1);
        let key = ip_key("192.0.2.1");
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let released = Arc::new(tokio::sync::Mutex::new(Some(released)));
        let service = tower::service_fn(move |c: Connection| {
            let released = released.clone();
            async move {
                let wait = released.lock().await.take();
                match wait {
                    // The first session runs until told to end.
                    Some(rx) => drop(rx.await),
                    // The next one panics mid-session.
                    None => panic!("handler bug"),
                }
                Ok::<_, BoxError>(CloseReport::new(c.session(), CloseReason::Logout))
            }
        });
        let stack = ServiceBuilder::new()
            .layer(RateLimitLayer::from_policy(limit.clone()))
            .service(service);

        let running = tokio::spawn(stack.clone().oneshot(connection("192.0.2.1")));
        tokio::task::yield_now().await;
        assert_eq!(limit.store().connections(&key), 1);
        let refused = stack
            .clone()
            .oneshot(connection("192.0.2.1"))
            .await
            .unwrap_err();
        assert_eq!(tower_mail::refusal(&refused).layer(), "rate_limit");
        release.send(()).unwrap();
        running.await.unwrap().unwrap();
        assert_eq!(limit.store().connections(&key), 0, "logout");

        let panicked = tokio::spawn(stack.clone().oneshot(connection("192.0.2.1"))).await;
        assert!(panicked.unwrap_err().is_panic());
        assert_eq!(limit.store().connections(&key), 0, "panic");

        // A later layer's refusal, and a future dropped before it finished.
        let refusing = ServiceBuilder::new()
            .layer(RateLimitLayer::from_policy(limit.clone()))
            .service(tower::service_fn(|_: Connection| async {
                Err::<CloseReport, BoxError>(Box::new(Reject::new("no")))
            }));
        assert!(refusing.oneshot(connection("192.0.2.1")).await.is_err());
        assert_eq!(limit.store().connections(&key), 0, "refused later");
        let forever = ServiceBuilder::new()
            .layer(RateLimitLayer::from_policy(limit.clone()))
            .service(tower::service_fn(|_: Connection| {
                pending::<Result<CloseReport, BoxError>>()
            }));
        let cut = tokio::time::timeout(
            Duration::from_millis(10),
            forever.oneshot(connection("192.0.2.1")),
        );
        assert!(cut.await.is_err());
        assert_eq!(limit.store().connections(&key), 0, "dropped");
        assert!(limit.store().is_empty());
    }
}

/// Before an implicit-TLS handshake the limit only peeks ([`AddressPolicy::refuses_now`]): it
/// refuses what the check would refuse, and counts nothing.
mod before_handshake {
    use tower_mail::server::AddressCheck;

    use super::*;
    use crate::policy::{AddressPolicy, BeforeHandshake, Swappable};

    fn peek<P: AddressPolicy>(policy: &P, ip: &str) -> Option<Reject> {
        policy.refuses_now(&session(ip))
    }

    #[test]
    fn the_peek_refuses_at_the_cap_without_counting_and_lets_through_after_a_release() {
        let limit = concurrent(2);
        let key = ip_key("192.0.2.1");
        let before = BeforeHandshake::new(limit.clone());
        assert!(before.check(&session("192.0.2.1")).is_ok());
        assert!(limit.store().is_empty(), "a peek makes no entry");
        let a = check(&limit, "192.0.2.1").unwrap();
        let _b = check(&limit, "192.0.2.1").unwrap();
        let refusal = before.check(&session("192.0.2.1")).unwrap_err();
        assert_eq!(refusal.message(), "Too many connections from this IP");
        assert_eq!(refusal.layer(), "rate_limit");
        assert_eq!(limit.store().connections(&key), 2);
        // Another address has its own budget.
        assert!(before.check(&session("192.0.2.2")).is_ok());
        drop(a);
        assert!(before.check(&session("192.0.2.1")).is_ok());
        assert_eq!(limit.store().connections(&key), 1);
        // The peek took nothing: the real check still has the freed slot.
        let _c = check(&limit, "192.0.2.1").unwrap();
        assert!(check(&limit, "192.0.2.1").is_err());
    }

    #[test]
    fn peeks_never_count() {
        let (millis, clock) = manual_clock();
        let limit = RateLimit::new(RateLimitConfig {
            max_concurrent: Some(3),
            max_per_window: Some(5),
            window: Duration::from_secs(60),
            ..RateLimitConfig::default()
        })
        .with_clock(clock);
        let peeks = |n| {
            (0..n)
                .filter(|_| peek(&limit, "192.0.2.1").is_some())
                .count()
        };
        assert_eq!(peeks(100), 0);
        assert!(limit.store().is_empty());
        // The checks after 100 peeks admit exactly `max_concurrent`...
        let mut open: Vec<_> = (0..10)
            .filter_map(|_| check(&limit, "192.0.2.1").ok())
            .collect();
        assert_eq!(open.len(), 3);
        assert_eq!(peeks(100), 100);
        assert_eq!(limit.store().connections(&ip_key("192.0.2.1")), 3);
        // ... and, with the slots back, what is left of the rate: 5 in all, not fewer.
        open.clear();
        assert_eq!(peeks(100), 0);
        let more = (0..10)
            .filter(|_| check(&limit, "192.0.2.1").is_ok())
            .count();
        assert_eq!(more, 2);
        assert_eq!(peeks(100), 100, "the rate is used up");
        // One interval (12 s) later, room for exactly one more: the peeks moved nothing.
        millis.fetch_add(12_000, Ordering::SeqCst);
        assert_eq!(peeks(100), 0);
        assert!(check(&limit, "192.0.2.1").is_ok());
        assert!(check(&limit, "192.0.2.1").is_err());
        assert!(peek(&limit, "192.0.2.1").is_some());
    }

    #[test]
    fn the_peek_refuses_a_used_up_rate_as_the_check_would() {
        let (millis, clock) = manual_clock();
        let limit = RateLimit::new(RateLimitConfig {
            max_concurrent: None,
            max_per_window: Some(2),
            window: Duration::from_secs(10),
            message: "Slow down".into(),
            ..RateLimitConfig::default()
        })
        .with_clock(clock);
        assert!(check(&limit, "192.0.2.1").is_ok());
        assert!(peek(&limit, "192.0.2.1").is_none());
        assert!(check(&limit, "192.0.2.1").is_ok());
        assert_eq!(peek(&limit, "192.0.2.1").unwrap().message(), "Slow down");
        millis.fetch_add(4_999, Ordering::SeqCst);
        assert!(peek(&limit, "192.0.2.1").is_some());
        millis.fetch_add(1, Ordering::SeqCst);
        assert!(peek(&limit, "192.0.2.1").is_none());
        assert!(check(&limit, "192.0.2.1").is_ok());
        assert!(peek(&limit, "192.0.2.1").is_some());
    }

    #[test]
    fn the_store_peek_gives_the_refusal_acquire_would() {
        let store = LocalStore::new(100, WhenFull::RefuseNewKeys);
        let limits = Limits {
            max_concurrent: Some(1),
            rate: Some(Rate::new(2, Duration::from_secs(60))),
        };
        let (key, now) = (ip_key("192.0.2.1"), Duration::from_secs(100));
        let acquire = || store.acquire(&key, now, &limits).into_inner().unwrap();
        assert_eq!(store.peek(&key, now, &limits), None);
        let Admission::Admitted(Some(slot)) = acquire() else {
            panic!("admitted")
        };
        assert_eq!(store.peek(&key, now, &limits), Some(Refusal::Concurrency));
        store.release(&key, slot);
        let Admission::Admitted(Some(slot)) = acquire() else {
            panic!("admitted")
        };
        store.release(&key, slot);
        let Admission::Refused(refusal) = acquire() else {
            panic!("refused")
        };
        assert_eq!(store.peek(&key, now, &limits), Some(refusal));
        assert!(matches!(refusal, Refusal::Rate { .. }));
        // A limit of 0 refuses a key never seen, and the peek makes no entry for it.
        let none = Limits {
            max_concurrent: Some(0),
            rate: None,
        };
        assert_eq!(
            store.peek(&ip_key("192.0.2.9"), now, &none),
            Some(Refusal::Concurrency)
        );
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn prefix_keys_are_peeked_by_network() {
        let limit = RateLimit::new(RateLimitConfig {
            key: RateLimitKey::Prefix { v4: 24, v6: 64 },
            max_concurrent: Some(1),
            ..RateLimitConfig::default()
        });
        let _held = check(&limit, "10.0.0.1").unwrap();
        assert!(peek(&limit, "10.0.0.200").is_some());
        assert!(peek(&limit, "10.0.1.1").is_none());
    }

    #[test]
    fn custom_keys_and_stores_that_cannot_tell_let_everybody_through() {
        // The key function could read what the handshake brings: not asked before it.
        let calls = Arc::new(AtomicU64::new(0));
        let counted = calls.clone();
        let custom = RateLimit::new(RateLimitConfig {
            key: RateLimitKey::custom(move |s: &Session| {
                counted.fetch_add(1, Ordering::SeqCst);
                Some(Key::from(s.remote_addr().ip()))
            }),
            max_concurrent: Some(0),
            ..RateLimitConfig::default()
        });
        assert!(peek(&custom, "192.0.2.1").is_none());
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        assert!(check(&custom, "192.0.2.1").is_err());
        // A store without a peek (a networked one) cannot tell on the spot.
        let remote = RateLimit::with_store(
            RateLimitConfig {
                max_concurrent: Some(0),
                ..broken_config(false)
            },
            Broken(down),
        );
        assert!(peek(&remote, "192.0.2.1").is_none());
        // Unlimited: nothing to look at.
        let unlimited = RateLimit::new(RateLimitConfig {
            max_concurrent: None,
            ..RateLimitConfig::default()
        });
        assert!(peek(&unlimited, "192.0.2.1").is_none());
    }

    #[test]
    fn a_swappable_limit_peeks_through_to_the_one_in_force() {
        let swappable = Swappable::new(concurrent(1));
        let before = BeforeHandshake::new(swappable.clone());
        let held = swappable.check_now(&session("192.0.2.1")).unwrap().unwrap();
        assert!(before.check(&session("192.0.2.1")).is_err());
        assert_eq!(
            swappable
                .current()
                .store()
                .connections(&ip_key("192.0.2.1")),
            1
        );
        drop(held);
        assert!(before.check(&session("192.0.2.1")).is_ok());
        assert!(swappable.current().store().is_empty());
    }
}
