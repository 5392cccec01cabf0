//! The real `flashsale` binary under test, and the stack the API tests share.
//!
//! `ServerProcess::start(url, env)` runs the binary on a free port with its
//! stderr in a temp file, waits until `GET /health` answers 200, and stops it
//! by pid on drop (SIGTERM, SIGKILL after 5 s). `Stack` is one throw-away
//! Postgres with `sql/init.sql` applied plus N servers on it, connected as
//! the API role of init.sql ([`api_url`]) as in production;
//! [`shared_stack`] starts one per test binary and tears it down when the
//! process exits. Tests isolate themselves by creating their own products
//! ([`Stack::create_product`]), never by touching the seed products' stock.
//!
//! Submodules: [`http`], a strict raw HTTP/1.1 client, and [`json`], a strict
//! JSON reader for assertions.

pub mod http;
pub mod json;

use std::env;
use std::fs::{self, File};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::cluster::{Auth, PgCluster};
use http::Conn;

const READY_TIMEOUT: Duration = Duration::from_secs(15);
const READY_POLL: Duration = Duration::from_millis(50);
const HEALTH_PROBE_TIMEOUT: Duration = Duration::from_secs(1);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
const EXIT_POLL: Duration = Duration::from_millis(20);
const PORT_ATTEMPTS: usize = 5;
const STDERR_TAIL_LINES: usize = 60;
/// Variables the server reads; never inherited from the caller.
const SERVER_ENV: [&str; 6] = [
    "PORT",
    "DATABASE_URL",
    "DB_POOL_SIZE",
    "ADMIN_TOKEN",
    "ORDER_RATE_PER_CUSTOMER",
    "ORDER_BURST",
];
/// Ids of products the tests create start here, far from the seed ids 1..=5.
const TEST_PRODUCT_ID_FIRST: i64 = 1000;

/// A running `flashsale` process. See the module docs.
pub struct ServerProcess {
    child: Child,
    port: u16,
    stderr_path: PathBuf,
}

impl ServerProcess {
    /// Starts the binary against `database_url` with `extra_env` on top and
    /// waits until it is healthy; panics with its stderr if it is not within
    /// 15 s.
    pub fn start(database_url: &str, extra_env: &[(&str, &str)]) -> ServerProcess {
        for attempt in 1..=PORT_ATTEMPTS {
            let mut server = ServerProcess::spawn(free_port(), database_url, extra_env);
            match server.wait_healthy() {
                Ok(()) => return server,
                Err(reason) => {
                    let stderr = server.stderr();
                    if stderr.contains("in use") && attempt < PORT_ATTEMPTS {
                        continue;
                    }
                    server.terminate();
                    panic!(
                        "flashsale on port {} is not healthy: {reason}\n--- stderr ---\n{}",
                        server.port,
                        tail(&server.stderr(), STDERR_TAIL_LINES)
                    );
                }
            }
        }
        unreachable!("the last attempt returns or panics");
    }

    fn spawn(port: u16, database_url: &str, extra_env: &[(&str, &str)]) -> ServerProcess {
        let stderr_path = temp_log_path();
        let log = File::create(&stderr_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", stderr_path.display()));
        let log_out = log
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot dup {}: {e}", stderr_path.display()));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_flashsale"));
        for name in SERVER_ENV {
            cmd.env_remove(name);
        }
        cmd.env("PORT", port.to_string())
            .env("DATABASE_URL", database_url);
        for (name, value) in extra_env {
            cmd.env(name, value);
        }
        cmd.stdin(Stdio::null()).stdout(log_out).stderr(log);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", env!("CARGO_BIN_EXE_flashsale")));
        ServerProcess {
            child,
            port,
            stderr_path,
        }
    }

    fn wait_healthy(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited with {status} before becoming healthy"));
            }
            let last = match health_status(self.port) {
                Ok(200) => return Ok(()),
                Ok(status) => format!("GET /health answered {status}"),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                return Err(format!("not healthy after {READY_TIMEOUT:?}; last: {last}"));
            }
            thread::sleep(READY_POLL);
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A new keep-alive connection to this server.
    pub fn conn(&self) -> Conn {
        Conn::open(self.port)
    }

    /// Everything the server wrote to stderr and stdout so far.
    pub fn stderr(&self) -> String {
        fs::read(&self.stderr_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `sig` (e.g. `libc::SIGTERM`) to the server by pid.
    pub fn send_signal(&self, sig: libc::c_int) {
        signal(self.child.id(), sig);
    }

    /// Waits up to `timeout` for the process to exit; its status if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(EXIT_POLL);
        }
    }

    /// SIGTERM, then SIGKILL after 5 s; reaps the child. Never panics.
    fn terminate(&mut self) {
        if !self.is_running() {
            return;
        }
        signal(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if !self.is_running() {
                return;
            }
            thread::sleep(EXIT_POLL);
        }
        signal(self.child.id(), libc::SIGKILL);
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.terminate();
        if thread::panicking() {
            eprintln!(
                "--- flashsale (port {}) stderr, last {STDERR_TAIL_LINES} lines ---\n{}",
                self.port,
                tail(&self.stderr(), STDERR_TAIL_LINES)
            );
        }
        let _ = fs::remove_file(&self.stderr_path);
    }
}

/// Status of `GET /health` on a fresh connection, or why there is none.
fn health_status(port: u16) -> Result<u16, String> {
    let mut conn =
        Conn::try_open(port, HEALTH_PROBE_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    conn.set_read_timeout(HEALTH_PROBE_TIMEOUT);
    conn.try_send(&http::request_bytes("GET", "/health", None))
        .map_err(|e| format!("write: {e}"))?;
    conn.try_read_response()
        .map(|r| r.status)
        .map_err(|e| http::describe(&e))
}

/// The login role `sql/init.sql` makes for the API, as in production.
pub const API_USER: &str = "flashsale_api";
/// The password the tests give [`API_USER`] (production's is set by
/// init.sql's verifier; tests/deploy_checks.rs holds it to the compose file).
pub const API_PASSWORD: &str = "api-secret";

/// Applies `sql/init.sql` as superuser, as the image's entrypoint does, and
/// gives the API role the tests' password.
pub fn apply_schema(cluster: &PgCluster) {
    let init = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/init.sql");
    cluster.apply_file(&init);
    cluster.set_password(API_USER, API_PASSWORD);
}

/// The URL the API connects with: as the API role, like production.
pub fn api_url(cluster: &PgCluster) -> String {
    cluster.url_as(API_USER, API_PASSWORD)
}

/// The seed products of challenge.md: id, name, price, stock.
pub const SEED_PRODUCTS: [(i64, &str, i64, i64); 5] = [
    (1, "Mechanical Keyboard Ultra", 4999, 100),
    (2, "Wireless Mouse Pro", 2999, 50),
    (3, "USB-C Hub 7-in-1", 1999, 200),
    (4, "4K Webcam Stream", 8999, 10),
    (5, "Noise-Cancel Headphones", 14999, 30),
];

/// One Postgres with the schema applied and `servers` processes on it.
pub struct Stack {
    // Servers first: they are dropped before the database they use.
    pub servers: Vec<ServerProcess>,
    pub cluster: PgCluster,
}

static NEXT_PRODUCT_ID: AtomicI64 = AtomicI64::new(TEST_PRODUCT_ID_FIRST);

impl Stack {
    pub fn start(servers: usize) -> Stack {
        Stack::start_with_env(servers, &[])
    }

    /// Like [`start`](Self::start), every server with `extra_env` on top
    /// (e.g. `ADMIN_TOKEN`).
    pub fn start_with_env(servers: usize, extra_env: &[(&str, &str)]) -> Stack {
        let cluster = PgCluster::start(Auth::Scram);
        apply_schema(&cluster);
        let url = api_url(&cluster);
        let servers = (0..servers)
            .map(|_| ServerProcess::start(&url, extra_env))
            .collect();
        Stack { servers, cluster }
    }

    /// The first server.
    pub fn server(&self) -> &ServerProcess {
        &self.servers[0]
    }

    pub fn port(&self) -> u16 {
        self.server().port()
    }

    /// A new keep-alive connection to the first server.
    pub fn conn(&self) -> Conn {
        self.server().conn()
    }

    /// Inserts a product with a fresh id and returns the id.
    pub fn create_product(&self, price: i64, stock: i64) -> i64 {
        self.create_products(1, price, stock)[0]
    }

    /// Inserts `count` products with fresh consecutive ids.
    pub fn create_products(&self, count: i64, price: i64, stock: i64) -> Vec<i64> {
        let first = NEXT_PRODUCT_ID.fetch_add(count, Ordering::Relaxed);
        let last = first + count - 1;
        self.cluster.psql(&format!(
            "INSERT INTO products (id, name, price, initial_stock, current_stock) \
             SELECT i, 'Test product ' || i, {price}, {stock}, {stock} \
             FROM generate_series({first}, {last}) AS i"
        ));
        (first..=last).collect()
    }

    /// Sets both initial and current stock.
    pub fn set_stock(&self, product_id: i64, stock: i64) {
        self.cluster.psql(&format!(
            "UPDATE products SET initial_stock = {stock}, current_stock = {stock} \
             WHERE id = {product_id}"
        ));
    }

    /// `current_stock` as stored.
    pub fn stock(&self, product_id: i64) -> i64 {
        self.query_i64(&format!(
            "SELECT current_stock FROM products WHERE id = {product_id}"
        ))
    }

    /// A query returning one integer.
    pub fn query_i64(&self, sql: &str) -> i64 {
        let out = self.cluster.psql(sql);
        out.parse()
            .unwrap_or_else(|_| panic!("expected one integer from {sql:?}, got {out:?}"))
    }
}

enum Shared {
    Empty,
    Ready(Arc<Stack>),
    /// Start failed once; every later test fails fast with the same message.
    Failed(String),
}

static SHARED: Mutex<Shared> = Mutex::new(Shared::Empty);
static CLEANUP: Once = Once::new();

/// The stack shared by all tests of this test binary, started on first use
/// with `servers` servers, and stopped when the process exits.
pub fn shared_stack(servers: usize) -> Arc<Stack> {
    shared_stack_with_env(servers, &[])
}

/// Like [`shared_stack`], its servers started with `extra_env` on top. A
/// test binary uses one or the other: the first call decides the stack.
pub fn shared_stack_with_env(servers: usize, extra_env: &[(&str, &str)]) -> Arc<Stack> {
    let mut slot = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    match &*slot {
        Shared::Ready(stack) => return Arc::clone(stack),
        Shared::Failed(why) => panic!("shared stack failed to start earlier: {why}"),
        Shared::Empty => {}
    }
    CLEANUP.call_once(|| {
        // SAFETY: atexit only stores the function pointer; the handler is a
        // plain `extern "C" fn` that catches every panic.
        unsafe {
            libc::atexit(drop_shared_stack);
        }
    });
    match panic::catch_unwind(|| Stack::start_with_env(servers, extra_env)) {
        Ok(stack) => {
            let stack = Arc::new(stack);
            *slot = Shared::Ready(Arc::clone(&stack));
            stack
        }
        Err(payload) => {
            let why = panic_message(&payload);
            *slot = Shared::Failed(why.clone());
            panic!("{why}");
        }
    }
}

/// Statics are never dropped, so the shared cluster and servers would
/// outlive the test binary; this stops them when it exits (normally or via
/// `process::exit`, which is how libtest reports failures).
extern "C" fn drop_shared_stack() {
    let _ = panic::catch_unwind(AssertUnwindSafe(|| {
        let mut slot = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        drop(std::mem::replace(&mut *slot, Shared::Empty));
    }));
}

fn panic_message(payload: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else {
        "panic without a message".to_owned()
    }
}

/// A random version 4 UUID in lowercase hyphenated form.
pub fn new_uuid_v4() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

/// A port free on every address, as the server binds it (0.0.0.0): a port
/// free on 127.0.0.1 alone may still be held on another address.
fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot find a free port: {e}"))
}

fn temp_log_path() -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    env::temp_dir().join(format!(
        "flashsale-server-{}-{n}-{nanos}.log",
        std::process::id()
    ))
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own
    // child, not yet reaped.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
