use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project::pin_project;
use tokio::time::Sleep;
use tower_mail::{BoxError, Connection, GENERIC_MESSAGE, Reject, TIMEOUT_MESSAGE};
use tower_service::Service;

use super::layer::Options;
use super::{Policy, shadow};

/// Response future of [`PolicyService`](super::PolicyService): the check, then the inner
/// service with the check's permit held until it finishes.
///
/// A policy that decides on the spot ([`Policy::check_now`]) goes straight to the inner call:
/// no allocation, no timer. Otherwise the check waits in a box, and its deadline's timer is
/// made only if the check does not answer on its first poll.
#[pin_project]
pub struct PolicyFuture<S: Service<Connection>, P: Policy> {
    #[pin]
    state: State<S, P>,
}

// Boxed: the check holds the policy's future, a timer and the connection only until the
// policy answers, and unboxed it would keep the whole future that large for the session's
// life.
#[pin_project(project = CheckProj)]
struct Check<S, P: Policy> {
    #[pin]
    check: P::Future,
    // Made on the first Pending only: a timer reads the clock and registers with the runtime.
    // Boxed as well, so that the checks that answer at once (most) do not move its bytes.
    deadline: Option<Pin<Box<Sleep>>>,
    options: Options,
    name: &'static str,
    next: Option<(S, Connection)>,
}

#[pin_project(project = StateProj)]
enum State<S: Service<Connection>, P: Policy> {
    Checking {
        check: Pin<Box<Check<S, P>>>,
    },
    Calling {
        #[pin]
        future: S::Future,
        // Dropped with the future, on every path: a permit cannot leak.
        permit: Option<P::Permit>,
    },
    Refused {
        reject: Option<Reject>,
    },
}

impl<S: Service<Connection>, P: Policy> PolicyFuture<S, P> {
    pub(super) fn checking(
        check: P::Future,
        options: Options,
        name: &'static str,
        inner: S,
        conn: Connection,
    ) -> Self {
        PolicyFuture {
            state: State::Checking {
                check: Box::pin(Check {
                    check,
                    deadline: None,
                    options,
                    name,
                    next: Some((inner, conn)),
                }),
            },
        }
    }

    /// The state once the verdict is known: call `inner` (made ready), or refuse.
    pub(super) fn after_check(
        verdict: Result<P::Permit, Reject>,
        options: Options,
        name: &'static str,
        inner: &mut S,
        conn: Connection,
    ) -> Self {
        let state = match verdict {
            Ok(permit) => State::Calling {
                future: inner.call(conn),
                permit: Some(permit),
            },
            Err(reject) => {
                // Name this layer unless the policy named a more specific one.
                let mut reject = if reject.layer() == "custom" {
                    reject.with_layer(name)
                } else {
                    reject
                };
                if options.shadow {
                    shadow::record(conn.session(), &reject);
                    State::Calling {
                        future: inner.call(conn),
                        permit: None,
                    }
                } else {
                    if let (Some(delay), None) = (options.refusal_delay, reject.delay()) {
                        reject = reject.with_delay(delay);
                    }
                    State::Refused {
                        reject: Some(reject),
                    }
                }
            }
        };
        PolicyFuture { state }
    }
}

impl<S, P> Future for PolicyFuture<S, P>
where
    S: Service<Connection>,
    S::Error: Into<BoxError>,
    P: Policy,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut this = self.as_mut().project();
            match this.state.as_mut().project() {
                StateProj::Checking { check } => {
                    let CheckProj {
                        check,
                        deadline,
                        options,
                        name,
                        next,
                    } = check.as_mut().project();
                    let verdict =
                        match std::panic::catch_unwind(AssertUnwindSafe(|| check.poll(cx))) {
                            Ok(Poll::Ready(verdict)) => verdict,
                            Ok(Poll::Pending) => {
                                let timer = deadline.get_or_insert_with(|| {
                                    Box::pin(tokio::time::sleep(options.deadline))
                                });
                                ready!(timer.as_mut().poll(cx));
                                Err(Reject::new(TIMEOUT_MESSAGE).with_layer(*name))
                            }
                            Err(_) => {
                                tracing::error!(layer = *name, "policy check panicked");
                                Err(Reject::new(GENERIC_MESSAGE).with_layer(*name))
                            }
                        };
                    let (mut inner, conn) = next.take().expect("polled after completion");
                    let (options, name) = (*options, *name);
                    let next_state =
                        PolicyFuture::after_check(verdict, options, name, &mut inner, conn);
                    self.set(next_state);
                }
                StateProj::Calling { future, .. } => return future.poll(cx).map_err(Into::into),
                StateProj::Refused { reject } => {
                    let reject = reject.take().expect("polled after completion");
                    return Poll::Ready(Err(Box::new(reject)));
                }
            }
        }
    }
}
