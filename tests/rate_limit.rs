//! The per-customer order rate limit with the real binary: a customer past
//! its burst gets 429 with `Retry-After` and takes no stock, others pass,
//! and it passes again after the wait; a flood of new customers keeps the
//! table and the process's memory bounded; bad settings stop the process;
//! without the settings nothing is ever limited.

mod support;

use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::cluster::{Auth, PgCluster};
use support::server::http::{request_bytes, Conn};
use support::server::json::{parse, Json};
use support::server::{api_url, apply_schema, new_uuid_v4, ServerProcess};

/// The limit under test: three orders at once, then one a second.
const LIMITED: [(&str, &str); 2] = [("ORDER_RATE_PER_CUSTOMER", "1"), ("ORDER_BURST", "3")];
/// `config::RATE_LIMIT_CUSTOMERS_MAX`.
const TABLE_SLOTS: f64 = 16384.0;
/// The summary event's interval (`config::LOAD_SHED_LOG_INTERVAL`), and slack.
const SUMMARY_WAIT: Duration = Duration::from_secs(15);

fn order(product: i64, customer: &str, key: &str) -> String {
    format!(
        r#"{{"product_id":{product},"idempotency_key":"{key}","customer_id":"{customer}","quantity":1}}"#
    )
}

fn database_with_product(id: i64, stock: i64) -> PgCluster {
    let cluster = PgCluster::start(Auth::Scram);
    apply_schema(&cluster);
    cluster.psql(&format!(
        "INSERT INTO products (id, name, price, initial_stock, current_stock) \
         VALUES ({id}, 'Test product {id}', 100, {stock}, {stock})"
    ));
    cluster
}

fn stock(cluster: &PgCluster, product: i64) -> i64 {
    let sql = format!("SELECT current_stock FROM products WHERE id = {product}");
    cluster.psql(&sql).parse().unwrap()
}

fn scrape(server: &ServerProcess) -> String {
    let response = server.conn().get("/metrics");
    assert_eq!(response.status, 200);
    response.body_text()
}

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
        .parse()
        .unwrap()
}

fn events(server: &ServerProcess, name: &str) -> Vec<Json> {
    server
        .stderr()
        .lines()
        .map(|line| parse(line.as_bytes()).unwrap())
        .filter(|event| event.get("event").as_str() == name)
        .collect()
}

#[test]
fn a_customer_past_its_burst_gets_429_until_retry_after() {
    const PRODUCT: i64 = 600;
    let cluster = database_with_product(PRODUCT, 10);
    let server = ServerProcess::start(&api_url(&cluster), &LIMITED);
    let mut conn = server.conn();
    let first_key = new_uuid_v4();
    assert_eq!(
        conn.post("/orders", &order(PRODUCT, "alice", &first_key))
            .status,
        201
    );
    for _ in 0..2 {
        let placed = conn.post("/orders", &order(PRODUCT, "alice", &new_uuid_v4()));
        assert_eq!(placed.status, 201, "{placed}");
    }
    let refused = conn.post("/orders", &order(PRODUCT, "alice", &new_uuid_v4()));
    let message = refused.error_reason(429, "rate_limited");
    assert!(message.contains("too many orders"), "{message}");
    let retry_after: u64 = refused.header("Retry-After").unwrap().parse().unwrap();
    assert_eq!(retry_after, 1, "{refused}");
    // A replay is a request like any other: it counts, and is refused too.
    let replay = conn.post("/orders", &order(PRODUCT, "alice", &first_key));
    replay.error_reason(429, "rate_limited");
    assert_eq!(
        stock(&cluster, PRODUCT),
        7,
        "a refused order takes no stock"
    );
    let alices_orders = cluster.psql("SELECT count(*) FROM orders WHERE customer_id = 'alice'");
    assert_eq!(alices_orders, "3");

    // Someone else is not affected.
    let other = conn.post("/orders", &order(PRODUCT, "bob", &new_uuid_v4()));
    assert_eq!(other.status, 201, "{other}");

    thread::sleep(Duration::from_secs(retry_after));
    let again = conn.post("/orders", &order(PRODUCT, "alice", &new_uuid_v4()));
    assert_eq!(again.status, 201, "{again}");
    assert_eq!(stock(&cluster, PRODUCT), 5);

    let text = scrape(&server);
    assert_eq!(
        value(&text, r#"flashsale_orders_total{outcome="rate_limited"}"#),
        2.0
    );
    assert_eq!(
        value(
            &text,
            r#"flashsale_http_requests_total{route="place_order",status="429"}"#
        ),
        2.0
    );
    assert_eq!(value(&text, "flashsale_rate_limit_customers"), 2.0);
    assert_eq!(value(&text, "flashsale_rate_limit_evictions_total"), 0.0);

    let start = events(&server, "start");
    assert_eq!(start[0].get("order_rate_per_customer").as_i64(), 1);
    assert_eq!(start[0].get("order_burst").as_i64(), 3);
    // The refusals are summarised in one event, not a line each.
    let deadline = Instant::now() + SUMMARY_WAIT;
    while events(&server, "rate_limited").is_empty() {
        assert!(Instant::now() < deadline, "{}", server.stderr());
        thread::sleep(Duration::from_millis(200));
    }
    let summaries = events(&server, "rate_limited");
    assert_eq!(summaries.len(), 1, "{}", server.stderr());
    assert_eq!(summaries[0].get("refused").as_i64(), 2);
    assert_eq!(summaries[0].get("evictions").as_i64(), 0);
    assert_eq!(summaries[0].get("customers").as_i64(), 2);
}

/// Sends `orders` (request bytes) on `conn` `depth` at a time and returns
/// their statuses in order.
fn pipelined(conn: &mut Conn, orders: &[Vec<u8>], depth: usize) -> Vec<u16> {
    let mut statuses = Vec::with_capacity(orders.len());
    for chunk in orders.chunks(depth) {
        conn.send(&chunk.concat());
        for _ in chunk {
            statuses.push(conn.read_response().status);
        }
    }
    statuses
}

/// `customers` orders for a sold-out product (cheap 409s), each from a
/// customer never seen before, over `connections` pipelined connections.
fn flood(server: &ServerProcess, product: i64, first: usize, customers: usize, connections: usize) {
    const DEPTH: usize = 100;
    let per_connection = customers / connections;
    thread::scope(|scope| {
        for c in 0..connections {
            scope.spawn(move || {
                let from = first + c * per_connection;
                let orders: Vec<Vec<u8>> = (from..from + per_connection)
                    .map(|n| {
                        let body = order(product, &format!("flood-{n}"), &new_uuid_v4());
                        request_bytes("POST", "/orders", Some(body.as_bytes()))
                    })
                    .collect();
                let statuses = pipelined(&mut server.conn(), &orders, DEPTH);
                // A new customer always has tokens.
                assert!(statuses.iter().all(|&s| s == 409), "{statuses:?}");
            });
        }
    });
}

#[test]
fn a_flood_of_new_customers_stays_within_the_table_and_its_memory() {
    const PRODUCT: i64 = 601;
    const CONNECTIONS: usize = 16;
    /// Resident memory the flood may add once the server is warm: the
    /// table is allocated at start, so this is allocator noise.
    const RSS_GROWTH_BYTES_MAX: f64 = 1024.0 * 1024.0;
    let cluster = database_with_product(PRODUCT, 0);
    let server = ServerProcess::start(&api_url(&cluster), &LIMITED);
    // Warm up the same way the flood comes: the buffers of as many
    // connections as deep, and the order batches, reach their size.
    flood(&server, PRODUCT, 0, 2_000, CONNECTIONS);
    let before = scrape(&server);
    let rss_before = value(&before, "process_resident_memory_bytes");
    assert_eq!(value(&before, "flashsale_rate_limit_customers"), 2_000.0);

    let started = Instant::now();
    flood(&server, PRODUCT, 2_000, 50_000, CONNECTIONS);
    eprintln!("50,000 new customers in {:?}", started.elapsed());

    let after = scrape(&server);
    let customers = value(&after, "flashsale_rate_limit_customers");
    assert!(customers <= TABLE_SLOTS, "{customers}");
    assert!(
        value(&after, "flashsale_rate_limit_evictions_total") > 0.0,
        "a full table evicts"
    );
    assert_eq!(
        value(&after, r#"flashsale_orders_total{outcome="rate_limited"}"#),
        0.0
    );
    assert_eq!(
        value(
            &after,
            r#"flashsale_orders_total{outcome="insufficient_stock"}"#
        ),
        52_000.0
    );
    let rss_after = value(&after, "process_resident_memory_bytes");
    eprintln!("resident memory {rss_before} -> {rss_after} bytes");
    assert!(
        rss_after - rss_before <= RSS_GROWTH_BYTES_MAX,
        "resident memory grew from {rss_before} to {rss_after} bytes"
    );
}

#[test]
fn without_the_settings_nothing_is_rate_limited() {
    const PRODUCT: i64 = 602;
    let cluster = database_with_product(PRODUCT, 0);
    let server = ServerProcess::start(&api_url(&cluster), &[]);
    let orders: Vec<Vec<u8>> = (0..200)
        .map(|_| {
            let body = order(PRODUCT, "same-customer", &new_uuid_v4());
            request_bytes("POST", "/orders", Some(body.as_bytes()))
        })
        .collect();
    let statuses = pipelined(&mut server.conn(), &orders, 50);
    assert!(statuses.iter().all(|&s| s == 409), "{statuses:?}");
    let text = scrape(&server);
    assert_eq!(
        value(&text, r#"flashsale_orders_total{outcome="rate_limited"}"#),
        0.0
    );
    assert_eq!(value(&text, "flashsale_rate_limit_customers"), 0.0);
    let start = events(&server, "start");
    assert_eq!(start[0].get("order_rate_per_customer"), &Json::Null);
    assert_eq!(start[0].get("order_burst"), &Json::Null);
}

#[test]
fn a_bad_rate_limit_setting_stops_the_process_naming_it() {
    const RATE: &str = "ORDER_RATE_PER_CUSTOMER";
    const BURST: &str = "ORDER_BURST";
    let cases: [(&[(&str, &str)], &str); 12] = [
        (&[(RATE, "0"), (BURST, "3")], RATE),
        (&[(RATE, "-1"), (BURST, "3")], RATE),
        (&[(RATE, "fast"), (BURST, "3")], RATE),
        (&[(RATE, "1e9"), (BURST, "3")], RATE),
        (&[(RATE, "1000000"), (BURST, "3")], RATE),
        (&[(RATE, "0.0000001"), (BURST, "3")], RATE),
        (&[(RATE, "1"), (BURST, "0")], BURST),
        (&[(RATE, "1"), (BURST, "-2")], BURST),
        (&[(RATE, "1"), (BURST, "2.5")], BURST),
        (&[(RATE, "1"), (BURST, "100000000")], BURST),
        (&[(RATE, "1")], BURST),
        (&[(BURST, "3")], RATE),
    ];
    for (vars, named) in cases {
        let mut command = Command::new(env!("CARGO_BIN_EXE_flashsale"));
        command
            .env_remove(RATE)
            .env_remove(BURST)
            .env("DATABASE_URL", "postgres://u:p@127.0.0.1:1/x")
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        // A setting taken by mistake would leave the server running.
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() >= deadline {
                child.kill().unwrap();
                panic!("{vars:?} was accepted: the server started");
            }
            thread::sleep(Duration::from_millis(20));
        }
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(2), "{vars:?}: {stderr}");
        let event = parse(stderr.trim_end().as_bytes()).unwrap();
        assert_eq!(event.get("event").as_str(), "config_error", "{stderr}");
        assert!(
            event.get("error").as_str().contains(named),
            "{vars:?} should name {named}: {stderr}"
        );
    }
}
