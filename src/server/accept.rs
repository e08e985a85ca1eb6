//! The accept loop: it only accepts and spawns, so nothing a client or layer does can slow the
//! next accept.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpListener;
use tower_service::Service;

use super::{Endpoint, ServerState, connection_task};
use crate::close::CloseReport;
use crate::connection::Connection;
use crate::reject::BoxError;

const FIRST_BACKOFF: Duration = Duration::from_millis(5);

pub(super) async fn accept_loop<S>(
    state: Arc<ServerState>,
    listener: TcpListener,
    endpoint: Endpoint,
    stack: S,
) where
    S: Service<Connection, Response = CloseReport> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    let endpoint = Arc::new(endpoint);
    let mut backoff = FIRST_BACKOFF;
    loop {
        let accepted = tokio::select! {
            biased;
            _ = state.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = FIRST_BACKOFF;
                state.accepted.fetch_add(1, Ordering::Release);
                let task = connection_task::run(
                    state.clone(),
                    endpoint.clone(),
                    Box::new(stack.clone()),
                    stream,
                    peer,
                );
                // Boxed: the task holds the whole stack's future, which tokio would otherwise copy
                // by value on spawn and again into the task's cell; one allocation beside it
                // is cheaper than those copies of a deep stack.
                state.tasks.spawn(Box::pin(task));
            }
            Err(err) if is_per_connection(&err) => {
                tracing::debug!(error = %err, "accept failed for one connection");
            }
            Err(err) => {
                // EMFILE, ENFILE, ENOBUFS, ENOMEM: retrying at once would spin. Back off,
                // doubling, so the server recovers as soon as descriptors free up.
                tracing::error!(error = %err, backoff_ms = backoff.as_millis() as u64, "accept failed; backing off");
                tokio::select! {
                    _ = state.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(state.config.max_accept_backoff);
            }
        }
    }
}

/// Errors that concern only the connection being accepted, not the listener.
fn is_per_connection(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}
