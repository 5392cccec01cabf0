//! The JSON reader: any bytes; every member of an accepted object is decoded,
//! and every decoded string survives `write_str` and a second parse intact.
#![no_main]
use flashsale::json::{self, JsonStr, Value};
use libfuzzer_sys::fuzz_target;

/// `write_str(text)` as the value of a one-member object, parsed again: the
/// decoded value must be `text`, and `str_len` must predict the written size.
fn assert_round_trip(text: &str) {
    let mut written = b"{\"v\":".to_vec();
    let start = written.len();
    json::write_str(&mut written, text);
    assert_eq!(written.len() - start, json::str_len(text));
    written.push(b'}');
    let mut again = String::new();
    json::parse_object(&written, |_, value| {
        let Value::Str(s) = value else {
            panic!("write_str wrote a non-string")
        };
        s.decode_into(&mut again);
        Ok(())
    })
    .expect("write_str output must parse");
    assert_eq!(again, text);
}

fn touch(s: JsonStr<'_>, decoded: &mut String) {
    s.decode_into(decoded);
    assert!(s == decoded.as_str());
    assert!(s.chars().eq(decoded.chars()));
    assert_round_trip(decoded);
}

fuzz_target!(|data: &[u8]| {
    let mut decoded = String::new();
    let result = json::parse_object(data, |key, value| {
        touch(key, &mut decoded);
        match value {
            Value::Str(s) => touch(s, &mut decoded),
            Value::Int(_) | Value::IntOutOfRange { .. } | Value::Number => {}
            Value::Bool(_) | Value::Null | Value::Array | Value::Object => {}
        }
        Ok(())
    });
    if let Err(error) = result {
        assert!(error.offset <= data.len());
    }
});
