//! Order batching (design decisions 6 and 10): every validated order joins
//! the open batch; at the end of the loop turn the batch goes to Postgres as
//! ONE `place_orders` call — one round trip, one transaction, one commit (one
//! WAL flush) for all of them — if fewer batches than database connections
//! are at the database. Otherwise it stays open and gathers the orders that
//! arrive until one comes back: at light load an order goes at once, under
//! load batches grow with it (group commit in the application). A batch of
//! one goes as a plain `place_order`.
//!
//! The batches are a fixed set (`ORDER_BATCHES_MAX`), allocated at start, so
//! the order path never allocates. A batch's tag names it while it is at the
//! database; its answer is one row per order, each naming its position,
//! rendered for the request that sent that order. Should a batch fail as a
//! whole (a deadlock between two batches holding one idempotency key for
//! different products, or anything unexpected), nothing of it was committed,
//! and its orders go again one by one, each tagged with its position, so
//! each gets its own answer.
//!
//! Orders of products whose last order was refused for stock travel in a
//! lane of their own, with its own batches in flight: a batch of refusals
//! locks and writes nothing (no WAL flush), so sold-out orders (most orders
//! of a flash sale, once stock is gone) are not held up by the durable
//! commits of others. That is a hint, never a decision: such a batch gives
//! every order exactly its answer too.
//!
//! An order that finds the open batch full and no batch free is refused
//! with 503.

use std::time::Instant;

use crate::api::orders::place::{self, OrderRequest, PLACED_NAMES, PLACED_TYPES, PLACE_ORDER};
use crate::api::render::Malformed;
use crate::api::statements::id_of;
use crate::api::validate::ProductRef;
use crate::api::{
    answer_of, malformed, refusal_for, Host, Refusal, RequestId, DATABASE_ERROR,
    ORDER_OUTCOME_UNKNOWN, ORDER_TIMED_OUT, OVERLOADED, SHUTTING_DOWN,
};
use crate::config::{
    ORDER_BATCHES_IN_FLIGHT_MAX, ORDER_BATCHES_MAX, PG_ORDER_BATCH_MAX, SOLD_OUT_HINTS,
};
use crate::log::{self, Value};
use crate::metrics::{BatchSizes, OrderRefusals, BATCH_SIZE_BUCKETS};
use crate::pg::{columns, oid, Param, Pool, Reply, Rows, Statement, StatementId};

/// `place_orders`: the order's position in the batch (1-based), then the
/// columns of `place_order`.
const BATCH_NAMES: [&str; 1 + PLACED_NAMES.len()] = columns::concat(&["idx"], &PLACED_NAMES);
const BATCH_TYPES: [u32; 1 + PLACED_TYPES.len()] = columns::concat(&[oid::INT4], &PLACED_TYPES);

pub const PLACE_ORDERS: Statement = Statement {
    name: "place_orders",
    sql: "SELECT * FROM place_orders($1, $2, $3, $4)",
    param_types: &[
        oid::INT4_ARRAY,
        oid::UUID_ARRAY,
        oid::TEXT_ARRAY,
        oid::INT4_ARRAY,
    ],
    column_names: &BATCH_NAMES,
    column_types: &BATCH_TYPES,
    writes: true,
    slow: false,
};
const PLACE_ORDERS_ID: StatementId = id_of(&PLACE_ORDERS);
const PLACE_ORDER_ID: StatementId = id_of(&PLACE_ORDER);

/// Tags with this bit set name an order batch; the bits below name the
/// batch (bits 16..) and, for an order sent alone, its position plus one
/// (bits 0..16; 0 is the whole batch).
const BATCH_TAG_BIT: u64 = 1 << 63;
const POSITION_BITS: u32 = 16;

/// Whether a pool tag names an order batch.
pub fn owns(tag: u64) -> bool {
    tag & BATCH_TAG_BIT != 0
}

fn tag_of(batch: usize, position: Option<usize>) -> u64 {
    let position = position.map_or(0, |p| p as u64 + 1);
    BATCH_TAG_BIT | (batch as u64) << POSITION_BITS | position
}

/// The batch and the position (for an order sent alone) a tag names.
fn untag(tag: u64) -> (usize, Option<usize>) {
    let batch = ((tag & !BATCH_TAG_BIT) >> POSITION_BITS) as usize;
    let position = (tag & ((1 << POSITION_BITS) - 1)) as usize;
    (batch, position.checked_sub(1))
}

/// Typical customer id length: the text buffer is sized for a full batch of
/// these, and grows (once, up to `CUSTOMER_ID_BYTES_MAX` an order) only for
/// batches of unusually long ids.
const CUSTOMER_ID_BYTES_TYPICAL: usize = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Free,
    /// Taking this turn's orders.
    Open,
    /// Filled up during the turn; goes at its end.
    Full,
    /// At the database: one `place_order` (`alone`) or one `place_orders`.
    Sent {
        alone: bool,
    },
    /// Failed as a whole; its orders go one by one at the end of the turn.
    Failed,
    /// Its orders went one by one; `outstanding` answers are still to come.
    Retried {
        outstanding: usize,
    },
}

/// Which open batch an order joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    /// Orders that may be created: few of these batches are at the database
    /// at once (`ORDER_BATCHES_IN_FLIGHT`), so they grow under load.
    Place,
    /// Orders of products remembered as sold out: likely refusals, with up
    /// to one batch in flight per database connection.
    SoldOut,
}

impl Lane {
    fn index(self) -> usize {
        self as usize
    }
}

/// Products whose last order was refused for stock, by product id modulo
/// the table size (0: nobody; product ids are positive).
struct SoldOutHints {
    products: [i32; SOLD_OUT_HINTS],
}

impl Default for SoldOutHints {
    fn default() -> Self {
        SoldOutHints {
            products: [0; SOLD_OUT_HINTS],
        }
    }
}

impl SoldOutHints {
    fn slot(product_id: i32) -> usize {
        product_id.unsigned_abs() as usize % SOLD_OUT_HINTS
    }

    fn contains(&self, product_id: i32) -> bool {
        self.products[Self::slot(product_id)] == product_id
    }

    /// What an answer says of its product's stock: a refusal for stock
    /// marks it sold out, a created order clears that.
    fn learn(&mut self, product_id: i32, rendered: &Result<u16, Refusal>) {
        let slot = &mut self.products[Self::slot(product_id)];
        match rendered {
            Err(refusal) if *refusal == place::INSUFFICIENT_STOCK_ANSWER => *slot = product_id,
            Ok(201) if *slot == product_id => *slot = 0,
            _ => {}
        }
    }
}

/// What the batcher learns from each order's answer: which products are
/// sold out, and how many orders were refused for which reason.
#[derive(Default)]
struct Learned {
    sold_out: SoldOutHints,
    refusals: OrderRefusals,
}

impl Learned {
    fn learn(&mut self, product_id: i32, rendered: &Result<u16, Refusal>) {
        self.sold_out.learn(product_id, rendered);
        if let Err(Refusal {
            reason: Some(reason),
            ..
        }) = rendered
        {
            self.refusals.count(reason);
        }
    }
}

/// Orders going to the database together, in arrival order.
struct Batch {
    state: State,
    lane: Lane,
    /// The request waiting for each order; `None` once it is answered.
    members: Vec<Option<RequestId>>,
    product_ids: Vec<i32>,
    keys: Vec<[u8; 16]>,
    /// Customer ids back to back; `customer_ends[i]` is where the i-th ends.
    customers: String,
    customer_ends: Vec<usize>,
    quantities: Vec<i32>,
}

impl Batch {
    /// Sized for a full batch up front: a batch never grows while it fills.
    fn new() -> Batch {
        Batch {
            state: State::Free,
            lane: Lane::Place,
            members: Vec::with_capacity(PG_ORDER_BATCH_MAX),
            product_ids: Vec::with_capacity(PG_ORDER_BATCH_MAX),
            keys: Vec::with_capacity(PG_ORDER_BATCH_MAX),
            customers: String::with_capacity(PG_ORDER_BATCH_MAX * CUSTOMER_ID_BYTES_TYPICAL),
            customer_ends: Vec::with_capacity(PG_ORDER_BATCH_MAX),
            quantities: Vec::with_capacity(PG_ORDER_BATCH_MAX),
        }
    }

    fn len(&self) -> usize {
        self.members.len()
    }

    fn is_full(&self) -> bool {
        self.len() >= PG_ORDER_BATCH_MAX
    }

    fn push(&mut self, request: RequestId, order: &OrderRequest<'_>) {
        debug_assert!(!self.is_full());
        let ProductRef::Id(product_id) = order.product_id else {
            unreachable!("the router answers unknown products itself")
        };
        self.members.push(Some(request));
        self.product_ids.push(product_id);
        self.keys.push(order.idempotency_key);
        self.customers.push_str(order.customer_id);
        self.customer_ends.push(self.customers.len());
        self.quantities.push(order.quantity);
    }

    fn customer(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.customer_ends[i - 1] };
        &self.customers[start..self.customer_ends[i]]
    }

    fn clear(&mut self) {
        self.state = State::Free;
        self.members.clear();
        self.product_ids.clear();
        self.keys.clear();
        self.customers.clear();
        self.customer_ends.clear();
        self.quantities.clear();
    }

    /// Sends the whole batch: alone as `place_order`, else as `place_orders`.
    fn submit(&mut self, tag: u64, pool: &mut Pool, now: Instant) -> Result<(), Refusal> {
        let alone = self.len() == 1;
        let sent = if alone {
            self.submit_one(0, tag, pool, now)
        } else {
            let params = [
                Param::Int4Array(&self.product_ids),
                Param::UuidArray(&self.keys),
                Param::JoinedTextArray {
                    joined: &self.customers,
                    ends: &self.customer_ends,
                },
                Param::Int4Array(&self.quantities),
            ];
            pool.submit(tag, PLACE_ORDERS_ID, &params, now)
        };
        self.state = State::Sent { alone };
        sent.map_err(refusal_for)
    }

    /// Sends order `i` alone, as `place_order`.
    fn submit_one(
        &self,
        i: usize,
        tag: u64,
        pool: &mut Pool,
        now: Instant,
    ) -> Result<(), crate::pg::Refused> {
        let params = [
            Param::Int4(self.product_ids[i]),
            Param::Uuid(&self.keys[i]),
            Param::Text(self.customer(i)),
            Param::Int4(self.quantities[i]),
        ];
        pool.submit(tag, PLACE_ORDER_ID, &params, now)
    }

    /// Answers order `i` (when it still waits for an answer).
    fn answer(
        &mut self,
        i: usize,
        rendered: Result<u16, Refusal>,
        body: &[u8],
        host: &mut impl Host,
    ) {
        if let Some(request) = self.members.get_mut(i).and_then(Option::take) {
            host.answer(request, answer_of(rendered, body));
        }
    }

    /// Answers every order still waiting with `refusal`.
    fn refuse_rest(&mut self, refusal: Refusal, host: &mut impl Host) {
        for i in 0..self.len() {
            self.answer(i, Err(refusal), &[], host);
        }
    }

    /// The answer to the whole batch: one row per order, each naming its
    /// position.
    fn answer_rows(
        &mut self,
        rows: Rows<'_>,
        hints: &mut Learned,
        body: &mut Vec<u8>,
        host: &mut impl Host,
    ) {
        for row in rows.iter() {
            let mut columns = row.columns();
            let position = columns.next_as::<i32>();
            let Some(i) = position.and_then(|p| usize::try_from(p).ok()?.checked_sub(1)) else {
                continue;
            };
            if i >= self.len() {
                continue;
            }
            body.clear();
            let rendered = place::answer(&mut columns, body);
            hints.learn(self.product_ids[i], &rendered);
            self.answer(i, rendered, body, host);
        }
        // Every order has its row; should one be missing, its client must
        // still hear something.
        if self.members.iter().any(Option::is_some) {
            self.refuse_rest(malformed(Malformed), host);
        }
    }
}

/// The fixed set of order batches, and which ones take this turn's orders.
pub struct Batcher {
    batches: Vec<Batch>,
    /// The open batch of each lane.
    open: [Option<usize>; 2],
    /// Batches of each lane that may be at the database at once: the next
    /// one waits, gathering orders, until one is back.
    in_flight_max: [usize; 2],
    learned: Learned,
    /// Orders per batch sent, for the metrics.
    sizes: BatchSizes,
}

impl Batcher {
    /// `place_in_flight`: place-lane batches at the database at once;
    /// `connections`: the database connections (sold-out batches in flight).
    pub fn new(place_in_flight: usize, connections: usize) -> Batcher {
        let limit = |n: usize| n.clamp(1, ORDER_BATCHES_IN_FLIGHT_MAX);
        Batcher {
            batches: (0..ORDER_BATCHES_MAX).map(|_| Batch::new()).collect(),
            open: [None; 2],
            in_flight_max: [limit(place_in_flight), limit(connections)],
            learned: Learned::default(),
            sizes: BatchSizes::default(),
        }
    }

    pub fn sizes(&self) -> &BatchSizes {
        &self.sizes
    }

    /// Orders refused with 409 so far, by reason.
    pub fn refusals(&self) -> &OrderRefusals {
        &self.learned.refusals
    }

    /// Adds a validated order of a known product, for `request`.
    pub fn add(&mut self, request: RequestId, order: &OrderRequest<'_>) -> Result<(), Refusal> {
        let ProductRef::Id(product_id) = order.product_id else {
            unreachable!("the router answers unknown products itself")
        };
        let lane = match self.learned.sold_out.contains(product_id) {
            true => Lane::SoldOut,
            false => Lane::Place,
        };
        let index = match self.open[lane.index()] {
            Some(open) if !self.batches[open].is_full() => open,
            _ => self.open_another(lane)?,
        };
        self.batches[index].push(request, order);
        Ok(())
    }

    /// The lane's open batch is full (or there is none): a free batch opens.
    fn open_another(&mut self, lane: Lane) -> Result<usize, Refusal> {
        if let Some(full) = self.open[lane.index()].take() {
            self.batches[full].state = State::Full;
        }
        let free = self.batches.iter().position(|b| b.state == State::Free);
        let index = free.ok_or(OVERLOADED)?;
        let batch = &mut self.batches[index];
        batch.state = State::Open;
        batch.lane = lane;
        self.open[lane.index()] = Some(index);
        Ok(index)
    }

    /// End of the turn: failed batches go again order by order; then, lane
    /// by lane, while fewer than the lane's `in_flight_max` batches are at
    /// the database, full batches go, then the open one. What cannot go
    /// keeps gathering orders (group commit): at light load an order goes at
    /// once, under load the orders that arrive while the database works
    /// travel together. The lanes do not wait for each other.
    pub fn send(&mut self, pool: &mut Pool, host: &mut impl Host, now: Instant) {
        let mut in_flight = [0; 2];
        for index in 0..self.batches.len() {
            let batch = &self.batches[index];
            match batch.state {
                State::Failed => self.retry_one_by_one(index, pool, host, now),
                State::Sent { .. } | State::Retried { .. } => in_flight[batch.lane.index()] += 1,
                _ => {}
            }
        }
        for lane in [Lane::SoldOut, Lane::Place] {
            self.send_lane(lane, in_flight[lane.index()], pool, host, now);
        }
    }

    fn send_lane(
        &mut self,
        lane: Lane,
        mut in_flight: usize,
        pool: &mut Pool,
        host: &mut impl Host,
        now: Instant,
    ) {
        for index in 0..self.batches.len() {
            if in_flight >= self.in_flight_max[lane.index()] {
                return;
            }
            let batch = &self.batches[index];
            if batch.state == State::Full && batch.lane == lane {
                self.submit(index, pool, host, now);
                in_flight += 1;
            }
        }
        let open = &mut self.open[lane.index()];
        if let Some(index) = open.filter(|_| in_flight < self.in_flight_max[lane.index()]) {
            *open = None;
            self.submit(index, pool, host, now);
        }
    }

    fn submit(&mut self, index: usize, pool: &mut Pool, host: &mut impl Host, now: Instant) {
        let batch = &mut self.batches[index];
        self.sizes.observe(&BATCH_SIZE_BUCKETS, batch.len() as u64);
        if let Err(refusal) = batch.submit(tag_of(index, None), pool, now) {
            batch.refuse_rest(refusal, host);
            batch.clear();
        }
    }

    /// Sends each order of a failed batch alone, if its client still waits.
    fn retry_one_by_one(
        &mut self,
        index: usize,
        pool: &mut Pool,
        host: &mut impl Host,
        now: Instant,
    ) {
        let batch = &mut self.batches[index];
        let mut outstanding = 0;
        for i in 0..batch.len() {
            let Some(request) = batch.members[i] else {
                continue;
            };
            if !host.is_waiting(request) {
                batch.members[i] = None; // the client has gone
                continue;
            }
            match batch.submit_one(i, tag_of(index, Some(i)), pool, now) {
                Ok(()) => outstanding += 1,
                Err(refused) => batch.answer(i, Err(refusal_for(refused)), &[], host),
            }
        }
        batch.state = State::Retried { outstanding };
        if outstanding == 0 {
            batch.clear();
        }
    }

    /// A reply for a batch, or for one order of a failed batch.
    pub fn on_reply(
        &mut self,
        tag: u64,
        reply: Reply<'_>,
        body: &mut Vec<u8>,
        host: &mut impl Host,
    ) {
        let (index, position) = untag(tag);
        let Some(batch) = self.batches.get_mut(index) else {
            return;
        };
        let hints = &mut self.learned;
        match (batch.state, position) {
            (State::Sent { alone: true }, None) => {
                body.clear();
                let rendered = answer_one(reply, body);
                hints.learn(batch.product_ids[0], &rendered);
                batch.answer(0, rendered, body, host);
                batch.clear();
            }
            (State::Sent { alone: false }, None) => match reply {
                Reply::Rows(rows) => {
                    batch.answer_rows(rows, hints, body, host);
                    batch.clear();
                }
                Reply::Failed(error) if error.is_timeout() => {
                    // Each order alone would wait out the same deadline in
                    // turn: refuse them all now (nothing was committed).
                    batch.refuse_rest(ORDER_TIMED_OUT, host);
                    batch.clear();
                }
                Reply::Failed(error) => {
                    log::database_error(
                        "order_batch_failed",
                        &error,
                        &[
                            ("orders", Value::Int(batch.len() as i64)),
                            ("then", Value::Str("retrying its orders one by one")),
                        ],
                    );
                    batch.state = State::Failed;
                }
                Reply::Unavailable => {
                    batch.refuse_rest(ORDER_OUTCOME_UNKNOWN, host);
                    batch.clear();
                }
            },
            (State::Retried { outstanding }, Some(i)) if i < batch.len() => {
                body.clear();
                let rendered = answer_one(reply, body);
                hints.learn(batch.product_ids[i], &rendered);
                batch.answer(i, rendered, body, host);
                batch.state = State::Retried {
                    outstanding: outstanding - 1,
                };
                if outstanding == 1 {
                    batch.clear();
                }
            }
            _ => debug_assert!(
                false,
                "a reply for batch {index} in state {:?}",
                batch.state
            ),
        }
    }

    /// Answers every order that never reached the database.
    pub fn refuse_unsent(&mut self, host: &mut impl Host) {
        for batch in &mut self.batches {
            if matches!(batch.state, State::Open | State::Full | State::Failed) {
                batch.refuse_rest(SHUTTING_DOWN, host);
                batch.clear();
            }
        }
        self.open = [None; 2];
    }
}

/// The answer to an order sent alone (`place_order`), rendered into `body`.
fn answer_one(reply: Reply<'_>, body: &mut Vec<u8>) -> Result<u16, Refusal> {
    match reply {
        Reply::Rows(rows) => match rows.first() {
            Some(row) => place::answer(&mut row.columns(), body),
            None => Err(malformed(Malformed)),
        },
        Reply::Failed(error) if error.is_timeout() => Err(ORDER_TIMED_OUT),
        Reply::Failed(error) => {
            log_failed_order(&error);
            Err(DATABASE_ERROR)
        }
        Reply::Unavailable => Err(ORDER_OUTCOME_UNKNOWN),
    }
}

#[cold]
fn log_failed_order(error: &crate::pg::DbError<'_>) {
    log::database_error("order_failed", error, &[]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sold_out_hints_follow_the_answers() {
        let mut hints = SoldOutHints {
            products: [0; SOLD_OUT_HINTS],
        };
        let refused = Err(place::INSUFFICIENT_STOCK_ANSWER);
        hints.learn(4, &Ok(200)); // a replay says nothing of the stock
        assert!(!hints.contains(4));
        hints.learn(4, &refused);
        assert!(hints.contains(4) && !hints.contains(5));
        hints.learn(4, &Err(crate::api::PRODUCT_NOT_FOUND));
        assert!(
            hints.contains(4),
            "only a refusal for stock or a creation changes it"
        );
        hints.learn(4, &Ok(201));
        assert!(!hints.contains(4), "a created order: stock was there");
        // Two products on one slot: the later evicts the earlier (a hint).
        let other = 4 + SOLD_OUT_HINTS as i32;
        hints.learn(4, &refused);
        hints.learn(other, &refused);
        assert!(hints.contains(other) && !hints.contains(4));
        hints.learn(4, &Ok(201));
        assert!(
            hints.contains(other),
            "a creation clears only its own product"
        );
    }

    #[test]
    fn tags_name_the_batch_and_the_position() {
        for (batch, position) in [
            (0, None),
            (0, Some(0)),
            (ORDER_BATCHES_MAX - 1, Some(PG_ORDER_BATCH_MAX - 1)),
            (3, None),
        ] {
            let tag = tag_of(batch, position);
            assert!(owns(tag));
            assert_eq!(untag(tag), (batch, position));
        }
        assert!(!owns(0) && !owns(u64::from(u32::MAX)));
    }
}
