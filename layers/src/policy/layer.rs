use std::time::Duration;

use tower_layer::Layer;

use super::PolicyService;

/// How a [`PolicyLayer`] applies its policy.
#[derive(Debug, Clone, Copy)]
pub(super) struct Options {
    pub(super) shadow: bool,
    pub(super) deadline: Duration,
    pub(super) refusal_delay: Option<Duration>,
}

/// Applies a [`Policy`](super::Policy) to a service. See the [module docs](super).
#[derive(Debug, Clone)]
pub struct PolicyLayer<P> {
    pub(super) policy: P,
    pub(super) options: Options,
}

impl<P> PolicyLayer<P> {
    /// Enforce `policy`, with a 5-second deadline on its check.
    pub fn from_policy(policy: P) -> Self {
        PolicyLayer {
            policy,
            options: Options {
                shadow: false,
                deadline: Duration::from_secs(5),
                refusal_delay: None,
            },
        }
    }

    /// Log and count refusals, but let the connection in.
    pub fn shadow(mut self) -> Self {
        self.options.shadow = true;
        self
    }

    /// Refuse connections whose check has not finished within `deadline`.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.options.deadline = deadline;
        self
    }

    /// Hold refused clients for `delay` before the refusal.
    pub fn delay_refusal(mut self, delay: Duration) -> Self {
        self.options.refusal_delay = Some(delay);
        self
    }

    /// The policy.
    pub fn policy(&self) -> &P {
        &self.policy
    }
}

impl<S, P: Clone> Layer<S> for PolicyLayer<P> {
    type Service = PolicyService<S, P>;

    fn layer(&self, inner: S) -> Self::Service {
        PolicyService {
            inner,
            policy: self.policy.clone(),
            options: self.options,
        }
    }
}
