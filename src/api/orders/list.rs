//! `GET /orders?product_id=N`: a product's last orders, most recent first
//! (`seq`, never `created_at`: many orders share a timestamp), at most
//! `ORDERS_LISTED_MAX`; 404 for an unknown product.

use crate::api::render::{self, Malformed};
use crate::api::routes::Query;
use crate::api::statements::id_of;
use crate::api::validate::{parse_product_id_query, Invalid, ProductRef};
use crate::api::{malformed, Db, Refusal, PRODUCT_NOT_FOUND};
use crate::config::ORDERS_LISTED_MAX;
use crate::const_text::Part;
use crate::pg::{oid, Param, Refused, Row, Rows, Statement, StatementId, Timestamp};

crate::result_row! {
    /// One entry of a product's order list.
    pub struct ListedOrderRow<'a> {
        id: [u8; 16],
        customer_id: &'a str,
        quantity: i32,
        total_price: i32,
        status: &'a str,
        created_at: Timestamp,
    }
}

/// No row: no such product. One row of NULLs: a product without orders.
pub const LIST_ORDERS: Statement = Statement {
    name: "list_orders",
    sql: crate::const_text!(
        Part::Str(
            "SELECT o.id, o.customer_id, o.quantity, o.total_price, o.status, o.created_at \
             FROM products p LEFT JOIN LATERAL \
               (SELECT * FROM orders WHERE product_id = p.id ORDER BY seq DESC LIMIT "
        ),
        Part::Int(ORDERS_LISTED_MAX),
        Part::Str(") o ON true WHERE p.id = $1 ORDER BY o.seq DESC"),
    ),
    param_types: &[oid::INT4],
    column_names: ListedOrderRow::COLUMN_NAMES,
    column_types: ListedOrderRow::COLUMN_TYPES,
    writes: false,
};
const LIST_ORDERS_ID: StatementId = id_of(&LIST_ORDERS);

/// The query string (the part after `?`).
pub fn parse(query: &[u8]) -> Result<Query, Refusal> {
    match parse_product_id_query(query).map_err(Invalid::refusal)? {
        ProductRef::Id(id) => Ok(Query::ListOrders(id)),
        ProductRef::Unknown => Err(PRODUCT_NOT_FOUND),
    }
}

pub fn submit(db: &mut Db<'_>, product_id: i32) -> Result<(), Refused> {
    db.submit(LIST_ORDERS_ID, &[Param::Int4(product_id)])
}

pub fn answer(product_id: i32, rows: Rows<'_>, body: &mut Vec<u8>) -> Result<u16, Refusal> {
    if rows.is_empty() {
        return Err(PRODUCT_NOT_FOUND);
    }
    write_list(body, product_id, rows.iter()).map_err(malformed)?;
    Ok(200)
}

/// `{"product_id":N,"orders":[…]}`.
fn write_list<'a>(
    out: &mut Vec<u8>,
    product_id: i32,
    rows: impl Iterator<Item = Row<'a>>,
) -> Result<(), Malformed> {
    render::int(out, b"{\"product_id\":", product_id);
    out.extend_from_slice(b",\"orders\":[");
    let mut first = true;
    for row in rows.filter(|r| r.raw(0).is_some()) {
        let entry = ListedOrderRow::from_row(&row).ok_or(Malformed)?;
        if !first {
            out.push(b',');
        }
        first = false;
        render::uuid(out, b"{\"order_id\":", &entry.id);
        render::uuid(out, b",\"id\":", &entry.id);
        render::text(out, b",\"customer_id\":", entry.customer_id);
        render::int(out, b",\"quantity\":", entry.quantity);
        render::int(out, b",\"total_price\":", entry.total_price);
        render::text(out, b",\"status\":", entry.status);
        render::timestamp(out, b",\"created_at\":", entry.created_at);
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    Ok(())
}
