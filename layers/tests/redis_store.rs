//! `RedisStore` against a real `redis-server` (started per test on a free loopback port, see
//! `support_redis`): limits shared by two stores as two servers would share them, the rate
//! window, refusals that spend nothing, leases, key expiry, Redis failures and `fail_open`.
//!
//! ```text
//! cargo test -p tower-mail-layers --features redis --test redis_store
//! ```

mod support_redis;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support_redis::{RedisServer, nowhere_url};
use tower_mail::{GENERIC_MESSAGE, Protocol, Reject, Session};
use tower_mail_layers::policy::Policy;
use tower_mail_layers::rate_limit::{
    Admission, AnyStore, Key, Limits, Rate, RateLimit, RateLimitConfig, RateLimitKey,
    RateLimitPermit, RateLimitStore, RedisStore, Refusal,
};

/// Bound for what must happen "soon" (an asynchronous release landing): a liveness bound, not
/// a timing claim.
const SOON: Duration = Duration::from_secs(10);

const MESSAGE: &str = "Too many connections from this IP";

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

/// A store on `redis`: each call is another "server", with an instance id of its own.
fn store(redis: &RedisServer) -> RedisStore {
    RedisStore::builder(redis.url()).build().expect("store")
}

/// A limit with `config` on a store of its own on `redis`.
fn server(redis: &RedisServer, config: RateLimitConfig) -> RateLimit<RedisStore> {
    RateLimit::with_store(config, store(redis))
}

fn concurrent(max: u32) -> RateLimitConfig {
    RateLimitConfig {
        max_concurrent: Some(max),
        ..RateLimitConfig::default()
    }
}

async fn check(
    limit: &RateLimit<RedisStore>,
    ip: &str,
) -> Result<RateLimitPermit<RedisStore>, Reject> {
    limit.check(&session(ip)).await
}

#[track_caller]
fn assert_refused(verdict: Result<RateLimitPermit<RedisStore>, Reject>, message: &str) {
    match verdict {
        Ok(permit) => panic!("admitted: {permit:?}"),
        Err(refusal) => {
            assert_eq!(refusal.message(), message);
            assert_eq!(refusal.layer(), "rate_limit");
        }
    }
}

/// Check until admitted, for at most `bound`; panics with `what` if never.
async fn admitted_within(
    bound: Duration,
    what: &str,
    mut attempt: impl AsyncFnMut() -> Result<RateLimitPermit<RedisStore>, Reject>,
) -> RateLimitPermit<RedisStore> {
    let deadline = Instant::now() + bound;
    loop {
        if let Ok(permit) = attempt().await {
            return permit;
        }
        assert!(Instant::now() < deadline, "{what} within {bound:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Wait until `done` holds, for at most `bound`.
async fn eventually(bound: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + bound;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {bound:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn acquire(store: &RedisStore, key: &Key, limits: &Limits) -> Admission {
    store
        .acquire(key, Duration::ZERO, limits)
        .await
        .expect("redis answers")
}

#[tokio::test]
async fn open_connections_are_counted_across_two_servers() {
    let redis = RedisServer::start();
    let a = server(&redis, concurrent(3));
    let b = server(&redis, concurrent(3));
    let ip = "192.0.2.1";

    let first = check(&a, ip).await.expect("first on A");
    let _second = check(&a, ip).await.expect("second on A");
    let _third = check(&b, ip).await.expect("third, on B");
    // The fourth is refused on both servers: each sees the other's connections.
    assert_refused(check(&b, ip).await, MESSAGE);
    assert_refused(check(&a, ip).await, MESSAGE);
    // Another address has its own count.
    let _other = check(&b, "192.0.2.2").await.expect("another address");
    assert_eq!(redis.int(&["ZCARD", &a.store().set_key(&ip_key(ip))]), 3);

    // A connection on A ends: B may admit one more once the release has landed.
    drop(first);
    let fourth = admitted_within(SOON, "B admits after A's release", async || {
        check(&b, ip).await
    })
    .await;
    assert!(fourth.key().is_some(), "counted");
    assert_refused(check(&a, ip).await, MESSAGE);
    assert_refused(check(&b, ip).await, MESSAGE);
}

#[tokio::test]
async fn an_any_store_counts_in_redis_with_the_other_servers() {
    let redis = RedisServer::start();
    let a = RateLimit::with_store(concurrent(1), AnyStore::redis(redis.url()).unwrap());
    let b = server(&redis, concurrent(1));
    let ip = "192.0.2.30";
    a.store().ping().await.expect("redis answers");
    let permit = a.check(&session(ip)).await.expect("admitted on A");
    assert!(permit.key().is_some(), "counted");
    assert_refused(check(&b, ip).await, MESSAGE);
    drop(permit);
    a.store().flush().await.expect("release sent");
    let _permit = check(&b, ip)
        .await
        .expect("B admits once A's release is sent");
}

#[tokio::test]
async fn the_rate_window_refuses_then_recovers_on_redis_clock() {
    let redis = RedisServer::start();
    let config = RateLimitConfig {
        max_concurrent: None,
        max_per_window: Some(3),
        window: Duration::from_secs(3),
        ..RateLimitConfig::default()
    };
    let a = server(&redis, config.clone());
    let b = server(&redis, config.clone());
    let ip = "192.0.2.9";

    // A burst of three shared between the servers: nothing to release, so no slot.
    for limit in [&a, &b, &a] {
        let permit = check(limit, ip).await.expect("within the burst");
        assert!(permit.key().is_none(), "a rate alone counts no slot");
    }
    assert_refused(check(&b, ip).await, MESSAGE);
    assert_refused(check(&a, ip).await, MESSAGE);

    // The store says when: one interval (1 s) at most.
    let limits = config.limits();
    let Admission::Refused(Refusal::Rate { retry_after }) =
        acquire(a.store(), &ip_key(ip), &limits).await
    else {
        panic!("not a rate refusal");
    };
    assert!(
        retry_after > Duration::ZERO && retry_after <= Duration::from_secs(1),
        "{retry_after:?}"
    );

    // One more fits after an interval; then refused again.
    let _one = admitted_within(SOON, "one more after an interval", async || {
        check(&b, ip).await
    })
    .await;
    assert_refused(check(&a, ip).await, MESSAGE);

    // Quiet for a whole window: the whole burst is back once the TAT has run out, which its
    // expiry on Redis' clock marks.
    let tat = a.store().tat_key(&ip_key(ip));
    eventually(SOON, "the rate history to run out", || {
        redis.int(&["EXISTS", &tat]) == 0
    })
    .await;
    for limit in [&b, &a, &b] {
        drop(check(limit, ip).await.expect("a new burst"));
    }
    assert_refused(check(&a, ip).await, MESSAGE);
}

#[tokio::test]
async fn a_refusal_spends_nothing() {
    let redis = RedisServer::start();
    let store = store(&redis);
    let key = ip_key("192.0.2.10");
    let (set, tat) = (store.set_key(&key), store.tat_key(&key));
    let limits = Limits {
        max_concurrent: Some(1),
        rate: Some(Rate::new(2, Duration::from_secs(60))),
    };

    let Admission::Admitted(Some(slot)) = acquire(&store, &key, &limits).await else {
        panic!("first admitted with a slot");
    };
    let tat_after_first = redis.bulk(&["GET", &tat]).expect("a TAT");
    // Refused for concurrency, many times: no member added, the TAT untouched.
    for _ in 0..5 {
        assert_eq!(
            acquire(&store, &key, &limits).await,
            Admission::Refused(Refusal::Concurrency)
        );
    }
    assert_eq!(redis.int(&["ZCARD", &set]), 1);
    assert_eq!(redis.bulk(&["GET", &tat]), Some(tat_after_first));

    // Free the slot; spend the second of two in the window; then rate refusals.
    store.release(&key, slot);
    store.flush().await.expect("release sent");
    assert_eq!(redis.int(&["EXISTS", &set]), 0, "the empty set is gone");
    let Admission::Admitted(Some(second)) = acquire(&store, &key, &limits).await else {
        panic!("second admitted");
    };
    store.release(&key, second);
    store.flush().await.expect("release sent");
    let tat_after_second = redis.bulk(&["GET", &tat]).expect("a TAT");
    for _ in 0..5 {
        assert!(matches!(
            acquire(&store, &key, &limits).await,
            Admission::Refused(Refusal::Rate { .. })
        ));
    }
    assert_eq!(redis.bulk(&["GET", &tat]), Some(tat_after_second));
    assert_eq!(
        redis.int(&["EXISTS", &set]),
        0,
        "no member for a rate refusal"
    );
}

#[tokio::test]
async fn keys_expire_by_themselves() {
    let redis = RedisServer::start();
    let store = RedisStore::builder(redis.url())
        .lease(Duration::from_secs(30))
        .build()
        .unwrap();
    let key = Key::from("user:alice");
    let (set, tat) = (store.set_key(&key), store.tat_key(&key));
    assert_eq!(set, "tower-mail:rl:conn:{user:alice}");
    let limits = Limits {
        max_concurrent: Some(5),
        rate: Some(Rate::new(10, Duration::from_secs(60))),
    };
    let Admission::Admitted(Some(slot)) = acquire(&store, &key, &limits).await else {
        panic!("admitted");
    };
    // The set lives as long as its lease, the TAT as long as it is ahead of the clock: one
    // interval of 6 s after one connection.
    let set_ttl = redis.int(&["PTTL", &set]);
    assert!(set_ttl > 25_000 && set_ttl <= 30_000, "set PTTL {set_ttl}");
    let tat_ttl = redis.int(&["PTTL", &tat]);
    assert!(tat_ttl > 1_000 && tat_ttl <= 6_000, "TAT PTTL {tat_ttl}");
    // The member's score is its lease deadline on Redis' clock, in microseconds.
    let Some(score) = redis.bulk(&["ZSCORE", &set, &store.member(slot)]) else {
        panic!("member {} not in {set}", store.member(slot));
    };
    let deadline: f64 = score.parse().unwrap();
    let support_redis::Reply::Array(time) = redis.cmd(&["TIME"]) else {
        panic!("TIME");
    };
    let seconds = match &time[0] {
        support_redis::Reply::Bulk(Some(s)) => s.parse::<f64>().unwrap(),
        other => panic!("TIME: {other:?}"),
    };
    let ahead = deadline / 1e6 - seconds;
    assert!(
        ahead > 25.0 && ahead <= 31.0,
        "lease deadline {ahead} s ahead"
    );

    store.release(&key, slot);
    store.flush().await.unwrap();
    assert_eq!(redis.int(&["EXISTS", &set]), 0);
}

#[tokio::test]
async fn a_crashed_servers_connections_stop_counting_when_their_leases_run_out() {
    let redis = RedisServer::start();
    let limits = Limits {
        max_concurrent: Some(2),
        rate: None,
    };
    let key = ip_key("192.0.2.20");
    // "Server A" counts two connections, then vanishes without releasing them.
    let crashed = RedisStore::builder(redis.url())
        .lease(Duration::from_millis(1500))
        .build()
        .unwrap();
    for _ in 0..2 {
        assert!(matches!(
            acquire(&crashed, &key, &limits).await,
            Admission::Admitted(Some(_))
        ));
    }
    drop(crashed);

    let survivor = store(&redis);
    let started = Instant::now();
    assert_eq!(
        acquire(&survivor, &key, &limits).await,
        Admission::Refused(Refusal::Concurrency),
        "A's connections still count until their leases run out"
    );
    let deadline = Instant::now() + SOON;
    loop {
        if let Admission::Admitted(Some(_)) = acquire(&survivor, &key, &limits).await {
            break;
        }
        assert!(Instant::now() < deadline, "A's slots never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Not before the lease (with a margin for clocks: Redis' and ours).
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "{:?}",
        started.elapsed()
    );
}

/// The lease deadline (µs on Redis' clock) of the one member of `set`.
fn lease_deadline(redis: &RedisServer, set: &str) -> f64 {
    match redis.cmd(&["ZRANGE", set, "0", "0", "WITHSCORES"]) {
        support_redis::Reply::Array(reply) => match reply.as_slice() {
            [_, support_redis::Reply::Bulk(Some(score))] => score.parse().unwrap(),
            other => panic!("not one member in {set}: {other:?}"),
        },
        other => panic!("ZRANGE {set}: {other:?}"),
    }
}

#[tokio::test]
async fn a_live_server_renews_its_leases() {
    let redis = RedisServer::start();
    // Renewed every 500 ms. The test waits for each renewal to land rather than for a time to
    // pass: only a machine stalled for a whole lease right after a renewal could fail it.
    let short = RedisStore::builder(redis.url())
        .lease(Duration::from_millis(1500))
        .build()
        .unwrap();
    let set = short.set_key(&ip_key("192.0.2.21"));
    let a = RateLimit::with_store(concurrent(1), short);
    let b = server(&redis, concurrent(1));
    let ip = "192.0.2.21";
    let permit = check(&a, ip).await.expect("admitted on A");
    let first = lease_deadline(&redis, &set);
    let mut deadline = first;
    // Several leases long: renewals keep the open connection counted.
    for _ in 0..4 {
        for _ in 0..2 {
            let before = deadline;
            eventually(SOON, "a renewal", || {
                deadline = lease_deadline(&redis, &set);
                deadline > before
            })
            .await;
        }
        assert_refused(check(&b, ip).await, MESSAGE);
    }
    assert!(
        deadline - first >= 2.0 * 1_500_000.0,
        "renewed over {} µs, two leases at least",
        deadline - first
    );
    drop(permit);
    let _permit = admitted_within(SOON, "B admits after A's release", async || {
        check(&b, ip).await
    })
    .await;
}

#[tokio::test]
async fn redis_unreachable_at_start_fails_open_or_closed_as_configured() {
    // A port with nobody listening: the server still starts (lazy connection).
    let url = nowhere_url();
    let open = RateLimit::with_store(
        RateLimitConfig {
            fail_open: true,
            ..concurrent(1)
        },
        RedisStore::builder(&url).build().expect("lazy store"),
    );
    let closed = RateLimit::with_store(
        RateLimitConfig {
            fail_open: false,
            ..concurrent(1)
        },
        RedisStore::builder(&url).build().expect("lazy store"),
    );
    for _ in 0..3 {
        let started = Instant::now();
        let permit = check(&open, "192.0.2.30").await.expect("fail_open lets in");
        assert!(permit.key().is_none(), "uncounted");
        assert_refused(check(&closed, "192.0.2.30").await, GENERIC_MESSAGE);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
    assert!(
        RedisStore::connect(&url).await.is_err(),
        "connect waits for a PING"
    );
}

#[tokio::test]
async fn redis_killed_mid_run_fails_open_or_closed_then_recovers() {
    let mut redis = RedisServer::start();
    let port = redis.port();
    let open = server(
        &redis,
        RateLimitConfig {
            fail_open: true,
            ..concurrent(1)
        },
    );
    let closed = server(
        &redis,
        RateLimitConfig {
            fail_open: false,
            ..concurrent(1)
        },
    );
    let counted = check(&open, "192.0.2.40").await.expect("admitted");
    assert!(counted.key().is_some());
    let _also = check(&closed, "192.0.2.41").await.expect("admitted");

    redis.kill();
    for _ in 0..3 {
        let permit = check(&open, "192.0.2.40").await.expect("fail_open lets in");
        assert!(permit.key().is_none(), "uncounted");
        assert_refused(check(&closed, "192.0.2.42").await, GENERIC_MESSAGE);
    }
    // Releasing while Redis is down must not block or panic.
    drop(counted);

    // Redis is back (empty): the stores reconnect by themselves.
    let redis = RedisServer::start_on(port).expect("restart on the same port");
    let permit = admitted_within(SOON, "counted again after the restart", async || {
        check(&closed, "192.0.2.42").await
    })
    .await;
    assert!(permit.key().is_some(), "counted");
    assert_eq!(
        redis.int(&["ZCARD", &closed.store().set_key(&ip_key("192.0.2.42"))]),
        1
    );
}

#[tokio::test]
async fn an_acquire_given_up_by_the_layer_gives_its_slot_back() {
    let redis = RedisServer::start();
    let limit = server(
        &redis,
        RateLimitConfig {
            store_timeout: Duration::from_millis(200),
            fail_open: true,
            // The rate only to see that the script ran: it writes the TAT when it admits, and
            // at 2 per hour the TAT outlives the test, so it cannot expire before it is seen.
            max_per_window: Some(2),
            window: Duration::from_secs(3600),
            ..concurrent(5)
        },
    );
    let ip = "192.0.2.50";
    let (set, tat) = (
        limit.store().set_key(&ip_key(ip)),
        limit.store().tat_key(&ip_key(ip)),
    );
    // Redis has the script (loaded on the first NOSCRIPT), so the next call is one EVALSHA.
    drop(check(&limit, "192.0.2.51").await.expect("warm-up"));

    // Redis hangs: the check gives up after store_timeout and lets the client in uncounted,
    // dropping the acquire whose script Redis has not run yet.
    redis.signal("STOP");
    let permit = check(&limit, ip).await.expect("fail_open");
    assert!(permit.key().is_none());
    redis.signal("CONT");
    // The script runs when Redis wakes (and counts the connection), then the release that
    // the dropped acquire queued removes its member.
    eventually(SOON, "the given-up script ran", || {
        redis.int(&["EXISTS", &tat]) == 1
    })
    .await;
    eventually(SOON, "the given-up member removed", || {
        redis.int(&["EXISTS", &set]) == 0
    })
    .await;
}

/// While Redis hangs (SIGSTOP), a check that waited for it opens the circuit breaker: the
/// following checks are answered at once, without waiting for the connect or response timeout
/// (5 s here), and `fail_open` lets them in. Once Redis is back and the cool-down has passed,
/// a probe closes the breaker and checks count again.
#[tokio::test]
async fn a_hung_redis_opens_the_breaker_so_checks_stop_waiting() {
    // Far below the store's 5 s timeouts, far above what an answer without Redis takes.
    const FAST: Duration = Duration::from_secs(1);
    let retry_after = Duration::from_secs(4);
    let redis = RedisServer::start();
    let store = RedisStore::builder(redis.url())
        .connect_timeout(Duration::from_secs(5))
        .response_timeout(Duration::from_secs(5))
        .retry_after(retry_after)
        .build()
        .unwrap();
    let config = RateLimitConfig {
        store_timeout: Duration::from_millis(300),
        fail_open: true,
        ..concurrent(5)
    };
    let limit = RateLimit::with_store(config.clone(), store);
    let ip = "192.0.2.70";
    let set = limit.store().set_key(&ip_key(ip));
    drop(check(&limit, "192.0.2.71").await.expect("warm-up"));

    redis.signal("STOP");
    // The first check waits for Redis until the layer's store_timeout, and gives up: that
    // opens the breaker.
    let permit = check(&limit, ip).await.expect("fail_open");
    assert!(permit.key().is_none(), "uncounted");
    let opened = Instant::now();
    // From now on the layer would wait 30 s for the store: only the breaker answers fast.
    limit.reconfigure(RateLimitConfig {
        store_timeout: Duration::from_secs(30),
        ..config
    });
    let limits = limit.limits();
    let mut fast_checks = 0;
    for _ in 0..5 {
        // Only while the cool-down surely lasts, so that a stalled machine cannot make a probe
        // of these checks (which would wait for the hung Redis).
        if opened.elapsed() + FAST >= retry_after {
            break;
        }
        let permit = tokio::time::timeout(FAST, check(&limit, ip))
            .await
            .expect("a check during the cool-down answers at once")
            .expect("fail_open");
        assert!(permit.key().is_none(), "uncounted");
        let answer = tokio::time::timeout(
            FAST,
            limit.store().acquire(&ip_key(ip), Duration::ZERO, &limits),
        )
        .await
        .expect("the store answers at once");
        let err = answer.expect_err("a store error while the breaker is open");
        assert!(err.to_string().contains("circuit breaker"), "{err}");
        fast_checks += 1;
    }
    assert!(
        fast_checks > 0 || opened.elapsed() >= retry_after - FAST,
        "no check was made during the cool-down"
    );

    redis.signal("CONT");
    // Redis answers again, but the breaker waits out its cool-down before asking it.
    if opened.elapsed() + FAST < retry_after {
        let permit = tokio::time::timeout(FAST, check(&limit, ip))
            .await
            .expect("still answered at once")
            .expect("fail_open");
        assert!(
            permit.key().is_none(),
            "not counted before the cool-down ends"
        );
    }
    // Then one probe goes to Redis, its answer closes the breaker, and checks count again.
    let counted = admitted_within(SOON + retry_after, "counted again", async || {
        match check(&limit, ip).await {
            Ok(permit) if permit.key().is_some() => Ok(permit),
            Ok(_) => Err(tower_mail::Reject::new("uncounted")),
            Err(refusal) => Err(refusal),
        }
    })
    .await;
    assert!(
        opened.elapsed() >= retry_after,
        "counted after {:?}, before the cool-down ended",
        opened.elapsed()
    );
    assert_eq!(redis.int(&["ZCARD", &set]), 1);
    let _second = check(&limit, ip).await.expect("admitted");
    assert_eq!(redis.int(&["ZCARD", &set]), 2, "every check counts again");
    drop(counted);
}

#[tokio::test]
async fn prefix_keys_are_shared_by_every_address_in_the_network() {
    let redis = RedisServer::start();
    let config = RateLimitConfig {
        key: RateLimitKey::Prefix { v4: 24, v6: 64 },
        ..concurrent(2)
    };
    let a = server(&redis, config.clone());
    let b = server(&redis, config);
    let _one = check(&a, "198.51.100.1").await.expect("first in the /24");
    let _two = check(&b, "198.51.100.200")
        .await
        .expect("second in the /24");
    assert_refused(check(&a, "198.51.100.77").await, MESSAGE);
    assert_refused(check(&b, "198.51.100.3").await, MESSAGE);
    let _other = check(&b, "198.51.101.1").await.expect("the next /24");
    let set = "tower-mail:rl:conn:{198.51.100.0/24}";
    assert_eq!(redis.int(&["ZCARD", set]), 2);
}

#[tokio::test]
async fn stores_with_other_prefixes_do_not_share() {
    let redis = RedisServer::start();
    let a = server(&redis, concurrent(1));
    let b = RateLimit::with_store(
        concurrent(1),
        RedisStore::builder(redis.url())
            .prefix("other:")
            .build()
            .unwrap(),
    );
    let _a = check(&a, "192.0.2.60").await.expect("A");
    let _b = check(&b, "192.0.2.60").await.expect("B counts apart");
    assert_eq!(redis.int(&["EXISTS", "other:conn:{192.0.2.60}"]), 1);
}

/// Round-trip latency of one acquire and release against a local Redis (not a test of
/// correctness; run with `--ignored --nocapture`).
#[tokio::test]
#[ignore]
async fn measure_acquire_latency() {
    let redis = RedisServer::start();
    let store = store(&redis);
    let limits = Limits {
        max_concurrent: Some(10),
        rate: Some(Rate::new(1_000_000, Duration::from_secs(1))),
    };
    let key = ip_key("192.0.2.99");
    for _ in 0..200 {
        if let Admission::Admitted(Some(slot)) = acquire(&store, &key, &limits).await {
            store.release(&key, slot);
        }
    }
    const N: u32 = 5_000;
    let started = Instant::now();
    for _ in 0..N {
        if let Admission::Admitted(Some(slot)) = acquire(&store, &key, &limits).await {
            store.release(&key, slot);
        }
    }
    let sequential = started.elapsed() / N;
    store.flush().await.unwrap();
    let started = Instant::now();
    let concurrent = futures_util::future::join_all((0..N).map(|i| {
        let key = ip_key(&format!("10.0.{}.{}", i / 250, i % 250));
        let store = &store;
        async move { store.acquire(&key, Duration::ZERO, &limits).await }
    }))
    .await;
    let pipelined = started.elapsed();
    assert!(concurrent.iter().all(Result::is_ok));
    println!(
        "sequential acquire+release: {sequential:?} each; {N} concurrent acquires: {pipelined:?} ({:.0}/s)",
        f64::from(N) / pipelined.as_secs_f64()
    );
}
