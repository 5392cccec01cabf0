//! Helpers shared by the holds and payments tests (`tests/holds.rs`,
//! `tests/payments.rs`): their stacks (several per test binary, one per
//! setting of the hold lifetime and the sweep), request bodies, the hold,
//! order and webhook answers' shapes, signatures, the stock figures of a
//! product in one snapshot, polls with a deadline, metrics and log events.
//!
//! Times a hold lives are judged by the database's clock; tests that need a
//! hold past due wait for it by asking the database, never by sleeping a
//! guessed amount.

use std::collections::BTreeMap;
use std::io::Read;
use std::panic::{self, AssertUnwindSafe};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, Once};
use std::thread;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::sales::{assert_time_format, json_string, object, sql_string, ADMIN_TOKEN};
use super::server::http::{request_bytes, request_bytes_with_headers, Conn, Response};
use super::server::json::{parse, Json};
use super::server::{new_uuid_v4, ServerProcess, Stack};

/// The secret of every stack that takes webhooks (16..=256 printable ASCII).
pub const WEBHOOK_SECRET: &str = "holds-tests-webhook-secret-6f1d0a93c2";
/// A hold id that is a well-formed UUID and never a hold.
pub const UNKNOWN_ID: &str = "00000000-0000-4000-8000-000000000000";
/// Members of a hold, in the contract's order.
pub const HOLD_KEYS: [&str; 9] = [
    "hold_id",
    "product_id",
    "customer_id",
    "quantity",
    "unit_price",
    "status",
    "expires_at",
    "created_at",
    "order_id",
];
/// Members of a release's answer, in the contract's order.
pub const RELEASE_KEYS: [&str; 3] = ["hold_id", "status", "restored_quantity"];
/// Members of an order object: the challenge's, then `payment_status`.
pub const ORDER_KEYS: [&str; 11] = [
    "order_id",
    "id",
    "idempotency_key",
    "product_id",
    "customer_id",
    "quantity",
    "unit_price",
    "total_price",
    "status",
    "created_at",
    "payment_status",
];
/// Members of a webhook's 200 answer, in the contract's order.
pub const WEBHOOK_KEYS: [&str; 6] = [
    "event_id",
    "order_id",
    "duplicate",
    "applied",
    "payment_status",
    "refund_required",
];
/// How often a poll asks again.
const POLL: Duration = Duration::from_millis(25);
/// A hold counts as past due for a test once the database's clock is this
/// far beyond its `expires_at` (covers the millisecond the API truncates).
const PAST_DUE_MARGIN_MS: i64 = 20;

// ---- stacks ------------------------------------------------------------------------

/// Holds live an hour and no sweep comes for a minute: nothing expires
/// unless a test makes it.
pub const LASTING_ENV: [(&str, &str); 3] = [
    ("ADMIN_TOKEN", ADMIN_TOKEN),
    ("HOLD_TTL_SECS", "3600"),
    ("HOLD_SWEEP_INTERVAL_MS", "60000"),
];
/// Holds live a second and no sweep comes for a minute: a hold goes past
/// due and stays HELD until a request meets it.
pub const UNSWEPT_ENV: [(&str, &str); 3] = [
    ("ADMIN_TOKEN", ADMIN_TOKEN),
    ("HOLD_TTL_SECS", "1"),
    ("HOLD_SWEEP_INTERVAL_MS", "60000"),
];
/// Holds live a second, each instance sweeps every 100 ms, webhooks on.
pub const SHORT_ENV: [(&str, &str); 4] = [
    ("ADMIN_TOKEN", ADMIN_TOKEN),
    ("HOLD_TTL_SECS", "1"),
    ("HOLD_SWEEP_INTERVAL_MS", "100"),
    ("WEBHOOK_SECRET", WEBHOOK_SECRET),
];
/// Webhooks on; holds live an hour.
pub const WEBHOOK_ENV: [(&str, &str); 4] = [
    ("ADMIN_TOKEN", ADMIN_TOKEN),
    ("WEBHOOK_SECRET", WEBHOOK_SECRET),
    ("HOLD_TTL_SECS", "3600"),
    ("HOLD_SWEEP_INTERVAL_MS", "60000"),
];

type Slot = (&'static str, Result<Arc<Stack>, String>);

static STACKS: Mutex<Vec<Slot>> = Mutex::new(Vec::new());
static CLEANUP: Once = Once::new();

/// The stack called `name` of this test binary: two servers with `env`,
/// started on first use and stopped when the process exits. A name always
/// comes with the same `env`.
pub fn named_stack(name: &'static str, env: &[(&str, &str)]) -> Arc<Stack> {
    let mut stacks = STACKS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, slot)) = stacks.iter().find(|(n, _)| *n == name) {
        return match slot {
            Ok(stack) => Arc::clone(stack),
            Err(why) => panic!("stack {name} failed to start earlier: {why}"),
        };
    }
    CLEANUP.call_once(|| {
        // SAFETY: atexit only stores the function pointer; the handler is a
        // plain `extern "C" fn` that catches every panic.
        unsafe {
            libc::atexit(drop_stacks);
        }
    });
    match panic::catch_unwind(|| Stack::start_with_env(2, env)) {
        Ok(stack) => {
            let stack = Arc::new(stack);
            stacks.push((name, Ok(Arc::clone(&stack))));
            stack
        }
        Err(payload) => {
            let why = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "panic without a message".to_owned());
            stacks.push((name, Err(why.clone())));
            panic!("{why}");
        }
    }
}

/// Statics are never dropped: this stops the stacks' servers and clusters
/// when the test binary exits.
extern "C" fn drop_stacks() {
    let _ = panic::catch_unwind(AssertUnwindSafe(|| {
        let mut stacks = STACKS.lock().unwrap_or_else(|e| e.into_inner());
        stacks.clear();
    }));
}

pub fn lasting_stack() -> Arc<Stack> {
    named_stack("lasting", &LASTING_ENV)
}

/// A stack of the test's own: its servers' first sweep comes a minute
/// (±10 %) after they start, so however late a test runs in its binary, no
/// sweep meets the holds it lets go past due.
pub fn unswept_stack() -> Arc<Stack> {
    Arc::new(Stack::start_with_env(2, &UNSWEPT_ENV))
}

pub fn short_stack() -> Arc<Stack> {
    named_stack("short", &SHORT_ENV)
}

pub fn webhook_stack() -> Arc<Stack> {
    named_stack("webhooks", &WEBHOOK_ENV)
}

/// One more server on `s`'s database with `env`: its metrics and log are
/// this test's alone.
pub fn private_server(s: &Stack, env: &[(&str, &str)]) -> ServerProcess {
    ServerProcess::start(&super::server::api_url(&s.cluster), env)
}

// ---- requests ------------------------------------------------------------------------

/// A hold body: the members of an order body.
pub fn hold_body(product_id: i64, key: &str, customer: &str, quantity: i64) -> String {
    super::sales::order_body(product_id, key, customer, quantity)
}

pub fn hold_request(product_id: i64, key: &str, customer: &str, quantity: i64) -> Vec<u8> {
    let body = hold_body(product_id, key, customer, quantity);
    request_bytes("POST", "/holds", Some(body.as_bytes()))
}

/// Places a hold with a fresh key; the response, whatever it is.
pub fn try_hold(conn: &mut Conn, product_id: i64, customer: &str, quantity: i64) -> Response {
    conn.post(
        "/holds",
        &hold_body(product_id, &new_uuid_v4(), customer, quantity),
    )
}

/// Places a hold with a fresh key that must be created (201).
pub fn place_hold(conn: &mut Conn, product_id: i64, customer: &str, quantity: i64) -> Json {
    let hold = try_hold(conn, product_id, customer, quantity).json(201);
    assert_hold_shape(&hold);
    hold
}

/// `{"hold_id", "idempotency_key", "customer_id"}`: buys a hold.
pub fn consume_body(hold_id: &str, key: &str, customer: &str) -> String {
    object(&[
        ("hold_id", json_string(hold_id)),
        ("idempotency_key", json_string(key)),
        ("customer_id", json_string(customer)),
    ])
}

pub fn consume_request(hold_id: &str, key: &str, customer: &str) -> Vec<u8> {
    let body = consume_body(hold_id, key, customer);
    request_bytes("POST", "/orders", Some(body.as_bytes()))
}

/// Buys a hold with a fresh order key; the response, whatever it is.
pub fn try_consume(conn: &mut Conn, hold_id: &str, customer: &str) -> Response {
    conn.post("/orders", &consume_body(hold_id, &new_uuid_v4(), customer))
}

/// Buys a hold with a fresh order key; the order (201).
pub fn consume(conn: &mut Conn, hold_id: &str, customer: &str) -> Json {
    let order = try_consume(conn, hold_id, customer).json(201);
    assert_order_shape(&order);
    order
}

pub fn release_path(hold_id: &str) -> String {
    format!("/holds/{hold_id}/release")
}

/// `POST /holds/{id}/release` without a body.
pub fn release_request(hold_id: &str) -> Vec<u8> {
    request_bytes("POST", &release_path(hold_id), None)
}

pub fn try_release(conn: &mut Conn, hold_id: &str) -> Response {
    conn.request("POST", &release_path(hold_id), None)
}

pub fn release(conn: &mut Conn, hold_id: &str) -> Json {
    try_release(conn, hold_id).json(200)
}

pub fn get_hold(conn: &mut Conn, hold_id: &str) -> Json {
    let hold = conn.get(&format!("/holds/{hold_id}")).json(200);
    assert_hold_shape(&hold);
    hold
}

pub fn hold_id(hold: &Json) -> String {
    hold.get("hold_id").as_str().to_owned()
}

pub fn order_id(order: &Json) -> String {
    order.get("order_id").as_str().to_owned()
}

// ---- shapes ----------------------------------------------------------------------------

/// `8-4-4-4-12` lowercase hex digits.
pub fn assert_uuid_text(s: &str) {
    let ok = s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => matches!(c, '0'..='9' | 'a'..='f'),
        });
    assert!(ok, "{s:?} is not a lowercase hyphenated UUID");
}

/// The hold's members in order and their types; `order_id` is a UUID
/// exactly when the hold is CONSUMED.
pub fn assert_hold_shape(hold: &Json) {
    assert_eq!(hold.keys(), HOLD_KEYS, "members of {hold}");
    assert_uuid_text(hold.get("hold_id").as_str());
    assert!(hold.get("product_id").as_i64() > 0, "{hold}");
    assert!(!hold.get("customer_id").as_str().is_empty(), "{hold}");
    assert!((1..=5).contains(&hold.get("quantity").as_i64()), "{hold}");
    assert!(hold.get("unit_price").as_i64() >= 0, "{hold}");
    let status = hold.get("status").as_str();
    assert!(
        ["HELD", "CONSUMED", "RELEASED", "EXPIRED"].contains(&status),
        "status of {hold}"
    );
    assert_time_format(hold.get("expires_at").as_str());
    assert_time_format(hold.get("created_at").as_str());
    match hold.get("order_id") {
        Json::Null => assert_ne!(
            status, "CONSUMED",
            "a CONSUMED hold names its order: {hold}"
        ),
        Json::Str(id) => {
            assert_eq!(
                status, "CONSUMED",
                "only a CONSUMED hold has an order: {hold}"
            );
            assert_uuid_text(id);
        }
        other => panic!("order_id is a UUID or null, got {other} in {hold}"),
    }
}

/// The order object's members in order (with `payment_status` last).
pub fn assert_order_shape(order: &Json) {
    assert_eq!(order.keys(), ORDER_KEYS, "members of {order}");
    assert_uuid_text(order.get("order_id").as_str());
    assert_eq!(order.get("id"), order.get("order_id"), "{order}");
    let quantity = order.get("quantity").as_i64();
    let unit_price = order.get("unit_price").as_i64();
    assert_eq!(
        order.get("total_price").as_i64(),
        quantity * unit_price,
        "{order}"
    );
    assert!(
        ["CONFIRMED", "CANCELLED"].contains(&order.get("status").as_str()),
        "{order}"
    );
    assert_time_format(order.get("created_at").as_str());
    assert!(
        ["PENDING", "PAID", "FAILED"].contains(&order.get("payment_status").as_str()),
        "{order}"
    );
}

/// Exactly `{"error": message}`, optionally with a `reason`; the message
/// must be `message`.
pub fn assert_error_message(response: &Response, status: u16, message: &str) {
    let got = response.error(status, None);
    assert_eq!(got, message, "error message in:\n{response}");
}

// ---- the database --------------------------------------------------------------------

/// A product's stock in one snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Figures {
    pub initial: i64,
    pub current: i64,
    pub held: i64,
    /// Units of the product's CONFIRMED orders.
    pub confirmed: i64,
    /// Units of the product's holds whose status is HELD.
    pub in_held_holds: i64,
}

pub fn figures(s: &Stack, product: i64) -> Figures {
    let row = s.cluster.psql(&format!(
        "SELECT p.initial_stock || ' ' || p.current_stock || ' ' || p.held_stock || ' ' || \
         (SELECT coalesce(sum(quantity), 0) FROM orders \
          WHERE product_id = p.id AND status = 'CONFIRMED') || ' ' || \
         (SELECT coalesce(sum(quantity), 0) FROM holds \
          WHERE product_id = p.id AND status = 'HELD') \
         FROM products p WHERE p.id = {product}"
    ));
    let n: Vec<i64> = row
        .split(' ')
        .map(|x| x.parse().unwrap_or_else(|_| panic!("figures row {row:?}")))
        .collect();
    assert_eq!(n.len(), 5, "figures row {row:?}");
    Figures {
        initial: n[0],
        current: n[1],
        held: n[2],
        confirmed: n[3],
        in_held_holds: n[4],
    }
}

/// The stock equation with holds, and `held_stock` = units of HELD holds,
/// both in one snapshot.
pub fn assert_hold_accounting(s: &Stack, product: i64) -> Figures {
    let f = figures(s, product);
    assert_eq!(
        f.initial,
        f.current + f.held + f.confirmed,
        "product {product}: initial_stock = current_stock + held_stock + confirmed units ({f:?})"
    );
    assert_eq!(
        f.held, f.in_held_holds,
        "product {product}: held_stock = units of HELD holds ({f:?})"
    );
    f
}

/// `(current_stock, held_stock)`.
pub fn stock_and_held(s: &Stack, product: i64) -> (i64, i64) {
    let f = figures(s, product);
    (f.current, f.held)
}

/// A column of the hold's row as text (`''` for NULL).
pub fn hold_column(s: &Stack, hold_id: &str, column: &str) -> String {
    s.cluster.psql(&format!(
        "SELECT coalesce({column}::text, '') FROM holds WHERE id = '{hold_id}'"
    ))
}

pub fn hold_status_in_db(s: &Stack, hold_id: &str) -> String {
    hold_column(s, hold_id, "status")
}

/// Orders bought with this hold.
pub fn orders_of_hold(s: &Stack, hold_id: &str) -> i64 {
    s.query_i64(&format!(
        "SELECT count(*) FROM orders WHERE hold_id = '{hold_id}'"
    ))
}

pub fn order_column(s: &Stack, order_id: &str, column: &str) -> String {
    s.cluster.psql(&format!(
        "SELECT coalesce({column}::text, '') FROM orders WHERE id = '{order_id}'"
    ))
}

/// Holds of the product (any status).
pub fn hold_rows(s: &Stack, product: i64) -> i64 {
    s.query_i64(&format!(
        "SELECT count(*) FROM holds WHERE product_id = {product}"
    ))
}

/// Waits until the database's clock is past every hold's `expires_at`
/// (plus a margin); panics after `timeout`.
pub fn wait_past_due(s: &Stack, hold_ids: &[String], timeout: Duration) {
    let ids: Vec<String> = hold_ids.iter().map(|id| format!("'{id}'")).collect();
    let sql = format!(
        "SELECT count(*) FROM holds WHERE id IN ({}) \
         AND expires_at + interval '{PAST_DUE_MARGIN_MS} milliseconds' >= clock_timestamp()",
        ids.join(",")
    );
    wait_for("holds past due", timeout, || s.query_i64(&sql) == 0);
}

/// Polls `done` every 25 ms until it is true; panics naming `what` after
/// `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        thread::sleep(POLL);
    }
}

/// A product with a fresh id, `stock` units and sale `assignments` (empty:
/// none), e.g. `"per_customer_limit = 1"`.
pub fn product(s: &Stack, price: i64, stock: i64, assignments: &str) -> i64 {
    super::sales::sale_product(s, price, stock, assignments)
}

/// `customer` as an SQL literal.
pub fn sql_customer(customer: &str) -> String {
    sql_string(customer)
}

// ---- webhooks --------------------------------------------------------------------------

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// HMAC-SHA256 of `body` under `key`, lowercase hex.
pub fn hmac_hex(key: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(body);
    hex(&mac.finalize().into_bytes())
}

/// The `X-Signature` value for `body` under [`WEBHOOK_SECRET`].
pub fn signature(body: &[u8]) -> String {
    format!("sha256={}", hmac_hex(WEBHOOK_SECRET.as_bytes(), body))
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// `POST /payments/webhook` with one `X-Signature` header per entry.
pub fn webhook_request(body: &[u8], signatures: &[&str]) -> Vec<u8> {
    let headers: Vec<(&str, &str)> = signatures.iter().map(|s| ("X-Signature", *s)).collect();
    request_bytes_with_headers("POST", "/payments/webhook", &headers, Some(body))
}

/// `body` signed with the right secret.
pub fn signed_webhook_request(body: &str) -> Vec<u8> {
    webhook_request(body.as_bytes(), &[&signature(body.as_bytes())])
}

/// Sends `body` signed with the right secret.
pub fn send_webhook(conn: &mut Conn, body: &str) -> Response {
    conn.send(&signed_webhook_request(body));
    conn.read_response()
}

/// A webhook body in the contract's member order.
pub fn event_body(event_id: &str, order_id: &str, status: &str, occurred_at: &str) -> String {
    object(&[
        ("event_id", json_string(event_id)),
        ("order_id", json_string(order_id)),
        ("status", json_string(status)),
        ("occurred_at", json_string(occurred_at)),
    ])
}

/// An event id no other test uses.
pub fn new_event_id(prefix: &str) -> String {
    format!("{prefix}-{}", new_uuid_v4())
}

/// The 200 answer to an event must be exactly this.
pub fn assert_webhook_answer(
    response: &Response,
    event_id: &str,
    order_id: &str,
    duplicate: bool,
    applied: bool,
    payment_status: &str,
    refund_required: bool,
) {
    let answer = response.json(200);
    assert_eq!(answer.keys(), WEBHOOK_KEYS, "members of {answer}");
    let want = parse(
        object(&[
            ("event_id", json_string(event_id)),
            ("order_id", json_string(order_id)),
            ("duplicate", duplicate.to_string()),
            ("applied", applied.to_string()),
            ("payment_status", json_string(payment_status)),
            ("refund_required", refund_required.to_string()),
        ])
        .as_bytes(),
    )
    .expect("JSON");
    assert_eq!(answer, want, "webhook answer:\n{response}");
}

/// A row of `payment_events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub order_id: String,
    pub status: String,
    pub outcome: String,
    /// `true`, `false` or empty (NULL).
    pub refund_required: String,
    /// SHA-256 of the stored payload, lowercase hex.
    pub payload_sha256: String,
    pub occurred_at_unix: String,
    pub received: bool,
}

/// Every stored event with this id, in arrival order.
pub fn stored_events(s: &Stack, event_id: &str) -> Vec<StoredEvent> {
    let rows = s.cluster.psql(&format!(
        "SELECT coalesce(order_id::text, '') || '|' || coalesce(status, '') || '|' || \
         coalesce(outcome, '') || '|' || coalesce(refund_required::text, '') || '|' || \
         encode(sha256(convert_to(payload, 'UTF8')), 'hex') || '|' || \
         coalesce(extract(epoch FROM occurred_at)::text, '') || '|' || \
         (received_at IS NOT NULL) FROM payment_events \
         WHERE event_id = {} ORDER BY seq",
        sql_string(event_id)
    ));
    rows.lines()
        .map(|line| {
            let p: Vec<&str> = line.split('|').collect();
            assert_eq!(p.len(), 7, "payment_events row {line:?}");
            StoredEvent {
                order_id: p[0].to_owned(),
                status: p[1].to_owned(),
                outcome: p[2].to_owned(),
                refund_required: p[3].to_owned(),
                payload_sha256: p[4].to_owned(),
                occurred_at_unix: p[5].to_owned(),
                received: p[6] == "true",
            }
        })
        .collect()
}

/// The outcomes stored for `event_id` are `outcomes`, in order, and each
/// row's payload is `payload` byte for byte.
pub fn assert_stored(s: &Stack, event_id: &str, payload: &str, outcomes: &[&str]) {
    let rows = stored_events(s, event_id);
    let got: Vec<&str> = rows.iter().map(|r| r.outcome.as_str()).collect();
    assert_eq!(
        got, outcomes,
        "stored outcomes of event {event_id}: {rows:?}"
    );
    let sha = sha256_hex(payload.as_bytes());
    for row in &rows {
        assert_eq!(
            row.payload_sha256, sha,
            "event {event_id}: the stored payload is the raw body ({row:?})"
        );
        assert!(row.received, "received_at of {row:?}");
    }
}

// ---- metrics and the log ---------------------------------------------------------------

/// Every series of `GET /metrics` with its value.
pub fn scrape(conn: &mut Conn) -> BTreeMap<String, f64> {
    let response = conn.get("/metrics");
    assert_eq!(response.status, 200, "GET /metrics:\n{response}");
    response
        .body_text()
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The value of `series` (0 when absent).
pub fn metric(conn: &mut Conn, series: &str) -> f64 {
    scrape(conn).get(series).copied().unwrap_or(0.0)
}

/// The log events called `name` a server wrote so far.
pub fn log_events(server: &ServerProcess, name: &str) -> Vec<Json> {
    server
        .stderr()
        .lines()
        .filter_map(|line| parse(line.as_bytes()).ok())
        .filter(|event| event.try_get("event").map(Json::as_str) == Some(name))
        .collect()
}

/// The request counter of `route` answered with `status`, as a series name.
pub fn requests_series(route: &str, status: u16) -> String {
    format!(r#"flashsale_http_requests_total{{route="{route}",status="{status}"}}"#)
}

pub fn outcome_series(name: &str, outcome: &str) -> String {
    format!(r#"{name}{{outcome="{outcome}"}}"#)
}

// ---- misc ------------------------------------------------------------------------------

/// Counts of each distinct answer, e.g. "201×1 409:hold_not_active×49".
pub fn summary(responses: &[&Response]) -> String {
    let owned: Vec<Response> = responses.iter().map(|r| (*r).clone()).collect();
    super::sales::status_summary(&owned)
}

/// The 409's reason, or the status as text for anything else.
pub fn outcome_of(response: &Response) -> String {
    if response.status == 409 || response.status == 429 {
        let body = response.json_any_status();
        if let Some(reason) = body.try_get("reason") {
            return reason.as_str().to_owned();
        }
    }
    response.status.to_string()
}

/// Runs the binary with `env` (and a database URL nobody listens on);
/// it must exit (not serve) within 10 s: its status and stderr.
pub fn run_refused(env: &[(&str, &str)]) -> (ExitStatus, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flashsale"));
    for name in [
        "HOLD_TTL_SECS",
        "HOLD_SWEEP_INTERVAL_MS",
        "WEBHOOK_SECRET",
        "ADMIN_TOKEN",
        "ORDER_RATE_PER_CUSTOMER",
        "ORDER_BURST",
        "DB_POOL_SIZE",
    ] {
        cmd.env_remove(name);
    }
    let port = std::net::TcpListener::bind("0.0.0.0:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    cmd.env("PORT", port.to_string())
        .env("DATABASE_URL", "postgres://u:p@127.0.0.1:1/x")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn flashsale");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("flashsale with {env:?} kept running: the setting was accepted");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    (status, stderr)
}
