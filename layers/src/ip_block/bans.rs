use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Temporary per-address bans with expiry.
#[derive(Debug, Default)]
pub(super) struct Bans {
    until: Mutex<HashMap<IpAddr, Instant>>,
    // Lets the common case (no bans at all) skip the lock.
    count: AtomicUsize,
}

impl Bans {
    pub(super) fn insert(&self, ip: IpAddr, duration: Duration) {
        let now = Instant::now();
        let mut until = self.until.lock().unwrap_or_else(|p| p.into_inner());
        // Expired entries go when new ones come, so the map stays the size of live bans.
        until.retain(|_, expiry| *expiry > now);
        until.insert(ip, now + duration);
        self.count.store(until.len(), Ordering::Release);
    }

    pub(super) fn remove(&self, ip: IpAddr) {
        let mut until = self.until.lock().unwrap_or_else(|p| p.into_inner());
        until.remove(&ip);
        self.count.store(until.len(), Ordering::Release);
    }

    pub(super) fn is_banned(&self, ip: IpAddr) -> bool {
        if self.count.load(Ordering::Acquire) == 0 {
            return false;
        }
        let until = self.until.lock().unwrap_or_else(|p| p.into_inner());
        until
            .get(&ip)
            .is_some_and(|expiry| *expiry > Instant::now())
    }

    pub(super) fn len(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }
}
