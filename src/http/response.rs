//! Response bytes. Every response is JSON with an exact Content-Length (no
//! chunked responses: bodies are small and rendered before the head), written
//! straight into the connection's output buffer without `format!`.

use crate::json;

/// The interim answer to `Expect: 100-continue`, sent before the body arrives.
pub const CONTINUE_100: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

const STATUS_LINE_PREFIX: &[u8] = b"HTTP/1.1 ";
const CONTENT_TYPE_AND_LENGTH: &[u8] = b"\r\nContent-Type: application/json\r\nContent-Length: ";
/// Prometheus' text exposition format, version 0.0.4.
const PROMETHEUS_TYPE_AND_LENGTH: &[u8] =
    b"\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: ";
const CONNECTION_CLOSE: &[u8] = b"Connection: close\r\n";
/// Sent on every kept-alive answer: HTTP/1.1 clients assume it, HTTP/1.0
/// clients (ApacheBench, old proxies) close the connection without it.
const CONNECTION_KEEP_ALIVE: &[u8] = b"Connection: keep-alive\r\n";
const ALLOW: &[u8] = b"Allow: ";
const RETRY_AFTER: &[u8] = b"Retry-After: ";
const SET_COOKIE: &[u8] = b"Set-Cookie: ";
const NO_STORE: &[u8] = b"Cache-Control: no-store\r\n";
const CRLF: &[u8] = b"\r\n";
const ERROR_BODY_PREFIX: &[u8] = b"{\"error\":";
const ERROR_BODY_SUFFIX: &[u8] = b"}";
const ERROR_REASON_PREFIX: &[u8] = b",\"reason\":";

/// The one header beyond the fixed ones a response may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header<'a> {
    /// The method list a 405 must carry (RFC 9110 §15.5.6).
    Allow(&'a str),
    /// Seconds before a refused client should try again (429, 503).
    RetryAfter(u32),
    /// A cookie to keep (a session's), as its `Set-Cookie` value; it
    /// comes with `Cache-Control: no-store`: no cache keeps a session.
    SetCookie(&'a [u8]),
}

/// What an error body says: `{"error":"<message>"}`, with `"reason"` (a
/// stable machine-readable code) after it when there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorBody<'a> {
    pub message: &'a str,
    pub reason: Option<&'a str>,
}

/// The reason phrase for every status this server sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        // The phrase is informational (RFC 9112 §4); clients go by the code.
        _ => "Unknown",
    }
}

/// Appends a response head for a JSON body of `content_length` bytes.
/// `keep_alive == false` announces the close so the client does not reuse the
/// connection; `header` is the answer's one extra header, if any.
pub fn write_head(
    out: &mut Vec<u8>,
    status: u16,
    content_length: usize,
    keep_alive: bool,
    header: Option<Header<'_>>,
) {
    write_typed_head(
        out,
        status,
        CONTENT_TYPE_AND_LENGTH,
        content_length,
        keep_alive,
        header,
    );
}

/// Appends a `200` head for metrics in the Prometheus text format.
pub fn write_metrics_head(out: &mut Vec<u8>, content_length: usize, keep_alive: bool) {
    write_typed_head(
        out,
        200,
        PROMETHEUS_TYPE_AND_LENGTH,
        content_length,
        keep_alive,
        None,
    );
}

fn write_typed_head(
    out: &mut Vec<u8>,
    status: u16,
    type_and_length: &[u8],
    content_length: usize,
    keep_alive: bool,
    header: Option<Header<'_>>,
) {
    let mut number = itoa::Buffer::new();
    out.extend_from_slice(STATUS_LINE_PREFIX);
    out.extend_from_slice(number.format(status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(type_and_length);
    out.extend_from_slice(number.format(content_length).as_bytes());
    out.extend_from_slice(CRLF);
    out.extend_from_slice(if keep_alive {
        CONNECTION_KEEP_ALIVE
    } else {
        CONNECTION_CLOSE
    });
    match header {
        Some(Header::Allow(methods)) => {
            out.extend_from_slice(ALLOW);
            out.extend_from_slice(methods.as_bytes());
            out.extend_from_slice(CRLF);
        }
        Some(Header::RetryAfter(seconds)) => {
            out.extend_from_slice(RETRY_AFTER);
            out.extend_from_slice(number.format(seconds).as_bytes());
            out.extend_from_slice(CRLF);
        }
        Some(Header::SetCookie(cookie)) => {
            out.extend_from_slice(SET_COOKIE);
            out.extend_from_slice(cookie);
            out.extend_from_slice(CRLF);
            out.extend_from_slice(NO_STORE);
        }
        None => {}
    }
    out.extend_from_slice(CRLF);
}

/// Appends a whole response whose body is already rendered JSON.
pub fn write_json_response(
    out: &mut Vec<u8>,
    status: u16,
    body: &[u8],
    keep_alive: bool,
    header: Option<Header<'_>>,
) {
    write_head(out, status, body.len(), keep_alive, header);
    out.extend_from_slice(body);
}

/// Bytes of the body `{"error":"<message>"}`.
pub fn error_body_len(message: &str) -> usize {
    error_body_with_reason_len(ErrorBody {
        message,
        reason: None,
    })
}

/// Bytes of an error body, with its reason if it has one.
pub fn error_body_with_reason_len(body: ErrorBody<'_>) -> usize {
    let reason = body.reason.map_or(0, |reason| {
        ERROR_REASON_PREFIX.len() + json::str_len(reason)
    });
    ERROR_BODY_PREFIX.len() + json::str_len(body.message) + reason + ERROR_BODY_SUFFIX.len()
}

/// Appends a response with the body `{"error":"<message>"}`, the message
/// escaped as a JSON string. Its length is computed up front, so the body is
/// written once, straight after the head.
pub fn write_error(
    out: &mut Vec<u8>,
    status: u16,
    message: &str,
    keep_alive: bool,
    header: Option<Header<'_>>,
) {
    let body = ErrorBody {
        message,
        reason: None,
    };
    write_error_with_reason(out, status, body, keep_alive, header);
}

/// [`write_error`] for a body that may carry a reason:
/// `{"error":"<message>","reason":"<code>"}`.
pub fn write_error_with_reason(
    out: &mut Vec<u8>,
    status: u16,
    body: ErrorBody<'_>,
    keep_alive: bool,
    header: Option<Header<'_>>,
) {
    write_head(
        out,
        status,
        error_body_with_reason_len(body),
        keep_alive,
        header,
    );
    out.extend_from_slice(ERROR_BODY_PREFIX);
    json::write_str(out, body.message);
    if let Some(reason) = body.reason {
        out.extend_from_slice(ERROR_REASON_PREFIX);
        json::write_str(out, reason);
    }
    out.extend_from_slice(ERROR_BODY_SUFFIX);
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_longest_head_fits_its_bound() {
        let mut longest = 0;
        for status in 100..600 {
            let mut out = Vec::new();
            write_head(
                &mut out,
                status,
                usize::MAX,
                true,
                Some(Header::Allow("GET, HEAD, POST")),
            );
            longest = longest.max(out.len());
            out.clear();
            write_head(
                &mut out,
                status,
                usize::MAX,
                false,
                Some(Header::Allow("GET, HEAD, POST")),
            );
            longest = longest.max(out.len());
            out.clear();
            write_head(
                &mut out,
                status,
                usize::MAX,
                false,
                Some(Header::RetryAfter(u32::MAX)),
            );
            longest = longest.max(out.len());
        }
        assert!(
            longest <= crate::config::HTTP_RESPONSE_HEAD_BYTES_MAX,
            "{longest}"
        );
    }

    use super::*;

    #[test]
    fn heads_exact_bytes() {
        type Row = (u16, usize, bool, Option<Header<'static>>, &'static str);
        let table: &[Row] = &[
            (
                201,
                42,
                true,
                None,
                "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 42\r\nConnection: keep-alive\r\n\r\n",
            ),
            (
                200,
                0,
                false,
                None,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            ),
            (
                405,
                7,
                true,
                Some(Header::Allow("GET, POST")),
                "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: application/json\r\nContent-Length: 7\r\nConnection: keep-alive\r\nAllow: GET, POST\r\n\r\n",
            ),
            (
                405,
                123456,
                false,
                Some(Header::Allow("POST")),
                "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: application/json\r\nContent-Length: 123456\r\nConnection: close\r\nAllow: POST\r\n\r\n",
            ),
        ];
        for &(status, len, keep_alive, allow, expected) in table {
            let mut out = b"earlier".to_vec();
            write_head(&mut out, status, len, keep_alive, allow);
            assert_eq!(std::str::from_utf8(&out[7..]).unwrap(), expected);
        }
    }

    #[test]
    fn reasons() {
        let table: &[(u16, &str)] = &[
            (100, "Continue"),
            (200, "OK"),
            (201, "Created"),
            (400, "Bad Request"),
            (404, "Not Found"),
            (405, "Method Not Allowed"),
            (408, "Request Timeout"),
            (409, "Conflict"),
            (411, "Length Required"),
            (413, "Content Too Large"),
            (422, "Unprocessable Content"),
            (431, "Request Header Fields Too Large"),
            (500, "Internal Server Error"),
            (501, "Not Implemented"),
            (503, "Service Unavailable"),
            (505, "HTTP Version Not Supported"),
            (299, "Unknown"),
        ];
        for &(status, phrase) in table {
            assert_eq!(reason(status), phrase, "{status}");
        }
    }

    #[test]
    fn json_response_exact_bytes() {
        let mut out = Vec::new();
        write_json_response(&mut out, 200, br#"{"id":1}"#, true, None);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 8\r\nConnection: keep-alive\r\n\r\n{\"id\":1}"
        );
    }

    #[test]
    fn error_exact_bytes() {
        let table: &[(u16, &str, bool, &str)] = &[
            (
                404,
                "product not found",
                true,
                "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 29\r\nConnection: keep-alive\r\n\r\n{\"error\":\"product not found\"}",
            ),
            (
                422,
                "bad \"quote\"\n",
                false,
                "HTTP/1.1 422 Unprocessable Content\r\nContent-Type: application/json\r\nContent-Length: 27\r\nConnection: close\r\n\r\n{\"error\":\"bad \\\"quote\\\"\\n\"}",
            ),
            (
                503,
                "é",
                true,
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 14\r\nConnection: keep-alive\r\n\r\n{\"error\":\"é\"}",
            ),
        ];
        for &(status, message, keep_alive, expected) in table {
            let mut out = Vec::new();
            write_error(&mut out, status, message, keep_alive, None);
            assert_eq!(std::str::from_utf8(&out).unwrap(), expected);
            // The declared length is the real length.
            let body_at = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            let declared = expected.split("Content-Length: ").nth(1).unwrap();
            let declared: usize = declared[..declared.find('\r').unwrap()].parse().unwrap();
            assert_eq!(out.len() - body_at, declared);
        }
    }

    #[test]
    fn error_with_allow() {
        let mut out = Vec::new();
        write_error(
            &mut out,
            405,
            "method not allowed",
            true,
            Some(Header::Allow("GET")),
        );
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: application/json\r\nContent-Length: 30\r\nConnection: keep-alive\r\nAllow: GET\r\n\r\n{\"error\":\"method not allowed\"}"
        );
    }

    #[test]
    fn error_with_reason_and_retry_after() {
        let mut out = Vec::new();
        let body = ErrorBody {
            message: "too many orders, slow down",
            reason: Some("rate_limited"),
        };
        write_error_with_reason(&mut out, 429, body, true, Some(Header::RetryAfter(2)));
        let text = std::str::from_utf8(&out).unwrap();
        let expected_body = r#"{"error":"too many orders, slow down","reason":"rate_limited"}"#;
        assert_eq!(
            text,
            format!(
                "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: keep-alive\r\nRetry-After: 2\r\n\r\n{expected_body}",
                expected_body.len()
            )
        );
        assert_eq!(error_body_with_reason_len(body), expected_body.len());
    }

    #[test]
    fn continue_line() {
        assert_eq!(CONTINUE_100, b"HTTP/1.1 100 Continue\r\n\r\n");
    }
}
