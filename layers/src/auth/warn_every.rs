//! [`WarnEvery`]: at most one `warn` per period about a failing store (Redis), the rest at
//! `debug`, so that an outage does not write a line per login; and [`counter_failed`], the
//! report of a shared failure counter that failed.

use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tower_mail::BoxError;

/// How often, at most, a failing store is reported at `warn` level (as the rate limit's outage
/// log does).
pub(crate) const WARN_EVERY: Duration = Duration::from_secs(10);

/// Decides which of a stream of failures is worth a `warn`: the first, then at most one per
/// period, each saying how many were held back since the last.
#[derive(Debug)]
pub(crate) struct WarnEvery {
    period: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    last: Option<Instant>,
    held_back: u64,
}

impl WarnEvery {
    /// At most one `warn` per `period`.
    pub(crate) fn new(period: Duration) -> WarnEvery {
        WarnEvery {
            period,
            state: Mutex::default(),
        }
    }

    /// A failure now: `Some(held back since the last warn)` if it should be a `warn`.
    pub(crate) fn failed(&self) -> Option<u64> {
        self.failed_at(Instant::now())
    }

    fn failed_at(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match state.last {
            Some(last) if now.saturating_duration_since(last) < self.period => {
                state.held_back += 1;
                None
            }
            _ => {
                state.last = Some(now);
                Some(std::mem::take(&mut state.held_back))
            }
        }
    }
}

impl Default for WarnEvery {
    fn default() -> Self {
        WarnEvery::new(WARN_EVERY)
    }
}

/// Log and count a failure of a shared counter: warn at most once per 10 s, the rest at debug.
pub(super) fn counter_failed(warn: &WarnEvery, ip: Option<IpAddr>, error: &BoxError) {
    match warn.failed() {
        Some(held_back) => tracing::warn!(
            event = "auth_failure_counter_error",
            remote_addr = ip.map(tracing::field::display),
            error = %error,
            held_back,
            "shared failure counter failed; counting in this process until it answers \
             (at most one warning per 10 s)"
        ),
        None => tracing::debug!(
            event = "auth_failure_counter_error",
            remote_addr = ip.map(tracing::field::display),
            error = %error,
            "shared failure counter failed; counting in this process"
        ),
    }
    #[cfg(feature = "metrics")]
    ::metrics::counter!("mail_auth_failure_counter_errors_total").increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_warn_per_period_with_the_count_held_back() {
        let warn = WarnEvery::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(warn.failed_at(t0), Some(0));
        assert_eq!(warn.failed_at(t0 + Duration::from_secs(1)), None);
        assert_eq!(warn.failed_at(t0 + Duration::from_secs(9)), None);
        assert_eq!(warn.failed_at(t0 + Duration::from_secs(10)), Some(2));
        assert_eq!(warn.failed_at(t0 + Duration::from_secs(11)), None);
        assert_eq!(warn.failed_at(t0 + Duration::from_secs(60)), Some(1));
    }
}
