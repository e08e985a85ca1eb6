//! The auth layers on a paused clock: bounds, delays, session caps, bans, memory.

use std::future::{Ready, ready};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tower::{Layer, ServiceBuilder, ServiceExt};
use tower_mail::BoxError;
use tower_mail::auth::{AuthError, Authenticator, Credentials, Secret, User};
use tower_mail::{CloseReason, Protocol, Session};

use super::recent::RecentFailures;
use super::*;
use crate::ip_block::{CidrSet, IpBlock, IpLists};

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

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Knows alice and bob, whose password is [`RIGHT`]; answers at once. An unknown user and a
/// wrong password get the same answer, as from a real store.
fn passwords() -> impl Authenticator {
    tower::service_fn(|c: Credentials| async move {
        if ["alice", "bob"].contains(&c.user.as_str()) && c.password() == Some(RIGHT) {
            Ok(User::new(c.user))
        } else {
            Err(AuthError::InvalidCredentials)
        }
    })
}

/// Answers `error` to everybody.
fn answering(error: AuthError) -> impl Authenticator {
    tower::service_fn(move |_: Credentials| {
        let error = error.clone();
        async move { Err::<User, _>(error) }
    })
}

/// One login: its answer and how long it took on the (paused) clock.
async fn timed<A: Authenticator>(
    auth: &A,
    credentials: Credentials,
) -> (Result<User, AuthError>, Duration) {
    let start = Instant::now();
    let answer = auth.clone().oneshot(credentials).await;
    (answer, start.elapsed())
}

/// A login with a wrong password, which must fail as such: how long it took.
async fn fail<A: Authenticator>(auth: &A, ip: &str, user: &str) -> Duration {
    let (answer, waited) = timed(auth, creds(ip, user, "x")).await;
    assert_eq!(answer, Err(AuthError::InvalidCredentials));
    waited
}

/// One login in a task of its own.
fn spawn_login<A: Authenticator>(
    auth: &A,
    credentials: Credentials,
) -> tokio::task::JoinHandle<(Result<User, AuthError>, Duration)> {
    let auth = auth.clone();
    tokio::spawn(async move { timed(&auth, credentials).await })
}

/// Let the other tasks run until `condition` holds; panics if it never does.
async fn until(what: &str, condition: impl Fn() -> bool) {
    for _ in 0..10_000 {
        if condition() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("never happened: {what}");
}

/// A verification that the test lets finish: it counts itself and waits for a permit of `open`.
#[derive(Clone)]
struct Gate {
    open: Arc<Semaphore>,
    started: Arc<AtomicUsize>,
    running: Arc<AtomicUsize>,
    most_running: Arc<AtomicUsize>,
    finished: Arc<AtomicUsize>,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            open: Arc::new(Semaphore::new(0)),
            started: Arc::default(),
            running: Arc::default(),
            most_running: Arc::default(),
            finished: Arc::default(),
        }
    }
}

impl Gate {
    fn service(&self) -> impl Authenticator + use<> {
        let gate = self.clone();
        tower::service_fn(move |c: Credentials| {
            let gate = gate.clone();
            async move {
                let running = gate.running.fetch_add(1, Ordering::SeqCst) + 1;
                gate.most_running.fetch_max(running, Ordering::SeqCst);
                gate.started.fetch_add(1, Ordering::SeqCst);
                gate.open.acquire().await.unwrap().forget();
                gate.running.fetch_sub(1, Ordering::SeqCst);
                gate.finished.fetch_add(1, Ordering::SeqCst);
                Ok(User::new(c.user))
            }
        })
    }

    fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }

    fn finished(&self) -> usize {
        self.finished.load(Ordering::SeqCst)
    }
}

fn assert_authenticator<A: Authenticator>(_: &A) {}

// ---------------------------------------------------------------- VerifyLimit

#[tokio::test(start_paused = true)]
async fn verifications_are_bounded_and_refused_past_the_queue_deadline() {
    let gate = Gate::default();
    let layer = VerifyLimitLayer::new(2);
    let auth = layer.layer(gate.service());
    assert_authenticator(&auth);
    let first: Vec<_> = (0..2)
        .map(|i| spawn_login(&auth, creds(&format!("192.0.2.{i}"), "alice", RIGHT)))
        .collect();
    until("two verifications run", || gate.started() == 2).await;
    assert_eq!(layer.in_flight(), 2);

    // The third waits its queue deadline, then is told to come back.
    let (answer, waited) = timed(&auth, creds("192.0.2.9", "alice", RIGHT)).await;
    assert_eq!(answer, Err(AuthError::Unavailable));
    assert_eq!(waited, DEFAULT_QUEUE_TIMEOUT);
    assert_eq!(gate.started(), 2, "it never reached the inner service");

    // A waiting login that gets a slot before its deadline verifies.
    let third = spawn_login(&auth, creds("192.0.2.9", "alice", RIGHT));
    tokio::time::sleep(secs(1)).await;
    assert_eq!(gate.started(), 2);
    gate.open.add_permits(1);
    until("the waiting login starts", || gate.started() == 3).await;
    gate.open.add_permits(2);
    let (answer, waited) = third.await.unwrap();
    assert_eq!(answer.unwrap().name, "alice");
    assert_eq!(waited, secs(1));
    for login in first {
        assert!(login.await.unwrap().0.is_ok());
    }
    assert_eq!(gate.most_running.load(Ordering::SeqCst), 2);
    assert_eq!(layer.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_caller_that_leaves_keeps_its_slot_until_the_verification_ends() {
    let gate = Gate::default();
    let layer = VerifyLimitLayer::new(1).queue_timeout(secs(3));
    let auth = layer.layer(gate.service());

    let caller = spawn_login(&auth, creds("192.0.2.1", "alice", RIGHT));
    until("the verification runs", || gate.started() == 1).await;
    caller.abort(); // the client disconnected: its login future is dropped
    assert!(caller.await.unwrap_err().is_cancelled());
    assert_eq!(
        layer.in_flight(),
        1,
        "the hash still runs, and still counts"
    );

    // So the next login (the same client, reconnected) cannot start another one.
    let (answer, waited) = timed(&auth, creds("192.0.2.1", "alice", RIGHT)).await;
    assert_eq!(answer, Err(AuthError::Unavailable));
    assert_eq!(waited, secs(3));
    assert_eq!(gate.started(), 1);

    gate.open.add_permits(1);
    until("the abandoned verification ends", || gate.finished() == 1).await;
    until("its slot is free", || layer.in_flight() == 0).await;
    gate.open.add_permits(1);
    let (answer, waited) = timed(&auth, creds("192.0.2.1", "alice", RIGHT)).await;
    assert!(answer.is_ok());
    assert_eq!(waited, Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn readiness_holds_no_slot() {
    let layer = VerifyLimitLayer::new(1).queue_timeout(Duration::ZERO);
    let mut ready: Vec<_> = (0..10).map(|_| layer.layer(passwords())).collect();
    for service in &mut ready {
        ServiceExt::<Credentials>::ready(service).await.unwrap();
    }
    assert_eq!(layer.in_flight(), 0);
    let auth = layer.layer(passwords());
    let (answer, _) = timed(&auth, creds("192.0.2.1", "bob", RIGHT)).await;
    assert_eq!(answer.unwrap().name, "bob");
    // A wrong password is the inner service's answer, unchanged.
    let (answer, _) = timed(&auth, creds("192.0.2.1", "bob", "wrong")).await;
    assert_eq!(answer, Err(AuthError::InvalidCredentials));
}

#[tokio::test(start_paused = true)]
async fn a_panicking_verification_is_unavailable_and_frees_its_slot() {
    let layer = VerifyLimitLayer::new(1).queue_timeout(Duration::ZERO);
    let auth = layer.layer(tower::service_fn(|c: Credentials| async move {
        if c.user == "boom" {
            panic!("backend bug");
        }
        Ok::<_, AuthError>(User::new(c.user))
    }));
    let (answer, _) = timed(&auth, creds("192.0.2.1", "boom", RIGHT)).await;
    assert_eq!(answer, Err(AuthError::Unavailable));
    assert_eq!(layer.in_flight(), 0);
    let (answer, _) = timed(&auth, creds("192.0.2.1", "alice", RIGHT)).await;
    assert!(answer.is_ok());
}

// ---------------------------------------------------------------- FailureDelay

fn delays(list: &[u64]) -> Vec<Duration> {
    list.iter().copied().map(secs).collect()
}

#[tokio::test(start_paused = true)]
async fn failure_delay_doubles_per_address_up_to_the_cap() {
    let auth = FailureDelayLayer::new().layer(passwords());
    assert_authenticator(&auth);
    let mut taken = Vec::new();
    // Another user name each time: only the address links the failures.
    for i in 0..6 {
        let (answer, waited) = timed(&auth, creds("192.0.2.1", &format!("u{i}"), "x")).await;
        assert_eq!(answer, Err(AuthError::InvalidCredentials));
        taken.push(waited);
    }
    assert_eq!(taken, delays(&[2, 4, 8, 15, 15, 15]));
}

#[tokio::test(start_paused = true)]
async fn failure_delay_doubles_per_user_name_across_addresses() {
    let layer = FailureDelayLayer::new();
    let auth = layer.layer(passwords());
    let mut taken = Vec::new();
    for i in 0..5 {
        // Names are counted without case.
        let name = if i % 2 == 0 { "alice" } else { "ALICE" };
        let (answer, waited) = timed(&auth, creds(&format!("198.51.100.{i}"), name, "x")).await;
        assert_eq!(answer, Err(AuthError::InvalidCredentials));
        taken.push(waited);
    }
    assert_eq!(taken, delays(&[2, 4, 8, 15, 15]));
    assert_eq!(layer.tracked(), (5, 1));
}

#[tokio::test(start_paused = true)]
async fn failure_delay_takes_the_larger_of_address_and_user_counts() {
    let layer = FailureDelayLayer::new();
    let auth = layer.layer(passwords());
    fail(&auth, "192.0.2.1", "nobody").await;
    fail(&auth, "198.51.100.1", "alice").await;
    fail(&auth, "198.51.100.2", "alice").await;
    // The address has 1 failure, the user 2: 2 s doubled twice.
    assert_eq!(layer.next_delay(Some(ip("192.0.2.1")), "alice"), secs(8));
    let (_, waited) = timed(&auth, creds("192.0.2.1", "alice", "x")).await;
    assert_eq!(waited, secs(8));
}

#[tokio::test(start_paused = true)]
async fn an_unknown_user_and_a_wrong_password_are_answered_alike() {
    let auth = FailureDelayLayer::new().layer(passwords());
    for _ in 0..5 {
        let unknown = timed(&auth, creds("192.0.2.1", "mallory", "x")).await;
        let wrong = timed(&auth, creds("192.0.2.2", "alice", "x")).await;
        assert_eq!(unknown, wrong);
        assert_eq!(unknown.0, Err(AuthError::InvalidCredentials));
    }
}

#[tokio::test(start_paused = true)]
async fn successes_are_not_delayed_and_clear_the_user_not_the_address() {
    let layer = FailureDelayLayer::new();
    let auth = layer.layer(passwords());
    for _ in 0..3 {
        fail(&auth, "192.0.2.1", "alice").await;
    }
    let (answer, waited) = timed(&auth, creds("192.0.2.1", "alice", RIGHT)).await;
    assert_eq!(answer.unwrap().name, "alice");
    assert_eq!(waited, Duration::ZERO);
    // Alice showed her password: her name starts again; the address keeps its 3 failures.
    assert_eq!(layer.next_delay(None, "alice"), secs(2));
    assert_eq!(layer.next_delay(Some(ip("192.0.2.1")), "someone"), secs(15));
    let (_, waited) = timed(&auth, creds("192.0.2.1", "alice", "x")).await;
    assert_eq!(waited, secs(15));
}

#[tokio::test(start_paused = true)]
async fn a_delayed_failure_blocks_no_other_login() {
    let layer = FailureDelayLayer::new();
    let auth = layer.layer(passwords());
    let failing = spawn_login(&auth, creds("192.0.2.1", "alice", "x"));
    let other_failing = spawn_login(&auth, creds("192.0.2.2", "bob", "x"));
    until("both failures are counted", || layer.tracked() == (2, 2)).await;
    let (answer, waited) = timed(&auth, creds("198.51.100.1", "bob", RIGHT)).await;
    assert!(answer.is_ok());
    assert_eq!(waited, Duration::ZERO);
    assert!(!failing.is_finished());
    // The two delays run side by side.
    assert_eq!(failing.await.unwrap().1, secs(2));
    assert_eq!(other_failing.await.unwrap().1, secs(2));
}

#[tokio::test(start_paused = true)]
async fn failures_leave_the_window_and_other_errors_pass_at_once() {
    let layer = FailureDelayLayer::new().window(secs(60));
    let auth = layer.layer(passwords());
    for _ in 0..3 {
        fail(&auth, "192.0.2.1", "alice").await;
    }
    assert_eq!(layer.next_delay(Some(ip("192.0.2.1")), "alice"), secs(15));
    tokio::time::advance(secs(61)).await;
    assert_eq!(layer.next_delay(Some(ip("192.0.2.1")), "alice"), secs(2));
    let (_, waited) = timed(&auth, creds("192.0.2.1", "alice", "x")).await;
    assert_eq!(waited, secs(2));

    let layer = FailureDelayLayer::new();
    for error in [AuthError::Unavailable, AuthError::Limit] {
        let auth = layer.layer(answering(error.clone()));
        let (answer, waited) = timed(&auth, creds("192.0.2.1", "alice", RIGHT)).await;
        assert_eq!(answer, Err(error));
        assert_eq!(waited, Duration::ZERO);
    }
    assert_eq!(
        layer.tracked(),
        (0, 0),
        "they are not failures of the client"
    );
}

#[tokio::test(start_paused = true)]
async fn a_session_asked_to_end_stops_waiting_without_a_verdict_and_its_failure_counts() {
    let layer = FailureDelayLayer::new();
    let auth = layer.layer(passwords());
    // Shutdown ends every session this way (a child token of the server's), as do kicks.
    for (n, reason) in [CloseReason::Shutdown, CloseReason::Kicked("bye".into())]
        .into_iter()
        .enumerate()
    {
        let credentials = creds("192.0.2.1", "alice", "x");
        let session = credentials.session.clone().unwrap();
        let login = spawn_login(&auth, credentials);
        until("the failure is counted", || {
            layer.next_delay(Some(ip("192.0.2.1")), "alice") == secs(2 << (n + 1))
        })
        .await;
        assert!(!login.is_finished(), "held in its delay");
        session.end(reason);
        let (answer, waited) = login.await.unwrap();
        assert_eq!(
            answer,
            Err(AuthError::Unavailable),
            "no verdict before the delay"
        );
        assert_eq!(waited, Duration::ZERO);
    }
    // Both failures counted: without a session (a caller outside the protocol services), the
    // third waits out its whole delay.
    let (answer, waited) = timed(&auth, Credentials::new("alice", "x")).await;
    assert_eq!(answer, Err(AuthError::InvalidCredentials));
    assert_eq!(waited, secs(8));
}

#[tokio::test(start_paused = true)]
async fn failure_delay_memory_stays_bounded_under_a_spray() {
    let layer = FailureDelayLayer::new().max_keys(1000);
    let auth = layer.layer(passwords());
    // 100,000 addresses and user names, each failing once; in batches that sleep together.
    for batch in 0..10u32 {
        let logins = (0..10_000u32).map(|i| {
            let n = batch * 10_000 + i;
            let address = IpAddr::from([10, (n >> 16) as u8, (n >> 8) as u8, n as u8]);
            timed(&auth, creds(&address.to_string(), &format!("user{n}"), "x"))
        });
        for (answer, waited) in join_all(logins).await {
            assert_eq!(answer, Err(AuthError::InvalidCredentials));
            assert_eq!(waited, secs(2), "each key failed once");
        }
        let (addresses, users) = layer.tracked();
        assert!(addresses <= 1000 && users <= 1000, "{addresses} {users}");
    }
    // The newest keys are still counted.
    assert_eq!(
        layer.next_delay(Some(ip("10.1.134.159")), "user99999"),
        secs(4)
    );
}

// ---------------------------------------------------------------- UserSessions

#[tokio::test(start_paused = true)]
async fn the_sixteenth_session_is_refused_until_one_ends() {
    let layer = UserSessionsLayer::default();
    let auth = layer.layer(passwords());
    assert_authenticator(&auth);
    let mut sessions = Vec::new();
    for _ in 0..15 {
        let user = auth
            .clone()
            .oneshot(creds("192.0.2.1", "alice", RIGHT))
            .await
            .unwrap();
        assert_eq!(user.leases(), 1);
        sessions.push(user);
    }
    assert_eq!(layer.sessions("alice"), 15);
    let refused = auth
        .clone()
        .oneshot(creds("192.0.2.2", "alice", RIGHT))
        .await;
    assert_eq!(refused, Err(AuthError::Limit));
    assert_eq!(layer.sessions("alice"), 15, "a refusal takes no slot");
    // Bob has his own count; a wrong password takes no slot and is answered as such.
    let _bob = auth
        .clone()
        .oneshot(creds("192.0.2.1", "bob", RIGHT))
        .await
        .unwrap();
    let wrong = auth.clone().oneshot(creds("192.0.2.1", "bob", "x")).await;
    assert_eq!(wrong, Err(AuthError::InvalidCredentials));
    assert_eq!(layer.sessions("bob"), 1);

    // A session ends: its user (and lease) goes, and so does its slot.
    drop(sessions.pop());
    assert_eq!(layer.sessions("alice"), 14);
    let again = auth
        .clone()
        .oneshot(creds("192.0.2.2", "alice", RIGHT))
        .await;
    assert!(again.is_ok());
    drop(again);
    drop(sessions);
    assert_eq!(layer.sessions("alice"), 0);
    assert_eq!(layer.store().users(), 1, "only bob's entry is left");
}

#[tokio::test(start_paused = true)]
async fn clones_and_services_of_one_layer_share_the_count() {
    let layer = UserSessionsLayer::new(2);
    let imap = layer.layer(passwords());
    let pop3 = layer.clone().layer(passwords());
    let a = imap
        .clone()
        .oneshot(creds("192.0.2.1", "alice", RIGHT))
        .await
        .unwrap();
    // A clone of the user (the protocol service may keep one) shares the lease.
    let a_copy = a.clone();
    let _b = pop3
        .clone()
        .oneshot(creds("192.0.2.1", "alice", RIGHT))
        .await
        .unwrap();
    assert_eq!(layer.sessions("alice"), 2);
    assert_eq!(
        pop3.clone()
            .oneshot(creds("192.0.2.1", "alice", RIGHT))
            .await,
        Err(AuthError::Limit)
    );
    assert_eq!(
        imap.clone()
            .oneshot(creds("192.0.2.1", "alice", RIGHT))
            .await,
        Err(AuthError::Limit)
    );
    drop(a);
    assert_eq!(layer.sessions("alice"), 2, "a clone still holds the lease");
    drop(a_copy);
    assert_eq!(layer.sessions("alice"), 1);
    assert!(
        pop3.oneshot(creds("192.0.2.1", "alice", RIGHT))
            .await
            .is_ok()
    );
}

#[tokio::test(start_paused = true)]
async fn zero_sessions_means_no_cap() {
    let layer = UserSessionsLayer::new(0);
    let auth = layer.layer(passwords());
    let users =
        join_all((0..100).map(|_| auth.clone().oneshot(creds("192.0.2.1", "alice", RIGHT)))).await;
    assert!(
        users
            .iter()
            .all(|user| user.as_ref().unwrap().leases() == 0)
    );
    assert_eq!(layer.sessions("alice"), 0);
}

/// A store that cannot answer.
struct Down;

impl UserSessionStore for Down {
    type Future = Ready<Result<Option<u64>, BoxError>>;
    fn acquire(&self, _: &str, _: u32) -> Self::Future {
        ready(Err("connection refused".into()))
    }
    fn release(&self, _: &str, _: u64) {
        unreachable!("nothing was counted");
    }
}

#[tokio::test(start_paused = true)]
async fn a_store_that_fails_lets_logins_in_uncounted_unless_told_to_refuse() {
    let open = UserSessionsLayer::with_store(15, Down);
    assert!(open.is_fail_open(), "fail open by default");
    let auth = open.layer(passwords());
    assert_authenticator(&auth);
    let user = auth.oneshot(creds("192.0.2.1", "alice", RIGHT)).await;
    assert_eq!(
        user.expect("let in").leases(),
        0,
        "uncounted: no slot to give back"
    );

    let closed = UserSessionsLayer::with_store(15, Down).fail_open(false);
    let answer = closed
        .layer(passwords())
        .oneshot(creds("192.0.2.1", "alice", RIGHT))
        .await;
    assert_eq!(answer, Err(AuthError::Unavailable));
}

// ---------------------------------------------------------------- AutoBan

/// Records the bans asked for.
#[derive(Clone, Default)]
struct Recorded(Arc<Mutex<Vec<(IpAddr, Duration)>>>);

impl BanSink for Recorded {
    fn ban(&self, ip: IpAddr, duration: Duration) -> usize {
        self.0.lock().unwrap().push((ip, duration));
        0
    }
}

impl Recorded {
    fn bans(&self) -> Vec<(IpAddr, Duration)> {
        self.0.lock().unwrap().clone()
    }
}

#[tokio::test(start_paused = true)]
async fn the_tenth_failure_within_the_window_bans_the_address() {
    let block = IpBlock::new(IpLists::default());
    let layer = AutoBanLayer::new(block.clone());
    let auth = layer.layer(passwords());
    assert_authenticator(&auth);
    for i in 1..10 {
        // Any user, known or not; a minute and a half in all.
        let (answer, _) = timed(&auth, creds("192.0.2.1", &format!("u{i}"), "x")).await;
        assert_eq!(answer, Err(AuthError::InvalidCredentials));
        tokio::time::advance(secs(10)).await;
        assert!(block.permits(ip("192.0.2.1")), "not yet at failure {i}");
    }
    assert_eq!(layer.recent_failures(ip("192.0.2.1")), 9);
    // Successes change nothing.
    assert!(
        timed(&auth, creds("192.0.2.1", "bob", RIGHT))
            .await
            .0
            .is_ok()
    );
    fail(&auth, "192.0.2.1", "alice").await;
    assert!(!block.permits(ip("192.0.2.1")));
    assert!(!block.permits(ip("::ffff:192.0.2.1")));
    assert!(block.permits(ip("192.0.2.2")), "only that address");
    assert_eq!(
        layer.recent_failures(ip("192.0.2.1")),
        0,
        "counting starts again"
    );
}

#[tokio::test(start_paused = true)]
async fn bans_last_as_configured_and_count_ipv4_mapped_addresses_as_one() {
    let sink = Recorded::default();
    let layer = AutoBanLayer::new(sink.clone())
        .failures(3)
        .window(secs(60))
        .ban(secs(42));
    let auth = layer.layer(passwords());
    fail(&auth, "192.0.2.1", "alice").await;
    fail(&auth, "::ffff:192.0.2.1", "alice").await;
    assert!(sink.bans().is_empty());
    fail(&auth, "192.0.2.1", "alice").await;
    assert_eq!(sink.bans(), vec![(ip("192.0.2.1"), secs(42))]);

    // The default duration.
    let sink = Recorded::default();
    let auth = AutoBanLayer::new(sink.clone()).layer(passwords());
    for _ in 0..DEFAULT_BAN_FAILURES {
        fail(&auth, "2001:db8::1", "alice").await;
    }
    assert_eq!(sink.bans(), vec![(ip("2001:db8::1"), DEFAULT_BAN)]);
}

#[tokio::test(start_paused = true)]
async fn failures_spread_beyond_the_window_do_not_ban() {
    let sink = Recorded::default();
    let layer = AutoBanLayer::new(sink.clone());
    let auth = layer.layer(passwords());
    // One failure each 35 s: never more than 9 within 300 s.
    for i in 0..30 {
        if i > 0 {
            tokio::time::advance(secs(35)).await;
        }
        fail(&auth, "192.0.2.1", "alice").await;
    }
    assert!(sink.bans().is_empty());
    assert_eq!(layer.recent_failures(ip("192.0.2.1")), 9);
    // One more right away makes 10 within the window.
    fail(&auth, "192.0.2.1", "alice").await;
    assert_eq!(sink.bans().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn exempt_networks_are_never_banned() {
    let block = IpBlock::new(IpLists::default());
    let layer = AutoBanLayer::new(block.clone())
        .exempt(CidrSet::parse_list("10.0.0.0/8\n2001:db8::/32").unwrap());
    let auth = layer.layer(passwords());
    for address in ["10.1.2.3", "::ffff:10.1.2.3", "2001:db8::7"] {
        for _ in 0..50 {
            fail(&auth, address, "alice").await;
        }
        assert!(block.permits(ip(address)), "{address}");
    }
    assert_eq!(layer.tracked(), 0, "not even counted");
}

#[tokio::test(start_paused = true)]
async fn no_ban_without_an_address_or_with_failures_zero() {
    let sink = Recorded::default();
    let auth = AutoBanLayer::new(sink.clone()).layer(passwords());
    for _ in 0..50 {
        let answer = auth.clone().oneshot(Credentials::new("alice", "x")).await;
        assert_eq!(answer, Err(AuthError::InvalidCredentials));
    }
    let never = AutoBanLayer::new(sink.clone()).failures(0);
    let auth = never.layer(passwords());
    for _ in 0..50 {
        fail(&auth, "192.0.2.1", "alice").await;
    }
    assert!(sink.bans().is_empty());
    assert_eq!(never.tracked(), 0);
}

#[tokio::test(start_paused = true)]
async fn auto_ban_memory_stays_bounded_and_a_spray_does_not_shield_an_attacker() {
    let sink = Recorded::default();
    let layer = AutoBanLayer::new(sink.clone()).max_keys(1000);
    let auth = layer.layer(passwords());
    for n in 0..100_000u32 {
        let address = IpAddr::from([10, (n >> 16) as u8, (n >> 8) as u8, n as u8]);
        fail(&auth, &address.to_string(), "alice").await;
        // The attacker fails once every 999 sprayed addresses: always among the newest.
        if n % 999 == 0 && n < 10 * 999 {
            fail(&auth, "192.0.2.66", "alice").await;
        }
        assert!(layer.tracked() <= 1000);
    }
    assert_eq!(sink.bans(), vec![(ip("192.0.2.66"), DEFAULT_BAN)]);
    assert_eq!(layer.tracked(), 1000);
}

// ---------------------------------------------------------------- RecentFailures

#[test]
fn recent_failures_count_exactly_within_the_window() {
    let start = Instant::now();
    let recent = RecentFailures::new(secs(10), 5, 100);
    let at = |s: u64| start + secs(s);
    assert_eq!(recent.record("a", at(0), usize::MAX), 1);
    assert_eq!(recent.record("a", at(4), usize::MAX), 2);
    assert_eq!(recent.record("a", at(9), usize::MAX), 3);
    assert_eq!(recent.count(&"a", at(9)), 3);
    assert_eq!(recent.count(&"a", at(10)), 2, "the first left the window");
    assert_eq!(recent.record("a", at(12), usize::MAX), 3);
    // At most `keep` are kept.
    for s in 13..20 {
        recent.record("a", at(s), usize::MAX);
    }
    assert_eq!(recent.count(&"a", at(19)), 5);
    // A key quiet for a window is forgotten at the next update.
    recent.record("b", at(40), usize::MAX);
    assert_eq!(recent.len(), 1);
    assert_eq!(recent.count(&"a", at(40)), 0);
    // Reaching `clear_at` answers the count and forgets the key.
    assert_eq!(recent.record("b", at(41), 2), 2);
    assert_eq!(recent.count(&"b", at(41)), 0);
    assert_eq!(recent.record("c", at(41), 1), 1);
    assert_eq!(recent.len(), 0);
    recent.record("d", at(42), usize::MAX);
    recent.clear(&"d");
    assert_eq!(recent.len(), 0);
}

#[test]
fn recent_failures_keep_at_most_max_keys_evicting_the_quietest() {
    let start = Instant::now();
    let recent = RecentFailures::new(secs(3600), 4, 10_000);
    recent.record(u32::MAX, start, usize::MAX);
    for n in 0..100_000u32 {
        let now = start + Duration::from_millis(u64::from(n));
        recent.record(n, now, usize::MAX);
        if n % 5000 == 0 {
            // A key that keeps failing stays.
            recent.record(u32::MAX - 1, now, usize::MAX);
        }
    }
    let end = start + secs(100);
    assert_eq!(recent.len(), 10_000);
    assert_eq!(recent.count(&99_999, end), 1);
    assert_eq!(recent.count(&0, end), 0, "evicted");
    assert_eq!(recent.count(&u32::MAX, end), 0, "the quietest went first");
    assert_eq!(recent.count(&(u32::MAX - 1), end), 4);
}

// ---------------------------------------------------------------- All four

#[tokio::test(start_paused = true)]
async fn the_whole_stack_is_an_authenticator() {
    let sink = Recorded::default();
    let sessions = UserSessionsLayer::new(1);
    let verify = VerifyLimitLayer::new(2);
    let auth = ServiceBuilder::new()
        .layer(sessions.clone())
        .layer(FailureDelayLayer::new())
        .layer(AutoBanLayer::new(sink.clone()).failures(3))
        .layer(verify.clone())
        .service(passwords());
    assert_authenticator(&auth);

    let (alice, waited) = timed(&auth, creds("192.0.2.1", "alice", RIGHT)).await;
    let alice = alice.unwrap();
    assert_eq!(waited, Duration::ZERO);
    assert_eq!(
        timed(&auth, creds("192.0.2.1", "alice", RIGHT)).await,
        (Err(AuthError::Limit), Duration::ZERO)
    );
    drop(alice);
    let mut taken = Vec::new();
    for _ in 0..3 {
        let (answer, waited) = timed(&auth, creds("198.51.100.1", "bob", "x")).await;
        assert_eq!(answer, Err(AuthError::InvalidCredentials));
        taken.push(waited);
    }
    assert_eq!(taken, delays(&[2, 4, 8]));
    assert_eq!(sink.bans(), vec![(ip("198.51.100.1"), DEFAULT_BAN)]);
    assert_eq!(verify.in_flight(), 0);
    assert_eq!(sessions.sessions("alice"), 0);
}
