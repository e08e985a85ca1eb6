//! [`RedisAcquire`]: the store's answer on its way back from Redis.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;

use super::script;
use crate::rate_limit::{Admission, Slot, StoreError};
use crate::redis_support::breaker::{Breaker, Ticket};
use crate::redis_support::call::{Call, Counted};

/// The future of [`RedisStore`](super::RedisStore)'s
/// [`acquire`](crate::rate_limit::RateLimitStore::acquire): one script call.
///
/// If it is dropped before it resolves (the layer's `store_timeout` or deadline passed), the
/// script may still run, or have run, and count the connection: the drop queues a release of
/// the member it would have added, which is harmless if it never was. The release goes out on
/// the store's connection after the script call, so Redis sees them in that order.
///
/// Its outcome also feeds the store's circuit breaker: an answer closes it; Redis unreachable,
/// or the future dropped after waiting 50 ms or more for its answer, opens it. A
/// future dropped sooner (unpolled, or a race lost in a `select!`) says nothing about Redis.
///
/// ```no_run
/// use std::time::Duration;
/// use tower_mail_layers::rate_limit::{Key, Limits, RateLimitStore, RedisAcquire, RedisStore};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisStore::connect("redis://127.0.0.1:6379").await?;
/// let limits = Limits { max_concurrent: Some(10), rate: None };
/// let acquire: RedisAcquire = store.acquire(&Key::from("user:alice"), Duration::ZERO, &limits);
/// println!("{:?}", acquire.await?);
/// # Ok(()) }
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct RedisAcquire {
    state: State,
}

enum State {
    /// Decided without a round trip, or already answered.
    Ready(Option<Result<Admission, StoreError>>),
    /// Asking Redis; the call gives back the member it may have added if it is dropped.
    Asking(Call<Vec<i64>>),
}

impl RedisAcquire {
    pub(super) fn ready(answer: Result<Admission, StoreError>) -> RedisAcquire {
        RedisAcquire {
            state: State::Ready(Some(answer)),
        }
    }

    pub(super) fn asking(
        reply: BoxFuture<'static, redis::RedisResult<Vec<i64>>>,
        counted: Option<Counted>,
        breaker: Arc<Breaker>,
        ticket: Ticket,
    ) -> RedisAcquire {
        RedisAcquire {
            state: State::Asking(Call::new(reply, counted, breaker, ticket)),
        }
    }
}

impl Future for RedisAcquire {
    type Output = Result<Admission, StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let answer = match &mut self.state {
            State::Ready(answer) => {
                return Poll::Ready(answer.take().expect("polled after completion"));
            }
            State::Asking(call) => {
                let (reply, counted) = match Pin::new(call).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(answered) => answered,
                };
                let slot = counted.as_ref().map(|c| Slot::new(c.member));
                let answer = reply
                    .map_err(StoreError::new)
                    .and_then(|reply| script::admission(&reply, slot));
                if let Some(counted) = counted {
                    match &answer {
                        // Sent before the permit exists, so that its release comes after it.
                        Ok(Admission::Admitted(Some(_))) => counted.opened(),
                        // A refusal added nothing.
                        Ok(_) => {}
                        // The script may have run and its reply been lost: give it back.
                        Err(_) => counted.release(),
                    }
                }
                answer
            }
        };
        self.state = State::Ready(None);
        Poll::Ready(answer)
    }
}

impl fmt::Debug for RedisAcquire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Ready(Some(_)) => "ready",
            State::Ready(None) => "done",
            State::Asking(_) => "asking",
        };
        f.debug_struct("RedisAcquire")
            .field("state", &state)
            .finish()
    }
}
