//! `GET /orders?product_id=N`: a product's last orders, most recent first
//! (`seq`, never `created_at`: many orders share a timestamp), at most
//! `ORDERS_LISTED_MAX`; 404 for an unknown product.
//!
//! `GET /orders?customer_id=X[&product_id=N]`: a customer's last orders
//! (of one product, with `product_id`), the same way; a customer without
//! orders, or a product without any of theirs, is an empty list.

use crate::api::render::{self, Malformed};
use crate::api::routes::Query;
use crate::api::statements::id_of;
use crate::api::validate::{
    customer_id_query_value, decimal_product_ref, parse_product_id_query, query_params, Invalid,
    ProductRef, MSG_CUSTOMER_QUERY_DUPLICATE, MSG_PRODUCT_QUERY_DUPLICATE, MSG_PRODUCT_TYPE,
};
use crate::api::{malformed, Db, Refusal, PRODUCT_NOT_FOUND};
use crate::config::ORDERS_LISTED_MAX;
use crate::const_text::Part;
use crate::pg::{oid, Param, Refused, Row, Rows, Statement, StatementId, Timestamp};

crate::result_row! {
    /// One entry of an order list (a product's list does not show its
    /// `product_id`, a customer's does).
    pub struct ListedOrderRow<'a> {
        id: [u8; 16],
        product_id: i32,
        customer_id: &'a str,
        quantity: i32,
        total_price: i32,
        status: &'a str,
        created_at: Timestamp,
        payment_status: &'a str,
    }
}

/// No row: no such product. One row of NULLs: a product without orders.
pub const LIST_ORDERS: Statement = Statement {
    name: "list_orders",
    sql: crate::const_text!(
        Part::Str(
            "SELECT o.id, o.product_id, o.customer_id, o.quantity, o.total_price, o.status, \
               o.created_at, o.payment_status \
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
    slow: false,
};
const LIST_ORDERS_ID: StatementId = id_of(&LIST_ORDERS);

/// The SQL of a customer's orders, the customer being `$customer` (an
/// SQL expression): `$1` the customer id as asked (the first column, so an
/// empty list still has one row), `$2` the product or NULL for all.
macro_rules! customer_orders_sql {
    ($customer:literal) => {
        crate::const_text!(
            Part::Str(concat!(
                "SELECT $1::text AS asked, o.id, o.product_id, o.customer_id, o.quantity, \
                   o.total_price, o.status, o.created_at, o.payment_status \
                 FROM (SELECT) one LEFT JOIN LATERAL \
                   (SELECT * FROM orders WHERE customer_id = ",
                $customer,
                " AND ($2::integer IS NULL OR product_id = $2) ORDER BY seq DESC LIMIT "
            )),
            Part::Int(ORDERS_LISTED_MAX),
            Part::Str(") o ON true ORDER BY o.seq DESC"),
        )
    };
}

/// A customer's orders.
pub const LIST_CUSTOMER_ORDERS: Statement = Statement {
    name: "list_customer_orders",
    sql: customer_orders_sql!("$1"),
    param_types: &[oid::TEXT, oid::INT4],
    column_names: &CUSTOMER_NAMES,
    column_types: &CUSTOMER_TYPES,
    writes: false,
    slow: false,
};

/// As a session's customer (`$3` the token): only its own list (FS401, FS403).
pub const LIST_CUSTOMER_ORDERS_AS: Statement = Statement {
    name: "list_customer_orders_as",
    sql: customer_orders_sql!("act_as($3, $1)"),
    param_types: &[oid::TEXT, oid::INT4, oid::TEXT],
    column_names: &CUSTOMER_NAMES,
    column_types: &CUSTOMER_TYPES,
    writes: false,
    slow: false,
};
const LIST_CUSTOMER_ORDERS_AS_ID: StatementId = id_of(&LIST_CUSTOMER_ORDERS_AS);
const LIST_CUSTOMER_ORDERS_ID: StatementId = id_of(&LIST_CUSTOMER_ORDERS);

const CUSTOMER_NAMES: [&str; 1 + ListedOrderRow::COLUMN_NAMES.len()] =
    crate::pg::columns::concat(&["asked"], ListedOrderRow::COLUMN_NAMES);
const CUSTOMER_TYPES: [u32; 1 + ListedOrderRow::COLUMN_TYPES.len()] =
    crate::pg::columns::concat(&[oid::TEXT], ListedOrderRow::COLUMN_TYPES);

/// The query string (the part after `?`): with `customer_id`, a customer's
/// orders (`customer_id` decoded into `scratch`); else a product's.
pub fn parse<'s>(query: &[u8], scratch: &'s mut String) -> Result<(Query, &'s str), Refusal> {
    let mut customer = None;
    let mut product = None;
    for (name, value) in query_params(query) {
        if name == b"customer_id" && customer.replace(value).is_some() {
            return Err(Invalid(MSG_CUSTOMER_QUERY_DUPLICATE).refusal());
        }
        if name == b"product_id" && product.replace(value).is_some() {
            return Err(Invalid(MSG_PRODUCT_QUERY_DUPLICATE).refusal());
        }
    }
    let Some(customer) = customer else {
        return match parse_product_id_query(query).map_err(Invalid::refusal)? {
            ProductRef::Id(id) => Ok((Query::ListOrders(id), "")),
            ProductRef::Unknown => Err(PRODUCT_NOT_FOUND),
        };
    };
    let customer_id = customer_id_query_value(customer, scratch).map_err(Invalid::refusal)?;
    let product_id = match product.map(decimal_product_ref) {
        None => None,
        Some(Some(ProductRef::Id(id))) => Some(id),
        // No product has this id, so none of the customer's orders either.
        Some(Some(ProductRef::Unknown)) => Some(0),
        Some(None) => return Err(Invalid(MSG_PRODUCT_TYPE).refusal()),
    };
    Ok((Query::ListCustomerOrders { product_id }, customer_id))
}

pub fn submit_customer(
    db: &mut Db<'_>,
    customer_id: &str,
    product_id: Option<i32>,
    session: Option<&str>,
) -> Result<(), Refused> {
    let product = Param::int4_or_null(product_id);
    match session {
        None => db.submit(
            LIST_CUSTOMER_ORDERS_ID,
            &[Param::Text(customer_id), product],
        ),
        Some(token) => db.submit(
            LIST_CUSTOMER_ORDERS_AS_ID,
            &[Param::Text(customer_id), product, Param::Text(token)],
        ),
    }
}

pub fn answer_customer(rows: Rows<'_>, body: &mut Vec<u8>) -> Result<u16, Refusal> {
    write_customer_list(body, rows).map_err(malformed)?;
    Ok(200)
}

/// `{"customer_id":X,"orders":[…]}`; each row leads with the id asked.
fn write_customer_list(out: &mut Vec<u8>, rows: Rows<'_>) -> Result<(), Malformed> {
    let first = rows.first().ok_or(Malformed)?;
    let asked = first.columns().next_as::<&str>().ok_or(Malformed)?;
    render::text(out, b"{\"customer_id\":", asked);
    write_entries(out, rows.iter(), 1, true)
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
    write_entries(out, rows, 0, false)
}

/// `,"orders":[…]}` from the rows' [`ListedOrderRow`]s after their first
/// `leading` columns; a row whose order is NULL (an empty list's one row)
/// is none.
fn write_entries<'a>(
    out: &mut Vec<u8>,
    rows: impl Iterator<Item = Row<'a>>,
    leading: usize,
    with_product: bool,
) -> Result<(), Malformed> {
    out.extend_from_slice(b",\"orders\":[");
    let mut separator = false;
    for row in rows.filter(|row| row.raw(leading).is_some()) {
        let mut columns = row.columns();
        for _ in 0..leading {
            columns.next();
        }
        let entry = ListedOrderRow::from_columns(&mut columns).ok_or(Malformed)?;
        if separator {
            out.push(b',');
        }
        separator = true;
        render::uuid(out, b"{\"order_id\":", &entry.id);
        render::uuid(out, b",\"id\":", &entry.id);
        if with_product {
            render::int(out, b",\"product_id\":", entry.product_id);
        }
        render::text(out, b",\"customer_id\":", entry.customer_id);
        render::int(out, b",\"quantity\":", entry.quantity);
        render::int(out, b",\"total_price\":", entry.total_price);
        render::text(out, b",\"status\":", entry.status);
        render::timestamp(out, b",\"created_at\":", entry.created_at);
        render::text(out, b",\"payment_status\":", entry.payment_status);
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    Ok(())
}
