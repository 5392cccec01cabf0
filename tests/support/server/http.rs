//! A tiny HTTP/1.1 client over `std::net::TcpStream`, strict on purpose: we
//! test our own framing, so nothing here is forgiving. A response must have
//! a well-formed status line and headers and exactly one `Content-Length`,
//! and its body is exactly that many bytes; whatever follows stays buffered
//! for the next response on the connection.

use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::json::{self, Json};

/// How long a read may wait for the server before the test fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A response head larger than this is a server bug, not a slow network.
const RESPONSE_HEAD_BYTES_MAX: usize = 16 * 1024;
const READ_CHUNK_BYTES: usize = 16 * 1024;

/// One parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: String,
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} {} {}", self.version, self.status, self.reason)?;
        for (name, value) in &self.headers {
            writeln!(f, "{name}: {value}")?;
        }
        write!(f, "\n{}", String::from_utf8_lossy(&self.body))
    }
}

impl Response {
    /// The value of header `name` (case-insensitive); panics if it appears
    /// more than once.
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut found = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name));
        let first = found.next().map(|(_, v)| v.as_str());
        assert!(found.next().is_none(), "header {name} repeated in:\n{self}");
        first
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// True if the server announced it will close the connection.
    pub fn says_close(&self) -> bool {
        self.header("Connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }

    /// Asserts the status and a JSON body (`Content-Type: application/json`,
    /// strict JSON) and returns the body.
    pub fn json(&self, status: u16) -> Json {
        assert_eq!(self.status, status, "unexpected status in:\n{self}");
        self.json_any_status()
    }

    /// Asserts `status` and an error body with exactly this `reason` code;
    /// returns the message.
    pub fn error_reason(&self, status: u16, reason: &str) -> String {
        let message = self.error(status, None);
        let body = self.json(status);
        assert_eq!(
            body.get("reason").as_str(),
            reason,
            "reason code in:\n{self}"
        );
        message
    }

    /// Like [`json`](Self::json) without a status check.
    pub fn json_any_status(&self) -> Json {
        let content_type = self.header("Content-Type").unwrap_or("");
        assert!(
            content_type == "application/json" || content_type.starts_with("application/json;"),
            "Content-Type should be application/json in:\n{self}"
        );
        json::parse(&self.body).unwrap_or_else(|e| panic!("body is not strict JSON ({e}):\n{self}"))
    }

    /// Asserts `status` and an error body: exactly `{"error": "<non-empty>"}`,
    /// or that and a non-empty `"reason"` code (platform.md's conventions).
    /// With `field`, the message must name it. Returns the message.
    pub fn error(&self, status: u16, field: Option<&str>) -> String {
        let body = self.json(status);
        let keys = body.keys();
        assert!(
            keys == ["error"] || keys == ["error", "reason"],
            "error body shape in:\n{self}"
        );
        if keys.len() == 2 {
            assert!(
                !body.get("reason").as_str().is_empty(),
                "empty reason in:\n{self}"
            );
        }
        let message = body.get("error").as_str().to_owned();
        assert!(!message.is_empty(), "empty error message in:\n{self}");
        if let Some(field) = field {
            assert!(
                message.contains(field),
                "error message should name {field:?} in:\n{self}"
            );
        }
        message
    }
}

/// Why no response could be read.
#[derive(Debug)]
pub enum ReadError {
    /// The server closed (EOF or reset) before sending any byte of a response.
    Closed,
    /// Nothing complete within the read timeout; the bytes so far.
    Timeout(Vec<u8>),
    /// The bytes are not a well-formed response.
    Malformed(String),
    /// Closed in the middle of a response.
    Truncated(Vec<u8>),
    Io(io::Error),
}

/// Bytes of a request with `Host`, and with `Content-Type` and
/// `Content-Length` when there is a body.
pub fn request_bytes(method: &str, path: &str, body: Option<&[u8]>) -> Vec<u8> {
    request_bytes_with_headers(method, path, &[], body)
}

/// Bytes of a request like [`request_bytes`], with `headers` after `Host`.
pub fn request_bytes_with_headers(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n").into_bytes();
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    if let Some(body) = body {
        out.extend_from_slice(
            format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(b"\r\n");
    if let Some(body) = body {
        out.extend_from_slice(body);
    }
    out
}

/// One request on a fresh connection.
pub fn request(port: u16, method: &str, path: &str, body: Option<&str>) -> Response {
    Conn::open(port).request(method, path, body.map(str::as_bytes))
}

/// A client connection that may carry many requests (keep-alive).
pub struct Conn {
    stream: TcpStream,
    /// Received bytes not yet consumed by a response.
    buf: Vec<u8>,
    pub port: u16,
}

impl Conn {
    /// Connects to 127.0.0.1:`port`; panics if that fails.
    pub fn open(port: u16) -> Conn {
        Conn::try_open(port, CONNECT_TIMEOUT)
            .unwrap_or_else(|e| panic!("cannot connect to 127.0.0.1:{port}: {e}"))
    }

    pub fn try_open(port: u16, timeout: Duration) -> io::Result<Conn> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        stream.set_write_timeout(Some(READ_TIMEOUT))?;
        Ok(Conn {
            stream,
            buf: Vec::new(),
            port,
        })
    }

    pub fn set_read_timeout(&mut self, timeout: Duration) {
        self.stream
            .set_read_timeout(Some(timeout))
            .expect("set_read_timeout");
    }

    /// Writes all of `bytes` in one call (one segment for small requests).
    pub fn send(&mut self, bytes: &[u8]) {
        self.try_send(bytes)
            .unwrap_or_else(|e| panic!("write to 127.0.0.1:{} failed: {e}", self.port));
    }

    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Sends a request and reads its response.
    pub fn request(&mut self, method: &str, path: &str, body: Option<&[u8]>) -> Response {
        self.send(&request_bytes(method, path, body));
        self.read_response()
    }

    pub fn get(&mut self, path: &str) -> Response {
        self.request("GET", path, None)
    }

    pub fn post(&mut self, path: &str, body: &str) -> Response {
        self.request("POST", path, Some(body.as_bytes()))
    }

    /// Reads exactly one response; panics with what was received otherwise.
    pub fn read_response(&mut self) -> Response {
        match self.try_read_response() {
            Ok(response) => response,
            Err(e) => panic!("no response from 127.0.0.1:{}: {}", self.port, describe(&e)),
        }
    }

    pub fn try_read_response(&mut self) -> Result<Response, ReadError> {
        loop {
            match parse_response(&self.buf) {
                Ok(Some((response, used))) => {
                    self.buf.drain(..used);
                    return Ok(response);
                }
                Ok(None) => {}
                Err(e) => return Err(ReadError::Malformed(e)),
            }
            match self.fill() {
                Ok(0) if self.buf.is_empty() => return Err(ReadError::Closed),
                Ok(0) => return Err(ReadError::Truncated(self.buf.clone())),
                Ok(_) => {}
                Err(e) if is_timeout(&e) => return Err(ReadError::Timeout(self.buf.clone())),
                Err(e) if is_reset(&e) && self.buf.is_empty() => return Err(ReadError::Closed),
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
    }

    /// Waits up to `timeout` for the server to close the connection. Ok(true)
    /// if it closed (EOF or reset) with nothing more sent, Ok(false) if it
    /// stayed open, Err(bytes) if it sent more bytes instead.
    pub fn closes_within(&mut self, timeout: Duration) -> Result<bool, Vec<u8>> {
        if !self.buf.is_empty() {
            return Err(self.buf.clone());
        }
        self.set_read_timeout(timeout);
        let result = self.fill();
        self.set_read_timeout(READ_TIMEOUT);
        match result {
            Ok(0) => Ok(true),
            Ok(_) => Err(self.buf.clone()),
            Err(e) if is_reset(&e) => Ok(true),
            Err(e) if is_timeout(&e) => Ok(false),
            Err(e) => panic!("read from 127.0.0.1:{} failed: {e}", self.port),
        }
    }

    /// Bytes received but not consumed by a response.
    pub fn leftover(&self) -> &[u8] {
        &self.buf
    }

    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; READ_CHUNK_BYTES];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

pub fn describe(e: &ReadError) -> String {
    match e {
        ReadError::Closed => "connection closed before any response byte".to_owned(),
        ReadError::Timeout(bytes) => format!(
            "timed out; received so far: {:?}",
            String::from_utf8_lossy(bytes)
        ),
        ReadError::Malformed(why) => format!("malformed response: {why}"),
        ReadError::Truncated(bytes) => format!(
            "closed in the middle of a response: {:?}",
            String::from_utf8_lossy(bytes)
        ),
        ReadError::Io(e) => format!("read failed: {e}"),
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
    )
}

/// Ok(Some((response, bytes used))) when `buf` starts with a complete
/// response, Ok(None) when more bytes are needed.
fn parse_response(buf: &[u8]) -> Result<Option<(Response, usize)>, String> {
    let Some(head_len) = find(buf, b"\r\n\r\n").map(|i| i + 4) else {
        if buf.len() > RESPONSE_HEAD_BYTES_MAX {
            return Err(format!("no end of head in {} bytes", buf.len()));
        }
        // Catch garbage early instead of waiting for a timeout.
        let prefix = &buf[..buf.len().min(7)];
        if !b"HTTP/1.".starts_with(prefix) {
            return Err(format!(
                "does not start like a status line: {:?}",
                String::from_utf8_lossy(buf)
            ));
        }
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..head_len - 4])
        .map_err(|_| format!("head is not UTF-8: {:?}", String::from_utf8_lossy(buf)))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let (version, status, reason) = parse_status_line(status_line)?;
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("header line without ':': {line:?} in {head:?}"))?;
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(format!("bad header name {name:?} in {head:?}"));
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    let lengths: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Content-Length"))
        .map(|(_, v)| v.as_str())
        .collect();
    let [length] = lengths[..] else {
        return Err(format!("need exactly one Content-Length in {head:?}"));
    };
    if headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("Transfer-Encoding"))
    {
        return Err(format!("unexpected Transfer-Encoding in {head:?}"));
    }
    if length.is_empty() || !length.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad Content-Length {length:?}"));
    }
    let length: usize = length
        .parse()
        .map_err(|_| format!("bad Content-Length {length:?}"))?;
    if buf.len() < head_len + length {
        return Ok(None);
    }
    let response = Response {
        version,
        status,
        reason,
        headers,
        body: buf[head_len..head_len + length].to_vec(),
    };
    Ok(Some((response, head_len + length)))
}

fn parse_status_line(line: &str) -> Result<(String, u16, String), String> {
    let bad = || format!("bad status line {line:?}");
    let (version, rest) = line.split_once(' ').ok_or_else(bad)?;
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(bad());
    }
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let status = code.parse().map_err(|_| bad())?;
    Ok((version.to_owned(), status, reason.to_owned()))
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
