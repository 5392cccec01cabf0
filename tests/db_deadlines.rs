//! A row lock held far longer than the API ever holds one (an operator's
//! transaction left open, a stuck job): the two server processes keep
//! answering reads of other products at once, answer orders for the locked
//! product with a clear 503 once the database's deadline stops them, and
//! none of those orders is committed afterwards.

mod support;

use std::time::{Duration, Instant};

use flashsale::config::PG_LOCK_TIMEOUT;
use support::cluster::{Auth, PgCluster};
use support::server::http::{request_bytes, Conn};
use support::server::{api_url, apply_schema, new_uuid_v4, ServerProcess};

const LOCKED: i64 = 400;
const OTHERS: [i64; 2] = [401, 402];
const STOCK: i64 = 100;
/// How long the test's own transaction holds the row.
const HOLD: Duration = Duration::from_secs(8);
const ORDERS_PER_SERVER: usize = 6;
const READS_PER_BURST: usize = 12;

fn order_body(key: &str) -> String {
    format!(r#"{{"product_id":{LOCKED},"idempotency_key":"{key}","customer_id":"c","quantity":1}}"#)
}

/// Waits until the holder's session has the row and sleeps on it.
fn wait_for_holder(cluster: &PgCluster) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let holding = cluster.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' \
             AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()",
        );
        if holding == "1" {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the lock holder never started");
}

/// Sends one request on each connection, then reads every answer: the
/// requests are at the server together. Returns each status with the time
/// from sending to its answer.
fn burst(conns: &mut [Conn], request: &[u8]) -> Vec<(u16, String, Duration)> {
    let sent = Instant::now();
    for conn in conns.iter_mut() {
        conn.send(request);
    }
    conns
        .iter_mut()
        .map(|conn| {
            let response = conn.read_response();
            (response.status, response.body_text(), sent.elapsed())
        })
        .collect()
}

#[test]
fn a_held_row_lock_delays_no_read_and_hides_no_commit() {
    let cluster = PgCluster::start(Auth::Trust);
    apply_schema(&cluster);
    cluster.psql(&format!(
        "INSERT INTO products VALUES ({LOCKED}, 'locked', 100, {STOCK}, {STOCK}), \
         ({}, 'free', 100, {STOCK}, {STOCK}), ({}, 'free too', 100, {STOCK}, {STOCK})",
        OTHERS[0], OTHERS[1]
    ));
    let servers = [
        ServerProcess::start(&api_url(&cluster), &[]),
        ServerProcess::start(&api_url(&cluster), &[]),
    ];
    let (mut refused, mut placed) = (Vec::new(), Vec::new());
    std::thread::scope(|scope| {
        let holder = scope.spawn(|| {
            cluster.psql(&format!(
                "BEGIN; SELECT 1 FROM products WHERE id = {LOCKED} FOR UPDATE; \
                 SELECT pg_sleep({}); COMMIT;",
                HOLD.as_secs()
            ));
            Instant::now()
        });
        wait_for_holder(&cluster);
        let lock_taken = Instant::now();

        // Orders for the locked product on both servers, all at once.
        let orders: Vec<_> = servers
            .iter()
            .map(|server| {
                let port = server.port();
                scope.spawn(move || {
                    let keys: Vec<String> = (0..ORDERS_PER_SERVER).map(|_| new_uuid_v4()).collect();
                    let sent = Instant::now();
                    let mut conns: Vec<Conn> = keys.iter().map(|_| Conn::open(port)).collect();
                    for (conn, key) in conns.iter_mut().zip(&keys) {
                        conn.send(&request_bytes(
                            "POST",
                            "/orders",
                            Some(order_body(key).as_bytes()),
                        ));
                    }
                    conns
                        .iter_mut()
                        .zip(keys)
                        .map(|(conn, key)| {
                            let response = conn.read_response();
                            let answer = (response.status, response.body_text(), sent.elapsed());
                            (key, answer)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();

        // Meanwhile, bursts of concurrent reads of the other products on
        // both servers, for longer than the lock timeout.
        let mut read_conns: Vec<Vec<Conn>> = servers
            .iter()
            .map(|server| (0..READS_PER_BURST).map(|_| server.conn()).collect())
            .collect();
        let mut reads = 0;
        while lock_taken.elapsed() < PG_LOCK_TIMEOUT * 2 {
            for (conns, product) in read_conns.iter_mut().zip(OTHERS) {
                let request = request_bytes("GET", &format!("/products/{product}"), None);
                for (status, body, took) in burst(conns, &request) {
                    assert_eq!(status, 200, "{body}");
                    assert!(
                        took < Duration::from_secs(1),
                        "a read of product {product} waited {took:?} behind the held lock"
                    );
                    reads += 1;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(reads >= 4 * READS_PER_BURST, "only {reads} reads ran");

        // Each order waits for the row at most `lock_timeout` per lock it
        // queues for and `statement_timeout` in all, then is refused and
        // rolled back; orders that reach the database later may find the
        // row free and be placed. Either way the answer is the truth.
        for (key, (status, body, took)) in orders.into_iter().flat_map(|o| o.join().unwrap()) {
            let logs = || format!("{}\n{}", servers[0].stderr(), servers[1].stderr());
            match status {
                503 => {
                    assert!(
                        body.contains("timed out and was not placed"),
                        "{body}\n{}",
                        logs()
                    );
                    assert!(
                        took < HOLD,
                        "refused after {took:?}, once the lock was gone"
                    );
                    refused.push(key);
                }
                201 => placed.push(key),
                _ => panic!("{status} after {took:?}: {body}\n{}", logs()),
            }
        }
        holder.join().unwrap();
    });

    assert!(
        !refused.is_empty(),
        "no order was refused while the lock was held"
    );
    // Nothing refused was committed behind the client's back; everything
    // placed was, once.
    let count_of = |keys: &[String]| {
        let quoted: Vec<String> = keys.iter().map(|k| format!("'{k}'")).collect();
        cluster.psql(&format!(
            "SELECT count(*) FROM orders WHERE idempotency_key IN ({})",
            quoted.join(", ")
        ))
    };
    assert_eq!(count_of(&refused), "0");
    if !placed.is_empty() {
        assert_eq!(count_of(&placed), placed.len().to_string());
    }
    assert_eq!(
        cluster.psql(&format!(
            "SELECT current_stock FROM products WHERE id = {LOCKED}"
        )),
        (STOCK - placed.len() as i64).to_string()
    );
    // The lock gone, the same sessions take orders again; a retried key
    // is a fresh order, placed once.
    for server in &servers {
        let response = server.conn().post(
            "/orders",
            &order_body(&refused.pop().unwrap_or_else(new_uuid_v4)),
        );
        assert_eq!(response.status, 201, "{}", response.body_text());
        assert!(
            !server.stderr().contains("retrying its orders one by one"),
            "a timed-out batch is refused, not retried order by order"
        );
    }
}
