//! Shared helpers for integration tests. Each test file pulls this in with
//! `mod support;` and uses only what it needs.
#![allow(dead_code)]

pub mod cluster;
pub mod holds;
pub mod pool_driver;
pub mod race;
pub mod sales;
pub mod server;
pub mod time;
