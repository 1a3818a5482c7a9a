//! A tracenet node: the system of record of one national authority (or a regional hub) in the
//! tracenet federation. It stores seizure records in sled, serves its own gateway and
//! administrator over the local API, and talks to peer nodes over mutually authenticated gRPC.
//!
//! Modules depend one way, from the edges inward (no module imports one that imports it):
//! `cli` → `server` → (`api`, `peer`, `delivery`, `transport`) → (`workflow`, `fanout`,
//! `disclose`) → `context` → `directory` → (`auth`, `client`, `roster`) → (`store`, `ledger`,
//! `audit`, `envelope`, `tls`, `clock`, `config`) → (`policy`, `trace`, `model`, `import`,
//! `stats`) →
//! (`serial`, `country`, `ids`). `grep '^use crate::'` over `node/src` shows no cycle.
//!
//! Decisions are pure and tested beside the code by their outputs: validation, serial matching,
//! admission, key layout, and the use cases themselves (what a peer is disclosed and what is
//! audited in `disclose`, the trace and retraction steps in `workflow`, the checks on peer
//! deliveries in `peer::rules`, what a peer's reply to a federated call means in `fanout`, the
//! directory's Raft membership in `directory::membership`). They take plain values (the request,
//! the roster view and policy, the candidate records, the time) and return what to do; thin
//! drivers around them do the reads and writes, auditing before anything is answered.

#![forbid(unsafe_code)]

pub mod api;
pub mod assistance;
pub mod audit;
pub mod audit_anchor;
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
pub mod hub;
pub mod import;
pub mod ledger;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod peer;
pub mod policy;
pub mod provenance;
pub mod retention;
pub mod roster;
pub mod routes;
pub mod sample;
pub mod seal;
pub mod serial;
pub mod server;
pub mod shutdown;
pub mod stats;
pub mod status;
pub mod store;
pub mod tls;
pub mod trace;
pub mod transport;
pub mod watch;
pub mod workflow;

/// ISO 3166 alpha-3 country codes, from `tracenet-ids`.
pub use tracenet_ids::country;
/// Node ids, identities and record ids: the shared vocabulary of `tracenet-ids`.
pub use tracenet_ids::ids;

pub use config::NodeConfig;
pub use server::{Listeners, Node, NodeError, run};
