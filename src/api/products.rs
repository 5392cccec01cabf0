//! `GET /products/{id}`: a product, its stock (`stock` repeats
//! `current_stock`, compat.md) and its sale (platform.md §1). The product
//! object is shared with `GET /sales` and the administration's answers.

use crate::api::render::{self, Malformed};
use crate::api::routes::Query;
use crate::api::statements::id_of;
use crate::api::validate::{decimal_product_ref, ProductRef};
use crate::api::{malformed, Db, Refusal, PRODUCT_NOT_FOUND};
use crate::const_text::Part;
use crate::pg::{oid, Param, Refused, Rows, Statement, StatementId, Timestamp};

crate::result_row! {
    /// A product, as [`PRODUCT_COLUMNS`] select it.
    pub struct ProductRow<'a> {
        id: i32,
        name: &'a str,
        price: i32,
        initial_stock: i32,
        current_stock: i32,
        held_stock: i32,
        sale_status: &'a str,
        starts_at: Option<Timestamp>,
        ends_at: Option<Timestamp>,
        per_customer_limit: Option<i32>,
    }
}

/// The select list of a [`ProductRow`] from `products`. The sale's status
/// is the CASE of `sale_status()` in sql/init.sql, written out: the API's
/// role executes only the functions that write, not the helpers.
pub const PRODUCT_COLUMNS: &str = "id, name, price, initial_stock, current_stock, held_stock, \
     CASE WHEN starts_at > statement_timestamp() THEN 'upcoming' \
          WHEN ends_at <= statement_timestamp() THEN 'ended' ELSE 'active' END AS sale_status, \
     starts_at, ends_at, per_customer_limit";

pub const GET_PRODUCT: Statement = Statement {
    name: "get_product",
    sql: crate::const_text!(
        Part::Str("SELECT "),
        Part::Str(PRODUCT_COLUMNS),
        Part::Str(" FROM products WHERE id = $1"),
    ),
    param_types: &[oid::INT4],
    column_names: ProductRow::COLUMN_NAMES,
    column_types: ProductRow::COLUMN_TYPES,
    writes: false,
    slow: false,
};
const GET_PRODUCT_ID: StatementId = id_of(&GET_PRODUCT);

/// The path's id: anything that is not a possible product id is a product
/// that does not exist.
pub fn parse(id: &[u8]) -> Result<Query, Refusal> {
    match decimal_product_ref(id) {
        Some(ProductRef::Id(id)) => Ok(Query::GetProduct(id)),
        _ => Err(PRODUCT_NOT_FOUND),
    }
}

pub fn submit(db: &mut Db<'_>, product_id: i32) -> Result<(), Refused> {
    db.submit(GET_PRODUCT_ID, &[Param::Int4(product_id)])
}

pub fn answer(rows: Rows<'_>, body: &mut Vec<u8>) -> Result<u16, Refusal> {
    let row = rows.first().ok_or(PRODUCT_NOT_FOUND)?;
    let product = ProductRow::from_row(&row)
        .ok_or(Malformed)
        .map_err(malformed)?;
    write_product(body, &product);
    Ok(200)
}

/// id, name, price, initial_stock, current_stock, stock (the challenge's
/// fields, in its order), then held_stock, sold_out and the sale.
pub fn write_product(out: &mut Vec<u8>, product: &ProductRow<'_>) {
    render::int(out, b"{\"id\":", product.id);
    render::text(out, b",\"name\":", product.name);
    render::int(out, b",\"price\":", product.price);
    render::int(out, b",\"initial_stock\":", product.initial_stock);
    render::int(out, b",\"current_stock\":", product.current_stock);
    render::int(out, b",\"stock\":", product.current_stock);
    render::int(out, b",\"held_stock\":", product.held_stock);
    render::boolean(out, b",\"sold_out\":", product.current_stock == 0);
    render::text(out, b",\"sale\":{\"status\":", product.sale_status);
    render::optional_timestamp(out, b",\"starts_at\":", product.starts_at);
    render::optional_timestamp(out, b",\"ends_at\":", product.ends_at);
    render::optional_int(out, b",\"per_customer_limit\":", product.per_customer_limit);
    out.extend_from_slice(b"}}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_challenge_fields_first_then_the_sale() {
        let product = ProductRow {
            id: 4,
            name: "4K \"Webcam\"",
            price: 8999,
            initial_stock: 10,
            current_stock: 0,
            held_stock: 0,
            sale_status: "ended",
            starts_at: None,
            ends_at: Some(Timestamp(0)),
            per_customer_limit: Some(1),
            _row: std::marker::PhantomData,
        };
        let mut out = Vec::new();
        write_product(&mut out, &product);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"id":4,"name":"4K \"Webcam\"","price":8999,"initial_stock":10,"current_stock":0,"stock":0,"held_stock":0,"sold_out":true,"sale":{"status":"ended","starts_at":null,"ends_at":"2000-01-01T00:00:00.000Z","per_customer_limit":1}}"#
        );
    }
}
