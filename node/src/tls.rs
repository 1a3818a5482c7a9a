//! TLS material and configurations: the node's certificate and key, the pinned federation CA,
//! a TLS 1.3-only server configuration that requires and verifies client certificates, client
//! configurations for dialling peers, and extraction of the caller's identity from a verified
//! certificate's URI SAN.
//!
//! rustls (with the ring provider) checks the chain and validity period; which identities may do
//! what is decided in [`crate::auth`]. A listener may add a [`ClientCertGate`], asked about the
//! leaf certificate after the chain verified and before the handshake completes (revoked and
//! barred certificates never get a connection).

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::config::{ClientCertFiles, TlsFiles};
use crate::ids::PeerIdentity;

/// Problems with certificates and keys. Not retryable without fixing the files.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// PEM text without a usable certificate or key.
    #[error("{0}")]
    Pem(String),
    /// rustls refused the configuration (e.g. key does not match certificate).
    #[error("TLS configuration refused: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built from the CA.
    #[error("cannot build client verifier: {0}")]
    Verifier(String),
    /// The certificate carries no usable `spiffe://tracenet/...` identity.
    #[error("certificate has no tracenet identity: {0}")]
    NoIdentity(String),
}

/// Installs ring as the process-wide rustls provider. Idempotent; call once at start-up.
pub fn install_crypto_provider() {
    // Err only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A certificate, its key and the CA, in PEM, with the identity the certificate carries.
#[derive(Clone)]
pub struct TlsMaterial {
    ca_pem: Vec<u8>,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    identity: PeerIdentity,
    fingerprint: String,
}

impl std::fmt::Debug for TlsMaterial {
    // Never prints the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

impl TlsMaterial {
    /// Loads the node's own files.
    pub fn load(files: &TlsFiles) -> Result<TlsMaterial, TlsError> {
        Self::from_pem(read(&files.ca)?, read(&files.cert)?, read(&files.key)?)
    }

    /// Loads a client certificate (gateway or admin) with the federation CA.
    pub fn load_client(ca: &Path, files: &ClientCertFiles) -> Result<TlsMaterial, TlsError> {
        Self::from_pem(read(ca)?, read(&files.cert)?, read(&files.key)?)
    }

    /// Builds from PEM bytes, checking that each parses and reading the certificate's identity.
    pub fn from_pem(
        ca_pem: impl Into<Vec<u8>>,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Result<TlsMaterial, TlsError> {
        let (ca_pem, cert_pem, key_pem) = (ca_pem.into(), cert_pem.into(), key_pem.into());
        parse_certs(&ca_pem, "CA")?;
        let chain = parse_certs(&cert_pem, "certificate")?;
        PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| TlsError::Pem(format!("no private key in key file: {e}")))?;
        let leaf = chain
            .first()
            .ok_or_else(|| TlsError::Pem("certificate file is empty".into()))?;
        let identity = identity_of_cert(leaf)?;
        let fingerprint = cert_fingerprint(leaf);
        Ok(TlsMaterial {
            ca_pem,
            cert_pem,
            key_pem,
            identity,
            fingerprint,
        })
    }

    /// The identity in this material's certificate.
    pub fn identity(&self) -> &PeerIdentity {
        &self.identity
    }

    /// SHA-256 of this material's certificate (DER), hex: what the directory lists and revokes.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// A TLS 1.3-only server configuration that requires a client certificate chaining to the
    /// federation CA.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        self.server_config_gated(None)
    }

    /// As [`TlsMaterial::server_config`], with `gate` consulted on every client certificate the
    /// CA verified; a refusal aborts the handshake.
    pub fn server_config_gated(
        &self,
        gate: Option<Arc<dyn ClientCertGate>>,
    ) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for ca in parse_certs(&self.ca_pem, "CA")? {
            roots.add(ca)?;
        }
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| TlsError::Verifier(e.to_string()))?;
        let verifier: Arc<dyn ClientCertVerifier> = match gate {
            None => verifier,
            Some(gate) => Arc::new(GatedVerifier {
                inner: verifier,
                gate,
            }),
        };
        let key = PrivateKeyDer::from_pem_slice(&self.key_pem)
            .map_err(|e| TlsError::Pem(format!("no private key: {e}")))?;
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_single_cert(parse_certs(&self.cert_pem, "certificate")?, key)?;
        cfg.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(cfg))
    }

    /// Client TLS settings for dialling a server whose certificate names `server_dns`.
    pub fn client_config(&self, server_dns: &str) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .domain_name(server_dns)
    }
}

/// A check of a client's leaf certificate (DER) during the handshake, after its chain verified.
/// `Err` carries the reason, logged; the client sees only a failed handshake.
pub trait ClientCertGate: std::fmt::Debug + Send + Sync {
    /// Whether the handshake may complete.
    fn check(&self, leaf: &[u8]) -> Result<(), String>;
}

/// The WebPKI client verifier (chain to the pinned CA, validity), then the gate.
#[derive(Debug)]
struct GatedVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    gate: Arc<dyn ClientCertGate>,
}

impl ClientCertVerifier for GatedVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: rustls_pki_types::UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        match self.gate.check(end_entity.as_ref()) {
            Ok(()) => Ok(verified),
            Err(why) => {
                tracing::warn!(refusal = %why, "client certificate refused at the handshake");
                Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::ApplicationVerificationFailure,
                ))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn parse_certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem(format!("{what} file does not parse: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError::Pem(format!("{what} file holds no certificate")));
    }
    Ok(certs)
}

/// SHA-256 of a DER certificate, lowercase hex.
pub fn cert_fingerprint(der: &[u8]) -> String {
    tracenet_ids::hex::encode(ring::digest::digest(&ring::digest::SHA256, der).as_ref())
}

/// Reads the certificate in a PEM file and returns its fingerprint (see [`cert_fingerprint`]).
pub fn fingerprint_of_pem_file(path: &Path) -> Result<String, TlsError> {
    let pem = read(path)?;
    let chain = parse_certs(&pem, "certificate")?;
    let leaf = chain
        .first()
        .ok_or_else(|| TlsError::Pem("certificate file is empty".into()))?;
    Ok(cert_fingerprint(leaf))
}

/// Reads the certificate in a PEM file and returns the node it speaks for.
pub fn identity_of_pem_file(path: &Path) -> Result<crate::ids::NodeId, TlsError> {
    let pem = read(path)?;
    let chain = parse_certs(&pem, "certificate")?;
    let leaf = chain
        .first()
        .ok_or_else(|| TlsError::Pem("certificate file is empty".into()))?;
    match identity_of_cert(leaf)? {
        PeerIdentity::Node(n) => Ok(n),
        other => Err(TlsError::Pem(format!(
            "{} is not a node certificate",
            other.to_uri()
        ))),
    }
}

/// The tracenet identity in a DER certificate: its single `spiffe://tracenet/...` URI SAN.
/// Call only on certificates whose chain has been verified.
pub fn identity_of_cert(der: &[u8]) -> Result<PeerIdentity, TlsError> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| TlsError::NoIdentity(format!("certificate does not parse: {e}")))?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| TlsError::NoIdentity(format!("bad subjectAltName: {e}")))?
        .ok_or_else(|| TlsError::NoIdentity("no subjectAltName".into()))?;
    let mut found = None;
    for name in &san.value.general_names {
        if let GeneralName::URI(uri) = name
            && uri.starts_with("spiffe://tracenet/")
        {
            if found.is_some() {
                return Err(TlsError::NoIdentity("more than one tracenet URI".into()));
            }
            found =
                Some(PeerIdentity::from_uri(uri).map_err(|e| TlsError::NoIdentity(e.to_string()))?);
        }
    }
    found.ok_or_else(|| TlsError::NoIdentity("no spiffe://tracenet/ URI SAN".into()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::ids::NodeId;
    use tracenet_certs::{Ca, Validity};

    #[test]
    fn identity_comes_from_the_uri_san() {
        let ca = Ca::generate("test CA").unwrap();
        let cert = ca
            .issue(
                &PeerIdentity::Gateway(NodeId::parse("FRA-POL").unwrap()),
                Validity::Current,
            )
            .unwrap();
        let m = TlsMaterial::from_pem(ca.cert_pem(), cert.cert_pem.clone(), cert.key_pem.clone())
            .unwrap();
        assert_eq!(m.identity().to_uri(), "spiffe://tracenet/gateway/FRA-POL");
        install_crypto_provider();
        m.server_config().unwrap();
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        let ca = Ca::generate("test CA").unwrap();
        assert!(matches!(
            TlsMaterial::from_pem(ca.cert_pem(), "not a cert", "not a key"),
            Err(TlsError::Pem(_))
        ));
        assert!(identity_of_cert(b"\x30\x03garbage").is_err());
    }
}
