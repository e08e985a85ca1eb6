//! Session events: what a layer can watch while the session runs, and end it for.

use std::sync::Arc;

use crate::reject::Reject;
use crate::session::Session;

/// Something that happened in a running session.
///
/// Protocol services report these to every [`SessionObserver`] registered on the
/// [`Connection`](crate::Connection), in order, as they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent<'a> {
    /// The session service took the connection (in [`Connection::into_parts`](crate::Connection::into_parts))
    /// and is about to greet the client: from here on the connection is accepted. Refusing
    /// this event ends the session right after its greeting; a layer that wants to refuse
    /// should do so before passing the connection on.
    Started,
    /// TLS was negotiated by STARTTLS/STLS.
    TlsUpgraded,
    /// A user logged in.
    Authenticated {
        /// The user's name.
        user: &'a str,
    },
    /// The client identified itself (IMAP ID, RFC 2971).
    ClientId {
        /// The client's field/value pairs.
        fields: &'a [(String, String)],
    },
    /// IMAP: a mailbox was selected.
    MailboxSelected {
        /// The mailbox's name.
        mailbox: &'a str,
    },
}

/// Watches a session's events and may end the session.
///
/// Returning `Err(reject)` ends the session: the client is told the reject's message
/// (`* BYE` / `-ERR`) and the close reason is [`CloseReason::Kicked`](crate::CloseReason::Kicked).
/// Observers run inline in the connection's task, so keep them cheap; to do slow work, spawn it
/// and end the session later with [`Session::end`].
///
/// ```
/// use tower_mail::{Reject, Session, SessionEvent, SessionObserver};
///
/// /// Refuses clients that identify as an old, broken version.
/// struct BlockAgent;
/// impl SessionObserver for BlockAgent {
///     fn on_event(&self, session: &Session, event: &SessionEvent<'_>) -> Result<(), Reject> {
///         if let SessionEvent::ClientId { .. } = event {
///             if session.user_agent().is_some_and(|ua| ua.starts_with("BrokenMail/1.")) {
///                 return Err(Reject::new("Please upgrade your mail client"));
///             }
///         }
///         Ok(())
///     }
/// }
/// ```
pub trait SessionObserver: Send + Sync + 'static {
    /// Called for every event of the session.
    fn on_event(&self, session: &Session, event: &SessionEvent<'_>) -> Result<(), Reject>;
}

impl<F> SessionObserver for F
where
    F: Fn(&Session, &SessionEvent<'_>) -> Result<(), Reject> + Send + Sync + 'static,
{
    fn on_event(&self, session: &Session, event: &SessionEvent<'_>) -> Result<(), Reject> {
        self(session, event)
    }
}

/// The observers of one connection, called in registration order.
#[derive(Clone, Default)]
pub struct Observers {
    // The first one inline: a stack usually registers one (the metrics layer's), and keeping
    // it here saves every connection an allocation.
    first: Option<Arc<dyn SessionObserver>>,
    rest: Vec<Arc<dyn SessionObserver>>,
}

impl Observers {
    /// Add an observer.
    pub fn push(&mut self, observer: Arc<dyn SessionObserver>) {
        if self.first.is_none() {
            self.first = Some(observer);
        } else {
            self.rest.push(observer);
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Arc<dyn SessionObserver>> {
        self.first.iter().chain(&self.rest)
    }

    /// Report `event` to every observer, and return the first refusal. Every observer sees
    /// every event, even after one refused, so that observers that count (metrics) stay
    /// balanced. A panicking observer counts as a refusal with a generic text, so one bad hook
    /// cannot take the connection task down with it.
    pub fn notify(&self, session: &Session, event: &SessionEvent<'_>) -> Result<(), Reject> {
        let mut first = Ok(());
        for observer in self.iter() {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                observer.on_event(session, event)
            }));
            let outcome = match outcome {
                Ok(outcome) => outcome,
                Err(_) => {
                    tracing::error!(session_id = %session.id(), "session observer panicked");
                    Err(Reject::new(crate::reject::GENERIC_MESSAGE).with_layer("panic"))
                }
            };
            if first.is_ok() {
                first = outcome;
            }
        }
        first
    }

    /// Whether there are no observers.
    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }
}

impl std::fmt::Debug for Observers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Observers({})", self.iter().count())
    }
}
