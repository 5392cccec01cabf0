//! Holds (platform.md §2 and the holds contract), against the real binary
//! over raw HTTP: `POST /holds` (the hold object, units moving from
//! `current_stock` to `held_stock` at once, replays, the order's validation
//! and refusals, the per-customer limit counting live holds and confirmed
//! orders, also under concurrency across both servers), `GET /holds/{id}`,
//! releases, buying a hold with `POST /orders`, and expiry: past-due holds
//! met by a request before any sweep, holds swept by both servers, buys
//! racing the expiry, and a randomized mix of everything with payments.
//! After each test the stock equation holds:
//! `initial_stock = current_stock + held_stock + Σ CONFIRMED quantity`.
//!
//! The tests share a few stacks (two servers each), told apart by the hold
//! lifetime and the sweep interval: "lasting" (holds live an hour, no sweep
//! for a minute) and "short" (holds live a second, both servers sweep every
//! 100 ms). A test that needs a past-due hold to stay HELD until a request
//! meets it starts an "unswept" stack of its own (holds live a second, the
//! first sweep comes a minute after the servers start). Each test creates its
//! own products and customers, so they never see each other's stock.

mod support;

use std::collections::BTreeMap;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::holds::{
    assert_error_message, assert_hold_accounting, assert_hold_shape, assert_order_shape, consume,
    consume_body, consume_request, event_body, figures, get_hold, hold_body, hold_column, hold_id,
    hold_request, hold_rows, hold_status_in_db, lasting_stack, log_events, metric, new_event_id,
    order_column, order_id, orders_of_hold, outcome_of, outcome_series, place_hold, private_server,
    product, release, release_path, release_request, requests_series, run_refused, scrape,
    short_stack, signed_webhook_request, sql_customer, stock_and_held, summary, try_consume,
    try_hold, try_release, unswept_stack, wait_for, wait_past_due, RELEASE_KEYS, UNKNOWN_ID,
};
use support::race::{join, race};
use support::sales::{
    admin, assert_stock_equation, cancel, db_now_s, json_string, object, open_conns, order_body,
    order_request, parse_utc, place, ports, set_sale, try_place, unique_customer, UNKNOWN_PRODUCT,
};
use support::server::http::{request_bytes, Conn, Response};
use support::server::json::{parse, Json};
use support::server::{new_uuid_v4, Stack};

const PRICE: i64 = 650;
/// The lasting stack's hold lifetime.
const LASTING_TTL_S: f64 = 3600.0;
/// Clients of one customer (or one hold) fired at once.
const SAME_TARGET_CLIENTS: usize = 50;
const SAME_TARGET_ROUNDS: usize = 3;
/// How long a one-second hold may take to go past due, with slack.
const PAST_DUE_WAIT: Duration = Duration::from_secs(10);
/// How long the sweeps may take to expire everything past due.
const SWEEP_WAIT: Duration = Duration::from_secs(15);
const EXPIRY_HOLDS: usize = 200;
const RACING_HOLDS: usize = 40;
/// Buys are sent from this far before a hold's expiry to this far after.
const RACE_FIRST_OFFSET_MS: i64 = -300;
const RACE_LAST_OFFSET_MS: i64 = 150;
/// A buy sent this long after the expiry (by the same clock the database
/// uses) must find the hold past due.
const CERTAINLY_LATE_MS: i64 = 30;
const MIXED_WORKERS: usize = 6;
const MIXED_OPS_PER_WORKER: usize = 45;

fn hold_ids(holds: &[Json]) -> Vec<String> {
    holds.iter().map(hold_id).collect()
}

fn now_unix_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// A refused hold: 409 with exactly this reason; no hold stored, no stock
/// moved. The same order gets the same refusal.
fn assert_hold_refused(
    s: &Stack,
    conn: &mut Conn,
    product: i64,
    customer: &str,
    quantity: i64,
    want: &str,
) {
    let (before, rows) = (figures(s, product), hold_rows(s, product));
    let response = try_hold(conn, product, customer, quantity);
    assert_eq!(
        response.status, 409,
        "hold of {quantity} of {product} by {customer:?}: want 409 {want}, got:\n{response}"
    );
    response.error_reason(409, want);
    let order = try_place(conn, product, customer, quantity);
    assert_eq!(
        order.status, 409,
        "the same order: want 409 {want}, got:\n{order}"
    );
    order.error_reason(409, want);
    assert_eq!(figures(s, product), before, "a refusal moves no stock");
    assert_eq!(hold_rows(s, product), rows, "a refused hold stores nothing");
}

/// Every member of `b` equals `a`'s but `status` and `order_id`.
fn assert_same_hold(a: &Json, b: &Json) {
    for key in [
        "hold_id",
        "product_id",
        "customer_id",
        "quantity",
        "unit_price",
        "expires_at",
        "created_at",
    ] {
        assert_eq!(a.get(key), b.get(key), "{key} of {b} (was {a})");
    }
}

fn with_status(hold: &Json, status: &str) -> Json {
    let Json::Object(members) = hold else {
        panic!("not an object: {hold}");
    };
    let members = members
        .iter()
        .map(|(k, v)| {
            let v = if k == "status" {
                Json::Str(status.to_owned())
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect();
    Json::Object(members)
}

// ---- POST /holds ---------------------------------------------------------------------

#[test]
fn hold_is_201_with_the_hold_object_and_moves_units_to_held_stock_at_once() {
    let s = lasting_stack();
    let product = product(&s, 750, 10, "");
    let customer = unique_customer("hold");
    let key = new_uuid_v4();
    let mut c = s.conn();
    let before = db_now_s(&s);
    let hold = c
        .post("/holds", &hold_body(product, &key, &customer, 3))
        .json(201);
    let after = db_now_s(&s);
    assert_hold_shape(&hold);
    assert_eq!(hold.get("product_id").as_i64(), product, "{hold}");
    assert_eq!(hold.get("customer_id").as_str(), customer, "{hold}");
    assert_eq!(hold.get("quantity").as_i64(), 3, "{hold}");
    assert_eq!(hold.get("unit_price").as_i64(), 750, "{hold}");
    assert_eq!(hold.get("status").as_str(), "HELD", "{hold}");
    assert_eq!(hold.get("order_id"), &Json::Null, "{hold}");
    // Times by the database's clock; the lifetime is the configured TTL.
    let created = parse_utc(hold.get("created_at").as_str()).expect("created_at");
    let expires = parse_utc(hold.get("expires_at").as_str()).expect("expires_at");
    assert!(
        created >= before - 0.001 && created <= after + 0.001,
        "created_at {created} not within the database's clock [{before}, {after}]"
    );
    assert!(
        (expires - created - LASTING_TTL_S).abs() < 0.5,
        "expires_at - created_at = {} s, want the TTL {LASTING_TTL_S} s",
        expires - created
    );

    // At once: no sweep or later step moves the units.
    assert_eq!(stock_and_held(&s, product), (7, 3));
    let id = hold_id(&hold);
    let row = s.cluster.psql(&format!(
        "SELECT idempotency_key || '|' || product_id || '|' || customer_id || '|' || quantity \
         || '|' || unit_price || '|' || status || '|' || (ended_at IS NULL) || '|' || \
         (order_id IS NULL) FROM holds WHERE id = '{id}'"
    ));
    assert_eq!(
        row,
        format!("{key}|{product}|{customer}|3|750|HELD|true|true")
    );
    for port in ports(&s) {
        let mut conn = Conn::open(port);
        let view = conn.get(&format!("/products/{product}")).json(200);
        assert_eq!(view.get("current_stock").as_i64(), 7, "{view}");
        assert_eq!(view.get("stock").as_i64(), 7, "{view}");
        assert_eq!(view.get("held_stock").as_i64(), 3, "{view}");
        assert_eq!(view.get("initial_stock").as_i64(), 10, "{view}");
        assert_eq!(
            get_hold(&mut conn, &id),
            hold,
            "GET /holds/{id} on port {port}"
        );
    }
    assert_hold_accounting(&s, product);
    assert_stock_equation(&s, product);
}

#[test]
fn hold_ignores_unknown_members_and_can_take_the_last_units() {
    let s = lasting_stack();
    let product = product(&s, PRICE, 4, "");
    let customer = unique_customer("last");
    let mut c = s.conn();
    // A price in the body is an unknown member: the product's price holds.
    let body = object(&[
        ("product_id", product.to_string()),
        ("idempotency_key", json_string(&new_uuid_v4())),
        ("customer_id", json_string(&customer)),
        ("quantity", "4".to_owned()),
        ("price", "1".to_owned()),
        ("note", "{\"a\":[1,2]}".to_owned()),
    ]);
    let hold = c.post("/holds", &body).json(201);
    assert_hold_shape(&hold);
    assert_eq!(hold.get("unit_price").as_i64(), PRICE, "{hold}");
    assert_eq!(stock_and_held(&s, product), (0, 4));
    let view = c.get(&format!("/products/{product}")).json(200);
    assert_eq!(
        view.get("sold_out"),
        &Json::Bool(true),
        "held units are not for sale: {view}"
    );
    assert_hold_refused(
        &s,
        &mut c,
        product,
        &unique_customer("late"),
        1,
        "insufficient_stock",
    );
    assert_hold_accounting(&s, product);
}

#[test]
fn hold_replay_is_200_with_the_original_hold_in_its_current_status() {
    let s = lasting_stack();
    let product = product(&s, PRICE, 10, "");
    let other_product = product_other(&s);
    let customer = unique_customer("replay");
    let key = new_uuid_v4();
    let mut c = s.conn();
    let original = c
        .post("/holds", &hold_body(product, &key, &customer, 2))
        .json(201);
    for port in ports(&s) {
        let mut conn = Conn::open(port);
        let replay = conn
            .post("/holds", &hold_body(product, &key, &customer, 2))
            .json(200);
        assert_eq!(replay, original, "replay on port {port}");
        // Whatever the body says under the same key.
        let other = conn
            .post("/holds", &hold_body(other_product, &key, "someone-else", 5))
            .json(200);
        assert_eq!(other, original, "replay with another body on port {port}");
    }
    assert_eq!(stock_and_held(&s, product), (8, 2), "units moved once");
    assert_eq!(stock_and_held(&s, other_product), (10, 0));
    assert_eq!(hold_rows(&s, product), 1);
    assert_eq!(hold_rows(&s, other_product), 0);

    // Released: the replay shows it RELEASED.
    release(&mut c, &hold_id(&original));
    let replay = c
        .post("/holds", &hold_body(product, &key, &customer, 2))
        .json(200);
    assert_eq!(replay, with_status(&original, "RELEASED"));
    assert_eq!(
        stock_and_held(&s, product),
        (10, 0),
        "a replay holds nothing"
    );

    // Consumed: the replay shows it CONSUMED with its order.
    let key2 = new_uuid_v4();
    let second = c
        .post("/holds", &hold_body(product, &key2, &customer, 1))
        .json(201);
    let order = consume(&mut c, &hold_id(&second), &customer);
    let replay = c
        .post("/holds", &hold_body(product, &key2, &customer, 1))
        .json(200);
    assert_hold_shape(&replay);
    assert_same_hold(&second, &replay);
    assert_eq!(replay.get("status").as_str(), "CONSUMED", "{replay}");
    assert_eq!(
        replay.get("order_id").as_str(),
        order_id(&order),
        "{replay}"
    );
    assert_eq!(stock_and_held(&s, product), (9, 0));
    assert_hold_accounting(&s, product);
}

fn product_other(s: &Stack) -> i64 {
    product(s, PRICE, 10, "")
}

/// A body with `field` replaced by `raw` (left out if None).
fn body_with(product: i64, field: &str, raw: Option<&str>) -> String {
    let mut members = vec![
        ("product_id", product.to_string()),
        ("idempotency_key", json_string(&new_uuid_v4())),
        ("customer_id", json_string("validation-tester")),
        ("quantity", "1".to_owned()),
    ];
    assert!(members.iter().any(|(k, _)| *k == field), "no field {field}");
    members.retain(|(k, _)| *k != field);
    if let Some(raw) = raw {
        members.push((field, raw.to_owned()));
    }
    object(&members)
}

#[test]
fn hold_validation_is_422_with_the_messages_of_orders() {
    let s = lasting_stack();
    let product = product(&s, PRICE, 10, "");
    let mut c = s.conn();
    let valid = hold_body(product, &new_uuid_v4(), "x", 1);
    let mut bodies: Vec<(Vec<u8>, Option<&str>)> = vec![
        (b"".to_vec(), None),
        (b"{".to_vec(), None),
        (b"[]".to_vec(), None),
        (b"null".to_vec(), None),
        (b"1".to_vec(), None),
        (b"\"x\"".to_vec(), None),
        (b"{}".to_vec(), None),
        (format!("{valid}x").into_bytes(), None),
        (format!("[{valid}]").into_bytes(), None),
        (valid.replace("\"x\"", "\"\\ud800\"").into_bytes(), None),
        (valid.replace("\"x\"", "\"\u{1}\"").into_bytes(), None),
    ];
    let mut not_utf8 = valid.clone().into_bytes();
    let at = not_utf8.iter().position(|&b| b == b'x').expect("marker");
    not_utf8[at] = 0xff;
    bodies.push((not_utf8, None));
    for field in ["product_id", "idempotency_key", "customer_id", "quantity"] {
        bodies.push((body_with(product, field, None).into_bytes(), Some(field)));
    }
    let as_string = format!("\"{product}\"");
    let field_rows: Vec<(&str, String)> = vec![
        ("product_id", as_string),
        ("product_id", "2.5".to_owned()),
        ("product_id", format!("{product}.0")),
        ("product_id", "true".to_owned()),
        ("product_id", "null".to_owned()),
        ("idempotency_key", "\"not-a-uuid\"".to_owned()),
        (
            "idempotency_key",
            "\"6ba7b810-9dad-11d1-80b4-00c04fd430c8\"".to_owned(),
        ),
        ("idempotency_key", "42".to_owned()),
        ("customer_id", "\"\"".to_owned()),
        ("customer_id", json_string(&"a".repeat(51))),
        ("customer_id", "42".to_owned()),
        ("customer_id", "\"a\\u0000b\"".to_owned()),
        ("quantity", "0".to_owned()),
        ("quantity", "6".to_owned()),
        ("quantity", "-1".to_owned()),
        ("quantity", "\"2\"".to_owned()),
        ("quantity", "2.0".to_owned()),
        ("quantity", "99999999999999999999".to_owned()),
    ];
    for (field, raw) in &field_rows {
        bodies.push((
            body_with(product, field, Some(raw)).into_bytes(),
            Some(field),
        ));
    }
    // A repeated member.
    let key = new_uuid_v4();
    bodies.push((
        format!(
            "{{\"product_id\":{product},\"product_id\":{product},\"idempotency_key\":\"{key}\",\
             \"customer_id\":\"x\",\"quantity\":1}}"
        )
        .into_bytes(),
        Some("product_id"),
    ));
    // Validation comes before the product lookup.
    bodies.push((
        body_with(UNKNOWN_PRODUCT, "quantity", Some("0")).into_bytes(),
        Some("quantity"),
    ));

    for (body, field) in &bodies {
        let shown = String::from_utf8_lossy(body);
        let hold = c.request("POST", "/holds", Some(body));
        assert_eq!(hold.status, 422, "hold body {shown:?}:\n{hold}");
        let message = hold.error(422, *field);
        let order = c.request("POST", "/orders", Some(body));
        assert_eq!(order.status, 422, "order body {shown:?}:\n{order}");
        assert_eq!(
            message,
            order.error(422, *field),
            "a hold's 422 says what the order's does, body {shown:?}"
        );
    }
    assert_eq!(hold_rows(&s, product), 0, "nothing stored");
    assert_eq!(stock_and_held(&s, product), (10, 0));
}

#[test]
fn hold_of_an_unknown_product_is_404_like_an_order() {
    let s = lasting_stack();
    let mut c = s.conn();
    let customer = unique_customer("unknown");
    let response = try_hold(&mut c, UNKNOWN_PRODUCT, &customer, 1);
    assert_eq!(response.status, 404, "{response}");
    let message = response.error(404, None);
    let order = try_place(&mut c, UNKNOWN_PRODUCT, &customer, 1);
    assert_eq!(order.error(404, None), message, "the order's 404 message");
    // Ids no product can have: what the order gets, 404 or 422.
    for id in ["0", "-1", "2147483648", "99999999999"] {
        let body = body_with(1, "product_id", Some(id));
        let hold = c.post("/holds", &body);
        let order = c.post("/orders", &body);
        assert!(
            hold.status == 404 || hold.status == 422,
            "product_id {id}:\n{hold}"
        );
        assert_eq!(
            hold.status, order.status,
            "product_id {id}:\n{hold}\n{order}"
        );
        assert_eq!(
            hold.error(hold.status, None),
            order.error(order.status, None),
            "product_id {id}"
        );
    }
    let stored = s.query_i64(&format!(
        "SELECT count(*) FROM holds WHERE customer_id = {}",
        sql_customer(&customer)
    ));
    assert_eq!(stored, 0);
}

#[test]
fn hold_refusals_are_409_with_the_reasons_and_precedence_of_orders() {
    let s = lasting_stack();
    for port in ports(&s) {
        let mut c = Conn::open(port);
        let (a, b) = (unique_customer("prec-a"), unique_customer("prec-b"));

        // Ended, sold out, customer at its limit (by a hold): sale_ended.
        let ended = product(&s, PRICE, 1, "per_customer_limit = 1");
        place_hold(&mut c, ended, &a, 1);
        set_sale(&s, ended, "ends_at = now()");
        assert_hold_refused(&s, &mut c, ended, &b, 1, "sale_ended");
        assert_hold_refused(&s, &mut c, ended, &a, 1, "sale_ended");

        // Not started, sold out, customer at its limit: sale_not_started.
        let upcoming = product(&s, PRICE, 1, "per_customer_limit = 1");
        place_hold(&mut c, upcoming, &a, 1);
        set_sale(&s, upcoming, "starts_at = now() + interval '1 hour'");
        assert_hold_refused(&s, &mut c, upcoming, &b, 1, "sale_not_started");
        assert_hold_refused(&s, &mut c, upcoming, &a, 1, "sale_not_started");

        // Sold out by a hold, customer at its limit: the limit first.
        let capped = product(&s, PRICE, 1, "per_customer_limit = 1");
        place_hold(&mut c, capped, &a, 1);
        assert_hold_refused(&s, &mut c, capped, &b, 1, "insufficient_stock");
        assert_hold_refused(&s, &mut c, capped, &a, 1, "customer_limit_reached");
        assert_hold_refused(&s, &mut c, capped, &b, 2, "customer_limit_reached");

        // Over both the limit and the stock: the limit.
        let both = product(&s, PRICE, 3, "per_customer_limit = 3");
        place_hold(&mut c, both, &a, 2);
        assert_hold_refused(&s, &mut c, both, &a, 2, "customer_limit_reached");
        place(&mut c, both, &a, 1);
        assert_hold_refused(&s, &mut c, both, &a, 1, "customer_limit_reached");
        assert_hold_refused(&s, &mut c, both, &b, 1, "insufficient_stock");

        // More than the stock, no limit.
        let plain = product(&s, PRICE, 2, "");
        assert_hold_refused(&s, &mut c, plain, &a, 3, "insufficient_stock");
        place_hold(&mut c, plain, &a, 2);
        assert_hold_refused(&s, &mut c, plain, &b, 1, "insufficient_stock");

        for product in [ended, upcoming, capped, both, plain] {
            assert_eq!(figures(&s, product).current, 0);
            assert_hold_accounting(&s, product);
        }
    }
}

#[test]
fn limit_counts_live_holds_and_confirmed_orders() {
    let s = lasting_stack();
    let mut c = s.conn();
    let mut other = s.servers[1].conn();
    let product = product(&s, PRICE, 10, "per_customer_limit = 1");
    let (a, b) = (unique_customer("lim-a"), unique_customer("lim-b"));

    // A hold fills the limit for orders and holds, on either server.
    let hold = place_hold(&mut c, product, &a, 1);
    assert_hold_refused(&s, &mut other, product, &a, 1, "customer_limit_reached");
    place(&mut other, product, &b, 1);
    // Released, it frees the limit.
    release(&mut other, &hold_id(&hold));
    let order = place(&mut c, product, &a, 1);
    assert_hold_refused(&s, &mut other, product, &a, 1, "customer_limit_reached");
    // A cancelled order frees it too; the hold bought counts as the order.
    cancel(&mut c, &order_id(&order));
    let hold = place_hold(&mut other, product, &a, 1);
    consume(&mut c, &hold_id(&hold), &a);
    assert_hold_refused(&s, &mut c, product, &a, 1, "customer_limit_reached");
    assert_eq!(figures(&s, product).confirmed, 2, "a's order and b's");

    // Limit 3: an order of 2 and a hold of 1 fill it.
    let three = product_limited(&s, 3);
    place(&mut c, three, &a, 2);
    let hold = place_hold(&mut other, three, &a, 1);
    assert_hold_refused(&s, &mut c, three, &a, 1, "customer_limit_reached");
    release(&mut c, &hold_id(&hold));
    place(&mut other, three, &a, 1);
    assert_hold_refused(&s, &mut c, three, &a, 1, "customer_limit_reached");
    for product in [product, three] {
        assert_hold_accounting(&s, product);
        assert_stock_equation(&s, product);
    }
}

fn product_limited(s: &Stack, limit: i64) -> i64 {
    product(s, PRICE, 100, &format!("per_customer_limit = {limit}"))
}

/// Units a customer has of a product: CONFIRMED orders plus HELD holds.
fn customer_units(s: &Stack, product: i64, customer: &str) -> i64 {
    let customer = sql_customer(customer);
    s.query_i64(&format!(
        "SELECT (SELECT coalesce(sum(quantity), 0) FROM orders WHERE product_id = {product} \
         AND customer_id = {customer} AND status = 'CONFIRMED') + \
         (SELECT coalesce(sum(quantity), 0) FROM holds WHERE product_id = {product} \
         AND customer_id = {customer} AND status = 'HELD')"
    ))
}

#[test]
fn two_servers_50_holds_of_one_customer_on_a_limit_1_product_create_exactly_one() {
    let s = lasting_stack();
    let mut conns = open_conns(&ports(&s), SAME_TARGET_CLIENTS);
    for round in 0..SAME_TARGET_ROUNDS {
        let product = product_limited(&s, 1);
        let customer = unique_customer("burst");
        let requests: Vec<Vec<u8>> = (0..SAME_TARGET_CLIENTS)
            .map(|_| hold_request(product, &new_uuid_v4(), &customer, 1))
            .collect();
        let responses = race(&mut conns, &requests);
        let all: Vec<&Response> = responses.iter().collect();
        let created: Vec<&Response> = responses.iter().filter(|r| r.status == 201).collect();
        assert_eq!(created.len(), 1, "round {round}: {}", summary(&all));
        for r in responses.iter().filter(|r| r.status != 201) {
            assert_eq!(
                outcome_of(r),
                "customer_limit_reached",
                "round {round}: {}",
                summary(&all)
            );
        }
        assert_eq!(customer_units(&s, product, &customer), 1, "round {round}");

        // Released: holds and orders of the customer racing, exactly one wins.
        let winner = created[0].json(201);
        release(&mut conns[1], &hold_id(&winner));
        let requests: Vec<Vec<u8>> = (0..SAME_TARGET_CLIENTS)
            .map(|i| {
                if i % 2 == 0 {
                    hold_request(product, &new_uuid_v4(), &customer, 1)
                } else {
                    order_request(product, &new_uuid_v4(), &customer, 1)
                }
            })
            .collect();
        let responses = race(&mut conns, &requests);
        let all: Vec<&Response> = responses.iter().collect();
        let won = responses.iter().filter(|r| r.status == 201).count();
        assert_eq!(won, 1, "round {round}, holds and orders: {}", summary(&all));
        for r in responses.iter().filter(|r| r.status != 201) {
            assert_eq!(outcome_of(r), "customer_limit_reached", "{}", summary(&all));
        }
        assert_eq!(customer_units(&s, product, &customer), 1, "round {round}");
        assert_hold_accounting(&s, product);
        assert_stock_equation(&s, product);
    }
}

// ---- GET /holds/{id} -------------------------------------------------------------------

#[test]
fn hold_lookup_of_a_malformed_id_is_422_and_of_an_unknown_one_404() {
    let s = lasting_stack();
    let mut c = s.conn();
    let v4 = new_uuid_v4();
    for id in [
        "not-a-valid-uuid".to_owned(),
        "123".to_owned(),
        v4.replace('-', ""),
        format!("{v4}0"),
        v4[..35].to_owned(),
    ] {
        let response = c.get(&format!("/holds/{id}"));
        assert_eq!(response.status, 422, "GET /holds/{id}:\n{response}");
        assert_error_message(&response, 422, "hold_id must be a UUID");
    }
    // An order's id is no hold's.
    let product = product(&s, PRICE, 10, "");
    let order = place(&mut c, product, &unique_customer("lookup"), 1);
    for id in [UNKNOWN_ID.to_owned(), new_uuid_v4(), order_id(&order)] {
        let response = c.get(&format!("/holds/{id}"));
        assert_eq!(response.status, 404, "GET /holds/{id}:\n{response}");
        assert_error_message(&response, 404, "hold not found");
    }
}

#[test]
fn hold_lookup_shows_held_consumed_and_released() {
    let s = lasting_stack();
    let product = product(&s, PRICE, 20, "");
    let customer = unique_customer("status");
    let mut c = s.conn();
    let held = place_hold(&mut c, product, &customer, 1);
    let consumed = place_hold(&mut c, product, &customer, 2);
    let released = place_hold(&mut c, product, &customer, 3);
    let order = consume(&mut c, &hold_id(&consumed), &customer);
    release(&mut c, &hold_id(&released));
    for port in ports(&s) {
        let mut conn = Conn::open(port);
        assert_eq!(get_hold(&mut conn, &hold_id(&held)), held);
        let upper = hold_id(&held).to_ascii_uppercase();
        assert_eq!(get_hold(&mut conn, &upper), held, "uppercase id");

        let now = get_hold(&mut conn, &hold_id(&consumed));
        assert_same_hold(&consumed, &now);
        assert_eq!(now.get("status").as_str(), "CONSUMED", "{now}");
        assert_eq!(now.get("order_id").as_str(), order_id(&order), "{now}");

        let now = get_hold(&mut conn, &hold_id(&released));
        assert_eq!(now, with_status(&released, "RELEASED"));
    }
    assert_eq!(hold_column(&s, &hold_id(&held), "ended_at"), "");
    for hold in [&consumed, &released] {
        assert_ne!(
            hold_column(&s, &hold_id(hold), "ended_at"),
            "",
            "ended_at set"
        );
    }
    assert_eq!(
        hold_column(&s, &hold_id(&consumed), "order_id"),
        order_id(&order)
    );
    assert_eq!(stock_and_held(&s, product), (20 - 1 - 2, 1));
    assert_hold_accounting(&s, product);
}

// ---- releases ----------------------------------------------------------------------------

#[test]
fn release_is_200_with_the_restored_quantity_and_returns_the_units() {
    let s = lasting_stack();
    let product = product(&s, PRICE, 20, "");
    let customer = unique_customer("release");
    let mut conns: Vec<Conn> = ports(&s).into_iter().map(Conn::open).collect();
    // No body, an empty one, an empty object, an object (members ignored).
    let bodies: [Option<&[u8]>; 4] = [
        None,
        Some(b""),
        Some(b"{}"),
        Some(b"{\"reason\":\"changed my mind\",\"quantity\":9}"),
    ];
    let mut held = 0;
    let holds: Vec<Json> = (1..=4)
        .map(|q| {
            held += q;
            place_hold(&mut conns[0], product, &customer, q)
        })
        .collect();
    assert_eq!(stock_and_held(&s, product), (20 - held, held));
    for (i, (hold, body)) in holds.iter().zip(bodies).enumerate() {
        let id = hold_id(hold);
        let q = hold.get("quantity").as_i64();
        let conn = &mut conns[i % 2];
        let answer = conn.request("POST", &release_path(&id), body).json(200);
        assert_eq!(answer.keys(), RELEASE_KEYS, "members of {answer}");
        let want = parse(
            object(&[
                ("hold_id", json_string(&id)),
                ("status", json_string("RELEASED")),
                ("restored_quantity", q.to_string()),
            ])
            .as_bytes(),
        )
        .expect("JSON");
        assert_eq!(answer, want, "release of {id}");
        held -= q;
        assert_eq!(stock_and_held(&s, product), (20 - held, held), "after {id}");
        assert_eq!(hold_status_in_db(&s, &id), "RELEASED");
        assert_eq!(get_hold(conn, &id).get("status").as_str(), "RELEASED");
    }
    assert_eq!(stock_and_held(&s, product), (20, 0));
    assert_hold_accounting(&s, product);
}

#[test]
fn second_release_is_409_hold_not_active_and_returns_nothing() {
    let s = lasting_stack();
    let product = product(&s, PRICE, 10, "");
    let mut c = s.conn();
    let hold = place_hold(&mut c, product, &unique_customer("twice"), 2);
    release(&mut c, &hold_id(&hold));
    for port in ports(&s) {
        let mut conn = Conn::open(port);
        for _ in 0..2 {
            try_release(&mut conn, &hold_id(&hold)).error_reason(409, "hold_not_active");
        }
    }
    assert_eq!(stock_and_held(&s, product), (10, 0));
    assert_hold_accounting(&s, product);
}

#[test]
fn release_after_consume_is_409_hold_not_active() {
    let s = lasting_stack();
    let product = product(&s, PRICE, 10, "");
    let customer = unique_customer("bought");
    let mut c = s.conn();
    let hold = place_hold(&mut c, product, &customer, 3);
    let order = consume(&mut c, &hold_id(&hold), &customer);
    for port in ports(&s) {
        try_release(&mut Conn::open(port), &hold_id(&hold)).error_reason(409, "hold_not_active");
    }
    assert_eq!(stock_and_held(&s, product), (7, 0));
    assert_eq!(order_column(&s, &order_id(&order), "status"), "CONFIRMED");
    assert_eq!(hold_status_in_db(&s, &hold_id(&hold)), "CONSUMED");
    assert_stock_equation(&s, product);
}

#[test]
fn release_of_an_unknown_or_malformed_hold_is_404() {
    let s = lasting_stack();
    let mut c = s.conn();
    for id in [UNKNOWN_ID.to_owned(), new_uuid_v4()] {
        let response = try_release(&mut c, &id);
        assert_eq!(response.status, 404, "release {id}:\n{response}");
        assert_error_message(&response, 404, "hold not found");
    }
    let v4 = new_uuid_v4();
    for id in [
        "not-a-uuid".to_owned(),
        "123".to_owned(),
        v4.replace('-', ""),
    ] {
        let response = try_release(&mut c, &id);
        assert_eq!(response.status, 404, "release {id}:\n{response}");
        response.error(404, None);
    }
}

#[test]
fn release_with_a_bad_body_is_422_and_changes_nothing() {
    let s = lasting_stack();
    let product = product(&s, PRICE, 10, "");
    let mut c = s.conn();
    let hold = place_hold(&mut c, product, &unique_customer("badbody"), 2);
    let id = hold_id(&hold);
    let bodies: [&[u8]; 9] = [
        b"[]", b"1", b"null", b"\"x\"", b"{", b"garbage", b"{}x", b"[{}]", b"\xff",
    ];
    for body in bodies {
        let response = c.request("POST", &release_path(&id), Some(body));
        assert_eq!(
            response.status,
            422,
            "release body {:?}:\n{response}",
            String::from_utf8_lossy(body)
        );
        response.error(422, None);
    }
    assert_eq!(hold_status_in_db(&s, &id), "HELD");
    assert_eq!(stock_and_held(&s, product), (8, 2));
    release(&mut c, &id);
    assert_eq!(stock_and_held(&s, product), (10, 0));
}

// ---- buying a hold -----------------------------------------------------------------------

#[test]
fn consume_of_a_live_hold_is_201_at_the_price_of_the_hold() {
    let s = lasting_stack();
    let product = product(&s, 800, 2, "");
    let customer = unique_customer("buy");
    let mut c = s.conn();
    // Every unit held: the product is sold out, the hold still buys.
    let hold = place_hold(&mut c, product, &customer, 2);
    let patched = admin(
        &mut c,
        "PATCH",
        &format!("/admin/products/{product}"),
        Some("{\"price\":1200}"),
    )
    .json(200);
    assert_eq!(patched.get("price").as_i64(), 1200, "{patched}");
    let key = new_uuid_v4();
    let order = s.servers[1]
        .conn()
        .post("/orders", &consume_body(&hold_id(&hold), &key, &customer))
        .json(201);
    assert_order_shape(&order);
    assert_eq!(order.get("idempotency_key").as_str(), key, "{order}");
    assert_eq!(order.get("product_id").as_i64(), product, "{order}");
    assert_eq!(order.get("customer_id").as_str(), customer, "{order}");
    assert_eq!(order.get("quantity").as_i64(), 2, "{order}");
    assert_eq!(
        order.get("unit_price").as_i64(),
        800,
        "the hold's price: {order}"
    );
    assert_eq!(order.get("total_price").as_i64(), 1600, "{order}");
    assert_eq!(order.get("status").as_str(), "CONFIRMED", "{order}");
    assert_eq!(order.get("payment_status").as_str(), "PENDING", "{order}");

    // The units moved from held_stock to the order; no second decrement.
    assert_eq!(stock_and_held(&s, product), (0, 0));
    let id = order_id(&order);
    assert_eq!(order_column(&s, &id, "hold_id"), hold_id(&hold));
    assert_eq!(hold_status_in_db(&s, &hold_id(&hold)), "CONSUMED");
    assert_eq!(hold_column(&s, &hold_id(&hold), "order_id"), id);
    assert_eq!(c.get(&format!("/orders/{id}")).json(200), order);
    let now = get_hold(&mut c, &hold_id(&hold));
    assert_eq!(now.get("order_id").as_str(), id, "{now}");
    assert_stock_equation(&s, product);
    assert_hold_accounting(&s, product);
}

#[test]
fn consume_replay_of_the_order_key_is_200_with_the_same_order() {
    let s = lasting_stack();
    let product = product(&s, PRICE, 20, "");
    let customer = unique_customer("rebuy");
    let mut c = s.conn();
    let hold = place_hold(&mut c, product, &customer, 2);
    let key = new_uuid_v4();
    let body = consume_body(&hold_id(&hold), &key, &customer);
    let order = c.post("/orders", &body).json(201);
    let live = place_hold(&mut c, product, &customer, 1);
    for port in ports(&s) {
        let mut conn = Conn::open(port);
        assert_eq!(conn.post("/orders", &body).json(200), order, "port {port}");
        // Whatever the body: another (live) hold, or a plain order body.
        let other = consume_body(&hold_id(&live), &key, &customer);
        assert_eq!(conn.post("/orders", &other).json(200), order, "port {port}");
        let plain = order_body(product, &key, &customer, 5);
        assert_eq!(conn.post("/orders", &plain).json(200), order, "port {port}");
    }
    assert_eq!(hold_status_in_db(&s, &hold_id(&live)), "HELD");
    assert_eq!(orders_of_hold(&s, &hold_id(&hold)), 1);

    // A plain order's key with a live hold: that order, the hold untouched.
    let plain_key = new_uuid_v4();
    let plain = c
        .post("/orders", &order_body(product, &plain_key, &customer, 1))
        .json(201);
    let replay = c
        .post(
            "/orders",
            &consume_body(&hold_id(&live), &plain_key, &customer),
        )
        .json(200);
    assert_eq!(replay, plain);
    assert_eq!(hold_status_in_db(&s, &hold_id(&live)), "HELD");
    assert_eq!(stock_and_held(&s, product), (20 - 2 - 1 - 1, 1));
    assert_hold_accounting(&s, product);
}

#[test]
fn consume_of_a_consumed_or_released_hold_is_409_hold_not_active() {
    let s = lasting_stack();
    let product = product(&s, PRICE, 20, "");
    let customer = unique_customer("inactive");
    let mut c = s.conn();
    let consumed = place_hold(&mut c, product, &customer, 2);
    consume(&mut c, &hold_id(&consumed), &customer);
    let released = place_hold(&mut c, product, &customer, 3);
    release(&mut c, &hold_id(&released));
    let orders_before = figures(&s, product);
    for port in ports(&s) {
        let mut conn = Conn::open(port);
        for hold in [&consumed, &released] {
            try_consume(&mut conn, &hold_id(hold), &customer).error_reason(409, "hold_not_active");
        }
    }
    assert_eq!(figures(&s, product), orders_before, "nothing bought");
    assert_eq!(orders_of_hold(&s, &hold_id(&consumed)), 1);
    assert_eq!(orders_of_hold(&s, &hold_id(&released)), 0);
    assert_eq!(stock_and_held(&s, product), (18, 0));
    assert_stock_equation(&s, product);
}

#[test]
fn consume_of_another_customers_hold_is_409_hold_not_yours() {
    let s = lasting_stack();
    let product = product(&s, PRICE, 20, "");
    let (a, b) = (unique_customer("mine"), unique_customer("thief"));
    let mut c = s.conn();
    let live = place_hold(&mut c, product, &a, 1);
    let released = place_hold(&mut c, product, &a, 1);
    release(&mut c, &hold_id(&released));
    let consumed = place_hold(&mut c, product, &a, 1);
    consume(&mut c, &hold_id(&consumed), &a);
    // Checked before the hold's state; customer ids are exact.
    let upper = a.to_uppercase();
    for port in ports(&s) {
        let mut conn = Conn::open(port);
        for (hold, who) in [
            (&live, b.as_str()),
            (&live, upper.as_str()),
            (&released, b.as_str()),
            (&consumed, b.as_str()),
        ] {
            try_consume(&mut conn, &hold_id(hold), who).error_reason(409, "hold_not_yours");
        }
    }
    assert_eq!(hold_status_in_db(&s, &hold_id(&live)), "HELD");
    assert_eq!(orders_of_hold(&s, &hold_id(&live)), 0);
    assert_eq!(stock_and_held(&s, product), (18, 1));
    consume(&mut c, &hold_id(&live), &a);
    assert_eq!(stock_and_held(&s, product), (18, 0));
    assert_stock_equation(&s, product);
}

#[test]
fn consume_of_an_unknown_hold_is_404() {
    let s = lasting_stack();
    let mut c = s.conn();
    let customer = unique_customer("ghost");
    for id in [UNKNOWN_ID.to_owned(), new_uuid_v4()] {
        let key = new_uuid_v4();
        let response = c.post("/orders", &consume_body(&id, &key, &customer));
        assert_eq!(response.status, 404, "buy hold {id}:\n{response}");
        assert_error_message(&response, 404, "hold not found");
        let stored = s.query_i64(&format!(
            "SELECT count(*) FROM orders WHERE idempotency_key = '{key}'"
        ));
        assert_eq!(stored, 0);
    }
}

/// A consume body with `field` replaced by `raw` (None: left out), and
/// `extra` members after it.
fn consume_body_with(hold: &str, field: &str, raw: Option<&str>, extra: &[(&str, &str)]) -> String {
    let mut members = vec![
        ("hold_id", json_string(hold)),
        ("idempotency_key", json_string(&new_uuid_v4())),
        ("customer_id", json_string("consume-validation")),
    ];
    members.retain(|(k, _)| *k != field);
    if let Some(raw) = raw {
        members.push((field, raw.to_owned()));
    }
    for (k, v) in extra {
        members.push((k, (*v).to_owned()));
    }
    object(&members)
}

#[test]
fn consume_body_is_judged_hold_id_first_and_refuses_product_id_or_quantity() {
    let s = lasting_stack();
    let product = product(&s, PRICE, 10, "");
    let mut c = s.conn();
    let hold = place_hold(&mut c, product, "consume-validation", 2);
    let id = hold_id(&hold);
    let pid = product.to_string();

    // Beside hold_id, product_id and quantity are refused (also for an
    // unknown hold: validation comes first).
    for hold in [id.as_str(), UNKNOWN_ID] {
        for (extra, names) in [
            (vec![("product_id", pid.as_str())], "product_id"),
            (vec![("quantity", "2")], "quantity"),
            (vec![("quantity", "1"), ("product_id", pid.as_str())], ""),
        ] {
            let body = consume_body_with(hold, "", None, &extra);
            let response = c.post("/orders", &body);
            assert_eq!(response.status, 422, "body {body}:\n{response}");
            let message = response.error(422, None);
            if names.is_empty() {
                assert!(
                    message.contains("product_id") || message.contains("quantity"),
                    "{message:?} names the fields"
                );
            } else {
                assert!(message.contains(names), "{message:?} names {names}");
            }
        }
    }

    // hold_id must be a UUID string.
    let v4 = new_uuid_v4();
    for raw in [
        "\"abc\"".to_owned(),
        "\"\"".to_owned(),
        "42".to_owned(),
        "true".to_owned(),
        format!("\"{}\"", v4.replace('-', "")),
        format!("[\"{v4}\"]"),
    ] {
        let body = consume_body_with(&id, "hold_id", Some(&raw), &[]);
        let response = c.post("/orders", &body);
        assert_eq!(response.status, 422, "body {body}:\n{response}");
        assert_error_message(&response, 422, "hold_id must be a UUID");
    }

    // The other fields carry the order's messages, judged in order
    // hold_id, idempotency_key, customer_id.
    let mut order_message = |field: &str, raw: Option<&str>| -> String {
        let response = c.post("/orders", &body_with(product, field, raw));
        response.error(422, Some(field))
    };
    let long_customer = json_string(&"c".repeat(51));
    let cases: Vec<(String, String)> = vec![
        (
            consume_body_with(&id, "idempotency_key", Some("\"nope\""), &[]),
            order_message("idempotency_key", Some("\"nope\"")),
        ),
        (
            consume_body_with(&id, "idempotency_key", None, &[]),
            order_message("idempotency_key", None),
        ),
        (
            consume_body_with(&id, "customer_id", Some("\"\""), &[]),
            order_message("customer_id", Some("\"\"")),
        ),
        (
            consume_body_with(&id, "customer_id", Some(&long_customer), &[]),
            order_message("customer_id", Some(&long_customer)),
        ),
        (
            consume_body_with(&id, "customer_id", None, &[]),
            order_message("customer_id", None),
        ),
        (
            // Bad key and bad customer: the key is judged first.
            object(&[
                ("hold_id", json_string(&id)),
                ("idempotency_key", "\"nope\"".to_owned()),
                ("customer_id", "\"\"".to_owned()),
            ]),
            order_message("idempotency_key", Some("\"nope\"")),
        ),
        (
            // Bad hold_id and bad key: hold_id first.
            object(&[
                ("hold_id", "\"abc\"".to_owned()),
                ("idempotency_key", "\"nope\"".to_owned()),
                ("customer_id", "\"x\"".to_owned()),
            ]),
            "hold_id must be a UUID".to_owned(),
        ),
    ];
    for (body, want) in &cases {
        let response = c.post("/orders", body);
        assert_eq!(response.status, 422, "body {body}:\n{response}");
        assert_error_message(&response, 422, want);
    }
    assert_eq!(hold_status_in_db(&s, &id), "HELD");
    assert_eq!(orders_of_hold(&s, &id), 0);
    assert_eq!(stock_and_held(&s, product), (8, 2));
}

#[test]
fn two_servers_50_buys_of_one_hold_create_exactly_one_order() {
    let s = lasting_stack();
    let mut conns = open_conns(&ports(&s), SAME_TARGET_CLIENTS);
    for round in 0..SAME_TARGET_ROUNDS {
        let product = product(&s, PRICE, 10, "");
        let customer = unique_customer("rush");
        let hold = place_hold(&mut conns[0], product, &customer, 2);
        let id = hold_id(&hold);
        let requests: Vec<Vec<u8>> = (0..SAME_TARGET_CLIENTS)
            .map(|_| consume_request(&id, &new_uuid_v4(), &customer))
            .collect();
        let responses = race(&mut conns, &requests);
        let all: Vec<&Response> = responses.iter().collect();
        let created: Vec<Json> = responses
            .iter()
            .filter(|r| r.status == 201)
            .map(|r| r.json(201))
            .collect();
        assert_eq!(created.len(), 1, "round {round}: {}", summary(&all));
        for r in responses.iter().filter(|r| r.status != 201) {
            assert_eq!(
                outcome_of(r),
                "hold_not_active",
                "round {round}: {}",
                summary(&all)
            );
        }
        let order = &created[0];
        assert_eq!(order.get("quantity").as_i64(), 2);
        assert_eq!(orders_of_hold(&s, &id), 1, "round {round}");
        assert_eq!(hold_column(&s, &id, "order_id"), order_id(order));
        assert_eq!(stock_and_held(&s, product), (8, 0), "round {round}");
        assert_stock_equation(&s, product);
        assert_hold_accounting(&s, product);
    }
}

// ---- past due, before any sweep ----------------------------------------------------------

#[test]
fn past_due_hold_read_before_any_sweep_shows_expired_and_returns_units_once() {
    let s = unswept_stack();
    let product = product(&s, PRICE, 10, "");
    let mut c = s.conn();
    let hold = place_hold(&mut c, product, &unique_customer("late-read"), 3);
    let id = hold_id(&hold);
    wait_past_due(&s, std::slice::from_ref(&id), PAST_DUE_WAIT);
    // No sweep met it: it is still HELD in the database, its units held.
    assert_eq!(hold_status_in_db(&s, &id), "HELD");
    assert_eq!(stock_and_held(&s, product), (7, 3));

    // Many reads at once, on both servers: all EXPIRED, units back once.
    let requests: Vec<Vec<u8>> = (0..20)
        .map(|_| request_bytes("GET", &format!("/holds/{id}"), None))
        .collect();
    let mut conns = open_conns(&ports(&s), requests.len());
    let responses = race(&mut conns, &requests);
    let want = with_status(&hold, "EXPIRED");
    for response in &responses {
        let shown = response.json(200);
        assert_hold_shape(&shown);
        assert_eq!(shown, want, "a past-due hold reads EXPIRED");
    }
    assert_eq!(hold_status_in_db(&s, &id), "EXPIRED");
    assert_ne!(hold_column(&s, &id, "ended_at"), "", "ended_at set");
    assert_eq!(stock_and_held(&s, product), (10, 0), "units back once");
    assert_eq!(get_hold(&mut c, &id), want);
    assert_eq!(stock_and_held(&s, product), (10, 0));
    assert_hold_accounting(&s, product);
    assert_stock_equation(&s, product);
}

#[test]
fn past_due_release_and_buy_are_409_hold_expired_and_return_units_once() {
    let s = unswept_stack();
    let product = product(&s, PRICE, 10, "");
    let (a, b) = (unique_customer("late-a"), unique_customer("late-b"));
    let mut c = s.conn();
    let holds: Vec<Json> = (1..=3)
        .map(|q| place_hold(&mut c, product, &a, q))
        .collect();
    let ids = hold_ids(&holds);
    assert_eq!(stock_and_held(&s, product), (4, 6));
    wait_past_due(&s, &ids, PAST_DUE_WAIT);
    for id in &ids {
        assert_eq!(hold_status_in_db(&s, id), "HELD", "no sweep met {id}");
    }

    // Released past due: hold_expired, its unit back; again the same.
    try_release(&mut c, &ids[0]).error_reason(409, "hold_expired");
    assert_eq!(stock_and_held(&s, product), (5, 5));
    try_release(&mut c, &ids[0]).error_reason(409, "hold_expired");
    try_consume(&mut c, &ids[0], &a).error_reason(409, "hold_expired");
    assert_eq!(stock_and_held(&s, product), (5, 5));
    assert_eq!(hold_status_in_db(&s, &ids[0]), "EXPIRED");

    // Bought past due: hold_expired, its units back.
    try_consume(&mut c, &ids[1], &a).error_reason(409, "hold_expired");
    assert_eq!(stock_and_held(&s, product), (7, 3));
    assert_eq!(get_hold(&mut c, &ids[1]).get("status").as_str(), "EXPIRED");

    // Another customer: hold_not_yours, whatever the state.
    try_consume(&mut c, &ids[2], &b).error_reason(409, "hold_not_yours");
    // Buys, releases and reads at once on both servers: units back once.
    let mut requests = Vec::new();
    for _ in 0..8 {
        requests.push(consume_request(&ids[2], &new_uuid_v4(), &a));
        requests.push(release_request(&ids[2]));
        requests.push(request_bytes("GET", &format!("/holds/{}", ids[2]), None));
    }
    let mut conns = open_conns(&ports(&s), requests.len());
    let responses = race(&mut conns, &requests);
    let all: Vec<&Response> = responses.iter().collect();
    for (i, response) in responses.iter().enumerate() {
        if i % 3 == 2 {
            assert_eq!(
                response.json(200).get("status").as_str(),
                "EXPIRED",
                "{}",
                summary(&all)
            );
        } else {
            assert_eq!(outcome_of(response), "hold_expired", "{}", summary(&all));
        }
    }
    assert_eq!(stock_and_held(&s, product), (10, 0));
    for id in &ids {
        assert_eq!(hold_status_in_db(&s, id), "EXPIRED");
        assert_eq!(orders_of_hold(&s, id), 0);
    }
    assert_hold_accounting(&s, product);
    assert_stock_equation(&s, product);
}

#[test]
fn replay_of_a_past_due_hold_key_shows_it_expired() {
    let s = unswept_stack();
    let product = product(&s, PRICE, 10, "");
    let customer = unique_customer("late-replay");
    let key = new_uuid_v4();
    let mut c = s.conn();
    let hold = c
        .post("/holds", &hold_body(product, &key, &customer, 2))
        .json(201);
    wait_past_due(&s, &[hold_id(&hold)], PAST_DUE_WAIT);
    let replay = c
        .post("/holds", &hold_body(product, &key, &customer, 2))
        .json(200);
    assert_eq!(replay, with_status(&hold, "EXPIRED"));
    assert_hold_accounting(&s, product);
    assert_eq!(
        get_hold(&mut c, &hold_id(&hold)).get("status").as_str(),
        "EXPIRED"
    );
    assert_eq!(stock_and_held(&s, product), (10, 0));
    assert_eq!(hold_rows(&s, product), 1, "a replay makes no new hold");
}

#[test]
fn past_due_holds_do_not_count_toward_the_limit() {
    let s = unswept_stack();
    let product = product(&s, PRICE, 5, "per_customer_limit = 1");
    let customer = unique_customer("late-limit");
    let mut c = s.conn();
    let first = place_hold(&mut c, product, &customer, 1);
    try_place(&mut c, product, &customer, 1).error_reason(409, "customer_limit_reached");
    wait_past_due(&s, &[hold_id(&first)], PAST_DUE_WAIT);
    // Past due, not yet expired by anyone: no longer live, so no longer
    // counted. The new hold is live and counts.
    let second = place_hold(&mut c, product, &customer, 1);
    try_place(&mut c, product, &customer, 1).error_reason(409, "customer_limit_reached");
    release(&mut c, &hold_id(&second));
    place(&mut c, product, &customer, 1);
    assert_hold_accounting(&s, product);
    assert_eq!(
        get_hold(&mut c, &hold_id(&first)).get("status").as_str(),
        "EXPIRED"
    );
    assert_eq!(stock_and_held(&s, product), (4, 0));
    assert_stock_equation(&s, product);
}

// ---- the sweeps ------------------------------------------------------------------------

#[test]
fn a_swept_hold_is_expired_for_release_buy_and_read() {
    let s = short_stack();
    let product = product(&s, PRICE, 10, "");
    let customer = unique_customer("swept");
    let mut c = s.conn();
    let hold = place_hold(&mut c, product, &customer, 2);
    let id = hold_id(&hold);
    // No request touches it: a sweep must expire it.
    wait_for("the sweep expires the hold", SWEEP_WAIT, || {
        hold_status_in_db(&s, &id) == "EXPIRED"
    });
    assert_eq!(stock_and_held(&s, product), (10, 0));
    let ended_early = s.query_i64(&format!(
        "SELECT count(*) FROM holds WHERE id = '{id}' AND ended_at < expires_at"
    ));
    assert_eq!(ended_early, 0, "never expired before its expires_at");
    try_release(&mut c, &id).error_reason(409, "hold_expired");
    try_consume(&mut c, &id, &customer).error_reason(409, "hold_expired");
    assert_eq!(get_hold(&mut c, &id), with_status(&hold, "EXPIRED"));
    assert_eq!(stock_and_held(&s, product), (10, 0));
    assert_stock_equation(&s, product);
}

/// Sum of a series over every server of `s`.
fn metric_sum(s: &Stack, series: &str) -> f64 {
    s.servers
        .iter()
        .map(|server| metric(&mut server.conn(), series))
        .sum()
}

#[test]
fn two_hundred_holds_expire_by_the_sweeps_of_both_servers_and_every_unit_returns_once() {
    // A stack of its own: every expiry its servers count and log is one of
    // this test's holds.
    let env = [("HOLD_TTL_SECS", "2"), ("HOLD_SWEEP_INTERVAL_MS", "150")];
    let s = Stack::start_with_env(2, &env);
    for server in &s.servers {
        let start = &log_events(server, "start")[0];
        assert_eq!(start.get("hold_ttl_secs").as_i64(), 2, "{start}");
        assert_eq!(start.get("hold_sweep_interval_ms").as_i64(), 150, "{start}");
        assert_eq!(start.get("webhooks"), &Json::Bool(false), "{start}");
    }
    let initial = 2000;
    let product = s.create_product(PRICE, initial);
    let mut rng = fastrand::Rng::with_seed(7);
    let quantities: Vec<i64> = (0..EXPIRY_HOLDS).map(|_| rng.i64(1..=5)).collect();
    let units: i64 = quantities.iter().sum();
    let prefix = unique_customer("sweep");
    let requests: Vec<Vec<u8>> = quantities
        .iter()
        .enumerate()
        .map(|(i, &q)| hold_request(product, &new_uuid_v4(), &format!("{prefix}-{}", i % 20), q))
        .collect();
    let mut conns = open_conns(&ports(&s), requests.len());
    let responses = race(&mut conns, &requests);
    let all: Vec<&Response> = responses.iter().collect();
    assert!(
        responses.iter().all(|r| r.status == 201),
        "every hold created: {}",
        summary(&all)
    );
    assert_hold_accounting(&s, product);

    wait_for("all 200 holds EXPIRED", SWEEP_WAIT, || {
        s.query_i64(&format!(
            "SELECT count(*) FROM holds WHERE product_id = {product} AND status = 'EXPIRED'"
        )) == EXPIRY_HOLDS as i64
    });
    assert_eq!(
        stock_and_held(&s, product),
        (initial, 0),
        "every unit back once"
    );
    assert_stock_equation(&s, product);
    let early = s.query_i64(&format!(
        "SELECT count(*) FROM holds WHERE product_id = {product} \
         AND (ended_at IS NULL OR ended_at < expires_at)"
    ));
    assert_eq!(early, 0, "every hold ended, none before its expires_at");

    // The sweeps' own accounting: 200 holds, every unit, once in total.
    // The database shows a sweep's work a moment before its server counts
    // and logs it: wait for the counters to reach 200, then hold them to it.
    let logged = |name: &str| -> i64 {
        s.servers
            .iter()
            .flat_map(|server| log_events(server, "holds_expired"))
            .map(|event| event.get(name).as_i64())
            .sum()
    };
    wait_for("the sweeps count and log 200 holds", SWEEP_WAIT, || {
        metric_sum(&s, "flashsale_holds_expired_total") >= EXPIRY_HOLDS as f64
            && logged("holds") >= EXPIRY_HOLDS as i64
    });
    let expired = metric_sum(&s, "flashsale_holds_expired_total");
    assert_eq!(expired, EXPIRY_HOLDS as f64, "holds expired by both sweeps");
    let created = metric_sum(&s, &outcome_series("flashsale_holds_total", "created"));
    assert_eq!(created, EXPIRY_HOLDS as f64);
    let (mut logged_holds, mut logged_units) = (0, 0);
    for server in &s.servers {
        assert!(
            metric(&mut server.conn(), "flashsale_hold_sweeps_total") > 0.0,
            "port {} sweeps",
            server.port()
        );
        for event in log_events(server, "holds_expired") {
            let (holds, units) = (event.get("holds").as_i64(), event.get("units").as_i64());
            // At most one sweep's batch (HOLD_SWEEP_BATCH_MAX).
            assert!((1..=200).contains(&holds), "{event}");
            assert!(units >= holds, "{event}");
            logged_holds += holds;
            logged_units += units;
        }
    }
    assert_eq!(
        logged_holds, EXPIRY_HOLDS as i64,
        "holds in holds_expired events"
    );
    assert_eq!(logged_units, units, "units in holds_expired events");

    // Reading them now expires nothing again.
    let mut c = s.conn();
    for response in responses.iter().take(10) {
        let id = hold_id(&response.json(201));
        assert_eq!(get_hold(&mut c, &id).get("status").as_str(), "EXPIRED");
    }
    assert_eq!(stock_and_held(&s, product), (initial, 0));
    assert_eq!(metric_sum(&s, "flashsale_holds_expired_total"), expired);
}

#[test]
fn buys_racing_the_expiry_either_buy_or_return_the_units_never_both() {
    let s = short_stack();
    let initial = 500;
    let product = product(&s, PRICE, initial, "");
    let customer = unique_customer("racer");
    let mut rng = fastrand::Rng::with_seed(11);
    let requests: Vec<Vec<u8>> = (0..RACING_HOLDS)
        .map(|_| hold_request(product, &new_uuid_v4(), &customer, rng.i64(1..=3)))
        .collect();
    let ports = ports(&s);
    let mut conns = open_conns(&ports, requests.len());
    let holds: Vec<Json> = race(&mut conns, &requests)
        .iter()
        .map(|r| r.json(201))
        .collect();

    // Each hold is bought twice at once, once per server, at a moment
    // from before its expiry to after it.
    let base = Instant::now();
    let base_unix = now_unix_s();
    let span = (RACE_LAST_OFFSET_MS - RACE_FIRST_OFFSET_MS) as f64;
    // (hold index, offset ms, unix time sent, response)
    let results: Vec<(usize, i64, f64, Response)> = thread::scope(|scope| {
        let mut handles = Vec::new();
        for (i, hold) in holds.iter().enumerate() {
            let offset =
                RACE_FIRST_OFFSET_MS + (span * i as f64 / (RACING_HOLDS - 1) as f64).round() as i64;
            let expires = parse_utc(hold.get("expires_at").as_str()).expect("expires_at");
            let at_unix = expires + offset as f64 / 1000.0;
            let at = base + Duration::from_secs_f64((at_unix - base_unix).max(0.0));
            for &port in &ports {
                let request = consume_request(&hold_id(hold), &new_uuid_v4(), &customer);
                handles.push(scope.spawn(move || {
                    let mut conn = Conn::open(port);
                    thread::sleep(at.saturating_duration_since(Instant::now()));
                    let sent = now_unix_s();
                    conn.send(&request);
                    (i, offset, sent, conn.read_response())
                }));
            }
        }
        handles.into_iter().map(join).collect()
    });

    let mut per_hold: BTreeMap<usize, Vec<(i64, f64, Response)>> = BTreeMap::new();
    for (i, offset, sent, response) in results {
        per_hold
            .entry(i)
            .or_default()
            .push((offset, sent, response));
    }
    // Wait until no hold of the product is HELD (the sweeps end them).
    wait_for("no hold left HELD", SWEEP_WAIT, || {
        figures(&s, product).in_held_holds == 0
    });
    let (mut bought, mut expired, mut bought_units) = (0, 0, 0);
    for (i, answers) in &per_hold {
        let hold = &holds[*i];
        let id = hold_id(hold);
        let expires = parse_utc(hold.get("expires_at").as_str()).expect("expires_at");
        let shown: Vec<&Response> = answers.iter().map(|(_, _, r)| r).collect();
        let what = format!(
            "hold {id} bought at offset {} ms: {}",
            answers[0].0,
            summary(&shown)
        );
        let winners: Vec<Json> = answers
            .iter()
            .filter(|(_, _, r)| r.status == 201)
            .map(|(_, _, r)| r.json(201))
            .collect();
        for (_, sent, response) in answers {
            if *sent >= expires + CERTAINLY_LATE_MS as f64 / 1000.0 {
                assert_ne!(response.status, 201, "bought after its expiry: {what}");
            }
        }
        match winners.as_slice() {
            [] => {
                for (_, _, r) in answers {
                    assert_eq!(outcome_of(r), "hold_expired", "{what}");
                }
                assert_eq!(hold_status_in_db(&s, &id), "EXPIRED", "{what}");
                assert_eq!(orders_of_hold(&s, &id), 0, "{what}");
                expired += 1;
            }
            [order] => {
                for (_, _, r) in answers.iter().filter(|(_, _, r)| r.status != 201) {
                    // The loser met a CONSUMED hold, possibly past its expiry.
                    let reason = outcome_of(r);
                    assert!(
                        reason == "hold_not_active" || reason == "hold_expired",
                        "{what}"
                    );
                }
                assert_eq!(order.get("quantity"), hold.get("quantity"), "{what}");
                assert_eq!(hold_status_in_db(&s, &id), "CONSUMED", "{what}");
                assert_eq!(hold_column(&s, &id, "order_id"), order_id(order), "{what}");
                assert_eq!(orders_of_hold(&s, &id), 1, "{what}");
                bought += 1;
                bought_units += order.get("quantity").as_i64();
            }
            _ => panic!("two orders of one hold: {what}"),
        }
    }
    assert_eq!(bought + expired, RACING_HOLDS, "every hold judged");
    assert!(
        bought > 0,
        "no buy before the expiry won: the race proved nothing"
    );
    assert!(expired > 0, "no hold expired: the race proved nothing");
    assert_eq!(
        stock_and_held(&s, product),
        (initial - bought_units, 0),
        "bought units gone, every other unit back once"
    );
    assert_stock_equation(&s, product);
    assert_hold_accounting(&s, product);
}

// ---- everything at once ------------------------------------------------------------------

/// What a worker of the mixed test remembers.
struct Mine {
    /// (hold id, product, quantity)
    holds: Vec<(String, i64, i64)>,
    /// (order id, product)
    orders: Vec<(String, i64)>,
}

fn expect_one_of(response: &Response, allowed: &[&str], what: &str) -> String {
    let outcome = outcome_of(response);
    assert!(
        allowed.contains(&outcome.as_str()),
        "{what}: answer {outcome} not in {allowed:?}:\n{response}"
    );
    outcome
}

/// One worker: random orders, holds, buys, releases, cancels, payments
/// and waits, as `customer`, alternating between the servers.
fn mixed_worker(
    ports: &[u16],
    products: &[i64],
    customer: &str,
    seed: u64,
    start: &Barrier,
) -> BTreeMap<String, usize> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut conns: Vec<Conn> = ports.iter().map(|&p| Conn::open(p)).collect();
    let mut mine = Mine {
        holds: Vec::new(),
        orders: Vec::new(),
    };
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    start.wait();
    for op in 0..MIXED_OPS_PER_WORKER {
        let conn = &mut conns[rng.usize(..ports.len())];
        let product = products[rng.usize(..products.len())];
        let what = format!("seed {seed}, op {op}");
        let (kind, outcome) = match rng.u32(0..100) {
            0..=21 => {
                let r = try_place(conn, product, customer, rng.i64(1..=3));
                let o = expect_one_of(
                    &r,
                    &["201", "insufficient_stock", "customer_limit_reached"],
                    &what,
                );
                if r.status == 201 {
                    mine.orders.push((order_id(&r.json(201)), product));
                }
                ("order", o)
            }
            22..=43 => {
                let q = rng.i64(1..=3);
                let r = try_hold(conn, product, customer, q);
                let o = expect_one_of(
                    &r,
                    &["201", "insufficient_stock", "customer_limit_reached"],
                    &what,
                );
                if r.status == 201 {
                    mine.holds.push((hold_id(&r.json(201)), product, q));
                }
                ("hold", o)
            }
            44..=57 if !mine.holds.is_empty() => {
                let (id, product, q) = mine.holds[rng.usize(..mine.holds.len())].clone();
                let r = try_consume(conn, &id, customer);
                let o = expect_one_of(&r, &["201", "hold_expired", "hold_not_active"], &what);
                if r.status == 201 {
                    let order = r.json(201);
                    assert_eq!(order.get("quantity").as_i64(), q, "{what}: {order}");
                    assert_eq!(order.get("product_id").as_i64(), product, "{what}");
                    mine.orders.push((order_id(&order), product));
                }
                ("buy", o)
            }
            58..=67 if !mine.holds.is_empty() => {
                let (id, _, q) = mine.holds[rng.usize(..mine.holds.len())].clone();
                let r = try_release(conn, &id);
                let o = expect_one_of(&r, &["200", "hold_expired", "hold_not_active"], &what);
                if r.status == 200 {
                    assert_eq!(r.json(200).get("restored_quantity").as_i64(), q, "{what}");
                }
                ("release", o)
            }
            68..=77 if !mine.orders.is_empty() => {
                let (id, _) = mine.orders[rng.usize(..mine.orders.len())].clone();
                let r = conn.request("POST", &format!("/orders/{id}/cancel"), None);
                (
                    "cancel",
                    expect_one_of(&r, &["200", "already_cancelled"], &what),
                )
            }
            78..=92 if !mine.orders.is_empty() => {
                let (id, _) = mine.orders[rng.usize(..mine.orders.len())].clone();
                let status = if rng.u32(0..3) == 0 {
                    "succeeded"
                } else {
                    "failed"
                };
                let occurred = format!("2030-01-01T00:{:02}:{:02}Z", op / 60, op % 60);
                let body = event_body(&new_event_id("mixed"), &id, status, &occurred);
                conn.send(&signed_webhook_request(&body));
                let r = conn.read_response();
                let answer = r.json(200);
                let applied = answer.get("applied") == &Json::Bool(true);
                ("payment", format!("{status} applied {applied}"))
            }
            93..=96 if !mine.holds.is_empty() => {
                let (id, _, _) = mine.holds[rng.usize(..mine.holds.len())].clone();
                let status = get_hold(conn, &id).get("status").as_str().to_owned();
                ("read", status)
            }
            _ => {
                // Let some holds run out.
                thread::sleep(Duration::from_millis(rng.u64(100..600)));
                ("wait", String::new())
            }
        };
        *seen.entry(format!("{kind} {outcome}")).or_default() += 1;
    }
    seen
}

#[test]
fn mixed_random_operations_on_two_servers_keep_the_stock_equation() {
    let s = short_stack();
    let products = vec![
        product(&s, PRICE, 30, ""),
        product(&s, PRICE + 1, 20, "per_customer_limit = 3"),
        product(&s, PRICE + 2, 25, "per_customer_limit = 2"),
    ];
    // Two workers per customer, so one customer's limit is raced too.
    let customers: Vec<String> = (0..MIXED_WORKERS / 2)
        .map(|i| unique_customer(&format!("mixed{i}")))
        .collect();
    let ports = ports(&s);
    let start = Barrier::new(MIXED_WORKERS);
    let seed = (now_unix_s() * 1000.0) as u64;
    let seen: Vec<BTreeMap<String, usize>> = thread::scope(|scope| {
        let handles: Vec<_> = (0..MIXED_WORKERS)
            .map(|w| {
                let (ports, products, customer, start) =
                    (&ports, &products, &customers[w / 2], &start);
                scope.spawn(move || mixed_worker(ports, products, customer, seed + w as u64, start))
            })
            .collect();
        handles.into_iter().map(join).collect()
    });
    let mut totals: BTreeMap<String, usize> = BTreeMap::new();
    for map in seen {
        for (k, n) in map {
            *totals.entry(k).or_default() += n;
        }
    }
    let what = format!("seeds from {seed}: {totals:?}");

    // Right after: the accounting holds in one snapshot, sweeps running.
    for &product in &products {
        assert_hold_accounting(&s, product);
    }
    let list = products
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    wait_for("every hold ended", SWEEP_WAIT, || {
        s.query_i64(&format!(
            "SELECT count(*) FROM holds WHERE product_id IN ({list}) AND status = 'HELD'"
        )) == 0
    });
    for &product in &products {
        let f = assert_hold_accounting(&s, product);
        assert_eq!(f.held, 0, "{what}");
        assert_stock_equation(&s, product);
    }
    let checks = [
        (
            "a CONSUMED hold without its order",
            format!(
                "SELECT count(*) FROM holds h WHERE h.product_id IN ({list}) \
                 AND h.status = 'CONSUMED' AND NOT EXISTS (SELECT 1 FROM orders o \
                 WHERE o.id = h.order_id AND o.hold_id = h.id AND o.quantity = h.quantity \
                 AND o.product_id = h.product_id AND o.customer_id = h.customer_id \
                 AND o.unit_price = h.unit_price)"
            ),
        ),
        (
            "an order of a hold that is not CONSUMED by it",
            format!(
                "SELECT count(*) FROM orders o WHERE o.product_id IN ({list}) \
                 AND o.hold_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM holds h \
                 WHERE h.id = o.hold_id AND h.status = 'CONSUMED' AND h.order_id = o.id)"
            ),
        ),
        (
            "a failed payment on an order still CONFIRMED",
            format!(
                "SELECT count(*) FROM orders WHERE product_id IN ({list}) \
                 AND payment_status = 'FAILED' AND status <> 'CANCELLED'"
            ),
        ),
        (
            "a hold whose ended_at disagrees with its status",
            format!(
                "SELECT count(*) FROM holds WHERE product_id IN ({list}) \
                 AND (status = 'HELD') <> (ended_at IS NULL)"
            ),
        ),
        (
            "a customer past a product's limit",
            format!(
                "SELECT count(*) FROM (SELECT o.customer_id, sum(o.quantity) AS units, \
                 max(p.per_customer_limit) AS lim FROM orders o JOIN products p \
                 ON p.id = o.product_id WHERE o.product_id IN ({list}) \
                 AND o.status = 'CONFIRMED' AND p.per_customer_limit IS NOT NULL \
                 GROUP BY o.product_id, o.customer_id) t WHERE units > lim"
            ),
        ),
    ];
    for (name, sql) in &checks {
        assert_eq!(s.query_i64(sql), 0, "{name}; {what}");
    }
    // The mix did reach every end a hold can have.
    for status in ["EXPIRED", "CONSUMED", "RELEASED"] {
        let n = s.query_i64(&format!(
            "SELECT count(*) FROM holds WHERE product_id IN ({list}) AND status = '{status}'"
        ));
        assert!(n > 0, "no {status} hold; {what}");
    }
    let declined = s.query_i64(&format!(
        "SELECT count(*) FROM orders WHERE product_id IN ({list}) AND payment_status = 'FAILED'"
    ));
    assert!(declined > 0, "no failed payment applied; {what}");
}

// ---- metrics, the log, the rate limit, settings ---------------------------------------------

#[test]
fn hold_metrics_count_each_outcome_and_route() {
    let s = lasting_stack();
    // A server of its own: its counters are this test's alone.
    let server = private_server(
        &s,
        &[
            ("HOLD_TTL_SECS", "3600"),
            ("HOLD_SWEEP_INTERVAL_MS", "60000"),
        ],
    );
    let mut c = server.conn();
    let plain = product(&s, PRICE, 3, "");
    let capped = product(&s, PRICE, 10, "per_customer_limit = 1");
    let upcoming = product(&s, PRICE, 10, "starts_at = now() + interval '1 hour'");
    let ended = product(&s, PRICE, 10, "ends_at = now()");
    let customer = unique_customer("metrics");
    let key = new_uuid_v4();
    let first = c
        .post("/holds", &hold_body(plain, &key, &customer, 1))
        .json(201);
    c.post("/holds", &hold_body(plain, &key, &customer, 1))
        .json(200);
    let second = place_hold(&mut c, capped, &customer, 1);
    try_hold(&mut c, capped, &customer, 1).error_reason(409, "customer_limit_reached");
    try_hold(&mut c, plain, &customer, 3).error_reason(409, "insufficient_stock");
    try_hold(&mut c, upcoming, &customer, 1).error_reason(409, "sale_not_started");
    try_hold(&mut c, ended, &customer, 1).error_reason(409, "sale_ended");
    try_hold(&mut c, UNKNOWN_PRODUCT, &customer, 1).error(404, None);
    c.post("/holds", "{}").error(422, None);
    get_hold(&mut c, &hold_id(&first));
    c.get(&format!("/holds/{UNKNOWN_ID}")).error(404, None);
    c.get("/holds/nope").error(422, None);
    release(&mut c, &hold_id(&first));
    try_release(&mut c, &hold_id(&first)).error_reason(409, "hold_not_active");
    try_release(&mut c, UNKNOWN_ID).error(404, None);
    consume(&mut c, &hold_id(&second), &customer);
    try_consume(&mut c, &hold_id(&first), &customer).error_reason(409, "hold_not_active");

    let m = scrape(&mut c);
    let get = |series: &str| m.get(series).copied().unwrap_or(0.0);
    let holds = |outcome: &str| get(&outcome_series("flashsale_holds_total", outcome));
    for (outcome, want) in [
        ("created", 2.0),
        ("replayed", 1.0),
        ("product_not_found", 1.0),
        ("invalid", 1.0),
        ("insufficient_stock", 1.0),
        ("sale_not_started", 1.0),
        ("sale_ended", 1.0),
        ("customer_limit_reached", 1.0),
        ("rate_limited", 0.0),
    ] {
        assert_eq!(
            holds(outcome),
            want,
            "flashsale_holds_total{{outcome={outcome:?}}}"
        );
    }
    for (route, status, want) in [
        ("place_hold", 201, 2.0),
        ("place_hold", 200, 1.0),
        ("place_hold", 409, 4.0),
        ("place_hold", 404, 1.0),
        ("place_hold", 422, 1.0),
        ("get_hold", 200, 1.0),
        ("get_hold", 404, 1.0),
        ("get_hold", 422, 1.0),
        ("release_hold", 200, 1.0),
        ("release_hold", 409, 1.0),
        ("release_hold", 404, 1.0),
        ("place_order", 201, 1.0),
        ("place_order", 409, 1.0),
    ] {
        assert_eq!(
            get(&requests_series(route, status)),
            want,
            "{route} {status}"
        );
    }
    assert_eq!(get("flashsale_holds_expired_total"), 0.0);
    let start = &log_events(&server, "start")[0];
    assert_eq!(start.get("hold_ttl_secs").as_i64(), 3600, "{start}");
    assert_eq!(
        start.get("hold_sweep_interval_ms").as_i64(),
        60000,
        "{start}"
    );
    assert_eq!(start.get("webhooks"), &Json::Bool(false), "{start}");
}

#[test]
fn the_short_stack_sweeps_on_both_servers_and_logs_expiries() {
    let s = short_stack();
    let product = product(&s, PRICE, 10, "");
    let mut c = s.conn();
    let sweeps_before: Vec<f64> = s
        .servers
        .iter()
        .map(|sv| metric(&mut sv.conn(), "flashsale_hold_sweeps_total"))
        .collect();
    let hold = place_hold(&mut c, product, &unique_customer("logged"), 2);
    let id = hold_id(&hold);
    wait_for("the sweep expires the hold", SWEEP_WAIT, || {
        hold_status_in_db(&s, &id) == "EXPIRED"
    });
    // Both servers keep sweeping.
    for (server, before) in s.servers.iter().zip(&sweeps_before) {
        wait_for("sweeps counted", SWEEP_WAIT, || {
            metric(&mut server.conn(), "flashsale_hold_sweeps_total") > *before
        });
        let start = &log_events(server, "start")[0];
        assert_eq!(start.get("hold_ttl_secs").as_i64(), 1, "{start}");
        assert_eq!(start.get("hold_sweep_interval_ms").as_i64(), 100, "{start}");
        assert_eq!(start.get("webhooks"), &Json::Bool(true), "{start}");
    }
    assert!(metric_sum(&s, "flashsale_holds_expired_total") >= 1.0);
    let logged: Vec<Json> = s
        .servers
        .iter()
        .flat_map(|sv| log_events(sv, "holds_expired"))
        .collect();
    assert!(!logged.is_empty(), "a holds_expired event");
    for event in &logged {
        assert!(event.get("holds").as_i64() >= 1, "{event}");
        assert!(
            event.get("units").as_i64() >= event.get("holds").as_i64(),
            "{event}"
        );
    }
    assert_eq!(stock_and_held(&s, product), (10, 0));
}

#[test]
fn holds_share_the_order_rate_limit() {
    let s = lasting_stack();
    let server = private_server(
        &s,
        &[
            ("HOLD_TTL_SECS", "3600"),
            ("HOLD_SWEEP_INTERVAL_MS", "60000"),
            ("ORDER_RATE_PER_CUSTOMER", "0.001"),
            ("ORDER_BURST", "2"),
        ],
    );
    let mut c = server.conn();
    let product = product(&s, PRICE, 10, "");
    let (a, b) = (unique_customer("rate-a"), unique_customer("rate-b"));
    let hold = place_hold(&mut c, product, &a, 1);
    place(&mut c, product, &a, 1);
    // The bucket of two is spent, by a hold and an order together.
    let refused = try_hold(&mut c, product, &a, 1);
    refused.error_reason(429, "rate_limited");
    assert!(refused.header("Retry-After").is_some(), "{refused}");
    try_consume(&mut c, &hold_id(&hold), &a).error_reason(429, "rate_limited");
    try_place(&mut c, product, &a, 1).error_reason(429, "rate_limited");
    place_hold(&mut c, product, &b, 1);
    assert_eq!(hold_status_in_db(&s, &hold_id(&hold)), "HELD");
    assert_eq!(stock_and_held(&s, product), (7, 2));
    assert_eq!(
        metric(
            &mut c,
            &outcome_series("flashsale_holds_total", "rate_limited")
        ),
        1.0
    );
}

#[test]
fn boundary_hold_settings_are_accepted() {
    let s = lasting_stack();
    let server = private_server(
        &s,
        &[("HOLD_TTL_SECS", "86400"), ("HOLD_SWEEP_INTERVAL_MS", "50")],
    );
    let start = &log_events(&server, "start")[0];
    assert_eq!(start.get("hold_ttl_secs").as_i64(), 86400, "{start}");
    assert_eq!(start.get("hold_sweep_interval_ms").as_i64(), 50, "{start}");
    let product = product(&s, PRICE, 5, "");
    let hold = place_hold(&mut server.conn(), product, &unique_customer("day"), 1);
    let created = parse_utc(hold.get("created_at").as_str()).expect("created_at");
    let expires = parse_utc(hold.get("expires_at").as_str()).expect("expires_at");
    assert!((expires - created - 86400.0).abs() < 0.5, "{hold}");
}

#[test]
fn bad_hold_settings_refuse_to_start_naming_the_variable() {
    for (name, value) in [
        ("HOLD_TTL_SECS", "0"),
        ("HOLD_TTL_SECS", "86401"),
        ("HOLD_TTL_SECS", "-1"),
        ("HOLD_TTL_SECS", "abc"),
        ("HOLD_TTL_SECS", "1.5"),
        ("HOLD_SWEEP_INTERVAL_MS", "49"),
        ("HOLD_SWEEP_INTERVAL_MS", "60001"),
        ("HOLD_SWEEP_INTERVAL_MS", "x"),
    ] {
        let (status, stderr) = run_refused(&[(name, value)]);
        assert!(!status.success(), "{name}={value}: {status}\n{stderr}");
        assert!(
            stderr.contains(name),
            "{name}={value}: stderr names it:\n{stderr}"
        );
    }
}
