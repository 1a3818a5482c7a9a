//! The vocabulary every tracenet crate speaks: node ids, the identities certificates carry
//! (`spiffe://tracenet/...`) and the DNS names clients check, ISO 3166 alpha-3 country codes and
//! organisation codes (a node id's prefix is one or the other: `Affiliation`),
//! record ids, and hexadecimal. Defined once here so that the node, the gateway and the
//! development PKI cannot disagree about the most security-critical strings in the system.
//!
//! Everything here is pure: parse at the boundary, then hold a type that proves the text was
//! well formed.

#![forbid(unsafe_code)]

pub mod country;
pub mod hex;
pub mod ids;

pub use country::{CountryCode, InvalidCountry};
pub use ids::{
    Affiliation, IdError, IdentityKind, NodeId, OrgCode, PeerIdentity, RecordId, new_request_id,
};
