//! The drop guard that gives a connection's slot back.

use std::fmt;
use std::sync::Arc;

use super::{Key, LocalStore, RateLimitStore, Slot};

/// Held for the session's whole life by each connection a [`RateLimit`](super::RateLimit) let
/// in; dropping it (the connection ended, on any path: logout, reset, timeout, refusal by a
/// later layer, panic, shutdown) gives its open-connection slot back to the store, exactly once.
///
/// It holds nothing when there was nothing to count: no concurrency limit, a session whose key
/// function said "not limited", or a store failure let through by `fail_open`.
///
/// ```
/// use std::sync::Arc;
/// use futures_util::FutureExt;
/// use tower_mail_layers::policy::Policy;
/// use tower_mail_layers::rate_limit::{RateLimit, RateLimitConfig};
///
/// let limit = RateLimit::new(RateLimitConfig { max_concurrent: Some(1), ..Default::default() });
/// let session = Arc::new(tower_mail::Session::new(tower_mail::Protocol::Imap,
///     "192.0.2.1:40000".parse().unwrap(), "127.0.0.1:143".parse().unwrap()));
/// // The local store answers at once, so the check is ready when first polled.
/// let permit = limit.check(&session).now_or_never().unwrap().unwrap();
/// assert_eq!(permit.key().unwrap().to_string(), "192.0.2.1");
/// assert!(limit.check(&session).now_or_never().unwrap().is_err());
/// drop(permit);
/// assert!(limit.check(&session).now_or_never().unwrap().is_ok());
/// ```
#[must_use = "the slot is given back as soon as the permit is dropped"]
pub struct RateLimitPermit<S: RateLimitStore = LocalStore> {
    held: Option<Held<S>>,
}

struct Held<S> {
    store: Arc<S>,
    key: Key,
    slot: Slot,
}

impl<S: RateLimitStore> RateLimitPermit<S> {
    /// A permit that gives `slot` back to `store` when dropped.
    pub(super) fn holding(store: Arc<S>, key: Key, slot: Slot) -> Self {
        RateLimitPermit {
            held: Some(Held { store, key, slot }),
        }
    }

    /// A permit with nothing to give back.
    pub(super) fn empty() -> Self {
        RateLimitPermit { held: None }
    }

    /// The key whose slot it holds, if it holds one.
    pub fn key(&self) -> Option<&Key> {
        self.held.as_ref().map(|held| &held.key)
    }
}

impl<S: RateLimitStore> Drop for RateLimitPermit<S> {
    fn drop(&mut self) {
        // In place: the fields go right after, with the permit.
        if let Some(held) = &self.held {
            held.store.release(&held.key, held.slot);
        }
    }
}

impl<S: RateLimitStore> fmt::Debug for RateLimitPermit<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RateLimitPermit");
        if let Some(held) = &self.held {
            d.field("key", &held.key).field("slot", &held.slot);
        }
        d.finish()
    }
}
