use metrics::{counter, gauge, histogram};
use tower_mail::{CloseReason, CloseReport, Reject, Session, SessionEvent, SessionObserver};

use crate::on_close::CloseHook;

/// Counts a connection as accepted when its session starts.
#[derive(Debug)]
pub(super) struct StartObserver;

impl SessionObserver for StartObserver {
    fn on_event(&self, session: &Session, event: &SessionEvent<'_>) -> Result<(), Reject> {
        if let SessionEvent::Started = event {
            let protocol = session.protocol().as_str();
            counter!("mail_connections_total", "protocol" => protocol, "outcome" => "accepted")
                .increment(1);
            gauge!("mail_connections_active", "protocol" => protocol).increment(1.0);
        }
        Ok(())
    }
}

/// Records a connection's end: a close for sessions that started, a refusal otherwise.
#[derive(Debug, Clone, Copy)]
pub struct RecordClose;

impl CloseHook for RecordClose {
    fn on_close(&self, session: &Session, report: &CloseReport) {
        let protocol = session.protocol().as_str();
        // `has_started` pairs exactly with the Started event: both happen in
        // `Connection::into_parts`, which notifies every observer.
        if session.has_started() {
            gauge!("mail_connections_active", "protocol" => protocol).decrement(1.0);
            counter!("mail_connections_closed_total", "protocol" => protocol, "reason" => report.reason.as_str())
                .increment(1);
            histogram!("mail_session_duration_seconds", "protocol" => protocol)
                .record(report.duration.as_secs_f64());
            return;
        }
        let layer = match &report.reason {
            CloseReason::Rejected(reject) => reject.layer().to_owned(),
            other => other.as_str().to_owned(),
        };
        counter!("mail_connections_total", "protocol" => protocol, "outcome" => "rejected")
            .increment(1);
        counter!("mail_rejections_total", "protocol" => protocol, "layer" => layer).increment(1);
    }
}
