use std::collections::HashMap;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use jiff::Timestamp;
use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use tower_mail::{Reject, Session};

use super::LAYER_NAME;
use crate::policy::Policy;

/// Where the current time comes from; tests set their own.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// One open window: `from` (inclusive) to `to` (exclusive), wall-clock. `to <= from` crosses
/// midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    from: Time,
    to: Time,
}

impl Window {
    fn crosses_midnight(self) -> bool {
        self.to <= self.from
    }
}

/// The verdict for one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Open = 0,
    Closed = 1,
    ClosedDay = 2,
}

#[derive(Clone)]
struct Rules {
    zone: TimeZone,
    weekly: [Vec<Window>; 7],
    exceptions: HashMap<Date, Vec<Window>>,
    closed: Reject,
    closed_day: Option<Reject>,
}

/// The last verdict and the wall-clock second it holds for, packed as
/// `(second + 1) << 2 | verdict` (0 = empty). The verdict depends only on the second, so every
/// connection within it shares one time-zone conversion: a hit costs a clock read and one
/// atomic load.
#[derive(Debug, Default)]
struct VerdictCache(AtomicU64);

impl VerdictCache {
    fn get(&self, second: i64) -> Option<Verdict> {
        let packed = self.0.load(Ordering::Relaxed);
        let key = u64::try_from(second).ok()?.checked_add(1)?;
        let verdict = match packed & 3 {
            0 => Verdict::Open,
            1 => Verdict::Closed,
            _ => Verdict::ClosedDay,
        };
        (packed >> 2 == key).then_some(verdict)
    }

    fn put(&self, second: i64, verdict: Verdict) {
        if let Some(key) = u64::try_from(second).ok().and_then(|s| s.checked_add(1)) {
            self.0.store(key << 2 | verdict as u64, Ordering::Relaxed);
        }
    }
}

/// Open hours in a time zone, as a [`Policy`]. See the [module docs](super).
///
/// Window edges are honoured to the second.
#[derive(Clone)]
pub struct Schedule {
    rules: Arc<Rules>,
    clock: Clock,
    cache: Arc<VerdictCache>,
}

impl Schedule {
    /// A schedule in the IANA zone `zone` (`"UTC"`, `"Europe/Amsterdam"`), closed until
    /// windows are added.
    pub fn new(zone: &str) -> Result<Schedule, jiff::Error> {
        Ok(Schedule {
            rules: Arc::new(Rules {
                zone: TimeZone::get(zone)?,
                weekly: Default::default(),
                exceptions: HashMap::new(),
                closed: Reject::new("Service unavailable outside business hours")
                    .with_layer(LAYER_NAME),
                closed_day: None,
            }),
            clock: Arc::new(Timestamp::now),
            cache: Arc::default(),
        })
    }

    /// The rules, to change while building; a change invalidates cached verdicts.
    fn rules_mut(&mut self) -> &mut Rules {
        self.cache = Arc::default();
        Arc::make_mut(&mut self.rules)
    }

    /// A schedule that is always open, in UTC: what "no time window" means.
    ///
    /// ```
    /// use tower_mail_layers::time_window::Schedule;
    /// assert!(Schedule::always_open().is_open_at(jiff::Timestamp::now()).is_ok());
    /// ```
    pub fn always_open() -> Schedule {
        let midnight = Time::midnight();
        let every_day = [
            Weekday::Monday,
            Weekday::Tuesday,
            Weekday::Wednesday,
            Weekday::Thursday,
            Weekday::Friday,
            Weekday::Saturday,
            Weekday::Sunday,
        ];
        // A window from midnight to midnight crosses midnight: open around the clock.
        Schedule::new("UTC")
            .expect("UTC always exists")
            .open_weekdays(&every_day, midnight, midnight)
    }

    /// Open from `from` to `to` on each of `days`. Call again for more windows on a day.
    pub fn open_weekdays(mut self, days: &[Weekday], from: Time, to: Time) -> Schedule {
        let rules = self.rules_mut();
        for day in days {
            rules.weekly[day.to_monday_zero_offset() as usize].push(Window { from, to });
        }
        self
    }

    /// Closed all day on `date` (a holiday), whatever the weekly hours say.
    pub fn closed_on(mut self, date: Date) -> Schedule {
        self.rules_mut().exceptions.insert(date, Vec::new());
        self
    }

    /// Open on `date` from `from` to `to` instead of the weekly hours. Call again for more
    /// windows that day.
    pub fn open_on(mut self, date: Date, from: Time, to: Time) -> Schedule {
        self.rules_mut()
            .exceptions
            .entry(date)
            .or_default()
            .push(Window { from, to });
        self
    }

    /// What a client refused outside the windows is told.
    pub fn message(mut self, message: impl Into<String>) -> Schedule {
        self.rules_mut().closed = Reject::new(message.into()).with_layer(LAYER_NAME);
        self
    }

    /// What a client is told on a day with no open hours at all (weekends, holidays); without
    /// it, the general message.
    pub fn closed_day_message(mut self, message: impl Into<String>) -> Schedule {
        self.rules_mut().closed_day = Some(Reject::new(message.into()).with_layer(LAYER_NAME));
        self
    }

    /// Read the time from `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: Clock) -> Schedule {
        self.clock = clock;
        self.cache = Arc::default();
        self
    }

    fn windows(&self, date: Date) -> &[Window] {
        self.rules
            .exceptions
            .get(&date)
            .unwrap_or(&self.rules.weekly[date.weekday().to_monday_zero_offset() as usize])
    }

    /// Whether the service is open at `at`; `Err` carries the text to refuse with.
    pub fn is_open_at(&self, at: Timestamp) -> Result<(), &str> {
        self.refusal(self.decide(at)).map_err(Reject::message)
    }

    fn refusal(&self, verdict: Verdict) -> Result<(), &Reject> {
        match (verdict, &self.rules.closed_day) {
            (Verdict::Open, _) => Ok(()),
            (Verdict::ClosedDay, Some(reject)) => Err(reject),
            _ => Err(&self.rules.closed),
        }
    }

    fn decide(&self, at: Timestamp) -> Verdict {
        let local = at.to_zoned_datetime(self.rules.zone.clone());
        let (date, time) = (local.date(), local.time());
        let today = self.windows(date);
        let open_today = today.iter().any(|w| {
            if w.crosses_midnight() {
                time >= w.from
            } else {
                w.from <= time && time < w.to
            }
        });
        let open_from_yesterday = date.yesterday().is_ok_and(|yesterday| {
            self.windows(yesterday)
                .iter()
                .any(|w| w.crosses_midnight() && time < w.to)
        });
        if open_today || open_from_yesterday {
            Verdict::Open
        } else if today.is_empty() {
            Verdict::ClosedDay
        } else {
            Verdict::Closed
        }
    }

    /// The verdict now, from the cache when this second was already decided.
    fn decide_now(&self) -> Verdict {
        let now = (self.clock)();
        let second = now.as_second();
        if let Some(verdict) = self.cache.get(second) {
            return verdict;
        }
        let verdict = self.decide(now);
        self.cache.put(second, verdict);
        verdict
    }
}

impl Schedule {
    fn verdict_now(&self) -> Result<(), Reject> {
        self.refusal(self.decide_now()).map_err(Reject::clone)
    }
}

/// Its verdict depends on the time alone.
impl crate::policy::AddressPolicy for Schedule {}

impl Policy for Schedule {
    type Permit = ();
    type Future = Ready<Result<(), Reject>>;

    fn name(&self) -> &'static str {
        LAYER_NAME
    }

    fn check(&self, _session: &Arc<Session>) -> Self::Future {
        ready(self.verdict_now())
    }

    fn check_now(&self, _session: &Arc<Session>) -> Option<Result<(), Reject>> {
        Some(self.verdict_now())
    }
}

impl std::fmt::Debug for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schedule")
            .field("zone", &self.rules.zone.iana_name())
            .field("weekly", &self.rules.weekly)
            .field("exceptions", &self.rules.exceptions)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{date, time};

    const WEEKDAYS: [Weekday; 5] = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
    ];

    fn business_hours(zone: &str) -> Schedule {
        Schedule::new(zone)
            .unwrap()
            .open_weekdays(&WEEKDAYS, time(9, 0, 0, 0), time(17, 0, 0, 0))
            .closed_day_message("Service unavailable on weekends")
    }

    /// The instant of a wall-clock time in `zone`.
    fn at(zone: &str, when: jiff::civil::DateTime) -> Timestamp {
        when.to_zoned_datetime(TimeZone::get(zone).unwrap())
            .unwrap()
            .timestamp()
    }

    #[test]
    fn window_edges_follow_the_guide() {
        let s = business_hours("UTC");
        // 2026-11-25 is a Wednesday.
        let day = date(2026, 11, 25);
        assert!(s.is_open_at(at("UTC", day.at(9, 0, 0, 0))).is_ok());
        assert!(s.is_open_at(at("UTC", day.at(16, 59, 59, 0))).is_ok());
        assert_eq!(
            s.is_open_at(at("UTC", day.at(17, 0, 0, 0))),
            Err("Service unavailable outside business hours")
        );
        assert!(s.is_open_at(at("UTC", day.at(8, 59, 59, 0))).is_err());
        assert_eq!(
            s.is_open_at(at("UTC", date(2026, 11, 28).at(12, 0, 0, 0))),
            Err("Service unavailable on weekends")
        );
    }

    #[test]
    fn windows_crossing_midnight_belong_to_their_first_day() {
        let s = Schedule::new("UTC").unwrap().open_weekdays(
            &[Weekday::Friday],
            time(22, 0, 0, 0),
            time(2, 0, 0, 0),
        );
        let friday = date(2026, 11, 27);
        assert!(s.is_open_at(at("UTC", friday.at(23, 0, 0, 0))).is_ok());
        assert!(
            s.is_open_at(at("UTC", friday.tomorrow().unwrap().at(1, 59, 0, 0)))
                .is_ok()
        );
        assert!(
            s.is_open_at(at("UTC", friday.tomorrow().unwrap().at(2, 0, 0, 0)))
                .is_err()
        );
        assert!(
            s.is_open_at(at("UTC", friday.at(1, 0, 0, 0))).is_err(),
            "Thursday night is closed"
        );
    }

    #[test]
    fn several_windows_per_day() {
        let s = Schedule::new("UTC")
            .unwrap()
            .open_weekdays(&WEEKDAYS, time(8, 0, 0, 0), time(12, 0, 0, 0))
            .open_weekdays(&WEEKDAYS, time(13, 0, 0, 0), time(17, 0, 0, 0));
        let day = date(2026, 11, 25);
        assert!(s.is_open_at(at("UTC", day.at(11, 0, 0, 0))).is_ok());
        assert!(
            s.is_open_at(at("UTC", day.at(12, 30, 0, 0))).is_err(),
            "lunch"
        );
        assert!(s.is_open_at(at("UTC", day.at(13, 0, 0, 0))).is_ok());
    }

    #[test]
    fn dated_exceptions_override_the_week() {
        let christmas = date(2026, 12, 25); // a Friday
        let open_saturday = date(2026, 12, 19);
        let s = business_hours("UTC").closed_on(christmas).open_on(
            open_saturday,
            time(10, 0, 0, 0),
            time(14, 0, 0, 0),
        );
        assert_eq!(
            s.is_open_at(at("UTC", christmas.at(10, 0, 0, 0))),
            Err("Service unavailable on weekends"),
            "a closed day gets the closed-day text"
        );
        assert!(
            s.is_open_at(at("UTC", open_saturday.at(11, 0, 0, 0)))
                .is_ok()
        );
        assert!(
            s.is_open_at(at("UTC", open_saturday.at(15, 0, 0, 0)))
                .is_err()
        );
    }

    #[test]
    fn wall_clock_hours_hold_across_dst_changes() {
        let zone = "Europe/Amsterdam";
        let s = business_hours(zone);
        // DST starts on Sunday 2026-03-29; on Monday 09:30 local is 07:30 UTC, an hour
        // earlier in UTC than the week before.
        let monday_after = date(2026, 3, 30);
        let utc_0730 = at("UTC", monday_after.at(7, 30, 0, 0));
        assert!(s.is_open_at(utc_0730).is_ok());
        let monday_before = date(2026, 3, 23);
        let utc_0730_winter = at("UTC", monday_before.at(7, 30, 0, 0));
        assert!(
            s.is_open_at(utc_0730_winter).is_err(),
            "08:30 local in winter time"
        );
        // DST ends on Sunday 2026-10-25: 16:30 local on Monday is 15:30 UTC.
        let after_fall_back = at("UTC", date(2026, 10, 26).at(15, 30, 0, 0));
        assert!(s.is_open_at(after_fall_back).is_ok());
        let after_fall_back_late = at("UTC", date(2026, 10, 26).at(16, 30, 0, 0));
        assert!(s.is_open_at(after_fall_back_late).is_err(), "17:30 local");
    }

    #[test]
    fn cached_verdicts_follow_the_clock_across_an_edge() {
        let now = Arc::new(std::sync::Mutex::new(at(
            "UTC",
            date(2026, 11, 25).at(16, 59, 59, 0),
        )));
        let clock = {
            let now = now.clone();
            Arc::new(move || *now.lock().unwrap())
        };
        let s = business_hours("UTC").with_clock(clock);
        let session = Arc::new(Session::new(
            tower_mail::Protocol::Pop3,
            "192.0.2.1:1".parse().unwrap(),
            "127.0.0.1:110".parse().unwrap(),
        ));
        assert!(s.check(&session).into_inner().is_ok());
        assert!(
            s.check(&session).into_inner().is_ok(),
            "cached within the second"
        );
        *now.lock().unwrap() = at("UTC", date(2026, 11, 25).at(17, 0, 0, 0));
        assert!(
            s.check(&session).into_inner().is_err(),
            "the next second is decided anew"
        );
    }

    #[test]
    fn the_policy_reads_the_settable_clock() {
        let fixed = at("UTC", date(2026, 11, 28).at(12, 0, 0, 0));
        let s = business_hours("UTC").with_clock(Arc::new(move || fixed));
        let session = Arc::new(Session::new(
            tower_mail::Protocol::Imap,
            "192.0.2.1:1".parse().unwrap(),
            "127.0.0.1:143".parse().unwrap(),
        ));
        let reject = s.check(&session).into_inner().unwrap_err();
        assert_eq!(reject.message(), "Service unavailable on weekends");
        assert_eq!(reject.layer(), "time_window");
    }
}
