//! The Lua scripts and what goes in and out of them: the decision is made inside Redis, in
//! one round trip, on Redis' clock.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use crate::rate_limit::{Admission, Limits, Rate, Refusal, Slot, StoreError};

/// The acquire decision (`acquire.lua`): drop expired leases, compare the open count with
/// `max_concurrent`, run the GCRA step, and only if both pass add the member and store the TAT.
pub(super) static ACQUIRE: LazyLock<Script> =
    LazyLock::new(|| crate::redis_support::script(include_str!("acquire.lua")));

/// The longest emission interval or burst tolerance sent to the script: ten years. Times in
/// the script are microseconds since 1970 in doubles, exact below 2^53 µs (285 years after
/// 1970), so `now + tolerance + interval` must stay well under that.
const MAX_SPAN_US: u64 = 10 * 365 * 24 * 3600 * 1_000_000;

/// The script's arguments for `limits`, or the decision itself when it needs no round trip
/// (a limit of 0 refuses everything and never changes state).
pub(super) enum Plan {
    /// Refused without asking Redis.
    Decided(Admission),
    /// Ask Redis with these arguments.
    Ask(Args),
}

/// ARGV of `acquire.lua`, but the member id and lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Args {
    /// Open connections allowed, or -1 for no limit.
    pub(super) max_concurrent: i64,
    /// GCRA emission interval in µs, or -1 for no rate.
    pub(super) interval_us: i64,
    /// GCRA burst tolerance in µs.
    pub(super) tolerance_us: i64,
}

impl Args {
    /// Whether an admission counts a connection (adds a member that must be released).
    pub(super) fn counts(&self) -> bool {
        self.max_concurrent >= 0
    }
}

/// What to send for `limits`. Checked in the local store's order: concurrency, then rate.
pub(super) fn plan(limits: &Limits) -> Plan {
    if limits.max_concurrent == Some(0) {
        return Plan::Decided(Admission::Refused(Refusal::Concurrency));
    }
    if limits.rate.is_some_and(|rate| rate.max() == 0) {
        return Plan::Decided(Admission::Refused(Refusal::Rate {
            retry_after: Duration::MAX,
        }));
    }
    let (interval_us, tolerance_us) = match limits.rate {
        Some(rate) => gcra_micros(rate),
        None => (-1, 0),
    };
    Plan::Ask(Args {
        max_concurrent: limits.max_concurrent.map_or(-1, i64::from),
        interval_us,
        tolerance_us,
    })
}

/// `T` and `τ` of `rate` in whole microseconds. `τ` is `(max - 1) · T` of the rounded `T`, so
/// the burst stays exactly `max`; a `T` under 1 µs (but not 0) counts as 1 µs.
fn gcra_micros(rate: Rate) -> (i64, i64) {
    let nanos = rate.interval_nanos();
    let interval = match nanos {
        0 => 0,
        n => (n / 1_000).max(1),
    }
    .min(MAX_SPAN_US);
    let tolerance = interval
        .saturating_mul(u64::from(rate.max().saturating_sub(1)))
        .min(MAX_SPAN_US);
    // Both are at most MAX_SPAN_US, far below i64::MAX.
    (interval as i64, tolerance as i64)
}

/// The store's answer from the script's reply.
pub(super) fn admission(reply: &[i64], slot: Option<Slot>) -> Result<Admission, StoreError> {
    match reply {
        [0] => Ok(Admission::Admitted(slot)),
        [1] => Ok(Admission::Refused(Refusal::Concurrency)),
        [2, wait_us] => Ok(Admission::Refused(Refusal::Rate {
            retry_after: Duration::from_micros(u64::try_from(*wait_us).unwrap_or(0)),
        })),
        other => Err(StoreError::new(format!(
            "unexpected reply from the acquire script: {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests;
