//! Strict RFC 8259 JSON: a reader for the one shape requests have (a single
//! top-level object whose interesting members are integers and strings) and
//! writer helpers for responses.
//!
//! The reader never allocates. Strings are validated in place and handed out
//! as [`JsonStr`]: a borrowed slice of the input that still holds its escapes.
//! Callers compare it ([`JsonStr::eq`] with a `str`), walk its decoded
//! characters ([`JsonStr::chars`]) or decode it once into a reusable buffer
//! ([`JsonStr::decode_into`]). Because a `JsonStr` borrows the input and not a
//! scratch buffer, a caller may keep any number of them until it is done,
//! which a decode-into-scratch design could not offer without copying.
//!
//! Everything outside the accepted grammar is an error, never a guess:
//! leading zeros, `+1`, `.5`, `1.`, `NaN`, trailing commas, comments, single
//! quotes, raw control characters in strings, lone surrogates, invalid UTF-8.

use std::fmt;
use std::str::Chars as StrChars;

use crate::config::JSON_DEPTH_MAX;

const MSG_NOT_OBJECT: &str = "body must be a JSON object";
const MSG_NOT_UTF8: &str = "body must be valid UTF-8";
const MSG_TRAILING: &str = "invalid JSON: unexpected data after the object";
const MSG_EOF: &str = "invalid JSON: unexpected end of input";
const MSG_TOO_DEEP: &str = "invalid JSON: nesting too deep";
const MSG_VALUE: &str = "invalid JSON: expected a value";
const MSG_KEY: &str = "invalid JSON: expected a string key";
const MSG_COLON: &str = "invalid JSON: expected ':' after a key";
const MSG_OBJECT_SEP: &str = "invalid JSON: expected ',' or '}'";
const MSG_ARRAY_SEP: &str = "invalid JSON: expected ',' or ']'";
const MSG_NUMBER: &str = "invalid JSON: malformed number";
const MSG_LEADING_ZERO: &str = "invalid JSON: leading zero in number";
const MSG_CONTROL: &str = "invalid JSON: control character in string";
const MSG_UNTERMINATED: &str = "invalid JSON: unterminated string";
const MSG_ESCAPE: &str = "invalid JSON: invalid escape sequence";
const MSG_SURROGATE: &str = "invalid JSON: unpaired UTF-16 surrogate";

/// A member value. Only integers and strings carry their content; the other
/// kinds are fully validated and reported so a caller can name the type error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'i> {
    Int(i64),
    /// An integer literal (no fraction, no exponent) beyond the `i64` range.
    IntOutOfRange {
        negative: bool,
    },
    /// A number with a fraction or an exponent (`2.0`, `1e0`).
    Number,
    Str(JsonStr<'i>),
    Bool(bool),
    Null,
    Array,
    Object,
}

/// A validated JSON string, borrowed from the input with its escapes intact.
/// Only the reader creates one, so its escapes are known to be well formed.
#[derive(Clone, Copy)]
pub struct JsonStr<'i> {
    /// The text between the quotes.
    raw: &'i str,
    has_escapes: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonError {
    pub message: &'static str,
    /// Byte offset in the input where the problem was found.
    pub offset: usize,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.message, self.offset)
    }
}

impl std::error::Error for JsonError {}

/// Parses `input` as exactly one JSON object (surrounding whitespace allowed,
/// nothing else) and calls `on_field(key, value)` for each member in order.
/// Nested arrays and objects are validated and reported as `Array`/`Object`.
/// The callback returns `Err(message)` to stop; the error then points at the
/// member's value. Allocation-free: strings borrow `input`.
pub fn parse_object<'i>(
    input: &'i [u8],
    mut on_field: impl FnMut(JsonStr<'i>, Value<'i>) -> Result<(), &'static str>,
) -> Result<(), JsonError> {
    let text = std::str::from_utf8(input).map_err(|e| JsonError {
        message: MSG_NOT_UTF8,
        offset: e.valid_up_to(),
    })?;
    let mut parser = Parser {
        text,
        bytes: input,
        pos: 0,
    };
    parser.skip_whitespace();
    if parser.peek() != Some(b'{') {
        return Err(parser.error(MSG_NOT_OBJECT));
    }
    parser.object(1, &mut on_field)?;
    parser.skip_whitespace();
    if parser.pos < parser.bytes.len() {
        return Err(parser.error(MSG_TRAILING));
    }
    Ok(())
}

/// JSON's four insignificant whitespace bytes (RFC 8259 §2), nothing more.
pub fn is_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

type FieldSink<'a, 'i> = dyn FnMut(JsonStr<'i>, Value<'i>) -> Result<(), &'static str> + 'a;

struct Parser<'i> {
    /// The same bytes as `bytes`, proven UTF-8, so strings can be sliced out
    /// without a second validation pass.
    text: &'i str,
    bytes: &'i [u8],
    pos: usize,
}

impl<'i> Parser<'i> {
    #[cold]
    fn error(&self, message: &'static str) -> JsonError {
        JsonError {
            message,
            offset: self.pos,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(is_whitespace) {
            self.pos += 1;
        }
    }

    fn skip_digits(&mut self) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// Consumes `byte` after optional whitespace, or fails with `message`.
    fn expect(&mut self, byte: u8, message: &'static str) -> Result<(), JsonError> {
        self.skip_whitespace();
        match self.peek() {
            Some(b) if b == byte => {
                self.pos += 1;
                Ok(())
            }
            None => Err(self.error(MSG_EOF)),
            Some(_) => Err(self.error(message)),
        }
    }

    /// Whether the container continues (`,`) or ends (`close`).
    fn separator(&mut self, close: u8, message: &'static str) -> Result<bool, JsonError> {
        self.skip_whitespace();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                Ok(true)
            }
            Some(b) if b == close => {
                self.pos += 1;
                Ok(false)
            }
            None => Err(self.error(MSG_EOF)),
            Some(_) => Err(self.error(message)),
        }
    }

    /// An object starting at `{`; `depth` counts this object.
    fn object(&mut self, depth: usize, on_field: &mut FieldSink<'_, 'i>) -> Result<(), JsonError> {
        if depth > JSON_DEPTH_MAX {
            return Err(self.error(MSG_TOO_DEEP));
        }
        self.pos += 1;
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.skip_whitespace();
            // A '}' here means a trailing comma: RFC 8259 wants another member.
            if self.peek() != Some(b'"') {
                return Err(self.error(if self.peek().is_none() {
                    MSG_EOF
                } else {
                    MSG_KEY
                }));
            }
            let key = self.string()?;
            self.expect(b':', MSG_COLON)?;
            self.skip_whitespace();
            let value_offset = self.pos;
            let value = self.value(depth)?;
            on_field(key, value).map_err(|message| JsonError {
                message,
                offset: value_offset,
            })?;
            if !self.separator(b'}', MSG_OBJECT_SEP)? {
                return Ok(());
            }
        }
    }

    /// An array starting at `[`; `depth` counts this array.
    fn array(&mut self, depth: usize) -> Result<(), JsonError> {
        if depth > JSON_DEPTH_MAX {
            return Err(self.error(MSG_TOO_DEEP));
        }
        self.pos += 1;
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.skip_whitespace();
            self.value(depth)?;
            if !self.separator(b']', MSG_ARRAY_SEP)? {
                return Ok(());
            }
        }
    }

    /// A value inside a container at `depth`; whitespace already skipped.
    fn value(&mut self, depth: usize) -> Result<Value<'i>, JsonError> {
        match self.peek() {
            Some(b'"') => self.string().map(Value::Str),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'{') => {
                self.object(depth + 1, &mut |_, _| Ok(()))?;
                Ok(Value::Object)
            }
            Some(b'[') => {
                self.array(depth + 1)?;
                Ok(Value::Array)
            }
            Some(b't') => self.literal(b"true", Value::Bool(true)),
            Some(b'f') => self.literal(b"false", Value::Bool(false)),
            Some(b'n') => self.literal(b"null", Value::Null),
            None => Err(self.error(MSG_EOF)),
            Some(_) => Err(self.error(MSG_VALUE)),
        }
    }

    fn literal(&mut self, word: &'static [u8], value: Value<'i>) -> Result<Value<'i>, JsonError> {
        if self.bytes[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error(MSG_VALUE))
        }
    }

    /// `-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?`. What follows the number is the
    /// container's business: `1x` fails there as a missing separator.
    fn number(&mut self) -> Result<Value<'i>, JsonError> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        let int_start = self.pos;
        match self.skip_digits() {
            0 => return Err(self.error(MSG_NUMBER)),
            1 => {}
            _ if self.bytes[int_start] == b'0' => {
                self.pos = int_start;
                return Err(self.error(MSG_LEADING_ZERO));
            }
            _ => {}
        }
        let int_digits = &self.bytes[int_start..self.pos];
        let mut is_integer = true;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.skip_digits() == 0 {
                return Err(self.error(MSG_NUMBER));
            }
            is_integer = false;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.skip_digits() == 0 {
                return Err(self.error(MSG_NUMBER));
            }
            is_integer = false;
        }
        if !is_integer {
            return Ok(Value::Number);
        }
        Ok(match integer_value(int_digits, negative) {
            Some(n) => Value::Int(n),
            None => Value::IntOutOfRange { negative },
        })
    }

    /// A string starting at `"`: validated, not decoded.
    fn string(&mut self) -> Result<JsonStr<'i>, JsonError> {
        self.pos += 1;
        let start = self.pos;
        let mut has_escapes = false;
        loop {
            match self.peek() {
                None => return Err(self.error(MSG_UNTERMINATED)),
                Some(b'"') => break,
                Some(b'\\') => {
                    has_escapes = true;
                    self.escape()?;
                }
                Some(0x00..=0x1f) => return Err(self.error(MSG_CONTROL)),
                // Multi-byte UTF-8 is stepped over byte by byte: none of its
                // bytes is below 0x80, so none can be mistaken for '"' or '\'.
                Some(_) => self.pos += 1,
            }
        }
        // Both ends sit next to an ASCII quote, so they are char boundaries.
        let raw = self
            .text
            .get(start..self.pos)
            .ok_or(self.error(MSG_UNTERMINATED))?;
        self.pos += 1;
        Ok(JsonStr { raw, has_escapes })
    }

    /// One escape starting at `\`, including a whole surrogate pair.
    fn escape(&mut self) -> Result<(), JsonError> {
        match self.bytes.get(self.pos + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.pos += 2;
                Ok(())
            }
            Some(b'u') => self.unicode_escape(),
            None => Err(self.error(MSG_UNTERMINATED)),
            Some(_) => Err(self.error(MSG_ESCAPE)),
        }
    }

    fn unicode_escape(&mut self) -> Result<(), JsonError> {
        let Some(unit) = hex4(&self.bytes[self.pos + 2..]) else {
            return Err(self.error(MSG_ESCAPE));
        };
        if is_low_surrogate(unit) {
            return Err(self.error(MSG_SURROGATE));
        }
        if !is_high_surrogate(unit) {
            self.pos += 6;
            return Ok(());
        }
        let low = &self.bytes[self.pos + 6..];
        match low.strip_prefix(b"\\u").and_then(hex4) {
            Some(unit) if is_low_surrogate(unit) => {
                self.pos += 12;
                Ok(())
            }
            _ => Err(self.error(MSG_SURROGATE)),
        }
    }
}

/// Decimal digits (already validated) as an `i64`, `None` past its range.
/// Negative values accumulate downwards so `i64::MIN` is reachable.
fn integer_value(digits: &[u8], negative: bool) -> Option<i64> {
    let mut value: i64 = 0;
    for &digit in digits {
        let digit = i64::from(digit - b'0');
        value = value.checked_mul(10)?;
        value = if negative {
            value.checked_sub(digit)?
        } else {
            value.checked_add(digit)?
        };
    }
    Some(value)
}

/// Four hex digits at the start of `bytes`, as one UTF-16 code unit.
fn hex4(bytes: &[u8]) -> Option<u16> {
    let digits = bytes.get(..4)?;
    let mut unit: u16 = 0;
    for &b in digits {
        let nibble = (b as char).to_digit(16)?;
        unit = (unit << 4) | nibble as u16;
    }
    Some(unit)
}

fn is_high_surrogate(unit: u16) -> bool {
    (0xD800..=0xDBFF).contains(&unit)
}

fn is_low_surrogate(unit: u16) -> bool {
    (0xDC00..=0xDFFF).contains(&unit)
}

impl<'i> JsonStr<'i> {
    /// The decoded characters, computed on the fly.
    pub fn chars(&self) -> Chars<'i> {
        Chars {
            rest: self.raw.chars(),
        }
    }

    /// The text itself, borrowed from the input, when it has no escapes.
    pub fn as_unescaped(&self) -> Option<&'i str> {
        (!self.has_escapes).then_some(self.raw)
    }

    /// The source text between the quotes, escapes not decoded.
    pub fn raw(&self) -> &'i str {
        self.raw
    }

    /// Replaces `out`'s contents with the decoded text and returns it.
    pub fn decode_into<'s>(&self, out: &'s mut String) -> &'s str {
        out.clear();
        match self.as_unescaped() {
            Some(text) => out.push_str(text),
            None => out.extend(self.chars()),
        }
        out.as_str()
    }
}

impl PartialEq<str> for JsonStr<'_> {
    fn eq(&self, other: &str) -> bool {
        match self.as_unescaped() {
            Some(text) => text == other,
            None => self.chars().eq(other.chars()),
        }
    }
}

impl PartialEq<&str> for JsonStr<'_> {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

/// Equal when the decoded texts are equal, however each was escaped.
impl PartialEq for JsonStr<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.chars().eq(other.chars())
    }
}

impl Eq for JsonStr<'_> {}

impl fmt::Debug for JsonStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JsonStr({:?})", self.raw)
    }
}

/// Decoded characters of a [`JsonStr`].
#[derive(Clone)]
pub struct Chars<'i> {
    rest: StrChars<'i>,
}

impl Iterator for Chars<'_> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        let c = self.rest.next()?;
        if c != '\\' {
            return Some(c);
        }
        Some(match self.rest.next()? {
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => self.unicode(),
            // '"', '\\' and '/' stand for themselves.
            other => other,
        })
    }
}

impl Chars<'_> {
    /// After `\u`. The reader validated the escape; should that ever be
    /// false, U+FFFD is the answer rather than a panic.
    fn unicode(&mut self) -> char {
        let high = self.unit();
        if !is_high_surrogate(high) {
            return char::from_u32(u32::from(high)).unwrap_or(char::REPLACEMENT_CHARACTER);
        }
        // Skip the `\u` that introduces the low half.
        self.rest.next();
        self.rest.next();
        let low = self.unit();
        let scalar =
            0x10000 + ((u32::from(high) - 0xD800) << 10) + u32::from(low).wrapping_sub(0xDC00);
        char::from_u32(scalar).unwrap_or(char::REPLACEMENT_CHARACTER)
    }

    fn unit(&mut self) -> u16 {
        let unit = hex4(self.rest.as_str().as_bytes()).unwrap_or(0xFFFD);
        for _ in 0..4 {
            self.rest.next();
        }
        unit
    }
}

// ---- writing ----------------------------------------------------------------

/// How one source character is written inside a JSON string.
enum Escape {
    /// `\` followed by this byte.
    Short(u8),
    /// `\u` followed by four lowercase hex digits.
    Unicode(u16),
}

/// The escape needed at `bytes[i]` and how many source bytes it replaces.
/// U+2028/U+2029 are legal in JSON but end lines in JavaScript, so a response
/// pasted into a script cannot break out of a string literal.
fn escape_at(bytes: &[u8], i: usize) -> Option<(Escape, usize)> {
    let escape = match bytes[i] {
        b'"' => Escape::Short(b'"'),
        b'\\' => Escape::Short(b'\\'),
        b'\n' => Escape::Short(b'n'),
        b'\r' => Escape::Short(b'r'),
        b'\t' => Escape::Short(b't'),
        0x08 => Escape::Short(b'b'),
        0x0c => Escape::Short(b'f'),
        control @ 0x00..=0x1f => Escape::Unicode(u16::from(control)),
        0xE2 => match (bytes.get(i + 1), bytes.get(i + 2)) {
            (Some(0x80), Some(0xA8)) => return Some((Escape::Unicode(0x2028), 3)),
            (Some(0x80), Some(0xA9)) => return Some((Escape::Unicode(0x2029), 3)),
            _ => return None,
        },
        _ => return None,
    };
    Some((escape, 1))
}

const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a quoted JSON string. Non-ASCII text is written as UTF-8.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.push(b'"');
    let mut run_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let Some((escape, source_len)) = escape_at(bytes, i) else {
            i += 1;
            continue;
        };
        out.extend_from_slice(&bytes[run_start..i]);
        match escape {
            Escape::Short(b) => out.extend_from_slice(&[b'\\', b]),
            Escape::Unicode(unit) => {
                out.extend_from_slice(b"\\u");
                for shift in [12, 8, 4, 0] {
                    out.push(HEX_LOWER[usize::from((unit >> shift) & 0xF)]);
                }
            }
        }
        i += source_len;
        run_start = i;
    }
    out.extend_from_slice(&bytes[run_start..]);
    out.push(b'"');
}

/// The number of bytes [`write_str`] appends for `s`, so a caller can write a
/// Content-Length before the body without rendering the body twice.
pub fn str_len(s: &str) -> usize {
    let bytes = s.as_bytes();
    let mut len = 2;
    let mut i = 0;
    while i < bytes.len() {
        match escape_at(bytes, i) {
            Some((Escape::Short(_), source_len)) => {
                len += 2;
                i += source_len;
            }
            Some((Escape::Unicode(_), source_len)) => {
                len += 6;
                i += source_len;
            }
            None => {
                len += 1;
                i += 1;
            }
        }
    }
    len
}

/// Appends `n` in decimal.
pub fn write_i64(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `input` and returns its members as (decoded key, value) pairs,
    /// with string values decoded too.
    fn members(input: &[u8]) -> Result<Vec<(String, Decoded)>, JsonError> {
        let mut out = Vec::new();
        parse_object(input, |key, value| {
            out.push((key.chars().collect(), Decoded::from(value)));
            Ok(())
        })?;
        Ok(out)
    }

    #[derive(Debug, PartialEq)]
    enum Decoded {
        Int(i64),
        IntOutOfRange { negative: bool },
        Number,
        Str(String),
        Bool(bool),
        Null,
        Array,
        Object,
    }

    impl From<Value<'_>> for Decoded {
        fn from(value: Value<'_>) -> Self {
            match value {
                Value::Int(n) => Decoded::Int(n),
                Value::IntOutOfRange { negative } => Decoded::IntOutOfRange { negative },
                Value::Number => Decoded::Number,
                Value::Str(s) => Decoded::Str(s.chars().collect()),
                Value::Bool(b) => Decoded::Bool(b),
                Value::Null => Decoded::Null,
                Value::Array => Decoded::Array,
                Value::Object => Decoded::Object,
            }
        }
    }

    /// The single member `{"v": <literal>}` decodes to `expected`.
    fn single(literal: &str) -> Result<Decoded, &'static str> {
        let input = format!("{{\"v\":{literal}}}");
        match members(input.as_bytes()) {
            Ok(mut fields) if fields.len() == 1 => Ok(fields.remove(0).1),
            Ok(fields) => panic!("{literal}: {fields:?}"),
            Err(e) => Err(e.message),
        }
    }

    fn s(text: &str) -> Decoded {
        Decoded::Str(text.to_string())
    }

    #[test]
    fn whole_object_members_in_order() {
        let input = br#" { "a" : 1 , "b":"x", "c":true,"d":false,"e":null,"f":[1,{"g":[]}],"h":{},"i":1.5 } "#;
        let expected = vec![
            ("a".to_string(), Decoded::Int(1)),
            ("b".to_string(), s("x")),
            ("c".to_string(), Decoded::Bool(true)),
            ("d".to_string(), Decoded::Bool(false)),
            ("e".to_string(), Decoded::Null),
            ("f".to_string(), Decoded::Array),
            ("h".to_string(), Decoded::Object),
            ("i".to_string(), Decoded::Number),
        ];
        assert_eq!(members(input).unwrap(), expected);
        assert_eq!(members(b"{}").unwrap(), vec![]);
        assert_eq!(members(b"\t\r\n{\n}\r\n\t").unwrap(), vec![]);
    }

    #[test]
    fn top_level_must_be_an_object() {
        let inputs: &[&[u8]] = &[
            b"",
            b"   ",
            b"[]",
            b"\"x\"",
            b"1",
            b"null",
            b"true",
            b"x",
            b"\xEF\xBB\xBF{}", // a byte-order mark is not JSON whitespace
        ];
        for input in inputs {
            let err = members(input).unwrap_err();
            assert_eq!(
                err.message,
                MSG_NOT_OBJECT,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn malformed_documents_rejected() {
        let table: &[(&[u8], &str)] = &[
            (b"{", MSG_EOF),
            (b"{\"a\"", MSG_EOF),
            (b"{\"a\":", MSG_EOF),
            (b"{\"a\":1", MSG_EOF),
            (b"{\"a\":1,}", MSG_KEY),
            (b"{,}", MSG_KEY),
            (b"{\"a\" 1}", MSG_COLON),
            (b"{\"a\":1 \"b\":2}", MSG_OBJECT_SEP),
            (b"{'a':1}", MSG_KEY),
            (b"{\"a\":'x'}", MSG_VALUE),
            (b"{a:1}", MSG_KEY),
            (b"{1:1}", MSG_KEY),
            (b"{} {}", MSG_TRAILING),
            (b"{}x", MSG_TRAILING),
            (b"{}/* c */", MSG_TRAILING),
            (b"{/* c */}", MSG_KEY),
            (b"{\"a\":1 // c\n}", MSG_OBJECT_SEP),
            (b"{\"a\":[1,]}", MSG_VALUE),
            (b"{\"a\":[1 2]}", MSG_ARRAY_SEP),
            (b"{\"a\":[}", MSG_VALUE),
            (b"{\"a\":tru}", MSG_VALUE),
            (b"{\"a\":True}", MSG_VALUE),
            (b"{\"a\":nul}", MSG_VALUE),
            (b"{\"a\":NaN}", MSG_VALUE),
            (b"{\"a\":Infinity}", MSG_VALUE),
            (b"{\"a\":undefined}", MSG_VALUE),
            (b"{\"a\":1}\0", MSG_TRAILING),
            (b"{\"a\":\x0c1}", MSG_VALUE), // form feed is not JSON whitespace
            (b"{\"a\":1,\"a\"}", MSG_COLON),
            (b"{\"a\":\"abc\\", MSG_UNTERMINATED),
        ];
        for &(input, message) in table {
            let err = members(input).unwrap_err();
            assert_eq!(err.message, message, "{:?}", String::from_utf8_lossy(input));
            assert!(err.offset <= input.len());
        }
    }

    #[test]
    fn numbers() {
        let table: &[(&str, Result<Decoded, &str>)] = &[
            ("0", Ok(Decoded::Int(0))),
            ("-0", Ok(Decoded::Int(0))),
            ("7", Ok(Decoded::Int(7))),
            ("-7", Ok(Decoded::Int(-7))),
            ("1234567890", Ok(Decoded::Int(1234567890))),
            ("9223372036854775807", Ok(Decoded::Int(i64::MAX))),
            ("-9223372036854775808", Ok(Decoded::Int(i64::MIN))),
            (
                "9223372036854775808",
                Ok(Decoded::IntOutOfRange { negative: false }),
            ),
            (
                "-9223372036854775809",
                Ok(Decoded::IntOutOfRange { negative: true }),
            ),
            (
                "123456789012345678901234567890",
                Ok(Decoded::IntOutOfRange { negative: false }),
            ),
            ("2.0", Ok(Decoded::Number)),
            ("2.5", Ok(Decoded::Number)),
            ("-0.0", Ok(Decoded::Number)),
            ("1e0", Ok(Decoded::Number)),
            ("1E+2", Ok(Decoded::Number)),
            ("1e-2", Ok(Decoded::Number)),
            ("0.5e10", Ok(Decoded::Number)),
            ("01", Err(MSG_LEADING_ZERO)),
            ("-01", Err(MSG_LEADING_ZERO)),
            ("00", Err(MSG_LEADING_ZERO)),
            ("+1", Err(MSG_VALUE)),
            (".5", Err(MSG_VALUE)),
            ("1.", Err(MSG_NUMBER)),
            ("1.e5", Err(MSG_NUMBER)),
            ("1e", Err(MSG_NUMBER)),
            ("1e+", Err(MSG_NUMBER)),
            ("-", Err(MSG_NUMBER)),
            ("-a", Err(MSG_NUMBER)),
            ("0x10", Err(MSG_OBJECT_SEP)),
            ("1x", Err(MSG_OBJECT_SEP)),
            ("1 2", Err(MSG_OBJECT_SEP)),
            ("1.5.5", Err(MSG_OBJECT_SEP)),
            ("--1", Err(MSG_NUMBER)),
        ];
        for (literal, expected) in table {
            assert_eq!(&single(literal), expected, "{literal}");
        }
    }

    #[test]
    fn strings() {
        let table: &[(&str, Result<Decoded, &str>)] = &[
            (r#""""#, Ok(s(""))),
            (r#""plain""#, Ok(s("plain"))),
            (r#""\"\\\/\b\f\n\r\t""#, Ok(s("\"\\/\u{8}\u{c}\n\r\t"))),
            (r#""\u0041\u00e9\u00E9""#, Ok(s("Aéé"))),
            (r#""\u20ac""#, Ok(s("€"))),
            (r#""\ud83d\ude00""#, Ok(s("😀"))),
            (r#""\uD83D\uDE00x""#, Ok(s("😀x"))),
            (r#""\u0000""#, Ok(s("\0"))),
            ("\"😀é€\"", Ok(s("😀é€"))),
            ("\"\u{7f}\"", Ok(s("\u{7f}"))),
            ("\"\u{2028}\"", Ok(s("\u{2028}"))),
            (r#""\ud83d""#, Err(MSG_SURROGATE)),
            (r#""\ud83dx""#, Err(MSG_SURROGATE)),
            (r#""\ud83d\n""#, Err(MSG_SURROGATE)),
            (r#""\ud83d\u0041""#, Err(MSG_SURROGATE)),
            (r#""\ud83d\ud83d""#, Err(MSG_SURROGATE)),
            (r#""\ude00""#, Err(MSG_SURROGATE)),
            (r#""\ude00\ud83d""#, Err(MSG_SURROGATE)),
            (r#""\u12""#, Err(MSG_ESCAPE)),
            (r#""\u12g4""#, Err(MSG_ESCAPE)),
            (r#""\U0041""#, Err(MSG_ESCAPE)),
            (r#""\x41""#, Err(MSG_ESCAPE)),
            (r#""\'""#, Err(MSG_ESCAPE)),
            (r#""\ ""#, Err(MSG_ESCAPE)),
            ("\"a\nb\"", Err(MSG_CONTROL)),
            ("\"a\tb\"", Err(MSG_CONTROL)),
            ("\"\0\"", Err(MSG_CONTROL)),
            ("\"\u{1f}\"", Err(MSG_CONTROL)),
            ("\"abc", Err(MSG_UNTERMINATED)),
            ("\"abc\\", Err(MSG_ESCAPE)), // the object's '}' follows the backslash
            ("'x'", Err(MSG_VALUE)),
        ];
        for (literal, expected) in table {
            assert_eq!(&single(literal), expected, "{literal}");
        }
    }

    #[test]
    fn keys_are_decoded() {
        let fields = members(br#"{"product\u005fid":1,"\ud83d\ude00":2,"":3}"#).unwrap();
        let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["product_id", "😀", ""]);
        parse_object(br#"{"product\u005fid":1}"#, |key, _| {
            assert!(key == "product_id");
            assert!(key != "product_i");
            assert_eq!(key.as_unescaped(), None);
            assert_eq!(key.raw(), r"product\u005fid");
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn invalid_utf8_rejected() {
        let table: &[&[u8]] = &[
            b"{\"a\":\"\xff\"}",
            b"{\"a\":\"\xc3\"}",             // truncated 2-byte sequence
            b"{\"a\":\"\xed\xa0\x80\"}",     // UTF-8 encoded surrogate
            b"{\"a\":\"\xc0\xaf\"}",         // overlong '/'
            b"{\"a\":\"\xf4\x90\x80\x80\"}", // beyond U+10FFFF
            b"\xff{}",
        ];
        for input in table {
            let err = members(input).unwrap_err();
            assert_eq!(err.message, MSG_NOT_UTF8, "{input:?}");
        }
        // Valid 4-byte UTF-8 passes through untouched.
        let fields = members("{\"a\":\"\u{10FFFF}\u{1F600}\"}".as_bytes()).unwrap();
        assert_eq!(fields[0].1, s("\u{10FFFF}\u{1F600}"));
    }

    #[test]
    fn nesting_depth_bounded() {
        let nested = |levels: usize| {
            let mut input = String::from("{\"a\":");
            input.push_str(&"[".repeat(levels - 1));
            input.push_str(&"]".repeat(levels - 1));
            input.push('}');
            input
        };
        assert!(members(nested(JSON_DEPTH_MAX).as_bytes()).is_ok());
        let err = members(nested(JSON_DEPTH_MAX + 1).as_bytes()).unwrap_err();
        assert_eq!(err.message, MSG_TOO_DEEP);
        // Objects count the same way, and a deep attack fails fast without recursion blowing up.
        let deep_objects = format!("{}{}", "{\"a\":".repeat(100_000), "1");
        assert_eq!(
            members(deep_objects.as_bytes()).unwrap_err().message,
            MSG_TOO_DEEP
        );
        let deep_arrays = format!("{{\"a\":{}", "[".repeat(100_000));
        assert_eq!(
            members(deep_arrays.as_bytes()).unwrap_err().message,
            MSG_TOO_DEEP
        );
    }

    #[test]
    fn callback_error_stops_at_value() {
        let input = br#"{"a":1,"b":2,"c":3}"#;
        let mut seen = 0;
        let err = parse_object(input, |key, _| {
            seen += 1;
            if key == "b" {
                Err("no b")
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert_eq!(seen, 2);
        assert_eq!(
            err,
            JsonError {
                message: "no b",
                offset: 11
            }
        );
    }

    #[test]
    fn json_str_views() {
        let mut scratch = String::from("stale");
        parse_object(br#"{"a":"x\ty","b":"plain"}"#, |key, value| {
            let Value::Str(text) = value else { panic!() };
            if key == "a" {
                assert_eq!(text.as_unescaped(), None);
                assert_eq!(text.decode_into(&mut scratch), "x\ty");
                assert_eq!(text.chars().count(), 3);
            } else {
                assert_eq!(text.as_unescaped(), Some("plain"));
                assert_eq!(text.decode_into(&mut scratch), "plain");
            }
            Ok(())
        })
        .unwrap();
        // Equality is on decoded text.
        let mut strs = Vec::new();
        parse_object(br#"{"a":"\u0041","b":"A"}"#, |_, value| {
            strs.push(value);
            Ok(())
        })
        .unwrap();
        assert_eq!(strs[0], strs[1]);
    }

    fn written(text: &str) -> String {
        let mut out = b"prefix".to_vec();
        write_str(&mut out, text);
        assert_eq!(out.len() - 6, str_len(text), "{text:?}");
        String::from_utf8(out[6..].to_vec()).unwrap()
    }

    #[test]
    fn write_str_escapes() {
        let table: &[(&str, &str)] = &[
            ("", r#""""#),
            ("plain", r#""plain""#),
            ("a\"b\\c", r#""a\"b\\c""#),
            ("\n\r\t\u{8}\u{c}", r#""\n\r\t\b\f""#),
            ("\0\u{1}\u{1f}", r#""\u0000\u0001\u001f""#),
            ("\u{7f}/", "\"\u{7f}/\""),
            ("é€😀", "\"é€😀\""),
            ("a\u{2028}b\u{2029}", r#""a\u2028b\u2029""#),
            ("\u{2027}\u{202a}", "\"\u{2027}\u{202a}\""),
        ];
        for (text, expected) in table {
            assert_eq!(written(text), *expected, "{text:?}");
        }
    }

    #[test]
    fn write_str_round_trips_through_reader() {
        let texts = [
            "",
            "x",
            "\"\\/",
            "\0\u{1f}\u{7f}",
            "é😀\u{2028}",
            "customer_42",
        ];
        for text in texts {
            let mut body = b"{\"k\":".to_vec();
            write_str(&mut body, text);
            body.push(b'}');
            assert_eq!(members(&body).unwrap(), vec![("k".to_string(), s(text))]);
        }
    }

    #[test]
    fn write_i64_decimal() {
        for (n, expected) in [
            (0, "0"),
            (-1, "-1"),
            (4999, "4999"),
            (i64::MAX, "9223372036854775807"),
            (i64::MIN, "-9223372036854775808"),
        ] {
            let mut out = Vec::new();
            write_i64(&mut out, n);
            assert_eq!(out, expected.as_bytes());
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        // Bytes drawn mostly from JSON's own alphabet reach deep paths.
        const ALPHABET: &[u8] = b"{}[]:,\"\\/ufnrtbe0123456789-+.Ee aAdD\t\n\x00\xc3\xa9\xff";
        let mut rng = fastrand::Rng::with_seed(0x5eed);
        let mut input = Vec::new();
        for round in 0..20_000 {
            input.clear();
            let len = usize::from(rng.u8(..) % 48);
            if round % 2 == 0 {
                input.push(b'{');
            }
            for _ in 0..len {
                let b = rng.u8(..);
                input.push(if round % 3 == 0 {
                    b
                } else {
                    ALPHABET[usize::from(b) % ALPHABET.len()]
                });
            }
            let result = parse_object(&input, |key, value| {
                let _ = key.chars().count();
                if let Value::Str(text) = value {
                    let _ = text.chars().count();
                }
                Ok(())
            });
            if let Err(e) = result {
                assert!(e.offset <= input.len());
            }
        }
    }

    #[test]
    fn mutated_valid_documents_never_panic() {
        let seed = br#"{"product_id":1,"idempotency_key":"550e8400-e29b-41d4-a716-446655440000","customer_id":"c\u00e9\ud83d\ude00","quantity":2,"x":[1.5e3,{"y":null}]}"#;
        let mut rng = fastrand::Rng::with_seed(42);
        let mut input = Vec::new();
        for _ in 0..20_000 {
            input.clear();
            input.extend_from_slice(seed);
            let edits = rng.usize(1..=4);
            crate::test_support::damage(&mut rng, &mut input, edits);
            let _ = parse_object(&input, |key, value| {
                let _ = key.chars().count();
                if let Value::Str(text) = value {
                    let _ = text.chars().last();
                }
                Ok(())
            });
        }
    }
}
