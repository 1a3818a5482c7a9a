//! Disclosure without side channels, tried from outside as a hostile member would, over real
//! mutual TLS between three nodes: query filters and lookups on fields the owner's rule
//! withholds or generalises select nothing, partial (wildcard) serials are refused unless a rule
//! allows them, "hit only" answers carry no field, and automatic trace answers follow the same
//! rules as a lookup by the same requester.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;

use prost::Message;
use tonic::transport::Channel;
use tracenet_node::country::CountryCode;
use tracenet_node::envelope::{SignedRequest, SigningKey};
use tracenet_node::sample;
use tracenet_proto::v1 as pb;
use tracenet_proto::v1::peer_exchange_client::PeerExchangeClient;
use tracenet_tests::{ClientCert, NodeSpec, TestFederation};

/// FRA's synthetic policy. ITA (border risk analysis) sees dates as months and the transport
/// mode, nothing else; ITA (criminal investigation) gets "hit only" answers on serials. DEU
/// (tracing) sees firearm serials only; DEU (criminal investigation) may also look up partial
/// serials with four readable characters, three hits at most. Trace results go to both; ITA has
/// no seizure rule for tracing.
const FRA_POLICY: &str = r#"
owner_country = "FRA"
version = 4
legal_basis = "Synthetic law art. 1"

[[rules]]
id = "ita-border"
purposes = ["PURPOSE_BORDER_RISK_ANALYSIS"]
data_classes = ["DATA_CLASS_SEIZURE"]
audience = { countries = ["ITA"] }
fields = [
  { field = "event.date", treatment = "FIELD_TREATMENT_GENERALISE", generalisation = "GENERALISATION_DATE_TO_MONTH" },
  { field = "trafficking.transport_mode", treatment = "FIELD_TREATMENT_ALLOW" },
]

[[rules]]
id = "ita-hit-only"
purposes = ["PURPOSE_CRIMINAL_INVESTIGATION"]
data_classes = ["DATA_CLASS_SEIZURE"]
audience = { countries = ["ITA"] }
hit_only = true
fields = [
  { field = "firearms.serial_number", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "event.date", treatment = "FIELD_TREATMENT_ALLOW" },
]

[[rules]]
id = "deu-tracing"
purposes = ["PURPOSE_TRACING"]
data_classes = ["DATA_CLASS_SEIZURE"]
audience = { countries = ["DEU"] }
fields = [
  { field = "firearms.serial_number", treatment = "FIELD_TREATMENT_ALLOW" },
]

[[rules]]
id = "deu-partial"
purposes = ["PURPOSE_CRIMINAL_INVESTIGATION"]
data_classes = ["DATA_CLASS_SEIZURE"]
audience = { countries = ["DEU"] }
partial_lookup = { allowed = true, min_literal_prefix = 4, max_results = 3 }
fields = [
  { field = "firearms.serial_number", treatment = "FIELD_TREATMENT_ALLOW" },
]

[[rules]]
id = "trace-results"
purposes = ["PURPOSE_TRACING"]
data_classes = ["DATA_CLASS_TRACE_RESULT"]
audience = { countries = ["DEU", "ITA"] }
"#;

const FRA: usize = 0;
const DEU: usize = 1;
const ITA: usize = 2;
/// Sample records FRA holds (numbers 0..N).
const N: u64 = 40;
/// The part serial recorded on sample record 0.
const PART_SERIAL: &str = "PX-778899";

fn fra() -> CountryCode {
    CountryCode::parse("FRA").unwrap()
}

async fn federation(auto_answer: bool) -> TestFederation {
    let fra_spec = NodeSpec::new("FRA-POL").with_policy(FRA_POLICY);
    let fra_spec = if auto_answer {
        fra_spec.auto_answering()
    } else {
        fra_spec
    };
    let fed = TestFederation::start_specs(&[
        fra_spec,
        NodeSpec::new("DEU-CUS"),
        NodeSpec::new("ITA-POL"),
    ])
    .await
    .unwrap();
    let mut records: Vec<pb::SeizureRecord> = (0..N).map(|n| sample::record(fra(), n)).collect();
    records[0].parts.push(pb::PartItem {
        kind: "slide".into(),
        serial_number: PART_SERIAL.into(),
        quantity: 1,
        ..Default::default()
    });
    fed.admin(FRA)
        .await
        .unwrap()
        .import_batch(pb::ImportBatchRequest {
            records,
            ..Default::default()
        })
        .await
        .unwrap();
    fed
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A request context from `node` (signed with the request body by `SignedRequest::sign_with`).
fn context(node: &str, id: &str, purpose: pb::Purpose) -> pb::RequestContext {
    pb::RequestContext {
        request_id: id.into(),
        requester_node: node.into(),
        agency_kind: pb::AgencyKind::Police as i32,
        purpose: purpose as i32,
        legal_basis: "synthetic".into(),
        issued_at: now(),
        ..Default::default()
    }
}

/// FRA's id of its sample record `n`.
async fn id_of(fed: &TestFederation, n: u64) -> String {
    let serial = sample::record(fra(), n).firearms[0].serial_number.clone();
    fed.admin(FRA)
        .await
        .unwrap()
        .search_by_serial(pb::SearchBySerialRequest {
            serial_number: serial,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .records[0]
        .record
        .as_ref()
        .unwrap()
        .id
        .clone()
}

/// A hostile member querying FRA directly: the references of what comes back.
struct Prober {
    client: PeerExchangeClient<Channel>,
    key: SigningKey,
    node: &'static str,
    purpose: pb::Purpose,
    seq: u32,
}

impl Prober {
    async fn new(fed: &TestFederation, from: usize, purpose: pb::Purpose) -> Prober {
        Prober {
            client: fed
                .peer_client(FRA, ClientCert::Of(from, "node"))
                .await
                .unwrap(),
            key: fed.signing_key(from).unwrap(),
            node: ["FRA-POL", "DEU-CUS", "ITA-POL"][from],
            purpose,
            seq: 0,
        }
    }

    fn context(&mut self) -> pb::RequestContext {
        self.seq += 1;
        let id = format!("probe-{}-{}-{}", self.node, self.purpose as i32, self.seq);
        context(self.node, &id, self.purpose)
    }

    async fn query(&mut self, filter: pb::RecordFilter) -> HashSet<String> {
        let ctx = self.context();
        let mut req = pb::QueryRecordsRequest {
            context: None,
            filter: Some(filter),
            limit: 1000,
        };
        req.sign_with(&self.key, ctx);
        let mut stream = self.client.query_records(req).await.unwrap().into_inner();
        let mut refs = HashSet::new();
        while let Some(d) = stream.message().await.unwrap() {
            refs.insert(d.reference.unwrap().reference);
        }
        refs
    }

    async fn lookup(
        &mut self,
        serial: &str,
        manufacturer: &str,
    ) -> Result<pb::LookupResponse, tonic::Status> {
        let ctx = self.context();
        let mut req = pb::LookupRequest {
            context: None,
            serial_number: serial.into(),
            manufacturer: manufacturer.into(),
            ..Default::default()
        };
        req.sign_with(&self.key, ctx);
        self.client
            .lookup(req)
            .await
            .map(tonic::Response::into_inner)
    }
}

#[tokio::test]
async fn query_filters_on_withheld_or_generalised_fields_select_nothing() {
    let fed = federation(false).await;
    let rec = sample::record(fra(), 5);
    let id5 = id_of(&fed, 5).await;
    let t = rec.trafficking.clone().unwrap();
    let ev = rec.event.clone().unwrap();
    let mut ita = Prober::new(&fed, ITA, pb::Purpose::BorderRiskAnalysis).await;

    // What ITA's rule discloses selects: the transport mode, and the whole month of the date.
    let by_mode = ita
        .query(pb::RecordFilter {
            transport_mode: t.transport_mode,
            ..Default::default()
        })
        .await;
    assert!(by_mode.contains(&id5));
    let month = &ev.date[..7];
    let (y, m): (u32, u32) = (
        ev.date[..4].parse().unwrap(),
        ev.date[5..7].parse().unwrap(),
    );
    // Sample years are 2023 to 2025: every fourth is a leap year.
    let days = match m {
        2 if y % 4 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    let by_month = ita
        .query(pb::RecordFilter {
            date_from: format!("{month}-01"),
            date_to: format!("{month}-{days}"),
            ..Default::default()
        })
        .await;
    assert!(by_month.contains(&id5), "{month} did not select {id5}");

    // Filters on what it withholds (or discloses only as a month) select nothing at all, so
    // the references coming back cannot reveal the hidden values.
    for (what, filter) in [
        (
            "concealment method",
            pb::RecordFilter {
                concealment_method: t.concealment_method,
                ..Default::default()
            },
        ),
        (
            "route country",
            pb::RecordFilter {
                route_country: t.route[1].country.clone(),
                ..Default::default()
            },
        ),
        (
            "weapon category",
            pb::RecordFilter {
                category: rec.firearms[0].category,
                ..Default::default()
            },
        ),
        (
            "seizing agency",
            pb::RecordFilter {
                seizing_agency: ev.seizing_agency,
                ..Default::default()
            },
        ),
        (
            "exact day",
            pb::RecordFilter {
                date_from: ev.date.clone(),
                date_to: ev.date.clone(),
                ..Default::default()
            },
        ),
    ] {
        let got = ita.query(filter).await;
        assert!(got.is_empty(), "a {what} filter selected {got:?}");
    }
    // DEU's tracing rule shares serials only: the transport mode ITA may filter on is hidden
    // from DEU, and the same filter selects nothing for it.
    let mut deu = Prober::new(&fed, DEU, pb::Purpose::Tracing).await;
    let hidden_mode = deu
        .query(pb::RecordFilter {
            transport_mode: t.transport_mode,
            ..Default::default()
        })
        .await;
    assert!(
        hidden_mode.is_empty(),
        "a hidden mode selected {hidden_mode:?}"
    );
    fed.shutdown().await.unwrap();
}

#[tokio::test]
async fn lookups_hit_only_on_disclosed_serials_and_manufacturers() {
    let fed = federation(false).await;
    let rec = sample::record(fra(), 5);
    let serial = rec.firearms[0].serial_number.clone();
    let mut deu = Prober::new(&fed, DEU, pb::Purpose::Tracing).await;

    // The firearm serial is disclosed to DEU: a hit.
    assert!(deu.lookup(&serial, "").await.unwrap().hit);
    // Parts are not: their serials never match.
    let part = deu.lookup(PART_SERIAL, "").await.unwrap();
    assert!(!part.hit && part.hits.is_empty(), "{part:?}");
    // The manufacturer is withheld: naming the right one does not confirm it.
    let maker = deu
        .lookup(&serial, &rec.firearms[0].manufacturer)
        .await
        .unwrap();
    assert!(!maker.hit, "a withheld manufacturer matched");

    // ITA's border rule withholds serials: the serial of a record it could query is no hit.
    let mut ita = Prober::new(&fed, ITA, pb::Purpose::BorderRiskAnalysis).await;
    let withheld = ita.lookup(&serial, "").await.unwrap();
    assert!(!withheld.hit && withheld.hits.is_empty());
    fed.shutdown().await.unwrap();
}

#[tokio::test]
async fn wildcard_lookups_are_refused_unless_a_rule_allows_them_and_are_capped() {
    let fed = federation(false).await;
    let rec = sample::record(fra(), 5);
    let normalised: String = rec.firearms[0]
        .serial_number
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let len = normalised.len();

    // DEU's tracing rule answers exact serials only: wildcards are refused as such.
    let mut deu = Prober::new(&fed, DEU, pb::Purpose::Tracing).await;
    for pattern in [
        "*".repeat(len),
        format!("{}{}", &normalised[..4], "*".repeat(len - 4)),
    ] {
        let err = deu.lookup(&pattern, "").await.unwrap_err();
        assert_eq!(
            err.code(),
            tonic::Code::PermissionDenied,
            "{pattern}: {err:?}"
        );
    }
    // ITA (no partial lookups either) cannot enumerate with question marks.
    let mut ita = Prober::new(&fed, ITA, pb::Purpose::CriminalInvestigation).await;
    let err = ita.lookup(&"?".repeat(len), "").await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);

    // DEU's criminal-investigation rule allows them, with four readable characters first and
    // three hits at most.
    let mut deu = Prober::new(&fed, DEU, pb::Purpose::CriminalInvestigation).await;
    let short = format!("{}{}", &normalised[..3], "*".repeat(len - 3));
    let err = deu.lookup(&short, "").await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    assert!(err.message().contains("at least 4"), "{}", err.message());
    let long = format!("{}{}", &normalised[..4], "*".repeat(len - 4));
    let found = deu.lookup(&long, "").await.unwrap();
    assert!(found.hit && found.hits.len() <= 3, "{found:?}");
    let id5 = id_of(&fed, 5).await;
    assert!(
        found
            .hits
            .iter()
            .any(|h| h.reference.as_ref().unwrap().reference == id5)
    );
    let all = deu.lookup(&"*".repeat(len), "").await.unwrap_err();
    assert_eq!(all.code(), tonic::Code::PermissionDenied);
    fed.shutdown().await.unwrap();
}

/// `serial` with its first confusable character misread (0 for O, 8 for B, ...).
fn misread(serial: &str) -> String {
    let swap = |c: char| match c {
        '0' => Some('O'),
        'O' | 'D' | 'Q' => Some('0'),
        '1' => Some('I'),
        'I' | 'L' => Some('1'),
        '2' => Some('Z'),
        'Z' => Some('2'),
        '5' => Some('S'),
        'S' => Some('5'),
        '6' => Some('G'),
        'G' => Some('6'),
        '8' => Some('B'),
        'B' => Some('8'),
        _ => None,
    };
    let at = serial.find(|c| swap(c).is_some()).unwrap();
    let mut out: String = serial[..at].into();
    out.push(swap(serial[at..].chars().next().unwrap()).unwrap());
    out.push_str(&serial[at + 1..]);
    out
}

#[tokio::test]
async fn confusable_serials_match_ranked_after_exact_where_the_rule_allows_fuzzy_matching() {
    let fed = federation(false).await;
    let serial = sample::record(fra(), 5).firearms[0].serial_number.clone();
    // FRA also holds a weapon recorded with one character misread (synthetic).
    let mut twin = sample::record(fra(), N + 1);
    twin.firearms[0].serial_number = misread(&serial);
    fed.admin(FRA)
        .await
        .unwrap()
        .import_batch(pb::ImportBatchRequest {
            records: vec![twin.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    let id5 = id_of(&fed, 5).await;
    let refs = |r: &pb::LookupResponse| -> Vec<String> {
        r.hits
            .iter()
            .map(|h| h.reference.as_ref().unwrap().reference.clone())
            .collect()
    };

    // DEU's partial-lookup rule matches through confusable characters: exact first.
    let mut deu = Prober::new(&fed, DEU, pb::Purpose::CriminalInvestigation).await;
    let both = deu.lookup(&serial, "").await.unwrap();
    let got = refs(&both);
    assert_eq!(got.len(), 2, "{both:?}");
    assert_eq!(got[0], id5, "the exact match comes first");
    // Asked with the misread serial, the twin is now the exact one and comes first.
    let other = deu
        .lookup(&twin.firearms[0].serial_number, "")
        .await
        .unwrap();
    let got_other = refs(&other);
    assert_eq!(got_other.len(), 2, "{other:?}");
    assert_eq!(got_other[1], id5);

    // DEU's tracing rule answers exact serials only: the misread twin is no hit.
    let mut strict = Prober::new(&fed, DEU, pb::Purpose::Tracing).await;
    let exact = strict.lookup(&serial, "").await.unwrap();
    assert_eq!(refs(&exact), vec![id5]);
    // ITA's border rule withholds serials: no confusable hit either.
    let mut ita = Prober::new(&fed, ITA, pb::Purpose::BorderRiskAnalysis).await;
    let none = ita.lookup(&misread(&serial), "").await.unwrap();
    assert!(!none.hit && none.hits.is_empty(), "{none:?}");
    fed.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_hit_only_answer_says_who_holds_the_record_and_nothing_of_it() {
    let fed = federation(false).await;
    let rec = sample::record(fra(), 5);
    let mut ita = Prober::new(&fed, ITA, pb::Purpose::CriminalInvestigation).await;
    let resp = ita
        .lookup(&rec.firearms[0].serial_number, "")
        .await
        .unwrap();
    assert!(resp.hit);
    let hit = &resp.hits[0];
    assert!(hit.hit_only && hit.disclosed.is_none() && hit.redacted_fields.is_empty());
    assert_eq!(hit.reference.as_ref().unwrap().owner_node, "FRA-POL");
    assert_eq!(hit.policy_rule, "ita-hit-only");
    // Nothing of the record is on the wire: not the serial matched on, not the date.
    let wire = resp.encode_to_vec();
    for secret in [
        rec.firearms[0].serial_number.as_str(),
        rec.event.as_ref().unwrap().date.as_str(),
    ] {
        assert!(
            !wire.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} on the wire"
        );
    }
    // A serial FRA does not hold is no hit: held and not held are told apart, nothing more.
    let none = ita.lookup("ZZ-000000", "").await.unwrap();
    assert!(!none.hit);
    fed.shutdown().await.unwrap();
}

/// Submits a trace request to FRA directly, as `from`, and returns FRA's record of it once the
/// delivery is acknowledged (an automatic answer is decided before the acknowledgement).
async fn trace_to_fra(
    fed: &TestFederation,
    from: usize,
    id: &str,
    serial: &str,
) -> pb::TraceRecord {
    let node = ["FRA-POL", "DEU-CUS", "ITA-POL"][from];
    let key = fed.signing_key(from).unwrap();
    let mut c = fed
        .peer_client(FRA, ClientCert::Of(from, "node"))
        .await
        .unwrap();
    let mut msg = pb::SubmitTraceRequestMessage {
        context: None,
        request: Some(pb::TraceRequest {
            id: id.into(),
            requester_node: node.into(),
            requested_country: "FRA".into(),
            firearm: Some(pb::FirearmIdentification {
                serial_number: serial.into(),
                ..Default::default()
            }),
            reason: "synthetic".into(),
            created_at: now(),
            due_at: now() + 86_400,
            ..Default::default()
        }),
    };
    msg.sign_with(
        &key,
        context(node, &format!("treq:{id}#1"), pb::Purpose::Tracing),
    );
    c.submit_trace_request(msg).await.unwrap();
    fed.admin(FRA)
        .await
        .unwrap()
        .list_trace_requests(pb::ListTraceRequestsRequest {
            direction: "incoming".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .traces
        .into_iter()
        .find(|t| t.request.as_ref().is_some_and(|r| r.id == id))
        .unwrap()
}

fn answered(t: &pb::TraceRecord) -> bool {
    t.status == pb::TraceStatus::Answered as i32
}

#[tokio::test]
async fn automatic_trace_answers_follow_the_seizure_rule_and_skip_withdrawn_records() {
    let fed = federation(true).await;
    let serial = |n| sample::record(fra(), n).firearms[0].serial_number.clone();

    // DEU's seizure rule for tracing shares serials only: the answer says a weapon was seized
    // here, without the date or place the rule withholds.
    let deu = trace_to_fra(&fed, DEU, "syn-auto-1", &serial(5)).await;
    assert!(answered(&deu), "{deu:?}");
    let chain = &deu.response.as_ref().unwrap().chain_of_custody;
    assert_eq!(chain.len(), 1);
    assert!(
        chain[0].date.is_empty() && chain[0].country.is_empty(),
        "{chain:?}"
    );

    // ITA has a trace-result rule but no seizure rule for tracing: no automatic answer.
    let ita = trace_to_fra(&fed, ITA, "syn-auto-2", &serial(6)).await;
    assert!(!answered(&ita), "{ita:?}");

    // A withdrawn record is not answered from.
    let id7 = id_of(&fed, 7).await;
    fed.admin(FRA)
        .await
        .unwrap()
        .retract_record(pb::RetractRecordRequest { id: id7 })
        .await
        .unwrap();
    let withdrawn = trace_to_fra(&fed, DEU, "syn-auto-3", &serial(7)).await;
    assert!(!answered(&withdrawn), "{withdrawn:?}");

    // A partial serial is left for an officer, never answered as a wildcard search.
    let normalised: String = serial(8)
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let partial = format!("{}{}", &normalised[..2], "*".repeat(normalised.len() - 2));
    let wild = trace_to_fra(&fed, DEU, "syn-auto-4", &partial).await;
    assert!(!answered(&wild), "{wild:?}");
    fed.shutdown().await.unwrap();
}
