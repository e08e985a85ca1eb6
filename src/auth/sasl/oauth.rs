//! The bearer-token mechanisms: OAUTHBEARER (RFC 7628) and Google's XOAUTH2. The token goes to
//! the authentication service as [`Secret::Token`]; a refusal is told in a JSON challenge,
//! which the client answers (OAUTHBEARER with `^A`, XOAUTH2 with an empty line) before the
//! final failure.

use super::exchange::{Checker, Failure, Step};
use super::gs2;
use crate::auth::{AuthError, Authenticator, Secret};

/// Which of the two message formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flavour {
    /// `n,a=user,^Aauth=Bearer token^A^A`, with other `key=value^A` pairs (host, port) allowed.
    OAuthBearer,
    /// `user=user^Aauth=Bearer token^A^A`.
    XOAuth2,
}

/// Where a token exchange is.
pub(super) struct OAuth {
    flavour: Flavour,
    /// Set once the token was refused and the error challenge sent: the next message, whatever
    /// it is, ends the exchange with this.
    refused: Option<AuthError>,
}

const KVSEP: char = '\x01';

impl OAuth {
    pub(super) fn new(flavour: Flavour) -> OAuth {
        OAuth {
            flavour,
            refused: None,
        }
    }

    pub(super) async fn respond<A: Authenticator>(
        &mut self,
        checker: &Checker<A>,
        message: &[u8],
    ) -> Step {
        if let Some(error) = self.refused.take() {
            // RFC 7628 section 3.2.3: the client acknowledges the error (with ^A), and the
            // server then fails the exchange, whatever the client said.
            return Step::Done(Err(Failure::Refused(error)));
        }
        let parsed = std::str::from_utf8(message)
            .map_err(|_| "Invalid bearer token message")
            .and_then(|text| match self.flavour {
                Flavour::OAuthBearer => parse_oauthbearer(text),
                Flavour::XOAuth2 => parse_xoauth2(text),
            });
        let (user, token) = match parsed {
            Ok(parts) => parts,
            Err(reason) => return Step::Done(Err(Failure::Malformed(reason))),
        };
        match checker.check(user, Secret::Token(token)).await {
            Ok(user) => Step::Done(Ok(user)),
            Err(error) => {
                self.refused = Some(error);
                Step::Challenge(self.error_challenge().to_vec())
            }
        }
    }

    /// The JSON a refused client is sent. RFC 7628 section 3.2.2: `status` is an RFC 6750 error
    /// code; XOAUTH2 clients expect Google's HTTP-style status.
    fn error_challenge(&self) -> &'static [u8] {
        match self.flavour {
            Flavour::OAuthBearer => br#"{"status":"invalid_token","schemes":"bearer"}"#,
            Flavour::XOAuth2 => br#"{"status":"401","schemes":"bearer"}"#,
        }
    }
}

/// `gs2-header ^A *(key=value ^A) ^A` (RFC 7628 section 3.1): the user from the header's
/// authorization identity, which this server requires (the token alone names no mail tree
/// the layers could key on), and the token from `auth=`.
fn parse_oauthbearer(text: &str) -> Result<(String, String), &'static str> {
    let (header, rest) = gs2::split(text)?;
    let user = header.authzid.ok_or("OAUTHBEARER without a user (a=)")?;
    let pairs = rest
        .strip_prefix(KVSEP)
        .ok_or("Invalid OAUTHBEARER message")?;
    let token = bearer_token(pairs)?;
    Ok((user, token))
}

/// `user=... ^A auth=Bearer ... ^A ^A`.
fn parse_xoauth2(text: &str) -> Result<(String, String), &'static str> {
    let (first, pairs) = text.split_once(KVSEP).ok_or("Invalid XOAUTH2 message")?;
    let user = first
        .strip_prefix("user=")
        .filter(|user| !user.is_empty())
        .ok_or("XOAUTH2 without a user")?;
    let token = bearer_token(pairs)?;
    Ok((user.to_owned(), token))
}

/// The token of `auth=Bearer <token>` among `key=value` pairs, each ended by `^A`, and the
/// list by one more `^A`; other keys are ignored (RFC 7628 defines `host` and `port`, and
/// allows more).
fn bearer_token(pairs: &str) -> Result<String, &'static str> {
    const INVALID: &str = "Invalid bearer token message";
    let pairs = pairs.strip_suffix("\x01\x01").ok_or(INVALID)?;
    let mut token = None;
    for pair in pairs.split(KVSEP) {
        let (key, value) = pair.split_once('=').ok_or(INVALID)?;
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(INVALID);
        }
        if key == "auth" {
            if token.is_some() {
                return Err(INVALID);
            }
            token = Some(bearer(value).ok_or("Not a bearer token")?);
        }
    }
    token.map(str::to_owned).ok_or("No bearer token (auth=)")
}

/// The token of `Bearer <token>` (the scheme in any case), if the token is a `b64token`
/// (RFC 6750 section 2.1): `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn bearer(credentials: &str) -> Option<&str> {
    let (scheme, token) = credentials.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("Bearer") {
        return None;
    }
    let body = token.trim_end_matches('=');
    let valid = !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
    valid.then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauthbearer_messages() {
        // RFC 7628 section 4.1's example.
        let message = "n,a=user@example.com,\x01host=server.example.com\x01port=143\x01\
                       auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01";
        assert_eq!(
            parse_oauthbearer(message),
            Ok((
                "user@example.com".into(),
                "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==".into()
            ))
        );
        assert_eq!(
            parse_oauthbearer("n,,\x01auth=Bearer abc\x01\x01"),
            Err("OAUTHBEARER without a user (a=)")
        );
        for bad in [
            "n,a=u,\x01auth=Bearer abc\x01",
            "n,a=u,auth=Bearer abc\x01\x01",
            "n,a=u,\x01\x01",
            "n,a=u,\x01\x01\x01",
            "n,a=u,\x01host=x\x01\x01",
            "n,a=u,\x01auth=Basic abc\x01\x01",
            "n,a=u,\x01auth=Bearer a b\x01\x01",
            "n,a=u,\x01auth=Bearer \x01\x01",
            "n,a=u,\x01auth=Bearer a\x01auth=Bearer b\x01\x01",
            "n,a=u,\x01auth=Bearer a\x01\x01\x01",
            "n,a=u,\x01noequals\x01auth=Bearer a\x01\x01",
            "p=tls-unique,a=u,\x01auth=Bearer abc\x01\x01",
        ] {
            assert!(parse_oauthbearer(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn xoauth2_messages() {
        // Google's example format.
        assert_eq!(
            parse_xoauth2(
                "user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg\x01\x01"
            ),
            Ok((
                "someuser@example.com".into(),
                "ya29.vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg".into()
            ))
        );
        for bad in [
            "user=\x01auth=Bearer abc\x01\x01",
            "auth=Bearer abc\x01user=u\x01\x01",
            "user=u\x01auth=Bearer abc\x01",
            "user=u\x01auth=bearer-abc\x01\x01",
            "user=u",
        ] {
            assert!(parse_xoauth2(bad).is_err(), "{bad:?}");
        }
    }
}
