//! Store failures in the log without a line per connection.
//!
//! While a store fails (Redis down), every check fails, and a `warn` per connection would bury
//! the log. Per store instead:
//!
//! - the first failure is a `warn` with the error;
//! - while the store keeps failing, at most one `warn` per [`REPORT_EVERY`] counts the
//!   connections let in (`fail_open`) and refused meanwhile, with the latest error;
//! - when the store answers again, an `info` says how long it failed and counts the connections
//!   since the last `warn`;
//! - every other failed connection is a `debug` event with its key and error.
//!
//! A store that keeps flapping (fails, answers, fails within [`REPORT_EVERY`] of the last
//! `warn`) starts its next outage quietly: its connections are counted and go into the next
//! report, so there are at most one `warn` and one `info` per period.
//!
//! The state belongs to the [`RateLimit`](super::RateLimit): its clones, and every
//! configuration it goes through, share it. A check the store answers reads one flag.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

// Tokio's, which is std's but in tests on a paused runtime: the tests then run on its clock.
use tokio::time::Instant;

use super::{Key, LAYER_NAME, StoreError};

/// At most one `warn` per store per this long while it fails.
pub(super) const REPORT_EVERY: Duration = Duration::from_secs(10);

/// The outage log of a limit's store: what has been reported, and the connections since.
#[derive(Debug, Default)]
pub(super) struct OutageLog {
    /// Whether the store is failing (`tally.since` is set), readable without the lock.
    failing: AtomicBool,
    tally: Mutex<Tally>,
}

/// What the failures of a store since its last report come to.
#[derive(Debug, Default)]
struct Tally {
    /// When the store started failing; `None` while it answers.
    since: Option<Instant>,
    /// Whether this outage has been reported at `warn`.
    warned: bool,
    /// The last `warn` or `info` about this store.
    last_report: Option<Instant>,
    /// Connections decided by `fail_open` since the last report.
    let_in: u64,
    refused: u64,
}

/// What to say about an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Report {
    /// Only the `debug` line.
    Quiet,
    /// The store has started failing. The counts are of connections from brief outages since
    /// the last report, not counting this one.
    Failing { let_in: u64, refused: u64 },
    /// Still failing: the connections since the last report, this one included.
    Still {
        let_in: u64,
        refused: u64,
        over: Duration,
    },
    /// Answering again after `lasted`, with the connections since the last report.
    Recovered {
        lasted: Duration,
        let_in: u64,
        refused: u64,
    },
}

impl Tally {
    /// A connection the store failed, let in or refused by `fail_open`, at `now`. `true` with
    /// the report if the store was answering until now.
    fn failed(&mut self, now: Instant, let_in: bool) -> (bool, Report) {
        let started = self.since.is_none();
        if started {
            self.since = Some(now);
            self.warned = false;
        }
        let last = self.last_report.unwrap_or(now);
        let due = self.last_report.is_none() || now.saturating_duration_since(last) >= REPORT_EVERY;
        let report = if !due {
            self.count(let_in);
            Report::Quiet
        } else if !self.warned {
            // This connection is the one the warning is about: not counted again.
            let (let_in, refused) = self.take();
            Report::Failing { let_in, refused }
        } else {
            self.count(let_in);
            let (let_in, refused) = self.take();
            Report::Still {
                let_in,
                refused,
                over: now.saturating_duration_since(last),
            }
        };
        if report != Report::Quiet {
            self.warned = true;
            self.last_report = Some(now);
        }
        (started, report)
    }

    fn count(&mut self, let_in: bool) {
        if let_in {
            self.let_in += 1;
        } else {
            self.refused += 1;
        }
    }

    /// The store answered at `now`. `None` if it was not failing; otherwise the report: a
    /// recovery if the outage was reported, `Quiet` if it passed unreported (its counts then
    /// go into the next report).
    fn answered(&mut self, now: Instant) -> Option<Report> {
        let since = self.since.take()?;
        if !self.warned {
            return Some(Report::Quiet);
        }
        self.warned = false;
        self.last_report = Some(now);
        let (let_in, refused) = self.take();
        Some(Report::Recovered {
            lasted: now.saturating_duration_since(since),
            let_in,
            refused,
        })
    }

    fn take(&mut self) -> (u64, u64) {
        (
            std::mem::take(&mut self.let_in),
            std::mem::take(&mut self.refused),
        )
    }
}

impl OutageLog {
    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A failure at `now`: count it, say what it calls for.
    fn failed(&self, now: Instant, let_in: bool) -> Report {
        // The flag changes under the lock only, so it always agrees with the tally.
        let mut tally = self.tally();
        let (started, report) = tally.failed(now, let_in);
        if started {
            self.failing.store(true, Ordering::Relaxed);
        }
        report
    }

    /// An answer at `now`; `None` if the store was not failing.
    fn answered(&self, now: Instant) -> Option<Report> {
        let mut tally = self.tally();
        self.failing.store(false, Ordering::Relaxed);
        tally.answered(now)
    }
}

impl OutageLog {
    /// A check of `key` failed with `err`, and `fail_open` let the connection in (`let_in`)
    /// or refused it: count it, and log as the module docs say.
    pub(super) fn log_failure(&self, key: &Key, err: &StoreError, let_in: bool) {
        let report = self.failed(Instant::now(), let_in);
        if !matches!(report, Report::Failing { .. }) {
            // (The warning about the first failure has the key and error already.)
            let decision = if let_in {
                "letting the connection in uncounted"
            } else {
                "refusing the connection"
            };
            tracing::debug!(
                layer = LAYER_NAME,
                key = %key,
                error = %err,
                "rate limit store failed; {decision}"
            );
        }
        let connections = if let_in {
            "letting connections in uncounted"
        } else {
            "refusing connections"
        };
        let every = REPORT_EVERY.as_secs();
        match report {
            Report::Quiet | Report::Recovered { .. } => {}
            Report::Failing {
                let_in: 0,
                refused: 0,
            } => tracing::warn!(
                layer = LAYER_NAME,
                key = %key,
                error = %err,
                "rate limit store failed; {connections} until it answers again (a summary every \
                 {every}s while it fails)"
            ),
            Report::Failing { let_in, refused } => tracing::warn!(
                layer = LAYER_NAME,
                key = %key,
                error = %err,
                let_in,
                refused,
                "rate limit store failed; {connections} until it answers again (a summary every \
                 {every}s while it fails); since the last report, brief failures let {let_in} \
                 connections in uncounted and refused {refused}"
            ),
            Report::Still {
                let_in,
                refused,
                over,
            } => tracing::warn!(
                layer = LAYER_NAME,
                error = %err,
                let_in,
                refused,
                seconds = over.as_secs(),
                "rate limit store still failing: {let_in} connections let in uncounted and \
                 {refused} refused in the last {}s",
                over.as_secs()
            ),
        }
    }

    /// The store answered a check: if it was failing, log that it is back.
    #[inline]
    pub(super) fn log_answer(&self) {
        if self.failing.load(Ordering::Relaxed) {
            self.log_recovery();
        }
    }

    #[cold]
    fn log_recovery(&self) {
        let Some(report) = self.answered(Instant::now()) else {
            return;
        };
        match report {
            Report::Recovered {
                lasted,
                let_in,
                refused,
            } => tracing::info!(
                layer = LAYER_NAME,
                let_in,
                refused,
                outage_ms = u64::try_from(lasted.as_millis()).unwrap_or(u64::MAX),
                "rate limit store answers again after {:.1}s; since the last report, {let_in} \
             connections were let in uncounted and {refused} refused",
                lasted.as_secs_f64()
            ),
            _ => tracing::debug!(
                layer = LAYER_NAME,
                "rate limit store answers again after a brief failure"
            ),
        }
    }
}

#[cfg(test)]
mod tests;
