//! Sans-IO HTTP/1.1 request framing over `httparse`.
//!
//! [`parse_request`] looks at the bytes a connection has buffered and says
//! whether they start with a complete request, an incomplete one, or one that
//! must be refused. It never reads a socket. What it learned of an
//! incomplete request stays in the caller's [`Progress`], so the call after
//! more bytes arrive resumes where the last one stopped: a request trickled
//! in a byte at a time costs work linear in its size, not quadratic. After a
//! complete request the caller resets the progress and parses the next
//! pipelined one from `&input[consumed..]`.
//!
//! Every size is bounded before it is buffered: the head by
//! `HTTP_HEAD_BYTES_MAX`, the body by `HTTP_BODY_BYTES_MAX` (decided from
//! Content-Length or the chunk sizes, before the bytes arrive).

use std::ops::Range;

use httparse::{Header, Status, EMPTY_HEADER};

use crate::config::{
    HTTP_BODY_BYTES_MAX, HTTP_CHUNKED_BODY_BYTES_MAX, HTTP_HEADERS_MAX, HTTP_HEAD_BYTES_MAX,
};
const VERSION_PREFIX: &[u8] = b"HTTP/";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    /// GET without the body in the answer (RFC 9110 §9.3.2).
    Head,
    Post,
    Patch,
    Delete,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub method: Method,
    /// The request target (path and query) as a byte range of the input.
    pub path: Range<usize>,
    pub keep_alive: bool,
    /// `Expect: 100-continue` on an HTTP/1.1 request; HTTP/1.0 clients do not
    /// know 100 and RFC 9110 §10.1.1 says to ignore it from them.
    pub expects_continue: bool,
    /// The `Authorization` field's value, as a byte range of the input.
    pub authorization: Option<Range<usize>>,
    /// The `X-Signature` field's value (a payment webhook's HMAC), as a
    /// byte range of the input; repeated, an empty range, which no
    /// signature matches.
    pub signature: Option<Range<usize>>,
    /// The `Cookie` field's value (where a browser's session is), as a
    /// byte range of the input.
    pub cookie: Option<Range<usize>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    None,
    /// A Content-Length body, as a byte range of the input.
    InBuffer(Range<usize>),
    /// A chunked body, decoded into [`Progress::decoded_body`].
    Decoded,
}

/// What parsing the request at the start of a buffer has found so far. It
/// describes that buffer's first bytes, so it stays valid while bytes are
/// only appended; [`Progress::reset`] once the request is consumed or the
/// buffer cleared.
#[derive(Debug, Default)]
pub struct Progress {
    /// Bytes already searched for the end of the head, in vain.
    head_searched: usize,
    /// The head, its length and the body framing, once complete.
    head: Option<(Head, usize, Framing)>,
    /// Chunked body: where the next chunk-size line starts, relative to the
    /// body; every chunk before it is decoded into `body`.
    chunk_at: usize,
    /// Chunked body: the last chunk is in; its trailer section starts at
    /// `chunk_at` and was searched this far for its end, in vain.
    trailers_searched: Option<usize>,
    /// The decoded chunked body (its allocation is reused across requests).
    body: Vec<u8>,
}

impl Progress {
    /// Forgets the request (keeps the body buffer's allocation).
    pub fn reset(&mut self) {
        self.head_searched = 0;
        self.head = None;
        self.chunk_at = 0;
        self.trailers_searched = None;
        self.body.clear();
    }

    /// The decoded body of a complete chunked request.
    pub fn decoded_body(&self) -> &[u8] {
        &self.body
    }

    /// Bytes held by the decoded-body buffer.
    pub fn capacity(&self) -> usize {
        self.body.capacity()
    }

    /// Gives back a decoded-body allocation larger than `keep`.
    pub fn shrink_to(&mut self, keep: usize) {
        if self.body.capacity() > keep {
            self.body.shrink_to(keep);
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub head: Head,
    pub body: Body,
    /// Input bytes this request occupies: head, body and chunked framing.
    pub consumed: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Complete(Request),
    /// More bytes are needed. `head_complete` is set once the head has been
    /// parsed, so the server can answer `Expect: 100-continue`.
    Partial {
        head_complete: Option<Head>,
    },
}

/// Why a request is refused. Each maps to a status; after any of them the
/// framing of what follows is unknown, so the connection should close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    BadRequest(&'static str),
    HeadTooLarge,
    BodyTooLarge,
    LengthRequired,
    NotImplemented(&'static str),
    VersionNotSupported,
}

impl HttpError {
    pub fn status(&self) -> u16 {
        match self {
            HttpError::BadRequest(_) => 400,
            HttpError::HeadTooLarge => 431,
            HttpError::BodyTooLarge => 413,
            HttpError::LengthRequired => 411,
            HttpError::NotImplemented(_) => 501,
            HttpError::VersionNotSupported => 505,
        }
    }

    pub fn message(&self) -> &'static str {
        match self {
            HttpError::BadRequest(message) | HttpError::NotImplemented(message) => message,
            HttpError::HeadTooLarge => "request head too large",
            HttpError::BodyTooLarge => "request body too large",
            HttpError::LengthRequired => "Content-Length required",
            HttpError::VersionNotSupported => "HTTP version not supported",
        }
    }
}

/// Parses the request at the start of `input`, resuming from `progress`
/// (a fresh one for a new request). A chunked body is decoded into it.
pub fn parse_request(input: &[u8], progress: &mut Progress) -> Result<Parsed, HttpError> {
    let (head, head_len, framing) = match &progress.head {
        Some(known) => known.clone(),
        None => match head_if_complete(input, progress)? {
            Some(parsed) => parsed,
            None => {
                return Ok(Parsed::Partial {
                    head_complete: None,
                })
            }
        },
    };
    let body_input = input.get(head_len..).unwrap_or_default();
    let (body, body_len) = match framing {
        Framing::None => (Body::None, 0),
        Framing::Length(len) if body_input.len() >= len => {
            (Body::InBuffer(head_len..head_len + len), len)
        }
        Framing::Length(_) => return Ok(partial_body(head)),
        Framing::Chunked => match decode_chunked(body_input, progress)? {
            Some(encoded_len) => (Body::Decoded, encoded_len),
            None => return Ok(partial_body(head)),
        },
    };
    Ok(Parsed::Complete(Request {
        head,
        body,
        consumed: head_len + body_len,
    }))
}

fn partial_body(head: Head) -> Parsed {
    Parsed::Partial {
        head_complete: Some(head),
    }
}

/// The head once `input` holds all of it, remembered in `progress`. The
/// head parser runs on the first bytes (so what is not HTTP at all is
/// refused at once), and after that only when new bytes hold an empty line
/// that may end the head, or the head outgrew its limit: a head trickled in
/// is not parsed again with every byte, and a malformed header line is
/// refused when the head ends.
fn head_if_complete(
    input: &[u8],
    progress: &mut Progress,
) -> Result<Option<(Head, usize, Framing)>, HttpError> {
    let first_look = progress.head_searched == 0;
    if !first_look && input.len() <= HTTP_HEAD_BYTES_MAX {
        let from = progress.head_searched.saturating_sub(2);
        if !ends_a_section(&input[from..]) {
            progress.head_searched = input.len();
            return Ok(None);
        }
    }
    let Some(parsed) = parse_head(input)? else {
        progress.head_searched = input.len();
        return Ok(None);
    };
    progress.head = Some(parsed.clone());
    progress.chunk_at = 0;
    progress.trailers_searched = None;
    progress.body.clear();
    Ok(Some(parsed))
}

/// Whether `bytes` hold an empty line (`\n\n` or `\n\r\n`): the end of a head
/// or trailer section can only come with one.
fn ends_a_section(bytes: &[u8]) -> bool {
    bytes
        .windows(2)
        .enumerate()
        .any(|(i, w)| w == b"\n\n" || (w == b"\n\r" && bytes.get(i + 2) == Some(&b'\n')))
}

/// How the head says the body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(usize),
    Chunked,
}

/// The head, its length and the body framing; `None` while incomplete.
fn parse_head(input: &[u8]) -> Result<Option<(Head, usize, Framing)>, HttpError> {
    // httparse never looks past the limit, so an oversized head costs at most
    // HTTP_HEAD_BYTES_MAX of parsing however much the client sent.
    let window = &input[..input.len().min(HTTP_HEAD_BYTES_MAX)];
    let mut headers = [EMPTY_HEADER; HTTP_HEADERS_MAX];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(window) {
        Ok(Status::Complete(len)) => len,
        Ok(Status::Partial) if input.len() > HTTP_HEAD_BYTES_MAX => {
            return Err(HttpError::HeadTooLarge)
        }
        Ok(Status::Partial) => return Ok(None),
        Err(error) => return Err(parse_error(error, window)),
    };
    let (Some(method), Some(path), Some(minor_version)) =
        (request.method, request.path, request.version)
    else {
        return Err(HttpError::BadRequest("malformed request line"));
    };
    let is_http_11 = minor_version == 1;
    let fields = HeaderFields::scan(request.headers)?;
    let head = Head {
        method: match method {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            _ => Method::Other,
        },
        path: subslice_range(input, path.as_bytes()),
        authorization: fields
            .authorization
            .map(|value| subslice_range(input, value)),
        signature: match fields.signature {
            _ if fields.signature_repeated => Some(0..0),
            signature => signature.map(|value| subslice_range(input, value)),
        },
        cookie: fields.cookie.map(|value| subslice_range(input, value)),
        keep_alive: if is_http_11 {
            !fields.connection_close
        } else {
            fields.connection_keep_alive && !fields.connection_close
        },
        expects_continue: is_http_11 && fields.expects_continue,
    };
    Ok(Some((head, head_len, fields.framing(is_http_11)?)))
}

#[cold]
fn parse_error(error: httparse::Error, window: &[u8]) -> HttpError {
    match error {
        httparse::Error::TooManyHeaders => HttpError::HeadTooLarge,
        httparse::Error::Version if names_http_version(window) => HttpError::VersionNotSupported,
        httparse::Error::Version => HttpError::BadRequest("malformed HTTP version"),
        httparse::Error::HeaderName => HttpError::BadRequest("malformed header name"),
        httparse::Error::HeaderValue => HttpError::BadRequest("malformed header value"),
        httparse::Error::NewLine => HttpError::BadRequest("malformed line ending"),
        httparse::Error::Token | httparse::Error::Status => {
            HttpError::BadRequest("malformed request line")
        }
    }
}

/// Whether the request line ends in `HTTP/...`: then httparse refused a real
/// version it does not speak (505), not a garbled line (400).
fn names_http_version(window: &[u8]) -> bool {
    let start = window
        .iter()
        .position(|b| !matches!(b, b'\r' | b'\n'))
        .unwrap_or(window.len());
    let line = &window[start..];
    let line = &line[..line
        .iter()
        .position(|b| matches!(b, b'\r' | b'\n'))
        .unwrap_or(line.len())];
    let version = line.rsplit(|&b| b == b' ').next().unwrap_or_default();
    version.starts_with(VERSION_PREFIX)
}

/// Where `inner` (a slice httparse cut from `outer`) sits in `outer`.
fn subslice_range(outer: &[u8], inner: &[u8]) -> Range<usize> {
    let start = (inner.as_ptr() as usize).wrapping_sub(outer.as_ptr() as usize);
    debug_assert!(start + inner.len() <= outer.len());
    start..start + inner.len()
}

/// What the header fields say about connection reuse and body framing.
#[derive(Debug, Default)]
struct HeaderFields<'b> {
    connection_close: bool,
    connection_keep_alive: bool,
    expects_continue: bool,
    /// Digits of the first Content-Length, leading zeros stripped, kept to
    /// compare repeated fields exactly however large they are.
    content_length_digits: Option<&'b [u8]>,
    transfer_encodings: usize,
    transfer_encoding_other: bool,
    authorization: Option<&'b [u8]>,
    signature: Option<&'b [u8]>,
    signature_repeated: bool,
    cookie: Option<&'b [u8]>,
}

impl<'b> HeaderFields<'b> {
    fn scan(headers: &[Header<'b>]) -> Result<Self, HttpError> {
        let mut fields = HeaderFields::default();
        for header in headers {
            let value = trim_whitespace(header.value);
            let name = header.name;
            if name.eq_ignore_ascii_case("content-length") {
                fields.add_content_length(value)?;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                fields.transfer_encodings += 1;
                fields.transfer_encoding_other |= !value.eq_ignore_ascii_case(b"chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                for option in value.split(|&b| b == b',').map(trim_whitespace) {
                    fields.connection_close |= option.eq_ignore_ascii_case(b"close");
                    fields.connection_keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
                }
            } else if name.eq_ignore_ascii_case("expect") {
                fields.expects_continue |= value.eq_ignore_ascii_case(b"100-continue");
            } else if name.eq_ignore_ascii_case("authorization") {
                // Two credentials: which one counts is the kind of
                // ambiguity two parsers disagree on.
                if fields.authorization.replace(value).is_some() {
                    return Err(HttpError::BadRequest("repeated Authorization field"));
                }
            } else if name.eq_ignore_ascii_case("x-signature") {
                // The webhook answers a repeated one itself (401): which
                // of two signatures counts is for no parser to decide.
                fields.signature_repeated |= fields.signature.replace(value).is_some();
            } else if name.eq_ignore_ascii_case("cookie") {
                // HTTP/1.1 clients send one (RFC 6265 §5.4); two could
                // carry two sessions.
                if fields.cookie.replace(value).is_some() {
                    return Err(HttpError::BadRequest("repeated Cookie field"));
                }
            }
        }
        Ok(fields)
    }

    /// Content-Length is `1*DIGIT` (RFC 9110 §8.6); repeats must agree, or
    /// two parties could disagree on where the body ends (request smuggling).
    fn add_content_length(&mut self, value: &'b [u8]) -> Result<(), HttpError> {
        if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
            return Err(HttpError::BadRequest("invalid Content-Length"));
        }
        let first_significant = value.iter().position(|&b| b != b'0').unwrap_or(value.len());
        let digits = &value[first_significant..];
        match self.content_length_digits {
            Some(previous) if previous != digits => {
                Err(HttpError::BadRequest("conflicting Content-Length fields"))
            }
            _ => {
                self.content_length_digits = Some(digits);
                Ok(())
            }
        }
    }

    /// RFC 9112 §6.1-6.3, restricted to what this server decodes.
    fn framing(&self, is_http_11: bool) -> Result<Framing, HttpError> {
        if self.transfer_encodings > 0 {
            if self.content_length_digits.is_some() {
                return Err(HttpError::BadRequest(
                    "both Content-Length and Transfer-Encoding",
                ));
            }
            if !is_http_11 {
                // HTTP/1.0 has no Transfer-Encoding; its framing is untrustworthy.
                return Err(HttpError::BadRequest(
                    "Transfer-Encoding in an HTTP/1.0 request",
                ));
            }
            if self.transfer_encoding_other {
                return Err(HttpError::NotImplemented(
                    "only the chunked transfer coding is supported",
                ));
            }
            if self.transfer_encodings > 1 {
                return Err(HttpError::BadRequest("chunked applied more than once"));
            }
            return Ok(Framing::Chunked);
        }
        match self.content_length_digits {
            None => Ok(Framing::None),
            Some(digits) => match decimal_at_most(digits, HTTP_BODY_BYTES_MAX) {
                Some(len) => Ok(Framing::Length(len)),
                None => Err(HttpError::BodyTooLarge),
            },
        }
    }
}

/// ASCII digits as a number, `None` above `max` (and so never overflowing).
fn decimal_at_most(digits: &[u8], max: usize) -> Option<usize> {
    let mut value: usize = 0;
    for &digit in digits {
        value = value
            .checked_mul(10)?
            .checked_add(usize::from(digit - b'0'))?;
        if value > max {
            return None;
        }
    }
    Some(value)
}

/// Strips optional whitespace (SP / HTAB, RFC 9110 §5.6.3) at both ends.
fn trim_whitespace(value: &[u8]) -> &[u8] {
    let is_content = |b: &u8| !matches!(b, b' ' | b'\t');
    let start = value.iter().position(is_content).unwrap_or(value.len());
    let end = value.iter().rposition(is_content).map_or(start, |i| i + 1);
    &value[start..end]
}

/// Decodes a chunked body (RFC 9112 §7.1) into `progress`, from the first
/// chunk not decoded yet. Returns the encoded length once the last chunk and
/// trailer section are in, `None` before.
fn decode_chunked(input: &[u8], progress: &mut Progress) -> Result<Option<usize>, HttpError> {
    if progress.trailers_searched.is_none() {
        if decode_chunks(input, progress)?.is_none() {
            return more_chunked_input(input);
        }
        progress.trailers_searched = Some(0);
    }
    let pos = progress.chunk_at;
    let trailers = &input[pos..];
    // No trailers at all is the common case: a bare CRLF.
    let searched = progress.trailers_searched.unwrap_or(0);
    let may_be_complete = trailers.starts_with(b"\r\n")
        || trailers.starts_with(b"\n")
        || ends_a_section(&trailers[searched.saturating_sub(2)..]);
    let Some(len) = may_be_complete
        .then(|| skip_trailers(trailers))
        .transpose()?
        .flatten()
    else {
        progress.trailers_searched = Some(trailers.len());
        return more_chunked_input(input);
    };
    if pos + len > HTTP_CHUNKED_BODY_BYTES_MAX {
        return Err(HttpError::BodyTooLarge);
    }
    Ok(Some(pos + len))
}

/// Decodes chunks into `progress.body` up to and including the last
/// (size 0) one; `Some(())` then, with `progress.chunk_at` after its size
/// line. `None` while a chunk is incomplete: `chunk_at` stays at its size
/// line, every chunk before it decoded.
fn decode_chunks(input: &[u8], progress: &mut Progress) -> Result<Option<()>, HttpError> {
    let out = &mut progress.body;
    loop {
        let pos = progress.chunk_at;
        let rest = &input[pos..];
        let Some(&first) = rest.first() else {
            return Ok(None);
        };
        // httparse reads an empty size line as 0; the grammar wants a digit.
        if !first.is_ascii_hexdigit() {
            return Err(HttpError::BadRequest("malformed chunk size"));
        }
        let (line_len, size) = match httparse::parse_chunk_size(rest) {
            Ok(Status::Complete(line)) => line,
            Ok(Status::Partial) => return Ok(None),
            Err(httparse::InvalidChunkSize) => {
                return Err(HttpError::BadRequest("malformed chunk size"))
            }
        };
        let data_at = pos + line_len;
        if size == 0 {
            progress.chunk_at = data_at;
            return Ok(Some(()));
        }
        // Refuse on the declared size, before the chunk's bytes arrive.
        let size = match usize::try_from(size) {
            Ok(size) if size <= HTTP_BODY_BYTES_MAX - out.len() => size,
            _ => return Err(HttpError::BodyTooLarge),
        };
        let data = data_at..data_at + size;
        let Some(terminator) = input.get(data.end..data.end + 2) else {
            return Ok(None);
        };
        if terminator != b"\r\n" {
            return Err(HttpError::BadRequest("chunk data not followed by CRLF"));
        }
        out.extend_from_slice(&input[data.clone()]);
        progress.chunk_at = data.end + 2;
        if progress.chunk_at > HTTP_CHUNKED_BODY_BYTES_MAX {
            return Err(HttpError::BodyTooLarge);
        }
    }
}

/// The body is incomplete, so everything buffered after the head is body:
/// once that exceeds the bound, waiting longer cannot help.
fn more_chunked_input(input: &[u8]) -> Result<Option<usize>, HttpError> {
    if input.len() > HTTP_CHUNKED_BODY_BYTES_MAX {
        Err(HttpError::BodyTooLarge)
    } else {
        Ok(None)
    }
}

/// The trailer section after the last chunk: validated as header fields and
/// ignored (nothing here needs trailers). `None` while incomplete.
fn skip_trailers(input: &[u8]) -> Result<Option<usize>, HttpError> {
    let mut trailers = [EMPTY_HEADER; HTTP_HEADERS_MAX];
    match httparse::parse_headers(input, &mut trailers) {
        Ok(Status::Complete((len, _))) => Ok(Some(len)),
        Ok(Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(HttpError::HeadTooLarge),
        Err(_) => Err(HttpError::BadRequest("malformed trailer section")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8]) -> Result<Parsed, HttpError> {
        parse_request(input, &mut Progress::default())
    }

    fn complete(input: &[u8]) -> Request {
        match parse(input) {
            Ok(Parsed::Complete(request)) => request,
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(input)),
        }
    }

    fn head(method: Method, path: Range<usize>, keep_alive: bool) -> Head {
        Head {
            method,
            path,
            keep_alive,
            expects_continue: false,
            authorization: None,
            signature: None,
            cookie: None,
        }
    }

    #[test]
    fn authorization_is_kept_once() {
        let input = b"PATCH /admin/products/1 HTTP/1.1\r\nAuthorization: Bearer abc \r\n\r\n";
        let request = complete(input);
        assert_eq!(request.head.method, Method::Patch);
        let range = request.head.authorization.unwrap();
        assert_eq!(&input[range], b"Bearer abc");
        let twice = b"GET / HTTP/1.1\r\nAuthorization: a\r\nauthorization: b\r\n\r\n";
        assert_eq!(
            parse(twice),
            Err(HttpError::BadRequest("repeated Authorization field"))
        );
    }

    #[test]
    fn a_signature_is_kept_and_a_repeated_one_is_empty() {
        let input = b"POST /payments/webhook HTTP/1.1\r\nX-Signature:  sha256=ab \r\n\r\n";
        let request = complete(input);
        assert_eq!(&input[request.head.signature.unwrap()], b"sha256=ab");
        let twice = b"POST / HTTP/1.1\r\nX-Signature: sha256=ab\r\nx-signature: sha256=ab\r\n\r\n";
        assert_eq!(complete(twice).head.signature, Some(0..0));
        assert_eq!(complete(GET).head.signature, None);
    }

    const GET: &[u8] = b"GET /products/1 HTTP/1.1\r\nHost: api\r\nUser-Agent: t\r\n\r\n";
    const POST: &[u8] = b"POST /orders HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"product_id\":1}";
    const CHUNKED: &[u8] = b"POST /orders HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4;name=value\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\nX-Sum: 1\r\n\r\n";
    const CHUNKED_DECODED: &[u8] = b"Wikipedia in\r\n\r\nchunks.";

    #[test]
    fn complete_get() {
        let request = complete(GET);
        assert_eq!(request.head, head(Method::Get, 4..15, true));
        assert_eq!(&GET[request.head.path.clone()], b"/products/1");
        assert_eq!(request.body, Body::None);
        assert_eq!(request.consumed, GET.len());
    }

    #[test]
    fn methods_and_targets() {
        let table: &[(&[u8], Method, &[u8])] = &[
            (
                b"GET /orders?product_id=4 HTTP/1.1\r\n\r\n",
                Method::Get,
                b"/orders?product_id=4",
            ),
            (
                b"POST /orders/x/cancel HTTP/1.1\r\n\r\n",
                Method::Post,
                b"/orders/x/cancel",
            ),
            (b"PUT /orders HTTP/1.1\r\n\r\n", Method::Other, b"/orders"),
            (b"HEAD / HTTP/1.1\r\n\r\n", Method::Head, b"/"),
            (b"get / HTTP/1.1\r\n\r\n", Method::Other, b"/"),
            // RFC 9112 §2.2: empty lines before the request line are skipped.
            (b"\r\n\r\nGET /x HTTP/1.1\r\n\r\n", Method::Get, b"/x"),
        ];
        for &(input, method, target) in table {
            let request = complete(input);
            assert_eq!(request.head.method, method);
            assert_eq!(&input[request.head.path.clone()], target);
            assert_eq!(request.consumed, input.len());
        }
    }

    #[test]
    fn partial_head_at_every_split() {
        for end in 0..GET.len() {
            assert_eq!(
                parse(&GET[..end]),
                Ok(Parsed::Partial {
                    head_complete: None
                }),
                "split at {end}"
            );
        }
    }

    #[test]
    fn post_body_at_every_split() {
        let head_len = POST.len() - 16;
        let expected_head = head(Method::Post, 5..12, true);
        for end in 0..POST.len() {
            let expected = Parsed::Partial {
                head_complete: (end >= head_len).then(|| expected_head.clone()),
            };
            assert_eq!(parse(&POST[..end]), Ok(expected), "split at {end}");
        }
        let request = complete(POST);
        assert_eq!(request.body, Body::InBuffer(head_len..POST.len()));
        assert_eq!(&POST[head_len..], b"{\"product_id\":1}");
        assert_eq!(request.consumed, POST.len());
    }

    #[test]
    fn pipelined_requests() {
        let mut input = POST.to_vec();
        input.extend_from_slice(GET);
        input.extend_from_slice(b"GET /partial HTTP/1.1\r\n");
        let first = complete(&input);
        assert_eq!(first.head.method, Method::Post);
        assert_eq!(first.consumed, POST.len());
        let rest = &input[first.consumed..];
        let second = complete(rest);
        assert_eq!(&rest[second.head.path.clone()], b"/products/1");
        assert_eq!(second.consumed, GET.len());
        assert_eq!(
            parse(&rest[second.consumed..]),
            Ok(Parsed::Partial {
                head_complete: None
            })
        );
        // A chunked body followed by another request.
        let mut input = CHUNKED.to_vec();
        input.extend_from_slice(GET);
        let mut scratch = Progress::default();
        let Ok(Parsed::Complete(first)) = parse_request(&input, &mut scratch) else {
            panic!()
        };
        assert_eq!(first.consumed, CHUNKED.len());
        assert_eq!(scratch.decoded_body(), CHUNKED_DECODED);
        assert_eq!(complete(&input[first.consumed..]).consumed, GET.len());
    }

    #[test]
    fn keep_alive_matrix() {
        let table: &[(&str, Option<&str>, bool)] = &[
            ("1.1", None, true),
            ("1.1", Some("keep-alive"), true),
            ("1.1", Some("close"), false),
            ("1.1", Some("Close"), false),
            ("1.1", Some("CLOSE"), false),
            ("1.1", Some("Upgrade, close"), false),
            ("1.1", Some(" keep-alive ,\tclose "), false),
            ("1.1", Some("closed"), true),
            ("1.1", Some("Upgrade"), true),
            ("1.0", None, false),
            ("1.0", Some("keep-alive"), true),
            ("1.0", Some("Keep-Alive"), true),
            ("1.0", Some("foo, keep-alive"), true),
            ("1.0", Some("close"), false),
            ("1.0", Some("keep-alive, close"), false),
            ("1.0", Some("keep-alives"), false),
        ];
        for &(version, connection, keep_alive) in table {
            let mut input = format!("GET / HTTP/{version}\r\n");
            if let Some(value) = connection {
                input.push_str(&format!("Connection: {value}\r\n"));
            }
            input.push_str("\r\n");
            assert_eq!(
                complete(input.as_bytes()).head.keep_alive,
                keep_alive,
                "{input:?}"
            );
        }
    }

    #[test]
    fn expect_continue() {
        let input = b"POST /orders HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\n";
        let Ok(Parsed::Partial {
            head_complete: Some(head),
        }) = parse(input)
        else {
            panic!()
        };
        assert!(head.expects_continue);
        // Ignored from HTTP/1.0 clients, and when something else is expected.
        let table: &[(&[u8], bool)] = &[
            (
                b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}",
                false,
            ),
            (
                b"POST / HTTP/1.1\r\nExpect: 200-ok\r\nContent-Length: 2\r\n\r\n{}",
                false,
            ),
            (
                b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}",
                true,
            ),
        ];
        for &(input, expected) in table {
            assert_eq!(complete(input).head.expects_continue, expected);
        }
    }

    #[test]
    fn body_framing() {
        let table: &[(&[u8], Body)] = &[
            (b"POST / HTTP/1.1\r\n\r\n", Body::None),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
                Body::InBuffer(38..38),
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 002\r\n\r\n{}",
                Body::InBuffer(40..42),
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 2\r\ncontent-length: 02\r\n\r\n{}",
                Body::InBuffer(58..60),
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length:  2 \r\n\r\n{}",
                Body::InBuffer(40..42),
            ),
            (
                b"GET / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
                Body::InBuffer(37..39),
            ),
        ];
        for (input, body) in table {
            let request = complete(input);
            assert_eq!(&request.body, body, "{:?}", String::from_utf8_lossy(input));
            assert_eq!(request.consumed, input.len());
        }
    }

    #[test]
    fn body_limit_boundary() {
        let at_limit = format!("POST / HTTP/1.1\r\nContent-Length: {HTTP_BODY_BYTES_MAX}\r\n\r\n");
        assert!(matches!(
            parse(at_limit.as_bytes()),
            Ok(Parsed::Partial {
                head_complete: Some(_)
            })
        ));
        let mut full = at_limit.into_bytes();
        full.resize(full.len() + HTTP_BODY_BYTES_MAX, b' ');
        assert_eq!(complete(&full).consumed, full.len());
    }

    #[test]
    fn refused_requests() {
        let over_limit = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            HTTP_BODY_BYTES_MAX + 1
        );
        let table: &[(&[u8], HttpError)] = &[
            (over_limit.as_bytes(), HttpError::BodyTooLarge),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999999999\r\n\r\n",
                HttpError::BodyTooLarge,
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
                HttpError::BadRequest("both Content-Length and Transfer-Encoding"),
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n",
                HttpError::BadRequest("both Content-Length and Transfer-Encoding"),
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
                HttpError::BadRequest("conflicting Content-Length fields"),
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999999999\r\nContent-Length: 99999999999999999999999999998\r\n\r\n",
                HttpError::BadRequest("conflicting Content-Length fields"),
            ),
            (b"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", HttpError::BadRequest("invalid Content-Length")),
            (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", HttpError::BadRequest("invalid Content-Length")),
            (b"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n", HttpError::BadRequest("invalid Content-Length")),
            (b"POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n", HttpError::BadRequest("invalid Content-Length")),
            (b"POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n", HttpError::BadRequest("invalid Content-Length")),
            (b"POST / HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\n", HttpError::BadRequest("invalid Content-Length")),
            (b"POST / HTTP/1.1\r\nContent-Length: 1.0\r\n\r\n", HttpError::BadRequest("invalid Content-Length")),
            (b"POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", HttpError::BadRequest("invalid Content-Length")),
            (b"POST / HTTP/1.1\r\nContent-Length: \xd9\xa1\r\n\r\n", HttpError::BadRequest("invalid Content-Length")),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
                HttpError::NotImplemented("only the chunked transfer coding is supported"),
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                HttpError::NotImplemented("only the chunked transfer coding is supported"),
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                HttpError::BadRequest("chunked applied more than once"),
            ),
            (
                b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
                HttpError::BadRequest("Transfer-Encoding in an HTTP/1.0 request"),
            ),
            (b"GET / HTTP/2.0\r\n\r\n", HttpError::VersionNotSupported),
            (b"GET / HTTP/1.2\r\n\r\n", HttpError::VersionNotSupported),
            (b"GET / HTTP/2", HttpError::VersionNotSupported),
            (b"GET / FTP/1.1\r\n\r\n", HttpError::BadRequest("malformed HTTP version")),
            (b"GET /\r\n\r\n", HttpError::BadRequest("malformed request line")),
            (b"GET  / HTTP/1.1\r\n\r\n", HttpError::BadRequest("malformed request line")),
            (b"G(T / HTTP/1.1\r\n\r\n", HttpError::BadRequest("malformed request line")),
            (b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", HttpError::BadRequest("malformed header name")),
            (b"GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", HttpError::BadRequest("malformed header value")),
            (b"GET / HTTP/1.1\r\n folded: x\r\n\r\n", HttpError::BadRequest("malformed header name")),
        ];
        for (input, expected) in table {
            assert_eq!(
                parse(input),
                Err(*expected),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn head_size_limit() {
        let head_with_len = |len: usize, finish: bool| {
            let mut input = b"GET / HTTP/1.1\r\nX-Pad: ".to_vec();
            let terminator = if finish { 4 } else { 0 };
            input.resize(len - terminator, b'a');
            if finish {
                input.extend_from_slice(b"\r\n\r\n");
            }
            input
        };
        // Exactly at the limit: fine. One byte past it: 431, complete or not.
        assert_eq!(
            complete(&head_with_len(HTTP_HEAD_BYTES_MAX, true)).consumed,
            HTTP_HEAD_BYTES_MAX
        );
        assert_eq!(
            parse(&head_with_len(HTTP_HEAD_BYTES_MAX, false)),
            Ok(Parsed::Partial {
                head_complete: None
            })
        );
        assert_eq!(
            parse(&head_with_len(HTTP_HEAD_BYTES_MAX + 1, true)),
            Err(HttpError::HeadTooLarge)
        );
        assert_eq!(
            parse(&head_with_len(HTTP_HEAD_BYTES_MAX + 1, false)),
            Err(HttpError::HeadTooLarge)
        );
        assert_eq!(
            parse(&head_with_len(10 * HTTP_HEAD_BYTES_MAX, false)),
            Err(HttpError::HeadTooLarge)
        );
        // A head within the limit followed by a long body is fine.
        let mut input = format!("POST / HTTP/1.1\r\nContent-Length: {HTTP_BODY_BYTES_MAX}\r\n\r\n")
            .into_bytes();
        let head_len = input.len();
        input.resize(head_len + HTTP_BODY_BYTES_MAX, b'x');
        assert_eq!(complete(&input).body, Body::InBuffer(head_len..input.len()));
    }

    #[test]
    fn header_count_limit() {
        let with_headers = |count: usize| {
            let mut input = String::from("GET / HTTP/1.1\r\n");
            for i in 0..count {
                input.push_str(&format!("X-{i}: v\r\n"));
            }
            input.push_str("\r\n");
            input
        };
        assert!(parse(with_headers(HTTP_HEADERS_MAX).as_bytes()).is_ok());
        assert_eq!(
            parse(with_headers(HTTP_HEADERS_MAX + 1).as_bytes()),
            Err(HttpError::HeadTooLarge)
        );
    }

    #[test]
    fn chunked_decode() {
        let mut scratch = Progress::default();
        let Ok(Parsed::Complete(request)) = parse_request(CHUNKED, &mut scratch) else {
            panic!()
        };
        assert_eq!(request.body, Body::Decoded);
        assert_eq!(request.consumed, CHUNKED.len());
        assert_eq!(scratch.decoded_body(), CHUNKED_DECODED);
        let table: &[(&[u8], &[u8])] = &[
            (b"0\r\n\r\n", b""),
            (b"2\r\n{}\r\n0\r\n\r\n", b"{}"),
            (b"002\r\n{}\r\n000\r\n\r\n", b"{}"),
            (
                b"a\r\n0123456789\r\nA\r\n0123456789\r\n0\r\n\r\n",
                b"01234567890123456789",
            ),
            (b"2 ; a=b ; c=\"d\"\r\n{}\r\n0;last\r\n\r\n", b"{}"),
            (b"1\r\n\n\r\n1\r\n\r\r\n0\r\n\r\n", b"\n\r"),
        ];
        for &(body, decoded) in table {
            let mut input = b"POST / HTTP/1.1\r\ntransfer-encoding: Chunked\r\n\r\n".to_vec();
            input.extend_from_slice(body);
            scratch.reset();
            let Ok(Parsed::Complete(request)) = parse_request(&input, &mut scratch) else {
                panic!("{:?}", String::from_utf8_lossy(body))
            };
            assert_eq!(request.consumed, input.len());
            assert_eq!(
                scratch.decoded_body(),
                decoded,
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn chunked_at_every_split() {
        let head_len = CHUNKED.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let mut scratch = Progress::default();
        for end in 0..CHUNKED.len() {
            let result = parse_request(&CHUNKED[..end], &mut scratch);
            let Ok(Parsed::Partial { head_complete }) = result else {
                panic!("split at {end}: {result:?}")
            };
            assert_eq!(head_complete.is_some(), end >= head_len, "split at {end}");
        }
    }

    #[test]
    fn chunked_refused() {
        let head = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let over = format!("{:x}\r\n", HTTP_BODY_BYTES_MAX + 1);
        let half = format!("{:x}\r\n{}\r\n{:x}\r\n", 2048, "x".repeat(2048), 2049);
        let long_extension = format!("1;{}", "e".repeat(HTTP_CHUNKED_BODY_BYTES_MAX));
        let long_trailer = format!("0\r\nX: {}", "t".repeat(HTTP_CHUNKED_BODY_BYTES_MAX));
        let table: &[(&[u8], HttpError)] = &[
            // Refused on the declared size alone, before the data arrives.
            (over.as_bytes(), HttpError::BodyTooLarge),
            (half.as_bytes(), HttpError::BodyTooLarge),
            (b"ffffffffffffffff\r\n", HttpError::BodyTooLarge),
            (long_extension.as_bytes(), HttpError::BodyTooLarge),
            (long_trailer.as_bytes(), HttpError::BodyTooLarge),
            (b"zz\r\n", HttpError::BadRequest("malformed chunk size")),
            (b"\r\n", HttpError::BadRequest("malformed chunk size")),
            (b";ext\r\n", HttpError::BadRequest("malformed chunk size")),
            (b"-1\r\n", HttpError::BadRequest("malformed chunk size")),
            (b"1x\r\n", HttpError::BadRequest("malformed chunk size")),
            (b"1\rx", HttpError::BadRequest("malformed chunk size")),
            (
                b"11111111111111111\r\n",
                HttpError::BadRequest("malformed chunk size"),
            ),
            (
                b"2\r\n{}xx",
                HttpError::BadRequest("chunk data not followed by CRLF"),
            ),
            (
                b"2\r\n{}\n0\r\n\r\n",
                HttpError::BadRequest("chunk data not followed by CRLF"),
            ),
            (
                b"0\r\nBad Trailer: x\r\n\r\n",
                HttpError::BadRequest("malformed trailer section"),
            ),
        ];
        for (body, expected) in table {
            let mut input = head.to_vec();
            input.extend_from_slice(body);
            assert_eq!(
                parse(&input),
                Err(*expected),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn chunked_limit_boundary() {
        let at_limit = format!(
            "{:x}\r\n{}\r\n0\r\n\r\n",
            HTTP_BODY_BYTES_MAX,
            "x".repeat(HTTP_BODY_BYTES_MAX)
        );
        let mut input = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        input.extend_from_slice(at_limit.as_bytes());
        let mut scratch = Progress::default();
        assert!(matches!(
            parse_request(&input, &mut scratch),
            Ok(Parsed::Complete(_))
        ));
        assert_eq!(scratch.decoded_body().len(), HTTP_BODY_BYTES_MAX);
    }

    #[test]
    fn error_statuses_and_messages() {
        let table: &[(HttpError, u16, &str)] = &[
            (HttpError::BadRequest("x"), 400, "x"),
            (HttpError::HeadTooLarge, 431, "request head too large"),
            (HttpError::BodyTooLarge, 413, "request body too large"),
            (HttpError::LengthRequired, 411, "Content-Length required"),
            (HttpError::NotImplemented("y"), 501, "y"),
            (
                HttpError::VersionNotSupported,
                505,
                "HTTP version not supported",
            ),
        ];
        for &(error, status, message) in table {
            assert_eq!((error.status(), error.message()), (status, message));
        }
    }

    /// Whatever the result, its ranges must lie inside the input.
    fn check_invariants(input: &[u8], result: &Result<Parsed, HttpError>) {
        if let Ok(Parsed::Complete(request)) = result {
            assert!(request.consumed <= input.len() && request.consumed > 0);
            assert!(request.head.path.end <= request.consumed);
            if let Body::InBuffer(range) = &request.body {
                assert!(range.start <= range.end && range.end <= request.consumed);
            }
        }
    }

    #[test]
    fn garbage_never_panics() {
        const ALPHABET: &[u8] = b"GET POST/ HTTP/1.1\r\n:;,0123456789abcdefxContent-Length Transfer-Encoding chunked\t\0\xff";
        let mut rng = fastrand::Rng::with_seed(7);
        let mut scratch = Progress::default();
        let mut input = Vec::new();
        for round in 0..20_000 {
            input.clear();
            for _ in 0..rng.u8(..) {
                let b = rng.u8(..);
                input.push(if round % 4 == 0 {
                    b
                } else {
                    ALPHABET[usize::from(b) % ALPHABET.len()]
                });
            }
            scratch.reset();
            let result = parse_request(&input, &mut scratch);
            check_invariants(&input, &result);
        }
    }

    #[test]
    fn mutated_requests_never_panic() {
        let seeds: &[&[u8]] = &[GET, POST, CHUNKED];
        let mut rng = fastrand::Rng::with_seed(99);
        let mut scratch = Progress::default();
        let mut input = Vec::new();
        for round in 0..30_000 {
            input.clear();
            input.extend_from_slice(seeds[round % seeds.len()]);
            let edits = rng.usize(1..=3);
            crate::test_support::damage(&mut rng, &mut input, edits);
            scratch.reset();
            let result = parse_request(&input, &mut scratch);
            check_invariants(&input, &result);
        }
    }

    /// Feeds `input` a byte at a time to one `Progress`: at every length
    /// the answer is the one a fresh parse of those bytes gives, except that
    /// a malformed head is refused only once it ends (a fresh parse may see
    /// the damage a few lines earlier).
    fn fed_byte_by_byte(input: &[u8]) -> (Result<Parsed, HttpError>, Vec<u8>) {
        let mut progress = Progress::default();
        let mut last = parse_request(&[], &mut progress);
        for end in 1..=input.len() {
            last = parse_request(&input[..end], &mut progress);
            let mut fresh = Progress::default();
            let expected = parse_request(&input[..end], &mut fresh);
            let waits_for_the_head_end =
                last == Ok(Parsed::Partial {
                    head_complete: None,
                }) && expected.is_err();
            if !waits_for_the_head_end || end == input.len() {
                assert_eq!(
                    last,
                    expected,
                    "at {end} of {:?}",
                    String::from_utf8_lossy(input)
                );
            }
            if matches!(last, Ok(Parsed::Complete(_))) {
                assert_eq!(progress.decoded_body(), fresh.decoded_body());
            }
            if last.is_err() {
                break;
            }
        }
        (last, progress.decoded_body().to_vec())
    }

    #[test]
    fn resumes_where_it_stopped() {
        let one_byte_chunks: Vec<u8> = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            .iter()
            .copied()
            .chain((0..200).flat_map(|i| format!("1\r\n{}\r\n", i % 10).into_bytes()))
            .chain(*b"0\r\nX-Trailer: yes\r\n\r\n")
            .collect();
        for input in [GET, POST, CHUNKED, &one_byte_chunks] {
            let (result, body) = fed_byte_by_byte(input);
            assert!(matches!(result, Ok(Parsed::Complete(_))), "{result:?}");
            if input == CHUNKED {
                assert_eq!(body, CHUNKED_DECODED);
            }
        }
        assert_eq!(
            fed_byte_by_byte(&one_byte_chunks).1.len(),
            200,
            "one byte a chunk"
        );
        // Refusals come at the same byte as from a fresh parse.
        for input in [
            &b"GET / HTTP/1.1\r\nBad Header\r\n\r\n"[..],
            b"\x00GET / HTTP/1.1\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ] {
            assert!(fed_byte_by_byte(input).0.is_err());
        }
    }

    #[test]
    fn decoded_chunks_are_not_decoded_again() {
        let chunks_end = CHUNKED.windows(5).position(|w| w == b"\r\n0\r\n").unwrap() + 2;
        let mut input = CHUNKED[..chunks_end].to_vec();
        let mut progress = Progress::default();
        assert!(matches!(
            parse_request(&input, &mut progress),
            Ok(Parsed::Partial {
                head_complete: Some(_)
            })
        ));
        // Were the chunks decoded again, the damage would show in the body
        // (or be refused as malformed).
        let damaged = input.len() - 6;
        input[damaged..].fill(b'#');
        input.extend_from_slice(&CHUNKED[chunks_end..]);
        let Ok(Parsed::Complete(request)) = parse_request(&input, &mut progress) else {
            panic!()
        };
        assert_eq!(request.consumed, CHUNKED.len());
        assert_eq!(progress.decoded_body(), CHUNKED_DECODED);
    }
}
