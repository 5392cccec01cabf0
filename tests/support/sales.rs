//! Helpers shared by the sales tests (`tests/sales.rs`, `tests/sales_admin.rs`):
//! their stack (two servers with an admin token), request bodies, the
//! product object's shape, times from the database's clock, the admin
//! requests, and barrier-released concurrent requests.
//!
//! Sale windows and limits are set with SQL on the products the tests
//! create, relative to the database's `now()`, so no test waits for a clock.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::server::http::{request_bytes, request_bytes_with_headers, Conn, Response};
use super::server::json::Json;
use super::server::{new_uuid_v4, shared_stack_with_env, Stack};
pub use super::time::parse_utc;

/// The token the sales stack's servers are started with.
pub const ADMIN_TOKEN: &str = "sales-tests-admin-token-5c0e7b21d9a4";
/// An id between the seed products and the ones tests create: never exists.
pub const UNKNOWN_PRODUCT: i64 = 999;
/// Members of a product object, in the contract's order.
pub const PRODUCT_KEYS: [&str; 9] = [
    "id",
    "name",
    "price",
    "initial_stock",
    "current_stock",
    "stock",
    "held_stock",
    "sold_out",
    "sale",
];
/// Members of a product's `sale`, in the contract's order.
pub const SALE_KEYS: [&str; 4] = ["status", "starts_at", "ends_at", "per_customer_limit"];
/// Members of an entry of `GET /orders?customer_id=`, in the contract's order.
pub const CUSTOMER_ENTRY_KEYS: [&str; 9] = [
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

/// The stack of every sales test binary: one cluster, two servers, both
/// with [`ADMIN_TOKEN`].
pub fn sales_stack() -> Arc<Stack> {
    shared_stack_with_env(2, &[("ADMIN_TOKEN", ADMIN_TOKEN)])
}

pub fn ports(s: &Stack) -> Vec<u16> {
    s.servers.iter().map(|server| server.port()).collect()
}

// ---- bodies ---------------------------------------------------------------------

/// `s` as a JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `{"k":raw,...}` from raw JSON member values, in order.
pub fn object(members: &[(&str, String)]) -> String {
    let inner: Vec<String> = members
        .iter()
        .map(|(k, v)| format!("\"{k}\":{v}"))
        .collect();
    format!("{{{}}}", inner.join(","))
}

pub fn order_body(product_id: i64, key: &str, customer: &str, quantity: i64) -> String {
    object(&[
        ("product_id", product_id.to_string()),
        ("idempotency_key", json_string(key)),
        ("customer_id", json_string(customer)),
        ("quantity", quantity.to_string()),
    ])
}

pub fn order_request(product_id: i64, key: &str, customer: &str, quantity: i64) -> Vec<u8> {
    let body = order_body(product_id, key, customer, quantity);
    request_bytes("POST", "/orders", Some(body.as_bytes()))
}

pub fn cancel_request(order_id: &str) -> Vec<u8> {
    request_bytes("POST", &format!("/orders/{order_id}/cancel"), None)
}

/// Places an order with a fresh key that must be created (201).
pub fn place(conn: &mut Conn, product_id: i64, customer: &str, quantity: i64) -> Json {
    let body = order_body(product_id, &new_uuid_v4(), customer, quantity);
    conn.post("/orders", &body).json(201)
}

/// Places an order with a fresh key; the response, whatever it is.
pub fn try_place(conn: &mut Conn, product_id: i64, customer: &str, quantity: i64) -> Response {
    let body = order_body(product_id, &new_uuid_v4(), customer, quantity);
    conn.post("/orders", &body)
}

pub fn cancel(conn: &mut Conn, order_id: &str) -> Json {
    conn.request("POST", &format!("/orders/{order_id}/cancel"), None)
        .json(200)
}

/// A customer id no other test uses (`prefix` plus a UUID, at most 50 chars).
pub fn unique_customer(prefix: &str) -> String {
    let id = format!("{prefix}-{}", new_uuid_v4());
    assert!(id.chars().count() <= 50, "customer id too long: {id}");
    id
}

// ---- admin requests ------------------------------------------------------------------

/// An admin request with `Authorization: <authorization>` if given.
pub fn admin_request_bytes(
    method: &str,
    path: &str,
    authorization: Option<&str>,
    body: Option<&str>,
) -> Vec<u8> {
    let headers: Vec<(&str, &str)> = authorization
        .map(|value| ("Authorization", value))
        .into_iter()
        .collect();
    request_bytes_with_headers(method, path, &headers, body.map(str::as_bytes))
}

/// An admin request with the right token.
pub fn admin(conn: &mut Conn, method: &str, path: &str, body: Option<&str>) -> Response {
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    conn.send(&admin_request_bytes(method, path, Some(&bearer), body));
    conn.read_response()
}

/// An admin request with `authorization` as the header (None: no header).
pub fn admin_as(
    conn: &mut Conn,
    authorization: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Response {
    conn.send(&admin_request_bytes(method, path, authorization, body));
    conn.read_response()
}

// ---- the database ------------------------------------------------------------------

/// `UPDATE products SET <assignments> WHERE id = <product>`, e.g.
/// `"starts_at = now(), per_customer_limit = 2"`.
pub fn set_sale(s: &Stack, product: i64, assignments: &str) {
    s.cluster.psql(&format!(
        "UPDATE products SET {assignments} WHERE id = {product}"
    ));
}

/// A product with a fresh id, `stock` units, and the sale `assignments`
/// (empty: none).
pub fn sale_product(s: &Stack, price: i64, stock: i64, assignments: &str) -> i64 {
    let product = s.create_product(price, stock);
    if !assignments.is_empty() {
        set_sale(s, product, assignments);
    }
    product
}

/// An SQL timestamptz expression rendered as the contract's times are:
/// RFC 3339 UTC with milliseconds (truncated).
pub fn sql_time(s: &Stack, expr: &str) -> String {
    s.cluster.psql(&format!(
        "SELECT to_char(date_trunc('milliseconds', ({expr})::timestamptz) AT TIME ZONE 'UTC', \
         'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
    ))
}

/// The database's `now()` plus `offset_ms`, as the contract writes times.
pub fn db_time(s: &Stack, offset_ms: i64) -> String {
    sql_time(s, &format!("now() + interval '{offset_ms} milliseconds'"))
}

/// The database's clock in Unix seconds.
pub fn db_now_s(s: &Stack) -> f64 {
    let out = s
        .cluster
        .psql("SELECT extract(epoch FROM clock_timestamp())");
    out.parse()
        .unwrap_or_else(|_| panic!("epoch from the database: {out:?}"))
}

/// Units of the customer's CONFIRMED orders of the product.
pub fn confirmed_units(s: &Stack, product: i64, customer: &str) -> i64 {
    s.query_i64(&format!(
        "SELECT coalesce(sum(quantity), 0) FROM orders WHERE product_id = {product} \
         AND customer_id = {} AND status = 'CONFIRMED'",
        sql_string(customer)
    ))
}

/// `s` as an SQL string literal.
pub fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `initial_stock = current_stock + held_stock + Σ confirmed quantity` for
/// the product, read in one snapshot.
pub fn assert_stock_equation(s: &Stack, product: i64) {
    let row = s.cluster.psql(&format!(
        "SELECT p.initial_stock || ' ' || p.current_stock || ' ' || p.held_stock || ' ' || \
         (SELECT coalesce(sum(quantity), 0) FROM orders \
          WHERE product_id = p.id AND status = 'CONFIRMED') \
         FROM products p WHERE p.id = {product}"
    ));
    let numbers: Vec<i64> = row
        .split(' ')
        .map(|n| n.parse().unwrap_or_else(|_| panic!("row {row:?}")))
        .collect();
    assert_eq!(
        numbers[0],
        numbers[1] + numbers[2] + numbers[3],
        "product {product}: initial_stock must equal current_stock + held_stock + the \
         confirmed units (initial, current, held, confirmed = {row})"
    );
}

// ---- the product object -----------------------------------------------------------------

/// What a product's `sale` must say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sale {
    pub status: &'static str,
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
    pub per_customer_limit: Option<i64>,
}

impl Sale {
    /// No window, no limit: active.
    pub fn none() -> Sale {
        Sale {
            status: "active",
            starts_at: None,
            ends_at: None,
            per_customer_limit: None,
        }
    }
}

fn opt_str(value: &Json) -> Option<String> {
    match value {
        Json::Null => None,
        Json::Str(s) => Some(s.clone()),
        other => panic!("expected a string or null, got {other}"),
    }
}

fn opt_i64(value: &Json) -> Option<i64> {
    match value {
        Json::Null => None,
        other => Some(other.as_i64()),
    }
}

pub fn as_bool(value: &Json) -> bool {
    match value {
        Json::Bool(b) => *b,
        other => panic!("expected a boolean, got {other}"),
    }
}

/// The product object's members in order and their types, and what holds
/// in every product: `stock == current_stock`, `held_stock == 0`,
/// `sold_out` exactly when `current_stock == 0`, times in the contract's
/// format. Returns its `sale`.
pub fn assert_product_shape(product: &Json) -> Sale {
    assert_eq!(product.keys(), PRODUCT_KEYS, "members of {product}");
    product.get("id").as_i64();
    product.get("name").as_str();
    product.get("price").as_i64();
    product.get("initial_stock").as_i64();
    let current = product.get("current_stock").as_i64();
    assert_eq!(product.get("stock").as_i64(), current, "{product}");
    assert_eq!(product.get("held_stock").as_i64(), 0, "{product}");
    assert_eq!(
        as_bool(product.get("sold_out")),
        current == 0,
        "sold_out exactly when current_stock is 0: {product}"
    );
    let sale = product.get("sale");
    assert_eq!(sale.keys(), SALE_KEYS, "members of sale in {product}");
    let status = match sale.get("status").as_str() {
        "upcoming" => "upcoming",
        "active" => "active",
        "ended" => "ended",
        other => panic!("sale status {other:?} in {product}"),
    };
    let starts_at = opt_str(sale.get("starts_at"));
    let ends_at = opt_str(sale.get("ends_at"));
    for time in starts_at.iter().chain(ends_at.iter()) {
        assert_time_format(time);
    }
    Sale {
        status,
        starts_at,
        ends_at,
        per_customer_limit: opt_i64(sale.get("per_customer_limit")),
    }
}

/// The product's members against the database row and `want`.
pub fn assert_product(s: &Stack, product: &Json, id: i64, want: &Sale) {
    let sale = assert_product_shape(product);
    assert_eq!(product.get("id").as_i64(), id, "{product}");
    let row = s.cluster.psql(&format!(
        "SELECT price || ' ' || initial_stock || ' ' || current_stock FROM products \
         WHERE id = {id}"
    ));
    let shown = format!(
        "{} {} {}",
        product.get("price").as_i64(),
        product.get("initial_stock").as_i64(),
        product.get("current_stock").as_i64()
    );
    assert_eq!(shown, row, "price, initial and current stock of {product}");
    assert_eq!(&sale, want, "sale of {product}");
}

/// Exactly `YYYY-MM-DDTHH:MM:SS.mmmZ`, a valid UTC time.
pub fn assert_time_format(time: &str) {
    let b = time.as_bytes();
    let digits_at = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22];
    let ok = b.len() == 24
        && digits_at.iter().all(|&i| b[i].is_ascii_digit())
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[23] == b'Z';
    assert!(
        ok && parse_utc(time).is_some(),
        "{time:?} is not RFC 3339 UTC with milliseconds (YYYY-MM-DDTHH:MM:SS.mmmZ)"
    );
}

// ---- many clients at once ---------------------------------------------------------------

/// `count` connections, spread round-robin over `ports`.
pub fn open_conns(ports: &[u16], count: usize) -> Vec<Conn> {
    (0..count)
        .map(|i| Conn::open(ports[i % ports.len()]))
        .collect()
}

/// "201×1 409×49" for failure messages.
pub fn status_summary(responses: &[Response]) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in responses {
        let reason = if r.status == 409 || r.status == 429 {
            r.json_any_status()
                .try_get("reason")
                .map(|reason| format!("{}:{}", r.status, reason))
                .unwrap_or_else(|| r.status.to_string())
        } else {
            r.status.to_string()
        };
        *counts.entry(reason).or_default() += 1;
    }
    let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{s}×{n}")).collect();
    parts.join(" ")
}

/// The reason code of a 409 (panics on anything else).
pub fn reason_409(response: &Response) -> String {
    response.error(409, None);
    response.json(409).get("reason").as_str().to_owned()
}
