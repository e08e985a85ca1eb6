//! A bound on verification work: at most N password checks at once, a deadline to wait for one.

use std::fmt;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::Semaphore;
use tower_layer::Layer;
use tower_mail::auth::{AuthError, Authenticator, Credentials, User};
use tower_service::Service;
use tracing::Instrument;

use super::{AuthFuture, client_ip};

/// How long a login waits for a verification slot by default, before
/// [`AuthError::Unavailable`].
///
/// ```
/// use std::time::Duration;
/// assert_eq!(tower_mail_layers::auth::DEFAULT_QUEUE_TIMEOUT, Duration::from_secs(2));
/// ```
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs at most `max_in_flight` verifications at once; a login that does not get a slot within
/// the queue deadline fails with [`AuthError::Unavailable`] (IMAP `NO [UNAVAILABLE]`, POP3
/// `-ERR [SYS/TEMP]`).
///
/// A password hash costs tens of milliseconds of CPU and megabytes of memory on a blocking
/// thread. Without a bound, a burst of logins piles up blocking work and every login waits for
/// all of it; with one, the server does at most N at a time, and a login that would wait too
/// long is told to come back, which costs nothing.
///
/// - **A started verification keeps its slot until it ends.** Once a login has a slot, the
///   inner call runs in a Tokio task of its own that owns the slot. A client that disconnects
///   mid-verification drops only its wait for the answer: the hash still being computed on a
///   blocking thread keeps counting, so connect, `LOGIN`, disconnect loops cannot run more
///   than N hashes at once.
/// - **Waiting is fair and bounded in time**: slots go in arrival order (Tokio's semaphore),
///   and each waiting login gives up at its deadline. Waiters are bounded by the open
///   connections, each of which has at most one login in flight.
/// - **`poll_ready` holds nothing**: the service is always ready and reserves no slot (so
///   clones made ready and then dropped cannot hoard slots). The inner service's readiness is
///   awaited inside the task, under the slot, on a clone of it made at call time.
/// - **A panicking verification** fails its own login with [`AuthError::Unavailable`], is
///   logged at error level, and gives its slot back.
///
/// Services made by one layer (and its clones) share the slots: wrap the authentication service
/// once, or layer the IMAP and the POP3 one with the same layer, and the bound is the
/// process's. Needs a Tokio runtime when called.
///
/// ```
/// use std::time::Duration;
/// use tower::{Layer, ServiceExt};
/// use tower_mail::auth::{AuthError, Credentials, User};
/// use tower_mail_layers::auth::VerifyLimitLayer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let layer = VerifyLimitLayer::new(2).queue_timeout(Duration::from_millis(500));
/// let auth = layer.layer(tower::service_fn(|c: Credentials| async move {
///     // An expensive hash would be checked here.
///     if c.password() == Some("secret") { Ok(User::new(c.user)) } else { Err(AuthError::InvalidCredentials) }
/// }));
/// let user = auth.oneshot(Credentials::new("alice", "secret")).await.unwrap();
/// assert_eq!(user.name, "alice");
/// assert_eq!(layer.in_flight(), 0);
/// # }
/// ```
#[derive(Clone)]
pub struct VerifyLimitLayer {
    slots: Arc<VerifySlots>,
}

/// The verification slots every clone of one [`VerifyLimitLayer`] takes from, and how long a
/// login may wait for one.
struct VerifySlots {
    slots: Arc<Semaphore>,
    max_in_flight: usize,
    queue_timeout: Duration,
}

impl VerifyLimitLayer {
    /// At most `max_in_flight` verifications at once (at least 1), each login waiting at most
    /// [`DEFAULT_QUEUE_TIMEOUT`] for its turn.
    ///
    /// ```
    /// use tower_mail_layers::auth::VerifyLimitLayer;
    /// assert_eq!(VerifyLimitLayer::new(4).max_in_flight(), 4);
    /// assert_eq!(VerifyLimitLayer::new(0).max_in_flight(), 1);
    /// ```
    pub fn new(max_in_flight: usize) -> Self {
        Self::build(max_in_flight, DEFAULT_QUEUE_TIMEOUT)
    }

    /// As many verifications at once as the machine has cores
    /// ([`available_parallelism`](std::thread::available_parallelism), 1 if unknown).
    ///
    /// ```
    /// use tower_mail_layers::auth::VerifyLimitLayer;
    /// assert!(VerifyLimitLayer::per_core().max_in_flight() >= 1);
    /// ```
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// How long a login waits for a slot before [`AuthError::Unavailable`]. `Duration::ZERO`:
    /// take a free slot or fail at once.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_mail_layers::auth::VerifyLimitLayer;
    /// let layer = VerifyLimitLayer::new(2).queue_timeout(Duration::from_millis(500));
    /// assert_eq!(layer.queue_deadline(), Duration::from_millis(500));
    /// ```
    pub fn queue_timeout(self, timeout: Duration) -> Self {
        Self::build(self.slots.max_in_flight, timeout)
    }

    fn build(max_in_flight: usize, queue_timeout: Duration) -> Self {
        let max_in_flight = max_in_flight.clamp(1, Semaphore::MAX_PERMITS);
        VerifyLimitLayer {
            slots: Arc::new(VerifySlots {
                slots: Arc::new(Semaphore::new(max_in_flight)),
                max_in_flight,
                queue_timeout,
            }),
        }
    }

    /// The bound.
    pub fn max_in_flight(&self) -> usize {
        self.slots.max_in_flight
    }

    /// The queue deadline.
    pub fn queue_deadline(&self) -> Duration {
        self.slots.queue_timeout
    }

    /// How many verifications hold a slot now, across every service made by this layer.
    pub fn in_flight(&self) -> usize {
        self.slots.max_in_flight - self.slots.slots.available_permits()
    }
}

impl fmt::Debug for VerifyLimitLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyLimitLayer")
            .field("max_in_flight", &self.slots.max_in_flight)
            .field("in_flight", &self.in_flight())
            .field("queue_timeout", &self.slots.queue_timeout)
            .finish()
    }
}

impl<A> Layer<A> for VerifyLimitLayer {
    type Service = VerifyLimitService<A>;

    fn layer(&self, inner: A) -> Self::Service {
        VerifyLimitService {
            inner,
            slots: self.slots.clone(),
        }
    }
}

/// The service [`VerifyLimitLayer`] makes.
///
/// ```
/// use tower::Layer;
/// use tower_mail::auth::{AuthError, Authenticator, Credentials, User};
/// use tower_mail_layers::auth::{VerifyLimitLayer, VerifyLimitService};
///
/// let inner = tower::service_fn(|c: Credentials| async move { Ok::<_, AuthError>(User::new(c.user)) });
/// let service: VerifyLimitService<_> = VerifyLimitLayer::new(1).layer(inner);
/// fn usable(_: impl Authenticator) {}
/// usable(service);
/// ```
#[derive(Clone)]
pub struct VerifyLimitService<A> {
    inner: A,
    slots: Arc<VerifySlots>,
}

impl<A: fmt::Debug> fmt::Debug for VerifyLimitService<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyLimitService")
            .field("inner", &self.inner)
            .field("max_in_flight", &self.slots.max_in_flight)
            .finish()
    }
}

impl<A: Authenticator> Service<Credentials> for VerifyLimitService<A> {
    type Response = User;
    type Error = AuthError;
    type Future = AuthFuture;

    /// Always ready: slots are taken in `call`, and the inner service is made ready under one.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), AuthError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, credentials: Credentials) -> AuthFuture {
        let mut inner = self.inner.clone();
        let slots = self.slots.clone();
        Box::pin(async move {
            let slot =
                tokio::time::timeout(slots.queue_timeout, slots.slots.clone().acquire_owned())
                    .await;
            let Ok(Ok(slot)) = slot else {
                // The semaphore is never closed: only the deadline gets here.
                tracing::warn!(
                    event = "auth_verify_queue_timeout",
                    remote_addr = client_ip(&credentials).map(tracing::field::display),
                    user = %credentials.user,
                    max_in_flight = slots.max_in_flight,
                    queue_timeout_ms = slots.queue_timeout.as_millis() as u64,
                    "no verification slot within the queue deadline: login refused as unavailable"
                );
                rejected("queue_timeout");
                return Err(AuthError::Unavailable);
            };
            let ip = client_ip(&credentials);
            // The task owns the slot: dropping this future (the client left) detaches the
            // task, which finishes the verification and only then frees the slot.
            let verification = tokio::spawn(
                async move {
                    let _slot = slot;
                    poll_fn(|cx| inner.poll_ready(cx)).await?;
                    inner.call(credentials).await
                }
                .in_current_span(),
            );
            match verification.await {
                Ok(answer) => answer,
                Err(error) => {
                    tracing::error!(
                        event = "auth_verify_failed",
                        remote_addr = ip.map(tracing::field::display),
                        panicked = error.is_panic(),
                        "the verification task did not finish: login refused as unavailable"
                    );
                    rejected(if error.is_panic() {
                        "panicked"
                    } else {
                        "cancelled"
                    });
                    Err(AuthError::Unavailable)
                }
            }
        })
    }
}

/// Count a login this layer refused, by `reason`.
fn rejected(reason: &'static str) {
    #[cfg(feature = "metrics")]
    ::metrics::counter!("mail_auth_verifications_rejected_total", "reason" => reason).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = reason;
}
