//! Graceful shutdown of the real binary: SIGTERM / SIGINT stop accepting,
//! close idle connections, answer requests still waiting at the database
//! (with `Connection: close`), and exit 0 within a few seconds.

mod support;

use std::time::{Duration, Instant};

use support::cluster::{Auth, PgCluster};
use support::server::http::{request_bytes, Conn};
use support::server::{api_url, apply_schema, new_uuid_v4, ServerProcess};

#[test]
fn sigterm_answers_a_request_waiting_at_the_database_then_exits_zero() {
    let cluster = PgCluster::start(Auth::Scram);
    apply_schema(&cluster);
    let mut server = ServerProcess::start(&api_url(&cluster), &[]);
    let mut idle = server.conn();
    assert_eq!(idle.get("/health").status, 200);

    std::thread::scope(|scope| {
        // Another session holds product 3's row lock for a while, so the
        // order below waits inside Postgres when the signal arrives.
        let locker = scope.spawn(|| {
            cluster.psql("BEGIN; SELECT id FROM products WHERE id = 3 FOR UPDATE; SELECT pg_sleep(1.5); COMMIT;")
        });
        std::thread::sleep(Duration::from_millis(400));
        let key = new_uuid_v4();
        let body = format!(
            r#"{{"product_id":3,"idempotency_key":"{key}","customer_id":"late","quantity":1}}"#
        );
        let mut waiting = server.conn();
        waiting.send(&request_bytes("POST", "/orders", Some(body.as_bytes())));
        std::thread::sleep(Duration::from_millis(300));

        let signalled_at = Instant::now();
        server.send_signal(libc::SIGTERM);
        assert_eq!(
            idle.closes_within(Duration::from_secs(1)),
            Ok(true),
            "idle connection closed at once"
        );
        let refused = (0..50).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            Conn::try_open(server.port(), Duration::from_millis(200)).is_err()
        });
        assert!(refused, "new connections are refused once shutdown began");

        waiting.set_read_timeout(Duration::from_secs(10));
        let response = waiting.read_response();
        assert_eq!(response.status, 201, "{response}");
        assert_eq!(response.header("connection"), Some("close"));
        locker.join().unwrap();
        let status = server
            .wait_exit(Duration::from_secs(5))
            .expect("exits after draining");
        assert!(status.success(), "exit status {status}");
        assert!(signalled_at.elapsed() < Duration::from_secs(5));
        let stored = cluster.psql(&format!(
            "SELECT count(*) FROM orders WHERE idempotency_key = '{key}'"
        ));
        assert_eq!(stored, "1", "the answered order is committed");
    });
    assert!(
        server.stderr().contains(r#""event":"stopped""#),
        "{}",
        server.stderr()
    );
}

#[test]
fn sigint_on_an_idle_server_exits_zero_at_once() {
    let cluster = PgCluster::start(Auth::Trust);
    apply_schema(&cluster);
    let mut server = ServerProcess::start(&api_url(&cluster), &[]);
    let mut conn = server.conn();
    assert_eq!(conn.get("/products/1").status, 200);
    let signalled_at = Instant::now();
    server.send_signal(libc::SIGINT);
    let status = server.wait_exit(Duration::from_secs(2)).expect("exits");
    assert!(status.success(), "exit status {status}");
    assert!(
        signalled_at.elapsed() < Duration::from_millis(1500),
        "{:?}",
        signalled_at.elapsed()
    );
}
