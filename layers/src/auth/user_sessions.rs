//! A cap on each user's open sessions, IMAP and POP3 together (WildDuck's `maxConnections`).

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_mail::auth::{AuthError, Authenticator, Credentials, User};
use tower_service::Service;

use super::session_store::{LocalUserSessions, UserSessionStore};
use super::warn_every::WarnEvery;
use super::{AuthFuture, client_ip};

/// How many sessions a user may have open by default (WildDuck's default).
///
/// ```
/// assert_eq!(tower_mail_layers::auth::DEFAULT_MAX_USER_SESSIONS, 15);
/// ```
pub const DEFAULT_MAX_USER_SESSIONS: u32 = 15;

/// Lets a user have at most `max` sessions open at once; one more login, with the right
/// password, is answered [`AuthError::Limit`] (IMAP `NO [LIMIT]`, POP3 `-ERR [IN-USE]`).
///
/// Once the inner service has accepted the credentials, a slot is taken for the canonical
/// name it answered ([`User::name`]) and attached to the user as a lease ([`User::hold`]). The
/// session keeps the user until it ends, so the slot is given back by a drop guard, whatever
/// way the session ends. Failed logins take no slot. `max` 0 means no cap (and no lease).
///
/// Services made by one layer (and its clones) share one count: give the same stack, or
/// services made with the same layer, to the IMAP and the POP3 service, and a user's sessions
/// count across both. The counts live behind [`UserSessionStore`]; [`LocalUserSessions`], the
/// default, keeps them in this process.
///
/// The refusal is logged at info level and counted (`mail_auth_user_limit_total`).
///
/// # When the store fails
///
/// A store that cannot answer (Redis down or late, for a `RedisUserSessions`) fails open by
/// default: the login goes on without a slot, uncounted, since refusing every login while
/// Redis is down would turn a Redis outage into a mail outage. The failure is counted
/// (`mail_auth_user_store_errors_total`) and logged at warn level at most once per 10 s
/// (`event = "auth_user_store_error"`). [`fail_open(false)`](UserSessionsLayer::fail_open)
/// refuses the login instead with [`AuthError::Unavailable`] (IMAP `NO [UNAVAILABLE]`).
///
/// ```
/// use tower::{Layer, ServiceExt};
/// use tower_mail::auth::{AuthError, Credentials, User};
/// use tower_mail_layers::auth::UserSessionsLayer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let layer = UserSessionsLayer::new(1);
/// let auth = layer.layer(tower::service_fn(|c: Credentials| async move {
///     Ok::<_, AuthError>(User::new(c.user))
/// }));
/// let session = auth.clone().oneshot(Credentials::new("alice", "secret")).await.unwrap();
/// assert_eq!(layer.sessions("alice"), 1);
/// let again = auth.clone().oneshot(Credentials::new("alice", "secret")).await;
/// assert_eq!(again, Err(AuthError::Limit));
/// drop(session); // the session ended
/// assert_eq!(layer.sessions("alice"), 0);
/// # }
/// ```
pub struct UserSessionsLayer<S = LocalUserSessions> {
    cap: Arc<SessionCap<S>>,
}

/// The cap every clone of one [`UserSessionsLayer`] enforces: the store of open sessions, the
/// most per user, and what to do when the store fails.
struct SessionCap<S> {
    store: Arc<S>,
    max: u32,
    fail_open: bool,
    warn: WarnEvery,
}

impl<S> Clone for UserSessionsLayer<S> {
    fn clone(&self) -> Self {
        UserSessionsLayer {
            cap: self.cap.clone(),
        }
    }
}

impl Default for UserSessionsLayer {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_USER_SESSIONS)
    }
}

impl UserSessionsLayer {
    /// At most `max` sessions per user (0: no cap), counted in this process.
    ///
    /// ```
    /// use tower_mail_layers::auth::UserSessionsLayer;
    /// assert_eq!(UserSessionsLayer::default().max(), 15);
    /// assert_eq!(UserSessionsLayer::new(0).max(), 0);
    /// ```
    pub fn new(max: u32) -> Self {
        Self::with_store(max, LocalUserSessions::new())
    }

    /// How many sessions `user` (the canonical name) has open.
    pub fn sessions(&self, user: &str) -> u32 {
        self.cap.store.sessions(user)
    }
}

impl<S: UserSessionStore> UserSessionsLayer<S> {
    /// At most `max` sessions per user (0: no cap), counted in `store`.
    ///
    /// ```
    /// use tower_mail_layers::auth::{LocalUserSessions, UserSessionsLayer};
    /// let store = LocalUserSessions::new();
    /// let layer = UserSessionsLayer::with_store(15, store.clone());
    /// assert_eq!(store.sessions("alice"), 0);
    /// # drop(layer);
    /// ```
    pub fn with_store(max: u32, store: S) -> Self {
        UserSessionsLayer {
            cap: Arc::new(SessionCap {
                store: Arc::new(store),
                max,
                fail_open: true,
                warn: WarnEvery::default(),
            }),
        }
    }

    /// What a login gets when the store fails (see
    /// [When the store fails](UserSessionsLayer#when-the-store-fails)): `true`, the default,
    /// lets it in uncounted; `false` refuses it with [`AuthError::Unavailable`].
    ///
    /// ```
    /// use tower_mail_layers::auth::UserSessionsLayer;
    /// assert!(UserSessionsLayer::new(15).is_fail_open());
    /// assert!(!UserSessionsLayer::new(15).fail_open(false).is_fail_open());
    /// ```
    pub fn fail_open(self, fail_open: bool) -> Self {
        UserSessionsLayer {
            cap: Arc::new(SessionCap {
                store: self.cap.store.clone(),
                max: self.cap.max,
                fail_open,
                warn: WarnEvery::default(),
            }),
        }
    }

    /// Whether a login is let in when the store fails.
    pub fn is_fail_open(&self) -> bool {
        self.cap.fail_open
    }

    /// The cap (0: none).
    pub fn max(&self) -> u32 {
        self.cap.max
    }

    /// The store that counts.
    pub fn store(&self) -> &S {
        &self.cap.store
    }
}

impl<S> fmt::Debug for UserSessionsLayer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserSessionsLayer")
            .field("max", &self.cap.max)
            .field("fail_open", &self.cap.fail_open)
            .finish_non_exhaustive()
    }
}

impl<A, S> Layer<A> for UserSessionsLayer<S> {
    type Service = UserSessionsService<A, S>;

    fn layer(&self, inner: A) -> Self::Service {
        UserSessionsService {
            inner,
            cap: self.cap.clone(),
        }
    }
}

/// The service [`UserSessionsLayer`] makes.
///
/// ```
/// use tower::Layer;
/// use tower_mail::auth::{AuthError, Authenticator, Credentials, User};
/// use tower_mail_layers::auth::{UserSessionsLayer, UserSessionsService};
///
/// let inner = tower::service_fn(|c: Credentials| async move { Ok::<_, AuthError>(User::new(c.user)) });
/// let service: UserSessionsService<_> = UserSessionsLayer::default().layer(inner);
/// fn usable(_: impl Authenticator) {}
/// usable(service);
/// ```
pub struct UserSessionsService<A, S = LocalUserSessions> {
    inner: A,
    cap: Arc<SessionCap<S>>,
}

impl<A: Clone, S> Clone for UserSessionsService<A, S> {
    fn clone(&self) -> Self {
        UserSessionsService {
            inner: self.inner.clone(),
            cap: self.cap.clone(),
        }
    }
}

impl<A: fmt::Debug, S> fmt::Debug for UserSessionsService<A, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserSessionsService")
            .field("inner", &self.inner)
            .field("max", &self.cap.max)
            .finish_non_exhaustive()
    }
}

impl<A: Authenticator, S: UserSessionStore> Service<Credentials> for UserSessionsService<A, S> {
    type Response = User;
    type Error = AuthError;
    type Future = AuthFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), AuthError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, credentials: Credentials) -> AuthFuture {
        let mut inner = super::take_ready(&mut self.inner);
        let cap = self.cap.clone();
        let ip = client_ip(&credentials);
        Box::pin(async move {
            let user = inner.call(credentials).await?;
            if cap.max == 0 {
                return Ok(user);
            }
            // Polled at once, and the slot becomes a lease in the same poll: nothing between
            // can drop it uncounted.
            match cap.store.acquire(&user.name, cap.max).await {
                Ok(Some(slot)) => {
                    let lease = SessionLease {
                        store: cap.store.clone(),
                        user: user.name.clone(),
                        slot,
                    };
                    Ok(user.hold(lease))
                }
                Ok(None) => {
                    tracing::info!(
                        event = "auth_user_limit",
                        remote_addr = ip.map(tracing::field::display),
                        user = %user.name,
                        max_sessions = cap.max,
                        "login refused: the user has too many sessions open"
                    );
                    #[cfg(feature = "metrics")]
                    ::metrics::counter!("mail_auth_user_limit_total").increment(1);
                    Err(AuthError::Limit)
                }
                Err(error) => {
                    let decision = if cap.fail_open {
                        "login let in uncounted"
                    } else {
                        "login refused"
                    };
                    match cap.warn.failed() {
                        Some(held_back) => tracing::warn!(
                            event = "auth_user_store_error",
                            remote_addr = ip.map(tracing::field::display),
                            user = %user.name,
                            error = %error,
                            held_back,
                            fail_open = cap.fail_open,
                            "{decision}: the user session store did not answer (at most one \
                             warning per 10 s)"
                        ),
                        None => tracing::debug!(
                            event = "auth_user_store_error",
                            remote_addr = ip.map(tracing::field::display),
                            user = %user.name,
                            error = %error,
                            fail_open = cap.fail_open,
                            "{decision}: the user session store did not answer"
                        ),
                    }
                    #[cfg(feature = "metrics")]
                    ::metrics::counter!("mail_auth_user_store_errors_total").increment(1);
                    if cap.fail_open {
                        Ok(user)
                    } else {
                        Err(AuthError::Unavailable)
                    }
                }
            }
        })
    }
}

/// A user's session slot, held by the session through [`User::hold`]; given back on drop.
struct SessionLease<S: UserSessionStore> {
    store: Arc<S>,
    user: String,
    slot: u64,
}

impl<S: UserSessionStore> Drop for SessionLease<S> {
    fn drop(&mut self) {
        self.store.release(&self.user, self.slot);
    }
}
