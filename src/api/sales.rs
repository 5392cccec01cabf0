//! `GET /sales[?after=<id>]`: the database's clock (`server_time`, which
//! clients count down by instead of their own) and the products by id, at
//! most `SALES_PAGE_MAX` a page; `after` is the last id of the page before,
//! and an empty page ends the listing.

use crate::api::products::{write_product, ProductRow, PRODUCT_COLUMNS};
use crate::api::render::{self, Malformed};
use crate::api::routes::Query;
use crate::api::statements::id_of;
use crate::api::validate::{json_integer, query_params, Invalid};
use crate::api::{malformed, Db, Refusal};
use crate::config::SALES_PAGE_MAX;
use crate::const_text::Part;
use crate::pg::{oid, Param, Refused, Rows, Statement, StatementId, Timestamp};

/// One row per product, each led by the clock; one row with the clock and
/// NULLs when the page is empty.
pub const LIST_SALES: Statement = Statement {
    name: "list_sales",
    sql: crate::const_text!(
        Part::Str("SELECT statement_timestamp() AS server_time, p.* FROM (SELECT) one "),
        Part::Str("LEFT JOIN LATERAL (SELECT "),
        Part::Str(PRODUCT_COLUMNS),
        Part::Str(" FROM products WHERE id > $1 ORDER BY id LIMIT "),
        Part::Int(SALES_PAGE_MAX),
        Part::Str(") p ON true ORDER BY p.id"),
    ),
    param_types: &[oid::INT8],
    column_names: &SALES_NAMES,
    column_types: &SALES_TYPES,
    writes: false,
    slow: false,
};
const SALES_NAMES: [&str; 1 + ProductRow::COLUMN_NAMES.len()] =
    crate::pg::columns::concat(&["server_time"], ProductRow::COLUMN_NAMES);
const SALES_TYPES: [u32; 1 + ProductRow::COLUMN_TYPES.len()] =
    crate::pg::columns::concat(&[oid::TIMESTAMPTZ], ProductRow::COLUMN_TYPES);
const LIST_SALES_ID: StatementId = id_of(&LIST_SALES);

const MSG_AFTER: &str = "after must be an integer";
const MSG_AFTER_DUPLICATE: &str = "duplicate query parameter: after";

/// The query string: `after`, an integer as JSON writes one (default 0).
pub fn parse(query: &[u8]) -> Result<Query, Refusal> {
    let mut after = None;
    for (name, value) in query_params(query) {
        if name == b"after" && after.replace(value).is_some() {
            return Err(Invalid(MSG_AFTER_DUPLICATE).refusal());
        }
    }
    let after = match after {
        None => 0,
        Some(text) => json_integer(text).ok_or(Invalid(MSG_AFTER).refusal())?,
    };
    Ok(Query::ListSales { after })
}

pub fn submit(db: &mut Db<'_>, after: i64) -> Result<(), Refused> {
    db.submit(LIST_SALES_ID, &[Param::Int8(after)])
}

pub fn answer(rows: Rows<'_>, body: &mut Vec<u8>) -> Result<u16, Refusal> {
    write_sales(body, rows).map_err(malformed)?;
    Ok(200)
}

/// `{"server_time":…,"products":[…]}`.
fn write_sales(out: &mut Vec<u8>, rows: Rows<'_>) -> Result<(), Malformed> {
    let first = rows.first().ok_or(Malformed)?;
    let server_time = first.columns().next_as::<Timestamp>().ok_or(Malformed)?;
    render::timestamp(out, b"{\"server_time\":", server_time);
    out.extend_from_slice(b",\"products\":[");
    let mut separator = false;
    for row in rows.iter().filter(|row| row.raw(1).is_some()) {
        let mut columns = row.columns();
        columns.next();
        let product = ProductRow::from_columns(&mut columns).ok_or(Malformed)?;
        if separator {
            out.push(b',');
        }
        separator = true;
        write_product(out, &product);
    }
    out.extend_from_slice(b"]}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(query: &str) -> Result<i64, &'static str> {
        match parse(query.as_bytes()) {
            Ok(Query::ListSales { after }) => Ok(after),
            Ok(other) => panic!("{other:?}"),
            Err(refusal) => Err(refusal.message),
        }
    }

    #[test]
    fn pages_start_after_an_id() {
        assert_eq!(after(""), Ok(0));
        assert_eq!(after("after=5"), Ok(5));
        assert_eq!(after("x=1&after=100&y"), Ok(100));
        assert_eq!(after("after=-3"), Ok(-3));
        assert_eq!(after("after=99999999999999999999999"), Ok(i64::MAX));
        assert_eq!(after("after=05"), Err(MSG_AFTER));
        assert_eq!(after("after="), Err(MSG_AFTER));
        assert_eq!(after("after=1.5"), Err(MSG_AFTER));
        assert_eq!(after("after=%35"), Err(MSG_AFTER));
        assert_eq!(after("after=1&after=2"), Err(MSG_AFTER_DUPLICATE));
    }
}
