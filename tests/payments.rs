//! Payment webhooks (platform.md §3 and the holds contract), against the
//! real binary over raw HTTP: `POST /payments/webhook` absent without
//! `WEBHOOK_SECRET`, the `X-Signature` HMAC over the raw body (missing,
//! malformed, wrong or repeated: 401, also before a malformed body), the
//! body's validation (422), `payment_status` on every order, what each
//! event does (PAID, FAILED with the order cancelled and its stock back
//! once, duplicates, events out of order, refunds owed on cancelled
//! orders, unknown orders), every event stored for audit, failed payments
//! racing buyers' cancels across both servers, and the metrics and log.
//!
//! The tests share one stack (two servers with a webhook secret); each
//! creates its own products, orders and event ids. Signatures are computed
//! here with the hmac and sha2 crates over the exact bytes sent.

mod support;

use std::time::Duration;

use support::holds::{
    assert_error_message, assert_order_shape, assert_stored, assert_webhook_answer, consume,
    event_body, hmac_hex, log_events, new_event_id, order_column, order_id, outcome_series,
    place_hold, private_server, product, requests_series, run_refused, scrape, send_webhook,
    sha256_hex, signature, signed_webhook_request, stock_and_held, stored_events, summary,
    wait_for, webhook_request, webhook_stack, ORDER_KEYS, WEBHOOK_SECRET,
};
use support::race::race;
use support::sales::{
    assert_stock_equation, cancel, cancel_request, json_string, object, open_conns, order_body,
    place, ports, try_place, unique_customer,
};
use support::server::http::{request_bytes_with_headers, Conn, Response};
use support::server::json::{parse, Json};
use support::server::{new_uuid_v4, Stack};

const PRICE: i64 = 2500;
/// An order id that is a well-formed UUID and never an order.
const UNKNOWN_ORDER: &str = "00000000-0000-4000-8000-000000000000";
const CANCEL_RACE_EVENTS: usize = 20;
const CANCEL_RACE_ROUNDS: usize = 4;
const LOG_WAIT: Duration = Duration::from_secs(5);

/// A fixed time on 2030-06-01, `minute` minutes past 10:00 UTC.
fn at(minute: u32) -> String {
    format!("2030-06-01T10:{minute:02}:00Z")
}

/// A product with `stock` units and one order of `quantity` on it.
fn ordered(s: &Stack, conn: &mut Conn, stock: i64, quantity: i64) -> (i64, Json) {
    let product = product(s, PRICE, stock, "");
    let order = place(conn, product, &unique_customer("payer"), quantity);
    (product, order)
}

fn payment_of(conn: &mut Conn, order: &str) -> (String, String) {
    let view = conn.get(&format!("/orders/{order}")).json(200);
    assert_order_shape(&view);
    (
        view.get("status").as_str().to_owned(),
        view.get("payment_status").as_str().to_owned(),
    )
}

fn assert_invalid_signature(response: &Response, what: &str) {
    assert_eq!(response.status, 401, "{what}:\n{response}");
    let want = parse(br#"{"error":"invalid signature","reason":"invalid_signature"}"#).unwrap();
    assert_eq!(response.json(401), want, "{what}:\n{response}");
}

fn events_of_order(s: &Stack, order: &str) -> i64 {
    s.query_i64(&format!(
        "SELECT count(*) FROM payment_events WHERE order_id = '{order}'"
    ))
}

/// Sends the request bytes on `conn` and reads the answer.
fn send(conn: &mut Conn, bytes: &[u8]) -> Response {
    conn.send(bytes);
    conn.read_response()
}

// ---- enabled, signed ---------------------------------------------------------------------

#[test]
fn webhook_is_404_without_a_secret() {
    let s = webhook_stack();
    let mut c = s.conn();
    let (_, order) = ordered(&s, &mut c, 10, 1);
    let id = order_id(&order);
    for secret in [None, Some("")] {
        let env: Vec<(&str, &str)> = secret.map(|v| ("WEBHOOK_SECRET", v)).into_iter().collect();
        let server = private_server(&s, &env);
        let start = &log_events(&server, "start")[0];
        assert_eq!(
            start.get("webhooks"),
            &Json::Bool(false),
            "{secret:?}: {start}"
        );
        let mut conn = server.conn();
        let body = event_body(&new_event_id("off"), &id, "succeeded", &at(0));
        let signed = send(&mut conn, &signed_webhook_request(&body));
        assert_eq!(signed.status, 404, "secret {secret:?}:\n{signed}");
        assert_error_message(&signed, 404, "not found");
        let unsigned = send(&mut conn, &webhook_request(body.as_bytes(), &[]));
        assert_error_message(&unsigned, 404, "not found");
    }
    assert_eq!(events_of_order(&s, &id), 0, "nothing stored");
    assert_eq!(payment_of(&mut c, &id).1, "PENDING");
    // The stack's servers take webhooks, and never log the secret.
    for server in &s.servers {
        let start = &log_events(server, "start")[0];
        assert_eq!(start.get("webhooks"), &Json::Bool(true), "{start}");
        assert!(
            !server.stderr().contains(WEBHOOK_SECRET),
            "the secret is logged"
        );
    }
}

#[test]
fn missing_malformed_wrong_or_repeated_signatures_are_401() {
    let s = webhook_stack();
    let mut c = s.conn();
    let (product, order) = ordered(&s, &mut c, 10, 2);
    let id = order_id(&order);
    let event = new_event_id("sig");
    let body = event_body(&event, &id, "succeeded", &at(1));
    let good = hmac_hex(WEBHOOK_SECRET.as_bytes(), body.as_bytes());
    let other_body = hmac_hex(WEBHOOK_SECRET.as_bytes(), b"{}");
    let other_key = hmac_hex(b"another-secret-of-16+chars", body.as_bytes());
    let mut flipped = good.clone().into_bytes();
    flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
    let flipped = String::from_utf8(flipped).unwrap();
    let not_hex = format!("{}g{}", &good[..20], &good[21..]);
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("missing", vec![]),
        ("empty", vec![String::new()]),
        ("prefix alone", vec!["sha256=".to_owned()]),
        ("no prefix", vec![good.clone()]),
        ("another algorithm", vec![format!("sha1={good}")]),
        ("prefix without =", vec![format!("sha256{good}")]),
        ("a space inside", vec![format!("sha256= {good}")]),
        ("of another body", vec![format!("sha256={other_body}")]),
        ("under another key", vec![format!("sha256={other_key}")]),
        ("one digit changed", vec![format!("sha256={flipped}")]),
        ("not hex", vec![format!("sha256={not_hex}")]),
        ("truncated", vec![format!("sha256={}", &good[..62])]),
        ("too long", vec![format!("sha256={good}00")]),
        (
            "repeated, both right",
            vec![format!("sha256={good}"), format!("sha256={good}")],
        ),
        (
            "repeated, right first",
            vec![format!("sha256={good}"), format!("sha256={other_key}")],
        ),
        (
            "repeated, right last",
            vec![format!("sha256={other_key}"), format!("sha256={good}")],
        ),
    ];
    for (i, (what, signatures)) in cases.iter().enumerate() {
        let refs: Vec<&str> = signatures.iter().map(String::as_str).collect();
        let mut conn = Conn::open(ports(&s)[i % 2]);
        let response = send(&mut conn, &webhook_request(body.as_bytes(), &refs));
        assert_invalid_signature(&response, what);
    }
    assert!(
        stored_events(&s, &event).is_empty(),
        "no refused event stored"
    );
    assert_eq!(
        payment_of(&mut c, &id),
        ("CONFIRMED".into(), "PENDING".into())
    );

    // The right signature in uppercase hex passes.
    let upper = format!("sha256={}", good.to_uppercase());
    let response = send(&mut c, &webhook_request(body.as_bytes(), &[&upper]));
    assert_webhook_answer(&response, &event, &id, false, true, "PAID", false);
    // A header name in any case.
    let (_, second) = ordered(&s, &mut c, 10, 1);
    let second_id = order_id(&second);
    let event2 = new_event_id("sig-lower");
    let body2 = event_body(&event2, &second_id, "succeeded", &at(1));
    let request = request_bytes_with_headers(
        "POST",
        "/payments/webhook",
        &[("x-signature", &signature(body2.as_bytes()))],
        Some(body2.as_bytes()),
    );
    let response = send(&mut Conn::open(ports(&s)[1]), &request);
    assert_webhook_answer(&response, &event2, &second_id, false, true, "PAID", false);
    assert_eq!(stock_and_held(&s, product), (8, 0));
}

#[test]
fn a_bad_signature_is_401_even_when_the_body_is_malformed_too() {
    let s = webhook_stack();
    let mut c = s.conn();
    let wrong = format!("sha256={}", hmac_hex(b"not-the-webhook-secret", b"x"));
    for body in ["", "{", "[]", "not json", "{\"event_id\":\"\"}", "null"] {
        for signatures in [vec![], vec![wrong.as_str()]] {
            let response = send(&mut c, &webhook_request(body.as_bytes(), &signatures));
            assert_invalid_signature(&response, &format!("body {body:?}, {signatures:?}"));
        }
        // Signed right, the same body is judged: 422.
        let signed = signature(body.as_bytes());
        let response = send(&mut c, &webhook_request(body.as_bytes(), &[&signed]));
        assert_eq!(response.status, 422, "signed body {body:?}:\n{response}");
        response.error(422, None);
    }
}

/// An event body with `field` replaced by `raw` (None: left out).
fn event_body_with(order: &str, field: &str, raw: Option<&str>) -> String {
    let mut members = vec![
        ("event_id", json_string(&new_event_id("bad"))),
        ("order_id", json_string(order)),
        ("status", json_string("failed")),
        ("occurred_at", json_string(&at(2))),
    ];
    assert!(members.iter().any(|(k, _)| *k == field), "no field {field}");
    members.retain(|(k, _)| *k != field);
    if let Some(raw) = raw {
        members.push((field, raw.to_owned()));
    }
    object(&members)
}

#[test]
fn a_malformed_body_with_a_valid_signature_is_422_naming_the_field() {
    let s = webhook_stack();
    let mut c = s.conn();
    let (product, order) = ordered(&s, &mut c, 10, 2);
    let id = order_id(&order);
    let v4 = new_uuid_v4();
    let field_rows: Vec<(&str, Option<String>)> = vec![
        ("event_id", Some("\"\"".to_owned())),
        ("event_id", Some(json_string(&"e".repeat(101)))),
        ("event_id", Some(json_string(&"é".repeat(101)))),
        ("event_id", Some("42".to_owned())),
        ("event_id", Some("null".to_owned())),
        ("event_id", None),
        ("order_id", Some("\"abc\"".to_owned())),
        ("order_id", Some("\"\"".to_owned())),
        ("order_id", Some(json_string(&format!("{v4}0")))),
        ("order_id", Some(json_string(&v4[..35]))),
        ("order_id", Some("42".to_owned())),
        ("order_id", None),
        ("status", Some("\"pending\"".to_owned())),
        ("status", Some("\"SUCCEEDED\"".to_owned())),
        ("status", Some("\"Failed\"".to_owned())),
        ("status", Some("\"\"".to_owned())),
        ("status", Some("true".to_owned())),
        ("status", None),
        ("occurred_at", Some("\"yesterday\"".to_owned())),
        ("occurred_at", Some("\"2030-13-01T00:00:00Z\"".to_owned())),
        ("occurred_at", Some("\"2030-06-31T00:00:00Z\"".to_owned())),
        ("occurred_at", Some("\"2030-06-01T10:00:00\"".to_owned())),
        ("occurred_at", Some("\"2030-06-01\"".to_owned())),
        ("occurred_at", Some("\"\"".to_owned())),
        ("occurred_at", Some("1900000000".to_owned())),
        ("occurred_at", None),
    ];
    let mut rows: Vec<(String, Option<&str>)> = field_rows
        .iter()
        .map(|(field, raw)| (event_body_with(&id, field, raw.as_deref()), Some(*field)))
        .collect();
    let valid = event_body_with(&id, "status", Some("\"failed\""));
    for not_an_object in [
        "[]".to_owned(),
        "1".to_owned(),
        "null".to_owned(),
        "\"x\"".to_owned(),
        "{".to_owned(),
        String::new(),
        format!("[{valid}]"),
        format!("{valid}x"),
    ] {
        rows.push((not_an_object, None));
    }
    for (i, (body, field)) in rows.iter().enumerate() {
        let mut conn = Conn::open(ports(&s)[i % 2]);
        let response = send(&mut conn, &signed_webhook_request(body));
        assert_eq!(response.status, 422, "signed body {body}:\n{response}");
        response.error(422, *field);
    }
    assert_eq!(events_of_order(&s, &id), 0, "nothing stored");
    assert_eq!(
        payment_of(&mut c, &id),
        ("CONFIRMED".into(), "PENDING".into())
    );
    assert_eq!(stock_and_held(&s, product), (8, 0));
}

#[test]
fn bodies_at_the_bounds_are_accepted() {
    let s = webhook_stack();
    let mut c = s.conn();
    // 100 characters (200 bytes), a UUID of another version for an order
    // that does not exist: past validation, 404.
    let long = "é".repeat(100);
    let v1 = "6ba7b810-9dad-11d1-80b4-00c04fd430c8";
    let body = event_body(&long, v1, "succeeded", &at(3));
    let response = send(&mut c, &signed_webhook_request(&body));
    assert_eq!(response.status, 404, "{response}");
    assert_error_message(&response, 404, "order not found");
    // One character; the order id in uppercase; a time with an offset and
    // fractions; unknown members, nested.
    let (_, order) = ordered(&s, &mut c, 10, 1);
    let id = order_id(&order);
    // (A one-character id is this test's alone: no other test uses one.)
    let unique = new_event_id("bounds");
    for (event_id, order_text) in [("x", id.to_uppercase()), (unique.as_str(), id.clone())] {
        let body = object(&[
            ("provider", "{\"name\":\"psp\",\"tries\":[1,2]}".to_owned()),
            ("event_id", json_string(event_id)),
            ("order_id", json_string(&order_text)),
            ("status", json_string("succeeded")),
            ("occurred_at", json_string("2030-06-01T12:04:05.123+02:00")),
            ("amount", "2500".to_owned()),
        ]);
        let response = send(&mut c, &signed_webhook_request(&body));
        let answer = response.json(200);
        assert_eq!(answer.get("event_id").as_str(), event_id, "{answer}");
        assert!(
            answer.get("order_id").as_str().eq_ignore_ascii_case(&id),
            "{answer}"
        );
        assert_eq!(answer.get("payment_status").as_str(), "PAID", "{answer}");
    }
    // The offset was understood: 10:04:05.123 UTC.
    let stored = order_column(&s, &id, "extract(epoch FROM payment_updated_at)");
    let want = s
        .cluster
        .psql("SELECT extract(epoch FROM '2030-06-01T10:04:05.123Z'::timestamptz)");
    assert_eq!(stored, want, "payment_updated_at");
}

// ---- payment_status on orders --------------------------------------------------------------

#[test]
fn every_order_shows_payment_status_pending_from_creation() {
    let s = webhook_stack();
    let mut c = s.conn();
    let product = product(&s, PRICE, 20, "");
    let customer = unique_customer("pending");
    let key = new_uuid_v4();
    let placed = c
        .post("/orders", &order_body(product, &key, &customer, 2))
        .json(201);
    assert_order_shape(&placed);
    assert_eq!(placed.keys(), ORDER_KEYS);
    assert_eq!(placed.get("payment_status").as_str(), "PENDING");
    let replay = c
        .post("/orders", &order_body(product, &key, &customer, 2))
        .json(200);
    assert_eq!(replay, placed);
    let id = order_id(&placed);
    for port in ports(&s) {
        let fetched = Conn::open(port).get(&format!("/orders/{id}")).json(200);
        assert_eq!(fetched.keys(), ORDER_KEYS);
        assert_eq!(fetched, placed);
    }
    // Bought from a hold, too; cancelled, still PENDING.
    let hold = place_hold(&mut c, product, &customer, 1);
    let bought = consume(&mut c, &support::holds::hold_id(&hold), &customer);
    assert_eq!(bought.get("payment_status").as_str(), "PENDING");
    let cancelled = place(&mut c, product, &customer, 1);
    cancel(&mut c, &order_id(&cancelled));
    assert_eq!(
        payment_of(&mut c, &order_id(&cancelled)),
        ("CANCELLED".into(), "PENDING".into())
    );

    let by_product = c.get(&format!("/orders?product_id={product}")).json(200);
    let mut product_keys = vec![
        "order_id",
        "id",
        "customer_id",
        "quantity",
        "total_price",
        "status",
        "created_at",
    ];
    product_keys.push("payment_status");
    let entries = by_product.get("orders").as_array();
    assert_eq!(entries.len(), 3, "{by_product}");
    for entry in entries {
        assert_eq!(entry.keys(), product_keys, "{entry}");
        assert_eq!(entry.get("payment_status").as_str(), "PENDING", "{entry}");
    }
    let by_customer = c.get(&format!("/orders?customer_id={customer}")).json(200);
    // Spelled out here: the customer listing's entries plus payment_status.
    let customer_keys = [
        "order_id",
        "id",
        "product_id",
        "customer_id",
        "quantity",
        "total_price",
        "status",
        "created_at",
        "payment_status",
    ];
    let entries = by_customer.get("orders").as_array();
    assert_eq!(entries.len(), 3, "{by_customer}");
    for entry in entries {
        assert_eq!(entry.keys(), customer_keys, "{entry}");
        assert_eq!(entry.get("payment_status").as_str(), "PENDING", "{entry}");
    }
    let row = s.query_i64(&format!(
        "SELECT count(*) FROM orders WHERE product_id = {product} \
         AND payment_status = 'PENDING' AND payment_updated_at IS NULL"
    ));
    assert_eq!(row, 3);
}

// ---- what events do --------------------------------------------------------------------------

#[test]
fn succeeded_marks_a_pending_order_paid_and_is_stored_as_sent() {
    let s = webhook_stack();
    let mut c = s.conn();
    let (product, order) = ordered(&s, &mut c, 10, 2);
    let id = order_id(&order);
    let event = new_event_id("paid");
    // Whitespace and an unknown member: the stored payload is these bytes.
    let body = format!(
        "{{ \"event_id\": \"{event}\",\n  \"order_id\": \"{id}\", \"status\": \"succeeded\",\n  \
         \"occurred_at\": \"{}\", \"provider\": {{\"attempt\": 1}} }}",
        at(5)
    );
    let response = send_webhook(&mut c, &body);
    assert_webhook_answer(&response, &event, &id, false, true, "PAID", false);
    for port in ports(&s) {
        let view = Conn::open(port).get(&format!("/orders/{id}")).json(200);
        assert_eq!(view.get("payment_status").as_str(), "PAID", "{view}");
        assert_eq!(view.get("status").as_str(), "CONFIRMED", "{view}");
    }
    assert_eq!(stock_and_held(&s, product), (8, 0), "stock untouched");
    let updated = s.cluster.psql(&format!(
        "SELECT payment_updated_at = '{}'::timestamptz FROM orders WHERE id = '{id}'",
        at(5)
    ));
    assert_eq!(
        updated, "t",
        "payment_updated_at is the event's occurred_at"
    );
    assert_stored(&s, &event, &body, &["applied"]);
    let row = &stored_events(&s, &event)[0];
    assert_eq!(row.order_id, id);
    assert_eq!(row.status, "succeeded");
    assert_eq!(row.refund_required, "false");
    assert_stock_equation(&s, product);
}

#[test]
fn a_duplicate_event_id_is_200_duplicate_and_changes_nothing() {
    let s = webhook_stack();
    let mut c = s.conn();
    let (product, order) = ordered(&s, &mut c, 10, 2);
    let (_, other) = ordered(&s, &mut c, 10, 1);
    let (id, other_id) = (order_id(&order), order_id(&other));
    let event = new_event_id("dup");
    let body = event_body(&event, &id, "succeeded", &at(6));
    assert_webhook_answer(
        &send_webhook(&mut c, &body),
        &event,
        &id,
        false,
        true,
        "PAID",
        false,
    );
    // The same body again, on the other server.
    let mut second = s.servers[1].conn();
    let again = send_webhook(&mut second, &body);
    assert_webhook_answer(&again, &event, &id, true, false, "PAID", false);
    // The same id with another body: still the original event's order.
    let other_body = event_body(&event, &other_id, "failed", &at(7));
    let again = send_webhook(&mut second, &other_body);
    assert_webhook_answer(&again, &event, &id, true, false, "PAID", false);
    assert_eq!(payment_of(&mut c, &id), ("CONFIRMED".into(), "PAID".into()));
    assert_eq!(
        payment_of(&mut c, &other_id),
        ("CONFIRMED".into(), "PENDING".into())
    );
    assert_eq!(stock_and_held(&s, product), (8, 0));
    // Each arrival is stored as it came: the payload of each, as sent.
    let rows = stored_events(&s, &event);
    let outcomes: Vec<&str> = rows.iter().map(|r| r.outcome.as_str()).collect();
    assert_eq!(outcomes, ["applied", "duplicate", "duplicate"], "{rows:?}");
    let sent = [&body, &body, &other_body].map(|b| sha256_hex(b.as_bytes()));
    let stored: Vec<&str> = rows.iter().map(|r| r.payload_sha256.as_str()).collect();
    assert_eq!(stored, sent, "payloads of {rows:?}");

    // A not-applied event, repeated, is a duplicate too.
    let late = new_event_id("dup-late");
    let late_body = event_body(&late, &id, "failed", &at(8));
    let answer = send_webhook(&mut c, &late_body);
    assert_webhook_answer(&answer, &late, &id, false, false, "PAID", false);
    let answer = send_webhook(&mut second, &late_body);
    assert_webhook_answer(&answer, &late, &id, true, false, "PAID", false);
    assert_stored(&s, &late, &late_body, &["not_applied", "duplicate"]);
    assert_eq!(payment_of(&mut c, &id), ("CONFIRMED".into(), "PAID".into()));
    assert_stock_equation(&s, product);
}

#[test]
fn failed_then_an_older_succeeded_stays_failed() {
    let s = webhook_stack();
    let mut c = s.conn();
    let (product, order) = ordered(&s, &mut c, 10, 2);
    let id = order_id(&order);
    let failed = new_event_id("fail");
    let body = event_body(&failed, &id, "failed", &at(30));
    assert_webhook_answer(
        &send_webhook(&mut c, &body),
        &failed,
        &id,
        false,
        true,
        "FAILED",
        false,
    );
    assert_eq!(
        payment_of(&mut c, &id),
        ("CANCELLED".into(), "FAILED".into())
    );
    assert_eq!(stock_and_held(&s, product), (10, 0), "stock back");
    // Older, then newer: neither changes a final FAILED.
    for minute in [0, 45] {
        let event = new_event_id("late-success");
        let body = event_body(&event, &id, "succeeded", &at(minute));
        let answer = send_webhook(&mut s.servers[1].conn(), &body);
        assert_webhook_answer(&answer, &event, &id, false, false, "FAILED", false);
        assert_stored(&s, &event, &body, &["not_applied"]);
    }
    assert_eq!(
        payment_of(&mut c, &id),
        ("CANCELLED".into(), "FAILED".into())
    );
    let updated = s.cluster.psql(&format!(
        "SELECT payment_updated_at = '{}'::timestamptz FROM orders WHERE id = '{id}'",
        at(30)
    ));
    assert_eq!(
        updated, "t",
        "payment_updated_at is the applied event's time"
    );
    assert_eq!(stock_and_held(&s, product), (10, 0));
    assert_stock_equation(&s, product);
}

#[test]
fn succeeded_then_failed_stays_paid() {
    let s = webhook_stack();
    let mut c = s.conn();
    let (product, order) = ordered(&s, &mut c, 10, 3);
    let id = order_id(&order);
    let paid = new_event_id("pay");
    let body = event_body(&paid, &id, "succeeded", &at(10));
    assert_webhook_answer(
        &send_webhook(&mut c, &body),
        &paid,
        &id,
        false,
        true,
        "PAID",
        false,
    );
    let failed = new_event_id("fail-late");
    let body = event_body(&failed, &id, "failed", &at(20));
    let answer = send_webhook(&mut c, &body);
    assert_webhook_answer(&answer, &failed, &id, false, false, "PAID", false);
    assert_eq!(payment_of(&mut c, &id), ("CONFIRMED".into(), "PAID".into()));
    assert_eq!(stock_and_held(&s, product), (7, 0), "no stock back");
    assert_stored(&s, &failed, &body, &["not_applied"]);
    assert_stock_equation(&s, product);
}

#[test]
fn failed_payment_cancels_a_confirmed_order_and_frees_its_stock_and_limit() {
    let s = webhook_stack();
    let mut c = s.conn();
    let product = product(&s, PRICE, 10, "per_customer_limit = 3");
    let customer = unique_customer("declined");
    let order = place(&mut c, product, &customer, 3);
    let id = order_id(&order);
    try_place(&mut c, product, &customer, 1).error_reason(409, "customer_limit_reached");
    let event = new_event_id("declined");
    let body = event_body(&event, &id, "failed", &at(12));
    assert_webhook_answer(
        &send_webhook(&mut c, &body),
        &event,
        &id,
        false,
        true,
        "FAILED",
        false,
    );
    assert_eq!(stock_and_held(&s, product), (10, 0));
    assert_eq!(order_column(&s, &id, "status"), "CANCELLED");
    // The buyer's cancel now finds it cancelled, on either server.
    for port in ports(&s) {
        let mut conn = Conn::open(port);
        conn.send(&cancel_request(&id));
        conn.read_response().error_reason(409, "already_cancelled");
    }
    assert_eq!(stock_and_held(&s, product), (10, 0), "restored once");
    // The cancelled order no longer counts toward the limit.
    place(&mut c, product, &customer, 3);
    assert_stock_equation(&s, product);
}

#[test]
fn failed_payment_of_an_order_bought_from_a_hold_returns_its_units_to_current_stock() {
    let s = webhook_stack();
    let mut c = s.conn();
    let product = product(&s, PRICE, 10, "");
    let customer = unique_customer("held-declined");
    let hold = place_hold(&mut c, product, &customer, 2);
    let order = consume(&mut c, &support::holds::hold_id(&hold), &customer);
    assert_eq!(stock_and_held(&s, product), (8, 0));
    let id = order_id(&order);
    let event = new_event_id("held-declined");
    let body = event_body(&event, &id, "failed", &at(13));
    assert_webhook_answer(
        &send_webhook(&mut c, &body),
        &event,
        &id,
        false,
        true,
        "FAILED",
        false,
    );
    assert_eq!(stock_and_held(&s, product), (10, 0));
    assert_stock_equation(&s, product);
}

#[test]
fn succeeded_on_a_buyer_cancelled_order_is_paid_and_owes_a_refund() {
    let s = webhook_stack();
    let mut c = s.conn();
    let (product, order) = ordered(&s, &mut c, 10, 2);
    let id = order_id(&order);
    cancel(&mut c, &id);
    assert_eq!(stock_and_held(&s, product), (10, 0));
    let event = new_event_id("refund");
    let body = event_body(&event, &id, "succeeded", &at(14));
    let answer = send_webhook(&mut c, &body);
    assert_webhook_answer(&answer, &event, &id, false, true, "PAID", true);
    assert_eq!(payment_of(&mut c, &id), ("CANCELLED".into(), "PAID".into()));
    assert_eq!(stock_and_held(&s, product), (10, 0), "no second movement");
    assert_stored(&s, &event, &body, &["applied"]);
    assert_eq!(stored_events(&s, &event)[0].refund_required, "true");
    // The log says a refund is owed.
    wait_for("a payment_event line for the refund", LOG_WAIT, || {
        s.servers[0]
            .stderr()
            .lines()
            .any(|line| line.contains(&event))
    });
    let logged: Vec<Json> = log_events(&s.servers[0], "payment_event")
        .into_iter()
        .filter(|e| e.get("event_id").as_str() == event)
        .collect();
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(
        logged[0].get("refund_required"),
        &Json::Bool(true),
        "{}",
        logged[0]
    );
    assert_eq!(
        logged[0].get("outcome").as_str(),
        "applied",
        "{}",
        logged[0]
    );

    // Failed on a cancelled order: FAILED, and no stock comes back twice.
    let (product, order) = ordered(&s, &mut c, 10, 2);
    let id = order_id(&order);
    cancel(&mut c, &id);
    let event = new_event_id("cancelled-declined");
    let body = event_body(&event, &id, "failed", &at(15));
    assert_webhook_answer(
        &send_webhook(&mut c, &body),
        &event,
        &id,
        false,
        true,
        "FAILED",
        false,
    );
    assert_eq!(
        payment_of(&mut c, &id),
        ("CANCELLED".into(), "FAILED".into())
    );
    assert_eq!(stock_and_held(&s, product), (10, 0));
    assert_stock_equation(&s, product);
}

#[test]
fn an_unknown_order_is_404_stored_and_a_retry_is_404_again() {
    let s = webhook_stack();
    let random = new_uuid_v4();
    for order in [UNKNOWN_ORDER, random.as_str()] {
        let event = new_event_id("nobody");
        let body = event_body(&event, order, "succeeded", &at(16));
        for port in ports(&s) {
            let response = send(&mut Conn::open(port), &signed_webhook_request(&body));
            assert_eq!(response.status, 404, "{response}");
            assert_error_message(&response, 404, "order not found");
        }
        assert_stored(&s, &event, &body, &["unknown_order", "unknown_order"]);
        assert_eq!(stored_events(&s, &event)[0].order_id, order);
    }
}

// ---- concurrency -----------------------------------------------------------------------------

#[test]
fn twenty_failed_events_and_buyer_cancels_of_one_order_restore_stock_once() {
    let s = webhook_stack();
    let mut conns = open_conns(&ports(&s), 2 * CANCEL_RACE_EVENTS);
    for round in 0..CANCEL_RACE_ROUNDS {
        let (product, order) = ordered(&s, &mut conns[0], 10, 3);
        let id = order_id(&order);
        let requests: Vec<Vec<u8>> = (0..2 * CANCEL_RACE_EVENTS)
            .map(|i| {
                if i % 2 == 0 {
                    let body = event_body(&new_event_id("race"), &id, "failed", &at(i as u32));
                    signed_webhook_request(&body)
                } else {
                    cancel_request(&id)
                }
            })
            .collect();
        let responses = race(&mut conns, &requests);
        let all: Vec<&Response> = responses.iter().collect();
        let what = format!("round {round}: {}", summary(&all));
        let mut applied = 0;
        let mut cancelled = 0;
        for (i, response) in responses.iter().enumerate() {
            if i % 2 == 0 {
                let answer = response.json(200);
                assert_eq!(
                    answer.get("payment_status").as_str(),
                    "FAILED",
                    "{what}: {answer}"
                );
                if answer.get("applied") == &Json::Bool(true) {
                    applied += 1;
                }
            } else if response.status == 200 {
                assert_eq!(response.json(200).get("restored_quantity").as_i64(), 3);
                cancelled += 1;
            } else {
                response.error_reason(409, "already_cancelled");
            }
        }
        // The first failed event applies whether or not a cancel came first;
        // the units come back once, through the cancel or the event.
        assert_eq!(applied, 1, "{what}");
        assert!(cancelled <= 1, "{what}");
        assert_eq!(stock_and_held(&s, product), (10, 0), "{what}");
        assert_eq!(order_column(&s, &id, "status"), "CANCELLED");
        assert_eq!(order_column(&s, &id, "payment_status"), "FAILED");
        assert_eq!(
            events_of_order(&s, &id),
            CANCEL_RACE_EVENTS as i64,
            "every event stored"
        );
        assert_stock_equation(&s, product);
    }
}

#[test]
fn succeeded_and_failed_events_of_one_order_at_once_apply_exactly_one() {
    let s = webhook_stack();
    let mut conns = open_conns(&ports(&s), CANCEL_RACE_EVENTS);
    for round in 0..CANCEL_RACE_ROUNDS {
        let (product, order) = ordered(&s, &mut conns[0], 10, 3);
        let id = order_id(&order);
        let requests: Vec<Vec<u8>> = (0..CANCEL_RACE_EVENTS)
            .map(|i| {
                let status = if i % 2 == 0 { "succeeded" } else { "failed" };
                signed_webhook_request(&event_body(&new_event_id("both"), &id, status, &at(40)))
            })
            .collect();
        let responses = race(&mut conns, &requests);
        let all: Vec<&Response> = responses.iter().collect();
        let what = format!("round {round}: {}", summary(&all));
        let answers: Vec<Json> = responses.iter().map(|r| r.json(200)).collect();
        let applied: Vec<usize> = (0..answers.len())
            .filter(|&i| answers[i].get("applied") == &Json::Bool(true))
            .collect();
        assert_eq!(applied.len(), 1, "{what}");
        let final_status = if applied[0].is_multiple_of(2) {
            "PAID"
        } else {
            "FAILED"
        };
        for answer in &answers {
            assert_eq!(
                answer.get("payment_status").as_str(),
                final_status,
                "{what}"
            );
        }
        let (order_status, stock) = if final_status == "PAID" {
            ("CONFIRMED", 7)
        } else {
            ("CANCELLED", 10)
        };
        assert_eq!(order_column(&s, &id, "payment_status"), final_status);
        assert_eq!(order_column(&s, &id, "status"), order_status, "{what}");
        assert_eq!(stock_and_held(&s, product), (stock, 0), "{what}");
        assert_stock_equation(&s, product);
    }
}

// ---- metrics, the log, settings -----------------------------------------------------------

#[test]
fn webhook_metrics_and_log_count_each_outcome() {
    let s = webhook_stack();
    let server = private_server(&s, &[("WEBHOOK_SECRET", WEBHOOK_SECRET)]);
    let mut c = server.conn();
    let (_, order) = ordered(&s, &mut c, 10, 1);
    let id = order_id(&order);
    let paid = new_event_id("m-paid");
    let paid_body = event_body(&paid, &id, "succeeded", &at(50));
    let late = new_event_id("m-late");
    let unknown = new_event_id("m-unknown");
    send_webhook(&mut c, &paid_body).json(200);
    send_webhook(&mut c, &event_body(&late, &id, "failed", &at(51))).json(200);
    send_webhook(&mut c, &paid_body).json(200);
    send_webhook(
        &mut c,
        &event_body(&unknown, UNKNOWN_ORDER, "failed", &at(52)),
    )
    .error(404, None);
    let wrong = send(
        &mut c,
        &webhook_request(paid_body.as_bytes(), &["sha256=00"]),
    );
    assert_invalid_signature(&wrong, "wrong signature");
    send_webhook(&mut c, "[]").error(422, None);

    let m = scrape(&mut c);
    let get = |series: &str| m.get(series).copied().unwrap_or(0.0);
    for outcome in [
        "applied",
        "not_applied",
        "duplicate",
        "unknown_order",
        "invalid_signature",
        "invalid",
    ] {
        assert_eq!(
            get(&outcome_series("flashsale_webhooks_total", outcome)),
            1.0,
            "flashsale_webhooks_total{{outcome={outcome:?}}}"
        );
    }
    for (status, want) in [(200, 3.0), (404, 1.0), (401, 1.0), (422, 1.0)] {
        assert_eq!(
            get(&requests_series("payment_webhook", status)),
            want,
            "payment_webhook {status}"
        );
    }

    wait_for("four payment_event lines", LOG_WAIT, || {
        log_events(&server, "payment_event").len() >= 4
    });
    let logged = log_events(&server, "payment_event");
    let outcomes: Vec<&str> = logged.iter().map(|e| e.get("outcome").as_str()).collect();
    assert_eq!(
        outcomes,
        ["applied", "not_applied", "duplicate", "unknown_order"],
        "{logged:?}"
    );
    for event in &logged {
        for key in [
            "event_id",
            "order_id",
            "status",
            "outcome",
            "payment_status",
            "refund_required",
        ] {
            assert!(event.try_get(key).is_some(), "{key} in {event}");
        }
    }
    let first = &logged[0];
    assert_eq!(first.get("event_id").as_str(), paid, "{first}");
    assert_eq!(first.get("order_id").as_str(), id, "{first}");
    assert_eq!(first.get("status").as_str(), "succeeded", "{first}");
    assert_eq!(first.get("payment_status").as_str(), "PAID", "{first}");
    assert_eq!(first.get("refund_required"), &Json::Bool(false), "{first}");
    assert_eq!(logged[3].get("event_id").as_str(), unknown);
    assert!(
        !server.stderr().contains(WEBHOOK_SECRET),
        "the secret is logged"
    );
}

#[test]
fn webhook_secrets_of_16_and_256_printable_characters_are_accepted() {
    let s = webhook_stack();
    let sixteen = "!#$%&()*+,-./0~Z";
    let long = "k".repeat(256);
    for secret in [sixteen, long.as_str()] {
        assert!(secret.len() == 16 || secret.len() == 256);
        let server = private_server(&s, &[("WEBHOOK_SECRET", secret)]);
        let mut c = server.conn();
        let body = event_body(&new_event_id("key"), UNKNOWN_ORDER, "succeeded", &at(55));
        let signed = format!("sha256={}", hmac_hex(secret.as_bytes(), body.as_bytes()));
        let response = send(&mut c, &webhook_request(body.as_bytes(), &[&signed]));
        assert_eq!(
            response.status,
            404,
            "secret of {} chars:\n{response}",
            secret.len()
        );
        // Our usual secret is not this server's.
        let response = send(&mut c, &signed_webhook_request(&body));
        assert_invalid_signature(&response, "signed with another secret");
    }
}

#[test]
fn bad_webhook_secrets_refuse_to_start_naming_the_variable() {
    let long = "k".repeat(257);
    let short = "k".repeat(15);
    let umlauts = "ü".repeat(20);
    for value in [
        short.as_str(),
        long.as_str(),
        "has a space in the middle",
        "tab\tinside-the-secret",
        umlauts.as_str(),
    ] {
        let (status, stderr) = run_refused(&[("WEBHOOK_SECRET", value)]);
        assert_eq!(
            status.code(),
            Some(2),
            "WEBHOOK_SECRET={value:?}: {status}\n{stderr}"
        );
        assert!(
            stderr.contains("WEBHOOK_SECRET"),
            "WEBHOOK_SECRET={value:?}: stderr names it:\n{stderr}"
        );
    }
}
