//! Two properties of the request path that status codes cannot show:
//! orders arriving together share one database transaction (batching), and
//! once warm, the server thread serves every endpoint without allocating.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use flashsale::config::Settings;
use flashsale::server::Server;
use support::cluster::{Auth, PgCluster};
use support::server::http::{request_bytes, Conn};
use support::server::{api_url, apply_schema, new_uuid_v4, ServerProcess};

struct CountingAllocator;

thread_local! {
    static ON_SERVER_THREAD: Cell<bool> = const { Cell::new(false) };
}
static COUNTING: AtomicBool = AtomicBool::new(false);
static SERVER_ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

fn count() {
    if COUNTING.load(Ordering::Relaxed) && ON_SERVER_THREAD.with(Cell::get) {
        SERVER_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn order_body(product_id: i64, key: &str, quantity: i64) -> String {
    format!(
        r#"{{"product_id":{product_id},"idempotency_key":"{key}","customer_id":"buyer_7","quantity":{quantity}}}"#
    )
}

fn big_stock_product(cluster: &PgCluster, id: i64) {
    cluster.psql(&format!(
        "INSERT INTO products VALUES ({id}, 'bulk {id}', 100, 1000000, 1000000) ON CONFLICT (id) DO NOTHING"
    ));
}

#[test]
fn orders_arriving_together_share_one_transaction() {
    let cluster = PgCluster::start(Auth::Scram);
    apply_schema(&cluster);
    big_stock_product(&cluster, 100);
    let server = ServerProcess::start(&api_url(&cluster), &[("DB_POOL_SIZE", "1")]);
    const ORDERS: usize = 40;
    let mut conns: Vec<Conn> = (0..ORDERS).map(|_| server.conn()).collect();
    // Every request is on the wire before any answer is read, so the
    // server reads many of them in one loop turn.
    for conn in &mut conns {
        let body = order_body(100, &new_uuid_v4(), 1);
        conn.send(&request_bytes("POST", "/orders", Some(body.as_bytes())));
    }
    for conn in &mut conns {
        assert_eq!(conn.read_response().status, 201);
    }
    let orders = cluster.psql("SELECT count(*) FROM orders WHERE product_id = 100");
    let transactions =
        cluster.psql("SELECT count(DISTINCT xmin::text) FROM orders WHERE product_id = 100");
    let (orders, transactions): (usize, usize) =
        (orders.parse().unwrap(), transactions.parse().unwrap());
    assert_eq!(orders, ORDERS);
    assert!(
        transactions < ORDERS / 2,
        "{ORDERS} orders took {transactions} transactions: not batched"
    );
    assert_eq!(
        cluster.psql("SELECT current_stock FROM products WHERE id = 100"),
        (1_000_000 - ORDERS).to_string()
    );
}

/// Free on every address, as the server binds 0.0.0.0.
fn free_port() -> u16 {
    TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One round of every endpoint on warm keep-alive connections, with several
/// orders in flight together so they form batches.
fn round(conns: &mut [Conn], product_id: i64) {
    let keys: Vec<String> = conns.iter().map(|_| new_uuid_v4()).collect();
    for (conn, key) in conns.iter_mut().zip(&keys) {
        conn.send(&request_bytes(
            "POST",
            "/orders",
            Some(order_body(product_id, key, 2).as_bytes()),
        ));
    }
    let mut ids = Vec::new();
    for conn in conns.iter_mut() {
        let response = conn.read_response();
        assert_eq!(response.status, 201, "{response}");
        ids.push(response.json(201).get("order_id").as_str().to_string());
    }
    let conn = &mut conns[0];
    let replay = conn.post("/orders", &order_body(product_id, &keys[0], 2));
    assert_eq!(replay.status, 200);
    assert_eq!(conn.get("/products/1").status, 200);
    assert_eq!(
        conn.get(&format!("/orders?product_id={product_id}")).status,
        200
    );
    assert_eq!(conn.get(&format!("/orders/{}", ids[0])).status, 200);
    assert_eq!(
        conn.post(&format!("/orders/{}/cancel", ids[1]), "").status,
        200
    );
    assert_eq!(
        conn.post(&format!("/orders/{}/cancel", ids[1]), r#"{"product_id":1}"#)
            .status,
        404
    );
    assert_eq!(conn.post("/orders", "{}").status, 422);
    assert_eq!(conn.get("/nope").status, 404);
    assert_eq!(conn.get("/health").status, 200);
}

#[test]
fn a_warm_server_thread_serves_every_endpoint_without_allocating() {
    let cluster = PgCluster::start(Auth::Scram);
    apply_schema(&cluster);
    big_stock_product(&cluster, 101);
    let port = free_port();
    let url = api_url(&cluster);
    let settings = Settings::from_lookup(|name| match name {
        "PORT" => Some(port.to_string()),
        "DATABASE_URL" => Some(url.clone()),
        "DB_POOL_SIZE" => Some("2".to_string()),
        _ => None,
    })
    .expect("settings");
    std::thread::spawn(move || {
        ON_SERVER_THREAD.with(|on| on.set(true));
        let mut server = Server::bind(&settings).expect("server binds");
        server.run().expect("event loop runs");
    });
    let mut ready = false;
    for _ in 0..200 {
        if let Ok(mut conn) = Conn::try_open(port, Duration::from_millis(200)) {
            if conn.get("/health").status == 200 {
                ready = true;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(ready, "in-process server did not become healthy");

    let mut conns: Vec<Conn> = (0..8).map(|_| Conn::open(port)).collect();
    // Warm-up: buffers reach working size, the list answer its 50 entries.
    for _ in 0..60 {
        round(&mut conns, 101);
    }
    COUNTING.store(true, Ordering::SeqCst);
    for _ in 0..60 {
        round(&mut conns, 101);
    }
    COUNTING.store(false, Ordering::SeqCst);
    assert_eq!(
        SERVER_ALLOCATIONS.load(Ordering::SeqCst),
        0,
        "server-thread allocations over 60 warm rounds"
    );
}
