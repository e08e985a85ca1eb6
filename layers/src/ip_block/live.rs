use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tower_mail::{CloseReason, Session};

/// The sessions an [`IpBlock`](super::IpBlock) let in and that are still open.
#[derive(Debug, Default)]
pub(super) struct LiveSessions {
    inner: Arc<Registry>,
}

#[derive(Debug, Default)]
struct Registry {
    sessions: Mutex<HashMap<u64, Weak<Session>>>,
    next: AtomicU64,
}

/// Removes its session from the registry when the connection ends.
#[derive(Debug)]
pub struct LiveGuard {
    registry: Arc<Registry>,
    key: u64,
}

impl LiveSessions {
    pub(super) fn register(&self, session: &Arc<Session>) -> LiveGuard {
        let key = self.inner.next.fetch_add(1, Ordering::Relaxed);
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, Arc::downgrade(session));
        LiveGuard {
            registry: self.inner.clone(),
            key,
        }
    }

    /// End every open session matching `denied`; returns how many.
    pub(super) fn end_where(
        &self,
        denied: impl Fn(&Session) -> bool,
        reason: impl Fn() -> CloseReason,
    ) -> usize {
        let sessions: Vec<Arc<Session>> = self
            .inner
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        sessions
            .iter()
            .filter(|session| denied(session))
            .map(|session| session.end(reason()))
            .count()
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.registry
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
    }
}
