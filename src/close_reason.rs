//! Why a session ended: the [`CloseReason`] a close report carries and
//! [`Session::end`](crate::Session::end) is given.

use std::fmt;
use std::io;

use crate::reject::Reject;

/// Why a session ended.
///
/// Three reasons say the server cut a connection short, and they differ in when and in what the
/// client heard:
///
/// - [`Rejected`](CloseReason::Rejected): before the session started. The client got the
///   refusal (`* BYE` / `-ERR`) instead of a greeting.
/// - [`Kicked`](CloseReason::Kicked): while the session ran, on purpose. The client got a
///   goodbye with the text.
/// - [`Dropped`](CloseReason::Dropped): while the session ran, without a goodbye. The
///   session's future was dropped unfinished, and the client heard nothing more.
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
    /// The client had not logged in by the server's login deadline
    /// ([`ServerConfig::login_timeout`](crate::server::ServerConfig::login_timeout)), however
    /// busy it kept the session.
    LoginTimeout,
    /// The server is shutting down.
    Shutdown,
    /// The client made too many protocol errors.
    ProtocolErrors,
    /// Reading or writing failed.
    Io(io::ErrorKind),
    /// The running session was ended on purpose, and the client told this text (`* BYE` /
    /// `-ERR`): by [`Session::end`](crate::Session::end) (a layer, an operator), by a
    /// [`SessionObserver`](crate::SessionObserver) refusing an event, or by the protocol service
    /// when the session cannot go on (its selected mailbox was deleted).
    Kicked(String),
    /// The connection was refused before its session started, by a layer or by the server's
    /// setup deadline: the refusal the client was told instead of a greeting, and who refused
    /// (the layer's name, or `setup_timeout`).
    Rejected(Reject),
    /// A deadline around the whole session (tower's `TimeoutLayer`) expired after the session
    /// had started.
    Timeout,
    /// Code handling the connection panicked.
    Panic,
    /// The running session's future was dropped before it finished, without a goodbye and with
    /// no reason given through [`Session::end`](crate::Session::end): a layer around the
    /// session failed (with an error other than tower's `Elapsed`) or dropped it.
    Dropped,
}

impl CloseReason {
    /// A stable lower-case label for metrics and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            CloseReason::Logout => "logout",
            CloseReason::ClientClosed => "client_closed",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::LoginTimeout => "login_timeout",
            CloseReason::Shutdown => "shutdown",
            CloseReason::ProtocolErrors => "protocol_errors",
            CloseReason::Io(_) => "io_error",
            CloseReason::Kicked(_) => "kicked",
            CloseReason::Rejected(_) => "rejected",
            CloseReason::Timeout => "timeout",
            CloseReason::Panic => "panic",
            CloseReason::Dropped => "dropped",
        }
    }

    /// What the client is told when its session ends for this reason without its asking:
    /// a layer's text, the idle timeout, or shutdown. Protocols put it after `* BYE` / `-ERR`.
    ///
    /// ```
    /// use tower_mail::CloseReason;
    /// assert_eq!(CloseReason::Kicked("Kicked by admin".into()).goodbye(), "Kicked by admin");
    /// assert_eq!(CloseReason::Shutdown.goodbye(), "Server shutting down");
    /// ```
    pub fn goodbye(&self) -> &str {
        match self {
            CloseReason::Kicked(text) => text,
            CloseReason::IdleTimeout => "Idle timeout",
            CloseReason::LoginTimeout => "Login timeout",
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
            CloseReason::Kicked(text) => write!(f, "kicked: {text}"),
            CloseReason::Rejected(reject) => {
                write!(f, "rejected by {}: {}", reject.layer(), reject.message())
            }
            CloseReason::Io(kind) => write!(f, "io_error: {kind}"),
            other => f.write_str(other.as_str()),
        }
    }
}
