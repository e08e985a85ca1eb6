//! SASL LOGIN (draft-murchison-sasl-login): the user name and the password, each after a
//! challenge. Obsolete, and still what some Outlook versions use; a plaintext mechanism like
//! PLAIN, in two steps.

use std::mem;

use super::exchange::{Checker, Failure, Step};
use crate::auth::{Authenticator, Secret};

/// Where a LOGIN exchange is.
#[derive(Default)]
pub(super) enum Login {
    /// Waiting for the user name (the initial response, or the answer to `Username:`).
    #[default]
    User,
    /// Waiting for the password.
    Password { user: String },
}

impl Login {
    /// The challenge before the user name: `VXNlcm5hbWU6` once encoded, which clients match.
    pub(super) const FIRST_CHALLENGE: &'static [u8] = b"Username:";
    /// The challenge before the password: `UGFzc3dvcmQ6`.
    const PASSWORD_CHALLENGE: &'static [u8] = b"Password:";

    pub(super) async fn respond<A: Authenticator>(
        &mut self,
        checker: &Checker<A>,
        message: Vec<u8>,
    ) -> Step {
        let Some(text) = String::from_utf8(message).ok().filter(|t| !t.is_empty()) else {
            return Step::Done(Err(Failure::Malformed("Invalid SASL LOGIN response")));
        };
        match mem::take(self) {
            Login::User => {
                *self = Login::Password { user: text };
                Step::Challenge(Login::PASSWORD_CHALLENGE.to_vec())
            }
            Login::Password { user } => checker.log_in(user, Secret::Password(text)).await,
        }
    }
}
