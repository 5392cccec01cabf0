//! Pipelined prepared-statement throughput on ONE connection, by pipeline
//! depth: how much the client gains by keeping many requests in flight
//! instead of waiting for each answer.
//!
//! Usage: `cargo run --release -p pg-pipeline -- [--requests N] [--depths 1,8,64,256]`
//! With `DATABASE_URL` set it measures that server; otherwise it starts a
//! throw-away cluster (same harness as the integration tests; durable
//! settings: fsync on, synchronous_commit on).
//!
//! Two statements: a read (`SELECT` of parameters, no table) and a durable
//! write (`INSERT` of one row, committed by its own Sync, so each request
//! waits for a WAL flush unless the pipeline lets commits share one).

#[path = "../../../tests/support/cluster.rs"]
#[allow(dead_code)]
mod cluster;

use std::time::{Duration, Instant};

use flashsale::pg::{oid, ConnectConfig, Param, Pool, PoolConfig, Reply, Statement};
use mio::{Events, Poll};

const READ: usize = 0;
const WRITE: usize = 1;

static STATEMENTS: &[Statement] = &[
    Statement {
        name: "bench_read",
        sql: "SELECT $1::int4, $2::uuid, $3::text",
        param_types: &[oid::INT4, oid::UUID, oid::TEXT],
        column_names: &[],
        column_types: &[oid::INT4, oid::UUID, oid::TEXT],
        writes: false,
        slow: false,
    },
    Statement {
        name: "bench_write",
        sql: "INSERT INTO bench_writes (n, customer) VALUES ($1, $2)",
        param_types: &[oid::INT4, oid::TEXT],
        column_names: &[],
        column_types: &[],
        writes: false,
        slow: false,
    },
];

struct Args {
    requests: usize,
    depths: Vec<usize>,
}

fn parse_args() -> Args {
    let mut args = Args {
        requests: 20_000,
        depths: vec![1, 8, 64, 256],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--requests" => {
                args.requests = value
                    .parse()
                    .unwrap_or_else(|_| usage("--requests: a number"))
            }
            "--depths" => {
                args.depths = value
                    .split(',')
                    .map(|d| {
                        d.parse()
                            .ok()
                            .filter(|d| *d > 0)
                            .unwrap_or_else(|| usage("--depths: e.g. 1,8,64"))
                    })
                    .collect()
            }
            _ => usage(&format!("unknown flag {flag}")),
        }
    }
    args
}

fn usage(message: &str) -> ! {
    eprintln!("{message}\nusage: pg-pipeline [--requests N] [--depths 1,8,64,256]");
    std::process::exit(2)
}

/// Runs `total` requests keeping `depth` in flight; returns requests/second.
fn measure(pool: &mut Pool, poll: &mut Poll, statement: usize, total: usize, depth: usize) -> f64 {
    let key = [0x42u8; 16];
    let mut events = Events::with_capacity(64);
    let mut sent = 0usize;
    let mut answered = 0usize;
    let started = Instant::now();
    while answered < total {
        let in_flight = sent - answered;
        for _ in in_flight..depth.min(total - answered) {
            let n = sent as i32;
            let params_read = [
                Param::Int4(n),
                Param::Uuid(&key),
                Param::Text("customer_42"),
            ];
            let params_write = [Param::Int4(n), Param::Text("customer_42")];
            let params: &[Param<'_>] = if statement == READ {
                &params_read
            } else {
                &params_write
            };
            pool.submit(sent as u64, statement, params, Instant::now())
                .expect("pool accepts");
            sent += 1;
        }
        let mut on_reply = |_: u64, reply: Reply<'_>| {
            assert!(matches!(reply, Reply::Rows(_)), "request failed: {reply:?}");
            answered += 1;
        };
        pool.flush(poll.registry(), Instant::now(), &mut on_reply);
        poll.poll(&mut events, Some(Duration::from_secs(5)))
            .expect("poll");
        for event in events.iter() {
            pool.handle_event(poll.registry(), event, Instant::now(), &mut on_reply);
        }
    }
    total as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let args = parse_args();
    let (_cluster, url) = match std::env::var("DATABASE_URL") {
        Ok(url) => (None, url),
        Err(_) => {
            let cluster = cluster::PgCluster::builder(cluster::Auth::Scram)
                .setting("fsync", "on")
                .setting("synchronous_commit", "on")
                .start();
            let url = cluster.url();
            (Some(cluster), url)
        }
    };
    if let Some(cluster) = &_cluster {
        cluster.psql("CREATE TABLE bench_writes (n int, customer text); GRANT ALL ON bench_writes TO flashsale;");
    }
    let mut poll = Poll::new().expect("poll");
    let connect = ConnectConfig::from_url(&url).unwrap_or_else(|e| usage(&e));
    let depth_max = args.depths.iter().copied().max().unwrap_or(1);
    let config = PoolConfig {
        size: 1,
        pipeline_depth_max: depth_max,
        ..PoolConfig::default()
    };
    let mut pool = Pool::new(connect, STATEMENTS, config, 0, Instant::now());
    pool.start(poll.registry(), Instant::now());
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut events = Events::with_capacity(8);
    while !pool.is_healthy() {
        if Instant::now() > deadline {
            eprintln!("no connection: {:?}", pool.last_error());
            std::process::exit(1);
        }
        poll.poll(&mut events, Some(Duration::from_millis(20)))
            .expect("poll");
        for event in events.iter() {
            pool.handle_event(poll.registry(), event, Instant::now(), &mut |_, _| {});
        }
        pool.tick(poll.registry(), Instant::now(), &mut |_, _| {});
    }

    println!(
        "one connection, {} requests per cell, requests/second",
        args.requests
    );
    println!("| depth | read (SELECT) | durable write (INSERT + commit) |");
    println!("|---:|---:|---:|");
    let mut baseline = None;
    for &depth in &args.depths {
        measure(&mut pool, &mut poll, READ, args.requests / 10, depth); // warm-up
        let read = measure(&mut pool, &mut poll, READ, args.requests, depth);
        let write = measure(&mut pool, &mut poll, WRITE, args.requests / 4, depth);
        let (read_1, write_1) = *baseline.get_or_insert((read, write));
        println!(
            "| {depth} | {read:.0} ({:.1}x) | {write:.0} ({:.1}x) |",
            read / read_1,
            write / write_1
        );
    }
}
