//! Sealed messages: one exchange call (or its reply) encrypted to its recipient and signed by its
//! sender, so a hub can carry it without reading or altering it (scheme in `hub.proto`).
//!
//! X25519 for the key agreement (`x25519-dalek`: ring has no static X25519 private keys, and a
//! recipient's key must outlive one message), HKDF-SHA256 and AES-256-GCM from ring. The header
//! (routing metadata) is both the AEAD's associated data and part of what the sender signs, so a
//! hub that re-addresses, re-labels or re-times a message makes it unopenable; a hub that replays
//! it delivers a call whose own signed context the recipient has already seen. Pure apart from
//! the random source.

use std::path::Path;

use prost::Message;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf::{HKDF_SHA256, KeyType, Salt};
use ring::rand::{SecureRandom, SystemRandom};
use tracenet_proto::v1 as pb;
use x25519_dalek::{PublicKey, StaticSecret};

use crate::envelope::{PeerKeys, SigningKey};
use crate::ids::NodeId;

const KEY_INFO: &[u8] = b"tracenet-v1 seal key";
const PAIR_SALT: &[u8] = b"tracenet-v1 pairwise secret";

/// Why a sealed message could not be made or opened. Nothing about a refused message is
/// retryable as it is: the sender must seal a new one.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The recipient has published no usable sealing key. Retrying helps once it has.
    #[error("{0} has published no sealing key")]
    NoKey(String),
    /// The message is not addressed to this node.
    #[error("sealed for {0}, not for this node")]
    NotForUs(String),
    /// Decryption failed: the message was altered, or sealed to another key.
    #[error("sealed message does not open (altered, or sealed to another key)")]
    Undecryptable,
    /// The plaintext is not a sealed content or body.
    #[error("sealed message is malformed: {0}")]
    Malformed(String),
    /// The sender's signature does not verify with its directory key.
    #[error("sealed message is not signed by its sender {sender}: {why}")]
    BadSignature {
        /// The sender the header names.
        sender: String,
        /// Why.
        why: String,
    },
    /// The system random source failed.
    #[error("the system random source failed")]
    Random,
    /// Reading or writing the key file failed.
    #[error("sealing key file {path}: {why}")]
    KeyFile {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
}

/// A node's X25519 secret, what messages sealed to it are opened with.
pub struct SealingSecret(StaticSecret);

impl std::fmt::Debug for SealingSecret {
    // Never prints the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealingSecret").finish_non_exhaustive()
    }
}

impl SealingSecret {
    /// A fresh secret.
    pub fn generate() -> Result<SealingSecret, SealError> {
        Ok(SealingSecret(StaticSecret::from(random::<32>()?)))
    }

    /// Loads the 32-byte key file, or creates one (mode 0600) if it does not exist.
    pub fn load_or_generate(path: &Path) -> Result<SealingSecret, SealError> {
        let err = |why: String| SealError::KeyFile {
            path: path.display().to_string(),
            why,
        };
        if !path.exists() {
            let bytes = random::<32>()?;
            crate::envelope::write_secret(path, &bytes).map_err(|e| err(e.to_string()))?;
        }
        let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| err("not a 32-byte X25519 key".into()))?;
        Ok(SealingSecret(StaticSecret::from(bytes)))
    }

    /// The public key others seal to (published in the directory).
    pub fn public_key(&self) -> [u8; 32] {
        PublicKey::from(&self.0).to_bytes()
    }

    /// The 32-byte secret this node (`own`) shares with `other`, whose published sealing key is
    /// `other_key`: X25519 of the two static keys, then HKDF-SHA256 bound to the pair's ids
    /// (sorted, so both sides derive the same bytes). Used for the pairwise masks of secure
    /// aggregation ([`crate::stats::aggregate`]); never for sealing, whose keys are ephemeral.
    /// Refuses a key that yields an all-zero (non-contributory) agreement.
    pub fn pairwise_secret(
        &self,
        own: &NodeId,
        other: &NodeId,
        other_key: &[u8],
    ) -> Result<[u8; 32], SealError> {
        let public = public_of(other_key).ok_or_else(|| SealError::NoKey(other.to_string()))?;
        let shared = self.0.diffie_hellman(&public);
        if !shared.was_contributory() {
            return Err(SealError::NoKey(other.to_string()));
        }
        let (lo, hi) = if own.as_str() < other.as_str() {
            (own.as_str(), other.as_str())
        } else {
            (other.as_str(), own.as_str())
        };
        let mut info = Vec::with_capacity(lo.len() + hi.len() + 16);
        for part in [lo, hi] {
            info.extend_from_slice(&(part.len() as u64).to_be_bytes());
            info.extend_from_slice(part.as_bytes());
        }
        let prk = Salt::new(HKDF_SHA256, PAIR_SALT).extract(shared.as_bytes());
        let mut out = [0u8; 32];
        prk.expand(&[&info], Len32)
            .and_then(|okm| okm.fill(&mut out))
            .map_err(|_| SealError::Undecryptable)?;
        Ok(out)
    }
}

fn random<const N: usize>() -> Result<[u8; N], SealError> {
    let mut b = [0u8; N];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| SealError::Random)?;
    Ok(b)
}

/// What the routing metadata of a new message says.
#[derive(Debug, Clone)]
pub struct Address<'a> {
    /// The message's id (fresh per message).
    pub message_id: String,
    /// The recipient.
    pub recipient: &'a NodeId,
    /// The recipient's published sealing key.
    pub recipient_key: &'a [u8],
    /// The call's kind ("Lookup", ..., or "reply").
    pub kind: &'a str,
    /// For a reply: the id of the call it answers.
    pub in_reply_to: &'a str,
    /// Unix seconds.
    pub sent_at: i64,
}

/// The header bytes: the message with nonce and ciphertext absent.
fn header(m: &pb::SealedMessage) -> Vec<u8> {
    pb::SealedMessage {
        nonce: Vec::new(),
        ciphertext: Vec::new(),
        ..m.clone()
    }
    .encode_to_vec()
}

struct Len32;
impl KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

fn aead_key(
    shared: &[u8; 32],
    ephemeral: &[u8],
    recipient: &[u8],
) -> Result<LessSafeKey, SealError> {
    let mut salt = ephemeral.to_vec();
    salt.extend_from_slice(recipient);
    let prk = Salt::new(HKDF_SHA256, &salt).extract(shared);
    let mut key = [0u8; 32];
    prk.expand(&[KEY_INFO], Len32)
        .and_then(|okm| okm.fill(&mut key))
        .map_err(|_| SealError::Undecryptable)?;
    UnboundKey::new(&AES_256_GCM, &key)
        .map(LessSafeKey::new)
        .map_err(|_| SealError::Undecryptable)
}

fn public_of(bytes: &[u8]) -> Option<PublicKey> {
    <[u8; 32]>::try_from(bytes).ok().map(PublicKey::from)
}

/// Seals `body` from `sender` to the address.
pub fn seal(
    sender: &SigningKey,
    to: Address<'_>,
    body: &pb::SealedBody,
) -> Result<pb::SealedMessage, SealError> {
    let recipient_key =
        public_of(to.recipient_key).ok_or_else(|| SealError::NoKey(to.recipient.to_string()))?;
    let ephemeral = StaticSecret::from(random::<32>()?);
    let ephemeral_public = PublicKey::from(&ephemeral).to_bytes();
    let mut msg = pb::SealedMessage {
        message_id: to.message_id,
        sender: sender.node().to_string(),
        recipient: to.recipient.to_string(),
        kind: to.kind.to_owned(),
        sent_at: to.sent_at,
        ephemeral_key: ephemeral_public.to_vec(),
        in_reply_to: to.in_reply_to.to_owned(),
        nonce: Vec::new(),
        ciphertext: Vec::new(),
    };
    let head = header(&msg);
    let body = body.encode_to_vec();
    let signature = sender.sign_sealed(&head, &body);
    let mut plaintext = pb::SealedContent { body, signature }.encode_to_vec();
    let shared = ephemeral.diffie_hellman(&recipient_key).to_bytes();
    let key = aead_key(&shared, &ephemeral_public, recipient_key.as_bytes())?;
    let nonce = random::<NONCE_LEN>()?;
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(&head),
        &mut plaintext,
    )
    .map_err(|_| SealError::Random)?;
    msg.nonce = nonce.to_vec();
    msg.ciphertext = plaintext;
    Ok(msg)
}

/// Opens a message sealed to `own` (this node, holding `secret`) and checks its sender's
/// signature with the sender's directory key. Returns the sender and the body.
pub fn open(
    own: &NodeId,
    secret: &SealingSecret,
    keys: &PeerKeys,
    msg: &pb::SealedMessage,
) -> Result<(NodeId, pb::SealedBody), SealError> {
    if msg.recipient != own.as_str() {
        return Err(SealError::NotForUs(
            msg.recipient.chars().take(64).collect(),
        ));
    }
    let sender = NodeId::parse(&msg.sender).map_err(|e| SealError::Malformed(e.to_string()))?;
    let ephemeral = public_of(&msg.ephemeral_key)
        .ok_or_else(|| SealError::Malformed("ephemeral key is not 32 bytes".into()))?;
    let nonce: [u8; NONCE_LEN] = msg
        .nonce
        .as_slice()
        .try_into()
        .map_err(|_| SealError::Malformed("nonce is not 12 bytes".into()))?;
    let head = header(msg);
    let shared = secret.0.diffie_hellman(&ephemeral).to_bytes();
    let key = aead_key(&shared, &msg.ephemeral_key, &secret.public_key())?;
    let mut buf = msg.ciphertext.clone();
    let plain = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&head),
            &mut buf,
        )
        .map_err(|_| SealError::Undecryptable)?;
    let content =
        pb::SealedContent::decode(&plain[..]).map_err(|e| SealError::Malformed(e.to_string()))?;
    keys.verify_sealed(&sender, &head, &content.body, &content.signature)
        .map_err(|e| SealError::BadSignature {
            sender: sender.to_string(),
            why: e.to_string(),
        })?;
    let body = pb::SealedBody::decode(content.body.as_slice())
        .map_err(|e| SealError::Malformed(e.to_string()))?;
    Ok((sender, body))
}

/// A fresh message id: 128 random bits in hex.
pub fn new_message_id() -> Result<String, SealError> {
    Ok(tracenet_ids::hex::encode(&random::<16>()?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn key(id: &str) -> SigningKey {
        SigningKey::from_pkcs8(
            &SigningKey::generate_pkcs8().unwrap(),
            NodeId::parse(id).unwrap(),
        )
        .unwrap()
    }

    fn keys(of: &[&SigningKey]) -> PeerKeys {
        PeerKeys::new(
            of.iter()
                .map(|k| (k.node().clone(), k.public_key()))
                .collect::<HashMap<_, _>>(),
        )
    }

    #[test]
    fn pairwise_secrets_agree_and_depend_on_the_pair() {
        let (a, b, c) = (
            SealingSecret::generate().unwrap(),
            SealingSecret::generate().unwrap(),
            SealingSecret::generate().unwrap(),
        );
        let (ia, ib, ic) = (
            NodeId::parse("BEL-POL").unwrap(),
            NodeId::parse("DEU-BKA").unwrap(),
            NodeId::parse("FRA-POL").unwrap(),
        );
        let ab = a.pairwise_secret(&ia, &ib, &b.public_key()).unwrap();
        assert_eq!(ab, b.pairwise_secret(&ib, &ia, &a.public_key()).unwrap());
        assert_ne!(ab, a.pairwise_secret(&ia, &ic, &c.public_key()).unwrap());
        // The same keys under other ids give another secret.
        assert_ne!(ab, a.pairwise_secret(&ia, &ic, &b.public_key()).unwrap());
        assert!(a.pairwise_secret(&ia, &ib, &[0u8; 32]).is_err());
        assert!(a.pairwise_secret(&ia, &ib, &[1u8; 5]).is_err());
    }

    fn body() -> pb::SealedBody {
        pb::SealedBody {
            method: "/tracenet.v1.PeerExchange/Lookup".into(),
            messages: vec![b"CANARY-7f3a serial".to_vec()],
            ..Default::default()
        }
    }

    fn sealed(from: &SigningKey, to: &NodeId, secret: &SealingSecret) -> pb::SealedMessage {
        let pk = secret.public_key();
        seal(
            from,
            Address {
                message_id: new_message_id().unwrap(),
                recipient: to,
                recipient_key: &pk,
                kind: "Lookup",
                in_reply_to: "",
                sent_at: 1_700_000_000,
            },
            &body(),
        )
        .unwrap()
    }

    #[test]
    fn round_trip_and_nothing_readable_outside() {
        let (fra, ita) = (key("FRA-POL"), key("ITA-CAR"));
        let secret = SealingSecret::generate().unwrap();
        let m = sealed(&fra, ita.node(), &secret);
        let wire = m.encode_to_vec();
        assert!(!wire.windows(11).any(|w| w == b"CANARY-7f3a"));
        let (sender, b) = open(ita.node(), &secret, &keys(&[&fra]), &m).unwrap();
        assert_eq!(sender, *fra.node());
        assert_eq!(b, body());
    }

    #[test]
    fn altered_header_or_ciphertext_does_not_open() {
        let (fra, ita) = (key("FRA-POL"), key("ITA-CAR"));
        let secret = SealingSecret::generate().unwrap();
        let ks = keys(&[&fra]);
        let m = sealed(&fra, ita.node(), &secret);
        let mut flipped = m.clone();
        let last = flipped.ciphertext.len() - 1;
        flipped.ciphertext[last] ^= 1;
        assert!(matches!(
            open(ita.node(), &secret, &ks, &flipped),
            Err(SealError::Undecryptable)
        ));
        let mut relabelled = m.clone();
        relabelled.kind = "QueryRecords".into();
        assert!(matches!(
            open(ita.node(), &secret, &ks, &relabelled),
            Err(SealError::Undecryptable)
        ));
        let mut redated = m;
        redated.sent_at += 1;
        assert!(open(ita.node(), &secret, &ks, &redated).is_err());
    }

    #[test]
    fn another_recipient_or_key_cannot_open() {
        let (fra, ita, deu) = (key("FRA-POL"), key("ITA-CAR"), key("DEU-BKA"));
        let secret = SealingSecret::generate().unwrap();
        let other = SealingSecret::generate().unwrap();
        let m = sealed(&fra, ita.node(), &secret);
        assert!(matches!(
            open(deu.node(), &secret, &keys(&[&fra]), &m),
            Err(SealError::NotForUs(_))
        ));
        assert!(matches!(
            open(ita.node(), &other, &keys(&[&fra]), &m),
            Err(SealError::Undecryptable)
        ));
    }

    #[test]
    fn a_sender_claiming_another_identity_is_refused() {
        // A member seals with its own signing key but names FRA as the sender.
        let (fra, ita) = (key("FRA-POL"), key("ITA-CAR"));
        let forger = SigningKey::from_pkcs8(
            &SigningKey::generate_pkcs8().unwrap(),
            NodeId::parse("FRA-POL").unwrap(),
        )
        .unwrap();
        let secret = SealingSecret::generate().unwrap();
        let m = sealed(&forger, ita.node(), &secret);
        assert!(matches!(
            open(ita.node(), &secret, &keys(&[&fra]), &m),
            Err(SealError::BadSignature { .. })
        ));
    }

    #[test]
    fn key_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sealing.key");
        let a = SealingSecret::load_or_generate(&path).unwrap();
        let b = SealingSecret::load_or_generate(&path).unwrap();
        assert_eq!(a.public_key(), b.public_key());
    }
}
