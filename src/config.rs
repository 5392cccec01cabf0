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
/// Unparsed bytes kept per connection: one whole request (head, body and
/// chunked framing) fits; pipelined requests beyond it wait in the socket.
pub const HTTP_INPUT_BYTES_MAX: usize = 2 * HTTP_HEAD_BYTES_MAX + HTTP_BODY_BYTES_MAX;
/// Unsent response bytes per connection before it stops reading more
/// requests (a client that sends but does not read).
pub const HTTP_OUTPUT_BYTES_MAX: usize = 64 * 1024;
/// Open client connections per process; further accepts are closed at once.
pub const HTTP_CONNECTIONS_MAX: usize = 4096;
/// An idle keep-alive connection, or one that sent a partial request, is
/// closed after this long without completing a request.
pub const HTTP_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
pub const HTTP_PARTIAL_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// After the last response of a closing connection, unread input is drained
/// this long so the client gets the response instead of a reset.
pub const HTTP_LINGER_TIMEOUT: Duration = Duration::from_secs(2);
/// How often idle, slow and lingering connections are looked for.
pub const HTTP_SWEEP_INTERVAL: Duration = Duration::from_millis(500);

/// After SIGTERM/SIGINT, in-flight requests get this long to be answered.
pub const SHUTDOWN_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

// ---- Postgres -------------------------------------------------------------

/// Connections per process (overridable by `DB_POOL_SIZE`).
pub const PG_POOL_SIZE_DEFAULT: usize = 3;
/// Requests in flight on one connection (sent, not yet answered).
pub const PG_PIPELINE_DEPTH_MAX: usize = 128;
/// Requests waiting for a pipeline slot across the whole pool; past this a
/// new request is refused at once ("overloaded", HTTP 503).
pub const PG_WAIT_QUEUE_MAX: usize = 1024;
/// Orders sent to the database in one `place_orders` call (one transaction).
/// All orders of one loop turn go together up to this many; more start a new
/// batch. Bounds the time a batch holds product row locks.
pub const PG_ORDER_BATCH_MAX: usize = 64;
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

// ---- Runtime settings -------------------------------------------------------

/// What the environment configures: `PORT`, `DATABASE_URL`, `DB_POOL_SIZE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub port: u16,
    pub database_url: String,
    pub pool_size: usize,
}

pub const PORT_DEFAULT: u16 = 8080;
pub const DATABASE_URL_DEFAULT: &str = "postgres://postgres:postgres@db:5432/flashsale";
/// A pool larger than this is a configuration mistake, not a tuning choice:
/// each connection is a Postgres backend process.
pub const PG_POOL_SIZE_MAX: usize = 64;

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
        let pool_size = match get("DB_POOL_SIZE") {
            None => PG_POOL_SIZE_DEFAULT,
            Some(text) => text
                .parse()
                .ok()
                .filter(|n| (1..=PG_POOL_SIZE_MAX).contains(n))
                .ok_or(format!(
                    "DB_POOL_SIZE={text:?} must be 1..={PG_POOL_SIZE_MAX}"
                ))?,
        };
        let database_url = get("DATABASE_URL").unwrap_or_else(|| DATABASE_URL_DEFAULT.to_string());
        Ok(Settings {
            port,
            database_url,
            pool_size,
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
                pool_size: 2
            }
        );
    }

    #[test]
    fn rejects_nonsense() {
        for vars in [
            [("PORT", "0")],
            [("PORT", "http")],
            [("DB_POOL_SIZE", "0")],
            [("DB_POOL_SIZE", "1000")],
        ] {
            assert!(settings(&vars).is_err(), "{vars:?}");
        }
    }
}
