//! `POST /holds`: a body as an order's (the same fields, checks and
//! messages), judged by `place_hold` as `place_order` judges an order: 201
//! with the new hold, 200 with the original one for a replayed key, 404,
//! 409 with the order's reasons.

use crate::api::holds::{outcome_and_hold, render_hold, HoldFigures, DONE, HOLD_ANSWER_NAMES};
use crate::api::holds::{HOLD_ANSWER_TYPES, REPLAYED};
use crate::api::orders::place::{order_refusal, order_request, session_order_request};
use crate::api::render::Malformed;
use crate::api::routes::Query;
use crate::api::statements::id_of;
use crate::api::validate::{Invalid, ProductRef};
use crate::api::{malformed, Db, Refusal, PRODUCT_NOT_FOUND};
use crate::pg::{oid, Param, Refused, Rows, Statement, StatementId};

/// A validated hold request (its customer id is carried beside it as text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldRequest {
    pub product_id: i32,
    pub idempotency_key: [u8; 16],
    pub quantity: i32,
}

pub const PLACE_HOLD: Statement = Statement {
    name: "place_hold",
    sql: "SELECT * FROM place_hold($1, $2, $3, $4, $5)",
    param_types: &[oid::INT4, oid::UUID, oid::TEXT, oid::INT4, oid::INT4],
    column_names: &HOLD_ANSWER_NAMES,
    column_types: &HOLD_ANSWER_TYPES,
    writes: true,
    slow: false,
};
const PLACE_HOLD_ID: StatementId = id_of(&PLACE_HOLD);

/// A hold as a session's customer: `$3` NULL for the session's, `$6` the token.
pub const PLACE_HOLD_AS: Statement = Statement {
    name: "place_hold_as",
    sql: "SELECT * FROM place_hold($1, $2, act_as($6, $3), $4, $5)",
    param_types: &[
        oid::INT4,
        oid::UUID,
        oid::TEXT,
        oid::INT4,
        oid::INT4,
        oid::TEXT,
    ],
    column_names: &HOLD_ANSWER_NAMES,
    column_types: &HOLD_ANSWER_TYPES,
    writes: true,
    slow: false,
};
const PLACE_HOLD_AS_ID: StatementId = id_of(&PLACE_HOLD_AS);

/// The body: validation first (422), then a product id no product can have
/// (404, without the database).
pub fn parse<'s>(
    body: &[u8],
    scratch: &'s mut String,
    session: bool,
) -> Result<(Query, &'s str), Refusal> {
    let order = match session {
        false => order_request(body, scratch),
        true => session_order_request(body, scratch),
    };
    let order = order.map_err(Invalid::refusal)?;
    let ProductRef::Id(product_id) = order.product_id else {
        return Err(PRODUCT_NOT_FOUND);
    };
    let hold = HoldRequest {
        product_id,
        idempotency_key: order.idempotency_key,
        quantity: order.quantity,
    };
    Ok((Query::PlaceHold(hold), order.customer_id))
}

/// `ttl_secs`: `HOLD_TTL_SECS`.
pub fn submit(
    db: &mut Db<'_>,
    hold: &HoldRequest,
    customer_id: &str,
    ttl_secs: i32,
    session: Option<&str>,
) -> Result<(), Refused> {
    let (product, key) = (
        Param::Int4(hold.product_id),
        Param::Uuid(&hold.idempotency_key),
    );
    let (quantity, ttl) = (Param::Int4(hold.quantity), Param::Int4(ttl_secs));
    match session {
        None => db.submit(
            PLACE_HOLD_ID,
            &[product, key, Param::Text(customer_id), quantity, ttl],
        ),
        Some(token) => db.submit(
            PLACE_HOLD_AS_ID,
            &[
                product,
                key,
                Param::text_or_null(customer_id),
                quantity,
                ttl,
                Param::Text(token),
            ],
        ),
    }
}

pub fn answer(
    rows: Rows<'_>,
    body: &mut Vec<u8>,
    figures: &mut HoldFigures,
) -> Result<u16, Refusal> {
    let (outcome, hold) = outcome_and_hold(&rows)?;
    match (outcome, hold) {
        (DONE | REPLAYED, Some(hold)) => {
            render_hold(body, &hold);
            Ok(if outcome == DONE { 201 } else { 200 })
        }
        (code, _) => {
            let refusal = order_refusal(code).unwrap_or_else(|| malformed(Malformed));
            if let Some(reason) = refusal.reason {
                figures.refusals.count(reason);
            }
            Err(refusal)
        }
    }
}
