//! The application: everything the API means, behind a narrow interface.
//!
//! The event loop (`server`) moves bytes. It hands each complete request to
//! [`App::on_request`], each database reply to [`App::on_reply`], and calls
//! [`App::end_of_turn`] once per turn; the application answers on the spot
//! ([`Handled::Answered`]) or later through [`Host`], which the loop
//! implements. The application never sees a socket, and the loop never
//! sees an order.
//!
//! One room per domain, one file per endpoint, each with its input's
//! validation, its statement and result row, and its answer's rendering
//! together (the way mini-redis keeps one file per command):
//!
//! ```text
//! app.rs         App: requests in, database work out, answers back
//! routes.rs      which endpoint a request is for; the queries answered by one statement
//! orders/        place.rs (POST /orders), batch.rs (the turn's orders in one
//!                transaction), cancel.rs, get.rs, list.rs
//! products.rs    GET /products/{id}, the product object
//! sales.rs       GET /sales
//! admin.rs       /admin/...: products, their sales, restocks
//! holds/         place.rs (POST /holds), read.rs (GET, release), consume.rs
//!                (an order of a hold), sweep.rs (the background expiry)
//! payments.rs    POST /payments/webhook
//! accounts.rs    POST /customers, POST /sessions, /sessions/current; the
//!                session a request carries
//! health.rs      GET /health
//! rate_limit.rs  the per-customer rate limit on orders (token buckets, a fixed table)
//! statements.rs  every statement, prepared once on each database connection
//! validate.rs    checks shared by the endpoints' inputs
//! render.rs      JSON field writers shared by the endpoints' answers
//! ```
//!
//! Adding an endpoint: its file in its room, a route line in `routes.rs`
//! (and a [`routes::Query`] variant if one statement answers it), its
//! statement in the table of `statements.rs`, its SQL in `sql/init.sql`.

pub mod accounts;
pub mod admin;
mod app;
pub mod health;
pub mod holds;
pub mod orders;
pub mod payments;
pub mod products;
pub mod rate_limit;
pub mod render;
pub mod routes;
pub mod sales;
pub mod statements;
pub mod validate;

use std::time::Instant;

pub use app::App;

use crate::http::request::Method;
use crate::http::response::{ErrorBody, Header};
use crate::pg::{Param, Pool, Refused, StatementId};
use render::Malformed;

/// Names one request from the moment the server hands it over until it is
/// answered. The application only hands it back; the server ignores an id
/// that is stale (its connection closed, or it was answered already).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestId(pub u64);

/// A complete request, borrowed from its connection's buffers.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub id: RequestId,
    pub method: Method,
    /// Path and query, as sent.
    pub target: &'a [u8],
    /// The `Authorization` field's value, if any.
    pub authorization: Option<&'a [u8]>,
    /// The `X-Signature` field's value, if any (empty when repeated).
    pub signature: Option<&'a [u8]>,
    /// The `Cookie` field's value, if any (a browser's session).
    pub cookie: Option<&'a [u8]>,
    pub body: &'a [u8],
}

/// What a request gets back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer<'a> {
    /// A status and its rendered JSON body.
    Json { status: u16, body: &'a [u8] },
    /// The same, with a cookie to set (a session's start or end).
    JsonWithCookie {
        status: u16,
        body: &'a [u8],
        cookie: &'a [u8],
    },
    /// An error: the status and `{"error": message}`.
    Refused(Refusal),
    /// `200` with the process's metrics, rendered in the Prometheus text
    /// format (the server renders them: it holds most of the figures).
    Metrics(&'a [u8]),
}

/// What became of a request handed to the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled<'a> {
    Answered(Answer<'a>),
    /// At the database: the answer comes through [`Host::answer`].
    Pending,
    /// `GET /metrics`: the server answers with [`Answer::Metrics`].
    Metrics,
}

/// What the application needs of the server for requests it answers later.
pub trait Host {
    /// Answers a pending request (ignored when the id is stale).
    fn answer(&mut self, request: RequestId, answer: Answer<'_>);
    /// Whether the request still waits for its answer (its client is there).
    fn is_waiting(&self, request: RequestId) -> bool;
}

/// An answer decided without a body to render: a status, a message and
/// maybe a machine-readable reason (`{"error": message, "reason": code}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: &'static str,
    /// A stable code for clients (platform.md's conventions).
    pub reason: Option<&'static str>,
    /// `Allow` for a 405, `Retry-After` for a 429.
    pub header: Option<Header<'static>>,
}

impl Refusal {
    /// The methods a 405 lists in `Allow`.
    pub fn allow(&self) -> Option<&'static str> {
        match self.header {
            Some(Header::Allow(methods)) => Some(methods),
            _ => None,
        }
    }

    /// Its body: the message and the reason.
    pub fn body(&self) -> ErrorBody<'static> {
        ErrorBody {
            message: self.message,
            reason: self.reason,
        }
    }
}

pub const fn refuse(status: u16, message: &'static str) -> Refusal {
    Refusal {
        status,
        message,
        reason: None,
        header: None,
    }
}

/// A refusal with a reason code.
pub const fn refuse_for(status: u16, message: &'static str, reason: &'static str) -> Refusal {
    Refusal {
        status,
        message,
        reason: Some(reason),
        header: None,
    }
}

pub const fn method_not_allowed(allow: &'static str) -> Refusal {
    Refusal {
        status: 405,
        message: "method not allowed",
        reason: None,
        header: Some(Header::Allow(allow)),
    }
}

pub const NOT_FOUND: Refusal = refuse(404, "not found");
pub const PRODUCT_NOT_FOUND: Refusal = refuse(404, "product not found");
pub const ORDER_NOT_FOUND: Refusal = refuse(404, "order not found");
pub const DATABASE_UNAVAILABLE: Refusal = refuse(503, "database unavailable");
pub const DATABASE_ERROR: Refusal = refuse(503, "database error");
/// The server stopped the statement at its deadline (a held row lock, a
/// stalled database) and rolled it back: nothing was done.
pub const DATABASE_TIMED_OUT: Refusal = refuse(
    503,
    "database busy: the request timed out and was not carried out, retry",
);
pub const ORDER_TIMED_OUT: Refusal = refuse(
    503,
    "database busy: the order timed out and was not placed, retry",
);
/// The connection was lost with the order sent: it may have committed. The
/// idempotency key is how the client finds out, and retrying is safe.
pub const ORDER_OUTCOME_UNKNOWN: Refusal = refuse(
    503,
    "database unavailable: the order may have been placed, retry with the same idempotency_key",
);
/// The same for a hold, or an order of a hold.
pub const KEYED_OUTCOME_UNKNOWN: Refusal = refuse(
    503,
    "database unavailable: the request may have been carried out, retry with the same \
     idempotency_key",
);
pub const OVERLOADED: Refusal = refuse(503, "server overloaded, retry later");
pub const SHUTTING_DOWN: Refusal = refuse(503, "server shutting down, retry");

/// The answer to a request the pool refused on the spot.
pub fn refusal_for(refused: Refused) -> Refusal {
    match refused {
        Refused::Overloaded => OVERLOADED,
        Refused::Unavailable => DATABASE_UNAVAILABLE,
    }
}

/// A success status with its body, or the refusal to send instead.
pub fn answer_of(rendered: Result<u16, Refusal>, body: &[u8]) -> Answer<'_> {
    match rendered {
        Ok(status) => Answer::Json { status, body },
        Err(refusal) => Answer::Refused(refusal),
    }
}

/// The database answered with a shape the statements exclude (a NULL where
/// the schema has NOT NULL, an unknown outcome code): log it, answer 503.
#[cold]
pub fn malformed(_: Malformed) -> Refusal {
    crate::log::event(
        "database_answer_malformed",
        &[(
            "detail",
            crate::log::Value::Str(
                "a NULL where the schema has NOT NULL, or an unknown outcome code",
            ),
        )],
    );
    DATABASE_ERROR
}

/// An endpoint's way to the database while it handles one request: its
/// statement goes to the pool tagged for the answer to find its way back.
pub struct Db<'a> {
    pool: &'a mut Pool,
    tag: u64,
    now: Instant,
}

impl Db<'_> {
    pub fn submit(&mut self, statement: StatementId, params: &[Param<'_>]) -> Result<(), Refused> {
        self.pool.submit(self.tag, statement, params, self.now)
    }
}
