//! `POST /orders/{id}/cancel`: cancels a CONFIRMED order and restores its
//! stock exactly once (concurrent cancels queue on the order's row lock in
//! `cancel_order`; the losers get 409). The body may name the product
//! (`{"product_id": N}`, the order must be of it) or be absent (compat.md).

use crate::api::render::{self, Malformed};
use crate::api::routes::Query;
use crate::api::statements::id_of;
use crate::api::validate::{
    parse_uuid, product_ref, Invalid, Member, ProductRef, MSG_PRODUCT_DUPLICATE,
    MSG_PRODUCT_REQUIRED,
};
use crate::api::{malformed, refuse_for, Db, Refusal, ORDER_NOT_FOUND};
use crate::json;
use crate::pg::{oid, Param, Refused, Rows, Statement, StatementId};

crate::result_row! {
    /// What `cancel_order` did, and the units it put back.
    pub struct CancelRow<'a> {
        outcome: i32,
        restored_quantity: Option<i32>,
    }
}

pub const CANCEL_ORDER: Statement = Statement {
    name: "cancel_order",
    sql: "SELECT * FROM cancel_order($1, $2)",
    param_types: &[oid::UUID, oid::INT4],
    column_names: CancelRow::COLUMN_NAMES,
    column_types: CancelRow::COLUMN_TYPES,
    writes: true,
    slow: false,
};
const CANCEL_ORDER_ID: StatementId = id_of(&CANCEL_ORDER);

/// As a session's customer: only the order's own (`cancel_order_as`: FS401, FS403).
pub const CANCEL_ORDER_AS: Statement = Statement {
    name: "cancel_order_as",
    sql: "SELECT * FROM cancel_order_as($3, $1, $2)",
    param_types: &[oid::UUID, oid::INT4, oid::TEXT],
    column_names: CancelRow::COLUMN_NAMES,
    column_types: CancelRow::COLUMN_TYPES,
    writes: true,
    slow: false,
};
const CANCEL_ORDER_AS_ID: StatementId = id_of(&CANCEL_ORDER_AS);

/// `cancel_order` outcomes (`sql/init.sql`).
const CANCELLED: i32 = 0;
const ALREADY_CANCELLED: i32 = 1;
const NO_ORDER: i32 = 2;

const ALREADY_CANCELLED_ANSWER: Refusal =
    refuse_for(409, "order already cancelled", "already_cancelled");

/// The path's order id and the body. The body is judged first (422); a
/// malformed id, or a product no order can belong to, is an order that does
/// not exist (404).
pub fn parse(id: &[u8], body: &[u8]) -> Result<Query, Refusal> {
    let product_id = cancel_request(body).map_err(Invalid::refusal)?;
    let order_id = parse_uuid(id).ok_or(ORDER_NOT_FOUND)?;
    let product_id = match product_id {
        None => None,
        Some(ProductRef::Id(id)) => Some(id),
        Some(ProductRef::Unknown) => return Err(ORDER_NOT_FOUND),
    };
    Ok(Query::CancelOrder {
        order_id,
        product_id,
    })
}

/// Validates a cancel body. No body (empty or only whitespace) is allowed and
/// gives `None` (compat.md); a body must be an object with an integer
/// `product_id`.
pub fn cancel_request(body: &[u8]) -> Result<Option<ProductRef>, Invalid> {
    if body.iter().all(|&b| json::is_whitespace(b)) {
        return Ok(None);
    }
    let mut product_id = Member::default();
    json::parse_object(body, |key, value| {
        if key == "product_id" {
            product_id.record(value);
        }
        Ok(())
    })
    .map_err(|error| Invalid(error.message))?;
    product_ref(product_id.get(MSG_PRODUCT_REQUIRED, MSG_PRODUCT_DUPLICATE)?).map(Some)
}

pub fn submit(
    db: &mut Db<'_>,
    order_id: &[u8; 16],
    product_id: Option<i32>,
    session: Option<&str>,
) -> Result<(), Refused> {
    let product = Param::int4_or_null(product_id);
    match session {
        None => db.submit(CANCEL_ORDER_ID, &[Param::Uuid(order_id), product]),
        Some(token) => db.submit(
            CANCEL_ORDER_AS_ID,
            &[Param::Uuid(order_id), product, Param::Text(token)],
        ),
    }
}

pub fn answer(order_id: &[u8; 16], rows: Rows<'_>, body: &mut Vec<u8>) -> Result<u16, Refusal> {
    let row = rows.first().as_ref().and_then(CancelRow::from_row);
    let row = row.ok_or(Malformed).map_err(malformed)?;
    match row.outcome {
        CANCELLED => {
            let restored = row.restored_quantity.ok_or(Malformed).map_err(malformed)?;
            write_cancelled(body, order_id, restored);
            Ok(200)
        }
        ALREADY_CANCELLED => Err(ALREADY_CANCELLED_ANSWER),
        NO_ORDER => Err(ORDER_NOT_FOUND),
        _ => Err(malformed(Malformed)),
    }
}

/// `{"order_id":…,"status":"CANCELLED","restored_quantity":N}`
fn write_cancelled(out: &mut Vec<u8>, order_id: &[u8; 16], restored_quantity: i32) {
    render::uuid(out, b"{\"order_id\":", order_id);
    out.extend_from_slice(b",\"status\":\"CANCELLED\"");
    render::int(out, b",\"restored_quantity\":", restored_quantity);
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::validate::MSG_PRODUCT_TYPE;

    #[test]
    fn cancel_bodies() {
        type Row = (&'static [u8], Result<Option<ProductRef>, &'static str>);
        let table: &[Row] = &[
            (b"", Ok(None)),
            (b" \r\n\t", Ok(None)),
            (b"{}", Err(MSG_PRODUCT_REQUIRED)),
            (b"{\"product_id\":1}", Ok(Some(ProductRef::Id(1)))),
            (b" { \"product_id\" : 5 } ", Ok(Some(ProductRef::Id(5)))),
            (
                b"{\"product_id\":1,\"extra\":true}",
                Ok(Some(ProductRef::Id(1))),
            ),
            (b"{\"product_id\":0}", Ok(Some(ProductRef::Unknown))),
            (b"{\"product_id\":1e400}", Err(MSG_PRODUCT_TYPE)),
            (
                b"{\"product_id\":123456789012345678901}",
                Ok(Some(ProductRef::Unknown)),
            ),
            (b"{\"product_id\":\"1\"}", Err(MSG_PRODUCT_TYPE)),
            (b"{\"product_id\":1.0}", Err(MSG_PRODUCT_TYPE)),
            (b"{\"product_id\":null}", Err(MSG_PRODUCT_TYPE)),
            (
                b"{\"product_id\":1,\"product_id\":2}",
                Err(MSG_PRODUCT_DUPLICATE),
            ),
            (b"null", Err("body must be a JSON object")),
            (b"[1]", Err("body must be a JSON object")),
            (b"\x0c", Err("body must be a JSON object")),
            (b"garbage", Err("body must be a JSON object")),
            (
                b"{\"product_id\":1",
                Err("invalid JSON: unexpected end of input"),
            ),
            (
                b"{\"product_id\":1}}",
                Err("invalid JSON: unexpected data after the object"),
            ),
            (b"\xff\xfe", Err("body must be valid UTF-8")),
        ];
        for (input, expected) in table {
            let got = cancel_request(input).map_err(|Invalid(message)| message);
            assert_eq!(&got, expected, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn cancel_body_is_exact() {
        let mut out = Vec::new();
        write_cancelled(&mut out, &[0xab; 16], 3);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"order_id":"abababab-abab-abab-abab-abababababab","status":"CANCELLED","restored_quantity":3}"#
        );
    }

    #[test]
    fn mutated_bodies_never_panic() {
        crate::test_support::for_each_damaged_order_body(|input| {
            if let Ok(Some(ProductRef::Id(id))) = cancel_request(input) {
                assert!(id > 0);
            }
        });
    }
}
