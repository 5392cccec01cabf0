//! Every limit of the process, in one place, as named constants; the
//! relationships between them, checked when the crate compiles; and the
//! runtime configuration read from the environment.
//!
//! A limit past which the server would otherwise grow is answered instead:
//! 413/431 for oversized requests, 503 when the database pipelines, the wait
//! queue or the order batches are full, and a closed socket for idle or slow
//! clients.

use std::time::Duration;

// ---- HTTP ---------------------------------------------------------------

/// Request line plus headers. Larger heads get 431 and the connection closes.
pub const HTTP_HEAD_BYTES_MAX: usize = 8 * 1024;
/// Header fields per request (the `httparse` header array is this long).
pub const HTTP_HEADERS_MAX: usize = 32;
/// Request body. Order bodies are ~150 bytes; larger bodies get 413.
pub const HTTP_BODY_BYTES_MAX: usize = 4 * 1024;
/// Chunk-size lines, chunk extensions and trailers are framing, not payload;
/// they get the same allowance as a head so a client cannot stream endless
/// extensions while the decoded body stays small.
pub const HTTP_CHUNKED_FRAMING_BYTES_MAX: usize = HTTP_HEAD_BYTES_MAX;
/// A chunked body, framing included, as it sits in the input buffer.
pub const HTTP_CHUNKED_BODY_BYTES_MAX: usize = HTTP_BODY_BYTES_MAX + HTTP_CHUNKED_FRAMING_BYTES_MAX;
/// Unparsed bytes kept per connection: one whole request (head, body and
/// chunked framing) fits; pipelined requests beyond it wait in the socket.
pub const HTTP_INPUT_BYTES_MAX: usize = HTTP_HEAD_BYTES_MAX + HTTP_CHUNKED_BODY_BYTES_MAX;
/// Unsent response bytes per connection before it stops reading more
/// requests (a client that sends but does not read).
pub const HTTP_OUTPUT_BYTES_MAX: usize = 64 * 1024;
/// Open client connections per process; further accepts are answered 503
/// and closed at once. nginx keeps one upstream connection per request in
/// flight (128 idle), so a few hundred is a heavy load; the rest of the
/// room is for clients on the network reaching an instance directly.
pub const HTTP_CONNECTIONS_MAX: usize = 2048;
/// Buffer bytes (input, unsent output, a decoded chunked body) any
/// connection may hold of its own. A request and its answer are a few
/// hundred bytes each, so a well-behaved client never needs more.
pub const HTTP_CONNECTION_BYTES_FREE: usize = 2 * 1024;
/// What connections hold beyond their free share comes from this budget
/// for the whole process (`server::budget`): long pipelines, list answers,
/// big or slow requests. Spent, such growth is refused with 503.
pub const HTTP_SHARED_BUFFER_BYTES: usize = 8 * 1024 * 1024;
/// The largest response head we write (status line, Content-Type,
/// Content-Length, Connection, Allow); a test checks it.
pub const HTTP_RESPONSE_HEAD_BYTES_MAX: usize = 256;
/// The largest answer written whatever the budget says: an answer to a
/// request that changed something (an order, a cancel) must reach the
/// client, so it is never replaced by a 503. An order rendered with the
/// longest customer id fully escaped stays below it (checked below).
pub const HTTP_UNSAFE_ANSWER_BYTES_MAX: usize = 2 * 1024;
/// Client buffers kept after use: a buffer grown past this for one request
/// (a long answer, a big body) is given back once it is empty.
pub const HTTP_BUFFER_BYTES_KEPT: usize = 1024;
/// An idle keep-alive connection, or one that sent a partial request, is
/// closed after this long without completing a request.
pub const HTTP_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
pub const HTTP_PARTIAL_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// After the last response of a closing connection, unread input is drained
/// this long so the client gets the response instead of a reset.
pub const HTTP_LINGER_TIMEOUT: Duration = Duration::from_secs(2);
/// `accept` failing for lack of descriptors is tried again this often
/// (the backlog waits meanwhile; closing connections frees descriptors).
pub const ACCEPT_RETRY_INTERVAL: Duration = Duration::from_millis(50);
/// A lingering connection is closed at once (a reset, if it still sends)
/// after this much discarded input: answering a client that keeps streaming
/// after its last answer is not worth unbounded reading.
pub const HTTP_LINGER_BYTES_MAX: usize = 256 * 1024;
/// Reads from one connection in one turn; a connection with more to read
/// is read again next turn, after the others had theirs.
pub const READS_PER_CONNECTION_PER_TURN: usize = 8;
/// Load shed (503s, connections refused at accept) is logged as one summary
/// event per this interval, never one line per refusal.
pub const LOAD_SHED_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// How often idle, slow and lingering connections are looked for.
pub const HTTP_SWEEP_INTERVAL: Duration = Duration::from_millis(500);

// ---- The event loop -------------------------------------------------------

/// Readiness events taken from one `epoll_wait`; more wait for the next turn.
pub const EVENTS_PER_TURN_MAX: usize = 1024;
/// One socket read takes at most this much (into a buffer shared by every
/// connection); `HTTP_INPUT_BYTES_MAX` bounds what a connection keeps.
pub const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Writing the touched connections at the end of a turn may let pipelined
/// requests be answered at once, which queues more output; this many passes
/// take it, anything left goes out next turn (the loop does not sleep while
/// output is queued).
pub const FLUSH_PASSES_PER_TURN_MAX: usize = 4;
/// After SIGTERM/SIGINT, in-flight requests get this long to be answered,
/// and the loop looks this often whether they are.
pub const SHUTDOWN_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
pub const SHUTDOWN_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// `flashsale --healthcheck`: connecting, sending and reading each get this long.
pub const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(2);

// ---- Request bodies -------------------------------------------------------

/// Nesting levels of a JSON body, counting the top-level object as one.
/// Request bodies are flat; the bound only stops hostile input from buying
/// unbounded recursion.
pub const JSON_DEPTH_MAX: usize = 32;
/// A customer id, in Unicode scalar values (not bytes: 50 × "é" is valid).
/// `sql/init.sql` checks the same bound.
pub const CUSTOMER_ID_CHARS_MAX: usize = 50;
/// The same in UTF-8 bytes, at four bytes a character.
pub const CUSTOMER_ID_BYTES_MAX: usize = 4 * CUSTOMER_ID_CHARS_MAX;
/// Units per order; `sql/init.sql` checks the same range.
pub const QUANTITY_MIN: i64 = 1;
pub const QUANTITY_MAX: i64 = 5;

// ---- Answers ----------------------------------------------------------------

/// `GET /orders?product_id=N` and `?customer_id=X` list this many orders,
/// most recent first.
pub const ORDERS_LISTED_MAX: i64 = 50;
/// `GET /sales` shows this many products a page (platform.md §1).
pub const SALES_PAGE_MAX: i64 = 100;
/// A product's name in the administration, in Unicode scalar values.
pub const PRODUCT_NAME_CHARS_MAX: usize = 200;
/// Initial size of the buffer answers are rendered into (it grows to the
/// longest answer once, then stays).
pub const ANSWER_BODY_BYTES_INITIAL: usize = 16 * 1024;

// ---- Orders -------------------------------------------------------------------

/// Orders sent to the database in one `place_orders` call (one transaction).
/// All orders of one loop turn go together up to this many; more start a new
/// batch. Bounds the time a batch holds product row locks.
pub const PG_ORDER_BATCH_MAX: usize = 64;
/// Order batches at the database at once, per process (overridable by
/// `ORDER_BATCHES_IN_FLIGHT`, at most the pool size and this maximum). The
/// orders arriving while they are there gather in the open batch and go
/// together when one comes back (group commit in the application). Fewer
/// batches in flight make bigger batches, and a big batch costs the
/// database far less per order than a small one; see perf/RESULTS.md for
/// the measurement behind the default.
pub const ORDER_BATCHES_IN_FLIGHT_DEFAULT: usize = 1;
pub const ORDER_BATCHES_IN_FLIGHT_MAX: usize = 8;
/// Products remembered as sold out (their last order was refused for
/// stock), so their orders can go in a batch of their own that does not
/// wait for the batch at the database (a batch of refusals locks and writes
/// nothing). A hint only, by product id modulo this size: the database
/// still decides every order.
pub const SOLD_OUT_HINTS: usize = 64;
/// Order batches per process: those at the database, full ones waiting for
/// their turn, and the open one taking orders. All are allocated at start,
/// so the order path never allocates. An order that finds every batch busy
/// and the open one full is refused with 503 (`ORDER_BATCHES_MAX` ×
/// `PG_ORDER_BATCH_MAX` orders are in the process by then).
pub const ORDER_BATCHES_MAX: usize = 16;

// ---- The per-customer rate limit ----------------------------------------------

/// Customers the rate limit remembers (`api::rate_limit`): a table of this
/// many slots allocated at start, never grown. A slot is a 64-bit hash and
/// the instant its bucket is full again, 16 bytes, so the table costs
/// 16384 x 16 B = 256 KiB when the limit is on and nothing when it is off.
/// A power of two, so a hash picks its slot with a mask.
pub const RATE_LIMIT_CUSTOMERS_MAX: usize = 16 * 1024;
pub const RATE_LIMIT_SLOT_BYTES: usize = 16;
pub const RATE_LIMIT_TABLE_BYTES: usize = RATE_LIMIT_CUSTOMERS_MAX * RATE_LIMIT_SLOT_BYTES;
/// A customer's slot is one of this many after the one its hash points at
/// (two cache lines). A new customer who finds them all taken reuses one
/// whose bucket is full again (the same as absent), or else evicts the one
/// with the most tokens.
pub const RATE_LIMIT_PROBE_SLOTS: usize = 8;
/// `ORDER_RATE_PER_CUSTOMER`, tokens a second, in millionths (the setting
/// takes at most six decimals): 0.001 (one order per ~17 minutes) to 1000.
/// Outside that range the limit is meaningless or off in all but name.
pub const RATE_PER_SECOND_MILLIONTHS_MIN: u64 = 1_000;
pub const RATE_PER_SECOND_MILLIONTHS_MAX: u64 = 1_000_000_000;
pub const RATE_DECIMALS_MAX: usize = 6;
/// `ORDER_BURST`: tokens a customer's bucket holds.
pub const RATE_BURST_MAX: u32 = 1000;

// ---- Postgres -------------------------------------------------------------

/// Connections per process (overridable by `DB_POOL_SIZE`).
pub const PG_POOL_SIZE_DEFAULT: usize = 3;
/// A pool larger than this is a configuration mistake, not a tuning choice:
/// each connection is a Postgres backend process.
pub const PG_POOL_SIZE_MAX: usize = 64;
/// Requests in flight on one connection (sent, not yet answered).
pub const PG_PIPELINE_DEPTH_MAX: usize = 128;
/// Requests waiting for a pipeline slot across the whole pool; past this a
/// new request is refused at once ("overloaded", HTTP 503).
pub const PG_WAIT_QUEUE_MAX: usize = 1024;
/// Initial size of the buffer waiting requests are encoded into.
pub const PG_WAIT_QUEUE_BYTES_INITIAL: usize = 4 * 1024;
/// One backend message; anything larger is treated as corrupt data.
pub const PG_MESSAGE_BYTES_MAX: usize = 512 * 1024;
/// A connection's read buffer: one answer is kept whole until its
/// ReadyForQuery, so it may grow from the initial size to the maximum.
pub const PG_READ_BUF_BYTES_INITIAL: usize = 16 * 1024;
pub const PG_READ_BUF_BYTES_MAX: usize = 2 * PG_MESSAGE_BYTES_MAX;
/// Initial size of a connection's outgoing buffer.
pub const PG_WRITE_BUF_BYTES_INITIAL: usize = 16 * 1024;
/// Connect + startup + authentication + statement preparation.
pub const PG_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Session deadlines, sent as startup parameters so that every statement of
/// every connection has them. A statement waiting this long for a row lock
/// (`lock_timeout`) or running this long (`statement_timeout`) is stopped by
/// the server and rolled back: its request is answered 503 "not carried
/// out", and nothing it did is committed. In normal operation a lock wait
/// is one other batch's commit (milliseconds); 2 s means something holds a
/// row far longer than the API ever does.
pub const PG_LOCK_TIMEOUT: Duration = Duration::from_secs(2);
pub const PG_STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);
/// The request the server is working on (the front of a connection's
/// pipeline) has been at it this long: the server's own timeouts should
/// have stopped it, so the client sends a CancelRequest. The answer it then
/// gets is still the server's (an error, rolled back), and the requests
/// behind it on the connection carry on.
pub const PG_CANCEL_AFTER: Duration = Duration::from_secs(6);
/// The front request has had no answer this long, cancel included: the
/// connection is presumed dead, closed, and every request on it fails
/// "database unavailable" (an order among them may have committed: the
/// client learns which by retrying with its idempotency key).
pub const PG_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Reconnect backoff: first delay, cap, and jitter added on top (a fraction).
pub const PG_RECONNECT_DELAY_MIN: Duration = Duration::from_millis(50);
pub const PG_RECONNECT_DELAY_MAX: Duration = Duration::from_secs(2);
pub const PG_RECONNECT_JITTER_FRACTION: f64 = 0.5;
/// Name resolution blocks, so a resolved address is reused until a
/// connection slot failed this many times in a row.
pub const PG_RESOLVE_AGAIN_AFTER_FAILURES: u32 = 3;
/// An outage logs its first failed attempt, then only every this many.
pub const PG_RECONNECT_LOG_EVERY: u32 = 10;

// ---- The memory of one API process (the compose limit is 30 MB) ----------
//
// Worst case, every limit reached at once:
//
//   client connections   HTTP_CONNECTIONS_MAX x (CLIENT_BYTES_MAX
//                        + HTTP_CONNECTION_BYTES_FREE, its own buffers
//                        + HTTP_UNSAFE_ANSWER_BYTES_MAX + HTTP_ERROR_ANSWER_BYTES_MAX,
//                          what it may write past the budget)
//                        = 2048 x (0.5 + 2 + 2 + 0.5) KiB          10.0 MiB
//   shared buffer budget HTTP_SHARED_BUFFER_BYTES                   8.0 MiB
//   database connections 3 (DB_POOL_SIZE) x PG_READ_BUF_BYTES_MAX  3.0 MiB
//                        (+ write buffers and the wait queue of
//                        small encoded requests, well under 1 MiB)
//   rate limit table     RATE_LIMIT_TABLE_BYTES, when on            0.25 MiB
//   everything else      binary, stack, allocator, order batches:
//                        an idle instance's RSS (perf/RESULTS.md)   ~2 MiB
//                                                          total  ~24 MiB
//
// `MEMORY_WORST_CASE_BYTES` adds up the first four; it is checked against
// the limit less an allowance for the rest.

/// The order JSON rendered with the longest customer id fully escaped
/// (`\u00XX`, 6 bytes a character) and every number at its widest.
pub const ORDER_JSON_BYTES_MAX: usize = 6 * CUSTOMER_ID_CHARS_MAX + 512;
/// A refusal: a head and `{"error":"..."}` with a short message.
pub const HTTP_ERROR_ANSWER_BYTES_MAX: usize = HTTP_RESPONSE_HEAD_BYTES_MAX + 256;
/// A connection's own state: the `Client` struct, its slot and the mio
/// registration (a unit test checks the struct's size).
pub const CLIENT_BYTES_MAX: usize = 512;
/// What the sum above may use: 30 MB less 4 MiB for everything else.
pub const MEMORY_FOR_BUFFERS_BYTES: usize = 30 * 1000 * 1000 - 4 * 1024 * 1024;
pub const MEMORY_WORST_CASE_BYTES: usize = HTTP_CONNECTIONS_MAX
    * (CLIENT_BYTES_MAX
        + HTTP_CONNECTION_BYTES_FREE
        + HTTP_UNSAFE_ANSWER_BYTES_MAX
        + HTTP_ERROR_ANSWER_BYTES_MAX)
    + HTTP_SHARED_BUFFER_BYTES
    + PG_POOL_SIZE_DEFAULT * PG_READ_BUF_BYTES_MAX
    + RATE_LIMIT_TABLE_BYTES;

// ---- How the limits relate (checked at compile time) ------------------------

const _: () = {
    assert!(MEMORY_WORST_CASE_BYTES <= MEMORY_FOR_BUFFERS_BYTES);
    assert!(HTTP_INPUT_BYTES_MAX >= HTTP_HEAD_BYTES_MAX + HTTP_CHUNKED_BODY_BYTES_MAX);
    assert!(HTTP_CHUNKED_BODY_BYTES_MAX >= HTTP_BODY_BYTES_MAX);
    assert!(HTTP_BUFFER_BYTES_KEPT <= HTTP_CONNECTION_BYTES_FREE);
    assert!(HTTP_UNSAFE_ANSWER_BYTES_MAX >= HTTP_RESPONSE_HEAD_BYTES_MAX + ORDER_JSON_BYTES_MAX);
    assert!(READ_CHUNK_BYTES > 0 && FLUSH_PASSES_PER_TURN_MAX > 0);
    assert!(HTTP_PARTIAL_REQUEST_TIMEOUT.as_nanos() <= HTTP_IDLE_TIMEOUT.as_nanos());
    assert!(SHUTDOWN_POLL_INTERVAL.as_nanos() < SHUTDOWN_DRAIN_TIMEOUT.as_nanos());
    // An order body with its strings fully \u-escaped (at most 12 bytes a
    // character, as a surrogate pair) and every field named stays below the
    // body limit: no valid order is refused as too large.
    assert!(12 * (CUSTOMER_ID_CHARS_MAX + 36) + 256 <= HTTP_BODY_BYTES_MAX);
    assert!(1 <= QUANTITY_MIN && QUANTITY_MIN <= QUANTITY_MAX && QUANTITY_MAX <= i32::MAX as i64);
    assert!(ORDERS_LISTED_MAX > 0);
    assert!(PG_ORDER_BATCH_MAX >= 1 && ORDER_BATCHES_MAX >= 2);
    assert!(ORDER_BATCHES_IN_FLIGHT_MAX >= 1 && ORDER_BATCHES_IN_FLIGHT_MAX < ORDER_BATCHES_MAX);
    assert!(
        ORDER_BATCHES_IN_FLIGHT_DEFAULT >= 1
            && ORDER_BATCHES_IN_FLIGHT_DEFAULT <= ORDER_BATCHES_IN_FLIGHT_MAX
    );
    // Batch tags carry the position of an order in its batch in 16 bits.
    assert!(PG_ORDER_BATCH_MAX < 1 << 16 && ORDER_BATCHES_MAX < 1 << 16);
    assert!(PG_POOL_SIZE_DEFAULT >= 1 && PG_POOL_SIZE_DEFAULT <= PG_POOL_SIZE_MAX);
    assert!(PG_PIPELINE_DEPTH_MAX >= 1);
    assert!(PG_READ_BUF_BYTES_INITIAL <= PG_READ_BUF_BYTES_MAX);
    // A whole answer of messages up to the message limit fits the buffer.
    assert!(PG_READ_BUF_BYTES_MAX >= 2 * PG_MESSAGE_BYTES_MAX);
    assert!(PG_RECONNECT_DELAY_MIN.as_nanos() <= PG_RECONNECT_DELAY_MAX.as_nanos());
    assert!(PG_REQUEST_TIMEOUT.as_nanos() > PG_CONNECT_TIMEOUT.as_nanos());
    // The server's deadlines come first, the client's cancel next, closing
    // the connection last.
    assert!(PG_LOCK_TIMEOUT.as_nanos() <= PG_STATEMENT_TIMEOUT.as_nanos());
    assert!(PG_STATEMENT_TIMEOUT.as_nanos() < PG_CANCEL_AFTER.as_nanos());
    assert!(PG_CANCEL_AFTER.as_nanos() < PG_REQUEST_TIMEOUT.as_nanos());
    assert!(PG_RESOLVE_AGAIN_AFTER_FAILURES >= 1 && PG_RECONNECT_LOG_EVERY >= 1);
    assert!(RATE_LIMIT_CUSTOMERS_MAX.is_power_of_two());
    assert!(RATE_LIMIT_PROBE_SLOTS >= 1 && RATE_LIMIT_PROBE_SLOTS <= RATE_LIMIT_CUSTOMERS_MAX);
    assert!(0 < RATE_PER_SECOND_MILLIONTHS_MIN);
    assert!(RATE_PER_SECOND_MILLIONTHS_MIN <= RATE_PER_SECOND_MILLIONTHS_MAX);
    assert!(RATE_BURST_MAX >= 1);
    assert!(10u64.pow(RATE_DECIMALS_MAX as u32) == MILLION);
    // A full bucket's worth of time (burst x the slowest refill) counts in
    // nanoseconds without overflow, and a Retry-After in seconds fits a u32.
    assert!(
        (RATE_BURST_MAX as u64) * (NANOS_PER_SECOND * MILLION / RATE_PER_SECOND_MILLIONTHS_MIN)
            < 1 << 62
    );
    assert!((RATE_BURST_MAX as u64) * MILLION / RATE_PER_SECOND_MILLIONTHS_MIN < u32::MAX as u64);
};

// ---- Runtime settings -------------------------------------------------------

/// What the environment configures: `PORT`, `DATABASE_URL`, `DB_POOL_SIZE`,
/// `ORDER_BATCHES_IN_FLIGHT`, `ORDER_RATE_PER_CUSTOMER` with `ORDER_BURST`,
/// `ADMIN_TOKEN`. Its `Debug` leaves out the database password and the token.
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    pub port: u16,
    pub database_url: String,
    pub pool_size: usize,
    pub order_batches_in_flight: usize,
    /// Unset: no administration (its paths are 404).
    pub admin_token: Option<String>,
    /// `None`: no per-customer limit (the default).
    pub customer_rate_limit: Option<RateLimit>,
    /// `HOLD_TTL_SECS`: how long a hold lives.
    pub hold_ttl_secs: u32,
    /// `HOLD_SWEEP_INTERVAL_MS`: how often this instance expires due holds.
    pub hold_sweep_interval: Duration,
    /// `WEBHOOK_SECRET`; unset, no payment webhook (its path is 404).
    pub webhook_secret: Option<String>,
    /// `REQUIRE_SESSION`: orders, holds, cancels and releases (and a
    /// customer's order list) need a session.
    pub require_session: bool,
    /// `SESSION_TTL_SECS`: how long a session lives after log-in.
    pub session_ttl_secs: u32,
    /// `PASSWORD_CHECKS_PER_SEC`, `PASSWORD_CHECKS_BURST`: this instance's
    /// sign-ups and log-ins (each a bcrypt hash in the database).
    pub password_checks_per_sec: u32,
    pub password_checks_burst: u32,
}

const NANOS_PER_SECOND: u64 = 1_000_000_000;
const MILLION: u64 = 1_000_000;

/// The per-customer limit on orders (and every other customer-keyed
/// write): a token bucket of `burst` tokens per customer, refilled at
/// `ORDER_RATE_PER_CUSTOMER` tokens a second; each order takes one.
///
/// Set by `ORDER_RATE_PER_CUSTOMER` (a decimal, 0.001 to 1000, at most six
/// decimals: `2`, `0.5`) and `ORDER_BURST` (an integer, 1 to 1000)
/// together. Neither set: no limit. Only one set is refused rather than
/// completed with a default: the burst is the number of orders a customer
/// may place at once, a choice as visible to buyers as the rate, so the
/// operator makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Tokens a second, in millionths.
    pub per_second_millionths: u64,
    pub burst: u32,
}

impl RateLimit {
    /// Time to earn one token back (never zero: the rate is bounded).
    pub fn token_interval(&self) -> Duration {
        Duration::from_nanos(NANOS_PER_SECOND * MILLION / self.per_second_millionths)
    }

    /// Tokens a second, for the start event.
    pub fn per_second(&self) -> f64 {
        self.per_second_millionths as f64 / MILLION as f64
    }

    fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Option<RateLimit>, String> {
        const RATE: &str = "ORDER_RATE_PER_CUSTOMER";
        const BURST: &str = "ORDER_BURST";
        let (rate, burst) = match (get(RATE), get(BURST)) {
            (None, None) => return Ok(None),
            (Some(rate), Some(burst)) => (rate, burst),
            (Some(_), None) => return Err(format!("{RATE} is set without {BURST}: set both")),
            (None, Some(_)) => return Err(format!("{BURST} is set without {RATE}: set both")),
        };
        let per_second_millionths = parse_millionths(&rate)
            .filter(|m| {
                (RATE_PER_SECOND_MILLIONTHS_MIN..=RATE_PER_SECOND_MILLIONTHS_MAX).contains(m)
            })
            .ok_or(format!(
                "{RATE}={rate:?} must be a decimal number from 0.001 to 1000 \
                 (orders a second per customer, at most {RATE_DECIMALS_MAX} decimals)"
            ))?;
        let burst = burst
            .parse()
            .ok()
            .filter(|b| (1..=RATE_BURST_MAX).contains(b))
            .ok_or(format!("{BURST}={burst:?} must be 1..={RATE_BURST_MAX}"))?;
        Ok(Some(RateLimit {
            per_second_millionths,
            burst,
        }))
    }
}

/// `digits[.digits]` with at most `RATE_DECIMALS_MAX` decimals, in
/// millionths; no sign, exponent, spaces or words (`inf`, `NaN`), which a
/// float parser would take.
fn parse_millionths(text: &str) -> Option<u64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let is_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !is_digits(whole) || (text.contains('.') && !is_digits(fraction)) {
        return None;
    }
    if fraction.len() > RATE_DECIMALS_MAX {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let padded = fraction.parse::<u64>().unwrap_or(0)
        * 10u64.pow((RATE_DECIMALS_MAX - fraction.len()) as u32);
    whole.checked_mul(MILLION)?.checked_add(padded)
}

/// An `ADMIN_TOKEN` shorter than this is refused at start: it guards every
/// product and its stock.
pub const ADMIN_TOKEN_BYTES_MIN: usize = 16;

/// Accounts (platform.md §4): an email's and a password's length in
/// characters.
pub const EMAIL_CHARS_MAX: usize = 254;
pub const PASSWORD_CHARS_MIN: usize = 8;
pub const PASSWORD_CHARS_MAX: usize = 128;
/// The longest `Set-Cookie` value the API sends (a session's: the token
/// and its attributes, ~110 bytes).
pub const COOKIE_BYTES_MAX: usize = 128;
/// `SESSION_TTL_SECS`: a session's lifetime, 12 hours by default (a buyer
/// logs in before the sale and stays logged in through it), 30 days at most.
pub const SESSION_TTL_SECS_DEFAULT: u32 = 12 * 60 * 60;
pub const SESSION_TTL_SECS_MIN: u32 = 60;
pub const SESSION_TTL_SECS_MAX: u32 = 30 * 24 * 60 * 60;
/// `PASSWORD_CHECKS_PER_SEC` and `PASSWORD_CHECKS_BURST`: sign-ups and
/// log-ins one instance sends the database, one at a time. Each is a
/// bcrypt hash of cost 10, ~60-80 ms of one CPU in the database; at the
/// defaults the two instances take at most ~0.3 of the database's 0.7 CPU
/// in a log-in storm, and the orders keep the rest (perf/RESULTS.md,
/// "Accounts: a log-in storm during the sale").
pub const PASSWORD_CHECKS_PER_SEC_DEFAULT: u32 = 2;
pub const PASSWORD_CHECKS_PER_SEC_MAX: u32 = 100;
pub const PASSWORD_CHECKS_BURST_DEFAULT: u32 = 4;
pub const PASSWORD_CHECKS_BURST_MAX: u32 = 100;

/// `HOLD_TTL_SECS`: a hold's lifetime (platform.md §2), at most a day.
pub const HOLD_TTL_SECS_DEFAULT: u32 = 120;
pub const HOLD_TTL_SECS_MAX: u32 = 24 * 60 * 60;
/// `HOLD_SWEEP_INTERVAL_MS`: how often each instance expires due holds;
/// a due hold's units are back on the shelf within about this long (a
/// request that meets one expires it at once).
pub const HOLD_SWEEP_INTERVAL_MS_DEFAULT: u64 = 1000;
pub const HOLD_SWEEP_INTERVAL_MS_MIN: u64 = 50;
pub const HOLD_SWEEP_INTERVAL_MS_MAX: u64 = 60_000;
/// Holds one sweep expires at most: one short transaction (about 10 ms of
/// database CPU), whatever the backlog.
pub const HOLD_SWEEP_BATCH_MAX: i32 = 200;
/// After a full sweep (a backlog), the next goes this long after it was
/// sent (or after the interval, if shorter): a backlog drains at up to
/// 2,000 holds a second per instance, and never takes more than about a
/// tenth of the database's CPU from the requests (perf/RESULTS.md, "Hold
/// sweeps under load").
pub const HOLD_SWEEP_BACKLOG_PAUSE: Duration = Duration::from_millis(100);
/// `WEBHOOK_SECRET`: the payment provider's signing key, as it is given
/// (printable ASCII, as providers issue them).
pub const WEBHOOK_SECRET_BYTES_MIN: usize = 16;
pub const WEBHOOK_SECRET_BYTES_MAX: usize = 256;

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("port", &self.port)
            .field(
                "database_url",
                &crate::pg::url::redact_url(&self.database_url),
            )
            .field("pool_size", &self.pool_size)
            .field("order_batches_in_flight", &self.order_batches_in_flight)
            .field("admin", &self.admin_token.is_some())
            .field("customer_rate_limit", &self.customer_rate_limit)
            .field("hold_ttl_secs", &self.hold_ttl_secs)
            .field("hold_sweep_interval", &self.hold_sweep_interval)
            .field("webhooks", &self.webhook_secret.is_some())
            .field("require_session", &self.require_session)
            .field("session_ttl_secs", &self.session_ttl_secs)
            .field("password_checks_per_sec", &self.password_checks_per_sec)
            .field("password_checks_burst", &self.password_checks_burst)
            .finish()
    }
}

pub const PORT_DEFAULT: u16 = 8080;
pub const DATABASE_URL_DEFAULT: &str = "postgres://postgres:postgres@db:5432/flashsale";

impl Settings {
    pub fn from_env() -> Result<Settings, String> {
        Settings::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let port = match get("PORT") {
            None => PORT_DEFAULT,
            Some(text) => text
                .parse()
                .ok()
                .filter(|p| *p != 0)
                .ok_or(format!("PORT={text:?} is not a port"))?,
        };
        let count = |name: &str, default: usize, max: usize| match get(name) {
            None => Ok(default),
            Some(text) => text
                .parse()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or(format!("{name}={text:?} must be 1..={max}")),
        };
        let pool_size = count("DB_POOL_SIZE", PG_POOL_SIZE_DEFAULT, PG_POOL_SIZE_MAX)?;
        let order_batches_in_flight = count(
            "ORDER_BATCHES_IN_FLIGHT",
            ORDER_BATCHES_IN_FLIGHT_DEFAULT,
            ORDER_BATCHES_IN_FLIGHT_MAX,
        )?;
        let customer_rate_limit = RateLimit::from_lookup(&get)?;
        let database_url = get("DATABASE_URL").unwrap_or_else(|| DATABASE_URL_DEFAULT.to_string());
        let admin_token = match get("ADMIN_TOKEN") {
            // Empty is unset: what `ADMIN_TOKEN: ${ADMIN_TOKEN:-}` in a
            // compose file gives when the operator sets nothing.
            None => None,
            Some(token) if token.is_empty() => None,
            Some(token)
                if token.len() >= ADMIN_TOKEN_BYTES_MIN
                    && token.bytes().all(|b| b.is_ascii_graphic()) =>
            {
                Some(token)
            }
            Some(_) => {
                return Err(format!(
                    "ADMIN_TOKEN must be at least {ADMIN_TOKEN_BYTES_MIN} printable ASCII \
                     characters without spaces (unset it to turn the administration off)"
                ))
            }
        };
        let in_range = |name: &str, default: u64, min: u64, max: u64| match get(name) {
            None => Ok(default),
            Some(text) => text
                .parse()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or(format!(
                    "{name}={text:?} must be an integer from {min} to {max}"
                )),
        };
        let hold_ttl_secs = in_range(
            "HOLD_TTL_SECS",
            HOLD_TTL_SECS_DEFAULT.into(),
            1,
            HOLD_TTL_SECS_MAX.into(),
        )? as u32;
        let hold_sweep_interval = Duration::from_millis(in_range(
            "HOLD_SWEEP_INTERVAL_MS",
            HOLD_SWEEP_INTERVAL_MS_DEFAULT,
            HOLD_SWEEP_INTERVAL_MS_MIN,
            HOLD_SWEEP_INTERVAL_MS_MAX,
        )?);
        let webhook_secret = match get("WEBHOOK_SECRET") {
            None => None,
            Some(secret) if secret.is_empty() => None,
            Some(secret)
                if (WEBHOOK_SECRET_BYTES_MIN..=WEBHOOK_SECRET_BYTES_MAX)
                    .contains(&secret.len())
                    && secret.bytes().all(|b| b.is_ascii_graphic()) =>
            {
                Some(secret)
            }
            Some(_) => {
                return Err(format!(
                    "WEBHOOK_SECRET must be {WEBHOOK_SECRET_BYTES_MIN} to \
                     {WEBHOOK_SECRET_BYTES_MAX} printable ASCII characters without spaces \
                     (unset it to turn the payment webhook off)"
                ))
            }
        };
        let require_session = match get("REQUIRE_SESSION").as_deref() {
            None | Some("" | "false" | "0") => false,
            Some("true" | "1") => true,
            Some(other) => {
                return Err(format!(
                    "REQUIRE_SESSION={other:?} must be true or false (1 or 0)"
                ))
            }
        };
        let session_ttl_secs = in_range(
            "SESSION_TTL_SECS",
            SESSION_TTL_SECS_DEFAULT.into(),
            SESSION_TTL_SECS_MIN.into(),
            SESSION_TTL_SECS_MAX.into(),
        )? as u32;
        let password_checks_per_sec = in_range(
            "PASSWORD_CHECKS_PER_SEC",
            PASSWORD_CHECKS_PER_SEC_DEFAULT.into(),
            1,
            PASSWORD_CHECKS_PER_SEC_MAX.into(),
        )? as u32;
        let password_checks_burst = in_range(
            "PASSWORD_CHECKS_BURST",
            PASSWORD_CHECKS_BURST_DEFAULT.into(),
            1,
            PASSWORD_CHECKS_BURST_MAX.into(),
        )? as u32;
        Ok(Settings {
            port,
            database_url,
            pool_size,
            order_batches_in_flight,
            admin_token,
            customer_rate_limit,
            hold_ttl_secs,
            hold_sweep_interval,
            webhook_secret,
            require_session,
            session_ttl_secs,
            password_checks_per_sec,
            password_checks_burst,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, String> {
        Settings::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn reads_the_environment_with_defaults() {
        let defaults = settings(&[]).unwrap();
        assert_eq!(
            (defaults.port, defaults.pool_size),
            (PORT_DEFAULT, PG_POOL_SIZE_DEFAULT)
        );
        let set = settings(&[
            ("PORT", "9000"),
            ("DB_POOL_SIZE", "2"),
            ("DATABASE_URL", "postgres://x@y/z"),
        ])
        .unwrap();
        assert_eq!(
            set,
            Settings {
                port: 9000,
                database_url: "postgres://x@y/z".into(),
                pool_size: 2,
                order_batches_in_flight: ORDER_BATCHES_IN_FLIGHT_DEFAULT,
                admin_token: None,
                customer_rate_limit: None,
                hold_ttl_secs: HOLD_TTL_SECS_DEFAULT,
                hold_sweep_interval: Duration::from_millis(HOLD_SWEEP_INTERVAL_MS_DEFAULT),
                webhook_secret: None,
                require_session: false,
                session_ttl_secs: SESSION_TTL_SECS_DEFAULT,
                password_checks_per_sec: PASSWORD_CHECKS_PER_SEC_DEFAULT,
                password_checks_burst: PASSWORD_CHECKS_BURST_DEFAULT,
            }
        );
        let admin = settings(&[("ADMIN_TOKEN", "0123456789abcdef")]).unwrap();
        assert_eq!(admin.admin_token.as_deref(), Some("0123456789abcdef"));
        assert!(!format!("{admin:?}").contains("0123456789abcdef"));
        assert_eq!(settings(&[("ADMIN_TOKEN", "")]).unwrap().admin_token, None);
        for short_or_spaced in ["0123456789abcde", "0123456789 abcdef", "é123456789abcdef"] {
            let refused = settings(&[("ADMIN_TOKEN", short_or_spaced)]).unwrap_err();
            assert!(refused.contains("ADMIN_TOKEN"), "{refused}");
        }
    }

    #[test]
    fn holds_and_webhook_settings_are_bounded() {
        let set = settings(&[
            ("HOLD_TTL_SECS", "2"),
            ("HOLD_SWEEP_INTERVAL_MS", "100"),
            ("WEBHOOK_SECRET", "whsec_0123456789ab"),
        ])
        .unwrap();
        assert_eq!(set.hold_ttl_secs, 2);
        assert_eq!(set.hold_sweep_interval, Duration::from_millis(100));
        assert_eq!(set.webhook_secret.as_deref(), Some("whsec_0123456789ab"));
        assert!(!format!("{set:?}").contains("whsec_"));
        assert_eq!(
            settings(&[("WEBHOOK_SECRET", "")]).unwrap().webhook_secret,
            None
        );
        let refused = [
            ("HOLD_TTL_SECS", "0"),
            ("HOLD_TTL_SECS", "86401"),
            ("HOLD_TTL_SECS", "1.5"),
            ("HOLD_SWEEP_INTERVAL_MS", "49"),
            ("HOLD_SWEEP_INTERVAL_MS", "60001"),
            ("WEBHOOK_SECRET", "0123456789abcde"),
            ("WEBHOOK_SECRET", "0123456789 abcdef"),
        ];
        for (name, value) in refused {
            let error = settings(&[(name, value)]).unwrap_err();
            assert!(error.contains(name), "{name}={value}: {error}");
        }
        assert!(settings(&[("WEBHOOK_SECRET", &"x".repeat(257))]).is_err());
    }

    #[test]
    fn session_settings_are_bounded() {
        let set = settings(&[
            ("REQUIRE_SESSION", "true"),
            ("SESSION_TTL_SECS", "60"),
            ("PASSWORD_CHECKS_PER_SEC", "5"),
            ("PASSWORD_CHECKS_BURST", "1"),
        ])
        .unwrap();
        assert!(set.require_session);
        assert_eq!(
            (
                set.session_ttl_secs,
                set.password_checks_per_sec,
                set.password_checks_burst
            ),
            (60, 5, 1)
        );
        assert!(
            !settings(&[("REQUIRE_SESSION", "0")])
                .unwrap()
                .require_session
        );
        let refused = [
            ("REQUIRE_SESSION", "yes"),
            ("SESSION_TTL_SECS", "59"),
            ("SESSION_TTL_SECS", "2592001"),
            ("PASSWORD_CHECKS_PER_SEC", "0"),
            ("PASSWORD_CHECKS_BURST", "101"),
        ];
        for (name, value) in refused {
            let error = settings(&[(name, value)]).unwrap_err();
            assert!(error.contains(name), "{name}={value}: {error}");
        }
    }

    #[test]
    fn the_rate_limit_takes_both_settings_or_neither() {
        let limit = |rate: &str, burst: &str| {
            settings(&[("ORDER_RATE_PER_CUSTOMER", rate), ("ORDER_BURST", burst)])
                .map(|s| s.customer_rate_limit.unwrap())
        };
        assert_eq!(
            limit("2", "3"),
            Ok(RateLimit {
                per_second_millionths: 2_000_000,
                burst: 3
            })
        );
        let half = limit("0.5", "1").unwrap();
        assert_eq!(half.token_interval(), Duration::from_secs(2));
        assert_eq!(half.per_second(), 0.5);
        assert_eq!(
            limit("3", "1").unwrap().token_interval().as_nanos(),
            333_333_333
        );
        assert_eq!(limit("0.001", "1000").unwrap().burst, 1000);
        assert_eq!(settings(&[]).unwrap().customer_rate_limit, None);
        for only_one in [[("ORDER_RATE_PER_CUSTOMER", "1")], [("ORDER_BURST", "3")]] {
            let refused = settings(&only_one).unwrap_err();
            assert!(refused.contains("set both"), "{refused}");
        }
    }

    #[test]
    fn a_rate_is_a_plain_decimal() {
        for (text, millionths) in [
            ("2", Some(2_000_000)),
            ("0.5", Some(500_000)),
            ("007.25", Some(7_250_000)),
            ("1000.000000", Some(1_000_000_000)),
            ("0.000001", Some(1)),
            ("0.0000001", None),
            ("-1", None),
            ("+1", None),
            ("1e3", None),
            ("inf", None),
            ("NaN", None),
            (".5", None),
            ("5.", None),
            (" 1", None),
            ("1.2.3", None),
            ("", None),
            ("99999999999999999999", None),
        ] {
            assert_eq!(parse_millionths(text), millionths, "{text:?}");
        }
    }

    #[test]
    fn a_bad_rate_limit_names_its_variable() {
        for (rate, burst, named) in [
            ("0", "3", "ORDER_RATE_PER_CUSTOMER"),
            ("0.0009", "3", "ORDER_RATE_PER_CUSTOMER"),
            ("1000.000001", "3", "ORDER_RATE_PER_CUSTOMER"),
            ("-1", "3", "ORDER_RATE_PER_CUSTOMER"),
            ("fast", "3", "ORDER_RATE_PER_CUSTOMER"),
            ("1", "0", "ORDER_BURST"),
            ("1", "-1", "ORDER_BURST"),
            ("1", "1.5", "ORDER_BURST"),
            ("1", "1001", "ORDER_BURST"),
            ("1", "many", "ORDER_BURST"),
        ] {
            let vars = [("ORDER_RATE_PER_CUSTOMER", rate), ("ORDER_BURST", burst)];
            let refused = settings(&vars).unwrap_err();
            assert!(refused.starts_with(named), "{vars:?}: {refused}");
        }
    }

    #[test]
    fn debug_output_leaves_out_the_password() {
        let set = settings(&[("DATABASE_URL", "postgres://app:s3cret@db:5432/flashsale")]).unwrap();
        let shown = format!("{set:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("postgres://app:***@db:5432/flashsale"),
            "{shown}"
        );
        let connect = crate::pg::ConnectConfig::from_url(&set.database_url).unwrap();
        let shown = format!("{connect:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("***"),
            "{shown}"
        );
        for (url, redacted) in [
            ("postgres://app@db/x", "postgres://app@db/x"),
            ("postgres://app:p@ss:word@db/x", "postgres://app:***@db/x"),
            (
                "postgres://app:pw@/x?host=/run/pg",
                "postgres://app:***@/x?host=/run/pg",
            ),
            ("not a url", "not a url"),
        ] {
            assert_eq!(crate::pg::url::redact_url(url), redacted);
        }
    }

    /// The schema repeats two bounds of this file in CHECK constraints;
    /// they must say the same.
    #[test]
    fn the_schema_checks_the_same_bounds() {
        let schema = include_str!("../sql/init.sql");
        let customer = format!("char_length(customer_id) BETWEEN 1 AND {CUSTOMER_ID_CHARS_MAX}");
        let quantity = format!("quantity BETWEEN {QUANTITY_MIN} AND {QUANTITY_MAX}");
        assert!(
            schema.contains(&customer),
            "sql/init.sql lacks {customer:?}"
        );
        assert!(
            schema.contains(&quantity),
            "sql/init.sql lacks {quantity:?}"
        );
    }
}
