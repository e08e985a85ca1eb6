//! Authentication as a tower service: `Service<Credentials, Response = User, Error = AuthError>`.
//!
//! Because it is a service, per-user limits, failure delays and bans are layers over it.

#[cfg(feature = "passwd-file")]
mod passwd_file;
pub mod sasl;

use std::fmt;
use std::sync::Arc;

#[cfg(any(feature = "imap", feature = "pop3"))]
use tower::ServiceExt;
use tower_service::Service;

#[cfg(feature = "passwd-file")]
pub use passwd_file::PasswdFile;

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

/// Ask `auth` whether `user` may log in with `password` on `session`: the one way both
/// protocol services check a login.
#[cfg(any(feature = "imap", feature = "pop3"))]
pub(crate) async fn check<A: Authenticator>(
    auth: &A,
    session: &Arc<Session>,
    user: String,
    password: String,
) -> Result<User, AuthError> {
    let credentials = Credentials {
        user,
        password,
        session: Some(session.clone()),
    };
    auth.clone().oneshot(credentials).await
}

/// What a client presented to log in.
#[derive(Clone)]
pub struct Credentials {
    /// The user name as the client sent it.
    pub user: String,
    /// The password. Never logged: `Debug` hides it.
    pub password: String,
    /// The session asking, so that auth layers can key on the client's address or TLS state.
    pub session: Option<Arc<Session>>,
}

impl Credentials {
    /// Credentials without a session.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            user: user.into(),
            password: password.into(),
            session: None,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<hidden>")
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
