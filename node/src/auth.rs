//! Who may call which API. The decision is pure ([`Admission::decide`]); the interceptor applies
//! it to every request using the identity the listener read from the verified certificate, then
//! checks the caller against the directory's roster (suspended and revoked members, revoked
//! certificates, and on the exchange non-members), and puts the admitted [`Caller`] into the
//! request for handlers. The roster check runs per request, so a revocation applied locally
//! also stops connections opened before it. Deny by default.
//!
//! The same roster check runs once more inside the TLS handshake ([`HandshakeGate`], consulted by
//! the listener's client-certificate verifier), so a revoked or suspended certificate, another
//! certificate for a listed member, or an unlisted gateway or admin certificate never completes
//! a handshake. Callers the listener does not admit at all are left to the per-request check,
//! which answers with a status saying why.

use tonic::{Request, Status};

use std::sync::Arc;

use crate::ids::{NodeId, PeerIdentity};
use crate::roster::{Barred, Roster};
use crate::transport::ConnInfo;

/// The admission rule of one listener.
#[derive(Debug, Clone)]
pub enum Admission {
    /// The peer API: federation nodes only (not gateways or admin tools).
    PeerApi,
    /// The local API of the given node: only its own gateway and admin identities.
    LocalApi(NodeId),
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(pub PeerIdentity);

/// Why a caller was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The certificate verified but carries no tracenet identity.
    #[error("client certificate carries no tracenet identity: {0}")]
    NoIdentity(String),
    /// The identity is known but not allowed on this API.
    #[error("{identity} may not call {api}")]
    NotAllowed {
        /// Who called.
        identity: String,
        /// What it called.
        api: String,
    },
    /// The directory bars the caller (suspended, revoked, or not a member).
    #[error("{identity} is refused: {why}")]
    Barred {
        /// Who called.
        identity: String,
        /// Why.
        why: &'static str,
    },
}

impl Admission {
    /// Whether `identity` may call this API.
    pub fn decide(&self, identity: &PeerIdentity) -> Result<(), Refusal> {
        let allowed = match (self, identity) {
            (Admission::PeerApi, PeerIdentity::Node(_)) => true,
            (Admission::LocalApi(own), PeerIdentity::Gateway(id) | PeerIdentity::Admin(id)) => {
                id == own
            }
            _ => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(Refusal::NotAllowed {
                identity: identity.to_uri(),
                api: self.name(),
            })
        }
    }

    fn name(&self) -> String {
        match self {
            Admission::PeerApi => "the peer API".into(),
            Admission::LocalApi(id) => format!("the local API of {id}"),
        }
    }

    /// Checks a request's connection and returns the admitted caller.
    pub fn admit(&self, info: Option<&ConnInfo>) -> Result<Caller, Refusal> {
        let identity = match info.map(|i| &i.identity) {
            Some(Ok(id)) => id.clone(),
            Some(Err(why)) => return Err(Refusal::NoIdentity(why.clone())),
            None => {
                return Err(Refusal::NoIdentity(
                    "connection without TLS identity".into(),
                ));
            }
        };
        self.decide(&identity)?;
        Ok(Caller(identity))
    }

    /// A tonic interceptor enforcing this rule and attaching the [`Caller`].
    pub fn interceptor(self) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
        self.gated(None)
    }

    /// As [`Admission::interceptor`], also refusing callers the roster bars. With
    /// `require_member`, a node the directory does not list is refused too (the exchange);
    /// without, only suspended and revoked ones (Raft, where voters talk before they are listed).
    pub fn gated(
        self,
        gate: Option<(Arc<Roster>, bool)>,
    ) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
        move |mut req: Request<()>| {
            let info = req.extensions().get::<ConnInfo>();
            let caller = self
                .admit(info)
                .and_then(|c| match &gate {
                    None => Ok(c),
                    Some((roster, require_member)) => check_roster(
                        roster,
                        &c,
                        info.and_then(|i| i.fingerprint.as_deref()),
                        *require_member,
                    )
                    .map(|()| c),
                })
                .inspect_err(|r| {
                    tracing::warn!(refusal = %r, "request refused");
                })?;
            req.extensions_mut().insert(caller);
            Ok(req)
        }
    }
}

fn check_roster(
    roster: &Roster,
    caller: &Caller,
    fingerprint: Option<&str>,
    require_member: bool,
) -> Result<(), Refusal> {
    let view = roster.view();
    let barred = |why: Barred| Refusal::Barred {
        identity: caller.0.to_uri(),
        why: why.as_str(),
    };
    // Gateways and admin tools call only their own node (the admission rule), which the roster
    // does not list as a peer: they must present a certificate this node lists for them, not
    // revoked. Their node's own suspension does not stop them, so the operators of a suspended
    // or revoked node can still see what happened to it.
    match caller.0 {
        PeerIdentity::Gateway(_) => return view.check_local(true, fingerprint).map_err(barred),
        PeerIdentity::Admin(_) => return view.check_local(false, fingerprint).map_err(barred),
        PeerIdentity::Node(_) => {}
    }
    match view.check_caller(caller.0.node(), fingerprint) {
        Ok(()) => Ok(()),
        Err(Barred::NotMember) if !require_member => Ok(()),
        Err(why) => Err(barred(why)),
    }
}

/// The roster check of one listener at the TLS handshake: what [`Admission::gated`] would refuse,
/// except a node the directory does not list (Raft voters talk before they are listed; the
/// exchange refuses them per request).
#[derive(Debug)]
pub struct HandshakeGate {
    admission: Admission,
    roster: Arc<Roster>,
}

impl HandshakeGate {
    /// The gate of the listener with `admission`.
    pub fn new(admission: Admission, roster: Arc<Roster>) -> HandshakeGate {
        HandshakeGate { admission, roster }
    }
}

impl crate::tls::ClientCertGate for HandshakeGate {
    fn check(&self, leaf: &[u8]) -> Result<(), String> {
        // Without a tracenet identity, or on the wrong listener, the request is refused with a
        // status that says why; only roster refusals are moved into the handshake.
        let Ok(identity) = crate::tls::identity_of_cert(leaf) else {
            return Ok(());
        };
        if self.admission.decide(&identity).is_err() {
            return Ok(());
        }
        let fingerprint = crate::tls::cert_fingerprint(leaf);
        check_roster(&self.roster, &Caller(identity), Some(&fingerprint), false)
            .map_err(|r| r.to_string())
    }
}

/// The admitted caller of a request (set by the interceptor).
pub fn caller<T>(req: &Request<T>) -> Result<&PeerIdentity, Status> {
    req.extensions()
        .get::<Caller>()
        .map(|c| &c.0)
        .ok_or_else(|| Status::unauthenticated("caller not authenticated"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::parse(s).unwrap()
    }

    #[test]
    fn peer_api_admits_nodes_only() {
        let a = Admission::PeerApi;
        assert!(a.decide(&PeerIdentity::Node(id("DEU-CUS"))).is_ok());
        assert!(a.decide(&PeerIdentity::Gateway(id("DEU-CUS"))).is_err());
        assert!(a.decide(&PeerIdentity::Admin(id("DEU-CUS"))).is_err());
    }

    #[test]
    fn local_api_admits_own_gateway_and_admin_only() {
        let a = Admission::LocalApi(id("FRA-POL"));
        assert!(a.decide(&PeerIdentity::Gateway(id("FRA-POL"))).is_ok());
        assert!(a.decide(&PeerIdentity::Admin(id("FRA-POL"))).is_ok());
        assert!(a.decide(&PeerIdentity::Node(id("FRA-POL"))).is_err());
        assert!(a.decide(&PeerIdentity::Gateway(id("DEU-CUS"))).is_err());
        assert!(a.decide(&PeerIdentity::Admin(id("DEU-CUS"))).is_err());
    }

    #[test]
    fn the_handshake_gate_refuses_unlisted_local_certificates_and_leaves_the_rest_to_requests() {
        use crate::tls::{ClientCertGate, cert_fingerprint};
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        use tracenet_certs::{Ca, Validity};
        let ca = Ca::generate("test CA").unwrap();
        let der = |p: &PeerIdentity| {
            let c = ca.issue(p, Validity::Current).unwrap();
            CertificateDer::from_pem_slice(c.cert_pem.as_bytes())
                .unwrap()
                .to_vec()
        };
        let listed = der(&PeerIdentity::Gateway(id("FRA-POL")));
        let minted = der(&PeerIdentity::Gateway(id("FRA-POL")));
        let config: crate::config::NodeConfig = toml::from_str(&format!(
            "node_id = \"FRA-POL\"\ncountry = \"FRA\"\ndata_dir = \"d\"\n\
             [tls]\nca = \"a\"\ncert = \"b\"\nkey = \"c\"\n\
             [local_certificates]\ngateway_fingerprints = [\"{}\"]\n",
            cert_fingerprint(&listed)
        ))
        .unwrap();
        let fra = crate::country::CountryCode::parse("FRA").unwrap();
        let roster = Arc::new(Roster::from_config(
            &config,
            crate::policy::Policy::deny_all(fra),
        ));
        let local = HandshakeGate::new(Admission::LocalApi(id("FRA-POL")), roster.clone());
        assert!(local.check(&listed).is_ok());
        let why = local.check(&minted).unwrap_err();
        assert!(why.contains("lists for its gateway"), "{why}");
        assert!(
            local
                .check(&der(&PeerIdentity::Admin(id("FRA-POL"))))
                .is_err(),
            "no admin certificate listed: deny by default"
        );
        // Not this listener's callers at all: refused per request, with a status.
        assert!(
            local
                .check(&der(&PeerIdentity::Gateway(id("DEU-CUS"))))
                .is_ok()
        );
        assert!(local.check(b"not a certificate").is_ok());
        let peer = HandshakeGate::new(Admission::PeerApi, roster);
        assert!(peer.check(&der(&PeerIdentity::Node(id("DEU-CUS")))).is_ok());
    }

    #[test]
    fn missing_identity_is_unauthenticated() {
        let a = Admission::PeerApi;
        let info = ConnInfo {
            remote_addr: None,
            identity: Err("no SAN".into()),
            fingerprint: None,
        };
        let status: Status = a.admit(Some(&info)).unwrap_err().into();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        let status: Status = a.admit(None).unwrap_err().into();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
    }
}
