//! Settings: what is limited, how much, and how big the table may grow.

use std::time::Duration;

use super::{Rate, RateLimitKey};

/// What a full [`LocalStore`](super::LocalStore) does with a key it has no room for, once it has
/// dropped every entry that holds no state.
///
/// An entry with open connections is never dropped under either choice: its count must stay
/// exact until its connections end.
///
/// ```
/// use std::time::Duration;
/// use tower_mail_layers::rate_limit::{
///     Admission, Key, Limits, LocalStore, RateLimitStore, Refusal, WhenFull,
/// };
///
/// let limits = Limits { max_concurrent: Some(1), rate: None };
/// let now = Duration::ZERO;
/// let store = LocalStore::new(1, WhenFull::RefuseNewKeys);
/// let first = store.acquire(&Key::from("a"), now, &limits).into_inner().unwrap();
/// assert!(matches!(first, Admission::Admitted(Some(_))));
/// // "a" has a connection open, so under either choice "b" finds no room.
/// let second = store.acquire(&Key::from("b"), now, &limits).into_inner().unwrap();
/// assert_eq!(second, Admission::Refused(Refusal::Full));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// Refuse connections under new keys (with the usual refusal text) until room frees up.
    /// Every limit stays exact, but a flood of addresses can lock out clients not yet seen.
    RefuseNewKeys,
    /// Drop the least recently seen keys that have no open connection (a sixteenth of the
    /// shard at a time, so that a flood pays one scan per many keys), forgetting their
    /// new-connection rate history. Nobody is refused for lack of room while such keys exist,
    /// but a flood of addresses can reset the rate history of a quiet key. A refused attempt
    /// counts as seen, so a key that keeps knocking keeps its history (a refusal before a TLS
    /// handshake does not: it is a [`peek`](super::RateLimitStore::peek), which changes
    /// nothing).
    #[default]
    EvictOldest,
}

/// The two limits, as handed to a [`RateLimitStore`](super::RateLimitStore) on each check.
///
/// ```
/// use std::time::Duration;
/// use tower_mail_layers::rate_limit::{Limits, Rate};
/// let rate = Rate::new(30, Duration::from_secs(60));
/// let limits = Limits { max_concurrent: Some(10), rate: Some(rate) };
/// assert!(!limits.is_unlimited());
/// assert!(Limits::default().is_unlimited());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// Open connections per key; `Some(0)` refuses every connection.
    pub max_concurrent: Option<u32>,
    /// New connections per key over time.
    pub rate: Option<Rate>,
}

impl Limits {
    /// Whether neither limit is set (the store is then not asked at all).
    pub fn is_unlimited(&self) -> bool {
        self.max_concurrent.is_none() && self.rate.is_none()
    }
}

/// Settings of a [`RateLimit`](super::RateLimit), with the example server's defaults (10 open
/// connections per address, no new-connection rate).
///
/// ```
/// use std::time::Duration;
/// use tower_mail_layers::rate_limit::{RateLimitConfig, RateLimitKey, WhenFull};
///
/// let config = RateLimitConfig {
///     key: RateLimitKey::Prefix { v4: 24, v6: 64 },
///     max_concurrent: Some(20),
///     max_per_window: Some(60),
///     window: Duration::from_secs(600),
///     max_keys: 50_000,
///     when_full: WhenFull::RefuseNewKeys,
///     ..RateLimitConfig::default()
/// };
/// assert_eq!(config.limits().rate.unwrap().interval(), Duration::from_secs(10));
/// ```
#[derive(Debug, Clone)]
pub struct RateLimitConfig {
    /// What connections are counted by.
    pub key: RateLimitKey,
    /// Open connections per key; `None`: no limit, `Some(0)`: refuse all.
    pub max_concurrent: Option<u32>,
    /// New connections per key per [`window`](RateLimitConfig::window) (see [`Rate`] for the
    /// exact meaning); `None`: no limit, `Some(0)`: refuse all.
    pub max_per_window: Option<u32>,
    /// The window of `max_per_window`.
    pub window: Duration,
    /// What a refused client is told.
    pub message: String,
    /// Most keys a [`LocalStore`](super::LocalStore) keeps (bounds its memory).
    pub max_keys: usize,
    /// What the local store does when `max_keys` keys hold state.
    pub when_full: WhenFull,
    /// When the store fails or does not answer within `store_timeout`: let the connection in
    /// (`true`) or refuse it with a generic text (`false`). The local store never fails.
    pub fail_open: bool,
    /// How long to wait for the store. Keep it below the
    /// [`PolicyLayer`](crate::policy::PolicyLayer) deadline (5 s by default), which refuses
    /// with "Timeout" whatever `fail_open` says.
    pub store_timeout: Duration,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            key: RateLimitKey::Ip,
            max_concurrent: Some(10),
            max_per_window: None,
            window: Duration::from_secs(3600),
            message: "Too many connections from this IP".to_owned(),
            max_keys: 100_000,
            when_full: WhenFull::default(),
            fail_open: true,
            store_timeout: Duration::from_secs(1),
        }
    }
}

impl RateLimitConfig {
    /// The limits this configuration sets.
    pub fn limits(&self) -> Limits {
        Limits {
            max_concurrent: self.max_concurrent,
            rate: self.max_per_window.map(|max| Rate::new(max, self.window)),
        }
    }
}
