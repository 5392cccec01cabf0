//! Order batching (design decision 6): every order validated during one
//! event-loop turn joins the open batch; at the end of the turn the batch
//! goes to Postgres as ONE `place_orders` call — one round trip, one
//! transaction, one commit (one WAL flush) for all of them. A batch of one
//! is sent as a plain `place_order`.
//!
//! A batch in flight is remembered in a slot until its answer: one row per
//! order, each naming its position, rendered into the connection that sent
//! that order. Should a batch fail as a whole (a deadlock between two
//! batches holding one idempotency key for different products, or anything
//! unexpected), nothing of it was committed, and its orders are sent again
//! one by one so each gets its own answer.

use std::time::Instant;

use crate::api::refusal_for;
use crate::api::route::Refusal;
use crate::api::statements::{PLACE_ORDER, PLACE_ORDERS};
use crate::api::validate::{OrderRequest, ProductRef};
use crate::config::PG_ORDER_BATCH_MAX;
use crate::pg::{Param, Pool, Refused};

/// Tags with this bit set name a batch slot, not a connection.
pub const BATCH_TAG_BIT: u64 = 1 << 63;

/// Orders going to the database together, in arrival order.
pub struct Batch {
    /// The tag of the connection waiting for each order.
    pub members: Vec<u64>,
    product_ids: Vec<i32>,
    keys: Vec<[u8; 16]>,
    /// Customer ids back to back; `customer_ends[i]` is where the i-th ends.
    customers: String,
    customer_ends: Vec<usize>,
    quantities: Vec<i32>,
}

/// Typical customer id length; the text buffer grows past it only for
/// batches of unusually long ids.
const CUSTOMER_ID_BYTES_TYPICAL: usize = 24;

impl Default for Batch {
    /// Sized for a full batch up front, so a batch never grows while it is
    /// being filled on the hot path.
    fn default() -> Batch {
        Batch {
            members: Vec::with_capacity(PG_ORDER_BATCH_MAX),
            product_ids: Vec::with_capacity(PG_ORDER_BATCH_MAX),
            keys: Vec::with_capacity(PG_ORDER_BATCH_MAX),
            customers: String::with_capacity(PG_ORDER_BATCH_MAX * CUSTOMER_ID_BYTES_TYPICAL),
            customer_ends: Vec::with_capacity(PG_ORDER_BATCH_MAX),
            quantities: Vec::with_capacity(PG_ORDER_BATCH_MAX),
        }
    }
}

impl Batch {
    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    fn clear(&mut self) {
        self.members.clear();
        self.product_ids.clear();
        self.keys.clear();
        self.customers.clear();
        self.customer_ends.clear();
        self.quantities.clear();
    }

    fn customer(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.customer_ends[i - 1] };
        &self.customers[start..self.customer_ends[i]]
    }

    /// The i-th order, as the validator produced it.
    pub fn order(&self, i: usize) -> OrderRequest<'_> {
        OrderRequest {
            product_id: ProductRef::Id(self.product_ids[i]),
            idempotency_key: self.keys[i],
            customer_id: self.customer(i),
            quantity: self.quantities[i],
        }
    }
}

/// What became of sending the open batch.
pub enum Sent {
    /// Nothing was open.
    Nothing,
    Submitted,
    /// The pool refused; every member must be answered with the refusal.
    Refused(Refusal, Batch),
}

/// The open batch, batches in flight, and failed batches awaiting a retry.
#[derive(Default)]
pub struct Batches {
    open: Batch,
    in_flight: Vec<Option<Batch>>,
    free_slots: Vec<usize>,
    /// Emptied batches kept for their capacity (no allocation once warm).
    spare: Vec<Batch>,
    failed: Vec<Batch>,
}

impl Batches {
    pub fn is_open_full(&self) -> bool {
        self.open.len() >= PG_ORDER_BATCH_MAX
    }

    /// Adds an order (validated, known product id) for connection `member`.
    pub fn push(&mut self, member: u64, order: &OrderRequest<'_>) {
        debug_assert!(!self.is_open_full());
        let ProductRef::Id(product_id) = order.product_id else {
            unreachable!("the router answers unknown products itself")
        };
        let batch = &mut self.open;
        batch.members.push(member);
        batch.product_ids.push(product_id);
        batch.keys.push(order.idempotency_key);
        batch.customers.push_str(order.customer_id);
        batch.customer_ends.push(batch.customers.len());
        batch.quantities.push(order.quantity);
    }

    /// Sends the open batch: alone as `place_order` (tagged with its
    /// connection), or as `place_orders` tagged with a batch slot.
    pub fn send_open(&mut self, pool: &mut Pool, now: Instant) -> Sent {
        if self.open.is_empty() {
            return Sent::Nothing;
        }
        let replacement = self.spare.pop().unwrap_or_default();
        let batch = std::mem::replace(&mut self.open, replacement);
        if batch.len() == 1 {
            let result = submit_one(pool, &batch, 0, batch.members[0], now);
            return match result {
                Ok(()) => {
                    self.recycle(batch);
                    Sent::Submitted
                }
                Err(refused) => Sent::Refused(refusal_for(refused), batch),
            };
        }
        let slot = self.allocate_slot();
        let params = [
            Param::Int4Array(&batch.product_ids),
            Param::UuidArray(&batch.keys),
            Param::JoinedTextArray {
                joined: &batch.customers,
                ends: &batch.customer_ends,
            },
            Param::Int4Array(&batch.quantities),
        ];
        match pool.submit(BATCH_TAG_BIT | slot as u64, PLACE_ORDERS, &params, now) {
            Ok(()) => {
                self.in_flight[slot] = Some(batch);
                Sent::Submitted
            }
            Err(refused) => {
                self.free_slots.push(slot);
                Sent::Refused(refusal_for(refused), batch)
            }
        }
    }

    fn allocate_slot(&mut self) -> usize {
        self.free_slots.pop().unwrap_or_else(|| {
            self.in_flight.push(None);
            self.in_flight.len() - 1
        })
    }

    /// Takes the batch a `BATCH_TAG_BIT` tag names, freeing its slot.
    pub fn take(&mut self, tag: u64) -> Option<Batch> {
        let slot = (tag & !BATCH_TAG_BIT) as usize;
        let batch = self.in_flight.get_mut(slot)?.take()?;
        self.free_slots.push(slot);
        Some(batch)
    }

    /// Keeps an answered batch's buffers for reuse.
    pub fn recycle(&mut self, mut batch: Batch) {
        batch.clear();
        self.spare.push(batch);
    }

    /// A batch failed as a whole: its orders will be sent one by one.
    pub fn retry_singly(&mut self, batch: Batch) {
        self.failed.push(batch);
    }

    /// A failed batch to send again order by order.
    pub fn take_failed(&mut self) -> Option<Batch> {
        self.failed.pop()
    }
}

/// Sends order `i` of `batch` alone, tagged with its connection.
pub fn submit_one(
    pool: &mut Pool,
    batch: &Batch,
    i: usize,
    member: u64,
    now: Instant,
) -> Result<(), Refused> {
    let order = batch.order(i);
    let ProductRef::Id(product_id) = order.product_id else {
        unreachable!()
    };
    let params = [
        Param::Int4(product_id),
        Param::Uuid(&order.idempotency_key),
        Param::Text(order.customer_id),
        Param::Int4(order.quantity),
    ];
    pool.submit(member, PLACE_ORDER, &params, now)
}
