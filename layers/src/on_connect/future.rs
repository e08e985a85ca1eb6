use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project::pin_project;
use tokio::time::Sleep;
use tower_mail::{BoxError, Connection, GENERIC_MESSAGE, Reject, TIMEOUT_MESSAGE};
use tower_service::Service;

use super::LAYER_NAME;

/// Response future of [`OnConnect`](super::OnConnect): first the hook, then the inner service.
#[pin_project]
pub struct OnConnectFuture<S: Service<Connection>, Fut> {
    #[pin]
    state: State<S, Fut>,
}

// The check is boxed: it holds the hook, a timer and the connection only until the hook
// answers, and unboxed it would keep the whole future that large for the session's life.
#[pin_project(project = CheckProj)]
struct Check<S, Fut> {
    #[pin]
    hook: Fut,
    #[pin]
    deadline: Sleep,
    inner: Option<(S, Connection)>,
}

#[pin_project(project = StateProj)]
enum State<S: Service<Connection>, Fut> {
    Checking {
        check: Pin<Box<Check<S, Fut>>>,
    },
    Calling {
        #[pin]
        future: S::Future,
    },
    Refused {
        reject: Option<Reject>,
    },
}

pub(super) fn panicked() -> Reject {
    Reject::new(GENERIC_MESSAGE).with_layer(LAYER_NAME)
}

impl<S: Service<Connection>, Fut> OnConnectFuture<S, Fut> {
    pub(super) fn checking(hook: Fut, deadline: Duration, inner: S, conn: Connection) -> Self {
        OnConnectFuture {
            state: State::Checking {
                check: Box::pin(Check {
                    hook,
                    deadline: tokio::time::sleep(deadline),
                    inner: Some((inner, conn)),
                }),
            },
        }
    }

    pub(super) fn refused(reject: Reject) -> Self {
        OnConnectFuture {
            state: State::Refused {
                reject: Some(reject),
            },
        }
    }
}

impl<S, Fut> Future for OnConnectFuture<S, Fut>
where
    S: Service<Connection>,
    S::Error: Into<BoxError>,
    Fut: Future<Output = Result<(), Reject>>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut this = self.as_mut().project();
            match this.state.as_mut().project() {
                StateProj::Checking { check } => {
                    let CheckProj {
                        hook,
                        deadline,
                        inner,
                    } = check.as_mut().project();
                    let verdict = match std::panic::catch_unwind(AssertUnwindSafe(|| hook.poll(cx)))
                    {
                        Ok(Poll::Ready(verdict)) => verdict,
                        Ok(Poll::Pending) => {
                            ready!(deadline.poll(cx));
                            Err(Reject::new(TIMEOUT_MESSAGE).with_layer(LAYER_NAME))
                        }
                        Err(_) => {
                            tracing::error!("on_connect hook panicked");
                            Err(panicked())
                        }
                    };
                    match verdict {
                        Ok(()) => {
                            let (mut service, conn) =
                                inner.take().expect("polled after completion");
                            let future = service.call(conn);
                            this.state.set(State::Calling { future });
                        }
                        Err(reject) => {
                            // Name this layer unless the hook named itself.
                            let reject = if reject.layer() == "custom" {
                                reject.with_layer(LAYER_NAME)
                            } else {
                                reject
                            };
                            this.state.set(State::Refused {
                                reject: Some(reject),
                            });
                        }
                    }
                }
                StateProj::Calling { future } => return future.poll(cx).map_err(Into::into),
                StateProj::Refused { reject } => {
                    let reject = reject.take().expect("polled after completion");
                    return Poll::Ready(Err(Box::new(reject)));
                }
            }
        }
    }
}
