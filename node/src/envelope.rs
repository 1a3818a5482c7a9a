//! Signed envelopes (Ed25519, ring): every peer request carries a `RequestContext` signed by the
//! requester node's key, every response is signed by the responder.
//!
//! The receiver checks, in order: the context decodes and names the node whose certificate made
//! the call (identity still comes from mTLS; the signature must agree with it), the signer's key
//! is known, the signature verifies, the time is within the clock-skew window, and the request id
//! has not been seen inside that window (replay). Signatures are over domain-separated bytes so a
//! signature made for one purpose cannot be replayed for another.
//!
//! The scheme (domains, byte order, what is encoded) is specified in `envelope.proto` for
//! implementers in other languages. Besides contexts and responses: the context binds the request
//! body by digest ([`body_digest`], checked with [`check_body`]), and every disclosed record
//! carries its owner's signed [`pb::DisclosureStatement`] ([`SigningKey::sign_disclosure`],
//! [`PeerKeys::verify_disclosure`]), verified over the statement bytes as received.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use prost::Message;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use tracenet_proto::v1 as pb;

use crate::ids::NodeId;

const CONTEXT_DOMAIN: &[u8] = b"tracenet-v1 request-context\0";
const RESPONSE_DOMAIN: &[u8] = b"tracenet-v1 response\0";
const CHECKPOINT_DOMAIN: &[u8] = b"tracenet-v1 audit-checkpoint\0";
const DISCLOSURE_DOMAIN: &[u8] = b"tracenet-v1 disclosure\0";
const BODY_DOMAIN: &[u8] = b"tracenet-v1 request-body\0";
const SEALED_DOMAIN: &[u8] = b"tracenet-v1 sealed\0";
const ROUND_CONFIRMATION_DOMAIN: &[u8] = b"tracenet-v1 aggregation-confirmation\0";
/// Domain of directory command signatures (see `DirectoryCommand` in directory.proto).
pub const DIRECTORY_COMMAND_DOMAIN: &[u8] = b"tracenet-v1 directory-command\0";

/// Default accepted difference between the requester's clock and ours, in seconds.
pub const DEFAULT_SKEW_SECS: i64 = 300;
/// Most request ids remembered for replay detection at once, per peer: one peer filling its
/// share (up to this many requests within the skew window) is refused alone, never the others.
pub const REPLAY_CAPACITY: usize = 200_000;

/// Why an envelope was refused. Each variant says whether a new attempt (a new envelope) helps.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The request carries no signed context. Retrying the same request does not help.
    #[error("request carries no signed context")]
    Missing,
    /// The context bytes do not decode or lack required fields. Retrying does not help.
    #[error("malformed request context: {0}")]
    Malformed(String),
    /// The context names another node than the client certificate. Retrying does not help.
    #[error("request context names {named} but the client certificate is {certified}")]
    SignerMismatch {
        /// Node in the context.
        named: String,
        /// Node in the certificate.
        certified: String,
    },
    /// No signing key is known for the node. Retrying helps once the directory has
    /// replicated the node's key here.
    #[error("no signing key known for {0}")]
    UnknownKey(String),
    /// The signature does not verify. Retrying helps only if a key change is still
    /// replicating.
    #[error("signature does not verify")]
    BadSignature,
    /// The context's time is outside the accepted clock skew. Retrying (a fresh context)
    /// helps once the clocks agree again.
    #[error("request context time {issued_at} is outside the accepted window around {now}")]
    Stale {
        /// Time in the context.
        issued_at: i64,
        /// Our time.
        now: i64,
    },
    /// The request id was seen before (a replay). This envelope never passes; a new one may.
    #[error("request id {0} was already used")]
    Replayed(String),
    /// This peer's share of the replay memory is full of unexpired ids: refuse rather than
    /// forget. Retrying later helps.
    #[error("too many recent requests; retry later")]
    Busy,
    /// The key file is unusable. Retrying does not help.
    #[error("signing key: {0}")]
    Key(String),
    /// The request body is not the one the signed context's digest names.
    #[error("the request body does not match the digest in its signed context")]
    BodyMismatch,
}

/// A node's Ed25519 signing key.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    node: NodeId,
}

impl std::fmt::Debug for SigningKey {
    // Never prints the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Loads a PKCS#8 key file, or creates one (mode 0600) if it does not exist.
    pub fn load_or_generate(path: &Path, node: NodeId) -> Result<SigningKey, EnvelopeError> {
        if !path.exists() {
            let pkcs8 = Self::generate_pkcs8()?;
            write_secret(path, &pkcs8).map_err(|e| EnvelopeError::Key(e.to_string()))?;
        }
        Self::load(path, node)
    }

    /// A fresh Ed25519 key as PKCS#8 v2 DER (what the key file holds).
    pub fn generate_pkcs8() -> Result<Vec<u8>, EnvelopeError> {
        Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
            .map(|doc| doc.as_ref().to_vec())
            .map_err(|_| EnvelopeError::Key("the system random source failed".into()))
    }

    /// Loads an existing PKCS#8 key file.
    pub fn load(path: &Path, node: NodeId) -> Result<SigningKey, EnvelopeError> {
        let bytes = std::fs::read(path)
            .map_err(|e| EnvelopeError::Key(format!("{}: {e}", path.display())))?;
        Self::from_pkcs8(&bytes, node)
    }

    /// A key from PKCS#8 DER bytes.
    pub fn from_pkcs8(bytes: &[u8], node: NodeId) -> Result<SigningKey, EnvelopeError> {
        let pair = Ed25519KeyPair::from_pkcs8(bytes)
            .map_err(|_| EnvelopeError::Key("not an Ed25519 PKCS#8 key".into()))?;
        Ok(SigningKey { pair, node })
    }

    /// The raw public key.
    pub fn public_key(&self) -> Vec<u8> {
        self.pair.public_key().as_ref().to_vec()
    }

    /// The node this key signs for.
    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// Signs a request context.
    pub fn sign_context(&self, ctx: &pb::RequestContext) -> pb::SignedContext {
        let context = ctx.encode_to_vec();
        let signature = self.sign(CONTEXT_DOMAIN, &[&context]);
        pb::SignedContext { context, signature }
    }

    /// Signs a request context after binding it to the request body: sets `body_sha256` to
    /// [`body_digest`] of `method` and `body` (the request encoded without its context).
    pub fn sign_request(
        &self,
        mut ctx: pb::RequestContext,
        method: &str,
        body: &[u8],
    ) -> pb::SignedContext {
        ctx.body_sha256 = body_digest(method, body);
        self.sign_context(&ctx)
    }

    /// Signs a statement of what this node (the owner) disclosed; the bytes signed are the ones
    /// sent, so recipients verify exactly what they received.
    pub fn sign_disclosure(&self, statement: &pb::DisclosureStatement) -> pb::SignedDisclosure {
        let statement = statement.encode_to_vec();
        let signature = self.sign(DISCLOSURE_DOMAIN, &[&len_be(&statement), &statement]);
        pb::SignedDisclosure {
            statement,
            signature,
        }
    }

    /// Signs a response body (encoded with its signature field empty) for a request.
    pub fn sign_response(&self, request_id: &str, body: &[u8]) -> pb::ResponseSignature {
        pb::ResponseSignature {
            responder_node: self.node.to_string(),
            signature: self.sign(RESPONSE_DOMAIN, &[request_id.as_bytes(), b"\0", body]),
        }
    }

    /// Signs the header and body of a sealed message as its sender (scheme in `hub.proto`).
    pub fn sign_sealed(&self, header: &[u8], body: &[u8]) -> Vec<u8> {
        self.sign(SEALED_DOMAIN, &[&len_be(header), header, body])
    }

    /// Signs a secure-aggregation round's received list as a member of the round (the statement
    /// from [`crate::stats::round::confirmation_statement`]).
    pub fn sign_round_confirmation(&self, statement: &[u8]) -> Vec<u8> {
        self.sign(ROUND_CONFIRMATION_DOMAIN, &[statement])
    }

    /// Signs an audit checkpoint.
    pub fn sign_checkpoint(&self, seq: u64, chain_hash: &[u8]) -> Vec<u8> {
        self.sign(CHECKPOINT_DOMAIN, &[&seq.to_be_bytes(), chain_hash])
    }

    /// Signs a directory command in place as its writer: sets `writer` to this key's node and
    /// `signature` over the command's canonical encoding ([`directory_command_bytes`]).
    pub fn sign_directory_command(&self, cmd: &mut pb::DirectoryCommand) {
        cmd.writer = self.node.to_string();
        let body = directory_command_bytes(cmd);
        cmd.signature = self.sign(DIRECTORY_COMMAND_DOMAIN, &[&body]);
    }

    fn sign(&self, domain: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut msg = domain.to_vec();
        for p in parts {
            msg.extend_from_slice(p);
        }
        self.pair.sign(&msg).as_ref().to_vec()
    }
}

pub(crate) fn write_secret(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn verify(public: &[u8], domain: &[u8], parts: &[&[u8]], sig: &[u8]) -> Result<(), EnvelopeError> {
    let mut msg = domain.to_vec();
    for p in parts {
        msg.extend_from_slice(p);
    }
    UnparsedPublicKey::new(&ED25519, public)
        .verify(&msg, sig)
        .map_err(|_| EnvelopeError::BadSignature)
}

/// A length as 4 bytes, big-endian (saturating: nothing signed comes near 4 GiB).
fn len_be(bytes: &[u8]) -> [u8; 4] {
    u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes()
}

/// The digest a request context carries of its request body: SHA-256 over the body domain, the
/// gRPC method path and the request encoded without its context, each length-prefixed.
pub fn body_digest(method: &str, body: &[u8]) -> Vec<u8> {
    let mut d = ring::digest::Context::new(&ring::digest::SHA256);
    d.update(BODY_DOMAIN);
    d.update(&len_be(method.as_bytes()));
    d.update(method.as_bytes());
    d.update(&len_be(body));
    d.update(body);
    d.finish().as_ref().to_vec()
}

/// Checks that a verified context names this request body (see [`body_digest`]).
pub fn check_body(
    ctx: &pb::RequestContext,
    method: &str,
    body: &[u8],
) -> Result<(), EnvelopeError> {
    if ctx.body_sha256.is_empty() {
        return Err(EnvelopeError::Malformed(
            "the request context carries no body digest".into(),
        ));
    }
    // Not secret: the digest is in the signed context already.
    if ctx.body_sha256 != body_digest(method, body) {
        return Err(EnvelopeError::BodyMismatch);
    }
    Ok(())
}

/// The canonical bytes a directory command's signature covers (without the domain): its proto3
/// encoding with `signature` empty. Commands hold no map fields, so the encoding is unique.
pub fn directory_command_bytes(cmd: &pb::DirectoryCommand) -> Vec<u8> {
    let mut unsigned = cmd.clone();
    unsigned.signature = Vec::new();
    unsigned.encode_to_vec()
}

/// Verifies a directory command's signature with its writer's public key.
pub fn verify_directory_command(
    public: &[u8],
    cmd: &pb::DirectoryCommand,
) -> Result<(), EnvelopeError> {
    if cmd.signature.is_empty() {
        return Err(EnvelopeError::Missing);
    }
    verify(
        public,
        DIRECTORY_COMMAND_DOMAIN,
        &[&directory_command_bytes(cmd)],
        &cmd.signature,
    )
}

/// A peer request carrying a signed context in field 1, bound to its body by digest.
pub trait SignedRequest: Message + Sized {
    /// The full gRPC method path the request is sent to (part of the digest).
    const METHOD: &'static str;
    /// The request's signed context.
    fn context_mut(&mut self) -> &mut Option<pb::SignedContext>;

    /// Takes the signed context out and returns it with the body it must bind (the request
    /// encoded without it).
    fn split(&mut self) -> (Option<pb::SignedContext>, Vec<u8>) {
        let ctx = self.context_mut().take();
        let body = self.encode_to_vec();
        (ctx, body)
    }

    /// Signs `ctx` for this request (binding its body) and puts it in.
    fn sign_with(&mut self, key: &SigningKey, ctx: pb::RequestContext) {
        *self.context_mut() = None;
        let body = self.encode_to_vec();
        *self.context_mut() = Some(key.sign_request(ctx, Self::METHOD, &body));
    }
}

macro_rules! signed_request {
    ($($ty:ident => $method:literal),* $(,)?) => {$(
        impl SignedRequest for pb::$ty {
            const METHOD: &'static str = concat!("/tracenet.v1.PeerExchange/", $method);
            fn context_mut(&mut self) -> &mut Option<pb::SignedContext> {
                &mut self.context
            }
        }
    )*};
}

signed_request! {
    LookupRequest => "Lookup",
    QueryRecordsRequest => "QueryRecords",
    SubmitTraceRequestMessage => "SubmitTraceRequest",
    SubmitTraceResponseMessage => "SubmitTraceResponse",
    SubmitTraceInformationMessage => "SubmitTraceInformation",
    RetractRequest => "Retract",
    ShareForwardedRequest => "ShareForwarded",
    StatisticsRequest => "StatisticsTables",
    AggregationRequest => "AggregateStatistics",
}

/// Parses a hex Ed25519 public key (64 hex digits).
pub fn parse_public_key(text: &str) -> Option<Vec<u8>> {
    tracenet_ids::hex::decode_array::<32>(text.trim()).map(Vec::from)
}

/// Public signing keys of other nodes.
#[derive(Debug, Clone, Default)]
pub struct PeerKeys(HashMap<NodeId, Vec<u8>>);

impl PeerKeys {
    /// Keys by node.
    pub fn new(keys: HashMap<NodeId, Vec<u8>>) -> PeerKeys {
        PeerKeys(keys)
    }

    fn get(&self, node: &NodeId) -> Result<&[u8], EnvelopeError> {
        self.0
            .get(node)
            .map(Vec::as_slice)
            .ok_or_else(|| EnvelopeError::UnknownKey(node.to_string()))
    }

    /// Verifies an owner's signed disclosure with the key of the owner it names, and returns the
    /// statement decoded from the bytes that were signed.
    pub fn verify_disclosure(
        &self,
        signed: Option<&pb::SignedDisclosure>,
    ) -> Result<pb::DisclosureStatement, EnvelopeError> {
        let signed = signed.ok_or(EnvelopeError::Missing)?;
        let statement = pb::DisclosureStatement::decode(signed.statement.as_slice())
            .map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        let owner = statement
            .reference
            .as_ref()
            .and_then(|r| NodeId::parse(&r.owner_node).ok())
            .ok_or_else(|| EnvelopeError::Malformed("disclosure names no owner".into()))?;
        verify(
            self.get(&owner)?,
            DISCLOSURE_DOMAIN,
            &[&len_be(&signed.statement), &signed.statement],
            &signed.signature,
        )?;
        Ok(statement)
    }

    /// Verifies a sealed message's inner signature by `sender` over its header and body.
    pub fn verify_sealed(
        &self,
        sender: &NodeId,
        header: &[u8],
        body: &[u8],
        signature: &[u8],
    ) -> Result<(), EnvelopeError> {
        verify(
            self.get(sender)?,
            SEALED_DOMAIN,
            &[&len_be(header), header, body],
            signature,
        )
    }

    /// Verifies `node`'s confirmation of a secure-aggregation round's received list.
    pub fn verify_round_confirmation(
        &self,
        node: &NodeId,
        statement: &[u8],
        signature: &[u8],
    ) -> Result<(), EnvelopeError> {
        verify(
            self.get(node)?,
            ROUND_CONFIRMATION_DOMAIN,
            &[statement],
            signature,
        )
    }

    /// Verifies a response signature from `responder` for `request_id` over `body`.
    pub fn verify_response(
        &self,
        responder: &NodeId,
        request_id: &str,
        body: &[u8],
        sig: Option<&pb::ResponseSignature>,
    ) -> Result<(), EnvelopeError> {
        let sig = sig.ok_or(EnvelopeError::Missing)?;
        if sig.responder_node != responder.as_str() {
            return Err(EnvelopeError::SignerMismatch {
                named: sig.responder_node.chars().take(64).collect(),
                certified: responder.to_string(),
            });
        }
        verify(
            self.get(responder)?,
            RESPONSE_DOMAIN,
            &[request_id.as_bytes(), b"\0", body],
            &sig.signature,
        )
    }
}

/// Verifies an audit checkpoint signature with the node's public key.
pub fn verify_checkpoint(
    public: &[u8],
    seq: u64,
    chain_hash: &[u8],
    sig: &[u8],
) -> Result<(), EnvelopeError> {
    verify(
        public,
        CHECKPOINT_DOMAIN,
        &[&seq.to_be_bytes(), chain_hash],
        sig,
    )
}

/// Request ids seen recently, each kept until its context's time leaves the skew window, in a
/// separate memory per peer (callers are admitted members, so the number of peers is bounded
/// by the directory) of at most `capacity` ids each.
#[derive(Debug)]
pub struct ReplayGuard {
    seen: Mutex<HashMap<NodeId, HashMap<String, i64>>>,
    skew: u64,
    capacity: usize,
}

impl ReplayGuard {
    /// A guard accepting contexts up to `skew` seconds from now (a negative skew counts as 0),
    /// remembering at most `capacity` ids per peer.
    pub fn new(skew: i64, capacity: usize) -> ReplayGuard {
        ReplayGuard {
            seen: Mutex::new(HashMap::new()),
            skew: skew.max(0).unsigned_abs(),
            capacity,
        }
    }

    /// Whether `issued_at` is within the skew window around `now`; `abs_diff` cannot overflow,
    /// whatever time a context claims.
    fn fresh(&self, issued_at: i64, now: i64) -> bool {
        issued_at.abs_diff(now) <= self.skew
    }

    /// Checks a signed context from the node `certified` by its certificate.
    pub fn verify_context(
        &self,
        keys: &PeerKeys,
        signed: Option<&pb::SignedContext>,
        certified: &NodeId,
        now: i64,
    ) -> Result<pb::RequestContext, EnvelopeError> {
        let signed = signed.ok_or(EnvelopeError::Missing)?;
        let ctx = pb::RequestContext::decode(signed.context.as_slice())
            .map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        if ctx.requester_node != certified.as_str() {
            return Err(EnvelopeError::SignerMismatch {
                named: ctx.requester_node.chars().take(64).collect(),
                certified: certified.to_string(),
            });
        }
        if ctx.request_id.is_empty() || ctx.request_id.len() > 128 {
            return Err(EnvelopeError::Malformed(
                "request_id must be 1-128 bytes".into(),
            ));
        }
        verify(
            keys.get(certified)?,
            CONTEXT_DOMAIN,
            &[&signed.context],
            &signed.signature,
        )?;
        if !self.fresh(ctx.issued_at, now) {
            return Err(EnvelopeError::Stale {
                issued_at: ctx.issued_at,
                now,
            });
        }
        let mut all = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let seen = all.entry(certified.clone()).or_default();
        if seen.contains_key(&ctx.request_id) {
            return Err(EnvelopeError::Replayed(ctx.request_id.clone()));
        }
        if seen.len() >= self.capacity {
            seen.retain(|_, expires| *expires >= now);
            if seen.len() >= self.capacity {
                return Err(EnvelopeError::Busy);
            }
        }
        // Fresh, so within `skew` of `now`: this cannot overflow; saturating all the same.
        let expires = ctx
            .issued_at
            .saturating_add(i64::try_from(self.skew).unwrap_or(i64::MAX));
        seen.insert(ctx.request_id.clone(), expires);
        Ok(ctx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn node(s: &str) -> NodeId {
        NodeId::parse(s).unwrap()
    }

    fn key(s: &str) -> SigningKey {
        let pk8 = SigningKey::generate_pkcs8().unwrap();
        SigningKey::from_pkcs8(&pk8, node(s)).unwrap()
    }

    fn ctx(id: &str, from: &str, at: i64) -> pb::RequestContext {
        pb::RequestContext {
            request_id: id.into(),
            requester_node: from.into(),
            agency_kind: pb::AgencyKind::Police as i32,
            purpose: pb::Purpose::Tracing as i32,
            legal_basis: "synthetic".into(),
            case_reference: String::new(),
            issued_at: at,
            body_sha256: Vec::new(),
        }
    }

    fn setup() -> (SigningKey, PeerKeys, ReplayGuard) {
        let k = key("DEU-CUS");
        let keys = PeerKeys::new(HashMap::from([(node("DEU-CUS"), k.public_key())]));
        (k, keys, ReplayGuard::new(300, 1000))
    }

    #[test]
    fn a_good_context_verifies_once() {
        let (k, keys, guard) = setup();
        let signed = k.sign_context(&ctx("r1", "DEU-CUS", 1000));
        let got = guard
            .verify_context(&keys, Some(&signed), &node("DEU-CUS"), 1010)
            .unwrap();
        assert_eq!(got.request_id, "r1");
        assert_eq!(
            guard.verify_context(&keys, Some(&signed), &node("DEU-CUS"), 1011),
            Err(EnvelopeError::Replayed("r1".into()))
        );
    }

    #[test]
    fn tampering_mismatch_staleness_and_unknown_keys_are_refused() {
        let (k, keys, guard) = setup();
        let mut signed = k.sign_context(&ctx("r2", "DEU-CUS", 1000));
        signed.context[3] ^= 1;
        assert!(
            guard
                .verify_context(&keys, Some(&signed), &node("DEU-CUS"), 1000)
                .is_err()
        );

        let signed = k.sign_context(&ctx("r3", "DEU-CUS", 1000));
        assert!(matches!(
            guard.verify_context(&keys, Some(&signed), &node("ITA-POL"), 1000),
            Err(EnvelopeError::SignerMismatch { .. })
        ));
        assert!(matches!(
            guard.verify_context(&keys, Some(&signed), &node("DEU-CUS"), 2000),
            Err(EnvelopeError::Stale { .. })
        ));

        // Signed by another key than the one published for DEU-CUS.
        let impostor = key("DEU-CUS");
        let forged = impostor.sign_context(&ctx("r4", "DEU-CUS", 1000));
        assert_eq!(
            guard.verify_context(&keys, Some(&forged), &node("DEU-CUS"), 1000),
            Err(EnvelopeError::BadSignature)
        );
        let other = key("ITA-POL").sign_context(&ctx("r5", "ITA-POL", 1000));
        assert!(matches!(
            guard.verify_context(&keys, Some(&other), &node("ITA-POL"), 1000),
            Err(EnvelopeError::UnknownKey(_))
        ));
        assert_eq!(
            guard.verify_context(&keys, None, &node("DEU-CUS"), 1000),
            Err(EnvelopeError::Missing)
        );
    }

    #[test]
    fn the_replay_memory_forgets_only_expired_ids() {
        let (k, keys, _) = setup();
        let guard = ReplayGuard::new(10, 2);
        let c = |id: &str, at| k.sign_context(&ctx(id, "DEU-CUS", at));
        let d = node("DEU-CUS");
        guard
            .verify_context(&keys, Some(&c("a", 100)), &d, 100)
            .unwrap();
        guard
            .verify_context(&keys, Some(&c("b", 100)), &d, 100)
            .unwrap();
        assert_eq!(
            guard.verify_context(&keys, Some(&c("c", 105)), &d, 105),
            Err(EnvelopeError::Busy)
        );
        // Once a and b have left the window they can be forgotten (and could not be replayed
        // anyway: their time is now stale).
        guard
            .verify_context(&keys, Some(&c("c", 120)), &d, 120)
            .unwrap();
        assert!(matches!(
            guard.verify_context(&keys, Some(&c("a", 100)), &d, 120),
            Err(EnvelopeError::Stale { .. })
        ));
    }

    #[test]
    fn a_signed_request_binds_its_body() {
        let (k, keys, guard) = setup();
        let mut req = pb::LookupRequest {
            context: None,
            serial_number: "SYN-1".into(),
            manufacturer: String::new(),
            ..Default::default()
        };
        req.sign_with(&k, ctx("b1", "DEU-CUS", 1000));
        let mut altered = req.clone();
        let (signed, body) = req.split();
        let c = guard
            .verify_context(&keys, signed.as_ref(), &node("DEU-CUS"), 1000)
            .unwrap();
        check_body(&c, pb::LookupRequest::METHOD, &body).unwrap();
        // Another serial under the same signed context, or the same body for another method.
        altered.serial_number = "SYN-2".into();
        let (_, other) = altered.split();
        assert_eq!(
            check_body(&c, pb::LookupRequest::METHOD, &other),
            Err(EnvelopeError::BodyMismatch)
        );
        assert_eq!(
            check_body(&c, pb::RetractRequest::METHOD, &body),
            Err(EnvelopeError::BodyMismatch)
        );
        let bare = ctx("b2", "DEU-CUS", 1000);
        assert!(matches!(
            check_body(&bare, pb::LookupRequest::METHOD, &body),
            Err(EnvelopeError::Malformed(_))
        ));
    }

    /// The byte layouts documented in envelope.proto, built by hand as another implementation
    /// would build them.
    #[test]
    fn the_signed_bytes_are_as_documented() {
        let mut expected = b"tracenet-v1 request-body\0".to_vec();
        expected.extend_from_slice(&[0, 0, 0, 2]);
        expected.extend_from_slice(b"/m");
        expected.extend_from_slice(&[0, 0, 0, 3]);
        expected.extend_from_slice(b"abc");
        assert_eq!(
            body_digest("/m", b"abc"),
            ring::digest::digest(&ring::digest::SHA256, &expected).as_ref()
        );

        let (k, _, _) = setup();
        let signed = k.sign_disclosure(&pb::DisclosureStatement {
            policy_rule: "eu".into(),
            ..Default::default()
        });
        let mut message = b"tracenet-v1 disclosure\0".to_vec();
        message.extend_from_slice(&u32::try_from(signed.statement.len()).unwrap().to_be_bytes());
        message.extend_from_slice(&signed.statement);
        UnparsedPublicKey::new(&ED25519, k.public_key())
            .verify(&message, &signed.signature)
            .unwrap();

        let ctx = pb::RequestContext {
            request_id: "r".into(),
            ..Default::default()
        };
        let sc = k.sign_context(&ctx);
        let mut message = b"tracenet-v1 request-context\0".to_vec();
        message.extend_from_slice(&sc.context);
        UnparsedPublicKey::new(&ED25519, k.public_key())
            .verify(&message, &sc.signature)
            .unwrap();
    }

    #[test]
    fn a_disclosure_verifies_with_its_owners_key_over_the_bytes_received() {
        let (k, keys, _) = setup();
        let st = pb::DisclosureStatement {
            reference: Some(pb::RecordRef {
                owner_node: "DEU-CUS".into(),
                reference: "r1".into(),
            }),
            policy_rule: "eu".into(),
            ..Default::default()
        };
        let signed = k.sign_disclosure(&st);
        assert_eq!(keys.verify_disclosure(Some(&signed)).unwrap(), st);
        // A newer owner's statement with a field this release does not know still verifies:
        // the signature is over the bytes received, never over a re-encoding.
        let mut newer = st.encode_to_vec();
        newer.extend_from_slice(&[0xa0, 0x06, 0x01]);
        let newer = pb::SignedDisclosure {
            signature: k.sign(DISCLOSURE_DOMAIN, &[&len_be(&newer), &newer]),
            statement: newer,
        };
        assert_eq!(keys.verify_disclosure(Some(&newer)).unwrap(), st);
        let mut altered = signed.clone();
        altered.statement[2] ^= 1;
        assert!(keys.verify_disclosure(Some(&altered)).is_err());
        // Naming another owner than the signer: no key, or the wrong one.
        let mut other = st.clone();
        other.reference = Some(pb::RecordRef {
            owner_node: "ITA-POL".into(),
            reference: "r1".into(),
        });
        assert!(matches!(
            keys.verify_disclosure(Some(&k.sign_disclosure(&other))),
            Err(EnvelopeError::UnknownKey(_))
        ));
        // A response signature is not a disclosure signature.
        let as_response = k.sign_response("r1", &signed.statement);
        let fake = pb::SignedDisclosure {
            statement: signed.statement.clone(),
            signature: as_response.signature,
        };
        assert_eq!(
            keys.verify_disclosure(Some(&fake)),
            Err(EnvelopeError::BadSignature)
        );
    }

    #[test]
    fn one_peer_filling_its_replay_memory_locks_out_only_itself() {
        let (deu, ita) = (key("DEU-CUS"), key("ITA-POL"));
        let keys = PeerKeys::new(HashMap::from([
            (node("DEU-CUS"), deu.public_key()),
            (node("ITA-POL"), ita.public_key()),
        ]));
        let guard = ReplayGuard::new(10, 2);
        let (d, i) = (node("DEU-CUS"), node("ITA-POL"));
        for id in ["a", "b"] {
            let c = deu.sign_context(&ctx(id, "DEU-CUS", 100));
            guard.verify_context(&keys, Some(&c), &d, 100).unwrap();
        }
        let c = deu.sign_context(&ctx("c", "DEU-CUS", 100));
        assert_eq!(
            guard.verify_context(&keys, Some(&c), &d, 100),
            Err(EnvelopeError::Busy)
        );
        // ITA-POL is unaffected, and may use the same request ids.
        for id in ["a", "b"] {
            let c = ita.sign_context(&ctx(id, "ITA-POL", 100));
            guard.verify_context(&keys, Some(&c), &i, 100).unwrap();
        }
    }

    #[test]
    fn extreme_context_times_are_stale_never_an_overflow() {
        let (k, keys, guard) = setup();
        let d = node("DEU-CUS");
        for (at, now) in [
            (i64::MIN, 1_000),
            (i64::MAX, 1_000),
            (i64::MIN + 1_000, 1_000),
            (i64::MAX, i64::MIN),
            (i64::MIN, i64::MAX),
        ] {
            let c = k.sign_context(&ctx(&format!("x{at}{now}"), "DEU-CUS", at));
            assert!(
                matches!(
                    guard.verify_context(&keys, Some(&c), &d, now),
                    Err(EnvelopeError::Stale { .. })
                ),
                "{at} {now}"
            );
        }
        // At the very end of time a fresh context is still accepted and remembered.
        let c = k.sign_context(&ctx("end", "DEU-CUS", i64::MAX));
        guard.verify_context(&keys, Some(&c), &d, i64::MAX).unwrap();
        assert!(matches!(
            guard.verify_context(&keys, Some(&c), &d, i64::MAX),
            Err(EnvelopeError::Replayed(_))
        ));
        assert!(ReplayGuard::new(-5, 1).fresh(7, 7) && !ReplayGuard::new(-5, 1).fresh(7, 8));
    }

    #[test]
    fn responses_and_checkpoints_verify_only_unaltered() {
        let (k, keys, _) = setup();
        let sig = k.sign_response("r1", b"body");
        keys.verify_response(&node("DEU-CUS"), "r1", b"body", Some(&sig))
            .unwrap();
        assert!(
            keys.verify_response(&node("DEU-CUS"), "r2", b"body", Some(&sig))
                .is_err()
        );
        assert!(
            keys.verify_response(&node("DEU-CUS"), "r1", b"bodY", Some(&sig))
                .is_err()
        );
        let cp = k.sign_checkpoint(7, &[1; 32]);
        verify_checkpoint(&k.public_key(), 7, &[1; 32], &cp).unwrap();
        assert!(verify_checkpoint(&k.public_key(), 8, &[1; 32], &cp).is_err());
        // A context signature is not a response signature.
        let signed = k.sign_context(&ctx("r1", "DEU-CUS", 1));
        let fake = pb::ResponseSignature {
            responder_node: "DEU-CUS".into(),
            signature: signed.signature,
        };
        assert!(
            keys.verify_response(&node("DEU-CUS"), "r1", &signed.context, Some(&fake))
                .is_err()
        );
    }
}
