//! The event log: every line on stderr is one JSON object with a timestamp
//! and an event name, the settings it starts with carry no password, and a
//! database outage shows as events (lost, failed attempts, connected again).

mod support;

use std::time::{Duration, Instant};

use support::cluster::{Auth, PgCluster};
use support::server::json::{parse, Json};
use support::server::{api_url, apply_schema, ServerProcess, API_PASSWORD};

fn events(stderr: &str) -> Vec<Json> {
    stderr
        .lines()
        .map(|line| {
            let event = parse(line.as_bytes())
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
            let ts = event.get("ts").as_str();
            assert!(ts.len() == 24 && ts.ends_with('Z'), "RFC 3339 UTC: {ts}");
            assert!(!event.get("event").as_str().is_empty());
            event
        })
        .collect()
}

fn named<'a>(events: &'a [Json], name: &str) -> Vec<&'a Json> {
    events
        .iter()
        .filter(|e| e.get("event").as_str() == name)
        .collect()
}

#[test]
fn every_line_is_a_json_event_and_none_carries_the_password() {
    let mut cluster = PgCluster::start(Auth::Scram);
    apply_schema(&cluster);
    let server = ServerProcess::start(&api_url(&cluster), &[]);
    let sessions_ready = |count: usize| {
        let deadline = Instant::now() + Duration::from_secs(15);
        while server.stderr().matches(r#""event":"db_connected""#).count() < count {
            assert!(Instant::now() < deadline, "{}", server.stderr());
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    sessions_ready(3);
    // A database outage, and the recovery.
    cluster.stop();
    let mut conn = server.conn();
    let deadline = Instant::now() + Duration::from_secs(10);
    while conn.get("/health").status != 503 {
        assert!(Instant::now() < deadline, "the outage was never noticed");
        std::thread::sleep(Duration::from_millis(50));
    }
    cluster.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    while conn.get("/health").status != 200 {
        assert!(Instant::now() < deadline, "never reconnected");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Every session back (the first one back makes /health answer 200).
    sessions_ready(6);
    let stderr = server.stderr();
    assert!(!stderr.contains(API_PASSWORD), "{stderr}");
    let events = events(&stderr);
    let start = named(&events, "start");
    assert_eq!(start.len(), 1, "{stderr}");
    let database = start[0].get("database").as_str();
    assert!(
        database.contains("***") && database.contains("flashsale_api"),
        "{database}"
    );
    assert_eq!(start[0].get("db_pool_size").as_i64(), 3);
    // Three sessions at start, three lost, three back.
    let connected = named(&events, "db_connected");
    assert_eq!(connected.len(), 6, "{stderr}");
    assert!(connected[..3]
        .iter()
        .all(|e| e.get("failed_attempts").as_i64() == 0));
    assert_eq!(named(&events, "db_connection_lost").len(), 3, "{stderr}");
    for lost in named(&events, "db_connection_lost") {
        assert!(lost.get("retry_ms").as_i64() > 0);
        assert!(!lost.get("reason").as_str().is_empty());
    }
}

#[test]
fn a_bad_setting_is_an_event_too() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_flashsale"))
        .env("PORT", "not a port")
        .env("DATABASE_URL", "postgres://u:hunter2@db/x")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!stderr.contains("hunter2"), "{stderr}");
    let events = events(&stderr);
    assert_eq!(named(&events, "config_error").len(), 1, "{stderr}");
}
