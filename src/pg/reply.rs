//! What a request gets back: views over the connection's read buffer, handed
//! to the caller's callback and valid only during it, so no response is ever
//! copied or allocated.

use crate::pg::backend::{tag, DataRowColumns, DbError};
use crate::pg::columns::Columns;

/// The outcome of one submitted request.
#[derive(Debug)]
pub enum Reply<'a> {
    /// The statement ran; its rows (possibly none).
    Rows(Rows<'a>),
    /// The server rejected this request (ErrorResponse); the connection and
    /// every other request on it are unaffected.
    Failed(DbError<'a>),
    /// The connection was lost, closed, or timed out before an answer: the
    /// request may or may not have run.
    Unavailable,
}

/// Why `Pool::submit` refused a request on the spot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Every pipeline and the wait queue are full: shed load (HTTP 503).
    Overloaded,
    /// No connection to the database is up (HTTP 503).
    Unavailable,
}

/// The messages of one successful response (BindComplete, DataRows,
/// CommandComplete, possibly notices), already validated against the
/// statement's column types.
#[derive(Debug, Clone, Copy)]
pub struct Rows<'a> {
    messages: &'a [u8],
}

impl<'a> Rows<'a> {
    pub(crate) fn new(messages: &'a [u8]) -> Rows<'a> {
        Rows { messages }
    }

    pub fn iter(&self) -> RowIter<'a> {
        RowIter {
            rest: self.messages,
        }
    }

    pub fn first(&self) -> Option<Row<'a>> {
        self.iter().next()
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.first().is_none()
    }
}

/// Walks the messages of a response, yielding its DataRows. The framing was
/// checked when the messages were received, so a short read here cannot
/// happen; it ends the iteration rather than panicking.
pub struct RowIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for RowIter<'a> {
    type Item = Row<'a>;

    fn next(&mut self) -> Option<Row<'a>> {
        loop {
            let (frame, len) = crate::pg::backend::next_frame(self.rest).ok()??;
            self.rest = &self.rest[len..];
            if frame.tag == tag::DATA_ROW {
                return Some(Row::new(frame.body));
            }
        }
    }
}

/// One DataRow in binary format. Accessors return `None` for SQL NULL; types
/// and widths were validated against the prepared statement on arrival.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    body: &'a [u8],
}

impl<'a> Row<'a> {
    /// A row over a DataRow body already checked against its statement.
    pub(crate) fn new(body: &'a [u8]) -> Row<'a> {
        Row { body }
    }

    /// The column values in order, for typed reading (see `pg::columns`).
    pub fn columns(&self) -> Columns<'a> {
        Columns::new(self.body)
    }

    /// Every column's raw bytes, in order; `None` for NULL.
    pub fn values(&self) -> impl Iterator<Item = Option<&'a [u8]>> {
        DataRowColumns::new(self.body).map_while(Result::ok)
    }

    /// Raw bytes of column `index`; `None` for NULL or a missing column.
    pub fn raw(&self, index: usize) -> Option<&'a [u8]> {
        DataRowColumns::new(self.body).nth(index)?.ok()?
    }

    pub fn bool(&self, index: usize) -> Option<bool> {
        self.raw(index).map(|b| b.first() == Some(&1))
    }

    pub fn i16(&self, index: usize) -> Option<i16> {
        self.raw(index)?.try_into().ok().map(i16::from_be_bytes)
    }

    pub fn i32(&self, index: usize) -> Option<i32> {
        self.raw(index)?.try_into().ok().map(i32::from_be_bytes)
    }

    pub fn i64(&self, index: usize) -> Option<i64> {
        self.raw(index)?.try_into().ok().map(i64::from_be_bytes)
    }

    pub fn text(&self, index: usize) -> Option<&'a str> {
        std::str::from_utf8(self.raw(index)?).ok()
    }

    pub fn uuid(&self, index: usize) -> Option<&'a [u8; 16]> {
        self.raw(index)?.try_into().ok()
    }

    /// A `timestamptz`: microseconds since 2000-01-01T00:00:00Z.
    pub fn timestamp_micros(&self, index: usize) -> Option<i64> {
        self.i64(index)
    }
}
