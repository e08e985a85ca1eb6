//! The engine both protocols drive: one exchange of one mechanism, as a state machine that
//! takes the client's decoded messages and answers with the next challenge or the outcome.
//! The protocol keeps only its framing: how a challenge is written (`+ base64`), how a
//! response is read and decoded, what `*` does, and what an outcome is called on the wire.

use std::sync::Arc;

use super::login::Login;
use super::mechanisms::Mechanisms;
use super::oauth::{Flavour, OAuth};
use super::plain;
#[cfg(feature = "scram")]
use super::scram::Scram;
use crate::auth::{self, AuthError, Authenticator, Secret, User};
use crate::session::Session;

/// The most challenges one exchange sends: LOGIN and SCRAM need two, a refused OAUTHBEARER
/// two. A bound of its own, so that no mechanism, present or future, can keep a client that
/// has not logged in talking for ever.
const MAX_CHALLENGES: u8 = 3;

/// What the protocol does next.
#[derive(Debug)]
pub(crate) enum Step {
    /// Send this challenge (the protocol base64-encodes it) and pass the client's decoded
    /// answer to [`Exchange::respond`].
    Challenge(Vec<u8>),
    /// The exchange is over.
    Done(Result<User, Failure>),
}

/// Why an exchange ended without a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The client broke the mechanism's rules: a protocol error (IMAP `BAD`, POP3 `-ERR`),
    /// with this text.
    Malformed(&'static str),
    /// The login was refused (IMAP `NO [AUTHENTICATIONFAILED]`, POP3 `-ERR [AUTH]`, and the
    /// other codes of [`AuthError`]).
    Refused(AuthError),
}

/// What the mechanisms log in through: the authentication service, and the session asking.
pub(super) struct Checker<A> {
    auth: A,
    session: Arc<Session>,
}

impl<A: Authenticator> Checker<A> {
    /// Asks the authentication service, and ends the exchange with its answer.
    pub(super) async fn log_in(&self, user: String, secret: Secret) -> Step {
        Step::Done(self.check(user, secret).await.map_err(Failure::Refused))
    }

    /// Asks the authentication service.
    pub(super) async fn check(&self, user: String, secret: Secret) -> Result<User, AuthError> {
        auth::check(&self.auth, &self.session, user, secret).await
    }

    #[cfg_attr(not(feature = "scram"), allow(dead_code))]
    pub(super) fn session(&self) -> &Arc<Session> {
        &self.session
    }
}

/// The mechanism an exchange runs, with its state.
enum Mechanism {
    Plain,
    Login(Login),
    #[cfg(feature = "scram")]
    Scram(Box<Scram>),
    OAuth(OAuth),
    /// Done: nothing more is read.
    Ended,
}

/// One SASL exchange: [`start`](Exchange::start) it with the initial response if the client
/// sent one, then [`respond`](Exchange::respond) with each answer to a challenge until
/// [`Step::Done`].
pub(crate) struct Exchange<A> {
    checker: Checker<A>,
    mechanism: Mechanism,
    challenges: u8,
}

impl<A: Authenticator> Exchange<A> {
    /// An exchange of the mechanism `name` (any case), if `mechanisms` offers it.
    pub(crate) fn new(
        name: &str,
        mechanisms: &Mechanisms,
        auth: A,
        session: Arc<Session>,
    ) -> Option<Exchange<A>> {
        if !mechanisms.offered().has(name) {
            return None;
        }
        let mechanism = match name.to_ascii_uppercase().as_str() {
            "PLAIN" => Mechanism::Plain,
            "LOGIN" => Mechanism::Login(Login::default()),
            #[cfg(feature = "scram")]
            "SCRAM-SHA-256" => {
                let lookup = mechanisms.scram_lookup()?.clone();
                Mechanism::Scram(Box::new(Scram::new(lookup, super::scram::random_nonce())))
            }
            "OAUTHBEARER" => Mechanism::OAuth(OAuth::new(Flavour::OAuthBearer)),
            "XOAUTH2" => Mechanism::OAuth(OAuth::new(Flavour::XOAuth2)),
            _ => return None,
        };
        Some(Exchange {
            checker: Checker { auth, session },
            mechanism,
            challenges: 0,
        })
    }

    /// The first step: the client's initial response (SASL-IR, RFC 4959; RFC 5034), decoded,
    /// is read as the answer to an empty challenge; without one, the mechanism's first
    /// challenge.
    pub(crate) async fn start(&mut self, initial: Option<Vec<u8>>) -> Step {
        match initial {
            Some(message) => self.respond(message).await,
            None => {
                let first = match &self.mechanism {
                    Mechanism::Login(_) => Login::FIRST_CHALLENGE.to_vec(),
                    _ => Vec::new(),
                };
                self.challenge(first)
            }
        }
    }

    /// The client's answer to the last challenge, decoded.
    pub(crate) async fn respond(&mut self, message: Vec<u8>) -> Step {
        let checker = &self.checker;
        let step = match &mut self.mechanism {
            Mechanism::Plain => plain::respond(checker, &message).await,
            Mechanism::Login(login) => login.respond(checker, message).await,
            #[cfg(feature = "scram")]
            Mechanism::Scram(scram) => scram.respond(checker, message).await,
            Mechanism::OAuth(oauth) => oauth.respond(checker, &message).await,
            Mechanism::Ended => Step::Done(Err(Failure::Malformed("Authentication already ended"))),
        };
        match step {
            Step::Challenge(challenge) => self.challenge(challenge),
            done => {
                self.mechanism = Mechanism::Ended;
                done
            }
        }
    }

    fn challenge(&mut self, challenge: Vec<u8>) -> Step {
        self.challenges += 1;
        if self.challenges > MAX_CHALLENGES {
            self.mechanism = Mechanism::Ended;
            return Step::Done(Err(Failure::Malformed("Too many authentication steps")));
        }
        Step::Challenge(challenge)
    }

    /// An exchange with a given server nonce, so that tests can replay RFC 7677's example.
    #[cfg(all(test, feature = "scram"))]
    pub(super) fn scram_with_nonce(
        mechanisms: &Mechanisms,
        auth: A,
        session: Arc<Session>,
        nonce: &str,
    ) -> Exchange<A> {
        let lookup = mechanisms.scram_lookup().expect("SCRAM configured").clone();
        Exchange {
            checker: Checker { auth, session },
            mechanism: Mechanism::Scram(Box::new(Scram::new(lookup, nonce.to_owned()))),
            challenges: 0,
        }
    }
}

#[cfg(test)]
mod tests;
