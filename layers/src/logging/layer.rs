use std::sync::Arc;

use ipnet::IpNet;
use tower_layer::Layer;

use super::Logging;

#[derive(Debug, Clone)]
pub(super) struct Config {
    pub(super) level: tracing::Level,
    pub(super) ignore: Vec<IpNet>,
}

/// Applies [`Logging`] to a service. See the [module docs](super).
#[derive(Debug, Clone)]
pub struct LoggingLayer {
    pub(super) config: Arc<Config>,
}

impl Default for LoggingLayer {
    fn default() -> Self {
        LoggingLayer::new()
    }
}

impl LoggingLayer {
    /// Log at INFO, ignoring no address.
    pub fn new() -> Self {
        LoggingLayer {
            config: Arc::new(Config {
                level: tracing::Level::INFO,
                ignore: Vec::new(),
            }),
        }
    }

    /// The level of connect and close events; refusals log one level higher (at most WARN).
    pub fn level(mut self, level: tracing::Level) -> Self {
        Arc::make_mut(&mut self.config).level = level;
        self
    }

    /// Log nothing for clients in `network` (load balancer health checks).
    pub fn ignore(mut self, network: IpNet) -> Self {
        Arc::make_mut(&mut self.config).ignore.push(network);
        self
    }
}

impl<S> Layer<S> for LoggingLayer {
    type Service = Logging<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Logging {
            inner,
            config: self.config.clone(),
        }
    }
}
