//! `POST /orders` with `hold_id`: an order that buys a live hold of its
//! customer (`consume_hold`). The order takes the hold's product, quantity
//! and price; its units were taken when the hold was made, so nothing is
//! decremented twice. Answered as an order (201, 200 for a replayed key),
//! or 404 / 409 with the hold's reasons. One statement of its own: the
//! turn's batch is for orders of products.

use crate::api::holds::HoldFigures;
use crate::api::orders::place::{self, PLACED_NAMES, PLACED_TYPES};
use crate::api::statements::id_of;
use crate::api::{Db, Refusal};
use crate::pg::{oid, Param, Refused, Rows, Statement, StatementId};

pub const CONSUME_HOLD: Statement = Statement {
    name: "consume_hold",
    sql: "SELECT * FROM consume_hold($1, $2, $3)",
    param_types: &[oid::UUID, oid::UUID, oid::TEXT],
    column_names: &PLACED_NAMES,
    column_types: &PLACED_TYPES,
    writes: true,
    slow: false,
};
const CONSUME_HOLD_ID: StatementId = id_of(&CONSUME_HOLD);

/// As a session's customer: `$3` NULL for the session's, `$4` the token.
pub const CONSUME_HOLD_AS: Statement = Statement {
    name: "consume_hold_as",
    sql: "SELECT * FROM consume_hold($1, $2, act_as($4, $3))",
    param_types: &[oid::UUID, oid::UUID, oid::TEXT, oid::TEXT],
    column_names: &PLACED_NAMES,
    column_types: &PLACED_TYPES,
    writes: true,
    slow: false,
};
const CONSUME_HOLD_AS_ID: StatementId = id_of(&CONSUME_HOLD_AS);

pub fn submit(
    db: &mut Db<'_>,
    hold_id: &[u8; 16],
    key: &[u8; 16],
    customer_id: &str,
    session: Option<&str>,
) -> Result<(), Refused> {
    let (hold, key) = (Param::Uuid(hold_id), Param::Uuid(key));
    match session {
        None => db.submit(CONSUME_HOLD_ID, &[hold, key, Param::Text(customer_id)]),
        Some(token) => db.submit(
            CONSUME_HOLD_AS_ID,
            &[
                hold,
                key,
                Param::text_or_null(customer_id),
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
    place::answer_counted(rows, body, &mut figures.purchase_refusals)
}
