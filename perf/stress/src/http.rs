//! A small HTTP/1.1 client for the load generator: one request at a time per
//! kept-alive connection, the way a virtual user of k6 or Gatling behaves.
//!
//! Response framing is pure ([`parse_response`]: bytes in, complete /
//! partial / error out); [`Conn`] only moves bytes. Bodies are framed by
//! Content-Length or chunked encoding; a response without either is read to
//! the end of the connection.

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Response heads larger than this are a protocol error.
const HEAD_BYTES_MAX: usize = 16 * 1024;
/// Response bodies larger than this are a protocol error (the largest
/// answer, 50 orders, is about 12 KiB).
const BODY_BYTES_MAX: usize = 4 * 1024 * 1024;
const HEADERS_MAX: usize = 32;
const READ_CHUNK_BYTES: usize = 16 * 1024;

/// Where requests go: an `http://host:port` URL on a loopback address.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    /// The Host header value (`host:port` as given).
    pub authority: String,
}

impl Target {
    /// Accepts `http://HOST[:PORT][/]` where HOST is a loopback address or
    /// a name resolving only to loopback addresses: this tool generates load
    /// and is refused any other target.
    pub fn parse(url: &str) -> Result<Target, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url}: only http:// URLs are supported"))?;
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            return Err(format!("{url}: expected http://HOST:PORT without a path"));
        }
        let with_port = if authority.rsplit_once(':').is_some_and(|(h, p)| {
            !h.is_empty() && !h.ends_with(':') && p.bytes().all(|b| b.is_ascii_digit())
        }) {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let addrs: Vec<SocketAddr> = with_port
            .to_socket_addrs()
            .map_err(|e| format!("{url}: cannot resolve: {e}"))?
            .collect();
        if addrs.is_empty() {
            return Err(format!("{url}: resolves to no address"));
        }
        if let Some(a) = addrs.iter().find(|a| !is_loopback(a.ip())) {
            return Err(format!(
                "{url}: {} is not a loopback address; this tool only targets the local machine",
                a.ip()
            ));
        }
        Ok(Target {
            addr: addrs[0],
            authority: authority.to_owned(),
        })
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// Appends one request to `out`. `body` None sends no Content-Length at all
/// (a body-less POST, as compat.md allows for cancel).
pub fn encode_request(
    out: &mut Vec<u8>,
    method: Method,
    path: &str,
    authority: &str,
    body: Option<&[u8]>,
) {
    out.extend_from_slice(match method {
        Method::Get => b"GET ",
        Method::Post => b"POST ",
    });
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(authority.as_bytes());
    out.extend_from_slice(b"\r\nUser-Agent: flashsale-stress\r\n");
    if let Some(body) = body {
        out.extend_from_slice(b"Content-Type: application/json\r\nContent-Length: ");
        out.extend_from_slice(body.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(body);
    } else if method == Method::Post {
        out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    } else {
        out.extend_from_slice(b"\r\n");
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

#[derive(Debug)]
pub enum HttpError {
    Connect(io::Error),
    Io(io::Error),
    /// The peer closed the connection before a complete response.
    Closed,
    Timeout,
    Protocol(&'static str),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Connect(e) => write!(f, "connect: {e}"),
            HttpError::Io(e) => write!(f, "io: {e}"),
            HttpError::Closed => write!(f, "connection closed before a complete response"),
            HttpError::Timeout => write!(f, "timeout"),
            HttpError::Protocol(m) => write!(f, "protocol: {m}"),
        }
    }
}

/// How the body of a parsed head is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// A complete response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub head_len: usize,
    pub framing: Framing,
    /// The server will close the connection after this response.
    pub close: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Partial,
    /// The response and how many bytes of the buffer it used.
    Complete(Response, usize, bool),
}

pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, &'static str> {
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > HEAD_BYTES_MAX => {
            return Err("response head too large")
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err("malformed response head"),
    };
    let status = resp.code.ok_or("no status code")?;
    let mut framing = Framing::UntilClose;
    let mut close = resp.version == Some(0);
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let text = std::str::from_utf8(h.value).map_err(|_| "bad content-length")?;
            let n: usize = text.trim().parse().map_err(|_| "bad content-length")?;
            if framing != Framing::Chunked {
                framing = Framing::Length(n);
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if h.value.eq_ignore_ascii_case(b"chunked") {
                framing = Framing::Chunked;
            } else {
                return Err("unsupported transfer-encoding");
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            let v = String::from_utf8_lossy(h.value).to_ascii_lowercase();
            if v.contains("close") {
                close = true;
            } else if v.contains("keep-alive") {
                close = false;
            }
        }
    }
    // 1xx, 204 and 304 have no body whatever the headers say.
    if (100..200).contains(&status) || status == 204 || status == 304 {
        framing = Framing::Length(0);
    }
    if framing == Framing::UntilClose {
        close = true;
    }
    Ok(Some(Head {
        status,
        head_len,
        framing,
        close,
    }))
}

/// Decodes a chunked body that starts at `buf[0]`: Ok(None) while partial,
/// else the body and the bytes used (trailers included).
pub fn parse_chunked(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, &'static str> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let Some(line_end) = find_crlf(&buf[pos..]) else {
            return Ok(None);
        };
        let line = &buf[pos..pos + line_end];
        let size_text = line.split(|&b| b == b';').next().unwrap_or(line);
        let size_text = std::str::from_utf8(size_text).map_err(|_| "bad chunk size")?;
        let size = usize::from_str_radix(size_text.trim(), 16).map_err(|_| "bad chunk size")?;
        if body.len() + size > BODY_BYTES_MAX {
            return Err("response body too large");
        }
        pos += line_end + 2;
        if size == 0 {
            // Trailers until an empty line.
            loop {
                let Some(end) = find_crlf(&buf[pos..]) else {
                    return Ok(None);
                };
                pos += end + 2;
                if end == 0 {
                    return Ok(Some((body, pos)));
                }
            }
        }
        if buf.len() < pos + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        if &buf[pos + size..pos + size + 2] != b"\r\n" {
            return Err("chunk not followed by CRLF");
        }
        pos += size + 2;
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

/// Parses one response from the start of `buf`. `eof` says the connection
/// has been closed (which completes an until-close body).
pub fn parse_response(buf: &[u8], eof: bool) -> Result<Parsed, &'static str> {
    let Some(head) = parse_head(buf)? else {
        return Ok(Parsed::Partial);
    };
    let rest = &buf[head.head_len..];
    match head.framing {
        Framing::Length(n) => {
            if n > BODY_BYTES_MAX {
                return Err("response body too large");
            }
            if rest.len() < n {
                return Ok(Parsed::Partial);
            }
            let resp = Response {
                status: head.status,
                body: rest[..n].to_vec(),
            };
            Ok(Parsed::Complete(resp, head.head_len + n, head.close))
        }
        Framing::Chunked => match parse_chunked(rest)? {
            None => Ok(Parsed::Partial),
            Some((body, used)) => {
                let resp = Response {
                    status: head.status,
                    body,
                };
                Ok(Parsed::Complete(resp, head.head_len + used, head.close))
            }
        },
        Framing::UntilClose => {
            if rest.len() > BODY_BYTES_MAX {
                return Err("response body too large");
            }
            if !eof {
                return Ok(Parsed::Partial);
            }
            let resp = Response {
                status: head.status,
                body: rest.to_vec(),
            };
            Ok(Parsed::Complete(resp, buf.len(), true))
        }
    }
}

/// One kept-alive connection.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Requests answered on this connection so far.
    pub served: u64,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> Result<Conn, HttpError> {
        let stream = TcpStream::connect(addr).await.map_err(HttpError::Connect)?;
        stream.set_nodelay(true).map_err(HttpError::Connect)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(READ_CHUNK_BYTES),
            served: 0,
        })
    }

    /// Writes `request` and reads one response. On Ok, the bool says whether
    /// the connection may carry another request. On Err the connection must
    /// be dropped.
    pub async fn exchange(&mut self, request: &[u8]) -> Result<(Response, bool), HttpError> {
        self.stream
            .write_all(request)
            .await
            .map_err(HttpError::Io)?;
        self.buf.clear();
        let mut eof = false;
        loop {
            match parse_response(&self.buf, eof).map_err(HttpError::Protocol)? {
                Parsed::Complete(resp, used, close) => {
                    // Pipelining is never used: leftover bytes are a broken peer.
                    if used != self.buf.len() {
                        return Err(HttpError::Protocol("bytes after the response"));
                    }
                    self.served += 1;
                    return Ok((resp, !close));
                }
                Parsed::Partial if eof => return Err(HttpError::Closed),
                Parsed::Partial => {}
            }
            let len = self.buf.len();
            self.buf.resize(len + READ_CHUNK_BYTES, 0);
            let n = self
                .stream
                .read(&mut self.buf[len..])
                .await
                .map_err(HttpError::Io)?;
            self.buf.truncate(len + n);
            if n == 0 {
                eof = true;
            }
        }
    }
}

/// A connection that reconnects as needed, with a timeout per request.
pub struct Client {
    target: Target,
    conn: Option<Conn>,
    timeout: Duration,
    scratch: Vec<u8>,
}

impl Client {
    pub fn new(target: Target, timeout: Duration) -> Client {
        Client {
            target,
            conn: None,
            timeout,
            scratch: Vec::with_capacity(512),
        }
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Sends one request and waits for its response (at most the timeout,
    /// connecting included). A GET that finds a reused connection closed
    /// before any answer is retried once on a new connection (the server
    /// may close idle connections; nothing was processed).
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Response, HttpError> {
        self.scratch.clear();
        encode_request(
            &mut self.scratch,
            method,
            path,
            &self.target.authority,
            body,
        );
        let request = std::mem::take(&mut self.scratch);
        let result = tokio::time::timeout(self.timeout, self.send_encoded(method, &request)).await;
        self.scratch = request;
        match result {
            Ok(r) => r,
            Err(_) => {
                self.conn = None;
                Err(HttpError::Timeout)
            }
        }
    }

    async fn send_encoded(
        &mut self,
        method: Method,
        request: &[u8],
    ) -> Result<Response, HttpError> {
        for attempt in 0..2 {
            let reused = self.conn.is_some();
            let mut conn = match self.conn.take() {
                Some(c) => c,
                None => Conn::connect(self.target.addr).await?,
            };
            match conn.exchange(request).await {
                Ok((resp, keep)) => {
                    if keep {
                        self.conn = Some(conn);
                    }
                    return Ok(resp);
                }
                Err(HttpError::Closed | HttpError::Io(_))
                    if reused && attempt == 0 && method == Method::Get => {}
                Err(e) => return Err(e),
            }
        }
        Err(HttpError::Closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Input, and the status, body and close flag of a complete response.
    type Case<'a> = (&'a [u8], Option<(u16, &'a [u8], bool)>);

    #[test]
    fn parses_content_length_and_chunked() {
        let cases: &[Case] = &[
            (b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}", Some((201, b"{}", false))),
            (b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{", None),
            (b"HTTP/1.1 200 OK\r\nConn", None),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
                Some((200, b"abcde", false)),
            ),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", None),
            (
                b"HTTP/1.1 409 Conflict\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                Some((409, b"", true)),
            ),
            (b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", Some((200, b"x", true))),
            (b"HTTP/1.1 204 No Content\r\n\r\n", Some((204, b"", false))),
        ];
        for (input, want) in cases {
            let got = parse_response(input, false).unwrap();
            match (got, want) {
                (Parsed::Partial, None) => {}
                (Parsed::Complete(r, used, close), Some((status, body, want_close))) => {
                    assert_eq!(r.status, *status);
                    assert_eq!(r.body, *body);
                    assert_eq!(used, input.len());
                    assert_eq!(close, *want_close);
                }
                (got, want) => panic!(
                    "{:?}: got {got:?}, want {want:?}",
                    String::from_utf8_lossy(input)
                ),
            }
        }
    }

    #[test]
    fn until_close_body_needs_eof() {
        let input = b"HTTP/1.1 200 OK\r\n\r\nhello";
        assert_eq!(parse_response(input, false).unwrap(), Parsed::Partial);
        match parse_response(input, true).unwrap() {
            Parsed::Complete(r, _, close) => {
                assert_eq!(r.body, b"hello");
                assert!(close);
            }
            p => panic!("{p:?}"),
        }
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_response(b"NOT HTTP\r\n\r\n", false).is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false).is_err());
        assert!(parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            false
        )
        .is_err());
    }

    #[test]
    fn encodes_requests() {
        let mut out = Vec::new();
        encode_request(
            &mut out,
            Method::Post,
            "/orders",
            "127.0.0.1:9999",
            Some(b"{}"),
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("POST /orders HTTP/1.1\r\nHost: 127.0.0.1:9999\r\n"));
        assert!(text.ends_with("Content-Length: 2\r\n\r\n{}"));
        let mut out = Vec::new();
        encode_request(&mut out, Method::Post, "/orders/x/cancel", "h:1", None);
        assert!(String::from_utf8(out)
            .unwrap()
            .ends_with("Content-Length: 0\r\n\r\n"));
    }

    #[test]
    fn only_loopback_targets() {
        assert!(Target::parse("http://127.0.0.1:9999").is_ok());
        assert!(Target::parse("http://127.0.0.1:9999/").is_ok());
        assert!(Target::parse("http://[::1]:9999").is_ok());
        assert!(Target::parse("http://10.1.2.3:9999").is_err());
        assert!(Target::parse("https://127.0.0.1:9999").is_err());
        assert!(Target::parse("http://127.0.0.1:9999/x").is_err());
    }
}
