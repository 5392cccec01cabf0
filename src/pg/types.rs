//! Prepared statement declarations and binary parameter encoding.
//!
//! Every statement the application uses is declared once as a `Statement`:
//! its SQL and the exact parameter and column types the code relies on. Each
//! connection prepares all of them right after startup and checks the server's
//! description against these types, so a schema that drifted from the code is
//! a startup error, not a wrong answer later.

use bytes::{BufMut, BytesMut};

/// Type OIDs (from `pg_type`) the client knows how to send or check.
pub mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const VARCHAR: u32 = 1043;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const UUID: u32 = 2950;
    pub const INT2_ARRAY: u32 = 1005;
    pub const INT4_ARRAY: u32 = 1007;
    pub const TEXT_ARRAY: u32 = 1009;
    pub const UUID_ARRAY: u32 = 2951;
}

/// Width in bytes of a fixed-size type's binary representation.
pub fn fixed_width(type_oid: u32) -> Option<usize> {
    match type_oid {
        oid::BOOL => Some(1),
        oid::INT2 => Some(2),
        oid::INT4 => Some(4),
        oid::INT8 | oid::TIMESTAMPTZ => Some(8),
        oid::UUID => Some(16),
        _ => None,
    }
}

/// A statement prepared by name on every connection.
#[derive(Debug)]
pub struct Statement {
    /// Server-side name; unique within the statement table.
    pub name: &'static str,
    pub sql: &'static str,
    pub param_types: &'static [u32],
    /// Result column types, in order; empty for statements returning no rows.
    pub column_types: &'static [u32],
    /// Result column names, in order, checked like the types; empty leaves
    /// the names unchecked.
    pub column_names: &'static [&'static str],
    /// The statement writes or takes row locks, so it may wait for another
    /// transaction. The pool keeps one connection free of such statements
    /// so that reads never queue behind a lock wait.
    pub writes: bool,
    /// The statement takes the server long by design (a password hash,
    /// tens of milliseconds of CPU). The pool keeps other statements off a
    /// connection that carries one, so that nothing pipelines behind it.
    pub slow: bool,
}

/// What the pool weighs when it places a statement on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    /// `Statement::writes`.
    pub writes: bool,
    /// `Statement::slow`.
    pub slow: bool,
}

impl Statement {
    pub const fn kind(&self) -> Kind {
        Kind {
            writes: self.writes,
            slow: self.slow,
        }
    }
}

/// Index of a statement in the table the pool was created with.
pub type StatementId = usize;

/// One bind parameter, sent in binary format. Borrowed, so submitting a
/// request copies its values straight into the socket buffer.
#[derive(Debug, Clone, Copy)]
pub enum Param<'a> {
    Null,
    Bool(bool),
    Int2(i16),
    Int4(i32),
    Int8(i64),
    /// A `timestamptz`: microseconds since 2000-01-01T00:00:00Z.
    Timestamp(i64),
    Text(&'a str),
    /// Raw bytes (a request body, a signature).
    Bytea(&'a [u8]),
    Uuid(&'a [u8; 16]),
    Int2Array(&'a [i16]),
    Int4Array(&'a [i32]),
    TextArray(&'a [&'a str]),
    /// A text array stored back to back: element i is
    /// `joined[ends[i-1]..ends[i]]` (from 0 for the first). Lets a caller
    /// keep many strings in one reused buffer.
    JoinedTextArray {
        joined: &'a str,
        ends: &'a [usize],
    },
    UuidArray(&'a [[u8; 16]]),
}

impl Param<'_> {
    /// An `int4` that may be absent: `None` is NULL.
    pub fn int4_or_null(value: Option<i32>) -> Param<'static> {
        value.map_or(Param::Null, Param::Int4)
    }

    /// A `text` that may be absent: empty is NULL.
    pub fn text_or_null(value: &str) -> Param<'_> {
        match value {
            "" => Param::Null,
            text => Param::Text(text),
        }
    }

    /// A `timestamptz` that may be absent: `None` is NULL.
    pub fn timestamp_or_null(value: Option<i64>) -> Param<'static> {
        value.map_or(Param::Null, Param::Timestamp)
    }

    /// Whether this value may be bound to a parameter of `type_oid`.
    pub fn fits(&self, type_oid: u32) -> bool {
        match self {
            Param::Null => true,
            Param::Bool(_) => type_oid == oid::BOOL,
            Param::Int2(_) => type_oid == oid::INT2,
            Param::Int4(_) => type_oid == oid::INT4,
            Param::Int8(_) => type_oid == oid::INT8,
            Param::Timestamp(_) => type_oid == oid::TIMESTAMPTZ,
            Param::Text(_) => matches!(type_oid, oid::TEXT | oid::VARCHAR),
            Param::Bytea(_) => type_oid == oid::BYTEA,
            Param::Uuid(_) => type_oid == oid::UUID,
            Param::Int2Array(_) => type_oid == oid::INT2_ARRAY,
            Param::Int4Array(_) => type_oid == oid::INT4_ARRAY,
            Param::TextArray(_) | Param::JoinedTextArray { .. } => type_oid == oid::TEXT_ARRAY,
            Param::UuidArray(_) => type_oid == oid::UUID_ARRAY,
        }
    }

    /// Appends the binary value (without its length prefix); `false` for NULL.
    pub fn encode(&self, buf: &mut BytesMut) -> bool {
        match *self {
            Param::Null => return false,
            Param::Bool(v) => buf.put_u8(v as u8),
            Param::Int2(v) => buf.put_i16(v),
            Param::Int4(v) => buf.put_i32(v),
            Param::Int8(v) | Param::Timestamp(v) => buf.put_i64(v),
            Param::Text(v) => buf.put_slice(v.as_bytes()),
            Param::Bytea(v) => buf.put_slice(v),
            Param::Uuid(v) => buf.put_slice(v),
            Param::Int2Array(v) => encode_array(buf, oid::INT2, v, |b, x| {
                b.put_i32(2);
                b.put_i16(*x);
            }),
            Param::Int4Array(v) => encode_array(buf, oid::INT4, v, |b, x| {
                b.put_i32(4);
                b.put_i32(*x);
            }),
            Param::TextArray(v) => encode_array(buf, oid::TEXT, v, |b, x| {
                b.put_i32(x.len() as i32);
                b.put_slice(x.as_bytes());
            }),
            Param::JoinedTextArray { joined, ends } => {
                let mut start = 0;
                encode_array(buf, oid::TEXT, ends, |b, &end| {
                    let item = joined.as_bytes().get(start..end).unwrap_or_default();
                    b.put_i32(item.len() as i32);
                    b.put_slice(item);
                    start = end;
                })
            }
            Param::UuidArray(v) => encode_array(buf, oid::UUID, v, |b, x| {
                b.put_i32(16);
                b.put_slice(x);
            }),
        }
        true
    }
}

/// One-dimensional array without NULLs in Postgres' binary array format:
/// ndim, has-null flag, element type, (length, lower bound), elements.
fn encode_array<T>(
    buf: &mut BytesMut,
    element_oid: u32,
    items: &[T],
    mut put: impl FnMut(&mut BytesMut, &T),
) {
    let dimensions = if items.is_empty() { 0 } else { 1 };
    buf.put_i32(dimensions);
    buf.put_i32(0);
    buf.put_u32(element_oid);
    if dimensions == 1 {
        buf.put_i32(items.len() as i32);
        buf.put_i32(1);
    }
    for item in items {
        put(buf, item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_scalars_in_network_order() {
        let mut buf = BytesMut::new();
        assert!(Param::Int4(-2).encode(&mut buf));
        assert!(Param::Int8(1).encode(&mut buf));
        assert!(Param::Text("é").encode(&mut buf));
        assert!(!Param::Null.encode(&mut buf));
        assert_eq!(
            &buf[..],
            &[0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 0, 0, 0, 0, 1, 0xc3, 0xa9]
        );
    }

    #[test]
    fn encodes_arrays() {
        let mut buf = BytesMut::new();
        Param::Int4Array(&[5, 6]).encode(&mut buf);
        let expected: Vec<u8> = [1i32, 0, 23, 2, 1, 4, 5, 4, 6]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        assert_eq!(&buf[..], &expected[..]);

        buf.clear();
        Param::JoinedTextArray {
            joined: "abé",
            ends: &[1, 4],
        }
        .encode(&mut buf);
        let mut expected: Vec<u8> = [1i32, 0, 25, 2, 1, 1]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        expected.extend(b"a");
        expected.extend(3i32.to_be_bytes());
        expected.extend("bé".as_bytes());
        assert_eq!(&buf[..], &expected[..]);

        buf.clear();
        Param::TextArray(&[]).encode(&mut buf);
        let expected: Vec<u8> = [0i32, 0, 25].iter().flat_map(|v| v.to_be_bytes()).collect();
        assert_eq!(&buf[..], &expected[..], "empty arrays have zero dimensions");
    }

    #[test]
    fn checks_parameter_types() {
        assert!(Param::Int4(1).fits(oid::INT4));
        assert!(!Param::Int4(1).fits(oid::INT8));
        assert!(Param::Text("x").fits(oid::VARCHAR));
        assert!(Param::Null.fits(oid::UUID));
        assert!(Param::UuidArray(&[]).fits(oid::UUID_ARRAY));
        assert!(!Param::UuidArray(&[]).fits(oid::UUID));
    }
}
