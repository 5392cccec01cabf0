//! Once buffers are warm, submitting requests and receiving their answers
//! allocates nothing: a counting global allocator watches a steady-state run
//! of pipelined requests against a real server.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use flashsale::pg::{oid, ConnectConfig, Param, Pool, PoolConfig, Reply, Statement};
use mio::{Events, Poll};
use support::cluster::{Auth, PgCluster};

struct CountingAllocator;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

static STATEMENTS: &[Statement] = &[Statement {
    name: "order_like",
    sql: "SELECT $1::int4, $2::uuid, $3::text, now()",
    param_types: &[oid::INT4, oid::UUID, oid::TEXT],
    column_names: &[],
    column_types: &[oid::INT4, oid::UUID, oid::TEXT, oid::TIMESTAMPTZ],
    writes: false,
    slow: false,
}];

/// Runs `rounds` rounds of `depth` pipelined requests, checking each answer
/// without allocating. Returns how many answers arrived.
fn run(
    pool: &mut Pool,
    poll: &mut Poll,
    events: &mut Events,
    rounds: usize,
    depth: usize,
) -> usize {
    let key = [7u8; 16];
    let mut answered = 0;
    for round in 0..rounds {
        for i in 0..depth {
            let n = (round * depth + i) as i32;
            pool.submit(
                i as u64,
                0,
                &[
                    Param::Int4(n),
                    Param::Uuid(&key),
                    Param::Text("customer_42"),
                ],
                Instant::now(),
            )
            .unwrap();
        }
        let mut on_reply = |_tag: u64, reply: Reply<'_>| {
            let Reply::Rows(rows) = reply else {
                panic!("request failed")
            };
            let row = rows.first().unwrap();
            assert_eq!(row.uuid(1), Some(&key));
            assert_eq!(row.text(2), Some("customer_42"));
            assert!(row.timestamp_micros(3).is_some());
            answered += 1;
        };
        pool.flush(poll.registry(), Instant::now(), &mut on_reply);
        let target = (round + 1) * depth;
        let deadline = Instant::now() + Duration::from_secs(20);
        while pool.stats().in_flight > 0 {
            assert!(Instant::now() < deadline, "answers did not arrive");
            poll.poll(events, Some(Duration::from_millis(50))).unwrap();
            for event in events.iter() {
                pool.handle_event(poll.registry(), event, Instant::now(), &mut on_reply);
            }
        }
        assert_eq!(answered, target);
    }
    answered
}

#[test]
fn steady_state_requests_do_not_allocate() {
    let cluster = PgCluster::start(Auth::Trust);
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(64);
    let connect = ConnectConfig::from_url(&cluster.url()).unwrap();
    let config = PoolConfig {
        size: 2,
        ..PoolConfig::default()
    };
    let mut pool = Pool::new(connect, STATEMENTS, config, 0, Instant::now());
    pool.start(poll.registry(), Instant::now());
    let deadline = Instant::now() + Duration::from_secs(10);
    while pool.stats().ready_connections < 2 {
        assert!(Instant::now() < deadline, "{:?}", pool.last_error());
        poll.poll(&mut events, Some(Duration::from_millis(20)))
            .unwrap();
        for event in events.iter() {
            pool.handle_event(poll.registry(), event, Instant::now(), &mut |_, _| {});
        }
        pool.tick(poll.registry(), Instant::now(), &mut |_, _| {});
    }

    // Warm-up: buffers grow to their working size.
    run(&mut pool, &mut poll, &mut events, 20, 100);

    COUNTING.store(true, Ordering::SeqCst);
    let answered = run(&mut pool, &mut poll, &mut events, 50, 100);
    COUNTING.store(false, Ordering::SeqCst);
    assert_eq!(answered, 5000);
    assert_eq!(
        ALLOCATIONS.load(Ordering::SeqCst),
        0,
        "allocations during 5000 warm requests"
    );
}
