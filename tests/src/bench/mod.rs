//! The benchmark harness behind `tracenet-bench`: each scenario builds what it needs (real nodes
//! on loopback with real mTLS, temporary stores), measures a figure and its baseline in the same
//! run, and returns a [`report::Report`]. Nothing here asserts on time; the smoke test only
//! checks that every scenario runs and measures something.

pub mod central;
pub mod directory;
pub mod failover;
pub mod fanout;
pub mod gateway;
pub mod hub;
pub mod memory;
pub mod micro;
pub mod peer;
pub mod report;
pub mod scale;
pub mod sled_open;
pub mod store;

/// Why a scenario could not run (setup, a call, or a figure that makes no sense). Not
/// retryable as such: the message says what failed.
pub type BenchError = crate::Error;
