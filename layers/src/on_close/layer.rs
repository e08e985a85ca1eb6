use tower_layer::Layer;

use super::OnClose;

/// Applies [`OnClose`] to a service. See the [module docs](super).
#[derive(Debug, Clone)]
pub struct OnCloseLayer<F> {
    hook: F,
}

impl<F> OnCloseLayer<F> {
    /// Call `hook(&session, &report)` once when each connection ends.
    pub fn new(hook: F) -> Self {
        OnCloseLayer { hook }
    }
}

impl<S, F: Clone> Layer<S> for OnCloseLayer<F> {
    type Service = OnClose<S, F>;

    fn layer(&self, inner: S) -> Self::Service {
        OnClose::new(inner, self.hook.clone())
    }
}
