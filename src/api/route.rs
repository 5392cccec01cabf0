//! Routing and validation: a parsed request becomes either a database
//! command or an answer that needs no database (4xx, health). Pure: no IO,
//! tested without sockets.

use crate::api::validate::{self, Invalid, OrderRequest, ProductRef};
use crate::http::request::Method;

/// Work for the database; everything in it is validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    PlaceOrder(OrderRequest<'a>),
    /// `product_id: None`: body-less cancel (compat.md), any product.
    CancelOrder {
        order_id: [u8; 16],
        product_id: Option<i32>,
    },
    GetProduct(i32),
    ListOrders(i32),
    GetOrder([u8; 16]),
    Health,
}

/// An answer decided without the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: &'static str,
    /// The methods a 405 must list in `Allow`.
    pub allow: Option<&'static str>,
}

pub type Routed<'a> = Result<Command<'a>, Refusal>;

const NOT_FOUND: Refusal = refuse(404, "not found");
pub const PRODUCT_NOT_FOUND: Refusal = refuse(404, "product not found");
pub const ORDER_NOT_FOUND: Refusal = refuse(404, "order not found");

pub const fn refuse(status: u16, message: &'static str) -> Refusal {
    Refusal {
        status,
        message,
        allow: None,
    }
}

const fn method_not_allowed(allow: &'static str) -> Refusal {
    Refusal {
        status: 405,
        message: "method not allowed",
        allow: Some(allow),
    }
}

fn invalid(Invalid(message): Invalid) -> Refusal {
    refuse(422, message)
}

/// Routes `target` (path and optional query) for `method` with `body`.
/// `scratch` receives decoded strings the command borrows.
pub fn route<'a>(
    method: Method,
    target: &[u8],
    body: &[u8],
    scratch: &'a mut String,
) -> Routed<'a> {
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(q) => (&target[..q], &target[q + 1..]),
        None => (target, &target[target.len()..]),
    };
    let mut segments = path
        .strip_prefix(b"/")
        .unwrap_or(b"\xff")
        .split(|&b| b == b'/');
    let segments = [
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ];
    match segments {
        [Some(b"orders"), None, ..] => match method {
            Method::Post => place_order(body, scratch),
            Method::Get => match validate::parse_product_id_query(query).map_err(invalid)? {
                ProductRef::Id(id) => Ok(Command::ListOrders(id)),
                ProductRef::Unknown => Err(PRODUCT_NOT_FOUND),
            },
            Method::Other => Err(method_not_allowed("GET, POST")),
        },
        [Some(b"orders"), Some(id), None, _] => match method {
            // compat.md: a malformed id is a 422 here (a 404 on cancel).
            Method::Get => validate::parse_uuid(id)
                .map(Command::GetOrder)
                .ok_or(refuse(422, "order_id must be a UUID")),
            _ => Err(method_not_allowed("GET")),
        },
        [Some(b"orders"), Some(id), Some(b"cancel"), None] => match method {
            Method::Post => cancel_order(id, body),
            _ => Err(method_not_allowed("POST")),
        },
        [Some(b"products"), Some(id), None, _] => match method {
            Method::Get => match validate::decimal_product_ref(id) {
                Some(ProductRef::Id(id)) => Ok(Command::GetProduct(id)),
                _ => Err(PRODUCT_NOT_FOUND),
            },
            _ => Err(method_not_allowed("GET")),
        },
        [Some(b"health"), None, ..] => match method {
            Method::Get => Ok(Command::Health),
            _ => Err(method_not_allowed("GET")),
        },
        _ => Err(NOT_FOUND),
    }
}

/// Validation comes first (422), then a product id no product can have (404).
fn place_order<'a>(body: &[u8], scratch: &'a mut String) -> Routed<'a> {
    let order = validate::order_request(body, scratch).map_err(invalid)?;
    match order.product_id {
        ProductRef::Id(_) => Ok(Command::PlaceOrder(order)),
        ProductRef::Unknown => Err(PRODUCT_NOT_FOUND),
    }
}

fn cancel_order<'a>(id: &[u8], body: &[u8]) -> Routed<'a> {
    let product_id = validate::cancel_request(body).map_err(invalid)?;
    let order_id = validate::parse_uuid(id).ok_or(ORDER_NOT_FOUND)?;
    match product_id {
        None => Ok(Command::CancelOrder {
            order_id,
            product_id: None,
        }),
        Some(ProductRef::Id(p)) => Ok(Command::CancelOrder {
            order_id,
            product_id: Some(p),
        }),
        // No order belongs to a product that cannot exist.
        Some(ProductRef::Unknown) => Err(ORDER_NOT_FOUND),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "550e8400-e29b-41d4-a716-446655440000";
    const ORDER: &str = "54b40303-b83a-4c37-86ed-716e630e4337";

    fn run(method: Method, target: &str, body: &str) -> Result<String, (u16, &'static str)> {
        let mut scratch = String::new();
        route(method, target.as_bytes(), body.as_bytes(), &mut scratch)
            .map(|c| format!("{c:?}"))
            .map_err(|r| (r.status, r.allow.unwrap_or(r.message)))
    }

    #[test]
    fn routes_every_endpoint() {
        let body = format!(
            r#"{{"product_id":1,"idempotency_key":"{KEY}","customer_id":"c","quantity":2}}"#
        );
        assert!(run(Method::Post, "/orders", &body)
            .unwrap()
            .starts_with("PlaceOrder"));
        assert_eq!(
            run(Method::Get, "/orders?product_id=3", "").unwrap(),
            "ListOrders(3)"
        );
        assert!(run(Method::Get, &format!("/orders/{ORDER}"), "")
            .unwrap()
            .starts_with("GetOrder"));
        let cancel = run(
            Method::Post,
            &format!("/orders/{ORDER}/cancel"),
            r#"{"product_id":4}"#,
        )
        .unwrap();
        assert!(cancel.contains("product_id: Some(4)"), "{cancel}");
        let bodyless = run(Method::Post, &format!("/orders/{ORDER}/cancel"), "").unwrap();
        assert!(bodyless.contains("product_id: None"), "{bodyless}");
        assert_eq!(
            run(Method::Get, "/products/5", "").unwrap(),
            "GetProduct(5)"
        );
        assert_eq!(
            run(Method::Get, "/products/5?verbose=1", "").unwrap(),
            "GetProduct(5)"
        );
        assert_eq!(run(Method::Get, "/health", "").unwrap(), "Health");
    }

    #[test]
    fn answers_without_the_database_when_it_can() {
        let table: &[(Method, &str, &str, (u16, &str))] = &[
            (Method::Get, "/", "", (404, "not found")),
            (Method::Get, "/nope", "", (404, "not found")),
            (
                Method::Get,
                "/orders/",
                "",
                (422, "order_id must be a UUID"),
            ),
            (Method::Get, "/products/", "", (404, "product not found")),
            (Method::Get, "/products/abc", "", (404, "product not found")),
            (Method::Get, "/products/0", "", (404, "product not found")),
            (
                Method::Get,
                "/products/99999999999999999999",
                "",
                (404, "product not found"),
            ),
            (Method::Get, "/products/1/extra", "", (404, "not found")),
            (Method::Get, "/orders", "", (422, "product_id is required")),
            (Method::Get, "/orders?product_id=x", "", (422, "")),
            (
                Method::Get,
                "/orders?product_id=-4",
                "",
                (404, "product not found"),
            ),
            (
                Method::Get,
                "/orders/not-a-valid-uuid",
                "",
                (422, "order_id must be a UUID"),
            ),
            (
                Method::Post,
                "/orders/not-a-valid-uuid/cancel",
                "",
                (404, "order not found"),
            ),
            (Method::Post, "/orders/x/cancel", "{", (422, "")),
            (Method::Post, "/orders", "[]", (422, "")),
        ];
        for (method, target, body, (status, message)) in table {
            let got = run(*method, target, body).unwrap_err();
            assert_eq!(got.0, *status, "{target}");
            if !message.is_empty() {
                assert_eq!(got.1, *message, "{target}");
            }
        }
    }

    #[test]
    fn wrong_methods_get_405_with_allow() {
        let table = [
            ("/orders", "GET, POST"),
            (&format!("/orders/{ORDER}")[..], "GET"),
            (&format!("/orders/{ORDER}/cancel")[..], "POST"),
            ("/products/1", "GET"),
            ("/health", "GET"),
        ];
        for (target, allow) in table {
            assert_eq!(
                run(Method::Other, target, ""),
                Err((405, allow)),
                "{target}"
            );
        }
        assert_eq!(run(Method::Post, "/products/1", ""), Err((405, "GET")));
        assert_eq!(
            run(Method::Get, &format!("/orders/{ORDER}/cancel"), ""),
            Err((405, "POST"))
        );
    }

    #[test]
    fn validation_precedes_the_unknown_product_404() {
        let bad_quantity = format!(
            r#"{{"product_id":0,"idempotency_key":"{KEY}","customer_id":"c","quantity":9}}"#
        );
        assert_eq!(
            run(Method::Post, "/orders", &bad_quantity).unwrap_err().0,
            422
        );
        let unknown = format!(
            r#"{{"product_id":-3,"idempotency_key":"{KEY}","customer_id":"c","quantity":1}}"#
        );
        assert_eq!(
            run(Method::Post, "/orders", &unknown),
            Err((404, "product not found"))
        );
        let cancel = run(
            Method::Post,
            &format!("/orders/{ORDER}/cancel"),
            r#"{"product_id":0}"#,
        );
        assert_eq!(cancel, Err((404, "order not found")));
    }
}
