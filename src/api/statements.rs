//! Every statement the API prepares on each database connection, in the
//! order that gives each its id. Each is declared in the room that uses it,
//! next to its result row; a room names its statement's id with
//! [`id_of`], which reads it off this table when the crate compiles, so ids
//! and table cannot disagree (and a statement left out of the table does
//! not compile).

use crate::api::holds::{consume, read, sweep};
use crate::api::orders::{batch, cancel, get, list, place};
use crate::api::{accounts, admin, holds, payments, products, sales};
use crate::pg::{Statement, StatementId};

pub const STATEMENTS: &[Statement] = &[
    place::PLACE_ORDER,
    cancel::CANCEL_ORDER,
    products::GET_PRODUCT,
    list::LIST_ORDERS,
    get::GET_ORDER,
    batch::PLACE_ORDERS,
    list::LIST_CUSTOMER_ORDERS,
    sales::LIST_SALES,
    admin::ADMIN_CREATE_PRODUCT,
    admin::ADMIN_UPDATE_PRODUCT,
    admin::ADMIN_RESTOCK,
    holds::place::PLACE_HOLD,
    read::GET_HOLD,
    read::RELEASE_HOLD,
    consume::CONSUME_HOLD,
    sweep::EXPIRE_HOLDS,
    payments::PAYMENT_WEBHOOK,
    place::PLACE_ORDER_AS,
    holds::place::PLACE_HOLD_AS,
    consume::CONSUME_HOLD_AS,
    cancel::CANCEL_ORDER_AS,
    read::RELEASE_HOLD_AS,
    list::LIST_CUSTOMER_ORDERS_AS,
    accounts::CREATE_ACCOUNT,
    accounts::OPEN_SESSION,
    accounts::GET_SESSION,
    accounts::END_SESSION,
    holds::list::LIST_CUSTOMER_HOLDS,
    holds::list::LIST_CUSTOMER_HOLDS_AS,
];

/// The id of `statement`: its position in [`STATEMENTS`], found by name.
pub const fn id_of(statement: &Statement) -> StatementId {
    let mut id = 0;
    while id < STATEMENTS.len() {
        if same_text(STATEMENTS[id].name, statement.name) {
            return id;
        }
        id += 1;
    }
    panic!("a statement is missing from api::statements::STATEMENTS");
}

const fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_the_table_agree() {
        for (position, statement) in STATEMENTS.iter().enumerate() {
            assert_eq!(id_of(statement), position, "{}", statement.name);
            let same_name = STATEMENTS.iter().filter(|s| s.name == statement.name);
            assert_eq!(same_name.count(), 1, "{} is declared twice", statement.name);
        }
    }

    #[test]
    fn every_statement_names_and_types_its_columns_alike() {
        for statement in STATEMENTS {
            assert_eq!(
                statement.column_names.len(),
                statement.column_types.len(),
                "{}",
                statement.name
            );
            assert!(!statement.column_names.is_empty(), "{}", statement.name);
        }
    }
}
