//! flashsale: a flash-sale inventory API on one `mio` event loop with a raw,
//! pipelined Postgres client. The binary lives in `main.rs`; everything it is
//! built from is here so integration tests and perf tools can reuse it.
//!
//! Layout follows the path of a request:
//! socket -> `server` (event loop, client buffers) -> `http` (framing) ->
//! `api` (the application: routes, the endpoints' rooms, validation with
//! `json`, rendering) -> `pg` (pipelined Postgres client) -> `api` (the
//! answer) -> `server` -> socket.
#![forbid(unsafe_code)]

pub mod api;
pub mod config;
pub mod const_text;
pub mod http;
pub mod json;
pub mod log;
pub mod metrics;
pub mod nonblocking;
pub mod pg;
pub mod server;

/// Helpers shared by the unit tests of the parsers.
#[cfg(test)]
pub(crate) mod test_support {
    /// A valid order body with escapes in its customer id ("cé😀"): where
    /// the parsers' mutation tests start.
    pub const ORDER_BODY: &[u8] = br#"{"product_id":1,"idempotency_key":"550e8400-e29b-41d4-a716-446655440000","customer_id":"c\u00e9\ud83d\ude00","quantity":2}"#;

    /// Calls `check` with 20,000 copies of [`ORDER_BODY`], each damaged in
    /// one to three places (a fixed seed, so a failure repeats).
    pub fn for_each_damaged_order_body(mut check: impl FnMut(&[u8])) {
        let mut rng = fastrand::Rng::with_seed(3);
        let mut input = Vec::new();
        for _ in 0..20_000 {
            input.clear();
            input.extend_from_slice(ORDER_BODY);
            let edits = rng.usize(1..=3);
            damage(&mut rng, &mut input, edits);
            check(&input);
        }
    }

    /// Damages `input` in `edits` places: a byte replaced, removed or
    /// inserted at random (never leaving it empty by removal alone).
    pub fn damage(rng: &mut fastrand::Rng, input: &mut Vec<u8>, edits: usize) {
        for _ in 0..edits {
            if input.is_empty() {
                input.push(rng.u8(..));
                continue;
            }
            let at = rng.usize(..input.len());
            match rng.u8(..3) {
                0 => input[at] = rng.u8(..),
                1 => {
                    input.remove(at);
                }
                _ => input.insert(at, rng.u8(..)),
            }
        }
    }
}
