//! The client follows the primary: a `DATABASE_URL` listing several hosts
//! with `target_session_attrs=read-write` connects only to the writable
//! server, leaves a server that stops being writable, and after a failover
//! (the primary killed, its synchronous standby promoted by the test) finds
//! the new primary by itself with every acknowledged write on it. Two
//! throw-away clusters, a primary and its streaming standby; no failover
//! manager.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use flashsale::pg::Param;
use support::cluster::{Auth, PgCluster};
use support::pool_driver::*;

/// A primary whose commits wait for its standby, and that standby.
fn primary_and_standby() -> (PgCluster, PgCluster) {
    let primary = PgCluster::start(Auth::Scram);
    prepare_schema(&primary);
    let standby = primary.start_standby();
    assert!(standby.is_in_recovery());
    // Only now: with no standby, every commit (the harness's own) would wait.
    primary.psql("ALTER SYSTEM SET synchronous_standby_names = '*'; SELECT pg_reload_conf();");
    wait_for_sync_standby(&primary);
    (primary, standby)
}

fn wait_for_sync_standby(primary: &PgCluster) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while primary.psql("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'") != "1"
    {
        assert!(
            Instant::now() < deadline,
            "the standby never became synchronous"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// `postgres://…@127.0.0.1:P1,127.0.0.1:P2/flashsale?…`
fn url(hosts: &[&PgCluster], attrs: &str) -> String {
    let hosts: Vec<String> = hosts
        .iter()
        .map(|c| format!("127.0.0.1:{}", c.port()))
        .collect();
    format!(
        "postgres://flashsale:secret@{}/flashsale?target_session_attrs={attrs}",
        hosts.join(",")
    )
}

/// (is a standby, TCP port) of the server that answered.
fn where_am_i(driver: &mut Driver) -> (bool, u16) {
    driver.submit(u64::MAX, WHERE_AM_I, &[]).unwrap();
    match driver.collect(1, Duration::from_secs(10)).remove(0).1 {
        Outcome::Rows(rows) => {
            let standby = rows[0][0].as_deref() == Some(&[1][..]);
            let port = i32::from_be_bytes(rows[0][1].as_deref().unwrap().try_into().unwrap());
            (standby, port as u16)
        }
        other => panic!("where_am_i: {other:?}"),
    }
}

/// Asks every connection of the pool where it is (reads spread over the
/// least loaded connections, so `size` requests at once reach each one).
fn every_connection_is_on(driver: &mut Driver, port: u16) {
    let size = driver.size;
    for tag in 0..size as u64 {
        driver.submit(tag, WHERE_AM_I, &[]).unwrap();
    }
    for (_, outcome, _) in driver.collect(size, Duration::from_secs(10)) {
        let Outcome::Rows(rows) = outcome else {
            panic!("{outcome:?}")
        };
        let answered = i32::from_be_bytes(rows[0][1].as_deref().unwrap().try_into().unwrap());
        assert_eq!(answered as u16, port);
        assert_eq!(rows[0][0].as_deref(), Some(&[0][..]), "not a standby");
    }
}

#[test]
fn read_write_skips_a_standby_listed_first_and_any_takes_it() {
    let (primary, standby) = primary_and_standby();

    let mut driver = Driver::new(&url(&[&standby, &primary], "read-write"), config(3));
    driver.wait_ready(Duration::from_secs(10));
    every_connection_is_on(&mut driver, primary.port());

    let mut driver = Driver::new(&url(&[&standby, &primary], "primary"), config(2));
    driver.wait_ready(Duration::from_secs(10));
    every_connection_is_on(&mut driver, primary.port());

    // libpq's default: the first server that accepts the session.
    let mut driver = Driver::new(&url(&[&standby, &primary], "any"), config(1));
    driver.wait_ready(Duration::from_secs(10));
    assert_eq!(where_am_i(&mut driver), (true, standby.port()));
}

#[test]
fn a_standby_alone_is_refused_with_a_clear_reason() {
    let (_primary, standby) = primary_and_standby();
    let mut driver = Driver::new(&url(&[&standby], "read-write"), config(2));
    driver.run_until(Duration::from_millis(800), |_| false);
    assert!(!driver.pool.is_healthy());
    let error = driver.pool.last_error().unwrap_or_default().to_string();
    assert!(
        error.contains("not a writable server") && error.contains("hot standby"),
        "{error}"
    );
    assert!(driver.pool.stats().reconnects >= 2, "it keeps trying");
}

#[test]
fn after_a_failover_the_same_pool_writes_to_the_promoted_standby_and_loses_nothing() {
    let (mut primary, standby) = primary_and_standby();
    let mut driver = Driver::new(&url(&[&primary, &standby], "read-write"), config(3));
    driver.wait_ready(Duration::from_secs(10));
    every_connection_is_on(&mut driver, primary.port());

    // A stream of writes; every one answered without an error is committed
    // on the primary and, synchronously, on the standby.
    let mut acknowledged = Vec::new();
    let mut next_key = 0;
    let mut write_batch = |driver: &mut Driver, acknowledged: &mut Vec<i32>, count: i32| {
        let first = next_key;
        for k in first..first + count {
            match driver.submit(k as u64, INSERT_UNIQUE, &[Param::Int4(k)]) {
                Ok(()) => {}
                Err(_) => driver
                    .replies
                    .push((k as u64, Outcome::Unavailable, Instant::now())),
            }
        }
        next_key += count;
        let replies = driver.collect(count as usize, Duration::from_secs(20));
        let mut failed = 0;
        for (tag, outcome, _) in replies {
            match outcome {
                Outcome::Rows(_) => acknowledged.push(tag as i32),
                Outcome::Unavailable => failed += 1,
                Outcome::Failed { code, message } => {
                    panic!("write {tag} failed with {code}: {message}")
                }
            }
        }
        failed
    };
    for _ in 0..5 {
        assert_eq!(write_batch(&mut driver, &mut acknowledged, 50), 0);
    }
    // Requests in flight when the primary dies.
    for k in 10_000..10_020 {
        driver
            .submit(k, INSERT_UNIQUE, &[Param::Int4(k as i32)])
            .unwrap();
    }
    driver.turn(Duration::from_millis(1));
    primary.kill9();
    let killed_at = Instant::now();
    // The server closed every session (sync-rep waiters die silently):
    // each in-flight request hears of it at once, none waits for a timeout.
    let in_flight = driver.collect(20, Duration::from_secs(2));
    for (tag, outcome, _) in &in_flight {
        match outcome {
            Outcome::Rows(_) => acknowledged.push(*tag as i32),
            Outcome::Unavailable => {}
            other => panic!("in-flight write {tag}: {other:?}"),
        }
    }
    // No primary: writes are refused at once, never left hanging.
    driver.run_until(Duration::from_millis(300), |_| false);
    for _ in 0..3 {
        assert!(write_batch(&mut driver, &mut acknowledged, 5) == 5);
        assert!(!driver.pool.is_healthy());
    }
    standby.promote();
    let promoted_at = Instant::now();
    let ok = driver.run_until(Duration::from_secs(10), |d| {
        d.pool.stats().ready_connections == d.size
    });
    assert!(
        ok,
        "the pool did not follow: {:?}",
        driver.pool.last_error()
    );
    let followed_in = promoted_at.elapsed();
    every_connection_is_on(&mut driver, standby.port());
    assert_eq!(write_batch(&mut driver, &mut acknowledged, 50), 0);
    eprintln!(
        "killed → promoted {:?}, promoted → every connection on the new primary {followed_in:?}",
        promoted_at - killed_at
    );
    assert!(
        followed_in < Duration::from_secs(3),
        "slots waiting out a backoff try the new primary at once: {followed_in:?}"
    );

    let present: Vec<i32> = standby
        .psql("SELECT k FROM t_unique ORDER BY k")
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    let missing: Vec<_> = acknowledged
        .iter()
        .filter(|k| present.binary_search(k).is_err())
        .collect();
    assert!(missing.is_empty(), "acknowledged writes lost: {missing:?}");
    assert!(acknowledged.len() >= 300);
}

#[test]
fn a_server_that_turns_read_only_is_left_for_the_next_host() {
    // Two independent primaries: the first is fenced (read-only by
    // default, as an operator or a failover manager does before demoting
    // it), the second takes over.
    let first = PgCluster::start(Auth::Scram);
    let second = PgCluster::start(Auth::Scram);
    prepare_schema(&first);
    prepare_schema(&second);
    let mut driver = Driver::new(&url(&[&first, &second], "read-write"), config(2));
    driver.wait_ready(Duration::from_secs(10));
    every_connection_is_on(&mut driver, first.port());

    first.psql("ALTER SYSTEM SET default_transaction_read_only = on; SELECT pg_reload_conf();");
    thread::sleep(Duration::from_millis(300));
    // A write on the fenced server is refused by it (nothing done): the
    // caller hears "unavailable", and the connection goes.
    driver.submit(1, INSERT_UNIQUE, &[Param::Int4(1)]).unwrap();
    driver.submit(2, INSERT_UNIQUE, &[Param::Int4(2)]).unwrap();
    for (tag, outcome, _) in driver.collect(2, Duration::from_secs(10)) {
        assert!(
            matches!(outcome, Outcome::Unavailable | Outcome::Rows(_)),
            "write {tag}: {outcome:?}"
        );
    }
    assert_eq!(first.psql("SELECT count(*) FROM t_unique"), "0");
    // A connection that only read since learns it with its next answer
    // (the server reports the change then): the answer is delivered, then
    // the connection goes.
    for tag in 0..2 {
        driver.submit(tag, WHERE_AM_I, &[]).unwrap();
    }
    let reads = driver.collect(2, Duration::from_secs(10));
    assert!(
        reads.iter().any(|(_, o, _)| matches!(o, Outcome::Rows(_)))
            && reads
                .iter()
                .all(|(_, o, _)| matches!(o, Outcome::Rows(_) | Outcome::Unavailable)),
        "the read that brought the news is answered; one pipelined behind it may not be: {reads:?}"
    );
    let ok = driver.run_until(Duration::from_secs(10), |d| {
        d.pool.stats().ready_connections == d.size
    });
    assert!(ok, "{:?}", driver.pool.last_error());
    every_connection_is_on(&mut driver, second.port());
    driver.submit(3, INSERT_UNIQUE, &[Param::Int4(3)]).unwrap();
    assert!(matches!(
        driver.collect(1, Duration::from_secs(10))[0].1,
        Outcome::Rows(_)
    ));
    assert_eq!(
        second.psql("SELECT count(*) FROM t_unique WHERE k = 3"),
        "1"
    );
}

// ---- a server that does not report its state (before PostgreSQL 14) -------

/// A server that lets us in without reporting `in_hot_standby` and answers
/// the client's question with (`in_recovery`, `read_only`); returns its port
/// and what the client sent after the answer (its first message's tag).
fn silent_server(
    in_recovery: &'static str,
    read_only: &'static str,
) -> (u16, thread::JoinHandle<u8>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut length = [0u8; 4];
        stream.read_exact(&mut length).unwrap();
        let mut startup = vec![0u8; u32::from_be_bytes(length) as usize - 4];
        stream.read_exact(&mut startup).unwrap();
        // AuthenticationOk, then ReadyForQuery: trust, no ParameterStatus.
        stream.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 0]).unwrap();
        stream.write_all(&[b'Z', 0, 0, 0, 5, b'I']).unwrap();
        let (tag, query) = read_tagged(&mut stream);
        assert_eq!(tag, b'Q');
        let query = String::from_utf8_lossy(&query).to_string();
        assert!(query.contains("pg_is_in_recovery"), "{query}");
        let mut answer = Vec::new();
        // RowDescription is not looked at by the client; send a minimal one.
        message(&mut answer, b'T', &[0, 0]);
        let mut row = vec![0, 2];
        for value in [in_recovery, read_only] {
            row.extend_from_slice(&(value.len() as i32).to_be_bytes());
            row.extend_from_slice(value.as_bytes());
        }
        message(&mut answer, b'D', &row);
        message(&mut answer, b'C', b"SELECT 1\0");
        message(&mut answer, b'Z', b"I");
        stream.write_all(&answer).unwrap();
        let mut next = [0u8; 1];
        match stream.read_exact(&mut next) {
            Ok(()) => next[0],
            Err(_) => 0, // closed
        }
    });
    (port, handle)
}

fn message(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&(4 + body.len() as i32).to_be_bytes());
    out.extend_from_slice(body);
}

fn read_tagged(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 5];
    stream.read_exact(&mut head).unwrap();
    let length = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let mut body = vec![0u8; length - 4];
    stream.read_exact(&mut body).unwrap();
    (head[0], body)
}

fn silent_url(port: u16) -> String {
    format!(
        "postgres://flashsale@127.0.0.1:{port}/flashsale?require_auth=none&target_session_attrs=read-write"
    )
}

#[test]
fn a_server_that_does_not_report_its_state_is_asked() {
    let (port, server) = silent_server("t", "on");
    let mut driver = Driver::new(&silent_url(port), config(1));
    driver.run_until(Duration::from_secs(2), |d| d.pool.last_error().is_some());
    let error = driver.pool.last_error().unwrap_or_default().to_string();
    assert!(
        error.contains("not a writable server: asked, it is a hot standby"),
        "{error}"
    );
    assert_eq!(
        server.join().unwrap(),
        0,
        "nothing is prepared on a standby"
    );

    let (port, server) = silent_server("f", "off");
    let mut driver = Driver::new(&silent_url(port), config(1));
    // The client goes on to prepare its statements: Parse comes next.
    let next = thread::spawn(move || server.join().unwrap());
    driver.run_until(Duration::from_millis(500), |_| false);
    assert_eq!(next.join().unwrap(), b'P');
}
