//! Typed identifiers, parsed once at the boundary.
//!
//! A `NodeId` names a national or hub node ("FRA-POL": an ISO 3166 alpha-3 country code, a dash,
//! an agency code). A `PeerIdentity` is who a TLS client certificate speaks for, taken from its
//! `spiffe://tracenet/...` URI SAN and nothing else. A `RecordId` is the stable id of a stored
//! record. Holding one of these proves the text it came from was well formed.

use std::fmt;
use std::str::FromStr;

use crate::country::CountryCode;

/// Why a text is not a valid identifier. Never retryable: the input itself is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// A node id must be `AAA-CODE`: a country code, a dash, 1 to 16 of `A-Z0-9`.
    #[error(
        "'{0}' is not a node id (expected e.g. FRA-POL: ISO 3166 alpha-3, '-', 1-16 of A-Z0-9)"
    )]
    NodeId(String),
    /// The URI is not one of the `spiffe://tracenet/{node,gateway,admin}/<NODE_ID>` forms.
    #[error("'{0}' is not a tracenet identity URI")]
    IdentityUri(String),
    /// A record id is 32 lowercase hexadecimal digits.
    #[error("'{0}' is not a record id (32 hexadecimal digits)")]
    RecordId(String),
}

/// The id of a node: country code, dash, agency code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    text: String,
    country: CountryCode,
}

impl NodeId {
    /// Parses and checks a node id such as `FRA-POL`.
    pub fn parse(s: &str) -> Result<NodeId, IdError> {
        let bad = || IdError::NodeId(s.chars().take(64).collect());
        let (country, agency) = s.split_once('-').ok_or_else(bad)?;
        if country.len() != 3 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(bad());
        }
        let country = CountryCode::parse(country).map_err(|_| bad())?;
        if agency.is_empty()
            || agency.len() > 16
            || !agency
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return Err(bad());
        }
        Ok(NodeId {
            text: s.to_owned(),
            country,
        })
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The country the node belongs to.
    pub fn country(&self) -> CountryCode {
        self.country
    }

    /// The country code as text (the first three characters of the id).
    pub fn country_str(&self) -> &str {
        &self.text[..3]
    }

    /// The DNS name in this node's certificate, used to check the server when dialling it.
    pub fn dns_name(&self) -> String {
        PeerIdentity::Node(self.clone()).dns_name()
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for NodeId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NodeId::parse(s)
    }
}

impl TryFrom<String> for NodeId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        NodeId::parse(&s)
    }
}

impl<'de> serde::Deserialize<'de> for NodeId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        NodeId::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for NodeId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

const URI_PREFIX: &str = "spiffe://tracenet/";
const DNS_SUFFIX: &str = "tracenet.test";

/// Which of a node's three certificates an identity is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentityKind {
    /// The node itself, on the peer API.
    Node,
    /// The node's gateway, on its local API.
    Gateway,
    /// The node's administrator CLI, on its local API.
    Admin,
}

impl IdentityKind {
    /// The path segment in the identity URI and DNS name, also the certificate file stem.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::Node => "node",
            IdentityKind::Gateway => "gateway",
            IdentityKind::Admin => "admin",
        }
    }
}

/// Who a verified client certificate speaks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PeerIdentity {
    /// A node of the federation, on the peer API.
    Node(NodeId),
    /// The gateway of the named node, on that node's local API.
    Gateway(NodeId),
    /// The administrator CLI of the named node, on that node's local API.
    Admin(NodeId),
}

impl PeerIdentity {
    /// The identity of `kind` for node `id`.
    pub fn new(kind: IdentityKind, id: NodeId) -> PeerIdentity {
        match kind {
            IdentityKind::Node => PeerIdentity::Node(id),
            IdentityKind::Gateway => PeerIdentity::Gateway(id),
            IdentityKind::Admin => PeerIdentity::Admin(id),
        }
    }

    /// Parses a `spiffe://tracenet/{node,gateway,admin}/<NODE_ID>` URI.
    pub fn from_uri(uri: &str) -> Result<PeerIdentity, IdError> {
        let bad = || IdError::IdentityUri(uri.chars().take(128).collect());
        let rest = uri.strip_prefix(URI_PREFIX).ok_or_else(bad)?;
        let (kind, id) = rest.split_once('/').ok_or_else(bad)?;
        let id = NodeId::parse(id).map_err(|_| bad())?;
        match kind {
            "node" => Ok(PeerIdentity::Node(id)),
            "gateway" => Ok(PeerIdentity::Gateway(id)),
            "admin" => Ok(PeerIdentity::Admin(id)),
            _ => Err(bad()),
        }
    }

    /// Which certificate of its node this is.
    pub fn kind(&self) -> IdentityKind {
        match self {
            PeerIdentity::Node(_) => IdentityKind::Node,
            PeerIdentity::Gateway(_) => IdentityKind::Gateway,
            PeerIdentity::Admin(_) => IdentityKind::Admin,
        }
    }

    /// The URI form, as in the certificate.
    pub fn to_uri(&self) -> String {
        format!("{URI_PREFIX}{}/{}", self.kind().as_str(), self.node())
    }

    /// The DNS name in the certificate (e.g. `fra-pol.node.tracenet.test`), what a client
    /// checks when it dials the holder.
    pub fn dns_name(&self) -> String {
        format!(
            "{}.{}.{DNS_SUFFIX}",
            self.node().as_str().to_ascii_lowercase(),
            self.kind().as_str()
        )
    }

    /// The node this identity belongs to.
    pub fn node(&self) -> &NodeId {
        match self {
            PeerIdentity::Node(id) | PeerIdentity::Gateway(id) | PeerIdentity::Admin(id) => id,
        }
    }
}

impl fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_uri())
    }
}

/// The stable id of a stored record: 48 bits of creation time in milliseconds, then 80 random
/// bits, so ids sort by creation time and never collide in practice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId([u8; 16]);

impl RecordId {
    /// Byte length of the binary form.
    pub const LEN: usize = 16;

    /// A new id for a record created at `millis` since the Unix epoch.
    pub fn generate(millis: u64, random: [u8; 10]) -> RecordId {
        let mut b = [0u8; 16];
        b[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
        b[6..].copy_from_slice(&random);
        RecordId(b)
    }

    /// The id from its binary form (as stored in keys).
    pub fn from_bytes(b: [u8; 16]) -> RecordId {
        RecordId(b)
    }

    /// The id from the last 16 bytes of a storage key, if the key is long enough.
    pub fn from_key_suffix(key: &[u8]) -> Option<RecordId> {
        let start = key.len().checked_sub(Self::LEN)?;
        let b: [u8; 16] = key[start..].try_into().ok()?;
        Some(RecordId(b))
    }

    /// The binary form.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Parses the 32-hex-digit text form (lowercase, as [`RecordId`] displays it).
    pub fn parse(s: &str) -> Result<RecordId, IdError> {
        let bad = || IdError::RecordId(s.chars().take(64).collect());
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(bad());
        }
        crate::hex::decode_array::<16>(s)
            .map(RecordId)
            .ok_or_else(bad)
    }
}

/// A fresh request id: 128 random bits, hex.
pub fn new_request_id() -> String {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut b = [0u8; 16];
    // If the system random source fails, fall back to time; ids need uniqueness, not secrecy.
    if SystemRandom::new().fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        b = t.to_be_bytes();
    }
    RecordId(b).to_string()
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::hex::encode(&self.0))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn node_ids() {
        let id = NodeId::parse("FRA-POL").unwrap();
        assert_eq!(id.country().as_str(), "FRA");
        assert_eq!(id.dns_name(), "fra-pol.node.tracenet.test");
        for bad in [
            "",
            "FRA",
            "FRA-",
            "fra-POL",
            "XXX-POL",
            "FRA-pol",
            "FRA-P/L",
            "FR-POL",
            "FRA-ABCDEFGHIJKLMNOPQ",
        ] {
            assert!(NodeId::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn identity_uris_round_trip() {
        for uri in [
            "spiffe://tracenet/node/FRA-POL",
            "spiffe://tracenet/gateway/DEU-CUS",
            "spiffe://tracenet/admin/KEN-DCI",
        ] {
            assert_eq!(PeerIdentity::from_uri(uri).unwrap().to_uri(), uri);
        }
        let gw = PeerIdentity::from_uri("spiffe://tracenet/gateway/DEU-CUS").unwrap();
        assert_eq!(gw.dns_name(), "deu-cus.gateway.tracenet.test");
        assert_eq!(gw.kind(), IdentityKind::Gateway);
        for kind in [
            IdentityKind::Node,
            IdentityKind::Gateway,
            IdentityKind::Admin,
        ] {
            let id = PeerIdentity::new(kind, NodeId::parse("KEN-DCI").unwrap());
            assert_eq!(PeerIdentity::from_uri(&id.to_uri()).unwrap(), id);
        }
        for bad in [
            "spiffe://other/node/FRA-POL",
            "spiffe://tracenet/root/FRA-POL",
            "spiffe://tracenet/node/FRA-POL/x",
            "https://tracenet/node/FRA-POL",
            "spiffe://tracenet/node/",
        ] {
            assert!(PeerIdentity::from_uri(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn record_ids_round_trip_and_sort_by_time() {
        let a = RecordId::generate(1_700_000_000_000, [9; 10]);
        let b = RecordId::generate(1_700_000_000_001, [0; 10]);
        assert!(a < b);
        assert_eq!(RecordId::parse(&a.to_string()).unwrap(), a);
        assert!(RecordId::parse("zz").is_err());
        assert!(RecordId::parse(&"G".repeat(32)).is_err());
        assert!(RecordId::parse(&a.to_string().to_uppercase()).is_err());
        assert_eq!(
            RecordId::from_key_suffix(&[&[1u8, 2][..], a.as_bytes()].concat()),
            Some(a)
        );
        assert_eq!(RecordId::from_key_suffix(&[1, 2, 3]), None);
    }
}
