//! Where per-user session counts live: the [`UserSessionStore`] trait and the in-process store.

use std::collections::HashMap;
use std::fmt;
use std::future::{Future, Ready, ready};
use std::sync::{Arc, Mutex};

use tower_mail::BoxError;

/// The open-session counts behind a [`UserSessionsLayer`](super::UserSessionsLayer): in this
/// process ([`LocalUserSessions`]), or shared by several servers (`RedisUserSessions`, feature
/// `redis`).
///
/// # Contract
///
/// - [`acquire`](UserSessionStore::acquire) counts one more session for `user` if, and only
///   if, fewer than `max` are counted, atomically, and answers `Ok(Some(slot))`; at the cap it
///   counts nothing and answers `Ok(None)`. `max` is at least 1.
/// - The layer gives each slot back with [`release`](UserSessionStore::release) exactly once,
///   when the session ends, whatever way it ends.
/// - `release` runs inside a `Drop`: it must not block or panic. A networked store hands it to
///   a background task.
/// - A slot names what it counted: if the store dropped the user's state in between (a TTL),
///   releasing the old slot must not touch newer state.
/// - The layer polls `acquire`'s future as soon as it has it. If the future is dropped before
///   it resolves (the client went away), a store that may already have counted the session
///   must give it back itself.
/// - An error lets the login in uncounted, or refuses it with
///   [`AuthError::Unavailable`](tower_mail::auth::AuthError), as the layer's
///   [`fail_open`](super::UserSessionsLayer::fail_open) says. A networked store bounds its
///   wait with a deadline of its own.
///
/// # A Redis store
///
/// One Lua script per acquire: drop the expired members of a sorted set `sessions:{user}` (one
/// member per open session, scored by a lease deadline from Redis `TIME`), compare its size
/// with `max`, `ZADD` a fresh member id and return it as the slot. Release is
/// `ZREM sessions:{user} <id>` from a background task, which also renews the leases of its
/// open slots, so that a crashed server's sessions stop counting when their leases run out.
/// (The rate limit's `RedisStore` works this way, and `RedisUserSessions` is this store.)
///
/// ```
/// use std::future::{ready, Ready};
/// use tower_mail::BoxError;
/// use tower_mail_layers::auth::UserSessionStore;
///
/// /// A store that lets everybody in uncounted.
/// struct Uncounted;
///
/// impl UserSessionStore for Uncounted {
///     type Future = Ready<Result<Option<u64>, BoxError>>;
///     fn acquire(&self, _user: &str, _max: u32) -> Self::Future {
///         ready(Ok(Some(0)))
///     }
///     fn release(&self, _user: &str, _slot: u64) {}
/// }
/// ```
pub trait UserSessionStore: Send + Sync + 'static {
    /// The answer to [`acquire`](UserSessionStore::acquire): `Some(slot)` when counted, `None`
    /// at the cap.
    type Future: Future<Output = Result<Option<u64>, BoxError>> + Send + 'static;

    /// Count a session for `user` unless `max` are open. See the
    /// [contract](UserSessionStore#contract).
    fn acquire(&self, user: &str, max: u32) -> Self::Future;

    /// Give back a slot that [`acquire`](UserSessionStore::acquire) counted for `user`.
    fn release(&self, user: &str, slot: u64);
}

/// Session counts in this process: a map from user name to open sessions, an entry only while
/// the user has some, so its size is bounded by the open sessions. Clones share the counts.
///
/// `acquire` decides when it is called (its future is ready at once), so it never counts a
/// session that the layer does not then hold.
///
/// ```
/// use futures_util::FutureExt;
/// use tower_mail_layers::auth::{LocalUserSessions, UserSessionStore};
///
/// let store = LocalUserSessions::new();
/// let slot = store.acquire("alice", 1).now_or_never().unwrap().unwrap();
/// assert!(slot.is_some());
/// assert_eq!(store.acquire("alice", 1).now_or_never().unwrap().unwrap(), None, "at the cap");
/// assert_eq!(store.sessions("alice"), 1);
/// store.release("alice", slot.unwrap());
/// assert_eq!(store.sessions("alice"), 0);
/// ```
#[derive(Clone, Default)]
pub struct LocalUserSessions {
    counts: Arc<Mutex<Counts>>,
}

#[derive(Default)]
struct Counts {
    open: HashMap<String, u32>,
    slots: u64,
}

impl LocalUserSessions {
    /// No sessions counted.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many sessions `user` has open.
    pub fn sessions(&self, user: &str) -> u32 {
        self.lock().open.get(user).copied().unwrap_or(0)
    }

    /// How many users have sessions open.
    pub fn users(&self) -> usize {
        self.lock().open.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // Each update is one statement on the map: a panic elsewhere cannot leave it torn.
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl UserSessionStore for LocalUserSessions {
    type Future = Ready<Result<Option<u64>, BoxError>>;

    fn acquire(&self, user: &str, max: u32) -> Self::Future {
        let mut counts = self.lock();
        let open = counts.open.get(user).copied().unwrap_or(0);
        if open >= max {
            return ready(Ok(None));
        }
        counts.open.insert(user.to_owned(), open + 1);
        counts.slots += 1;
        ready(Ok(Some(counts.slots)))
    }

    fn release(&self, user: &str, _slot: u64) {
        // Entries exist only while they count sessions, and go when the last one does, so a
        // slot always lands on the state that counted it.
        let mut counts = self.lock();
        if let Some(open) = counts.open.get_mut(user) {
            *open -= 1;
            if *open == 0 {
                counts.open.remove(user);
            }
        }
    }
}

impl fmt::Debug for LocalUserSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalUserSessions")
            .field("users", &self.users())
            .finish()
    }
}
