//! [`Tokens`]: bearer tokens to one authentication service, everything else to another.

use std::task::{Context, Poll};

use futures_util::future::Either;
use tower::ServiceExt;
use tower::util::Oneshot;
use tower_service::Service;

use super::{AuthError, Authenticator, Credentials, Secret, User};

/// An authentication service that sends [`Secret::Token`] credentials (OAUTHBEARER, XOAUTH2)
/// to `tokens` and all others (passwords, SCRAM proofs) to `passwords`.
///
/// Put the auth layers of `tower-mail-layers` over the `Tokens`, not under it, so that they
/// count a bad token like a bad password. The token service gets the user name the client
/// gave and the token, and must check both: that the token is valid, and that it was issued to
/// that user (or to someone allowed to act as them). The [`User`] it answers with names the
/// mail tree the session opens.
///
/// Offer the token mechanisms with [`Mechanisms::oauth`](super::sasl::Mechanisms::oauth):
/// the protocol services cannot see through the layers whether a token service is there.
///
/// ```
/// use tower::ServiceExt;
/// use tower_mail::auth::{AuthError, Credentials, PasswdFile, Tokens, User};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let users = PasswdFile::parse("alice:{PLAIN}wonderland\n");
/// // A stand-in for asking the token issuer (an introspection endpoint, a JWT check, ...).
/// let issuer = tower::service_fn(|c: Credentials| async move {
///     match (c.user.as_str(), c.token()) {
///         ("alice", Some("t0ken-for-alice")) => Ok(User::new("alice")),
///         _ => Err(AuthError::InvalidCredentials),
///     }
/// });
/// let auth = Tokens::new(users, issuer);
///
/// let by_token = auth.clone().oneshot(Credentials::with_token("alice", "t0ken-for-alice")).await;
/// assert_eq!(by_token.unwrap().name, "alice");
/// let by_password = auth.clone().oneshot(Credentials::new("alice", "wonderland")).await;
/// assert_eq!(by_password.unwrap().name, "alice");
/// let password_as_token = auth.oneshot(Credentials::with_token("alice", "wonderland")).await;
/// assert_eq!(password_as_token, Err(AuthError::InvalidCredentials));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Tokens<P, T> {
    passwords: P,
    tokens: T,
}

impl<P, T> Tokens<P, T> {
    /// Tokens to `tokens`, everything else to `passwords`.
    pub fn new(passwords: P, tokens: T) -> Tokens<P, T> {
        Tokens { passwords, tokens }
    }
}

impl<P: Authenticator, T: Authenticator> Service<Credentials> for Tokens<P, T> {
    type Response = User;
    type Error = AuthError;
    type Future = Either<Oneshot<P, Credentials>, Oneshot<T, Credentials>>;

    /// Always ready: the service a request goes to is made ready in `call`, on a clone, so
    /// that the other one's readiness never holds a login up.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), AuthError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, credentials: Credentials) -> Self::Future {
        match credentials.secret {
            Secret::Token(_) => Either::Right(self.tokens.clone().oneshot(credentials)),
            _ => Either::Left(self.passwords.clone().oneshot(credentials)),
        }
    }
}
