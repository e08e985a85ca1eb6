use std::fmt;
use std::future::{Ready, ready};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tower_mail::{Protocol, Session};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber, span};

use super::*;
use crate::policy::Policy;
use crate::rate_limit::{Admission, Limits, RateLimit, RateLimitConfig, RateLimitStore, Slot};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn the_first_failure_warns_then_one_summary_per_period() {
    let t0 = Instant::now();
    let mut tally = Tally::default();
    assert_eq!(
        tally.failed(t0, true),
        (
            true,
            Report::Failing {
                let_in: 0,
                refused: 0
            }
        )
    );
    // Nine seconds of failures: quiet, counted.
    for s in 1..10 {
        assert_eq!(
            tally.failed(t0 + secs(s), s % 3 != 0),
            (false, Report::Quiet)
        );
    }
    // Ten seconds after the warning: a summary, this connection included.
    assert_eq!(
        tally.failed(t0 + secs(10), true),
        (
            false,
            Report::Still {
                let_in: 7,
                refused: 3,
                over: secs(10)
            }
        )
    );
    assert_eq!(tally.failed(t0 + secs(15), false).1, Report::Quiet);
    assert_eq!(
        tally.failed(t0 + secs(25), false).1,
        Report::Still {
            let_in: 0,
            refused: 2,
            over: secs(15)
        }
    );
    // Back: how long it failed, and what happened since the last summary.
    assert_eq!(tally.failed(t0 + secs(26), true).1, Report::Quiet);
    assert_eq!(
        tally.answered(t0 + secs(30)),
        Some(Report::Recovered {
            lasted: secs(30),
            let_in: 1,
            refused: 0
        })
    );
    assert_eq!(tally.answered(t0 + secs(31)), None, "only once");
}

#[test]
fn a_flapping_store_is_summarised_not_logged_each_time() {
    let t0 = Instant::now();
    let mut tally = Tally::default();
    assert!(matches!(tally.failed(t0, true).1, Report::Failing { .. }));
    assert!(matches!(
        tally.answered(t0 + secs(1)),
        Some(Report::Recovered { .. })
    ));
    // Failing again within the period of the last report: quiet, and so is its end.
    for s in 2..9 {
        assert_eq!(tally.failed(t0 + secs(s), true), (true, Report::Quiet));
        assert_eq!(tally.answered(t0 + secs(s)), Some(Report::Quiet));
    }
    // The next outage after the period says what the brief ones let in.
    assert_eq!(
        tally.failed(t0 + secs(11), false),
        (
            true,
            Report::Failing {
                let_in: 7,
                refused: 0
            }
        )
    );
    assert_eq!(
        tally.answered(t0 + secs(12)),
        Some(Report::Recovered {
            lasted: secs(1),
            let_in: 0,
            refused: 0
        })
    );
}

#[test]
fn a_long_quiet_gap_warns_again_at_once() {
    let t0 = Instant::now();
    let mut tally = Tally::default();
    tally.failed(t0, true);
    tally.answered(t0 + secs(1));
    assert_eq!(
        tally.failed(t0 + secs(3600), true).1,
        Report::Failing {
            let_in: 0,
            refused: 0
        }
    );
}

/// Events on this thread: level and message.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<(Level, String)>>>);

impl Capture {
    fn take(&self) -> Vec<(Level, String)> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        self.0
            .lock()
            .unwrap()
            .push((*event.metadata().level(), message.0));
    }
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}

/// A store that fails while `down` is set, answering at once or through its future.
struct Switch {
    down: AtomicBool,
    at_once: bool,
}

impl Switch {
    fn answer(&self) -> Result<Admission, StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::new("connection refused"))
        } else {
            Ok(Admission::Admitted(None))
        }
    }
}

impl RateLimitStore for Switch {
    type Future = Ready<Result<Admission, StoreError>>;
    fn acquire(&self, _: &Key, _: Duration, _: &Limits) -> Self::Future {
        ready(self.answer())
    }
    fn acquire_now(
        &self,
        _: &Key,
        _: Duration,
        _: &Limits,
    ) -> Option<Result<Admission, StoreError>> {
        self.at_once.then(|| self.answer())
    }
    fn answers_now(&self) -> bool {
        self.at_once
    }
    fn release(&self, _: &Key, _: Slot) {}
}

fn count(events: &[(Level, String)], level: Level) -> usize {
    events.iter().filter(|(l, _)| *l == level).count()
}

#[test]
fn an_outage_is_one_warning_and_one_recovery() {
    // Through the check's future, and decided on the spot (`acquire_now`).
    for (at_once, fail_open) in [(false, true), (true, false)] {
        let capture = Capture::default();
        let limit = RateLimit::with_store(
            RateLimitConfig {
                fail_open,
                ..RateLimitConfig::default()
            },
            Switch {
                down: AtomicBool::new(true),
                at_once,
            },
        );
        let session = Arc::new(Session::new(
            Protocol::Pop3,
            SocketAddr::from(([192, 0, 2, 1], 40000)),
            SocketAddr::from(([127, 0, 0, 1], 110)),
        ));
        let admitted = async || limit.check(&session).await.is_ok();
        let (first, summary) = if fail_open {
            (
                "rate limit store failed; letting connections in uncounted",
                "49 connections were let in uncounted and 0 refused",
            )
        } else {
            (
                "rate limit store failed; refusing connections",
                "0 connections were let in uncounted and 49 refused",
            )
        };
        // On a paused clock: the fifty failures come within one report period however slow
        // the machine.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        tracing::subscriber::with_default(capture.clone(), || {
            runtime.block_on(async {
                for _ in 0..50 {
                    assert_eq!(admitted().await, fail_open);
                }
                let events = capture.take();
                assert_eq!(count(&events, Level::WARN), 1, "{events:#?}");
                assert_eq!(count(&events, Level::DEBUG), 49, "{events:#?}");
                assert!(events[0].1.starts_with(first), "{events:#?}");

                limit.store().down.store(false, Ordering::SeqCst);
                assert!(admitted().await);
                assert!(admitted().await);
                let events = capture.take();
                assert_eq!(events.len(), 1, "{events:#?}");
                assert_eq!(events[0].0, Level::INFO);
                assert!(events[0].1.contains(summary), "{events:#?}");

                // Failing again right away: quiet until the next period.
                limit.store().down.store(true, Ordering::SeqCst);
                assert_eq!(admitted().await, fail_open);
                let events = capture.take();
                assert_eq!(count(&events, Level::DEBUG), 1, "{events:#?}");
                assert_eq!(events.len(), 1, "{events:#?}");
            });
        });
    }
}
