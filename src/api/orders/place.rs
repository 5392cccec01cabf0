//! `POST /orders`: the body is validated here, the order joins the turn's
//! batch (`batch.rs`), and the outcome of `place_order` (alone, or as one row
//! of `place_orders`) becomes its answer: 201 created, 200 replayed (the
//! original order, whatever this body said), 404, 409 (with its reason:
//! insufficient stock, the sale's window, the customer's limit). A body
//! with `hold_id` is an order of a hold instead (`holds::consume`).
//!
//! Fields are judged in a fixed order (product_id, idempotency_key,
//! customer_id, quantity) after the whole body has been parsed, so a body
//! with several faults always gets the same message, and malformed JSON is
//! reported before any field. Nothing here allocates: JSON strings are
//! inspected in the request buffer, and only the customer id, which the
//! order needs later, is decoded into the caller's scratch.

use crate::api::holds;
use crate::api::orders::{self, OrderRow};
use crate::api::render::Malformed;
use crate::api::routes::{Command, Query};
use crate::api::statements::id_of;
use crate::api::validate::{
    customer_id_value, product_ref, quantity_value, uuid_v4_value, uuid_value, Invalid, Member,
    ProductRef, MSG_CUSTOMER_DUPLICATE, MSG_CUSTOMER_REQUIRED, MSG_KEY_DUPLICATE, MSG_KEY_REQUIRED,
    MSG_PRODUCT_DUPLICATE, MSG_PRODUCT_REQUIRED, MSG_QUANTITY_DUPLICATE, MSG_QUANTITY_REQUIRED,
};
use crate::api::Db;
use crate::api::{malformed, refuse_for, Refusal, PRODUCT_NOT_FOUND};
use crate::json::{self, Value};
use crate::metrics::OrderRefusals;
use crate::pg::{columns, oid, Columns, Param, Refused, Rows, Statement, StatementId};

/// A validated `POST /orders` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRequest<'s> {
    pub product_id: ProductRef,
    pub idempotency_key: [u8; 16],
    /// Decoded, borrowed from the scratch passed to [`order_request`].
    pub customer_id: &'s str,
    pub quantity: i32,
}

/// A validated `POST /orders` body with `hold_id`: an order that buys a
/// hold (`holds::consume`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldPurchase<'s> {
    pub hold_id: [u8; 16],
    pub idempotency_key: [u8; 16],
    pub customer_id: &'s str,
}

/// What a `POST /orders` body asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderBody<'s> {
    Product(OrderRequest<'s>),
    Hold(HoldPurchase<'s>),
}

const MSG_HOLD_ID: &str = "hold_id must be a UUID";
const MSG_HOLD_ID_DUPLICATE: &str = "duplicate field: hold_id";
const MSG_HOLD_WITH_PRODUCT: &str =
    "an order with hold_id takes product_id and quantity from the hold: leave them out";

/// The members an order body may have, as found.
#[derive(Default)]
struct OrderMembers<'i> {
    product_id: Member<'i>,
    idempotency_key: Member<'i>,
    customer_id: Member<'i>,
    quantity: Member<'i>,
    hold_id: Member<'i>,
}

impl<'i> OrderMembers<'i> {
    fn parse(body: &'i [u8]) -> Result<OrderMembers<'i>, Invalid> {
        let mut m = OrderMembers::default();
        json::parse_object(body, |key, value| {
            // Unknown members are ignored, as a client may send more than we need.
            if key == "product_id" {
                m.product_id.record(value);
            } else if key == "idempotency_key" {
                m.idempotency_key.record(value);
            } else if key == "customer_id" {
                m.customer_id.record(value);
            } else if key == "quantity" {
                m.quantity.record(value);
            } else if key == "hold_id" {
                m.hold_id.record(value);
            }
            Ok(())
        })
        .map_err(|error| Invalid(error.message))?;
        Ok(m)
    }

    fn key(&self) -> Result<[u8; 16], Invalid> {
        uuid_v4_value(
            self.idempotency_key
                .get(MSG_KEY_REQUIRED, MSG_KEY_DUPLICATE)?,
        )
    }

    /// The customer id, decoded into `scratch`; with a session it may be
    /// left out (`""`: the session's customer).
    fn customer<'s>(&self, scratch: &'s mut String, session: bool) -> Result<&'s str, Invalid> {
        if session && !self.customer_id.is_present() {
            scratch.clear();
            return Ok(scratch.as_str());
        }
        let customer_id = self
            .customer_id
            .get(MSG_CUSTOMER_REQUIRED, MSG_CUSTOMER_DUPLICATE)?;
        Ok(customer_id_value(customer_id)?.decode_into(scratch))
    }

    /// An order of a product (a `hold_id` member is not looked at).
    fn product_order<'s>(
        &self,
        scratch: &'s mut String,
        session: bool,
    ) -> Result<OrderRequest<'s>, Invalid> {
        let product_id = self
            .product_id
            .get(MSG_PRODUCT_REQUIRED, MSG_PRODUCT_DUPLICATE)?;
        let product_id = product_ref(product_id)?;
        let idempotency_key = self.key()?;
        let customer_id = self.customer(scratch, session)?;
        let quantity = self
            .quantity
            .get(MSG_QUANTITY_REQUIRED, MSG_QUANTITY_DUPLICATE)?;
        let quantity = quantity_value(quantity)?;
        Ok(OrderRequest {
            product_id,
            idempotency_key,
            customer_id,
            quantity,
        })
    }

    /// An order of the hold `hold_id` names: the product and the quantity
    /// are the hold's, so a body that names them too is refused rather
    /// than half obeyed.
    fn hold_purchase<'s>(
        &self,
        hold_id: Value<'_>,
        scratch: &'s mut String,
        session: bool,
    ) -> Result<HoldPurchase<'s>, Invalid> {
        if self.product_id.is_present() || self.quantity.is_present() {
            return Err(Invalid(MSG_HOLD_WITH_PRODUCT));
        }
        let hold_id = uuid_value(hold_id, MSG_HOLD_ID)?;
        let idempotency_key = self.key()?;
        Ok(HoldPurchase {
            hold_id,
            idempotency_key,
            customer_id: self.customer(scratch, session)?,
        })
    }
}

/// Validates an order body of a product (`POST /orders` without
/// `hold_id`, `POST /holds`). `scratch` is reused across requests and
/// receives the decoded customer id.
pub fn order_request<'s>(
    body: &[u8],
    scratch: &'s mut String,
) -> Result<OrderRequest<'s>, Invalid> {
    OrderMembers::parse(body)?.product_order(scratch, false)
}

/// [`order_request`] of a request with a session: `customer_id` may be
/// left out (then it is `""`, the session's customer).
pub fn session_order_request<'s>(
    body: &[u8],
    scratch: &'s mut String,
) -> Result<OrderRequest<'s>, Invalid> {
    OrderMembers::parse(body)?.product_order(scratch, true)
}

/// Validates a `POST /orders` body: an order of a product, or with
/// `hold_id`, of a hold. With a session, `customer_id` may be left out.
pub fn order_body<'s>(
    body: &[u8],
    scratch: &'s mut String,
    session: bool,
) -> Result<OrderBody<'s>, Invalid> {
    let members = OrderMembers::parse(body)?;
    match members.hold_id.optional(MSG_HOLD_ID_DUPLICATE)? {
        None => members
            .product_order(scratch, session)
            .map(OrderBody::Product),
        Some(hold_id) => members
            .hold_purchase(hold_id, scratch, session)
            .map(OrderBody::Hold),
    }
}

/// The command of a `POST /orders` body: validation comes first (422),
/// then a product id no product can have (404, without the database). An
/// order of a product joins the turn's batch; an order of a hold is one
/// statement of its own.
pub fn parse<'s>(
    body: &[u8],
    scratch: &'s mut String,
    session: bool,
) -> Result<Command<'s>, Refusal> {
    match order_body(body, scratch, session).map_err(Invalid::refusal)? {
        OrderBody::Product(order) => match order.product_id {
            ProductRef::Id(_) => Ok(Command::PlaceOrder(order)),
            ProductRef::Unknown => Err(PRODUCT_NOT_FOUND),
        },
        OrderBody::Hold(purchase) => {
            let query = Query::ConsumeHold {
                hold_id: purchase.hold_id,
                key: purchase.idempotency_key,
            };
            Ok(Command::Query(query, purchase.customer_id))
        }
    }
}

/// `place_order`: an outcome code, then the order's columns (NULL unless
/// the order was created or replayed).
pub const PLACED_NAMES: [&str; 1 + OrderRow::COLUMN_NAMES.len()] =
    columns::concat(&["outcome"], OrderRow::COLUMN_NAMES);
pub const PLACED_TYPES: [u32; 1 + OrderRow::COLUMN_TYPES.len()] =
    columns::concat(&[oid::INT4], OrderRow::COLUMN_TYPES);

pub const PLACE_ORDER: Statement = Statement {
    name: "place_order",
    sql: "SELECT * FROM place_order($1, $2, $3, $4)",
    param_types: &[oid::INT4, oid::UUID, oid::TEXT, oid::INT4],
    column_names: &PLACED_NAMES,
    column_types: &PLACED_TYPES,
    writes: true,
    slow: false,
};
const _: StatementId = id_of(&PLACE_ORDER);

/// An order as a session's customer (`act_as`: FS401, FS403): `$3` the
/// customer the body names, or NULL for the session's; `$5` the token.
/// Alone, not in the turn's batch: the batch is the anonymous hot path.
pub const PLACE_ORDER_AS: Statement = Statement {
    name: "place_order_as",
    sql: "SELECT * FROM place_order($1, $2, act_as($5, $3), $4)",
    param_types: &[oid::INT4, oid::UUID, oid::TEXT, oid::INT4, oid::TEXT],
    column_names: &PLACED_NAMES,
    column_types: &PLACED_TYPES,
    writes: true,
    slow: false,
};
const PLACE_ORDER_AS_ID: StatementId = id_of(&PLACE_ORDER_AS);

/// A product order of a session's customer (`customer_id` empty: the
/// session's).
pub fn submit_as(
    db: &mut Db<'_>,
    order: &SessionOrder,
    customer_id: &str,
    token: &str,
) -> Result<(), Refused> {
    db.submit(
        PLACE_ORDER_AS_ID,
        &[
            Param::Int4(order.product_id),
            Param::Uuid(&order.idempotency_key),
            Param::text_or_null(customer_id),
            Param::Int4(order.quantity),
            Param::Text(token),
        ],
    )
}

/// An order of a product by a session's customer, kept while its
/// statement runs (the customer id, if the body names one, is the
/// command's text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionOrder {
    pub product_id: i32,
    pub idempotency_key: [u8; 16],
    pub quantity: i32,
}

/// `place_order` outcomes (`sql/init.sql`).
const CREATED: i32 = 0;
const REPLAYED: i32 = 1;
const NO_PRODUCT: i32 = 2;
const INSUFFICIENT_STOCK: i32 = 3;
const SALE_NOT_STARTED: i32 = 4;
const SALE_ENDED: i32 = 5;
const CUSTOMER_LIMIT_REACHED: i32 = 6;

pub const INSUFFICIENT_STOCK_ANSWER: Refusal =
    refuse_for(409, "insufficient stock", "insufficient_stock");
pub const SALE_NOT_STARTED_ANSWER: Refusal =
    refuse_for(409, "the sale has not started", "sale_not_started");
pub const SALE_ENDED_ANSWER: Refusal = refuse_for(409, "the sale has ended", "sale_ended");
pub const CUSTOMER_LIMIT_ANSWER: Refusal = refuse_for(
    409,
    "this customer has reached the product's per-customer limit",
    "customer_limit_reached",
);

/// The answer to an order's one-row statement (`place_order_as`,
/// `consume_hold`), its 409 counted by reason in `refusals`.
pub fn answer_counted(
    rows: Rows<'_>,
    body: &mut Vec<u8>,
    refusals: &mut OrderRefusals,
) -> Result<u16, Refusal> {
    let row = rows.first().ok_or(Malformed).map_err(malformed)?;
    let rendered = answer(&mut row.columns(), body);
    if let Err(Refusal {
        reason: Some(reason),
        ..
    }) = rendered
    {
        refusals.count(reason);
    }
    rendered
}

/// The answer to one order from its `place_order` columns (the outcome
/// code, then the order), rendered into `body`; also of an order of a hold
/// (`consume_hold` answers alike, with the hold's own refusals).
pub fn answer(columns: &mut Columns<'_>, body: &mut Vec<u8>) -> Result<u16, Refusal> {
    let outcome = columns.next_as::<i32>();
    match outcome.ok_or(Malformed).map_err(malformed)? {
        code @ (CREATED | REPLAYED) => {
            let order = OrderRow::from_columns(columns)
                .ok_or(Malformed)
                .map_err(malformed)?;
            orders::render_order(body, &order);
            Ok(if code == CREATED { 201 } else { 200 })
        }
        code => Err(order_refusal(code)
            .or_else(|| holds::hold_refusal(code))
            .unwrap_or_else(|| malformed(Malformed))),
    }
}

/// The refusal an order outcome code of `place_order` stands for (also
/// of a hold: `place_hold` judges alike), or `None` for another code.
pub fn order_refusal(outcome: i32) -> Option<Refusal> {
    match outcome {
        NO_PRODUCT => Some(PRODUCT_NOT_FOUND),
        INSUFFICIENT_STOCK => Some(INSUFFICIENT_STOCK_ANSWER),
        SALE_NOT_STARTED => Some(SALE_NOT_STARTED_ANSWER),
        SALE_ENDED => Some(SALE_ENDED_ANSWER),
        CUSTOMER_LIMIT_REACHED => Some(CUSTOMER_LIMIT_ANSWER),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::validate::{
        MSG_CUSTOMER_FORMAT, MSG_CUSTOMER_NUL, MSG_KEY_FORMAT, MSG_PRODUCT_TYPE, MSG_QUANTITY_RANGE,
    };

    const KEY: &str = "550e8400-e29b-41d4-a716-446655440000";
    const KEY_BYTES: [u8; 16] = [
        0x55, 0x0e, 0x84, 0x00, 0xe2, 0x9b, 0x41, 0xd4, 0xa7, 0x16, 0x44, 0x66, 0x55, 0x44, 0x00,
        0x00,
    ];

    /// A body with the four fields as JSON literals; `None` leaves one out.
    fn body(
        product_id: Option<&str>,
        key: Option<&str>,
        customer: Option<&str>,
        quantity: Option<&str>,
    ) -> String {
        let fields = [
            ("product_id", product_id),
            ("idempotency_key", key),
            ("customer_id", customer),
            ("quantity", quantity),
        ];
        let members: Vec<String> = fields
            .iter()
            .filter_map(|(name, literal)| literal.map(|l| format!("\"{name}\":{l}")))
            .collect();
        format!("{{{}}}", members.join(","))
    }

    /// The valid minimal body with one field replaced by `literal`.
    fn with(field: &str, literal: Option<&str>) -> String {
        let key = format!("\"{KEY}\"");
        let pick = |name: &str, default: &str| -> Option<String> {
            if name == field {
                literal.map(str::to_string)
            } else {
                Some(default.to_string())
            }
        };
        body(
            pick("product_id", "1").as_deref(),
            pick("idempotency_key", &key).as_deref(),
            pick("customer_id", "\"customer_42\"").as_deref(),
            pick("quantity", "2").as_deref(),
        )
    }

    type Outcome = Result<(ProductRef, String, i32), &'static str>;

    fn order(input: &[u8]) -> Outcome {
        let mut scratch = String::new();
        order_request(input, &mut scratch)
            .map(|o| {
                assert_eq!(o.idempotency_key, KEY_BYTES);
                (o.product_id, o.customer_id.to_string(), o.quantity)
            })
            .map_err(|Invalid(message)| message)
    }

    fn ok(product_id: ProductRef, customer: &str, quantity: i32) -> Outcome {
        Ok((product_id, customer.to_string(), quantity))
    }

    #[test]
    fn bound_messages_read_as_before() {
        assert_eq!(
            MSG_CUSTOMER_FORMAT,
            "customer_id must be a string of 1 to 50 characters"
        );
        assert_eq!(
            MSG_QUANTITY_RANGE,
            "quantity must be an integer from 1 to 5"
        );
    }

    #[test]
    fn valid_minimal_body() {
        let input = br#"{"product_id":1,"idempotency_key":"550e8400-e29b-41d4-a716-446655440000","customer_id":"customer_42","quantity":2}"#;
        let mut scratch = String::from("stale");
        let request = order_request(input, &mut scratch).unwrap();
        assert_eq!(
            request,
            OrderRequest {
                product_id: ProductRef::Id(1),
                idempotency_key: KEY_BYTES,
                customer_id: "customer_42",
                quantity: 2,
            }
        );
    }

    #[test]
    fn order_field_rows() {
        let e_accent_50 = format!("\"{}\"", "é".repeat(50));
        let e_accent_51 = format!("\"{}\"", "é".repeat(51));
        let ascii_50 = format!("\"{}\"", "c".repeat(50));
        let ascii_51 = format!("\"{}\"", "c".repeat(51));
        let emoji_50 = format!("\"{}\"", "\\ud83d\\ude00".repeat(50));
        let emoji_51 = format!("\"{}\"", "😀".repeat(51));
        let id = ProductRef::Id;
        let table: Vec<(&str, Option<&str>, Outcome)> = vec![
            // product_id
            ("product_id", None, Err(MSG_PRODUCT_REQUIRED)),
            ("product_id", Some("\"2\""), Err(MSG_PRODUCT_TYPE)),
            ("product_id", Some("2.5"), Err(MSG_PRODUCT_TYPE)),
            ("product_id", Some("2.0"), Err(MSG_PRODUCT_TYPE)),
            ("product_id", Some("2e0"), Err(MSG_PRODUCT_TYPE)),
            ("product_id", Some("true"), Err(MSG_PRODUCT_TYPE)),
            ("product_id", Some("null"), Err(MSG_PRODUCT_TYPE)),
            ("product_id", Some("[1]"), Err(MSG_PRODUCT_TYPE)),
            ("product_id", Some("{}"), Err(MSG_PRODUCT_TYPE)),
            ("product_id", Some("4"), ok(id(4), "customer_42", 2)),
            (
                "product_id",
                Some("2147483647"),
                ok(id(i32::MAX), "customer_42", 2),
            ),
            (
                "product_id",
                Some("2147483648"),
                ok(ProductRef::Unknown, "customer_42", 2),
            ),
            (
                "product_id",
                Some("0"),
                ok(ProductRef::Unknown, "customer_42", 2),
            ),
            (
                "product_id",
                Some("-0"),
                ok(ProductRef::Unknown, "customer_42", 2),
            ),
            (
                "product_id",
                Some("-1"),
                ok(ProductRef::Unknown, "customer_42", 2),
            ),
            (
                "product_id",
                Some("99999999999999999999999"),
                ok(ProductRef::Unknown, "customer_42", 2),
            ),
            (
                "product_id",
                Some("-99999999999999999999999"),
                ok(ProductRef::Unknown, "customer_42", 2),
            ),
            // idempotency_key
            ("idempotency_key", None, Err(MSG_KEY_REQUIRED)),
            ("idempotency_key", Some("1"), Err(MSG_KEY_FORMAT)),
            ("idempotency_key", Some("null"), Err(MSG_KEY_FORMAT)),
            ("idempotency_key", Some("\"\""), Err(MSG_KEY_FORMAT)),
            (
                "idempotency_key",
                Some("\"550E8400-E29B-41D4-A716-446655440000\""),
                ok(id(1), "customer_42", 2),
            ),
            // Escapes are judged decoded.
            (
                "idempotency_key",
                Some("\"\\u0035\\u00350e8400-e29b-41d4-a716-446655440000\""),
                ok(id(1), "customer_42", 2),
            ),
            (
                "idempotency_key",
                Some("\"550e8400-e29b-11d4-a716-446655440000\""),
                Err(MSG_KEY_FORMAT),
            ), // v1
            (
                "idempotency_key",
                Some("\"550e8400-e29b-41d4-c716-446655440000\""),
                Err(MSG_KEY_FORMAT),
            ), // variant
            (
                "idempotency_key",
                Some("\"550e8400e29b41d4a716446655440000\""),
                Err(MSG_KEY_FORMAT),
            ),
            (
                "idempotency_key",
                Some("\"{550e8400-e29b-41d4-a716-446655440000}\""),
                Err(MSG_KEY_FORMAT),
            ),
            (
                "idempotency_key",
                Some("\"550e8400-e29b-41d4-a716-44665544000\""),
                Err(MSG_KEY_FORMAT),
            ),
            (
                "idempotency_key",
                Some("\"550e8400-e29b-41d4-a716-4466554400000\""),
                Err(MSG_KEY_FORMAT),
            ),
            (
                "idempotency_key",
                Some("\"550e8400-e29b-41d4-a716-44665544000é\""),
                Err(MSG_KEY_FORMAT),
            ),
            (
                "idempotency_key",
                Some("\" 550e8400-e29b-41d4-a716-446655440000\""),
                Err(MSG_KEY_FORMAT),
            ),
            // customer_id
            ("customer_id", None, Err(MSG_CUSTOMER_REQUIRED)),
            ("customer_id", Some("42"), Err(MSG_CUSTOMER_FORMAT)),
            ("customer_id", Some("null"), Err(MSG_CUSTOMER_FORMAT)),
            ("customer_id", Some("[\"a\"]"), Err(MSG_CUSTOMER_FORMAT)),
            ("customer_id", Some("\"\""), Err(MSG_CUSTOMER_FORMAT)),
            (
                "customer_id",
                Some(&ascii_50),
                ok(id(1), &"c".repeat(50), 2),
            ),
            ("customer_id", Some(&ascii_51), Err(MSG_CUSTOMER_FORMAT)),
            (
                "customer_id",
                Some(&e_accent_50),
                ok(id(1), &"é".repeat(50), 2),
            ),
            ("customer_id", Some(&e_accent_51), Err(MSG_CUSTOMER_FORMAT)),
            (
                "customer_id",
                Some(&emoji_50),
                ok(id(1), &"😀".repeat(50), 2),
            ),
            ("customer_id", Some(&emoji_51), Err(MSG_CUSTOMER_FORMAT)),
            ("customer_id", Some("\"a\\u0000b\""), Err(MSG_CUSTOMER_NUL)),
            (
                "customer_id",
                Some("\"a\\\"b\\\\c\\/d\\n\\u00e9\""),
                ok(id(1), "a\"b\\c/d\né", 2),
            ),
            (
                "customer_id",
                Some("\"\\ud83d\""),
                Err("invalid JSON: unpaired UTF-16 surrogate"),
            ),
            (
                "customer_id",
                Some("\"a\tb\""),
                Err("invalid JSON: control character in string"),
            ),
            ("customer_id", Some("\" \""), ok(id(1), " ", 2)),
            // quantity
            ("quantity", None, Err(MSG_QUANTITY_REQUIRED)),
            ("quantity", Some("0"), Err(MSG_QUANTITY_RANGE)),
            ("quantity", Some("1"), ok(id(1), "customer_42", 1)),
            ("quantity", Some("5"), ok(id(1), "customer_42", 5)),
            ("quantity", Some("6"), Err(MSG_QUANTITY_RANGE)),
            ("quantity", Some("-1"), Err(MSG_QUANTITY_RANGE)),
            ("quantity", Some("1e0"), Err(MSG_QUANTITY_RANGE)),
            ("quantity", Some("1.0"), Err(MSG_QUANTITY_RANGE)),
            ("quantity", Some("\"1\""), Err(MSG_QUANTITY_RANGE)),
            ("quantity", Some("true"), Err(MSG_QUANTITY_RANGE)),
            ("quantity", Some("4294967297"), Err(MSG_QUANTITY_RANGE)),
            (
                "quantity",
                Some("99999999999999999999999"),
                Err(MSG_QUANTITY_RANGE),
            ),
        ];
        for (field, literal, expected) in table {
            let input = with(field, literal);
            assert_eq!(order(input.as_bytes()), expected, "{input}");
        }
    }

    #[test]
    fn order_whole_body_rows() {
        let table: &[(&[u8], Outcome)] = &[
            (b"", Err("body must be a JSON object")),
            (b"[]", Err("body must be a JSON object")),
            (b"null", Err("body must be a JSON object")),
            (b"\"x\"", Err("body must be a JSON object")),
            (b"{}", Err(MSG_PRODUCT_REQUIRED)),
            (b"{", Err("invalid JSON: unexpected end of input")),
            (b"{\"product_id\":1,}", Err("invalid JSON: expected a string key")),
            // Fixed order: the first failing field in spec order is named.
            (br#"{"quantity":9,"customer_id":"","product_id":"x"}"#, Err(MSG_PRODUCT_TYPE)),
            (br#"{"quantity":9,"product_id":1}"#, Err(MSG_KEY_REQUIRED)),
            // Malformed JSON anywhere outranks field errors.
            (br#"{"product_id":"x","quantity":01}"#, Err("invalid JSON: leading zero in number")),
            // Extra members are ignored, whatever their type.
            (
                br#" {"note":[{"deep":null}],"product_id":3,"idempotency_key":"550e8400-e29b-41d4-a716-446655440000","customer_id":"c","quantity":5,"x":1.5} "#,
                ok(ProductRef::Id(3), "c", 5),
            ),
            // Keys are compared decoded.
            (
                br#"{"product\u005fid":3,"idempotency_key":"550e8400-e29b-41d4-a716-446655440000","customer_id":"c","quantity":5}"#,
                ok(ProductRef::Id(3), "c", 5),
            ),
            (
                br#"{"product_id":1,"product_id":1,"idempotency_key":"550e8400-e29b-41d4-a716-446655440000","customer_id":"c","quantity":1}"#,
                Err(MSG_PRODUCT_DUPLICATE),
            ),
            (
                br#"{"product_id":1,"idempotency_key":"550e8400-e29b-41d4-a716-446655440000","customer_id":"c","quantity":1,"quantity":2}"#,
                Err(MSG_QUANTITY_DUPLICATE),
            ),
            (
                br#"{"product_id":1,"idempotency_key":"550e8400-e29b-41d4-a716-446655440000","customer_id":"c","customer\u005fid":"d","quantity":1}"#,
                Err(MSG_CUSTOMER_DUPLICATE),
            ),
            (
                b"{\"product_id\":1,\"idempotency_key\":\"550e8400-e29b-41d4-a716-446655440000\",\"customer_id\":\"c\xff\",\"quantity\":1}",
                Err("body must be valid UTF-8"),
            ),
        ];
        for (input, expected) in table {
            assert_eq!(
                &order(input),
                expected,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn mutated_bodies_never_panic() {
        let mut scratch = String::new();
        crate::test_support::for_each_damaged_order_body(|input| {
            if let Ok(order) = order_request(input, &mut scratch) {
                assert!((1..=5).contains(&order.quantity));
                assert!(!order.customer_id.is_empty());
            }
        });
    }

    /// The sample body the mutation tests start from is a valid order.
    #[test]
    fn the_sample_order_body_is_valid() {
        let mut scratch = String::new();
        let order = order_request(crate::test_support::ORDER_BODY, &mut scratch).unwrap();
        assert_eq!(order.customer_id, "cé😀");
    }
}
