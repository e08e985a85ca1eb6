use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use tower_mail::{Reject, Session};

use super::OnConnect;

/// Applies [`OnConnect`] to a service. See the [module docs](super).
#[derive(Debug, Clone)]
pub struct OnConnectLayer<F> {
    hook: F,
    deadline: Duration,
}

impl<F> OnConnectLayer<F> {
    /// Run `hook` for every new connection, with the default 5-second deadline.
    pub fn new<Fut>(hook: F) -> Self
    where
        F: Fn(Arc<Session>) -> Fut,
        Fut: Future<Output = Result<(), Reject>>,
    {
        OnConnectLayer {
            hook,
            deadline: Duration::from_secs(5),
        }
    }

    /// Refuse connections whose hook has not finished within `deadline`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_mail_layers::on_connect::OnConnectLayer;
    /// let layer = OnConnectLayer::new(|_s| async { Ok(()) }).deadline(Duration::from_millis(500));
    /// # drop(layer);
    /// ```
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }
}

impl<S, F: Clone> Layer<S> for OnConnectLayer<F> {
    type Service = OnConnect<S, F>;

    fn layer(&self, inner: S) -> Self::Service {
        OnConnect::new(inner, self.hook.clone(), self.deadline)
    }
}
