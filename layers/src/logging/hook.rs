use std::sync::Arc;

use tower_mail::{CloseReason, CloseReport, Session};

use super::address::LoggedAddr;
use super::layer::Config;
use crate::on_close::CloseHook;

/// tracing's macros need the level as a constant; pick the macro by level at run time.
macro_rules! event_at {
    ($level:expr, $($rest:tt)+) => {
        match $level {
            tracing::Level::ERROR => tracing::error!($($rest)+),
            tracing::Level::WARN => tracing::warn!($($rest)+),
            tracing::Level::INFO => tracing::info!($($rest)+),
            tracing::Level::DEBUG => tracing::debug!($($rest)+),
            tracing::Level::TRACE => tracing::trace!($($rest)+),
        }
    };
}

pub(super) fn log_connect(config: &Config, session: &Session) {
    event_at!(
        config.level,
        event = "connect",
        session_id = %session.id(),
        protocol = session.protocol().as_str(),
        remote_addr = %LoggedAddr(session.remote_addr()),
        local_addr = %LoggedAddr(session.local_addr()),
        secure = session.secure(),
        "connection accepted"
    );
}

/// Logs a connection's refusal or close, once.
#[derive(Debug)]
pub struct LogClose {
    // None for ignored clients: they log nothing.
    config: Option<Arc<Config>>,
}

impl LogClose {
    pub(super) fn new(config: Option<Arc<Config>>) -> Self {
        LogClose { config }
    }
}

/// One level more severe than `level`, capped at WARN: a refusal deserves more attention than
/// routine traffic, but is not an error of the server's.
fn raised(level: tracing::Level) -> tracing::Level {
    match level {
        tracing::Level::TRACE => tracing::Level::DEBUG,
        tracing::Level::DEBUG => tracing::Level::INFO,
        _ => tracing::Level::WARN,
    }
}

impl CloseHook for LogClose {
    fn on_close(&self, session: &Session, report: &CloseReport) {
        let Some(config) = &self.config else {
            return;
        };
        if let CloseReason::Rejected(reject) = &report.reason {
            event_at!(
                raised(config.level),
                event = "reject",
                session_id = %session.id(),
                protocol = session.protocol().as_str(),
                remote_addr = %LoggedAddr(session.remote_addr()),
                layer = reject.layer(),
                // The event's own message is the refusal text: a `message` field beside it
                // would give JSON lines the key twice.
                "{}",
                reject.message()
            );
            return;
        }
        event_at!(
            config.level,
            event = "close",
            session_id = %session.id(),
            protocol = session.protocol().as_str(),
            remote_addr = %LoggedAddr(session.remote_addr()),
            duration_ms = report.duration.as_millis() as u64,
            reason = report.reason.as_str(),
            user = session.user().as_deref(),
            state = session.state().as_str(),
            bytes_in = report.bytes_in,
            bytes_out = report.bytes_out,
            commands = report.commands,
            "connection closed"
        );
    }
}
