//! Every limit of the process, in one place, as named constants; and the
//! runtime configuration read from the environment.
//!
//! A limit past which the server would otherwise grow is answered instead:
//! 413/431 for oversized requests, 503 when the database pipelines and the
//! wait queue are full, and a closed socket for idle or slow clients.

use std::time::Duration;

// ---- HTTP ---------------------------------------------------------------

/// Request line plus headers. Larger heads get 431 and the connection closes.
pub const HTTP_HEAD_BYTES_MAX: usize = 8 * 1024;
/// Header fields per request (the `httparse` header array is this long).
pub const HTTP_HEADERS_MAX: usize = 32;
/// Request body. Order bodies are ~150 bytes; larger bodies get 413.
pub const HTTP_BODY_BYTES_MAX: usize = 4 * 1024;
/// Pipelined requests one keep-alive connection may have waiting for answers;
/// past this the connection stops reading until answers go out.
pub const HTTP_PIPELINED_REQUESTS_MAX: usize = 16;
/// Unsent response bytes per connection before it stops reading more requests.
pub const HTTP_WRITE_BUFFER_BYTES_MAX: usize = 64 * 1024;
/// Open client connections per process; further accepts are closed at once.
pub const HTTP_CONNECTIONS_MAX: usize = 4096;
/// An idle keep-alive connection, or one that sent a partial request, is
/// closed after this long without completing a request.
pub const HTTP_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
pub const HTTP_PARTIAL_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

// ---- Postgres -------------------------------------------------------------

/// Connections per process (overridable by `DB_POOL_SIZE`).
pub const PG_POOL_SIZE_DEFAULT: usize = 3;
/// Requests in flight on one connection (sent, not yet answered).
pub const PG_PIPELINE_DEPTH_MAX: usize = 128;
/// Requests waiting for a pipeline slot across the whole pool; past this a
/// new request is refused at once ("overloaded", HTTP 503).
pub const PG_WAIT_QUEUE_MAX: usize = 1024;
/// One backend message; anything larger is treated as corrupt data.
pub const PG_MESSAGE_BYTES_MAX: usize = 1024 * 1024;
/// Connect + startup + authentication + statement preparation.
pub const PG_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The oldest in-flight request on a connection; past it the connection is
/// presumed dead, closed, and everything on it fails "database unavailable".
pub const PG_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Reconnect backoff: first delay, cap, and jitter added on top (a fraction).
pub const PG_RECONNECT_DELAY_MIN: Duration = Duration::from_millis(50);
pub const PG_RECONNECT_DELAY_MAX: Duration = Duration::from_secs(2);
pub const PG_RECONNECT_JITTER_FRACTION: f64 = 0.5;
