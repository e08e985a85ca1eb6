//! Caps on how many connections may be in one phase at once: setting up (PROXY header, TLS
//! handshake), server-wide and per address, and waiting out a tarpit delay. Past a cap the
//! server closes or answers at once instead of holding one more descriptor and task.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A count of connections in one phase, with a cap.
#[derive(Debug)]
pub(super) struct Occupancy {
    count: AtomicUsize,
    max: usize,
}

impl Occupancy {
    pub(super) fn new(max: usize) -> Arc<Occupancy> {
        Arc::new(Occupancy {
            count: AtomicUsize::new(0),
            max,
        })
    }

    /// A place in the phase, or `None` when it is full. The place is given back on drop.
    pub(super) fn try_enter(self: &Arc<Self>) -> Option<Place> {
        self.count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()?;
        Some(Place(self.clone()))
    }

    /// Connections in the phase now.
    pub(super) fn len(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }
}

/// One connection's place in an [`Occupancy`].
#[derive(Debug)]
pub(super) struct Place(Arc<Occupancy>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Connections in setup per address, capped: one address cannot take the whole server-wide
/// setup allowance with handshakes it never finishes.
#[derive(Debug)]
pub(super) struct PerAddress {
    counts: Mutex<HashMap<IpAddr, usize>>,
    max: usize,
}

impl PerAddress {
    pub(super) fn new(max: usize) -> Arc<PerAddress> {
        Arc::new(PerAddress {
            counts: Mutex::new(HashMap::new()),
            max,
        })
    }

    /// A place for `ip`, or `None` when the address has `max` connections in setup already.
    pub(super) fn try_enter(self: &Arc<Self>, ip: IpAddr) -> Option<AddressPlace> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let count = counts.entry(ip).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(AddressPlace {
            owner: self.clone(),
            ip,
        })
    }
}

/// One connection's place in a [`PerAddress`] count.
#[derive(Debug)]
pub(super) struct AddressPlace {
    owner: Arc<PerAddress>,
    ip: IpAddr,
}

impl Drop for AddressPlace {
    fn drop(&mut self) {
        let mut counts = self.owner.counts.lock().unwrap_or_else(|p| p.into_inner());
        // Entries go when they reach zero, so the map is only as large as the addresses in
        // setup now.
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_phase_refuses_until_a_place_is_given_back() {
        let phase = Occupancy::new(2);
        let first = phase.try_enter().unwrap();
        let _second = phase.try_enter().unwrap();
        assert!(phase.try_enter().is_none());
        drop(first);
        assert_eq!(phase.len(), 1);
        assert!(phase.try_enter().is_some());
    }

    #[test]
    fn addresses_are_capped_apart_and_forgotten_at_zero() {
        let setup = PerAddress::new(1);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let held = setup.try_enter(a).unwrap();
        assert!(
            setup.try_enter(a).is_none(),
            "a second place for one address"
        );
        let other = setup.try_enter(b).unwrap();
        drop(held);
        drop(other);
        assert!(setup.counts.lock().unwrap().is_empty());
        assert!(setup.try_enter(a).is_some());
    }
}
