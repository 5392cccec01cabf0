//! `POST /payments/webhook` (platform.md §3): a payment provider tells how
//! an order's payment went. Present only with `WEBHOOK_SECRET`.
//!
//! The signature (`X-Signature: sha256=<hex HMAC-SHA256 of the raw body>`)
//! is checked by the database, with pgcrypto, in the same call that applies
//! the event (`payment_webhook` in `sql/init.sql`): the runtime crates
//! include no cryptography of their own, pgcrypto is PostgreSQL's, and a
//! webhook is rare enough that its few microseconds of database CPU do not
//! matter. A header that is not a SHA-256 signature at all is refused here
//! (401) without the database. A body that is not a valid event is still
//! sent (without its fields) so that a wrong signature is a 401 whatever
//! the body, and a right one with a bad body a 422.
//!
//! Every event with a valid signature is stored for audit; one of an
//! unknown order is a 404 (the provider retries), a repeated `event_id` a
//! 200 that changes nothing, and an event for a payment already PAID or
//! FAILED a 200 with `"applied": false`. A `failed` payment cancels its
//! order the way its buyer's cancel would, so the two restore stock once.

use crate::api::render::{self, Malformed};
use crate::api::routes::Query;
use crate::api::statements::id_of;
use crate::api::validate::{time_text, uuid_value, Invalid, Member};
use crate::api::{malformed, refuse, refuse_for, Db, Refusal, ORDER_NOT_FOUND};
use crate::json::{self, Value};
use crate::log;
use crate::metrics::WebhookFigures;
use crate::pg::{oid, Param, Refused, Rows, Statement, StatementId};

crate::result_row! {
    /// What `payment_webhook` did.
    pub struct WebhookRow<'a> {
        outcome: i32,
        event_id: Option<&'a str>,
        order_id: Option<[u8; 16]>,
        payment_status: Option<&'a str>,
        refund_required: Option<bool>,
    }
}

pub const PAYMENT_WEBHOOK: Statement = Statement {
    name: "payment_webhook",
    sql: "SELECT * FROM payment_webhook($1, $2, $3, $4, $5, $6, $7)",
    param_types: &[
        oid::BYTEA,
        oid::BYTEA,
        oid::BYTEA,
        oid::TEXT,
        oid::UUID,
        oid::TEXT,
        oid::TIMESTAMPTZ,
    ],
    column_names: WebhookRow::COLUMN_NAMES,
    column_types: WebhookRow::COLUMN_TYPES,
    writes: true,
    slow: false,
};
const PAYMENT_WEBHOOK_ID: StatementId = id_of(&PAYMENT_WEBHOOK);

/// `payment_webhook` outcomes (`sql/init.sql`, "Payments").
const BAD_SIGNATURE: i32 = 20;
const MALFORMED_BODY: i32 = 21;
const APPLIED: i32 = 22;
const NOT_APPLIED: i32 = 23;
const DUPLICATE: i32 = 24;
const UNKNOWN_ORDER: i32 = 25;

pub const INVALID_SIGNATURE: Refusal = refuse_for(401, "invalid signature", "invalid_signature");

const SIGNATURE_PREFIX: &[u8] = b"sha256=";
const SIGNATURE_BYTES: usize = 32;
const EVENT_ID_CHARS_MAX: usize = 100;

const MSG_EVENT_ID: &str = "event_id must be a string of 1 to 100 characters";
const MSG_EVENT_ID_NUL: &str = "event_id must not contain NUL characters";
const MSG_ORDER_ID: &str = "order_id must be a UUID";
const MSG_STATUS: &str = "status must be \"succeeded\" or \"failed\"";
const MSG_OCCURRED_AT: &str =
    "occurred_at must be an RFC 3339 time with an offset (2026-12-01T10:00:00Z)";
const MSG_DUPLICATE: &str = "a field appears twice";

/// A webhook request: its signature, and its event or why the body is
/// not one (the event id is carried beside it as text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Webhook {
    pub signature: [u8; SIGNATURE_BYTES],
    pub event: Result<PaymentEvent, &'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentEvent {
    pub order_id: [u8; 16],
    pub succeeded: bool,
    /// Microseconds since 2000-01-01 UTC.
    pub occurred_at: i64,
}

/// The signature header and the body. Only a missing or malformed header
/// is answered here; the body's verdict waits for the signature's.
pub fn parse<'s>(
    signature: Option<&[u8]>,
    body: &[u8],
    scratch: &'s mut String,
) -> Result<(Query, &'s str), Refusal> {
    let signature = signature
        .and_then(parse_signature)
        .ok_or(INVALID_SIGNATURE)?;
    let (event, event_id) = match event(body, scratch) {
        Ok((event, event_id)) => (Ok(event), event_id),
        Err(Invalid(message)) => (Err(message), ""),
    };
    Ok((
        Query::PaymentWebhook(Webhook { signature, event }),
        event_id,
    ))
}

/// `sha256=` and 64 hex digits, either case.
fn parse_signature(header: &[u8]) -> Option<[u8; SIGNATURE_BYTES]> {
    let prefix = header.get(..SIGNATURE_PREFIX.len())?;
    if !prefix.eq_ignore_ascii_case(SIGNATURE_PREFIX) {
        return None;
    }
    let hex = &header[SIGNATURE_PREFIX.len()..];
    if hex.len() != 2 * SIGNATURE_BYTES {
        return None;
    }
    let mut signature = [0u8; SIGNATURE_BYTES];
    for (byte, pair) in signature.iter_mut().zip(hex.chunks_exact(2)) {
        *byte = hex_digit(pair[0])? << 4 | hex_digit(pair[1])?;
    }
    Some(signature)
}

fn hex_digit(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// `{"event_id", "order_id", "status", "occurred_at"}`, other members
/// ignored (providers add their own), judged in that order.
fn event<'s>(body: &[u8], scratch: &'s mut String) -> Result<(PaymentEvent, &'s str), Invalid> {
    let mut event_id = Member::default();
    let mut order_id = Member::default();
    let mut status = Member::default();
    let mut occurred_at = Member::default();
    json::parse_object(body, |key, value| {
        if key == "event_id" {
            event_id.record(value);
        } else if key == "order_id" {
            order_id.record(value);
        } else if key == "status" {
            status.record(value);
        } else if key == "occurred_at" {
            occurred_at.record(value);
        }
        Ok(())
    })
    .map_err(|error| Invalid(error.message))?;
    let event_id = event_id.get("event_id is required", MSG_DUPLICATE)?;
    let Value::Str(event_id) = event_id else {
        return Err(Invalid(MSG_EVENT_ID));
    };
    let mut chars = 0;
    for c in event_id.chars() {
        if c == '\0' {
            return Err(Invalid(MSG_EVENT_ID_NUL));
        }
        chars += 1;
    }
    if !(1..=EVENT_ID_CHARS_MAX).contains(&chars) {
        return Err(Invalid(MSG_EVENT_ID));
    }
    let order_id = uuid_value(
        order_id.get("order_id is required", MSG_DUPLICATE)?,
        MSG_ORDER_ID,
    )?;
    let succeeded = match status.get("status is required", MSG_DUPLICATE)? {
        Value::Str(text) if text.as_unescaped() == Some("succeeded") => true,
        Value::Str(text) if text.as_unescaped() == Some("failed") => false,
        _ => return Err(Invalid(MSG_STATUS)),
    };
    let occurred_at = match occurred_at.get("occurred_at is required", MSG_DUPLICATE)? {
        Value::Str(text) => time_text(text).ok_or(Invalid(MSG_OCCURRED_AT))?,
        _ => return Err(Invalid(MSG_OCCURRED_AT)),
    };
    let event = PaymentEvent {
        order_id,
        succeeded,
        occurred_at,
    };
    Ok((event, event_id.decode_into(scratch)))
}

/// `secret`: `WEBHOOK_SECRET`; `payload`: the raw body the signature is of.
pub fn submit(
    db: &mut Db<'_>,
    webhook: &Webhook,
    event_id: &str,
    secret: &[u8],
    payload: &[u8],
) -> Result<(), Refused> {
    let mut params = [
        Param::Bytea(secret),
        Param::Bytea(&webhook.signature),
        Param::Bytea(payload),
        Param::Null,
        Param::Null,
        Param::Null,
        Param::Null,
    ];
    if let Ok(event) = &webhook.event {
        params[3] = Param::Text(event_id);
        params[4] = Param::Uuid(&event.order_id);
        params[5] = Param::Text(if event.succeeded {
            "succeeded"
        } else {
            "failed"
        });
        params[6] = Param::Timestamp(event.occurred_at);
    }
    db.submit(PAYMENT_WEBHOOK_ID, &params)
}

pub fn answer(
    webhook: &Webhook,
    rows: Rows<'_>,
    body: &mut Vec<u8>,
    figures: &mut WebhookFigures,
) -> Result<u16, Refusal> {
    let row = rows.first().as_ref().and_then(WebhookRow::from_row);
    let row = row.ok_or(Malformed).map_err(malformed)?;
    match row.outcome {
        BAD_SIGNATURE => Err(INVALID_SIGNATURE),
        MALFORMED_BODY => match webhook.event {
            Err(message) => Err(refuse(422, message)),
            Ok(_) => Err(malformed(Malformed)),
        },
        UNKNOWN_ORDER => {
            figures.unknown_order += 1;
            log_event(webhook, &row, "unknown_order");
            Err(ORDER_NOT_FOUND)
        }
        code @ (APPLIED | NOT_APPLIED | DUPLICATE) => {
            let (Some(event_id), Some(order_id), Some(payment_status), Some(refund_required)) = (
                row.event_id,
                row.order_id,
                row.payment_status,
                row.refund_required,
            ) else {
                return Err(malformed(Malformed));
            };
            let outcome = match code {
                APPLIED => {
                    figures.applied += 1;
                    "applied"
                }
                NOT_APPLIED => {
                    figures.not_applied += 1;
                    "not_applied"
                }
                _ => {
                    figures.duplicate += 1;
                    "duplicate"
                }
            };
            log_event(webhook, &row, outcome);
            render::text(body, b"{\"event_id\":", event_id);
            render::uuid(body, b",\"order_id\":", &order_id);
            render::boolean(body, b",\"duplicate\":", code == DUPLICATE);
            render::boolean(body, b",\"applied\":", code == APPLIED);
            render::text(body, b",\"payment_status\":", payment_status);
            render::boolean(body, b",\"refund_required\":", refund_required);
            body.push(b'}');
            Ok(200)
        }
        _ => Err(malformed(Malformed)),
    }
}

/// `payment_event`: one line per event the database judged.
fn log_event(webhook: &Webhook, row: &WebhookRow<'_>, outcome: &str) {
    use log::Value as V;
    let mut order_id = Vec::with_capacity(36);
    if let Some(id) = &row.order_id {
        render::write_uuid(&mut order_id, id);
    }
    let status = match webhook.event {
        Ok(PaymentEvent {
            succeeded: true, ..
        }) => "succeeded",
        _ => "failed",
    };
    log::event(
        "payment_event",
        &[
            ("event_id", V::Str(row.event_id.unwrap_or_default())),
            (
                "order_id",
                V::Str(std::str::from_utf8(&order_id).unwrap_or_default()),
            ),
            ("status", V::Str(status)),
            ("outcome", V::Str(outcome)),
            ("payment_status", row.payment_status.map_or(V::Null, V::Str)),
            (
                "refund_required",
                V::Bool(row.refund_required.unwrap_or(false)),
            ),
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: &str = "54b40303-b83a-4c37-86ed-716e630e4337";

    fn signature_header() -> String {
        format!("sha256={}", "aB".repeat(32))
    }

    fn parsed(signature: Option<&str>, body: &str) -> Result<(Webhook, String), u16> {
        let mut scratch = String::new();
        parse(signature.map(str::as_bytes), body.as_bytes(), &mut scratch)
            .map(|(query, text)| match query {
                Query::PaymentWebhook(webhook) => (webhook, text.to_string()),
                other => panic!("{other:?}"),
            })
            .map_err(|refusal| refusal.status)
    }

    fn body(event_id: &str, order_id: &str, status: &str, occurred_at: &str) -> String {
        format!(
            r#"{{"event_id":{event_id},"order_id":{order_id},"status":{status},"occurred_at":{occurred_at},"extra":[1]}}"#
        )
    }

    fn valid() -> String {
        body(
            r#""evt_1""#,
            &format!("\"{ORDER}\""),
            r#""succeeded""#,
            r#""2026-12-01T10:00:00.123Z""#,
        )
    }

    #[test]
    fn signatures_are_sha256_hex() {
        let header = signature_header();
        let (webhook, event_id) = parsed(Some(&header), &valid()).unwrap();
        assert_eq!(webhook.signature, [0xab; 32]);
        assert_eq!(event_id, "evt_1");
        let event = webhook.event.unwrap();
        assert!(event.succeeded);
        let upper = format!("SHA256={}", "AB".repeat(32));
        assert!(parsed(Some(&upper), &valid()).is_ok());
        let bad = [
            String::new(),
            "sha256=".to_string(),
            format!("sha256={}", "ab".repeat(31)),
            format!("sha256={}", "ab".repeat(33)),
            format!("sha256={}g", "ab".repeat(31) + "a"),
            format!("sha1={}", "ab".repeat(32)),
            format!("sha256= {}", "ab".repeat(32)),
        ];
        for header in &bad {
            assert_eq!(parsed(Some(header), &valid()).unwrap_err(), 401, "{header}");
        }
        assert_eq!(parsed(None, &valid()).unwrap_err(), 401);
        // A bad header is a 401 even with a bad body.
        assert_eq!(parsed(None, "{").unwrap_err(), 401);
    }

    #[test]
    fn a_bad_body_waits_for_the_signature() {
        let header = signature_header();
        let order = format!("\"{ORDER}\"");
        let time = r#""2026-12-01T10:00:00Z""#;
        let long = format!("\"{}\"", "é".repeat(101));
        let rows: Vec<(String, &str)> = vec![
            ("{".into(), "invalid JSON: unexpected end of input"),
            ("[]".into(), "body must be a JSON object"),
            ("{}".into(), "event_id is required"),
            (body(r#""""#, &order, r#""failed""#, time), MSG_EVENT_ID),
            (body(&long, &order, r#""failed""#, time), MSG_EVENT_ID),
            (body("7", &order, r#""failed""#, time), MSG_EVENT_ID),
            (
                body(r#""a\u0000""#, &order, r#""failed""#, time),
                MSG_EVENT_ID_NUL,
            ),
            (body(r#""e""#, r#""x""#, r#""failed""#, time), MSG_ORDER_ID),
            (body(r#""e""#, &order, r#""refunded""#, time), MSG_STATUS),
            (body(r#""e""#, &order, r#""FAILED""#, time), MSG_STATUS),
            (
                body(r#""e""#, &order, r#""failed""#, r#""yesterday""#),
                MSG_OCCURRED_AT,
            ),
            (
                body(r#""e""#, &order, r#""failed""#, "null"),
                MSG_OCCURRED_AT,
            ),
        ];
        for (input, message) in rows {
            let (webhook, event_id) = parsed(Some(&header), &input).unwrap();
            assert_eq!(webhook.event, Err(message), "{input}");
            assert_eq!(event_id, "");
        }
        let max = format!("\"{}\"", "é".repeat(100));
        let (webhook, event_id) =
            parsed(Some(&header), &body(&max, &order, r#""failed""#, time)).unwrap();
        assert!(!webhook.event.unwrap().succeeded);
        assert_eq!(event_id, "é".repeat(100));
    }
}
