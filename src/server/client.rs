//! One client connection: its socket, unparsed input, unsent output, and
//! whether a request of it waits for the application. A connection has at
//! most one request waiting at a time; pipelined requests wait, unparsed, in
//! `input` (or the socket) until the previous answer is written, which keeps
//! answers in request order without any reordering machinery.
//!
//! Its state changes only through the methods below; the event loop asks
//! and tells, it never sets a field.

use std::io;
use std::net::Shutdown;
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use crate::api::{Answer, Handled};
use crate::config::{
    HTTP_BUFFER_BYTES_KEPT, HTTP_IDLE_TIMEOUT, HTTP_INPUT_BYTES_MAX, HTTP_LINGER_BYTES_MAX,
    HTTP_LINGER_TIMEOUT, HTTP_OUTPUT_BYTES_MAX, HTTP_PARTIAL_REQUEST_TIMEOUT,
    HTTP_RESPONSE_HEAD_BYTES_MAX,
};
use crate::http::request::{parse_request, Body, Method, Parsed, Progress};
use crate::http::response::{
    error_body_with_reason_len, write_error, write_error_with_reason, write_head,
    write_json_response, write_metrics_head, Header, CONTINUE_100,
};
use crate::metrics::Route;
use crate::nonblocking::{self, Received};
use crate::server::budget::Limits;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading and answering requests.
    Open,
    /// The last response is queued (Connection: close, an error, or the peer
    /// half-closed); close once it is written.
    Closing,
    /// Response written and our side shut down; unread input is discarded
    /// until the peer closes, `HTTP_LINGER_TIMEOUT` passes or
    /// `HTTP_LINGER_BYTES_MAX` were discarded, so the client reads the
    /// response instead of a reset.
    Lingering { since: Instant, discarded: usize },
}

/// How a request's answer is framed.
#[derive(Debug, Clone, Copy)]
pub struct Framing {
    pub keep_alive: bool,
    /// A HEAD request: the head of the answer only (its Content-Length is
    /// the body's that is left out).
    pub head_only: bool,
    /// A GET or HEAD: answering it changed nothing, so an answer too big for
    /// the memory left may be replaced by a 503.
    pub safe: bool,
    /// What it counts under in the metrics, and when it was taken.
    pub route: Route,
    pub taken_at: Instant,
}

pub struct Client {
    socket: TcpStream,
    input: Vec<u8>,
    output: Vec<u8>,
    output_sent: usize,
    /// What parsing found so far of the request at the start of `input`
    /// (and its decoded chunked body).
    parse: Progress,
    /// The framing of the answer a request handed to the application waits for.
    waiting: Option<Framing>,
    phase: Phase,
    /// Reading stopped with data possibly left in the socket (edge-triggered
    /// readiness will not report it again): read when unblocked.
    read_paused: bool,
    last_active: Instant,
    /// When the first byte of the request now being received arrived.
    partial_since: Option<Instant>,
    continue_sent: bool,
    /// The peer shut down its sending side: nothing more arrives, but every
    /// complete request it sent before is answered, in order; then the
    /// connection closes.
    peer_closed: bool,
    /// What the buffers may do now; set by `Clients` before each operation.
    limits: Limits,
    /// Bytes of the shared buffer budget this connection holds.
    charged: usize,
}

/// What a read attempt found.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// New bytes were appended to the input; there may be more.
    Data,
    /// New bytes were appended and the socket is drained (see
    /// `nonblocking::Received`): no need to read again before the next event.
    DataDrained,
    /// Bytes after the last response were thrown away; there may be more.
    Discarded,
    /// Nothing more for now.
    WouldBlock,
    /// Not reading: a request is waiting, the connection is closing, or a
    /// buffer is full. Reading resumes when that changes.
    Paused,
    /// The peer closed its side.
    Eof,
    /// A partial request needs more input than the memory left allows: a
    /// 503 is queued and the connection closes.
    Starved,
    /// A closing connection kept sending past what its linger drains: no
    /// more is read, close it.
    Overflowing,
}

/// A complete request, borrowed from the connection's buffers.
pub struct Incoming<'a> {
    pub method: Method,
    pub target: &'a [u8],
    pub authorization: Option<&'a [u8]>,
    /// The `X-Signature` field's value, if any.
    pub signature: Option<&'a [u8]>,
    /// The `Cookie` field's value, if any.
    pub cookie: Option<&'a [u8]>,
    pub body: &'a [u8],
    pub framing: Framing,
    /// Input bytes the request occupies (head, body, chunked framing).
    pub consumed: usize,
}

/// What the connection has to serve now.
pub enum Next<'a> {
    Request(Incoming<'a>),
    /// Nothing to hand over; `wrote` says whether output was queued (a
    /// `100 Continue`, or the error that ends a malformed request).
    Nothing {
        wrote: bool,
    },
}

/// What writing the output achieved.
#[derive(Debug, PartialEq, Eq)]
pub enum Flushed {
    /// The socket is full; a writable event follows.
    Partly,
    Done,
    /// Done, and the connection was closing: our side is shut and unread
    /// input is drained for a while (read it now: the EOF may be there).
    Lingering,
    /// Done, and reading had stopped for lack of room: serve and read again.
    Unblocked,
}

/// What a periodic look at the connection decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Swept {
    Keep,
    Close,
    /// A request was not completed in time: 408 queued, the connection closes.
    TimedOut,
}

impl Client {
    pub fn new(socket: TcpStream, now: Instant) -> Client {
        Client {
            socket,
            input: Vec::new(),
            output: Vec::new(),
            output_sent: 0,
            parse: Progress::default(),
            waiting: None,
            phase: Phase::Open,
            read_paused: false,
            last_active: now,
            partial_since: None,
            continue_sent: false,
            peer_closed: false,
            limits: Limits::UNBOUNDED,
            charged: 0,
        }
    }

    /// Bytes its buffers hold.
    pub fn held(&self) -> usize {
        self.input.capacity() + self.output.capacity() + self.parse.capacity()
    }

    /// The limits for the next operations (from the shared budget), and
    /// what it draws from that budget, to settle afterwards.
    pub fn budget_terms(&mut self) -> (&mut Limits, &mut usize) {
        (&mut self.limits, &mut self.charged)
    }

    pub fn socket(&mut self) -> &mut TcpStream {
        &mut self.socket
    }

    pub fn is_waiting(&self) -> bool {
        self.waiting.is_some()
    }

    pub fn read_paused(&self) -> bool {
        self.read_paused
    }

    /// Reading stops for this turn with data possibly left in the socket;
    /// the loop reads again next turn (this connection had its share).
    pub fn pause_reading(&mut self) {
        self.read_paused = true;
    }

    /// Nothing waits for an answer and nothing is left to send.
    pub fn is_idle(&self) -> bool {
        self.waiting.is_none() && self.unsent_output() == 0
    }

    fn unsent_output(&self) -> usize {
        self.output.len() - self.output_sent
    }

    /// Whether the next request may be parsed and handed over now. With
    /// the shared budget spent, a connection whose client has not read its
    /// last answer takes no new one.
    fn can_take_request(&self) -> bool {
        let output_room = if self.limits.budget_spent {
            1
        } else {
            HTTP_OUTPUT_BYTES_MAX
        };
        self.phase == Phase::Open && self.waiting.is_none() && self.unsent_output() < output_room
    }

    /// Reads once into `chunk` and appends to the input, unless the
    /// connection should not take more input now.
    pub fn read(&mut self, chunk: &mut [u8]) -> io::Result<ReadOutcome> {
        if let Phase::Lingering { discarded, .. } = &mut self.phase {
            return Ok(match nonblocking::read(&mut self.socket, chunk)? {
                Received::Data { len, .. } if *discarded + len > HTTP_LINGER_BYTES_MAX => {
                    ReadOutcome::Overflowing
                }
                Received::Data { len, drained } => {
                    *discarded += len;
                    if drained {
                        ReadOutcome::WouldBlock
                    } else {
                        ReadOutcome::Discarded
                    }
                }
                Received::WouldBlock => ReadOutcome::WouldBlock,
                Received::Eof => ReadOutcome::Eof,
            });
        }
        let wanted = HTTP_INPUT_BYTES_MAX
            .saturating_sub(self.input.len())
            .min(chunk.len());
        if !self.can_take_request() || wanted == 0 || self.peer_closed {
            self.read_paused = true;
            return Ok(ReadOutcome::Paused);
        }
        let spare = self.input.capacity() - self.input.len();
        let room = wanted.min(spare.saturating_add(self.limits.growth));
        if room == 0 {
            // Reading happens only once the input's complete requests are
            // served, so what it holds is one partial request.
            let refusal = crate::api::OVERLOADED;
            write_error(
                &mut self.output,
                refusal.status,
                refusal.message,
                false,
                None,
            );
            self.begin_closing();
            return Ok(ReadOutcome::Starved);
        }
        self.read_paused = false;
        let chunk = &mut chunk[..room];
        Ok(match nonblocking::read(&mut self.socket, chunk)? {
            Received::Data { len, drained } => {
                self.grow_input_for(len, spare + self.limits.growth);
                self.input.extend_from_slice(&chunk[..len]);
                if drained {
                    ReadOutcome::DataDrained
                } else {
                    ReadOutcome::Data
                }
            }
            Received::WouldBlock => ReadOutcome::WouldBlock,
            Received::Eof => ReadOutcome::Eof,
        })
    }

    /// Makes room for `len` more input bytes: doubling, so a request read in
    /// small pieces is not copied again for each, but never past the input
    /// limit or the `room` the budget allows.
    fn grow_input_for(&mut self, len: usize, room: usize) {
        let needed = self.input.len() + len;
        if needed <= self.input.capacity() {
            return;
        }
        let target = (2 * self.input.capacity())
            .clamp(HTTP_BUFFER_BYTES_KEPT / 4, HTTP_INPUT_BYTES_MAX)
            .min(self.input.len() + room)
            .max(needed);
        self.input.reserve_exact(target - self.input.len());
    }

    /// The peer closed its sending side. Returns whether the connection can
    /// close now; otherwise the requests it already sent are served, and
    /// answered, before it closes.
    pub fn on_peer_closed(&mut self) -> bool {
        self.peer_closed = true;
        self.is_idle() && self.input.is_empty()
    }

    /// The next complete request in the input, if the connection may take
    /// one now. Answers `Expect: 100-continue` and malformed requests itself.
    pub fn next_request(&mut self, now: Instant) -> Next<'_> {
        if !self.can_take_request() {
            return Next::Nothing { wrote: false };
        }
        if self.input.is_empty() && !self.peer_closed {
            self.partial_since = None;
            return Next::Nothing { wrote: false };
        }
        let parsed = parse_request(&self.input, &mut self.parse);
        if self.peer_closed && !matches!(parsed, Ok(Parsed::Complete(_))) {
            // Every request the peer sent is answered (or waits for its
            // answer): close once the output is written.
            self.begin_closing();
            return Next::Nothing { wrote: true };
        }
        match parsed {
            Ok(Parsed::Complete(request)) => {
                self.partial_since = None;
                self.continue_sent = false;
                self.last_active = now;
                let body: &[u8] = match &request.body {
                    Body::None => &[],
                    Body::InBuffer(range) => &self.input[range.clone()],
                    Body::Decoded => self.parse.decoded_body(),
                };
                Next::Request(Incoming {
                    method: request.head.method,
                    target: &self.input[request.head.path.clone()],
                    authorization: request.head.authorization.map(|r| &self.input[r]),
                    signature: request.head.signature.map(|r| &self.input[r]),
                    cookie: request.head.cookie.map(|r| &self.input[r]),
                    body,
                    framing: Framing {
                        keep_alive: request.head.keep_alive,
                        head_only: request.head.method == Method::Head,
                        safe: matches!(request.head.method, Method::Get | Method::Head),
                        route: Route::Other,
                        taken_at: now,
                    },
                    consumed: request.consumed,
                })
            }
            Ok(Parsed::Partial { head_complete }) => {
                self.partial_since.get_or_insert(now);
                let expects_continue = head_complete.is_some_and(|h| h.expects_continue);
                if expects_continue && !self.continue_sent {
                    self.output.extend_from_slice(CONTINUE_100);
                    self.continue_sent = true;
                    return Next::Nothing { wrote: true };
                }
                Next::Nothing { wrote: false }
            }
            Err(error) => {
                // The framing of whatever follows is unknown: answer, close.
                write_error(
                    &mut self.output,
                    error.status(),
                    error.message(),
                    false,
                    None,
                );
                self.begin_closing();
                Next::Nothing { wrote: true }
            }
        }
    }

    /// The application took the request `next_request` gave: its answer is
    /// written now (its status is returned), or it is waited for.
    pub fn finish_request(
        &mut self,
        framing: Framing,
        consumed: usize,
        handled: Handled<'_>,
    ) -> Option<u16> {
        let status = match handled {
            Handled::Answered(answer) => Some(self.write_answer(answer, framing)),
            Handled::Pending => {
                self.waiting = Some(framing);
                None
            }
            // The server renders metrics itself; an empty page if it did not.
            Handled::Metrics => Some(self.write_answer(Answer::Metrics(b""), framing)),
        };
        if !framing.keep_alive {
            self.phase = Phase::Closing;
        }
        self.input.drain(..consumed);
        self.parse.reset();
        if self.limits.budget_pressed {
            self.give_back_memory();
        }
        status
    }

    /// Shrinks buffers grown for one request (a big body, a long answer, a
    /// pipeline) back to `HTTP_BUFFER_BYTES_KEPT` once they are empty
    /// enough, so the shared budget gets the memory back.
    pub fn give_back_memory(&mut self) {
        self.parse.shrink_to(HTTP_BUFFER_BYTES_KEPT);
        if self.input.len() <= HTTP_BUFFER_BYTES_KEPT {
            self.input.shrink_to(HTTP_BUFFER_BYTES_KEPT);
        }
        if self.unsent_output() == 0 {
            self.output.clear();
            self.output_sent = 0;
            self.output.shrink_to(HTTP_BUFFER_BYTES_KEPT);
        }
    }

    /// The answer to the waiting request (none waiting: nothing to do).
    /// Returns the route, status and time taken, for the metrics.
    pub fn answer(&mut self, answer: Answer<'_>, now: Instant) -> Option<(Route, u16, Duration)> {
        let framing = self.waiting.take()?;
        let status = self.write_answer(answer, framing);
        self.last_active = now;
        let took = now.saturating_duration_since(framing.taken_at);
        Some((framing.route, status, took))
    }

    /// Queues an answer, with the room for it reserved exactly. An answer
    /// to a read that the memory left cannot hold becomes a 503 (the read
    /// can be repeated); any other answer is written whatever the budget
    /// says (it is small, and it must reach the client).
    fn write_answer(&mut self, answer: Answer<'_>, framing: Framing) -> u16 {
        let mut needed = self.room_needed_for(&answer);
        let answer = if framing.safe && needed > self.output.capacity() + self.limits.growth {
            let refused = Answer::Refused(crate::api::OVERLOADED);
            needed = self.room_needed_for(&refused);
            refused
        } else {
            answer
        };
        if needed > self.output.capacity() {
            self.output.reserve_exact(needed - self.output.len());
        }
        write_answer(&mut self.output, answer, framing)
    }

    /// The output buffer's length once `answer` is queued, at most.
    fn room_needed_for(&self, answer: &Answer<'_>) -> usize {
        let body_len = match answer {
            Answer::Json { body, .. }
            | Answer::JsonWithCookie { body, .. }
            | Answer::Metrics(body) => body.len(),
            Answer::Refused(refusal) => error_body_with_reason_len(refusal.body()),
        };
        self.output.len() + HTTP_RESPONSE_HEAD_BYTES_MAX + body_len
    }

    /// Writes pending output as far as the socket takes it.
    pub fn flush(&mut self, now: Instant) -> io::Result<Flushed> {
        self.output_sent += nonblocking::write(&mut self.socket, &self.output[self.output_sent..])?;
        if self.output_sent < self.output.len() {
            return Ok(Flushed::Partly);
        }
        self.output.clear();
        self.output_sent = 0;
        // A long answer or a pipeline's worth of answers grew the buffer;
        // past its usual size, or when the budget runs low, the memory goes
        // back.
        if self.output.capacity() > HTTP_OUTPUT_BYTES_MAX || self.limits.budget_pressed {
            self.give_back_memory();
        }
        if self.phase == Phase::Closing && self.waiting.is_none() {
            let _ = self.socket.shutdown(Shutdown::Write);
            self.phase = Phase::Lingering {
                since: now,
                discarded: 0,
            };
            self.input.clear();
            self.parse.reset();
            return Ok(Flushed::Lingering);
        }
        Ok(if self.read_paused {
            Flushed::Unblocked
        } else {
            Flushed::Done
        })
    }

    /// Idle, slow and lingering connections end here; with the buffer
    /// budget running low, idle ones give back what they grew.
    pub fn sweep(&mut self, now: Instant) -> Swept {
        if self.limits.budget_pressed && self.waiting.is_none() {
            self.give_back_memory();
        }
        let since = |t: Instant| now.saturating_duration_since(t);
        match self.phase {
            Phase::Lingering { since: t, .. } if since(t) >= HTTP_LINGER_TIMEOUT => Swept::Close,
            Phase::Lingering { .. } => Swept::Keep,
            _ if self.waiting.is_some() => Swept::Keep, // the pool times requests out
            _ if self
                .partial_since
                .is_some_and(|t| since(t) >= HTTP_PARTIAL_REQUEST_TIMEOUT) =>
            {
                write_error(
                    &mut self.output,
                    408,
                    "request not completed in time",
                    false,
                    None,
                );
                self.partial_since = None;
                self.begin_closing();
                Swept::TimedOut
            }
            _ if since(self.last_active) >= HTTP_IDLE_TIMEOUT => Swept::Close,
            _ => Swept::Keep,
        }
    }

    /// Shutdown begins: the answer still awaited announces the close.
    /// Returns whether the connection can close at once (it is idle).
    pub fn begin_drain(&mut self) -> bool {
        if let Some(waiting) = self.waiting.as_mut() {
            waiting.keep_alive = false;
        }
        if self.is_idle() {
            return true;
        }
        if self.phase == Phase::Open {
            self.begin_closing();
        }
        false
    }

    /// No more requests are read: the response queued (or awaited) is the last.
    fn begin_closing(&mut self) {
        self.phase = Phase::Closing;
        self.input.clear();
        self.parse.reset();
    }
}

/// An answer as an HTTP response; returns its status.
fn write_answer(out: &mut Vec<u8>, answer: Answer<'_>, framing: Framing) -> u16 {
    let Framing {
        keep_alive,
        head_only,
        ..
    } = framing;
    match answer {
        Answer::Json { status, body } => {
            if head_only {
                write_head(out, status, body.len(), keep_alive, None);
            } else {
                write_json_response(out, status, body, keep_alive, None);
            }
            status
        }
        Answer::JsonWithCookie {
            status,
            body,
            cookie,
        } => {
            let header = Some(Header::SetCookie(cookie));
            if head_only {
                write_head(out, status, body.len(), keep_alive, header);
            } else {
                write_json_response(out, status, body, keep_alive, header);
            }
            status
        }
        Answer::Metrics(body) => {
            write_metrics_head(out, body.len(), keep_alive);
            if !head_only {
                out.extend_from_slice(body);
            }
            200
        }
        Answer::Refused(refusal) => {
            if head_only {
                let len = error_body_with_reason_len(refusal.body());
                write_head(out, refusal.status, len, keep_alive, refusal.header);
            } else {
                write_error_with_reason(
                    out,
                    refusal.status,
                    refusal.body(),
                    keep_alive,
                    refusal.header,
                );
            }
            refusal.status
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_costs_less_than_its_allowance() {
        // Its slot in `Clients` (the struct in an Option, a generation and a
        // flag) and the allocator's header on each of its three buffers fit
        // the figure the memory arithmetic in config.rs counts.
        let slot = std::mem::size_of::<Option<Client>>() + 8 + 3 * 16;
        assert!(slot <= crate::config::CLIENT_BYTES_MAX, "{slot}");
    }
}
