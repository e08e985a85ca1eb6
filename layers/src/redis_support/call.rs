//! [`Call`]: one command or script call on its way to Redis, through the circuit breaker.
//!
//! Its outcome feeds the breaker: an answer closes it; Redis unreachable, or the call dropped
//! after waiting [`GIVEN_UP_AFTER`] or more for its answer (a caller's deadline), opens it. A
//! call dropped sooner (unpolled, or a race lost in a `select!`) says nothing about Redis.
//!
//! A call that may add a leased member ([`Counted`]) hands it back with its answer, for the
//! caller to keep ([`Counted::opened`]) or give back; dropped before its answer, the call gives
//! it back itself, in case the script ran. The release goes out on the same connection after
//! the call, so Redis sees them in that order.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;

use super::breaker::{self, Breaker, Ticket};
// Re-exported: callers name it with the call that carries it.
pub(crate) use super::leases::Counted;

/// How long an answer may be awaited before giving up on it counts as Redis being too slow:
/// a healthy Redis answers in well under a millisecond.
pub(crate) const GIVEN_UP_AFTER: Duration = Duration::from_millis(50);

/// One call to Redis; resolves to its reply and the member it may have counted.
#[must_use = "futures do nothing unless polled"]
pub(crate) struct Call<T> {
    reply: BoxFuture<'static, redis::RedisResult<T>>,
    counted: Option<Counted>,
    /// Told how the call went; taken when it is.
    breaker: Option<(Arc<Breaker>, Ticket)>,
    /// When the call was first polled, that is, sent.
    sent: Option<Instant>,
}

impl<T> Call<T> {
    /// A call of `reply`, allowed by the breaker's `ticket`, that may add `counted`.
    pub(crate) fn new(
        reply: BoxFuture<'static, redis::RedisResult<T>>,
        counted: Option<Counted>,
        breaker: Arc<Breaker>,
        ticket: Ticket,
    ) -> Call<T> {
        Call {
            reply,
            counted,
            breaker: Some((breaker, ticket)),
            sent: None,
        }
    }
}

impl<T> Future for Call<T> {
    type Output = (redis::RedisResult<T>, Option<Counted>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        this.sent.get_or_insert_with(Instant::now);
        let reply = match this.reply.as_mut().poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(reply) => reply,
        };
        if let Some((breaker, ticket)) = this.breaker.take() {
            match &reply {
                Err(err) if breaker::unreachable(err) => breaker.failed(ticket),
                // An answer, even an error one: Redis is reachable.
                _ => breaker.succeeded(ticket),
            }
        }
        Poll::Ready((reply, this.counted.take()))
    }
}

impl<T> Drop for Call<T> {
    fn drop(&mut self) {
        if let Some(counted) = self.counted.take() {
            counted.release();
        }
        // Given up after waiting (a caller's deadline, most likely): as good as a timeout. A
        // probe dropped sooner is given up by the breaker after its bound.
        if let Some((breaker, ticket)) = self.breaker.take()
            && self.sent.is_some_and(|at| at.elapsed() >= GIVEN_UP_AFTER)
        {
            breaker.failed(ticket);
        }
    }
}

impl<T> fmt::Debug for Call<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("sent", &self.sent.is_some())
            .field("answered", &self.breaker.is_none())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;
    use tokio::sync::mpsc;

    use super::*;
    use crate::redis_support::leases::Message;

    fn waiting_call(breaker: &Arc<Breaker>) -> Call<()> {
        let ticket = breaker.try_call().expect("the breaker is closed");
        Call::new(
            Box::pin(std::future::pending()),
            None,
            breaker.clone(),
            ticket,
        )
    }

    #[test]
    fn only_an_answer_awaited_for_a_while_opens_the_breaker() {
        let minute = Duration::from_secs(60);
        let breaker = Arc::new(Breaker::new(minute, minute, "test"));
        // Never sent (a check built and dropped, a race lost before polling): no news of Redis.
        drop(waiting_call(&breaker));
        assert!(breaker.try_call().is_ok(), "still closed");
        let mut slow = waiting_call(&breaker);
        assert!((&mut slow).now_or_never().is_none());
        std::thread::sleep(GIVEN_UP_AFTER + Duration::from_millis(10));
        drop(slow);
        assert!(breaker.try_call().is_err(), "open after a call given up on");
    }

    #[tokio::test]
    async fn a_call_dropped_before_its_answer_gives_its_member_back() {
        let minute = Duration::from_secs(60);
        let breaker = Arc::new(Breaker::new(minute, minute, "test"));
        let (inbox, mut outbox) = mpsc::unbounded_channel();
        let counted = Counted {
            inbox,
            set: "s".into(),
            member: 7,
        };
        let ticket = breaker.try_call().unwrap();
        let call: Call<()> = Call::new(
            Box::pin(std::future::pending()),
            Some(counted),
            breaker,
            ticket,
        );
        drop(call);
        match outbox.recv().await {
            Some(Message::Release { set, member }) => assert_eq!((&*set, member), ("s", 7)),
            other => panic!("{other:?}"),
        }
    }
}
