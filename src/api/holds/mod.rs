//! The hold room (platform.md §2): units reserved for a customer until a
//! deadline, then bought, released, or expired.
//!
//! ```text
//! place.rs    POST /holds
//! read.rs     GET /holds/{id}, POST /holds/{id}/release
//! list.rs     GET /holds?customer_id=: a customer's holds
//! consume.rs  POST /orders with hold_id: an order that buys a hold
//! sweep.rs    the background expiry, from the event loop's turns
//! ```
//!
//! Every decision is the database's, under the hold's row lock, at its
//! clock (`sql/init.sql`, "Holds"): a hold past due is expired by whoever
//! locks it first (the sweep of either instance, a purchase, a release, a
//! read), and its units come back once.

pub mod consume;
pub mod list;
pub mod place;
pub mod read;
pub mod sweep;

use crate::api::render::{self, Malformed};
use crate::api::{malformed, refuse, refuse_for, Refusal};
use crate::metrics::OrderRefusals;
use crate::pg::{columns, oid, Rows, Timestamp};

crate::result_row! {
    /// A hold, as the hold functions return it after their outcome code.
    pub struct HoldRow<'a> {
        id: [u8; 16],
        product_id: i32,
        customer_id: &'a str,
        quantity: i32,
        unit_price: i32,
        status: &'a str,
        expires_at: Timestamp,
        created_at: Timestamp,
        order_id: Option<[u8; 16]>,
    }
}

/// The hold functions' rows: an outcome code, then the hold (NULL when
/// there is none to show).
pub const HOLD_ANSWER_NAMES: [&str; 1 + HoldRow::COLUMN_NAMES.len()] =
    columns::concat(&["outcome"], HoldRow::COLUMN_NAMES);
pub const HOLD_ANSWER_TYPES: [u32; 1 + HoldRow::COLUMN_TYPES.len()] =
    columns::concat(&[oid::INT4], HoldRow::COLUMN_TYPES);

/// Outcome codes of the hold functions (`sql/init.sql`, "Holds"); 2 to 6
/// are `place_order`'s.
pub const DONE: i32 = 0;
pub const REPLAYED: i32 = 1;
pub const NOT_ACTIVE: i32 = 10;
pub const EXPIRED: i32 = 11;
pub const NO_HOLD: i32 = 12;
pub const NOT_YOURS: i32 = 13;

pub const HOLD_NOT_FOUND: Refusal = refuse(404, "hold not found");
pub const HOLD_NOT_ACTIVE: Refusal = refuse_for(
    409,
    "the hold is no longer active: it was bought or released",
    "hold_not_active",
);
pub const HOLD_EXPIRED: Refusal = refuse_for(409, "the hold has expired", "hold_expired");
pub const HOLD_NOT_YOURS: Refusal = refuse_for(
    409,
    "the hold belongs to another customer",
    "hold_not_yours",
);

/// The refusal a hold outcome code stands for, if it is one of the hold's
/// own (`None` for the others).
pub fn hold_refusal(outcome: i32) -> Option<Refusal> {
    match outcome {
        NOT_ACTIVE => Some(HOLD_NOT_ACTIVE),
        EXPIRED => Some(HOLD_EXPIRED),
        NO_HOLD => Some(HOLD_NOT_FOUND),
        NOT_YOURS => Some(HOLD_NOT_YOURS),
        _ => None,
    }
}

/// What the hold room counts for the metrics.
#[derive(Debug, Default)]
pub struct HoldFigures {
    /// Holds refused with 409, by reason.
    pub refusals: OrderRefusals,
    /// Orders of holds refused with 409, by reason (they count as orders).
    pub purchase_refusals: OrderRefusals,
    /// Sweeps answered, and the holds they expired.
    pub sweeps: u64,
    pub expired: u64,
}

/// The outcome code and the hold of a hold function's one row.
fn outcome_and_hold<'a>(rows: &Rows<'a>) -> Result<(i32, Option<HoldRow<'a>>), Refusal> {
    let row = rows.first().ok_or(Malformed).map_err(malformed)?;
    let mut columns = row.columns();
    let outcome = columns.next_as::<i32>();
    let outcome = outcome.ok_or(Malformed).map_err(malformed)?;
    Ok((outcome, HoldRow::from_columns(&mut columns)))
}

/// `{"hold_id":…,"product_id":…,"customer_id":…,"quantity":…,"unit_price":…,
/// "status":…,"expires_at":…,"created_at":…,"order_id":…|null}`
pub fn render_hold(out: &mut Vec<u8>, hold: &HoldRow<'_>) {
    render::uuid(out, b"{\"hold_id\":", &hold.id);
    render::int(out, b",\"product_id\":", hold.product_id);
    render::text(out, b",\"customer_id\":", hold.customer_id);
    render::int(out, b",\"quantity\":", hold.quantity);
    render::int(out, b",\"unit_price\":", hold.unit_price);
    render::text(out, b",\"status\":", hold.status);
    render::timestamp(out, b",\"expires_at\":", hold.expires_at);
    render::timestamp(out, b",\"created_at\":", hold.created_at);
    match &hold.order_id {
        Some(order_id) => render::uuid(out, b",\"order_id\":", order_id),
        None => out.extend_from_slice(b",\"order_id\":null"),
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CUSTOMER_ID_CHARS_MAX, ORDER_JSON_BYTES_MAX};

    fn hold(order_id: Option<[u8; 16]>, customer_id: &str) -> HoldRow<'_> {
        HoldRow {
            id: [0x11; 16],
            product_id: 7,
            customer_id,
            quantity: 2,
            unit_price: 4999,
            status: "HELD",
            expires_at: Timestamp(120_000_000),
            created_at: Timestamp(0),
            order_id,
            _row: std::marker::PhantomData,
        }
    }

    #[test]
    fn a_hold_renders_every_field() {
        let mut out = Vec::new();
        render_hold(&mut out, &hold(None, "c"));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"hold_id":"11111111-1111-1111-1111-111111111111","product_id":7,"customer_id":"c","quantity":2,"unit_price":4999,"status":"HELD","expires_at":"2000-01-01T00:02:00.000Z","created_at":"2000-01-01T00:00:00.000Z","order_id":null}"#
        );
        let mut out = Vec::new();
        render_hold(&mut out, &hold(Some([0xab; 16]), "c"));
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with(r#""order_id":"abababab-abab-abab-abab-abababababab"}"#));
    }

    #[test]
    fn the_widest_hold_fits_the_order_bound() {
        let customer_id = "\u{1}".repeat(CUSTOMER_ID_CHARS_MAX);
        let mut out = Vec::new();
        render_hold(&mut out, &hold(Some([0xff; 16]), &customer_id));
        assert!(out.len() <= ORDER_JSON_BYTES_MAX, "{}", out.len());
    }
}
