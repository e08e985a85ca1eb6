//! The configuration of an [`ImapService`](super::ImapService), and what the service hands
//! each of its sessions.

use std::time::Duration;

use super::capabilities::Greetings;
use crate::auth::sasl::Mechanisms;
use crate::protocol::ServiceState;

/// Settings of the IMAP service. Layers may override some per connection through
/// [`SessionSettings`](crate::SessionSettings).
///
/// ```
/// use std::time::Duration;
/// use tower_mail::imap::ImapConfig;
/// let mut config = ImapConfig::default();
/// config.unauthenticated_idle_timeout = Duration::from_secs(30);
/// config.allow_plaintext_login = true;
/// assert_eq!(config.idle_timeout, Duration::from_secs(30 * 60));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ImapConfig {
    /// Silence after which a logged-in session ends. RFC 9051 section 5.4: at least 30 minutes.
    /// A per-connection [`SessionSettings::idle_timeout`](crate::SessionSettings::idle_timeout)
    /// may lengthen it, never shorten it.
    pub idle_timeout: Duration,
    /// Silence after which a session that has not logged in ends: short, because such a
    /// connection costs a slot and gives nothing back. A per-connection
    /// [`SessionSettings::idle_timeout`](crate::SessionSettings::idle_timeout) replaces it.
    pub unauthenticated_idle_timeout: Duration,
    /// Longest command line, and the most non-literal text one command may span. ID is the
    /// exception, in every state: RFC 2971 lets a client send 30 pairs of up to 1024 octets,
    /// so an ID command may hold up to 64,444 bytes, lines and literals together.
    pub max_line_len: usize,
    /// The most literal bytes one command other than APPEND may carry (a SEARCH string, a
    /// password).
    pub max_literal_len: usize,
    /// The most literal bytes one command may carry before login (a LOGIN password): small,
    /// because an unauthenticated client should cost the server a few KiB at most. Commands
    /// other than LOGIN and ID may not announce a synchronizing literal before login at all;
    /// ID has its own cap instead (see [`max_line_len`](Self::max_line_len)), the one
    /// command a client that has not logged in may make cost up to 64 KiB while it is read.
    pub max_unauthenticated_literal_len: usize,
    /// The largest message APPEND takes. A larger one is refused before the client sends it
    /// (or, sent as a non-synchronizing literal, ends the session).
    pub max_append_len: usize,
    /// How often a session in IDLE looks at its mailbox for changes the store did not announce
    /// (mail dropped into a Maildir by another program). Changes made through the same store
    /// are announced at once.
    pub idle_poll_interval: Duration,
    /// Protocol errors (bad syntax, commands in the wrong state, failed logins) that end the
    /// session.
    pub max_errors: u32,
    /// The greeting text after `* OK [CAPABILITY ...]`.
    pub greeting: String,
    /// Whether LOGIN and AUTHENTICATE are allowed before TLS.
    pub allow_plaintext_login: bool,
    /// The SASL mechanisms AUTHENTICATE offers (`AUTH=` capabilities): PLAIN and LOGIN unless
    /// set otherwise.
    pub sasl: Mechanisms,
    /// Deadline for the STARTTLS handshake.
    pub tls_handshake_timeout: Duration,
}

impl Default for ImapConfig {
    fn default() -> ImapConfig {
        ImapConfig {
            idle_timeout: Duration::from_secs(30 * 60),
            unauthenticated_idle_timeout: Duration::from_secs(60),
            max_line_len: 8 * 1024,
            max_literal_len: 64 * 1024,
            max_unauthenticated_literal_len: 4 * 1024,
            max_append_len: 50 * 1024 * 1024,
            idle_poll_interval: Duration::from_secs(30),
            max_errors: 10,
            greeting: "tower-mail IMAP4rev1 server ready".to_owned(),
            allow_plaintext_login: false,
            sasl: Mechanisms::new(),
            tls_handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// What an [`ImapService`](super::ImapService) hands each of its sessions; they share
/// nothing else among themselves (`\Recent` is the store's, see `recent.rs`).
pub(super) type ImapServiceState<A, M> = ServiceState<A, M, ImapConfig, Greetings>;
