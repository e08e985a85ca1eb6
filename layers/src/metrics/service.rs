use std::sync::Arc;
use std::task::{Context, Poll};

use tower_mail::{BoxError, CloseReport, Connection};
use tower_service::Service;

use super::hook::{RecordClose, StartObserver};
use crate::on_close::OnCloseFuture;

/// Counts connections, refusals, active sessions and closes. See the [module docs](super).
#[derive(Clone)]
pub struct Metrics<S> {
    pub(super) inner: S,
    pub(super) observer: Arc<StartObserver>,
}

impl<S> std::fmt::Debug for Metrics<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// Response future of [`Metrics`].
pub type MetricsFuture<F> = OnCloseFuture<F, RecordClose>;

impl<S> Service<Connection> for Metrics<S>
where
    S: Service<Connection, Response = CloseReport>,
    S::Error: Into<BoxError>,
{
    type Response = CloseReport;
    type Error = BoxError;
    type Future = MetricsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut conn: Connection) -> Self::Future {
        let session = conn.session().clone();
        conn.observe(self.observer.clone());
        OnCloseFuture::new(self.inner.call(conn), session, RecordClose)
    }
}
