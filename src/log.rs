//! Events, one JSON object per line on stderr: `{"ts": "<RFC 3339 UTC>",
//! "event": "<name>", ...fields}`. Events are what an operator acts on
//! (start, the database connected or lost, load shed, a batch failed),
//! never one per successful request; repeated ones are summarised by their
//! callers. Nothing secret is ever a field: the database URL is logged
//! through `ConnectConfig`'s redacted form.
//!
//! A line is built whole and written with one `write` so that lines from
//! the process never interleave.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::api::render::write_timestamp;
use crate::json;

/// A field's value.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    Str(&'a str),
    Int(i64),
    /// Written as a JSON number; `null` if not finite.
    Float(f64),
    Bool(bool),
    /// A setting that is off.
    Null,
}

/// Writes one event line to stderr.
pub fn event(name: &str, fields: &[(&str, Value<'_>)]) {
    let mut line = Vec::with_capacity(256);
    render(&mut line, now_micros_since_2000(), name, fields);
    let _ = std::io::stderr().lock().write_all(&line);
}

/// An error the database answered a request with, and what it was for.
#[cold]
pub fn database_error(name: &str, error: &crate::pg::DbError<'_>, fields: &[(&str, Value<'_>)]) {
    let mut all = vec![
        ("code", Value::Str(error.code)),
        ("severity", Value::Str(error.severity)),
        ("message", Value::Str(error.message)),
    ];
    all.extend_from_slice(fields);
    event(name, &all);
}

/// The line for an event at `micros_since_2000` (pure, for tests).
pub fn render(out: &mut Vec<u8>, micros_since_2000: i64, name: &str, fields: &[(&str, Value<'_>)]) {
    out.extend_from_slice(b"{\"ts\":\"");
    write_timestamp(out, micros_since_2000);
    out.extend_from_slice(b"\",\"event\":");
    json::write_str(out, name);
    for (key, value) in fields {
        out.push(b',');
        json::write_str(out, key);
        out.push(b':');
        match value {
            Value::Str(text) => json::write_str(out, text),
            Value::Int(number) => {
                out.extend_from_slice(itoa::Buffer::new().format(*number).as_bytes())
            }
            Value::Float(number) if number.is_finite() => {
                // `Display` never uses an exponent: always a JSON number.
                out.extend_from_slice(number.to_string().as_bytes())
            }
            Value::Float(_) | Value::Null => out.extend_from_slice(b"null"),
            Value::Bool(flag) => out.extend_from_slice(if *flag { b"true" } else { b"false" }),
        }
    }
    out.extend_from_slice(b"}\n");
}

fn now_micros_since_2000() -> i64 {
    /// 2000-01-01T00:00:00Z in Unix seconds (the epoch `write_timestamp` counts from).
    const EPOCH_2000_UNIX_SECONDS: i64 = 946_684_800;
    let unix_micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    unix_micros - EPOCH_2000_UNIX_SECONDS * 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_one_json_line() {
        let mut out = Vec::new();
        render(
            &mut out,
            0,
            "db_connection_lost",
            &[
                ("slot", Value::Int(2)),
                ("reason", Value::Str("socket error: \"reset\"\n")),
                ("was_ready", Value::Bool(true)),
            ],
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"ts\":\"2000-01-01T00:00:00.000Z\",\"event\":\"db_connection_lost\",\
             \"slot\":2,\"reason\":\"socket error: \\\"reset\\\"\\n\",\"was_ready\":true}\n"
        );
        let mut out = Vec::new();
        render(
            &mut out,
            0,
            "start",
            &[
                ("rate", Value::Float(0.5)),
                ("whole", Value::Float(2.0)),
                ("tiny", Value::Float(0.001)),
                ("nan", Value::Float(f64::NAN)),
                ("off", Value::Null),
            ],
        );
        assert!(String::from_utf8(out).unwrap().ends_with(
            r#""rate":0.5,"whole":2,"tiny":0.001,"nan":null,"off":null}
"#
        ));
    }
}
