//! The connection-management guide's "Time-based Access Control": accept connections only
//! from 09:00 to 17:00 on weekdays, and log how long each session lasted.
//!
//! ```text
//! cargo run --example business_hours -- --tz-offset-minutes 60
//! cargo run --example business_hours -- --now 2026-11-25T10:00:00   # pretend it is then
//! ```
//!
//! From the guide's JavaScript to Rust:
//!
//! - `onConnect` is an [`OnConnectLayer`] hook returning `Err(Reject)`; the client reads
//!   `-ERR Service unavailable outside business hours` or `-ERR Service unavailable on
//!   weekends`. The checks run in the guide's order (hours first), with its edges: 17:00 is
//!   closed (`hour >= 17`), 09:00 open.
//! - `onClose` is an [`OnCloseLayer`] hook. `Date.now() - session.created` becomes the close
//!   report's `duration`, measured on the monotonic clock, so a wall-clock step (NTP, DST)
//!   cannot make a session last a negative or inflated time.
//! - `new Date()` reads the host's local time zone. Here the zone is explicit
//!   (`--tz-offset-minutes`, default 0 = UTC), and the clock can be fixed with `--now`, a local
//!   time to which no offset applies, so the policy is testable at any hour. The calendar
//!   arithmetic is done here, without a date crate.

#[path = "guide/mod.rs"]
mod guide;

use std::fmt;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tower::ServiceBuilder;
use tower_mail::{CloseReport, Reject, Session};
use tower_mail_layers::on_close::OnCloseLayer;
use tower_mail_layers::on_connect::OnConnectLayer;

const SECONDS_PER_DAY: i64 = 24 * 60 * 60;

/// A local date and time, as seconds since 1970-01-01T00:00:00 of the same local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LocalTime(i64);

impl LocalTime {
    /// Parse `YYYY-MM-DDTHH:MM:SS`, rejecting dates that do not exist (2026-02-30).
    fn parse(text: &str) -> Option<LocalTime> {
        let (date, time) = text.split_once('T')?;
        let mut date = date.splitn(3, '-').map(str::parse::<i64>);
        let (year, month, day) = (date.next()?.ok()?, date.next()?.ok()?, date.next()?.ok()?);
        let mut time = time.splitn(3, ':').map(str::parse::<i64>);
        let (hour, minute, second) = (time.next()?.ok()?, time.next()?.ok()?, time.next()?.ok()?);
        let days = days_from_civil(year, month, day);
        // Out-of-range months and days do not survive the round trip through the calendar.
        let valid_date = (1..=12).contains(&month) && civil_from_days(days) == (year, month, day);
        let valid_time =
            (0..24).contains(&hour) && (0..60).contains(&minute) && (0..60).contains(&second);
        (valid_date && valid_time)
            .then(|| LocalTime(days * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second))
    }

    fn days(self) -> i64 {
        self.0.div_euclid(SECONDS_PER_DAY)
    }

    /// The hour, 0 to 23 (JavaScript's `getHours()`).
    fn hour(self) -> i64 {
        self.0.rem_euclid(SECONDS_PER_DAY) / 3600
    }

    /// The day of the week, 0 = Sunday to 6 = Saturday (JavaScript's `getDay()`).
    fn weekday(self) -> i64 {
        // 1970-01-01 was a Thursday.
        (self.days() + 4).rem_euclid(7)
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (year, month, day) = civil_from_days(self.days());
        let seconds = self.0.rem_euclid(SECONDS_PER_DAY);
        let (hour, minute, second) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}"
        )
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day counted from 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Where "now" comes from.
#[derive(Debug, Clone, Copy)]
enum Clock {
    /// The system clock, shifted from UTC by a fixed number of minutes.
    System { offset_minutes: i64 },
    /// A fixed local time (`--now`), for trying the policy at any hour.
    Fixed(LocalTime),
}

impl Clock {
    fn now(self) -> LocalTime {
        match self {
            Clock::Fixed(time) => time,
            Clock::System { offset_minutes } => {
                let utc = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |since| since.as_secs() as i64);
                LocalTime(utc + offset_minutes * 60)
            }
        }
    }
}

/// The guide's onConnect rule, in its order: hours first, then the weekend.
fn open_at(now: LocalTime) -> Result<(), Reject> {
    let refuse = |text| Err(Reject::new(text).with_layer("business_hours"));
    if now.hour() < 9 || now.hour() >= 17 {
        return refuse("Service unavailable outside business hours");
    }
    if now.weekday() == 0 || now.weekday() == 6 {
        return refuse("Service unavailable on weekends");
    }
    Ok(())
}

/// The guide's two handlers in front of any session service.
fn business_hours(inner: impl guide::Stack, clock: Clock) -> impl guide::Stack {
    let on_connect = move |session: Arc<Session>| async move {
        let now = clock.now();
        open_at(now)?;
        println!(
            "{} connection allowed from {} at {now}",
            guide::protocol_name(session.protocol()),
            session.remote_addr().ip()
        );
        Ok(())
    };
    let on_close = |session: &Session, report: &CloseReport| {
        println!(
            "{} session {} lasted {}ms",
            guide::protocol_name(session.protocol()),
            session.id(),
            report.duration.as_millis()
        );
    };
    ServiceBuilder::new()
        // Outside the check, so refused connections get their "lasted" line too.
        .layer(OnCloseLayer::new(on_close))
        .layer(OnConnectLayer::new(on_connect))
        .service(inner)
}

async fn run() -> Result<(), String> {
    let args = guide::Args::parse(&["--now", "--tz-offset-minutes"])?;
    let clock = match args.last("--now") {
        Some(text) => Clock::Fixed(
            LocalTime::parse(text)
                .ok_or_else(|| format!("--now {text:?}: expected YYYY-MM-DDTHH:MM:SS"))?,
        ),
        None => Clock::System {
            offset_minutes: args.parsed("--tz-offset-minutes", 0)?,
        },
    };
    guide::serve(args.listen(), business_hours(guide::pop3(), clock)).await
}

#[tokio::main]
async fn main() -> ExitCode {
    guide::exit("business_hours", run().await)
}
