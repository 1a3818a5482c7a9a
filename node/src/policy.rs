//! Sharing-policy evaluation: pure, deny by default.
//!
//! A [`Policy`] is a checked `SharingPolicy`: every field name known, every generalisation fitting
//! its field, rule ids unique. [`evaluate`] takes the owner's policy, a record and the requester's
//! context (country, regions, agency kind, purpose) and returns either the disclosed view with the
//! policy version, rule and handling codes that allowed it, or a denial with its reason.
//!
//! The view is built up from an empty record, copying only what the matching rule grants; nothing
//! is ever copied whole and then trimmed, so a field this module does not know cannot leak.

use std::collections::HashSet;
use std::fmt;

use tracenet_proto::v1 as pb;

use crate::country::CountryCode;
use crate::ids::{Affiliation, OrgCode};
use crate::model::Date;

pub mod matching;

/// A disclosable field of a seizure record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// `event.date` (generalisable to month or year).
    EventDate,
    /// `event.place` (generalisable to region or country).
    EventPlace,
    /// `event.seizing_agency`.
    SeizingAgency,
    /// `context.criminal_context`.
    CriminalContext,
    /// `context.seizure_kind`.
    SeizureKind,
    /// `firearms.serial_number`.
    FirearmSerial,
    /// `firearms.manufacturer`.
    FirearmManufacturer,
    /// `firearms.model`.
    FirearmModel,
    /// `firearms.category`.
    FirearmCategory,
    /// `firearms.calibre`.
    FirearmCalibre,
    /// `firearms.country_of_manufacture`.
    FirearmCountryOfManufacture,
    /// `firearms.year_of_manufacture`.
    FirearmYear,
    /// `firearms.import_marking`.
    FirearmImportMarking,
    /// `firearms.other_markings`.
    FirearmOtherMarkings,
    /// `firearms.marking_condition`.
    FirearmMarkingCondition,
    /// `parts` (kind and serial number).
    Parts,
    /// `parts.quantity` (generalisable to a band).
    PartsQuantity,
    /// `ammunition.calibre`.
    AmmunitionCalibre,
    /// `ammunition.manufacturer`.
    AmmunitionManufacturer,
    /// `ammunition.quantity` (generalisable to a band).
    AmmunitionQuantity,
    /// `trafficking.route`.
    Route,
    /// `trafficking.transport_mode`.
    TransportMode,
    /// `trafficking.concealment_method`.
    ConcealmentMethod,
    /// `trafficking.concealment_details`.
    ConcealmentDetails,
    /// `trafficking.suspected_source_country`.
    SuspectedSource,
    /// `trafficking.suspected_destination_country`.
    SuspectedDestination,
    /// `persons.role` (needs the persons data class).
    PersonRole,
    /// `persons.nationality` (needs the persons data class).
    PersonNationality,
    /// `persons.name` (needs the persons data class).
    PersonName,
    /// `case_reference`.
    CaseReference,
    /// `tracing`.
    Tracing,
    /// `notes`.
    Notes,
    /// `firearms.status` (converted, reactivated, craft-made, 3D-printed, modified).
    FirearmStatus,
    /// `proceedings_status`.
    ProceedingsStatus,
    /// `disposition` (retained, destroyed, returned).
    Disposition,
    /// `ballistic_references` (a lookup by ballistic reference matches only where disclosed).
    BallisticReferences,
    /// `ammunition.type`.
    AmmunitionType,
    /// `ammunition.headstamp` (a headstamp lookup matches only where disclosed).
    AmmunitionHeadstamp,
    /// `ammunition.lot` (a lot lookup matches only where disclosed).
    AmmunitionLot,
    /// `ammunition.year`.
    AmmunitionYear,
    /// `parts.manufacturer`.
    PartsManufacturer,
    /// `parts.markings`.
    PartsMarkings,
    /// `shipment.identifiers` (a shipment-identifier lookup matches only where disclosed).
    ShipmentIdentifiers,
    /// `shipment.consignor` (needs the persons data class).
    ShipmentConsignor,
    /// `shipment.consignee` (needs the persons data class).
    ShipmentConsignee,
    /// `shipment.online_platform`.
    ShipmentPlatform,
    /// `shipment.listing`.
    ShipmentListing,
    /// `shipment.vendor_handle` (needs the persons data class).
    ShipmentVendorHandle,
    /// `persons.kind`: natural or legal (needs the persons data class).
    PersonKind,
    /// `persons.sex` (needs the persons data class).
    PersonSex,
    /// `persons.age_band` (needs the persons data class).
    PersonAgeBand,
    /// `persons.licence_reference` (needs the persons data class).
    PersonLicence,
    /// `loss.kind` (lost, stolen, diverted).
    LossKind,
    /// `loss.source` (State stockpile, dealer, carrier, private owner, ...).
    LossSource,
    /// `loss.date` (generalisable to month or year).
    LossDate,
    /// `loss.place` (generalisable to region or country).
    LossPlace,
    /// `loss.circumstances`.
    LossCircumstances,
    /// `loss.reporting_agency`.
    LossReportingAgency,
}

/// Every field, with its name in policies.
pub const FIELDS: &[(Field, &str)] = &[
    (Field::EventDate, "event.date"),
    (Field::EventPlace, "event.place"),
    (Field::SeizingAgency, "event.seizing_agency"),
    (Field::CriminalContext, "context.criminal_context"),
    (Field::SeizureKind, "context.seizure_kind"),
    (Field::FirearmSerial, "firearms.serial_number"),
    (Field::FirearmManufacturer, "firearms.manufacturer"),
    (Field::FirearmModel, "firearms.model"),
    (Field::FirearmCategory, "firearms.category"),
    (Field::FirearmCalibre, "firearms.calibre"),
    (
        Field::FirearmCountryOfManufacture,
        "firearms.country_of_manufacture",
    ),
    (Field::FirearmYear, "firearms.year_of_manufacture"),
    (Field::FirearmImportMarking, "firearms.import_marking"),
    (Field::FirearmOtherMarkings, "firearms.other_markings"),
    (Field::FirearmMarkingCondition, "firearms.marking_condition"),
    (Field::Parts, "parts"),
    (Field::PartsQuantity, "parts.quantity"),
    (Field::AmmunitionCalibre, "ammunition.calibre"),
    (Field::AmmunitionManufacturer, "ammunition.manufacturer"),
    (Field::AmmunitionQuantity, "ammunition.quantity"),
    (Field::Route, "trafficking.route"),
    (Field::TransportMode, "trafficking.transport_mode"),
    (Field::ConcealmentMethod, "trafficking.concealment_method"),
    (Field::ConcealmentDetails, "trafficking.concealment_details"),
    (
        Field::SuspectedSource,
        "trafficking.suspected_source_country",
    ),
    (
        Field::SuspectedDestination,
        "trafficking.suspected_destination_country",
    ),
    (Field::PersonRole, "persons.role"),
    (Field::PersonNationality, "persons.nationality"),
    (Field::PersonName, "persons.name"),
    (Field::CaseReference, "case_reference"),
    (Field::Tracing, "tracing"),
    (Field::Notes, "notes"),
    (Field::FirearmStatus, "firearms.status"),
    (Field::ProceedingsStatus, "proceedings_status"),
    (Field::Disposition, "disposition"),
    (Field::BallisticReferences, "ballistic_references"),
    (Field::AmmunitionType, "ammunition.type"),
    (Field::AmmunitionHeadstamp, "ammunition.headstamp"),
    (Field::AmmunitionLot, "ammunition.lot"),
    (Field::AmmunitionYear, "ammunition.year"),
    (Field::PartsManufacturer, "parts.manufacturer"),
    (Field::PartsMarkings, "parts.markings"),
    (Field::ShipmentIdentifiers, "shipment.identifiers"),
    (Field::ShipmentConsignor, "shipment.consignor"),
    (Field::ShipmentConsignee, "shipment.consignee"),
    (Field::ShipmentPlatform, "shipment.online_platform"),
    (Field::ShipmentListing, "shipment.listing"),
    (Field::ShipmentVendorHandle, "shipment.vendor_handle"),
    (Field::PersonKind, "persons.kind"),
    (Field::PersonSex, "persons.sex"),
    (Field::PersonAgeBand, "persons.age_band"),
    (Field::PersonLicence, "persons.licence_reference"),
    (Field::LossKind, "loss.kind"),
    (Field::LossSource, "loss.source"),
    (Field::LossDate, "loss.date"),
    (Field::LossPlace, "loss.place"),
    (Field::LossCircumstances, "loss.circumstances"),
    (Field::LossReportingAgency, "loss.reporting_agency"),
];

const N_FIELDS: usize = 58;

impl Field {
    /// The field's name in policies.
    pub fn name(self) -> &'static str {
        FIELDS[self as usize].1
    }

    /// The field with this name.
    pub fn from_name(name: &str) -> Option<Field> {
        FIELDS.iter().find(|(_, n)| *n == name).map(|(f, _)| *f)
    }

    fn is_personal(self) -> bool {
        matches!(
            self,
            Field::PersonRole
                | Field::PersonNationality
                | Field::PersonName
                | Field::PersonKind
                | Field::PersonSex
                | Field::PersonAgeBand
                | Field::PersonLicence
                | Field::ShipmentConsignor
                | Field::ShipmentConsignee
                | Field::ShipmentVendorHandle
        )
    }

    fn accepts(self, g: pb::Generalisation) -> bool {
        use pb::Generalisation as G;
        matches!(
            (self, g),
            (
                Field::EventDate | Field::LossDate,
                G::DateToMonth | G::DateToYear
            ) | (
                Field::EventPlace | Field::LossPlace,
                G::PlaceToRegion | G::PlaceToCountry
            ) | (
                Field::AmmunitionQuantity | Field::PartsQuantity,
                G::QuantityToBand
            )
        )
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a rule does with one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    /// Disclose as held.
    Allow,
    /// Withhold, telling the recipient it was withheld.
    Redact,
    /// Disclose in a coarser form.
    Generalise(pb::Generalisation),
}

/// Why a policy file is not usable. Not retryable without editing it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The policy has no valid owner country.
    #[error("owner_country: {0}")]
    Owner(String),
    /// Version 0 is reserved for "no policy".
    #[error("version must be at least 1")]
    Version,
    /// A rule is malformed; the message names the rule and the problem.
    #[error("rule '{rule}': {problem}")]
    Rule {
        /// The rule id (or its position when it has none).
        rule: String,
        /// What is wrong.
        problem: String,
    },
    /// The policy file does not parse.
    #[error("policy file: {0}")]
    Parse(String),
}

#[derive(Debug, Clone)]
struct Rule {
    id: String,
    countries: HashSet<CountryCode>,
    regions: HashSet<String>,
    organisations: HashSet<OrgCode>,
    member_kinds: HashSet<i32>,
    agency_kinds: HashSet<i32>,
    purposes: HashSet<i32>,
    classes: HashSet<i32>,
    fields: [Option<Treatment>; N_FIELDS],
    handling: pb::Handling,
    hit_only: bool,
    partial: Option<PartialLookup>,
    min_cell: u32,
}

/// How a rule answers partial serial lookups (serials with unreadable characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartialLookup {
    /// Fewest literal characters before the first unreadable one.
    pub min_literal_prefix: usize,
    /// Most hits one partial lookup returns.
    pub max_results: usize,
}

impl PartialLookup {
    /// Literal prefix required when a rule names none.
    pub const DEFAULT_PREFIX: usize = 4;
    /// The shortest literal prefix a rule may require.
    pub const MIN_PREFIX: usize = 3;
    /// Hits per partial lookup when a rule names no cap.
    pub const DEFAULT_RESULTS: usize = 10;
    /// The largest cap a rule may set.
    pub const MAX_RESULTS: usize = 100;

    fn parse(p: &pb::PartialLookup) -> Result<Option<PartialLookup>, String> {
        if !p.allowed {
            return Ok(None);
        }
        let min_literal_prefix = match p.min_literal_prefix as usize {
            0 => Self::DEFAULT_PREFIX,
            n if n < Self::MIN_PREFIX => {
                return Err(format!(
                    "partial_lookup.min_literal_prefix must be at least {}",
                    Self::MIN_PREFIX
                ));
            }
            n => n,
        };
        let max_results = match p.max_results as usize {
            0 => Self::DEFAULT_RESULTS,
            n if n > Self::MAX_RESULTS => {
                return Err(format!(
                    "partial_lookup.max_results must be at most {}",
                    Self::MAX_RESULTS
                ));
            }
            n => n,
        };
        Ok(Some(PartialLookup {
            min_literal_prefix,
            max_results,
        }))
    }
}

/// Small-cell threshold of statistical tables when a rule names none.
pub const DEFAULT_STATISTICS_MIN_CELL: u64 = 5;

/// A checked sharing policy.
#[derive(Debug, Clone)]
pub struct Policy {
    owner: CountryCode,
    version: u64,
    rules: Vec<Rule>,
    source: pb::SharingPolicy,
}

impl Policy {
    /// Checks a policy message.
    pub fn parse(p: pb::SharingPolicy) -> Result<Policy, PolicyError> {
        let owner =
            CountryCode::parse(&p.owner_country).map_err(|e| PolicyError::Owner(e.to_string()))?;
        if p.version == 0 {
            return Err(PolicyError::Version);
        }
        let mut ids = HashSet::new();
        let mut rules = Vec::with_capacity(p.rules.len());
        for (i, r) in p.rules.iter().enumerate() {
            let name = if r.id.is_empty() {
                format!("#{}", i + 1)
            } else {
                r.id.clone()
            };
            let bad = |problem: String| PolicyError::Rule {
                rule: name.clone(),
                problem,
            };
            if r.id.trim().is_empty() {
                return Err(bad("needs an id".into()));
            }
            if !ids.insert(r.id.clone()) {
                return Err(bad("id used twice".into()));
            }
            let audience = r.audience.clone().unwrap_or_default();
            let mut countries = HashSet::new();
            for c in &audience.countries {
                countries.insert(CountryCode::parse(c).map_err(|e| bad(e.to_string()))?);
            }
            let regions: HashSet<String> = audience.regions.iter().cloned().collect();
            let mut organisations = HashSet::new();
            for o in &audience.organisations {
                organisations.insert(OrgCode::parse(o).map_err(|e| bad(e.to_string()))?);
            }
            for &k in &audience.member_kinds {
                if pb::MemberKind::try_from(k).is_err() || k == 0 {
                    return Err(bad(format!("unknown member kind {k}")));
                }
            }
            if countries.is_empty()
                && regions.is_empty()
                && organisations.is_empty()
                && audience.member_kinds.is_empty()
            {
                return Err(bad(
                    "audience names no country, region, organisation or member kind".into(),
                ));
            }
            for &k in &audience.agency_kinds {
                if pb::AgencyKind::try_from(k).is_err() || k == 0 {
                    return Err(bad(format!("unknown agency kind {k}")));
                }
            }
            if r.purposes.is_empty()
                || r.purposes
                    .iter()
                    .any(|&p| p == 0 || pb::Purpose::try_from(p).is_err())
            {
                return Err(bad("needs at least one known purpose".into()));
            }
            if r.data_classes.is_empty()
                || r.data_classes
                    .iter()
                    .any(|&c| c == 0 || pb::DataClass::try_from(c).is_err())
            {
                return Err(bad("needs at least one known data class".into()));
            }
            let persons = r.data_classes.contains(&(pb::DataClass::Persons as i32));
            let mut fields = [None; N_FIELDS];
            for fr in &r.fields {
                let field = Field::from_name(&fr.field)
                    .ok_or_else(|| bad(format!("unknown field '{}'", fr.field)))?;
                if field.is_personal() && !persons {
                    return Err(bad(format!(
                        "lists {field} but does not grant DATA_CLASS_PERSONS"
                    )));
                }
                let treatment = match pb::FieldTreatment::try_from(fr.treatment) {
                    Ok(pb::FieldTreatment::Allow) => Some(Treatment::Allow),
                    Ok(pb::FieldTreatment::Redact) => Some(Treatment::Redact),
                    Ok(pb::FieldTreatment::Unspecified) => None,
                    Ok(pb::FieldTreatment::Generalise) => {
                        let g = pb::Generalisation::try_from(fr.generalisation)
                            .ok()
                            .filter(|g| field.accepts(*g))
                            .ok_or_else(|| {
                                bad(format!("{field} cannot be generalised that way"))
                            })?;
                        Some(Treatment::Generalise(g))
                    }
                    Err(_) => return Err(bad(format!("unknown treatment for {field}"))),
                };
                if fields[field as usize].is_some() {
                    return Err(bad(format!("lists {field} twice")));
                }
                fields[field as usize] = treatment;
            }
            let partial =
                PartialLookup::parse(&r.partial_lookup.unwrap_or_default()).map_err(bad)?;
            let mut handling = r.handling.clone().unwrap_or_default();
            if handling.legal_basis.is_empty() {
                handling.legal_basis = p.legal_basis.clone();
            }
            rules.push(Rule {
                id: r.id.clone(),
                countries,
                regions,
                organisations,
                member_kinds: audience.member_kinds.iter().copied().collect(),
                agency_kinds: audience.agency_kinds.iter().copied().collect(),
                purposes: r.purposes.iter().copied().collect(),
                classes: r.data_classes.iter().copied().collect(),
                fields,
                handling,
                hit_only: r.hit_only,
                partial,
                min_cell: r.statistics_min_cell,
            });
        }
        Ok(Policy {
            owner,
            version: p.version,
            rules,
            source: p,
        })
    }

    /// Reads a policy from a TOML file (the proto3 JSON mapping of `SharingPolicy`, in TOML).
    pub fn from_toml(text: &str) -> Result<Policy, PolicyError> {
        let p: pb::SharingPolicy =
            toml::from_str(text).map_err(|e| PolicyError::Parse(e.to_string()))?;
        Self::parse(p)
    }

    /// The policy that denies everything (what a node without a policy file applies).
    pub fn deny_all(owner: CountryCode) -> Policy {
        Policy {
            owner,
            version: 0,
            rules: Vec::new(),
            source: pb::SharingPolicy {
                owner_country: owner.to_string(),
                ..Default::default()
            },
        }
    }

    /// The owner country.
    pub fn owner(&self) -> CountryCode {
        self.owner
    }

    /// The version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The message it was parsed from.
    pub fn source(&self) -> &pb::SharingPolicy {
        &self.source
    }
}

/// Who asks, and why: taken from the verified certificate, the directory and the signed request
/// context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    /// Whose node asks: a State or an organisation (from its certificate's node id, never from
    /// a request field).
    pub affiliation: Affiliation,
    /// Its member kind as the directory lists it (see [`member_kind`]).
    pub member_kind: pb::MemberKind,
    /// Regions the requester belongs to.
    pub regions: Vec<String>,
    /// The requesting agency's kind.
    pub agency_kind: pb::AgencyKind,
    /// The stated purpose.
    pub purpose: pb::Purpose,
}

/// A disclosure allowed by a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Disclosure {
    /// The view the requester receives.
    pub view: pb::SeizureRecord,
    /// Fields withheld under a redact treatment (the recipient is told).
    pub redacted: Vec<&'static str>,
    /// The policy version applied.
    pub policy_version: u64,
    /// The rule that allowed it.
    pub rule_id: String,
    /// Handling codes to attach.
    pub handling: pb::Handling,
    /// The rule answers "hit only": `view` is empty and the recipient learns only that the
    /// owner holds a matching record.
    pub hit_only: bool,
}

/// Why nothing was disclosed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// No rule covers this requester, purpose and data class.
    #[error("no rule of policy version {version} shares {class} with {requester} for {purpose}")]
    NoRule {
        /// Policy version.
        version: u64,
        /// The requester's State or organisation code.
        requester: String,
        /// Purpose name.
        purpose: String,
        /// Data class name.
        class: String,
    },
}

/// The rule of a policy that applies to one requester, purpose and data class. Which rule
/// applies never depends on a record, so it is chosen once per request.
#[derive(Debug, Clone, Copy)]
pub struct Applicable<'a> {
    version: u64,
    rule: &'a Rule,
}

impl<'a> Applicable<'a> {
    /// The first rule that matches the requester, purpose and class; deny by default.
    pub fn find(
        policy: &'a Policy,
        requester: &Requester,
        class: pb::DataClass,
    ) -> Result<Applicable<'a>, Denial> {
        policy
            .rules
            .iter()
            .find(|r| matches_rule(r, requester, class))
            .map(|rule| Applicable {
                version: policy.version,
                rule,
            })
            .ok_or_else(|| Denial::NoRule {
                version: policy.version,
                requester: requester.affiliation.to_string(),
                purpose: requester.purpose.as_str_name().to_owned(),
                class: class.as_str_name().to_owned(),
            })
    }

    /// The rule's id.
    pub fn rule_id(&self) -> &'a str {
        &self.rule.id
    }

    /// The policy version it belongs to.
    pub fn policy_version(&self) -> u64 {
        self.version
    }

    /// Whether the rule answers "hit only".
    pub fn hit_only(&self) -> bool {
        self.rule.hit_only
    }

    /// The small-cell threshold of statistical tables disclosed under the rule (cells above 0 and
    /// below it are suppressed): the rule's `statistics_min_cell`, or
    /// [`DEFAULT_STATISTICS_MIN_CELL`] when it names none.
    pub fn statistics_min_cell(&self) -> u64 {
        match self.rule.min_cell {
            0 => DEFAULT_STATISTICS_MIN_CELL,
            k => u64::from(k),
        }
    }

    /// How the rule answers partial serial lookups; `None`: it refuses them.
    pub fn partial_lookup(&self) -> Option<PartialLookup> {
        self.rule.partial
    }

    /// The view of `record` the rule's fields make visible, built from nothing, and the fields
    /// it redacts. This is what is sent, and what a request may match on (also under "hit
    /// only", where it is matched on but never sent).
    pub fn view(&self, record: &pb::SeizureRecord) -> (pb::SeizureRecord, Vec<&'static str>) {
        let persons = self.rule.classes.contains(&(pb::DataClass::Persons as i32));
        project(record, &self.rule.fields, persons)
    }

    /// What the requester receives of a record whose view is `view`: the view itself, or
    /// nothing of it under "hit only".
    pub fn disclosure(&self, view: pb::SeizureRecord, redacted: Vec<&'static str>) -> Disclosure {
        let hit_only = self.rule.hit_only;
        Disclosure {
            view: if hit_only {
                pb::SeizureRecord::default()
            } else {
                view
            },
            redacted: if hit_only { Vec::new() } else { redacted },
            policy_version: self.version,
            rule_id: self.rule.id.clone(),
            handling: self.rule.handling.clone(),
            hit_only,
        }
    }
}

/// The data class a record is shared under: a loss report (`loss` set) under
/// `DATA_CLASS_LOSS_REPORT`, every other record under `DATA_CLASS_SEIZURE`.
pub fn record_class(record: &pb::SeizureRecord) -> pb::DataClass {
    if record.loss.is_some() {
        pb::DataClass::LossReport
    } else {
        pb::DataClass::Seizure
    }
}

/// The denial of a record asked for under a class it is not shared under (a loss report under
/// a seizure rule, or the other way round): as if no rule covered it.
pub(crate) fn wrong_class(policy: &Policy, requester: &Requester, class: pb::DataClass) -> Denial {
    Denial::NoRule {
        version: policy.version,
        requester: requester.affiliation.to_string(),
        purpose: requester.purpose.as_str_name().to_owned(),
        class: class.as_str_name().to_owned(),
    }
}

/// Applies the owner's policy to one record for one requester. Deny by default; a record is
/// disclosed only under its own class ([`record_class`]).
pub fn evaluate(
    policy: &Policy,
    requester: &Requester,
    class: pb::DataClass,
    record: &pb::SeizureRecord,
) -> Result<Disclosure, Denial> {
    if record_class(record) != class {
        return Err(wrong_class(policy, requester, class));
    }
    let rule = Applicable::find(policy, requester, class)?;
    let (view, redacted) = rule.view(record);
    Ok(rule.disclosure(view, redacted))
}

/// The member kind a requester is evaluated with: the kind the directory lists for its node, or
/// for a State's node listed without one (or not listed), a national agency. An organisation's
/// node without a listed kind has none: only rules naming its organisation match it.
pub fn member_kind(affiliation: &Affiliation, listed: Option<pb::MemberKind>) -> pb::MemberKind {
    match (listed, affiliation) {
        (Some(k), _) if k != pb::MemberKind::Unspecified => k,
        (_, Affiliation::State(_)) => pb::MemberKind::NationalAgency,
        (_, Affiliation::Organisation(_)) => pb::MemberKind::Unspecified,
    }
}

/// Whether a rule's audience names the requester. A State's node is named by its country or one
/// of its regions; an organisation's node only by its organisation code; either by its member
/// kind. A rule naming a State (or a region) never matches an organisation's node.
fn audience_names(r: &Rule, q: &Requester) -> bool {
    let by_kind = q.member_kind != pb::MemberKind::Unspecified
        && r.member_kinds.contains(&(q.member_kind as i32));
    let by_name = match &q.affiliation {
        Affiliation::State(c) => {
            r.countries.contains(c) || q.regions.iter().any(|g| r.regions.contains(g))
        }
        Affiliation::Organisation(o) => r.organisations.contains(o),
    };
    by_kind || by_name
}

fn matches_rule(r: &Rule, q: &Requester, class: pb::DataClass) -> bool {
    let audience = audience_names(r, q);
    let agency = r.agency_kinds.is_empty() || r.agency_kinds.contains(&(q.agency_kind as i32));
    audience
        && agency
        && r.purposes.contains(&(q.purpose as i32))
        && r.classes.contains(&(class as i32))
}

/// What a rule grants for a data class, without a record (e.g. for a trace response).
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    /// The policy version.
    pub policy_version: u64,
    /// The rule.
    pub rule_id: String,
    /// Handling codes to attach.
    pub handling: pb::Handling,
}

/// The first rule sharing `class` with this requester, if any. Deny by default.
pub fn grant(policy: &Policy, requester: &Requester, class: pb::DataClass) -> Option<Grant> {
    policy
        .rules
        .iter()
        .find(|r| matches_rule(r, requester, class))
        .map(|r| Grant {
            policy_version: policy.version,
            rule_id: r.id.clone(),
            handling: r.handling.clone(),
        })
}

/// Quantity bands used when quantities are generalised.
pub fn quantity_band(q: u64) -> &'static str {
    match q {
        0 => "0",
        1 => "1",
        2..=5 => "2-5",
        6..=20 => "6-20",
        21..=100 => "21-100",
        101..=1000 => "101-1000",
        _ => "over 1000",
    }
}

fn generalise_date(date: &str, g: pb::Generalisation) -> String {
    match (Date::parse(date), g) {
        (Some(d), pb::Generalisation::DateToMonth) => {
            let (y, m, _) = d.ymd();
            format!("{y:04}-{m:02}")
        }
        (Some(d), _) => format!("{:04}", d.ymd().0),
        (None, _) => String::new(),
    }
}

/// Builds the disclosed view from nothing, field by field.
fn project(
    rec: &pb::SeizureRecord,
    fields: &[Option<Treatment>; N_FIELDS],
    persons_granted: bool,
) -> (pb::SeizureRecord, Vec<&'static str>) {
    let mut redacted = Vec::new();
    // Whether a field is shared, noting redactions of fields that hold something.
    let mut on = |f: Field, present: bool| -> Option<Treatment> {
        match fields[f as usize] {
            Some(Treatment::Redact) => {
                if present {
                    redacted.push(f.name());
                }
                None
            }
            t => t,
        }
    };
    let allow = |t: Option<Treatment>| matches!(t, Some(Treatment::Allow));
    let mut out = pb::SeizureRecord::default();

    if let Some(ev) = &rec.event {
        let mut e = pb::SeizureEvent::default();
        match on(Field::EventDate, !ev.date.is_empty()) {
            Some(Treatment::Allow) => e.date = ev.date.clone(),
            Some(Treatment::Generalise(g)) => e.date = generalise_date(&ev.date, g),
            _ => {}
        }
        if let Some(p) = &ev.place {
            match on(Field::EventPlace, true) {
                Some(Treatment::Allow) => e.place = Some(p.clone()),
                Some(Treatment::Generalise(pb::Generalisation::PlaceToRegion)) => {
                    e.place = Some(pb::Place {
                        country: p.country.clone(),
                        region: p.region.clone(),
                        ..Default::default()
                    })
                }
                Some(Treatment::Generalise(_)) => {
                    e.place = Some(pb::Place {
                        country: p.country.clone(),
                        ..Default::default()
                    })
                }
                _ => {}
            }
        }
        if allow(on(Field::SeizingAgency, ev.seizing_agency != 0)) {
            e.seizing_agency = ev.seizing_agency;
        }
        if e != pb::SeizureEvent::default() {
            out.event = Some(e);
        }
    }

    if let Some(c) = &rec.context {
        let mut x = pb::SeizureContext::default();
        if allow(on(Field::CriminalContext, c.criminal_context != 0)) {
            x.criminal_context = c.criminal_context;
        }
        if allow(on(Field::SeizureKind, c.seizure_kind != 0)) {
            x.seizure_kind = c.seizure_kind;
        }
        if x != pb::SeizureContext::default() {
            out.context = Some(x);
        }
    }

    let any_firearms = !rec.firearms.is_empty();
    let serial = allow(on(Field::FirearmSerial, any_firearms));
    let manufacturer = allow(on(Field::FirearmManufacturer, any_firearms));
    let model = allow(on(Field::FirearmModel, any_firearms));
    let category = allow(on(Field::FirearmCategory, any_firearms));
    let calibre = allow(on(Field::FirearmCalibre, any_firearms));
    let made_in = allow(on(Field::FirearmCountryOfManufacture, any_firearms));
    let year = allow(on(Field::FirearmYear, any_firearms));
    let import = allow(on(Field::FirearmImportMarking, any_firearms));
    let other = allow(on(Field::FirearmOtherMarkings, any_firearms));
    let condition = allow(on(Field::FirearmMarkingCondition, any_firearms));
    let status = allow(on(Field::FirearmStatus, any_firearms));
    if serial
        || manufacturer
        || model
        || category
        || calibre
        || made_in
        || year
        || import
        || other
        || condition
        || status
    {
        out.firearms = rec
            .firearms
            .iter()
            .map(|f| pb::FirearmIdentification {
                serial_number: if serial {
                    f.serial_number.clone()
                } else {
                    String::new()
                },
                manufacturer: if manufacturer {
                    f.manufacturer.clone()
                } else {
                    String::new()
                },
                model: if model {
                    f.model.clone()
                } else {
                    String::new()
                },
                category: if category { f.category } else { 0 },
                calibre: if calibre {
                    f.calibre.clone()
                } else {
                    String::new()
                },
                country_of_manufacture: if made_in {
                    f.country_of_manufacture.clone()
                } else {
                    String::new()
                },
                year_of_manufacture: if year { f.year_of_manufacture } else { 0 },
                import_marking: if import {
                    f.import_marking.clone()
                } else {
                    None
                },
                other_markings: if other {
                    f.other_markings.clone()
                } else {
                    Vec::new()
                },
                marking_condition: if condition { f.marking_condition } else { 0 },
                status: if status { f.status } else { 0 },
            })
            .collect();
    }

    let any_parts = !rec.parts.is_empty();
    let parts = allow(on(Field::Parts, any_parts));
    let parts_qty = on(Field::PartsQuantity, any_parts);
    let parts_maker = allow(on(Field::PartsManufacturer, any_parts));
    let parts_marks = allow(on(Field::PartsMarkings, any_parts));
    if parts || parts_qty.is_some() || parts_maker || parts_marks {
        out.parts = rec
            .parts
            .iter()
            .map(|p| pb::PartItem {
                kind: if parts { p.kind.clone() } else { String::new() },
                serial_number: if parts {
                    p.serial_number.clone()
                } else {
                    String::new()
                },
                quantity: if allow(parts_qty) { p.quantity } else { 0 },
                quantity_band: if matches!(parts_qty, Some(Treatment::Generalise(_))) {
                    quantity_band(p.quantity).to_owned()
                } else {
                    String::new()
                },
                manufacturer: if parts_maker {
                    p.manufacturer.clone()
                } else {
                    String::new()
                },
                markings: if parts_marks {
                    p.markings.clone()
                } else {
                    Vec::new()
                },
            })
            .collect();
    }

    let any_ammo = !rec.ammunition.is_empty();
    let ammo_calibre = allow(on(Field::AmmunitionCalibre, any_ammo));
    let ammo_maker = allow(on(Field::AmmunitionManufacturer, any_ammo));
    let ammo_qty = on(Field::AmmunitionQuantity, any_ammo);
    let ammo_type = allow(on(Field::AmmunitionType, any_ammo));
    let headstamp = allow(on(Field::AmmunitionHeadstamp, any_ammo));
    let lot = allow(on(Field::AmmunitionLot, any_ammo));
    let ammo_year = allow(on(Field::AmmunitionYear, any_ammo));
    if ammo_calibre
        || ammo_maker
        || ammo_qty.is_some()
        || ammo_type
        || headstamp
        || lot
        || ammo_year
    {
        out.ammunition = rec
            .ammunition
            .iter()
            .map(|a| pb::AmmunitionItem {
                calibre: if ammo_calibre {
                    a.calibre.clone()
                } else {
                    String::new()
                },
                manufacturer: if ammo_maker {
                    a.manufacturer.clone()
                } else {
                    String::new()
                },
                quantity: if allow(ammo_qty) { a.quantity } else { 0 },
                quantity_band: if matches!(ammo_qty, Some(Treatment::Generalise(_))) {
                    quantity_band(a.quantity).to_owned()
                } else {
                    String::new()
                },
                ammunition_type: if ammo_type { a.ammunition_type } else { 0 },
                headstamp: if headstamp {
                    a.headstamp.clone()
                } else {
                    String::new()
                },
                lot: if lot { a.lot.clone() } else { String::new() },
                year: if ammo_year { a.year } else { 0 },
            })
            .collect();
    }

    if let Some(t) = &rec.trafficking {
        let mut x = pb::TraffickingFacts::default();
        if allow(on(Field::Route, !t.route.is_empty())) {
            x.route = t.route.clone();
        }
        if allow(on(Field::TransportMode, t.transport_mode != 0)) {
            x.transport_mode = t.transport_mode;
        }
        if allow(on(Field::ConcealmentMethod, t.concealment_method != 0)) {
            x.concealment_method = t.concealment_method;
        }
        if allow(on(
            Field::ConcealmentDetails,
            !t.concealment_details.is_empty(),
        )) {
            x.concealment_details = t.concealment_details.clone();
        }
        if allow(on(
            Field::SuspectedSource,
            !t.suspected_source_country.is_empty(),
        )) {
            x.suspected_source_country = t.suspected_source_country.clone();
        }
        if allow(on(
            Field::SuspectedDestination,
            !t.suspected_destination_country.is_empty(),
        )) {
            x.suspected_destination_country = t.suspected_destination_country.clone();
        }
        if x != pb::TraffickingFacts::default() {
            out.trafficking = Some(x);
        }
    }

    let any_persons = !rec.persons.is_empty();
    let role = persons_granted && allow(on(Field::PersonRole, any_persons));
    let nationality = persons_granted && allow(on(Field::PersonNationality, any_persons));
    let name = persons_granted && allow(on(Field::PersonName, any_persons));
    let kind = persons_granted && allow(on(Field::PersonKind, any_persons));
    let sex = persons_granted && allow(on(Field::PersonSex, any_persons));
    let age_band = persons_granted && allow(on(Field::PersonAgeBand, any_persons));
    let licence = persons_granted && allow(on(Field::PersonLicence, any_persons));
    if role || nationality || name || kind || sex || age_band || licence {
        out.persons = rec
            .persons
            .iter()
            .map(|p| pb::Person {
                role: if role { p.role } else { 0 },
                nationality: if nationality {
                    p.nationality.clone()
                } else {
                    String::new()
                },
                name: if name { p.name.clone() } else { String::new() },
                kind: if kind { p.kind } else { 0 },
                sex: if sex { p.sex } else { 0 },
                age_band: if age_band { p.age_band } else { 0 },
                licence_reference: if licence {
                    p.licence_reference.clone()
                } else {
                    String::new()
                },
            })
            .collect();
    }

    if let Some(loss) = &rec.loss {
        // The view of a loss report always says it is one: the rule that discloses it is a
        // rule for loss reports.
        let mut x = pb::LossReport::default();
        if allow(on(Field::LossKind, loss.kind != 0)) {
            x.kind = loss.kind;
        }
        if allow(on(Field::LossSource, loss.source != 0)) {
            x.source = loss.source;
        }
        match on(Field::LossDate, !loss.date.is_empty()) {
            Some(Treatment::Allow) => x.date = loss.date.clone(),
            Some(Treatment::Generalise(g)) => x.date = generalise_date(&loss.date, g),
            _ => {}
        }
        if let Some(p) = &loss.place {
            match on(Field::LossPlace, true) {
                Some(Treatment::Allow) => x.place = Some(p.clone()),
                Some(Treatment::Generalise(pb::Generalisation::PlaceToRegion)) => {
                    x.place = Some(pb::Place {
                        country: p.country.clone(),
                        region: p.region.clone(),
                        ..Default::default()
                    })
                }
                Some(Treatment::Generalise(_)) => {
                    x.place = Some(pb::Place {
                        country: p.country.clone(),
                        ..Default::default()
                    })
                }
                _ => {}
            }
        }
        if allow(on(Field::LossCircumstances, !loss.circumstances.is_empty())) {
            x.circumstances = loss.circumstances.clone();
        }
        if allow(on(
            Field::LossReportingAgency,
            !loss.reporting_agency.is_empty(),
        )) {
            x.reporting_agency = loss.reporting_agency.clone();
        }
        out.loss = Some(x);
    }

    if let Some(sh) = &rec.shipment {
        let mut x = pb::ShipmentFacts::default();
        if allow(on(Field::ShipmentIdentifiers, !sh.identifiers.is_empty())) {
            x.identifiers = sh.identifiers.clone();
        }
        if persons_granted && allow(on(Field::ShipmentConsignor, !sh.consignor.is_empty())) {
            x.consignor = sh.consignor.clone();
        }
        if persons_granted && allow(on(Field::ShipmentConsignee, !sh.consignee.is_empty())) {
            x.consignee = sh.consignee.clone();
        }
        if allow(on(Field::ShipmentPlatform, !sh.online_platform.is_empty())) {
            x.online_platform = sh.online_platform.clone();
        }
        if allow(on(Field::ShipmentListing, !sh.listing.is_empty())) {
            x.listing = sh.listing.clone();
        }
        if persons_granted
            && allow(on(
                Field::ShipmentVendorHandle,
                !sh.vendor_handle.is_empty(),
            ))
        {
            x.vendor_handle = sh.vendor_handle.clone();
        }
        if x != pb::ShipmentFacts::default() {
            out.shipment = Some(x);
        }
    }

    if allow(on(Field::CaseReference, !rec.case_reference.is_empty())) {
        out.case_reference = rec.case_reference.clone();
    }
    if allow(on(Field::Tracing, rec.tracing.is_some())) {
        out.tracing = rec.tracing;
    }
    if allow(on(Field::Notes, !rec.notes.is_empty())) {
        out.notes = rec.notes.clone();
    }
    if allow(on(Field::ProceedingsStatus, rec.proceedings_status != 0)) {
        out.proceedings_status = rec.proceedings_status;
    }
    if allow(on(Field::Disposition, rec.disposition != 0)) {
        out.disposition = rec.disposition;
    }
    if allow(on(
        Field::BallisticReferences,
        !rec.ballistic_references.is_empty(),
    )) {
        out.ballistic_references = rec.ballistic_references.clone();
    }
    (out, redacted)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
