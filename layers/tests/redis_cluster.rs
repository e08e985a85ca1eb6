//! The Redis stores on a real Redis Cluster (three `redis-server` nodes, see
//! `support_cluster`), reached through a `redis+cluster://` URL: every script touches one slot
//! (hash-tagged keys), releases of keys on different nodes go out together, and the state is
//! shared by two "servers" as on one Redis.
//!
//! ```text
//! cargo test -p tower-mail-layers --features redis --test redis_cluster
//! ```

mod support_cluster;
mod support_redis;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support_cluster::RedisCluster;
use tower::{Layer, ServiceExt};
use tower_mail::auth::{AuthError, Credentials, Secret, User};
use tower_mail::{Protocol, Session};
use tower_mail_layers::auth::{AutoBanLayer, BanSink, RedisAuth, UserSessionsLayer};
use tower_mail_layers::ip_block::{IpBlock, IpLists};
use tower_mail_layers::rate_limit::{
    Admission, Key, Limits, Rate, RateLimitStore, RedisStore, Refusal,
};

const SOON: Duration = Duration::from_secs(10);

/// Wait until `done` holds, for at most `bound`.
async fn eventually(bound: Duration, what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + bound;
    while !done().await {
        assert!(Instant::now() < deadline, "{what} within {bound:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Names (from `make`) whose keys (from `key_of`) land on each of the three nodes.
fn on_every_node(
    cluster: &RedisCluster,
    make: impl Fn(u32) -> String,
    key_of: impl Fn(&str) -> String,
) -> Vec<String> {
    let mut owners = BTreeSet::new();
    let mut names = Vec::new();
    for i in 0.. {
        let name = make(i);
        if owners.insert(cluster.owner(&key_of(&name))) {
            names.push(name);
        }
        if owners.len() == 3 {
            return names;
        }
    }
    unreachable!()
}

#[tokio::test]
async fn the_rate_limit_store_counts_and_releases_on_a_cluster() {
    let cluster = RedisCluster::start();
    let a = RedisStore::builder(cluster.url()).build().unwrap();
    let b = RedisStore::builder(cluster.url()).build().unwrap();
    let limits = Limits {
        max_concurrent: Some(1),
        rate: Some(Rate::new(100, Duration::from_secs(60))),
    };
    let ips = on_every_node(
        &cluster,
        |i| format!("192.0.2.{i}"),
        |ip| a.set_key(&Key::from(ip.parse::<IpAddr>().unwrap())),
    );
    let keys: Vec<Key> = ips
        .iter()
        .map(|ip| Key::from(ip.parse::<IpAddr>().unwrap()))
        .collect();
    let mut slots = Vec::new();
    for key in &keys {
        // Both keys of the script (the set and the TAT) are on the key's node: one slot.
        match a
            .acquire(key, Duration::ZERO, &limits)
            .await
            .expect("cluster answers")
        {
            Admission::Admitted(Some(slot)) => slots.push(slot),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            b.acquire(key, Duration::ZERO, &limits).await.unwrap(),
            Admission::Refused(Refusal::Concurrency),
            "B sees A's connection"
        );
        assert_eq!(cluster.int(&["EXISTS", &a.tat_key(key)]), 1);
    }
    // Released together: one batch of removals on three nodes.
    for (key, slot) in keys.iter().zip(slots) {
        a.release(key, slot);
    }
    a.flush().await.expect("releases sent");
    for key in &keys {
        assert_eq!(
            cluster.int(&["EXISTS", &a.set_key(key)]),
            0,
            "{key} released"
        );
        assert!(matches!(
            b.acquire(key, Duration::ZERO, &limits).await.unwrap(),
            Admission::Admitted(Some(_))
        ));
    }
    a.ping().await.expect("PING reaches every node");
}

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

/// Everybody's password is "right".
fn passwords() -> impl tower_mail::auth::Authenticator {
    tower::service_fn(|c: Credentials| async move {
        if c.password() == Some("right") {
            Ok(User::new(c.user))
        } else {
            Err(AuthError::InvalidCredentials)
        }
    })
}

#[derive(Clone, Default)]
struct Recorded(Arc<Mutex<Vec<IpAddr>>>);

impl BanSink for Recorded {
    fn ban(&self, ip: IpAddr, _: Duration) -> usize {
        self.0.lock().unwrap().push(ip);
        0
    }
}

#[tokio::test]
async fn the_auth_state_is_shared_on_a_cluster() {
    let cluster = RedisCluster::start();
    let server = || {
        RedisAuth::builder(cluster.url())
            .ban_sync(Duration::from_millis(100))
            .build()
            .unwrap()
    };
    let (a, b) = (server(), server());

    // Session caps, for users whose keys are on each node.
    let users = on_every_node(
        &cluster,
        |i| format!("user{i}"),
        |u| a.user_sessions().set_key(u),
    );
    let on_a = UserSessionsLayer::with_store(1, a.user_sessions()).layer(passwords());
    let on_b = UserSessionsLayer::with_store(1, b.user_sessions()).layer(passwords());
    let mut sessions = Vec::new();
    for user in &users {
        sessions.push(
            on_a.clone()
                .oneshot(creds("192.0.2.1", user, "right"))
                .await
                .unwrap(),
        );
        let again = on_b
            .clone()
            .oneshot(creds("192.0.2.2", user, "right"))
            .await;
        assert_eq!(again, Err(AuthError::Limit), "{user}");
    }
    drop(sessions);
    a.flush().await.expect("releases sent");
    for user in &users {
        on_b.clone()
            .oneshot(creds("192.0.2.2", user, "right"))
            .await
            .expect("free again");
    }

    // Failure counts and bans.
    let recorded = Recorded::default();
    let ban_a = AutoBanLayer::new(recorded.clone())
        .failures(2)
        .shared(a.failures())
        .layer(passwords());
    let ban_b = AutoBanLayer::new(recorded.clone())
        .failures(2)
        .shared(b.failures())
        .layer(passwords());
    let _ = ban_a.oneshot(creds("192.0.2.9", "x", "wrong")).await;
    let _ = ban_b.oneshot(creds("192.0.2.9", "y", "wrong")).await;
    assert_eq!(
        *recorded.0.lock().unwrap(),
        ["192.0.2.9".parse::<IpAddr>().unwrap()]
    );

    let (block_a, block_b) = (
        IpBlock::new(IpLists::default()),
        IpBlock::new(IpLists::default()),
    );
    let bans_a = a.bans(block_a.clone());
    let _bans_b = b.bans(block_b.clone());
    bans_a.ban("192.0.2.10".parse().unwrap(), Duration::from_secs(60));
    eventually(SOON, "B applies A's ban", async || {
        !block_b.permits("192.0.2.10".parse().unwrap())
    })
    .await;
}
