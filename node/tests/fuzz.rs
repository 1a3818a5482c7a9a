//! Property-driven fuzzing of every decoder of data from a peer or a user: protobuf messages of
//! both listeners (and the pure checks each one goes through next), signed envelopes, stored
//! values, CSV and JSON Lines import files, and sharing policies in TOML. Each is fed arbitrary
//! bytes and mutated valid encodings; it must never panic, and bad input must come back as a
//! typed error. Case counts are bounded so the whole file runs in seconds in CI.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::Cursor;

use proptest::prelude::*;
use prost::Message;
use tracenet_node::country::CountryCode;
use tracenet_node::directory::codec;
use tracenet_node::disclose::QueryPlan;
use tracenet_node::envelope::{self, PeerKeys, ReplayGuard, SigningKey};
use tracenet_node::ids::NodeId;
use tracenet_node::limits;
use tracenet_node::model;
use tracenet_node::peer::rules;
use tracenet_node::policy::Policy;
use tracenet_node::sample;
use tracenet_node::serial;
use tracenet_proto::files::{self, Format};
use tracenet_proto::stored;
use tracenet_proto::v1 as pb;

/// Cases per property: 256 by default (seconds in all); `TRACENET_FUZZ_CASES` runs more.
fn cases() -> u32 {
    std::env::var("TRACENET_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        // Failures are reported with their input; nothing is written next to the sources.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn node(s: &str) -> NodeId {
    NodeId::parse(s).unwrap()
}

fn fra() -> CountryCode {
    CountryCode::parse("FRA").unwrap()
}

/// A valid message rich in every kind of field, whose encoding the mutations start from.
fn rich_trace() -> pb::SubmitTraceRequestMessage {
    let record = sample::record(CountryCode::parse("DEU").unwrap(), 3);
    pb::SubmitTraceRequestMessage {
        context: Some(pb::SignedContext {
            context: vec![1, 2, 3],
            signature: vec![4; 64],
        }),
        request: Some(pb::TraceRequest {
            id: "t1".into(),
            requester_node: "DEU-CUS".into(),
            requested_country: "FRA".into(),
            firearm: record
                .firearms
                .first()
                .cloned()
                .map(|f| pb::FirearmIdentification {
                    serial_number: f.serial_number,
                    manufacturer: f.manufacturer,
                    ..Default::default()
                }),
            reason: "Synthetic reason".into(),
            legal_basis: "Synthetic".into(),
            urgency: 2,
            case_reference: "C-1".into(),
            created_at: 1_700_000_000,
            due_at: 1_700_600_000,
            ..Default::default()
        }),
    }
}

/// Bytes and a list of (position, xor) flips plus a cut: a valid encoding, mutated.
fn mutated(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = valid.len().max(1);
    (
        proptest::collection::vec((0..len, 1u8..=255), 0..8),
        0..=len,
        proptest::collection::vec(any::<u8>(), 0..16),
    )
        .prop_map(move |(flips, cut, tail)| {
            let mut b = valid.clone();
            for (i, x) in flips {
                if let Some(byte) = b.get_mut(i) {
                    *byte ^= x;
                }
            }
            b.truncate(cut);
            b.extend(tail);
            b
        })
}

/// Decodes `bytes` as every request and response message of both listeners; a decode error is
/// typed, and nothing panics.
fn decode_everything(bytes: &[u8]) {
    macro_rules! each {
        ($($t:ident),* $(,)?) => { $( let _: Result<pb::$t, prost::DecodeError> = pb::$t::decode(bytes); )* };
    }
    each!(
        PingRequest,
        PingResponse,
        LookupRequest,
        LookupResponse,
        QueryRecordsRequest,
        DisclosedRecord,
        SubmitTraceRequestMessage,
        SubmitTraceResponseMessage,
        RetractRequest,
        ShareForwardedRequest,
        DeliveryAck,
        RaftAppendRequest,
        RaftAppendResponse,
        RaftSnapshotRequest,
        RaftSnapshotResponse,
        RaftVoteRequest,
        RaftVoteResponse,
        ProposeRequest,
        ReadIndexRequest,
        ReadIndexResponse,
        StateDigestRequest,
        StateDigestResponse,
        GetNodeInfoRequest,
        CreateRecordRequest,
        GetRecordRequest,
        UpdateRecordRequest,
        ListRecordsRequest,
        SearchBySerialRequest,
        ImportBatchRequest,
        CheckPeerRequest,
        FederatedLookupRequest,
        FederatedQueryRequest,
        ListAuditRequest,
        SendTraceRequestRequest,
        AnswerTraceRequestRequest,
        ListTraceRequestsRequest,
        RetractRecordRequest,
        ListReceivedRequest,
        ListOutboxRequest,
        ForwardReceivedRequest,
        GetDirectoryRequest,
        ProposeDirectoryRequest,
        PreviewDisclosureRequest,
        AssistanceBoardRequest,
        DirectoryCommand,
        DirectoryState,
        SharingPolicy,
        OutboxItem,
        TraceRecord,
        ReceivedRecord,
        AuditEntry,
        StoredRecord,
    );
}

/// What a decoded peer message goes through before anything is stored: the pure checks must
/// answer with a typed result whatever the message holds.
fn check_peer_messages(bytes: &[u8]) {
    let (me, caller) = (node("FRA-POL"), node("DEU-CUS"));
    if let Ok(m) = pb::SubmitTraceRequestMessage::decode(bytes)
        && let Some(req) = m.request
    {
        let _ = limits::trace_request(&req);
        let _ = rules::check_trace_request(&caller, Some(fra()), &req);
    }
    if let Ok(m) = pb::SubmitTraceResponseMessage::decode(bytes)
        && let Some(resp) = m.response
    {
        let _ = limits::trace_response(&resp);
        let _ = rules::check_trace_response(&caller, &resp);
    }
    if let Ok(m) = pb::ShareForwardedRequest::decode(bytes)
        && let Some(copy) = m.record
    {
        let _ = limits::forwarded(&copy);
        let keys = tracenet_node::envelope::PeerKeys::new(std::collections::HashMap::new());
        let _ = tracenet_node::provenance::accept_forwarded(
            &keys,
            (&me, Some(fra())),
            &caller,
            copy,
            0,
        );
    }
    if let Ok(m) = pb::RetractRequest::decode(bytes)
        && let Some(r) = m.reference
    {
        let _ = limits::record_ref("reference", &r);
        let _ = rules::check_retraction(&caller, &r, None);
    }
    if let Ok(m) = pb::LookupRequest::decode(bytes) {
        let _ = limits::lookup(&m.serial_number, &m.manufacturer);
        let _ = serial::normalise(&m.serial_number);
    }
    if let Ok(m) = pb::QueryRecordsRequest::decode(bytes) {
        let _ = QueryPlan::new(&m.filter.unwrap_or_default(), m.limit, fra());
    }
    if let Ok(m) = pb::CreateRecordRequest::decode(bytes) {
        let _ = model::validate(m.record.unwrap_or_default());
    }
    if let Ok(p) = pb::SharingPolicy::decode(bytes) {
        let _ = Policy::parse(p);
    }
    if let Ok(m) = pb::RaftAppendRequest::decode(bytes) {
        for e in m.entries {
            let _ = codec::entry_from_pb(e);
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn protobuf_messages_of_both_listeners_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_everything(&bytes);
        check_peer_messages(&bytes);
    }

    #[test]
    fn mutated_valid_messages_never_panic(bytes in mutated(rich_trace().encode_to_vec())) {
        decode_everything(&bytes);
        check_peer_messages(&bytes);
    }

    #[test]
    fn mutated_records_never_panic_validation(bytes in mutated(
        sample::record(CountryCode::parse("FRA").unwrap(), 1).encode_to_vec()
    )) {
        if let Ok(rec) = pb::SeizureRecord::decode(bytes.as_slice()) {
            let _ = model::validate(rec);
        }
    }
}

/// A signing key, the published keys and a replay guard for envelope fuzzing.
fn envelope_setup() -> (SigningKey, PeerKeys, ReplayGuard) {
    let pk8 = SigningKey::generate_pkcs8().unwrap();
    let key = SigningKey::from_pkcs8(&pk8, node("DEU-CUS")).unwrap();
    let keys = PeerKeys::new(HashMap::from([(node("DEU-CUS"), key.public_key())]));
    (key, keys, ReplayGuard::new(300, 10_000))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_envelopes_are_refused_with_a_typed_error(
        context in proptest::collection::vec(any::<u8>(), 0..256),
        signature in proptest::collection::vec(any::<u8>(), 0..96),
        now in any::<i64>(),
    ) {
        let (_, keys, guard) = envelope_setup();
        let signed = pb::SignedContext { context, signature };
        prop_assert!(guard.verify_context(&keys, Some(&signed), &node("DEU-CUS"), now).is_err());
        let sig = pb::ResponseSignature { responder_node: "DEU-CUS".into(), signature: signed.signature.clone() };
        prop_assert!(keys.verify_response(&node("DEU-CUS"), "r", &signed.context, Some(&sig)).is_err());
    }

    #[test]
    fn a_mutated_signed_context_never_verifies(flips in proptest::collection::vec((0usize..200, 1u8..=255), 1..4)) {
        let (key, keys, guard) = envelope_setup();
        let signed = key.sign_context(&pb::RequestContext {
            request_id: "r1".into(),
            requester_node: "DEU-CUS".into(),
            purpose: pb::Purpose::Tracing as i32,
            issued_at: 1000,
            ..Default::default()
        });
        let mut bad = signed.clone();
        let total = bad.context.len() + bad.signature.len();
        for (i, x) in flips {
            let i = i % total;
            match bad.context.get_mut(i) {
                Some(b) => *b ^= x,
                None => bad.signature[i - signed.context.len()] ^= x,
            }
        }
        prop_assume!(bad != signed);
        prop_assert!(guard.verify_context(&keys, Some(&bad), &node("DEU-CUS"), 1000).is_err());
    }

    #[test]
    fn directory_commands_with_arbitrary_bytes_do_not_verify(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let (key, _, _) = envelope_setup();
        if let Ok(cmd) = pb::DirectoryCommand::decode(bytes.as_slice()) {
            prop_assert!(envelope::verify_directory_command(&key.public_key(), &cmd).is_err());
        }
    }

    #[test]
    fn stored_values_decode_or_fail_typed(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _: Result<pb::StoredRecord, stored::CodecError> = stored::decode(&bytes);
        let _: Result<pb::TraceRecord, stored::CodecError> = stored::decode(&bytes);
        let _: Result<pb::OutboxItem, stored::CodecError> = stored::decode(&bytes);
        let _: Result<pb::ReceivedRecord, stored::CodecError> = stored::decode(&bytes);
        let _: Result<pb::AuditEntry, stored::CodecError> = stored::decode(&bytes);
        let _: Result<serde_json::Value, stored::CodecError> = stored::decode_json(&bytes);
        let _: Result<pb::SeizureRecord, stored::CodecError> = stored::decode_json(&bytes);
        if bytes.is_empty() {
            prop_assert_eq!(stored::decode::<pb::OutboxItem>(&bytes), Err(stored::CodecError::Empty));
        }
    }

    #[test]
    fn mutated_stored_values_decode_or_fail_typed(bytes in mutated(stored::encode(&pb::OutboxItem {
        id: "treq:t1".into(),
        target_node: "DEU-CUS".into(),
        payload: Some(pb::outbox_item::Payload::TraceRequest(rich_trace().request.unwrap())),
        attempts: 3,
        last_error: "Unavailable".into(),
        ..Default::default()
    }))) {
        let _: Result<pb::OutboxItem, stored::CodecError> = stored::decode(&bytes);
    }
}

/// Reads every row of an import file, validating the rows that parse.
fn import(bytes: Vec<u8>, format: Format) {
    match files::rows(Cursor::new(bytes), format) {
        Err(_) => {}
        Ok(rows) => {
            for row in rows.take(1000).flatten() {
                let _ = model::validate(row.record);
            }
        }
    }
}

fn valid_csv() -> String {
    let rec = sample::record(CountryCode::parse("FRA").unwrap(), 2);
    let header = files::CSV_COLUMNS.join(",");
    let row = files::columns_of(&rec)
        .iter()
        .map(|c| format!("\"{}\"", c.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(",");
    format!("{header}\n{row}\n")
}

fn valid_jsonl() -> String {
    let rec = sample::record(CountryCode::parse("FRA").unwrap(), 2);
    format!("{}\n", serde_json::to_string(&rec).unwrap())
}

const POLICY: &str = r#"
owner_country = "FRA"
version = 3
legal_basis = "Synthetic"

[[rules]]
id = "r1"
purposes = ["PURPOSE_TRACING"]
data_classes = ["DATA_CLASS_SEIZURE"]
audience = { countries = ["DEU"] }
fields = [
  { field = "firearms.serial_number", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "event.date", treatment = "FIELD_TREATMENT_GENERALISE", generalisation = "GENERALISATION_DATE_TO_MONTH" },
]
"#;

proptest! {
    #![proptest_config(config())]

    #[test]
    fn import_files_of_arbitrary_bytes_fail_by_row(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        import(bytes.clone(), Format::Csv);
        import(bytes, Format::JsonLines);
    }

    #[test]
    fn mutated_csv_files_never_panic(bytes in mutated(valid_csv().into_bytes())) {
        import(bytes, Format::Csv);
    }

    #[test]
    fn mutated_jsonl_files_never_panic(bytes in mutated(valid_jsonl().into_bytes())) {
        import(bytes, Format::JsonLines);
    }

    #[test]
    fn policies_in_arbitrary_text_fail_typed(text in "\\PC{0,300}") {
        prop_assert!(Policy::from_toml(&text).is_err() || text.contains("owner_country"));
    }

    #[test]
    fn mutated_policies_never_panic(bytes in mutated(POLICY.as_bytes().to_vec())) {
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = Policy::from_toml(text);
        }
    }
}

#[test]
fn the_valid_seeds_are_valid() {
    // The mutations start from real encodings: make sure they are.
    assert!(Policy::from_toml(POLICY).is_ok());
    let rows: Vec<_> = files::rows(Cursor::new(valid_csv().into_bytes()), Format::Csv)
        .unwrap()
        .collect();
    assert!(rows.iter().all(Result::is_ok), "{rows:?}");
    let rows: Vec<_> = files::rows(Cursor::new(valid_jsonl().into_bytes()), Format::JsonLines)
        .unwrap()
        .collect();
    assert!(rows.iter().all(Result::is_ok), "{rows:?}");
}
