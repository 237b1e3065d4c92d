//! Wall-clock dates in the two forms the server writes: the IMF-fixdate of
//! the `Date` header (RFC 9110 §5.6.7) and the timestamp of the Combined
//! Log Format.
//!
//! Formatting a date for every response would cost more than the rest of
//! a small response; the `Date` value is cached per thread and rebuilt
//! once a second.

use std::cell::RefCell;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The `Date` field of the current second (`Date: ` + 29 bytes + CRLF),
/// and the monotonic instants between which it holds.
struct Cached {
    from: Instant,
    until: Instant,
    field: [u8; FIELD_LEN],
}

/// `Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n`: an HTTP date is always 29
/// bytes.
pub(crate) const FIELD_LEN: usize = "Date: \r\n".len() + 29;

thread_local! {
    static CACHE: RefCell<Option<Cached>> = const { RefCell::new(None) };
}

/// Appends the `Date` field for `now` (`Date: Sun, 06 Nov 1994 08:49:37
/// GMT\r\n`) from the value cached for the second: the wall clock is read
/// only when `now` leaves the second the cache was made in (or an instant
/// from another clock, a test's, falls outside it).
pub(crate) fn push_date_field(buf: &mut Vec<u8>, now: Instant) {
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        let fresh = c.as_ref().is_some_and(|c| c.from <= now && now < c.until);
        if !fresh {
            let wall = SystemTime::now();
            let since = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
            let left =
                Duration::from_secs(1) - Duration::from_nanos(u64::from(since.subsec_nanos()));
            let mut field = *b"Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n";
            let text = httpdate::fmt_http_date(wall);
            if text.len() == 29 {
                field[6..35].copy_from_slice(text.as_bytes());
            }
            *c = Some(Cached {
                from: now,
                until: now + left,
                field,
            });
        }
        if let Some(c) = c.as_ref() {
            buf.extend_from_slice(&c.field);
        }
    })
}

/// The current time as an HTTP date, cached for the second.
#[cfg(test)]
pub(crate) fn http_date_now() -> String {
    let mut buf = Vec::new();
    push_date_field(&mut buf, Instant::now());
    String::from_utf8(buf[6..35].to_vec()).expect("an HTTP date is ASCII")
}

/// Civil (year, month, day) of a count of days since 1970-01-01 in the
/// proleptic Gregorian calendar.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of each
    // 400-year era's years.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // 0..=365
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A Combined Log Format timestamp, `[10/Oct/2000:13:55:36 +0000]`, in
/// UTC.
pub(crate) fn clf_timestamp(t: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "[{:02}/{}/{}:{:02}:{:02}:{:02} +0000]",
        d,
        MONTHS[(m - 1) as usize],
        y,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn clf_known_instants() {
        let at = |s: u64| clf_timestamp(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "[01/Jan/1970:00:00:00 +0000]");
        assert_eq!(at(971_186_136), "[10/Oct/2000:13:55:36 +0000]");
        assert_eq!(at(951_782_400), "[29/Feb/2000:00:00:00 +0000]");
        assert_eq!(at(4_133_980_799), "[31/Dec/2100:23:59:59 +0000]");
    }

    #[test]
    fn clf_agrees_with_httpdate_every_day_for_decades() {
        for day in 0..(366 * 60) {
            let t = UNIX_EPOCH + Duration::from_secs(day * 86_400 + 45_296);
            let http = httpdate::fmt_http_date(t); // "Sun, 06 Nov 1994 12:34:56 GMT"
            let clf = clf_timestamp(t);
            let parts: Vec<&str> = http.split(' ').collect();
            let expect = format!(
                "[{}/{}/{}:{} +0000]",
                parts[1], parts[2], parts[3], parts[4]
            );
            assert_eq!(clf, expect);
        }
    }

    #[test]
    fn http_date_is_parseable() {
        let d = http_date_now();
        assert!(httpdate::parse_http_date(&d).is_ok(), "{d}");
        assert!(d.ends_with(" GMT"));
    }
}
