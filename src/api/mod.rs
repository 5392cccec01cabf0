//! The API: routes and validation (`route`, `validate`), the statements the
//! database runs (`statements`), and rendering of their answers (`render`).
//! This file joins them: a command goes to the pool; its reply becomes an
//! HTTP response.

pub mod batch;
pub mod render;
pub mod route;
pub mod statements;
pub mod validate;

use std::time::Instant;

use crate::http::response::{write_error, write_json_response};
use crate::pg::{Columns, Param, Pool, Refused, Reply, Row};
use render::Malformed;
use route::{refuse, Command, Refusal, ORDER_NOT_FOUND, PRODUCT_NOT_FOUND};
use statements::*;

/// What a connection waits for from the database; decides how the answer
/// is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Awaiting {
    PlaceOrder,
    CancelOrder { order_id: [u8; 16] },
    GetProduct,
    ListOrders { product_id: i32 },
    GetOrder,
}

pub const DATABASE_UNAVAILABLE: Refusal = refuse(503, "database unavailable");
pub const DATABASE_ERROR: Refusal = refuse(503, "database error");
const OVERLOADED: Refusal = refuse(503, "server overloaded, retry later");
const INSUFFICIENT_STOCK: Refusal = refuse(409, "insufficient stock");
const ALREADY_CANCELLED: Refusal = refuse(409, "order already cancelled");

/// Sends `command` to the database. `Command::Health` never gets here.
pub fn submit(
    command: &Command<'_>,
    pool: &mut Pool,
    tag: u64,
    now: Instant,
) -> Result<Awaiting, Refusal> {
    let (awaiting, result) = match command {
        Command::PlaceOrder(_) => unreachable!("orders go to the database in batches (api::batch)"),
        Command::CancelOrder {
            order_id,
            product_id,
        } => {
            let product = product_id.map_or(Param::Null, Param::Int4);
            let params = [Param::Uuid(order_id), product];
            let awaiting = Awaiting::CancelOrder {
                order_id: *order_id,
            };
            (awaiting, pool.submit(tag, CANCEL_ORDER, &params, now))
        }
        Command::GetProduct(id) => (
            Awaiting::GetProduct,
            pool.submit(tag, GET_PRODUCT, &[Param::Int4(*id)], now),
        ),
        Command::ListOrders(id) => {
            let awaiting = Awaiting::ListOrders { product_id: *id };
            (
                awaiting,
                pool.submit(tag, LIST_ORDERS, &[Param::Int4(*id)], now),
            )
        }
        Command::GetOrder(id) => (
            Awaiting::GetOrder,
            pool.submit(tag, GET_ORDER, &[Param::Uuid(id)], now),
        ),
        Command::Health => unreachable!("health is answered without the database"),
    };
    result.map(|()| awaiting).map_err(refusal_for)
}

/// The HTTP answer to a request the pool refused.
pub fn refusal_for(refused: Refused) -> Refusal {
    match refused {
        Refused::Overloaded => OVERLOADED,
        Refused::Unavailable => DATABASE_UNAVAILABLE,
    }
}

/// Writes the complete HTTP response for a database reply into `out`;
/// `body` is scratch space reused across responses.
pub fn write_reply(
    awaiting: Awaiting,
    reply: Reply<'_>,
    keep_alive: bool,
    body: &mut Vec<u8>,
    out: &mut Vec<u8>,
) {
    body.clear();
    let answer = answer(awaiting, reply, body);
    write_answer(answer, keep_alive, body, out);
}

/// The position (1-based) of the order a `place_orders` row answers.
pub fn batch_position(row: &Row<'_>) -> Option<i32> {
    row.columns().next_as()
}

/// Writes the answer to one order of a `place_orders` batch.
pub fn write_batch_order_reply(
    row: Row<'_>,
    keep_alive: bool,
    body: &mut Vec<u8>,
    out: &mut Vec<u8>,
) {
    body.clear();
    let mut columns = row.columns();
    let answer = match columns.next_as::<i32>() {
        Some(_position) => place_order_answer(Some(&mut columns), body),
        None => Err(malformed(Malformed)),
    };
    write_answer(answer, keep_alive, body, out);
}

/// A success status with its body in `body`, or a refusal, as a response.
fn write_answer(answer: Result<u16, Refusal>, keep_alive: bool, body: &[u8], out: &mut Vec<u8>) {
    match answer {
        Ok(status) => write_json_response(out, status, body, keep_alive, None),
        Err(refusal) => write_refusal(out, refusal, keep_alive),
    }
}

pub fn write_refusal(out: &mut Vec<u8>, refusal: Refusal, keep_alive: bool) {
    write_error(
        out,
        refusal.status,
        refusal.message,
        keep_alive,
        refusal.allow,
    );
}

/// The status of a successful answer whose body is in `body`, or the
/// refusal to send instead.
fn answer(awaiting: Awaiting, reply: Reply<'_>, body: &mut Vec<u8>) -> Result<u16, Refusal> {
    let rows = match reply {
        Reply::Rows(rows) => rows,
        Reply::Unavailable => return Err(DATABASE_UNAVAILABLE),
        Reply::Failed(error) => {
            eprintln!(
                "database error for {awaiting:?}: {} ({} {})",
                error.message, error.severity, error.code
            );
            return Err(DATABASE_ERROR);
        }
    };
    let first = rows.first();
    match awaiting {
        Awaiting::PlaceOrder => place_order_answer(first.map(|r| r.columns()).as_mut(), body),
        Awaiting::CancelOrder { order_id } => {
            let row = first.as_ref().and_then(CancelRow::from_row);
            let row = row.ok_or(Malformed).map_err(malformed)?;
            match row.outcome {
                CANCEL_DONE => {
                    let restored = row.restored_quantity.ok_or(Malformed).map_err(malformed)?;
                    render::cancelled(body, &order_id, restored);
                    Ok(200)
                }
                CANCEL_ALREADY => Err(ALREADY_CANCELLED),
                CANCEL_NO_ORDER => Err(ORDER_NOT_FOUND),
                _ => Err(malformed(Malformed)),
            }
        }
        Awaiting::GetProduct => match first {
            Some(row) => {
                let product = ProductRow::from_row(&row)
                    .ok_or(Malformed)
                    .map_err(malformed)?;
                render::product(body, &product);
                Ok(200)
            }
            None => Err(PRODUCT_NOT_FOUND),
        },
        Awaiting::ListOrders { product_id } => match first {
            Some(_) => render::order_list(body, product_id, rows.iter())
                .map(|()| 200)
                .map_err(malformed),
            None => Err(PRODUCT_NOT_FOUND),
        },
        Awaiting::GetOrder => match first {
            Some(row) => {
                let order = OrderRow::from_row(&row)
                    .ok_or(Malformed)
                    .map_err(malformed)?;
                render::order(body, &order);
                Ok(200)
            }
            None => Err(ORDER_NOT_FOUND),
        },
    }
}

/// A `place_order` outcome: the outcome code, then the order's columns.
fn place_order_answer(
    columns: Option<&mut Columns<'_>>,
    body: &mut Vec<u8>,
) -> Result<u16, Refusal> {
    let columns = columns.ok_or(Malformed).map_err(malformed)?;
    match columns
        .next_as::<i32>()
        .ok_or(Malformed)
        .map_err(malformed)?
    {
        code @ (ORDER_CREATED | ORDER_REPLAYED) => {
            let order = OrderRow::from_columns(columns)
                .ok_or(Malformed)
                .map_err(malformed)?;
            render::order(body, &order);
            Ok(if code == ORDER_CREATED { 201 } else { 200 })
        }
        ORDER_NO_PRODUCT => Err(PRODUCT_NOT_FOUND),
        ORDER_INSUFFICIENT_STOCK => Err(INSUFFICIENT_STOCK),
        _ => Err(malformed(Malformed)),
    }
}

/// The database answered with a shape the statements exclude (a NULL where
/// the schema has NOT NULL, an unknown outcome code): log it, answer 503.
#[cold]
fn malformed(_: Malformed) -> Refusal {
    eprintln!("database answer of an unexpected shape (NULL or unknown outcome code)");
    DATABASE_ERROR
}
