use tower_mail::{Reject, Session};

/// Record a refusal that shadow mode turned into a pass.
pub(super) fn record(session: &Session, reject: &Reject) {
    tracing::warn!(
        event = "shadow_reject",
        session_id = %session.id(),
        protocol = session.protocol().as_str(),
        remote_addr = %session.remote_addr(),
        layer = reject.layer(),
        // As the `reject` event: the refusal text is the event's message, once (a `message`
        // field beside it would give JSON lines the key twice).
        "{}",
        reject.message()
    );
    #[cfg(feature = "metrics")]
    metrics::counter!(
        "mail_shadow_rejections_total",
        "protocol" => session.protocol().as_str(),
        "layer" => reject.layer().to_owned()
    )
    .increment(1);
}
