//! The statements the API prepares on every database connection, and the
//! outcome codes of the SQL functions in `sql/init.sql`. Parameter and
//! column types here are checked against the database at connect time.

use crate::config::ORDERS_LISTED_MAX;
use crate::const_text::Part;
use crate::pg::{columns, oid, Statement, StatementId, Timestamp};

pub const PLACE_ORDER: StatementId = 0;
pub const CANCEL_ORDER: StatementId = 1;
pub const GET_PRODUCT: StatementId = 2;
pub const LIST_ORDERS: StatementId = 3;
pub const GET_ORDER: StatementId = 4;
pub const PLACE_ORDERS: StatementId = 5;

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

crate::result_row! {
    /// A product, as `get_product` returns it.
    pub struct ProductRow<'a> {
        id: i32,
        name: &'a str,
        price: i32,
        initial_stock: i32,
        current_stock: i32,
    }
}

crate::result_row! {
    /// One entry of a product's order list. The statement answers a product
    /// without orders with one row of NULLs (and an unknown product with no
    /// row), so only rows with an id are entries.
    pub struct ListedOrderRow<'a> {
        id: [u8; 16],
        customer_id: &'a str,
        quantity: i32,
        total_price: i32,
        status: &'a str,
        created_at: Timestamp,
    }
}

crate::result_row! {
    /// What `cancel_order` did.
    pub struct CancelRow<'a> {
        outcome: i32,
        restored_quantity: Option<i32>,
    }
}

/// `place_order`: an outcome code, then the order's columns (NULL unless
/// the order was created or replayed).
const PLACED_NAMES: [&str; 1 + OrderRow::COLUMN_NAMES.len()] =
    columns::concat(&["outcome"], OrderRow::COLUMN_NAMES);
const PLACED_TYPES: [u32; 1 + OrderRow::COLUMN_TYPES.len()] =
    columns::concat(&[oid::INT4], OrderRow::COLUMN_TYPES);
/// `place_orders`: the order's position in the batch (1-based), then the
/// columns of `place_order`.
const BATCH_NAMES: [&str; 1 + PLACED_NAMES.len()] = columns::concat(&["idx"], &PLACED_NAMES);
const BATCH_TYPES: [u32; 1 + PLACED_TYPES.len()] = columns::concat(&[oid::INT4], &PLACED_TYPES);

pub static STATEMENTS: &[Statement] = &[
    Statement {
        name: "place_order",
        sql: "SELECT * FROM place_order($1, $2, $3, $4)",
        param_types: &[oid::INT4, oid::UUID, oid::TEXT, oid::INT4],
        column_names: &PLACED_NAMES,
        column_types: &PLACED_TYPES,
    },
    Statement {
        name: "cancel_order",
        sql: "SELECT * FROM cancel_order($1, $2)",
        param_types: &[oid::UUID, oid::INT4],
        column_names: CancelRow::COLUMN_NAMES,
        column_types: CancelRow::COLUMN_TYPES,
    },
    Statement {
        name: "get_product",
        sql: "SELECT id, name, price, initial_stock, current_stock FROM products WHERE id = $1",
        param_types: &[oid::INT4],
        column_names: ProductRow::COLUMN_NAMES,
        column_types: ProductRow::COLUMN_TYPES,
    },
    Statement {
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
        column_names: ListedOrderRow::COLUMN_NAMES,
        column_types: ListedOrderRow::COLUMN_TYPES,
    },
    Statement {
        name: "get_order",
        sql: "SELECT id, idempotency_key, product_id, customer_id, quantity, unit_price, \
              total_price, status, created_at FROM orders WHERE id = $1",
        param_types: &[oid::UUID],
        column_names: OrderRow::COLUMN_NAMES,
        column_types: OrderRow::COLUMN_TYPES,
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
        column_names: &BATCH_NAMES,
        column_types: &BATCH_TYPES,
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
