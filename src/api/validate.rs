//! Checks shared by the endpoints' inputs, per the tables of challenge.md
//! and compat.md: members of JSON bodies (product ids, UUID keys, customer
//! ids, quantities), ids in paths and query strings. Values in, typed values
//! or a 422 message out. Which members a body has, and in which order they
//! are judged, is the endpoint's own (e.g. `orders/place.rs`).

use crate::api::Refusal;
use crate::config::{CUSTOMER_ID_CHARS_MAX, QUANTITY_MAX, QUANTITY_MIN};
use crate::const_text::Part;
use crate::json::{JsonStr, Value};

/// `8-4-4-4-12` hex digits.
const UUID_TEXT_LEN: usize = 36;
const UUID_HYPHEN_OFFSETS: [usize; 4] = [8, 13, 18, 23];
const UUID_VERSION_4: u8 = 4;
/// RFC 4122 variant: the top two bits of byte 8 are `10`.
const UUID_VARIANT_RFC4122: u8 = 0b10;
const QUERY_PRODUCT_ID: &[u8] = b"product_id";

pub(crate) const MSG_PRODUCT_REQUIRED: &str = "product_id is required";
pub(crate) const MSG_PRODUCT_TYPE: &str = "product_id must be an integer";
pub(crate) const MSG_PRODUCT_DUPLICATE: &str = "duplicate field: product_id";
pub(crate) const MSG_PRODUCT_QUERY_DUPLICATE: &str = "duplicate query parameter: product_id";
pub(crate) const MSG_KEY_REQUIRED: &str = "idempotency_key is required";
pub(crate) const MSG_KEY_FORMAT: &str = "idempotency_key must be a UUID v4 string";
pub(crate) const MSG_KEY_DUPLICATE: &str = "duplicate field: idempotency_key";
pub(crate) const MSG_CUSTOMER_REQUIRED: &str = "customer_id is required";
pub(crate) const MSG_CUSTOMER_FORMAT: &str = crate::const_text!(
    Part::Str("customer_id must be a string of 1 to "),
    Part::Int(CUSTOMER_ID_CHARS_MAX as i64),
    Part::Str(" characters"),
);
pub(crate) const MSG_CUSTOMER_NUL: &str = "customer_id must not contain NUL characters";
pub(crate) const MSG_CUSTOMER_DUPLICATE: &str = "duplicate field: customer_id";
pub(crate) const MSG_CUSTOMER_QUERY_DUPLICATE: &str = "duplicate query parameter: customer_id";
pub(crate) const MSG_CUSTOMER_QUERY_ESCAPE: &str =
    "customer_id has a malformed percent-escape (%XX, two hex digits)";
pub(crate) const MSG_QUANTITY_REQUIRED: &str = "quantity is required";
pub(crate) const MSG_QUANTITY_RANGE: &str = crate::const_text!(
    Part::Str("quantity must be an integer from "),
    Part::Int(QUANTITY_MIN),
    Part::Str(" to "),
    Part::Int(QUANTITY_MAX),
);
pub(crate) const MSG_QUANTITY_DUPLICATE: &str = "duplicate field: quantity";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductRef {
    Id(i32),
    /// A valid integer that no product can have (not in `1..=i32::MAX`): the
    /// answer is 404 without a database trip.
    Unknown,
}

/// A validation failure: 422 with `{"error": message}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid(pub &'static str);

impl Invalid {
    pub fn refusal(self) -> Refusal {
        crate::api::refuse(422, self.0)
    }
}

/// A member the validator looks for: its last value, and whether it repeated.
#[derive(Default)]
pub(crate) struct Member<'i> {
    value: Option<Value<'i>>,
    repeated: bool,
}

impl<'i> Member<'i> {
    pub(crate) fn record(&mut self, value: Value<'i>) {
        self.repeated |= self.value.is_some();
        self.value = Some(value);
    }

    /// Whether the body has this member at all.
    pub(crate) fn is_present(&self) -> bool {
        self.value.is_some()
    }

    /// A member that may be absent (`None`); repeated, it is refused.
    pub(crate) fn optional(&self, duplicate: &'static str) -> Result<Option<Value<'i>>, Invalid> {
        match self.value {
            _ if self.repeated => Err(Invalid(duplicate)),
            value => Ok(value),
        }
    }

    /// A repeated member is refused: which of the values would count is
    /// exactly the kind of ambiguity two parsers disagree on.
    pub(crate) fn get(
        &self,
        missing: &'static str,
        duplicate: &'static str,
    ) -> Result<Value<'i>, Invalid> {
        match self.value {
            _ if self.repeated => Err(Invalid(duplicate)),
            Some(value) => Ok(value),
            None => Err(Invalid(missing)),
        }
    }
}

pub(crate) fn product_ref(value: Value<'_>) -> Result<ProductRef, Invalid> {
    match value {
        Value::Int(n) => Ok(product_ref_from_i64(n)),
        Value::IntOutOfRange { .. } => Ok(ProductRef::Unknown),
        _ => Err(Invalid(MSG_PRODUCT_TYPE)),
    }
}

fn product_ref_from_i64(n: i64) -> ProductRef {
    match i32::try_from(n) {
        Ok(id) if id > 0 => ProductRef::Id(id),
        _ => ProductRef::Unknown,
    }
}

pub(crate) fn uuid_v4_value(value: Value<'_>) -> Result<[u8; 16], Invalid> {
    let Value::Str(text) = value else {
        return Err(Invalid(MSG_KEY_FORMAT));
    };
    ascii_from_json::<UUID_TEXT_LEN, _>(text, parse_uuid_v4).ok_or(Invalid(MSG_KEY_FORMAT))
}

/// A UUID of any version (an id the database made), or `message`.
pub(crate) fn uuid_value(value: Value<'_>, message: &'static str) -> Result<[u8; 16], Invalid> {
    let Value::Str(text) = value else {
        return Err(Invalid(message));
    };
    ascii_from_json::<UUID_TEXT_LEN, _>(text, parse_uuid).ok_or(Invalid(message))
}

/// An RFC 3339 time (see [`parse_rfc3339`]), or `None`.
pub(crate) fn time_text(text: JsonStr<'_>) -> Option<i64> {
    ascii_from_json::<RFC3339_TEXT_BYTES_MAX, _>(text, parse_rfc3339)
}

/// The longest RFC 3339 time worth decoding (nanoseconds and an offset
/// fit in 35 bytes).
const RFC3339_TEXT_BYTES_MAX: usize = 64;

/// An ASCII value (a UUID, a time) may arrive with escapes (`\u0035...`);
/// it is judged decoded, via a stack buffer of at most `N` bytes.
fn ascii_from_json<const N: usize, T>(
    text: JsonStr<'_>,
    parse: impl Fn(&[u8]) -> Option<T>,
) -> Option<T> {
    if let Some(plain) = text.as_unescaped() {
        return parse(plain.as_bytes());
    }
    let mut decoded = [0u8; N];
    let mut len = 0;
    for c in text.chars() {
        if !c.is_ascii() || len == N {
            return None;
        }
        decoded[len] = c as u8;
        len += 1;
    }
    parse(&decoded[..len])
}

pub(crate) fn customer_id_value(value: Value<'_>) -> Result<JsonStr<'_>, Invalid> {
    let Value::Str(text) = value else {
        return Err(Invalid(MSG_CUSTOMER_FORMAT));
    };
    let mut chars = 0;
    for c in text.chars() {
        // NUL would be refused by Postgres text columns; say so up front.
        if c == '\0' {
            return Err(Invalid(MSG_CUSTOMER_NUL));
        }
        chars += 1;
    }
    if !(1..=CUSTOMER_ID_CHARS_MAX).contains(&chars) {
        return Err(Invalid(MSG_CUSTOMER_FORMAT));
    }
    Ok(text)
}

pub(crate) fn quantity_value(value: Value<'_>) -> Result<i32, Invalid> {
    match value {
        Value::Int(n) if (QUANTITY_MIN..=QUANTITY_MAX).contains(&n) => {
            i32::try_from(n).map_err(|_| Invalid(MSG_QUANTITY_RANGE))
        }
        _ => Err(Invalid(MSG_QUANTITY_RANGE)),
    }
}

/// A canonical hyphenated UUID (`8-4-4-4-12` hex, either case, any version),
/// as order ids appear in paths. Braces, URNs and the unhyphenated form are
/// refused so one id has one spelling (up to case).
pub fn parse_uuid(text: &[u8]) -> Option<[u8; 16]> {
    if text.len() != UUID_TEXT_LEN {
        return None;
    }
    let mut id = [0u8; 16];
    let mut nibble = 0;
    for (offset, &b) in text.iter().enumerate() {
        if UUID_HYPHEN_OFFSETS.contains(&offset) {
            if b != b'-' {
                return None;
            }
            continue;
        }
        let value = hex_value(b)?;
        let shift = if nibble % 2 == 0 { 4 } else { 0 };
        id[nibble / 2] |= value << shift;
        nibble += 1;
    }
    Some(id)
}

/// [`parse_uuid`] plus version 4 and the RFC 4122 variant, as the spec
/// requires of idempotency keys.
pub fn parse_uuid_v4(text: &[u8]) -> Option<[u8; 16]> {
    let id = parse_uuid(text)?;
    let is_v4 = id[6] >> 4 == UUID_VERSION_4 && id[8] >> 6 == UUID_VARIANT_RFC4122;
    is_v4.then_some(id)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `product_id` from a query string (the part after `?`), e.g.
/// `product_id=4&x=1`. The value must be an integer as JSON writes one
/// (see [`decimal_product_ref`]); anything else, percent-escapes included,
/// is refused rather than decoded.
pub fn parse_product_id_query(query: &[u8]) -> Result<ProductRef, Invalid> {
    let mut found = None;
    for pair in query.split(|&b| b == b'&') {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        if name == QUERY_PRODUCT_ID {
            if found.is_some() {
                return Err(Invalid(MSG_PRODUCT_QUERY_DUPLICATE));
            }
            found = Some(value);
        }
    }
    let value = found.ok_or(Invalid(MSG_PRODUCT_REQUIRED))?;
    decimal_product_ref(value).ok_or(Invalid(MSG_PRODUCT_TYPE))
}

/// The `name=value` pairs of a query string (the part after `?`), raw: no
/// percent-decoding (an endpoint decodes the values it takes as text).
pub fn query_params(query: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    query
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &pair[pair.len()..]),
        })
}

/// A customer id from a query string: percent-decoded (RFC 3986: `+` is a
/// plus sign, not a space), UTF-8, then judged as the order body judges it.
pub fn customer_id_query_value<'s>(
    value: &[u8],
    scratch: &'s mut String,
) -> Result<&'s str, Invalid> {
    let mut bytes = [0u8; crate::config::CUSTOMER_ID_BYTES_MAX];
    let mut len = 0;
    let mut at = 0;
    while at < value.len() {
        let byte = match value[at] {
            b'%' => {
                let high = value.get(at + 1).copied().and_then(hex_value);
                let low = value.get(at + 2).copied().and_then(hex_value);
                let (Some(high), Some(low)) = (high, low) else {
                    return Err(Invalid(MSG_CUSTOMER_QUERY_ESCAPE));
                };
                at += 3;
                high << 4 | low
            }
            byte => {
                at += 1;
                byte
            }
        };
        if len == bytes.len() {
            return Err(Invalid(MSG_CUSTOMER_FORMAT));
        }
        bytes[len] = byte;
        len += 1;
    }
    let text = std::str::from_utf8(&bytes[..len]).map_err(|_| Invalid(MSG_CUSTOMER_FORMAT))?;
    if text.contains('\0') {
        return Err(Invalid(MSG_CUSTOMER_NUL));
    }
    if !(1..=CUSTOMER_ID_CHARS_MAX).contains(&text.chars().count()) {
        return Err(Invalid(MSG_CUSTOMER_FORMAT));
    }
    scratch.clear();
    scratch.push_str(text);
    Ok(scratch)
}

/// An integer written the way JSON writes one, `-?(0|[1-9][0-9]*)`, as a
/// product reference; `None` for anything else. Paths and queries follow
/// the same rule as bodies, so `/products/01` is no more product 1 than
/// `"product_id": 01` is.
pub fn decimal_product_ref(text: &[u8]) -> Option<ProductRef> {
    // Beyond i64 it saturates, and is beyond every product id all the same.
    json_integer(text).map(product_ref_from_i64)
}

/// An integer written the way JSON writes one, `-?(0|[1-9][0-9]*)`, as an
/// i64, saturating at its bounds; `None` for anything else (a sign `+`,
/// leading zeros, spaces, percent-escapes, a fraction).
pub fn json_integer(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let well_formed = !digits.is_empty()
        && digits.iter().all(u8::is_ascii_digit)
        && (digits.len() == 1 || digits[0] != b'0');
    if !well_formed {
        return None;
    }
    let magnitude = digits.iter().fold(0i64, |n, &d| {
        n.saturating_mul(10).saturating_add(i64::from(d - b'0'))
    });
    Some(if negative { -magnitude } else { magnitude })
}

/// An RFC 3339 time with an offset (`2026-12-01T10:00:00Z`,
/// `2026-12-01T11:30:00.250+01:30`), as microseconds since
/// 2000-01-01T00:00:00Z (Postgres' binary `timestamptz`), kept to the
/// millisecond: finer digits are dropped, so a time reads back as it is
/// kept. `T`/`Z` may be lower case (RFC 3339 §5.6); no other spelling is
/// taken, and Postgres' own words (`now`, `infinity`, `epoch`) are not times.
pub fn parse_rfc3339(text: &[u8]) -> Option<i64> {
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0i64, |n, &d| n * 10 + i64::from(d - b'0')))
    };
    let separator = |at: usize, allowed: &[u8]| text.get(at).is_some_and(|b| allowed.contains(b));
    let separators = [(4, b"-"), (7, b"-"), (13, b":"), (16, b":")];
    if !(separators.iter().all(|&(at, byte)| separator(at, byte)) && separator(10, b"Tt")) {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => return None,
    };
    if !(1..=month_days).contains(&day) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut at = 19;
    let mut millis = 0;
    if text.get(at) == Some(&b'.') {
        let fraction_len = text[at + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if !(1..=9).contains(&fraction_len) {
            return None;
        }
        let fraction = &text[at + 1..at + 1 + fraction_len];
        millis = fraction
            .iter()
            .chain(b"000")
            .take(3)
            .fold(0, |n, &d| n * 10 + i64::from(d - b'0'));
        at += 1 + fraction_len;
    }
    let offset_seconds = match text.get(at..)? {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (hours, minutes) = (digits(at + 1..at + 3)?, digits(at + 4..at + 6)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 3600 + minutes * 60;
            if *sign == b'-' {
                -offset
            } else {
                offset
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    Some(seconds * 1_000_000 + millis * 1000 - crate::api::render::POSTGRES_EPOCH_UNIX_MICROS)
}

/// (year, month, day) to days since 1970-01-01, proleptic Gregorian (Howard
/// Hinnant's `days_from_civil`, the inverse of `render::civil_from_days`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let shifted_month = (month + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::render::write_uuid;

    const KEY: &str = "550e8400-e29b-41d4-a716-446655440000";
    const KEY_BYTES: [u8; 16] = [
        0x55, 0x0e, 0x84, 0x00, 0xe2, 0x9b, 0x41, 0xd4, 0xa7, 0x16, 0x44, 0x66, 0x55, 0x44, 0x00,
        0x00,
    ];

    #[test]
    fn uuids() {
        /// Text, its parse as any UUID, and whether it is a v4 UUID.
        type Row = (&'static [u8], Option<[u8; 16]>, bool);
        let table: &[Row] = &[
            (KEY.as_bytes(), Some(KEY_BYTES), true),
            (
                b"550E8400-E29B-41D4-A716-446655440000",
                Some(KEY_BYTES),
                true,
            ),
            (
                b"550e8400-E29B-41d4-A716-446655440000",
                Some(KEY_BYTES),
                true,
            ),
            (
                b"00000000-0000-4000-8000-000000000000",
                Some([0, 0, 0, 0, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0, 0, 0, 0]),
                true,
            ),
            (
                b"ffffffff-ffff-4fff-bfff-ffffffffffff",
                Some([
                    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x4f, 0xff, 0xbf, 0xff, 0xff, 0xff, 0xff,
                    0xff, 0xff, 0xff,
                ]),
                true,
            ),
            (
                b"c232ab00-9414-11ec-b3c8-9e6bdeced846",
                Some([
                    0xc2, 0x32, 0xab, 0x00, 0x94, 0x14, 0x11, 0xec, 0xb3, 0xc8, 0x9e, 0x6b, 0xde,
                    0xce, 0xd8, 0x46,
                ]),
                false,
            ), // v1
            (
                b"550e8400-e29b-41d4-7716-446655440000",
                Some([
                    0x55, 0x0e, 0x84, 0x00, 0xe2, 0x9b, 0x41, 0xd4, 0x77, 0x16, 0x44, 0x66, 0x55,
                    0x44, 0x00, 0x00,
                ]),
                false,
            ), // NCS variant
            (
                b"00000000-0000-0000-0000-000000000000",
                Some([0; 16]),
                false,
            ),
            (b"550e8400e29b41d4a716446655440000", None, false),
            (b"{550e8400-e29b-41d4-a716-446655440000}", None, false),
            (b"550e8400-e29b-41d4-a716-44665544000", None, false),
            (b"550e8400-e29b-41d4-a716-4466554400000", None, false),
            (b"550e8400-e29b-41d4-a716-44665544000g", None, false),
            (b"550e8400+e29b-41d4-a716-446655440000", None, false),
            (b"550e840-0e29b-41d4-a716-446655440000", None, false),
            (b"urn:uuid:550e8400-e29b-41d4-a716-44", None, false),
            (b"not-a-valid-uuid", None, false),
            (b"", None, false),
        ];
        for &(text, parsed, is_v4) in table {
            let label = String::from_utf8_lossy(text);
            assert_eq!(parse_uuid(text), parsed, "{label}");
            assert_eq!(parse_uuid_v4(text), parsed.filter(|_| is_v4), "{label}");
            if let Some(id) = parsed {
                let mut out = b"x".to_vec();
                write_uuid(&mut out, &id);
                assert_eq!(out[1..], text.to_ascii_lowercase(), "{label}");
            }
        }
    }

    #[test]
    fn product_id_queries() {
        let table: &[(&[u8], Result<ProductRef, &str>)] = &[
            (b"product_id=4", Ok(ProductRef::Id(4))),
            (b"product_id=4&x=1", Ok(ProductRef::Id(4))),
            (b"x=1&product_id=5", Ok(ProductRef::Id(5))),
            (b"x&product_id=5&", Ok(ProductRef::Id(5))),
            (b"product_id=2147483647", Ok(ProductRef::Id(i32::MAX))),
            (b"product_id=2147483648", Ok(ProductRef::Unknown)),
            (
                b"product_id=99999999999999999999999999",
                Ok(ProductRef::Unknown),
            ),
            (
                b"product_id=-99999999999999999999999999",
                Ok(ProductRef::Unknown),
            ),
            (b"product_id=0", Ok(ProductRef::Unknown)),
            (b"product_id=-0", Ok(ProductRef::Unknown)),
            (b"product_id=01", Err(MSG_PRODUCT_TYPE)),
            (b"product_id=007", Err(MSG_PRODUCT_TYPE)),
            (b"product_id=-01", Err(MSG_PRODUCT_TYPE)),
            (b"product_id=00", Err(MSG_PRODUCT_TYPE)),
            (b"product_id=-3", Ok(ProductRef::Unknown)),
            (b"", Err(MSG_PRODUCT_REQUIRED)),
            (b"x=1", Err(MSG_PRODUCT_REQUIRED)),
            (b"product_ids=1", Err(MSG_PRODUCT_REQUIRED)),
            (b"Product_id=1", Err(MSG_PRODUCT_REQUIRED)),
            (b"product%5Fid=1", Err(MSG_PRODUCT_REQUIRED)),
            (b"product_id", Err(MSG_PRODUCT_TYPE)),
            (b"product_id=", Err(MSG_PRODUCT_TYPE)),
            (b"product_id=4.0", Err(MSG_PRODUCT_TYPE)),
            (b"product_id=abc", Err(MSG_PRODUCT_TYPE)),
            (b"product_id=+4", Err(MSG_PRODUCT_TYPE)),
            (b"product_id=-", Err(MSG_PRODUCT_TYPE)),
            (b"product_id=%34", Err(MSG_PRODUCT_TYPE)),
            (b"product_id=4 ", Err(MSG_PRODUCT_TYPE)),
            (b"product_id=4=4", Err(MSG_PRODUCT_TYPE)),
            (b"product_id=1e2", Err(MSG_PRODUCT_TYPE)),
            (
                b"product_id=1&product_id=1",
                Err(MSG_PRODUCT_QUERY_DUPLICATE),
            ),
        ];
        for (query, expected) in table {
            let got = parse_product_id_query(query).map_err(|Invalid(message)| message);
            assert_eq!(&got, expected, "{}", String::from_utf8_lossy(query));
        }
    }

    #[test]
    fn mutated_inputs_never_panic() {
        crate::test_support::for_each_damaged_order_body(|input| {
            let _ = parse_product_id_query(input);
            let _ = parse_uuid(input);
            let _ = decimal_product_ref(input);
        });
    }

    fn rfc3339_text(text: &str) -> Option<String> {
        parse_rfc3339(text.as_bytes()).map(|micros| {
            let mut out = Vec::new();
            crate::api::render::write_timestamp(&mut out, micros);
            String::from_utf8(out).unwrap()
        })
    }

    #[test]
    fn rfc3339_times_read_back_as_written() {
        let table = [
            ("2026-12-01T10:00:00Z", "2026-12-01T10:00:00.000Z"),
            ("2026-12-01t10:00:00z", "2026-12-01T10:00:00.000Z"),
            ("2026-12-01T10:00:00.1Z", "2026-12-01T10:00:00.100Z"),
            ("2026-12-01T10:00:00.123456789Z", "2026-12-01T10:00:00.123Z"),
            ("2026-12-01T11:30:00.250+01:30", "2026-12-01T10:00:00.250Z"),
            ("2026-12-01T00:00:00-02:00", "2026-12-01T02:00:00.000Z"),
            ("2024-02-29T23:59:59Z", "2024-02-29T23:59:59.000Z"),
            ("2000-01-01T00:00:00Z", "2000-01-01T00:00:00.000Z"),
            ("1999-12-31T23:59:59.999Z", "1999-12-31T23:59:59.999Z"),
            ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000Z"),
            ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59.000Z"),
        ];
        for (input, expected) in table {
            assert_eq!(rfc3339_text(input).as_deref(), Some(expected), "{input}");
        }
    }

    #[test]
    fn not_rfc3339_times_are_refused() {
        for input in [
            "",
            "now",
            "infinity",
            "epoch",
            "2026-12-01",
            "2026-12-01T10:00:00",
            "2026-12-01 10:00:00Z",
            "2026-12-01T10:00Z",
            "2026-13-01T10:00:00Z",
            "2026-00-01T10:00:00Z",
            "2025-02-29T10:00:00Z",
            "2026-04-31T10:00:00Z",
            "2026-12-01T24:00:00Z",
            "2026-12-01T10:60:00Z",
            "2026-12-01T10:00:60Z",
            "2026-12-01T10:00:00.Z",
            "2026-12-01T10:00:00.1234567890Z",
            "2026-12-01T10:00:00+0100",
            "2026-12-01T10:00:00+24:00",
            "2026-12-01T10:00:00+01:60",
            "2026-12-01T10:00:00ZZ",
            "+2026-12-01T10:00:00Z",
            "2026-1a-01T10:00:00Z",
            "２026-12-01T10:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(input.as_bytes()), None, "{input:?}");
        }
    }

    #[test]
    fn days_from_civil_inverts_civil_from_days() {
        for days in (-800_000..800_000).step_by(37) {
            let (y, m, d) = crate::api::render::civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn customer_ids_in_queries_are_percent_decoded() {
        let mut scratch = String::new();
        let mut decode = |value: &str| {
            customer_id_query_value(value.as_bytes(), &mut scratch)
                .map(str::to_string)
                .map_err(|Invalid(message)| message)
        };
        assert_eq!(decode("alice"), Ok("alice".to_string()));
        assert_eq!(decode("a%20b+c"), Ok("a b+c".to_string()));
        assert_eq!(decode("%C3%A9%c3%a9"), Ok("éé".to_string()));
        assert_eq!(decode(&"c".repeat(50)), Ok("c".repeat(50)));
        assert_eq!(decode(&"%C3%A9".repeat(50)), Ok("é".repeat(50)));
        assert_eq!(decode(&"c".repeat(51)), Err(MSG_CUSTOMER_FORMAT));
        assert_eq!(decode(&"%F0%9F%98%80".repeat(51)), Err(MSG_CUSTOMER_FORMAT));
        assert_eq!(decode(""), Err(MSG_CUSTOMER_FORMAT));
        assert_eq!(decode("%"), Err(MSG_CUSTOMER_QUERY_ESCAPE));
        assert_eq!(decode("%4"), Err(MSG_CUSTOMER_QUERY_ESCAPE));
        assert_eq!(decode("%zz"), Err(MSG_CUSTOMER_QUERY_ESCAPE));
        assert_eq!(decode("%FF"), Err(MSG_CUSTOMER_FORMAT));
        assert_eq!(decode("a%00b"), Err(MSG_CUSTOMER_NUL));
    }
}
