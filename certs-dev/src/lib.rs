//! Development PKI for tracenet: a federation CA and node, gateway and administrator
//! certificates whose identity is carried only in a `spiffe://tracenet/...` URI SAN, plus the
//! wrong certificates negative tests need (another CA's, an expired one).
//!
//! For development and tests only. Production certificates come from the federation PKI run by
//! the secretariat; nothing here protects its keys beyond file permissions.

#![forbid(unsafe_code)]

use std::fmt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

pub use tracenet_ids::{IdentityKind, NodeId, PeerIdentity};

/// The validity period of an issued certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// From an hour ago to a year from now.
    Current,
    /// Ended yesterday (for negative tests).
    Expired,
}

/// Errors of the development PKI.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// Key or certificate generation failed, or a PEM did not parse. Not retryable.
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    /// A file could not be read or written. Retryable once the cause (permissions, space) is gone.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Not a node id (`AAA-CODE`: an ISO 3166 alpha-3 code, '-', 1-16 of A-Z0-9). Not retryable.
    #[error("'{0}' is not a node id (expected e.g. FRA-POL)")]
    InvalidNodeId(String),
    /// The system random source failed. Retrying may help.
    #[error("random source failed")]
    Random,
}

/// Parses a node id (`AAA-CODE`), the one rule shared with the node and the gateway.
pub fn parse_node_id(id: &str) -> Result<NodeId, CertError> {
    NodeId::parse(id).map_err(|_| CertError::InvalidNodeId(id.chars().take(64).collect()))
}

fn random_serial() -> Result<SerialNumber, CertError> {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut b = [0u8; 16];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| CertError::Random)?;
    b[0] &= 0x7f; // positive
    Ok(SerialNumber::from_slice(&b))
}

/// A fresh Ed25519 signing key: (PKCS#8 v2 DER private key, raw 32-byte public key). Nodes sign
/// request contexts, responses and audit checkpoints with it.
pub fn generate_signing_key() -> Result<(Vec<u8>, Vec<u8>), CertError> {
    use ring::signature::{Ed25519KeyPair, KeyPair as _};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| CertError::Random)?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| CertError::Random)?;
    Ok((pkcs8.as_ref().to_vec(), pair.public_key().as_ref().to_vec()))
}

/// A certificate authority able to issue certificates.
pub struct Ca {
    cert_pem: String,
    key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for Ca {
    // Never prints the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

impl Ca {
    /// A new self-signed CA valid from an hour ago for ten years.
    pub fn generate(common_name: &str) -> Result<Ca, CertError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(3650);
        params.serial_number = Some(random_serial()?);
        let cert = params.self_signed(&key)?;
        let cert_pem = cert.pem();
        let key_pem = key.serialize_pem();
        Self::from_pem(&cert_pem, &key_pem)
    }

    /// Reloads a CA written earlier, able to issue again.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Ca, CertError> {
        let key = KeyPair::from_pem(key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)?;
        Ok(Ca {
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
            issuer,
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key, PEM.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// Issues a certificate for `principal` with a fresh ECDSA P-256 key.
    pub fn issue(
        &self,
        principal: &PeerIdentity,
        validity: Validity,
    ) -> Result<IssuedCert, CertError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, principal.to_uri());
        params.subject_alt_names = vec![
            SanType::URI(principal.to_uri().try_into()?),
            SanType::DnsName(principal.dns_name().try_into()?),
            SanType::DnsName("localhost".try_into()?),
            SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])),
            SanType::IpAddress(std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST)),
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial()?);
        let now = OffsetDateTime::now_utc();
        (params.not_before, params.not_after) = match validity {
            Validity::Current => (now - Duration::hours(1), now + Duration::days(365)),
            Validity::Expired => (now - Duration::days(30), now - Duration::days(1)),
        };
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(IssuedCert {
            principal: principal.clone(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// A certificate and its private key, PEM encoded.
#[derive(Clone)]
pub struct IssuedCert {
    /// Who it speaks for.
    pub principal: PeerIdentity,
    /// The certificate.
    pub cert_pem: String,
    /// The private key.
    pub key_pem: String,
}

impl fmt::Debug for IssuedCert {
    // Never prints the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCert")
            .field("principal", &self.principal)
            .finish_non_exhaustive()
    }
}

/// A development federation laid out on disk.
pub struct DevFederation {
    /// The folder.
    pub dir: PathBuf,
    /// Its CA.
    pub ca: Ca,
    /// The node ids that have certificates.
    pub nodes: Vec<String>,
}

impl fmt::Debug for DevFederation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevFederation")
            .field("dir", &self.dir)
            .field("nodes", &self.nodes)
            .finish_non_exhaustive()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CertError + '_ {
    move |source| CertError::Io {
        path: path.to_owned(),
        source,
    }
}

fn write_file(path: &Path, text: &str, secret: bool) -> Result<(), CertError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    use std::io::Write;
    let mut f = opts.open(path).map_err(io(path))?;
    f.write_all(text.as_bytes()).map_err(io(path))
}

fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), CertError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    use std::io::Write;
    let mut f = opts.open(path).map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))
}

fn write_pair(dir: &Path, stem: &str, cert: &IssuedCert) -> Result<(), CertError> {
    write_file(&dir.join(format!("{stem}.pem")), &cert.cert_pem, false)?;
    write_file(&dir.join(format!("{stem}.key")), &cert.key_pem, true)
}

/// Writes (or extends) a development federation under `dir`:
///
/// ```text
/// ca.pem, ca.key                     the federation CA (reused if present)
/// <NODE_ID>/{node,gateway,admin}.{pem,key}
/// <NODE_ID>/signing.pk8, signing.pub  the node's Ed25519 signing key (PKCS#8 DER) and public key (hex)
/// negative/rogue-ca.pem              an unrelated CA
/// negative/rogue-node.{pem,key}      a node certificate for the first node id from that CA
/// negative/expired-node.{pem,key}    an expired certificate for the first node id
/// ```
///
/// Nodes whose folder exists already keep their certificates.
pub fn write_dev_federation(dir: &Path, node_ids: &[String]) -> Result<DevFederation, CertError> {
    let parsed = node_ids
        .iter()
        .map(|id| parse_node_id(id))
        .collect::<Result<Vec<_>, _>>()?;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let (ca_cert, ca_key) = (dir.join("ca.pem"), dir.join("ca.key"));
    let ca = if ca_cert.exists() && ca_key.exists() {
        let c = std::fs::read_to_string(&ca_cert).map_err(io(&ca_cert))?;
        let k = std::fs::read_to_string(&ca_key).map_err(io(&ca_key))?;
        Ca::from_pem(&c, &k)?
    } else {
        let ca = Ca::generate("tracenet development federation CA")?;
        write_file(&ca_cert, ca.cert_pem(), false)?;
        write_file(&ca_key, ca.key_pem(), true)?;
        ca
    };
    write_file(
        &dir.join("README.txt"),
        "Development certificates generated by tracenet-certs.\n\
         Never use them in production: production certificates come from the federation PKI.\n",
        false,
    )?;
    for id in &parsed {
        let node_dir = dir.join(id.as_str());
        if node_dir.exists() {
            continue;
        }
        std::fs::create_dir_all(&node_dir).map_err(io(&node_dir))?;
        for kind in [
            IdentityKind::Node,
            IdentityKind::Gateway,
            IdentityKind::Admin,
        ] {
            let p = PeerIdentity::new(kind, id.clone());
            write_pair(&node_dir, kind.as_str(), &ca.issue(&p, Validity::Current)?)?;
        }
        let (private, public) = generate_signing_key()?;
        let key_path = node_dir.join("signing.pk8");
        write_bytes(&key_path, &private)?;
        write_file(
            &node_dir.join("signing.pub"),
            &format!("{}\n", tracenet_ids::hex::encode(&public)),
            false,
        )?;
    }
    if let Some(first) = parsed.first() {
        let neg = dir.join("negative");
        if !neg.exists() {
            std::fs::create_dir_all(&neg).map_err(io(&neg))?;
            let rogue = Ca::generate("unrelated CA (negative tests)")?;
            write_file(&neg.join("rogue-ca.pem"), rogue.cert_pem(), false)?;
            let node = PeerIdentity::Node(first.clone());
            write_pair(&neg, "rogue-node", &rogue.issue(&node, Validity::Current)?)?;
            write_pair(&neg, "expired-node", &ca.issue(&node, Validity::Expired)?)?;
        }
    }
    Ok(DevFederation {
        dir: dir.to_owned(),
        ca,
        nodes: node_ids.to_vec(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use x509_parser::extensions::GeneralName;
    use x509_parser::pem::parse_x509_pem;

    fn uris(pem: &str) -> Vec<String> {
        let (_, p) = parse_x509_pem(pem.as_bytes()).unwrap();
        let cert = p.parse_x509().unwrap();
        cert.subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::URI(u) => Some(u.to_string()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn issued_certificates_carry_one_uri_identity_and_both_usages() {
        let ca = Ca::generate("test").unwrap();
        let c = ca
            .issue(
                &PeerIdentity::Node(NodeId::parse("FRA-POL").unwrap()),
                Validity::Current,
            )
            .unwrap();
        assert_eq!(uris(&c.cert_pem), vec!["spiffe://tracenet/node/FRA-POL"]);
        let (_, p) = parse_x509_pem(c.cert_pem.as_bytes()).unwrap();
        let cert = p.parse_x509().unwrap();
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && eku.client_auth);
        let (_, cap) = parse_x509_pem(ca.cert_pem().as_bytes()).unwrap();
        assert_eq!(cert.issuer(), cap.parse_x509().unwrap().subject());
        assert!(cert.validity().is_valid());
        assert!(!format!("{c:?}").contains("PRIVATE"));
    }

    #[test]
    fn expired_certificates_are_expired() {
        let ca = Ca::generate("test").unwrap();
        let c = ca
            .issue(
                &PeerIdentity::Admin(NodeId::parse("DEU-CUS").unwrap()),
                Validity::Expired,
            )
            .unwrap();
        let (_, p) = parse_x509_pem(c.cert_pem.as_bytes()).unwrap();
        assert!(!p.parse_x509().unwrap().validity().is_valid());
    }

    #[test]
    fn a_reloaded_ca_can_issue_and_bad_ids_are_refused() {
        let ca = Ca::generate("test").unwrap();
        let again = Ca::from_pem(ca.cert_pem(), ca.key_pem()).unwrap();
        again
            .issue(
                &PeerIdentity::Gateway(NodeId::parse("ITA-POL").unwrap()),
                Validity::Current,
            )
            .unwrap();
        for bad in ["fra-pol", "FRA", "FRA-", "XYZ-POL", "FRA-P/L", "A-POL"] {
            assert!(matches!(
                parse_node_id(bad),
                Err(CertError::InvalidNodeId(_))
            ));
        }
    }

    #[test]
    fn dev_federation_layout_is_written_and_the_ca_reused() {
        let dir = tempfile::tempdir().unwrap();
        let ids = vec!["FRA-POL".to_string(), "DEU-CUS".to_string()];
        let fed = write_dev_federation(dir.path(), &ids).unwrap();
        for f in [
            "ca.pem",
            "ca.key",
            "README.txt",
            "FRA-POL/node.pem",
            "FRA-POL/node.key",
            "FRA-POL/gateway.pem",
            "DEU-CUS/admin.key",
            "negative/rogue-ca.pem",
            "negative/rogue-node.pem",
            "negative/expired-node.key",
        ] {
            assert!(dir.path().join(f).exists(), "{f} missing");
        }
        let again = write_dev_federation(dir.path(), &["ITA-POL".to_string()]).unwrap();
        assert_eq!(again.ca.cert_pem(), fed.ca.cert_pem());
        assert!(dir.path().join("ITA-POL/node.pem").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("ca.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0);
        }
    }
}
