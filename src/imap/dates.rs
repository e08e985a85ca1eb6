//! IMAP dates from and to the store's `SystemTime`s.
//!
//! INTERNALDATE is shown in UTC: the store keeps an instant, not the zone it was delivered
//! in. SEARCH's BEFORE/ON/SINCE compare calendar dates, taken in UTC as well, which is what
//! the INTERNALDATE a client saw says.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{FixedOffset, TimeZone, Utc};
use imap_codec::imap_types::datetime::DateTime;

/// `time` as an IMAP date-time, to the second, in UTC.
pub(super) fn to_imap(time: SystemTime) -> DateTime {
    let seconds = match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    };
    let utc = FixedOffset::east_opt(0).expect("UTC is a valid offset");
    let value = utc
        .timestamp_opt(seconds, 0)
        .single()
        .filter(|value| DateTime::validate(value).is_ok())
        .unwrap_or_else(|| utc.timestamp_opt(0, 0).single().expect("the epoch"));
    DateTime::try_from(value).expect("validated above")
}

/// An IMAP date-time (APPEND's) as an instant.
pub(super) fn from_imap(value: &DateTime) -> SystemTime {
    let seconds = value.as_ref().timestamp();
    match u64::try_from(seconds) {
        Ok(after) => UNIX_EPOCH + Duration::from_secs(after),
        Err(_) => UNIX_EPOCH - Duration::from_secs(seconds.unsigned_abs()),
    }
}

/// The calendar date of `time` in UTC, for SEARCH's date keys.
pub(super) fn utc_date(time: SystemTime) -> chrono::NaiveDate {
    chrono::DateTime::<Utc>::from(time).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_to_the_second() {
        let time = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let imap = to_imap(time + Duration::from_millis(999));
        assert_eq!(from_imap(&imap), time);
        assert_eq!(
            utc_date(time),
            chrono::NaiveDate::from_ymd_opt(2023, 11, 14).unwrap()
        );
    }
}
