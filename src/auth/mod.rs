//! Authentication as a tower service: `Service<Credentials, Response = User, Error = AuthError>`.
//!
//! Because it is a service, per-user limits, failure delays and bans are layers over it.
//!
//! # Every SASL mechanism through one service
//!
//! IMAP's AUTHENTICATE and POP3's AUTH speak PLAIN, LOGIN, SCRAM-SHA-256, OAUTHBEARER and
//! XOAUTH2 (see [`sasl::Mechanisms`]), and each of them ends in one call of the
//! authentication service with [`Credentials`]: what the client proved is a [`Secret`],
//!
//! - [`Secret::Password`] for LOGIN, AUTHENTICATE PLAIN and LOGIN, USER/PASS;
//! - [`Secret::Token`] for OAUTHBEARER and XOAUTH2: a bearer token, which [`Tokens`] routes to
//!   a token-checking service of your own;
//! - [`Secret::Scram`] for SCRAM-SHA-256: the client's proof, which the service checks
//!   against the user's stored keys with [`ScramProof::verify`].
//!
//! So the layers over the service (failure delay, auto-ban, per-user session cap,
//! verification bound in `tower-mail-layers`) see every login, whatever the mechanism, and
//! count and delay its failures alike, without knowing mechanisms at all.
//!
//! SCRAM needs one thing before the proof: the user's salt and iteration count, which the
//! server sends first. That look-up is a second, small service
//! (`Service<ScramLookup, Response = ScramParameters>`, which [`PasswdFile`] also is) given to
//! [`sasl::Mechanisms::scram`]. It goes around the layers on purpose: it is no login attempt,
//! costs no hashing, and answers for unknown users too (with a salt made up consistently per
//! name, RFC 5802 section 9), so it tells nothing; the check of the proof that follows is the
//! login, and goes through the layers.

#[cfg(feature = "passwd-file")]
mod passwd_file;
pub mod sasl;
#[cfg(feature = "scram")]
mod scram;
mod secret;
mod tokens;

use std::fmt;
use std::sync::Arc;

#[cfg(any(feature = "imap", feature = "pop3"))]
use tower::ServiceExt;
use tower_service::Service;

#[cfg(feature = "passwd-file")]
pub use passwd_file::PasswdFile;
#[cfg(feature = "scram")]
pub use scram::{ScramKeys, ScramLookup, ScramParameters, ScramProof};
pub use secret::Secret;
pub use tokens::Tokens;

use crate::session::Session;

/// An authentication service with the bounds the protocol services need, named once:
/// `Service<Credentials, Response = User, Error = AuthError>`, cloneable and shareable across
/// tasks. Implemented for every such service.
pub trait Authenticator:
    Service<Credentials, Response = User, Error = AuthError, Future: Send>
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<T> Authenticator for T where
    T: Service<Credentials, Response = User, Error = AuthError, Future: Send>
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// Ask `auth` whether `user` may log in with `secret` on `session`: the one way both
/// protocol services check a login, whatever the mechanism.
#[cfg(any(feature = "imap", feature = "pop3"))]
pub(crate) async fn check<A: Authenticator>(
    auth: &A,
    session: &Arc<Session>,
    user: String,
    secret: Secret,
) -> Result<User, AuthError> {
    let credentials = Credentials {
        user,
        secret,
        session: Some(session.clone()),
    };
    auth.clone().oneshot(credentials).await
}

/// What a client presented to log in: a user name and a [`Secret`] (a password, a bearer
/// token, or a SCRAM proof).
///
/// ```
/// use tower_mail::auth::{Credentials, Secret};
///
/// let login = Credentials::new("alice", "wonderland");
/// assert_eq!(login.password(), Some("wonderland"));
/// assert_eq!(login.token(), None);
///
/// let oauth = Credentials::with_token("alice", "ya29.a0Af");
/// assert!(matches!(oauth.secret, Secret::Token(_)));
/// assert_eq!(oauth.password(), None, "a token is no password");
/// assert!(!format!("{oauth:?}").contains("ya29"), "Debug hides the secret");
/// ```
#[derive(Clone)]
pub struct Credentials {
    /// The user name as the client sent it.
    pub user: String,
    /// What the client proved its identity with. Never logged: `Debug` hides it.
    pub secret: Secret,
    /// The session asking, so that auth layers can key on the client's address or TLS state.
    pub session: Option<Arc<Session>>,
}

impl Credentials {
    /// A user name and password, without a session.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            user: user.into(),
            secret: Secret::Password(password.into()),
            session: None,
        }
    }

    /// A user name and bearer token (OAUTHBEARER, XOAUTH2), without a session.
    pub fn with_token(user: impl Into<String>, token: impl Into<String>) -> Credentials {
        Credentials {
            user: user.into(),
            secret: Secret::Token(token.into()),
            session: None,
        }
    }

    /// The password, if the secret is one.
    pub fn password(&self) -> Option<&str> {
        match &self.secret {
            Secret::Password(password) => Some(password),
            _ => None,
        }
    }

    /// The bearer token, if the secret is one.
    pub fn token(&self) -> Option<&str> {
        match &self.secret {
            Secret::Token(token) => Some(token),
            _ => None,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("secret", &self.secret)
            .finish()
    }
}

/// An authenticated user, with what the session must hold while it lasts.
///
/// Layers over the authentication service attach leases ([`User::hold`]): a per-user session
/// slot, for instance. The protocol service keeps the `User` until the session ends, so a
/// lease is released by its own drop, on every path, like every other permit.
///
/// ```
/// use tower_mail::auth::User;
/// struct Slot; // released when dropped
/// let user = User::new("alice").hold(Slot);
/// assert_eq!(user.name, "alice");
/// assert_eq!(user.leases(), 1);
/// assert_eq!(user, User::new("alice"), "leases do not count in comparisons");
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct User {
    /// The canonical user name, which also names the user's mail tree.
    pub name: String,
    /// Shared, not copied, by `clone`: a lease is released when the last clone goes.
    leases: Vec<Arc<dyn Send + Sync>>,
}

impl User {
    /// A user with no leases.
    pub fn new(name: impl Into<String>) -> User {
        User {
            name: name.into(),
            leases: Vec::new(),
        }
    }

    /// Attach `lease`, to be dropped when the session that logged in ends.
    pub fn hold(mut self, lease: impl Send + Sync + 'static) -> User {
        self.leases.push(Arc::new(lease));
        self
    }

    /// How many leases the user holds.
    pub fn leases(&self) -> usize {
        self.leases.len()
    }
}

impl PartialEq for User {
    fn eq(&self, other: &User) -> bool {
        self.name == other.name
    }
}

impl Eq for User {}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("leases", &self.leases.len())
            .finish()
    }
}

/// Why a login failed. Protocol services map these to IMAP `NO [AUTHENTICATIONFAILED]` /
/// `[UNAVAILABLE]` / `[LIMIT]` and POP3 `-ERR [AUTH]` / `[SYS/TEMP]` / `[IN-USE]`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// Unknown user or wrong password (never say which).
    InvalidCredentials,
    /// The authentication backend cannot answer now.
    Unavailable,
    /// The user has too many sessions, or is temporarily barred.
    Limit,
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthError::InvalidCredentials => "invalid credentials",
            AuthError::Unavailable => "authentication temporarily unavailable",
            AuthError::Limit => "too many sessions for this user",
        })
    }
}

impl std::error::Error for AuthError {}
