//! `GET /products/{id}`: a product and its stock (`stock` repeats
//! `current_stock`, compat.md).

use crate::api::render::{self, Malformed};
use crate::api::routes::Query;
use crate::api::statements::id_of;
use crate::api::validate::{decimal_product_ref, ProductRef};
use crate::api::{malformed, Db, Refusal, PRODUCT_NOT_FOUND};
use crate::pg::{oid, Param, Refused, Rows, Statement, StatementId};

crate::result_row! {
    /// A product, as `get_product` returns it.
    pub struct ProductRow<'a> {
        id: i32,
        name: &'a str,
        price: i32,
        initial_stock: i32,
        current_stock: i32,
    }
}

pub const GET_PRODUCT: Statement = Statement {
    name: "get_product",
    sql: "SELECT id, name, price, initial_stock, current_stock FROM products WHERE id = $1",
    param_types: &[oid::INT4],
    column_names: ProductRow::COLUMN_NAMES,
    column_types: ProductRow::COLUMN_TYPES,
    writes: false,
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

/// id, name, price, initial_stock, current_stock, stock.
fn write_product(out: &mut Vec<u8>, product: &ProductRow<'_>) {
    render::int(out, b"{\"id\":", product.id);
    render::text(out, b",\"name\":", product.name);
    render::int(out, b",\"price\":", product.price);
    render::int(out, b",\"initial_stock\":", product.initial_stock);
    render::int(out, b",\"current_stock\":", product.current_stock);
    render::int(out, b",\"stock\":", product.current_stock);
    out.push(b'}');
}
