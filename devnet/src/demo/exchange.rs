//! The exchange part of the demo scenario: a hit/no-hit lookup, one record as two requesters
//! see it, a trace request answered and delivered, a delivery to a stopped node completed after
//! it restarts, and every node's audit chain verified offline at the end.

use std::fmt::Write as _;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use tracenet_proto::v1 as pb;

use super::{DemoError, call, check};
use crate::DevFederation;
use tracenet_node::country::CountryCode;
use tracenet_node::sample;

const FRA: usize = 0;
const DEU: usize = 1;
const ITA: usize = 2;

/// Polls `probe` until it yields a value, for at most 30 seconds.
async fn poll<T, F, Fut>(what: &str, mut probe: F) -> Result<T, DemoError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut pause = Duration::from_millis(10);
    loop {
        if let Some(v) = probe().await {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(DemoError::Check(format!("timed out waiting for {what}")));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

fn inquiry(agency: pb::AgencyKind, purpose: pb::Purpose) -> Option<pb::Inquiry> {
    Some(pb::Inquiry {
        agency_kind: agency as i32,
        purpose: purpose as i32,
        legal_basis: "Synthetic legal basis (demo)".into(),
        case_reference: "SYN-DEMO-CASE".into(),
        deadline_ms: 3000,
        via_hub: false,
    })
}

/// One disclosed record in a line: only what is there.
fn describe(r: &pb::SeizureRecord, redacted: &[String]) -> String {
    let mut parts = Vec::new();
    if let Some(ev) = &r.event {
        if !ev.date.is_empty() {
            parts.push(format!("date={}", ev.date));
        }
        if let Some(p) = &ev.place {
            let place = [p.country.as_str(), p.region.as_str(), p.locality.as_str()]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join("/");
            parts.push(format!("place={place}"));
        }
    }
    for f in &r.firearms {
        let bits: Vec<&str> = [
            f.serial_number.as_str(),
            f.manufacturer.as_str(),
            f.model.as_str(),
        ]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
        if !bits.is_empty() {
            parts.push(format!("firearm={}", bits.join(" ")));
        }
        if let Ok(status) = pb::WeaponStatus::try_from(f.status)
            && status != pb::WeaponStatus::Unspecified
        {
            parts.push(format!(
                "status={}",
                status
                    .as_str_name()
                    .trim_start_matches("WEAPON_STATUS_")
                    .to_lowercase()
            ));
        }
    }
    if !r.ballistic_references.is_empty() {
        parts.push(format!("ballistic={}", r.ballistic_references.join(",")));
    }
    if let Ok(d) = pb::Disposition::try_from(r.disposition)
        && d != pb::Disposition::Unspecified
    {
        parts.push(format!(
            "disposition={}",
            d.as_str_name()
                .trim_start_matches("DISPOSITION_")
                .to_lowercase()
        ));
    }
    if let Some(t) = &r.trafficking {
        if !t.route.is_empty() {
            let route: Vec<&str> = t.route.iter().map(|p| p.country.as_str()).collect();
            parts.push(format!("route={}", route.join(">")));
        }
        if t.transport_mode != 0 {
            parts.push(format!(
                "mode={}",
                pb::TransportMode::try_from(t.transport_mode)
                    .map(|m| m
                        .as_str_name()
                        .trim_start_matches("TRANSPORT_MODE_")
                        .to_lowercase())
                    .unwrap_or_default()
            ));
        }
        if t.concealment_method != 0 {
            parts.push(format!(
                "concealment={}",
                pb::ConcealmentMethod::try_from(t.concealment_method)
                    .map(|m| m
                        .as_str_name()
                        .trim_start_matches("CONCEALMENT_METHOD_")
                        .to_lowercase())
                    .unwrap_or_default()
            ));
        }
    }
    for a in &r.ammunition {
        if !a.quantity_band.is_empty() {
            parts.push(format!("ammunition={} rounds", a.quantity_band));
        } else if a.quantity > 0 {
            parts.push(format!("ammunition={} rounds", a.quantity));
        }
    }
    if !r.persons.is_empty() {
        parts.push(format!("persons={}", r.persons.len()));
    }
    if !redacted.is_empty() {
        parts.push(format!("withheld=[{}]", redacted.join(",")));
    }
    parts.join(" ")
}

async fn outgoing(fed: &DevFederation, node: usize) -> Option<Vec<pb::TraceRecord>> {
    let mut c = fed.admin_client(node).await.ok()?;
    let r = c
        .list_trace_requests(pb::ListTraceRequestsRequest {
            direction: "outgoing".into(),
            ..Default::default()
        })
        .await
        .ok()?;
    Some(r.into_inner().traces)
}

fn history(t: &pb::TraceRecord) -> String {
    t.history
        .iter()
        .map(|h| {
            pb::TraceStatus::try_from(h.status)
                .map(|s| {
                    s.as_str_name()
                        .trim_start_matches("TRACE_STATUS_")
                        .to_lowercase()
                })
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" -> ")
}

/// Runs the exchange steps, appending to the summary.
pub async fn scenario(fed: &mut DevFederation, out: &mut String) -> Result<(), DemoError> {
    let deu_country = CountryCode::parse("DEU").map_err(|e| DemoError::Check(e.to_string()))?;
    let fra_country = CountryCode::parse("FRA").map_err(|e| DemoError::Check(e.to_string()))?;

    // 1. Hit / no-hit: FRA looks for a serial DEU holds.
    let serial = sample::serial(deu_country, 3);
    let mut fra = fed.admin_client(FRA).await?;
    let found = fra
        .federated_lookup(pb::FederatedLookupRequest {
            inquiry: inquiry(pb::AgencyKind::Police, pb::Purpose::Tracing),
            serial_number: serial.to_lowercase(),
            manufacturer: String::new(),
            ..Default::default()
        })
        .await
        .map_err(call("federated lookup from FRA-POL"))?
        .into_inner();
    let _ = writeln!(
        out,
        "hit/no-hit lookup by FRA-POL for serial '{}':",
        serial.to_lowercase()
    );
    for a in &found.answers {
        let detail = a.hits.first().map_or(String::new(), |h| {
            format!(
                " -> {} (rule {} v{})",
                describe(
                    h.disclosed
                        .as_ref()
                        .unwrap_or(&pb::SeizureRecord::default()),
                    &h.redacted_fields
                ),
                h.policy_rule,
                h.policy_version
            )
        });
        let _ = writeln!(
            out,
            "  {}: {}{detail}",
            a.node_id,
            if a.hit { "HIT" } else { "no hit" }
        );
    }
    let hit_by = |id: &str| found.answers.iter().any(|a| a.node_id == id && a.hit);
    check(
        hit_by("DEU-CUS") && !hit_by("ITA-POL") && found.failed.is_empty(),
        || {
            format!(
                "lookup answers were {:?}, failures {:?}",
                found.answers, found.failed
            )
        },
    )?;

    // 1a. A ballistic hit followed up: FRA looks for a cartridge case DEU registered in its
    // national ballistic system; DEU's rule for FRA discloses ballistic references.
    let ballistic = sample::ballistic_reference(deu_country, 4)
        .ok_or_else(|| DemoError::Check("sample record 4 has no ballistic reference".into()))?;
    let found = fra
        .federated_lookup(pb::FederatedLookupRequest {
            inquiry: inquiry(pb::AgencyKind::Police, pb::Purpose::Tracing),
            serial_number: ballistic.clone(),
            kind: pb::LookupKind::BallisticReference as i32,
            ..Default::default()
        })
        .await
        .map_err(call("ballistic lookup from FRA-POL"))?
        .into_inner();
    let deu_hit = found
        .answers
        .iter()
        .find(|a| a.node_id == "DEU-CUS")
        .and_then(|a| a.hits.first());
    let _ = writeln!(
        out,
        "ballistic-reference lookup by FRA-POL for '{ballistic}': DEU-CUS answers {}",
        deu_hit.map_or("no hit".to_owned(), |h| format!(
            "{} (rule {})",
            describe(
                h.disclosed
                    .as_ref()
                    .unwrap_or(&pb::SeizureRecord::default()),
                &h.redacted_fields
            ),
            h.policy_rule
        ))
    );
    check(
        deu_hit.is_some_and(|h| {
            h.disclosed
                .as_ref()
                .is_some_and(|d| d.ballistic_references.contains(&ballistic))
        }),
        || format!("DEU-CUS should answer the ballistic lookup: {found:?}"),
    )?;

    // 1c. A weapon reported stolen: FRA looks up a serial DEU holds a loss report for; DEU's
    // rule for loss reports tells FRA what happened, from whom and when.
    let missing = sample::loss_serial(deu_country, 1);
    let found = fra
        .federated_lookup(pb::FederatedLookupRequest {
            inquiry: inquiry(pb::AgencyKind::Police, pb::Purpose::Tracing),
            serial_number: missing.to_lowercase(),
            ..Default::default()
        })
        .await
        .map_err(call("federated lookup from FRA-POL"))?
        .into_inner();
    let reported = found
        .answers
        .iter()
        .find(|a| a.node_id == "DEU-CUS")
        .and_then(|a| a.hits.first())
        .and_then(|h| h.disclosed.as_ref())
        .and_then(|d| d.loss.clone());
    let _ = writeln!(
        out,
        "hit/no-hit lookup by FRA-POL for serial '{missing}': DEU-CUS answers {}",
        reported.as_ref().map_or("no hit".to_owned(), |l| format!(
            "{} from {} on {}",
            pb::LossKind::try_from(l.kind)
                .map(|k| k
                    .as_str_name()
                    .trim_start_matches("LOSS_KIND_")
                    .to_lowercase())
                .unwrap_or_default(),
            pb::LossSource::try_from(l.source)
                .map(|s| s
                    .as_str_name()
                    .trim_start_matches("LOSS_SOURCE_")
                    .to_lowercase())
                .unwrap_or_default(),
            l.date
        ))
    );
    check(
        reported.is_some_and(|l| l.kind != 0 && !l.date.is_empty()),
        || format!("DEU-CUS should report the weapon missing: {found:?}"),
    )?;

    // 1b. "Hit only": ITA-POL's rule for FRA answers that it holds a weapon, and whom to ask,
    // and nothing of the record.
    let ita_country = CountryCode::parse("ITA").map_err(|e| DemoError::Check(e.to_string()))?;
    let ita_serial = sample::serial(ita_country, 2);
    let found = fra
        .federated_lookup(pb::FederatedLookupRequest {
            inquiry: inquiry(pb::AgencyKind::Police, pb::Purpose::Tracing),
            serial_number: ita_serial.clone(),
            manufacturer: String::new(),
            ..Default::default()
        })
        .await
        .map_err(call("federated lookup from FRA-POL"))?
        .into_inner();
    let held = found
        .answers
        .iter()
        .find(|a| a.node_id == "ITA-POL")
        .and_then(|a| a.hits.first());
    let _ = writeln!(
        out,
        "hit/no-hit lookup by FRA-POL for serial '{ita_serial}': ITA-POL answers {}",
        match held {
            Some(h) if h.hit_only => format!(
                "\"held by ITA-POL, ask them\" (rule {}; contact: {}; nothing of the record disclosed)",
                h.policy_rule,
                if h.contact.is_empty() {
                    "see the directory"
                } else {
                    &h.contact
                }
            ),
            Some(_) => "a hit with data".into(),
            None => "no hit".into(),
        }
    );
    check(
        held.is_some_and(|h| h.hit_only && h.disclosed.is_none()),
        || format!("ITA-POL should answer hit only: {:?}", found.answers),
    )?;

    // 2. The same FRA record as DEU and ITA border agencies receive it.
    let rec = sample::record(fra_country, 0);
    let via = rec
        .trafficking
        .as_ref()
        .and_then(|t| t.route.get(1))
        .map(|p| p.country.clone())
        .unwrap_or_default();
    let mut views = Vec::new();
    // Each border agency queries as what it is: DEU-CUS as customs, ITA-POL as police.
    for (i, who, kind) in [
        (DEU, "DEU-CUS", pb::AgencyKind::Customs),
        (ITA, "ITA-POL", pb::AgencyKind::Police),
    ] {
        let mut c = fed.admin_client(i).await?;
        let r = c
            .federated_query(pb::FederatedQueryRequest {
                inquiry: inquiry(kind, pb::Purpose::BorderRiskAnalysis),
                filter: Some(pb::RecordFilter {
                    route_country: via.clone(),
                    ..Default::default()
                }),
                limit_per_peer: 50,
                include_local: false,
            })
            .await
            .map_err(call(format!("federated query from {who}")))?
            .into_inner();
        let from_fra: Vec<pb::DisclosedRecord> = r
            .answers
            .into_iter()
            .filter(|a| a.node_id == "FRA-POL")
            .flat_map(|a| a.records)
            .collect();
        views.push((who, from_fra));
    }
    let first = views[0].1.first().and_then(|d| d.reference.clone());
    let same: Vec<(&str, Option<&pb::DisclosedRecord>)> = views
        .iter()
        .map(|(who, recs)| (*who, recs.iter().find(|d| d.reference == first)))
        .collect();
    let _ = writeln!(
        out,
        "route query through {via} for border risk analysis; one FRA-POL record as each requester received it:"
    );
    for (who, d) in &same {
        let Some(d) = d else {
            return Err(DemoError::Check(format!(
                "{who} did not receive the FRA-POL record"
            )));
        };
        let _ = writeln!(
            out,
            "  {who} (rule {}): {}",
            d.policy_rule,
            describe(
                d.record.as_ref().unwrap_or(&pb::SeizureRecord::default()),
                &d.redacted_fields
            )
        );
    }
    let (deu_view, ita_view) = (same[0].1, same[1].1);
    check(
        deu_view.is_some_and(|d| {
            d.record.as_ref().is_some_and(|r| {
                r.trafficking
                    .as_ref()
                    .is_some_and(|t| t.concealment_method != 0)
            })
        }) && ita_view.is_some_and(|d| {
            d.record.as_ref().is_some_and(|r| {
                r.trafficking
                    .as_ref()
                    .is_some_and(|t| t.concealment_method == 0)
            })
        }),
        || "DEU should see concealment methods and ITA should not".into(),
    )?;

    // 2b. A filter on what a rule does not disclose selects nothing: ITA-POL sees FRA-POL's
    // dates as years only, so asking for the record's exact day finds nothing, while asking
    // for its whole year finds it.
    let day = rec
        .event
        .as_ref()
        .map(|e| e.date.clone())
        .unwrap_or_default();
    let year = day.get(0..4).unwrap_or_default().to_owned();
    let ita = fed.admin_client(ITA).await?;
    let count = |from: String, to: String| {
        let mut ita = ita.clone();
        async move {
            ita.federated_query(pb::FederatedQueryRequest {
                inquiry: inquiry(pb::AgencyKind::Police, pb::Purpose::BorderRiskAnalysis),
                filter: Some(pb::RecordFilter {
                    date_from: from,
                    date_to: to,
                    ..Default::default()
                }),
                limit_per_peer: 1000,
                include_local: false,
            })
            .await
            .map(|r| {
                r.into_inner()
                    .answers
                    .into_iter()
                    .filter(|a| a.node_id == "FRA-POL")
                    .map(|a| a.records.len())
                    .sum::<usize>()
            })
        }
    };
    let on_day = count(day.clone(), day.clone())
        .await
        .map_err(call("federated query from ITA-POL"))?;
    let in_year = count(format!("{year}-01-01"), format!("{year}-12-31"))
        .await
        .map_err(call("federated query from ITA-POL"))?;
    let _ = writeln!(
        out,
        "ITA-POL (sees FRA-POL dates as years) asks FRA-POL for the exact day {day}: {on_day} record(s); for the year {year}: {in_year} record(s)"
    );
    check(on_day == 0 && in_year > 0, || {
        format!("an exact-day filter under a year rule found {on_day} (year: {in_year})")
    })?;

    // 3. A trace request FRA -> DEU for a firearm and an ammunition lot, acknowledged
    // automatically; DEU asks for more information, FRA gives it, DEU answers and names the
    // next State in the chain; the answer is delivered back.
    let sent = fra
        .send_trace_request(pb::SendTraceRequestRequest {
            firearm: Some(pb::FirearmIdentification {
                serial_number: serial.clone(),
                manufacturer: "Synthetic manufacturer".into(),
                country_of_manufacture: "DEU".into(),
                import_marking: Some(pb::ImportMarking {
                    country: "FRA".into(),
                    year: 2019,
                }),
                ..Default::default()
            }),
            items: vec![pb::TraceItem {
                item: Some(pb::trace_item::Item::Ammunition(pb::AmmunitionItem {
                    calibre: "9x19mm".into(),
                    quantity: 200,
                    manufacturer: "Synthetic ammunition works".into(),
                    ..Default::default()
                })),
            }],
            requested_country: "DEU".into(),
            reason: "Recovered after a synthetic armed robbery (demo)".into(),
            legal_basis: "Synthetic legal basis".into(),
            urgency: pb::Urgency::Urgent as i32,
            case_reference: "SYN-DEMO-CASE".into(),
            // DEU designates its tracing node in the directory: no target needed.
            target_node: String::new(),
            ..Default::default()
        })
        .await
        .map_err(call("sending a trace request to DEU-CUS"))?
        .into_inner();
    let id = sent
        .request
        .as_ref()
        .map(|r| r.id.clone())
        .unwrap_or_default();
    poll("DEU-CUS to acknowledge", || async {
        outgoing(fed, FRA).await?.into_iter().find(|t| {
            t.request.as_ref().is_some_and(|r| r.id == id)
                && t.status == pb::TraceStatus::Acknowledged as i32
        })
    })
    .await?;
    let mut deu = fed.admin_client(DEU).await?;
    deu.answer_trace_request(pb::AnswerTraceRequestRequest {
        request_id: id.clone(),
        outcome: pb::TraceStatus::MoreInformationRequested as i32,
        remarks: "Which lot number is stamped on the ammunition boxes? (synthetic)".into(),
        ..Default::default()
    })
    .await
    .map_err(call("DEU-CUS asking for more information"))?;
    poll("the question to reach FRA-POL", || async {
        outgoing(fed, FRA).await?.into_iter().find(|t| {
            t.request.as_ref().is_some_and(|r| r.id == id)
                && t.status == pb::TraceStatus::MoreInformationRequested as i32
        })
    })
    .await?;
    fra.provide_trace_information(pb::ProvideTraceInformationRequest {
        request_id: id.clone(),
        text: "Lot SYN-LOT-17 on every box (synthetic)".into(),
        items: Vec::new(),
    })
    .await
    .map_err(call("FRA-POL giving the information asked for"))?;
    poll("the information to reach DEU-CUS", || async {
        let mut c = fed.admin_client(DEU).await.ok()?;
        let t = c
            .list_trace_requests(pb::ListTraceRequestsRequest {
                direction: "incoming".into(),
                ..Default::default()
            })
            .await
            .ok()?
            .into_inner()
            .traces;
        t.into_iter()
            .find(|t| t.request.as_ref().is_some_and(|r| r.id == id) && !t.information.is_empty())
    })
    .await?;
    deu.answer_trace_request(pb::AnswerTraceRequestRequest {
        request_id: id.clone(),
        outcome: pb::TraceStatus::Answered as i32,
        next_country: "ITA".into(),
        chain_of_custody: vec![
            pb::CustodyLink {
                role: "manufacturer".into(),
                name: "Synthetic manufacturer".into(),
                country: "DEU".into(),
                date: "2018-02-01".into(),
                details: String::new(),
            },
            pb::CustodyLink {
                role: "last_lawful_holder".into(),
                name: "Synthetic dealer".into(),
                country: "DEU".into(),
                date: "2021-07-15".into(),
                details: "reported stolen (synthetic)".into(),
            },
        ],
        remarks: "Synthetic answer".into(),
    })
    .await
    .map_err(call("DEU-CUS answering the trace request"))?;
    let answered = poll("the answer to reach FRA-POL", || async {
        outgoing(fed, FRA).await?.into_iter().find(|t| {
            t.request.as_ref().is_some_and(|r| r.id == id)
                && t.status == pb::TraceStatus::Answered as i32
        })
    })
    .await?;
    let links = answered
        .response
        .as_ref()
        .map_or(0, |r| r.chain_of_custody.len());
    let _ = writeln!(
        out,
        "trace request FRA-POL -> DEU-CUS for a firearm and an ammunition lot (urgent, due in 7 days): {}; {links} custody links received with handling codes; next State in the chain: {}",
        history(&answered),
        answered
            .response
            .as_ref()
            .map_or("", |r| r.next_country.as_str())
    );

    // 3b. A watch list: FRA-POL keeps a serial on watch; when ITA-POL later records the weapon,
    // FRA-POL's next scheduled lookup raises an alert.
    let watched = "SYN-WATCH-DEMO-1";
    let watch = fra
        .add_watch(pb::AddWatchRequest {
            kind: pb::WatchKind::Serial as i32,
            value: watched.into(),
            inquiry: Some(pb::Inquiry {
                agency_kind: pb::AgencyKind::Police as i32,
                purpose: pb::Purpose::Tracing as i32,
                legal_basis: "Synthetic legal basis".into(),
                ..Default::default()
            }),
            created_by: "demo officer (synthetic)".into(),
            note: "synthetic demo watch".into(),
            ..Default::default()
        })
        .await
        .map_err(call("FRA-POL putting a serial on watch"))?
        .into_inner();
    poll("FRA-POL's first watch run", || async {
        let mut c = fed.admin_client(FRA).await.ok()?;
        let w = c
            .list_watches(pb::ListWatchesRequest {})
            .await
            .ok()?
            .into_inner()
            .watches;
        w.into_iter().find(|x| x.id == watch.id && x.baseline_taken)
    })
    .await?;
    let ita_country = CountryCode::parse("ITA").map_err(|e| DemoError::Check(e.to_string()))?;
    let mut seen_at_ita = sample::record(ita_country, 9_001);
    seen_at_ita.national_ref = "SYN-ITA-WATCH-1".into();
    if let Some(f) = seen_at_ita.firearms.first_mut() {
        f.serial_number = watched.into();
    }
    fed.admin_client(ITA)
        .await?
        .create_record(pb::CreateRecordRequest {
            record: Some(seen_at_ita),
        })
        .await
        .map_err(call("ITA-POL recording the watched weapon"))?;
    let alert = poll("the watch alert at FRA-POL", || async {
        let mut c = fed.admin_client(FRA).await.ok()?;
        c.list_watch_alerts(pb::ListWatchAlertsRequest::default())
            .await
            .ok()?
            .into_inner()
            .alerts
            .into_iter()
            .find(|a| a.watch_id == watch.id)
    })
    .await?;
    let _ = writeln!(
        out,
        "watch list: FRA-POL watches {watched}; ITA-POL records it; alert raised for a new hit at {}",
        alert.node_id
    );

    // 4. A delivery to a stopped node, completed when it returns.
    fed.stop(ITA).await?;
    let sent = fra
        .send_trace_request(pb::SendTraceRequestRequest {
            firearm: Some(pb::FirearmIdentification {
                serial_number: sample::serial(
                    CountryCode::parse("ITA").map_err(|e| DemoError::Check(e.to_string()))?,
                    5,
                ),
                ..Default::default()
            }),
            requested_country: "ITA".into(),
            reason: "Synthetic routine trace (demo)".into(),
            legal_basis: "Synthetic legal basis".into(),
            urgency: pb::Urgency::Routine as i32,
            case_reference: String::new(),
            target_node: String::new(),
            ..Default::default()
        })
        .await
        .map_err(call("sending a trace request to ITA-POL"))?
        .into_inner();
    let id = sent
        .request
        .as_ref()
        .map(|r| r.id.clone())
        .unwrap_or_default();
    let waiting = poll("a failed delivery attempt", || async {
        let mut c = fed.admin_client(FRA).await.ok()?;
        let items = c
            .list_outbox(pb::ListOutboxRequest::default())
            .await
            .ok()?
            .into_inner()
            .items;
        items
            .into_iter()
            .find(|i| i.id.ends_with(&id) && !i.last_error.is_empty())
    })
    .await?;
    let _ = writeln!(
        out,
        "ITA-POL stopped; trace request FRA-POL -> ITA-POL waits in the outbox ({} attempt(s) so far, retrying)",
        waiting.attempts
    );
    fed.restart(ITA).await?;
    let delivered = poll("delivery to ITA-POL after its restart", || async {
        outgoing(fed, FRA).await?.into_iter().find(|t| {
            t.request.as_ref().is_some_and(|r| r.id == id)
                && t.status == pb::TraceStatus::Acknowledged as i32
        })
    })
    .await?;
    let _ = writeln!(
        out,
        "ITA-POL restarted; the queued request was delivered and acknowledged: {}",
        history(&delivered)
    );
    Ok(())
}

/// After the nodes stop: every node's audit chain and signed checkpoints verify.
pub fn verify_audit_logs(dir: &Path, out: &mut String) -> Result<(), DemoError> {
    for id in super::DEMO_NODES {
        let data = dir.join(id).join("data").join("records");
        let db = tracenet_node::store::open::open_db(&data, None)
            .map_err(|e| DemoError::Check(format!("{id} data: {e}")))?;
        let key_hex = std::fs::read_to_string(dir.join("certs").join(id).join("signing.pub"))
            .map_err(|e| DemoError::Check(format!("{id} public key: {e}")))?;
        let key = tracenet_node::envelope::parse_public_key(&key_hex)
            .ok_or_else(|| DemoError::Check(format!("{id} public key unreadable")))?;
        let v = tracenet_node::audit::verify(&db, &key)
            .map_err(|f| DemoError::Check(format!("{id} audit log: {f}")))?;
        let _ = writeln!(
            out,
            "{id} audit log verified offline: {} entries, {} signed checkpoints",
            v.entries, v.checkpoints
        );
    }
    Ok(())
}
