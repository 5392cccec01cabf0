//! The Postgres client against a real, throw-away server: every auth method
//! (and its refusal without `require_auth`), deep pipelines, error
//! isolation, lost connections, a restarted server and saturation; and
//! against scripted impostors that try to skip SCRAM's server signature. The
//! test drives the pool with its own small mio loop, the way the server's
//! event loop does (`support::pool_driver`).

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use flashsale::pg::{oid, ConnectConfig, Param, Pool, PoolConfig, Refused, Statement};
use mio::{Events, Poll};
use support::cluster::{Auth, PgCluster};
use support::pool_driver::*;

fn connected_echo(auth: Auth, unix: bool) {
    let cluster = PgCluster::start(auth);
    prepare_schema(&cluster);
    let url = if unix {
        cluster.unix_url()
    } else {
        cluster.url()
    };
    let mut driver = Driver::new(&url, config(2));
    driver.wait_ready(Duration::from_secs(10));
    assert_eq!(driver.echo(41).int4(), 41);
}

#[test]
fn connects_with_trust() {
    connected_echo(Auth::Trust, false);
}

#[test]
fn connects_with_cleartext_password() {
    connected_echo(Auth::Password, false);
}

#[test]
fn connects_with_md5() {
    connected_echo(Auth::Md5, false);
}

#[test]
fn connects_with_scram_sha_256() {
    connected_echo(Auth::Scram, false);
}

#[test]
fn connects_over_a_unix_socket_with_scram() {
    connected_echo(Auth::Scram, true);
}

#[test]
fn wrong_password_is_a_clear_error() {
    for auth in [Auth::Scram, Auth::Md5, Auth::Password] {
        let cluster = PgCluster::start(auth);
        let mut driver = Driver::new(&cluster.url_with_password("wrong"), config(1));
        let failed = driver.run_until(Duration::from_secs(10), |d| d.pool.last_error().is_some());
        assert!(failed, "no error reported");
        let error = driver.pool.last_error().unwrap().to_string();
        assert!(
            error.contains("password authentication failed"),
            "{auth:?}: {error}"
        );
        assert!(!driver.pool.is_healthy());
        assert_eq!(
            driver.submit(1, ECHO, &[Param::Int4(1), Param::Text("x")]),
            Err(Refused::Unavailable)
        );
    }
}

/// The error that stops a one-connection pool on `url` from becoming ready.
fn connect_error(url: &str) -> String {
    let mut driver = Driver::new(url, config(1));
    let failed = driver.run_until(Duration::from_secs(10), |d| d.pool.last_error().is_some());
    assert!(failed, "no error reported");
    assert!(!driver.pool.is_healthy());
    driver.pool.last_error().unwrap().to_string()
}

#[test]
fn methods_other_than_scram_are_refused_unless_the_url_opts_in() {
    for (auth, asked) in [
        (Auth::Trust, "without authentication"),
        (Auth::Password, "cleartext password"),
        (Auth::Md5, "MD5 password"),
    ] {
        let cluster = PgCluster::start(auth);
        let url = cluster.url_with("flashsale", "secret", None);
        let error = connect_error(&url);
        assert!(error.contains(asked), "{auth:?}: {error}");
        assert!(error.contains("require_auth"), "{auth:?}: {error}");
        assert!(!error.contains("secret"), "{auth:?}: {error}");
    }
}

/// A server on a free port that reads our startup message, offers
/// SCRAM-SHA-256 and plays `script` on the one connection it accepts.
fn impostor(script: fn(&mut TcpStream)) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut length = [0u8; 4];
        stream.read_exact(&mut length).unwrap();
        let mut startup = vec![0u8; u32::from_be_bytes(length) as usize - 4];
        stream.read_exact(&mut startup).unwrap();
        send_auth(&mut stream, 10, b"SCRAM-SHA-256\0\0");
        script(&mut stream);
    });
    port
}

/// Writes an Authentication message: `R`, length, `code`, `data`.
fn send_auth(stream: &mut TcpStream, code: i32, data: &[u8]) {
    let mut message = vec![b'R'];
    message.extend_from_slice(&(8 + data.len() as i32).to_be_bytes());
    message.extend_from_slice(&code.to_be_bytes());
    message.extend_from_slice(data);
    stream.write_all(&message).unwrap();
}

/// Reads one tagged message from the client and returns its body.
fn read_message(stream: &mut TcpStream) -> Vec<u8> {
    let mut head = [0u8; 5];
    stream.read_exact(&mut head).unwrap();
    let length = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let mut body = vec![0u8; length - 4];
    stream.read_exact(&mut body).unwrap();
    body
}

/// AuthenticationOk and ReadyForQuery: "you are in".
fn let_in(stream: &mut TcpStream) {
    send_auth(stream, 0, b"");
    let _ = stream.write_all(&[b'Z', 0, 0, 0, 5, b'I']);
}

fn impostor_url(port: u16) -> String {
    format!("postgres://flashsale:secret@127.0.0.1:{port}/flashsale")
}

#[test]
fn a_server_that_lets_us_in_right_after_our_scram_start_is_refused() {
    let port = impostor(|stream| {
        read_message(stream); // SASLInitialResponse
        let_in(stream);
    });
    let error = connect_error(&impostor_url(port));
    assert!(
        error.contains("without proving it knows the password"),
        "{error}"
    );
}

#[test]
fn a_server_with_a_wrong_scram_signature_is_refused() {
    let port = impostor(|stream| {
        let initial = read_message(stream);
        let text = String::from_utf8_lossy(&initial).into_owned();
        let nonce = text.rsplit_once("r=").unwrap().1;
        let first = format!("r={nonce}impostor,s=c2FsdHNhbHQ=,i=4096");
        send_auth(stream, 11, first.as_bytes());
        read_message(stream); // SASLResponse with our proof
        send_auth(
            stream,
            12,
            b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        );
        let_in(stream);
    });
    let error = connect_error(&impostor_url(port));
    assert!(error.contains("server signature"), "{error}");
}

/// Starts a one-connection pool preparing `statements` and returns the
/// error that stops it from becoming ready.
fn startup_error(statements: &'static [Statement]) -> String {
    let cluster = PgCluster::start(Auth::Trust);
    let poll = Poll::new().unwrap();
    let connect = ConnectConfig::from_url(&cluster.url()).unwrap();
    let mut pool = Pool::new(connect, statements, config(1), 0, Instant::now());
    pool.start(poll.registry(), Instant::now());
    let mut driver = Driver {
        poll,
        events: Events::with_capacity(8),
        pool,
        size: 1,
        replies: Vec::new(),
    };
    assert!(driver.run_until(Duration::from_secs(10), |d| d.pool.last_error().is_some()));
    driver.pool.last_error().unwrap().to_string()
}

#[test]
fn a_statement_that_does_not_match_the_schema_is_a_startup_error() {
    static WRONG: &[Statement] = &[Statement {
        name: "wrong",
        sql: "SELECT 1::int4",
        param_types: &[],
        column_names: &[],
        column_types: &[oid::INT8],
        writes: false,
        slow: false,
    }];
    let error = startup_error(WRONG);
    assert!(error.contains("statement wrong does not match"), "{error}");
    assert!(
        error.contains("[23]") && error.contains("[20]"),
        "names actual and expected types: {error}"
    );
}

/// Two columns of one type swapped in the SQL would pass a type check; the
/// names catch it.
#[test]
fn a_statement_whose_column_names_differ_is_a_startup_error() {
    static SWAPPED: &[Statement] = &[Statement {
        name: "swapped",
        sql: "SELECT 2::int4 AS total_price, 1::int4 AS unit_price",
        param_types: &[],
        column_names: &["unit_price", "total_price"],
        column_types: &[oid::INT4, oid::INT4],
        writes: false,
        slow: false,
    }];
    let error = startup_error(SWAPPED);
    assert!(
        error.contains("statement swapped does not match"),
        "{error}"
    );
    assert!(
        error.contains(r#"["total_price", "unit_price"]"#),
        "names the columns: {error}"
    );
}

#[test]
fn ten_thousand_pipelined_requests_come_back_in_order() {
    let cluster = PgCluster::start(Auth::Scram);
    let mut driver = Driver::connected(
        &cluster,
        PoolConfig {
            pipeline_depth_max: 10_000,
            wait_queue_max: 0,
            ..config(1)
        },
    );
    let texts: Vec<String> = (0..10_000).map(|i| i.to_string()).collect();
    for (i, text) in texts.iter().enumerate() {
        driver
            .submit(i as u64, ECHO, &[Param::Int4(i as i32), Param::Text(text)])
            .unwrap();
    }
    assert_eq!(
        driver.pool.stats().in_flight,
        10_000,
        "all on one connection"
    );
    let replies = driver.collect(10_000, Duration::from_secs(60));
    for (i, (tag, outcome, _)) in replies.iter().enumerate() {
        assert_eq!(*tag, i as u64, "FIFO order");
        let Outcome::Rows(rows) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][0].as_deref(), Some(&(i as i32).to_be_bytes()[..]));
        assert_eq!(rows[0][1].as_deref(), Some(format!("v{i}").as_bytes()));
    }
}

#[test]
fn an_error_fails_only_its_own_request() {
    let cluster = PgCluster::start(Auth::Trust);
    let mut driver = Driver::connected(&cluster, config(1));
    let requests: [(usize, i32); 7] = [
        (INSERT_UNIQUE, 1),
        (INSERT_UNIQUE, 2),
        (INSERT_UNIQUE, 1),
        (DIVIDE, 0),
        (DIVIDE, 5),
        (INSERT_UNIQUE, 3),
        (ECHO, 9),
    ];
    for (tag, (statement, value)) in requests.iter().enumerate() {
        let params: &[Param<'_>] = if *statement == ECHO {
            &[Param::Int4(*value), Param::Text("")]
        } else {
            &[Param::Int4(*value)]
        };
        driver.submit(tag as u64, *statement, params).unwrap();
    }
    let replies = driver.collect(requests.len(), Duration::from_secs(10));
    let outcomes: Vec<&Outcome> = replies.iter().map(|(_, o, _)| o).collect();
    assert_eq!(outcomes[0], &Outcome::Rows(vec![]));
    assert_eq!(outcomes[1], &Outcome::Rows(vec![]));
    assert!(
        matches!(outcomes[2], Outcome::Failed { code, .. } if code == "23505"),
        "{:?}",
        outcomes[2]
    );
    assert!(
        matches!(outcomes[3], Outcome::Failed { code, .. } if code == "22012"),
        "{:?}",
        outcomes[3]
    );
    assert_eq!(outcomes[4].int4(), 20);
    assert_eq!(outcomes[5], &Outcome::Rows(vec![]));
    assert_eq!(outcomes[6].int4(), 9);
    assert_eq!(
        cluster.psql("SELECT string_agg(k::text, ',' ORDER BY k) FROM t_unique"),
        "1,2,3"
    );
}

#[test]
fn binary_types_and_arrays_round_trip() {
    let cluster = PgCluster::start(Auth::Trust);
    let mut driver = Driver::connected(&cluster, config(1));
    let id = [
        0x55, 0x0e, 0x84, 0x00, 0xe2, 0x9b, 0x41, 0xd4, 0xa7, 0x16, 0x44, 0x66, 0x55, 0x44, 0, 0,
    ];
    let params = [
        Param::Uuid(&id),
        Param::Int8(-1 << 40),
        Param::Bool(true),
        Param::Text("né ✓"),
        Param::Int2(-7),
    ];
    driver.submit(1, TYPES, &params).unwrap();
    let ids = [[1u8; 16], [2u8; 16]];
    let arrays = [
        Param::Int4Array(&[1, 2, 3]),
        Param::UuidArray(&ids),
        Param::TextArray(&["a", "é"]),
    ];
    driver.submit(2, SUM_ARRAY, &arrays).unwrap();
    driver
        .submit(
            3,
            SUM_ARRAY,
            &[
                Param::Int4Array(&[]),
                Param::UuidArray(&[]),
                Param::TextArray(&[]),
            ],
        )
        .unwrap();
    let replies = driver.collect(3, Duration::from_secs(10));

    let Outcome::Rows(rows) = &replies[0].1 else {
        panic!("{:?}", replies[0])
    };
    let row = &rows[0];
    assert_eq!(row[0].as_deref(), Some(&id[..]));
    assert_eq!(row[1].as_deref(), Some(&(-1i64 << 40).to_be_bytes()[..]));
    assert_eq!(row[2].as_deref(), Some(&[1u8][..]));
    assert_eq!(row[3].as_deref(), Some("né ✓".as_bytes()));
    let micros = i64::from_be_bytes(row[4].as_deref().unwrap().try_into().unwrap());
    let unix_micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let pg_epoch_offset_micros = 946_684_800_000_000;
    assert!(
        (unix_micros - (micros + pg_epoch_offset_micros)).abs() < 60_000_000,
        "now() within a minute"
    );
    assert_eq!(row[5], None, "NULL");
    assert_eq!(row[6].as_deref(), Some(&(-7i16).to_be_bytes()[..]));

    let Outcome::Rows(rows) = &replies[1].1 else {
        panic!("{:?}", replies[1])
    };
    assert_eq!(rows[0][0].as_deref(), Some(&6i64.to_be_bytes()[..]));
    assert_eq!(rows[0][1].as_deref(), Some(&2i32.to_be_bytes()[..]));
    assert_eq!(rows[0][2].as_deref(), Some("a,é".as_bytes()));
    let Outcome::Rows(rows) = &replies[2].1 else {
        panic!("{:?}", replies[2])
    };
    assert_eq!(
        rows[0][0].as_deref(),
        Some(&0i64.to_be_bytes()[..]),
        "empty arrays"
    );
}

#[test]
fn notices_and_parameter_status_are_not_answers() {
    let cluster = PgCluster::start(Auth::Trust);
    let mut driver = Driver::connected(&cluster, config(1));
    for i in 0..50 {
        driver
            .submit(i * 2, NOISY, &[Param::Int4(i as i32)])
            .unwrap();
        // application_name is reported by the server: a ParameterStatus
        // message arrives inside this answer.
        driver
            .submit(i * 2 + 1, SET_APP_NAME, &[Param::Text("renamed")])
            .unwrap();
    }
    let replies = driver.collect(100, Duration::from_secs(10));
    for (i, (tag, outcome, _)) in replies.iter().enumerate() {
        assert_eq!(*tag, i as u64);
        if i % 2 == 0 {
            assert_eq!(outcome.int4(), (i / 2) as i32);
        } else {
            let Outcome::Rows(rows) = outcome else {
                panic!("{outcome:?}")
            };
            assert_eq!(rows[0][0].as_deref(), Some(&b"renamed"[..]));
        }
    }
}

#[test]
fn a_terminated_backend_fails_its_requests_promptly_and_the_pool_reconnects() {
    let cluster = PgCluster::start(Auth::Scram);
    let mut driver = Driver::connected(&cluster, config(2));
    // Two slow requests on each connection.
    for tag in 0..4 {
        driver.submit(tag, SLEEP_MS, &[Param::Int4(3000)]).unwrap();
    }
    driver
        .pool
        .flush(driver.poll.registry(), Instant::now(), &mut |_, _| panic!());
    driver.turn(Duration::from_millis(100));
    let terminated_at = Instant::now();
    let killed = cluster.psql(
        "SELECT count(pg_terminate_backend(pid)) FROM (SELECT pid FROM pg_stat_activity \
         WHERE application_name = 'flashsale' ORDER BY pid LIMIT 1) p",
    );
    assert_eq!(killed, "1");
    assert!(
        driver.run_until(Duration::from_secs(2), |d| d.replies.len() >= 2),
        "in-flight requests did not fail"
    );
    let failed: Vec<_> = driver
        .replies
        .iter()
        .filter(|(_, o, _)| *o == Outcome::Unavailable)
        .collect();
    assert_eq!(
        failed.len(),
        2,
        "exactly the terminated connection's requests fail: {:?}",
        driver.replies
    );
    for (_, _, at) in &failed {
        assert!(
            at.duration_since(terminated_at) < Duration::from_millis(1500),
            "failed promptly"
        );
    }
    let replies = driver.collect(4, Duration::from_secs(10));
    assert_eq!(
        replies
            .iter()
            .filter(
                |(_, o, _)| *o == Outcome::Rows(vec![vec![Some(3000i32.to_be_bytes().to_vec())]])
            )
            .count(),
        2
    );
    driver.wait_ready(Duration::from_secs(10));
    assert!(driver.pool.stats().reconnects >= 1);
    for i in 0..10 {
        assert_eq!(driver.echo(i).int4(), i);
    }
}

#[test]
fn a_stopped_server_fails_fast_and_the_same_pool_recovers() {
    let mut cluster = PgCluster::start(Auth::Scram);
    let mut driver = Driver::connected(&cluster, config(2));
    assert_eq!(driver.echo(1).int4(), 1);
    driver.submit(7, SLEEP_MS, &[Param::Int4(5000)]).unwrap();
    driver.turn(Duration::from_millis(50));
    cluster.stop();
    let stopped_at = Instant::now();
    assert!(
        driver.run_until(Duration::from_secs(3), |d| !d.replies.is_empty()),
        "in-flight request hangs"
    );
    assert_eq!(driver.replies.remove(0).1, Outcome::Unavailable);
    assert!(stopped_at.elapsed() < Duration::from_secs(3));
    driver.run_until(Duration::from_secs(3), |d| !d.pool.is_healthy());
    // While down: refused on the spot, again and again, through reconnect attempts.
    for i in 0..20 {
        let started = Instant::now();
        assert_eq!(
            driver.submit(i, ECHO, &[Param::Int4(1), Param::Text("")]),
            Err(Refused::Unavailable)
        );
        assert!(started.elapsed() < Duration::from_millis(5));
        driver.turn(Duration::from_millis(50));
    }
    cluster.restart();
    driver.wait_ready(Duration::from_secs(15));
    assert_eq!(driver.echo(2).int4(), 2);
}

#[test]
fn startup_waits_for_a_database_that_is_not_up_yet() {
    let mut cluster = PgCluster::start(Auth::Scram);
    prepare_schema(&cluster);
    cluster.stop();
    let mut driver = Driver::new(&cluster.url(), config(2));
    driver.run_until(Duration::from_millis(500), |_| false);
    assert!(!driver.pool.is_healthy());
    assert!(
        driver
            .pool
            .last_error()
            .is_some_and(|e| e.contains("connect")),
        "{:?}",
        driver.pool.last_error()
    );
    cluster.restart();
    driver.wait_ready(Duration::from_secs(15));
    assert_eq!(driver.echo(3).int4(), 3);
}

#[test]
fn a_full_pool_refuses_at_once() {
    let cluster = PgCluster::start(Auth::Trust);
    let mut driver = Driver::connected(
        &cluster,
        PoolConfig {
            pipeline_depth_max: 2,
            wait_queue_max: 3,
            ..config(2)
        },
    );
    for tag in 0..7 {
        driver.submit(tag, SLEEP_MS, &[Param::Int4(300)]).unwrap();
    }
    let stats = driver.pool.stats();
    assert_eq!((stats.in_flight, stats.waiting), (4, 3));
    let started = Instant::now();
    assert_eq!(
        driver.submit(99, SLEEP_MS, &[Param::Int4(1)]),
        Err(Refused::Overloaded)
    );
    assert!(started.elapsed() < Duration::from_millis(5));
    let replies = driver.collect(7, Duration::from_secs(10));
    let mut tags: Vec<u64> = replies.iter().map(|(t, _, _)| *t).collect();
    assert!(replies.iter().all(|(_, o, _)| o.int4() == 300));
    tags.sort();
    assert_eq!(tags, (0..7).collect::<Vec<_>>());
    assert_eq!(driver.echo(5).int4(), 5, "accepts again once drained");
}

fn text_columns(outcome: &Outcome) -> Vec<String> {
    let Outcome::Rows(rows) = outcome else {
        panic!("expected rows, got {outcome:?}")
    };
    rows[0]
        .iter()
        .map(|v| String::from_utf8(v.clone().unwrap()).unwrap())
        .collect()
}

fn failed_code(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Failed { code, .. } => code,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn every_session_starts_with_the_configured_deadlines() {
    let cluster = PgCluster::start(Auth::Scram);
    let mut driver = Driver::connected(
        &cluster,
        PoolConfig {
            statement_timeout: Duration::from_millis(1234),
            lock_timeout: Duration::from_millis(567),
            ..config(2)
        },
    );
    for tag in 0..4 {
        driver.submit(tag, DEADLINES, &[]).unwrap();
    }
    for (_, outcome, _) in driver.collect(4, Duration::from_secs(10)) {
        assert_eq!(text_columns(&outcome), ["1234ms", "567ms"]);
    }
    // The defaults are the ones in config.rs.
    let mut driver = Driver::connected(&cluster, config(1));
    driver.submit(0, DEADLINES, &[]).unwrap();
    let (_, outcome, _) = driver.collect(1, Duration::from_secs(10)).remove(0);
    let expected = [
        format!("{}ms", flashsale::config::PG_STATEMENT_TIMEOUT.as_millis()),
        format!("{}ms", flashsale::config::PG_LOCK_TIMEOUT.as_millis()),
    ];
    assert_eq!(
        text_columns(&outcome),
        expected.map(|e| e.replace("000ms", "s"))
    );
}

#[test]
fn the_server_stops_a_statement_at_its_deadline_and_the_session_carries_on() {
    let cluster = PgCluster::start(Auth::Trust);
    let mut driver = Driver::connected(
        &cluster,
        PoolConfig {
            statement_timeout: Duration::from_millis(300),
            ..config(1)
        },
    );
    let sent = Instant::now();
    driver.submit(0, SLEEP_MS, &[Param::Int4(5000)]).unwrap();
    driver
        .submit(1, ECHO, &[Param::Int4(7), Param::Text("x")])
        .unwrap();
    let replies = driver.collect(2, Duration::from_secs(10));
    assert_eq!(failed_code(&replies[0].1), "57014", "query_canceled");
    assert!(replies[0].2 - sent < Duration::from_secs(2));
    assert_eq!(replies[1].1.int4(), 7);
    let stats = driver.pool.stats();
    assert_eq!((stats.reconnects, stats.cancels_sent), (0, 0));
}

#[test]
fn a_request_the_server_keeps_working_on_is_cancelled_not_abandoned() {
    // No server-side deadline: only the client's CancelRequest can stop the
    // sleep. The session must survive it, and the request behind the
    // cancelled one must run normally.
    let cluster = PgCluster::start(Auth::Scram);
    let mut driver = Driver::connected(
        &cluster,
        PoolConfig {
            statement_timeout: Duration::ZERO,
            cancel_after: Duration::from_millis(300),
            request_timeout: Duration::from_secs(20),
            ..config(1)
        },
    );
    let sent = Instant::now();
    driver.submit(0, SLEEP_MS, &[Param::Int4(10_000)]).unwrap();
    driver
        .submit(1, ECHO, &[Param::Int4(8), Param::Text("x")])
        .unwrap();
    let replies = driver.collect(2, Duration::from_secs(15));
    assert_eq!(failed_code(&replies[0].1), "57014", "{replies:?}");
    let took = replies[0].2 - sent;
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "cancelled after {took:?}"
    );
    assert_eq!(replies[1].1.int4(), 8);
    let stats = driver.pool.stats();
    assert_eq!((stats.reconnects, stats.cancels_sent), (0, 1));
    // The backend is free again, not still sleeping.
    let busy = cluster.psql(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'flashsale' \
         AND state = 'active'",
    );
    assert_eq!(busy, "0");
}

#[test]
fn nothing_pipelines_behind_a_slow_statement_while_another_connection_is_ready() {
    let cluster = PgCluster::start(Auth::Trust);
    let mut driver = Driver::connected(&cluster, config(3));
    driver
        .submit(0, SLEEP_MS_SLOW, &[Param::Int4(1500)])
        .unwrap();
    // Writes and reads, more than the other two connections have in flight.
    for tag in 10..30 {
        match tag % 2 {
            0 => driver.submit(tag, SLEEP_MS_WRITING, &[Param::Int4(1)]),
            _ => driver.submit(tag, ECHO, &[Param::Int4(tag as i32), Param::Text("x")]),
        }
        .unwrap();
    }
    let replies = driver.collect(21, Duration::from_secs(15));
    let slow_done = replies.iter().find(|(tag, ..)| *tag == 0).unwrap().2;
    for (tag, _, at) in replies.iter().filter(|(tag, ..)| *tag >= 10) {
        assert!(*at < slow_done, "request {tag} waited for the slow one");
    }
}

#[test]
fn reads_never_queue_behind_writes_that_wait() {
    let cluster = PgCluster::start(Auth::Trust);
    let mut driver = Driver::connected(&cluster, config(3));
    // Three slow writes: they may take two connections, never the third.
    for tag in 0..3 {
        driver
            .submit(tag, SLEEP_MS_WRITING, &[Param::Int4(1500)])
            .unwrap();
    }
    for tag in 10..20 {
        driver
            .submit(tag, ECHO, &[Param::Int4(tag as i32), Param::Text("x")])
            .unwrap();
    }
    let replies = driver.collect(13, Duration::from_secs(15));
    let first_write = replies
        .iter()
        .filter(|(tag, ..)| *tag < 3)
        .map(|(.., at)| *at)
        .min()
        .unwrap();
    for (tag, outcome, at) in replies.iter().filter(|(tag, ..)| *tag >= 10) {
        assert_eq!(outcome.int4(), *tag as i32);
        assert!(*at < first_write, "read {tag} waited for a write");
    }
}
