//! A tracenet node: the system of record of one national authority (or a regional hub) in the
//! tracenet federation. It stores seizure records in sled, serves its own gateway and
//! administrator over the local API, and talks to peer nodes over mutually authenticated gRPC.
//!
//! Modules depend one way, from the edges inward:
//! `cli` → `server` → (`api`, `peer`, `auth`, `transport`) → `context` →
//! (`store`, `client`, `tls`, `clock`) → (`model`, `import`) → (`serial`, `country`, `ids`).
//! Decision logic (validation, serial matching, admission, key layout) is pure and tested
//! beside the code; IO lives in thin drivers around it.

#![forbid(unsafe_code)]

pub mod api;
pub mod audit;
pub mod audit_kind;
pub mod auth;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod context;
pub mod delivery;
pub mod directory;
pub mod disclose;
pub mod envelope;
pub mod fanout;
#[cfg(test)]
mod fixtures;
pub mod import;
pub mod ledger;
pub mod model;
pub mod peer;
pub mod policy;
pub mod sample;
pub mod serial;
pub mod server;
pub mod shutdown;
pub mod store;
pub mod tls;
pub mod trace;
pub mod transport;
pub mod workflow;

/// ISO 3166 alpha-3 country codes, from `tracenet-ids`.
pub use tracenet_ids::country;
/// Node ids, identities and record ids: the shared vocabulary of `tracenet-ids`.
pub use tracenet_ids::ids;

pub use config::NodeConfig;
pub use server::{Listeners, Node, NodeError, run};
