//! The configuration of a [`Pop3Service`](super::Pop3Service), and what the service hands
//! each of its sessions.

use std::time::Duration;

use super::maildrop::MaildropLocks;
use crate::auth::sasl::Mechanisms;
use crate::protocol::ServiceState;

/// Settings of the POP3 service. Layers may override some per connection through
/// [`SessionSettings`](crate::SessionSettings).
///
/// ```
/// use std::time::Duration;
/// use tower_mail::pop3::Pop3Config;
/// let mut config = Pop3Config::default();
/// config.idle_timeout = Duration::from_secs(15 * 60);
/// config.allow_plaintext_login = true;
/// # drop(config);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Pop3Config {
    /// Silence after which a logged-in session ends. RFC 1939 section 3: at least 10 minutes.
    pub idle_timeout: Duration,
    /// Silence after which a session that has not logged in ends: RFC 1939's ten minutes are
    /// for sessions, and a connection that never logs in costs a slot and gives nothing back.
    /// A per-connection [`SessionSettings::idle_timeout`](crate::SessionSettings::idle_timeout)
    /// replaces both.
    pub unauthenticated_idle_timeout: Duration,
    /// Longest command line. RFC 2449 section 4: 255 octets including CRLF.
    pub max_line_len: usize,
    /// Longest SASL response line (RFC 5034 lets these exceed 255 octets).
    pub max_auth_line_len: usize,
    /// Protocol errors (unknown commands, bad arguments, failed logins) that end the session.
    pub max_errors: u32,
    /// The greeting after `+OK`.
    pub greeting: String,
    /// Whether USER/PASS and AUTH are allowed before STLS.
    pub allow_plaintext_login: bool,
    /// The SASL mechanisms AUTH offers (the `SASL` capability): PLAIN and LOGIN unless set
    /// otherwise.
    pub sasl: Mechanisms,
    /// Deadline for the STLS handshake.
    pub tls_handshake_timeout: Duration,
}

impl Default for Pop3Config {
    fn default() -> Pop3Config {
        Pop3Config {
            idle_timeout: Duration::from_secs(10 * 60),
            unauthenticated_idle_timeout: Duration::from_secs(60),
            max_line_len: 253,
            max_auth_line_len: 8 * 1024,
            max_errors: 10,
            greeting: "tower-mail POP3 server ready".to_owned(),
            allow_plaintext_login: false,
            sasl: Mechanisms::new(),
            tls_handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// What a [`Pop3Service`](super::Pop3Service) hands each of its sessions; what they share
/// among themselves are its maildrop locks.
pub(super) type Pop3ServiceState<A, M> = ServiceState<A, M, Pop3Config, MaildropLocks>;

impl<A, M> Pop3ServiceState<A, M> {
    /// Which users' maildrops a session holds locked.
    pub(super) fn locks(&self) -> &MaildropLocks {
        &self.among_sessions
    }
}
