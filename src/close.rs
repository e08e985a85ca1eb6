//! The close report: the response of every session service, and what close hooks see.

use std::time::Duration;

use crate::close_reason::CloseReason;
use crate::reject::{BoxError, refusal};
use crate::session::Session;

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
    /// other error [`CloseReason::Dropped`].
    pub fn from_error(session: &Session, err: &BoxError) -> CloseReport {
        let reject = refusal(err);
        let reason = if !session.has_started() {
            CloseReason::Rejected(reject)
        } else if reject.layer() == "timeout" {
            CloseReason::Timeout
        } else {
            CloseReason::Dropped
        };
        CloseReport::new(session, reason)
    }

    /// The report for a connection whose future was dropped before it finished: the reason the
    /// session was asked to end (shutdown, a layer, or the server's setup deadline, which records
    /// the `Timeout` refusal its client is told as [`CloseReason::Rejected`]), else
    /// [`CloseReason::Dropped`].
    pub fn dropped(session: &Session) -> CloseReport {
        CloseReport::new(
            session,
            session.end_reason().unwrap_or(CloseReason::Dropped),
        )
    }
}
