//! The live-session registry: weak references to open sessions, each removed by a guard
//! when its connection ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tower_mail::{CloseReason, Session};

/// The open sessions of the connections it let in: what `doveadm who` lists and
/// `doveadm kick` ends. Clones share one registry, so a clone kept aside (by an admin
/// endpoint) sees what the layer registers.
///
/// ```
/// use std::sync::Arc;
/// use tower_mail::{Protocol, Session};
/// use tower_mail_layers::sessions::SessionRegistry;
///
/// let registry = SessionRegistry::new();
/// let session = Arc::new(Session::new(Protocol::Imap,
///     "192.0.2.7:50000".parse().unwrap(), "127.0.0.1:143".parse().unwrap()));
/// session.set_user(Some("alice".into()));
/// let guard = registry.register(&session);
/// assert_eq!(registry.sessions().len(), 1);
/// assert_eq!(registry.kick_user("alice", "Kicked by an administrator"), 1);
/// assert!(session.is_ending());
/// drop(guard); // the connection ended
/// assert!(registry.sessions().is_empty());
/// ```
#[derive(Debug, Clone, Default)]
pub struct SessionRegistry {
    inner: Arc<Registry>,
}

#[derive(Debug, Default)]
struct Registry {
    sessions: Mutex<HashMap<u64, Weak<Session>>>,
    next: AtomicU64,
}

/// Removes its session from the registry when dropped: held for the connection's life.
#[derive(Debug)]
pub struct RegistryGuard {
    registry: Arc<Registry>,
    key: u64,
}

impl SessionRegistry {
    /// An empty registry.
    pub fn new() -> SessionRegistry {
        SessionRegistry::default()
    }

    /// Add `session` until the guard is dropped.
    pub fn register(&self, session: &Arc<Session>) -> RegistryGuard {
        let key = self.inner.next.fetch_add(1, Ordering::Relaxed);
        self.inner.lock().insert(key, Arc::downgrade(session));
        RegistryGuard {
            registry: self.inner.clone(),
            key,
        }
    }

    /// The open sessions, oldest first.
    pub fn sessions(&self) -> Vec<Arc<Session>> {
        let mut sessions: Vec<Arc<Session>> = self
            .inner
            .lock()
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        sessions.sort_by_key(|session| session.started());
        sessions
    }

    /// How many sessions are open.
    pub fn len(&self) -> usize {
        self.inner.lock().len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// End every open session for which `select` holds, with `reason`; returns how many.
    /// Each session tells its client (`* BYE` / `-ERR` with the reason's text) and ends.
    pub fn end_where(
        &self,
        select: impl Fn(&Session) -> bool,
        reason: impl Fn() -> CloseReason,
    ) -> usize {
        // Collected first: ending a session must not run under the registry's lock.
        self.sessions()
            .iter()
            .filter(|session| select(session))
            .map(|session| session.end(reason()))
            .count()
    }

    /// End the sessions logged in as `user`, telling their clients `text`.
    pub fn kick_user(&self, user: &str, text: &str) -> usize {
        self.end_where(
            |session| session.user().as_deref() == Some(user),
            || CloseReason::Kicked(text.to_owned()),
        )
    }

    /// End the sessions from `ip` (the client's address, after any PROXY header), telling
    /// their clients `text`.
    pub fn kick_address(&self, ip: IpAddr, text: &str) -> usize {
        let ip = ip.to_canonical();
        self.end_where(
            |session| session.remote_addr().ip().to_canonical() == ip,
            || CloseReason::Kicked(text.to_owned()),
        )
    }
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Weak<Session>>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for RegistryGuard {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.key);
    }
}
