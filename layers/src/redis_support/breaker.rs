//! The circuit breaker of a Redis client: while Redis is unreachable, checks fail at once
//! instead of each waiting for a connection attempt (up to `connect_timeout` when Redis' host
//! drops packets). Shared by the rate limit's store and the auth layers' Redis stores.
//!
//! - **Closed** (Redis answers): every check goes to Redis. A check that fails because Redis
//!   is unreachable ([`unreachable`]) or gives no answer (its future dropped before the reply,
//!   the layer's `store_timeout`) opens the breaker.
//! - **Open** for `retry_after`: checks fail at once with an error ([`refusal`]), without
//!   touching Redis; the layer's `fail_open` decides.
//! - **Half-open**: once the cool-down has passed, one check goes to Redis as a probe while the
//!   others keep failing at once. Any answer closes the breaker (a script error too: Redis was
//!   reached); a failure opens it for another `retry_after`. A probe that neither answers nor
//!   fails within `probe_bound` (it cannot, short of a leaked future) lets another probe go.
//!
//! Lock-free: one atomic word for the state, one for a generation that is bumped on each
//! close, so that a failure of a call made before the breaker closed (stale news) does not open
//! it again. A check in the closed state costs two atomic loads and reads no clock.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// `state` when closed. Otherwise `state` is `(t + 1) << 1 | probing`: `t`, in µs since
/// `epoch`, is when the cool-down ends (open) or when a probe in flight is given up (probing).
const CLOSED: u64 = 0;
const PROBING: u64 = 1;

pub(crate) struct Breaker {
    state: AtomicU64,
    generation: AtomicU64,
    retry_after: Duration,
    /// Longest a probe can be in flight before another is allowed.
    probe_bound: Duration,
    epoch: Instant,
    /// The `layer` field of its log events.
    log: &'static str,
}

/// Leave to call Redis, to hand back with the call's outcome.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Ticket {
    generation: u64,
    probe: bool,
}

/// What a state word says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    /// Until `t` (µs since the epoch): open, or a probe is in flight.
    Waiting {
        until: u64,
        probing: bool,
    },
}

fn decode(word: u64) -> State {
    if word == CLOSED {
        State::Closed
    } else {
        State::Waiting {
            until: (word >> 1) - 1,
            probing: word & PROBING != 0,
        }
    }
}

fn encode(until: u64, probing: bool) -> u64 {
    (until.saturating_add(1).min(u64::MAX >> 1) << 1) | u64::from(probing)
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

impl Breaker {
    /// A closed breaker; `log` names the layer in its log events.
    pub(crate) fn new(retry_after: Duration, probe_bound: Duration, log: &'static str) -> Breaker {
        Breaker {
            state: AtomicU64::new(CLOSED),
            generation: AtomicU64::new(0),
            retry_after,
            probe_bound,
            epoch: Instant::now(),
            log,
        }
    }

    /// Now, in µs since the epoch.
    fn now(&self) -> u64 {
        micros(self.epoch.elapsed())
    }

    /// May a check call Redis now? `Err` says for how much longer it may not (zero while a
    /// probe is in flight past its cool-down: the probe decides).
    pub(crate) fn try_call(&self) -> Result<Ticket, Duration> {
        // No clock read while closed.
        if self.state.load(Ordering::Acquire) == CLOSED {
            return Ok(self.ticket(false));
        }
        self.try_call_at(self.now())
    }

    fn try_call_at(&self, now: u64) -> Result<Ticket, Duration> {
        let mut word = self.state.load(Ordering::Acquire);
        loop {
            let State::Waiting { until, probing } = decode(word) else {
                return Ok(self.ticket(false));
            };
            if now < until {
                return Err(if probing {
                    Duration::ZERO
                } else {
                    Duration::from_micros(until - now)
                });
            }
            // Cool-down over (or the probe in flight given up): this check is the probe.
            let probing = encode(now.saturating_add(micros(self.probe_bound)), true);
            match self.state.compare_exchange_weak(
                word,
                probing,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(self.ticket(true)),
                Err(current) => word = current,
            }
        }
    }

    fn ticket(&self, probe: bool) -> Ticket {
        Ticket {
            generation: self.generation.load(Ordering::Acquire),
            probe,
        }
    }

    /// Redis answered the call of `ticket`: close, if open.
    pub(crate) fn succeeded(&self, ticket: Ticket) {
        let _ = ticket;
        if self.state.load(Ordering::Acquire) == CLOSED {
            return;
        }
        // Bumped first: a failure racing with the close finds a newer generation than its
        // ticket's and is ignored.
        self.generation.fetch_add(1, Ordering::AcqRel);
        if self.state.swap(CLOSED, Ordering::AcqRel) != CLOSED {
            tracing::debug!(layer = self.log, "Redis answers again; checks ask it again");
        }
    }

    /// The call of `ticket` found Redis unreachable or gave up waiting: open for `retry_after`,
    /// unless that is stale news.
    pub(crate) fn failed(&self, ticket: Ticket) {
        self.failed_at(ticket, self.now());
    }

    fn failed_at(&self, ticket: Ticket, now: u64) {
        let open = encode(now.saturating_add(micros(self.retry_after)), false);
        let mut word = self.state.load(Ordering::Acquire);
        loop {
            // A call made before the last close: its failure says nothing about Redis now.
            if ticket.generation != self.generation.load(Ordering::Acquire) {
                return;
            }
            match decode(word) {
                State::Closed => {}
                // The probe failed: another cool-down.
                State::Waiting { probing: true, .. } if ticket.probe => {}
                // Already open (a call made before it opened), or a probe decides.
                State::Waiting { .. } => return,
            }
            match self
                .state
                .compare_exchange_weak(word, open, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    tracing::debug!(
                        layer = self.log,
                        retry_after_ms =
                            u64::try_from(self.retry_after.as_millis()).unwrap_or(u64::MAX),
                        "Redis unreachable; checks fail at once until the next probe"
                    );
                    return;
                }
                Err(current) => word = current,
            }
        }
    }

    /// What a check is told while the breaker is open, `wait` being what
    /// [`try_call`](Breaker::try_call) answered.
    pub(crate) fn refusal(wait: Duration) -> String {
        if wait.is_zero() {
            "Redis unreachable; waiting for a probe to answer (circuit breaker)".to_owned()
        } else {
            format!(
                "Redis unreachable; not asked again for {} ms (circuit breaker)",
                wait.as_millis()
            )
        }
    }

    /// The cool-down after a failure.
    pub(crate) fn retry_after(&self) -> Duration {
        self.retry_after
    }
}

impl fmt::Debug for Breaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match decode(self.state.load(Ordering::Acquire)) {
            State::Closed => "closed",
            State::Waiting { probing: true, .. } => "probing",
            State::Waiting { until, .. } if self.now() < until => "open",
            State::Waiting { .. } => "half-open",
        };
        f.write_str(state)
    }
}

/// Whether `err` says Redis cannot be reached or cannot serve now (an I/O error: refused,
/// reset, timed out; a failed handshake; a server loading its data, without a master, or a
/// read-only replica),
/// rather than that the call itself was wrong (a script or type error), which Redis answering
/// shows it is reachable.
pub(crate) fn unreachable(err: &redis::RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    match err.kind() {
        ErrorKind::Io | ErrorKind::AuthenticationFailed | ErrorKind::ClusterConnectionNotFound => {
            true
        }
        ErrorKind::Server(kind) => matches!(
            kind,
            ServerErrorKind::BusyLoading
                | ServerErrorKind::MasterDown
                // The URL names a replica now (after a failover): it cannot count.
                | ServerErrorKind::ReadOnly
                | ServerErrorKind::TryAgain
                | ServerErrorKind::ClusterDown
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1000;

    fn breaker() -> Breaker {
        Breaker::new(Duration::from_secs(1), Duration::from_secs(3), "test")
    }

    fn state(breaker: &Breaker) -> State {
        decode(breaker.state.load(Ordering::Relaxed))
    }

    #[test]
    fn closed_lets_every_call_through() {
        let b = breaker();
        for now in [0, 5 * MS, 10_000 * MS] {
            let ticket = b.try_call_at(now).unwrap();
            assert!(!ticket.probe);
            b.succeeded(ticket);
        }
        assert_eq!(state(&b), State::Closed);
        assert_eq!(format!("{b:?}"), "closed");
    }

    #[test]
    fn a_failure_opens_for_the_cool_down_then_one_probe_goes() {
        let b = breaker();
        let first = b.try_call_at(0).unwrap();
        let second = b.try_call_at(0).unwrap();
        b.failed_at(first, 100 * MS);
        assert_eq!(
            state(&b),
            State::Waiting {
                until: 1100 * MS,
                probing: false
            }
        );
        // Open: every call is refused at once, with the time left.
        assert_eq!(b.try_call_at(100 * MS), Err(Duration::from_millis(1000)));
        assert_eq!(b.try_call_at(1099 * MS), Err(Duration::from_millis(1)));
        // Another call that was in flight fails too: the cool-down is not extended.
        b.failed_at(second, 600 * MS);
        assert_eq!(b.try_call_at(1099 * MS), Err(Duration::from_millis(1)));

        // Half-open: one probe, the others still refused while it is in flight.
        let probe = b.try_call_at(1100 * MS).unwrap();
        assert!(probe.probe);
        assert_eq!(format!("{b:?}"), "probing");
        assert_eq!(b.try_call_at(1100 * MS), Err(Duration::ZERO));
        assert_eq!(b.try_call_at(2000 * MS), Err(Duration::ZERO));

        // The probe answers: closed, calls go through.
        b.succeeded(probe);
        assert_eq!(state(&b), State::Closed);
        assert!(!b.try_call_at(2000 * MS).unwrap().probe);
    }

    #[test]
    fn a_failed_probe_opens_again() {
        let b = breaker();
        b.failed_at(b.try_call_at(0).unwrap(), 0);
        let probe = b.try_call_at(1000 * MS).unwrap();
        b.failed_at(probe, 1500 * MS);
        assert_eq!(b.try_call_at(1500 * MS), Err(Duration::from_millis(1000)));
        assert_eq!(b.try_call_at(2499 * MS), Err(Duration::from_millis(1)));
        let probe = b.try_call_at(2500 * MS).unwrap();
        assert!(probe.probe);
        b.succeeded(probe);
        assert_eq!(state(&b), State::Closed);
    }

    #[test]
    fn stale_failures_do_not_reopen() {
        let b = breaker();
        let before = b.try_call_at(0).unwrap();
        let also_before = b.try_call_at(0).unwrap();
        b.failed_at(before, 0);
        b.succeeded(b.try_call_at(1000 * MS).unwrap());
        // A call made before the breaker closed fails late: Redis has answered since.
        b.failed_at(also_before, 1200 * MS);
        assert_eq!(state(&b), State::Closed);
        // A call made after the close does open it.
        let after = b.try_call_at(1200 * MS).unwrap();
        b.failed_at(after, 1300 * MS);
        assert!(b.try_call_at(1300 * MS).is_err());
    }

    #[test]
    fn only_the_probe_decides_while_probing() {
        let b = breaker();
        let old = b.try_call_at(0).unwrap();
        b.failed_at(b.try_call_at(0).unwrap(), 0);
        let probe = b.try_call_at(1000 * MS).unwrap();
        // A call from before the outage fails while the probe is in flight: ignored.
        b.failed_at(old, 1001 * MS);
        assert!(matches!(state(&b), State::Waiting { probing: true, .. }));
        b.succeeded(probe);
        assert_eq!(state(&b), State::Closed);
    }

    #[test]
    fn any_answer_closes() {
        // A call from before the outage that is answered after it opened: Redis is back.
        let b = breaker();
        let old = b.try_call_at(0).unwrap();
        b.failed_at(b.try_call_at(0).unwrap(), 0);
        b.succeeded(old);
        assert_eq!(state(&b), State::Closed);
    }

    #[test]
    fn a_lost_probe_is_given_up_after_its_bound() {
        let b = breaker();
        b.failed_at(b.try_call_at(0).unwrap(), 0);
        // Taken and never handed back (a leaked future).
        let _lost = b.try_call_at(1000 * MS).unwrap();
        assert_eq!(b.try_call_at(3999 * MS), Err(Duration::ZERO));
        let next = b.try_call_at(4000 * MS).unwrap();
        assert!(next.probe);
        b.failed_at(next, 4000 * MS);
        assert_eq!(b.try_call_at(4000 * MS), Err(Duration::from_millis(1000)));
    }

    #[test]
    fn a_zero_cool_down_still_sends_one_probe_at_a_time() {
        let b = Breaker::new(Duration::ZERO, Duration::from_secs(3), "test");
        b.failed_at(b.try_call_at(0).unwrap(), 10);
        let probe = b.try_call_at(10).unwrap();
        assert!(probe.probe);
        assert!(b.try_call_at(10).is_err());
        b.succeeded(probe);
        assert!(!b.try_call_at(11).unwrap().probe);
    }

    #[test]
    fn calls_race_for_the_probe() {
        let b = breaker();
        b.failed_at(b.try_call_at(0).unwrap(), 0);
        let probes = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        (0..1000)
                            .filter(|_| b.try_call_at(1000 * MS).is_ok_and(|t| t.probe))
                            .count()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .sum::<usize>()
        });
        assert_eq!(probes, 1);
    }

    #[test]
    fn far_times_saturate() {
        // "Never again" stays never, and a state word never reads as closed.
        let b = Breaker::new(Duration::MAX, Duration::MAX, "test");
        b.failed_at(b.try_call_at(0).unwrap(), 5);
        assert!(b.try_call_at(1 << 60).is_err());
        assert_ne!(encode(u64::MAX, false), CLOSED);
        assert_eq!(
            decode(encode(u64::MAX, true)),
            State::Waiting {
                until: (u64::MAX >> 1) - 1,
                probing: true
            }
        );
        assert_eq!(
            decode(encode(0, false)),
            State::Waiting {
                until: 0,
                probing: false
            }
        );
    }

    #[test]
    fn which_errors_open_it() {
        use std::io;
        let io = |kind| redis::RedisError::from(io::Error::from(kind));
        assert!(unreachable(&io(io::ErrorKind::ConnectionRefused)));
        assert!(unreachable(&io(io::ErrorKind::TimedOut)));
        assert!(unreachable(&io(io::ErrorKind::ConnectionReset)));
        let server = |kind| redis::RedisError::from((redis::ErrorKind::Server(kind), "x"));
        assert!(unreachable(&server(redis::ServerErrorKind::BusyLoading)));
        assert!(!unreachable(&server(redis::ServerErrorKind::ResponseError)));
        assert!(!unreachable(&server(redis::ServerErrorKind::NoScript)));
        assert!(!unreachable(&redis::RedisError::from((
            redis::ErrorKind::UnexpectedReturnType,
            "x"
        ))));
    }
}
