//! Sales (platform.md §1 and the sales contract), against the real binary
//! over raw HTTP: the product object's new fields, `GET /sales`, sale
//! windows judged by the database's clock, per-customer limits (also under
//! concurrency across both server processes), replays after a window
//! closed, the refusal precedence (404, window, limit, stock), batches that
//! mix every kind of answer, and `GET /orders?customer_id=`.
//! The admin API is in tests/sales_admin.rs.
//!
//! All tests share one cluster and two servers; each creates its own
//! products (windows and limits set with SQL relative to the database's
//! `now()`) and its own customers, so they never see each other's stock,
//! limits or orders. The seed products 1..=5 are only read.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::race::race;
use support::sales::{
    as_bool, assert_product, assert_product_shape, assert_stock_equation, assert_time_format,
    cancel, cancel_request, confirmed_units, db_now_s, json_string, open_conns, order_body,
    order_request, parse_utc, place, ports, reason_409, sale_product, sales_stack, set_sale,
    sql_time, status_summary, try_place, unique_customer, Sale, CUSTOMER_ENTRY_KEYS, PRODUCT_KEYS,
    UNKNOWN_PRODUCT,
};
use support::server::http::{Conn, Response};
use support::server::json::Json;
use support::server::{new_uuid_v4, Stack, SEED_PRODUCTS};

const PRICE: i64 = 500;
const SALES_PAGE_MAX: usize = 100;
const CUSTOMER_ORDERS_MAX: usize = 50;
/// Clients of one customer fired at once on a limited product.
const SAME_CUSTOMER_CLIENTS: usize = 50;
const SAME_CUSTOMER_ROUNDS: usize = 5;
const MANY_CUSTOMERS: usize = 200;
const MANY_CUSTOMERS_STOCK: i64 = 100;
const MIXED_BATCH_ROUNDS: usize = 8;
/// Copies of each kind of order in one mixed burst.
const MIXED_COPIES: usize = 3;
/// Guard on the loop that orders across a window (it ends when the sale
/// does, about a second after it starts).
const WINDOW_CROSSING_GUARD: Duration = Duration::from_secs(20);

fn stack() -> Arc<Stack> {
    sales_stack()
}

fn product_view(conn: &mut Conn, product: i64) -> Json {
    conn.get(&format!("/products/{product}")).json(200)
}

fn sale_of(conn: &mut Conn, product: i64) -> Sale {
    assert_product_shape(&product_view(conn, product))
}

fn order_rows(s: &Stack, product: i64) -> i64 {
    s.query_i64(&format!(
        "SELECT count(*) FROM orders WHERE product_id = {product}"
    ))
}

/// A refused order: 409 with exactly this reason, nothing stored.
fn assert_refused(s: &Stack, conn: &mut Conn, product: i64, customer: &str, qty: i64, want: &str) {
    let (stock, rows) = (s.stock(product), order_rows(s, product));
    let response = try_place(conn, product, customer, qty);
    assert_eq!(
        response.status, 409,
        "product {product}, customer {customer:?}, quantity {qty}: want 409 {want}, got:\n{response}"
    );
    response.error_reason(409, want);
    assert_eq!(s.stock(product), stock, "a refused order changes no stock");
    assert_eq!(
        order_rows(s, product),
        rows,
        "a refused order stores nothing"
    );
}

// ---- the product object -----------------------------------------------------------

#[test]
fn seed_products_keep_their_six_fields_and_have_no_sale() {
    let s = stack();
    let mut c = s.conn();
    for (id, name, price, stock) in SEED_PRODUCTS {
        let product = product_view(&mut c, id);
        assert_eq!(product.keys(), PRODUCT_KEYS, "members of {product}");
        let first_six: Vec<String> = PRODUCT_KEYS[..6]
            .iter()
            .map(|k| product.get(k).to_string())
            .collect();
        let want = [
            id.to_string(),
            json_string(name),
            price.to_string(),
            stock.to_string(),
            stock.to_string(),
            stock.to_string(),
        ];
        assert_eq!(first_six, want, "seed product {id}: {product}");
        assert_eq!(assert_product_shape(&product), Sale::none(), "{product}");
        assert!(!as_bool(product.get("sold_out")), "{product}");
    }
    let bounded = s.query_i64(
        "SELECT count(*) FROM products WHERE id BETWEEN 1 AND 5 AND (starts_at IS NOT NULL \
         OR ends_at IS NOT NULL OR per_customer_limit IS NOT NULL OR held_stock <> 0)",
    );
    assert_eq!(
        bounded, 0,
        "the seed products have no window, limit or hold"
    );
}

#[test]
fn product_object_has_the_new_members_in_order() {
    let s = stack();
    let product = s.create_product(777, 20);
    let mut c = s.conn();
    let view = product_view(&mut c, product);
    assert_product(&s, &view, product, &Sale::none());
    assert_eq!(view.get("name").as_str(), format!("Test product {product}"));
    assert_eq!(view.get("price").as_i64(), 777);
    assert_eq!(view.get("initial_stock").as_i64(), 20);
    assert!(!as_bool(view.get("sold_out")), "{view}");
    // The second server renders the same object.
    let other = s.servers[1]
        .conn()
        .get(&format!("/products/{product}"))
        .json(200);
    assert_eq!(other.to_string(), view.to_string(), "both servers agree");
}

#[test]
fn sold_out_is_true_exactly_when_current_stock_is_zero() {
    let s = stack();
    let product = s.create_product(PRICE, 3);
    let mut c = s.conn();
    let customer = unique_customer("soldout");
    place(&mut c, product, &customer, 2);
    let view = product_view(&mut c, product);
    assert_product_shape(&view);
    assert_eq!(view.get("current_stock").as_i64(), 1);
    assert!(!as_bool(view.get("sold_out")), "one unit left: {view}");
    let last = place(&mut c, product, &customer, 1);
    let view = product_view(&mut c, product);
    assert_product_shape(&view);
    assert_eq!(view.get("current_stock").as_i64(), 0);
    assert!(as_bool(view.get("sold_out")), "no unit left: {view}");
    cancel(&mut c, last.get("order_id").as_str());
    let view = product_view(&mut c, product);
    assert!(!as_bool(view.get("sold_out")), "a cancel restocked: {view}");
    let empty = s.create_product(PRICE, 0);
    let view = product_view(&mut c, empty);
    assert_product_shape(&view);
    assert!(
        as_bool(view.get("sold_out")),
        "created without stock: {view}"
    );
}

#[test]
fn product_sale_shows_window_limit_and_status_by_the_database_clock() {
    let s = stack();
    let mut c = s.conn();

    // Fixed times in the future: upcoming, rendered to the millisecond.
    let upcoming = sale_product(
        &s,
        PRICE,
        10,
        "starts_at = '2999-01-02 03:04:05.678+00', ends_at = '2999-01-02 07:00:00+02', \
         per_customer_limit = 7",
    );
    let want = Sale {
        status: "upcoming",
        starts_at: Some("2999-01-02T03:04:05.678Z".to_owned()),
        ends_at: Some("2999-01-02T05:00:00.000Z".to_owned()),
        per_customer_limit: Some(7),
    };
    assert_product(&s, &product_view(&mut c, upcoming), upcoming, &want);

    // Started an hour ago, ends in an hour: active.
    let active = sale_product(
        &s,
        PRICE,
        10,
        "starts_at = now() - interval '1 hour', ends_at = now() + interval '1 hour'",
    );
    let want = Sale {
        status: "active",
        starts_at: Some(sql_time(
            &s,
            &format!("(SELECT starts_at FROM products WHERE id = {active})"),
        )),
        ends_at: Some(sql_time(
            &s,
            &format!("(SELECT ends_at FROM products WHERE id = {active})"),
        )),
        per_customer_limit: None,
    };
    assert_product(&s, &product_view(&mut c, active), active, &want);

    // starts_at is inclusive: a window that starts now is active.
    let starting = sale_product(&s, PRICE, 10, "starts_at = now()");
    let sale = sale_of(&mut c, starting);
    assert_eq!(sale.status, "active", "starts_at = now(): {sale:?}");
    assert!(sale.ends_at.is_none());

    // ends_at is exclusive: a window that ends now has ended.
    let ending = sale_product(&s, PRICE, 10, "ends_at = now()");
    let sale = sale_of(&mut c, ending);
    assert_eq!(sale.status, "ended", "ends_at = now(): {sale:?}");
    assert!(sale.starts_at.is_none());

    // Only an end in the future, only a start in the past: active.
    let open_start = sale_product(&s, PRICE, 10, "ends_at = now() + interval '1 hour'");
    assert_eq!(sale_of(&mut c, open_start).status, "active");
    let open_end = sale_product(&s, PRICE, 10, "starts_at = now() - interval '1 second'");
    assert_eq!(sale_of(&mut c, open_end).status, "active");

    // A limit alone.
    let limited = sale_product(&s, PRICE, 10, "per_customer_limit = 1");
    let want = Sale {
        per_customer_limit: Some(1),
        ..Sale::none()
    };
    assert_product(&s, &product_view(&mut c, limited), limited, &want);

    // The status follows the clock of the read: move the window, read again.
    set_sale(&s, upcoming, "starts_at = now()");
    assert_eq!(sale_of(&mut c, upcoming).status, "active");
    set_sale(&s, upcoming, "ends_at = now()");
    assert_eq!(sale_of(&mut c, upcoming).status, "ended");
}

// ---- GET /sales ----------------------------------------------------------------------

fn sales_page(conn: &mut Conn, after: Option<i64>) -> Json {
    let path = match after {
        Some(after) => format!("/sales?after={after}"),
        None => "/sales".to_owned(),
    };
    let page = conn.get(&path).json(200);
    assert_eq!(
        page.keys(),
        ["server_time", "products"],
        "GET {path}: {page}"
    );
    assert_time_format(page.get("server_time").as_str());
    page
}

fn all_product_ids(s: &Stack) -> BTreeSet<i64> {
    let out = s.cluster.psql("SELECT id FROM products ORDER BY id");
    out.lines()
        .map(|l| l.parse().unwrap_or_else(|_| panic!("id {l:?}")))
        .collect()
}

#[test]
fn sales_listing_pages_through_every_product_in_ascending_id() {
    let s = stack();
    // Enough products for several pages, some with a sale.
    let many = s.create_products(2 * SALES_PAGE_MAX as i64 + 17, PRICE, 5);
    let upcoming = many[3];
    let ended = many[SALES_PAGE_MAX + 1];
    let limited = many[many.len() - 1];
    set_sale(&s, upcoming, "starts_at = now() + interval '1 hour'");
    set_sale(&s, ended, "ends_at = now()");
    set_sale(&s, limited, "per_customer_limit = 2");
    let before = all_product_ids(&s);
    let mut c = s.conn();

    let mut seen: Vec<i64> = Vec::new();
    let mut entries: BTreeMap<i64, Json> = BTreeMap::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = sales_page(&mut c, after);
        let products = page.get("products").as_array();
        assert!(
            products.len() <= SALES_PAGE_MAX,
            "after {after:?}: {} products in one page",
            products.len()
        );
        if products.is_empty() {
            break;
        }
        pages += 1;
        assert!(pages < 10_000, "the listing never ends");
        for product in products {
            assert_product_shape(product);
            let id = product.get("id").as_i64();
            if let Some(&last) = seen.last() {
                assert!(id > last, "ascending ids: {id} after {last}");
            }
            if let Some(after) = after {
                assert!(id > after, "id {id} in the page after {after}");
            }
            seen.push(id);
            entries.insert(id, product.clone());
        }
        after = seen.last().copied();
    }
    assert!(pages >= 3, "{} products in {pages} pages", seen.len());
    let seen_set: BTreeSet<i64> = seen.iter().copied().collect();
    let missing: Vec<&i64> = before.difference(&seen_set).collect();
    assert!(
        missing.is_empty(),
        "products missing from the listing: {missing:?}"
    );
    let after_walk = all_product_ids(&s);
    let phantom: Vec<&i64> = seen_set.difference(&after_walk).collect();
    assert!(
        phantom.is_empty(),
        "listed ids that are no product: {phantom:?}"
    );

    // Each entry is the product object GET /products/{id} shows.
    for id in [1, 2, 3, 4, 5, many[0], upcoming, ended, limited] {
        let listed = &entries[&id];
        let view = product_view(&mut c, id);
        assert_eq!(listed.to_string(), view.to_string(), "product {id}");
    }
    assert_eq!(assert_product_shape(&entries[&upcoming]).status, "upcoming");
    assert_eq!(assert_product_shape(&entries[&ended]).status, "ended");
    let sale = assert_product_shape(&entries[&limited]);
    assert_eq!((sale.status, sale.per_customer_limit), ("active", Some(2)));
    for id in 1..=5 {
        assert_eq!(assert_product_shape(&entries[&id]), Sale::none());
    }

    // ?after=0 is the first page; after the largest id there is nothing.
    let first = sales_page(&mut c, None);
    let from_zero = sales_page(&mut c, Some(0));
    let ids = |page: &Json| -> Vec<i64> {
        page.get("products")
            .as_array()
            .iter()
            .map(|p| p.get("id").as_i64())
            .collect()
    };
    assert_eq!(ids(&first)[..5], [1, 2, 3, 4, 5]);
    assert_eq!(ids(&first), ids(&from_zero));
    let last = sales_page(&mut c, Some(i64::from(i32::MAX)));
    assert!(last.get("products").as_array().is_empty(), "{last}");
    // Mid-listing: the page after one of ours starts at the next id.
    let next = sales_page(&mut c, Some(many[10]));
    assert_eq!(ids(&next)[0], many[11]);
}

#[test]
fn sales_listing_server_time_is_the_database_clock() {
    let s = stack();
    let mut c = s.conn();
    for port in ports(&s) {
        let mut conn = Conn::open(port);
        let before = db_now_s(&s);
        let page = sales_page(&mut conn, None);
        let after = db_now_s(&s);
        let time = page.get("server_time").as_str();
        let t = parse_utc(time).expect("server_time parses");
        // Milliseconds are truncated: allow one below `before`.
        assert!(
            t >= before - 0.001 && t <= after + 0.001,
            "server_time {time} ({t}) not within the database's clock [{before}, {after}]"
        );
    }
    let page = sales_page(&mut c, Some(i64::from(i32::MAX)));
    assert_time_format(page.get("server_time").as_str());
}

#[test]
fn sales_listing_after_must_be_an_integer() {
    let s = stack();
    let mut c = s.conn();
    for after in [
        "abc", "1.5", "1e2", "+1", "0x10", "01", "1,2", "true", "%31x",
    ] {
        let path = format!("/sales?after={after}");
        let response = c.get(&path);
        assert_eq!(response.status, 422, "GET {path}:\n{response}");
        response.error(422, Some("after"));
    }
    let response = c.request("POST", "/sales", Some(b"{}"));
    assert_eq!(response.status, 405, "POST /sales:\n{response}");
    response.error(405, None);
    let allow = response.header("Allow").unwrap_or("");
    assert!(allow.contains("GET"), "Allow {allow:?}");
}

// ---- windows --------------------------------------------------------------------------

#[test]
fn order_at_starts_at_is_accepted() {
    let s = stack();
    let mut c = s.conn();
    // starts_at = the database's now(), so at or before the order's time.
    let product = sale_product(&s, PRICE, 10, "starts_at = now()");
    let order = place(&mut c, product, &unique_customer("edge"), 2);
    assert_eq!(order.get("product_id").as_i64(), product);
    // With an end an hour away, too.
    let windowed = sale_product(
        &s,
        PRICE,
        10,
        "starts_at = now(), ends_at = now() + interval '1 hour'",
    );
    place(&mut c, windowed, &unique_customer("edge"), 1);
    assert_eq!(s.stock(product), 8);
    assert_eq!(s.stock(windowed), 9);
    assert_stock_equation(&s, product);
    assert_stock_equation(&s, windowed);
    let early = s.query_i64(&format!(
        "SELECT count(*) FROM orders o JOIN products p ON p.id = o.product_id \
         WHERE o.product_id IN ({product}, {windowed}) AND o.created_at < p.starts_at"
    ));
    assert_eq!(early, 0, "no order stamped before the sale started");
}

#[test]
fn order_just_before_starts_at_is_sale_not_started() {
    let s = stack();
    let mut c = s.conn();
    let customer = unique_customer("early");
    let product = sale_product(&s, PRICE, 10, "starts_at = now() + interval '10 seconds'");
    for port in ports(&s) {
        let mut conn = Conn::open(port);
        assert_refused(&s, &mut conn, product, &customer, 1, "sale_not_started");
    }
    assert_eq!(sale_of(&mut c, product).status, "upcoming");
    // The same product once its start is the database's now().
    set_sale(&s, product, "starts_at = now()");
    place(&mut c, product, &customer, 1);
    assert_eq!(s.stock(product), 9);
    assert_stock_equation(&s, product);
}

#[test]
fn order_at_ends_at_is_sale_ended() {
    let s = stack();
    let mut c = s.conn();
    let customer = unique_customer("late");
    let product = sale_product(
        &s,
        PRICE,
        10,
        "starts_at = now() - interval '1 hour', ends_at = now()",
    );
    for port in ports(&s) {
        let mut conn = Conn::open(port);
        assert_refused(&s, &mut conn, product, &customer, 1, "sale_ended");
    }
    assert_eq!(sale_of(&mut c, product).status, "ended");
    // Just before the end: accepted.
    let open = sale_product(&s, PRICE, 10, "ends_at = now() + interval '10 seconds'");
    place(&mut c, open, &customer, 1);
    assert_eq!(s.stock(open), 9);
    assert_eq!(s.stock(product), 10);
}

/// Orders one unit after another, and reads the product between them, from
/// before a short window opens until it has closed: every answer follows
/// the database's clock, so the sequence is not-started, created, ended,
/// never back, and no created order is stamped before the start.
#[test]
fn orders_across_a_window_follow_the_database_clock() {
    let s = stack();
    let mut c = s.conn();
    let product = sale_product(
        &s,
        PRICE,
        1_000_000,
        "starts_at = now() + interval '1500 milliseconds', \
         ends_at = now() + interval '2500 milliseconds'",
    );
    let customer = unique_customer("crossing");
    let guard = Instant::now() + WINDOW_CROSSING_GUARD;
    // 0 not started, 1 created, 2 ended; per answer, in order.
    let mut phases: Vec<u8> = Vec::new();
    let mut statuses: Vec<u8> = Vec::new();
    let mut created = 0;
    loop {
        assert!(Instant::now() < guard, "the sale did not end: {phases:?}");
        let response = try_place(&mut c, product, &customer, 1);
        let phase = match response.status {
            201 => {
                created += 1;
                1
            }
            409 => match reason_409(&response).as_str() {
                "sale_not_started" => 0,
                "sale_ended" => 2,
                other => panic!("unexpected refusal {other}:\n{response}"),
            },
            _ => panic!("unexpected answer:\n{response}"),
        };
        phases.push(phase);
        let status = match sale_of(&mut c, product).status {
            "upcoming" => 0,
            "active" => 1,
            _ => 2,
        };
        statuses.push(status);
        if phase == 2 && status == 2 {
            break;
        }
    }
    assert_eq!(phases[0], 0, "the first order came before the start");
    assert!(
        phases.windows(2).all(|w| w[0] <= w[1]),
        "answers went back in time: {phases:?}"
    );
    assert!(
        statuses.windows(2).all(|w| w[0] <= w[1]),
        "sale status went back in time: {statuses:?}"
    );
    assert!(created > 0, "no order inside the window: {phases:?}");
    assert_eq!(order_rows(&s, product), created);
    assert_eq!(s.stock(product), 1_000_000 - created);
    let early = s.query_i64(&format!(
        "SELECT count(*) FROM orders o JOIN products p ON p.id = o.product_id \
         WHERE o.product_id = {product} AND o.created_at < p.starts_at"
    ));
    assert_eq!(early, 0, "orders stamped before the sale started");
}

#[test]
fn replay_after_the_window_closed_returns_the_original_order() {
    let s = stack();
    let mut c = s.conn();
    let customer = unique_customer("replay");
    let product = sale_product(&s, PRICE, 10, "per_customer_limit = 2");
    let key = new_uuid_v4();
    let original = c
        .post("/orders", &order_body(product, &key, &customer, 2))
        .json(201);
    set_sale(&s, product, "ends_at = now()");
    for port in ports(&s) {
        let mut conn = Conn::open(port);
        let replay = conn
            .post("/orders", &order_body(product, &key, &customer, 2))
            .json(200);
        assert_eq!(replay, original, "replay after the end");
        // Another body under the same key: still the original.
        let other = conn
            .post("/orders", &order_body(product, &key, "someone-else", 1))
            .json(200);
        assert_eq!(other, original, "replay with another body");
    }
    assert_refused(&s, &mut c, product, &customer, 1, "sale_ended");
    // Before a (new) start, too.
    set_sale(
        &s,
        product,
        "ends_at = NULL, starts_at = now() + interval '1 hour'",
    );
    let replay = c
        .post("/orders", &order_body(product, &key, &customer, 2))
        .json(200);
    assert_eq!(replay, original, "replay before the start");
    assert_eq!(s.stock(product), 8);
    assert_eq!(order_rows(&s, product), 1);
    assert_stock_equation(&s, product);
}

// ---- limits -------------------------------------------------------------------------------

#[test]
fn limit_counts_the_units_of_confirmed_orders() {
    let s = stack();
    let mut c = s.conn();
    let product = sale_product(&s, PRICE, 100, "per_customer_limit = 3");
    let (a, b, d) = (
        unique_customer("lim-a"),
        unique_customer("lim-b"),
        unique_customer("lim-d"),
    );
    place(&mut c, product, &a, 2);
    assert_refused(&s, &mut c, product, &a, 2, "customer_limit_reached");
    place(&mut c, product, &a, 1);
    assert_refused(&s, &mut c, product, &a, 1, "customer_limit_reached");
    // Exactly the limit in one order, then nothing more.
    place(&mut c, product, &b, 3);
    assert_refused(&s, &mut c, product, &b, 1, "customer_limit_reached");
    // More than the limit in one order, from a customer without orders.
    assert_refused(&s, &mut c, product, &d, 4, "customer_limit_reached");
    place(&mut c, product, &d, 1);
    // The limit is per product: the same customer on another limited product.
    let other = sale_product(&s, PRICE, 100, "per_customer_limit = 3");
    place(&mut c, other, &a, 3);
    // And per customer id exactly (case and spacing matter).
    let upper = a.to_uppercase();
    place(&mut c, product, &upper, 3);
    assert_eq!(confirmed_units(&s, product, &a), 3);
    assert_eq!(confirmed_units(&s, product, &b), 3);
    assert_eq!(confirmed_units(&s, product, &d), 1);
    assert_eq!(s.stock(product), 100 - 10);
    assert_stock_equation(&s, product);
    // A limit above the quantity bound: five units at a time up to 7.
    let seven = sale_product(&s, PRICE, 100, "per_customer_limit = 7");
    place(&mut c, seven, &a, 5);
    assert_refused(&s, &mut c, seven, &a, 3, "customer_limit_reached");
    place(&mut c, seven, &a, 2);
    assert_refused(&s, &mut c, seven, &a, 1, "customer_limit_reached");
}

#[test]
fn cancel_frees_the_limit_again() {
    let s = stack();
    let mut c = s.conn();
    let product = sale_product(&s, PRICE, 100, "per_customer_limit = 2");
    let customer = unique_customer("freed");
    let first = place(&mut c, product, &customer, 2);
    assert_refused(&s, &mut c, product, &customer, 1, "customer_limit_reached");
    // Cancelled through the other server.
    let mut other = s.servers[1].conn();
    cancel(&mut other, first.get("order_id").as_str());
    assert_eq!(confirmed_units(&s, product, &customer), 0);
    place(&mut other, product, &customer, 1);
    place(&mut c, product, &customer, 1);
    assert_refused(
        &s,
        &mut other,
        product,
        &customer,
        1,
        "customer_limit_reached",
    );
    assert_eq!(confirmed_units(&s, product, &customer), 2);
    assert_eq!(s.stock(product), 98);
    assert_stock_equation(&s, product);
}

/// Fires `quantities.len()` orders of `customer` at once, spread over
/// both servers; returns (quantity, response) pairs.
fn one_customer_burst(
    conns: &mut [Conn],
    product: i64,
    customer: &str,
    quantities: &[i64],
) -> Vec<(i64, Response)> {
    let requests: Vec<Vec<u8>> = quantities
        .iter()
        .map(|&q| order_request(product, &new_uuid_v4(), customer, q))
        .collect();
    let responses = race(conns, &requests);
    quantities.iter().copied().zip(responses).collect()
}

/// Every answer is 201 or 409 customer_limit_reached; returns the 201s.
fn created_under_limit(outcomes: &[(i64, Response)], what: &str) -> Vec<(i64, Json)> {
    let responses: Vec<Response> = outcomes.iter().map(|(_, r)| r.clone()).collect();
    let mut created = Vec::new();
    for (quantity, response) in outcomes {
        match response.status {
            201 => {
                let order = response.json(201);
                assert_eq!(order.get("quantity").as_i64(), *quantity);
                created.push((*quantity, order));
            }
            409 => assert_eq!(
                reason_409(response),
                "customer_limit_reached",
                "{what}: {}",
                status_summary(&responses)
            ),
            _ => panic!(
                "{what}: only 201 and 409 are acceptable ({}):\n{response}",
                status_summary(&responses)
            ),
        }
    }
    created
}

#[test]
fn two_servers_50_orders_of_one_customer_on_a_limit_1_product_create_exactly_one() {
    let s = stack();
    let mut conns = open_conns(&ports(&s), SAME_CUSTOMER_CLIENTS);
    let quantities = vec![1; SAME_CUSTOMER_CLIENTS];
    for round in 0..SAME_CUSTOMER_ROUNDS {
        let product = sale_product(&s, PRICE, 100, "per_customer_limit = 1");
        let customer = unique_customer("burst");
        let outcomes = one_customer_burst(&mut conns, product, &customer, &quantities);
        let created = created_under_limit(&outcomes, &format!("round {round}"));
        assert_eq!(created.len(), 1, "round {round}: exactly one order");
        assert_eq!(confirmed_units(&s, product, &customer), 1, "round {round}");

        // A cancel frees the limit: the next burst creates exactly one again.
        let order_id = created[0].1.get("order_id").as_str().to_owned();
        conns[1].send(&cancel_request(&order_id));
        conns[1].read_response().json(200);
        let outcomes = one_customer_burst(&mut conns, product, &customer, &quantities);
        let created = created_under_limit(&outcomes, &format!("round {round} after cancel"));
        assert_eq!(
            created.len(),
            1,
            "round {round} after the cancel: exactly one"
        );
        assert_eq!(confirmed_units(&s, product, &customer), 1, "round {round}");
        assert_eq!(
            order_rows(&s, product),
            2,
            "round {round}: two orders, one cancelled"
        );
        assert_eq!(s.stock(product), 99, "round {round}");
        assert_stock_equation(&s, product);
    }
}

#[test]
fn two_servers_limit_3_with_mixed_quantities_never_exceeds_3() {
    let s = stack();
    let mut conns = open_conns(&ports(&s), SAME_CUSTOMER_CLIENTS);
    // Quantities 1 and 2 alternate. Whatever order they are judged in, the
    // customer ends with exactly 3 units: below 3, any 1-unit order fits,
    // and there are more of those than 3.
    let quantities: Vec<i64> = (0..SAME_CUSTOMER_CLIENTS as i64)
        .map(|i| i % 2 + 1)
        .collect();
    for round in 0..SAME_CUSTOMER_ROUNDS {
        let product = sale_product(&s, PRICE, 1000, "per_customer_limit = 3");
        let customer = unique_customer("mixed");
        let outcomes = one_customer_burst(&mut conns, product, &customer, &quantities);
        let created = created_under_limit(&outcomes, &format!("round {round}"));
        let units: i64 = created.iter().map(|(q, _)| q).sum();
        assert_eq!(units, 3, "round {round}: units created {created:?}");
        assert_eq!(confirmed_units(&s, product, &customer), 3, "round {round}");
        assert_eq!(order_rows(&s, product), created.len() as i64);
        assert_eq!(s.stock(product), 1000 - 3);
        assert_stock_equation(&s, product);

        // Cancelling a 2-unit order (if any) frees two units for the next burst.
        if let Some((q, order)) = created.iter().find(|(q, _)| *q == 2) {
            assert_eq!(*q, 2);
            cancel(&mut conns[0], order.get("order_id").as_str());
            let outcomes = one_customer_burst(&mut conns, product, &customer, &quantities);
            let again = created_under_limit(&outcomes, &format!("round {round} again"));
            let units: i64 = again.iter().map(|(q, _)| q).sum();
            assert_eq!(units, 2, "round {round}: freed two units, got {again:?}");
            assert_eq!(confirmed_units(&s, product, &customer), 3, "round {round}");
            assert_stock_equation(&s, product);
        }
    }
}

#[test]
fn two_servers_200_customers_on_100_units_with_limit_1_get_exactly_100_orders() {
    let s = stack();
    let product = sale_product(&s, PRICE, MANY_CUSTOMERS_STOCK, "per_customer_limit = 1");
    let prefix = format!("crowd-{}", &new_uuid_v4()[..8]);
    let customers: Vec<String> = (0..MANY_CUSTOMERS)
        .map(|i| format!("{prefix}-{i}"))
        .collect();
    // Each customer twice, on different servers, all at once.
    let requests: Vec<Vec<u8>> = (0..2 * MANY_CUSTOMERS)
        .map(|i| order_request(product, &new_uuid_v4(), &customers[i / 2], 1))
        .collect();
    let mut conns = open_conns(&ports(&s), requests.len());
    let responses = race(&mut conns, &requests);
    let summary = status_summary(&responses);
    let mut per_customer: BTreeMap<&str, usize> = BTreeMap::new();
    let mut created = 0;
    for (i, response) in responses.iter().enumerate() {
        match response.status {
            201 => {
                let order = response.json(201);
                assert_eq!(order.get("customer_id").as_str(), customers[i / 2]);
                *per_customer.entry(&customers[i / 2]).or_default() += 1;
                created += 1;
            }
            409 => {
                let reason = reason_409(response);
                assert!(
                    reason == "insufficient_stock" || reason == "customer_limit_reached",
                    "unexpected refusal ({summary}):\n{response}"
                );
            }
            _ => panic!("only 201 and 409 are acceptable ({summary}):\n{response}"),
        }
    }
    assert_eq!(
        created, MANY_CUSTOMERS_STOCK,
        "exactly the stock is sold ({summary})"
    );
    let twice: Vec<_> = per_customer.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "customers with two orders: {twice:?}");
    assert_eq!(s.stock(product), 0);
    let max_per_customer = s.query_i64(&format!(
        "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM orders \
         WHERE product_id = {product} AND status = 'CONFIRMED' GROUP BY customer_id) t"
    ));
    assert_eq!(
        max_per_customer, 1,
        "at most one order per customer in the database"
    );
    assert_eq!(order_rows(&s, product), MANY_CUSTOMERS_STOCK);
    assert_stock_equation(&s, product);
}

#[test]
fn replay_of_a_customer_at_the_limit_returns_the_original_order() {
    let s = stack();
    let mut c = s.conn();
    let customer = unique_customer("replay-limit");
    let product = sale_product(&s, PRICE, 1, "per_customer_limit = 1");
    let key = new_uuid_v4();
    let original = c
        .post("/orders", &order_body(product, &key, &customer, 1))
        .json(201);
    // At the limit and sold out: the replay still wins.
    for port in ports(&s) {
        let replay = Conn::open(port)
            .post("/orders", &order_body(product, &key, &customer, 1))
            .json(200);
        assert_eq!(replay, original);
    }
    assert_refused(&s, &mut c, product, &customer, 1, "customer_limit_reached");
    assert_eq!(order_rows(&s, product), 1);
}

// ---- the refusal precedence ------------------------------------------------------------

#[test]
fn refusal_precedence_is_unknown_product_then_window_then_limit_then_stock() {
    let s = stack();
    for port in ports(&s) {
        let mut c = Conn::open(port);
        let (a, b) = (unique_customer("prec-a"), unique_customer("prec-b"));

        // Unknown product, whatever else: 404.
        let response = try_place(&mut c, UNKNOWN_PRODUCT, &a, 5);
        response.error(404, None);

        // Ended and sold out, customer at its limit: sale_ended.
        let ended = sale_product(&s, PRICE, 1, "per_customer_limit = 1");
        place(&mut c, ended, &a, 1);
        set_sale(&s, ended, "ends_at = now()");
        assert_refused(&s, &mut c, ended, &b, 1, "sale_ended");
        assert_refused(&s, &mut c, ended, &a, 1, "sale_ended");

        // Not started and sold out, customer at its limit: sale_not_started.
        let upcoming = sale_product(&s, PRICE, 1, "per_customer_limit = 1");
        place(&mut c, upcoming, &a, 1);
        set_sale(&s, upcoming, "starts_at = now() + interval '1 hour'");
        assert_refused(&s, &mut c, upcoming, &b, 1, "sale_not_started");
        assert_refused(&s, &mut c, upcoming, &a, 1, "sale_not_started");

        // Sold out, customer at its limit: customer_limit_reached; another
        // customer: insufficient_stock (this also tells the server the
        // product is sold out; the limit must still come first).
        let capped = sale_product(&s, PRICE, 1, "per_customer_limit = 1");
        place(&mut c, capped, &a, 1);
        assert_refused(&s, &mut c, capped, &b, 1, "insufficient_stock");
        assert_refused(&s, &mut c, capped, &a, 1, "customer_limit_reached");
        assert_refused(&s, &mut c, capped, &b, 2, "customer_limit_reached");
        assert_refused(&s, &mut c, capped, &b, 1, "insufficient_stock");

        // Over both the limit and the stock: the limit.
        let both = sale_product(&s, PRICE, 3, "per_customer_limit = 3");
        place(&mut c, both, &a, 2);
        assert_refused(&s, &mut c, both, &a, 2, "customer_limit_reached");
        place(&mut c, both, &a, 1);
        assert_refused(&s, &mut c, both, &a, 1, "customer_limit_reached");
        assert_refused(&s, &mut c, both, &b, 1, "insufficient_stock");

        // Sold out and known to be: a window closed afterwards still wins.
        let plain = s.create_product(PRICE, 1);
        place(&mut c, plain, &a, 1);
        assert_refused(&s, &mut c, plain, &b, 1, "insufficient_stock");
        set_sale(&s, plain, "ends_at = now()");
        assert_refused(&s, &mut c, plain, &b, 1, "sale_ended");
        set_sale(
            &s,
            plain,
            "ends_at = NULL, starts_at = now() + interval '1 hour'",
        );
        assert_refused(&s, &mut c, plain, &b, 1, "sale_not_started");
        set_sale(&s, plain, "starts_at = NULL, per_customer_limit = 1");
        assert_refused(&s, &mut c, plain, &a, 1, "customer_limit_reached");
        assert_refused(&s, &mut c, plain, &b, 1, "insufficient_stock");

        for product in [ended, upcoming, capped, both, plain] {
            assert_eq!(s.stock(product), 0);
            assert_stock_equation(&s, product);
        }
    }
}

// ---- mixed batches ---------------------------------------------------------------------------

/// What one order of a mixed burst must get: what it gets alone.
#[derive(Debug)]
enum Want {
    Created { product: i64, customer: String },
    Replay(Json),
    Refused(&'static str),
    NotFound,
}

struct Case {
    what: &'static str,
    request: Vec<u8>,
    want: Want,
}

fn metric(conn: &mut Conn, name: &str) -> f64 {
    let response = conn.get("/metrics");
    assert_eq!(response.status, 200, "GET /metrics:\n{response}");
    let text = response.body_text();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map(|value| value.trim().parse().expect("metric value"))
        .unwrap_or(0.0)
}

fn mixed_round(s: &Stack, port: u16, round: usize) -> usize {
    let mut setup = Conn::open(port);
    let tag = |what: &str| unique_customer(&format!("mix{round}-{what}"));
    let plain = s.create_product(PRICE, 10_000);
    let sold_out = s.create_product(PRICE, 0);
    let ended = sale_product(s, PRICE, 100, "");
    let ended_sold_out = sale_product(s, PRICE, 1, "");
    let upcoming = sale_product(s, PRICE, 100, "starts_at = now() + interval '1 hour'");
    let limit_1 = sale_product(s, PRICE, 1000, "per_customer_limit = 1");
    let limit_2 = sale_product(s, PRICE, 1000, "per_customer_limit = 2");
    let limit_sold_out = sale_product(s, PRICE, 1, "per_customer_limit = 1");

    // Orders before the burst: the ones replayed, and the ones that put
    // customers at their limit or sell products out.
    let replayer = tag("replayer");
    let plain_key = new_uuid_v4();
    let plain_order = setup
        .post("/orders", &order_body(plain, &plain_key, &replayer, 2))
        .json(201);
    let ended_key = new_uuid_v4();
    let ended_order = setup
        .post("/orders", &order_body(ended, &ended_key, &replayer, 1))
        .json(201);
    place(&mut setup, ended_sold_out, &replayer, 1);
    let capped = tag("capped");
    let capped_key = new_uuid_v4();
    let capped_order = setup
        .post("/orders", &order_body(limit_1, &capped_key, &capped, 1))
        .json(201);
    place(&mut setup, limit_sold_out, &capped, 1);
    set_sale(s, ended, "ends_at = now()");
    set_sale(s, ended_sold_out, "ends_at = now()");

    let mut cases: Vec<Case> = Vec::new();
    let mut add = |what: &'static str, product: i64, customer: &str, qty: i64, want: Want| {
        cases.push(Case {
            what,
            request: order_request(product, &new_uuid_v4(), customer, qty),
            want,
        });
    };
    for _ in 0..MIXED_COPIES {
        let fresh = tag("fresh");
        let created = |product: i64, customer: &str| Want::Created {
            product,
            customer: customer.to_owned(),
        };
        add("plain", plain, &fresh, 3, created(plain, &fresh));
        add(
            "sold out",
            sold_out,
            &fresh,
            1,
            Want::Refused("insufficient_stock"),
        );
        add("ended", ended, &fresh, 1, Want::Refused("sale_ended"));
        add(
            "ended, sold out",
            ended_sold_out,
            &fresh,
            1,
            Want::Refused("sale_ended"),
        );
        add(
            "ended, customer with an order",
            ended,
            &replayer,
            1,
            Want::Refused("sale_ended"),
        );
        add(
            "upcoming",
            upcoming,
            &fresh,
            1,
            Want::Refused("sale_not_started"),
        );
        add(
            "at limit",
            limit_1,
            &capped,
            1,
            Want::Refused("customer_limit_reached"),
        );
        add("under limit", limit_1, &fresh, 1, created(limit_1, &fresh));
        add(
            "over limit alone",
            limit_2,
            &tag("big"),
            3,
            Want::Refused("customer_limit_reached"),
        );
        let pair = tag("pair");
        add("pair, first", limit_2, &pair, 1, created(limit_2, &pair));
        add("pair, second", limit_2, &pair, 1, created(limit_2, &pair));
        add(
            "at limit, sold out",
            limit_sold_out,
            &capped,
            1,
            Want::Refused("customer_limit_reached"),
        );
        add(
            "sold out, under limit",
            limit_sold_out,
            &fresh,
            1,
            Want::Refused("insufficient_stock"),
        );
        add(
            "unknown product",
            UNKNOWN_PRODUCT,
            &fresh,
            1,
            Want::NotFound,
        );
    }
    let replays = [
        (plain, &plain_key, &plain_order),
        (ended, &ended_key, &ended_order),
        (limit_1, &capped_key, &capped_order),
    ];
    for (product, key, order) in replays {
        for _ in 0..MIXED_COPIES {
            cases.push(Case {
                what: "replay",
                request: order_request(product, key, "another-body", 1),
                want: Want::Replay(order.clone()),
            });
        }
    }
    fastrand::Rng::with_seed(round as u64).shuffle(&mut cases);

    let requests: Vec<Vec<u8>> = cases.iter().map(|c| c.request.clone()).collect();
    let mut conns = open_conns(&[port], requests.len());
    let responses = race(&mut conns, &requests);
    let summary = status_summary(&responses);
    for (case, response) in cases.iter().zip(&responses) {
        let what = format!("round {round}, {} ({summary})", case.what);
        match &case.want {
            Want::Created { product, customer } => {
                let order = response.json(201);
                assert_eq!(order.get("product_id").as_i64(), *product, "{what}");
                assert_eq!(order.get("customer_id").as_str(), customer, "{what}");
            }
            Want::Replay(original) => {
                assert_eq!(&response.json(200), original, "{what}");
            }
            Want::Refused(reason) => {
                assert_eq!(response.status, 409, "{what}:\n{response}");
                assert_eq!(reason_409(response), *reason, "{what}:\n{response}");
            }
            Want::NotFound => {
                assert_eq!(response.status, 404, "{what}:\n{response}");
                response.error(404, None);
            }
        }
    }

    let n = MIXED_COPIES as i64;
    assert_eq!(s.stock(plain), 10_000 - 2 - 3 * n);
    assert_eq!(s.stock(limit_1), 1000 - 1 - n);
    assert_eq!(s.stock(limit_2), 1000 - 2 * n);
    for (product, rows) in [
        (plain, 1 + n),
        (sold_out, 0),
        (ended, 1),
        (ended_sold_out, 1),
        (upcoming, 0),
        (limit_1, 1 + n),
        (limit_2, 2 * n),
        (limit_sold_out, 1),
    ] {
        assert_eq!(
            order_rows(s, product),
            rows,
            "round {round}: orders of {product}"
        );
        assert_stock_equation(s, product);
    }
    cases.len()
}

#[test]
fn mixed_batches_give_each_order_the_answer_it_gets_alone() {
    let s = stack();
    let ports = ports(&s);
    let mut metrics: Vec<Conn> = ports.iter().map(|&p| Conn::open(p)).collect();
    let batched_before: Vec<(f64, f64)> = metrics
        .iter_mut()
        .map(|m| {
            (
                metric(m, "flashsale_order_batch_size_sum"),
                metric(m, "flashsale_order_batch_size_count"),
            )
        })
        .collect();
    let mut sent = vec![0usize; ports.len()];
    for round in 0..MIXED_BATCH_ROUNDS {
        let server = round % ports.len();
        sent[server] += mixed_round(&s, ports[server], round);
    }
    // The bursts did share batches (else this test proves nothing).
    for (i, m) in metrics.iter_mut().enumerate() {
        let orders = metric(m, "flashsale_order_batch_size_sum") - batched_before[i].0;
        let batches = metric(m, "flashsale_order_batch_size_count") - batched_before[i].1;
        assert!(
            orders > batches,
            "server {i}: {orders} orders in {batches} batches, never two in one ({} sent)",
            sent[i]
        );
    }
}

// ---- GET /orders?customer_id= -------------------------------------------------------------

fn customer_orders(conn: &mut Conn, query: &str) -> Json {
    let path = format!("/orders?{query}");
    let list = conn.get(&path).json(200);
    assert_eq!(list.keys(), ["customer_id", "orders"], "GET {path}: {list}");
    list
}

/// Percent-encodes every byte but the unreserved ones (uppercase hex).
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// [`percent_encode`] with lowercase hex digits.
fn percent_encode_lower(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02x}"),
        })
        .collect()
}

/// Entries against the placed orders (most recent first), members in order.
fn assert_customer_entries(entries: &[Json], newest_first: &[&Json], cancelled: &[String]) {
    assert_eq!(entries.len(), newest_first.len(), "number of entries");
    for (entry, order) in entries.iter().zip(newest_first) {
        assert_eq!(entry.keys(), CUSTOMER_ENTRY_KEYS, "members of {entry}");
        let order_id = order.get("order_id").as_str();
        assert_eq!(
            entry.get("order_id").as_str(),
            order_id,
            "most recent first"
        );
        assert_eq!(entry.get("id").as_str(), order_id);
        for key in [
            "product_id",
            "customer_id",
            "quantity",
            "total_price",
            "created_at",
        ] {
            assert_eq!(entry.get(key), order.get(key), "{key} of {entry}");
        }
        let status = if cancelled.iter().any(|c| c == order_id) {
            "CANCELLED"
        } else {
            "CONFIRMED"
        };
        assert_eq!(entry.get("status").as_str(), status, "{entry}");
    }
}

#[test]
fn customer_orders_are_the_last_50_most_recent_first_across_products() {
    let s = stack();
    let mut c = s.conn();
    let (a, b) = (
        s.create_product(PRICE, 1000),
        s.create_product(PRICE + 1, 1000),
    );
    let customer = unique_customer("lookup");
    let other = unique_customer("lookup-other");
    let mut placed = Vec::new();
    for i in 0..55 {
        let product = if i % 3 == 0 { b } else { a };
        placed.push(place(&mut c, product, &customer, i % 5 + 1));
        if i % 10 == 0 {
            place(&mut c, product, &other, 1);
        }
    }
    // Orders through the second server count the same.
    placed.push(place(&mut s.servers[1].conn(), b, &customer, 1));
    let cancelled = vec![
        placed[54].get("order_id").as_str().to_owned(),
        placed[20].get("order_id").as_str().to_owned(),
    ];
    for order_id in &cancelled {
        cancel(&mut c, order_id);
    }

    let query = format!("customer_id={}", percent_encode(&customer));
    for port in ports(&s) {
        let list = customer_orders(&mut Conn::open(port), &query);
        assert_eq!(list.get("customer_id").as_str(), customer);
        let newest: Vec<&Json> = placed.iter().rev().take(CUSTOMER_ORDERS_MAX).collect();
        assert_customer_entries(list.get("orders").as_array(), &newest, &cancelled);
        let mut previous = f64::INFINITY;
        for entry in list.get("orders").as_array() {
            let t = parse_utc(entry.get("created_at").as_str()).expect("created_at");
            assert!(t <= previous, "most recent first: {entry}");
            previous = t;
        }
    }
}

#[test]
fn customer_orders_filtered_by_product() {
    let s = stack();
    let mut c = s.conn();
    let (a, b) = (s.create_product(PRICE, 1000), s.create_product(PRICE, 1000));
    let customer = unique_customer("filter");
    let mut of_a = Vec::new();
    for i in 0..60 {
        let product = if i % 4 == 0 { b } else { a };
        let order = place(&mut c, product, &customer, 1);
        if product == a {
            of_a.push(order);
        }
    }
    place(&mut c, a, &unique_customer("filter-other"), 1);
    assert_eq!(of_a.len(), 45);
    let encoded = percent_encode(&customer);
    let newest: Vec<&Json> = of_a.iter().rev().collect();
    for query in [
        format!("customer_id={encoded}&product_id={a}"),
        format!("product_id={a}&customer_id={encoded}"),
    ] {
        let list = customer_orders(&mut c, &query);
        assert_eq!(list.get("customer_id").as_str(), customer, "{query}");
        assert_customer_entries(list.get("orders").as_array(), &newest, &[]);
    }
    let list = customer_orders(&mut c, &format!("customer_id={encoded}&product_id={b}"));
    assert_eq!(list.get("orders").as_array().len(), 15);
    for entry in list.get("orders").as_array() {
        assert_eq!(entry.get("product_id").as_i64(), b);
    }
}

#[test]
fn customer_orders_of_an_unknown_customer_or_product_is_an_empty_list() {
    let s = stack();
    let mut c = s.conn();
    let product = s.create_product(PRICE, 10);
    let customer = unique_customer("known");
    place(&mut c, product, &customer, 1);
    let nobody = unique_customer("nobody");
    let encoded = percent_encode(&customer);
    for query in [
        format!("customer_id={}", percent_encode(&nobody)),
        format!(
            "customer_id={}&product_id={product}",
            percent_encode(&nobody)
        ),
        format!("customer_id={encoded}&product_id={UNKNOWN_PRODUCT}"),
        format!("customer_id={encoded}&product_id=1"),
    ] {
        let list = customer_orders(&mut c, &query);
        assert!(list.get("orders").as_array().is_empty(), "{query}: {list}");
    }
    let list = customer_orders(&mut c, &format!("customer_id={}", percent_encode(&nobody)));
    assert_eq!(list.get("customer_id").as_str(), nobody);
}

#[test]
fn customer_orders_without_customer_id_or_product_id_is_422() {
    let s = stack();
    let mut c = s.conn();
    for path in [
        "/orders",
        "/orders?",
        "/orders?other=1",
        "/orders?customer=x",
        "/orders?customerid=x",
    ] {
        let response = c.get(path);
        assert_eq!(response.status, 422, "GET {path}:\n{response}");
        response.error(422, None);
    }
    let too_long = "x".repeat(51);
    for path in [
        "/orders?customer_id=".to_owned(),
        format!("/orders?customer_id={too_long}"),
        format!("/orders?customer_id={}", "%C3%A9".repeat(51)),
        // Malformed escapes, and bytes that are not UTF-8 once decoded.
        "/orders?customer_id=%".to_owned(),
        "/orders?customer_id=a%zz".to_owned(),
        "/orders?customer_id=a%4".to_owned(),
        "/orders?customer_id=%FF".to_owned(),
        "/orders?customer_id=a%00b".to_owned(),
        "/orders?customer_id=a&customer_id=b".to_owned(),
    ] {
        let response = c.get(&path);
        assert_eq!(response.status, 422, "GET {path}:\n{response}");
        response.error(422, Some("customer_id"));
    }
    for product in ["abc", "1.5", "1e0", "true", ""] {
        let path = format!("/orders?customer_id=someone&product_id={product}");
        let response = c.get(&path);
        assert_eq!(response.status, 422, "GET {path}:\n{response}");
        response.error(422, Some("product_id"));
    }
}

#[test]
fn customer_orders_decode_percent_encoded_customer_ids() {
    let s = stack();
    let mut c = s.conn();
    let product = s.create_product(PRICE, 100);
    let suffix = &new_uuid_v4()[..8];
    let customers = [
        format!("a b&c=d/e?f#g%h+i {suffix}"),
        format!("quote\" back\\slash {suffix}"),
        format!("accents é ü 日本 {suffix}"),
        format!("{}{suffix}", "é".repeat(42)),
    ];
    for customer in &customers {
        assert!(customer.chars().count() <= 50);
        let order = place(&mut c, product, customer, 1);
        // Uppercase and lowercase hex digits decode the same.
        for query in [
            format!("customer_id={}", percent_encode(customer)),
            format!("customer_id={}", percent_encode_lower(customer)),
        ] {
            let list = customer_orders(&mut c, &query);
            assert_eq!(list.get("customer_id").as_str(), customer, "{query}");
            let entries = list.get("orders").as_array();
            assert_eq!(entries.len(), 1, "{query}: {list}");
            assert_eq!(entries[0].get("order_id"), order.get("order_id"));
            assert_eq!(entries[0].get("customer_id").as_str(), customer);
        }
    }
    // Needless escapes of plain characters decode too.
    let plain = unique_customer("plain");
    let order = place(&mut c, product, &plain, 1);
    let every_byte: String = plain.bytes().map(|b| format!("%{b:02X}")).collect();
    let list = customer_orders(&mut c, &format!("customer_id={every_byte}"));
    assert_eq!(list.get("orders").as_array().len(), 1, "{list}");
    assert_eq!(
        list.get("orders").as_array()[0].get("order_id"),
        order.get("order_id")
    );
    // 50 characters is the bound, as in the order body.
    let fifty: String = format!("{}{}", "ü".repeat(42), &new_uuid_v4()[..8]);
    assert_eq!(fifty.chars().count(), 50);
    place(&mut c, product, &fifty, 1);
    let list = customer_orders(&mut c, &format!("customer_id={}", percent_encode(&fifty)));
    assert_eq!(list.get("orders").as_array().len(), 1, "{list}");
}

#[test]
fn product_orders_alone_keep_todays_answer() {
    let s = stack();
    let mut c = s.conn();
    let product = s.create_product(PRICE, 100);
    let order = place(&mut c, product, &unique_customer("today"), 2);
    let list = c.get(&format!("/orders?product_id={product}")).json(200);
    assert_eq!(list.keys(), ["product_id", "orders"], "{list}");
    assert_eq!(list.get("product_id").as_i64(), product);
    let entries = list.get("orders").as_array();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0].keys(),
        [
            "order_id",
            "id",
            "customer_id",
            "quantity",
            "total_price",
            "status",
            "created_at",
            "payment_status"
        ],
        "{list}"
    );
    assert_eq!(entries[0].get("order_id"), order.get("order_id"));
    c.get(&format!("/orders?product_id={UNKNOWN_PRODUCT}"))
        .error(404, None);
}
