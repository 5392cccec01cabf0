//! A fixed set of pipelined connections driven by the caller's event loop.
//!
//! A request goes to the ready connection with the fewest requests in flight.
//! When every pipeline is at `pipeline_depth_max`, requests wait in one
//! bounded FIFO (already encoded, so moving one to a connection is a copy of
//! its bytes); when that is full too, `submit` refuses at once. Nothing is
//! sent during `submit`: everything queued in one loop turn leaves in one
//! write per connection when the loop calls `flush`.
//!
//! Statements that write or lock rows (`Statement::writes`) never take the
//! last connection that has none in flight, and reads go to such a
//! connection first: a read does not queue behind an order waiting for a
//! row lock. Likewise every statement avoids a connection that carries one
//! that is slow by design (`Statement::slow`, a password hash), while
//! another is ready: nothing pipelines behind tens of milliseconds of
//! hashing unless every connection has some.
//!
//! Deadlines, from first to last: every session starts with
//! `statement_timeout` and `lock_timeout`, so the server itself stops a
//! slow statement and rolls it back (its request gets the error); if the
//! server has still not answered the request it is working on after
//! `cancel_after`, the pool sends a CancelRequest for the session; after
//! `request_timeout` the connection is presumed dead.
//!
//! A connection that fails (socket error, FATAL error, malformed data, no
//! answer within `request_timeout`) is closed; its unanswered requests
//! get `Reply::Unavailable` and it reconnects after a capped exponential
//! backoff with jitter. The pool never gives up and never blocks the loop,
//! with one exception documented on `resolve`.
//!
//! Several hosts (`DATABASE_URL` lists them; `target_session_attrs` says
//! which will do, see `pg::url`): each slot tries them in turn, the next at
//! once after a failure, and backs off only once every host has failed in a
//! row. A server that is not writable when the URL asks for one fails like
//! any other, so after a failover the slots that lost the old primary walk
//! on to the promoted standby by themselves; and as soon as one connection
//! is ready on a host, the slots waiting out a backoff try that host at once.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use mio::event::Event;
use mio::{Registry, Token};

use crate::config;
use crate::log::{self, Value};
use crate::pg::cancel::{CancelProgress, CancelRequest};
use crate::pg::connection::{encode_request, Connection, Context, SessionDeadlines, Target};
use crate::pg::reply::{Refused, Reply};
use crate::pg::types::{Kind, Param, Statement, StatementId};
use crate::pg::url::{ConnectConfig, Endpoint};

/// Sizes and timings of a pool; `Default` takes them from `crate::config`.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub size: usize,
    pub pipeline_depth_max: usize,
    pub wait_queue_max: usize,
    pub connect_timeout: Duration,
    /// Session settings; zero leaves the server's own.
    pub statement_timeout: Duration,
    pub lock_timeout: Duration,
    /// The server has worked this long on a request: cancel it.
    pub cancel_after: Duration,
    /// ... and this long: the connection is presumed dead.
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
            statement_timeout: config::PG_STATEMENT_TIMEOUT,
            lock_timeout: config::PG_LOCK_TIMEOUT,
            cancel_after: config::PG_CANCEL_AFTER,
            request_timeout: config::PG_REQUEST_TIMEOUT,
            reconnect_delay_min: config::PG_RECONNECT_DELAY_MIN,
            reconnect_delay_max: config::PG_RECONNECT_DELAY_MAX,
        }
    }
}

/// Connection slot: a live connection, or the time of the next attempt.
struct Slot {
    connection: Option<Connection>,
    /// Where the connection went, so a CancelRequest reaches the same server.
    address: Option<ResolvedTarget>,
    /// A CancelRequest on its way (mio token: the slot's, plus the pool size).
    cancel: Option<CancelRequest>,
    retry_at: Instant,
    /// Rounds over every host that failed in a row (the backoff's exponent).
    consecutive_failures: u32,
    /// The host (`ConnectConfig::endpoints` index) of the connection, or of
    /// the next attempt.
    host: usize,
    /// Hosts that failed in the current round.
    round_failures: usize,
}

/// A request waiting for a pipeline slot; its encoded bytes are the next
/// `len` bytes of `Pool::waiting_bytes`.
struct Waiting {
    tag: u64,
    statement: StatementId,
    kind: Kind,
    len: usize,
}

/// Counters for health checks, logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    pub ready_connections: usize,
    pub in_flight: usize,
    pub waiting: usize,
    pub reconnects: u64,
    pub cancels_sent: u64,
}

pub struct Pool {
    connect: ConnectConfig,
    statements: &'static [Statement],
    config: PoolConfig,
    token_base: usize,
    slots: Vec<Slot>,
    waiting: VecDeque<Waiting>,
    waiting_bytes: BytesMut,
    /// The address each host resolved to last (see `resolve`).
    resolved: Vec<Option<SocketAddr>>,
    last_error: Option<String>,
    reconnects: u64,
    cancels_sent: u64,
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
        let hosts = connect.endpoints.len();
        assert!(hosts > 0, "ConnectConfig::from_url lists at least one host");
        let slots = (0..config.size)
            .map(|_| Slot {
                connection: None,
                address: None,
                cancel: None,
                retry_at: now,
                consecutive_failures: 0,
                host: 0,
                round_failures: 0,
            })
            .collect();
        Pool {
            connect,
            statements,
            token_base,
            slots,
            waiting: VecDeque::with_capacity(config.wait_queue_max),
            waiting_bytes: BytesMut::with_capacity(config::PG_WAIT_QUEUE_BYTES_INITIAL),
            resolved: vec![None; hosts],
            last_error: None,
            reconnects: 0,
            cancels_sent: 0,
            config,
        }
    }

    /// Whether `token` is one of the pool's: a connection's, or its
    /// CancelRequest's (`token_base .. token_base + 2 × size`).
    pub fn owns(&self, token: Token) -> bool {
        (self.token_base..self.token_base + 2 * self.slots.len()).contains(&token.0)
    }

    /// Begins connecting every slot.
    pub fn start(&mut self, registry: &Registry, now: Instant) {
        self.tick(registry, now, &mut |_, _| {});
    }

    /// Connections the pool keeps (ready or not).
    pub fn size(&self) -> usize {
        self.slots.len()
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
            cancels_sent: self.cancels_sent,
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
        let Some(index) = self.pick(spec.writes) else {
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
            kind: spec.kind(),
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
        if index >= self.slots.len() {
            return self.on_cancel_event(index - self.slots.len(), registry);
        }
        let read_closed = event.is_read_closed() || event.is_error();
        let readable = event.is_readable() || read_closed;
        let Some(connection) = self.slots[index].connection.as_mut() else {
            return; // a stale event for a connection closed earlier this turn
        };
        let was_ready = connection.is_ready();
        let ctx = Context {
            config: &self.connect,
            statements: self.statements,
            now,
        };
        let result =
            connection.on_event(readable, read_closed, event.is_writable(), &ctx, on_reply);
        if let Err(e) = result {
            self.fail(index, registry, now, &e.0, on_reply);
            return;
        }
        if !was_ready && connection.is_ready() {
            self.on_connected(index, now);
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

    /// Timers: reconnects that are due, connects that took too long,
    /// requests to cancel, connections that stopped answering. Call it
    /// whenever `next_deadline` passes (and harmlessly more). It writes
    /// nothing to the sessions: requests queued meanwhile leave with `flush`.
    pub fn tick(
        &mut self,
        registry: &Registry,
        now: Instant,
        on_reply: &mut dyn FnMut(u64, Reply<'_>),
    ) {
        for index in 0..self.slots.len() {
            self.drop_stale_cancel(index, registry, now);
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
                    if c.front_since()
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
                Some(c)
                    if !c.front_cancelled()
                        && c.front_since()
                            .is_some_and(|t| now >= t + self.config.cancel_after) =>
                {
                    self.cancel_front(index, registry, now)
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
                Some(c) => c.front_since().map(|t| {
                    t + if c.front_cancelled() {
                        self.config.request_timeout
                    } else {
                        self.config.cancel_after
                    }
                }),
            })
            .chain(self.slots.iter().filter_map(|slot| {
                let cancel = slot.cancel.as_ref()?;
                Some(cancel.started_at + self.config.connect_timeout)
            }))
            .min()
    }

    /// Ends every session politely (Terminate) and closes the sockets;
    /// requests still pending get `Unavailable`.
    pub fn shutdown(&mut self, registry: &Registry, on_reply: &mut dyn FnMut(u64, Reply<'_>)) {
        for slot in &mut self.slots {
            if let Some(mut cancel) = slot.cancel.take() {
                cancel.deregister(registry);
            }
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

    /// The ready connection a request goes to. A read: the least loaded of
    /// those with no write in flight, else the least loaded. A write: the
    /// least loaded, except the last ready connection with no write in
    /// flight while another is ready, which stays for reads.
    fn pick(&self, writes: bool) -> Option<usize> {
        let ready = || {
            self.slots.iter().enumerate().filter_map(|(i, s)| {
                let c = s.connection.as_ref().filter(|c| c.is_ready())?;
                Some((i, c.carries_writes(), c.carries_slow(), c.in_flight()))
            })
        };
        if !writes {
            return ready()
                .min_by_key(|&(_, writes, slow, load)| (slow, writes, load))
                .map(|(i, ..)| i);
        }
        let write_free = ready().filter(|&(_, carries_writes, ..)| !carries_writes);
        let keep_for_reads = match (write_free.clone().count(), ready().count()) {
            (1, ready) if ready >= 2 => write_free.map(|(i, ..)| i).next(),
            _ => None,
        };
        ready()
            .filter(|&(i, ..)| Some(i) != keep_for_reads)
            .min_by_key(|&(_, _, slow, load)| (slow, load))
            .map(|(i, ..)| i)
    }

    /// Moves waiting requests into pipelines that have room, oldest first.
    fn move_waiting(&mut self, now: Instant) {
        while let Some(front) = self.waiting.front() {
            let Some(index) = self.pick(front.kind.writes) else {
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
                front.kind,
                &self.waiting_bytes[..front.len],
                now,
            );
            self.waiting_bytes.advance(front.len);
            self.waiting.pop_front();
        }
    }

    /// Slot `index` has a ready session: its host is where the others
    /// should look too, those waiting out a backoff at once.
    fn on_connected(&mut self, index: usize, now: Instant) {
        let host = self.slots[index].host;
        let slot = &mut self.slots[index];
        log::event(
            "db_connected",
            &[
                ("slot", Value::Int(index as i64)),
                (
                    "host",
                    Value::Str(&self.connect.endpoints[host].to_string()),
                ),
                (
                    "failed_attempts",
                    Value::Int(slot.consecutive_failures.into()),
                ),
            ],
        );
        slot.consecutive_failures = 0;
        slot.round_failures = 0;
        if self.connect.endpoints.len() == 1 {
            return;
        }
        for other in &mut self.slots {
            if other.connection.is_none() {
                other.host = host;
                other.round_failures = 0;
                other.retry_at = other.retry_at.min(now);
            }
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
        let deadlines = SessionDeadlines {
            statement_timeout: self.config.statement_timeout,
            lock_timeout: self.config.lock_timeout,
        };
        let opened = self.resolve(index).and_then(|address| {
            let connection = Connection::open(
                self.target(address),
                &self.connect,
                registry,
                token,
                self.config.pipeline_depth_max,
                deadlines,
                now,
            )
            .map_err(|e| format!("cannot connect: {e}"))?;
            Ok((connection, address))
        });
        match opened {
            Ok((connection, address)) => {
                let slot = &mut self.slots[index];
                slot.connection = Some(connection);
                slot.address = Some(address);
            }
            Err(e) => self.fail(index, registry, now, &e, on_reply),
        }
    }

    fn target(&self, address: ResolvedTarget) -> Target<'_> {
        match address {
            ResolvedTarget::Tcp(addr) => Target::Tcp(addr),
            ResolvedTarget::Unix(host) => match &self.connect.endpoints[host] {
                Endpoint::Unix(path) => Target::Unix(path),
                Endpoint::Tcp { .. } => {
                    unreachable!("resolve returns Unix only for Unix endpoints")
                }
            },
        }
    }

    /// Sends a CancelRequest for the request the server is working on in
    /// slot `index`'s session. Its answer (an error, rolled back) still
    /// arrives on the session; if the request cannot go out, the session is
    /// left to `request_timeout`.
    #[cold]
    fn cancel_front(&mut self, index: usize, registry: &Registry, now: Instant) {
        let token = Token(self.token_base + self.slots.len() + index);
        let slot = &mut self.slots[index];
        let (Some(connection), Some(address)) = (slot.connection.as_mut(), slot.address) else {
            return;
        };
        let Some(key) = connection.cancel_front() else {
            log::event(
                "db_cancel_impossible",
                &[
                    ("slot", Value::Int(index as i64)),
                    ("reason", Value::Str("the server sent no cancel key")),
                ],
            );
            return;
        };
        if let Some(mut earlier) = self.slots[index].cancel.take() {
            earlier.deregister(registry);
        }
        match CancelRequest::start(self.target(address), key, registry, token, now) {
            Ok(cancel) => {
                log::event(
                    "db_cancel_sent",
                    &[
                        ("slot", Value::Int(index as i64)),
                        (
                            "running_ms",
                            Value::Int(self.config.cancel_after.as_millis() as i64),
                        ),
                    ],
                );
                self.slots[index].cancel = Some(cancel);
            }
            Err(e) => cancel_failed(index, &e.to_string()),
        }
    }

    fn on_cancel_event(&mut self, index: usize, registry: &Registry) {
        let Some(cancel) = self.slots[index].cancel.as_mut() else {
            return;
        };
        match cancel.on_event() {
            Ok(CancelProgress::Waiting) => return,
            Ok(CancelProgress::Sent) => self.cancels_sent += 1,
            Err(e) => cancel_failed(index, &e.to_string()),
        }
        cancel.deregister(registry);
        self.slots[index].cancel = None;
    }

    /// A CancelRequest still connecting after `connect_timeout` is given up.
    fn drop_stale_cancel(&mut self, index: usize, registry: &Registry, now: Instant) {
        let slot = &mut self.slots[index];
        if let Some(cancel) = slot
            .cancel
            .as_mut()
            .filter(|c| now >= c.started_at + self.config.connect_timeout)
        {
            cancel_failed(index, "could not connect in time");
            cancel.deregister(registry);
            slot.cancel = None;
        }
    }

    /// Resolves the database host. Name resolution (getaddrinfo) is the one
    /// blocking call the pool makes, so its result is cached and repeated
    /// only after the cached address failed several times in a row — when
    /// the database is unreachable anyway. IP literals and Unix sockets never
    /// resolve.
    fn resolve(&mut self, index: usize) -> Result<ResolvedTarget, String> {
        let slot = &self.slots[index];
        let Endpoint::Tcp { host, port } = &self.connect.endpoints[slot.host] else {
            return Ok(ResolvedTarget::Unix(slot.host));
        };
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(ResolvedTarget::Tcp(SocketAddr::new(ip, *port)));
        }
        let stale = slot.consecutive_failures >= config::PG_RESOLVE_AGAIN_AFTER_FAILURES;
        if let (Some(addr), false) = (self.resolved[slot.host], stale) {
            return Ok(ResolvedTarget::Tcp(addr));
        }
        let addr = (host.as_str(), *port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host} has no address"))?;
        self.resolved[slot.host] = Some(addr);
        Ok(ResolvedTarget::Tcp(addr))
    }

    /// Closes slot `index`, fails what was pending on it, schedules the
    /// reconnect: to the next host at once, or, when every host failed in a
    /// row, after the backoff. When no connection is left, waiting requests
    /// fail too: callers should hear "unavailable" now, not after a backoff.
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
        let hosts = self.connect.endpoints.len();
        let failed_host = slot.host;
        slot.host = (slot.host + 1) % hosts;
        slot.round_failures = if was_ready {
            1
        } else {
            slot.round_failures + 1
        };
        let first_round = slot.consecutive_failures == 0;
        let delay = if slot.round_failures < hosts {
            Duration::ZERO
        } else {
            slot.round_failures = 0;
            slot.consecutive_failures = slot.consecutive_failures.saturating_add(1);
            backoff(
                slot.consecutive_failures,
                self.config.reconnect_delay_min,
                self.config.reconnect_delay_max,
            )
        };
        slot.retry_at = now + delay;
        self.reconnects += 1;
        // One line per lost session and per host of the first round, then
        // only every few rounds, so an outage does not flood the log.
        if was_ready
            || first_round
            || (!delay.is_zero()
                && slot
                    .consecutive_failures
                    .is_multiple_of(config::PG_RECONNECT_LOG_EVERY))
        {
            log::event(
                if was_ready {
                    "db_connection_lost"
                } else {
                    "db_connect_failed"
                },
                &[
                    ("slot", Value::Int(index as i64)),
                    (
                        "host",
                        Value::Str(&self.connect.endpoints[failed_host].to_string()),
                    ),
                    ("reason", Value::Str(reason)),
                    ("retry_ms", Value::Int(delay.as_millis() as i64)),
                    ("attempt", Value::Int(slot.consecutive_failures.into())),
                ],
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

#[cold]
fn cancel_failed(index: usize, error: &str) {
    log::event(
        "db_cancel_failed",
        &[
            ("slot", Value::Int(index as i64)),
            ("error", Value::Str(error)),
        ],
    );
}

#[derive(Debug, Clone, Copy)]
enum ResolvedTarget {
    Tcp(SocketAddr),
    /// The Unix socket of host `.0` (an index into the endpoints).
    Unix(usize),
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
