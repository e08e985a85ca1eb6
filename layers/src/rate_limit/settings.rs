//! The settings in force, read on every connection without a lock or a write to shared memory.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use tower_mail::{GENERIC_MESSAGE, Reject};

use super::{LAYER_NAME, Limits, RateLimitConfig, RateLimitKey};

/// What [`RateLimit::reconfigure`](super::RateLimit::reconfigure) may change while connections
/// are open.
#[derive(Debug)]
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
    pub(super) store_timeout: std::time::Duration,
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

/// The current [`Settings`] of a limit and its clones.
///
/// A `RwLock<Arc<Settings>>` alone costs each check two atomic writes to the lock and two to
/// the `Arc`'s count, on lines that every core's checks share. Here each thread keeps the
/// settings it last saw, under a stamp: a check reads the cell's stamp (a plain load of a line
/// that stays in every core's cache until a reconfiguration) and, when its thread has that
/// stamp, uses its own copy. Stamps are unique in the process, so a stamp names one
/// configuration of one limit and a thread's copy can never be another's.
#[derive(Debug)]
pub(super) struct SettingsCell {
    stamp: AtomicU64,
    current: RwLock<Arc<Settings>>,
}

/// The next stamp; 64 bits never wrap.
static NEXT_STAMP: AtomicU64 = AtomicU64::new(1);

fn fresh_stamp() -> u64 {
    NEXT_STAMP.fetch_add(1, Ordering::Relaxed)
}

/// Settings a thread has seen, by stamp: room for the limits of a few stacks (IMAP and POP3,
/// say) used from one thread, taken over in turn. An entry keeps its settings alive until it is
/// taken over or the thread ends, a few hundred bytes at most.
struct Cache {
    entries: [Option<(u64, Arc<Settings>)>; 4],
    next: usize,
}

thread_local! {
    static CACHE: RefCell<Cache> = const {
        RefCell::new(Cache {
            entries: [const { None }; 4],
            next: 0,
        })
    };
}

impl SettingsCell {
    pub(super) fn new(settings: Settings) -> SettingsCell {
        SettingsCell {
            stamp: AtomicU64::new(fresh_stamp()),
            current: RwLock::new(Arc::new(settings)),
        }
    }

    /// Put in force what `make` builds from the settings in force.
    pub(super) fn replace(&self, make: impl FnOnce(&Settings) -> Settings) {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        *current = Arc::new(make(&current));
        // Under the lock, so that a stamp read under the lock matches the settings beside it.
        self.stamp.store(fresh_stamp(), Ordering::Release);
    }

    /// `f` of the settings in force.
    ///
    /// `f` may run user code (a key function, a clock, a store) and may even check another
    /// limit: the cache is only borrowed shared while `f` runs, and a nested check that misses
    /// it goes to the lock without caching.
    #[inline]
    pub(super) fn with<R>(&self, f: impl FnOnce(&Arc<Settings>) -> R) -> R {
        let stamp = self.stamp.load(Ordering::Acquire);
        let mut f = Some(f);
        let hit = CACHE.try_with(|cache| {
            let cache = cache.try_borrow().ok()?;
            let (_, settings) = cache.entries.iter().flatten().find(|(s, _)| *s == stamp)?;
            f.take().map(|f| f(settings))
        });
        if let Ok(Some(answer)) = hit {
            return answer;
        }
        let settings = self.load_and_cache();
        match f.take() {
            Some(f) => f(&settings),
            // `f` runs only on a hit, which returns above.
            None => unreachable!("the settings function ran on a cache hit"),
        }
    }

    /// The settings in force, read under the lock and kept in this thread's cache.
    #[cold]
    #[inline(never)]
    fn load_and_cache(&self) -> Arc<Settings> {
        let (stamp, settings) = self.load();
        let taken_over = CACHE
            .try_with(|cache| {
                let mut cache = cache.try_borrow_mut().ok()?;
                let at = cache.next;
                cache.next = (at + 1) % cache.entries.len();
                cache.entries[at].replace((stamp, settings.clone()))
            })
            .ok()
            .flatten();
        // Dropped outside the borrow: the settings hold a key function, user code.
        drop(taken_over);
        settings
    }

    /// The settings in force with their stamp, under the lock.
    fn load(&self) -> (u64, Arc<Settings>) {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        (self.stamp.load(Ordering::Relaxed), current.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(max: u32) -> Settings {
        Settings::from_config(RateLimitConfig {
            max_concurrent: Some(max),
            ..RateLimitConfig::default()
        })
    }

    fn max(cell: &SettingsCell) -> Option<u32> {
        cell.with(|s| s.limits.max_concurrent)
    }

    #[test]
    fn replacements_are_seen_at_once() {
        let cell = SettingsCell::new(settings(1));
        assert_eq!(max(&cell), Some(1));
        assert_eq!(max(&cell), Some(1), "from the cache");
        cell.replace(|_| settings(2));
        assert_eq!(max(&cell), Some(2));
        let other = std::thread::scope(|s| s.spawn(|| max(&cell)).join().unwrap());
        assert_eq!(other, Some(2));
    }

    #[test]
    fn many_cells_on_one_thread_never_mix() {
        // More cells than the cache has room for, read in turns, replaced now and then.
        let cells: Vec<SettingsCell> = (0..7).map(|i| SettingsCell::new(settings(i))).collect();
        let mut expected: Vec<u32> = (0..7).collect();
        for round in 0..50u32 {
            for (i, cell) in cells.iter().enumerate() {
                if round as usize % 7 == i {
                    let max = 1000 * round + i as u32;
                    cell.replace(|_| settings(max));
                    expected[i] = max;
                }
                assert_eq!(max(cell), Some(expected[i]), "cell {i}, round {round}");
            }
        }
    }

    #[test]
    fn a_check_inside_a_check_works() {
        let outer = SettingsCell::new(settings(1));
        let inner = SettingsCell::new(settings(2));
        // The inner read misses the cache while the outer holds it: it reads under the lock.
        let both = outer.with(|o| (o.limits.max_concurrent, max(&inner), max(&outer)));
        assert_eq!(both, (Some(1), Some(2), Some(1)));
        assert_eq!(max(&inner), Some(2));
    }

    #[test]
    fn the_clock_stays_read_once_a_rate_was_set() {
        let rate = |per_window| {
            Settings::from_config(RateLimitConfig {
                max_per_window: per_window,
                ..RateLimitConfig::default()
            })
        };
        assert!(!rate(None).reads_clock);
        let cell = SettingsCell::new(rate(Some(5)));
        cell.replace(|old| {
            let mut new = rate(None);
            new.reads_clock |= old.reads_clock;
            new
        });
        assert!(cell.with(|s| s.reads_clock));
    }
}
