//! Text built from constants when the crate compiles, so a message or a
//! statement that names a limit says what `config.rs` says:
//!
//! ```
//! use flashsale::const_text::Part;
//! const MAX: i64 = 50;
//! const MESSAGE: &str =
//!     flashsale::const_text!(Part::Str("1 to "), Part::Int(MAX), Part::Str(" characters"));
//! assert_eq!(MESSAGE, "1 to 50 characters");
//! ```

/// One piece of a text: literal text, or an integer written in decimal.
#[derive(Debug, Clone, Copy)]
pub enum Part {
    Str(&'static str),
    Int(i64),
}

/// Bytes of `n` in decimal, with its sign.
const fn int_len(n: i64) -> usize {
    let mut len = if n <= 0 { 1 } else { 0 };
    let mut rest = n;
    while rest != 0 {
        rest /= 10;
        len += 1;
    }
    len
}

/// Bytes of the text `parts` make.
pub const fn len(parts: &[Part]) -> usize {
    let mut total = 0;
    let mut i = 0;
    while i < parts.len() {
        total += match parts[i] {
            Part::Str(s) => s.len(),
            Part::Int(n) => int_len(n),
        };
        i += 1;
    }
    total
}

/// The text `parts` make, as exactly `N` bytes (`N` must be `len(parts)`).
pub const fn join<const N: usize>(parts: &[Part]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut at = 0;
    let mut i = 0;
    while i < parts.len() {
        match parts[i] {
            Part::Str(s) => {
                let bytes = s.as_bytes();
                let mut j = 0;
                while j < bytes.len() {
                    out[at] = bytes[j];
                    at += 1;
                    j += 1;
                }
            }
            Part::Int(n) => {
                let width = int_len(n);
                if n < 0 {
                    out[at] = b'-';
                }
                let mut rest = n;
                let mut digit_at = at + width;
                loop {
                    digit_at -= 1;
                    out[digit_at] = b'0' + (rest % 10).unsigned_abs() as u8;
                    rest /= 10;
                    if rest == 0 {
                        break;
                    }
                }
                at += width;
            }
        }
        i += 1;
    }
    assert!(at == N, "join: N is not the length of the parts");
    out
}

/// A `&'static str` made of [`Part`]s, computed at compile time (exported
/// at the crate root: `crate::const_text!`).
#[macro_export]
macro_rules! const_text {
    ($($part:expr),+ $(,)?) => {{
        const PARTS: &[$crate::const_text::Part] = &[$($part),+];
        const BYTES: [u8; $crate::const_text::len(PARTS)] = $crate::const_text::join(PARTS);
        match ::std::str::from_utf8(&BYTES) {
            Ok(text) => text,
            Err(_) => panic!("const_text: the parts are not UTF-8"),
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_text_and_numbers() {
        const TEXT: &str = crate::const_text!(
            Part::Str("from "),
            Part::Int(1),
            Part::Str(" to "),
            Part::Int(5)
        );
        assert_eq!(TEXT, "from 1 to 5");
        const EDGES: &str = crate::const_text!(
            Part::Int(0),
            Part::Str(","),
            Part::Int(-120),
            Part::Str(","),
            Part::Int(i64::MAX),
            Part::Str(","),
            Part::Int(i64::MIN),
            Part::Str("é")
        );
        assert_eq!(EDGES, format!("0,-120,{},{}é", i64::MAX, i64::MIN).as_str());
    }
}
