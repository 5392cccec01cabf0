//! A Postgres client for a single-threaded `mio` event loop: non-blocking
//! connect (TCP or Unix socket), SCRAM-SHA-256 authentication (trust,
//! cleartext and MD5 only where `require_auth` allows them), statements
//! prepared once per connection and checked against the types the code
//! expects, pipelined requests answered in FIFO order, and a pool that sheds
//! load and reconnects by itself.
//!
//! Message encoding and the authentication algorithms come from the
//! `postgres-protocol` crate; this module is the client half it leaves out:
//! sockets, state machines, pipelining and pooling.
//!
//! Flow: `Pool::submit` encodes Bind/Execute/Sync into the least-loaded
//! connection's buffer -> the event loop calls `Pool::flush` once per turn ->
//! readiness events go to `Pool::handle_event`, which parses answers in place
//! and hands each one to the caller's callback with the request's tag.

pub mod auth;
pub mod backend;
mod cancel;
pub mod columns;
mod connection;
pub mod pool;
pub mod reply;
pub mod types;
pub mod url;

pub use backend::DbError;
pub use columns::{Column, Columns, Timestamp};
pub use connection::ConnectionError;
pub use pool::{Pool, PoolConfig, PoolStats};
pub use reply::{Refused, Reply, Row, Rows};
pub use types::{oid, Param, Statement, StatementId};
pub use url::{ConnectConfig, Endpoint, SessionAttrs};
