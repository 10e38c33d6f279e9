//! `Date`: an instant in UTC with millisecond precision, and its text forms.
//!
//! Stored as milliseconds since the Unix epoch (negative before 1970). Printed as RFC 3339 with
//! milliseconds (`2024-05-01T10:20:30.123Z`) or in PocketBase's form (`2024-05-01
//! 10:20:30.123Z`); parsed from either, with or without fractional seconds, with `Z` or a
//! `±hh:mm` offset, or from a bare date (`2024-05-01`, midnight UTC).
//!
//! Thread safety: a plain `Copy` value.
//!
//! Invariant: every `Date` lies in years 0000 to 9999, so its text form always has four year
//! digits and parses back to the same value.

use std::fmt;

/// Milliseconds of 0000-01-01T00:00:00Z since the epoch (the earliest `Date`).
pub const DATE_MS_MIN: i64 = -62_167_219_200_000;
/// Milliseconds of 9999-12-31T23:59:59.999Z since the epoch (the latest `Date`).
pub const DATE_MS_MAX: i64 = 253_402_300_799_999;

const MS_PER_DAY: i64 = 86_400_000;

/// An instant in UTC, in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(i64);

impl Date {
    /// The date `ms` milliseconds after the epoch; `None` outside years 0000 to 9999.
    pub fn from_unix_ms(ms: i64) -> Option<Date> {
        (DATE_MS_MIN..=DATE_MS_MAX).contains(&ms).then_some(Date(ms))
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_ms(self) -> i64 {
        self.0
    }

    /// The current time (the system clock, clamped into the supported years).
    pub fn now() -> Date {
        let ms = match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(since) => i64::try_from(since.as_millis()).unwrap_or(DATE_MS_MAX),
            Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(-DATE_MS_MIN),
        };
        Date(ms.clamp(DATE_MS_MIN, DATE_MS_MAX))
    }

    /// Parses RFC 3339 (`T` or a space between date and time), or a bare `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Option<Date> {
        let bytes = text.as_bytes();
        let number = |range: std::ops::Range<usize>| -> Option<i64> {
            let digits = bytes.get(range)?;
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            Some(digits.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
        };
        if bytes.len() < 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return None;
        }
        let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return None;
        }
        let mut ms = days_from_civil(year, month, day) * MS_PER_DAY;
        if bytes.len() == 10 {
            return Date::from_unix_ms(ms);
        }
        if !matches!(bytes[10], b'T' | b't' | b' ') || bytes.len() < 19 {
            return None;
        }
        if bytes[13] != b':' || bytes[16] != b':' {
            return None;
        }
        let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        ms += ((hour * 60 + minute) * 60 + second) * 1000;
        let mut at = 19;
        if bytes.get(at) == Some(&b'.') {
            let start = at + 1;
            let mut end = start;
            while bytes.get(end).is_some_and(u8::is_ascii_digit) {
                end += 1;
            }
            if end == start || end - start > 9 {
                return None;
            }
            // Milliseconds: the first three digits, zero-padded; finer digits are dropped.
            let mut fraction = 0i64;
            for index in 0..3 {
                let digit = if start + index < end { bytes[start + index] - b'0' } else { 0 };
                fraction = fraction * 10 + i64::from(digit);
            }
            ms += fraction;
            at = end;
        }
        match bytes.get(at) {
            Some(b'Z' | b'z') if at + 1 == bytes.len() => {}
            Some(&sign @ (b'+' | b'-')) if at + 6 == bytes.len() && bytes[at + 3] == b':' => {
                let (hours, minutes) = (number(at + 1..at + 3)?, number(at + 4..at + 6)?);
                if hours > 23 || minutes > 59 {
                    return None;
                }
                let offset = (hours * 60 + minutes) * 60_000;
                ms += if sign == b'+' { -offset } else { offset };
            }
            None if at == bytes.len() => {} // no zone: UTC
            _ => return None,
        }
        Date::from_unix_ms(ms)
    }

    /// The date as RFC 3339 with milliseconds: `2024-05-01T10:20:30.123Z`.
    pub fn to_rfc3339(self) -> String {
        self.format(b'T')
    }

    /// The date in PocketBase's form: `2024-05-01 10:20:30.123Z`.
    pub fn to_pocketbase(self) -> String {
        self.format(b' ')
    }

    /// `YYYY-MM-DD<separator>hh:mm:ss.mmmZ`, written digit by digit (record JSON renders two
    /// dates per record): every date has a four-digit year (`DATE_MS_MIN..=DATE_MS_MAX`).
    fn format(self, separator: u8) -> String {
        let days = self.0.div_euclid(MS_PER_DAY);
        let in_day = self.0.rem_euclid(MS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        let (second_total, ms) = (in_day / 1000, in_day % 1000);
        let (hour, minute, second) =
            (second_total / 3600, second_total / 60 % 60, second_total % 60);
        let mut text = *b"0000-00-00 00:00:00.000Z";
        let mut put = |at: usize, digits: usize, mut number: i64| {
            for slot in text[at..at + digits].iter_mut().rev() {
                *slot = b'0' + (number % 10) as u8;
                number /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, month);
        put(8, 2, day);
        put(11, 2, hour);
        put(14, 2, minute);
        put(17, 2, second);
        put(20, 3, ms);
        text[10] = separator;
        String::from_utf8_lossy(&text).into_owned()
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the well-known era-based method).
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of `days_from_civil`.
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates_format_and_parse_both_ways() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (1_714_558_830_123, "2024-05-01T10:20:30.123Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (DATE_MS_MIN, "0000-01-01T00:00:00.000Z"),
            (DATE_MS_MAX, "9999-12-31T23:59:59.999Z"),
        ];
        for (ms, text) in cases {
            let date = Date::from_unix_ms(ms).unwrap();
            assert_eq!(date.to_rfc3339(), text);
            assert_eq!(Date::parse(text), Some(date), "{text}");
            assert_eq!(Date::parse(&date.to_pocketbase()), Some(date));
        }
        assert_eq!(Date::from_unix_ms(DATE_MS_MAX + 1), None);
        assert_eq!(Date::from_unix_ms(DATE_MS_MIN - 1), None);
    }

    #[test]
    fn formatting_matches_the_reference_formatter_across_the_whole_range() {
        let reference = |date: Date, separator: char| {
            let days = date.0.div_euclid(MS_PER_DAY);
            let in_day = date.0.rem_euclid(MS_PER_DAY);
            let (year, month, day) = civil_from_days(days);
            let (s, ms) = (in_day / 1000, in_day % 1000);
            format!(
                "{year:04}-{month:02}-{day:02}{separator}{:02}:{:02}:{:02}.{ms:03}Z",
                s / 3600,
                s / 60 % 60,
                s % 60
            )
        };
        let step = (DATE_MS_MAX - DATE_MS_MIN) / 20_011;
        let samples = (0..=20_011).map(|i| DATE_MS_MIN + i * step).chain([DATE_MS_MAX, 0, -1]);
        for ms in samples {
            let date = Date::from_unix_ms(ms).unwrap();
            assert_eq!(date.to_pocketbase(), reference(date, ' '), "{ms}");
            assert_eq!(date.to_rfc3339(), reference(date, 'T'), "{ms}");
        }
    }

    #[test]
    fn every_day_over_centuries_round_trips() {
        for days in (-800_000..800_000).step_by(997) {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, month, day), days);
            assert!((1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month));
        }
    }

    #[test]
    fn offsets_fractions_and_bare_dates_parse() {
        let base = Date::parse("2024-05-01T10:20:30Z").unwrap();
        assert_eq!(Date::parse("2024-05-01 12:20:30+02:00"), Some(base));
        assert_eq!(Date::parse("2024-05-01T05:20:30-05:00"), Some(base));
        assert_eq!(Date::parse("2024-05-01T10:20:30"), Some(base));
        assert_eq!(Date::parse("2024-05-01T10:20:30.5Z").unwrap().unix_ms(), base.unix_ms() + 500);
        assert_eq!(
            Date::parse("2024-05-01T10:20:30.123456789Z").unwrap().unix_ms(),
            base.unix_ms() + 123
        );
        assert_eq!(Date::parse("2024-05-01").unwrap().to_rfc3339(), "2024-05-01T00:00:00.000Z");
    }

    #[test]
    fn malformed_text_is_refused_without_panics() {
        for text in [
            "",
            "2024",
            "2024-13-01",
            "2024-02-30",
            "2023-02-29",
            "2024-05-01X10:20:30Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T10:60:00Z",
            "2024-05-01T10:20:30.Z",
            "2024-05-01T10:20:30+2:00",
            "2024-05-01T10:20:30Zjunk",
            "2024-05-01T10:20",
            "٢٠٢٤-05-01",
            "2024-05-01T10:20:30.1234567890Z",
            "+2024-05-01",
        ] {
            assert_eq!(Date::parse(text), None, "{text}");
        }
    }
}
