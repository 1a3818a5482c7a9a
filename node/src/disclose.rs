//! Answering peers: which of this node's records a lookup or query gets, passed through the
//! sharing policy for the requester and purpose, and every disclosure and denial described for
//! the audit log.
//!
//! The decisions ([`decide_lookup`], [`QueryPlan`], [`decide_query`], [`decide_local`],
//! [`preview`]) are pure: they take the policy in force, the asker, the candidate records and
//! which of them are withdrawn, and return an [`Answer`]: what to send, which records to note as
//! received by the asker, and what to audit. The drivers at the end ([`lookup`], [`query`],
//! [`local_matches`]) only read the store and the ledger for them; the peer service writes the
//! notes and the audit events before the answer leaves (see [`crate::peer`]).

use std::collections::HashSet;

use tracenet_proto::v1 as pb;

use crate::audit::{Event, EventKind};
use crate::context::NodeContext;
use crate::country::CountryCode;
use crate::ids::NodeId;
use crate::ledger::LedgerError;
use crate::policy::matching::{self, Criteria, Filter, Identifier, Selection, SerialRefusal};
use crate::policy::{self, Applicable, Policy, Requester};
use crate::serial::NormalisedSerial;
use crate::store::{IndexQuery, StoreError};

/// Most records a lookup considers.
pub const MAX_LOOKUP: usize = matching::MAX_EXACT_HITS;
/// Most records a query returns.
pub const MAX_QUERY: usize = 1000;
/// Results of a query that names no limit.
const DEFAULT_QUERY: usize = 100;

/// Why a peer request cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum DiscloseError {
    /// The request's arguments are unusable. Not retryable.
    #[error("{0}")]
    BadArgument(String),
    /// The owner's policy does not answer this kind of request for this requester (a partial
    /// lookup it does not allow). Not retryable with the same request.
    #[error(transparent)]
    Refused(#[from] SerialRefusal),
    /// The store failed. Retrying may help.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The exchange ledger failed. Retrying may help.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// No rule of the owner's policy answers this request (statistical tables without a rule
    /// granting the aggregate class for the statistics purpose). Not retryable as is.
    #[error(transparent)]
    Denied(#[from] policy::Denial),
}

// ---- decisions (pure) ----

/// The node that answers, as a disclosure decision sees it.
#[derive(Debug, Clone, Copy)]
pub struct Holder<'a> {
    /// This node (owner of every record it discloses).
    pub node: &'a NodeId,
    /// The sharing policy in force, one snapshot for the whole request.
    pub policy: &'a Policy,
    /// Its point of contact for follow-up requests (sent with "hit only" answers).
    pub contact: &'a str,
}

/// Who asks: the node from its certificate, its signed context, and its regions in the roster.
#[derive(Debug, Clone)]
pub struct Asker<'a> {
    /// The requesting node.
    pub node: &'a NodeId,
    /// Its verified request context.
    pub context: &'a pb::RequestContext,
    /// Regions it belongs to.
    pub regions: Vec<String>,
    /// Its member kind, from the directory (see [`crate::roster::RosterView::member_kind`]).
    pub member_kind: pb::MemberKind,
}

impl Asker<'_> {
    /// The requester as the policy sees it: State or organisation from the certificate, member
    /// kind and regions from the directory, the rest from the signed context.
    pub fn requester(&self) -> Requester {
        Requester {
            affiliation: self.node.affiliation().clone(),
            member_kind: self.member_kind,
            regions: self.regions.clone(),
            agency_kind: pb::AgencyKind::try_from(self.context.agency_kind)
                .unwrap_or(pb::AgencyKind::Unspecified),
            purpose: pb::Purpose::try_from(self.context.purpose)
                .unwrap_or(pb::Purpose::Unspecified),
        }
    }

    /// An audit event about this request.
    pub(crate) fn event(&self, kind: EventKind, detail: String) -> Event {
        Event {
            peer: self.node.to_string(),
            request_id: self.context.request_id.clone(),
            purpose: purpose_name(self.context),
            detail,
            ..Event::new(kind)
        }
    }
}

/// What to do about one peer request.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer<T> {
    /// What the asker receives.
    pub items: Vec<T>,
    /// Ids of our records it receives, to note in the ledger (so a retraction reaches it).
    pub disclosed: Vec<String>,
    /// The audit events, to append before the answer leaves: the request, each disclosure, and
    /// one denial event counting the records withheld (if any were).
    pub events: Vec<Event>,
    /// The request is refused as a whole (after its audit events are written).
    pub refused: Option<SerialRefusal>,
}

/// The stated purpose's name.
pub fn purpose_name(ctx: &pb::RequestContext) -> String {
    pb::Purpose::try_from(ctx.purpose)
        .unwrap_or(pb::Purpose::Unspecified)
        .as_str_name()
        .to_owned()
}

fn reference(owner: &NodeId, rec: &pb::SeizureRecord) -> pb::RecordRef {
    pb::RecordRef {
        owner_node: owner.to_string(),
        reference: rec.id.clone(),
    }
}

fn disclosure_event(asker: &Asker, d: &policy::Disclosure, record_id: &str, what: &str) -> Event {
    Event {
        policy_version: d.policy_version,
        policy_rule: d.rule_id.clone(),
        record_refs: vec![record_id.to_owned()],
        ..asker.event(
            EventKind::Disclosure,
            if d.redacted.is_empty() {
                what.to_owned()
            } else {
                format!("{what}; redacted: {}", d.redacted.join(", "))
            },
        )
    }
}

/// The audit entry for records found but withheld, if any were.
fn denial_event(holder: Holder, asker: &Asker, denied: usize) -> Option<Event> {
    (denied > 0).then(|| Event {
        policy_version: holder.policy.version(),
        ..asker.event(
            EventKind::Denial,
            format!("{denied} matching record(s) withheld: no policy rule shares them"),
        )
    })
}

/// The records a peer request may be answered from.
struct Pool<'a> {
    /// Candidates, in the order they are considered.
    records: Vec<pb::SeizureRecord>,
    /// Ids of records withdrawn from sharing.
    withdrawn: &'a HashSet<String>,
    /// Most records disclosed.
    limit: usize,
}

/// Passes each candidate that is not withdrawn through the one matching rule
/// ([`matching::select`]) until `limit` are disclosed: what every peer answer shares. `what`
/// names the disclosure in the audit log.
fn disclose<T>(
    holder: Holder,
    asker: &Asker,
    request_event: Event,
    pool: Pool,
    criteria: &Criteria,
    what: &str,
    item: impl Fn(pb::RecordRef, policy::Disclosure) -> T,
) -> Answer<T> {
    let Pool {
        records: candidates,
        withdrawn,
        limit,
    } = pool;
    let requester = asker.requester();
    let mut answer = Answer {
        items: Vec::new(),
        disclosed: Vec::new(),
        events: vec![request_event],
        refused: None,
    };
    let mut denied = 0;
    for rec in candidates {
        if answer.items.len() >= limit {
            break;
        }
        // A withdrawn record is never disclosed, and its absence is not a denial either.
        if withdrawn.contains(&rec.id) {
            continue;
        }
        // Each record under its own class: a lookup checks loss reports too, under the
        // owner's rule for loss reports.
        match matching::select(
            holder.policy,
            &requester,
            policy::record_class(&rec),
            criteria,
            &rec,
        ) {
            Selection::Hit(d) => {
                answer
                    .events
                    .push(disclosure_event(asker, &d, &rec.id, what));
                answer.disclosed.push(rec.id.clone());
                answer.items.push(item(reference(holder.node, &rec), *d));
            }
            // Not a match on what the rule discloses: as if the record were not held.
            Selection::Miss => {}
            Selection::Denied(_) => denied += 1,
        }
    }
    answer.events.extend(denial_event(holder, asker, denied));
    answer
}

/// What a lookup searches for, or why there is nothing to search for. `kind` is the request's
/// `LookupKind` (unspecified: a serial); a ballistic reference ignores the manufacturer.
pub fn lookup_criteria(
    serial_number: &str,
    manufacturer: &str,
    kind: i32,
) -> Result<Criteria, DiscloseError> {
    let kind = pb::LookupKind::try_from(kind)
        .map_err(|_| DiscloseError::BadArgument("unknown lookup kind".into()))?;
    match Identifier::of(kind) {
        None => Criteria::serial(serial_number, manufacturer),
        Some(id) => Criteria::identifier(id, serial_number),
    }
    .ok_or_else(|| DiscloseError::BadArgument("serial_number has nothing to search for".into()))
}

/// The identifier a criteria searches, if it is a lookup.
fn wanted(criteria: &Criteria) -> Option<&NormalisedSerial> {
    criteria.wanted()
}

/// The index read that shortlists a lookup's candidates.
fn lookup_index(criteria: &Criteria) -> Option<IndexQuery> {
    match criteria {
        Criteria::Serial { wanted, .. } => Some(IndexQuery::Serial(wanted.clone())),
        Criteria::Identifier { kind, wanted } => Some(match kind {
            Identifier::BallisticReference => IndexQuery::Ballistic(wanted.clone()),
            Identifier::Headstamp => IndexQuery::Headstamp(wanted.clone()),
            Identifier::AmmunitionLot => IndexQuery::AmmunitionLot(wanted.clone()),
            Identifier::ShipmentId => IndexQuery::Shipment(wanted.clone()),
        }),
        Criteria::Filter(_) => None,
    }
}

/// Whether `criteria` may be looked up for `asker` at all, and the most hits it may return:
/// partial serials only where the applicable rule allows them (a request-level refusal that
/// depends on the policy alone, never on the records held).
pub fn lookup_limit(
    holder: Holder,
    asker: &Asker,
    criteria: &Criteria,
) -> Result<usize, SerialRefusal> {
    let requester = asker.requester();
    // Partial lookups as the seizure rule allows them, else as the loss-report rule does.
    let rule = Applicable::find(holder.policy, &requester, pb::DataClass::Seizure)
        .or_else(|_| Applicable::find(holder.policy, &requester, pb::DataClass::LossReport))
        .ok();
    match wanted(criteria) {
        Some(w) => matching::check_serial(rule.as_ref(), w),
        None => Ok(MAX_LOOKUP),
    }
}

/// Hit/no-hit: of the records found for `criteria`, those not withdrawn whose disclosed view
/// matches it, up to `limit`; or, when the lookup itself is refused, nothing but the audit of
/// the refusal.
pub fn decide_lookup(
    holder: Holder,
    asker: &Asker,
    criteria: &Criteria,
    candidates: Vec<pb::SeizureRecord>,
    withdrawn: &HashSet<String>,
) -> Answer<pb::LookupHit> {
    let serial = wanted(criteria).map_or("", NormalisedSerial::as_str);
    let what = match criteria {
        Criteria::Identifier { kind, .. } => kind.name(),
        _ => "serial",
    };
    let received = asker.event(
        EventKind::RequestReceived,
        format!("lookup {what} {serial}"),
    );
    let limit = match lookup_limit(holder, asker, criteria) {
        Ok(limit) => limit,
        Err(refusal) => {
            let denial = Event {
                policy_version: holder.policy.version(),
                ..asker.event(EventKind::Denial, format!("lookup refused: {refusal}"))
            };
            return Answer {
                items: Vec::new(),
                disclosed: Vec::new(),
                events: vec![received, denial],
                refused: Some(refusal),
            };
        }
    };
    let candidates = ranked(holder, asker, criteria, candidates, withdrawn);
    let contact = holder.contact.to_owned();
    disclose(
        holder,
        asker,
        received,
        Pool {
            records: candidates,
            withdrawn,
            limit,
        },
        criteria,
        "lookup hit",
        |reference, d| pb::LookupHit {
            reference: Some(reference),
            disclosed: (!d.hit_only).then_some(d.view),
            handling: Some(d.handling),
            redacted_fields: d.redacted.iter().map(|s| (*s).to_owned()).collect(),
            policy_version: d.policy_version,
            policy_rule: d.rule_id,
            hit_only: d.hit_only,
            contact: contact.clone(),
            // Signed by the peer service for the requester (provenance).
            owner_disclosure: None,
        },
    )
}

/// A lookup's candidates in the order they are answered: exact matches first, then those
/// with unreadable positions, then confusable ones (ranked on the view the rule discloses, as
/// the match itself is), with confusable matches capped at the rule's partial-lookup cap.
/// Without an applicable rule the order is kept (nothing will be disclosed; the denial is
/// counted as before).
fn ranked(
    holder: Holder,
    asker: &Asker,
    criteria: &Criteria,
    candidates: Vec<pb::SeizureRecord>,
    withdrawn: &HashSet<String>,
) -> Vec<pb::SeizureRecord> {
    let Ok(rule) = Applicable::find(holder.policy, &asker.requester(), pb::DataClass::Seizure)
    else {
        return candidates;
    };
    let cap = rule.partial_lookup().map_or(0, |p| p.max_results);
    let mut keyed: Vec<(Option<crate::serial::Rank>, pb::SeizureRecord)> = candidates
        .into_iter()
        .map(|r| (matching::rank_under(&rule, criteria, &r), r))
        .collect();
    // Stable: equal ranks keep the index order. Non-matches go last (they are misses anyway).
    keyed.sort_by_key(|(rank, _)| (rank.is_none(), *rank));
    let mut confusable = 0;
    keyed
        .into_iter()
        .filter(|(rank, r)| {
            let fuzzy = rank.is_some_and(|k| k.confusable > 0);
            if fuzzy && !withdrawn.contains(&r.id) {
                confusable += 1;
                return confusable <= cap;
            }
            true
        })
        .map(|(_, r)| r)
        .collect()
}

/// A checked record query: which index to read, what it selects, and how many to return.
#[derive(Debug, Clone)]
pub struct QueryPlan {
    criteria: Criteria,
    /// Most records returned.
    pub limit: usize,
    /// The index to read (at most [`QueryPlan::SCAN`] entries of it).
    pub index: IndexQuery,
}

/// The index a filter reads. Only a shortlist: whether a record matches is decided on its
/// disclosed view ([`matching`]).
fn index(f: &Filter, own: CountryCode) -> IndexQuery {
    if let Some(c) = f.route_country {
        IndexQuery::RouteCountry(c)
    } else if let Ok(
        m @ (pb::TransportMode::Road
        | pb::TransportMode::Rail
        | pb::TransportMode::MaritimeContainer
        | pb::TransportMode::AirCargo
        | pb::TransportMode::PassengerLuggage
        | pb::TransportMode::PostalOrCourier
        | pb::TransportMode::OnlineOrder
        | pb::TransportMode::Other),
    ) = pb::TransportMode::try_from(f.transport)
    {
        IndexQuery::TransportMode(m)
    } else if let Ok(m) = pb::ConcealmentMethod::try_from(f.concealment)
        && m != pb::ConcealmentMethod::Unspecified
    {
        IndexQuery::Concealment(m)
    } else {
        IndexQuery::CountryDate {
            country: own,
            from: f.from,
            to: f.to,
        }
    }
}

impl QueryPlan {
    /// Entries read from the index: more than the limit, so that filtering and denials still
    /// leave up to `limit` results.
    pub const SCAN: usize = MAX_QUERY * 10;

    /// Checks a filter and limit (0: the default) for a node of country `own`.
    pub fn new(
        filter: &pb::RecordFilter,
        limit: u32,
        own: CountryCode,
    ) -> Result<QueryPlan, DiscloseError> {
        let filter =
            Filter::parse(filter).map_err(|e| DiscloseError::BadArgument(e.to_string()))?;
        let index = index(&filter, own);
        Ok(QueryPlan {
            criteria: Criteria::Filter(filter),
            limit: match limit as usize {
                0 => DEFAULT_QUERY,
                n => n.min(MAX_QUERY),
            },
            index,
        })
    }
}

/// A query from a peer: of the records read from the plan's index, those not withdrawn whose
/// disclosed view matches the filter, up to the plan's limit.
pub fn decide_query(
    holder: Holder,
    asker: &Asker,
    plan: &QueryPlan,
    candidates: Vec<pb::SeizureRecord>,
    withdrawn: &HashSet<String>,
) -> Answer<pb::DisclosedRecord> {
    let received = asker.event(EventKind::RequestReceived, "query records".into());
    let contact = holder.contact.to_owned();
    disclose(
        holder,
        asker,
        received,
        Pool {
            records: candidates,
            withdrawn,
            limit: plan.limit,
        },
        &plan.criteria,
        "query result",
        |reference, d| pb::DisclosedRecord {
            reference: Some(reference),
            record: (!d.hit_only).then_some(d.view),
            handling: Some(d.handling),
            policy_version: d.policy_version,
            policy_rule: d.rule_id,
            signature: None,
            redacted_fields: d.redacted.iter().map(|s| (*s).to_owned()).collect(),
            hit_only: d.hit_only,
            contact: contact.clone(),
            // Signed by the peer service for the requester (provenance).
            owner_disclosure: None,
        },
    )
}

/// This node's own records for its own gateway: the records read that match the filter and are
/// not withdrawn, in full, up to the plan's limit. Nothing leaves the node, so no policy applies
/// (the filter sees the whole record) and nothing is audited.
pub fn decide_local(
    owner: &NodeId,
    plan: &QueryPlan,
    candidates: Vec<pb::SeizureRecord>,
    withdrawn: &HashSet<String>,
) -> Vec<pb::DisclosedRecord> {
    candidates
        .into_iter()
        .filter(|r| plan.criteria.matches(r) && !withdrawn.contains(&r.id))
        .take(plan.limit)
        .map(|rec| pb::DisclosedRecord {
            reference: Some(reference(owner, &rec)),
            record: Some(rec),
            ..Default::default()
        })
        .collect()
}

/// What the policy in force would disclose of `record` to `who` (in `regions`, of member kind
/// `kind`) asking as `agency` for `purpose`: the same evaluation a real request gets,
/// disclosing and auditing nothing.
#[allow(clippy::too_many_arguments)]
pub fn preview(
    policy: &Policy,
    who: &NodeId,
    regions: Vec<String>,
    kind: pb::MemberKind,
    agency: pb::AgencyKind,
    purpose: pb::Purpose,
    record: &pb::SeizureRecord,
) -> pb::PreviewDisclosureResponse {
    let q = Requester {
        affiliation: who.affiliation().clone(),
        member_kind: kind,
        regions,
        agency_kind: agency,
        purpose,
    };
    // Previewed under the record's own class: a loss report as its loss-report rule shows it.
    match policy::evaluate(policy, &q, policy::record_class(record), record) {
        Ok(d) => pb::PreviewDisclosureResponse {
            allowed: true,
            refusal: String::new(),
            record: Some(d.view),
            redacted_fields: d.redacted.iter().map(|s| (*s).to_owned()).collect(),
            handling: Some(d.handling),
            policy_version: d.policy_version,
            policy_rule: d.rule_id,
        },
        Err(denial) => pb::PreviewDisclosureResponse {
            allowed: false,
            refusal: denial.to_string(),
            policy_version: policy.version(),
            ..Default::default()
        },
    }
}

// ---- drivers: the reads each decision needs (blocking; run off the async threads) ----

/// Which of `records` were withdrawn from sharing.
fn withdrawn_among(
    node: &NodeContext,
    records: &[pb::SeizureRecord],
) -> Result<HashSet<String>, DiscloseError> {
    let mut out = HashSet::new();
    for r in records {
        if node.ledger.is_withdrawn(&r.id)? {
            out.insert(r.id.clone());
        }
    }
    Ok(out)
}

fn records(found: Vec<pb::StoredRecord>) -> Vec<pb::SeizureRecord> {
    found.into_iter().filter_map(|s| s.record).collect()
}

/// What a peer's request for statistical tables gets: the tables (unsigned) or the denial, and
/// the audit events to append before either leaves.
#[derive(Debug, Clone, PartialEq)]
pub struct StatisticsAnswer {
    /// The tables, suppressed with the rule's threshold, or why none are sent.
    pub outcome: Result<pb::StatisticsResponse, policy::Denial>,
    /// The request, then its disclosure or denial.
    pub events: Vec<Event>,
}

/// Decides a peer's request for statistical tables (pure). Only a rule matching the asker for
/// the statistics purpose and [`pb::DataClass::StatisticsAggregate`] allows it; such a rule sends
/// tables computed by `compute`, never a record, with small cells suppressed below its threshold
/// (see [`crate::stats::suppress`]). A request for the border risk analysis purpose is a route
/// report: only a rule for that purpose and [`pb::DataClass::RouteReport`] allows it, and it
/// sends the route and modus operandi tables only ([`crate::stats::ROUTE_REPORT_TABLES`]). A
/// request stating any other purpose is denied whatever the rules say. `compute` runs only when
/// the request is allowed.
pub fn decide_statistics(
    holder: Holder,
    asker: &Asker,
    period: crate::stats::Period,
    compute: impl FnOnce() -> crate::stats::Report,
) -> StatisticsAnswer {
    let mut requester = asker.requester();
    let (class, what) = match requester.purpose {
        pb::Purpose::BorderRiskAnalysis => (pb::DataClass::RouteReport, "route report tables"),
        pb::Purpose::Statistics => (pb::DataClass::StatisticsAggregate, "statistics tables"),
        _ => {
            // Looked up as the statistics purpose would be, but refused on the purpose stated.
            requester.purpose = pb::Purpose::Unspecified;
            (pb::DataClass::StatisticsAggregate, "statistics tables")
        }
    };
    let request = asker.event(
        EventKind::RequestReceived,
        format!("{what} {}", period.label()),
    );
    let rule = Applicable::find(holder.policy, &requester, class);
    match rule {
        Err(denial) => {
            let denied = Event {
                policy_version: holder.policy.version(),
                ..asker.event(EventKind::Denial, format!("{what}: {denial}"))
            };
            StatisticsAnswer {
                outcome: Err(denial),
                events: vec![request, denied],
            }
        }
        Ok(rule) => {
            let k = rule.statistics_min_cell();
            let mut report = compute();
            if class == pb::DataClass::RouteReport {
                report
                    .tables
                    .retain(|t| crate::stats::ROUTE_REPORT_TABLES.contains(&t.id.as_str()));
            }
            let mut resp = crate::stats::response(&holder.node.to_string(), &report, k);
            resp.policy_version = rule.policy_version();
            resp.policy_rule = rule.rule_id().to_owned();
            let suppressed = resp
                .tables
                .iter()
                .flat_map(|t| &t.cells)
                .filter(|c| c.suppressed)
                .count();
            let disclosed = Event {
                policy_version: rule.policy_version(),
                policy_rule: rule.rule_id().to_owned(),
                ..asker.event(
                    EventKind::Disclosure,
                    format!(
                        "{what} {}: {} table(s), no record, cells below {k} suppressed ({suppressed} cell(s) withheld)",
                        period.label(),
                        resp.tables.len()
                    ),
                )
            };
            StatisticsAnswer {
                outcome: Ok(resp),
                events: vec![request, disclosed],
            }
        }
    }
}

/// Every record this node holds and every trace record of its ledger: what its statistics are
/// computed from. Records are read in pages.
pub fn statistics_sources(
    node: &NodeContext,
) -> Result<(Vec<pb::SeizureRecord>, Vec<pb::TraceRecord>), DiscloseError> {
    const PAGE: usize = 1000;
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = node.store.list(after, PAGE)?;
        let n = page.len();
        let last = page
            .last()
            .and_then(|s| s.record.as_ref())
            .map(|r| r.id.clone());
        out.extend(records(page));
        match last.and_then(|id| crate::ids::RecordId::parse(&id).ok()) {
            Some(id) if n == PAGE => after = Some(id),
            _ => break,
        }
    }
    let traces = node.ledger.list_traces("", node.clock.now_secs())?;
    Ok((out, traces))
}

/// Reads what a peer's statistics request needs (only if a rule allows it) and decides it.
/// Writes nothing.
pub fn statistics(
    node: &NodeContext,
    who: &NodeId,
    ctx: &pb::RequestContext,
    year: u32,
    quarter: u32,
) -> Result<StatisticsAnswer, DiscloseError> {
    let period = crate::stats::period_of(year, quarter).map_err(DiscloseError::BadArgument)?;
    let view = node.roster.view();
    let holder = Holder {
        node: &node.node_id,
        policy: &view.policy,
        contact: &view.own_contact,
    };
    let mut failed = None;
    let now = node.clock.now_secs();
    let answer =
        decide_statistics(
            holder,
            &asker(node, who, ctx),
            period,
            || match statistics_sources(node) {
                Ok((records, traces)) => crate::stats::report(period, &records, &traces, now),
                Err(e) => {
                    failed = Some(e);
                    crate::stats::report(period, &[], &[], now)
                }
            },
        );
    match failed {
        Some(e) => Err(e),
        None => Ok(answer),
    }
}

/// The asker of a peer request, with its regions from the roster.
pub fn asker<'a>(node: &NodeContext, who: &'a NodeId, ctx: &'a pb::RequestContext) -> Asker<'a> {
    Asker {
        node: who,
        context: ctx,
        regions: node.roster.regions(who),
        member_kind: node.roster.member_kind(who),
    }
}

/// Reads what a lookup needs and decides it. Writes nothing. A refused partial lookup reads no
/// record.
pub fn lookup(
    node: &NodeContext,
    who: &NodeId,
    ctx: &pb::RequestContext,
    serial_number: &str,
    manufacturer: &str,
    kind: i32,
) -> Result<Answer<pb::LookupHit>, DiscloseError> {
    let criteria = lookup_criteria(serial_number, manufacturer, kind)?;
    let view = node.roster.view();
    let holder = Holder {
        node: &node.node_id,
        policy: &view.policy,
        contact: &view.own_contact,
    };
    let asker = asker(node, who, ctx);
    let found = match (
        lookup_limit(holder, &asker, &criteria),
        lookup_index(&criteria),
    ) {
        (Ok(_), Some(index)) => {
            let mut found = records(node.store.find(&index, MAX_LOOKUP)?);
            // Confusable readings of a serial are looked up only where a rule for the classes
            // a lookup reads allows fuzzy matching (the same decision `matching::serial_mode`
            // makes on each view).
            let fuzzy = || {
                [pb::DataClass::Seizure, pb::DataClass::LossReport]
                    .into_iter()
                    .any(|class| {
                        Applicable::find(holder.policy, &asker.requester(), class)
                            .is_ok_and(|rule| rule.partial_lookup().is_some())
                    })
            };
            if let Criteria::Serial { wanted: w, .. } = &criteria
                && !w.has_wildcards()
                && fuzzy()
            {
                let mut seen: HashSet<String> = found.iter().map(|r| r.id.clone()).collect();
                for variant in crate::serial::confusable_variants(w, crate::serial::MAX_VARIANTS) {
                    if found.len() >= 2 * MAX_LOOKUP {
                        break;
                    }
                    for r in records(node.store.find(&IndexQuery::Serial(variant), MAX_LOOKUP)?) {
                        if seen.insert(r.id.clone()) {
                            found.push(r);
                        }
                    }
                }
            }
            found
        }
        _ => Vec::new(),
    };
    let withdrawn = withdrawn_among(node, &found)?;
    Ok(decide_lookup(holder, &asker, &criteria, found, &withdrawn))
}

/// Reads what a peer's query needs and decides it. Writes nothing.
pub fn query(
    node: &NodeContext,
    who: &NodeId,
    ctx: &pb::RequestContext,
    filter: &pb::RecordFilter,
    limit: u32,
) -> Result<Answer<pb::DisclosedRecord>, DiscloseError> {
    let plan = QueryPlan::new(filter, limit, node.country)?;
    let candidates = records(node.store.find(&plan.index, QueryPlan::SCAN)?);
    // Every candidate's flag is read, not only those up to the limit: one key lookup each,
    // beside the record reads already made, so the decision can take plain values.
    let withdrawn = withdrawn_among(node, &candidates)?;
    let view = node.roster.view();
    let holder = Holder {
        node: &node.node_id,
        policy: &view.policy,
        contact: &view.own_contact,
    };
    Ok(decide_query(
        holder,
        &asker(node, who, ctx),
        &plan,
        candidates,
        &withdrawn,
    ))
}

/// This node's own records matching a filter, in full, for its own gateway.
pub fn local_matches(
    node: &NodeContext,
    filter: &pb::RecordFilter,
    limit: u32,
) -> Result<Vec<pb::DisclosedRecord>, DiscloseError> {
    let plan = QueryPlan::new(filter, limit, node.country)?;
    let candidates: Vec<_> = records(node.store.find(&plan.index, QueryPlan::SCAN)?)
        .into_iter()
        .filter(|r| plan.criteria.matches(r))
        .collect();
    let withdrawn = withdrawn_among(node, &candidates)?;
    Ok(decide_local(&node.node_id, &plan, candidates, &withdrawn))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::fixtures::{context, country, node, policy, record};
    use crate::serial;

    const ID1: &str = "00000000000000000000000000000001";
    const ID2: &str = "00000000000000000000000000000002";
    const ID3: &str = "00000000000000000000000000000003";

    fn kinds(events: &[Event]) -> Vec<EventKind> {
        events.iter().map(|e| e.kind).collect()
    }

    /// Three FRA records sharing one serial number (as a lookup would find them).
    fn same_serial() -> (NormalisedSerial, Vec<pb::SeizureRecord>) {
        let first = record(1, ID1);
        let serial_number = first.firearms[0].serial_number.clone();
        let recs: Vec<pb::SeizureRecord> = [first, record(2, ID2), record(3, ID3)]
            .into_iter()
            .map(|mut r| {
                r.firearms[0].serial_number = serial_number.clone();
                r
            })
            .collect();
        (serial::normalise(&serial_number).unwrap(), recs)
    }

    fn lookup_by(
        from: &str,
        purpose: pb::Purpose,
        manufacturer: &str,
        withdrawn: &[&str],
    ) -> Answer<pb::LookupHit> {
        let (me, who, p) = (node("FRA-POL"), node(from), policy());
        let ctx = context(from, purpose);
        let (wanted, recs) = same_serial();
        let asker = Asker {
            node: &who,
            context: &ctx,
            regions: vec![],
            member_kind: pb::MemberKind::NationalAgency,
        };
        let holder = Holder {
            node: &me,
            policy: &p,
            contact: "",
        };
        let withdrawn = withdrawn.iter().map(|s| (*s).to_owned()).collect();
        let criteria = Criteria::Serial {
            wanted,
            maker: serial::manufacturer_key(manufacturer),
        };
        decide_lookup(holder, &asker, &criteria, recs, &withdrawn)
    }

    #[test]
    fn an_allowed_lookup_discloses_each_record_and_audits_each_disclosure() {
        let a = lookup_by("DEU-BKA", pb::Purpose::Tracing, "", &[]);
        assert_eq!(a.items.len(), 3);
        assert_eq!(a.disclosed, [ID1, ID2, ID3]);
        assert_eq!(
            kinds(&a.events),
            [
                EventKind::RequestReceived,
                EventKind::Disclosure,
                EventKind::Disclosure,
                EventKind::Disclosure
            ]
        );
        let d = &a.events[1];
        assert_eq!(
            (d.peer.as_str(), d.request_id.as_str()),
            ("DEU-BKA", "req-1")
        );
        assert_eq!((d.policy_version, d.policy_rule.as_str()), (7, "deu"));
        assert_eq!(d.record_refs, [ID1]);
        assert_eq!(d.purpose, "PURPOSE_TRACING");
        let hit = &a.items[0];
        assert_eq!(hit.reference.as_ref().unwrap().owner_node, "FRA-POL");
        assert_eq!(hit.policy_rule, "deu");
        // Only what the rule allows leaves: no persons, no notes.
        let view = hit.disclosed.as_ref().unwrap();
        assert!(view.persons.is_empty() && view.notes.is_empty());
    }

    #[test]
    fn a_withdrawn_record_is_never_disclosed_nor_audited_as_disclosed() {
        let a = lookup_by("DEU-BKA", pb::Purpose::Tracing, "", &[ID2]);
        assert_eq!(a.disclosed, [ID1, ID3]);
        assert!(
            a.events
                .iter()
                .all(|e| !e.record_refs.contains(&ID2.to_owned()))
        );
        // Withdrawn is not denied either: no denial event.
        assert!(!kinds(&a.events).contains(&EventKind::Denial));
    }

    #[test]
    fn a_denial_discloses_nothing_and_counts_the_withheld_records() {
        let a = lookup_by("ITA-POL", pb::Purpose::Tracing, "", &[ID3]);
        assert!(a.items.is_empty() && a.disclosed.is_empty());
        assert_eq!(
            kinds(&a.events),
            [EventKind::RequestReceived, EventKind::Denial]
        );
        let denial = &a.events[1];
        assert_eq!(denial.peer, "ITA-POL");
        assert_eq!(denial.policy_version, 7);
        assert!(denial.detail.starts_with("2 matching record(s) withheld"));
    }

    #[test]
    fn the_policy_sees_the_country_of_the_certified_node_not_of_the_context() {
        // ITA-POL's context names DEU-BKA (the peer service refuses that before deciding);
        // even so, the decision sees Italy, which no rule shares with.
        let (me, who, p) = (node("FRA-POL"), node("ITA-POL"), policy());
        let ctx = context("DEU-BKA", pb::Purpose::Tracing);
        let asker = Asker {
            node: &who,
            context: &ctx,
            regions: vec![],
            member_kind: pb::MemberKind::NationalAgency,
        };
        assert_eq!(
            asker.requester().affiliation,
            crate::ids::Affiliation::State(country("ITA"))
        );
        let (wanted, recs) = same_serial();
        let holder = Holder {
            node: &me,
            policy: &p,
            contact: "",
        };
        let criteria = Criteria::Serial {
            wanted,
            maker: String::new(),
        };
        let a = decide_lookup(holder, &asker, &criteria, recs, &HashSet::new());
        assert!(a.items.is_empty());
        assert_eq!(a.events[1].kind, EventKind::Denial);
        assert_eq!(a.events[1].peer, "ITA-POL");
    }

    #[test]
    fn a_purpose_the_rule_does_not_name_is_denied() {
        let a = lookup_by("DEU-BKA", pb::Purpose::Unspecified, "", &[]);
        assert!(a.items.is_empty());
        assert_eq!(
            kinds(&a.events),
            [EventKind::RequestReceived, EventKind::Denial]
        );
    }

    #[test]
    fn the_manufacturer_filter_drops_other_makers_without_a_denial() {
        let (_, recs) = same_serial();
        let maker = recs[0].firearms[0].manufacturer.clone();
        let expected = recs
            .iter()
            .filter(|r| r.firearms[0].manufacturer == maker)
            .count();
        let a = lookup_by("DEU-BKA", pb::Purpose::Tracing, &maker.to_lowercase(), &[]);
        assert_eq!(a.items.len(), expected);
        let b = lookup_by("DEU-BKA", pb::Purpose::Tracing, "No Such Maker", &[]);
        assert!(b.items.is_empty());
        assert_eq!(kinds(&b.events), [EventKind::RequestReceived]);
    }

    #[test]
    fn a_lookup_needs_something_to_search_for() {
        assert!(matches!(
            lookup_criteria(" -/ ", "", 0),
            Err(DiscloseError::BadArgument(_))
        ));
    }

    fn query_by(from: &str, limit: u32, withdrawn: &[&str]) -> Answer<pb::DisclosedRecord> {
        let (me, who, p) = (node("FRA-POL"), node(from), policy());
        let ctx = context(from, pb::Purpose::CriminalInvestigation);
        let plan = QueryPlan::new(&pb::RecordFilter::default(), limit, country("FRA")).unwrap();
        let recs = vec![record(1, ID1), record(2, ID2), record(3, ID3)];
        let asker = Asker {
            node: &who,
            context: &ctx,
            regions: vec![],
            member_kind: pb::MemberKind::NationalAgency,
        };
        let holder = Holder {
            node: &me,
            policy: &p,
            contact: "",
        };
        let withdrawn = withdrawn.iter().map(|s| (*s).to_owned()).collect();
        decide_query(holder, &asker, &plan, recs, &withdrawn)
    }

    #[test]
    fn a_query_stops_at_its_limit_and_audits_only_what_it_returns() {
        let a = query_by("DEU-BKA", 2, &[ID1]);
        assert_eq!(a.disclosed, [ID2, ID3]);
        let b = query_by("DEU-BKA", 1, &[]);
        assert_eq!(b.disclosed, [ID1]);
        assert_eq!(
            kinds(&b.events),
            [EventKind::RequestReceived, EventKind::Disclosure]
        );
        assert_eq!(b.events[0].detail, "query records");
    }

    #[test]
    fn a_denied_query_returns_nothing_and_one_denial() {
        let a = query_by("ITA-POL", 0, &[]);
        assert!(a.items.is_empty());
        assert_eq!(
            kinds(&a.events),
            [EventKind::RequestReceived, EventKind::Denial]
        );
        assert!(a.events[1].detail.starts_with("3 matching"));
    }

    #[test]
    fn query_plans_check_the_filter_and_bound_the_limit() {
        let fra = country("FRA");
        let bad = pb::RecordFilter {
            date_from: "2025-13-01".into(),
            ..Default::default()
        };
        assert!(QueryPlan::new(&bad, 0, fra).is_err());
        let any = pb::RecordFilter::default();
        assert_eq!(QueryPlan::new(&any, 0, fra).unwrap().limit, DEFAULT_QUERY);
        assert_eq!(
            QueryPlan::new(&any, 1_000_000, fra).unwrap().limit,
            MAX_QUERY
        );
        let by_route = pb::RecordFilter {
            route_country: "TUR".into(),
            ..Default::default()
        };
        let plan = QueryPlan::new(&by_route, 0, fra).unwrap();
        assert!(matches!(plan.index, IndexQuery::RouteCountry(c) if c == country("TUR")));
        let recs = vec![record(1, ID1), record(2, ID2), record(3, ID3)];
        let kept: Vec<_> = recs.iter().filter(|r| plan.criteria.matches(r)).collect();
        for r in &recs {
            let via_tur = r
                .trafficking
                .as_ref()
                .unwrap()
                .route
                .iter()
                .any(|p| p.country == "TUR");
            assert_eq!(kept.iter().any(|k| k.id == r.id), via_tur);
        }
    }

    #[test]
    fn local_matches_skip_withdrawn_records_and_keep_them_whole() {
        let plan = QueryPlan::new(&pb::RecordFilter::default(), 0, country("FRA")).unwrap();
        let recs = vec![record(1, ID1), record(2, ID2)];
        let withdrawn = HashSet::from([ID1.to_owned()]);
        let out = decide_local(&node("FRA-POL"), &plan, recs.clone(), &withdrawn);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].record.as_ref(), Some(&recs[1]));
    }

    #[test]
    fn a_preview_says_what_a_request_would_get() {
        let p = policy();
        let rec = record(1, ID1);
        let yes = preview(
            &p,
            &node("DEU-BKA"),
            vec![],
            pb::MemberKind::NationalAgency,
            pb::AgencyKind::Police,
            pb::Purpose::Tracing,
            &rec,
        );
        assert!(yes.allowed);
        assert_eq!((yes.policy_version, yes.policy_rule.as_str()), (7, "deu"));
        let no = preview(
            &p,
            &node("ITA-POL"),
            vec![],
            pb::MemberKind::NationalAgency,
            pb::AgencyKind::Police,
            pb::Purpose::Tracing,
            &rec,
        );
        assert!(!no.allowed && no.record.is_none() && !no.refusal.is_empty());
        assert_eq!(no.policy_version, 7);
    }
}
