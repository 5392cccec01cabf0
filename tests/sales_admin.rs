//! The sales admin API (platform.md §1 and the sales contract), against the
//! real binary over raw HTTP: the bearer token on every route (checked
//! before the body), `/admin/...` absent without `ADMIN_TOKEN`, creating
//! products (201, 409 `product_exists`, every bad body 422), patching them
//! (window checked against the stored bound, `null` clears, a price change
//! never alters existing orders, 404), restocking them (the stock equation
//! holds, also under concurrent orders on both servers; overflow 422), and
//! wrong methods (405 with Allow).
//!
//! All tests share one cluster and two servers started with an admin token.
//! Products made through the API take ids from a range of their own, far
//! from the ones `Stack::create_product` hands out, so the two never meet.

mod support;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use support::sales::{
    admin, admin_as, as_bool, assert_product, assert_product_shape, assert_stock_equation, cancel,
    db_time, json_string, object, order_body, place, ports, reason_409, sales_stack, sql_time,
    try_place, unique_customer, Sale, ADMIN_TOKEN, UNKNOWN_PRODUCT,
};
use support::server::http::{Conn, Response};
use support::server::json::Json;
use support::server::{api_url, new_uuid_v4, ServerProcess, Stack};

const PRICE: i64 = 1250;
const I32_MAX: i64 = i32::MAX as i64;
/// Products created through the admin API take ids from here up.
const ADMIN_PRODUCT_ID_FIRST: i64 = 500_000_000;
/// A product id far above every other; the product "without id" goes after it.
const NEXT_ID_ANCHOR: i64 = 1_900_000_000;
const RESTOCK_CLIENTS: usize = 30;
const RESTOCK_ORDERS_PER_CLIENT: usize = 20;
const RESTOCKERS: usize = 6;
const RESTOCKS_PER_RESTOCKER: usize = 5;

/// Members of a `POST /admin/products` body.
const CREATE_FIELDS: [&str; 7] = [
    "id",
    "name",
    "price",
    "stock",
    "starts_at",
    "ends_at",
    "per_customer_limit",
];

static NEXT_ADMIN_ID: AtomicI64 = AtomicI64::new(ADMIN_PRODUCT_ID_FIRST);

fn stack() -> Arc<Stack> {
    sales_stack()
}

fn fresh_id() -> i64 {
    NEXT_ADMIN_ID.fetch_add(1, Ordering::Relaxed)
}

fn product_path(id: i64) -> String {
    format!("/admin/products/{id}")
}

fn restock_path(id: i64) -> String {
    format!("/admin/products/{id}/restock")
}

fn restock_body(quantity: i64) -> String {
    format!("{{\"quantity\":{quantity}}}")
}

/// `POST /admin/products` with `members` (raw JSON values).
fn create(conn: &mut Conn, members: &[(&str, String)]) -> Response {
    admin(conn, "POST", "/admin/products", Some(&object(members)))
}

/// Creates a product with a fresh id that must succeed; its id.
fn create_ok(conn: &mut Conn, price: i64, stock: i64, extra: &[(&str, String)]) -> i64 {
    let id = fresh_id();
    let mut members = vec![
        ("id", id.to_string()),
        ("name", json_string(&format!("Admin product {id}"))),
        ("price", price.to_string()),
        ("stock", stock.to_string()),
    ];
    members.extend(extra.iter().cloned());
    let product = create(conn, &members).json(201);
    assert_product_shape(&product);
    assert_eq!(product.get("id").as_i64(), id, "{product}");
    id
}

fn product_exists(s: &Stack, id: i64) -> bool {
    s.query_i64(&format!("SELECT count(*) FROM products WHERE id = {id}")) == 1
}

/// Everything stored about a product, for "nothing changed" checks.
fn product_row(s: &Stack, id: i64) -> String {
    s.cluster.psql(&format!(
        "SELECT row(p.*)::text FROM products p WHERE id = {id}"
    ))
}

fn view(conn: &mut Conn, id: i64) -> Json {
    conn.get(&format!("/products/{id}")).json(200)
}

fn assert_422(response: &Response, field: Option<&str>, what: &str) {
    assert_eq!(response.status, 422, "{what}:\n{response}");
    response.error(422, field);
}

// ---- the token -----------------------------------------------------------------------

/// Authorization headers that must not let anyone in.
fn wrong_authorizations() -> Vec<Option<String>> {
    let short = &ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1];
    let mut flipped = ADMIN_TOKEN.as_bytes().to_vec();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
    let flipped = String::from_utf8(flipped).expect("ascii");
    vec![
        None,
        Some(String::new()),
        Some("Bearer".to_owned()),
        Some("Bearer ".to_owned()),
        Some("Bearer wrong".to_owned()),
        Some(format!("Bearer {short}")),
        Some(format!("Bearer {ADMIN_TOKEN}x")),
        Some(format!("Bearer {flipped}")),
        Some(format!("Bearer {}", ADMIN_TOKEN.to_uppercase())),
        Some(ADMIN_TOKEN.to_owned()),
        Some(format!("Basic {ADMIN_TOKEN}")),
        Some(format!("Token {ADMIN_TOKEN}")),
    ]
}

#[test]
fn every_admin_route_without_or_with_a_wrong_token_is_401() {
    let s = stack();
    let existing = s.create_product(PRICE, 10);
    let new_id = fresh_id();
    let valid_create = object(&[
        ("id", new_id.to_string()),
        ("name", json_string("intruder")),
        ("price", "1".to_owned()),
        ("stock", "1".to_owned()),
    ]);
    // (method, path, body): valid bodies, bad bodies (the token is checked
    // first), and an unknown product.
    let requests: Vec<(&str, String, Option<String>)> = vec![
        ("POST", "/admin/products".to_owned(), Some(valid_create)),
        ("POST", "/admin/products".to_owned(), Some("{".to_owned())),
        ("POST", "/admin/products".to_owned(), None),
        (
            "PATCH",
            product_path(existing),
            Some("{\"price\":1}".to_owned()),
        ),
        ("PATCH", product_path(existing), Some("{}".to_owned())),
        (
            "PATCH",
            product_path(UNKNOWN_PRODUCT),
            Some("{\"price\":1}".to_owned()),
        ),
        ("POST", restock_path(existing), Some(restock_body(5))),
        ("POST", restock_path(existing), Some(restock_body(0))),
        ("POST", restock_path(UNKNOWN_PRODUCT), Some(restock_body(5))),
        // Wrong methods, ids no product can have, paths that do not exist.
        ("GET", "/admin/products".to_owned(), None),
        ("DELETE", product_path(existing), None),
        (
            "PATCH",
            "/admin/products/abc".to_owned(),
            Some("{\"price\":1}".to_owned()),
        ),
        ("GET", "/admin/nothing".to_owned(), None),
    ];
    let before = product_row(&s, existing);
    for port in ports(&s) {
        let mut c = Conn::open(port);
        for authorization in wrong_authorizations() {
            for (method, path, body) in &requests {
                let response = admin_as(
                    &mut c,
                    authorization.as_deref(),
                    method,
                    path,
                    body.as_deref(),
                );
                let what = format!("{method} {path} with Authorization {authorization:?}");
                assert_eq!(response.status, 401, "{what}:\n{response}");
                response.error_reason(401, "unauthorized");
            }
        }
    }
    assert_eq!(product_row(&s, existing), before, "nothing changed");
    assert!(!product_exists(&s, new_id), "nothing created");
    // The right token on the same connection works, the scheme in any case
    // (RFC 9110 §11.1).
    let mut c = s.conn();
    let path = restock_path(existing);
    admin(&mut c, "POST", &path, Some(&restock_body(1))).json(200);
    let lower = format!("bearer {ADMIN_TOKEN}");
    admin_as(&mut c, Some(&lower), "POST", &path, Some(&restock_body(1))).json(200);
    assert_eq!(s.stock(existing), 12);
}

#[test]
fn admin_paths_are_404_without_admin_token() {
    let s = stack();
    let server = ServerProcess::start(&api_url(&s.cluster), &[]);
    let mut c = server.conn();
    let existing = s.create_product(PRICE, 10);
    let before = product_row(&s, existing);
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let requests: Vec<(&str, String, Option<String>)> = vec![
        (
            "POST",
            "/admin/products".to_owned(),
            Some("{\"name\":\"x\",\"price\":1,\"stock\":1}".to_owned()),
        ),
        ("GET", "/admin/products".to_owned(), None),
        (
            "PATCH",
            product_path(existing),
            Some("{\"price\":1}".to_owned()),
        ),
        ("POST", restock_path(existing), Some(restock_body(5))),
        ("GET", "/admin".to_owned(), None),
        ("GET", "/admin/".to_owned(), None),
        ("DELETE", "/admin/anything".to_owned(), None),
    ];
    for (method, path, body) in &requests {
        for authorization in [None, Some(bearer.as_str()), Some("Bearer ")] {
            let response = admin_as(&mut c, authorization, method, path, body.as_deref());
            let what = format!("{method} {path} with Authorization {authorization:?}");
            assert_eq!(response.status, 404, "{what}:\n{response}");
            let body = response.json(404);
            assert_eq!(body.keys(), ["error"], "{what}: {body}");
            assert_eq!(body.get("error").as_str(), "not found", "{what}");
        }
    }
    assert_eq!(product_row(&s, existing), before, "nothing changed");
}

#[test]
fn admin_wrong_methods_are_405_with_allow() {
    let s = stack();
    let mut c = s.conn();
    let id = s.create_product(PRICE, 10);
    let requests = [
        ("GET", "/admin/products".to_owned(), "POST"),
        ("PUT", "/admin/products".to_owned(), "POST"),
        ("DELETE", "/admin/products".to_owned(), "POST"),
        ("POST", product_path(id), "PATCH"),
        ("PUT", product_path(id), "PATCH"),
        ("DELETE", product_path(id), "PATCH"),
        ("GET", restock_path(id), "POST"),
        ("PATCH", restock_path(id), "POST"),
        ("PUT", restock_path(id), "POST"),
    ];
    let before = product_row(&s, id);
    for (method, path, allowed) in &requests {
        let response = admin(&mut c, method, path, None);
        assert_eq!(response.status, 405, "{method} {path}:\n{response}");
        response.error(405, None);
        let allow = response
            .header("Allow")
            .unwrap_or_else(|| panic!("{method} {path}: no Allow header:\n{response}"));
        let listed: Vec<&str> = allow.split(',').map(str::trim).collect();
        assert!(listed.contains(allowed), "{method} {path}: Allow {allow:?}");
        assert!(!listed.contains(method), "{method} {path}: Allow {allow:?}");
    }
    assert_eq!(product_row(&s, id), before);
}

// ---- POST /admin/products -----------------------------------------------------------

#[test]
fn create_product_is_201_with_the_product_object() {
    let s = stack();
    let mut c = s.conn();
    let id = fresh_id();
    let response = create(
        &mut c,
        &[
            ("id", id.to_string()),
            ("name", json_string("Limited \"edition\" é")),
            ("price", "4321".to_owned()),
            ("stock", "25".to_owned()),
            ("starts_at", json_string("2999-03-04T05:06:07.123456Z")),
            ("ends_at", json_string("2999-03-04T09:06:07.5+02:00")),
            ("per_customer_limit", "2".to_owned()),
        ],
    );
    let product = response.json(201);
    let want = Sale {
        status: "upcoming",
        starts_at: Some("2999-03-04T05:06:07.123Z".to_owned()),
        ends_at: Some("2999-03-04T07:06:07.500Z".to_owned()),
        per_customer_limit: Some(2),
    };
    assert_product(&s, &product, id, &want);
    assert_eq!(product.get("name").as_str(), "Limited \"edition\" é");
    assert_eq!(product.get("price").as_i64(), 4321);
    assert_eq!(product.get("initial_stock").as_i64(), 25);
    assert_eq!(product.get("current_stock").as_i64(), 25);
    // Stored as sent (to the millisecond), and shown the same everywhere.
    let stored = sql_time(
        &s,
        &format!("(SELECT starts_at FROM products WHERE id = {id})"),
    );
    assert_eq!(stored, "2999-03-04T05:06:07.123Z");
    let sub_ms = s.query_i64(&format!(
        "SELECT count(*) FROM products WHERE id = {id} \
         AND starts_at <> date_trunc('milliseconds', starts_at)"
    ));
    assert_eq!(sub_ms, 0, "input times are kept to the millisecond");
    for port in ports(&s) {
        let shown = view(&mut Conn::open(port), id);
        assert_eq!(shown.to_string(), product.to_string(), "GET /products/{id}");
    }
    let listed = c.get(&format!("/sales?after={}", id - 1)).json(200);
    let first = &listed.get("products").as_array()[0];
    assert_eq!(first.to_string(), product.to_string(), "GET /sales");
}

#[test]
fn create_product_accepts_the_bounds() {
    let s = stack();
    let mut c = s.conn();
    let name_200: String = "é".repeat(200);
    let cases: Vec<Vec<(&str, String)>> = vec![
        vec![
            ("name", json_string(&name_200)),
            ("price", "0".to_owned()),
            ("stock", "0".to_owned()),
        ],
        vec![
            ("name", json_string("x")),
            ("price", I32_MAX.to_string()),
            ("stock", I32_MAX.to_string()),
            ("per_customer_limit", I32_MAX.to_string()),
        ],
        vec![
            ("name", json_string("nulls")),
            ("price", "1".to_owned()),
            ("stock", "1".to_owned()),
            ("starts_at", "null".to_owned()),
            ("ends_at", "null".to_owned()),
            ("per_customer_limit", "null".to_owned()),
        ],
        vec![
            ("name", json_string("limit one, start only")),
            ("price", "1".to_owned()),
            ("stock", "1".to_owned()),
            ("starts_at", json_string("2000-01-01T00:00:00Z")),
            ("per_customer_limit", "1".to_owned()),
        ],
    ];
    let mut ids = Vec::new();
    for members in cases {
        let id = fresh_id();
        let mut with_id = vec![("id", id.to_string())];
        with_id.extend(members.iter().cloned());
        let product = create(&mut c, &with_id).json(201);
        assert_product_shape(&product);
        assert_eq!(product.get("id").as_i64(), id);
        assert_eq!(view(&mut c, id).to_string(), product.to_string());
        ids.push(id);
    }
    // The empty product: sold out, its name of 200 characters kept whole.
    let product = view(&mut c, ids[0]);
    assert!(as_bool(product.get("sold_out")), "{product}");
    assert_eq!(product.get("name").as_str(), name_200);
    assert_eq!(product.get("price").as_i64(), 0);
    let product = view(&mut c, ids[1]);
    assert_eq!(product.get("price").as_i64(), I32_MAX);
    assert_eq!(product.get("initial_stock").as_i64(), I32_MAX);
    let sale = assert_product_shape(&view(&mut c, ids[3]));
    assert_eq!(sale.status, "active");
    assert_eq!(sale.starts_at.as_deref(), Some("2000-01-01T00:00:00.000Z"));
    assert_eq!(sale.per_customer_limit, Some(1));
}

#[test]
fn create_product_without_id_takes_the_next_id_after_the_largest() {
    let s = stack();
    let mut c = s.conn();
    s.cluster.psql(&format!(
        "INSERT INTO products (id, name, price, initial_stock, current_stock) \
         VALUES ({NEXT_ID_ANCHOR}, 'anchor', 1, 1, 1)"
    ));
    for expected in [NEXT_ID_ANCHOR + 1, NEXT_ID_ANCHOR + 2] {
        let product = create(
            &mut c,
            &[
                ("name", json_string("no id")),
                ("price", "10".to_owned()),
                ("stock", "3".to_owned()),
            ],
        )
        .json(201);
        assert_product(&s, &product, expected, &Sale::none());
    }
}

#[test]
fn create_product_with_an_existing_id_is_409_product_exists() {
    let s = stack();
    let mut c = s.conn();
    let existing = create_ok(&mut c, PRICE, 10, &[]);
    for id in [1, existing] {
        let before = product_row(&s, id);
        let response = create(
            &mut c,
            &[
                ("id", id.to_string()),
                ("name", json_string("duplicate")),
                ("price", "1".to_owned()),
                ("stock", "1".to_owned()),
            ],
        );
        assert_eq!(response.status, 409, "id {id}:\n{response}");
        assert_eq!(reason_409(&response), "product_exists");
        assert_eq!(product_row(&s, id), before, "product {id} unchanged");
    }
}

#[test]
fn create_product_bad_bodies_are_422() {
    let s = stack();
    let mut c = s.conn();
    let base = |id: i64| -> Vec<(&'static str, String)> {
        vec![
            ("id", id.to_string()),
            ("name", json_string("bad")),
            ("price", "100".to_owned()),
            ("stock", "5".to_owned()),
        ]
    };
    // (member, its raw value replaced or added; None removes it)
    let changes: Vec<(&str, Option<&str>)> = vec![
        ("name", None),
        ("name", Some("\"\"")),
        ("name", Some("null")),
        ("name", Some("123")),
        ("price", None),
        ("price", Some("-1")),
        ("price", Some("2147483648")),
        ("price", Some("1.5")),
        ("price", Some("1e2")),
        ("price", Some("\"100\"")),
        ("price", Some("null")),
        ("stock", None),
        ("stock", Some("-1")),
        ("stock", Some("2147483648")),
        ("stock", Some("2.0")),
        ("stock", Some("\"5\"")),
        ("stock", Some("null")),
        ("id", Some("0")),
        ("id", Some("-1")),
        ("id", Some("2147483648")),
        ("id", Some("1.5")),
        ("id", Some("\"7\"")),
        ("starts_at", Some("\"tomorrow\"")),
        ("starts_at", Some("\"2030-13-01T00:00:00Z\"")),
        ("starts_at", Some("\"2030-02-30T00:00:00Z\"")),
        ("starts_at", Some("\"2030-01-01T00:00:00\"")),
        ("starts_at", Some("\"2030-01-01\"")),
        ("starts_at", Some("1893456000")),
        ("starts_at", Some("true")),
        ("ends_at", Some("\"2030-01-01T25:00:00Z\"")),
        ("ends_at", Some("{}")),
        ("per_customer_limit", Some("0")),
        ("per_customer_limit", Some("-1")),
        ("per_customer_limit", Some("2147483648")),
        ("per_customer_limit", Some("1.5")),
        ("per_customer_limit", Some("\"2\"")),
        ("per_customer_limt", Some("2")),
        ("stok", Some("5")),
    ];
    for (field, raw) in changes {
        let id = fresh_id();
        let mut members = base(id);
        members.retain(|(k, _)| *k != field);
        if let Some(raw) = raw {
            members.push((field, raw.to_owned()));
        }
        let body = object(&members);
        let response = admin(&mut c, "POST", "/admin/products", Some(&body));
        // A bad value's message names its field; an unknown member's need not.
        let named = CREATE_FIELDS.contains(&field).then_some(field);
        assert_422(&response, named, &body);
        assert!(!product_exists(&s, id), "{body} created product {id}");
    }
    // Windows whose end is not after their start.
    let start = "\"2030-01-01T10:00:00.000Z\"";
    for end in [
        "\"2030-01-01T10:00:00.000Z\"",
        "\"2030-01-01T11:00:00+01:00\"",
        "\"2030-01-01T09:59:59.999Z\"",
    ] {
        let id = fresh_id();
        let mut members = base(id);
        members.push(("starts_at", start.to_owned()));
        members.push(("ends_at", end.to_owned()));
        let body = object(&members);
        let response = admin(&mut c, "POST", "/admin/products", Some(&body));
        assert_422(&response, Some("ends_at"), &body);
        assert!(!product_exists(&s, id));
    }
    // Not an object, not JSON, duplicate members.
    let id = fresh_id();
    for body in [
        String::new(),
        "{".to_owned(),
        "[]".to_owned(),
        "null".to_owned(),
        "{}".to_owned(),
        format!("{{\"id\":{id},\"name\":\"a\",\"name\":\"b\",\"price\":1,\"stock\":1}}"),
        format!("{{\"id\":{id},\"name\":\"a\",\"price\":1,\"stock\":1}} x"),
    ] {
        let response = admin(&mut c, "POST", "/admin/products", Some(&body));
        assert_422(&response, None, &body);
    }
    assert!(!product_exists(&s, id));
    // A name of 201 characters.
    let id = fresh_id();
    let mut members = base(id);
    members.retain(|(k, _)| *k != "name");
    members.push(("name", json_string(&"n".repeat(201))));
    let body = object(&members);
    assert_422(
        &admin(&mut c, "POST", "/admin/products", Some(&body)),
        Some("name"),
        "201 chars",
    );
    assert!(!product_exists(&s, id));
}

// ---- PATCH /admin/products/{id} --------------------------------------------------------

fn patch(conn: &mut Conn, id: i64, body: &str) -> Response {
    admin(conn, "PATCH", &product_path(id), Some(body))
}

#[test]
fn patch_changes_each_field_and_null_clears_a_bound() {
    let s = stack();
    let mut c = s.conn();
    let id = create_ok(&mut c, PRICE, 10, &[]);
    let steps: Vec<(&str, Sale)> = vec![
        ("{\"name\":\"Renamed é\"}", Sale::none()),
        ("{\"price\":777}", Sale::none()),
        (
            "{\"starts_at\":\"2999-01-01T00:00:00Z\"}",
            Sale {
                status: "upcoming",
                starts_at: Some("2999-01-01T00:00:00.000Z".to_owned()),
                ..Sale::none()
            },
        ),
        (
            "{\"ends_at\":\"2999-01-02T00:00:00.25Z\"}",
            Sale {
                status: "upcoming",
                starts_at: Some("2999-01-01T00:00:00.000Z".to_owned()),
                ends_at: Some("2999-01-02T00:00:00.250Z".to_owned()),
                per_customer_limit: None,
            },
        ),
        (
            "{\"per_customer_limit\":4}",
            Sale {
                status: "upcoming",
                starts_at: Some("2999-01-01T00:00:00.000Z".to_owned()),
                ends_at: Some("2999-01-02T00:00:00.250Z".to_owned()),
                per_customer_limit: Some(4),
            },
        ),
        (
            "{\"starts_at\":null}",
            Sale {
                status: "active",
                starts_at: None,
                ends_at: Some("2999-01-02T00:00:00.250Z".to_owned()),
                per_customer_limit: Some(4),
            },
        ),
        (
            "{\"ends_at\":null,\"per_customer_limit\":null}",
            Sale::none(),
        ),
        (
            "{\"name\":\"Both\",\"price\":5,\"starts_at\":\"2000-01-01T00:00:00Z\",\
             \"ends_at\":\"2000-01-02T00:00:00Z\",\"per_customer_limit\":1}",
            Sale {
                status: "ended",
                starts_at: Some("2000-01-01T00:00:00.000Z".to_owned()),
                ends_at: Some("2000-01-02T00:00:00.000Z".to_owned()),
                per_customer_limit: Some(1),
            },
        ),
    ];
    for (body, want) in steps {
        let product = patch(&mut c, id, body).json(200);
        assert_product(&s, &product, id, &want);
        assert_eq!(view(&mut c, id).to_string(), product.to_string(), "{body}");
    }
    let product = view(&mut c, id);
    assert_eq!(product.get("name").as_str(), "Both");
    assert_eq!(product.get("price").as_i64(), 5);
    assert_eq!(product.get("initial_stock").as_i64(), 10, "stock untouched");
    assert_eq!(product.get("current_stock").as_i64(), 10, "stock untouched");
}

#[test]
fn patch_window_is_checked_against_the_stored_other_bound() {
    let s = stack();
    let mut c = s.conn();
    let start = "2999-05-05T10:00:00.000Z";
    let end = "2999-05-05T12:00:00.000Z";
    let id = create_ok(
        &mut c,
        PRICE,
        10,
        &[
            ("starts_at", json_string(start)),
            ("ends_at", json_string(end)),
        ],
    );
    let before = product_row(&s, id);
    for body in [
        format!("{{\"ends_at\":\"{start}\"}}"),
        "{\"ends_at\":\"2999-05-05T09:59:59.999Z\"}".to_owned(),
        format!("{{\"starts_at\":\"{end}\"}}"),
        "{\"starts_at\":\"2999-05-05T12:00:00.001Z\"}".to_owned(),
        "{\"starts_at\":\"2999-06-01T00:00:00Z\",\"ends_at\":\"2999-06-01T00:00:00Z\"}".to_owned(),
    ] {
        let response = patch(&mut c, id, &body);
        assert_422(&response, None, &body);
        assert_eq!(product_row(&s, id), before, "{body} changed the product");
    }
    // Both bounds moved at once, each valid with the other's new value.
    let product = patch(
        &mut c,
        id,
        "{\"starts_at\":\"2999-06-01T00:00:00Z\",\"ends_at\":\"2999-06-02T00:00:00Z\"}",
    )
    .json(200);
    let sale = assert_product_shape(&product);
    assert_eq!(sale.starts_at.as_deref(), Some("2999-06-01T00:00:00.000Z"));
    assert_eq!(sale.ends_at.as_deref(), Some("2999-06-02T00:00:00.000Z"));
    // A start after the stored end, with the end cleared in the same patch.
    let product = patch(
        &mut c,
        id,
        "{\"starts_at\":\"2999-07-01T00:00:00Z\",\"ends_at\":null}",
    )
    .json(200);
    let sale = assert_product_shape(&product);
    assert_eq!(sale.starts_at.as_deref(), Some("2999-07-01T00:00:00.000Z"));
    assert_eq!(sale.ends_at, None);
    // An end before the stored start.
    let response = patch(&mut c, id, "{\"ends_at\":\"2999-06-15T00:00:00Z\"}");
    assert_422(&response, None, "end before the stored start");
}

#[test]
fn patch_bad_bodies_are_422_and_change_nothing() {
    let s = stack();
    let mut c = s.conn();
    let id = create_ok(&mut c, PRICE, 10, &[("per_customer_limit", "2".to_owned())]);
    let before = product_row(&s, id);
    let cases: Vec<(&str, Option<&str>)> = vec![
        ("{}", None),
        ("", None),
        ("{", None),
        ("[]", None),
        ("null", None),
        ("{\"name\":null}", Some("name")),
        ("{\"price\":null}", Some("price")),
        ("{\"name\":\"\"}", Some("name")),
        ("{\"name\":5}", Some("name")),
        ("{\"price\":-1}", Some("price")),
        ("{\"price\":2147483648}", Some("price")),
        ("{\"price\":1.5}", Some("price")),
        ("{\"price\":\"5\"}", Some("price")),
        ("{\"per_customer_limit\":0}", Some("per_customer_limit")),
        ("{\"per_customer_limit\":\"3\"}", Some("per_customer_limit")),
        ("{\"starts_at\":\"soon\"}", Some("starts_at")),
        ("{\"ends_at\":12}", Some("ends_at")),
        ("{\"prize\":5}", None),
        ("{\"price\":5,\"stock\":100}", None),
        ("{\"price\":5,\"id\":7}", None),
    ];
    for (body, field) in cases {
        let response = patch(&mut c, id, body);
        assert_422(&response, field, body);
        assert_eq!(product_row(&s, id), before, "{body} changed the product");
    }
    let long = format!("{{\"name\":{}}}", json_string(&"n".repeat(201)));
    assert_422(&patch(&mut c, id, &long), Some("name"), "name of 201 chars");
    assert_eq!(product_row(&s, id), before);
}

#[test]
fn patch_and_restock_of_an_unknown_product_are_404() {
    let s = stack();
    let mut c = s.conn();
    // The routes exist: a known product is patched and restocked.
    let known = create_ok(&mut c, PRICE, 1, &[]);
    patch(&mut c, known, "{\"price\":5}").json(200);
    restock(&mut c, known, 1).json(200);
    let unknown = fresh_id();
    for id in [UNKNOWN_PRODUCT, unknown, I32_MAX] {
        let response = patch(&mut c, id, "{\"price\":5}");
        assert_eq!(response.status, 404, "PATCH {id}:\n{response}");
        response.error(404, None);
        let response = admin(&mut c, "POST", &restock_path(id), Some(&restock_body(5)));
        assert_eq!(response.status, 404, "restock {id}:\n{response}");
        response.error(404, None);
    }
    assert!(!product_exists(&s, unknown));
    // Ids no product can have: 404 or 422, never anything else.
    for id in ["abc", "0", "-1", "2147483648", "1.5"] {
        for (method, path, body) in [
            (
                "PATCH",
                format!("/admin/products/{id}"),
                "{\"price\":5}".to_owned(),
            ),
            (
                "POST",
                format!("/admin/products/{id}/restock"),
                restock_body(5),
            ),
        ] {
            let response = admin(&mut c, method, &path, Some(&body));
            assert!(
                response.status == 404 || response.status == 422,
                "{method} {path}: want 404 or 422, got:\n{response}"
            );
            response.error(response.status, None);
        }
    }
}

#[test]
fn price_change_never_alters_existing_orders() {
    let s = stack();
    let mut c = s.conn();
    let id = create_ok(&mut c, 1000, 50, &[]);
    let customer = unique_customer("price");
    let key = new_uuid_v4();
    let old = c
        .post("/orders", &order_body(id, &key, &customer, 3))
        .json(201);
    assert_eq!(old.get("unit_price").as_i64(), 1000);
    let product = patch(&mut c, id, "{\"price\":1500}").json(200);
    assert_eq!(product.get("price").as_i64(), 1500);
    let order_id = old.get("order_id").as_str();
    let looked_up = c.get(&format!("/orders/{order_id}")).json(200);
    assert_eq!(looked_up, old, "GET /orders/{{id}} after the price change");
    let replay = c
        .post("/orders", &order_body(id, &key, &customer, 3))
        .json(200);
    assert_eq!(replay, old, "replay after the price change");
    let listed = c.get(&format!("/orders?product_id={id}")).json(200);
    assert_eq!(
        listed.get("orders").as_array()[0]
            .get("total_price")
            .as_i64(),
        3000
    );
    let row = s.cluster.psql(&format!(
        "SELECT unit_price || ' ' || total_price FROM orders WHERE id = '{order_id}'"
    ));
    assert_eq!(row, "1000 3000");
    let new = place(&mut c, id, &customer, 2);
    assert_eq!(new.get("unit_price").as_i64(), 1500);
    assert_eq!(new.get("total_price").as_i64(), 3000);
    // A cancel of the old order restores its units; its prices stay.
    let cancelled = cancel(&mut c, order_id);
    assert_eq!(cancelled.get("restored_quantity").as_i64(), 3);
    let row = s.cluster.psql(&format!(
        "SELECT unit_price || ' ' || total_price FROM orders WHERE id = '{order_id}'"
    ));
    assert_eq!(row, "1000 3000");
    assert_stock_equation(&s, id);
}

#[test]
fn admin_created_product_sells_by_its_window_and_limit() {
    let s = stack();
    let mut c = s.conn();
    let id = create_ok(
        &mut c,
        PRICE,
        100,
        &[
            ("starts_at", json_string(&db_time(&s, 3_600_000))),
            ("per_customer_limit", "2".to_owned()),
        ],
    );
    let customer = unique_customer("admin-sale");
    let response = try_place(&mut c, id, &customer, 1);
    assert_eq!(reason_409(&response), "sale_not_started", "{response}");
    // Start now (the database's clock, to the millisecond): on sale.
    let now = db_time(&s, 0);
    patch(&mut c, id, &format!("{{\"starts_at\":\"{now}\"}}")).json(200);
    place(&mut c, id, &customer, 2);
    let response = try_place(&mut c, id, &customer, 1);
    assert_eq!(
        reason_409(&response),
        "customer_limit_reached",
        "{response}"
    );
    // No limit: the same customer buys more.
    patch(&mut c, id, "{\"per_customer_limit\":null}").json(200);
    place(&mut c, id, &customer, 5);
    // End now (after the start: requests went by since): over.
    let end = db_time(&s, 0);
    patch(&mut c, id, &format!("{{\"ends_at\":\"{end}\"}}")).json(200);
    let response = try_place(&mut c, id, &customer, 1);
    assert_eq!(reason_409(&response), "sale_ended", "{response}");
    assert_eq!(assert_product_shape(&view(&mut c, id)).status, "ended");
    assert_eq!(s.stock(id), 93);
    assert_stock_equation(&s, id);
}

// ---- POST /admin/products/{id}/restock -------------------------------------------------

fn restock(conn: &mut Conn, id: i64, quantity: i64) -> Response {
    admin(
        conn,
        "POST",
        &restock_path(id),
        Some(&restock_body(quantity)),
    )
}

#[test]
fn restock_adds_to_initial_and_current_stock() {
    let s = stack();
    let mut c = s.conn();
    let id = create_ok(&mut c, PRICE, 10, &[]);
    let customer = unique_customer("restock");
    place(&mut c, id, &customer, 3);
    let second = place(&mut c, id, &customer, 2);
    cancel(&mut c, second.get("order_id").as_str());
    let product = restock(&mut c, id, 5).json(200);
    assert_product(&s, &product, id, &Sale::none());
    assert_eq!(product.get("initial_stock").as_i64(), 15);
    assert_eq!(product.get("current_stock").as_i64(), 12);
    assert_eq!(view(&mut c, id).to_string(), product.to_string());
    assert_stock_equation(&s, id);

    // Sold out, and both servers know it from a refusal; a restock sells again.
    place(&mut c, id, &customer, 5);
    place(&mut c, id, &customer, 5);
    place(&mut c, id, &customer, 2);
    assert_eq!(s.stock(id), 0);
    let mut conns: Vec<Conn> = ports(&s).into_iter().map(Conn::open).collect();
    for conn in &mut conns {
        let response = try_place(conn, id, &customer, 1);
        assert_eq!(reason_409(&response), "insufficient_stock", "{response}");
    }
    let product = restock(&mut c, id, 2).json(200);
    assert!(!as_bool(product.get("sold_out")), "{product}");
    assert_eq!(product.get("initial_stock").as_i64(), 17);
    assert_eq!(product.get("current_stock").as_i64(), 2);
    for conn in &mut conns {
        place(conn, id, &customer, 1);
    }
    assert!(as_bool(view(&mut c, id).get("sold_out")));
    assert_stock_equation(&s, id);
}

#[test]
fn restock_bad_bodies_and_overflow_are_422() {
    let s = stack();
    let mut c = s.conn();
    let id = create_ok(&mut c, PRICE, I32_MAX - 10, &[]);
    let before = product_row(&s, id);
    for body in [
        "{\"quantity\":0}",
        "{\"quantity\":-1}",
        "{\"quantity\":2147483648}",
        "{\"quantity\":1.5}",
        "{\"quantity\":1e1}",
        "{\"quantity\":\"1\"}",
        "{\"quantity\":null}",
        "{}",
        "",
        "{",
        "[]",
        "{\"quantity\":1,\"quantity\":2}",
        "{\"quantity\":1,\"note\":\"x\"}",
        "{\"quantityy\":1}",
    ] {
        let response = admin(&mut c, "POST", &restock_path(id), Some(body));
        assert_422(&response, None, body);
        assert_eq!(product_row(&s, id), before, "{body} changed the product");
    }
    // Past 2147483647: refused whole.
    assert_422(&restock(&mut c, id, 11), None, "overflow by one");
    assert_422(&restock(&mut c, id, I32_MAX), None, "overflow");
    assert_eq!(product_row(&s, id), before);
    let product = restock(&mut c, id, 10).json(200);
    assert_eq!(product.get("initial_stock").as_i64(), I32_MAX);
    assert_eq!(product.get("current_stock").as_i64(), I32_MAX);
    assert_422(&restock(&mut c, id, 1), None, "at the maximum");

    // initial_stock is the bound even when current_stock is lower.
    let sold = create_ok(&mut c, PRICE, I32_MAX - 5, &[]);
    place(&mut c, sold, &unique_customer("overflow"), 5);
    let before = product_row(&s, sold);
    assert_422(&restock(&mut c, sold, 6), None, "initial_stock overflow");
    assert_eq!(product_row(&s, sold), before);
    let product = restock(&mut c, sold, 5).json(200);
    assert_eq!(product.get("initial_stock").as_i64(), I32_MAX);
    assert_eq!(product.get("current_stock").as_i64(), I32_MAX - 5);
    assert_stock_equation(&s, sold);
}

/// Orders (some cancelled) on both servers while restocks arrive through
/// both: every answer is consistent, and at the end `initial_stock` is the
/// created stock plus every restock, and the stock equation holds.
#[test]
fn two_servers_restocks_during_orders_keep_the_stock_equation() {
    let s = stack();
    let ports = ports(&s);
    let mut setup = s.conn();
    let initial = 20;
    let id = create_ok(&mut setup, PRICE, initial, &[]);
    let start = Barrier::new(RESTOCK_CLIENTS + RESTOCKERS);
    let (sold, restocked): (Vec<i64>, Vec<i64>) = thread::scope(|scope| {
        let buyers: Vec<_> = (0..RESTOCK_CLIENTS)
            .map(|client| {
                let (start, ports) = (&start, &ports);
                scope.spawn(move || {
                    let mut rng = fastrand::Rng::with_seed(client as u64);
                    let mut conn = Conn::open(ports[client % ports.len()]);
                    let customer = format!("restock-buyer-{client}");
                    let mut units = 0;
                    start.wait();
                    for _ in 0..RESTOCK_ORDERS_PER_CLIENT {
                        let quantity = rng.i64(1..=5);
                        let response = try_place(&mut conn, id, &customer, quantity);
                        match response.status {
                            201 => {
                                if rng.u8(0..4) == 0 {
                                    let order = response.json(201);
                                    cancel(&mut conn, order.get("order_id").as_str());
                                } else {
                                    units += quantity;
                                }
                            }
                            409 => assert_eq!(reason_409(&response), "insufficient_stock"),
                            _ => panic!("order: want 201 or 409, got:\n{response}"),
                        }
                    }
                    units
                })
            })
            .collect();
        let restockers: Vec<_> = (0..RESTOCKERS)
            .map(|r| {
                let (start, ports) = (&start, &ports);
                scope.spawn(move || {
                    let mut conn = Conn::open(ports[r % ports.len()]);
                    let mut added = 0;
                    start.wait();
                    for i in 0..RESTOCKS_PER_RESTOCKER {
                        let quantity = (r * RESTOCKS_PER_RESTOCKER + i) as i64 % 7 + 1;
                        let product = restock(&mut conn, id, quantity).json(200);
                        assert_product_shape(&product);
                        let shown_initial = product.get("initial_stock").as_i64();
                        assert!(
                            shown_initial >= initial + added + quantity,
                            "a restock's answer misses it: {product}"
                        );
                        added += quantity;
                    }
                    added
                })
            })
            .collect();
        let join = |h: thread::ScopedJoinHandle<'_, i64>| {
            h.join()
                .unwrap_or_else(|payload| std::panic::resume_unwind(payload))
        };
        (
            buyers.into_iter().map(join).collect(),
            restockers.into_iter().map(join).collect(),
        )
    });
    let sold: i64 = sold.iter().sum();
    let restocked: i64 = restocked.iter().sum();
    let product = view(&mut setup, id);
    assert_eq!(product.get("initial_stock").as_i64(), initial + restocked);
    assert_eq!(
        product.get("current_stock").as_i64(),
        initial + restocked - sold,
        "{product}"
    );
    assert_stock_equation(&s, id);
}

#[test]
fn admin_answers_are_the_same_on_both_servers() {
    let s = stack();
    let servers: Vec<u16> = ports(&s);
    let mut first = Conn::open(servers[0]);
    let mut second = Conn::open(servers[1]);
    let id = create_ok(&mut first, PRICE, 10, &[]);
    let patched = patch(&mut second, id, "{\"per_customer_limit\":1}").json(200);
    let restocked = restock(&mut first, id, 1).json(200);
    assert_eq!(
        assert_product_shape(&patched).per_customer_limit,
        Some(1),
        "{patched}"
    );
    assert_eq!(assert_product_shape(&restocked).per_customer_limit, Some(1));
    assert_eq!(view(&mut second, id).to_string(), restocked.to_string());
    // The limit set through one server holds on the other.
    let customer = unique_customer("both");
    place(&mut first, id, &customer, 1);
    let response = try_place(&mut second, id, &customer, 1);
    assert_eq!(reason_409(&response), "customer_limit_reached");
}
