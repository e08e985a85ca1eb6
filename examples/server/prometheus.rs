//! The example server's Prometheus recorder settings, shared with `connect_bench`, which
//! measures the stack under the same recorder.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

/// The recorder as the example server configures it, before its HTTP listener is added.
pub fn builder() -> Result<PrometheusBuilder, String> {
    // Buckets make it a Prometheus histogram (summaries' quantiles cannot be aggregated across
    // servers): from a refused scanner's milliseconds to a client left open all day.
    let session_buckets = [
        0.01, 0.1, 1.0, 10.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 14400.0, 86400.0,
    ];
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("mail_session_duration_seconds".into()),
            &session_buckets,
        )
        .map_err(|e| format!("metrics buckets: {e}"))
}
