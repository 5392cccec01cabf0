//! `GET /metrics` after a known sequence of requests: the exact counts by
//! route and status, orders by outcome, batch sizes, the pool's figures;
//! and `promtool check metrics` accepts the text.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use support::cluster::{Auth, PgCluster};
use support::server::http::Conn;
use support::server::{api_url, apply_schema, new_uuid_v4, ServerProcess};

fn order(product: i64, key: &str) -> String {
    format!(
        r#"{{"product_id":{product},"idempotency_key":"{key}","customer_id":"c","quantity":1}}"#
    )
}

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
        .parse()
        .unwrap()
}

fn scrape(conn: &mut Conn) -> String {
    let response = conn.get("/metrics");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    response.body_text()
}

#[test]
fn metrics_count_exactly_what_was_answered() {
    let cluster = PgCluster::start(Auth::Scram);
    apply_schema(&cluster);
    cluster.psql("INSERT INTO products VALUES (500, 'one left', 100, 1, 1)");
    let server = ServerProcess::start(&api_url(&cluster), &[]);
    let mut conn = server.conn();
    for _ in 0..3 {
        assert_eq!(conn.get("/products/1").status, 200);
    }
    assert_eq!(conn.get("/products/999").status, 404);
    let key = new_uuid_v4();
    assert_eq!(conn.post("/orders", &order(500, &key)).status, 201);
    assert_eq!(conn.post("/orders", &order(500, &key)).status, 200);
    assert_eq!(
        conn.post("/orders", &order(500, &new_uuid_v4())).status,
        409
    );
    assert_eq!(conn.post("/orders", "{}").status, 422);
    assert_eq!(conn.get("/nope").status, 404);
    assert_eq!(conn.request("DELETE", "/health", None).status, 405);

    let text = scrape(&mut conn);
    let requests = |route: &str, status: &str| {
        value(
            &text,
            &format!(r#"flashsale_http_requests_total{{route="{route}",status="{status}"}}"#),
        )
    };
    assert_eq!(requests("get_product", "200"), 3.0);
    assert_eq!(requests("get_product", "404"), 1.0);
    assert_eq!(requests("place_order", "201"), 1.0);
    assert_eq!(requests("place_order", "200"), 1.0);
    assert_eq!(requests("place_order", "409"), 1.0);
    assert_eq!(requests("place_order", "422"), 1.0);
    assert_eq!(requests("other", "404"), 1.0);
    assert_eq!(requests("health", "405"), 1.0);
    // The scrape counts itself once answered, not before.
    assert!(
        !text.contains(r#"flashsale_http_requests_total{route="metrics""#),
        "{text}"
    );
    let orders = |outcome: &str| {
        value(
            &text,
            &format!(r#"flashsale_orders_total{{outcome="{outcome}"}}"#),
        )
    };
    assert_eq!(orders("created"), 1.0);
    assert_eq!(orders("replayed"), 1.0);
    assert_eq!(orders("insufficient_stock"), 1.0);
    assert_eq!(orders("invalid"), 1.0);
    assert_eq!(
        value(
            &text,
            r#"flashsale_http_request_duration_seconds_count{route="get_product"}"#
        ),
        4.0
    );
    // Three orders reached the database, each in a batch of its own.
    assert_eq!(value(&text, "flashsale_order_batch_size_count"), 3.0);
    assert_eq!(
        value(&text, r#"flashsale_order_batch_size_bucket{le="1"}"#),
        3.0
    );
    assert_eq!(
        value(&text, r#"flashsale_db_connections{state="configured"}"#),
        3.0
    );
    assert_eq!(
        value(&text, r#"flashsale_db_connections{state="ready"}"#),
        3.0
    );
    assert_eq!(value(&text, "flashsale_db_requests_in_flight"), 0.0);
    assert_eq!(value(&text, "flashsale_db_reconnects_total"), 0.0);
    assert_eq!(value(&text, "flashsale_client_connections"), 1.0);
    assert!(value(&text, "process_resident_memory_bytes") > 1e6);
    assert!(value(&text, "process_cpu_seconds_total") > 0.0);

    let again = scrape(&mut conn);
    assert_eq!(
        value(
            &again,
            r#"flashsale_http_requests_total{route="metrics",status="200"}"#
        ),
        1.0
    );
    check_with_promtool(&again);
}

/// `promtool check metrics` (Prometheus' own linter), when it is installed
/// (tests/run installs it).
fn check_with_promtool(text: &str) {
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("promtool not installed: the exposition format is not linted");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics:\n{}{}\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
