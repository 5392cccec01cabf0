//! The statements the API prepares on every database connection, and the
//! outcome codes of the SQL functions in `sql/init.sql`. Parameter and
//! column types here are checked against the database at connect time.

use crate::config::ORDERS_LISTED_MAX;
use crate::const_text::Part;
use crate::pg::{oid, Statement, StatementId};

pub const PLACE_ORDER: StatementId = 0;
pub const CANCEL_ORDER: StatementId = 1;
pub const GET_PRODUCT: StatementId = 2;
pub const LIST_ORDERS: StatementId = 3;
pub const GET_ORDER: StatementId = 4;
pub const PLACE_ORDERS: StatementId = 5;

/// Columns of an order row as `place_order` and `get_order` return them:
/// an outcome code, then the order.
const ORDER_COLUMNS: &[u32] = &[
    oid::INT4,        // outcome
    oid::UUID,        // id
    oid::UUID,        // idempotency_key
    oid::INT4,        // product_id
    oid::TEXT,        // customer_id
    oid::INT4,        // quantity
    oid::INT4,        // unit_price
    oid::INT4,        // total_price
    oid::TEXT,        // status
    oid::TIMESTAMPTZ, // created_at
];

/// `place_orders`: the position of the order in the batch (1-based), then
/// the columns of `place_order`.
const BATCH_ORDER_COLUMNS: &[u32] = &[
    oid::INT4, // idx
    oid::INT4, // outcome
    oid::UUID,
    oid::UUID,
    oid::INT4,
    oid::TEXT,
    oid::INT4,
    oid::INT4,
    oid::INT4,
    oid::TEXT,
    oid::TIMESTAMPTZ,
];

/// Column of the outcome code in rows of `place_order` / `get_order`; the
/// order's columns follow it. In `place_orders` rows everything is one
/// column further right.
pub const ORDER_ROW_FIRST_COLUMN: usize = 0;
pub const BATCH_ROW_FIRST_COLUMN: usize = 1;

pub static STATEMENTS: &[Statement] = &[
    Statement {
        name: "place_order",
        sql: "SELECT * FROM place_order($1, $2, $3, $4)",
        param_types: &[oid::INT4, oid::UUID, oid::TEXT, oid::INT4],
        column_types: ORDER_COLUMNS,
    },
    Statement {
        name: "cancel_order",
        sql: "SELECT * FROM cancel_order($1, $2)",
        param_types: &[oid::UUID, oid::INT4],
        column_types: &[oid::INT4, oid::INT4],
    },
    Statement {
        name: "get_product",
        sql: "SELECT id, name, price, initial_stock, current_stock FROM products WHERE id = $1",
        param_types: &[oid::INT4],
        column_types: &[oid::INT4, oid::TEXT, oid::INT4, oid::INT4, oid::INT4],
    },
    Statement {
        // No row: no such product. One row with a NULL order: no orders yet.
        name: "list_orders",
        sql: crate::const_text!(
            Part::Str(
                "SELECT o.id, o.customer_id, o.quantity, o.total_price, o.status, o.created_at \
                 FROM products p LEFT JOIN LATERAL \
                   (SELECT * FROM orders WHERE product_id = p.id ORDER BY seq DESC LIMIT "
            ),
            Part::Int(ORDERS_LISTED_MAX),
            Part::Str(") o ON true WHERE p.id = $1 ORDER BY o.seq DESC"),
        ),
        param_types: &[oid::INT4],
        column_types: &[
            oid::UUID,
            oid::TEXT,
            oid::INT4,
            oid::INT4,
            oid::TEXT,
            oid::TIMESTAMPTZ,
        ],
    },
    Statement {
        name: "get_order",
        sql: "SELECT 0, id, idempotency_key, product_id, customer_id, quantity, unit_price, \
              total_price, status, created_at FROM orders WHERE id = $1",
        param_types: &[oid::UUID],
        column_types: ORDER_COLUMNS,
    },
    Statement {
        name: "place_orders",
        sql: "SELECT * FROM place_orders($1, $2, $3, $4)",
        param_types: &[
            oid::INT4_ARRAY,
            oid::UUID_ARRAY,
            oid::TEXT_ARRAY,
            oid::INT4_ARRAY,
        ],
        column_types: BATCH_ORDER_COLUMNS,
    },
];

/// `place_order` outcomes.
pub const ORDER_CREATED: i32 = 0;
pub const ORDER_REPLAYED: i32 = 1;
pub const ORDER_NO_PRODUCT: i32 = 2;
pub const ORDER_INSUFFICIENT_STOCK: i32 = 3;

/// `cancel_order` outcomes.
pub const CANCEL_DONE: i32 = 0;
pub const CANCEL_ALREADY: i32 = 1;
pub const CANCEL_NO_ORDER: i32 = 2;
