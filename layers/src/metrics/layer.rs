use std::sync::Arc;

use tower_layer::Layer;

use super::Metrics;
use super::hook::StartObserver;

/// Applies [`Metrics`] to a service. See the [module docs](super).
#[derive(Clone)]
pub struct MetricsLayer {
    pub(super) observer: Arc<StartObserver>,
}

impl MetricsLayer {
    /// Record into the global `metrics` recorder installed at the time of each event.
    pub fn new() -> Self {
        MetricsLayer {
            observer: Arc::new(StartObserver),
        }
    }
}

impl Default for MetricsLayer {
    fn default() -> Self {
        MetricsLayer::new()
    }
}

impl std::fmt::Debug for MetricsLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsLayer")
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = Metrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Metrics {
            inner,
            observer: self.observer.clone(),
        }
    }
}
