//! The log line's timestamp, RFC 3339 in UTC with microseconds
//! (`2026-11-30T22:31:09.123456Z`, the shape `tracing-subscriber` writes).
//!
//! Why not `tracing-subscriber`'s `SystemTime`: it works out the calendar
//! date for every line, about a fifth of the decision line's cost. The date
//! and time of day change once a second, so each thread keeps the text of
//! its last second and only writes the microseconds anew.

use std::cell::Cell;
use std::fmt::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

/// `YYYY-MM-DDTHH:MM:SS`
const SECOND_LEN: usize = 19;

thread_local! {
    /// The last second this thread wrote, and its text.
    static LAST: Cell<(u64, [u8; SECOND_LEN])> = const { Cell::new((u64::MAX, [0; SECOND_LEN])) };
}

/// Writes the current time.
pub fn write_now(out: &mut impl Write) -> fmt::Result {
    // A clock before 1970 is written as 1970: a log line is no place to fail.
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let (last, mut text) = LAST.get();
    if last != secs {
        text = second(secs);
        LAST.set((secs, text));
    }
    // The text is ASCII digits and separators, written by `second`.
    out.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)?;
    write!(out, ".{:06}Z", since.subsec_micros())
}

/// The date and time of day of a Unix second, as text.
fn second(secs: u64) -> [u8; SECOND_LEN] {
    let (year, month, day) = civil(secs / 86_400);
    let of_day = secs % 86_400;
    let mut text = [0; SECOND_LEN];
    let mut cursor = std::io::Cursor::new(&mut text[..]);
    // 19 bytes exactly for years 0..=9999, which `civil` yields for every u64 day
    // count a clock can report before year 10,000.
    let _ = std::io::Write::write_fmt(
        &mut cursor,
        format_args!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            of_day / 3600,
            of_day % 3600 / 60,
            of_day % 60
        ),
    );
    text
}

/// Year, month and day of a count of days since 1970-01-01 in the proleptic
/// Gregorian calendar (the well-known era-based conversion: a 400-year era
/// repeats exactly, and counting years from March puts the leap day last).
fn civil(days: u64) -> (u64, u64, u64) {
    let days = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = days / 146_097;
    let of_era = days % 146_097;
    let year_of_era = (of_era - of_era / 1_460 + of_era / 36_524 - of_era / 146_096) / 365;
    let day_of_year = of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(secs: u64) -> String {
        String::from_utf8(second(secs).to_vec()).unwrap()
    }

    #[test]
    fn seconds_are_written_as_their_utc_date_and_time() {
        // Expected values from Python's datetime.
        assert_eq!(text(0), "1970-01-01T00:00:00");
        assert_eq!(text(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(text(951_868_799), "2000-02-29T23:59:59");
        assert_eq!(text(1_709_164_800), "2024-02-29T00:00:00");
        assert_eq!(text(1_796_086_923), "2026-12-01T01:02:03");
        assert_eq!(text(4_102_444_799), "2099-12-31T23:59:59");
    }

    #[test]
    fn now_has_the_shape_tracing_subscriber_writes() {
        use tracing_subscriber::fmt::{format::Writer, time::FormatTime};
        // The same second, once three tries do not all straddle one.
        let same = (0..3).any(|_| {
            let mut ours = String::new();
            write_now(&mut ours).unwrap();
            let mut theirs = String::new();
            tracing_subscriber::fmt::time::SystemTime
                .format_time(&mut Writer::new(&mut theirs))
                .unwrap();
            assert_eq!(ours.len(), theirs.len(), "{ours} / {theirs}");
            assert!(ours.ends_with('Z') && ours.as_bytes()[19] == b'.', "{ours}");
            ours[..19] == theirs[..19]
        });
        assert!(same);
    }
}
