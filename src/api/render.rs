//! JSON writers shared by the endpoints' answers: fields written straight
//! from the database's binary values into a reused buffer, UUIDs in their
//! canonical text form, timestamps as RFC 3339 UTC.

use crate::json::{write_i64, write_str};
use crate::pg::Timestamp;

/// The database answered with a shape the statements exclude (a NULL where
/// the schema has NOT NULL); the request gets a 503 and the log a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// `name` (the JSON text before the value, e.g. `,"price":`), then the value.
pub fn int(out: &mut Vec<u8>, name: &[u8], value: i32) {
    out.extend_from_slice(name);
    write_i64(out, i64::from(value));
}

pub fn text(out: &mut Vec<u8>, name: &[u8], value: &str) {
    out.extend_from_slice(name);
    write_str(out, value);
}

pub fn uuid(out: &mut Vec<u8>, name: &[u8], value: &[u8; 16]) {
    out.extend_from_slice(name);
    out.push(b'"');
    write_uuid(out, value);
    out.push(b'"');
}

/// A bound that may be absent: the time, or `null`.
pub fn optional_timestamp(out: &mut Vec<u8>, name: &[u8], value: Option<Timestamp>) {
    match value {
        Some(value) => timestamp(out, name, value),
        None => {
            out.extend_from_slice(name);
            out.extend_from_slice(b"null");
        }
    }
}

/// An integer that may be absent: the number, or `null`.
pub fn optional_int(out: &mut Vec<u8>, name: &[u8], value: Option<i32>) {
    match value {
        Some(value) => int(out, name, value),
        None => {
            out.extend_from_slice(name);
            out.extend_from_slice(b"null");
        }
    }
}

pub fn boolean(out: &mut Vec<u8>, name: &[u8], value: bool) {
    out.extend_from_slice(name);
    out.extend_from_slice(if value { b"true" } else { b"false" });
}

pub fn timestamp(out: &mut Vec<u8>, name: &[u8], value: Timestamp) {
    out.extend_from_slice(name);
    out.push(b'"');
    write_timestamp(out, value.0);
    out.push(b'"');
}

/// Byte indexes of the 16-byte id that a hyphen precedes in the text form.
const UUID_HYPHEN_BEFORE_BYTE: [usize; 4] = [4, 6, 8, 10];
const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

/// Appends `id` in lowercase hyphenated form (`8-4-4-4-12`).
pub fn write_uuid(out: &mut Vec<u8>, id: &[u8; 16]) {
    for (index, &byte) in id.iter().enumerate() {
        if UUID_HYPHEN_BEFORE_BYTE.contains(&index) {
            out.push(b'-');
        }
        out.push(HEX_LOWER[usize::from(byte >> 4)]);
        out.push(HEX_LOWER[usize::from(byte & 0xF)]);
    }
}

/// Microseconds between 1970-01-01 and Postgres' epoch, 2000-01-01.
pub(crate) const POSTGRES_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;

/// RFC 3339 UTC with milliseconds, e.g. `2025-01-15T10:30:00.123Z`, from a
/// binary `timestamptz` (microseconds since 2000-01-01T00:00:00Z).
pub fn write_timestamp(out: &mut Vec<u8>, micros_since_2000: i64) {
    let unix_micros = micros_since_2000.saturating_add(POSTGRES_EPOCH_UNIX_MICROS);
    let seconds = unix_micros.div_euclid(1_000_000);
    let millis = unix_micros.rem_euclid(1_000_000) / 1000;
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let second_of_day = seconds.rem_euclid(86_400);
    let fields = [
        (year, 4, b'-'),
        (month, 2, b'-'),
        (day, 2, b'T'),
        (second_of_day / 3600, 2, b':'),
        (second_of_day / 60 % 60, 2, b':'),
        (second_of_day % 60, 2, b'.'),
        (millis, 3, b'Z'),
    ];
    for (value, width, separator) in fields {
        write_padded(out, value, width);
        out.push(separator);
    }
}

fn write_padded(out: &mut Vec<u8>, value: i64, width: usize) {
    let mut digits = itoa::Buffer::new();
    let text = digits.format(value);
    out.extend(std::iter::repeat_n(b'0', width.saturating_sub(text.len())));
    out.extend_from_slice(text.as_bytes());
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timestamp_text(micros_since_2000: i64) -> String {
        let mut out = Vec::new();
        write_timestamp(&mut out, micros_since_2000);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn formats_timestamps_as_rfc3339_utc() {
        assert_eq!(timestamp_text(0), "2000-01-01T00:00:00.000Z");
        assert_eq!(timestamp_text(-1), "1999-12-31T23:59:59.999Z");
        // 2025-01-15T10:30:00.123456Z
        let micros = (1_736_937_000 * 1_000_000 + 123_456) - POSTGRES_EPOCH_UNIX_MICROS;
        assert_eq!(timestamp_text(micros), "2025-01-15T10:30:00.123Z");
        // Leap day and a year end.
        let leap = (1_709_208_000i64 * 1_000_000) - POSTGRES_EPOCH_UNIX_MICROS; // 2024-02-29T12:00:00Z
        assert_eq!(timestamp_text(leap), "2024-02-29T12:00:00.000Z");
        let new_year = (1_767_225_599i64 * 1_000_000) - POSTGRES_EPOCH_UNIX_MICROS;
        assert_eq!(timestamp_text(new_year), "2025-12-31T23:59:59.000Z");
    }

    #[test]
    fn civil_dates_match_a_day_by_day_walk() {
        let month_lengths = |y: i64| {
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            [
                31,
                if leap { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ]
        };
        let (mut y, mut m, mut d) = (1970, 1, 1);
        for days in 0..150_000 {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            d += 1;
            if d > month_lengths(y)[(m - 1) as usize] {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }
}
