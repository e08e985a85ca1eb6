use tower_mail::{Reject, Session};

/// Record a refusal that shadow mode turned into a pass.
pub(super) fn record(session: &Session, reject: &Reject) {
    tracing::warn!(
        event = "shadow_reject",
        session_id = %session.id(),
        protocol = session.protocol().as_str(),
        remote_addr = %session.remote_addr(),
        layer = reject.layer(),
        message = reject.message(),
        "shadow policy would refuse this connection"
    );
    #[cfg(feature = "metrics")]
    metrics::counter!(
        "mail_shadow_rejections_total",
        "protocol" => session.protocol().as_str(),
        "layer" => reject.layer().to_owned()
    )
    .increment(1);
}
