//! Everything that happens to one connection after accept, in its own task.

use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tower::ServiceExt;
use tower_service::Service;

use super::occupancy::{AddressPlace, Place};
use super::rewind::Rewind;
use super::{Endpoint, ServerState, SetupFailure, TlsMode, proxy};
use crate::close::CloseReport;
use crate::close_reason::CloseReason;
use crate::connection::{BoxIo, Connection, Transport, TransportSlot};
use crate::reject::{BoxError, GENERIC_MESSAGE, Reject, TIMEOUT_MESSAGE, refusal};
use crate::session::{Protocol, Session};
use crate::wire::goodbye;

/// How the connection's stack future ended.
enum Outcome {
    Finished(Result<CloseReport, BoxError>),
    Panicked,
    /// The setup deadline passed before a session service took the connection: the refusal
    /// the client is owed, already recorded as the session's close reason.
    SetupTimedOut(Reject),
    HardStopped,
}

pub(super) async fn run<S>(
    state: Arc<ServerState>,
    endpoint: Arc<Endpoint>,
    stack: Box<S>,
    stream: TcpStream,
    peer: SocketAddr,
) where
    S: Service<Connection, Response = CloseReport> + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    let _finished = Finished(&state);
    let protocol = endpoint.protocol;
    // Before the stack runs there is no session to tell, so shutdown just drops the connection
    // rather than waiting out a PROXY or TLS deadline.
    let setup = tokio::select! {
        biased;
        _ = state.shutdown.cancelled() => None,
        setup = setup(&state, &endpoint, stream, peer) => setup,
    };
    let Some((session, transport)) = setup else {
        return;
    };
    let remote = session.remote_addr();

    // 4. The stack, then the session inside it.
    let slot = TransportSlot::new(transport);
    let conn = Connection::new(session.clone(), slot.clone());
    let call = async move {
        let mut stack = stack;
        let ready = stack.as_mut().ready().await.map_err(Into::into)?;
        let response = ready.call(conn);
        // The stack's clone has done its work once called: not held for the connection's life.
        drop(stack);
        response.await.map_err(Into::into)
    };

    let outcome = drive(call, &session, &slot, &state).await;
    let reject = match outcome {
        Outcome::Finished(Ok(report)) => {
            tracing::trace!(session_id = %session.id(), reason = %report.reason, "session finished");
            return;
        }
        Outcome::Finished(Err(err)) => {
            let reject = refusal(&err);
            if reject.layer() == "error" {
                tracing::warn!(session_id = %session.id(), %remote, error = %err, "connection stack failed");
            }
            reject
        }
        Outcome::Panicked => {
            tracing::error!(session_id = %session.id(), %remote, "connection handler panicked");
            Reject::new(GENERIC_MESSAGE).with_layer("panic")
        }
        Outcome::SetupTimedOut(reject) => {
            tracing::warn!(session_id = %session.id(), %remote, "connection setup timed out before the session started");
            reject
        }
        Outcome::HardStopped => {
            // The stack's future is dropped by now, and a session service inside it gave its
            // stream back (or none ever took it): the client is still owed its goodbye, under
            // a short deadline, so that a client that does not read cannot hold shutdown.
            if let Some(transport) = slot.take() {
                let reason = session.end_reason().unwrap_or(CloseReason::Shutdown);
                let deadline = state.config.hard_stop_goodbye_timeout;
                write_goodbye(transport.io, protocol, reason.goodbye(), deadline).await;
            }
            return;
        }
    };
    // The transport is still here only if no session service took it: then the client has
    // heard nothing yet and is owed the protocol's refusal.
    if let Some(transport) = slot.take() {
        if let Some(delay) = reject.delay() {
            // The stack's future is gone by now, so the tarpit holds no permit; shutdown cuts
            // it short, and a full tarpit answers at once.
            match state.tarpit.try_enter() {
                Some(_place) => tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = state.shutdown.cancelled() => {}
                },
                None => {
                    tracing::debug!(session_id = %session.id(), %remote, "tarpit full; refusing at once");
                }
            }
        }
        let deadline = state.config.refusal_write_timeout;
        write_goodbye(transport.io, protocol, reject.message(), deadline).await;
    }
}

/// Counts the connection's task as ended when dropped: after every other value of the task,
/// so after its hooks, on every path (a hard stop drops the task mid-way).
struct Finished<'a>(&'a ServerState);

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.0
            .finished
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }
}

/// Accept-side phases before the stack: the PROXY header (trusted networks only) and the TLS
/// handshake (implicit-TLS listeners). `None` when the connection failed one of them.
async fn setup(
    state: &ServerState,
    endpoint: &Endpoint,
    stream: TcpStream,
    peer: SocketAddr,
) -> Option<(Arc<Session>, Transport)> {
    let _ = stream.set_nodelay(true);
    let local = match stream.local_addr() {
        Ok(addr) => addr,
        Err(err) => {
            tracing::debug!(%peer, error = %err, "connection gone before setup");
            return None;
        }
    };

    let proxied = state.config.proxy.is_trusted(peer.ip());
    let implicit_tls = matches!(endpoint.tls, TlsMode::Implicit(_));
    // Places in the setup phase, held until the handshakes are over; plain connections from
    // untrusted peers have no setup to do and take none.
    let _places = match proxied || implicit_tls {
        true => match enter_setup(state, peer, proxied) {
            Some(places) => Some(places),
            None => {
                let failure = SetupFailure::SetupCap;
                state
                    .failures
                    .record(endpoint.protocol, peer, failure, None);
                return None;
            }
        },
        false => None,
    };

    // 1. PROXY header, only from trusted networks.
    let (io, remote, local): (BoxIo, SocketAddr, SocketAddr) = if proxied {
        let mut stream = stream;
        // Boxed for the same reason as the TLS handshake: only trusted peers pay for it.
        match Box::pin(proxy::read_header(&mut stream, &state.config.proxy)).await {
            Ok(header) => {
                let (remote, local) = header.addrs.unwrap_or((peer, local));
                (Box::new(Rewind::new(header.rest, stream)), remote, local)
            }
            Err(err) => {
                let failure = SetupFailure::proxy(&err);
                state
                    .failures
                    .record(endpoint.protocol, peer, failure, Some(&err as _));
                return None;
            }
        }
    } else {
        (Box::new(stream), peer, local)
    };

    let mut session = Session::with_end_token(
        endpoint.protocol,
        remote,
        local,
        peer,
        state.shutdown.child_token(),
    );
    session.login_timeout = state.config.login_timeout;
    let session = Arc::new(session);

    // 2. Address checks the listener makes before a TLS handshake: a refused peer is closed
    //    without costing one.
    if let (TlsMode::Implicit(_), Some(check)) = (&endpoint.tls, &endpoint.before_handshake)
        && let Err(reject) = check.check(&session)
    {
        let refusal = format_args!("{}: {}", reject.layer(), reject.message());
        state.failures.record(
            endpoint.protocol,
            remote,
            SetupFailure::Refused,
            Some(&refusal as _),
        );
        return None;
    }

    // 3. TLS on implicit-TLS listeners, before any layer, so layers see `secure` and refusals
    //    travel inside TLS.
    let (io, starttls) = match &endpoint.tls {
        TlsMode::Implicit(acceptor) => {
            let handshake = crate::tls::handshake(
                acceptor,
                io,
                state.config.tls_handshake_timeout,
                &session,
                true,
            );
            match handshake.await {
                Ok(io) => (io, None),
                Err(err) => {
                    let failure = SetupFailure::tls(&err);
                    state
                        .failures
                        .record(endpoint.protocol, remote, failure, Some(&err as _));
                    return None;
                }
            }
        }
        TlsMode::Starttls(acceptor) => (io, Some(acceptor.clone())),
        TlsMode::None => (io, None),
    };
    Some((session, Transport::boxed(io, starttls)))
}

/// Places in the setup phase: server-wide, and for the address unless the peer is a trusted
/// PROXY sender (a load balancer speaks for many clients). `None` when either is full.
fn enter_setup(
    state: &ServerState,
    peer: SocketAddr,
    proxied: bool,
) -> Option<(Place, Option<AddressPlace>)> {
    let place = state.setup.try_enter()?;
    let address = match proxied {
        true => None,
        false => Some(state.setup_per_address.try_enter(peer.ip())?),
    };
    Some((place, address))
}

/// Poll the stack's future, catching panics, bounding the setup phase, and obeying the hard
/// stop at the end of a shutdown.
fn drive<'a, F>(
    call: F,
    session: &'a Session,
    slot: &'a TransportSlot,
    state: &'a ServerState,
) -> Drive<'a, F>
where
    F: Future<Output = Result<CloseReport, BoxError>>,
{
    Drive {
        call: AssertUnwindSafe(call).catch_unwind(),
        // Boxed and dropped as soon as a session service has taken the transport: the timer
        // only guards the setup phase, and would otherwise sit in every long-lived connection.
        setup_deadline: Some(Box::pin(tokio::time::sleep(state.config.setup_timeout))),
        hard_stop: state.hard_stop.cancelled(),
        session,
        slot,
    }
}

/// What [`drive`] returns: a future by hand rather than an `async fn`, which would keep the
/// stack's future twice (as its argument and as the pinned local it polls).
#[pin_project::pin_project]
struct Drive<'a, F> {
    #[pin]
    call: futures_util::future::CatchUnwind<AssertUnwindSafe<F>>,
    setup_deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    #[pin]
    hard_stop: tokio_util::sync::WaitForCancellationFuture<'a>,
    session: &'a Session,
    slot: &'a TransportSlot,
}

impl<F> Future for Drive<'_, F>
where
    F: Future<Output = Result<CloseReport, BoxError>>,
{
    type Output = Outcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let this = self.project();
        if let Poll::Ready(result) = this.call.poll(cx) {
            return Poll::Ready(match result {
                Ok(result) => Outcome::Finished(result),
                Err(_panic) => Outcome::Panicked,
            });
        }
        if let Some(deadline) = this.setup_deadline {
            if this.slot.is_taken() {
                *this.setup_deadline = None;
            } else if deadline.as_mut().poll(cx).is_ready() {
                let reject = Reject::new(TIMEOUT_MESSAGE).with_layer("setup_timeout");
                // Recorded before the stack's future is dropped, so that close hooks inside it
                // report the refusal the client is told rather than a bare drop.
                this.session.end(CloseReason::Rejected(reject.clone()));
                return Poll::Ready(Outcome::SetupTimedOut(reject));
            }
        }
        if this.hard_stop.poll(cx).is_ready() {
            return Poll::Ready(Outcome::HardStopped);
        }
        Poll::Pending
    }
}

/// Write the protocol's goodbye line with `text` and close, giving up after `deadline`.
async fn write_goodbye(mut io: BoxIo, protocol: Protocol, text: &str, deadline: Duration) {
    let mut line = Vec::new();
    goodbye(&mut line, protocol, text);
    let write = async {
        io.write_all(&line).await?;
        io.shutdown().await
    };
    let _ = tokio::time::timeout(deadline, write).await;
}
