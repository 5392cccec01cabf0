//! The order room: placing orders (one by one as requests, together as
//! batches at the database), cancelling them, and reading them back.
//!
//! ```text
//! place.rs   POST /orders: the body, the single-order statement, the answer
//! batch.rs   the turn's orders in one transaction (group commit)
//! cancel.rs  POST /orders/{id}/cancel
//! get.rs     GET /orders/{id}
//! list.rs    GET /orders?product_id=N
//! ```

pub mod batch;
pub mod cancel;
pub mod get;
pub mod list;
pub mod place;

use crate::api::render;
use crate::pg::Timestamp;

crate::result_row! {
    /// An order, as `place_order`, `place_orders` and `get_order` return it.
    pub struct OrderRow<'a> {
        id: [u8; 16],
        idempotency_key: [u8; 16],
        product_id: i32,
        customer_id: &'a str,
        quantity: i32,
        unit_price: i32,
        total_price: i32,
        status: &'a str,
        created_at: Timestamp,
        payment_status: &'a str,
    }
}

/// The full order object of compat.md (`order_id` and its alias `id`),
/// and its payment (platform.md §3).
pub fn render_order(out: &mut Vec<u8>, order: &OrderRow<'_>) {
    render::uuid(out, b"{\"order_id\":", &order.id);
    render::uuid(out, b",\"id\":", &order.id);
    render::uuid(out, b",\"idempotency_key\":", &order.idempotency_key);
    render::int(out, b",\"product_id\":", order.product_id);
    render::text(out, b",\"customer_id\":", order.customer_id);
    render::int(out, b",\"quantity\":", order.quantity);
    render::int(out, b",\"unit_price\":", order.unit_price);
    render::int(out, b",\"total_price\":", order.total_price);
    render::text(out, b",\"status\":", order.status);
    render::timestamp(out, b",\"created_at\":", order.created_at);
    render::text(out, b",\"payment_status\":", order.payment_status);
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CUSTOMER_ID_CHARS_MAX, ORDER_JSON_BYTES_MAX};

    #[test]
    fn the_widest_order_fits_its_bound() {
        // Control characters are the ones escaped the longest (\u00XX).
        let customer_id = "\u{1}".repeat(CUSTOMER_ID_CHARS_MAX);
        let order = OrderRow {
            id: [0xff; 16],
            idempotency_key: [0xff; 16],
            product_id: i32::MIN,
            customer_id: &customer_id,
            quantity: i32::MIN,
            unit_price: i32::MIN,
            total_price: i32::MIN,
            status: "CANCELLED",
            created_at: Timestamp(i64::MAX),
            payment_status: "PENDING",
            _row: std::marker::PhantomData,
        };
        let mut out = Vec::new();
        render_order(&mut out, &order);
        assert!(
            out.len() > 6 * CUSTOMER_ID_CHARS_MAX,
            "escaped: {}",
            out.len()
        );
        assert!(out.len() <= ORDER_JSON_BYTES_MAX, "{}", out.len());
    }
}
