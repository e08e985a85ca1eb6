//! JSON log lines written straight into a line buffer.
//!
//! The same lines as tracing-subscriber's `.json().flatten_event(true)` (`timestamp`, `level`,
//! the event's fields with `message` first, `target`), made for a server that logs a line or
//! two per connection at tens of thousands of connections a second. tracing-subscriber's JSON
//! formatter collects every field into a map of `serde_json::Value`s, a `String` each, before
//! it writes any; this one appends each field to a buffer of its own as it is visited, escapes
//! only the values that need it, and formats the date and time of day once per second.

use std::cell::{Cell, RefCell};
use std::fmt::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The event format of the example server's `[log] format = "json"`.
pub struct JsonLines;

thread_local! {
    /// The line being formatted on this thread, kept so that its room is reused. The
    /// formatter's `Writer` would do, but each of a line's fifty-odd pieces would then be a
    /// dynamic call: appending to a `String` is inlined.
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

/// A line longer than this does not keep its room for the next.
const KEPT_LINE_CAPACITY: usize = 16 * 1024;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        LINE.with(|line| match line.try_borrow_mut() {
            Ok(mut line) => {
                line.clear();
                let written = write_line(&mut line, event).and_then(|()| writer.write_str(&line));
                if line.capacity() > KEPT_LINE_CAPACITY {
                    *line = String::new();
                }
                written
            }
            // An event inside a field's `Display`: rare, so a buffer of its own.
            Err(_) => {
                let mut line = String::new();
                write_line(&mut line, event)?;
                writer.write_str(&line)
            }
        })
    }
}

/// `event` as one JSON object and a newline.
fn write_line(out: &mut String, event: &Event<'_>) -> fmt::Result {
    let meta = event.metadata();
    out.push_str("{\"timestamp\":\"");
    write_timestamp(out, SystemTime::now())?;
    out.push_str("\",\"level\":\"");
    out.push_str(meta.level().as_str());
    out.push('"');
    let mut fields = Fields {
        out: &mut *out,
        result: Ok(()),
    };
    event.record(&mut fields);
    fields.result?;
    out.push_str(",\"target\":");
    write_string(out, meta.target())?;
    out.push_str("}\n");
    Ok(())
}

/// Appends each field as `,"name":value`.
struct Fields<'a> {
    out: &'a mut String,
    // `Visit` cannot fail, but a value's `Display` can; the first error is kept for the
    // formatter to return.
    result: fmt::Result,
}

impl Fields<'_> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut String) -> fmt::Result) {
        if self.result.is_ok() {
            self.out.push_str(",\"");
            self.out.push_str(field.name());
            self.out.push_str("\":");
            self.result = value(self.out);
        }
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, |out| write_string(out, value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |out| {
            out.push_str(Decimal::of(value).as_str());
            Ok(())
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |out| {
            if value < 0 {
                out.push('-');
            }
            out.push_str(Decimal::of(value.unsigned_abs()).as_str());
            Ok(())
        });
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |out| {
            out.push_str(if value { "true" } else { "false" });
            Ok(())
        });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity: those go as text, as serde_json would not write them.
        match value.is_finite() {
            true => self.field(field, |out| write!(out, "{value}")),
            false => self.field(field, |out| write!(out, "\"{value}\"")),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` fields arrive here too, and print with `Display`. Written as they are, then
        // escaped in one pass if they need it (most do not): `Display` impls write in many
        // small pieces, and escaping each on its way costs more.
        self.field(field, |out| {
            out.push('"');
            let start = out.len();
            write!(out, "{value:?}")?;
            if out.as_bytes()[start..]
                .iter()
                .any(|&byte| NEEDS_ESCAPE[usize::from(byte)])
            {
                let raw = out.split_off(start);
                Escaped(&mut *out).write_str(&raw)?;
            }
            out.push('"');
            Ok(())
        });
    }
}

/// A number's decimal digits, written without `core::fmt`.
struct Decimal {
    digits: [u8; 20],
    start: usize,
}

impl Decimal {
    fn of(mut value: u64) -> Decimal {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                return Decimal { digits, start };
            }
        }
    }

    fn as_str(&self) -> &str {
        // ASCII digits only.
        std::str::from_utf8(&self.digits[self.start..]).unwrap_or_default()
    }
}

/// `text` as a JSON string.
fn write_string(out: &mut impl Write, text: &str) -> fmt::Result {
    out.write_char('"')?;
    Escaped(&mut *out).write_str(text)?;
    out.write_char('"')
}

/// A writer that escapes what passes through it for the inside of a JSON string.
struct Escaped<W>(W);

/// The bytes a JSON string cannot hold as they are (and DEL, kept out of log lines too).
const NEEDS_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = true;
        byte += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table[0x7f] = true;
    table
};

impl<W: Write> Write for Escaped<W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let bytes = text.as_bytes();
        let mut start = 0;
        // Most text needs no escape: one table lookup per byte finds the next that does.
        while let Some(offset) = bytes[start..]
            .iter()
            .position(|&byte| NEEDS_ESCAPE[usize::from(byte)])
        {
            let at = start + offset;
            self.0.write_str(&text[start..at])?;
            match bytes[at] {
                b'"' => self.0.write_str("\\\"")?,
                b'\\' => self.0.write_str("\\\\")?,
                b'\n' => self.0.write_str("\\n")?,
                b'\r' => self.0.write_str("\\r")?,
                b'\t' => self.0.write_str("\\t")?,
                other => write!(self.0, "\\u{other:04x}")?,
            }
            start = at + 1;
        }
        self.0.write_str(&text[start..])
    }
}

thread_local! {
    /// The second last formatted on this thread, and its `YYYY-MM-DDTHH:MM:SS`.
    static SECOND: Cell<(u64, [u8; 19])> = const { Cell::new((u64::MAX, [0; 19])) };
}

/// `at` in RFC 3339, UTC, to the microsecond: `2026-12-05T18:03:48.468514Z`.
fn write_timestamp(out: &mut impl Write, at: SystemTime) -> fmt::Result {
    // Before 1970 only if the clock is badly wrong; shown as the epoch then.
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let second = since.as_secs();
    let (cached, mut text) = SECOND.get();
    if cached != second {
        text = date_and_time(second);
        SECOND.set((second, text));
    }
    // Only ASCII digits and separators are ever written into `text`.
    let text = std::str::from_utf8(&text).map_err(|_| fmt::Error)?;
    write!(out, "{text}.{:06}Z", since.subsec_micros())
}

/// `YYYY-MM-DDTHH:MM:SS` of a count of seconds since the Unix epoch, in UTC.
fn date_and_time(seconds: u64) -> [u8; 19] {
    let (days, in_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days);
    let mut text = [0u8; 19];
    let mut put = |at: usize, value: u64, width: usize| {
        let mut value = value;
        for k in (0..width).rev() {
            text[at + k] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, year, 4);
    put(5, month, 2);
    put(8, day, 2);
    put(11, in_day / 3600, 2);
    put(14, in_day / 60 % 60, 2);
    put(17, in_day % 60, 2);
    for (at, separator) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')] {
        text[at] = separator;
    }
    text
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn escaped(text: &str) -> String {
        let mut out = String::new();
        write_string(&mut out, text).unwrap();
        out
    }

    #[test]
    fn strings_are_escaped_as_json_requires() {
        assert_eq!(escaped("plain"), r#""plain""#);
        assert_eq!(escaped("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(escaped("x\r\ny\t"), r#""x\r\ny\t""#);
        assert_eq!(escaped("\u{0}\u{1b}\u{7f}"), r#""\u0000\u001b\u007f""#);
        assert_eq!(escaped("é ✓"), "\"é ✓\"");
    }

    /// Lines a subscriber writes, kept for the test.
    #[derive(Clone, Default)]
    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn events_are_json_lines_with_every_field() {
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(JsonLines)
            .with_writer(move || writer.clone())
            .finish();
        let addr: std::net::SocketAddr = "[2001:db8::1]:4000".parse().unwrap();
        let long = format!("{}\"\n", "x".repeat(300));
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(
                event = "close",
                count = 42u64,
                delta = -3i64,
                secure = true,
                ratio = 0.5,
                nan = f64::NAN,
                addr = %addr,
                long = %long,
                quoted = "a\"b\\c\u{1}",
                "refused: {}",
                "\"quoted\""
            );
        });
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert!(
            text.ends_with("}\n") && text.matches('\n').count() == 1,
            "{text}"
        );
        let line: serde_json::Value = serde_json::from_str(&text).unwrap();
        let timestamp = line["timestamp"].as_str().unwrap();
        assert_eq!(timestamp.len(), "2026-12-05T18:03:48.468514Z".len());
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["message"], "refused: \"quoted\"");
        assert_eq!(line["event"], "close");
        assert_eq!(line["count"], 42);
        assert_eq!(line["delta"], -3);
        assert_eq!(line["secure"], true);
        assert_eq!(line["ratio"], 0.5);
        assert_eq!(line["nan"], "NaN");
        assert_eq!(line["addr"], "[2001:db8::1]:4000");
        assert_eq!(line["long"], long.as_str());
        assert_eq!(line["quoted"], "a\"b\\c\u{1}");
        assert_eq!(line["target"], module_path!());
    }

    #[test]
    fn numbers_are_their_decimal_digits() {
        for value in [0, 7, 10, 99, 1_000_001, u64::MAX] {
            assert_eq!(Decimal::of(value).as_str(), value.to_string());
        }
    }

    fn timestamp(seconds: u64, micros: u32) -> String {
        let mut out = String::new();
        let at = UNIX_EPOCH + Duration::new(seconds, micros * 1000);
        write_timestamp(&mut out, at).unwrap();
        out
    }

    #[test]
    fn timestamps_are_rfc3339_utc_to_the_microsecond() {
        assert_eq!(timestamp(0, 0), "1970-01-01T00:00:00.000000Z");
        // A leap day, the end of a leap year, and a time of day with every field.
        assert_eq!(timestamp(951_782_400, 7), "2000-02-29T00:00:00.000007Z");
        assert_eq!(
            timestamp(1_735_689_599, 999_999),
            "2024-12-31T23:59:59.999999Z"
        );
        assert_eq!(
            timestamp(1_796_494_428, 468_514),
            "2026-12-05T18:13:48.468514Z"
        );
        // The cached second is replaced when the second changes, either way.
        assert_eq!(timestamp(1_796_494_429, 0), "2026-12-05T18:13:49.000000Z");
        assert_eq!(timestamp(1_796_494_428, 1), "2026-12-05T18:13:48.000001Z");
    }

    #[test]
    fn every_day_of_four_centuries_matches_a_day_by_day_count() {
        let (mut year, mut month, mut day) = (1970, 1, 1);
        for days in 0..146_097 {
            assert_eq!(civil_from_days(days), (year, month, day), "day {days}");
            let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
            let length = match month {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            day += 1;
            if day > length {
                (day, month) = (1, month + 1);
                if month > 12 {
                    (month, year) = (1, year + 1);
                }
            }
        }
    }
}
