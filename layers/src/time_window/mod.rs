//! Open hours by weekday in an IANA time zone: the reference guide's business-hours check as a
//! layer.
//!
//! - Several windows per day; a window whose end is before its start crosses midnight and
//!   belongs to the day it starts on.
//! - Dated exceptions: days closed (holidays) and days open with their own hours.
//! - Correct across DST changes: windows are wall-clock times in the zone, resolved by jiff.
//! - Two refusal texts, as in the guide: one for closed hours, one for days with no hours at
//!   all ("Service unavailable on weekends").
//! - A clock that tests can set ([`Schedule::with_clock`]).
//!
//! ```
//! use tower_mail_layers::time_window::{Schedule, Time, TimeWindowLayer, Weekday};
//!
//! let schedule = Schedule::new("Europe/Amsterdam")
//!     .unwrap()
//!     .open_weekdays(
//!         &[Weekday::Monday, Weekday::Tuesday, Weekday::Wednesday, Weekday::Thursday, Weekday::Friday],
//!         Time::constant(9, 0, 0, 0),
//!         Time::constant(17, 0, 0, 0),
//!     )
//!     .closed_day_message("Service unavailable on weekends");
//! let layer = TimeWindowLayer::new(schedule);
//! # drop(layer);
//! ```

mod schedule;

/// The civil-time types schedules are written in, re-exported so users need not depend on jiff.
pub use jiff::civil::{Date, Time, Weekday};
pub use schedule::{Clock, Schedule};

use crate::policy::{PolicyLayer, PolicyService};

/// The name refusals of this layer carry in metrics and logs.
pub const LAYER_NAME: &str = "time_window";

/// Refuses connections outside open hours. See the [module docs](self).
pub type TimeWindowLayer = PolicyLayer<Schedule>;

/// The service [`TimeWindowLayer`] makes.
pub type TimeWindowService<S> = PolicyService<S, Schedule>;

impl TimeWindowLayer {
    /// Enforce `schedule`.
    pub fn new(schedule: Schedule) -> Self {
        PolicyLayer::from_policy(schedule)
    }
}
