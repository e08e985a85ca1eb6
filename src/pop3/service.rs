//! The POP3 session service: `Service<Connection, Response = CloseReport>`.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tower_service::Service;

use super::maildrop::MaildropLocks;
use super::session::Pop3Session;
use crate::auth::Authenticator;
use crate::close::CloseReport;
use crate::connection::{Connection, SessionFuture};
use crate::reject::BoxError;
use crate::store::Mailstore;

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
    /// Whether USER/PASS and AUTH PLAIN are allowed before STLS.
    pub allow_plaintext_login: bool,
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
            tls_handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves POP3 (RFC 1939 with CAPA, RESP-CODES, AUTH-RESP-CODE, STLS, AUTH PLAIN, UTF8) on each
/// connection, reading mail from a [`Mailstore`] and checking logins with an authentication
/// service.
///
/// It resolves with the session's [`CloseReport`] and never fails: every problem is answered
/// on the wire and reported as a [`CloseReason`](crate::CloseReason).
///
/// ```
/// use tower_mail::auth::PasswdFile;
/// use tower_mail::pop3::{Pop3Config, Pop3Service};
/// use tower_mail::store::MemoryStore;
///
/// let users = PasswdFile::parse("alice:{PLAIN}secret");
/// let service = Pop3Service::new(users, MemoryStore::new(), Pop3Config::default());
/// # drop(service);
/// ```
pub struct Pop3Service<A, M> {
    shared: Arc<Shared<A, M>>,
}

pub(super) struct Shared<A, M> {
    pub(super) auth: A,
    pub(super) store: M,
    pub(super) config: Pop3Config,
    pub(super) locks: MaildropLocks,
}

impl<A, M> Clone for Pop3Service<A, M> {
    fn clone(&self) -> Self {
        Pop3Service {
            shared: self.shared.clone(),
        }
    }
}

impl<A, M> Pop3Service<A, M> {
    /// A POP3 service checking logins with `auth` and serving each user's INBOX from `store`.
    pub fn new(auth: A, store: M, config: Pop3Config) -> Self {
        Pop3Service {
            shared: Arc::new(Shared {
                auth,
                store,
                config,
                locks: MaildropLocks::default(),
            }),
        }
    }
}

impl<A, M> Service<Connection> for Pop3Service<A, M>
where
    A: Authenticator,
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
            let mut pop3 = Pop3Session::new(shared, parts);
            pop3.run().await
        })
    }
}
