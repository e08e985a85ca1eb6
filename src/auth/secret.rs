//! What a client proves its identity with: the part of [`Credentials`](super::Credentials)
//! that differs between SASL mechanisms.

use std::fmt;

#[cfg(feature = "scram")]
use super::ScramProof;

/// What a client presented to prove who it is, by mechanism.
///
/// An authentication service answers the kinds it knows and refuses the others with
/// [`AuthError::InvalidCredentials`](super::AuthError::InvalidCredentials), like a wrong
/// password: [`PasswdFile`](super::PasswdFile) knows passwords and SCRAM proofs, a token
/// service knows tokens, and [`Tokens`](super::Tokens) puts the two together. New kinds may
/// come with new mechanisms, so a `match` needs a catch-all arm.
///
/// `Debug` shows the kind, never the secret.
///
/// ```
/// use tower_mail::auth::{AuthError, Credentials, Secret, User};
///
/// fn check(credentials: &Credentials) -> Result<User, AuthError> {
///     match &credentials.secret {
///         Secret::Password(password) if password == "wonderland" => {
///             Ok(User::new(credentials.user.clone()))
///         }
///         // Tokens, SCRAM proofs, and whatever comes later: not ours to accept.
///         _ => Err(AuthError::InvalidCredentials),
///     }
/// }
/// assert!(check(&Credentials::new("alice", "wonderland")).is_ok());
/// assert!(check(&Credentials::with_token("alice", "wonderland")).is_err());
/// assert_eq!(format!("{:?}", Secret::Password("wonderland".into())), "Password(<hidden>)");
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub enum Secret {
    /// A password: IMAP LOGIN, POP3 USER/PASS, SASL PLAIN and LOGIN.
    Password(String),
    /// An OAuth 2.0 bearer token: SASL OAUTHBEARER (RFC 7628) and XOAUTH2. The service that
    /// checks it must also check that it was issued to [`Credentials::user`](super::Credentials::user).
    Token(String),
    /// A SCRAM-SHA-256 client proof (RFC 5802, RFC 7677), to check with
    /// [`ScramProof::verify`] against the user's stored keys.
    #[cfg(feature = "scram")]
    Scram(ScramProof),
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Secret::Password(_) => "Password",
            Secret::Token(_) => "Token",
            #[cfg(feature = "scram")]
            Secret::Scram(_) => "Scram",
        };
        f.debug_tuple(kind)
            .field(&format_args!("<hidden>"))
            .finish()
    }
}
