//! The replicated directory (DESIGN.md §7): members, keys, endpoints, points of contact, trace
//! service settings, sharing policies, marking practices and revocations, replicated with Raft
//! (openraft) to every member.
//!
//! - [`state`]: the pure rules for changing the directory (authorisation included);
//! - [`types`], [`codec`]: the Raft type configuration and the protobuf encodings;
//! - [`raft_store`]: the sled-backed Raft log and state machine;
//! - [`digest`]: digests of the applied state at fixed indexes, compared with the leader's;
//! - [`network`], [`service`]: the Raft transport over the peer mTLS listener;
//! - [`replica`]: the running replica (writes forwarded to the leader, linearizable reads,
//!   membership kept in step with admissions and revocations, as [`membership`] plans it);
//!
//! What the exchange reads from the replica (peers, keys, policy, who is barred) is the
//! [`crate::roster`], kept outside this module so that the peer connections and admission it
//! serves do not depend on Raft.

pub mod assistance;
pub mod codec;
pub mod digest;
pub mod membership;
pub mod network;
pub mod raft_store;
pub mod replica;
pub mod service;
pub mod state;
pub mod types;
