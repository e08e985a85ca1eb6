//! The auth layers with a shared [`FailureCounter`], on a paused clock: counts that add up
//! across layers, and a counter that fails, which must never block a login.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::time::Instant;
use tower::{Layer, ServiceExt};
use tower_mail::auth::{AuthError, Authenticator, Credentials, Secret, User};
use tower_mail::{Protocol, Session};

use super::*;

fn creds(ip: &str, user: &str) -> Credentials {
    Credentials {
        user: user.into(),
        secret: Secret::Password("wrong".into()),
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

/// Nobody gets in.
fn nobody() -> impl Authenticator {
    tower::service_fn(|_: Credentials| async { Err::<User, _>(AuthError::InvalidCredentials) })
}

/// A failed login: how long it took on the paused clock.
async fn fail(auth: &impl Authenticator, ip: &str, user: &str) -> Duration {
    let start = Instant::now();
    let answer = auth.clone().oneshot(creds(ip, user)).await;
    assert_eq!(answer, Err(AuthError::InvalidCredentials));
    start.elapsed()
}

/// A counter that is down.
struct Down;

impl FailureCounter for Down {
    fn record(&self, _: &FailureKey, _: FailureWindow) -> FailureFuture {
        Box::pin(std::future::ready(Err("connection refused".into())))
    }
    fn clear(&self, _: &FailureKey) {}
}

#[derive(Clone, Default)]
struct Recorded(Arc<Mutex<Vec<IpAddr>>>);

impl BanSink for Recorded {
    fn ban(&self, ip: IpAddr, _: Duration) -> usize {
        self.0.lock().unwrap().push(ip);
        0
    }
}

#[test]
fn failure_keys_are_canonical() {
    assert_eq!(
        FailureKey::ip("ban", ip("::ffff:192.0.2.1")),
        FailureKey::ip("ban", ip("192.0.2.1"))
    );
    assert_ne!(
        FailureKey::ip("ban", ip("192.0.2.1")),
        FailureKey::ip("delay", ip("192.0.2.1")),
        "each layer counts apart"
    );
    let user = FailureKey::user("delay", "ALICE").to_string();
    assert_eq!(user, FailureKey::user("delay", "alice").to_string());
    assert_eq!(user.len(), "delay:user:".len() + 32);
    assert_ne!(user, FailureKey::user("delay", "alicf").to_string());
}

#[tokio::test(start_paused = true)]
async fn local_failures_keep_each_calls_window() {
    let counter = LocalFailures::new(10);
    let key = FailureKey::ip("delay", ip("192.0.2.1"));
    let window = FailureWindow {
        window: Duration::from_secs(10),
        keep: 3,
        clear_at: usize::MAX,
    };
    let record = || {
        counter
            .record(&key, window)
            .now_or_never()
            .unwrap()
            .unwrap()
    };
    assert_eq!([record(), record(), record(), record()], [1, 2, 3, 3]);
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(record(), 1, "the earlier failures left the window");
    counter.clear(&key);
    assert_eq!(counter.tracked(), 0);
}

#[tokio::test(start_paused = true)]
async fn two_delay_layers_sharing_a_counter_count_together() {
    let counter = Arc::new(LocalFailures::default());
    let layer = || {
        FailureDelayLayer::new()
            .base(Duration::from_secs(1))
            .max(Duration::from_secs(8))
            .shared(counter.clone())
    };
    let (a, b) = (layer().layer(nobody()), layer().layer(nobody()));
    assert_eq!(fail(&a, "192.0.2.1", "x").await, Duration::from_secs(1));
    assert_eq!(fail(&a, "192.0.2.1", "y").await, Duration::from_secs(2));
    // B's first failure from the address is the third.
    assert_eq!(fail(&b, "192.0.2.1", "z").await, Duration::from_secs(4));
    // And by user name, from elsewhere.
    assert_eq!(fail(&b, "198.51.100.1", "x").await, Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn a_success_on_one_layer_clears_the_users_count_on_the_other() {
    let counter = Arc::new(LocalFailures::default());
    let layer = || FailureDelayLayer::new().shared(counter.clone());
    // Lets alice in with the password "right".
    let alice = || {
        tower::service_fn(|c: Credentials| async move {
            if c.password() == Some("right") {
                Ok(User::new(c.user))
            } else {
                Err(AuthError::InvalidCredentials)
            }
        })
    };
    let (a, b) = (layer().layer(alice()), layer().layer(alice()));
    fail(&a, "192.0.2.1", "alice").await;
    fail(&a, "192.0.2.2", "alice").await;
    let mut right = creds("192.0.2.3", "alice");
    right.secret = Secret::Password("right".into());
    b.clone()
        .oneshot(right)
        .await
        .expect("alice shows her password on B");
    // A's own count still has alice's two failures; the shared count, which decides, not.
    assert_eq!(fail(&a, "192.0.2.4", "alice").await, Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn a_failing_counter_leaves_the_delay_to_the_local_count() {
    let layer = FailureDelayLayer::new().shared(Down);
    let auth = layer.layer(nobody());
    assert_eq!(
        fail(&auth, "192.0.2.1", "alice").await,
        Duration::from_secs(2)
    );
    assert_eq!(
        fail(&auth, "192.0.2.1", "alice").await,
        Duration::from_secs(4)
    );
    assert_eq!(layer.tracked(), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn two_ban_layers_sharing_a_counter_ban_at_the_total() {
    let counter = Arc::new(LocalFailures::default());
    let bans = Recorded::default();
    let layer = || {
        AutoBanLayer::new(bans.clone())
            .failures(3)
            .shared(counter.clone())
            .layer(nobody())
    };
    let (a, b) = (layer(), layer());
    fail(&a, "192.0.2.1", "x").await;
    fail(&a, "192.0.2.1", "x").await;
    fail(&b, "192.0.2.1", "x").await;
    assert_eq!(*bans.0.lock().unwrap(), [ip("192.0.2.1")]);
    // Both counts start again: A's own two do not make a ban with one more.
    fail(&a, "192.0.2.1", "x").await;
    assert_eq!(bans.0.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failing_counter_leaves_bans_to_the_local_count() {
    let bans = Recorded::default();
    let auth = AutoBanLayer::new(bans.clone())
        .failures(2)
        .shared(Down)
        .layer(nobody());
    fail(&auth, "192.0.2.1", "x").await;
    fail(&auth, "192.0.2.1", "x").await;
    assert_eq!(*bans.0.lock().unwrap(), [ip("192.0.2.1")]);
}
