//! Provenance and originator control of records that cross the federation, pure.
//!
//! Every record a node discloses carries its owner's signed [`pb::DisclosureStatement`] (the
//! disclosed view, its handling codes, the owner, reference, policy version and rule, the first
//! recipient and the request). A recipient keeps a copy only if that statement verifies against
//! the owner's key from the roster, and keeps what the statement says, never the unsigned fields
//! beside it. Forwarding passes the statement on unchanged, so the receiver of a forwarded copy
//! checks the owner's signature and the owner's handling codes itself.
//!
//! Originator control: onward transmission is denied unless the owner's handling codes grant it
//! (`allow_onward`, optionally limited to `onward_countries`; `no_onward_without_consent` still
//! forbids it). Retractions follow copies: a forwarder records whom it passed a copy to and relays
//! the owner's retraction to them (see `peer::retract`). Copies expire `retention_days` after they
//! were disclosed or received (whichever was first), and are purged by [`crate::retention`].

use tracenet_proto::v1 as pb;

use crate::country::CountryCode;
use crate::envelope::{EnvelopeError, PeerKeys};
use crate::ids::NodeId;

/// Seconds in a day, for retention.
const DAY: i64 = 86_400;

/// Why a disclosed or forwarded copy is not kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProvenanceError {
    /// The owner's signature is missing or does not verify.
    #[error("the owner's signed disclosure does not verify: {0}")]
    Signature(#[from] EnvelopeError),
    /// The statement names another owner, recipient or request than the exchange it came in.
    #[error("the owner's signed disclosure {0}")]
    Mismatch(String),
    /// This node owns the record.
    #[error("this node owns the record")]
    Own,
    /// The owner's handling codes do not allow passing the record on (to this country).
    #[error("{0}")]
    OnwardRefused(String),
}

/// The statement an owner (`me`) signs for one record it discloses to `recipient`.
pub fn statement(
    me: &NodeId,
    reference: &str,
    (record, handling): (Option<pb::SeizureRecord>, Option<pb::Handling>),
    (policy_version, policy_rule): (u64, &str),
    redacted_fields: Vec<String>,
    (recipient, request_id, now): (&NodeId, &str, i64),
) -> pb::DisclosureStatement {
    pb::DisclosureStatement {
        reference: Some(pb::RecordRef {
            owner_node: me.to_string(),
            reference: reference.to_owned(),
        }),
        record,
        handling,
        policy_version,
        policy_rule: policy_rule.to_owned(),
        redacted_fields,
        recipient_node: recipient.to_string(),
        request_id: request_id.to_owned(),
        disclosed_at: now,
    }
}

/// The owner named by a statement.
fn owner_of(st: &pb::DisclosureStatement) -> &str {
    st.reference
        .as_ref()
        .map(|r| r.owner_node.as_str())
        .unwrap_or_default()
}

/// A peer's answer to our request `request_id`: the statement of each item must verify with its
/// owner's key, name the answering `peer` as owner (a peer answers only for its own records),
/// this node (`me`) as recipient and this request.
pub fn verify_answer(
    keys: &PeerKeys,
    signed: Option<&pb::SignedDisclosure>,
    (peer, me, request_id): (&NodeId, &NodeId, &str),
) -> Result<pb::DisclosureStatement, ProvenanceError> {
    let st = keys.verify_disclosure(signed)?;
    if owner_of(&st) != peer.as_str() {
        return Err(ProvenanceError::Mismatch(format!(
            "names owner {} but {peer} answered",
            owner_of(&st).chars().take(64).collect::<String>()
        )));
    }
    if st.recipient_node != me.as_str() || st.request_id != request_id {
        return Err(ProvenanceError::Mismatch(
            "was made for another recipient or request".into(),
        ));
    }
    Ok(st)
}

/// When a copy must be purged: `retention_days` after the earlier of the owner's disclosure and
/// our receipt (so passing a copy on never extends the owner's limit); 0 when none is stated.
pub fn expires_at(st: &pb::DisclosureStatement, received_at: i64) -> i64 {
    let days = st.handling.as_ref().map_or(0, |h| h.retention_days);
    if days == 0 {
        return 0;
    }
    let from = if st.disclosed_at > 0 {
        st.disclosed_at.min(received_at)
    } else {
        received_at
    };
    from.saturating_add(i64::from(days) * DAY)
}

/// The copy kept of a verified statement: its content comes from the statement only.
pub fn copy_of(
    st: pb::DisclosureStatement,
    signed: pb::SignedDisclosure,
    received_at: i64,
    forwarded_by: Option<&NodeId>,
) -> pb::ReceivedRecord {
    let expires_at = expires_at(&st, received_at);
    pb::ReceivedRecord {
        reference: st.reference,
        record: st.record,
        handling: st.handling,
        policy_version: st.policy_version,
        policy_rule: st.policy_rule,
        received_at,
        request_id: st.request_id,
        forwarded_by: forwarded_by.map(ToString::to_string).unwrap_or_default(),
        owner_disclosure: Some(signed),
        expires_at,
    }
}

/// Whether the owner's handling codes let a holder pass the record on to a node of State `to`,
/// or, with `None`, to an organisation's node (which is in no State: refused whenever the
/// owner lists the States it may go to).
pub fn check_onward(
    handling: Option<&pb::Handling>,
    to: Option<CountryCode>,
) -> Result<(), String> {
    let Some(h) = handling else {
        return Err("the owner has not allowed onward transmission".into());
    };
    if h.no_onward_without_consent || !h.allow_onward {
        return Err("the owner has not allowed onward transmission".into());
    }
    let listed = |c: CountryCode| h.onward_countries.iter().any(|x| x == c.as_str());
    if !h.onward_countries.is_empty() && !to.is_some_and(listed) {
        return Err(format!(
            "the owner allows onward transmission only to {}",
            h.onward_countries.join(", ")
        ));
    }
    Ok(())
}

/// A copy `caller` passes on to this node (`me`, of State `country`; `None` for an
/// organisation's node), received `now`: its owner's statement must verify, not be ours, and
/// allow onward transmission to us.
pub fn accept_forwarded(
    keys: &PeerKeys,
    (me, country): (&NodeId, Option<CountryCode>),
    caller: &NodeId,
    copy: pb::ReceivedRecord,
    now: i64,
) -> Result<pb::ReceivedRecord, ProvenanceError> {
    let signed = copy.owner_disclosure.ok_or(EnvelopeError::Missing)?;
    let st = keys.verify_disclosure(Some(&signed))?;
    if owner_of(&st) == me.as_str() {
        return Err(ProvenanceError::Own);
    }
    if owner_of(&st) == caller.as_str() {
        // An owner shares its own records by answering requests, not by forwarding.
        return Err(ProvenanceError::Mismatch(
            "is the forwarder's own record".into(),
        ));
    }
    check_onward(st.handling.as_ref(), country).map_err(ProvenanceError::OnwardRefused)?;
    Ok(copy_of(st, signed, now, Some(caller)))
}

/// What to do with a forwarded copy given the copy held under the same reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// Nothing held: keep the forwarded copy.
    New,
    /// The same owner's statement is held already (a repeated delivery): keep what is held.
    Same,
    /// A copy received directly from the owner is held: never replaced by a forwarded one.
    FromOwner,
    /// Another forwarded copy is held: replace it by this one (the owner's newer statement).
    Replace,
}

/// Decides about a forwarded copy (`incoming`) given the copy held (`held`).
pub fn held(held: Option<&pb::ReceivedRecord>, incoming: &pb::ReceivedRecord) -> Held {
    match held {
        None => Held::New,
        Some(h) if h.owner_disclosure == incoming.owner_disclosure => Held::Same,
        Some(h) if h.forwarded_by.is_empty() => Held::FromOwner,
        Some(_) => Held::Replace,
    }
}

/// Whether `caller` may retract the copy held: the owner may; a forwarder only the copy it
/// passed on to us (so its relay of the owner's retraction reaches us).
pub fn may_retract(
    caller: &NodeId,
    reference: &pb::RecordRef,
    held: Option<&pb::ReceivedRecord>,
) -> bool {
    reference.owner_node == caller.as_str()
        || held.is_some_and(|h| h.forwarded_by == caller.as_str())
}

/// The relays of a retraction this node (`me`) received for a copy it passed on to `onward`.
pub fn relay_retraction(
    reference: &pb::RecordRef,
    onward: &[String],
    now: i64,
) -> Vec<pb::OutboxItem> {
    onward
        .iter()
        .map(|peer| pb::OutboxItem {
            id: format!(
                "retract:{}:{}:{peer}",
                reference.owner_node, reference.reference
            ),
            target_node: peer.clone(),
            payload: Some(pb::outbox_item::Payload::Retract(reference.clone())),
            created_at: now,
            ..Default::default()
        })
        .collect()
}

/// When a kept copy expires: its `expires_at`, or for a copy kept before expiries were recorded,
/// `retention_days` after it was received; 0 when no limit was stated.
pub fn expiry(copy: &pb::ReceivedRecord) -> i64 {
    if copy.expires_at > 0 {
        return copy.expires_at;
    }
    match copy.handling.as_ref().map_or(0, |h| h.retention_days) {
        0 => 0,
        days => copy.received_at.saturating_add(i64::from(days) * DAY),
    }
}

/// The copies past their retention at `now`.
pub fn expired(copies: Vec<pb::ReceivedRecord>, now: i64) -> Vec<pb::ReceivedRecord> {
    copies
        .into_iter()
        .filter(|c| {
            let at = expiry(c);
            at > 0 && at <= now
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::HashMap;

    use prost::Message;

    use super::*;
    use crate::envelope::SigningKey;
    use crate::fixtures::{country, node};

    fn key(id: &str) -> SigningKey {
        SigningKey::from_pkcs8(&SigningKey::generate_pkcs8().unwrap(), node(id)).unwrap()
    }

    fn keys(of: &[&SigningKey]) -> PeerKeys {
        PeerKeys::new(
            of.iter()
                .map(|k| (k.node().clone(), k.public_key()))
                .collect::<HashMap<_, _>>(),
        )
    }

    fn handling(allow: bool, countries: &[&str], days: u32) -> pb::Handling {
        pb::Handling {
            allow_onward: allow,
            onward_countries: countries.iter().map(|c| (*c).to_owned()).collect(),
            retention_days: days,
            ..Default::default()
        }
    }

    fn signed(by: &SigningKey, to: &str, h: pb::Handling) -> pb::SignedDisclosure {
        let st = statement(
            by.node(),
            "r1",
            (Some(pb::SeizureRecord::default()), Some(h)),
            (3, "eu"),
            vec![],
            (&node(to), "req-1", 1000),
        );
        by.sign_disclosure(&st)
    }

    #[test]
    fn an_answer_counts_only_if_its_owner_signed_it_for_us() {
        let (fra, deu) = (key("FRA-POL"), key("DEU-CUS"));
        let k = keys(&[&fra, &deu]);
        let ours = (&node("FRA-POL"), &node("DEU-CUS"), "req-1");
        let good = signed(&fra, "DEU-CUS", handling(false, &[], 0));
        let st = verify_answer(&k, Some(&good), ours).unwrap();
        assert_eq!(st.policy_rule, "eu");
        // A peer answering with a statement naming another owner (even a genuine one).
        let other = (&node("ITA-POL"), &node("DEU-CUS"), "req-1");
        assert!(matches!(
            verify_answer(&k, Some(&good), other),
            Err(ProvenanceError::Mismatch(_))
        ));
        // Another request or recipient.
        assert!(verify_answer(&k, Some(&good), (&node("FRA-POL"), &node("DEU-CUS"), "x")).is_err());
        // Altered bytes, a fabricated signer, or none at all.
        let mut bad = good.clone();
        bad.statement[4] ^= 1;
        assert!(verify_answer(&k, Some(&bad), ours).is_err());
        let impostor = signed(&key("FRA-POL"), "DEU-CUS", handling(false, &[], 0));
        assert_eq!(
            verify_answer(&k, Some(&impostor), ours),
            Err(ProvenanceError::Signature(EnvelopeError::BadSignature))
        );
        assert!(verify_answer(&k, None, ours).is_err());
    }

    #[test]
    fn onward_transmission_needs_the_owners_explicit_permission() {
        let ita = Some(country("ITA"));
        assert!(check_onward(None, ita).is_err());
        assert!(check_onward(Some(&pb::Handling::default()), ita).is_err());
        assert!(check_onward(Some(&handling(true, &[], 0)), ita).is_ok());
        assert!(check_onward(Some(&handling(true, &["ITA", "ESP"], 0)), ita).is_ok());
        assert!(check_onward(Some(&handling(true, &["ESP"], 0)), ita).is_err());
        let reserved = pb::Handling {
            no_onward_without_consent: true,
            ..handling(true, &[], 0)
        };
        assert!(check_onward(Some(&reserved), ita).is_err());
        // An organisation's node is in no State: only an unrestricted permission reaches it.
        assert!(check_onward(Some(&handling(true, &[], 0)), None).is_ok());
        assert!(check_onward(Some(&handling(true, &["ITA"], 0)), None).is_err());
    }

    #[test]
    fn a_forwarded_copy_is_kept_only_with_the_owners_signature_and_permission() {
        let (fra, deu) = (key("FRA-POL"), key("DEU-CUS"));
        let k = keys(&[&fra, &deu]);
        let me = (&node("ITA-POL"), Some(country("ITA")));
        let copy = |s: pb::SignedDisclosure| pb::ReceivedRecord {
            owner_disclosure: Some(s),
            // Unsigned fields are ignored.
            policy_rule: "forged".into(),
            ..Default::default()
        };
        let allowed = signed(&fra, "DEU-CUS", handling(true, &[], 2));
        let kept = accept_forwarded(&k, me, &node("DEU-CUS"), copy(allowed.clone()), 5000).unwrap();
        assert_eq!(
            (kept.policy_rule.as_str(), kept.forwarded_by.as_str()),
            ("eu", "DEU-CUS")
        );
        // Two days from the owner's disclosure (1000), not from our receipt.
        assert_eq!(kept.expires_at, 1000 + 2 * DAY);
        let denied = signed(&fra, "DEU-CUS", handling(false, &[], 0));
        assert!(matches!(
            accept_forwarded(&k, me, &node("DEU-CUS"), copy(denied), 5000),
            Err(ProvenanceError::OnwardRefused(_))
        ));
        // A statement the forwarder made up in the owner's name.
        let forged = signed(&deu, "DEU-CUS", handling(true, &[], 0));
        let mut forged_as_fra = forged.clone();
        let mut st = pb::DisclosureStatement::decode(forged.statement.as_slice()).unwrap();
        st.reference = Some(pb::RecordRef {
            owner_node: "FRA-POL".into(),
            reference: "r1".into(),
        });
        forged_as_fra.statement = st.encode_to_vec();
        assert!(matches!(
            accept_forwarded(&k, me, &node("DEU-CUS"), copy(forged_as_fra), 5000),
            Err(ProvenanceError::Signature(_))
        ));
        // Its own record, or ours, is not forwarded.
        assert_eq!(
            accept_forwarded(&k, me, &node("DEU-CUS"), copy(forged), 5000),
            Err(ProvenanceError::Mismatch(
                "is the forwarder's own record".into()
            ))
        );
        let ours = signed(&key("ITA-POL"), "DEU-CUS", handling(true, &[], 0));
        let k2 = keys(&[&fra, &deu, &key("ITA-POL")]);
        assert!(accept_forwarded(&k2, me, &node("DEU-CUS"), copy(ours), 5000).is_err());
        assert!(
            accept_forwarded(&k, me, &node("DEU-CUS"), pb::ReceivedRecord::default(), 1).is_err()
        );
    }

    #[test]
    fn a_copy_from_the_owner_is_never_replaced_by_a_forwarded_one() {
        let fra = key("FRA-POL");
        let a = signed(&fra, "DEU-CUS", handling(true, &[], 0));
        let b = signed(&fra, "ITA-POL", handling(true, &[], 0));
        let c = |s: &pb::SignedDisclosure, by: &str| pb::ReceivedRecord {
            owner_disclosure: Some(s.clone()),
            forwarded_by: by.into(),
            ..Default::default()
        };
        assert_eq!(held(None, &c(&a, "DEU-CUS")), Held::New);
        assert_eq!(held(Some(&c(&a, "DEU-CUS")), &c(&a, "DEU-CUS")), Held::Same);
        assert_eq!(held(Some(&c(&b, "")), &c(&a, "DEU-CUS")), Held::FromOwner);
        assert_eq!(
            held(Some(&c(&b, "ESP-GCV")), &c(&a, "DEU-CUS")),
            Held::Replace
        );
    }

    #[test]
    fn retractions_come_from_the_owner_or_follow_the_copy_passed_on() {
        let reference = pb::RecordRef {
            owner_node: "FRA-POL".into(),
            reference: "r1".into(),
        };
        let from = |by: &str| pb::ReceivedRecord {
            forwarded_by: by.into(),
            ..Default::default()
        };
        assert!(may_retract(&node("FRA-POL"), &reference, None));
        assert!(may_retract(
            &node("DEU-CUS"),
            &reference,
            Some(&from("DEU-CUS"))
        ));
        assert!(!may_retract(&node("DEU-CUS"), &reference, Some(&from(""))));
        assert!(!may_retract(&node("DEU-CUS"), &reference, None));
        let items = relay_retraction(&reference, &["ITA-POL".into()], 7);
        assert_eq!(items[0].id, "retract:FRA-POL:r1:ITA-POL");
        assert_eq!(items[0].target_node, "ITA-POL");
    }

    #[test]
    fn copies_expire_after_the_stated_retention_only() {
        let st = |days, at| pb::DisclosureStatement {
            handling: Some(handling(false, &[], days)),
            disclosed_at: at,
            ..Default::default()
        };
        assert_eq!(expires_at(&st(0, 100), 100), 0);
        assert_eq!(expires_at(&st(1, 100), 150), 100 + DAY);
        assert_eq!(expires_at(&st(1, 0), 150), 150 + DAY);
        let copy = |exp| pb::ReceivedRecord {
            expires_at: exp,
            ..Default::default()
        };
        // Kept before expiries were recorded: from its receipt.
        let older = pb::ReceivedRecord {
            received_at: 5,
            handling: Some(handling(false, &[], 1)),
            ..Default::default()
        };
        assert_eq!(expiry(&older), 5 + DAY);
        assert_eq!(expired(vec![older], 5 + DAY).len(), 1);
        let left = expired(vec![copy(0), copy(10), copy(11), copy(12)], 11);
        assert_eq!(
            left.iter().map(|c| c.expires_at).collect::<Vec<_>>(),
            [10, 11]
        );
    }
}
