//! RFC 5322 dates (for Received headers and DSNs) without a calendar crate.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub fn unix_now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Formats seconds since the epoch as an RFC 5322 date in UTC, e.g.
/// `Mon, 23 Nov 2026 20:57:58 +0000`.
pub fn rfc5322(unix: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = unix / 86_400;
    let secs = unix % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{}, {day} {} {year} {:02}:{:02}:{:02} +0000",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// "2026-12-04" (UTC).
pub fn iso_day(unix: u64) -> String {
    let (year, month, day) = civil_from_days((unix / 86_400) as i64);
    format!("{year}-{month:02}-{day:02}")
}

/// "2026-12-04 11:58" (UTC).
pub fn iso_minute(unix: u64) -> String {
    let secs = unix % 86_400;
    format!("{} {:02}:{:02}", iso_day(unix), secs / 3600, (secs / 60) % 60)
}

/// Seconds since the epoch of "YYYY-MM-DD" at midnight UTC.
pub fn parse_iso_day(s: &str) -> Option<u64> {
    let mut parts = s.trim().splitn(3, '-');
    let (y, m, d): (i64, i64, i64) = (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?.parse().ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || y < 1970 {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    u64::try_from((era * 146_097 + doe - 719_468) * 86_400).ok()
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_known_dates() {
        assert_eq!(super::rfc5322(0), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(super::rfc5322(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(super::rfc5322(1_795_467_478), "Mon, 23 Nov 2026 20:57:58 +0000");
        assert_eq!(super::iso_minute(1_795_467_478), "2026-11-23 20:57");
    }

    #[test]
    fn days_parse_as_utc_midnight_and_back() {
        assert_eq!(super::parse_iso_day("1970-01-01"), Some(0));
        assert_eq!(super::parse_iso_day("2026-12-04"), Some(1_796_342_400));
        assert_eq!(super::iso_day(1_796_342_400 + 86_399), "2026-12-04");
        assert_eq!(super::parse_iso_day("2026-13-01"), None);
        assert_eq!(super::parse_iso_day("yesterday"), None);
    }
}
