//! `/admin/...` (platform.md §1): creating a product with its sale,
//! changing its window, limit, price or name, restocking it. Only when
//! `ADMIN_TOKEN` is set (else every admin path is 404), and only for a
//! request with `Authorization: Bearer <token>` (else 401, before the body
//! is judged).
//!
//! Bodies are judged strictly: a member the endpoint does not take is a 422
//! (a typo such as `end_at` must not pass silently), fields in a fixed
//! order. The window is judged whole by the database too, against the
//! stored bound a change did not name, under the product's row lock.

use crate::api::products::{write_product, ProductRow};
use crate::api::render::Malformed;
use crate::api::routes::Query;
use crate::api::statements::id_of;
use crate::api::validate::{decimal_product_ref, time_text, Invalid, Member, ProductRef};
use crate::api::{malformed, refuse_for, Db, Refusal, PRODUCT_NOT_FOUND};
use crate::config::PRODUCT_NAME_CHARS_MAX;
use crate::const_text::Part;
use crate::json::{self, Value};
use crate::log;
use crate::pg::{columns, oid, Param, Refused, Rows, Statement, StatementId};

pub const UNAUTHORIZED: Refusal = refuse_for(
    401,
    "administration needs Authorization: Bearer <ADMIN_TOKEN>",
    "unauthorized",
);
const PRODUCT_EXISTS: Refusal = refuse_for(409, "a product with this id exists", "product_exists");
const NO_ID_LEFT: Refusal = refuse_for(
    409,
    "no product id is left above the largest; give an id",
    "no_product_id_left",
);

const MSG_UNKNOWN_CREATE_FIELD: &str = "unknown field: a new product takes id, name, price, \
     stock, starts_at, ends_at and per_customer_limit";
const MSG_UNKNOWN_CHANGE_FIELD: &str = "unknown field: a change takes name, price, starts_at, \
     ends_at and per_customer_limit";
const MSG_UNKNOWN_RESTOCK_FIELD: &str = "unknown field: a restock takes quantity";
const MSG_EMPTY_CHANGE: &str =
    "nothing to change: name one of name, price, starts_at, ends_at, per_customer_limit";
const MSG_ID: &str = "id must be an integer from 1 to 2147483647";
const MSG_NAME: &str = crate::const_text!(
    Part::Str("name must be a string of 1 to "),
    Part::Int(PRODUCT_NAME_CHARS_MAX as i64),
    Part::Str(" characters, without control characters"),
);
const MSG_NAME_REQUIRED: &str = "name is required";
const MSG_PRICE: &str = "price must be an integer from 0 to 2147483647 (cents)";
const MSG_PRICE_REQUIRED: &str = "price is required";
const MSG_STOCK: &str = "stock must be an integer from 0 to 2147483647";
const MSG_STOCK_REQUIRED: &str = "stock is required";
const MSG_STARTS_AT: &str =
    "starts_at must be an RFC 3339 time with an offset (2026-12-01T10:00:00Z) or null";
const MSG_ENDS_AT: &str =
    "ends_at must be an RFC 3339 time with an offset (2026-12-01T10:00:00Z) or null";
const MSG_LIMIT: &str = "per_customer_limit must be an integer from 1 to 2147483647, or null";
const MSG_QUANTITY: &str = "quantity must be an integer from 1 to 2147483647";
const MSG_QUANTITY_REQUIRED: &str = "quantity is required";
const MSG_WINDOW: &str = "ends_at must be after starts_at";
const MSG_STOCK_OVERFLOW: &str = "the restock would take the stock past 2147483647";
const MSG_DUPLICATE: &str = "a field appears twice";

/// Whether `authorization` carries the token: `Bearer <token>`, the scheme
/// in any case, compared in constant time.
pub fn authorize(token: &[u8], authorization: Option<&[u8]>) -> Result<(), Refusal> {
    const SCHEME: &[u8] = b"bearer ";
    let presented = authorization
        .filter(|value| value.len() > SCHEME.len())
        .filter(|value| value[..SCHEME.len()].eq_ignore_ascii_case(SCHEME))
        .map(|value| value[SCHEME.len()..].trim_ascii());
    match presented {
        Some(presented) if same_secret(presented, token) => Ok(()),
        _ => Err(UNAUTHORIZED),
    }
}

/// Equal, in a time that depends on the lengths only, never on where the
/// first differing byte is.
fn same_secret(presented: &[u8], token: &[u8]) -> bool {
    let mut difference = presented.len() ^ token.len();
    for i in 0..presented.len().max(token.len()) {
        let a = presented.get(i).copied().unwrap_or(0);
        let b = token.get(i).copied().unwrap_or(0);
        difference |= usize::from(a ^ b);
    }
    std::hint::black_box(difference) == 0
}

/// A new product, validated (its name is carried beside it as text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewProduct {
    pub id: Option<i32>,
    pub price: i32,
    pub stock: i32,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub per_customer_limit: Option<i32>,
}

/// What a `PATCH` changes: `fields` says which members it named (the bits
/// of `admin_update_product`), a named bound may be `None` (cleared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProductChange {
    pub id: i32,
    pub fields: i32,
    pub price: i32,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub per_customer_limit: Option<i32>,
}

const FIELD_NAME: i32 = 1;
const FIELD_PRICE: i32 = 2;
const FIELD_STARTS_AT: i32 = 4;
const FIELD_ENDS_AT: i32 = 8;
const FIELD_LIMIT: i32 = 16;

/// The members of an admin body, each recorded where it is taken.
#[derive(Default)]
struct Members<'i> {
    id: Member<'i>,
    name: Member<'i>,
    price: Member<'i>,
    stock: Member<'i>,
    starts_at: Member<'i>,
    ends_at: Member<'i>,
    per_customer_limit: Member<'i>,
    quantity: Member<'i>,
}

/// Reads a body taking the members `allowed` names; any other is a 422
/// with `unknown`.
fn members<'i>(
    body: &'i [u8],
    allowed: &[&str],
    unknown: &'static str,
) -> Result<Members<'i>, Invalid> {
    let mut members = Members::default();
    json::parse_object(body, |key, value| {
        let slot = match () {
            _ if key == "id" => &mut members.id,
            _ if key == "name" => &mut members.name,
            _ if key == "price" => &mut members.price,
            _ if key == "stock" => &mut members.stock,
            _ if key == "starts_at" => &mut members.starts_at,
            _ if key == "ends_at" => &mut members.ends_at,
            _ if key == "per_customer_limit" => &mut members.per_customer_limit,
            _ if key == "quantity" => &mut members.quantity,
            _ => return Err(unknown),
        };
        if !allowed.iter().any(|name| key == *name) {
            return Err(unknown);
        }
        slot.record(value);
        Ok(())
    })
    .map_err(|error| Invalid(error.message))?;
    Ok(members)
}

/// An optional member: `None` absent, else its value.
fn named<'i>(member: &Member<'i>) -> Result<Option<Value<'i>>, Invalid> {
    member.optional(MSG_DUPLICATE)
}

fn int_in(value: Value<'_>, min: i64, message: &'static str) -> Result<i32, Invalid> {
    match value {
        Value::Int(n) if n >= min => i32::try_from(n).map_err(|_| Invalid(message)),
        _ => Err(Invalid(message)),
    }
}

fn name_value<'s>(value: Value<'_>, scratch: &'s mut String) -> Result<&'s str, Invalid> {
    let Value::Str(text) = value else {
        return Err(Invalid(MSG_NAME));
    };
    let mut chars = 0;
    for c in text.chars() {
        if c.is_control() {
            return Err(Invalid(MSG_NAME));
        }
        chars += 1;
    }
    if !(1..=PRODUCT_NAME_CHARS_MAX).contains(&chars) {
        return Err(Invalid(MSG_NAME));
    }
    Ok(text.decode_into(scratch))
}

/// A time or `null`.
fn time_value(value: Value<'_>, message: &'static str) -> Result<Option<i64>, Invalid> {
    match value {
        Value::Null => Ok(None),
        Value::Str(text) => time_text(text).map(Some).ok_or(Invalid(message)),
        _ => Err(Invalid(message)),
    }
}

fn limit_value(value: Value<'_>) -> Result<Option<i32>, Invalid> {
    match value {
        Value::Null => Ok(None),
        value => int_in(value, 1, MSG_LIMIT).map(Some),
    }
}

fn check_window(starts_at: Option<i64>, ends_at: Option<i64>) -> Result<(), Invalid> {
    match (starts_at, ends_at) {
        (Some(starts), Some(ends)) if ends <= starts => Err(Invalid(MSG_WINDOW)),
        _ => Ok(()),
    }
}

/// `POST /admin/products`.
pub fn parse_create<'s>(body: &[u8], scratch: &'s mut String) -> Result<(Query, &'s str), Refusal> {
    create(body, scratch).map_err(Invalid::refusal)
}

fn create<'s>(body: &[u8], scratch: &'s mut String) -> Result<(Query, &'s str), Invalid> {
    let m = members(
        body,
        &[
            "id",
            "name",
            "price",
            "stock",
            "starts_at",
            "ends_at",
            "per_customer_limit",
        ],
        MSG_UNKNOWN_CREATE_FIELD,
    )?;
    let id = named(&m.id)?.map(|v| int_in(v, 1, MSG_ID)).transpose()?;
    let name = named(&m.name)?.ok_or(Invalid(MSG_NAME_REQUIRED))?;
    let price = named(&m.price)?.ok_or(Invalid(MSG_PRICE_REQUIRED))?;
    let price = int_in(price, 0, MSG_PRICE)?;
    let stock = named(&m.stock)?.ok_or(Invalid(MSG_STOCK_REQUIRED))?;
    let stock = int_in(stock, 0, MSG_STOCK)?;
    let starts_at = named(&m.starts_at)?.map_or(Ok(None), |v| time_value(v, MSG_STARTS_AT))?;
    let ends_at = named(&m.ends_at)?.map_or(Ok(None), |v| time_value(v, MSG_ENDS_AT))?;
    let per_customer_limit = named(&m.per_customer_limit)?.map_or(Ok(None), limit_value)?;
    check_window(starts_at, ends_at)?;
    let name = name_value(name, scratch)?;
    let product = NewProduct {
        id,
        price,
        stock,
        starts_at,
        ends_at,
        per_customer_limit,
    };
    Ok((Query::AdminCreate(product), name))
}

/// The product id in an admin path: anything that is not a possible id is
/// a product that does not exist.
pub fn path_product(id: &[u8]) -> Result<i32, Refusal> {
    match decimal_product_ref(id) {
        Some(ProductRef::Id(id)) => Ok(id),
        _ => Err(PRODUCT_NOT_FOUND),
    }
}

/// `PATCH /admin/products/{id}`.
pub fn parse_change<'s>(
    id: i32,
    body: &[u8],
    scratch: &'s mut String,
) -> Result<(Query, &'s str), Refusal> {
    change(id, body, scratch).map_err(Invalid::refusal)
}

fn change<'s>(id: i32, body: &[u8], scratch: &'s mut String) -> Result<(Query, &'s str), Invalid> {
    let m = members(
        body,
        &[
            "name",
            "price",
            "starts_at",
            "ends_at",
            "per_customer_limit",
        ],
        MSG_UNKNOWN_CHANGE_FIELD,
    )?;
    let mut change = ProductChange {
        id,
        fields: 0,
        price: 0,
        starts_at: None,
        ends_at: None,
        per_customer_limit: None,
    };
    let name = named(&m.name)?;
    if let Some(price) = named(&m.price)? {
        change.price = int_in(price, 0, MSG_PRICE)?;
        change.fields |= FIELD_PRICE;
    }
    if let Some(starts_at) = named(&m.starts_at)? {
        change.starts_at = time_value(starts_at, MSG_STARTS_AT)?;
        change.fields |= FIELD_STARTS_AT;
    }
    if let Some(ends_at) = named(&m.ends_at)? {
        change.ends_at = time_value(ends_at, MSG_ENDS_AT)?;
        change.fields |= FIELD_ENDS_AT;
    }
    if let Some(limit) = named(&m.per_customer_limit)? {
        change.per_customer_limit = limit_value(limit)?;
        change.fields |= FIELD_LIMIT;
    }
    check_window(change.starts_at, change.ends_at)?;
    let name = match name {
        Some(name) => {
            change.fields |= FIELD_NAME;
            name_value(name, scratch)?
        }
        None if change.fields == 0 => return Err(Invalid(MSG_EMPTY_CHANGE)),
        None => "",
    };
    Ok((Query::AdminUpdate(change), name))
}

/// `POST /admin/products/{id}/restock`.
pub fn parse_restock(id: i32, body: &[u8]) -> Result<Query, Refusal> {
    let restock = || -> Result<Query, Invalid> {
        let m = members(body, &["quantity"], MSG_UNKNOWN_RESTOCK_FIELD)?;
        let quantity = named(&m.quantity)?.ok_or(Invalid(MSG_QUANTITY_REQUIRED))?;
        let quantity = int_in(quantity, 1, MSG_QUANTITY)?;
        Ok(Query::AdminRestock { id, quantity })
    };
    restock().map_err(Invalid::refusal)
}

/// Each admin function answers an outcome code, then the product.
const ANSWER_NAMES: [&str; 1 + ProductRow::COLUMN_NAMES.len()] =
    columns::concat(&["outcome"], ProductRow::COLUMN_NAMES);
const ANSWER_TYPES: [u32; 1 + ProductRow::COLUMN_TYPES.len()] =
    columns::concat(&[oid::INT4], ProductRow::COLUMN_TYPES);

/// An admin function's statement: it writes, and answers [`ANSWER_NAMES`].
const fn admin_statement(
    name: &'static str,
    sql: &'static str,
    param_types: &'static [u32],
) -> Statement {
    Statement {
        name,
        sql,
        param_types,
        column_names: &ANSWER_NAMES,
        column_types: &ANSWER_TYPES,
        writes: true,
        slow: false,
    }
}

/// id (NULL: the next), name, price, stock, starts_at, ends_at, limit.
pub const ADMIN_CREATE_PRODUCT: Statement = admin_statement(
    "admin_create_product",
    "SELECT * FROM admin_create_product($1, $2, $3, $4, $5, $6, $7)",
    &[
        oid::INT4,
        oid::TEXT,
        oid::INT4,
        oid::INT4,
        oid::TIMESTAMPTZ,
        oid::TIMESTAMPTZ,
        oid::INT4,
    ],
);
const ADMIN_CREATE_PRODUCT_ID: StatementId = id_of(&ADMIN_CREATE_PRODUCT);

/// id, the fields named (bits), then the values as for a creation.
pub const ADMIN_UPDATE_PRODUCT: Statement = admin_statement(
    "admin_update_product",
    "SELECT * FROM admin_update_product($1, $2, $3, $4, $5, $6, $7)",
    &[
        oid::INT4,
        oid::INT4,
        oid::TEXT,
        oid::INT4,
        oid::TIMESTAMPTZ,
        oid::TIMESTAMPTZ,
        oid::INT4,
    ],
);
const ADMIN_UPDATE_PRODUCT_ID: StatementId = id_of(&ADMIN_UPDATE_PRODUCT);

pub const ADMIN_RESTOCK: Statement = admin_statement(
    "admin_restock",
    "SELECT * FROM admin_restock($1, $2)",
    &[oid::INT4, oid::INT4],
);
const ADMIN_RESTOCK_ID: StatementId = id_of(&ADMIN_RESTOCK);

pub fn submit_create(db: &mut Db<'_>, product: &NewProduct, name: &str) -> Result<(), Refused> {
    db.submit(
        ADMIN_CREATE_PRODUCT_ID,
        &[
            Param::int4_or_null(product.id),
            Param::Text(name),
            Param::Int4(product.price),
            Param::Int4(product.stock),
            Param::timestamp_or_null(product.starts_at),
            Param::timestamp_or_null(product.ends_at),
            Param::int4_or_null(product.per_customer_limit),
        ],
    )
}

pub fn submit_change(db: &mut Db<'_>, change: &ProductChange, name: &str) -> Result<(), Refused> {
    db.submit(
        ADMIN_UPDATE_PRODUCT_ID,
        &[
            Param::Int4(change.id),
            Param::Int4(change.fields),
            Param::Text(name),
            Param::Int4(change.price),
            Param::timestamp_or_null(change.starts_at),
            Param::timestamp_or_null(change.ends_at),
            Param::int4_or_null(change.per_customer_limit),
        ],
    )
}

pub fn submit_restock(db: &mut Db<'_>, id: i32, quantity: i32) -> Result<(), Refused> {
    db.submit(ADMIN_RESTOCK_ID, &[Param::Int4(id), Param::Int4(quantity)])
}

/// The answer of an admin function (`sql/init.sql` lists the codes), and
/// the event the change leaves in the log.
pub fn answer(query: &Query, rows: Rows<'_>, body: &mut Vec<u8>) -> Result<u16, Refusal> {
    let row = rows.first().ok_or(Malformed).map_err(malformed)?;
    let mut columns = row.columns();
    let outcome = columns
        .next_as::<i32>()
        .ok_or(Malformed)
        .map_err(malformed)?;
    match outcome {
        0 => {}
        1 => return Err(PRODUCT_EXISTS),
        2 => return Err(PRODUCT_NOT_FOUND),
        7 => return Err(Invalid(MSG_WINDOW).refusal()),
        8 => return Err(Invalid(MSG_STOCK_OVERFLOW).refusal()),
        9 => return Err(NO_ID_LEFT),
        _ => return Err(malformed(Malformed)),
    }
    let product = ProductRow::from_columns(&mut columns)
        .ok_or(Malformed)
        .map_err(malformed)?;
    write_product(body, &product);
    log_change(query, &product);
    Ok(if matches!(query, Query::AdminCreate(_)) {
        201
    } else {
        200
    })
}

#[cold]
fn log_change(query: &Query, product: &ProductRow<'_>) {
    use log::Value;
    let id = ("product_id", Value::Int(product.id.into()));
    let stock = [
        ("initial_stock", Value::Int(product.initial_stock.into())),
        ("current_stock", Value::Int(product.current_stock.into())),
    ];
    match query {
        Query::AdminCreate(_) => log::event("product_created", &[id, stock[0], stock[1]]),
        Query::AdminUpdate(change) => {
            let named = [
                (FIELD_NAME, "name"),
                (FIELD_PRICE, "price"),
                (FIELD_STARTS_AT, "starts_at"),
                (FIELD_ENDS_AT, "ends_at"),
                (FIELD_LIMIT, "per_customer_limit"),
            ];
            let fields: Vec<&str> = named
                .iter()
                .filter(|(bit, _)| change.fields & bit != 0)
                .map(|(_, name)| *name)
                .collect();
            let fields = fields.join(",");
            log::event("product_changed", &[id, ("fields", Value::Str(&fields))]);
        }
        Query::AdminRestock { quantity, .. } => log::event(
            "product_restocked",
            &[
                id,
                ("quantity", Value::Int((*quantity).into())),
                stock[0],
                stock[1],
            ],
        ),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &[u8] = b"s3cret-admin-token-0123";

    #[test]
    fn only_the_bearer_token_is_authorized() {
        assert_eq!(
            authorize(TOKEN, Some(b"Bearer s3cret-admin-token-0123")),
            Ok(())
        );
        assert_eq!(
            authorize(TOKEN, Some(b"bearer  s3cret-admin-token-0123 ")),
            Ok(())
        );
        for wrong in [
            &b""[..],
            b"Bearer",
            b"Bearer ",
            b"Bearer s3cret-admin-token-012",
            b"Bearer s3cret-admin-token-01234",
            b"Bearer S3cret-admin-token-0123",
            b"Basic s3cret-admin-token-0123",
            b"s3cret-admin-token-0123",
        ] {
            assert_eq!(
                authorize(TOKEN, Some(wrong)),
                Err(UNAUTHORIZED),
                "{}",
                String::from_utf8_lossy(wrong)
            );
        }
        assert_eq!(authorize(TOKEN, None), Err(UNAUTHORIZED));
    }

    fn created(body: &str) -> Result<(NewProduct, String), &'static str> {
        let mut scratch = String::new();
        create(body.as_bytes(), &mut scratch)
            .map(|(query, name)| match query {
                Query::AdminCreate(product) => (product, name.to_string()),
                other => panic!("{other:?}"),
            })
            .map_err(|Invalid(message)| message)
    }

    #[test]
    fn creation_bodies() {
        let (product, name) = created(
            r#"{"name":"Drop","price":100,"stock":5,"starts_at":"2026-12-01T10:00:00Z","ends_at":null,"per_customer_limit":1}"#,
        )
        .unwrap();
        assert_eq!(name, "Drop");
        assert_eq!(product.id, None);
        assert_eq!(
            (product.price, product.stock, product.per_customer_limit),
            (100, 5, Some(1))
        );
        assert!(product.starts_at.is_some() && product.ends_at.is_none());
        let ok = r#""name":"n","price":0,"stock":0"#;
        let table: &[(String, Result<(), &str>)] = &[
            (format!("{{{ok}}}"), Ok(())),
            (format!(r#"{{"id":7,{ok}}}"#), Ok(())),
            (format!(r#"{{"id":0,{ok}}}"#), Err(MSG_ID)),
            (format!(r#"{{"id":2147483648,{ok}}}"#), Err(MSG_ID)),
            (format!(r#"{{"id":"7",{ok}}}"#), Err(MSG_ID)),
            (r#"{"price":1,"stock":1}"#.into(), Err(MSG_NAME_REQUIRED)),
            (r#"{"name":"","price":1,"stock":1}"#.into(), Err(MSG_NAME)),
            (
                r#"{"name":"a\nb","price":1,"stock":1}"#.into(),
                Err(MSG_NAME),
            ),
            (
                format!(r#"{{"name":"{}","price":1,"stock":1}}"#, "é".repeat(201)),
                Err(MSG_NAME),
            ),
            (r#"{"name":"n","stock":1}"#.into(), Err(MSG_PRICE_REQUIRED)),
            (
                r#"{"name":"n","price":-1,"stock":1}"#.into(),
                Err(MSG_PRICE),
            ),
            (
                r#"{"name":"n","price":1.5,"stock":1}"#.into(),
                Err(MSG_PRICE),
            ),
            (r#"{"name":"n","price":1}"#.into(), Err(MSG_STOCK_REQUIRED)),
            (
                r#"{"name":"n","price":1,"stock":null}"#.into(),
                Err(MSG_STOCK),
            ),
            (
                format!(r#"{{{ok},"starts_at":"tomorrow"}}"#),
                Err(MSG_STARTS_AT),
            ),
            (format!(r#"{{{ok},"ends_at":5}}"#), Err(MSG_ENDS_AT)),
            (
                format!(
                    r#"{{{ok},"starts_at":"2026-12-01T10:00:00Z","ends_at":"2026-12-01T10:00:00Z"}}"#
                ),
                Err(MSG_WINDOW),
            ),
            (
                format!(
                    r#"{{{ok},"starts_at":"2026-12-01T10:00:00Z","ends_at":"2026-12-01T11:00:00+01:00"}}"#
                ),
                Err(MSG_WINDOW),
            ),
            (
                format!(r#"{{{ok},"per_customer_limit":0}}"#),
                Err(MSG_LIMIT),
            ),
            (format!(r#"{{{ok},"per_customer_limit":null}}"#), Ok(())),
            (
                format!(r#"{{{ok},"end_at":null}}"#),
                Err(MSG_UNKNOWN_CREATE_FIELD),
            ),
            (
                format!(r#"{{{ok},"quantity":1}}"#),
                Err(MSG_UNKNOWN_CREATE_FIELD),
            ),
            (format!(r#"{{{ok},"price":2}}"#), Err(MSG_DUPLICATE)),
            ("[]".into(), Err("body must be a JSON object")),
        ];
        for (body, expected) in table {
            assert_eq!(created(body).map(|_| ()), *expected, "{body}");
        }
    }

    fn changed(body: &str) -> Result<(ProductChange, String), &'static str> {
        let mut scratch = String::new();
        change(9, body.as_bytes(), &mut scratch)
            .map(|(query, name)| match query {
                Query::AdminUpdate(change) => (change, name.to_string()),
                other => panic!("{other:?}"),
            })
            .map_err(|Invalid(message)| message)
    }

    #[test]
    fn change_bodies() {
        let (change, name) = changed(r#"{"ends_at":null,"per_customer_limit":3}"#).unwrap();
        assert_eq!(change.fields, FIELD_ENDS_AT | FIELD_LIMIT);
        assert_eq!((change.ends_at, change.per_customer_limit), (None, Some(3)));
        assert_eq!(name, "");
        let (change, name) = changed(r#"{"name":"New","price":5}"#).unwrap();
        assert_eq!(change.fields, FIELD_NAME | FIELD_PRICE);
        assert_eq!((change.price, name.as_str()), (5, "New"));
        assert_eq!(changed("{}").unwrap_err(), MSG_EMPTY_CHANGE);
        assert_eq!(changed(r#"{"name":null}"#).unwrap_err(), MSG_NAME);
        assert_eq!(changed(r#"{"price":null}"#).unwrap_err(), MSG_PRICE);
        assert_eq!(
            changed(r#"{"stock":5}"#).unwrap_err(),
            MSG_UNKNOWN_CHANGE_FIELD
        );
        assert_eq!(
            changed(r#"{"id":5}"#).unwrap_err(),
            MSG_UNKNOWN_CHANGE_FIELD
        );
    }

    #[test]
    fn restock_bodies() {
        let restock = |body: &str| parse_restock(3, body.as_bytes()).map_err(|r| r.message);
        assert_eq!(
            restock(r#"{"quantity":10}"#),
            Ok(Query::AdminRestock {
                id: 3,
                quantity: 10
            })
        );
        assert_eq!(restock("{}"), Err(MSG_QUANTITY_REQUIRED));
        assert_eq!(restock(r#"{"quantity":0}"#), Err(MSG_QUANTITY));
        assert_eq!(restock(r#"{"quantity":-5}"#), Err(MSG_QUANTITY));
        assert_eq!(
            restock(r#"{"quantity":1,"x":1}"#),
            Err(MSG_UNKNOWN_RESTOCK_FIELD)
        );
    }
}
