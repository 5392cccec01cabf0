//! The event loop: one thread, one `mio::Poll`. It accepts connections,
//! moves bytes between sockets and buffers, hands complete requests to the
//! API and database answers back to their connections, and enforces the
//! timeouts. No business logic lives here.
//!
//! One turn: wait for readiness (or the next deadline) -> dispatch events
//! (client reads, database answers, accepts) -> resume connections whose
//! answer arrived -> run timers -> send everything queued for the database in
//! one write per connection -> write every touched client once.

mod client;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Registry, Token};

use crate::api::batch::{self, Batch, Batches, Sent, BATCH_TAG_BIT};
use crate::api::route::Refusal;
use crate::api::{self, route, Awaiting};
use crate::config::{self, Settings};
use crate::http::request::{parse_request, Body, Parsed};
use crate::http::response::{write_error, write_json_response, CONTINUE_100};
use crate::pg::{ConnectConfig, Pool, PoolConfig, Reply};
use client::{Client, InFlight, Phase, ReadOutcome};

const LISTENER: Token = Token(0);
const POOL_TOKEN_BASE: usize = 1;
const CLIENT_TOKEN_BASE: usize = 1024;
const _: () = assert!(POOL_TOKEN_BASE + config::PG_POOL_SIZE_MAX <= CLIENT_TOKEN_BASE);
/// Sent (best effort) to a connection accepted past `HTTP_CONNECTIONS_MAX`.
const TOO_MANY_CONNECTIONS: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
Content-Length: 37\r\nConnection: close\r\n\r\n{\"error\":\"too many open connections\"}";

/// A connection slot; `generation` changes when the slot is reused, so a
/// database answer for a connection that has gone is recognised and dropped.
struct Slot {
    client: Option<Client>,
    generation: u32,
}

/// Everything one turn's handlers touch, apart from the pool (which is
/// borrowed separately while it calls back with answers).
struct Connections {
    slots: Vec<Slot>,
    free: Vec<usize>,
    /// Connections with output to write this turn.
    to_flush: Vec<usize>,
    /// Connections whose database answer arrived: take their next request.
    to_resume: Vec<usize>,
    body_scratch: Vec<u8>,
    /// This turn's orders, and order batches at the database.
    batches: Batches,
}

pub struct Server {
    poll: Poll,
    /// `None` once shutdown has begun: no new connections.
    listener: Option<TcpListener>,
    pool: Pool,
    connections: Connections,
    read_scratch: Vec<u8>,
    text_scratch: String,
    next_sweep: Instant,
    /// The other halves of `to_flush` / `to_resume` while they are worked
    /// through (swapped, so no allocation per turn).
    flushing: Vec<usize>,
    resuming: Vec<usize>,
}

fn tag_of(index: usize, generation: u32) -> u64 {
    ((index as u64) << 32) | u64::from(generation)
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
            api::statements::STATEMENTS,
            pool_config,
            POOL_TOKEN_BASE,
            now,
        );
        pool.start(poll.registry(), now);
        Ok(Server {
            poll,
            listener: Some(listener),
            pool,
            connections: Connections {
                slots: Vec::new(),
                free: Vec::new(),
                to_flush: Vec::new(),
                to_resume: Vec::new(),
                body_scratch: Vec::with_capacity(config::ANSWER_BODY_BYTES_INITIAL),
                batches: Batches::default(),
            },
            read_scratch: vec![0; config::READ_CHUNK_BYTES],
            text_scratch: String::with_capacity(256),
            next_sweep: now + config::HTTP_SWEEP_INTERVAL,
            flushing: Vec::new(),
            resuming: Vec::new(),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.listener {
            Some(listener) => listener.local_addr(),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
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
            if let Some(since) = draining_since {
                if self.drained()
                    || now.saturating_duration_since(since) >= config::SHUTDOWN_DRAIN_TIMEOUT
                {
                    break;
                }
            }
            let mut timeout = self.poll_timeout(now);
            if draining_since.is_some() {
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
        let connections = &mut self.connections;
        let now = Instant::now();
        self.pool.shutdown(self.poll.registry(), &mut |tag, reply| {
            connections.deliver(tag, reply, now)
        });
        self.flush_clients(now);
        Ok(())
    }

    fn begin_drain(&mut self) {
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        eprintln!(
            "flashsale: shutting down, draining {} connections",
            self.connections.live()
        );
        for index in 0..self.connections.slots.len() {
            let Some(client) = self.connections.client(index) else {
                continue;
            };
            if let Some(in_flight) = client.in_flight.as_mut() {
                in_flight.keep_alive = false; // the answer announces the close
            }
            if client.in_flight.is_none() && client.unsent_output() == 0 {
                self.close(index);
            } else if client.phase == Phase::Open {
                client.phase = Phase::Closing;
                client.input.clear();
            }
        }
    }

    /// No connection waits for an answer or has one left to send.
    fn drained(&self) -> bool {
        self.connections
            .slots
            .iter()
            .filter_map(|s| s.client.as_ref())
            .all(|c| c.in_flight.is_none() && c.unsent_output() == 0)
    }

    fn poll_timeout(&self, now: Instant) -> Duration {
        if !self.connections.to_resume.is_empty() || !self.connections.to_flush.is_empty() {
            return Duration::ZERO;
        }
        let deadline = self
            .pool
            .next_deadline()
            .map_or(self.next_sweep, |d| d.min(self.next_sweep));
        deadline.saturating_duration_since(now)
    }

    fn dispatch(&mut self, event: &Event, now: Instant) {
        match event.token() {
            LISTENER => self.accept(now),
            token if self.pool.owns(token) => {
                let connections = &mut self.connections;
                self.pool
                    .handle_event(self.poll.registry(), event, now, &mut |tag, reply| {
                        connections.deliver(tag, reply, now)
                    });
            }
            token => {
                let index = token.0 - CLIENT_TOKEN_BASE;
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    self.read_from(index, now);
                }
                if event.is_writable() {
                    self.connections.queue_flush(index);
                }
            }
        }
    }

    fn finish_turn(&mut self, now: Instant) {
        std::mem::swap(&mut self.connections.to_resume, &mut self.resuming);
        for i in 0..self.resuming.len() {
            let index = self.resuming[i];
            self.serve_input(index, now);
            // Only a connection that stopped reading may have bytes waiting
            // in its socket; the others would get EAGAIN.
            if self
                .connections
                .client(index)
                .is_some_and(|c| c.read_paused)
            {
                self.read_from(index, now);
            }
        }
        self.resuming.clear();
        self.send_batches(now);
        let connections = &mut self.connections;
        self.pool
            .tick(self.poll.registry(), now, &mut |tag, reply| {
                connections.deliver(tag, reply, now)
            });
        if now >= self.next_sweep {
            self.sweep(now);
            self.next_sweep = now + config::HTTP_SWEEP_INTERVAL;
        }
        let connections = &mut self.connections;
        self.pool
            .flush(self.poll.registry(), now, &mut |tag, reply| {
                connections.deliver(tag, reply, now)
            });
        self.flush_clients(now);
    }

    /// Failed batches go again order by order; then this turn's orders go
    /// as one batch.
    fn send_batches(&mut self, now: Instant) {
        while let Some(failed) = self.connections.batches.take_failed() {
            for (i, &member) in failed.members.iter().enumerate() {
                if !self.connections.is_waiting(member) {
                    continue; // the connection has gone
                }
                if let Err(refused) = batch::submit_one(&mut self.pool, &failed, i, member, now) {
                    self.connections
                        .refuse(member, api::refusal_for(refused), now);
                }
            }
            self.connections.batches.recycle(failed);
        }
        let sent = self.connections.batches.send_open(&mut self.pool, now);
        self.connections.settle(sent, now);
    }

    fn accept(&mut self, now: Instant) {
        loop {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((mut socket, _)) => {
                    if self.connections.live() >= config::HTTP_CONNECTIONS_MAX {
                        use std::io::Write;
                        let _ = socket.write(TOO_MANY_CONNECTIONS);
                        continue;
                    }
                    let _ = socket.set_nodelay(true);
                    let index = self.connections.allocate();
                    let token = Token(CLIENT_TOKEN_BASE + index);
                    let registered = self.poll.registry().register(
                        &mut socket,
                        token,
                        Interest::READABLE | Interest::WRITABLE,
                    );
                    if registered.is_err() {
                        self.connections.release(index);
                        continue;
                    }
                    self.connections.slots[index].client = Some(Client::new(socket, now));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: the connection stays in the backlog.
                    eprintln!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// Reads until the socket would block (edge-triggered readiness) or the
    /// connection cannot take more input now, serving requests as they
    /// complete.
    fn read_from(&mut self, index: usize, now: Instant) {
        loop {
            let Some(client) = self.connections.client(index) else {
                return;
            };
            match client.read_some(&mut self.read_scratch) {
                Ok(ReadOutcome::Data) => {
                    if matches!(client.phase, Phase::Lingering { .. }) {
                        continue;
                    }
                    self.serve_input(index, now);
                }
                Ok(ReadOutcome::DataDrained) => {
                    self.serve_input(index, now);
                    return;
                }
                Ok(ReadOutcome::WouldBlock | ReadOutcome::Paused) => return,
                Ok(ReadOutcome::Eof) => {
                    if client.in_flight.is_some() || client.unsent_output() > 0 {
                        // Answer what was asked, then close.
                        client.phase = Phase::Closing;
                        client.input.clear();
                    } else {
                        self.close(index);
                    }
                    return;
                }
                Err(_) => {
                    self.close(index);
                    return;
                }
            }
        }
    }

    /// Parses and dispatches complete requests from the connection's input,
    /// one at a time: the next waits until the previous one is answered.
    fn serve_input(&mut self, index: usize, now: Instant) {
        let tag = tag_of(index, self.connections.slots[index].generation);
        loop {
            let Some(client) = self.connections.slots[index].client.as_mut() else {
                return;
            };
            if !client.can_take_request() {
                return;
            }
            if client.input.is_empty() {
                client.partial_since = None;
                return;
            }
            let request = match parse_request(&client.input, &mut client.chunked_body) {
                Ok(Parsed::Complete(request)) => request,
                Ok(Parsed::Partial { head_complete }) => {
                    client.partial_since.get_or_insert(now);
                    if head_complete.is_some_and(|h| h.expects_continue) && !client.continue_sent {
                        client.output.extend_from_slice(CONTINUE_100);
                        client.continue_sent = true;
                        self.connections.queue_flush(index);
                    }
                    return;
                }
                Err(error) => {
                    write_error(
                        &mut client.output,
                        error.status(),
                        error.message(),
                        false,
                        None,
                    );
                    client.phase = Phase::Closing;
                    client.input.clear();
                    self.connections.queue_flush(index);
                    return;
                }
            };
            client.partial_since = None;
            client.continue_sent = false;
            client.last_active = now;
            let keep_alive = request.head.keep_alive;
            let body: &[u8] = match &request.body {
                Body::None => &[],
                Body::InBuffer(range) => &client.input[range.clone()],
                Body::Decoded => &client.chunked_body,
            };
            let target = &client.input[request.head.path.clone()];
            let mut order = None;
            match route::route(request.head.method, target, body, &mut self.text_scratch) {
                Err(refusal) => api::write_refusal(&mut client.output, refusal, keep_alive),
                Ok(route::Command::Health) => {
                    write_health(&mut client.output, self.pool.is_healthy(), keep_alive)
                }
                Ok(route::Command::PlaceOrder(request)) => {
                    client.in_flight = Some(InFlight {
                        awaiting: Awaiting::PlaceOrder,
                        keep_alive,
                    });
                    order = Some(request);
                }
                Ok(command) => match api::submit(&command, &mut self.pool, tag, now) {
                    Ok(awaiting) => {
                        client.in_flight = Some(InFlight {
                            awaiting,
                            keep_alive,
                        })
                    }
                    Err(refusal) => api::write_refusal(&mut client.output, refusal, keep_alive),
                },
            }
            if !keep_alive {
                client.phase = Phase::Closing;
            }
            client.consume_input(request.consumed);
            self.connections.queue_flush(index);
            if let Some(order) = order {
                // Joins this turn's batch, sent at the end of the turn.
                if self.connections.batches.is_open_full() {
                    let sent = self.connections.batches.send_open(&mut self.pool, now);
                    self.connections.settle(sent, now);
                }
                self.connections.batches.push(tag, &order);
            }
        }
    }

    /// Writes every connection that has output. Serving may queue more
    /// output (pipelined requests answered without the database); a few
    /// passes take it, anything left goes out next turn (`poll_timeout`
    /// does not sleep while work is queued).
    fn flush_clients(&mut self, now: Instant) {
        for _ in 0..config::FLUSH_PASSES_PER_TURN_MAX {
            if self.connections.to_flush.is_empty() {
                return;
            }
            std::mem::swap(&mut self.connections.to_flush, &mut self.flushing);
            for i in 0..self.flushing.len() {
                self.flush_client(self.flushing[i], now);
            }
            self.flushing.clear();
        }
    }

    fn flush_client(&mut self, index: usize, now: Instant) {
        let Some(client) = self.connections.client(index) else {
            return;
        };
        client.queued_for_flush = false;
        match client.write_out() {
            Ok(true) if client.phase == Phase::Closing && client.in_flight.is_none() => {
                client.start_lingering(now);
                self.read_from(index, now); // may see EOF at once
            }
            Ok(true) if client.read_paused => {
                // Output drained: serving and reading can go on.
                self.serve_input(index, now);
                self.read_from(index, now);
            }
            Ok(_) => {} // done, or the socket is full and a writable event follows
            Err(_) => self.close(index),
        }
    }

    /// Closes idle, slow and lingering connections.
    fn sweep(&mut self, now: Instant) {
        for index in 0..self.connections.slots.len() {
            let Some(client) = self.connections.client(index) else {
                continue;
            };
            let idle_for = now.saturating_duration_since(client.last_active);
            match client.phase {
                Phase::Lingering { since }
                    if now.saturating_duration_since(since) >= config::HTTP_LINGER_TIMEOUT =>
                {
                    self.close(index)
                }
                Phase::Lingering { .. } => {}
                _ if client.in_flight.is_some() => {} // the pool times requests out
                _ if client.partial_since.is_some_and(|t| {
                    now.saturating_duration_since(t) >= config::HTTP_PARTIAL_REQUEST_TIMEOUT
                }) =>
                {
                    write_error(
                        &mut client.output,
                        408,
                        "request not completed in time",
                        false,
                        None,
                    );
                    client.phase = Phase::Closing;
                    client.input.clear();
                    client.partial_since = None;
                    self.connections.queue_flush(index);
                }
                _ if idle_for >= config::HTTP_IDLE_TIMEOUT => self.close(index),
                _ => {}
            }
        }
    }

    fn close(&mut self, index: usize) {
        if let Some(mut client) = self.connections.slots[index].client.take() {
            let _ = self.poll.registry().deregister(&mut client.socket);
            self.connections.release(index);
        }
    }

    /// Connections currently open (for tests and logs).
    pub fn open_connections(&self) -> usize {
        self.connections.live()
    }

    pub fn registry(&self) -> &Registry {
        self.poll.registry()
    }
}

impl Connections {
    fn client(&mut self, index: usize) -> Option<&mut Client> {
        self.slots.get_mut(index)?.client.as_mut()
    }

    fn live(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    fn allocate(&mut self) -> usize {
        match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(Slot {
                    client: None,
                    generation: 0,
                });
                self.slots.len() - 1
            }
        }
    }

    fn release(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        slot.client = None;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(index);
    }

    fn queue_flush(&mut self, index: usize) {
        if let Some(client) = self.slots.get_mut(index).and_then(|s| s.client.as_mut()) {
            if !client.queued_for_flush {
                client.queued_for_flush = true;
                self.to_flush.push(index);
            }
        }
    }

    /// Whether the connection `tag` names still waits for an answer.
    fn is_waiting(&mut self, tag: u64) -> bool {
        by_tag(&mut self.slots, tag).is_some_and(|(_, c)| c.in_flight.is_some())
    }

    /// A database answer: render it into the connection that asked, if that
    /// connection is still there.
    fn deliver(&mut self, tag: u64, reply: Reply<'_>, now: Instant) {
        if tag & BATCH_TAG_BIT != 0 {
            return self.deliver_batch(tag, reply, now);
        }
        let Some((index, client)) = by_tag(&mut self.slots, tag) else {
            return;
        };
        let Some(in_flight) = client.in_flight.take() else {
            return;
        };
        api::write_reply(
            in_flight.awaiting,
            reply,
            in_flight.keep_alive,
            &mut self.body_scratch,
            &mut client.output,
        );
        self.answered(index, now);
    }

    /// A `place_orders` answer: one row per order, each to its connection.
    fn deliver_batch(&mut self, tag: u64, reply: Reply<'_>, now: Instant) {
        let Some(batch) = self.batches.take(tag) else {
            return;
        };
        match reply {
            Reply::Rows(rows) => {
                for row in rows.iter() {
                    let member = api::batch_position(&row)
                        .and_then(|i| batch.members.get((i as usize).wrapping_sub(1)));
                    let Some((index, client)) = member.and_then(|&m| by_tag(&mut self.slots, m))
                    else {
                        continue;
                    };
                    let Some(in_flight) = client.in_flight.take() else {
                        continue;
                    };
                    api::write_batch_order_reply(
                        row,
                        in_flight.keep_alive,
                        &mut self.body_scratch,
                        &mut client.output,
                    );
                    self.answered(index, now);
                }
                // Every order has its row; should one be missing, its
                // connection must still hear something.
                self.refuse_all(&batch, api::DATABASE_ERROR, now);
                self.batches.recycle(batch);
            }
            Reply::Failed(error) => {
                eprintln!(
                    "order batch of {} failed ({} {}: {}); retrying its orders one by one",
                    batch.len(),
                    error.severity,
                    error.code,
                    error.message
                );
                self.batches.retry_singly(batch);
            }
            Reply::Unavailable => {
                self.refuse_all(&batch, api::DATABASE_UNAVAILABLE, now);
                self.batches.recycle(batch);
            }
        }
    }

    /// Answers the outcome of sending a batch: refused batches answer every
    /// member at once.
    fn settle(&mut self, sent: Sent, now: Instant) {
        if let Sent::Refused(refusal, batch) = sent {
            self.refuse_all(&batch, refusal, now);
            self.batches.recycle(batch);
        }
    }

    fn refuse_all(&mut self, batch: &Batch, refusal: Refusal, now: Instant) {
        for &member in &batch.members {
            self.refuse(member, refusal, now);
        }
    }

    /// Answers a waiting connection with `refusal` (no-op when it does not wait).
    fn refuse(&mut self, tag: u64, refusal: Refusal, now: Instant) {
        let Some((index, client)) = by_tag(&mut self.slots, tag) else {
            return;
        };
        let Some(in_flight) = client.in_flight.take() else {
            return;
        };
        api::write_refusal(&mut client.output, refusal, in_flight.keep_alive);
        self.answered(index, now);
    }

    /// The connection's answer is in its output: write it this turn, then
    /// serve its next request.
    fn answered(&mut self, index: usize, now: Instant) {
        if let Some(client) = self.client(index) {
            client.last_active = now;
        }
        self.to_resume.push(index);
        self.queue_flush(index);
    }
}

/// The connection a tag names, if it is still the same connection.
fn by_tag(slots: &mut [Slot], tag: u64) -> Option<(usize, &mut Client)> {
    let index = (tag >> 32) as usize;
    let slot = slots.get_mut(index)?;
    if slot.generation != tag as u32 {
        return None;
    }
    slot.client.as_mut().map(|client| (index, client))
}

fn write_health(out: &mut Vec<u8>, healthy: bool, keep_alive: bool) {
    if healthy {
        write_json_response(out, 200, br#"{"status":"ok"}"#, keep_alive, None);
    } else {
        write_error(out, 503, "database unavailable", keep_alive, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one response written by hand: its Content-Length must match.
    #[test]
    fn the_too_many_connections_answer_is_framed_right() {
        let text = std::str::from_utf8(TOO_MANY_CONNECTIONS).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap();
        assert_eq!(length, body.len());
        assert!(head.starts_with("HTTP/1.1 503 ") && head.contains("Connection: close"));
    }
}
