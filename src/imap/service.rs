//! The IMAP session service: `Service<Connection, Response = CloseReport>`.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tower_service::Service;

use super::recent::RecentClaims;
use super::session::ImapSession;
use crate::auth::{AuthError, Credentials, User};
use crate::close::CloseReport;
use crate::connection::{Connection, SessionFuture};
use crate::reject::BoxError;
use crate::store::Mailstore;

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
    /// Longest command line, and the most non-literal text one command may span.
    pub max_line_len: usize,
    /// The most literal bytes one command other than APPEND may carry (a SEARCH string, a
    /// password).
    pub max_literal_len: usize,
    /// The most literal bytes one command may carry before login (a LOGIN password): small,
    /// because an unauthenticated client should cost the server a few KiB at most. Commands
    /// other than LOGIN and ID may not announce a synchronizing literal before login at all.
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
    /// Whether LOGIN and AUTHENTICATE PLAIN are allowed before TLS.
    pub allow_plaintext_login: bool,
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
            tls_handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves IMAP4rev1 on each connection (see the [module docs](super) for what is served),
/// reading mail from a [`Mailstore`] and checking logins with an authentication service.
///
/// It resolves with the session's [`CloseReport`] and never fails: every problem is answered on
/// the wire and reported as a [`CloseReason`](crate::CloseReason).
///
/// ```
/// use tower_mail::auth::PasswdFile;
/// use tower_mail::imap::{ImapConfig, ImapService};
/// use tower_mail::store::MemoryStore;
///
/// let users = PasswdFile::parse("alice:{PLAIN}secret");
/// let service = ImapService::new(users, MemoryStore::new(), ImapConfig::default());
/// # drop(service);
/// ```
pub struct ImapService<A, M> {
    shared: Arc<Shared<A, M>>,
}

pub(super) struct Shared<A, M> {
    pub(super) auth: A,
    pub(super) store: M,
    pub(super) config: ImapConfig,
    pub(super) recent: RecentClaims,
}

impl<A, M> Clone for ImapService<A, M> {
    fn clone(&self) -> Self {
        ImapService {
            shared: self.shared.clone(),
        }
    }
}

impl<A, M> ImapService<A, M> {
    /// An IMAP service checking logins with `auth` and serving each user's mailboxes from
    /// `store`.
    pub fn new(auth: A, store: M, config: ImapConfig) -> Self {
        ImapService {
            shared: Arc::new(Shared {
                auth,
                store,
                config,
                recent: RecentClaims::default(),
            }),
        }
    }
}

impl<A, M> Service<Connection> for ImapService<A, M>
where
    A: Service<Credentials, Response = User, Error = AuthError> + Clone + Send + Sync + 'static,
    A::Future: Send,
    M: Mailstore,
{
    type Response = CloseReport;
    type Error = BoxError;
    type Future = SessionFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, conn: Connection) -> Self::Future {
        let shared = self.shared.clone();
        conn.run_session(move |parts| async move {
            let mut imap = ImapSession::new(shared, parts);
            imap.run().await
        })
    }
}
