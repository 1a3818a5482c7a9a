//! The one rule for matching: which records a peer's lookup or query selects.
//!
//! A record is selected only on what the owner's applicable rule discloses to that requester,
//! at the precision it discloses it. [`select`] first builds the disclosed view
//! ([`Applicable::view`]) and then tests the request's [`Criteria`] against that view alone
//! ([`Criteria::matches`] never sees the stored record). So a withheld field never matches, a
//! date generalised to the month matches only a range covering that whole month, and a serial
//! the rule withholds is never a hit: whatever a requester learns from which records come back
//! is a function of the views its rule already discloses. Without an applicable rule nothing is
//! a hit.
//!
//! Serials match after normalisation; confusable characters (0/O/D/Q, 1/I/L, 5/S, 8/B, ...)
//! count as equal only under a rule that answers partial lookups ([`serial_mode`]), and hits
//! are ranked exact first ([`rank_under`], on the disclosed view too).
//!
//! Partial serial lookups (with unreadable characters) are a request-level decision
//! ([`check_serial`]): refused unless the rule allows them, with enough literal characters
//! before the first wildcard, and capped in results.

use tracenet_proto::v1 as pb;

use super::{Applicable, Denial, Disclosure, PartialLookup, Requester};
use crate::country::CountryCode;
use crate::model::Date;
use crate::serial::{self, MatchMode, NormalisedSerial, Rank};

/// Most hits an exact serial lookup considers.
pub const MAX_EXACT_HITS: usize = 100;

/// What a request selects on, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Criteria {
    /// A serial lookup: a disclosed firearm or part serial matching `wanted`, and (when
    /// `maker` is not empty) a disclosed manufacturer with that key.
    Serial {
        /// The normalised serial (may hold wildcards, checked by [`check_serial`]).
        wanted: NormalisedSerial,
        /// The manufacturer key (`serial::manufacturer_key`), empty for any.
        maker: String,
    },
    /// A lookup of another identifier: a disclosed entry of that kind matching `wanted`
    /// (normalised like a serial; never matched against serials or another kind).
    Identifier {
        /// Which identifier.
        kind: Identifier,
        /// The normalised identifier (may hold wildcards, checked by [`check_serial`]).
        wanted: NormalisedSerial,
    },
    /// A record query.
    Filter(Filter),
}

/// The identifiers other than serials a lookup can name (`LookupKind`), each matched only
/// against disclosed values of its own kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identifier {
    /// A ballistic reference (`ballistic_references`).
    BallisticReference,
    /// An ammunition headstamp (`ammunition.headstamp`).
    Headstamp,
    /// An ammunition lot or batch (`ammunition.lot`).
    AmmunitionLot,
    /// A conveyance or shipment identifier of any kind (`shipment.identifiers`).
    ShipmentId,
}

impl Identifier {
    /// The identifier a lookup kind names; `None` for a serial (or an unknown kind).
    pub fn of(kind: pb::LookupKind) -> Option<Identifier> {
        match kind {
            pb::LookupKind::BallisticReference => Some(Identifier::BallisticReference),
            pb::LookupKind::Headstamp => Some(Identifier::Headstamp),
            pb::LookupKind::AmmunitionLot => Some(Identifier::AmmunitionLot),
            pb::LookupKind::ShipmentId => Some(Identifier::ShipmentId),
            pb::LookupKind::Unspecified | pb::LookupKind::Serial => None,
        }
    }

    /// How audit entries name it.
    pub fn name(self) -> &'static str {
        match self {
            Identifier::BallisticReference => "ballistic reference",
            Identifier::Headstamp => "headstamp",
            Identifier::AmmunitionLot => "ammunition lot",
            Identifier::ShipmentId => "shipment identifier",
        }
    }

    /// The values of this kind a record (or a disclosed view) holds.
    pub fn values(self, view: &pb::SeizureRecord) -> Vec<&str> {
        match self {
            Identifier::BallisticReference => view
                .ballistic_references
                .iter()
                .map(String::as_str)
                .collect(),
            Identifier::Headstamp => view
                .ammunition
                .iter()
                .map(|a| a.headstamp.as_str())
                .collect(),
            Identifier::AmmunitionLot => view.ammunition.iter().map(|a| a.lot.as_str()).collect(),
            Identifier::ShipmentId => view
                .shipment
                .iter()
                .flat_map(|s| &s.identifiers)
                .map(|i| i.value.as_str())
                .collect(),
        }
    }
}

/// A query filter, checked. Empty criteria select every record (whose view exists).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// A country on the disclosed route.
    pub route_country: Option<CountryCode>,
    /// Disclosed transport mode (0: any).
    pub transport: i32,
    /// Disclosed concealment method (0: any).
    pub concealment: i32,
    /// A disclosed firearm category (0: any).
    pub category: i32,
    /// Disclosed seizing agency kind (0: any).
    pub agency: i32,
    /// Earliest date, inclusive.
    pub from: Option<Date>,
    /// Latest date, inclusive.
    pub to: Option<Date>,
}

/// Why a filter cannot be used. Not retryable without changing it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FilterError {
    /// The filter field.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl Filter {
    /// Checks a filter as received.
    pub fn parse(f: &pb::RecordFilter) -> Result<Filter, FilterError> {
        let date = |s: &str, field: &'static str| -> Result<Option<Date>, FilterError> {
            if s.is_empty() {
                return Ok(None);
            }
            Date::parse(s).map(Some).ok_or(FilterError {
                field,
                reason: "must be YYYY-MM-DD".into(),
            })
        };
        let route_country = if f.route_country.is_empty() {
            None
        } else {
            Some(
                CountryCode::parse(&f.route_country).map_err(|e| FilterError {
                    field: "route_country",
                    reason: e.to_string(),
                })?,
            )
        };
        Ok(Filter {
            route_country,
            transport: f.transport_mode,
            concealment: f.concealment_method,
            category: f.category,
            agency: f.seizing_agency,
            from: date(&f.date_from, "date_from")?,
            to: date(&f.date_to, "date_to")?,
        })
    }

    fn matches(&self, view: &pb::SeizureRecord) -> bool {
        let t = view.trafficking.clone().unwrap_or_default();
        let ev = view.event.clone().unwrap_or_default();
        self.route_country
            .is_none_or(|c| t.route.iter().any(|p| p.country == c.as_str()))
            && (self.transport == 0 || t.transport_mode == self.transport)
            && (self.concealment == 0 || t.concealment_method == self.concealment)
            && (self.category == 0 || view.firearms.iter().any(|f| f.category == self.category))
            && (self.agency == 0 || ev.seizing_agency == self.agency)
            && self.dates_match(&ev.date)
    }

    /// A date range matches a disclosed date only if it covers the whole period the view
    /// shows: a day for an exact date, the month or year for a generalised one.
    fn dates_match(&self, disclosed: &str) -> bool {
        if self.from.is_none() && self.to.is_none() {
            return true;
        }
        let Some((first, last)) = period(disclosed) else {
            return false;
        };
        self.from.is_none_or(|f| f.as_u32() <= first) && self.to.is_none_or(|t| last <= t.as_u32())
    }
}

/// The first and last day (as YYYYMMDD) of a disclosed date: `YYYY-MM-DD`, `YYYY-MM` or
/// `YYYY`; `None` for anything else (nothing disclosed).
fn period(disclosed: &str) -> Option<(u32, u32)> {
    let num = |s: Option<&str>| -> Option<u32> {
        let s = s?;
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match disclosed.len() {
        10 => Date::parse(disclosed).map(|d| (d.as_u32(), d.as_u32())),
        7 if disclosed.as_bytes().get(4) == Some(&b'-') => {
            let (y, m) = (num(disclosed.get(0..4))?, num(disclosed.get(5..7))?);
            let last = days_in_month(y, m)?;
            Some((y * 10_000 + m * 100 + 1, y * 10_000 + m * 100 + last))
        }
        4 => {
            let y = num(Some(disclosed))?;
            Some((y * 10_000 + 101, y * 10_000 + 1231))
        }
        _ => None,
    }
}

fn days_in_month(year: u32, month: u32) -> Option<u32> {
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    Some(match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        _ => return None,
    })
}

impl Criteria {
    /// A serial lookup's criteria. `None` when the serial has nothing to search for.
    pub fn serial(serial_number: &str, manufacturer: &str) -> Option<Criteria> {
        serial::normalise(serial_number).map(|wanted| Criteria::Serial {
            wanted,
            maker: serial::manufacturer_key(manufacturer),
        })
    }

    /// A lookup of another identifier. `None` when it has nothing to search for.
    pub fn identifier(kind: Identifier, value: &str) -> Option<Criteria> {
        serial::normalise(value).map(|wanted| Criteria::Identifier { kind, wanted })
    }

    /// A ballistic-reference lookup's criteria. `None` when the reference has nothing to search
    /// for.
    pub fn ballistic(reference: &str) -> Option<Criteria> {
        Criteria::identifier(Identifier::BallisticReference, reference)
    }

    /// The identifier a lookup searches for (serial or ballistic reference); `None` for a
    /// query.
    pub fn wanted(&self) -> Option<&NormalisedSerial> {
        match self {
            Criteria::Serial { wanted, .. } | Criteria::Identifier { wanted, .. } => Some(wanted),
            Criteria::Filter(_) => None,
        }
    }

    /// Whether a disclosed view satisfies these criteria, serials compared after
    /// normalisation only. Takes the view only: the stored record is never consulted.
    pub fn matches(&self, view: &pb::SeizureRecord) -> bool {
        self.rank(view, MatchMode::Normalised).is_some()
    }

    /// How well a disclosed view satisfies these criteria (`None`: not at all), serials
    /// compared in `mode`; the best of the view's firearm and part serials. A filter that
    /// matches ranks as exact. Takes the view only.
    pub fn rank(&self, view: &pb::SeizureRecord, mode: MatchMode) -> Option<Rank> {
        match self {
            Criteria::Serial { wanted, maker } => {
                let maker_ok = maker.is_empty()
                    || view
                        .firearms
                        .iter()
                        .any(|f| serial::manufacturer_key(&f.manufacturer) == *maker);
                if !maker_ok {
                    return None;
                }
                view.firearms
                    .iter()
                    .map(|f| f.serial_number.as_str())
                    .chain(view.parts.iter().map(|p| p.serial_number.as_str()))
                    .filter_map(serial::normalise)
                    .filter_map(|cand| serial::rank(wanted, &cand, mode))
                    .min()
            }
            // Other identifiers match after normalisation only: confusable readings are a
            // serial-number matter (misread stamped characters).
            Criteria::Identifier { kind, wanted } => kind
                .values(view)
                .into_iter()
                .filter_map(serial::normalise)
                .filter_map(|cand| serial::rank(wanted, &cand, MatchMode::Normalised))
                .min(),
            Criteria::Filter(f) => f.matches(view).then_some(Rank::EXACT),
        }
    }
}

/// How serials compare under `rule`: confusable characters (0/O/D/Q, 1/I/L, ...) count as
/// equal only where the rule answers partial lookups, since a confusable match is a fuzzy
/// one; otherwise only normalised serials match.
pub fn serial_mode(rule: &Applicable) -> MatchMode {
    if rule.partial_lookup().is_some() {
        MatchMode::Confusable
    } else {
        MatchMode::Normalised
    }
}

/// The rank of `record` for `criteria` under `rule`, decided on the view the rule discloses
/// (like [`select_under`]); `None` when it is not selected.
pub fn rank_under(
    rule: &Applicable,
    criteria: &Criteria,
    record: &pb::SeizureRecord,
) -> Option<Rank> {
    criteria.rank(&rule.view(record).0, serial_mode(rule))
}

/// What [`select`] decides for one record.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    /// The record matches on its disclosed view: what the requester receives.
    Hit(Box<Disclosure>),
    /// A rule applies but the disclosed view does not match.
    Miss,
    /// No rule shares this class with the requester: never a hit.
    Denied(Denial),
}

/// The one rule for matching: whether `record` is selected by `criteria` for `requester`, and
/// if so what it receives. Decided on the view the applicable rule discloses, never on the
/// record as held.
pub fn select(
    policy: &super::Policy,
    requester: &Requester,
    class: pb::DataClass,
    criteria: &Criteria,
    record: &pb::SeizureRecord,
) -> Selection {
    if super::record_class(record) != class {
        return Selection::Denied(super::wrong_class(policy, requester, class));
    }
    match Applicable::find(policy, requester, class) {
        Err(denial) => Selection::Denied(denial),
        Ok(rule) => select_under(&rule, criteria, record),
    }
}

/// [`select`] with the applicable rule already found (it does not depend on the record).
pub fn select_under(
    rule: &Applicable,
    criteria: &Criteria,
    record: &pb::SeizureRecord,
) -> Selection {
    let (view, redacted) = rule.view(record);
    if criteria.rank(&view, serial_mode(rule)).is_some() {
        Selection::Hit(Box::new(rule.disclosure(view, redacted)))
    } else {
        Selection::Miss
    }
}

/// Why a serial lookup is refused before any record is read. Not retryable with the same
/// serial: it depends only on the owner's policy and the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SerialRefusal {
    /// The serial has unreadable characters and the applicable rule (if any) does not answer
    /// partial lookups.
    #[error(
        "partial serial lookups (with unreadable characters) are not answered for this requester and purpose"
    )]
    PartialNotAllowed,
    /// Too few literal characters before the first unreadable one.
    #[error(
        "a partial serial lookup needs at least {needed} readable characters before the first unreadable one"
    )]
    PrefixTooShort {
        /// The literal prefix the rule requires.
        needed: usize,
    },
}

/// Whether a serial may be looked up under `rule` (none: no rule applies), and the most hits
/// the lookup may return. Exact serials are always looked up (a lookup without a rule then
/// finds nothing); partial ones only as the rule allows.
pub fn check_serial(
    rule: Option<&Applicable>,
    wanted: &NormalisedSerial,
) -> Result<usize, SerialRefusal> {
    if !wanted.has_wildcards() {
        return Ok(MAX_EXACT_HITS);
    }
    let Some(PartialLookup {
        min_literal_prefix,
        max_results,
    }) = rule.and_then(Applicable::partial_lookup)
    else {
        return Err(SerialRefusal::PartialNotAllowed);
    };
    if wanted.literal_prefix().len() < min_literal_prefix {
        return Err(SerialRefusal::PrefixTooShort {
            needed: min_literal_prefix,
        });
    }
    Ok(max_results)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
