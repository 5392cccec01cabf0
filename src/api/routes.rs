//! The route table: which endpoint a request is for, decided from its
//! method, path and query, with its input validated by the endpoint's own
//! `parse`. Pure: no IO, tested without sockets. A refusal (404, 405, 422)
//! needs no database.
//!
//! Adding an endpoint is a line in [`route`]; if one statement answers it,
//! also a [`Query`] variant and its two dispatch arms below.

use crate::api::accounts::{self, INVALID_SESSION};
use crate::api::admin::{self, NewProduct, ProductChange};
use crate::api::holds::{self, place::HoldRequest, HoldFigures};
use crate::api::orders::{
    self,
    place::{OrderRequest, SessionOrder},
};
use crate::api::payments::{self, Webhook};
use crate::api::{method_not_allowed, products, sales, Db, Refusal, NOT_FOUND};
use crate::http::request::Method;
use crate::metrics::{self, AccountFigures, OrderRefusals, WebhookFigures};
use crate::pg::{Refused, Rows};

/// What a request asks for, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    /// Joins the turn's order batch (`orders::batch`).
    PlaceOrder(OrderRequest<'a>),
    /// Answered by one statement; with the decoded text it needs (a
    /// customer id, a product name), else `""`.
    Query(Query, &'a str),
    /// Answered without the database (`health`).
    Health,
    /// `GET /metrics`, answered by the server.
    Metrics,
}

/// A request answered by one statement: what the client asked, kept while
/// the statement runs so its answer can be rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    GetProduct(i32),
    GetOrder([u8; 16]),
    ListOrders(i32),
    /// The customer id is the command's text.
    ListCustomerOrders {
        product_id: Option<i32>,
    },
    ListSales {
        after: i64,
    },
    /// `product_id: None`: body-less cancel (compat.md), any product.
    CancelOrder {
        order_id: [u8; 16],
        product_id: Option<i32>,
    },
    /// The name is the command's text.
    AdminCreate(NewProduct),
    /// The name (if changed) is the command's text.
    AdminUpdate(ProductChange),
    AdminRestock {
        id: i32,
        quantity: i32,
    },
    /// The customer id is the command's text.
    PlaceHold(HoldRequest),
    GetHold([u8; 16]),
    ReleaseHold([u8; 16]),
    /// `POST /orders` with `hold_id`; the customer id is the command's text.
    ConsumeHold {
        hold_id: [u8; 16],
        key: [u8; 16],
    },
    /// The event id (if the body is an event) is the command's text.
    PaymentWebhook(Webhook),
    /// `POST /orders` of a product with a session: alone, not in the
    /// batch; the customer id the body names (or `""`) is the command's text.
    SessionOrder(SessionOrder),
    /// `POST /customers`; the email (its first `email_len` bytes) and the
    /// password are the command's text.
    CreateAccount {
        email_len: u16,
    },
    /// `POST /sessions`; the text as for `CreateAccount`.
    OpenSession {
        email_len: u16,
    },
    /// `GET /holds?customer_id=`; the customer id is the command's text.
    ListCustomerHolds,
    /// `GET /sessions/current`.
    GetSession,
    /// `DELETE /sessions/current`.
    EndSession,
}

/// What a query's statement takes beside the query itself.
#[derive(Debug, Clone, Copy)]
pub struct QueryInput<'a> {
    /// The command's text.
    pub text: &'a str,
    /// The request's raw body (what a webhook's signature signs).
    pub body: &'a [u8],
    /// `HOLD_TTL_SECS`.
    pub hold_ttl_secs: i32,
    /// `WEBHOOK_SECRET` (empty when unset: the route is 404 then).
    pub webhook_secret: &'a [u8],
    /// The request's session token, if it carries one.
    pub session: Option<&'a str>,
    /// `SESSION_TTL_SECS`.
    pub session_ttl_secs: i32,
}

/// What the queries' answers count for the metrics.
#[derive(Debug, Default)]
pub struct QueryFigures {
    pub holds: HoldFigures,
    pub webhooks: WebhookFigures,
    pub accounts: AccountFigures,
    /// Orders with a session refused with 409, by reason (they count as orders).
    pub session_order_refusals: OrderRefusals,
}

impl Query {
    /// Sends the statement that answers this query.
    pub fn submit(&self, db: &mut Db<'_>, input: &QueryInput<'_>) -> Result<(), Refused> {
        let (text, session) = (input.text, input.session);
        // The routes below check that these have a session first.
        let token = || session.ok_or(Refused::Unavailable);
        match self {
            Query::GetProduct(id) => products::submit(db, *id),
            Query::GetOrder(id) => orders::get::submit(db, id),
            Query::ListOrders(product_id) => orders::list::submit(db, *product_id),
            Query::ListCustomerOrders { product_id } => {
                orders::list::submit_customer(db, text, *product_id, session)
            }
            Query::ListSales { after } => sales::submit(db, *after),
            Query::CancelOrder {
                order_id,
                product_id,
            } => orders::cancel::submit(db, order_id, *product_id, session),
            Query::AdminCreate(product) => admin::submit_create(db, product, text),
            Query::AdminUpdate(change) => admin::submit_change(db, change, text),
            Query::AdminRestock { id, quantity } => admin::submit_restock(db, *id, *quantity),
            Query::PlaceHold(hold) => {
                holds::place::submit(db, hold, text, input.hold_ttl_secs, session)
            }
            Query::GetHold(id) => holds::read::submit_get(db, id),
            Query::ReleaseHold(id) => holds::read::submit_release(db, id, session),
            Query::ConsumeHold { hold_id, key } => {
                holds::consume::submit(db, hold_id, key, text, session)
            }
            Query::PaymentWebhook(webhook) => {
                payments::submit(db, webhook, text, input.webhook_secret, input.body)
            }
            Query::SessionOrder(order) => orders::place::submit_as(db, order, text, token()?),
            Query::CreateAccount { email_len } => accounts::submit_create(db, *email_len, text),
            Query::OpenSession { email_len } => {
                accounts::submit_open(db, *email_len, text, input.session_ttl_secs)
            }
            Query::ListCustomerHolds => holds::list::submit(db, text, session),
            Query::GetSession => accounts::submit_get(db, token()?),
            Query::EndSession => accounts::submit_end(db, token()?),
        }
    }

    /// Whether this is a customer's write that the per-customer rate limit
    /// counts (a hold, an order of one); its customer is the command's text.
    pub fn is_customer_write(&self) -> bool {
        matches!(
            self,
            Query::PlaceHold(_) | Query::ConsumeHold { .. } | Query::SessionOrder(_)
        )
    }

    /// Whether a customer acts through this query: with `REQUIRE_SESSION`,
    /// only with a session.
    pub fn acts_for_customer(&self) -> bool {
        matches!(
            self,
            Query::PlaceHold(_)
                | Query::ConsumeHold { .. }
                | Query::SessionOrder(_)
                | Query::CancelOrder { .. }
                | Query::ReleaseHold(_)
                | Query::ListCustomerOrders { .. }
                | Query::ListCustomerHolds
        )
    }

    /// Renders the statement's rows into `body` (and a `Set-Cookie`
    /// value into `cookie`, for a session's start and end): the status to
    /// send, or the refusal to send instead.
    pub fn answer(
        &self,
        rows: Rows<'_>,
        body: &mut Vec<u8>,
        cookie: &mut Vec<u8>,
        figures: &mut QueryFigures,
    ) -> Result<u16, Refusal> {
        match self {
            Query::GetProduct(_) => products::answer(rows, body),
            Query::GetOrder(_) => orders::get::answer(rows, body),
            Query::ListOrders(product_id) => orders::list::answer(*product_id, rows, body),
            Query::ListCustomerOrders { .. } => orders::list::answer_customer(rows, body),
            Query::ListSales { .. } => sales::answer(rows, body),
            Query::CancelOrder { order_id, .. } => orders::cancel::answer(order_id, rows, body),
            Query::AdminCreate(_) | Query::AdminUpdate(_) | Query::AdminRestock { .. } => {
                admin::answer(self, rows, body)
            }
            Query::PlaceHold(_) => holds::place::answer(rows, body, &mut figures.holds),
            Query::GetHold(_) => holds::read::answer_get(rows, body),
            Query::ReleaseHold(_) => holds::read::answer_release(rows, body),
            Query::ConsumeHold { .. } => holds::consume::answer(rows, body, &mut figures.holds),
            Query::PaymentWebhook(webhook) => {
                payments::answer(webhook, rows, body, &mut figures.webhooks)
            }
            Query::SessionOrder(_) => {
                orders::place::answer_counted(rows, body, &mut figures.session_order_refusals)
            }
            Query::CreateAccount { .. } => {
                accounts::answer_create(rows, body, &mut figures.accounts)
            }
            Query::OpenSession { .. } => {
                accounts::answer_open(rows, body, cookie, &mut figures.accounts)
            }
            Query::ListCustomerHolds => holds::list::answer(rows, body),
            Query::GetSession => accounts::answer_get(rows, body),
            Query::EndSession => accounts::answer_end(rows, body, cookie, &mut figures.accounts),
        }
    }
}

/// Routes `target` (path and optional query) for `method` with `body`.
/// `scratch` receives decoded strings the command borrows.
pub fn route<'a>(
    method: Method,
    target: &[u8],
    body: &[u8],
    scratch: &'a mut String,
) -> Result<Command<'a>, Refusal> {
    let (segments, query) = split_target(target);
    let request = Parts {
        query,
        body,
        signature: None,
        session: false,
    };
    command(method, segments, request, scratch)
}

/// What of a request, beside its method and path, a route may look at.
#[derive(Clone, Copy)]
struct Parts<'r> {
    /// The query string (after `?`).
    query: &'r [u8],
    body: &'r [u8],
    /// The `X-Signature` field (the payment webhook's).
    signature: Option<&'r [u8]>,
    /// Whether the request carries a session (then a customer id may be
    /// left out of an order or a hold).
    session: bool,
}

/// [`route`], and the route the request counts under in the metrics
/// (refused or not), from one look at the target. `admit` judges the
/// route before anything else of the request is: a refusal of it is the
/// answer, and the body is never parsed.
pub fn route_labelled<'a>(
    method: Method,
    target: &[u8],
    body: &[u8],
    signature: Option<&[u8]>,
    session: bool,
    scratch: &'a mut String,
    admit: impl FnOnce(metrics::Route) -> Result<(), Refusal>,
) -> (metrics::Route, Result<Command<'a>, Refusal>) {
    let (segments, query) = split_target(target);
    let label = label(method, &segments);
    let request = Parts {
        query,
        body,
        signature,
        session,
    };
    let routed = admit(label).and_then(|()| command(method, segments, request, scratch));
    (label, routed)
}

fn command<'a>(
    method: Method,
    segments: [Option<&[u8]>; 4],
    request: Parts<'_>,
    scratch: &'a mut String,
) -> Result<Command<'a>, Refusal> {
    let (query_text, body) = (request.query, request.body);
    // HEAD is GET whose answer goes without its body (the server leaves it out).
    let method = match method {
        Method::Head => Method::Get,
        method => method,
    };
    let query = |query| Command::Query(query, "");
    let with_text = |(query, text)| Command::Query(query, text);
    match segments {
        [Some(b"orders"), None, ..] => match method {
            Method::Post => orders::place::parse(body, scratch, request.session),
            Method::Get => orders::list::parse(query_text, scratch).map(with_text),
            _ => Err(method_not_allowed("GET, POST")),
        },
        [Some(b"orders"), Some(id), None, _] => match method {
            Method::Get => orders::get::parse(id).map(query),
            _ => Err(method_not_allowed("GET")),
        },
        [Some(b"orders"), Some(id), Some(b"cancel"), None] => match method {
            Method::Post => orders::cancel::parse(id, body).map(query),
            _ => Err(method_not_allowed("POST")),
        },
        [Some(b"products"), Some(id), None, _] => match method {
            Method::Get => products::parse(id).map(query),
            _ => Err(method_not_allowed("GET")),
        },
        [Some(b"sales"), None, ..] => match method {
            Method::Get => sales::parse(query_text).map(query),
            _ => Err(method_not_allowed("GET")),
        },
        [Some(b"admin"), Some(b"products"), None, _] => match method {
            Method::Post => admin::parse_create(body, scratch).map(with_text),
            _ => Err(method_not_allowed("POST")),
        },
        [Some(b"admin"), Some(b"products"), Some(id), None] => match method {
            Method::Patch => {
                admin::parse_change(admin::path_product(id)?, body, scratch).map(with_text)
            }
            _ => Err(method_not_allowed("PATCH")),
        },
        [Some(b"admin"), Some(b"products"), Some(id), Some(b"restock")] => match method {
            Method::Post => admin::parse_restock(admin::path_product(id)?, body).map(query),
            _ => Err(method_not_allowed("POST")),
        },
        [Some(b"holds"), None, ..] => match method {
            Method::Post => holds::place::parse(body, scratch, request.session).map(with_text),
            Method::Get => holds::list::parse(query_text, scratch).map(with_text),
            _ => Err(method_not_allowed("GET, POST")),
        },
        [Some(b"holds"), Some(id), None, _] => match method {
            Method::Get => holds::read::parse_get(id).map(query),
            _ => Err(method_not_allowed("GET")),
        },
        [Some(b"holds"), Some(id), Some(b"release"), None] => match method {
            Method::Post => holds::read::parse_release(id, body).map(query),
            _ => Err(method_not_allowed("POST")),
        },
        [Some(b"payments"), Some(b"webhook"), None, _] => match method {
            Method::Post => payments::parse(request.signature, body, scratch).map(with_text),
            _ => Err(method_not_allowed("POST")),
        },
        [Some(b"customers"), None, ..] => match method {
            Method::Post => accounts::parse(body, scratch, |email_len| Query::CreateAccount {
                email_len,
            }),
            _ => Err(method_not_allowed("POST")),
        },
        [Some(b"sessions"), None, ..] => match method {
            Method::Post => {
                accounts::parse(body, scratch, |email_len| Query::OpenSession { email_len })
            }
            _ => Err(method_not_allowed("POST")),
        },
        [Some(b"sessions"), Some(b"current"), None, _] => match method {
            Method::Get | Method::Delete if !request.session => Err(INVALID_SESSION),
            Method::Get => Ok(query(Query::GetSession)),
            Method::Delete => Ok(query(Query::EndSession)),
            _ => Err(method_not_allowed("GET, DELETE")),
        },
        [Some(b"health"), None, ..] => match method {
            Method::Get => Ok(Command::Health),
            _ => Err(method_not_allowed("GET")),
        },
        [Some(b"metrics"), None, ..] => match method {
            Method::Get => Ok(Command::Metrics),
            _ => Err(method_not_allowed("GET")),
        },
        _ => Err(NOT_FOUND),
    }
}

/// The route a request counts under in the metrics, whether or not it is
/// valid: the same path shapes as [`route`], from a fixed set.
fn label(method: Method, segments: &[Option<&[u8]>; 4]) -> metrics::Route {
    use metrics::Route;
    match segments {
        [Some(b"orders"), None, ..] => match method {
            Method::Post => Route::PlaceOrder,
            Method::Get | Method::Head => Route::ListOrders,
            _ => Route::Other,
        },
        [Some(b"sales"), None, ..] => Route::ListSales,
        [Some(b"admin"), ..] => Route::Admin,
        [Some(b"orders"), Some(_), None, _] => Route::GetOrder,
        [Some(b"orders"), Some(_), Some(b"cancel"), None] => Route::CancelOrder,
        [Some(b"products"), Some(_), None, _] => Route::GetProduct,
        [Some(b"holds"), None, ..] => match method {
            Method::Get | Method::Head => Route::ListHolds,
            _ => Route::PlaceHold,
        },
        [Some(b"holds"), Some(_), None, _] => Route::GetHold,
        [Some(b"holds"), Some(_), Some(b"release"), None] => Route::ReleaseHold,
        [Some(b"payments"), Some(b"webhook"), None, _] => Route::PaymentWebhook,
        [Some(b"customers"), None, ..] => Route::CreateCustomer,
        [Some(b"sessions"), None, ..] => Route::OpenSession,
        [Some(b"sessions"), Some(b"current"), None, _] => Route::Session,
        [Some(b"health"), None, ..] => Route::Health,
        [Some(b"metrics"), None, ..] => Route::Metrics,
        _ => Route::Other,
    }
}

/// The first four path segments (`None` past the last) and the query.
fn split_target(target: &[u8]) -> ([Option<&[u8]>; 4], &[u8]) {
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
    (segments, query)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "550e8400-e29b-41d4-a716-446655440000";
    const ORDER: &str = "54b40303-b83a-4c37-86ed-716e630e4337";

    /// The command as text (a query as itself), or the refusal's status and
    /// message (its `Allow` list for a 405).
    fn run(method: Method, target: &str, body: &str) -> Result<String, (u16, &'static str)> {
        let mut scratch = String::new();
        route(method, target.as_bytes(), body.as_bytes(), &mut scratch)
            .map(|c| match c {
                Command::Query(query, "") => format!("{query:?}"),
                Command::Query(query, text) => format!("{query:?} {text:?}"),
                other => format!("{other:?}"),
            })
            .map_err(|r| (r.status, r.allow().unwrap_or(r.message)))
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
            // Integers as JSON writes them, in paths as in bodies.
            (Method::Get, "/products/01", "", (404, "product not found")),
            (Method::Get, "/products/-01", "", (404, "product not found")),
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
