//! Logging and metrics set-up for the example server.

use std::net::SocketAddr;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// One line per event, pretty or JSON; `RUST_LOG` overrides the default `info` filter.
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
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
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|e| format!("metrics on {addr}: {e}"))
}
