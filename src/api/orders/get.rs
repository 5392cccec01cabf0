//! `GET /orders/{id}` (compat.md): the order object, or 404.

use crate::api::orders::{render_order, OrderRow};
use crate::api::render::Malformed;
use crate::api::routes::Query;
use crate::api::statements::id_of;
use crate::api::validate::parse_uuid;
use crate::api::{malformed, refuse, Db, Refusal, ORDER_NOT_FOUND};
use crate::pg::{oid, Param, Refused, Rows, Statement, StatementId};

pub const GET_ORDER: Statement = Statement {
    name: "get_order",
    sql: "SELECT id, idempotency_key, product_id, customer_id, quantity, unit_price, \
          total_price, status, created_at, payment_status FROM orders WHERE id = $1",
    param_types: &[oid::UUID],
    column_names: OrderRow::COLUMN_NAMES,
    column_types: OrderRow::COLUMN_TYPES,
    writes: false,
    slow: false,
};
const GET_ORDER_ID: StatementId = id_of(&GET_ORDER);

/// compat.md: a malformed id is a 422 here (a 404 on cancel).
const NOT_A_UUID: Refusal = refuse(422, "order_id must be a UUID");

pub fn parse(id: &[u8]) -> Result<Query, Refusal> {
    parse_uuid(id).map(Query::GetOrder).ok_or(NOT_A_UUID)
}

pub fn submit(db: &mut Db<'_>, order_id: &[u8; 16]) -> Result<(), Refused> {
    db.submit(GET_ORDER_ID, &[Param::Uuid(order_id)])
}

pub fn answer(rows: Rows<'_>, body: &mut Vec<u8>) -> Result<u16, Refusal> {
    let row = rows.first().ok_or(ORDER_NOT_FOUND)?;
    let order = OrderRow::from_row(&row)
        .ok_or(Malformed)
        .map_err(malformed)?;
    render_order(body, &order);
    Ok(200)
}
