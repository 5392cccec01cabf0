//! One client connection: its socket, unparsed input, unsent output, and
//! what it waits for. A connection has at most one request at the database
//! at a time; pipelined requests wait, unparsed, in `input` (or the socket)
//! until the previous answer is written, which keeps answers in request
//! order without any reordering machinery.

use std::io;
use std::net::Shutdown;
use std::time::Instant;

use mio::net::TcpStream;

use crate::api::Awaiting;
use crate::config::{HTTP_INPUT_BYTES_MAX, HTTP_OUTPUT_BYTES_KEPT, HTTP_OUTPUT_BYTES_MAX};
use crate::nonblocking::{self, Received};

/// A request at the database and how its answer must be framed.
#[derive(Debug, Clone, Copy)]
pub struct InFlight {
    pub awaiting: Awaiting,
    pub keep_alive: bool,
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading and answering requests.
    Open,
    /// The last response is queued (Connection: close, an error, or the peer
    /// half-closed); close once it is written.
    Closing,
    /// Response written and our side shut down; unread input is discarded
    /// until the peer closes or `HTTP_LINGER_TIMEOUT` passes, so the client
    /// reads the response instead of a reset.
    Lingering { since: Instant },
}

pub struct Client {
    pub socket: TcpStream,
    pub input: Vec<u8>,
    pub output: Vec<u8>,
    output_sent: usize,
    /// Decoded chunked request bodies.
    pub chunked_body: Vec<u8>,
    pub in_flight: Option<InFlight>,
    pub phase: Phase,
    /// Reading stopped with data possibly left in the socket (edge-triggered
    /// readiness will not report it again): read when unblocked.
    pub read_paused: bool,
    pub last_active: Instant,
    /// When the first byte of the request now being received arrived.
    pub partial_since: Option<Instant>,
    pub continue_sent: bool,
    /// Already on the loop's list of connections to flush this turn.
    pub queued_for_flush: bool,
}

/// What a read attempt found.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// New bytes were appended to `input`; there may be more.
    Data,
    /// New bytes were appended and the socket is drained: the read returned
    /// less than asked. For a stream socket under edge-triggered readiness
    /// that is as good as `WouldBlock` (epoll(7), "Q9"): data arriving later
    /// raises a new edge. Saves the read that would only say EAGAIN.
    DataDrained,
    /// Nothing more for now.
    WouldBlock,
    /// Not reading: a request is in flight, the connection is closing, or a
    /// buffer is full. `read_paused` is set.
    Paused,
    /// The peer closed its side.
    Eof,
}

impl From<Received> for ReadOutcome {
    fn from(received: Received) -> ReadOutcome {
        match received {
            Received::Data { drained: false, .. } => ReadOutcome::Data,
            Received::Data { drained: true, .. } => ReadOutcome::DataDrained,
            Received::WouldBlock => ReadOutcome::WouldBlock,
            Received::Eof => ReadOutcome::Eof,
        }
    }
}

impl Client {
    pub fn new(socket: TcpStream, now: Instant) -> Client {
        Client {
            socket,
            input: Vec::new(),
            output: Vec::new(),
            output_sent: 0,
            chunked_body: Vec::new(),
            in_flight: None,
            phase: Phase::Open,
            read_paused: false,
            last_active: now,
            partial_since: None,
            continue_sent: false,
            queued_for_flush: false,
        }
    }

    pub fn unsent_output(&self) -> usize {
        self.output.len() - self.output_sent
    }

    /// Whether the next request may be parsed and dispatched now.
    pub fn can_take_request(&self) -> bool {
        self.phase == Phase::Open
            && self.in_flight.is_none()
            && self.unsent_output() < HTTP_OUTPUT_BYTES_MAX
    }

    /// Reads once into `scratch` and appends to `input`, unless the
    /// connection should not take more input now.
    pub fn read_some(&mut self, scratch: &mut [u8]) -> io::Result<ReadOutcome> {
        if let Phase::Lingering { .. } = self.phase {
            return self.discard_input(scratch);
        }
        let room = HTTP_INPUT_BYTES_MAX
            .saturating_sub(self.input.len())
            .min(scratch.len());
        if !self.can_take_request() || room == 0 {
            self.read_paused = true;
            return Ok(ReadOutcome::Paused);
        }
        self.read_paused = false;
        let scratch = &mut scratch[..room];
        let received = nonblocking::read(&mut self.socket, scratch)?;
        if let Received::Data { len, .. } = received {
            self.input.extend_from_slice(&scratch[..len]);
        }
        Ok(ReadOutcome::from(received))
    }

    fn discard_input(&mut self, scratch: &mut [u8]) -> io::Result<ReadOutcome> {
        nonblocking::read(&mut self.socket, scratch).map(ReadOutcome::from)
    }

    /// Writes pending output. `Ok(true)` when everything is sent.
    pub fn write_out(&mut self) -> io::Result<bool> {
        self.output_sent += nonblocking::write(&mut self.socket, &self.output[self.output_sent..])?;
        if self.output_sent < self.output.len() {
            return Ok(false); // the socket is full; a writable event follows
        }
        self.output.clear();
        self.output_sent = 0;
        // A long list answer can grow the buffer; idle connections should not
        // keep that memory.
        if self.output.capacity() > HTTP_OUTPUT_BYTES_MAX {
            self.output.shrink_to(HTTP_OUTPUT_BYTES_KEPT);
        }
        Ok(true)
    }

    /// Everything is written and the connection is closing: shut down our
    /// side and start lingering.
    pub fn start_lingering(&mut self, now: Instant) {
        let _ = self.socket.shutdown(Shutdown::Write);
        self.phase = Phase::Lingering { since: now };
        self.input.clear();
    }

    /// Drops the consumed request from the front of `input`.
    pub fn consume_input(&mut self, len: usize) {
        self.input.drain(..len);
        if self.input.is_empty() && self.input.capacity() > HTTP_INPUT_BYTES_MAX {
            self.input.shrink_to(0);
        }
    }
}
