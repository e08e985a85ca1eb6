//! SASL SCRAM-SHA-256 (RFC 5802, RFC 7677), the server's side of the messages:
//!
//! ```text
//! C: n,,n=user,r=<client nonce>                          client-first-message
//! S: r=<client nonce><server nonce>,s=<salt>,i=4096      server-first-message (after the look-up)
//! C: c=biws,r=<both nonces>,p=<proof>                    client-final-message
//! S: v=<server signature>                                 server-final-message (after the check)
//! C: (empty)                                              and the protocol's OK
//! ```
//!
//! The arithmetic is in [`ScramProof`](crate::auth::ScramProof), checked by the
//! authentication service. No channel binding: see [`gs2`](super::gs2).

use tower::ServiceExt;

use super::base64;
use super::exchange::{Checker, Failure, Step};
use super::gs2;
use super::mechanisms::LookupService;
use crate::auth::{
    AuthError, Authenticator, ScramLookup, ScramParameters, ScramProof, Secret, User,
};

/// Random bytes in a server nonce: 144 bits, 24 characters once encoded.
const NONCE_BYTES: usize = 18;

/// Where a SCRAM exchange is.
enum State {
    /// Waiting for the client-first-message.
    First,
    /// The server-first-message was sent; waiting for the proof.
    Final(Pending),
    /// The service accepted the proof and the server's signature was sent; waiting for the
    /// client's empty acknowledgement.
    Signed(User),
    /// Nothing more to read (a step took the state out).
    Spent,
}

/// What the server-first-message committed to, for the final message.
struct Pending {
    user: String,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
    parameters: ScramParameters,
}

/// One SCRAM-SHA-256 exchange.
pub(super) struct Scram {
    lookup: LookupService,
    server_nonce: String,
    state: State,
}

/// A fresh server nonce: random bytes in base64, which has no `,`.
///
/// # Panics
///
/// If the operating system's random number generator fails; a server that cannot draw
/// random numbers cannot run SCRAM safely.
pub(super) fn random_nonce() -> String {
    let mut bytes = [0u8; NONCE_BYTES];
    getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
    base64::encode(&bytes)
}

impl Scram {
    pub(super) fn new(lookup: LookupService, server_nonce: String) -> Scram {
        Scram {
            lookup,
            server_nonce,
            state: State::First,
        }
    }

    pub(super) async fn respond<A: Authenticator>(
        &mut self,
        checker: &Checker<A>,
        message: Vec<u8>,
    ) -> Step {
        let step = match std::mem::replace(&mut self.state, State::Spent) {
            State::First => self.first(checker, &message).await,
            State::Final(pending) => self.proof(checker, pending, &message).await,
            State::Signed(user) if message.is_empty() => Ok(Step::Done(Ok(user))),
            State::Signed(_) => Err(Failure::Malformed("SCRAM expects an empty last response")),
            State::Spent => Err(Failure::Malformed("Authentication already ended")),
        };
        step.unwrap_or_else(|failure| Step::Done(Err(failure)))
    }

    /// The client-first-message: look the user up, send salt and iterations.
    async fn first<A: Authenticator>(
        &mut self,
        checker: &Checker<A>,
        message: &[u8],
    ) -> Result<Step, Failure> {
        let text = std::str::from_utf8(message).map_err(|_| malformed())?;
        let (header, bare) = gs2::split(text).map_err(Failure::Malformed)?;
        let (user, client_nonce) = parse_client_first_bare(bare)?;
        if header.authzid.is_some_and(|authzid| authzid != user) {
            // Acting as someone else is not supported: a failed login, as for PLAIN.
            return Err(Failure::Refused(AuthError::InvalidCredentials));
        }
        let lookup = ScramLookup {
            user: user.clone(),
            session: Some(checker.session().clone()),
        };
        let parameters = self
            .lookup
            .clone()
            .oneshot(lookup)
            .await
            .map_err(Failure::Refused)?;
        let nonce = format!("{client_nonce}{}", self.server_nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            base64::encode(&parameters.salt),
            parameters.iterations
        );
        let challenge = server_first.clone().into_bytes();
        self.state = State::Final(Pending {
            user,
            gs2_header: header.raw.to_owned(),
            client_first_bare: bare.to_owned(),
            server_first,
            nonce,
            parameters,
        });
        Ok(Step::Challenge(challenge))
    }

    /// The client-final-message: have the service check the proof, send the signature.
    async fn proof<A: Authenticator>(
        &mut self,
        checker: &Checker<A>,
        pending: Pending,
        message: &[u8],
    ) -> Result<Step, Failure> {
        let text = std::str::from_utf8(message).map_err(|_| malformed())?;
        let (without_proof, proof) = text.rsplit_once(",p=").ok_or_else(malformed)?;
        let mut attributes = without_proof.split(',');
        let binding = attributes
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or_else(malformed)?;
        let nonce = attributes
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or_else(malformed)?;
        // Extensions after the nonce are ignored, as RFC 5802 asks; the proof is last.
        if base64::decode(binding.as_bytes()).ok().as_deref() != Some(pending.gs2_header.as_bytes())
        {
            return Err(Failure::Malformed("SCRAM channel binding does not match"));
        }
        if nonce != pending.nonce {
            // Another exchange's nonce: a replay, or a confused client.
            return Err(Failure::Refused(AuthError::InvalidCredentials));
        }
        let client_proof = base64::decode(proof.as_bytes())
            .ok()
            .and_then(|proof| <[u8; 32]>::try_from(proof).ok())
            .ok_or_else(malformed)?;
        let auth_message = format!(
            "{},{},{without_proof}",
            pending.client_first_bare, pending.server_first
        );
        let proof = ScramProof::new(pending.parameters, auth_message.into_bytes(), client_proof);
        let user = checker
            .check(pending.user, Secret::Scram(proof.clone()))
            .await
            .map_err(Failure::Refused)?;
        let Some(signature) = proof.server_signature() else {
            tracing::error!(
                user = %user.name,
                "the authentication service accepted a SCRAM proof without verifying it \
                 (ScramProof::verify): login refused"
            );
            return Err(Failure::Refused(AuthError::Unavailable));
        };
        self.state = State::Signed(user);
        Ok(Step::Challenge(
            format!("v={}", base64::encode(&signature)).into_bytes(),
        ))
    }
}

fn malformed() -> Failure {
    Failure::Malformed("Invalid SCRAM message")
}

/// `n=user,r=nonce[,extensions]`: the user name unescaped, and the client's nonce. A
/// mandatory extension (`m=`) fails, as RFC 5802 section 5.1 asks of a server that knows none.
fn parse_client_first_bare(bare: &str) -> Result<(String, &str), Failure> {
    let mut attributes = bare.split(',');
    let user = match attributes.next() {
        Some(first) if first.starts_with("m=") => {
            return Err(Failure::Malformed("SCRAM extensions are not supported"));
        }
        Some(first) => first
            .strip_prefix("n=")
            .and_then(gs2::unescape)
            .ok_or_else(malformed)?,
        None => return Err(malformed()),
    };
    let nonce = attributes
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .filter(|nonce| is_nonce(nonce))
        .ok_or_else(malformed)?;
    Ok((user, nonce))
}

/// RFC 5802's `printable`: a non-empty run of visible ASCII but `,`.
fn is_nonce(nonce: &str) -> bool {
    !nonce.is_empty() && nonce.bytes().all(|b| b.is_ascii_graphic() && b != b',')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_first_bare_is_read_strictly() {
        assert_eq!(
            parse_client_first_bare("n=user,r=rOprNGfwEbeRWgbNEkqO").unwrap(),
            ("user".to_owned(), "rOprNGfwEbeRWgbNEkqO")
        );
        assert_eq!(
            parse_client_first_bare("n=a=2Cb,r=x,e=ignored").unwrap(),
            ("a,b".to_owned(), "x")
        );
        assert_eq!(
            parse_client_first_bare("m=ext,n=user,r=abc"),
            Err(Failure::Malformed("SCRAM extensions are not supported"))
        );
        for bad in [
            "",
            "n=user",
            "n=user,r=",
            "r=abc,n=user",
            "n=,r=abc",
            "n=u=,r=a",
            "n=u,r=a b",
        ] {
            assert!(parse_client_first_bare(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn nonces_are_random_and_comma_free() {
        let (a, b) = (random_nonce(), random_nonce());
        assert_ne!(a, b);
        assert_eq!(a.len(), 24);
        assert!(is_nonce(&a));
    }
}
