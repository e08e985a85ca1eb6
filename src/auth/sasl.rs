//! SASL (RFC 4422) for IMAP's AUTHENTICATE and POP3's AUTH: which mechanisms a service offers
//! ([`Mechanisms`]), and the mechanisms themselves, written once for both protocols.
//!
//! | mechanism | client sends | checked as |
//! |---|---|---|
//! | PLAIN (RFC 4616) | `[authzid] NUL user NUL password` | [`Secret::Password`](super::Secret::Password) |
//! | LOGIN (draft-murchison-sasl-login) | the user name, then the password, each after a challenge (`Username:`, `Password:`); an initial response is the user name | [`Secret::Password`](super::Secret::Password) |
//! | SCRAM-SHA-256 (RFC 5802, RFC 7677) | a nonce, then a proof of the password that the server cannot replay; the server proves back that it holds the keys | [`Secret::Scram`](super::Secret::Scram), after a look-up of the salt |
//! | OAUTHBEARER (RFC 7628) | `n,a=user,` `^A` `auth=Bearer token` `^A^A` | [`Secret::Token`](super::Secret::Token) |
//! | XOAUTH2 (Google's) | `user=user` `^A` `auth=Bearer token` `^A^A` | [`Secret::Token`](super::Secret::Token) |
//!
//! Every mechanism ends in one call of the authentication service, so the auth layers see
//! every login (see [the `auth` module](super#every-sasl-mechanism-through-one-service)).
//! Acting as another user (an authorization identity that differs from the user) is not
//! supported: it fails like a wrong password. So does a SCRAM final message that carries
//! another exchange's nonce (a replay). These two are decided here, without asking the
//! service: they test no password, so the layers do not count them; the session counts them
//! among its protocol errors.
//!
//! Not offered: SCRAM's channel binding (`SCRAM-SHA-256-PLUS`; a client asking for it with
//! `p=` is refused, and `y` is accepted since the server offers none), SCRAM-SHA-1,
//! CRAM-MD5, DIGEST-MD5, GSSAPI, EXTERNAL.
//!
//! # Bounds
//!
//! Each response is one line under the protocol's cap (IMAP's `max_line_len`, POP3's
//! `max_auth_line_len`), each wait for one under the pre-login idle deadline, and no
//! mechanism takes more than three challenges; `*` cancels. A malformed response ends the
//! exchange at once with a protocol error (IMAP `BAD`, POP3 `-ERR`), counted like any other.
//!
//! # Without TLS
//!
//! All mechanisms follow the rule for PLAIN: offered, and accepted, only where a plaintext
//! login is (over TLS, or where `allow_plaintext_login` says so). SCRAM does not send the
//! password, but without channel binding a man in the middle can still take over the
//! session, and a bearer token is as good as a password to whoever reads it; one rule is
//! simpler to reason about.

// The mechanisms run only inside a protocol service; PLAIN's parser is public on its own.
// POP3's framing and SCRAM's attributes; IMAP's framing has imap-codec's.
#[cfg(any(feature = "pop3", all(feature = "imap", feature = "scram")))]
pub(crate) mod base64;
#[cfg(any(feature = "imap", feature = "pop3"))]
mod exchange;
#[cfg(any(feature = "imap", feature = "pop3"))]
mod gs2;
#[cfg(any(feature = "imap", feature = "pop3"))]
mod login;
#[cfg(any(feature = "imap", feature = "pop3"))]
mod mechanisms;
#[cfg(any(feature = "imap", feature = "pop3"))]
mod oauth;
mod plain;
#[cfg(all(feature = "scram", any(feature = "imap", feature = "pop3")))]
mod scram;

#[cfg(any(feature = "imap", feature = "pop3"))]
pub(crate) use exchange::{Exchange, Failure, Step};
#[cfg(any(feature = "imap", feature = "pop3"))]
pub use mechanisms::Mechanisms;
#[cfg(any(feature = "imap", feature = "pop3"))]
pub(crate) use mechanisms::Offered;
pub use plain::{PlainError, decode_plain, plain_login};
