//! Why a session ended: the [`CloseReason`] a close report carries and
//! [`Session::end`](crate::Session::end) is given.

use std::fmt;
use std::io;

use crate::reject::Reject;

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
