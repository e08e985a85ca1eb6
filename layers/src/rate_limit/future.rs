//! The check's future: the store's answer, with a deadline and `fail_open`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pin_project::pin_project;
use tokio::time::Sleep;
use tower_mail::Reject;

use super::outage::OutageLog;
use super::settings::Settings;
use super::{Admission, Key, LAYER_NAME, LocalStore, RateLimitPermit, RateLimitStore, StoreError};

/// The future of [`RateLimit`](super::RateLimit)'s check: resolves to the connection's
/// [`RateLimitPermit`] or its refusal. If the store has not answered within `store_timeout`,
/// `fail_open` decides.
///
/// ```
/// use std::sync::Arc;
/// use tower_mail_layers::policy::Policy;
/// use tower_mail_layers::rate_limit::{RateLimit, RateLimitConfig};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let limit = RateLimit::new(RateLimitConfig { max_concurrent: Some(0), ..Default::default() });
/// let session = Arc::new(tower_mail::Session::new(tower_mail::Protocol::Pop3,
///     "192.0.2.1:40000".parse().unwrap(), "127.0.0.1:110".parse().unwrap()));
/// let refusal = limit.check(&session).await.unwrap_err();
/// assert_eq!(refusal.message(), "Too many connections from this IP");
/// assert_eq!(refusal.layer(), "rate_limit");
/// # }
/// ```
#[pin_project]
pub struct RateLimitFuture<S: RateLimitStore = LocalStore> {
    #[pin]
    state: State<S>,
}

#[pin_project(project = StateProj)]
enum State<S: RateLimitStore> {
    /// Decided in the check: an unlimited session, or a store that answered at once
    /// ([`RateLimitStore::acquire_now`]). A permit waiting here gives its slot back if the
    /// future is dropped unpolled.
    Done(Option<Result<RateLimitPermit<S>, Reject>>),
    Asking {
        #[pin]
        acquire: S::Future,
        // Made only if the store does not answer on the first poll: the local store always
        // does, and then no timer is ever registered.
        timer: Option<Pin<Box<Sleep>>>,
        ask: Option<Ask<S>>,
    },
}

/// What turning the store's answer into a verdict needs.
struct Ask<S> {
    store: Arc<S>,
    key: Key,
    settings: Arc<Settings>,
    outage: Arc<OutageLog>,
}

impl<S: RateLimitStore> RateLimitFuture<S> {
    /// A check decided without waiting: an unlimited session, or a store that answered at
    /// once.
    pub(super) fn decided(verdict: Result<RateLimitPermit<S>, Reject>) -> Self {
        RateLimitFuture {
            state: State::Done(Some(verdict)),
        }
    }

    pub(super) fn asking(
        acquire: S::Future,
        store: Arc<S>,
        key: Key,
        settings: Arc<Settings>,
        outage: Arc<OutageLog>,
    ) -> Self {
        RateLimitFuture {
            state: State::Asking {
                acquire,
                timer: None,
                ask: Some(Ask {
                    store,
                    key,
                    settings,
                    outage,
                }),
            },
        }
    }
}

impl<S: RateLimitStore> Future for RateLimitFuture<S> {
    type Output = Result<RateLimitPermit<S>, Reject>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Done(verdict) => {
                Poll::Ready(verdict.take().expect("polled after completion"))
            }
            StateProj::Asking {
                acquire,
                timer,
                ask,
            } => {
                let answer = match acquire.poll(cx) {
                    Poll::Ready(answer) => answer,
                    Poll::Pending => {
                        let timeout = ask
                            .as_ref()
                            .expect("polled after completion")
                            .settings
                            .store_timeout;
                        let timer =
                            timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                        ready!(timer.as_mut().poll(cx));
                        Err(StoreError::timeout())
                    }
                };
                let ask = ask.take().expect("polled after completion");
                Poll::Ready(ask.verdict(answer))
            }
        }
    }
}

impl<S: RateLimitStore> Ask<S> {
    fn verdict(self, answer: Result<Admission, StoreError>) -> Result<RateLimitPermit<S>, Reject> {
        verdict(answer, &self.store, self.key, &self.settings, &self.outage)
    }
}

/// A store's answer as the check's outcome: a permit (holding the slot, if one was counted) or
/// a refusal, with `fail_open` deciding on a store failure. Failures are logged per store, not
/// per connection (see [`outage`](super::outage)): the first at `warn`, then a summary at most
/// every 10 s, each connection at `debug`.
pub(super) fn verdict<S: RateLimitStore>(
    answer: Result<Admission, StoreError>,
    store: &Arc<S>,
    key: Key,
    settings: &Settings,
    outage: &OutageLog,
) -> Result<RateLimitPermit<S>, Reject> {
    if answer.is_ok() {
        outage.log_answer();
    }
    match answer {
        Ok(Admission::Admitted(None)) => Ok(RateLimitPermit::empty()),
        Ok(Admission::Admitted(Some(slot))) => {
            Ok(RateLimitPermit::holding(store.clone(), key, slot))
        }
        Ok(Admission::Refused(reason)) => {
            tracing::debug!(
                layer = LAYER_NAME,
                key = %key,
                ?reason,
                "rate limit refused a connection"
            );
            Err(settings.refusal.clone())
        }
        Err(err) => {
            outage.log_failure(&key, &err, settings.fail_open);
            if settings.fail_open {
                Ok(RateLimitPermit::empty())
            } else {
                Err(settings.store_failure.clone())
            }
        }
    }
}
