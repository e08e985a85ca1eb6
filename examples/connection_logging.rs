//! The connection-management guide's "Basic Setup" and "Debugging": log every new connection
//! and every close, through the two hook layers, with `tracing` on stdout.
//!
//! ```text
//! cargo run --example connection_logging
//! RUST_LOG=debug cargo run --example connection_logging   # the guide's debug logging
//! ```
//!
//! From the guide's JavaScript to Rust:
//!
//! - `onConnect` that logs and calls `callback()` is an [`OnConnectLayer`] hook that logs and
//!   returns `Ok(())`; the guide's `debug` logger is a `tracing::debug!` event, shown when
//!   `RUST_LOG` enables it (`info` by default).
//! - `onClose` is an [`OnCloseLayer`] hook. It runs exactly once per connection on every path,
//!   so the log has one close line per connect line: no session goes missing when a client
//!   resets, and none is logged twice on a half-close.
//! - `console.log` lines become structured events: each carries the session id as a field, so
//!   a connect and its close can be joined by machine.
//!
//! For production, `tower_mail_layers::logging::LoggingLayer` does the same with spans and
//! levels; this example shows the hooks it is built from.

#[path = "guide/mod.rs"]
mod guide;

use std::process::ExitCode;
use std::sync::Arc;

use tower::ServiceBuilder;
use tower_mail::{CloseReport, Reject, Session};
use tower_mail_layers::on_close::OnCloseLayer;
use tower_mail_layers::on_connect::OnConnectLayer;

/// The guide's two logging handlers in front of any session service.
fn logged(inner: impl guide::Stack) -> impl guide::Stack {
    let on_connect = |session: Arc<Session>| {
        tracing::debug!("onConnect called for session: {}", session.id());
        tracing::info!(
            session_id = %session.id(),
            "New {} connection from {}",
            guide::protocol_name(session.protocol()),
            session.remote_addr().ip()
        );
        // Nothing to wait for: allow the connection at once.
        std::future::ready(Ok::<(), Reject>(()))
    };
    let on_close = |session: &Session, report: &CloseReport| {
        tracing::info!(
            reason = %report.reason,
            duration_ms = report.duration.as_millis() as u64,
            "{} connection closed: {}",
            guide::protocol_name(session.protocol()),
            session.id()
        );
    };
    ServiceBuilder::new()
        .layer(OnCloseLayer::new(on_close))
        .layer(OnConnectLayer::new(on_connect))
        .service(inner)
}

async fn run() -> Result<(), String> {
    let args = guide::Args::parse(&[])?;
    guide::init_logging();
    guide::serve(args.listen(), logged(guide::pop3())).await
}

#[tokio::main]
async fn main() -> ExitCode {
    guide::exit("connection_logging", run().await)
}
