//! Logging and metrics set-up for the example server.

use std::io::BufWriter;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use tower_mail::Protocol;
use tower_mail::server::{Server, SetupFailure};
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::prelude::*;

use crate::config::LogFormat;
use crate::json_log::JsonLines;

/// How many formatted lines may wait for the log writer's thread. At about 300 bytes a JSON
/// line, a full queue holds a few MiB; a burst of connections longer than that makes the
/// connections' tasks wait for the disk, as a synchronous writer would have all along.
const QUEUED_LINES: usize = 16_384;

/// One line per event, pretty or JSON, to stdout; `RUST_LOG` overrides the default `info`
/// filter.
///
/// The connections' tasks format their lines and queue them; a thread of its own writes them
/// (tracing-appender's non-blocking writer), in batches, so that no task waits on a `write(2)`
/// to the log file. Not lossy: when the queue is full a task waits for room rather than drop
/// a line, since the log is the record of logins, refusals and bans. Keep the guard until
/// the server has stopped: dropping it writes and flushes the lines still queued (waiting
/// for the writer up to a second, tracing-appender's bound: far more than a full queue takes
/// to a local file).
pub fn init_logging(format: LogFormat) -> WorkerGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a terminal: escape codes in a log file are noise.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    // Buffered: the writer thread flushes whenever its queue is empty, so a burst of lines
    // costs a few large writes rather than one per line.
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("log-writer")
        .finish(BufWriter::new(std::io::stdout()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    match format {
        // `event`, `session_id`, ... are top-level keys of each object (json_log.rs).
        LogFormat::Json => builder
            .event_format(JsonLines)
            .finish()
            // The lines carry no span (above), yet each connection's span would still have its
            // fields formatted and kept for the connection's life: not made at all.
            .with(filter_fn(|meta| !meta.is_span()))
            .init(),
        LogFormat::Pretty => builder.compact().init(),
    }
    guard
}

/// Install the Prometheus recorder; the admin listener serves its text at `/metrics`.
pub fn init_metrics() -> Result<PrometheusHandle, String> {
    let handle = super::prometheus::builder()?
        .install_recorder()
        .map_err(|e| format!("metrics: {e}"))?;
    // Without the exporter's own listener, histograms are drained by hand.
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

/// The metrics of the auth layers (`tower_mail_layers::auth`), each described and shown at 0
/// from the start, so that dashboards and alerts find them before the first event.
const AUTH_COUNTERS: [(&str, &str); 4] = [
    (
        "mail_auth_failures_delayed_total",
        "Failed logins answered after a failure delay",
    ),
    (
        "mail_auth_user_limit_total",
        "Logins refused because the user had max_sessions_per_user sessions open",
    ),
    (
        "mail_auth_user_store_errors_total",
        "Logins refused because the per-user session store did not answer",
    ),
    (
        "mail_auth_bans_total",
        "Addresses banned by layers.auto_ban after repeated failed logins",
    ),
];

const VERIFY_REJECTED: &str = "mail_auth_verifications_rejected_total";
const SETUP_FAILURES: &str = "mail_setup_failures_total";
const IN_SETUP: &str = "mail_connections_in_setup";
const TARPITTED: &str = "mail_connections_tarpitted";
const ACCEPTED: &str = "mail_server_connections_accepted_total";
const FINISHED: &str = "mail_server_connections_finished_total";

/// Describe the server's own metrics and those of the auth layers, and register them at 0.
pub fn describe_metrics() {
    for (name, help) in AUTH_COUNTERS {
        metrics::describe_counter!(name, help);
        metrics::counter!(name).increment(0);
    }
    metrics::describe_counter!(
        VERIFY_REJECTED,
        "Logins refused as unavailable by the verification bound, by reason \
         (queue_timeout: no slot within the queue deadline)"
    );
    metrics::counter!(VERIFY_REJECTED, "reason" => "queue_timeout").increment(0);
    metrics::describe_counter!(
        SETUP_FAILURES,
        "Connections that ended before their session started (PROXY header, TLS handshake, \
         setup cap), by protocol and reason"
    );
    metrics::describe_gauge!(
        IN_SETUP,
        "Connections reading a PROXY header or in an implicit-TLS handshake now \
         (limits.max_setup_connections)"
    );
    metrics::describe_gauge!(
        TARPITTED,
        "Refused clients held for a refusal delay now (limits.max_tarpitted)"
    );
    metrics::describe_counter!(ACCEPTED, "Connections the server accepted");
    metrics::describe_counter!(
        FINISHED,
        "Connection tasks that have ended, whatever way; equal to the accepted count when \
         every connection's counts are final"
    );
}

/// Copy the server's own counts into the recorder: `Server::setup_failures` into
/// `mail_setup_failures_total{protocol, reason}` (such connections never reach the layer
/// stack, so no layer counts them), the setup and tarpit occupancy into gauges, and the
/// connections accepted and finished. Called at each scrape, so they are never stale: a test
/// (or an operator) can tell from one scrape that every connection accepted so far has ended
/// and its counts are final.
pub fn mirror_server_metrics(server: &Server) {
    // Finished before accepted: a scrape never shows more finished than accepted.
    let finished = server.connections_finished();
    let accepted = server.connections_accepted();
    for protocol in [Protocol::Imap, Protocol::Pop3] {
        for failure in SetupFailure::ALL {
            metrics::counter!(
                SETUP_FAILURES,
                "protocol" => protocol.as_str(),
                "reason" => failure.as_str()
            )
            .absolute(server.setup_failures(protocol, failure));
        }
    }
    metrics::gauge!(IN_SETUP).set(server.connections_in_setup() as f64);
    metrics::gauge!(TARPITTED).set(server.tarpitted() as f64);
    metrics::counter!(ACCEPTED).absolute(accepted);
    metrics::counter!(FINISHED).absolute(finished);
}
