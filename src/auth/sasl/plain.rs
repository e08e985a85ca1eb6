//! SASL PLAIN (RFC 4616): the message read, and the mechanism's one step.

use std::fmt;

#[cfg(any(feature = "imap", feature = "pop3"))]
use super::exchange::{Checker, Failure, Step};
#[cfg(any(feature = "imap", feature = "pop3"))]
use crate::auth::{AuthError, Authenticator, Secret};

/// Why a PLAIN message cannot log anyone in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlainError {
    /// Not `[authzid] NUL authcid NUL passwd` with UTF-8 parts and a non-empty identity and
    /// password.
    Malformed,
    /// The authorization identity names another user: acting as someone else is not supported,
    /// and the answer is a failed login, like a wrong password.
    Impersonation,
}

impl fmt::Display for PlainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PlainError::Malformed => "malformed SASL PLAIN message",
            PlainError::Impersonation => "authorization identity differs from the user",
        })
    }
}

impl std::error::Error for PlainError {}

/// The parts of a PLAIN message: `(authzid, authcid, password)`, an empty authzid as `None`.
///
/// ```
/// use tower_mail::auth::sasl::decode_plain;
/// let (authzid, user, password) = decode_plain(b"\0tim\0tanstaaftanstaaf").unwrap();
/// assert_eq!((authzid, user.as_str(), password.as_str()), (None, "tim", "tanstaaftanstaaf"));
/// assert!(decode_plain(b"tim\0secret").is_err());
/// ```
pub fn decode_plain(message: &[u8]) -> Result<(Option<String>, String, String), PlainError> {
    let mut parts = message.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(PlainError::Malformed);
    };
    if authcid.is_empty() || password.is_empty() {
        return Err(PlainError::Malformed);
    }
    let text = |bytes: &[u8]| {
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| PlainError::Malformed)
    };
    let authzid = (!authzid.is_empty()).then(|| text(authzid)).transpose()?;
    Ok((authzid, text(authcid)?, text(password)?))
}

/// The user name and password to check for a PLAIN message.
///
/// ```
/// use tower_mail::auth::sasl::{plain_login, PlainError};
/// assert_eq!(plain_login(b"alice\0alice\0pw").unwrap(), ("alice".into(), "pw".into()));
/// assert_eq!(plain_login(b"root\0alice\0pw"), Err(PlainError::Impersonation));
/// ```
pub fn plain_login(message: &[u8]) -> Result<(String, String), PlainError> {
    match decode_plain(message)? {
        (Some(authzid), user, _) if authzid != user => Err(PlainError::Impersonation),
        (_, user, password) => Ok((user, password)),
    }
}

/// PLAIN's one step: the message is the whole login.
#[cfg(any(feature = "imap", feature = "pop3"))]
pub(super) async fn respond<A: Authenticator>(checker: &Checker<A>, message: &[u8]) -> Step {
    match plain_login(message) {
        Ok((user, password)) => checker.log_in(user, Secret::Password(password)).await,
        Err(PlainError::Impersonation) => {
            Step::Done(Err(Failure::Refused(AuthError::InvalidCredentials)))
        }
        Err(PlainError::Malformed) => {
            Step::Done(Err(Failure::Malformed("Invalid SASL PLAIN response")))
        }
    }
}
