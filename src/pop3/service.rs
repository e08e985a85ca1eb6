//! The POP3 session service: `Service<Connection, Response = CloseReport>`.

use std::sync::Arc;
use std::task::{Context, Poll};

use tower_service::Service;

use super::config::{Pop3Config, Pop3ServiceState};
use super::session::Pop3Session;
use crate::auth::Authenticator;
use crate::close::CloseReport;
use crate::connection::Connection;
use crate::protocol::SessionFuture;
use crate::reject::BoxError;
use crate::store::Mailstore;

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
    state: Arc<Pop3ServiceState<A, M>>,
}

impl<A, M> Clone for Pop3Service<A, M> {
    fn clone(&self) -> Self {
        Pop3Service {
            state: self.state.clone(),
        }
    }
}

impl<A, M> Pop3Service<A, M> {
    /// A POP3 service checking logins with `auth` and serving each user's INBOX from `store`.
    pub fn new(auth: A, store: M, config: Pop3Config) -> Self {
        Pop3Service {
            state: Arc::new(Pop3ServiceState::new(auth, store, config)),
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
        let state = self.state.clone();
        // The session is made before its future: captured by the future, the connection's
        // parts would keep their room in it for the session's life beside the session.
        conn.run_session(move |parts| {
            let mut pop3 = Pop3Session::new(state, parts);
            async move { pop3.run().await }
        })
    }
}
