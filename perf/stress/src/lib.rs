//! Load tools for the flashsale API: the challenge's stress test
//! (`stress`), capacity steps of the open model (`capacity`), and the
//! comparison with a peer implementation (`capacity --compare`).
//!
//! The pieces are small and mostly pure: [`http`] frames responses,
//! [`histogram`] keeps latencies, [`ledger`] keeps the client's books and
//! checks the consistency rules, [`open_model`] keeps a schedule;
//! [`scenario`] and the binaries wire them to the network.

#![forbid(unsafe_code)]

pub mod args;
pub mod capacity;
pub mod histogram;
pub mod http;
pub mod ledger;
pub mod open_model;
pub mod report;
pub mod scenario;
pub mod stats;
pub mod sysinfo;
pub mod workload;
