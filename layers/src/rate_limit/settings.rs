//! The settings in force, read on every connection and replaced on reload.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tower_mail::{GENERIC_MESSAGE, Reject};

use super::{LAYER_NAME, Limits, RateLimitConfig, RateLimitKey};

/// What [`RateLimit::reconfigure`](super::RateLimit::reconfigure) may change while connections
/// are open.
#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) key: RateLimitKey,
    pub(super) limits: Limits,
    /// Whether checks read the clock: only the rate needs the time, so a limit that has never
    /// had one skips the read (see [`RateLimitStore`](super::RateLimitStore)'s `now`). Once a
    /// rate was set, the store may hold rate history that only the time lets expire, so it stays
    /// set through later configurations.
    pub(super) reads_clock: bool,
    // Built once per configuration: a flood of refused connections clones them, sharing the
    // text.
    pub(super) refusal: Reject,
    pub(super) store_failure: Reject,
    pub(super) fail_open: bool,
    pub(super) store_timeout: Duration,
}

impl Settings {
    pub(super) fn from_config(config: RateLimitConfig) -> Settings {
        let limits = config.limits();
        Settings {
            limits,
            reads_clock: limits.rate.is_some(),
            key: config.key,
            refusal: Reject::new(&config.message).with_layer(LAYER_NAME),
            // Not the limit's text: the client did nothing wrong.
            store_failure: Reject::new(GENERIC_MESSAGE).with_layer(LAYER_NAME),
            fail_open: config.fail_open,
            store_timeout: config.store_timeout,
        }
    }
}

/// The current [`Settings`] of a limit and its clones: an [`ArcSwap`], whose load takes no lock
/// and writes no counter that every core's checks would share.
#[derive(Debug)]
pub(super) struct SettingsCell(ArcSwap<Settings>);

impl SettingsCell {
    pub(super) fn new(settings: Settings) -> SettingsCell {
        SettingsCell(ArcSwap::from_pointee(settings))
    }

    /// Put in force what `make` builds from the settings in force (again, if another
    /// replacement came in between).
    pub(super) fn replace(&self, mut make: impl FnMut(&Settings) -> Settings) {
        self.0.rcu(|old| make(old));
    }

    /// `f` of the settings in force. `f` may run user code (a key function, a clock, a store),
    /// which may even check another limit.
    #[inline]
    pub(super) fn with<R>(&self, f: impl FnOnce(&Arc<Settings>) -> R) -> R {
        f(&self.0.load())
    }
}

#[cfg(test)]
mod tests;
