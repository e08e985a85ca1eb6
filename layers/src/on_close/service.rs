use std::task::{Context, Poll};

use tower_mail::{BoxError, CloseReport, Connection};
use tower_service::Service;

use super::{CloseHook, OnCloseFuture};

/// Calls a hook once when each connection ends. See the [module docs](super).
#[derive(Debug, Clone)]
pub struct OnClose<S, F> {
    inner: S,
    hook: F,
}

impl<S, F> OnClose<S, F> {
    /// Wrap `inner`, reporting every connection's end to `hook`.
    pub fn new(inner: S, hook: F) -> Self {
        OnClose { inner, hook }
    }
}

impl<S, F> Service<Connection> for OnClose<S, F>
where
    S: Service<Connection, Response = CloseReport>,
    S::Error: Into<BoxError>,
    F: CloseHook + Clone,
{
    type Response = CloseReport;
    type Error = BoxError;
    type Future = OnCloseFuture<S::Future, F>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, conn: Connection) -> Self::Future {
        let session = conn.session().clone();
        OnCloseFuture::new(self.inner.call(conn), session, self.hook.clone())
    }
}
