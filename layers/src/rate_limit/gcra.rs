//! The new-connection rate as a GCRA (generic cell rate algorithm): one timestamp per key.

use std::time::Duration;

/// At most `max` new connections at once, refilling at `max` per `window`.
///
/// Checked with GCRA: a key keeps one number, its theoretical arrival time (TAT), the time at
/// which it would be back to a full budget if nothing else came. With emission interval
/// `T = window / max` and burst tolerance `τ = (max - 1) · T`, a connection at `now` is admitted
/// when `max(TAT, now) - now ≤ τ`, and then moves the TAT to `max(TAT, now) + T`.
///
/// What that gives: a key quiet for a whole window may open `max` connections at once; after
/// that, one more each `T`. Over a long run, `max` per `window`. It is a token bucket of `max`
/// tokens refilled at `max` per `window`, so any span of length `window` admits fewer than
/// `2 · max`, not `max`: a strict count over a sliding window would need `max` timestamps per
/// key instead of one. Refused connections spend nothing.
///
/// ```
/// use std::time::Duration;
/// use tower_mail_layers::rate_limit::Rate;
///
/// let rate = Rate::new(3, Duration::from_secs(30));
/// assert_eq!(rate.interval(), Duration::from_secs(10));
/// // A fresh key (TAT 0) at t = 100 s: admitted, its TAT moves one interval ahead.
/// let s = 1_000_000_000;
/// assert_eq!(rate.admit(0, 100 * s), Ok(110 * s));
/// // Two more fit in the burst, the fourth waits one interval.
/// assert_eq!(rate.admit(110 * s, 100 * s), Ok(120 * s));
/// assert_eq!(rate.admit(120 * s, 100 * s), Ok(130 * s));
/// assert_eq!(rate.admit(130 * s, 100 * s), Err(10 * s));
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    max: u32,
    window: Duration,
    // Both derived from `max` and `window`, worked out once here rather than with two
    // divisions on every check.
    interval: u64,
    tolerance: u64,
}

impl Rate {
    /// `max` new connections per `window`. `max` 0 refuses every connection; a zero `window`
    /// admits every connection.
    pub fn new(max: u32, window: Duration) -> Rate {
        let interval = match max {
            0 => 0,
            max => u64::try_from(window.as_nanos()).unwrap_or(u64::MAX) / u64::from(max),
        };
        Rate {
            max,
            window,
            interval,
            tolerance: interval.saturating_mul(u64::from(max.saturating_sub(1))),
        }
    }

    /// Connections per window.
    pub fn max(&self) -> u32 {
        self.max
    }

    /// The window.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// The emission interval `T = window / max`: the sustained gap between connections.
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval_nanos())
    }

    /// `T` in nanoseconds (0 when `max` is 0). Rounded down, so the long-run rate errs by less
    /// than one connection per `window / max` nanoseconds' worth, and the burst is exactly `max`.
    pub fn interval_nanos(&self) -> u64 {
        self.interval
    }

    /// The burst tolerance `τ = (max - 1) · T` in nanoseconds.
    pub fn tolerance_nanos(&self) -> u64 {
        self.tolerance
    }

    /// One GCRA step for a key whose TAT is `tat`, at `now` (both in nanoseconds on the same
    /// clock): the new TAT if the connection is admitted, or how many nanoseconds until it
    /// would be (`u64::MAX` when `max` is 0). A TAT at or before `now` means no history: a
    /// key can start at 0.
    pub fn admit(&self, tat: u64, now: u64) -> Result<u64, u64> {
        if self.max == 0 {
            return Err(u64::MAX);
        }
        let base = tat.max(now);
        let ahead = base - now;
        if ahead > self.tolerance {
            Err(ahead - self.tolerance)
        } else {
            Ok(base.saturating_add(self.interval))
        }
    }
}

impl std::fmt::Debug for Rate {
    // What it was made of; the rest follows.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rate")
            .field("max", &self.max)
            .field("window", &self.window)
            .finish()
    }
}

#[cfg(test)]
mod tests;
