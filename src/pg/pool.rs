//! A fixed set of pipelined connections driven by the caller's event loop.
//!
//! A request goes to the ready connection with the fewest requests in flight.
//! When every pipeline is at `pipeline_depth_max`, requests wait in one
//! bounded FIFO (already encoded, so moving one to a connection is a copy of
//! its bytes); when that is full too, `submit` refuses at once. Nothing is
//! sent during `submit`: everything queued in one loop turn leaves in one
//! write per connection when the loop calls `flush`.
//!
//! A connection that fails (socket error, FATAL error, malformed data, a
//! request older than `request_timeout`) is closed; its unanswered requests
//! get `Reply::Unavailable` and it reconnects after a capped exponential
//! backoff with jitter. The pool never gives up and never blocks the loop,
//! with one exception documented on `resolve`.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use mio::event::Event;
use mio::{Registry, Token};

use crate::config;
use crate::pg::connection::{encode_request, Connection, Context, Target};
use crate::pg::reply::{Refused, Reply};
use crate::pg::types::{Param, Statement, StatementId};
use crate::pg::url::{ConnectConfig, Endpoint};

/// Sizes and timings of a pool; `Default` takes them from `crate::config`.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub size: usize,
    pub pipeline_depth_max: usize,
    pub wait_queue_max: usize,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub reconnect_delay_min: Duration,
    pub reconnect_delay_max: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            size: config::PG_POOL_SIZE_DEFAULT,
            pipeline_depth_max: config::PG_PIPELINE_DEPTH_MAX,
            wait_queue_max: config::PG_WAIT_QUEUE_MAX,
            connect_timeout: config::PG_CONNECT_TIMEOUT,
            request_timeout: config::PG_REQUEST_TIMEOUT,
            reconnect_delay_min: config::PG_RECONNECT_DELAY_MIN,
            reconnect_delay_max: config::PG_RECONNECT_DELAY_MAX,
        }
    }
}

/// Connection slot: a live connection, or the time of the next attempt.
struct Slot {
    connection: Option<Connection>,
    retry_at: Instant,
    consecutive_failures: u32,
}

/// A request waiting for a pipeline slot; its encoded bytes are the next
/// `len` bytes of `Pool::waiting_bytes`.
struct Waiting {
    tag: u64,
    statement: StatementId,
    len: usize,
}

/// Counters for health checks, logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    pub ready_connections: usize,
    pub in_flight: usize,
    pub waiting: usize,
    pub reconnects: u64,
}

pub struct Pool {
    connect: ConnectConfig,
    statements: &'static [Statement],
    config: PoolConfig,
    token_base: usize,
    slots: Vec<Slot>,
    waiting: VecDeque<Waiting>,
    waiting_bytes: BytesMut,
    resolved: Option<SocketAddr>,
    last_error: Option<String>,
    reconnects: u64,
}

impl Pool {
    /// A pool of `config.size` connections using mio tokens
    /// `token_base .. token_base + config.size`. Nothing connects before
    /// `start` (or the first `tick`).
    pub fn new(
        connect: ConnectConfig,
        statements: &'static [Statement],
        config: PoolConfig,
        token_base: usize,
        now: Instant,
    ) -> Pool {
        assert!(config.size > 0 && config.pipeline_depth_max > 0);
        let slots = (0..config.size)
            .map(|_| Slot {
                connection: None,
                retry_at: now,
                consecutive_failures: 0,
            })
            .collect();
        Pool {
            connect,
            statements,
            token_base,
            slots,
            waiting: VecDeque::with_capacity(config.wait_queue_max),
            waiting_bytes: BytesMut::with_capacity(config::PG_WAIT_QUEUE_BYTES_INITIAL),
            resolved: None,
            last_error: None,
            reconnects: 0,
            config,
        }
    }

    pub fn owns(&self, token: Token) -> bool {
        (self.token_base..self.token_base + self.slots.len()).contains(&token.0)
    }

    /// Begins connecting every slot.
    pub fn start(&mut self, registry: &Registry, now: Instant) {
        self.tick(registry, now, &mut |_, _| {});
    }

    /// Whether at least one connection is ready for requests.
    pub fn is_healthy(&self) -> bool {
        self.slots
            .iter()
            .any(|s| s.connection.as_ref().is_some_and(Connection::is_ready))
    }

    /// The last reason a connection failed or could not be opened.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    pub fn stats(&self) -> PoolStats {
        let live = self.slots.iter().filter_map(|s| s.connection.as_ref());
        PoolStats {
            ready_connections: live.clone().filter(|c| c.is_ready()).count(),
            in_flight: live.map(Connection::in_flight).sum(),
            waiting: self.waiting.len(),
            reconnects: self.reconnects,
        }
    }

    /// Queues statement `statement` with `params`; its reply arrives later
    /// through a callback, carrying `tag`. Refuses at once when the database
    /// is down or every pipeline and the wait queue are full.
    pub fn submit(
        &mut self,
        tag: u64,
        statement: StatementId,
        params: &[Param<'_>],
        now: Instant,
    ) -> Result<(), Refused> {
        let spec = &self.statements[statement];
        assert_eq!(
            params.len(),
            spec.param_types.len(),
            "parameter count of {}",
            spec.name
        );
        debug_assert!(
            params.iter().zip(spec.param_types).all(|(p, &t)| p.fits(t)),
            "parameter types of {}",
            spec.name
        );
        let Some(index) = self.least_loaded_ready() else {
            return Err(Refused::Unavailable);
        };
        let connection = self.slots[index]
            .connection
            .as_mut()
            .expect("ready slot has a connection");
        if self.waiting.is_empty() && connection.in_flight() < self.config.pipeline_depth_max {
            connection.push_request(tag, statement, spec, params, now);
            return Ok(());
        }
        if self.waiting.len() >= self.config.wait_queue_max {
            return Err(Refused::Overloaded);
        }
        let before = self.waiting_bytes.len();
        encode_request(&mut self.waiting_bytes, spec, params);
        let len = self.waiting_bytes.len() - before;
        self.waiting.push_back(Waiting {
            tag,
            statement,
            len,
        });
        Ok(())
    }

    /// Handles a readiness event for one of the pool's tokens.
    pub fn handle_event(
        &mut self,
        registry: &Registry,
        event: &Event,
        now: Instant,
        on_reply: &mut dyn FnMut(u64, Reply<'_>),
    ) {
        let index = event.token().0 - self.token_base;
        let readable = event.is_readable() || event.is_read_closed() || event.is_error();
        let Some(connection) = self.slots[index].connection.as_mut() else {
            return; // a stale event for a connection closed earlier this turn
        };
        let was_ready = connection.is_ready();
        let ctx = Context {
            config: &self.connect,
            statements: self.statements,
        };
        let result = connection.on_event(readable, event.is_writable(), &ctx, on_reply);
        if let Err(e) = result {
            self.fail(index, registry, now, &e.0, on_reply);
            return;
        }
        if !was_ready && connection.is_ready() {
            let slot = &mut self.slots[index];
            if slot.consecutive_failures > 0 {
                eprintln!(
                    "pg[{index}]: connected after {} failed attempts",
                    slot.consecutive_failures
                );
            }
            slot.consecutive_failures = 0;
        }
        self.move_waiting(now);
    }

    /// Writes everything queued this turn: one write per connection.
    pub fn flush(
        &mut self,
        registry: &Registry,
        now: Instant,
        on_reply: &mut dyn FnMut(u64, Reply<'_>),
    ) {
        // Waiting requests take any pipeline room first: a connection may have
        // become ready, or drained, with no later event to move them.
        self.move_waiting(now);
        for index in 0..self.slots.len() {
            let Some(connection) = self.slots[index].connection.as_mut() else {
                continue;
            };
            if connection.has_unsent_bytes() {
                if let Err(e) = connection.flush() {
                    self.fail(index, registry, now, &e.0, on_reply);
                }
            }
        }
    }

    /// Timers: reconnects that are due, connects and requests that took too
    /// long. Call it whenever `next_deadline` passes (and harmlessly more).
    /// It writes nothing: requests queued meanwhile leave with `flush`.
    pub fn tick(
        &mut self,
        registry: &Registry,
        now: Instant,
        on_reply: &mut dyn FnMut(u64, Reply<'_>),
    ) {
        for index in 0..self.slots.len() {
            let slot = &self.slots[index];
            match &slot.connection {
                None if slot.retry_at <= now => self.open(index, registry, now, on_reply),
                None => {}
                Some(c) if !c.is_ready() && now >= c.opened_at + self.config.connect_timeout => {
                    self.fail(
                        index,
                        registry,
                        now,
                        "timed out connecting and starting up",
                        on_reply,
                    )
                }
                Some(c)
                    if c.oldest_sent_at()
                        .is_some_and(|t| now >= t + self.config.request_timeout) =>
                {
                    self.fail(
                        index,
                        registry,
                        now,
                        "a request got no answer in time",
                        on_reply,
                    )
                }
                Some(_) => {}
            }
        }
    }

    /// The earliest instant at which `tick` has work to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter_map(|slot| match &slot.connection {
                None => Some(slot.retry_at),
                Some(c) if !c.is_ready() => Some(c.opened_at + self.config.connect_timeout),
                Some(c) => c.oldest_sent_at().map(|t| t + self.config.request_timeout),
            })
            .min()
    }

    /// Ends every session politely (Terminate) and closes the sockets;
    /// requests still pending get `Unavailable`.
    pub fn shutdown(&mut self, registry: &Registry, on_reply: &mut dyn FnMut(u64, Reply<'_>)) {
        for slot in &mut self.slots {
            if let Some(mut connection) = slot.connection.take() {
                connection.terminate();
                let _ = connection.flush();
                connection.deregister(registry);
                for pending in connection.drain_pending() {
                    on_reply(pending.tag, Reply::Unavailable);
                }
            }
        }
        self.fail_waiting(on_reply);
    }

    fn least_loaded_ready(&self) -> Option<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                s.connection
                    .as_ref()
                    .filter(|c| c.is_ready())
                    .map(|c| (c.in_flight(), i))
            })
            .min()
            .map(|(_, i)| i)
    }

    /// Moves waiting requests into pipelines that have room, oldest first.
    fn move_waiting(&mut self, now: Instant) {
        while let Some(front) = self.waiting.front() {
            let Some(index) = self.least_loaded_ready() else {
                return;
            };
            let connection = self.slots[index]
                .connection
                .as_mut()
                .expect("ready slot has a connection");
            if connection.in_flight() >= self.config.pipeline_depth_max {
                return;
            }
            connection.push_encoded(
                front.tag,
                front.statement,
                &self.waiting_bytes[..front.len],
                now,
            );
            self.waiting_bytes.advance(front.len);
            self.waiting.pop_front();
        }
    }

    fn open(
        &mut self,
        index: usize,
        registry: &Registry,
        now: Instant,
        on_reply: &mut dyn FnMut(u64, Reply<'_>),
    ) {
        let token = Token(self.token_base + index);
        let opened = match self.resolve(index) {
            Ok(target) => {
                let target = match &target {
                    ResolvedTarget::Tcp(addr) => Target::Tcp(*addr),
                    ResolvedTarget::Unix => match &self.connect.endpoint {
                        Endpoint::Unix(path) => Target::Unix(path),
                        Endpoint::Tcp { .. } => {
                            unreachable!("resolve returns Unix only for Unix endpoints")
                        }
                    },
                };
                Connection::open(
                    target,
                    &self.connect,
                    registry,
                    token,
                    self.config.pipeline_depth_max,
                    now,
                )
                .map_err(|e| format!("cannot connect: {e}"))
            }
            Err(e) => Err(e),
        };
        match opened {
            Ok(connection) => self.slots[index].connection = Some(connection),
            Err(e) => self.fail(index, registry, now, &e, on_reply),
        }
    }

    /// Resolves the database host. Name resolution (getaddrinfo) is the one
    /// blocking call the pool makes, so its result is cached and repeated
    /// only after the cached address failed several times in a row — when
    /// the database is unreachable anyway. IP literals and Unix sockets never
    /// resolve.
    fn resolve(&mut self, index: usize) -> Result<ResolvedTarget, String> {
        let Endpoint::Tcp { host, port } = &self.connect.endpoint else {
            return Ok(ResolvedTarget::Unix);
        };
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(ResolvedTarget::Tcp(SocketAddr::new(ip, *port)));
        }
        let stale =
            self.slots[index].consecutive_failures >= config::PG_RESOLVE_AGAIN_AFTER_FAILURES;
        if let (Some(addr), false) = (self.resolved, stale) {
            return Ok(ResolvedTarget::Tcp(addr));
        }
        let addr = (host.as_str(), *port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host} has no address"))?;
        self.resolved = Some(addr);
        Ok(ResolvedTarget::Tcp(addr))
    }

    /// Closes slot `index`, fails what was pending on it, schedules the
    /// reconnect. When no connection is left, waiting requests fail too:
    /// callers should hear "unavailable" now, not after a backoff.
    #[cold]
    fn fail(
        &mut self,
        index: usize,
        registry: &Registry,
        now: Instant,
        reason: &str,
        on_reply: &mut dyn FnMut(u64, Reply<'_>),
    ) {
        let slot = &mut self.slots[index];
        let was_ready = slot.connection.as_ref().is_some_and(Connection::is_ready);
        if let Some(mut connection) = slot.connection.take() {
            connection.deregister(registry);
            for pending in connection.drain_pending() {
                on_reply(pending.tag, Reply::Unavailable);
            }
        }
        slot.consecutive_failures = slot.consecutive_failures.saturating_add(1);
        let delay = backoff(
            slot.consecutive_failures,
            self.config.reconnect_delay_min,
            self.config.reconnect_delay_max,
        );
        slot.retry_at = now + delay;
        self.reconnects += 1;
        // One line per lost session, then only every few failed attempts, so
        // an outage does not flood the log.
        if was_ready
            || slot.consecutive_failures == 1
            || slot
                .consecutive_failures
                .is_multiple_of(config::PG_RECONNECT_LOG_EVERY)
        {
            eprintln!(
                "pg[{index}]: {reason}; retrying in {} ms (attempt {})",
                delay.as_millis(),
                slot.consecutive_failures
            );
        }
        self.last_error = Some(reason.to_string());
        if !self.is_healthy() {
            self.fail_waiting(on_reply);
        }
    }

    fn fail_waiting(&mut self, on_reply: &mut dyn FnMut(u64, Reply<'_>)) {
        for waiting in self.waiting.drain(..) {
            on_reply(waiting.tag, Reply::Unavailable);
        }
        self.waiting_bytes.clear();
    }
}

enum ResolvedTarget {
    Tcp(SocketAddr),
    Unix,
}

/// `min * 2^(failures-1)`, capped at `max`, plus up to
/// `PG_RECONNECT_JITTER_FRACTION` of itself so the processes of a
/// deployment do not reconnect in lockstep after a database restart.
fn backoff(failures: u32, min: Duration, max: Duration) -> Duration {
    // The cap only keeps the shift from overflowing: 2^20 × any sane `min`
    // is far beyond `max`.
    const EXPONENT_MAX: u32 = 20;
    let exponent = failures.saturating_sub(1).min(EXPONENT_MAX);
    let base = min.saturating_mul(1 << exponent).min(max);
    let jitter = base.mul_f64(fastrand::f64() * config::PG_RECONNECT_JITTER_FRACTION);
    base + jitter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_then_caps_with_bounded_jitter() {
        let (min, max) = (Duration::from_millis(50), Duration::from_secs(2));
        for _ in 0..200 {
            let first = backoff(1, min, max);
            assert!(first >= min && first <= min.mul_f64(1.5), "{first:?}");
            let third = backoff(3, min, max);
            assert!(
                third >= min * 4 && third <= (min * 4).mul_f64(1.5),
                "{third:?}"
            );
            let late = backoff(1000, min, max);
            assert!(late >= max && late <= max.mul_f64(1.5), "{late:?}");
        }
    }
}
