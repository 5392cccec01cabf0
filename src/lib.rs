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
pub mod const_text;
pub mod http;
pub mod json;
pub mod nonblocking;
pub mod pg;
pub mod server;

/// Helpers shared by the unit tests of the parsers.
#[cfg(test)]
pub(crate) mod test_support {
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
