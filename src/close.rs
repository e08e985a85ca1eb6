//! The close report: the response of every session service, and what close hooks see.

use std::fmt;
use std::io;
use std::time::Duration;

use crate::reject::{BoxError, Reject, refusal};
use crate::session::Session;

/// Why a session ended.
///
/// ```
/// use tower_mail::CloseReason;
/// assert_eq!(CloseReason::Logout.as_str(), "logout");
/// use tower_mail::Reject;
/// assert_eq!(CloseReason::Rejected(Reject::new("IP address blocked")).as_str(), "rejected");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client said goodbye (IMAP LOGOUT, POP3 QUIT).
    Logout,
    /// The client closed or reset the connection.
    ClientClosed,
    /// The client was silent longer than the idle timeout.
    IdleTimeout,
    /// The server is shutting down.
    Shutdown,
    /// The client made too many protocol errors.
    ProtocolErrors,
    /// Reading or writing failed.
    Io(io::ErrorKind),
    /// A layer or observer ended the session; the text is what the client was told.
    Ended(String),
    /// A layer refused the connection before the session started: what the client was told
    /// and which layer said it.
    Rejected(Reject),
    /// A deadline around the whole session (tower's `TimeoutLayer`) expired.
    Timeout,
    /// Code handling the connection panicked.
    Panic,
    /// The session's future was dropped before it finished (for instance by an outer layer).
    Aborted,
}

impl CloseReason {
    /// A stable lower-case label for metrics and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            CloseReason::Logout => "logout",
            CloseReason::ClientClosed => "client_closed",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::Shutdown => "shutdown",
            CloseReason::ProtocolErrors => "protocol_errors",
            CloseReason::Io(_) => "io_error",
            CloseReason::Ended(_) => "ended",
            CloseReason::Rejected(_) => "rejected",
            CloseReason::Timeout => "timeout",
            CloseReason::Panic => "panic",
            CloseReason::Aborted => "aborted",
        }
    }

    /// What the client is told when its session ends for this reason without its asking:
    /// a layer's text, the idle timeout, or shutdown. Protocols put it after `* BYE` / `-ERR`.
    ///
    /// ```
    /// use tower_mail::CloseReason;
    /// assert_eq!(CloseReason::Ended("Kicked by admin".into()).goodbye(), "Kicked by admin");
    /// assert_eq!(CloseReason::Shutdown.goodbye(), "Server shutting down");
    /// ```
    pub fn goodbye(&self) -> &str {
        match self {
            CloseReason::Ended(text) => text,
            CloseReason::IdleTimeout => "Idle timeout",
            _ => "Server shutting down",
        }
    }

    /// Classify an I/O error: resets and broken pipes are the client going away.
    pub fn from_io(err: &io::Error) -> CloseReason {
        match err.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof => CloseReason::ClientClosed,
            kind => CloseReason::Io(kind),
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Ended(text) => write!(f, "ended: {text}"),
            CloseReason::Rejected(reject) => {
                write!(f, "rejected by {}: {}", reject.layer(), reject.message())
            }
            CloseReason::Io(kind) => write!(f, "io_error: {kind}"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// What a finished session reports: why it ended and its figures.
///
/// Session services resolve to it; close hooks receive it. For a connection refused before its
/// session started, hooks outside the refusing layer get a report with
/// [`CloseReason::Rejected`].
///
/// ```
/// use tower_mail::{CloseReason, CloseReport, Protocol, Session};
/// let session = Session::new(Protocol::Imap, "[::1]:4000".parse().unwrap(), "[::1]:143".parse().unwrap());
/// session.add_bytes_in(12);
/// let report = CloseReport::new(&session, CloseReason::ClientClosed);
/// assert_eq!(report.bytes_in, 12);
/// assert_eq!(report.reason, CloseReason::ClientClosed);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CloseReport {
    /// Why the session ended.
    pub reason: CloseReason,
    /// Time from accept to close.
    pub duration: Duration,
    /// Bytes read from the client.
    pub bytes_in: u64,
    /// Bytes written to the client.
    pub bytes_out: u64,
    /// Commands the client sent.
    pub commands: u64,
}

impl CloseReport {
    /// Snapshot `session`'s figures now, closing for `reason`.
    pub fn new(session: &Session, reason: CloseReason) -> CloseReport {
        CloseReport {
            reason,
            duration: session.started().elapsed(),
            bytes_in: session.bytes_in(),
            bytes_out: session.bytes_out(),
            commands: session.commands(),
        }
    }
}

impl CloseReport {
    /// The report for a connection whose stack failed with `err`.
    ///
    /// Before the session started, the failure is a refusal: [`CloseReason::Rejected`] with the
    /// text the client was told. After, tower's `Elapsed` is [`CloseReason::Timeout`] and any
    /// other error [`CloseReason::Aborted`].
    pub fn from_error(session: &Session, err: &BoxError) -> CloseReport {
        let reject = refusal(err);
        let reason = if !session.has_started() {
            CloseReason::Rejected(reject)
        } else if reject.layer() == "timeout" {
            CloseReason::Timeout
        } else {
            CloseReason::Aborted
        };
        CloseReport::new(session, reason)
    }

    /// The report for a connection whose future was dropped before it finished: the reason the
    /// session was asked to end (shutdown, a layer), else [`CloseReason::Aborted`].
    pub fn dropped(session: &Session) -> CloseReport {
        CloseReport::new(
            session,
            session.end_reason().unwrap_or(CloseReason::Aborted),
        )
    }
}
