//! Answering peers: find the records a lookup or query asks for, pass each through this node's
//! sharing policy for the requester and purpose, and describe every disclosure and denial for the
//! audit log. Synchronous (store reads); the peer service runs it off the async threads and
//! appends the audit events before anything is sent.

use tracenet_proto::v1 as pb;

use crate::audit::Event;
use crate::context::NodeContext;
use crate::country::CountryCode;
use crate::ids::NodeId;
use crate::model::Date;
use crate::policy::{self, Requester};
use crate::serial;
use crate::store::{IndexQuery, StoreError};

/// Most records a lookup considers.
pub const MAX_LOOKUP: usize = 100;
/// Most records a query returns.
pub const MAX_QUERY: usize = 1000;

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
    Ledger(#[from] crate::ledger::LedgerError),
}

/// The audit entry for records found but withheld, if any were.
fn denial_event(
    node: &NodeContext,
    who: &NodeId,
    ctx: &pb::RequestContext,
    denied: usize,
) -> Option<Event> {
    (denied > 0).then(|| Event {
        kind: "denial",
        peer: who.to_string(),
        request_id: ctx.request_id.clone(),
        purpose: purpose_name(ctx),
        detail: format!("{denied} matching record(s) withheld: no policy rule shares them"),
        policy_version: node.roster.policy().version(),
        ..Default::default()
    })
}

fn withdrawn(node: &NodeContext, rec: &pb::SeizureRecord) -> Result<bool, DiscloseError> {
    Ok(node.ledger.is_withdrawn(&rec.id)?)
}

fn reference(owner: &NodeId, rec: &pb::SeizureRecord) -> pb::RecordRef {
    pb::RecordRef {
        owner_node: owner.to_string(),
        reference: rec.id.clone(),
    }
}

fn disclosure_event(
    peer: &NodeId,
    ctx: &pb::RequestContext,
    d: &policy::Disclosure,
    record_ref: String,
    what: &str,
) -> Event {
    Event {
        kind: "disclosure",
        peer: peer.to_string(),
        request_id: ctx.request_id.clone(),
        purpose: purpose_name(ctx),
        detail: if d.redacted.is_empty() {
            what.to_owned()
        } else {
            format!("{what}; redacted: {}", d.redacted.join(", "))
        },
        policy_version: d.policy_version,
        policy_rule: d.rule_id.clone(),
        record_refs: vec![record_ref],
    }
}

/// The stated purpose's name.
pub fn purpose_name(ctx: &pb::RequestContext) -> String {
    pb::Purpose::try_from(ctx.purpose)
        .unwrap_or(pb::Purpose::Unspecified)
        .as_str_name()
        .to_owned()
}

/// The requester as the policy sees it: country from the certificate, the rest from the signed
/// context and configuration.
pub fn requester(node: &NodeContext, who: &NodeId, ctx: &pb::RequestContext) -> Requester {
    Requester {
        country: who.country(),
        regions: node.roster.regions(who),
        agency_kind: pb::AgencyKind::try_from(ctx.agency_kind)
            .unwrap_or(pb::AgencyKind::Unspecified),
        purpose: pb::Purpose::try_from(ctx.purpose).unwrap_or(pb::Purpose::Unspecified),
    }
}

/// Hit/no-hit: records with a matching serial (and manufacturer, when given) that the policy
/// lets this requester see.
pub fn lookup(
    node: &NodeContext,
    who: &NodeId,
    ctx: &pb::RequestContext,
    serial_number: &str,
    manufacturer: &str,
) -> Result<(Vec<pb::LookupHit>, Vec<Event>), DiscloseError> {
    let wanted = serial::normalise(serial_number).ok_or_else(|| {
        DiscloseError::BadArgument("serial_number has nothing to search for".into())
    })?;
    let maker = serial::manufacturer_key(manufacturer);
    let found = node
        .store
        .find(&IndexQuery::Serial(wanted.clone()), MAX_LOOKUP)?;
    let q = requester(node, who, ctx);
    let mut hits = Vec::new();
    let mut events = vec![Event {
        kind: "request_received",
        peer: who.to_string(),
        request_id: ctx.request_id.clone(),
        purpose: purpose_name(ctx),
        detail: format!("lookup serial {}", wanted.as_str()),
        ..Default::default()
    }];
    let mut denied = 0;
    for stored in found {
        let Some(rec) = stored.record else { continue };
        if withdrawn(node, &rec)? {
            continue;
        }
        if !maker.is_empty()
            && !rec
                .firearms
                .iter()
                .any(|f| serial::manufacturer_key(&f.manufacturer) == maker)
        {
            continue;
        }
        match policy::evaluate(&node.roster.policy(), &q, pb::DataClass::Seizure, &rec) {
            Ok(d) => {
                events.push(disclosure_event(who, ctx, &d, rec.id.clone(), "lookup hit"));
                hits.push(pb::LookupHit {
                    reference: Some(reference(&node.node_id, &rec)),
                    disclosed: Some(d.view),
                    handling: Some(d.handling),
                    redacted_fields: d.redacted.iter().map(|s| (*s).to_owned()).collect(),
                    policy_version: d.policy_version,
                    policy_rule: d.rule_id,
                });
            }
            Err(_) => denied += 1,
        }
    }
    events.extend(denial_event(node, who, ctx, denied));
    Ok((hits, events))
}

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

/// Records matching a filter, each passed through the policy.
pub fn query(
    node: &NodeContext,
    who: &NodeId,
    ctx: &pb::RequestContext,
    filter: &pb::RecordFilter,
    limit: u32,
) -> Result<(Vec<pb::DisclosedRecord>, Vec<Event>), DiscloseError> {
    let f = parse_filter(filter)?;
    let limit = match limit as usize {
        0 => 100,
        n => n.min(MAX_QUERY),
    };
    let q = requester(node, who, ctx);
    let mut events = vec![Event {
        kind: "request_received",
        peer: who.to_string(),
        request_id: ctx.request_id.clone(),
        purpose: purpose_name(ctx),
        detail: "query records".into(),
        ..Default::default()
    }];
    let mut out = Vec::new();
    let mut denied = 0;
    // Scan more than `limit` so post-filtering and denials still leave up to `limit` results.
    for stored in node.store.find(&f.index(node.country), MAX_QUERY * 10)? {
        if out.len() >= limit {
            break;
        }
        let Some(rec) = stored.record else { continue };
        if !f.keeps(&rec) || withdrawn(node, &rec)? {
            continue;
        }
        match policy::evaluate(&node.roster.policy(), &q, pb::DataClass::Seizure, &rec) {
            Ok(d) => {
                events.push(disclosure_event(
                    who,
                    ctx,
                    &d,
                    rec.id.clone(),
                    "query result",
                ));
                out.push(pb::DisclosedRecord {
                    reference: Some(reference(&node.node_id, &rec)),
                    record: Some(d.view),
                    handling: Some(d.handling),
                    policy_version: d.policy_version,
                    policy_rule: d.rule_id,
                    signature: None,
                    redacted_fields: d.redacted.iter().map(|s| (*s).to_owned()).collect(),
                });
            }
            Err(_) => denied += 1,
        }
    }
    events.extend(denial_event(node, who, ctx, denied));
    Ok((out, events))
}

/// This node's own records matching a filter, in full (for its own gateway: nothing leaves the
/// node, so no policy applies and nothing is audited as a disclosure).
pub fn local_matches(
    node: &NodeContext,
    filter: &pb::RecordFilter,
    limit: u32,
) -> Result<Vec<pb::DisclosedRecord>, DiscloseError> {
    let f = parse_filter(filter)?;
    let limit = match limit as usize {
        0 => 100,
        n => n.min(MAX_QUERY),
    };
    let mut out = Vec::new();
    for stored in node.store.find(&f.index(node.country), MAX_QUERY * 10)? {
        if out.len() >= limit {
            break;
        }
        let Some(rec) = stored.record else { continue };
        if !f.keeps(&rec) || withdrawn(node, &rec)? {
            continue;
        }
        out.push(pb::DisclosedRecord {
            reference: Some(reference(&node.node_id, &rec)),
            record: Some(rec),
            ..Default::default()
        });
    }
    Ok(out)
}

/// What the policy in force would disclose of `record` to `who` asking as `agency` for
/// `purpose`: the same evaluation a real request gets, without disclosing or auditing anything.
pub fn preview(
    node: &NodeContext,
    who: &NodeId,
    agency: pb::AgencyKind,
    purpose: pb::Purpose,
    record: &pb::SeizureRecord,
) -> Result<policy::Disclosure, policy::Denial> {
    let q = Requester {
        country: who.country(),
        regions: node.roster.regions(who),
        agency_kind: agency,
        purpose,
    };
    policy::evaluate(&node.roster.policy(), &q, pb::DataClass::Seizure, record)
}
