//! The IMAP session service: `Service<Connection, Response = CloseReport>`.

use std::sync::Arc;
use std::task::{Context, Poll};

use tower_service::Service;

use super::config::{ImapConfig, ImapServiceState};
use super::session::ImapSession;
use crate::auth::Authenticator;
use crate::close::CloseReport;
use crate::connection::Connection;
use crate::protocol::SessionFuture;
use crate::reject::BoxError;
use crate::store::Mailstore;

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
    state: Arc<ImapServiceState<A, M>>,
}

impl<A, M> Clone for ImapService<A, M> {
    fn clone(&self) -> Self {
        ImapService {
            state: self.state.clone(),
        }
    }
}

impl<A, M> ImapService<A, M> {
    /// An IMAP service checking logins with `auth` and serving each user's mailboxes from
    /// `store`.
    pub fn new(auth: A, store: M, config: ImapConfig) -> Self {
        ImapService {
            state: Arc::new(ImapServiceState::new(auth, store, config)),
        }
    }
}

impl<A, M> Service<Connection> for ImapService<A, M>
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
        let state = self.state.clone();
        // The session is made before its future: captured by the future, the connection's
        // parts would keep their room in it for the session's life beside the session.
        conn.run_session(move |parts| {
            let mut imap = ImapSession::new(state, parts);
            async move { imap.run().await }
        })
    }
}
