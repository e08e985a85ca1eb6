use std::sync::Arc;
use std::task::{Context, Poll};

use tower_mail::{BoxError, CloseReport, Connection};
use tower_service::Service;
use tracing::Instrument;
use tracing::instrument::Instrumented;

use super::address::LoggedAddr;
use super::hook::{LogClose, log_connect};
use super::layer::Config;
use crate::on_close::OnCloseFuture;

/// Logs each connection's connect, refusal and close. See the [module docs](super).
#[derive(Debug, Clone)]
pub struct Logging<S> {
    pub(super) inner: S,
    pub(super) config: Arc<Config>,
}

/// Response future of [`Logging`].
pub type LoggingFuture<F> = OnCloseFuture<Instrumented<F>, LogClose>;

impl<S> Service<Connection> for Logging<S>
where
    S: Service<Connection, Response = CloseReport>,
    S::Error: Into<BoxError>,
{
    type Response = CloseReport;
    type Error = BoxError;
    type Future = LoggingFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, conn: Connection) -> Self::Future {
        let session = conn.session().clone();
        let ip = session.remote_addr().ip().to_canonical();
        if self.config.ignore.iter().any(|net| net.contains(&ip)) {
            let span = tracing::Span::none();
            let hook = LogClose::new(None);
            return OnCloseFuture::new(self.inner.call(conn).instrument(span), session, hook);
        }
        let span = tracing::info_span!(
            "connection",
            session_id = %session.id(),
            protocol = session.protocol().as_str(),
            remote_addr = %LoggedAddr(session.remote_addr()),
            local_addr = %LoggedAddr(session.local_addr()),
            secure = session.secure(),
        );
        log_connect(&self.config, &session);
        let hook = LogClose::new(Some(self.config.clone()));
        OnCloseFuture::new(self.inner.call(conn).instrument(span), session, hook)
    }
}
