//! The event loop: one thread, one `mio::Poll`. It accepts connections,
//! moves bytes between sockets and buffers, hands complete requests to the
//! application (`api::App`) and database replies to it, writes what it
//! answers, and enforces the timeouts. It knows nothing of what a request
//! means.
//!
//! One turn: wait for readiness (or the next deadline) -> dispatch events
//! (client reads, database replies, accepts) -> serve the next request of
//! connections whose answer arrived -> the application's end of turn (the
//! turn's orders leave) -> timers -> send everything queued for the database
//! in one write per connection -> write every touched client once.

mod budget;
mod client;
mod clients;

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};

use crate::api::{Answer, App, Handled, Request};
use crate::config::{self, Settings};
use crate::http::response::write_error;
use crate::log::{self, Value};
use crate::metrics;
use crate::pg::{ConnectConfig, Pool, PoolConfig, Reply};
use client::{Client, Flushed, Framing, Next, ReadOutcome, Swept};
use clients::Clients;

const LISTENER: Token = Token(0);
const POOL_TOKEN_BASE: usize = 1;
const CLIENT_TOKEN_BASE: usize = 1024;
// The pool takes two tokens a connection: its session and its CancelRequest.
const _: () = assert!(POOL_TOKEN_BASE + 2 * config::PG_POOL_SIZE_MAX <= CLIENT_TOKEN_BASE);

pub struct Server {
    poll: Poll,
    /// `None` once shutdown has begun: no new connections.
    listener: Option<TcpListener>,
    pool: Pool,
    app: App,
    clients: Clients,
    /// Every read goes here first (one buffer for all connections).
    read_chunk: Vec<u8>,
    /// Sent (best effort) to a connection accepted past `HTTP_CONNECTIONS_MAX`.
    too_many_connections: Vec<u8>,
    next_sweep: Instant,
    /// `accept` failed for lack of descriptors (EMFILE, ENFILE, ENOBUFS):
    /// the backlog is left as it was, and readiness is edge-triggered, so no
    /// event comes for it until yet another connection arrives. Accepting is
    /// tried again at this instant.
    accept_again_at: Option<Instant>,
    /// The other halves of the clients' lists while they are worked
    /// through (swapped, so no allocation per turn).
    flushing: Vec<usize>,
    resuming: Vec<usize>,
    /// `/metrics` is rendered here (reused from scrape to scrape).
    metrics_text: Vec<u8>,
    /// Load shed since the last summary event: connections refused at
    /// accept, and 503s answered up to then (`clients`' count).
    shed: ShedSummary,
}

struct ShedSummary {
    next_at: Instant,
    answered_503: u64,
    connections_refused: u64,
}

/// The process's resident memory in bytes and CPU time in seconds, from
/// /proc (zeros where it cannot be read).
fn process_usage() -> (u64, f64) {
    // Both files count in pages and clock ticks; Linux has used 4 KiB pages
    // and 100 ticks a second on every platform we run on (no libc to ask).
    const PAGE_BYTES: u64 = 4096;
    const TICKS_PER_SECOND: f64 = 100.0;
    let resident_pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    // utime and stime are fields 14 and 15, counted after the command name
    // (which is in parentheses and may contain spaces).
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let rest = stat.get(stat.rfind(')')? + 2..)?;
            let mut fields = rest.split_whitespace().skip(11);
            let user: u64 = fields.next()?.parse().ok()?;
            let system: u64 = fields.next()?.parse().ok()?;
            Some(user + system)
        })
        .unwrap_or(0);
    (resident_pages * PAGE_BYTES, ticks as f64 / TICKS_PER_SECOND)
}

/// Database replies go to the application, which answers through the clients.
fn replies<'a>(
    app: &'a mut App,
    clients: &'a mut Clients,
    now: Instant,
) -> impl FnMut(u64, Reply<'_>) + 'a {
    move |tag, reply| app.on_reply(tag, reply, &mut clients.answering(now))
}

fn too_many_connections_answer() -> Vec<u8> {
    let mut answer = Vec::new();
    write_error(&mut answer, 503, "too many open connections", false, None);
    answer
}

impl Server {
    pub fn bind(settings: &Settings) -> io::Result<Server> {
        let connect = ConnectConfig::from_url(&settings.database_url)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let poll = Poll::new()?;
        let addr = SocketAddr::from(([0, 0, 0, 0], settings.port));
        let mut listener = TcpListener::bind(addr)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let now = Instant::now();
        let pool_config = PoolConfig {
            size: settings.pool_size,
            ..PoolConfig::default()
        };
        let mut pool = Pool::new(
            connect,
            App::statements(),
            pool_config,
            POOL_TOKEN_BASE,
            now,
        );
        pool.start(poll.registry(), now);
        Ok(Server {
            poll,
            listener: Some(listener),
            pool,
            app: App::new(settings, now),
            clients: Clients::default(),
            read_chunk: vec![0; config::READ_CHUNK_BYTES],
            too_many_connections: too_many_connections_answer(),
            next_sweep: now + config::HTTP_SWEEP_INTERVAL,
            accept_again_at: None,
            flushing: Vec::new(),
            resuming: Vec::new(),
            metrics_text: Vec::new(),
            shed: ShedSummary {
                next_at: now + config::LOAD_SHED_LOG_INTERVAL,
                answered_503: 0,
                connections_refused: 0,
            },
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.listener {
            Some(listener) => listener.local_addr(),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Connections currently open (for tests and logs).
    pub fn open_connections(&self) -> usize {
        self.clients.live()
    }

    /// Runs the loop until the process ends.
    pub fn run(&mut self) -> io::Result<()> {
        self.run_until(&AtomicBool::new(false))
    }

    /// Runs the loop until `stop` is set (a signal handler sets it; the
    /// signal also interrupts the wait), then shuts down gracefully: no new
    /// connections, in-flight requests (also those at the database) are
    /// answered with `Connection: close`, idle connections close at once,
    /// and after at most `SHUTDOWN_DRAIN_TIMEOUT` the database sessions are
    /// terminated and the function returns.
    pub fn run_until(&mut self, stop: &AtomicBool) -> io::Result<()> {
        let mut events = Events::with_capacity(config::EVENTS_PER_TURN_MAX);
        let mut draining_since = None;
        loop {
            let now = Instant::now();
            if draining_since.is_none() && stop.load(Ordering::Relaxed) {
                self.begin_drain();
                draining_since = Some(now);
            }
            let mut timeout = self.poll_timeout(now);
            if let Some(since) = draining_since {
                let waited = now.saturating_duration_since(since);
                if self.clients.all_idle() || waited >= config::SHUTDOWN_DRAIN_TIMEOUT {
                    break;
                }
                timeout = timeout.min(config::SHUTDOWN_POLL_INTERVAL);
            }
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let now = Instant::now();
            for event in events.iter() {
                self.dispatch(event, now);
            }
            self.finish_turn(now);
        }
        let now = Instant::now();
        let (app, clients) = (&mut self.app, &mut self.clients);
        (self.pool).shutdown(self.poll.registry(), &mut replies(app, clients, now));
        self.app.on_shutdown(&mut self.clients.answering(now));
        self.flush_clients(now);
        Ok(())
    }

    fn begin_drain(&mut self) {
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        log::event(
            "shutting_down",
            &[("connections", Value::Int(self.clients.live() as i64))],
        );
        for index in self.clients.indexes() {
            if self
                .clients
                .get_mut(index)
                .is_some_and(|mut c| c.begin_drain())
            {
                self.close(index);
            }
        }
    }

    fn poll_timeout(&self, now: Instant) -> Duration {
        if self.clients.has_work() {
            return Duration::ZERO;
        }
        let deadline = [
            self.pool.next_deadline(),
            self.accept_again_at,
            self.app.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .fold(self.next_sweep, Instant::min);
        deadline.saturating_duration_since(now)
    }

    fn dispatch(&mut self, event: &Event, now: Instant) {
        match event.token() {
            LISTENER => self.accept(now),
            token if self.pool.owns(token) => {
                let (app, clients) = (&mut self.app, &mut self.clients);
                let on_reply = &mut replies(app, clients, now);
                self.pool
                    .handle_event(self.poll.registry(), event, now, on_reply);
            }
            token => {
                let index = token.0 - CLIENT_TOKEN_BASE;
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    self.read_from(index, now, event.is_read_closed());
                }
                if event.is_writable() {
                    self.clients.queue_flush(index);
                }
            }
        }
    }

    fn finish_turn(&mut self, now: Instant) {
        if self.accept_again_at.is_some_and(|at| now >= at) {
            self.accept(now);
        }
        self.clients.take_to_resume(&mut self.resuming);
        for i in 0..self.resuming.len() {
            let index = self.resuming[i];
            self.serve_input(index, now);
            // Only a connection that stopped reading may have bytes waiting
            // in its socket; the others would get EAGAIN.
            if self.clients.get_mut(index).is_some_and(|c| c.read_paused()) {
                self.read_from(index, now, false);
            }
        }
        self.resuming.clear();
        let mut answering = self.clients.answering(now);
        self.app.end_of_turn(&mut self.pool, &mut answering, now);
        let (app, clients) = (&mut self.app, &mut self.clients);
        (self.pool).tick(self.poll.registry(), now, &mut replies(app, clients, now));
        if now >= self.shed.next_at {
            self.summarise_load_shed(now);
        }
        if now >= self.next_sweep {
            self.sweep(now);
            self.next_sweep = now + config::HTTP_SWEEP_INTERVAL;
        }
        let (app, clients) = (&mut self.app, &mut self.clients);
        (self.pool).flush(self.poll.registry(), now, &mut replies(app, clients, now));
        self.flush_clients(now);
    }

    fn accept(&mut self, now: Instant) {
        loop {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((mut socket, _)) => {
                    if self.clients.live() >= config::HTTP_CONNECTIONS_MAX {
                        let _ = socket.write(&self.too_many_connections);
                        self.shed.connections_refused += 1;
                        continue;
                    }
                    let _ = socket.set_nodelay(true);
                    let index = self.clients.allocate();
                    let token = Token(CLIENT_TOKEN_BASE + index);
                    let registered = self.poll.registry().register(
                        &mut socket,
                        token,
                        Interest::READABLE | Interest::WRITABLE,
                    );
                    match registered {
                        Ok(()) => self.clients.put(index, Client::new(socket, now)),
                        Err(_) => drop(self.clients.remove(index)),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.accept_again_at.take().is_some() {
                        log::event("accepting_again", &[]);
                    }
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: the connection stays in the
                    // backlog until descriptors are free again. One line an
                    // episode, not one a retry.
                    if self.accept_again_at.is_none() {
                        log::event(
                            "accept_failed",
                            &[
                                ("error", Value::Str(&e.to_string())),
                                (
                                    "retry_ms",
                                    Value::Int(config::ACCEPT_RETRY_INTERVAL.as_millis() as i64),
                                ),
                            ],
                        );
                    }
                    self.accept_again_at = Some(now + config::ACCEPT_RETRY_INTERVAL);
                    return;
                }
            }
        }
    }

    /// Reads until the socket would block (edge-triggered readiness) or the
    /// connection cannot take more input now, serving requests as they
    /// complete. `read_closed`: the event also said the peer closed its
    /// side, which a short read does not show, so the end is read too.
    fn read_from(&mut self, index: usize, now: Instant, read_closed: bool) {
        for _ in 0..config::READS_PER_CONNECTION_PER_TURN {
            let read = match self.clients.get_mut(index) {
                Some(mut client) => client.read(&mut self.read_chunk),
                None => return,
            };
            match read {
                Ok(ReadOutcome::Data) => self.serve_input(index, now),
                Ok(ReadOutcome::Discarded) => {}
                Ok(ReadOutcome::DataDrained) => {
                    self.serve_input(index, now);
                    if !read_closed {
                        return;
                    }
                }
                Ok(ReadOutcome::WouldBlock | ReadOutcome::Paused) => return,
                Ok(ReadOutcome::Starved) => return self.clients.queue_flush(index),
                Ok(ReadOutcome::Eof) => {
                    if self
                        .clients
                        .get_mut(index)
                        .is_some_and(|mut c| c.on_peer_closed())
                    {
                        return self.close(index);
                    }
                    return self.serve_input(index, now);
                }
                Ok(ReadOutcome::Overflowing) | Err(_) => return self.close(index),
            }
        }
        // Its share of this turn is used up: the rest waits for the next.
        let open = self.clients.get_mut(index).map(|mut c| c.pause_reading());
        if open.is_some() {
            self.clients.queue_resume(index);
        }
    }

    /// Hands the connection's complete requests to the application, one at
    /// a time: the next waits until the previous one is answered.
    fn serve_input(&mut self, index: usize, now: Instant) {
        loop {
            let id = self.clients.request_id(index);
            let Some(mut client) = self.clients.get_mut(index) else {
                return;
            };
            let incoming = match client.next_request(now) {
                Next::Request(incoming) => incoming,
                Next::Nothing { wrote } => {
                    drop(client);
                    if wrote {
                        self.clients.queue_flush(index);
                    }
                    return;
                }
            };
            let (framing, consumed) = (incoming.framing, incoming.consumed);
            let request = Request {
                id,
                method: incoming.method,
                target: incoming.target,
                authorization: incoming.authorization,
                signature: incoming.signature,
                cookie: incoming.cookie,
                body: incoming.body,
            };
            let (route, handled) = self.app.on_request(&request, &mut self.pool, now);
            let framing = Framing { route, ..framing };
            let status = if let Handled::Metrics = handled {
                drop(client);
                self.render_metrics();
                let Some(mut client) = self.clients.get_mut(index) else {
                    return;
                };
                let answer = Answer::Metrics(&self.metrics_text);
                client.finish_request(framing, consumed, Handled::Answered(answer))
            } else {
                let status = client.finish_request(framing, consumed, handled);
                drop(client);
                status
            };
            if let Some(status) = status {
                self.clients.record(route, status, Duration::ZERO);
            }
            self.clients.queue_flush(index);
        }
    }

    /// One event for the load shed since the last one, if there was any.
    #[cold]
    fn summarise_load_shed(&mut self, now: Instant) {
        let answered_503 = self.clients.http_metrics().answered_with(503);
        let refused_503 = answered_503 - self.shed.answered_503;
        if refused_503 > 0 || self.shed.connections_refused > 0 {
            log::event(
                "load_shed",
                &[
                    ("answered_503", Value::Int(refused_503 as i64)),
                    (
                        "connections_refused",
                        Value::Int(self.shed.connections_refused as i64),
                    ),
                    (
                        "seconds",
                        Value::Int(config::LOAD_SHED_LOG_INTERVAL.as_secs() as i64),
                    ),
                ],
            );
        }
        self.shed = ShedSummary {
            next_at: now + config::LOAD_SHED_LOG_INTERVAL,
            answered_503,
            connections_refused: 0,
        };
    }

    /// Renders `/metrics` into `metrics_text`: the requests counted by the
    /// clients, the application's batches, the pool's and the process's
    /// figures of the moment.
    #[cold]
    fn render_metrics(&mut self) {
        let pool = self.pool.stats();
        let (resident_bytes, cpu_seconds) = process_usage();
        let snapshot = metrics::Snapshot {
            client_connections: self.clients.live(),
            client_buffer_bytes_shared: self.clients.buffer_bytes_shared(),
            db_connections_ready: pool.ready_connections,
            db_connections_configured: self.pool.size(),
            db_requests_in_flight: pool.in_flight,
            db_requests_waiting: pool.waiting,
            db_reconnects: pool.reconnects,
            db_cancels_sent: pool.cancels_sent,
            resident_bytes,
            cpu_seconds,
        };
        metrics::render(
            &mut self.metrics_text,
            self.clients.http_metrics(),
            self.app.figures(),
            &snapshot,
        );
    }

    /// Writes every connection that has output. Serving may queue more
    /// output (pipelined requests answered without the database); a few
    /// passes take it, anything left goes out next turn (`poll_timeout`
    /// does not sleep while work is queued).
    fn flush_clients(&mut self, now: Instant) {
        for _ in 0..config::FLUSH_PASSES_PER_TURN_MAX {
            if !self.clients.has_output_queued() {
                return;
            }
            self.clients.take_to_flush(&mut self.flushing);
            for i in 0..self.flushing.len() {
                self.flush_client(self.flushing[i], now);
            }
            self.flushing.clear();
        }
    }

    fn flush_client(&mut self, index: usize, now: Instant) {
        let flushed = match self.clients.get_mut(index) {
            Some(mut client) => client.flush(now),
            None => return,
        };
        match flushed {
            Ok(Flushed::Lingering) => self.read_from(index, now, false), // may see EOF at once
            Ok(Flushed::Unblocked) => {
                self.serve_input(index, now);
                self.read_from(index, now, false);
            }
            Ok(Flushed::Done | Flushed::Partly) => {}
            Err(_) => self.close(index),
        }
    }

    /// Closes idle, slow and lingering connections.
    fn sweep(&mut self, now: Instant) {
        for index in self.clients.indexes() {
            let Some(swept) = self.clients.get_mut(index).map(|mut c| c.sweep(now)) else {
                continue;
            };
            match swept {
                Swept::Keep => {}
                Swept::Close => self.close(index),
                Swept::TimedOut => self.clients.queue_flush(index),
            }
        }
    }

    fn close(&mut self, index: usize) {
        if let Some(mut client) = self.clients.remove(index) {
            let _ = self.poll.registry().deregister(client.socket());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written before any connection is seen: its Content-Length must match.
    #[test]
    fn the_too_many_connections_answer_is_framed_right() {
        let answer = too_many_connections_answer();
        let text = std::str::from_utf8(&answer).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap();
        assert_eq!(length, body.len());
        assert!(head.starts_with("HTTP/1.1 503 ") && head.contains("Connection: close"));
        assert_eq!(body, r#"{"error":"too many open connections"}"#);
    }
}
