//! The spec's invariants under concurrency, against the real binary: each
//! test releases many raw-TCP clients at once (a barrier) and asserts an
//! outcome that a race would break. The `two_servers_*` tests split the
//! clients across two server processes sharing one database, as api-01 and
//! api-02 do behind the load balancer.
//!
//! All tests share one cluster and two servers; each creates its own
//! products, so they never see each other's stock.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::panic;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use support::race::{join, race};
use support::server::http::{request_bytes, Conn, Response};
use support::server::json::Json;
use support::server::{new_uuid_v4, shared_stack, Stack};

const PRICE: i64 = 500;
/// Rounds of the two-clients-one-unit race.
const LAST_UNIT_ROUNDS: i64 = 200;
const SAME_KEY_CLIENTS: usize = 50;
const SAME_KEY_ROUNDS: usize = 20;
const CANCEL_CLIENTS: usize = 20;
const CANCEL_ROUNDS: usize = 20;
const BURST_STOCK: i64 = 10;
const BURST_CLIENTS: usize = 50;
const BURST_REQUESTS_PER_CLIENT: usize = 10;

fn stack() -> Arc<Stack> {
    shared_stack(2)
}

fn one_server(s: &Stack) -> Vec<u16> {
    vec![s.servers[0].port()]
}

fn two_servers(s: &Stack) -> Vec<u16> {
    s.servers.iter().map(|server| server.port()).collect()
}

/// `count` connections, spread round-robin over `ports`.
fn open_conns(ports: &[u16], count: usize) -> Vec<Conn> {
    (0..count)
        .map(|i| Conn::open(ports[i % ports.len()]))
        .collect()
}

fn order_body(product_id: i64, key: &str, quantity: i64) -> String {
    format!(
        "{{\"product_id\":{product_id},\"idempotency_key\":\"{key}\",\
         \"customer_id\":\"racer\",\"quantity\":{quantity}}}"
    )
}

fn order_request(product_id: i64, key: &str, quantity: i64) -> Vec<u8> {
    let body = order_body(product_id, key, quantity);
    request_bytes("POST", "/orders", Some(body.as_bytes()))
}

fn cancel_request(order_id: &str, product_id: Option<i64>) -> Vec<u8> {
    let path = format!("/orders/{order_id}/cancel");
    let body = product_id.map(|id| format!("{{\"product_id\":{id}}}"));
    request_bytes("POST", &path, body.as_deref().map(str::as_bytes))
}

/// "201×1 200×49" for failure messages.
fn status_summary(responses: &[Response]) -> String {
    let mut counts: BTreeMap<u16, usize> = BTreeMap::new();
    for r in responses {
        *counts.entry(r.status).or_default() += 1;
    }
    let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{s}×{n}")).collect();
    parts.join(" ")
}

fn with_status(responses: &[Response], status: u16) -> Vec<&Response> {
    responses.iter().filter(|r| r.status == status).collect()
}

// ---- (a) two different keys race for the last unit ---------------------------

fn last_unit_races(s: &Stack, ports: &[u16]) {
    let products = s.create_products(LAST_UNIT_ROUNDS, PRICE, 1);
    let mut conns = open_conns(ports, 2);
    for (round, &product) in products.iter().enumerate() {
        let requests = [
            order_request(product, &new_uuid_v4(), 1),
            order_request(product, &new_uuid_v4(), 1),
        ];
        let responses = race(&mut conns, &requests);
        let created = with_status(&responses, 201);
        let refused = with_status(&responses, 409);
        assert!(
            created.len() == 1 && refused.len() == 1,
            "round {round}, product {product}: want one 201 and one 409, got {}:\n{}\n{}",
            status_summary(&responses),
            responses[0],
            responses[1]
        );
        assert_eq!(created[0].json(201).get("quantity").as_i64(), 1);
        refused[0].error(409, None);
    }
    let (first, last) = (products[0], products[products.len() - 1]);
    let range = format!("BETWEEN {first} AND {last}");
    let oversold = s.query_i64(&format!(
        "SELECT count(*) FROM products WHERE id {range} AND current_stock <> 0"
    ));
    assert_eq!(oversold, 0, "every product must end with stock 0");
    let orders = s.query_i64(&format!(
        "SELECT count(*) FROM orders WHERE product_id {range}"
    ));
    assert_eq!(orders, LAST_UNIT_ROUNDS, "exactly one order per product");
}

#[test]
fn last_unit_race_has_exactly_one_winner() {
    let s = stack();
    last_unit_races(&s, &one_server(&s));
}

#[test]
fn two_servers_last_unit_race_has_exactly_one_winner() {
    let s = stack();
    last_unit_races(&s, &two_servers(&s));
}

// ---- (b) one key, many concurrent requests ---------------------------------------

fn same_key_bursts(s: &Stack, ports: &[u16]) {
    let product = s.create_product(PRICE, 1000);
    let mut conns = open_conns(ports, SAME_KEY_CLIENTS);
    for round in 0..SAME_KEY_ROUNDS {
        let key = new_uuid_v4();
        let requests = vec![order_request(product, &key, 2); SAME_KEY_CLIENTS];
        let responses = race(&mut conns, &requests);
        let created = with_status(&responses, 201);
        let replays = with_status(&responses, 200);
        assert!(
            created.len() == 1 && replays.len() == SAME_KEY_CLIENTS - 1,
            "round {round}: want one 201 and {} × 200, got {}",
            SAME_KEY_CLIENTS - 1,
            status_summary(&responses)
        );
        let original = created[0].json(201);
        for replay in replays {
            assert_eq!(replay.json(200), original, "round {round}: replay differs");
        }
        let rows = s.query_i64(&format!(
            "SELECT count(*) FROM orders WHERE idempotency_key = '{key}'"
        ));
        assert_eq!(rows, 1, "round {round}: one order row per key");
    }
    let sold = 2 * SAME_KEY_ROUNDS as i64;
    assert_eq!(
        s.stock(product),
        1000 - sold,
        "stock decremented once per key"
    );
}

#[test]
fn same_key_burst_creates_exactly_one_order() {
    let s = stack();
    same_key_bursts(&s, &one_server(&s));
}

#[test]
fn two_servers_same_key_burst_creates_exactly_one_order() {
    let s = stack();
    same_key_bursts(&s, &two_servers(&s));
}

// ---- (c) many concurrent cancels of one order ---------------------------------------

fn cancel_bursts(s: &Stack, ports: &[u16]) {
    let product = s.create_product(PRICE, 10);
    let mut conns = open_conns(ports, CANCEL_CLIENTS);
    for round in 0..CANCEL_ROUNDS {
        let body = order_body(product, &new_uuid_v4(), 3);
        let order = conns[0].post("/orders", &body).json(201);
        let order_id = order.get("order_id").as_str();
        assert_eq!(s.stock(product), 7, "round {round}");
        // Half with the product in the body, half without a body (compat.md).
        let requests: Vec<Vec<u8>> = (0..CANCEL_CLIENTS)
            .map(|i| cancel_request(order_id, (i % 2 == 0).then_some(product)))
            .collect();
        let responses = race(&mut conns, &requests);
        let cancelled = with_status(&responses, 200);
        let refused = with_status(&responses, 409);
        assert!(
            cancelled.len() == 1 && refused.len() == CANCEL_CLIENTS - 1,
            "round {round}: want one 200 and {} × 409, got {}",
            CANCEL_CLIENTS - 1,
            status_summary(&responses)
        );
        let body = cancelled[0].json(200);
        assert_eq!(body.get("order_id").as_str(), order_id);
        assert_eq!(body.get("status").as_str(), "CANCELLED");
        assert_eq!(body.get("restored_quantity").as_i64(), 3);
        for r in refused {
            r.error(409, None);
        }
        assert_eq!(s.stock(product), 10, "round {round}: restored exactly once");
    }
}

#[test]
fn concurrent_cancels_restore_stock_exactly_once() {
    let s = stack();
    cancel_bursts(&s, &one_server(&s));
}

#[test]
fn two_servers_concurrent_cancels_restore_stock_exactly_once() {
    let s = stack();
    cancel_bursts(&s, &two_servers(&s));
}

// ---- (d) a burst of orders on a scarce product ---------------------------------------

/// Polls `GET /products/{id}` until `stop`; returns every `current_stock`
/// seen, in order. Checks `stock == current_stock` on each answer.
fn poll_stock(port: u16, product_id: i64, start: &Barrier, stop: &AtomicBool) -> Vec<i64> {
    let mut conn = Conn::open(port);
    let path = format!("/products/{product_id}");
    let mut seen = Vec::new();
    start.wait();
    while !stop.load(Ordering::Acquire) {
        let view = conn.get(&path).json(200);
        let current = view.get("current_stock").as_i64();
        assert_eq!(view.get("stock").as_i64(), current, "{view}");
        seen.push(current);
    }
    seen
}

/// One client's requests: (quantity, response) in order.
type Outcomes = Vec<(i64, Response)>;

fn oversell_burst(s: &Stack, ports: &[u16]) {
    let product = s.create_product(PRICE, BURST_STOCK);
    let mut conns = open_conns(ports, BURST_CLIENTS);
    let start = Barrier::new(BURST_CLIENTS + 1);
    let stop = AtomicBool::new(false);
    let (outcomes, seen) = thread::scope(|scope| {
        let poller = scope.spawn(|| poll_stock(ports[0], product, &start, &stop));
        let workers: Vec<_> = conns
            .iter_mut()
            .enumerate()
            .map(|(client, conn)| {
                let start = &start;
                scope.spawn(move || {
                    start.wait();
                    (0..BURST_REQUESTS_PER_CLIENT)
                        .map(|i| {
                            // Quantities 1..=5 mixed; 100 of the 500 ask for
                            // one unit, so the last unit always finds a buyer.
                            let quantity =
                                ((client * BURST_REQUESTS_PER_CLIENT + i) % 5) as i64 + 1;
                            conn.send(&order_request(product, &new_uuid_v4(), quantity));
                            (quantity, conn.read_response())
                        })
                        .collect::<Outcomes>()
                })
            })
            .collect();
        let outcomes: Vec<Outcomes> = workers.into_iter().map(join).collect();
        stop.store(true, Ordering::Release);
        (outcomes, join(poller))
    });
    let outcomes: Vec<(i64, Response)> = outcomes.into_iter().flatten().collect();

    let mut sold = 0;
    let mut order_ids = HashSet::new();
    for (quantity, response) in &outcomes {
        match response.status {
            201 => {
                let order: Json = response.json(201);
                assert_eq!(order.get("quantity").as_i64(), *quantity);
                sold += quantity;
                let fresh = order_ids.insert(order.get("order_id").as_str().to_owned());
                assert!(fresh, "order id handed out twice: {order}");
            }
            409 => {
                response.error(409, None);
            }
            _ => panic!("burst: only 201 and 409 are acceptable, got:\n{response}"),
        }
    }
    assert_eq!(sold, BURST_STOCK, "units sold must be exactly the stock");

    assert!(!seen.is_empty(), "the poller saw no answer");
    for pair in seen.windows(2) {
        assert!(
            pair[1] <= pair[0],
            "stock went up without a cancel: {seen:?}"
        );
    }
    for &current in &seen {
        assert!(
            (0..=BURST_STOCK).contains(&current),
            "stock observed out of range: {seen:?}"
        );
    }

    let confirmed = s.query_i64(&format!(
        "SELECT coalesce(sum(quantity), 0) FROM orders \
         WHERE product_id = {product} AND status = 'CONFIRMED'"
    ));
    let rows = s.query_i64(&format!(
        "SELECT count(*) FROM orders WHERE product_id = {product}"
    ));
    assert_eq!(confirmed, BURST_STOCK);
    assert_eq!(rows as usize, order_ids.len(), "no phantom orders");
    let equation = s.query_i64(&format!(
        "SELECT count(*) FROM products WHERE id = {product} AND current_stock = initial_stock - \
         (SELECT coalesce(sum(quantity), 0) FROM orders \
          WHERE product_id = {product} AND status = 'CONFIRMED')"
    ));
    assert_eq!(equation, 1, "stock equation");
    assert_eq!(s.stock(product), 0);
}

#[test]
fn oversell_burst_sells_exactly_the_stock() {
    let s = stack();
    oversell_burst(&s, &one_server(&s));
}

#[test]
fn two_servers_oversell_burst_sells_exactly_the_stock() {
    let s = stack();
    oversell_burst(&s, &two_servers(&s));
}

// ---- orders and cancels interleaved ------------------------------------------------------

const MIXED_STOCK: i64 = 20;
const MIXED_CLIENTS: usize = 20;
const MIXED_STEPS: usize = 15;

/// What one client saw: units bought (201) and units restored (200 cancel).
#[derive(Default)]
struct Tally {
    bought: i64,
    restored: i64,
    cancels: i64,
}

fn mixed_client(conns: &mut [Conn; 2], product: i64, seed: u64, start: &Barrier) -> Tally {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut tally = Tally::default();
    start.wait();
    for _ in 0..MIXED_STEPS {
        let quantity = rng.i64(1..=3);
        let buyer = rng.usize(0..2);
        let conn = &mut conns[buyer];
        conn.send(&order_request(product, &new_uuid_v4(), quantity));
        let response = conn.read_response();
        match response.status {
            201 => tally.bought += quantity,
            409 => continue,
            _ => panic!("order: expected 201 or 409, got:\n{response}"),
        }
        if rng.bool() {
            let order = response.json(201);
            let order_id = order.get("order_id").as_str();
            let with_body = rng.bool().then_some(product);
            // Cancel through the other server.
            let conn = &mut conns[1 - buyer];
            conn.send(&cancel_request(order_id, with_body));
            let cancelled = conn.read_response().json(200);
            assert_eq!(cancelled.get("restored_quantity").as_i64(), quantity);
            tally.restored += quantity;
            tally.cancels += 1;
        }
    }
    tally
}

#[test]
fn two_servers_orders_and_cancels_keep_the_stock_equation() {
    let s = stack();
    let ports = two_servers(&s);
    let product = s.create_product(PRICE, MIXED_STOCK);
    let mut conns: Vec<[Conn; 2]> = (0..MIXED_CLIENTS)
        .map(|_| [Conn::open(ports[0]), Conn::open(ports[1])])
        .collect();
    let start = Barrier::new(MIXED_CLIENTS + 1);
    let stop = AtomicBool::new(false);
    let (tallies, seen) = thread::scope(|scope| {
        let poller = scope.spawn(|| poll_stock(ports[1], product, &start, &stop));
        let clients: Vec<_> = conns
            .iter_mut()
            .enumerate()
            .map(|(i, pair)| {
                let start = &start;
                scope.spawn(move || mixed_client(pair, product, i as u64, start))
            })
            .collect();
        let tallies: Vec<Tally> = clients.into_iter().map(join).collect();
        stop.store(true, Ordering::Release);
        (tallies, join(poller))
    });
    let bought: i64 = tallies.iter().map(|t| t.bought).sum();
    let restored: i64 = tallies.iter().map(|t| t.restored).sum();
    let cancels: i64 = tallies.iter().map(|t| t.cancels).sum();
    for &current in &seen {
        assert!(
            (0..=MIXED_STOCK).contains(&current),
            "stock observed out of range: {seen:?}"
        );
    }
    assert_eq!(
        s.stock(product),
        MIXED_STOCK - bought + restored,
        "stock must match what clients were told"
    );
    let confirmed = s.query_i64(&format!(
        "SELECT coalesce(sum(quantity), 0) FROM orders \
         WHERE product_id = {product} AND status = 'CONFIRMED'"
    ));
    assert_eq!(s.stock(product), MIXED_STOCK - confirmed, "stock equation");
    let cancelled_rows = s.query_i64(&format!(
        "SELECT count(*) FROM orders WHERE product_id = {product} AND status = 'CANCELLED'"
    ));
    assert_eq!(cancelled_rows, cancels);
}

/// Regression: `created_at` was the transaction's start (`now()`), so an
/// order whose transaction began before another's but inserted after it
/// (it waited) was listed first with an older timestamp. Here the early
/// transaction is a psql session that sleeps before placing its order.
#[test]
fn an_order_that_waited_is_not_listed_with_an_older_timestamp() {
    let s = stack();
    let product = s.create_product(100, 50);
    let late_key = new_uuid_v4();
    thread::scope(|scope| {
        let early = scope.spawn(|| {
            s.cluster.psql(&format!(
                "BEGIN; SELECT pg_sleep(0.5); \
                 SELECT outcome FROM place_order({product}, '{late_key}', 'began first', 1); COMMIT;"
            ))
        });
        thread::sleep(std::time::Duration::from_millis(150));
        let mut conn = s.conn();
        let response = conn.post("/orders", &order_body(product, &new_uuid_v4(), 1));
        assert_eq!(response.status, 201, "{response}");
        join(early);
    });
    let listing = s.conn().get(&format!("/orders?product_id={product}"));
    let orders = listing.json(200);
    let orders = orders.get("orders").as_array();
    assert_eq!(orders.len(), 2);
    let created: Vec<&str> = orders
        .iter()
        .map(|o| o.get("created_at").as_str())
        .collect();
    assert!(
        created[0] >= created[1],
        "most recent first by created_at too: {created:?}"
    );
    assert_eq!(
        orders[0].get("customer_id").as_str(),
        "began first",
        "inserted last, listed first"
    );
}
