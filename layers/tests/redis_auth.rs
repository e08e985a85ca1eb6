//! The auth layers sharing their state through a real `redis-server` (started per test on a
//! free loopback port, see `support_redis`): two `RedisAuth` connections play two servers.
//! Per-user session caps, failure counts and bans hold across both; leases of a crashed
//! server run out; a Redis outage never blocks a login.
//!
//! ```text
//! cargo test -p tower-mail-layers --features redis --test redis_auth
//! ```

mod support_redis;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support_redis::{RedisServer, nowhere_url};
use tower::{Layer, ServiceExt};
use tower_mail::auth::{AuthError, Authenticator, Credentials, Secret, User};
use tower_mail::{Protocol, Session};
use tower_mail_layers::auth::{
    AutoBanLayer, BanSink, FailureCounter, FailureDelayLayer, FailureKey, FailureWindow, RedisAuth,
    UserSessionStore, UserSessionsLayer,
};
use tower_mail_layers::ip_block::{IpBlock, IpLists};

/// Bound for what must happen "soon" (a release landing, a ban synced): a liveness bound, not
/// a timing claim.
const SOON: Duration = Duration::from_secs(10);

const RIGHT: &str = "right";

fn creds(ip: &str, user: &str, password: &str) -> Credentials {
    Credentials {
        user: user.into(),
        secret: Secret::Password(password.into()),
        session: Some(Arc::new(Session::new(
            Protocol::Imap,
            SocketAddr::new(ip.parse().unwrap(), 40000),
            "127.0.0.1:143".parse().unwrap(),
        ))),
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// Knows alice and bob, whose password is [`RIGHT`]; answers at once.
fn passwords() -> impl Authenticator {
    tower::service_fn(|c: Credentials| async move {
        if ["alice", "bob"].contains(&c.user.as_str()) && c.password() == Some(RIGHT) {
            Ok(User::new(c.user))
        } else {
            Err(AuthError::InvalidCredentials)
        }
    })
}

/// A connection to `redis`: each call is another "server".
fn server(redis: &RedisServer) -> RedisAuth {
    RedisAuth::builder(redis.url()).build().expect("lazy")
}

async fn login(auth: &impl Authenticator, ip: &str, user: &str) -> Result<User, AuthError> {
    auth.clone().oneshot(creds(ip, user, RIGHT)).await
}

async fn fail(auth: &impl Authenticator, ip: &str, user: &str) {
    let answer = auth.clone().oneshot(creds(ip, user, "wrong")).await;
    assert_eq!(answer, Err(AuthError::InvalidCredentials));
}

/// Wait until `done` holds, for at most `bound`.
async fn eventually(bound: Duration, what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + bound;
    while !done().await {
        assert!(Instant::now() < deadline, "{what} within {bound:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Records the bans asked for.
#[derive(Clone, Default)]
struct Recorded(Arc<Mutex<Vec<IpAddr>>>);

impl BanSink for Recorded {
    fn ban(&self, ip: IpAddr, _: Duration) -> usize {
        self.0.lock().unwrap().push(ip);
        0
    }
}

// ---------------------------------------------------------------- per-user sessions

#[tokio::test]
async fn a_users_session_cap_holds_across_two_servers_and_a_release_frees_a_slot() {
    let redis = RedisServer::start();
    let a = UserSessionsLayer::with_store(2, server(&redis).user_sessions()).layer(passwords());
    let b = UserSessionsLayer::with_store(2, server(&redis).user_sessions()).layer(passwords());

    let on_a = login(&a, "192.0.2.1", "alice").await.expect("first, on A");
    let _on_b = login(&b, "192.0.2.2", "alice").await.expect("second, on B");
    assert_eq!(on_a.leases(), 1, "a counted session holds its slot");
    // Both servers see both sessions.
    assert_eq!(login(&a, "192.0.2.1", "alice").await, Err(AuthError::Limit));
    assert_eq!(login(&b, "192.0.2.3", "alice").await, Err(AuthError::Limit));
    // Another user is not affected.
    let _bob = login(&b, "192.0.2.3", "bob").await.expect("bob");

    // The session on A ends: its slot is free for B (the release goes out in the background).
    drop(on_a);
    let mut again = None;
    eventually(SOON, "B logs alice in after A's release", async || {
        again = login(&b, "192.0.2.3", "alice").await.ok();
        again.is_some()
    })
    .await;
    assert_eq!(login(&a, "192.0.2.1", "alice").await, Err(AuthError::Limit));
}

#[tokio::test]
async fn a_crashed_servers_sessions_stop_counting_when_their_leases_run_out() {
    let redis = RedisServer::start();
    // "Server A" counts alice's only session, then vanishes without releasing it.
    let crashed = RedisAuth::builder(redis.url())
        .lease(Duration::from_millis(1500))
        .build()
        .unwrap()
        .user_sessions();
    let slot = crashed.acquire("alice", 1).await.expect("redis answers");
    assert!(slot.is_some());
    let set = crashed.set_key("alice");
    drop(crashed);

    let survivor = server(&redis).user_sessions();
    assert_eq!(
        survivor.acquire("alice", 1).await.expect("redis answers"),
        None,
        "A's session counts until its lease runs out"
    );
    let mut slot = None;
    eventually(SOON, "A's lease ran out", async || {
        slot = survivor.acquire("alice", 1).await.expect("redis answers");
        slot.is_some()
    })
    .await;
    assert_eq!(
        redis.int(&["ZCARD", &set]),
        1,
        "only the survivor's session"
    );
    survivor.release("alice", slot.unwrap());
}

#[tokio::test]
async fn a_live_server_renews_its_sessions_leases() {
    let redis = RedisServer::start();
    let short = RedisAuth::builder(redis.url())
        .lease(Duration::from_millis(600))
        .build()
        .unwrap();
    let a = UserSessionsLayer::with_store(1, short.user_sessions()).layer(passwords());
    let b = UserSessionsLayer::with_store(1, server(&redis).user_sessions()).layer(passwords());
    let session = login(&a, "192.0.2.1", "alice").await.expect("on A");
    // Several leases long: renewals keep the open session counted.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(login(&b, "192.0.2.2", "alice").await, Err(AuthError::Limit));
    }
    drop(session);
    short.flush().await.expect("release sent");
    login(&b, "192.0.2.2", "alice")
        .await
        .expect("free after A's release");
}

#[tokio::test]
async fn an_acquire_given_up_gives_back_what_it_counted() {
    let redis = RedisServer::start();
    let hasty = RedisAuth::builder(redis.url())
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let sessions = hasty.user_sessions();
    // Warm-up: Redis has the script, so the next acquire is one EVALSHA.
    let warm = sessions.acquire("bob", 1).await.unwrap().unwrap();
    sessions.release("bob", warm);

    // Redis hangs: the acquire gives up after its deadline, and the layer lets alice in
    // uncounted (fail open).
    redis.signal("STOP");
    let layer = UserSessionsLayer::with_store(1, sessions);
    let user = login(&layer.layer(passwords()), "192.0.2.1", "alice")
        .await
        .expect("fail open");
    assert_eq!(user.leases(), 0, "uncounted");
    redis.signal("CONT");
    // The script runs when Redis wakes and counts a session, which the given-up acquire's
    // release then removes: another server gets alice's only slot long before the 60 s lease
    // would have freed it.
    let other = server(&redis).user_sessions();
    eventually(SOON, "the given-up slot given back", async || {
        other.acquire("alice", 1).await.unwrap().is_some()
    })
    .await;
}

// ---------------------------------------------------------------- failure counts

#[tokio::test]
async fn failure_counts_are_shared_by_two_servers() {
    let redis = RedisServer::start();
    let (a, b) = (server(&redis).failures(), server(&redis).failures());
    let key = FailureKey::ip("ban", ip("192.0.2.9"));
    let window = FailureWindow {
        window: Duration::from_secs(60),
        keep: 5,
        clear_at: usize::MAX,
    };
    assert_eq!(a.record(&key, window).await.unwrap(), 1);
    assert_eq!(b.record(&key, window).await.unwrap(), 2);
    assert_eq!(a.record(&key, window).await.unwrap(), 3);
    // Another key, another count; at most `keep`.
    let other = FailureKey::user("delay", "Alice");
    for expected in [1, 2, 2] {
        let keep_two = FailureWindow { keep: 2, ..window };
        assert_eq!(b.record(&other, keep_two).await.unwrap(), expected);
    }
    // Cleared on either server, for both.
    b.clear(&key);
    eventually(SOON, "the key cleared", async || {
        redis.int(&["EXISTS", &a.key(&key)]) == 0
    })
    .await;
    assert_eq!(a.record(&key, window).await.unwrap(), 1);
    // The key expires with its window.
    let ttl = redis.int(&["PTTL", &a.key(&key)]);
    assert!(ttl > 0 && ttl <= 60_000, "{ttl}");
}

#[tokio::test]
async fn failures_on_two_servers_add_up_to_one_ban() {
    let redis = RedisServer::start();
    let bans = Recorded::default();
    let layer = |redis: &RedisServer| {
        AutoBanLayer::new(bans.clone())
            .failures(3)
            .shared(server(redis).failures())
            .layer(passwords())
    };
    let (a, b) = (layer(&redis), layer(&redis));
    fail(&a, "192.0.2.10", "alice").await;
    fail(&a, "192.0.2.10", "bob").await;
    assert!(
        bans.0.lock().unwrap().is_empty(),
        "two failures: no ban yet"
    );
    fail(&b, "192.0.2.10", "carol").await;
    assert_eq!(
        *bans.0.lock().unwrap(),
        [ip("192.0.2.10")],
        "the third, across servers"
    );
    // The count starts again after the ban, on both: A's own two failures do not make a ban
    // with one more.
    fail(&a, "192.0.2.10", "alice").await;
    assert_eq!(bans.0.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_failure_on_one_server_delays_the_next_on_the_other() {
    let redis = RedisServer::start();
    let layer = |redis: &RedisServer| {
        FailureDelayLayer::new()
            .base(Duration::from_millis(100))
            .max(Duration::from_millis(400))
            .shared(server(redis).failures())
    };
    let (a, b) = (layer(&redis), layer(&redis));
    let (on_a, on_b) = (a.layer(passwords()), b.layer(passwords()));
    fail(&on_a, "192.0.2.11", "alice").await;
    fail(&on_a, "192.0.2.11", "bob").await;
    assert_eq!(
        b.next_delay(Some(ip("192.0.2.11")), "carol"),
        Duration::from_millis(100),
        "B has counted nothing itself"
    );
    // B's first failure from the address comes after two on A: 100 ms doubled twice. (A sleep
    // never ends early, so this bound holds however slow the machine.)
    let started = Instant::now();
    fail(&on_b, "192.0.2.11", "carol").await;
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------- bans

#[tokio::test]
async fn a_ban_on_one_server_refuses_the_address_on_the_other() {
    let redis = RedisServer::start();
    let every = Duration::from_millis(100);
    let (block_a, block_b) = (
        IpBlock::new(IpLists::default()),
        IpBlock::new(IpLists::default()),
    );
    let a = RedisAuth::builder(redis.url())
        .ban_sync(every)
        .build()
        .unwrap();
    let b = RedisAuth::builder(redis.url())
        .ban_sync(every)
        .build()
        .unwrap();
    let auth_a = AutoBanLayer::new(a.bans(block_a.clone()))
        .failures(2)
        .ban(Duration::from_secs(2))
        .shared(a.failures())
        .layer(passwords());
    let bans_b = b.bans(block_b.clone());

    let attacker = "192.0.2.12";
    fail(&auth_a, attacker, "alice").await;
    fail(&auth_a, attacker, "alice").await;
    assert!(
        !block_a.permits(ip(attacker)),
        "banned at once where it failed"
    );
    eventually(SOON, "B refuses the address A banned", async || {
        !block_b.permits(ip(attacker))
    })
    .await;
    assert!(block_b.permits(ip("192.0.2.13")), "only that address");

    // And the other way round, through B's sink directly.
    bans_b.ban(ip("::ffff:198.51.100.7"), Duration::from_secs(2));
    eventually(SOON, "A refuses the address B banned", async || {
        !block_a.permits(ip("198.51.100.7"))
    })
    .await;
    assert!(redis.int(&["ZCARD", bans_b.bans_key()]) >= 2);

    // Bans end by expiry, on both.
    eventually(SOON, "the bans end everywhere", async || {
        [&block_a, &block_b]
            .iter()
            .all(|block| block.permits(ip(attacker)) && block.permits(ip("198.51.100.7")))
    })
    .await;
}

#[tokio::test]
async fn a_server_that_starts_later_gets_the_bans_in_force() {
    let redis = RedisServer::start();
    let early = server(&redis).bans(IpBlock::new(IpLists::default()));
    early.ban(ip("192.0.2.14"), Duration::from_secs(60));
    eventually(SOON, "the ban written", async || {
        redis.int(&["ZCARD", early.bans_key()]) == 1
    })
    .await;
    let late = IpBlock::new(IpLists::default());
    let _bans = server(&redis).bans(late.clone());
    eventually(SOON, "the late server applies it", async || {
        !late.permits(ip("192.0.2.14"))
    })
    .await;
}

// ---------------------------------------------------------------- Redis down

#[tokio::test]
async fn with_redis_down_logins_go_on_with_local_counts() {
    let down = RedisAuth::builder(nowhere_url()).build().expect("lazy");
    // Session caps fail open by default: let in, uncounted.
    let sessions = UserSessionsLayer::with_store(1, down.user_sessions()).layer(passwords());
    for _ in 0..3 {
        let started = Instant::now();
        let user = login(&sessions, "192.0.2.20", "alice")
            .await
            .expect("fail open");
        assert_eq!(user.leases(), 0);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
    let closed = UserSessionsLayer::with_store(1, down.user_sessions()).fail_open(false);
    assert_eq!(
        login(&closed.layer(passwords()), "192.0.2.20", "alice").await,
        Err(AuthError::Unavailable)
    );

    // Failure delays count in this process.
    let delay = FailureDelayLayer::new()
        .base(Duration::from_millis(1))
        .max(Duration::from_millis(8))
        .shared(down.failures());
    let delayed = delay.layer(passwords());
    fail(&delayed, "192.0.2.21", "alice").await;
    fail(&delayed, "192.0.2.21", "alice").await;
    assert_eq!(
        delay.next_delay(Some(ip("192.0.2.21")), "alice"),
        Duration::from_millis(4)
    );

    // Auto-bans count in this process, and ban here.
    let block = IpBlock::new(IpLists::default());
    let banning = AutoBanLayer::new(down.bans(block.clone()))
        .failures(2)
        .shared(down.failures())
        .layer(passwords());
    fail(&banning, "192.0.2.22", "alice").await;
    fail(&banning, "192.0.2.22", "alice").await;
    assert!(!block.permits(ip("192.0.2.22")));
    assert!(
        RedisAuth::connect(nowhere_url()).await.is_err(),
        "connect waits for a PING"
    );
}

#[tokio::test]
async fn bans_made_while_redis_is_down_are_shared_once_it_is_back() {
    let mut redis = RedisServer::start();
    let port = redis.port();
    let every = Duration::from_millis(100);
    let a = RedisAuth::builder(redis.url())
        .ban_sync(every)
        .build()
        .unwrap();
    let b = RedisAuth::builder(redis.url())
        .ban_sync(every)
        .build()
        .unwrap();
    let bans_a = a.bans(IpBlock::new(IpLists::default()));
    let block_b = IpBlock::new(IpLists::default());
    let _bans_b = b.bans(block_b.clone());

    redis.kill();
    bans_a.ban(ip("192.0.2.30"), Duration::from_secs(60));
    assert!(
        !bans_a.ip_block().permits(ip("192.0.2.30")),
        "local at once"
    );

    // Redis is back (empty): A writes its pending ban, B reads it.
    let _redis = RedisServer::start_on(port).expect("restart on the same port");
    eventually(
        SOON,
        "B applies the ban made during the outage",
        async || !block_b.permits(ip("192.0.2.30")),
    )
    .await;
}
