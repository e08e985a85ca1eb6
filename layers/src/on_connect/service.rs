use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tower_mail::{BoxError, Connection, Reject, Session};
use tower_service::Service;

use super::OnConnectFuture;

/// Runs a hook before passing each connection on. See the [module docs](super).
#[derive(Debug, Clone)]
pub struct OnConnect<S, F> {
    inner: S,
    hook: F,
    deadline: Duration,
}

impl<S, F> OnConnect<S, F> {
    /// Wrap `inner`, checking every connection with `hook` within `deadline`.
    pub fn new(inner: S, hook: F, deadline: Duration) -> Self {
        OnConnect {
            inner,
            hook,
            deadline,
        }
    }
}

impl<S, F, Fut> Service<Connection> for OnConnect<S, F>
where
    S: Service<Connection> + Clone,
    S::Error: Into<BoxError>,
    F: Fn(Arc<Session>) -> Fut,
    Fut: Future<Output = Result<(), Reject>>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = OnConnectFuture<S, Fut>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, conn: Connection) -> Self::Future {
        // The instance that poll_ready made ready must be the one called; leave a fresh clone
        // behind for the next poll_ready (tower's usual pattern for async pre-checks).
        let fresh = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, fresh);
        let session = conn.session().clone();
        match std::panic::catch_unwind(AssertUnwindSafe(|| (self.hook)(session))) {
            Ok(hook) => OnConnectFuture::checking(hook, self.deadline, inner, conn),
            Err(_) => {
                tracing::error!(session_id = %conn.session().id(), "on_connect hook panicked");
                OnConnectFuture::refused(super::future::panicked())
            }
        }
    }
}
