//! Logging and metrics set-up for the example server.

use std::net::SocketAddr;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// One line per event, pretty or JSON; `RUST_LOG` overrides the default `info` filter.
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a terminal: escape codes in a log file are noise.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    match format {
        // Flattened so that `event`, `session_id`, ... are top-level keys of each object.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
        LogFormat::Pretty => builder.compact().init(),
    }
}

/// Serve Prometheus text format at `http://<listen>/metrics`.
pub fn init_metrics(listen: &str) -> Result<(), String> {
    let addr: SocketAddr = listen
        .parse()
        .map_err(|e| format!("metrics.listen {listen:?}: {e}"))?;
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    // Buckets make it a Prometheus histogram (summaries' quantiles cannot be aggregated across
    // servers): from a refused scanner's milliseconds to a client left open all day.
    let session_buckets = [
        0.01, 0.1, 1.0, 10.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 14400.0, 86400.0,
    ];
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(
            Matcher::Full("mail_session_duration_seconds".into()),
            &session_buckets,
        )
        .map_err(|e| format!("metrics buckets: {e}"))?
        .install()
        .map_err(|e| format!("metrics on {addr}: {e}"))
}
