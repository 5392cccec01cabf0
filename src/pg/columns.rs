//! Named, typed result columns. A statement's row is declared once, as a
//! struct with [`result_row!`](crate::result_row): the field order is the
//! column order, each field's type says the column's Postgres type, and the
//! macro derives the name and type lists the statement is prepared with
//! (both checked against the server's description of the statement) and a
//! decoder that reads the row in one pass. Code then reads `row.price`, never
//! "column 6".

use crate::pg::backend::DataRowColumns;
use crate::pg::types::oid;

/// A Rust type a binary result column decodes into.
pub trait Column<'a>: Sized {
    /// The column's Postgres type.
    const TYPE_OID: u32;
    /// The value of a column (`None` is SQL NULL). Gives `None` when the
    /// value does not fit the type, which for a row checked against its
    /// statement on arrival means a NULL where the type allows none.
    fn from_column(raw: Option<&'a [u8]>) -> Option<Self>;
}

/// A `timestamptz`: microseconds since 2000-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp(pub i64);

impl Column<'_> for i32 {
    const TYPE_OID: u32 = oid::INT4;
    fn from_column(raw: Option<&[u8]>) -> Option<i32> {
        raw?.try_into().ok().map(i32::from_be_bytes)
    }
}

impl Column<'_> for i64 {
    const TYPE_OID: u32 = oid::INT8;
    fn from_column(raw: Option<&[u8]>) -> Option<i64> {
        raw?.try_into().ok().map(i64::from_be_bytes)
    }
}

impl Column<'_> for bool {
    const TYPE_OID: u32 = oid::BOOL;
    fn from_column(raw: Option<&[u8]>) -> Option<bool> {
        match raw? {
            [byte] => Some(*byte != 0),
            _ => None,
        }
    }
}

impl<'a> Column<'a> for &'a str {
    const TYPE_OID: u32 = oid::TEXT;
    fn from_column(raw: Option<&'a [u8]>) -> Option<&'a str> {
        std::str::from_utf8(raw?).ok()
    }
}

impl Column<'_> for [u8; 16] {
    const TYPE_OID: u32 = oid::UUID;
    fn from_column(raw: Option<&[u8]>) -> Option<[u8; 16]> {
        raw?.try_into().ok()
    }
}

impl Column<'_> for Timestamp {
    const TYPE_OID: u32 = oid::TIMESTAMPTZ;
    fn from_column(raw: Option<&[u8]>) -> Option<Timestamp> {
        i64::from_column(raw).map(Timestamp)
    }
}

/// A column that may be NULL.
impl<'a, T: Column<'a>> Column<'a> for Option<T> {
    const TYPE_OID: u32 = T::TYPE_OID;
    fn from_column(raw: Option<&'a [u8]>) -> Option<Option<T>> {
        match raw {
            None => Some(None),
            Some(_) => T::from_column(raw).map(Some),
        }
    }
}

/// The column values of a row, in order; `None` is SQL NULL.
pub struct Columns<'a>(DataRowColumns<'a>);

impl<'a> Columns<'a> {
    pub(crate) fn new(body: &'a [u8]) -> Columns<'a> {
        Columns(DataRowColumns::new(body))
    }

    /// The next column as `T` (`None` when there is none, or it does not fit).
    pub fn next_as<T: Column<'a>>(&mut self) -> Option<T> {
        T::from_column(self.next()?)
    }
}

impl<'a> Iterator for Columns<'a> {
    type Item = Option<&'a [u8]>;

    fn next(&mut self) -> Option<Option<&'a [u8]>> {
        // Rows were checked on arrival, so the framing cannot fail here; if
        // it did, the row simply ends.
        self.0.next()?.ok()
    }
}

/// `a` followed by `b`, as an array of exactly `N = a.len() + b.len()`
/// items: the column list of a row that begins with a few columns of its
/// own and goes on with a declared row's.
pub const fn concat<T: Copy, const N: usize>(a: &[T], b: &[T]) -> [T; N] {
    assert!(a.len() + b.len() == N, "concat: N is not the joined length");
    assert!(N > 0, "concat: nothing to join");
    let mut out = [if a.is_empty() { b[0] } else { a[0] }; N];
    let mut i = 0;
    while i < a.len() {
        out[i] = a[i];
        i += 1;
    }
    while i < N {
        out[i] = b[i - a.len()];
        i += 1;
    }
    out
}

/// Declares a statement's result row:
///
/// ```
/// flashsale::result_row! {
///     /// A product as `get_product` returns it.
///     pub struct ProductRow<'a> {
///         id: i32,
///         name: &'a str,
///         price: Option<i32>,
///     }
/// }
/// assert_eq!(ProductRow::COLUMN_NAMES, ["id", "name", "price"]);
/// ```
///
/// gives the struct (every field public), `COLUMN_NAMES` and `COLUMN_TYPES`
/// for the statement's declaration, and `from_row` / `from_columns`, which
/// give `None` for a NULL in a field whose type is not an `Option`.
#[macro_export]
macro_rules! result_row {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident<$lt:lifetime> {
            $($(#[$field_meta:meta])* $field:ident: $ty:ty),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        $vis struct $name<$lt> {
            $($(#[$field_meta])* pub $field: $ty,)+
            _row: ::std::marker::PhantomData<&$lt [u8]>,
        }

        impl<$lt> $name<$lt> {
            /// Column names, in order, as the statement must return them.
            pub const COLUMN_NAMES: &'static [&'static str] = &[$(stringify!($field)),+];
            /// Column types, in order, as the statement must return them.
            pub const COLUMN_TYPES: &'static [u32] =
                &[$(<$ty as $crate::pg::Column<$lt>>::TYPE_OID),+];

            pub fn from_row(row: &$crate::pg::Row<$lt>) -> Option<Self> {
                Self::from_columns(&mut row.columns())
            }

            /// Reads this row's columns from where `columns` stands.
            pub fn from_columns(columns: &mut $crate::pg::Columns<$lt>) -> Option<Self> {
                Some($name {
                    $($field: columns.next_as()?,)+
                    _row: ::std::marker::PhantomData,
                })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::Row;

    crate::result_row! {
        /// Every column kind.
        struct Everything<'a> {
            small: i32,
            big: i64,
            flag: bool,
            text: &'a str,
            id: [u8; 16],
            at: Timestamp,
            maybe: Option<i32>,
        }
    }

    fn data_row(values: &[Option<&[u8]>]) -> Vec<u8> {
        let mut body = (values.len() as i16).to_be_bytes().to_vec();
        for value in values {
            match value {
                None => body.extend((-1i32).to_be_bytes()),
                Some(v) => {
                    body.extend((v.len() as i32).to_be_bytes());
                    body.extend(*v);
                }
            }
        }
        body
    }

    #[test]
    fn names_and_types_follow_the_fields() {
        assert_eq!(
            Everything::COLUMN_NAMES,
            ["small", "big", "flag", "text", "id", "at", "maybe"]
        );
        assert_eq!(
            Everything::COLUMN_TYPES,
            [
                oid::INT4,
                oid::INT8,
                oid::BOOL,
                oid::TEXT,
                oid::UUID,
                oid::TIMESTAMPTZ,
                oid::INT4
            ]
        );
    }

    #[test]
    fn decodes_a_row_in_order() {
        let body = data_row(&[
            Some(&(-7i32).to_be_bytes()),
            Some(&(1i64 << 40).to_be_bytes()),
            Some(&[1]),
            Some("é".as_bytes()),
            Some(&[9; 16]),
            Some(&(-1i64).to_be_bytes()),
            None,
        ]);
        let row = Everything::from_row(&Row::new(&body)).unwrap();
        assert_eq!(
            (row.small, row.big, row.flag, row.text, row.id, row.at, row.maybe),
            (-7, 1 << 40, true, "é", [9; 16], Timestamp(-1), None)
        );
    }

    #[test]
    fn a_null_where_none_is_allowed_is_refused() {
        let body = data_row(&[
            None,
            Some(&0i64.to_be_bytes()),
            Some(&[0]),
            Some(b"x"),
            Some(&[0; 16]),
            Some(&0i64.to_be_bytes()),
            Some(&5i32.to_be_bytes()),
        ]);
        assert!(Everything::from_row(&Row::new(&body)).is_none());
        let short = data_row(&[Some(&1i32.to_be_bytes())]);
        assert!(Everything::from_row(&Row::new(&short)).is_none());
    }

    #[test]
    fn concat_joins_in_order() {
        const JOINED: [u32; 4] = concat(&[1], &[2, 3, 4]);
        assert_eq!(JOINED, [1, 2, 3, 4]);
        const NAMES: [&str; 2] = concat(&["a", "b"], &[]);
        assert_eq!(NAMES, ["a", "b"]);
    }
}
