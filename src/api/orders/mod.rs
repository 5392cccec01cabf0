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
    }
}

/// The full order object of compat.md (`order_id` and its alias `id`).
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
    out.push(b'}');
}
