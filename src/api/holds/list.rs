//! `GET /holds?customer_id=X`: a customer's last 50 holds, most recent
//! first (`customer_holds`), each as `GET /holds/{id}` shows it; a past-due
//! hold reads `EXPIRED` (the list changes nothing). With a session, only
//! the session's customer's (`act_as`: 401, 403).

use crate::api::holds::{render_hold, HoldRow};
use crate::api::render::{self, Malformed};
use crate::api::routes::Query;
use crate::api::statements::id_of;
use crate::api::validate::{
    customer_id_query_value, query_params, Invalid, MSG_CUSTOMER_QUERY_DUPLICATE,
    MSG_CUSTOMER_REQUIRED,
};
use crate::api::{malformed, Db, Refusal};
use crate::pg::{columns, oid, Param, Refused, Rows, Statement, StatementId};

/// The customer id as asked, then a hold (NULL when there is none: an
/// empty list still has one row).
const NAMES: [&str; 1 + HoldRow::COLUMN_NAMES.len()] =
    columns::concat(&["asked"], HoldRow::COLUMN_NAMES);
const TYPES: [u32; 1 + HoldRow::COLUMN_TYPES.len()] =
    columns::concat(&[oid::TEXT], HoldRow::COLUMN_TYPES);

pub const LIST_CUSTOMER_HOLDS: Statement = Statement {
    name: "list_customer_holds",
    sql: "SELECT $1::text AS asked, h.* FROM (SELECT) one \
          LEFT JOIN LATERAL customer_holds($1) h ON true ORDER BY h.created_at DESC",
    param_types: &[oid::TEXT],
    column_names: &NAMES,
    column_types: &TYPES,
    writes: false,
    slow: false,
};
const LIST_CUSTOMER_HOLDS_ID: StatementId = id_of(&LIST_CUSTOMER_HOLDS);

/// As a session's customer (`$2` the token).
pub const LIST_CUSTOMER_HOLDS_AS: Statement = Statement {
    name: "list_customer_holds_as",
    sql: "SELECT $1::text AS asked, h.* FROM (SELECT) one \
          LEFT JOIN LATERAL customer_holds(act_as($2, $1)) h ON true ORDER BY h.created_at DESC",
    param_types: &[oid::TEXT, oid::TEXT],
    column_names: &NAMES,
    column_types: &TYPES,
    writes: false,
    slow: false,
};
const LIST_CUSTOMER_HOLDS_AS_ID: StatementId = id_of(&LIST_CUSTOMER_HOLDS_AS);

/// The query string: `customer_id` (required, once; other parameters are
/// ignored), decoded into `scratch`.
pub fn parse<'s>(query: &[u8], scratch: &'s mut String) -> Result<(Query, &'s str), Refusal> {
    let mut customer = None;
    for (name, value) in query_params(query) {
        if name == b"customer_id" && customer.replace(value).is_some() {
            return Err(Invalid(MSG_CUSTOMER_QUERY_DUPLICATE).refusal());
        }
    }
    let customer = customer.ok_or(Invalid(MSG_CUSTOMER_REQUIRED).refusal())?;
    let customer_id = customer_id_query_value(customer, scratch).map_err(Invalid::refusal)?;
    Ok((Query::ListCustomerHolds, customer_id))
}

pub fn submit(db: &mut Db<'_>, customer_id: &str, session: Option<&str>) -> Result<(), Refused> {
    match session {
        None => db.submit(LIST_CUSTOMER_HOLDS_ID, &[Param::Text(customer_id)]),
        Some(token) => db.submit(
            LIST_CUSTOMER_HOLDS_AS_ID,
            &[Param::Text(customer_id), Param::Text(token)],
        ),
    }
}

/// `{"customer_id":X,"holds":[hold, …]}`.
pub fn answer(rows: Rows<'_>, body: &mut Vec<u8>) -> Result<u16, Refusal> {
    let first = rows.first().ok_or(Malformed).map_err(malformed)?;
    let asked = first.columns().next_as::<&str>();
    let asked = asked.ok_or(Malformed).map_err(malformed)?;
    render::text(body, b"{\"customer_id\":", asked);
    body.extend_from_slice(b",\"holds\":[");
    let mut separator = false;
    for row in rows.iter() {
        let mut columns = row.columns();
        columns.next_as::<&str>();
        let Some(hold) = HoldRow::from_columns(&mut columns) else {
            continue;
        };
        if std::mem::replace(&mut separator, true) {
            body.push(b',');
        }
        render_hold(body, &hold);
    }
    body.extend_from_slice(b"]}");
    Ok(200)
}
