//! Decoding of backend (server -> client) messages: pure functions over byte
//! slices, no IO. Frontend encoding comes from the `postgres-protocol` crate;
//! this is the half it leaves to callers who do not want its `Bytes`-owning
//! message enum on the hot path.
//!
//! A message is `tag: u8, length: i32 (including itself), body`. Nothing here
//! trusts the server: every length is checked, and a malformed message is a
//! `ProtocolError` that closes that connection, never a panic.

use crate::config::PG_MESSAGE_BYTES_MAX;
use crate::pg::types::{fixed_width, oid};

pub mod tag {
    pub const AUTHENTICATION: u8 = b'R';
    pub const BACKEND_KEY_DATA: u8 = b'K';
    pub const BIND_COMPLETE: u8 = b'2';
    pub const CLOSE_COMPLETE: u8 = b'3';
    pub const COMMAND_COMPLETE: u8 = b'C';
    pub const DATA_ROW: u8 = b'D';
    pub const EMPTY_QUERY_RESPONSE: u8 = b'I';
    pub const ERROR_RESPONSE: u8 = b'E';
    pub const NO_DATA: u8 = b'n';
    pub const NOTICE_RESPONSE: u8 = b'N';
    pub const NOTIFICATION_RESPONSE: u8 = b'A';
    pub const PARAMETER_DESCRIPTION: u8 = b't';
    pub const PARAMETER_STATUS: u8 = b'S';
    pub const PARSE_COMPLETE: u8 = b'1';
    pub const PORTAL_SUSPENDED: u8 = b's';
    pub const READY_FOR_QUERY: u8 = b'Z';
    pub const ROW_DESCRIPTION: u8 = b'T';
}

/// Malformed or unexpected data from the server. The connection that sent it
/// is closed; the message says what was wrong for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl ProtocolError {
    #[cold]
    pub fn new(message: impl Into<String>) -> ProtocolError {
        ProtocolError(message.into())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub tag: u8,
    pub body: &'a [u8],
}

/// The next complete message at the start of `buf`, with its total length;
/// `Ok(None)` when more bytes are needed.
pub fn next_frame(buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>, ProtocolError> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let length = i32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
    if length < 4 || length as usize > PG_MESSAGE_BYTES_MAX {
        return Err(ProtocolError::new(format!(
            "message {:?} has invalid length {length}",
            buf[0] as char
        )));
    }
    let total = 1 + length as usize;
    if buf.len() < total {
        return Ok(None);
    }
    Ok(Some((
        Frame {
            tag: buf[0],
            body: &buf[5..total],
        },
        total,
    )))
}

/// Reads big-endian integers and C strings off the front of a body.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        if self.bytes.len() < n {
            return Err(ProtocolError::new("message body is truncated"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }
    fn i16(&mut self) -> Result<i16, ProtocolError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Result<i32, ProtocolError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn cstr(&mut self) -> Result<&'a [u8], ProtocolError> {
        let end = self
            .bytes
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| ProtocolError::new("unterminated string in message"))?;
        let s = &self.bytes[..end];
        self.bytes = &self.bytes[end + 1..];
        Ok(s)
    }
}

/// An `Authentication*` request from the server.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthRequest<'a> {
    Ok,
    Cleartext,
    Md5 {
        salt: [u8; 4],
    },
    /// The body lists the mechanisms; see `sasl_offers_scram_sha_256`.
    Sasl {
        mechanisms: &'a [u8],
    },
    SaslContinue {
        data: &'a [u8],
    },
    SaslFinal {
        data: &'a [u8],
    },
    Unsupported(i32),
}

pub fn auth_request(body: &[u8]) -> Result<AuthRequest<'_>, ProtocolError> {
    let mut r = Reader { bytes: body };
    Ok(match r.i32()? {
        0 => AuthRequest::Ok,
        3 => AuthRequest::Cleartext,
        5 => {
            let s = r.take(4)?;
            AuthRequest::Md5 {
                salt: [s[0], s[1], s[2], s[3]],
            }
        }
        10 => AuthRequest::Sasl {
            mechanisms: r.bytes,
        },
        11 => AuthRequest::SaslContinue { data: r.bytes },
        12 => AuthRequest::SaslFinal { data: r.bytes },
        other => AuthRequest::Unsupported(other),
    })
}

/// What identifies a session to a CancelRequest (BackendKeyData).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendKey {
    pub process_id: i32,
    pub secret_key: i32,
}

/// A BackendKeyData body: the backend's process id and secret key.
pub fn backend_key(body: &[u8]) -> Result<BackendKey, ProtocolError> {
    let mut r = Reader { bytes: body };
    let key = BackendKey {
        process_id: r.i32()?,
        secret_key: r.i32()?,
    };
    if !r.bytes.is_empty() {
        // Protocol 3.2 allows longer keys; we speak 3.0, which has 4 bytes.
        return Err(ProtocolError::new("BackendKeyData of an unexpected length"));
    }
    Ok(key)
}

/// Whether an AuthenticationSASL mechanism list includes plain SCRAM-SHA-256
/// (we have no TLS, so never the channel-bound `-PLUS` variant).
pub fn sasl_offers_scram_sha_256(mechanisms: &[u8]) -> bool {
    mechanisms.split(|&b| b == 0).any(|m| m == b"SCRAM-SHA-256")
}

/// SQLSTATE of a statement cancelled by `statement_timeout` or a
/// CancelRequest.
pub const QUERY_CANCELED: &str = "57014";
/// SQLSTATE of a lock wait that ran past `lock_timeout` (or NOWAIT).
pub const LOCK_NOT_AVAILABLE: &str = "55P03";

/// The fields of an ErrorResponse or NoticeResponse we act on, borrowed from
/// the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DbError<'a> {
    /// Non-localized severity (`V` field): ERROR, FATAL, PANIC, ...
    pub severity: &'a str,
    /// SQLSTATE, e.g. `23505` for unique_violation.
    pub code: &'a str,
    pub message: &'a str,
    pub detail: &'a str,
    pub constraint: &'a str,
}

impl<'a> DbError<'a> {
    pub fn parse(body: &'a [u8]) -> Result<DbError<'a>, ProtocolError> {
        let mut r = Reader { bytes: body };
        let mut error = DbError::default();
        let mut localized_severity = "";
        loop {
            let field = r.take(1)?[0];
            if field == 0 {
                break;
            }
            let value = std::str::from_utf8(r.cstr()?)
                .map_err(|_| ProtocolError::new("error field is not UTF-8"))?;
            match field {
                b'V' => error.severity = value,
                b'S' => localized_severity = value,
                b'C' => error.code = value,
                b'M' => error.message = value,
                b'D' => error.detail = value,
                b'n' => error.constraint = value,
                _ => {}
            }
        }
        if error.severity.is_empty() {
            // Servers before 9.6 send only the localized field.
            error.severity = localized_severity;
        }
        Ok(error)
    }

    /// FATAL and PANIC end the session: the server closes the socket next.
    pub fn ends_session(&self) -> bool {
        matches!(self.severity, "FATAL" | "PANIC")
    }

    /// The server stopped the statement at a deadline (`statement_timeout`,
    /// `lock_timeout`) or on a CancelRequest: it rolled back, nothing of it
    /// was committed, and running it again later may well succeed.
    pub fn is_timeout(&self) -> bool {
        matches!(self.code, QUERY_CANCELED | LOCK_NOT_AVAILABLE)
    }
}

/// The name and value of a ParameterStatus message.
pub fn parameter_status(body: &[u8]) -> Result<(&[u8], &[u8]), ProtocolError> {
    let mut r = Reader { bytes: body };
    Ok((r.cstr()?, r.cstr()?))
}

/// A boolean as the server writes it in text: a setting (`on`/`off`) or a
/// column (`t`/`f`). `None` for anything else.
pub fn text_bool(value: &[u8]) -> Option<bool> {
    match value {
        b"on" | b"t" | b"true" => Some(true),
        b"off" | b"f" | b"false" => Some(false),
        _ => None,
    }
}

/// Parameter type OIDs of a ParameterDescription message.
pub fn parameter_types(body: &[u8]) -> Result<Vec<u32>, ProtocolError> {
    let mut r = Reader { bytes: body };
    let count = r.i16()?;
    if count < 0 {
        return Err(ProtocolError::new("negative parameter count"));
    }
    // Reserve for what the body can hold, not for what it claims.
    let mut types = Vec::with_capacity((count as usize).min(r.bytes.len() / 4));
    for _ in 0..count {
        types.push(r.i32()? as u32);
    }
    Ok(types)
}

/// (column name, type OID) of each field of a RowDescription message.
pub fn row_description(body: &[u8]) -> Result<Vec<(String, u32)>, ProtocolError> {
    let mut r = Reader { bytes: body };
    let count = r.i16()?;
    if count < 0 {
        return Err(ProtocolError::new("negative column count"));
    }
    // A field takes at least 19 bytes (empty name, then 18 bytes of
    // numbers): reserve for what the body can hold, not for what it claims.
    const FIELD_BYTES_MIN: usize = 19;
    let mut columns = Vec::with_capacity((count as usize).min(r.bytes.len() / FIELD_BYTES_MIN));
    for _ in 0..count {
        let name = String::from_utf8_lossy(r.cstr()?).into_owned();
        let _table_oid = r.i32()?;
        let _column_number = r.i16()?;
        let type_oid = r.i32()? as u32;
        let _type_size = r.i16()?;
        let _type_modifier = r.i32()?;
        let _format = r.i16()?;
        columns.push((name, type_oid));
    }
    Ok(columns)
}

/// Iterates the column values of a DataRow body (after validation): `None` is
/// SQL NULL.
pub struct DataRowColumns<'a> {
    reader: Reader<'a>,
    remaining: i16,
}

impl<'a> DataRowColumns<'a> {
    pub fn new(body: &'a [u8]) -> DataRowColumns<'a> {
        let mut reader = Reader { bytes: body };
        let remaining = reader.i16().unwrap_or(0);
        DataRowColumns { reader, remaining }
    }
}

impl<'a> Iterator for DataRowColumns<'a> {
    /// `Err` only for a body that `validate_data_row` would have rejected.
    type Item = Result<Option<&'a [u8]>, ProtocolError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining <= 0 {
            return None;
        }
        self.remaining -= 1;
        let value = match self.reader.i32() {
            Ok(-1) => Ok(None),
            Ok(len) if len < 0 => Err(ProtocolError::new("negative column length")),
            Ok(len) => self.reader.take(len as usize).map(Some),
            Err(e) => Err(e),
        };
        if value.is_err() {
            self.remaining = 0; // the rest of the row cannot be located
        }
        Some(value)
    }
}

/// Checks a DataRow against the column types its statement was prepared
/// with: column count, exact width of fixed-size binary values, UTF-8 text.
/// After this, typed accessors on the row cannot fail on anything but NULL.
pub fn validate_data_row(body: &[u8], column_types: &[u32]) -> Result<(), ProtocolError> {
    let mut columns = DataRowColumns::new(body);
    if columns.remaining as usize != column_types.len() || body.len() < 2 {
        return Err(ProtocolError::new(format!(
            "data row has {} columns, statement has {}",
            columns.remaining,
            column_types.len()
        )));
    }
    for &type_oid in column_types {
        let value = match columns.next() {
            Some(v) => v?,
            None => return Err(ProtocolError::new("data row is truncated")),
        };
        let Some(value) = value else { continue };
        if let Some(width) = fixed_width(type_oid) {
            if value.len() != width {
                return Err(ProtocolError::new(format!(
                    "column of type {type_oid} has {} bytes, expected {width}",
                    value.len()
                )));
            }
        } else if matches!(type_oid, oid::TEXT | oid::VARCHAR)
            && std::str::from_utf8(value).is_err()
        {
            return Err(ProtocolError::new("text column is not UTF-8"));
        }
    }
    if !columns.reader.bytes.is_empty() {
        return Err(ProtocolError::new("data row has trailing bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![tag];
        m.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    fn data_row(values: &[Option<&[u8]>]) -> Vec<u8> {
        let mut body = (values.len() as i16).to_be_bytes().to_vec();
        for v in values {
            match v {
                None => body.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(v) => {
                    body.extend_from_slice(&(v.len() as i32).to_be_bytes());
                    body.extend_from_slice(v);
                }
            }
        }
        body
    }

    #[test]
    fn frames_split_at_every_point() {
        let mut stream = message(tag::BIND_COMPLETE, b"");
        stream.extend(message(tag::READY_FOR_QUERY, b"I"));
        let first_len = 5;
        for cut in 0..stream.len() {
            let got = next_frame(&stream[..cut]).unwrap();
            if cut < first_len {
                assert_eq!(got, None, "cut {cut}");
            } else {
                assert_eq!(
                    got,
                    Some((
                        Frame {
                            tag: b'2',
                            body: b""
                        },
                        5
                    ))
                );
            }
        }
        let (frame, len) = next_frame(&stream[5..]).unwrap().unwrap();
        assert_eq!((frame.tag, frame.body, len), (b'Z', &b"I"[..], 6));
    }

    #[test]
    fn rejects_bad_lengths() {
        assert!(next_frame(&[b'Z', 0, 0, 0, 3]).is_err());
        assert!(next_frame(&[b'D', 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(
            next_frame(&[b'D', 0x7f, 0, 0, 0]).is_err(),
            "over the message size limit"
        );
    }

    #[test]
    fn decodes_auth_requests() {
        assert_eq!(auth_request(&0i32.to_be_bytes()).unwrap(), AuthRequest::Ok);
        assert_eq!(
            auth_request(&3i32.to_be_bytes()).unwrap(),
            AuthRequest::Cleartext
        );
        let md5 = [0, 0, 0, 5, 1, 2, 3, 4];
        assert_eq!(
            auth_request(&md5).unwrap(),
            AuthRequest::Md5 { salt: [1, 2, 3, 4] }
        );
        assert!(auth_request(&[0, 0, 0, 5, 1]).is_err(), "truncated salt");
        let sasl = b"\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0";
        let AuthRequest::Sasl { mechanisms } = auth_request(sasl).unwrap() else {
            panic!()
        };
        assert!(sasl_offers_scram_sha_256(mechanisms));
        assert!(!sasl_offers_scram_sha_256(b"SCRAM-SHA-256-PLUS\0\0"));
        assert_eq!(
            auth_request(&7i32.to_be_bytes()).unwrap(),
            AuthRequest::Unsupported(7)
        );
        assert!(auth_request(&[0, 0]).is_err());
    }

    #[test]
    fn decodes_error_fields() {
        let body = b"SERROR\0VERROR\0C23505\0Mduplicate key\0Dkey exists\0norders_key\0\0";
        let e = DbError::parse(body).unwrap();
        assert_eq!(
            (e.severity, e.code, e.message, e.detail, e.constraint),
            (
                "ERROR",
                "23505",
                "duplicate key",
                "key exists",
                "orders_key"
            )
        );
        assert!(!e.ends_session());
        let fatal = DbError::parse(b"SFATAL\0C57P01\0Mterminating\0\0").unwrap();
        assert!(fatal.ends_session(), "falls back to the localized severity");
        assert!(DbError::parse(b"Mno terminator").is_err());
        assert!(DbError::parse(b"Mno end\0").is_err());
    }

    #[test]
    fn decodes_backend_key_data() {
        let mut body = 4242i32.to_be_bytes().to_vec();
        body.extend((-7i32).to_be_bytes());
        let key = backend_key(&body).unwrap();
        assert_eq!((key.process_id, key.secret_key), (4242, -7));
        assert!(backend_key(&body[..7]).is_err());
        body.push(0);
        assert!(backend_key(&body).is_err());
    }

    #[test]
    fn decodes_descriptions() {
        let mut t = 2i16.to_be_bytes().to_vec();
        t.extend(23i32.to_be_bytes());
        t.extend(2950i32.to_be_bytes());
        assert_eq!(parameter_types(&t).unwrap(), vec![23, 2950]);
        assert!(parameter_types(&t[..5]).is_err());

        let mut row = 1i16.to_be_bytes().to_vec();
        row.extend(b"id\0");
        row.extend(0i32.to_be_bytes());
        row.extend(0i16.to_be_bytes());
        row.extend(23i32.to_be_bytes());
        row.extend(4i16.to_be_bytes());
        row.extend((-1i32).to_be_bytes());
        row.extend(0i16.to_be_bytes());
        assert_eq!(row_description(&row).unwrap(), vec![("id".to_string(), 23)]);
        assert!(row_description(&row[..row.len() - 1]).is_err());
    }

    /// Regression (found by fuzzing): a description claiming 32767 columns
    /// made the client reserve ~1 MiB before noticing the body was empty.
    #[test]
    fn descriptions_reserve_only_what_the_body_can_hold() {
        let claims_many = 0x7fffi16.to_be_bytes();
        assert!(row_description(&claims_many).is_err());
        assert!(parameter_types(&claims_many).is_err());
        let mut one_param = 1i16.to_be_bytes().to_vec();
        one_param.extend(23i32.to_be_bytes());
        assert_eq!(parameter_types(&one_param).unwrap().capacity(), 1);
    }

    #[test]
    fn validates_data_rows_against_column_types() {
        let types = [oid::INT4, oid::TEXT, oid::UUID];
        let good = data_row(&[Some(&7i32.to_be_bytes()), Some("é".as_bytes()), None]);
        validate_data_row(&good, &types).unwrap();
        let values: Vec<_> = DataRowColumns::new(&good).map(Result::unwrap).collect();
        assert_eq!(
            values,
            vec![Some(&7i32.to_be_bytes()[..]), Some("é".as_bytes()), None]
        );

        let short_int = data_row(&[Some(&[0, 7]), Some(b"x"), None]);
        assert!(validate_data_row(&short_int, &types).is_err());
        let bad_text = data_row(&[Some(&[0; 4]), Some(&[0xff]), None]);
        assert!(validate_data_row(&bad_text, &types).is_err());
        let too_few = data_row(&[Some(&[0; 4])]);
        assert!(validate_data_row(&too_few, &types).is_err());
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(validate_data_row(&trailing, &types).is_err());
        let mut truncated = good.clone();
        truncated.truncate(good.len() - 3);
        assert!(validate_data_row(&truncated, &types).is_err());
        assert!(validate_data_row(&[], &[]).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut buf = Vec::new();
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            buf.clear();
            buf.extend((0..(seed % 40) as usize).map(|i| (seed >> (i % 8 * 8)) as u8));
            let _ = next_frame(&buf);
            let _ = auth_request(&buf);
            let _ = DbError::parse(&buf);
            let _ = parameter_types(&buf);
            let _ = row_description(&buf);
            let _ = validate_data_row(&buf, &[oid::INT4, oid::TEXT]);
            let _ = DataRowColumns::new(&buf).count();
        }
    }

    #[test]
    fn parameter_status_and_text_booleans() {
        assert_eq!(
            parameter_status(b"in_hot_standby\0on\0").unwrap(),
            (&b"in_hot_standby"[..], &b"on"[..])
        );
        assert!(parameter_status(b"in_hot_standby\0on").is_err());
        assert!(parameter_status(b"").is_err());
        for (text, value) in [("on", Some(true)), ("t", Some(true)), ("off", Some(false))] {
            assert_eq!(text_bool(text.as_bytes()), value, "{text}");
        }
        assert_eq!(text_bool(b"f"), Some(false));
        assert_eq!(text_bool(b"yes"), None);
        assert_eq!(text_bool(b""), None);
    }
}
