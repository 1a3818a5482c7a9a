//! Typed identifiers, parsed once at the boundary.
//!
//! A `NodeId` names a node: an affiliation prefix, a dash, an agency or service code. The prefix
//! is either an assigned ISO 3166 alpha-3 code (a State's node, "FRA-POL") or an organisation
//! code (a regional organisation, international body or secretariat, "ECOWAS-HUB"), never both:
//! an organisation code is never three letters, so it can never be read as a State's code. A
//! `PeerIdentity` is who a TLS client certificate speaks for, taken from its
//! `spiffe://tracenet/...` URI SAN and nothing else. A `RecordId` is the stable id of a stored
//! record. Holding one of these proves the text it came from was well formed.

use std::fmt;
use std::str::FromStr;

use crate::country::CountryCode;

/// Why a text is not a valid identifier. Never retryable: the input itself is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// A node id must be `PREFIX-CODE`: an assigned ISO 3166 alpha-3 code or an organisation
    /// code, a dash, 1 to 16 of `A-Z0-9`.
    #[error(
        "'{0}' is not a node id (expected e.g. FRA-POL or ECOWAS-HUB: an ISO 3166 alpha-3 code or an organisation code of 2-12 of A-Z0-9 other than three letters, '-', 1-16 of A-Z0-9)"
    )]
    NodeId(String),
    /// An organisation code is 2 to 12 of `A-Z0-9`, not three letters (those are reserved for
    /// States' codes, assigned or not).
    #[error(
        "'{0}' is not an organisation code (2-12 of A-Z0-9, and not three letters like a State's code)"
    )]
    OrgCode(String),
    /// The URI is not one of the `spiffe://tracenet/{node,gateway,admin}/<NODE_ID>` forms.
    #[error("'{0}' is not a tracenet identity URI")]
    IdentityUri(String),
    /// A record id is 32 lowercase hexadecimal digits.
    #[error("'{0}' is not a record id (32 hexadecimal digits)")]
    RecordId(String),
}

/// The code of an organisation that runs nodes (a regional organisation, an international body,
/// a secretariat): 2 to 12 of `A-Z0-9`, never three letters, so never a State's code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrgCode(String);

impl OrgCode {
    /// Parses an organisation code such as `ECOWAS` (uppercase only).
    pub fn parse(s: &str) -> Result<OrgCode, IdError> {
        let b = s.as_bytes();
        let charset = b
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        let state_like = b.len() == 3 && b.iter().all(u8::is_ascii_uppercase);
        if !(2..=12).contains(&b.len()) || !charset || state_like {
            return Err(IdError::OrgCode(s.chars().take(64).collect()));
        }
        Ok(OrgCode(s.to_owned()))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrgCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for OrgCode {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OrgCode::parse(s)
    }
}

impl<'de> serde::Deserialize<'de> for OrgCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        OrgCode::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for OrgCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Whom a node belongs to, read from its id's prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Affiliation {
    /// A State's node (a national agency): the prefix is the State's ISO 3166 alpha-3 code.
    State(CountryCode),
    /// An organisation's node: the prefix is its organisation code.
    Organisation(OrgCode),
}

impl Affiliation {
    /// Parses a node id prefix: an assigned ISO alpha-3 code, else an organisation code.
    pub fn parse(s: &str) -> Result<Affiliation, IdError> {
        if s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase()) {
            return CountryCode::parse(s)
                .map(Affiliation::State)
                .map_err(|_| IdError::OrgCode(s.chars().take(64).collect()));
        }
        OrgCode::parse(s).map(Affiliation::Organisation)
    }

    /// The State, for a State's node.
    pub fn state(&self) -> Option<CountryCode> {
        match self {
            Affiliation::State(c) => Some(*c),
            Affiliation::Organisation(_) => None,
        }
    }

    /// The organisation, for an organisation's node.
    pub fn organisation(&self) -> Option<&OrgCode> {
        match self {
            Affiliation::State(_) => None,
            Affiliation::Organisation(o) => Some(o),
        }
    }

    /// The prefix as text (`FRA`, `ECOWAS`).
    pub fn as_str(&self) -> &str {
        match self {
            Affiliation::State(c) => c.as_str(),
            Affiliation::Organisation(o) => o.as_str(),
        }
    }
}

impl fmt::Display for Affiliation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The id of a node: affiliation prefix (State or organisation), dash, agency code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    text: String,
    affiliation: Affiliation,
}

impl NodeId {
    /// Parses and checks a node id such as `FRA-POL` or `ECOWAS-HUB`.
    pub fn parse(s: &str) -> Result<NodeId, IdError> {
        let bad = || IdError::NodeId(s.chars().take(64).collect());
        let (prefix, agency) = s.split_once('-').ok_or_else(bad)?;
        let affiliation = Affiliation::parse(prefix).map_err(|_| bad())?;
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
            affiliation,
        })
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whom the node belongs to: a State or an organisation.
    pub fn affiliation(&self) -> &Affiliation {
        &self.affiliation
    }

    /// The State whose node this is; `None` for an organisation's node.
    pub fn state(&self) -> Option<CountryCode> {
        self.affiliation.state()
    }

    /// The organisation whose node this is; `None` for a State's node.
    pub fn organisation(&self) -> Option<&OrgCode> {
        self.affiliation.organisation()
    }

    /// Whether this is a node of State `c`.
    pub fn is_of_state(&self, c: CountryCode) -> bool {
        self.state() == Some(c)
    }

    /// The id's prefix as text: the State's code or the organisation code.
    pub fn prefix(&self) -> &str {
        self.affiliation.as_str()
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
        assert_eq!(id.state().map(|c| c.to_string()), Some("FRA".to_owned()));
        assert_eq!(id.organisation(), None);
        assert_eq!(id.prefix(), "FRA");
        assert_eq!(id.dns_name(), "fra-pol.node.tracenet.test");
        for bad in [
            "",
            "FRA",
            "FRA-",
            "fra-POL",
            "XXX-POL",
            "FRA-pol",
            "FRA-P/L",
            "F-POL",
            "FRA-ABCDEFGHIJKLMNOPQ",
            "ECOWAS-",
            "ecowas-HUB",
            "ABCDEFGHIJKLM-HUB",
            "ECO-WAS-HUB",
            "EC_OWAS-HUB",
        ] {
            assert!(NodeId::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn organisation_node_ids() {
        for (text, org) in [
            ("ECOWAS-HUB", "ECOWAS"),
            ("EUROPOL-HUB", "EUROPOL"),
            ("UNODC-GFP", "UNODC"),
            ("SECRETARIAT-DIR", "SECRETARIAT"),
            ("R7-HUB", "R7"),
            ("FR-POL", "FR"),
            ("ABCDEFGHIJKL-X", "ABCDEFGHIJKL"),
        ] {
            let id = NodeId::parse(text).unwrap();
            assert_eq!(id.state(), None, "{text}");
            assert_eq!(id.organisation().map(OrgCode::as_str), Some(org));
            assert_eq!(id.prefix(), org);
            assert!(matches!(id.affiliation(), Affiliation::Organisation(_)));
        }
        let hub = NodeId::parse("ECOWAS-HUB").unwrap();
        assert_eq!(hub.dns_name(), "ecowas-hub.node.tracenet.test");
        assert!(!hub.is_of_state(CountryCode::parse("BEL").unwrap()));
        // Three letters are a State's code or nothing: never an organisation.
        for bad in ["XXX", "EUR", "ZZZ"] {
            assert!(OrgCode::parse(bad).is_err(), "{bad} accepted");
            assert!(Affiliation::parse(bad).is_err(), "{bad} accepted");
        }
        for bad in ["", "E", "eco", "ECO WAS", "ABCDEFGHIJKLM"] {
            assert!(OrgCode::parse(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(
            Affiliation::parse("BEL").unwrap(),
            Affiliation::State(CountryCode::parse("BEL").unwrap())
        );
    }

    #[test]
    fn identity_uris_round_trip() {
        for uri in [
            "spiffe://tracenet/node/FRA-POL",
            "spiffe://tracenet/gateway/DEU-CUS",
            "spiffe://tracenet/admin/KEN-DCI",
            "spiffe://tracenet/node/ECOWAS-HUB",
            "spiffe://tracenet/gateway/UNODC-GFP",
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
