//! What the IMAP and the POP3 session services share: the state a service hands its
//! sessions, the future its `call` returns, and how a session opens its connection.

use std::sync::Arc;
use std::time::Duration;

use crate::connection::{Connection, ConnectionParts, SessionSettings};
use crate::events::Observers;
use crate::session::Session;
use crate::wire::Channel;

/// What a protocol session service hands each of its sessions: the authentication service,
/// the store, the protocol's configuration `C`, and `X`, what the service's sessions share
/// among themselves (POP3's maildrop locks; IMAP's greetings, encoded once).
pub(crate) struct ServiceState<A, M, C, X> {
    pub(crate) auth: A,
    pub(crate) store: M,
    pub(crate) config: C,
    pub(crate) among_sessions: X,
}

impl<A, M, C, X: Default> ServiceState<A, M, C, X> {
    pub(crate) fn new(auth: A, store: M, config: C) -> Self {
        ServiceState {
            auth,
            store,
            config,
            among_sessions: X::default(),
        }
    }
}

/// A session's protocol errors, counted against the limit a layer set for the connection
/// (`SessionSettings::max_protocol_errors`), else the service's.
#[derive(Debug, Default)]
pub(crate) struct ErrorCount(u32);

impl ErrorCount {
    /// Count one more; whether the session has now made as many as it may.
    pub(crate) fn add_one(&mut self, settings: &SessionSettings, configured: u32) -> bool {
        self.0 += 1;
        self.0 >= settings.max_protocol_errors.unwrap_or(configured)
    }
}

/// What the protocol session services' `call` returns.
pub(crate) type SessionFuture =
    std::pin::Pin<Box<dyn Future<Output = Result<crate::CloseReport, crate::BoxError>> + Send>>;

/// What a protocol session runs on, opened from [`ConnectionParts`].
pub(crate) struct OpenedParts {
    pub(crate) channel: Channel,
    pub(crate) session: Arc<Session>,
    pub(crate) settings: SessionSettings,
    pub(crate) observers: Observers,
}

impl ConnectionParts {
    /// The channel an IMAP or POP3 session reads and writes through: lines of at most
    /// `max_line_len`, and the idle timeout a layer chose, else the protocol's timeout before
    /// login.
    pub(crate) fn open(self, max_line_len: usize, idle_before_login: Duration) -> OpenedParts {
        let idle = self.settings.idle_timeout.unwrap_or(idle_before_login);
        OpenedParts {
            channel: Channel::new(self.transport, self.session.clone(), max_line_len, idle),
            session: self.session,
            settings: self.settings,
            observers: self.observers,
        }
    }
}

impl Connection {
    /// The future a protocol service returns from `call`: take the connection apart and run
    /// its session with `run`, or, if the transport is already gone, report why it went (see
    /// [`CloseReport::dropped`](crate::CloseReport::dropped)).
    ///
    /// Boxed: the session is one large state machine that lives as long as the connection;
    /// one allocation per connection is noise beside it.
    pub(crate) fn run_session<F, Fut>(self, run: F) -> SessionFuture
    where
        F: FnOnce(ConnectionParts) -> Fut + Send + 'static,
        Fut: Future<Output = crate::CloseReport> + Send,
    {
        Box::pin(async move {
            let session = self.session().clone();
            match self.into_parts() {
                Some(parts) => Ok(run(parts).await),
                None => Ok(crate::CloseReport::dropped(&session)),
            }
        })
    }
}
