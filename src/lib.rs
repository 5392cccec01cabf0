//! flashsale: a flash-sale inventory API on one `mio` event loop with a raw,
//! pipelined Postgres client. The binary lives in `main.rs`; everything it is
//! built from is here so integration tests and perf tools can reuse it.
//!
//! Layout follows the path of a request:
//! socket -> `http` (framing) -> `json` + `api::validate` -> `api` (commands,
//! rendering) -> `pg` (pipelined Postgres client) -> response bytes.
#![forbid(unsafe_code)]

pub mod api;
pub mod config;
pub mod http;
pub mod json;
pub mod pg;
pub mod server;
