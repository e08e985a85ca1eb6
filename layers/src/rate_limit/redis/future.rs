//! [`RedisAcquire`]: the store's answer on its way back from Redis.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

use super::breaker::{self, Breaker, Ticket};
use super::release::Message;
use super::script;
use crate::rate_limit::{Admission, Slot, StoreError};

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
    Asking {
        reply: BoxFuture<'static, redis::RedisResult<Vec<i64>>>,
        /// The member the script adds if it admits, to renew or to give back.
        counted: Option<Counted>,
        /// Told how the call went; taken when it is.
        breaker: Option<(Arc<Breaker>, Ticket)>,
        /// When the call was first polled, that is, sent.
        sent: Option<Instant>,
    },
}

/// How long an answer may be awaited before giving up on it counts as Redis being too slow:
/// a healthy Redis answers in well under a millisecond.
const GIVEN_UP_AFTER: Duration = Duration::from_millis(50);

/// A member the script may add: what the task needs to renew or release it.
struct Counted {
    inbox: mpsc::UnboundedSender<Message>,
    set: Arc<str>,
    member: u64,
}

impl RedisAcquire {
    pub(super) fn ready(answer: Result<Admission, StoreError>) -> RedisAcquire {
        RedisAcquire {
            state: State::Ready(Some(answer)),
        }
    }

    pub(super) fn asking(
        reply: BoxFuture<'static, redis::RedisResult<Vec<i64>>>,
        counted: Option<(mpsc::UnboundedSender<Message>, Arc<str>, u64)>,
        breaker: (Arc<Breaker>, Ticket),
    ) -> RedisAcquire {
        RedisAcquire {
            state: State::Asking {
                reply,
                counted: counted.map(|(inbox, set, member)| Counted { inbox, set, member }),
                breaker: Some(breaker),
                sent: None,
            },
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
            State::Asking {
                reply,
                counted,
                breaker,
                sent,
            } => {
                sent.get_or_insert_with(Instant::now);
                let reply = match reply.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(reply) => reply,
                };
                if let Some((breaker, ticket)) = breaker.take() {
                    match &reply {
                        Err(err) if breaker::unreachable(err) => breaker.failed(ticket),
                        // An answer, even an error one: Redis is reachable.
                        _ => breaker.succeeded(ticket),
                    }
                }
                let counted = counted.take();
                let slot = counted.as_ref().map(|c| Slot::new(c.member));
                let answer = reply
                    .map_err(StoreError::new)
                    .and_then(|reply| script::admission(&reply, slot));
                if let Some(Counted { inbox, set, member }) = counted {
                    // Sent before the permit exists, so that its release comes after it.
                    let message = match &answer {
                        Ok(Admission::Admitted(Some(_))) => Some(Message::Opened { set, member }),
                        // A refusal added nothing.
                        Ok(_) => None,
                        // The script may have run and its reply been lost: give it back.
                        Err(_) => Some(Message::Release { set, member }),
                    };
                    // The task is gone only with the runtime: then nothing needs renewing.
                    if let Some(message) = message {
                        let _ = inbox.send(message);
                    }
                }
                answer
            }
        };
        self.state = State::Ready(None);
        Poll::Ready(answer)
    }
}

impl Drop for RedisAcquire {
    fn drop(&mut self) {
        let State::Asking {
            counted,
            breaker,
            sent,
            ..
        } = &mut self.state
        else {
            return;
        };
        if let Some(counted) = counted {
            let _ = counted.inbox.send(Message::Release {
                set: counted.set.clone(),
                member: counted.member,
            });
        }
        // Given up after waiting (the layer's `store_timeout`, most likely): as good as a
        // timeout. A probe dropped sooner is given up by the breaker after its bound.
        if let Some((breaker, ticket)) = breaker.take()
            && sent.is_some_and(|at| at.elapsed() >= GIVEN_UP_AFTER)
        {
            breaker.failed(ticket);
        }
    }
}

impl fmt::Debug for RedisAcquire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Ready(Some(_)) => "ready",
            State::Ready(None) => "done",
            State::Asking { .. } => "asking",
        };
        f.debug_struct("RedisAcquire")
            .field("state", &state)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    fn waiting_acquire(breaker: &Arc<Breaker>) -> RedisAcquire {
        let ticket = breaker.try_call().expect("the breaker is closed");
        RedisAcquire::asking(
            Box::pin(std::future::pending()),
            None,
            (breaker.clone(), ticket),
        )
    }

    #[test]
    fn only_an_answer_awaited_for_a_while_opens_the_breaker() {
        let minute = Duration::from_secs(60);
        let breaker = Arc::new(Breaker::new(minute, minute));
        // Never sent (a check built and dropped, a race lost before polling): no news of Redis.
        drop(waiting_acquire(&breaker));
        assert!(breaker.try_call().is_ok(), "still closed");
        let mut slow = waiting_acquire(&breaker);
        assert!((&mut slow).now_or_never().is_none());
        std::thread::sleep(GIVEN_UP_AFTER + Duration::from_millis(10));
        drop(slow);
        assert!(breaker.try_call().is_err(), "open after a call given up on");
    }
}
