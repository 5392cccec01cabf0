//! Request validation per the tables of challenge.md and compat.md: bodies,
//! path ids and query strings in, typed values or a 422 message out.
//!
//! Fields are judged in a fixed order (product_id, idempotency_key,
//! customer_id, quantity) after the whole body has been parsed, so a body with
//! several faults always gets the same message, and malformed JSON is
//! reported before any field. Nothing here allocates: JSON strings are
//! inspected in the request buffer, and only the customer id, which the order
//! needs later, is decoded into the caller's scratch.

use crate::config::{CUSTOMER_ID_CHARS_MAX, QUANTITY_MAX, QUANTITY_MIN};
use crate::const_text::Part;
use crate::json::{self, JsonStr, Value};

/// `8-4-4-4-12` hex digits.
const UUID_TEXT_LEN: usize = 36;
const UUID_HYPHEN_OFFSETS: [usize; 4] = [8, 13, 18, 23];
/// Byte indexes of the 16-byte id that a hyphen precedes in the text form.
const UUID_HYPHEN_BEFORE_BYTE: [usize; 4] = [4, 6, 8, 10];
const UUID_VERSION_4: u8 = 4;
/// RFC 4122 variant: the top two bits of byte 8 are `10`.
const UUID_VARIANT_RFC4122: u8 = 0b10;
const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";
const QUERY_PRODUCT_ID: &[u8] = b"product_id";

const MSG_PRODUCT_REQUIRED: &str = "product_id is required";
const MSG_PRODUCT_TYPE: &str = "product_id must be an integer";
const MSG_PRODUCT_DUPLICATE: &str = "duplicate field: product_id";
const MSG_PRODUCT_QUERY_DUPLICATE: &str = "duplicate query parameter: product_id";
const MSG_KEY_REQUIRED: &str = "idempotency_key is required";
const MSG_KEY_FORMAT: &str = "idempotency_key must be a UUID v4 string";
const MSG_KEY_DUPLICATE: &str = "duplicate field: idempotency_key";
const MSG_CUSTOMER_REQUIRED: &str = "customer_id is required";
const MSG_CUSTOMER_FORMAT: &str = crate::const_text!(
    Part::Str("customer_id must be a string of 1 to "),
    Part::Int(CUSTOMER_ID_CHARS_MAX as i64),
    Part::Str(" characters"),
);
const MSG_CUSTOMER_NUL: &str = "customer_id must not contain NUL characters";
const MSG_CUSTOMER_DUPLICATE: &str = "duplicate field: customer_id";
const MSG_QUANTITY_REQUIRED: &str = "quantity is required";
const MSG_QUANTITY_RANGE: &str = crate::const_text!(
    Part::Str("quantity must be an integer from "),
    Part::Int(QUANTITY_MIN),
    Part::Str(" to "),
    Part::Int(QUANTITY_MAX),
);
const MSG_QUANTITY_DUPLICATE: &str = "duplicate field: quantity";

/// A validated `POST /orders` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRequest<'s> {
    pub product_id: ProductRef,
    pub idempotency_key: [u8; 16],
    /// Decoded, borrowed from the scratch passed to [`order_request`].
    pub customer_id: &'s str,
    pub quantity: i32,
}

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

/// Validates an order body. `scratch` is reused across requests and receives
/// the decoded customer id.
pub fn order_request<'s>(
    body: &[u8],
    scratch: &'s mut String,
) -> Result<OrderRequest<'s>, Invalid> {
    let mut product_id = Slot::default();
    let mut idempotency_key = Slot::default();
    let mut customer_id = Slot::default();
    let mut quantity = Slot::default();
    json::parse_object(body, |key, value| {
        // Unknown members are ignored, as a client may send more than we need.
        if key == "product_id" {
            product_id.record(value);
        } else if key == "idempotency_key" {
            idempotency_key.record(value);
        } else if key == "customer_id" {
            customer_id.record(value);
        } else if key == "quantity" {
            quantity.record(value);
        }
        Ok(())
    })
    .map_err(|error| Invalid(error.message))?;

    let product_id = product_ref(product_id.get(MSG_PRODUCT_REQUIRED, MSG_PRODUCT_DUPLICATE)?)?;
    let idempotency_key = uuid_v4_value(idempotency_key.get(MSG_KEY_REQUIRED, MSG_KEY_DUPLICATE)?)?;
    let customer_id =
        customer_id_value(customer_id.get(MSG_CUSTOMER_REQUIRED, MSG_CUSTOMER_DUPLICATE)?)?;
    let quantity = quantity_value(quantity.get(MSG_QUANTITY_REQUIRED, MSG_QUANTITY_DUPLICATE)?)?;
    Ok(OrderRequest {
        product_id,
        idempotency_key,
        customer_id: customer_id.decode_into(scratch),
        quantity,
    })
}

/// Validates a cancel body. No body (empty or only whitespace) is allowed and
/// gives `None` (compat.md); a body must be an object with an integer
/// `product_id`.
pub fn cancel_request(body: &[u8]) -> Result<Option<ProductRef>, Invalid> {
    if body.iter().all(|&b| json::is_whitespace(b)) {
        return Ok(None);
    }
    let mut product_id = Slot::default();
    json::parse_object(body, |key, value| {
        if key == "product_id" {
            product_id.record(value);
        }
        Ok(())
    })
    .map_err(|error| Invalid(error.message))?;
    product_ref(product_id.get(MSG_PRODUCT_REQUIRED, MSG_PRODUCT_DUPLICATE)?).map(Some)
}

/// A member the validator looks for: its last value, and whether it repeated.
#[derive(Default)]
struct Slot<'i> {
    value: Option<Value<'i>>,
    repeated: bool,
}

impl<'i> Slot<'i> {
    fn record(&mut self, value: Value<'i>) {
        self.repeated |= self.value.is_some();
        self.value = Some(value);
    }

    /// A repeated member is refused: which of the values would count is
    /// exactly the kind of ambiguity two parsers disagree on.
    fn get(&self, missing: &'static str, duplicate: &'static str) -> Result<Value<'i>, Invalid> {
        match self.value {
            _ if self.repeated => Err(Invalid(duplicate)),
            Some(value) => Ok(value),
            None => Err(Invalid(missing)),
        }
    }
}

fn product_ref(value: Value<'_>) -> Result<ProductRef, Invalid> {
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

fn uuid_v4_value(value: Value<'_>) -> Result<[u8; 16], Invalid> {
    let Value::Str(text) = value else {
        return Err(Invalid(MSG_KEY_FORMAT));
    };
    uuid_v4_from_json(text).ok_or(Invalid(MSG_KEY_FORMAT))
}

/// A UUID may arrive with escapes (`\u0035...`); it is judged decoded, via a
/// stack buffer exactly as long as a UUID.
fn uuid_v4_from_json(text: JsonStr<'_>) -> Option<[u8; 16]> {
    if let Some(plain) = text.as_unescaped() {
        return parse_uuid_v4(plain.as_bytes());
    }
    let mut decoded = [0u8; UUID_TEXT_LEN];
    let mut len = 0;
    for c in text.chars() {
        if !c.is_ascii() || len == UUID_TEXT_LEN {
            return None;
        }
        decoded[len] = c as u8;
        len += 1;
    }
    parse_uuid_v4(&decoded[..len])
}

fn customer_id_value(value: Value<'_>) -> Result<JsonStr<'_>, Invalid> {
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

fn quantity_value(value: Value<'_>) -> Result<i32, Invalid> {
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

/// Appends `id` in lowercase hyphenated form.
pub fn write_uuid(out: &mut Vec<u8>, id: &[u8; 16]) {
    for (index, &byte) in id.iter().enumerate() {
        if UUID_HYPHEN_BEFORE_BYTE.contains(&index) {
            out.push(b'-');
        }
        out.push(HEX_LOWER[usize::from(byte >> 4)]);
        out.push(HEX_LOWER[usize::from(byte & 0xF)]);
    }
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
/// `product_id=4&x=1`. The value must be `-?[0-9]+`; anything else,
/// percent-escapes included, is refused rather than decoded.
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

/// `-?[0-9]+` as a product reference; `None` if not an integer at all.
pub fn decimal_product_ref(text: &[u8]) -> Option<ProductRef> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut value: i64 = 0;
    for &digit in digits {
        let Some(next) = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(digit - b'0')))
        else {
            // Too large for any product, yet still an integer.
            return Some(ProductRef::Unknown);
        };
        value = next;
    }
    Some(product_ref_from_i64(if negative { -value } else { value }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "550e8400-e29b-41d4-a716-446655440000";
    const KEY_BYTES: [u8; 16] = [
        0x55, 0x0e, 0x84, 0x00, 0xe2, 0x9b, 0x41, 0xd4, 0xa7, 0x16, 0x44, 0x66, 0x55, 0x44, 0x00,
        0x00,
    ];

    /// A body with the four fields as JSON literals; `None` leaves one out.
    fn body(
        product_id: Option<&str>,
        key: Option<&str>,
        customer: Option<&str>,
        quantity: Option<&str>,
    ) -> String {
        let fields = [
            ("product_id", product_id),
            ("idempotency_key", key),
            ("customer_id", customer),
            ("quantity", quantity),
        ];
        let members: Vec<String> = fields
            .iter()
            .filter_map(|(name, literal)| literal.map(|l| format!("\"{name}\":{l}")))
            .collect();
        format!("{{{}}}", members.join(","))
    }

    /// The valid minimal body with one field replaced by `literal`.
    fn with(field: &str, literal: Option<&str>) -> String {
        let key = format!("\"{KEY}\"");
        let pick = |name: &str, default: &str| -> Option<String> {
            if name == field {
                literal.map(str::to_string)
            } else {
                Some(default.to_string())
            }
        };
        body(
            pick("product_id", "1").as_deref(),
            pick("idempotency_key", &key).as_deref(),
            pick("customer_id", "\"customer_42\"").as_deref(),
            pick("quantity", "2").as_deref(),
        )
    }

    type Outcome = Result<(ProductRef, String, i32), &'static str>;

    fn order(input: &[u8]) -> Outcome {
        let mut scratch = String::new();
        order_request(input, &mut scratch)
            .map(|o| {
                assert_eq!(o.idempotency_key, KEY_BYTES);
                (o.product_id, o.customer_id.to_string(), o.quantity)
            })
            .map_err(|Invalid(message)| message)
    }

    fn ok(product_id: ProductRef, customer: &str, quantity: i32) -> Outcome {
        Ok((product_id, customer.to_string(), quantity))
    }

    /// The messages that name a bound are built from `config.rs`.
    #[test]
    fn bound_messages_read_as_before() {
        assert_eq!(
            MSG_CUSTOMER_FORMAT,
            "customer_id must be a string of 1 to 50 characters"
        );
        assert_eq!(
            MSG_QUANTITY_RANGE,
            "quantity must be an integer from 1 to 5"
        );
    }

    #[test]
    fn valid_minimal_body() {
        let input = br#"{"product_id":1,"idempotency_key":"550e8400-e29b-41d4-a716-446655440000","customer_id":"customer_42","quantity":2}"#;
        let mut scratch = String::from("stale");
        let request = order_request(input, &mut scratch).unwrap();
        assert_eq!(
            request,
            OrderRequest {
                product_id: ProductRef::Id(1),
                idempotency_key: KEY_BYTES,
                customer_id: "customer_42",
                quantity: 2,
            }
        );
    }

    #[test]
    fn order_field_rows() {
        let e_accent_50 = format!("\"{}\"", "é".repeat(50));
        let e_accent_51 = format!("\"{}\"", "é".repeat(51));
        let ascii_50 = format!("\"{}\"", "c".repeat(50));
        let ascii_51 = format!("\"{}\"", "c".repeat(51));
        let emoji_50 = format!("\"{}\"", "\\ud83d\\ude00".repeat(50));
        let emoji_51 = format!("\"{}\"", "😀".repeat(51));
        let id = ProductRef::Id;
        let table: Vec<(&str, Option<&str>, Outcome)> = vec![
            // product_id
            ("product_id", None, Err(MSG_PRODUCT_REQUIRED)),
            ("product_id", Some("\"2\""), Err(MSG_PRODUCT_TYPE)),
            ("product_id", Some("2.5"), Err(MSG_PRODUCT_TYPE)),
            ("product_id", Some("2.0"), Err(MSG_PRODUCT_TYPE)),
            ("product_id", Some("2e0"), Err(MSG_PRODUCT_TYPE)),
            ("product_id", Some("true"), Err(MSG_PRODUCT_TYPE)),
            ("product_id", Some("null"), Err(MSG_PRODUCT_TYPE)),
            ("product_id", Some("[1]"), Err(MSG_PRODUCT_TYPE)),
            ("product_id", Some("{}"), Err(MSG_PRODUCT_TYPE)),
            ("product_id", Some("4"), ok(id(4), "customer_42", 2)),
            (
                "product_id",
                Some("2147483647"),
                ok(id(i32::MAX), "customer_42", 2),
            ),
            (
                "product_id",
                Some("2147483648"),
                ok(ProductRef::Unknown, "customer_42", 2),
            ),
            (
                "product_id",
                Some("0"),
                ok(ProductRef::Unknown, "customer_42", 2),
            ),
            (
                "product_id",
                Some("-0"),
                ok(ProductRef::Unknown, "customer_42", 2),
            ),
            (
                "product_id",
                Some("-1"),
                ok(ProductRef::Unknown, "customer_42", 2),
            ),
            (
                "product_id",
                Some("99999999999999999999999"),
                ok(ProductRef::Unknown, "customer_42", 2),
            ),
            (
                "product_id",
                Some("-99999999999999999999999"),
                ok(ProductRef::Unknown, "customer_42", 2),
            ),
            // idempotency_key
            ("idempotency_key", None, Err(MSG_KEY_REQUIRED)),
            ("idempotency_key", Some("1"), Err(MSG_KEY_FORMAT)),
            ("idempotency_key", Some("null"), Err(MSG_KEY_FORMAT)),
            ("idempotency_key", Some("\"\""), Err(MSG_KEY_FORMAT)),
            (
                "idempotency_key",
                Some("\"550E8400-E29B-41D4-A716-446655440000\""),
                ok(id(1), "customer_42", 2),
            ),
            // Escapes are judged decoded.
            (
                "idempotency_key",
                Some("\"\\u0035\\u00350e8400-e29b-41d4-a716-446655440000\""),
                ok(id(1), "customer_42", 2),
            ),
            (
                "idempotency_key",
                Some("\"550e8400-e29b-11d4-a716-446655440000\""),
                Err(MSG_KEY_FORMAT),
            ), // v1
            (
                "idempotency_key",
                Some("\"550e8400-e29b-41d4-c716-446655440000\""),
                Err(MSG_KEY_FORMAT),
            ), // variant
            (
                "idempotency_key",
                Some("\"550e8400e29b41d4a716446655440000\""),
                Err(MSG_KEY_FORMAT),
            ),
            (
                "idempotency_key",
                Some("\"{550e8400-e29b-41d4-a716-446655440000}\""),
                Err(MSG_KEY_FORMAT),
            ),
            (
                "idempotency_key",
                Some("\"550e8400-e29b-41d4-a716-44665544000\""),
                Err(MSG_KEY_FORMAT),
            ),
            (
                "idempotency_key",
                Some("\"550e8400-e29b-41d4-a716-4466554400000\""),
                Err(MSG_KEY_FORMAT),
            ),
            (
                "idempotency_key",
                Some("\"550e8400-e29b-41d4-a716-44665544000é\""),
                Err(MSG_KEY_FORMAT),
            ),
            (
                "idempotency_key",
                Some("\" 550e8400-e29b-41d4-a716-446655440000\""),
                Err(MSG_KEY_FORMAT),
            ),
            // customer_id
            ("customer_id", None, Err(MSG_CUSTOMER_REQUIRED)),
            ("customer_id", Some("42"), Err(MSG_CUSTOMER_FORMAT)),
            ("customer_id", Some("null"), Err(MSG_CUSTOMER_FORMAT)),
            ("customer_id", Some("[\"a\"]"), Err(MSG_CUSTOMER_FORMAT)),
            ("customer_id", Some("\"\""), Err(MSG_CUSTOMER_FORMAT)),
            (
                "customer_id",
                Some(&ascii_50),
                ok(id(1), &"c".repeat(50), 2),
            ),
            ("customer_id", Some(&ascii_51), Err(MSG_CUSTOMER_FORMAT)),
            (
                "customer_id",
                Some(&e_accent_50),
                ok(id(1), &"é".repeat(50), 2),
            ),
            ("customer_id", Some(&e_accent_51), Err(MSG_CUSTOMER_FORMAT)),
            (
                "customer_id",
                Some(&emoji_50),
                ok(id(1), &"😀".repeat(50), 2),
            ),
            ("customer_id", Some(&emoji_51), Err(MSG_CUSTOMER_FORMAT)),
            ("customer_id", Some("\"a\\u0000b\""), Err(MSG_CUSTOMER_NUL)),
            (
                "customer_id",
                Some("\"a\\\"b\\\\c\\/d\\n\\u00e9\""),
                ok(id(1), "a\"b\\c/d\né", 2),
            ),
            (
                "customer_id",
                Some("\"\\ud83d\""),
                Err("invalid JSON: unpaired UTF-16 surrogate"),
            ),
            (
                "customer_id",
                Some("\"a\tb\""),
                Err("invalid JSON: control character in string"),
            ),
            ("customer_id", Some("\" \""), ok(id(1), " ", 2)),
            // quantity
            ("quantity", None, Err(MSG_QUANTITY_REQUIRED)),
            ("quantity", Some("0"), Err(MSG_QUANTITY_RANGE)),
            ("quantity", Some("1"), ok(id(1), "customer_42", 1)),
            ("quantity", Some("5"), ok(id(1), "customer_42", 5)),
            ("quantity", Some("6"), Err(MSG_QUANTITY_RANGE)),
            ("quantity", Some("-1"), Err(MSG_QUANTITY_RANGE)),
            ("quantity", Some("1e0"), Err(MSG_QUANTITY_RANGE)),
            ("quantity", Some("1.0"), Err(MSG_QUANTITY_RANGE)),
            ("quantity", Some("\"1\""), Err(MSG_QUANTITY_RANGE)),
            ("quantity", Some("true"), Err(MSG_QUANTITY_RANGE)),
            ("quantity", Some("4294967297"), Err(MSG_QUANTITY_RANGE)),
            (
                "quantity",
                Some("99999999999999999999999"),
                Err(MSG_QUANTITY_RANGE),
            ),
        ];
        for (field, literal, expected) in table {
            let input = with(field, literal);
            assert_eq!(order(input.as_bytes()), expected, "{input}");
        }
    }

    #[test]
    fn order_whole_body_rows() {
        let table: &[(&[u8], Outcome)] = &[
            (b"", Err("body must be a JSON object")),
            (b"[]", Err("body must be a JSON object")),
            (b"null", Err("body must be a JSON object")),
            (b"\"x\"", Err("body must be a JSON object")),
            (b"{}", Err(MSG_PRODUCT_REQUIRED)),
            (b"{", Err("invalid JSON: unexpected end of input")),
            (b"{\"product_id\":1,}", Err("invalid JSON: expected a string key")),
            // Fixed order: the first failing field in spec order is named.
            (br#"{"quantity":9,"customer_id":"","product_id":"x"}"#, Err(MSG_PRODUCT_TYPE)),
            (br#"{"quantity":9,"product_id":1}"#, Err(MSG_KEY_REQUIRED)),
            // Malformed JSON anywhere outranks field errors.
            (br#"{"product_id":"x","quantity":01}"#, Err("invalid JSON: leading zero in number")),
            // Extra members are ignored, whatever their type.
            (
                br#" {"note":[{"deep":null}],"product_id":3,"idempotency_key":"550e8400-e29b-41d4-a716-446655440000","customer_id":"c","quantity":5,"x":1.5} "#,
                ok(ProductRef::Id(3), "c", 5),
            ),
            // Keys are compared decoded.
            (
                br#"{"product\u005fid":3,"idempotency_key":"550e8400-e29b-41d4-a716-446655440000","customer_id":"c","quantity":5}"#,
                ok(ProductRef::Id(3), "c", 5),
            ),
            (
                br#"{"product_id":1,"product_id":1,"idempotency_key":"550e8400-e29b-41d4-a716-446655440000","customer_id":"c","quantity":1}"#,
                Err(MSG_PRODUCT_DUPLICATE),
            ),
            (
                br#"{"product_id":1,"idempotency_key":"550e8400-e29b-41d4-a716-446655440000","customer_id":"c","quantity":1,"quantity":2}"#,
                Err(MSG_QUANTITY_DUPLICATE),
            ),
            (
                br#"{"product_id":1,"idempotency_key":"550e8400-e29b-41d4-a716-446655440000","customer_id":"c","customer\u005fid":"d","quantity":1}"#,
                Err(MSG_CUSTOMER_DUPLICATE),
            ),
            (
                b"{\"product_id\":1,\"idempotency_key\":\"550e8400-e29b-41d4-a716-446655440000\",\"customer_id\":\"c\xff\",\"quantity\":1}",
                Err("body must be valid UTF-8"),
            ),
        ];
        for (input, expected) in table {
            assert_eq!(
                &order(input),
                expected,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn cancel_bodies() {
        type Row = (&'static [u8], Result<Option<ProductRef>, &'static str>);
        let table: &[Row] = &[
            (b"", Ok(None)),
            (b" \r\n\t", Ok(None)),
            (b"{}", Err(MSG_PRODUCT_REQUIRED)),
            (b"{\"product_id\":1}", Ok(Some(ProductRef::Id(1)))),
            (b" { \"product_id\" : 5 } ", Ok(Some(ProductRef::Id(5)))),
            (
                b"{\"product_id\":1,\"extra\":true}",
                Ok(Some(ProductRef::Id(1))),
            ),
            (b"{\"product_id\":0}", Ok(Some(ProductRef::Unknown))),
            (b"{\"product_id\":1e400}", Err(MSG_PRODUCT_TYPE)),
            (
                b"{\"product_id\":123456789012345678901}",
                Ok(Some(ProductRef::Unknown)),
            ),
            (b"{\"product_id\":\"1\"}", Err(MSG_PRODUCT_TYPE)),
            (b"{\"product_id\":1.0}", Err(MSG_PRODUCT_TYPE)),
            (b"{\"product_id\":null}", Err(MSG_PRODUCT_TYPE)),
            (
                b"{\"product_id\":1,\"product_id\":2}",
                Err(MSG_PRODUCT_DUPLICATE),
            ),
            (b"null", Err("body must be a JSON object")),
            (b"[1]", Err("body must be a JSON object")),
            (b"\x0c", Err("body must be a JSON object")),
            (b"garbage", Err("body must be a JSON object")),
            (
                b"{\"product_id\":1",
                Err("invalid JSON: unexpected end of input"),
            ),
            (
                b"{\"product_id\":1}}",
                Err("invalid JSON: unexpected data after the object"),
            ),
            (b"\xff\xfe", Err("body must be valid UTF-8")),
        ];
        for (input, expected) in table {
            let got = cancel_request(input).map_err(|Invalid(message)| message);
            assert_eq!(&got, expected, "{:?}", String::from_utf8_lossy(input));
        }
    }

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
    fn mutated_bodies_never_panic() {
        let seed = with("customer_id", Some("\"c\\u00e9\\ud83d\\ude00\"")).into_bytes();
        let mut rng = fastrand::Rng::with_seed(3);
        let mut scratch = String::new();
        let mut input = Vec::new();
        for _ in 0..20_000 {
            input.clear();
            input.extend_from_slice(&seed);
            let edits = rng.usize(1..=3);
            crate::test_support::damage(&mut rng, &mut input, edits);
            if let Ok(order) = order_request(&input, &mut scratch) {
                assert!((1..=5).contains(&order.quantity));
                assert!(!order.customer_id.is_empty());
            }
            let _ = cancel_request(&input);
            let _ = parse_product_id_query(&input);
            let _ = parse_uuid(&input);
        }
    }
}
