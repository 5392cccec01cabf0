//! One Postgres connection as a state machine driven by readiness events.
//!
//! Phases: `Connecting` (non-blocking connect in flight) -> `Authenticating`
//! (startup sent; the methods `require_auth` accepts, see `pg::auth`) -> `Starting`
//! (AuthenticationOk; ParameterStatus/BackendKeyData until ReadyForQuery) ->
//! [`Checking` (`target_session_attrs` asks for a writable server and the
//! server did not report `in_hot_standby` and `default_transaction_read_only`
//! at startup, as servers before 14 do not: ask)] -> `Preparing` (Parse +
//! Describe of every statement, checked against the declared types) ->
//! `Ready`.
//!
//! A server that will not do for `target_session_attrs` (a hot standby, or
//! read-only by default) ends the connection with `ConnectionError::not_writable`
//! before anything is prepared, so the pool tries its next host; so does a
//! server that says so later (a ParameterStatus while `Ready`, or a
//! request refused as `read_only_sql_transaction`): a promoted standby, a
//! fenced primary.
//!
//! In `Ready`, requests are `Bind/Execute/Sync` appended to `write_buf`, and
//! `pending` is the FIFO of requests whose answers have not arrived: the
//! server answers strictly in order and every request ends with its own
//! ReadyForQuery, so the front of the FIFO owns everything up to the next
//! `Z`. Messages of an answer stay in `read_buf` until that `Z` arrives, then
//! the caller sees them in place (`Rows`) and they are dropped.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use mio::event::Source;
use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};
use postgres_protocol::message::frontend;
use postgres_protocol::IsNull;

use crate::config::{PG_READ_BUF_BYTES_INITIAL, PG_READ_BUF_BYTES_MAX, PG_WRITE_BUF_BYTES_INITIAL};
use crate::nonblocking::{self, Received};
use crate::pg::auth::Authentication;
use crate::pg::backend::{self, tag, BackendKey, DbError, ProtocolError};
use crate::pg::reply::{Reply, Rows};
use crate::pg::types::{Kind, Param, Statement, StatementId};
use crate::pg::url::ConnectConfig;

/// All parameters and all result columns travel in binary format.
const BINARY: i16 = 1;

/// Where to connect, after name resolution.
#[derive(Debug, Clone)]
pub(crate) enum Target<'a> {
    Tcp(SocketAddr),
    Unix(&'a Path),
}

pub(crate) enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Socket {
    /// Starts a non-blocking connect.
    pub(crate) fn connect(target: Target<'_>) -> io::Result<Socket> {
        Ok(match target {
            Target::Tcp(addr) => Socket::Tcp(TcpStream::connect(addr)?),
            Target::Unix(path) => Socket::Unix(UnixStream::connect(path)?),
        })
    }

    pub(crate) fn source(&mut self) -> &mut dyn Source {
        match self {
            Socket::Tcp(s) => s,
            Socket::Unix(s) => s,
        }
    }

    /// `Ok(true)` once a non-blocking connect has completed (mio's recipe:
    /// check `take_error`, then whether the peer address is known).
    pub(crate) fn is_connected(&mut self) -> io::Result<bool> {
        let (error, peer) = match self {
            Socket::Tcp(s) => (s.take_error()?, s.peer_addr().map(|_| ())),
            Socket::Unix(s) => (s.take_error()?, s.peer_addr().map(|_| ())),
        };
        if let Some(e) = error {
            return Err(e);
        }
        match peer {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.read(buf),
            Socket::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write(buf),
            Socket::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PrepareStep {
    ParseComplete,
    ParameterDescription,
    RowDescription,
}

enum Phase {
    Connecting,
    Authenticating {
        auth: Authentication,
    },
    Starting,
    /// The answer to [`CHECK_WRITABLE_SQL`]; `seen` once its row arrived.
    Checking {
        seen: bool,
    },
    Preparing {
        statement: usize,
        step: PrepareStep,
    },
    Ready,
}

/// Asked of a server that did not report its state at startup (before
/// PostgreSQL 14): a hot standby's transactions are read-only too, so the
/// second column alone is what libpq asks for `read-write`.
const CHECK_WRITABLE_SQL: &str =
    "SELECT pg_catalog.pg_is_in_recovery(), pg_catalog.current_setting('transaction_read_only')";

/// SQLSTATE of a write refused because the transaction is read-only.
const READ_ONLY_SQL_TRANSACTION: &str = "25006";

/// What the server said of itself that `target_session_attrs` judges by.
#[derive(Debug, Clone, Copy, Default)]
struct ServerState {
    in_hot_standby: Option<bool>,
    read_only: Option<bool>,
}

impl ServerState {
    /// Takes in a ParameterStatus; `true` when it was one of ours.
    fn note(&mut self, body: &[u8]) -> Result<bool, ProtocolError> {
        let (name, value) = backend::parameter_status(body)?;
        let slot = match name {
            b"in_hot_standby" => &mut self.in_hot_standby,
            b"default_transaction_read_only" => &mut self.read_only,
            _ => return Ok(false),
        };
        *slot = backend::text_bool(value);
        Ok(true)
    }

    fn describe(&self) -> &'static str {
        match (self.in_hot_standby, self.read_only) {
            (Some(true), _) => "a hot standby",
            (_, Some(true)) => "read-only by default",
            _ => "of unknown state",
        }
    }
}

/// A request written to this connection and not yet answered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pending {
    pub tag: u64,
    pub statement: StatementId,
    /// What its statement is (`Statement::kind`).
    pub kind: Kind,
}

/// The session settings every connection starts with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionDeadlines {
    /// `statement_timeout`; zero leaves the server's setting.
    pub statement_timeout: Duration,
    /// `lock_timeout`; zero leaves the server's setting.
    pub lock_timeout: Duration,
}

/// Why a connection had to be closed; the pool logs it and fails whatever
/// was pending on the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionError(pub String);

impl ConnectionError {
    /// The server is not one `target_session_attrs` accepts.
    #[cold]
    fn not_writable(state: &ServerState, when: &str) -> ConnectionError {
        ConnectionError(format!(
            "not a writable server: {when} it is {}",
            state.describe()
        ))
    }
}

impl From<ProtocolError> for ConnectionError {
    #[cold]
    fn from(e: ProtocolError) -> Self {
        ConnectionError(format!("protocol error: {}", e.0))
    }
}

impl From<io::Error> for ConnectionError {
    #[cold]
    fn from(e: io::Error) -> Self {
        ConnectionError(format!("socket error: {e}"))
    }
}

/// What the connection needs to know about its surroundings while it works.
pub(crate) struct Context<'a> {
    pub config: &'a ConnectConfig,
    pub statements: &'a [Statement],
    pub now: Instant,
}

pub(crate) struct Connection {
    socket: Socket,
    phase: Phase,
    /// Unconsumed input is `read_buf[read_head..read_tail]`; `scan` is where
    /// the next unexamined message starts (inside the answer being collected).
    read_buf: Vec<u8>,
    read_head: usize,
    read_tail: usize,
    scan: usize,
    /// Start of an ErrorResponse inside the answer being collected.
    answer_error_at: Option<usize>,
    write_buf: BytesMut,
    pending: VecDeque<Pending>,
    /// Requests in `pending` whose statement writes or locks rows.
    writes_in_flight: usize,
    /// Requests in `pending` whose statement is slow by design.
    slow_in_flight: usize,
    /// Since when the server has been working on the front of `pending`:
    /// when it was sent to an idle connection, or when the answer before
    /// it arrived. Pipelined requests wait their turn, so their own send
    /// time says nothing about how long the server has spent on them.
    front_since: Instant,
    /// A CancelRequest went out for the current front request.
    front_cancelled: bool,
    backend_key: Option<BackendKey>,
    server: ServerState,
    /// The server said it stopped being one `target_session_attrs` accepts:
    /// close after the answer in progress.
    leaving: bool,
    pub opened_at: Instant,
}

impl Connection {
    /// Starts a non-blocking connect and queues the startup message.
    pub fn open(
        target: Target<'_>,
        config: &ConnectConfig,
        registry: &Registry,
        token: Token,
        pipeline_depth_max: usize,
        deadlines: SessionDeadlines,
        now: Instant,
    ) -> io::Result<Connection> {
        let mut socket = Socket::connect(target)?;
        // Edge-triggered: both interests stay registered for the connection's
        // life, and a WRITABLE edge only fires after a full send buffer drains.
        registry.register(
            socket.source(),
            token,
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let mut write_buf = BytesMut::with_capacity(PG_WRITE_BUF_BYTES_INITIAL);
        // Any run-time parameter may ride in the startup message; the
        // deadlines are set this way so no statement of the session, the
        // preparation included, ever runs without them.
        let statement_timeout = deadlines.statement_timeout.as_millis().to_string();
        let lock_timeout = deadlines.lock_timeout.as_millis().to_string();
        let mut params = vec![
            ("user", config.user.as_str()),
            ("database", config.database.as_str()),
            ("application_name", config.application_name.as_str()),
            ("client_encoding", "UTF8"),
        ];
        if !deadlines.statement_timeout.is_zero() {
            params.push(("statement_timeout", &statement_timeout));
        }
        if !deadlines.lock_timeout.is_zero() {
            params.push(("lock_timeout", &lock_timeout));
        }
        frontend::startup_message(params, &mut write_buf)?;
        Ok(Connection {
            socket,
            phase: Phase::Connecting,
            read_buf: vec![0; PG_READ_BUF_BYTES_INITIAL],
            read_head: 0,
            read_tail: 0,
            scan: 0,
            answer_error_at: None,
            write_buf,
            pending: VecDeque::with_capacity(pipeline_depth_max),
            writes_in_flight: 0,
            slow_in_flight: 0,
            front_since: now,
            front_cancelled: false,
            backend_key: None,
            server: ServerState::default(),
            leaving: false,
            opened_at: now,
        })
    }

    pub fn is_ready(&self) -> bool {
        matches!(self.phase, Phase::Ready)
    }

    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Whether a request that writes or locks rows is in flight.
    pub fn carries_writes(&self) -> bool {
        self.writes_in_flight > 0
    }

    /// Whether a request whose statement is slow by design is in flight.
    pub fn carries_slow(&self) -> bool {
        self.slow_in_flight > 0
    }

    /// Since when the server has been working on the oldest unanswered
    /// request, if any.
    pub fn front_since(&self) -> Option<Instant> {
        (!self.pending.is_empty()).then_some(self.front_since)
    }

    /// Whether a CancelRequest went out for the oldest unanswered request.
    pub fn front_cancelled(&self) -> bool {
        self.front_cancelled
    }

    /// The key a CancelRequest for this session needs, once the server
    /// sent it (during startup), and marks the front request cancelled.
    pub fn cancel_front(&mut self) -> Option<BackendKey> {
        self.front_cancelled = true;
        self.backend_key
    }

    pub fn has_unsent_bytes(&self) -> bool {
        !self.write_buf.is_empty()
    }

    /// Appends one request (Bind, Execute, Sync) to the outgoing buffer.
    pub fn push_request(
        &mut self,
        tag: u64,
        id: StatementId,
        statement: &Statement,
        params: &[Param<'_>],
        now: Instant,
    ) {
        debug_assert!(self.is_ready());
        encode_request(&mut self.write_buf, statement, params);
        self.push_pending(tag, id, statement.kind(), now);
    }

    /// Appends a request that was encoded earlier (it waited in the pool's
    /// queue): `bytes` is exactly its Bind, Execute and Sync.
    pub fn push_encoded(
        &mut self,
        tag: u64,
        statement: StatementId,
        kind: Kind,
        bytes: &[u8],
        now: Instant,
    ) {
        debug_assert!(self.is_ready());
        self.write_buf.extend_from_slice(bytes);
        self.push_pending(tag, statement, kind, now);
    }

    fn push_pending(&mut self, tag: u64, statement: StatementId, kind: Kind, now: Instant) {
        if self.pending.is_empty() {
            self.front_since = now;
            self.front_cancelled = false;
        }
        self.writes_in_flight += usize::from(kind.writes);
        self.slow_in_flight += usize::from(kind.slow);
        self.pending.push_back(Pending {
            tag,
            statement,
            kind,
        });
    }

    /// Takes every unanswered request off the connection (it is being closed).
    pub fn drain_pending(&mut self) -> impl Iterator<Item = Pending> + '_ {
        self.writes_in_flight = 0;
        self.slow_in_flight = 0;
        self.pending.drain(..)
    }

    pub fn deregister(&mut self, registry: &Registry) {
        // Closing the socket would drop it from epoll anyway; deregistering
        // first keeps mio's bookkeeping exact. Failure changes nothing.
        let _ = registry.deregister(self.socket.source());
    }

    /// Queues a Terminate so the server ends the session cleanly.
    pub fn terminate(&mut self) {
        frontend::terminate(&mut self.write_buf);
    }

    /// Handles a readiness event: completes the connect, reads and processes
    /// everything available, writes whatever the startup dialogue produced.
    /// Answers to requests go to `on_reply`. `read_closed`: the event says
    /// the server closed its side, so the socket is read to its end.
    pub fn on_event(
        &mut self,
        readable: bool,
        read_closed: bool,
        writable: bool,
        ctx: &Context<'_>,
        on_reply: &mut dyn FnMut(u64, Reply<'_>),
    ) -> Result<(), ConnectionError> {
        if let Phase::Connecting = self.phase {
            let connected = self
                .socket
                .is_connected()
                .map_err(|e| ConnectionError(format!("cannot connect: {e}")))?;
            if !connected {
                return Ok(()); // spurious wake-up: still connecting
            }
            if let Socket::Tcp(s) = &self.socket {
                // Requests are small and latency matters: no Nagle delay.
                s.set_nodelay(true)?;
            }
            self.phase = Phase::Authenticating {
                auth: Authentication::Started,
            };
        }
        if readable {
            self.read_and_process(read_closed, ctx, on_reply)?;
        }
        if writable || !self.is_ready() {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes as much of the outgoing buffer as the socket takes.
    pub fn flush(&mut self) -> Result<(), ConnectionError> {
        if let Phase::Connecting = self.phase {
            return Ok(());
        }
        match nonblocking::write(&mut self.socket, &self.write_buf) {
            Ok(written) => {
                self.write_buf.advance(written);
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::WriteZero => Err(server_closed()),
            Err(e) => Err(e.into()),
        }
    }

    /// Edge-triggered: read until the socket would block, or a short read
    /// shows it drained, processing each chunk as it arrives so the buffer
    /// holds at most one unfinished answer plus whatever follows it. When
    /// the server closed its side, its last bytes and the end of the stream
    /// came with one edge: a short read says nothing then, and only reading
    /// on finds the end (a server that died right after answering: without
    /// it the connection would look alive until `request_timeout`).
    fn read_and_process(
        &mut self,
        read_closed: bool,
        ctx: &Context<'_>,
        on_reply: &mut dyn FnMut(u64, Reply<'_>),
    ) -> Result<(), ConnectionError> {
        loop {
            self.make_room()?;
            match nonblocking::read(&mut self.socket, &mut self.read_buf[self.read_tail..])? {
                Received::Data { len, drained } => {
                    self.read_tail += len;
                    self.process(ctx, on_reply)?;
                    if drained && !read_closed {
                        return Ok(());
                    }
                }
                Received::WouldBlock => return Ok(()),
                Received::Eof => return Err(server_closed()),
            }
        }
    }

    fn make_room(&mut self) -> Result<(), ConnectionError> {
        if self.read_head == self.read_tail {
            self.read_head = 0;
            self.read_tail = 0;
            self.scan = 0;
            self.answer_error_at = None;
        }
        if self.read_tail < self.read_buf.len() {
            return Ok(());
        }
        if self.read_head > 0 {
            let shift = self.read_head;
            self.read_buf.copy_within(shift..self.read_tail, 0);
            self.read_tail -= shift;
            self.scan -= shift;
            self.answer_error_at = self.answer_error_at.map(|at| at - shift);
            self.read_head = 0;
        } else if self.read_buf.len() < PG_READ_BUF_BYTES_MAX {
            let grown = (self.read_buf.len() * 2).min(PG_READ_BUF_BYTES_MAX);
            self.read_buf.resize(grown, 0);
        } else {
            return Err(ConnectionError(
                "answer exceeds the read buffer limit".into(),
            ));
        }
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &Context<'_>,
        on_reply: &mut dyn FnMut(u64, Reply<'_>),
    ) -> Result<(), ConnectionError> {
        loop {
            let Some((frame, len)) =
                backend::next_frame(&self.read_buf[self.scan..self.read_tail])?
            else {
                return Ok(());
            };
            let start = self.scan;
            let (tag, body) = (frame.tag, start + 5..start + len);
            self.scan += len;
            if self.is_ready() {
                self.on_answer_message(tag, start, body, ctx, on_reply)?;
            } else {
                self.on_startup_message(tag, body, ctx)?;
                self.read_head = self.scan;
            }
        }
    }

    fn on_answer_message(
        &mut self,
        tag: u8,
        start: usize,
        body: std::ops::Range<usize>,
        ctx: &Context<'_>,
        on_reply: &mut dyn FnMut(u64, Reply<'_>),
    ) -> Result<(), ConnectionError> {
        let answering = self.pending.front().copied();
        match tag {
            // Out-of-band: not part of any answer. Between answers they are
            // dropped at once; inside one the row iterator skips them.
            tag::NOTICE_RESPONSE | tag::PARAMETER_STATUS | tag::NOTIFICATION_RESPONSE => {
                if tag == tag::PARAMETER_STATUS && self.server.note(&self.read_buf[body])? {
                    // The answer it came with is good: the session ends
                    // once that answer is delivered.
                    self.leaving = ctx
                        .config
                        .target_session_attrs
                        .accepts(self.server.in_hot_standby, self.server.read_only)
                        == Some(false);
                }
                if self.read_head == start {
                    self.read_head = self.scan;
                }
                return Ok(());
            }
            tag::ERROR_RESPONSE => {
                let error = DbError::parse(&self.read_buf[body])?;
                if error.ends_session() {
                    return Err(ConnectionError(format!(
                        "server ended the session: {}",
                        error.message
                    )));
                }
                if error.code == READ_ONLY_SQL_TRANSACTION
                    && ctx.config.target_session_attrs.needs_check()
                {
                    // Nothing of the request was done: its caller hears
                    // "unavailable", and the pool looks for the primary.
                    self.server.read_only = Some(true);
                    return Err(ConnectionError::not_writable(
                        &self.server,
                        "a write was refused:",
                    ));
                }
                if self.answer_error_at.is_none() {
                    self.answer_error_at = Some(start);
                }
            }
            tag::DATA_ROW => {
                let pending =
                    answering.ok_or_else(|| ProtocolError::new("data row with no request"))?;
                let columns = ctx.statements[pending.statement].column_types;
                backend::validate_data_row(&self.read_buf[body], columns)?;
            }
            tag::BIND_COMPLETE
            | tag::COMMAND_COMPLETE
            | tag::EMPTY_QUERY_RESPONSE
            | tag::NO_DATA
            | tag::PORTAL_SUSPENDED => {}
            tag::READY_FOR_QUERY => return self.finish_answer(start, ctx.now, on_reply),
            other => {
                return Err(ProtocolError::new(format!(
                    "unexpected message {:?} in an answer",
                    other as char
                ))
                .into())
            }
        }
        if answering.is_none() {
            return Err(
                ProtocolError::new(format!("message {:?} with no request", tag as char)).into(),
            );
        }
        Ok(())
    }

    /// The ReadyForQuery at `start` ends the answer of the oldest pending
    /// request: it gets its rows (or its error), seen in place.
    fn finish_answer(
        &mut self,
        start: usize,
        now: Instant,
        on_reply: &mut dyn FnMut(u64, Reply<'_>),
    ) -> Result<(), ConnectionError> {
        let pending = self
            .pending
            .pop_front()
            .ok_or_else(|| ProtocolError::new("ReadyForQuery with no request"))?;
        self.writes_in_flight -= usize::from(pending.kind.writes);
        self.slow_in_flight -= usize::from(pending.kind.slow);
        self.front_since = now;
        self.front_cancelled = false;
        let answer = &self.read_buf[self.read_head..start];
        let reply = match self.answer_error_at {
            Some(at) => {
                let (frame, _) = backend::next_frame(&self.read_buf[at..self.scan])?
                    .ok_or_else(|| ProtocolError::new("error message vanished"))?;
                Reply::Failed(DbError::parse(frame.body)?)
            }
            None => Reply::Rows(Rows::new(answer)),
        };
        on_reply(pending.tag, reply);
        self.answer_error_at = None;
        self.read_head = self.scan;
        if self.leaving {
            return Err(ConnectionError::not_writable(&self.server, "now"));
        }
        Ok(())
    }

    fn on_startup_message(
        &mut self,
        tag: u8,
        body: std::ops::Range<usize>,
        ctx: &Context<'_>,
    ) -> Result<(), ConnectionError> {
        let body = &self.read_buf[body];
        match tag {
            tag::PARAMETER_STATUS => {
                self.server.note(body)?;
                return Ok(());
            }
            tag::NOTICE_RESPONSE => return Ok(()),
            tag::BACKEND_KEY_DATA => {
                self.backend_key = Some(backend::backend_key(body)?);
                return Ok(());
            }
            tag::ERROR_RESPONSE => return Err(startup_error(body, &self.phase, ctx)),
            _ => {}
        }
        match &mut self.phase {
            Phase::Authenticating { auth } if tag == tag::AUTHENTICATION => {
                let request = backend::auth_request(body)?;
                if auth.on_request(request, ctx.config, &mut self.write_buf)? {
                    self.phase = Phase::Starting;
                }
            }
            Phase::Starting if tag == tag::READY_FOR_QUERY => {
                let attrs = ctx.config.target_session_attrs;
                match attrs.accepts(self.server.in_hot_standby, self.server.read_only) {
                    Some(true) => self.start_preparing(ctx)?,
                    Some(false) => {
                        return Err(ConnectionError::not_writable(&self.server, "at startup"))
                    }
                    None => {
                        frontend::query(CHECK_WRITABLE_SQL, &mut self.write_buf)?;
                        self.phase = Phase::Checking { seen: false };
                    }
                }
            }
            Phase::Checking { seen } => match tag {
                tag::ROW_DESCRIPTION | tag::COMMAND_COMPLETE => {}
                tag::DATA_ROW if !*seen => {
                    *seen = true;
                    let mut columns = backend::DataRowColumns::new(body);
                    let mut next = || -> Result<Option<bool>, ProtocolError> {
                        let value = columns.next().transpose()?.flatten();
                        Ok(value.and_then(backend::text_bool))
                    };
                    self.server.in_hot_standby = next()?;
                    self.server.read_only = next()?;
                }
                tag::READY_FOR_QUERY if *seen => {
                    let attrs = ctx.config.target_session_attrs;
                    if attrs.accepts(self.server.in_hot_standby, self.server.read_only)
                        != Some(true)
                    {
                        return Err(ConnectionError::not_writable(&self.server, "asked,"));
                    }
                    self.start_preparing(ctx)?;
                }
                _ => {
                    return Err(ProtocolError::new(format!(
                        "unexpected message {:?} while checking the server's state",
                        tag as char
                    ))
                    .into())
                }
            },
            Phase::Preparing { statement, step } => {
                if let Some(next) = check_prepare(tag, body, statement, step, ctx.statements)? {
                    self.phase = next;
                }
            }
            _ => {
                return Err(ProtocolError::new(format!(
                    "unexpected message {:?} during startup",
                    tag as char
                ))
                .into())
            }
        }
        Ok(())
    }

    /// The server will do: prepare every statement (or be ready at once).
    fn start_preparing(&mut self, ctx: &Context<'_>) -> Result<(), ConnectionError> {
        self.phase = if ctx.statements.is_empty() {
            Phase::Ready
        } else {
            encode_prepares(ctx.statements, &mut self.write_buf)?;
            Phase::Preparing {
                statement: 0,
                step: PrepareStep::ParseComplete,
            }
        };
        Ok(())
    }
}

#[cold]
fn server_closed() -> ConnectionError {
    ConnectionError("server closed the connection".into())
}

#[cold]
fn startup_error(body: &[u8], phase: &Phase, ctx: &Context<'_>) -> ConnectionError {
    let error = match DbError::parse(body) {
        Ok(e) => e,
        Err(e) => return e.into(),
    };
    let during = match phase {
        Phase::Preparing { statement, .. } => {
            let name = ctx.statements.get(*statement).map_or("?", |s| s.name);
            format!("preparing statement {name}")
        }
        Phase::Authenticating { .. } => "authentication".to_string(),
        _ => "startup".to_string(),
    };
    ConnectionError(format!(
        "{during} failed: {} ({} {})",
        error.message, error.severity, error.code
    ))
}

/// Parse + Describe for every statement, then one Sync.
fn encode_prepares(statements: &[Statement], out: &mut BytesMut) -> io::Result<()> {
    for statement in statements {
        frontend::parse(
            statement.name,
            statement.sql,
            statement.param_types.iter().copied(),
            out,
        )?;
        frontend::describe(b'S', statement.name, out)?;
    }
    frontend::sync(out);
    Ok(())
}

/// One step of checking the server's description of each prepared statement
/// against the declared types. Returns the next phase when all are done.
fn check_prepare(
    tag: u8,
    body: &[u8],
    statement: &mut usize,
    step: &mut PrepareStep,
    statements: &[Statement],
) -> Result<Option<Phase>, ConnectionError> {
    let expected = (*statement < statements.len()).then(|| &statements[*statement]);
    match (tag, *step, expected) {
        (tag::PARSE_COMPLETE, PrepareStep::ParseComplete, Some(_)) => {
            *step = PrepareStep::ParameterDescription
        }
        (tag::PARAMETER_DESCRIPTION, PrepareStep::ParameterDescription, Some(s)) => {
            let actual = backend::parameter_types(body)?;
            if actual != s.param_types {
                return Err(mismatch(
                    s,
                    "parameter types (OIDs)",
                    s.param_types,
                    &actual[..],
                ));
            }
            *step = PrepareStep::RowDescription;
        }
        (tag::ROW_DESCRIPTION | tag::NO_DATA, PrepareStep::RowDescription, Some(s)) => {
            let columns = if tag == tag::NO_DATA {
                Vec::new()
            } else {
                backend::row_description(body)?
            };
            let types: Vec<u32> = columns.iter().map(|(_, t)| *t).collect();
            if types != s.column_types {
                return Err(mismatch(
                    s,
                    "column types (OIDs)",
                    s.column_types,
                    &types[..],
                ));
            }
            let names: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
            if !s.column_names.is_empty() && names != s.column_names {
                return Err(mismatch(s, "column names", s.column_names, &names[..]));
            }
            *statement += 1;
            *step = PrepareStep::ParseComplete;
        }
        (tag::READY_FOR_QUERY, PrepareStep::ParseComplete, None) => return Ok(Some(Phase::Ready)),
        _ => {
            return Err(ProtocolError::new(format!(
                "unexpected message {:?} while preparing",
                tag as char
            ))
            .into())
        }
    }
    Ok(None)
}

#[cold]
fn mismatch<T: std::fmt::Debug + ?Sized>(
    statement: &Statement,
    what: &str,
    expected: &T,
    actual: &T,
) -> ConnectionError {
    ConnectionError(format!(
        "statement {} does not match the database: its {what} are {actual:?}, the code expects {expected:?}",
        statement.name
    ))
}

/// Bind (unnamed portal, binary parameters and results), Execute, Sync: the
/// Sync makes each request its own implicit transaction and error scope.
pub(crate) fn encode_request(out: &mut BytesMut, statement: &Statement, params: &[Param<'_>]) {
    let result = frontend::bind(
        "",
        statement.name,
        [BINARY],
        params.iter(),
        |param, buf| {
            Ok(if param.encode(buf) {
                IsNull::No
            } else {
                IsNull::Yes
            })
        },
        [BINARY],
        out,
    );
    // Only more than 32767 parameters or a value over 2 GiB can fail; both
    // are programmer errors given the bounded inputs the API validates.
    assert!(
        result.is_ok(),
        "bind message for {} cannot be encoded",
        statement.name
    );
    frontend::execute("", 0, out).expect("unnamed portal encodes");
    frontend::sync(out);
}
