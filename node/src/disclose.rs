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
use crate::model::Date;
use crate::policy::{self, Policy, Requester};
use crate::serial::{self, NormalisedSerial};
use crate::store::{IndexQuery, StoreError};

/// Most records a lookup considers.
pub const MAX_LOOKUP: usize = 100;
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
    /// The store failed. Retrying may help.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The exchange ledger failed. Retrying may help.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

// ---- decisions (pure) ----

/// The node that answers, as a disclosure decision sees it.
#[derive(Debug, Clone, Copy)]
pub struct Holder<'a> {
    /// This node (owner of every record it discloses).
    pub node: &'a NodeId,
    /// The sharing policy in force, one snapshot for the whole request.
    pub policy: &'a Policy,
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
}

impl Asker<'_> {
    /// The requester as the policy sees it: country from the certificate, the rest from the
    /// signed context and the roster.
    pub fn requester(&self) -> Requester {
        Requester {
            country: self.node.country(),
            regions: self.regions.clone(),
            agency_kind: pb::AgencyKind::try_from(self.context.agency_kind)
                .unwrap_or(pb::AgencyKind::Unspecified),
            purpose: pb::Purpose::try_from(self.context.purpose)
                .unwrap_or(pb::Purpose::Unspecified),
        }
    }

    /// An audit event about this request.
    fn event(&self, kind: EventKind, detail: String) -> Event {
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

/// Passes each candidate that is not withdrawn through the policy until `limit` are disclosed:
/// what every peer answer shares. `what` names the disclosure in the audit log.
fn disclose<T>(
    holder: Holder,
    asker: &Asker,
    request_event: Event,
    pool: Pool,
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
        match policy::evaluate(holder.policy, &requester, pb::DataClass::Seizure, &rec) {
            Ok(d) => {
                answer
                    .events
                    .push(disclosure_event(asker, &d, &rec.id, what));
                answer.disclosed.push(rec.id.clone());
                answer.items.push(item(reference(holder.node, &rec), d));
            }
            Err(_) => denied += 1,
        }
    }
    answer.events.extend(denial_event(holder, asker, denied));
    answer
}

/// The serial a lookup searches for, or why there is nothing to search for.
pub fn lookup_serial(serial_number: &str) -> Result<NormalisedSerial, DiscloseError> {
    serial::normalise(serial_number)
        .ok_or_else(|| DiscloseError::BadArgument("serial_number has nothing to search for".into()))
}

/// Whether `rec` holds a firearm of `maker` (a manufacturer key; empty matches every record).
fn made_by(rec: &pb::SeizureRecord, maker: &str) -> bool {
    maker.is_empty()
        || rec
            .firearms
            .iter()
            .any(|f| serial::manufacturer_key(&f.manufacturer) == maker)
}

/// Hit/no-hit: of the records found under `wanted`, those of `manufacturer` (when given) that are
/// not withdrawn and that the policy lets the asker see.
pub fn decide_lookup(
    holder: Holder,
    asker: &Asker,
    wanted: &NormalisedSerial,
    manufacturer: &str,
    candidates: Vec<pb::SeizureRecord>,
    withdrawn: &HashSet<String>,
) -> Answer<pb::LookupHit> {
    let maker = serial::manufacturer_key(manufacturer);
    let candidates = candidates
        .into_iter()
        .filter(|r| made_by(r, &maker))
        .collect();
    let received = asker.event(
        EventKind::RequestReceived,
        format!("lookup serial {}", wanted.as_str()),
    );
    disclose(
        holder,
        asker,
        received,
        Pool {
            records: candidates,
            withdrawn,
            limit: usize::MAX,
        },
        "lookup hit",
        |reference, d| pb::LookupHit {
            reference: Some(reference),
            disclosed: Some(d.view),
            handling: Some(d.handling),
            redacted_fields: d.redacted.iter().map(|s| (*s).to_owned()).collect(),
            policy_version: d.policy_version,
            policy_rule: d.rule_id,
            // Signed by the peer service for the requester (provenance).
            owner_disclosure: None,
        },
    )
}

#[derive(Debug, Clone)]
struct Filter {
    route_country: Option<CountryCode>,
    transport: i32,
    concealment: i32,
    category: i32,
    agency: i32,
    from: Option<Date>,
    to: Option<Date>,
}

fn parse_filter(f: &pb::RecordFilter) -> Result<Filter, DiscloseError> {
    let bad = |m: String| DiscloseError::BadArgument(m);
    let date = |s: &str, name: &str| -> Result<Option<Date>, DiscloseError> {
        if s.is_empty() {
            Ok(None)
        } else {
            Date::parse(s)
                .map(Some)
                .ok_or_else(|| bad(format!("{name} must be YYYY-MM-DD")))
        }
    };
    Ok(Filter {
        route_country: if f.route_country.is_empty() {
            None
        } else {
            Some(CountryCode::parse(&f.route_country).map_err(|e| bad(e.to_string()))?)
        },
        transport: f.transport_mode,
        concealment: f.concealment_method,
        category: f.category,
        agency: f.seizing_agency,
        from: date(&f.date_from, "date_from")?,
        to: date(&f.date_to, "date_to")?,
    })
}

impl Filter {
    fn index(&self, own: CountryCode) -> IndexQuery {
        if let Some(c) = self.route_country {
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
        ) = pb::TransportMode::try_from(self.transport)
        {
            IndexQuery::TransportMode(m)
        } else if let Ok(m) = pb::ConcealmentMethod::try_from(self.concealment)
            && m != pb::ConcealmentMethod::Unspecified
        {
            IndexQuery::Concealment(m)
        } else {
            IndexQuery::CountryDate {
                country: own,
                from: self.from,
                to: self.to,
            }
        }
    }

    fn keeps(&self, r: &pb::SeizureRecord) -> bool {
        let t = r.trafficking.clone().unwrap_or_default();
        let ev = r.event.clone().unwrap_or_default();
        let date = Date::parse(&ev.date);
        self.route_country
            .is_none_or(|c| t.route.iter().any(|p| p.country == c.as_str()))
            && (self.transport == 0 || t.transport_mode == self.transport)
            && (self.concealment == 0 || t.concealment_method == self.concealment)
            && (self.category == 0 || r.firearms.iter().any(|f| f.category == self.category))
            && (self.agency == 0 || ev.seizing_agency == self.agency)
            && self.from.is_none_or(|f| date.is_some_and(|d| d >= f))
            && self.to.is_none_or(|t| date.is_some_and(|d| d <= t))
    }
}

/// A checked record query: which index to read, which records it keeps, and how many to return.
#[derive(Debug, Clone)]
pub struct QueryPlan {
    filter: Filter,
    /// Most records returned.
    pub limit: usize,
    /// The index to read (at most [`QueryPlan::SCAN`] entries of it).
    pub index: IndexQuery,
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
        let filter = parse_filter(filter)?;
        let index = filter.index(own);
        Ok(QueryPlan {
            filter,
            limit: match limit as usize {
                0 => DEFAULT_QUERY,
                n => n.min(MAX_QUERY),
            },
            index,
        })
    }

    /// The records read from the index that match the whole filter, in index order.
    pub fn shortlist(&self, found: Vec<pb::SeizureRecord>) -> Vec<pb::SeizureRecord> {
        found.into_iter().filter(|r| self.filter.keeps(r)).collect()
    }
}

/// A query from a peer: of the shortlisted records, those not withdrawn that the policy lets the
/// asker see, up to the plan's limit.
pub fn decide_query(
    holder: Holder,
    asker: &Asker,
    plan: &QueryPlan,
    shortlist: Vec<pb::SeizureRecord>,
    withdrawn: &HashSet<String>,
) -> Answer<pb::DisclosedRecord> {
    let received = asker.event(EventKind::RequestReceived, "query records".into());
    disclose(
        holder,
        asker,
        received,
        Pool {
            records: shortlist,
            withdrawn,
            limit: plan.limit,
        },
        "query result",
        |reference, d| pb::DisclosedRecord {
            reference: Some(reference),
            record: Some(d.view),
            handling: Some(d.handling),
            policy_version: d.policy_version,
            policy_rule: d.rule_id,
            signature: None,
            redacted_fields: d.redacted.iter().map(|s| (*s).to_owned()).collect(),
            // Signed by the peer service for the requester (provenance).
            owner_disclosure: None,
        },
    )
}

/// This node's own records for its own gateway: the shortlisted records not withdrawn, in full,
/// up to the plan's limit. Nothing leaves the node, so no policy applies and nothing is audited.
pub fn decide_local(
    owner: &NodeId,
    plan: &QueryPlan,
    shortlist: Vec<pb::SeizureRecord>,
    withdrawn: &HashSet<String>,
) -> Vec<pb::DisclosedRecord> {
    shortlist
        .into_iter()
        .filter(|r| !withdrawn.contains(&r.id))
        .take(plan.limit)
        .map(|rec| pb::DisclosedRecord {
            reference: Some(reference(owner, &rec)),
            record: Some(rec),
            ..Default::default()
        })
        .collect()
}

/// What the policy in force would disclose of `record` to `who` (in `regions`) asking as
/// `agency` for `purpose`: the same evaluation a real request gets, disclosing and auditing
/// nothing.
pub fn preview(
    policy: &Policy,
    who: &NodeId,
    regions: Vec<String>,
    agency: pb::AgencyKind,
    purpose: pb::Purpose,
    record: &pb::SeizureRecord,
) -> pb::PreviewDisclosureResponse {
    let q = Requester {
        country: who.country(),
        regions,
        agency_kind: agency,
        purpose,
    };
    match policy::evaluate(policy, &q, pb::DataClass::Seizure, record) {
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

/// The asker of a peer request, with its regions from the roster.
pub fn asker<'a>(node: &NodeContext, who: &'a NodeId, ctx: &'a pb::RequestContext) -> Asker<'a> {
    Asker {
        node: who,
        context: ctx,
        regions: node.roster.regions(who),
    }
}

/// Reads what a lookup needs and decides it. Writes nothing.
pub fn lookup(
    node: &NodeContext,
    who: &NodeId,
    ctx: &pb::RequestContext,
    serial_number: &str,
    manufacturer: &str,
) -> Result<Answer<pb::LookupHit>, DiscloseError> {
    let wanted = lookup_serial(serial_number)?;
    let found = records(
        node.store
            .find(&IndexQuery::Serial(wanted.clone()), MAX_LOOKUP)?,
    );
    let withdrawn = withdrawn_among(node, &found)?;
    let policy = node.roster.policy();
    let holder = Holder {
        node: &node.node_id,
        policy: &policy,
    };
    Ok(decide_lookup(
        holder,
        &asker(node, who, ctx),
        &wanted,
        manufacturer,
        found,
        &withdrawn,
    ))
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
    let shortlist = plan.shortlist(records(node.store.find(&plan.index, QueryPlan::SCAN)?));
    // Every shortlisted record's flag is read, not only those up to the limit: one key lookup
    // each, beside the record reads already made, so the decision can take plain values.
    let withdrawn = withdrawn_among(node, &shortlist)?;
    let policy = node.roster.policy();
    let holder = Holder {
        node: &node.node_id,
        policy: &policy,
    };
    Ok(decide_query(
        holder,
        &asker(node, who, ctx),
        &plan,
        shortlist,
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
    let shortlist = plan.shortlist(records(node.store.find(&plan.index, QueryPlan::SCAN)?));
    let withdrawn = withdrawn_among(node, &shortlist)?;
    Ok(decide_local(&node.node_id, &plan, shortlist, &withdrawn))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::fixtures::{context, country, node, policy, record};

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
        };
        let holder = Holder {
            node: &me,
            policy: &p,
        };
        let withdrawn = withdrawn.iter().map(|s| (*s).to_owned()).collect();
        decide_lookup(holder, &asker, &wanted, manufacturer, recs, &withdrawn)
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
        };
        assert_eq!(asker.requester().country, country("ITA"));
        let (wanted, recs) = same_serial();
        let holder = Holder {
            node: &me,
            policy: &p,
        };
        let a = decide_lookup(holder, &asker, &wanted, "", recs, &HashSet::new());
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
            lookup_serial(" -/ "),
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
        };
        let holder = Holder {
            node: &me,
            policy: &p,
        };
        let withdrawn = withdrawn.iter().map(|s| (*s).to_owned()).collect();
        decide_query(holder, &asker, &plan, plan.shortlist(recs), &withdrawn)
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
        let kept = plan.shortlist(recs.clone());
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
            pb::AgencyKind::Police,
            pb::Purpose::Tracing,
            &rec,
        );
        assert!(!no.allowed && no.record.is_none() && !no.refusal.is_empty());
        assert_eq!(no.policy_version, 7);
    }
}
