//! Statistics where the data lives, pure: the tables a node computes from its own seizure records
//! and its ledger's trace records, for one reporting period (a year or a quarter), laid out like
//! the UNODC illicit arms flows questionnaire (IAFQ) and carrying SDG indicator 16.4.2.
//!
//! Every table is two-dimensional: one row per value of a *dimension* (weapon category, country
//! of manufacture, ...) and one column per way the items came into the authorities' hands
//! ([`SEIZURE_KIND_COLUMNS`]), except the tracing table (one row per direction, one column per
//! outcome). Columns of every table are mutually exclusive, so row totals, column totals and the
//! grand total are sums of the cells ([`Table::with_margins`]); that is what lets
//! [`suppress`] protect small cells against subtraction from the totals.
//!
//! Each table names its unit (firearms, rounds, parts, persons, seizure records, trace requests)
//! and its definition ([`Table::unit`], [`Table::definition`]).
//!
//! Dimensions: weapon category, country of manufacture, route country, transport mode,
//! concealment method, criminal context, ammunition calibre, part kind, person role, natural
//! persons' sex and age band, seizing agency (a new [`Dimension`] variant and a [`TableSpec`] in
//! [`TABLES`] add one).
//!
//! Submodules: [`suppress`] (small-cell and complementary suppression), [`aggregate`] (regional
//! totals in the clear and the secure-aggregation masks), [`export`] (CSV and XLSX).

pub mod aggregate;
pub mod export;
pub mod round;
pub mod suppress;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tracenet_proto::v1 as pb;

use crate::model::Date;
use crate::trace;

/// A reporting period: a calendar year or one of its quarters (by the seizure event's date; by
/// the request's creation time for trace requests, in UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Period {
    /// Calendar year.
    pub year: u16,
    /// 1 to 4, or `None` for the whole year.
    pub quarter: Option<u8>,
}

impl Period {
    /// A whole year.
    pub const fn year(year: u16) -> Period {
        Period {
            year,
            quarter: None,
        }
    }

    /// A quarter (1 to 4); `None` if out of range.
    pub fn quarter(year: u16, quarter: u8) -> Option<Period> {
        (1..=4).contains(&quarter).then_some(Period {
            year,
            quarter: Some(quarter),
        })
    }

    /// Whether a date (year, month) falls in the period.
    pub fn contains(&self, year: u16, month: u8) -> bool {
        year == self.year
            && self
                .quarter
                .is_none_or(|q| (month.saturating_sub(1)) / 3 + 1 == q)
    }

    /// `2026` or `2026-Q2`.
    pub fn label(&self) -> String {
        match self.quarter {
            Some(q) => format!("{}-Q{q}", self.year),
            None => self.year.to_string(),
        }
    }
}

/// What a table counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Unit {
    /// Firearms (one per firearm identified in a record).
    Firearms,
    /// Rounds of ammunition (the recorded quantities).
    Rounds,
    /// Parts and components (the recorded quantities).
    Parts,
    /// Persons involved (one per person listed in a record).
    Persons,
    /// Seizure records (seizure events).
    Records,
    /// Trace requests.
    TraceRequests,
}

impl Unit {
    /// The unit's name as exported.
    pub const fn as_str(self) -> &'static str {
        match self {
            Unit::Firearms => "firearms",
            Unit::Rounds => "rounds of ammunition",
            Unit::Parts => "parts and components",
            Unit::Persons => "persons",
            Unit::Records => "seizure records",
            Unit::TraceRequests => "trace requests",
        }
    }
}

/// The row dimension of a table. New dimensions slot in here and in [`TABLES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Dimension {
    /// UN Register / ITI weapon category of each firearm.
    WeaponCategory,
    /// Country named by each firearm's manufacturing marking.
    CountryOfManufacture,
    /// Each distinct country on the record's trafficking route.
    RouteCountry,
    /// The record's transport mode.
    TransportMode,
    /// The record's concealment method.
    ConcealmentMethod,
    /// The record's criminal context.
    CriminalContext,
    /// Each ammunition item's calibre.
    AmmunitionCalibre,
    /// Each part's kind.
    PartKind,
    /// Each person's role.
    PersonRole,
    /// Each natural person's sex (legal persons are not counted).
    PersonSex,
    /// Each natural person's age band (legal persons are not counted).
    PersonAgeBand,
    /// The seizing agency.
    SeizingAgency,
    /// SDG 16.4.2: whether the illicit origin or context was traced or established.
    OriginEstablished,
}

/// The definition of one seizure table.
#[derive(Debug, Clone, Copy)]
pub struct TableSpec {
    /// Stable identifier (file names, API, chart ids).
    pub id: &'static str,
    /// Title as in the questionnaire.
    pub title: &'static str,
    /// What is counted.
    pub unit: Unit,
    /// The rows.
    pub dimension: Dimension,
    /// What a cell counts, in words.
    pub definition: &'static str,
}

/// Column labels of seizure tables: how the items came into the authorities' hands, then "not
/// stated". Mutually exclusive (a record has one seizure kind).
pub const SEIZURE_KIND_COLUMNS: [&str; 5] = [
    "seized",
    "found",
    "surrendered",
    "confiscated",
    "not_stated",
];

/// Column labels of the tracing table: the state of each trace request, mutually exclusive; their
/// sum is the number of requests. "Answered" is the sum of the first two columns.
pub const TRACE_COLUMNS: [&str; 6] = [
    "answered_origin_established",
    "answered_other",
    "restricted",
    "declined",
    "pending",
    "overdue",
];

/// Row labels of the tracing table.
pub const TRACE_ROWS: [&str; 2] = ["sent", "received"];

/// The tables of a route report (the route / modus operandi data class, for border agencies):
/// routes, transport modes and concealment methods, as aggregates.
pub const ROUTE_REPORT_TABLES: [&str; 3] = [
    "firearms_by_route_country",
    "firearms_by_transport_mode",
    "firearms_by_concealment",
];

/// Identifier of the SDG 16.4.2 table.
pub const SDG_TABLE: &str = "sdg_16_4_2";
/// Identifier of the tracing outcomes table.
pub const TRACING_TABLE: &str = "tracing_outcomes";

/// SDG indicator 16.4.2, as computed here (UN SDG metadata 16.4.2, part 2, "Proportion of seized,
/// found or surrendered arms whose illicit origin or context has been traced or established by a
/// competent authority in line with international instruments"):
///
/// - **unit**: firearms (each firearm identified in a record counts once);
/// - **denominator**: firearms in records of the period whose seizure kind is seized, found,
///   surrendered or confiscated (confiscation is a seizure by court order, reported as seized);
///   records without a seizure kind are left out;
/// - **numerator**: those of them in a record whose tracing status says the weapon was traced
///   (`tracing.traced`) or its illicit origin or context established
///   (`tracing.illicit_origin_established`);
/// - **proportion**: numerator / denominator, undefined when the denominator is 0.
///
/// The table's rows are `traced_or_established` and `not_traced`; the numerator is the first row's
/// total, the denominator the grand total without the `not_stated` column.
pub const SDG_DEFINITION: &str = "Firearms seized, found, surrendered or confiscated in the period \
(denominator); of which traced or with illicit origin or context established by a competent \
authority (numerator: tracing.traced or tracing.illicit_origin_established). Proportion = \
numerator / denominator (SDG indicator 16.4.2).";

/// The seizure tables, in questionnaire order. The SDG 16.4.2 table is the last.
pub const TABLES: &[TableSpec] = &[
    TableSpec {
        id: "firearms_by_category",
        title: "Firearms by type",
        unit: Unit::Firearms,
        dimension: Dimension::WeaponCategory,
        definition: "Firearms in records of the period, by UN Register / ITI category and by how \
            they came into the authorities' hands.",
    },
    TableSpec {
        id: "firearms_by_country_of_manufacture",
        title: "Firearms by country of manufacture",
        unit: Unit::Firearms,
        dimension: Dimension::CountryOfManufacture,
        definition: "Firearms by the country named in the manufacturing marking (ISO 3166-1 \
            alpha-3; `unknown` when not recorded).",
    },
    TableSpec {
        id: "firearms_by_route_country",
        title: "Firearms by country on the trafficking route",
        unit: Unit::Firearms,
        dimension: Dimension::RouteCountry,
        definition: "Firearms counted once for every distinct country on their record's \
            trafficking route (origin, transit, destination); a firearm with a route through \
            three countries is counted in three rows, so totals exceed the number of firearms. \
            `none_recorded` when the record has no route.",
    },
    TableSpec {
        id: "firearms_by_transport_mode",
        title: "Firearms by mode of transport",
        unit: Unit::Firearms,
        dimension: Dimension::TransportMode,
        definition: "Firearms by the transport mode recorded for their seizure.",
    },
    TableSpec {
        id: "firearms_by_concealment",
        title: "Firearms by concealment method",
        unit: Unit::Firearms,
        dimension: Dimension::ConcealmentMethod,
        definition: "Firearms by the concealment method recorded for their seizure.",
    },
    TableSpec {
        id: "firearms_by_criminal_context",
        title: "Firearms by criminal context",
        unit: Unit::Firearms,
        dimension: Dimension::CriminalContext,
        definition: "Firearms by the criminal context recorded for their seizure.",
    },
    TableSpec {
        id: "ammunition_by_calibre",
        title: "Ammunition by calibre",
        unit: Unit::Rounds,
        dimension: Dimension::AmmunitionCalibre,
        definition: "Rounds of ammunition (recorded quantities) by calibre as recorded (trimmed, \
            upper case; `unknown` when empty). Items disclosed only as a quantity band count 0.",
    },
    TableSpec {
        id: "parts_by_kind",
        title: "Parts and components by kind",
        unit: Unit::Parts,
        dimension: Dimension::PartKind,
        definition: "Parts and components (recorded quantities) by kind as recorded (trimmed, \
            lower case; `unknown` when empty).",
    },
    TableSpec {
        id: "persons_by_role",
        title: "Persons involved by role",
        unit: Unit::Persons,
        dimension: Dimension::PersonRole,
        definition: "Persons listed in records of the period, natural and legal (companies, \
            brokers' firms), by role.",
    },
    TableSpec {
        id: "persons_by_sex",
        title: "Natural persons involved by sex",
        unit: Unit::Persons,
        dimension: Dimension::PersonSex,
        definition: "Natural persons listed in records of the period (persons not recorded as \
            legal persons), by sex; `not_stated` when not recorded.",
    },
    TableSpec {
        id: "persons_by_age_band",
        title: "Natural persons involved by age band",
        unit: Unit::Persons,
        dimension: Dimension::PersonAgeBand,
        definition: "Natural persons listed in records of the period (persons not recorded as \
            legal persons), by age band; `not_stated` when not recorded.",
    },
    TableSpec {
        id: "records_by_agency",
        title: "Seizure events by seizing agency",
        unit: Unit::Records,
        dimension: Dimension::SeizingAgency,
        definition: "Seizure records (events) of the period by the kind of agency that seized.",
    },
    TableSpec {
        id: SDG_TABLE,
        title: "SDG indicator 16.4.2: firearms whose illicit origin or context was traced or \
            established",
        unit: Unit::Firearms,
        dimension: Dimension::OriginEstablished,
        definition: SDG_DEFINITION,
    },
];

/// The definition of the tracing outcomes table.
pub const TRACING_DEFINITION: &str = "Trace requests created in the period (sent by this node or \
received by it), by their state when the table is computed: answered with a chain of custody \
(origin established), answered without one, restricted, declined, pending (not yet answered and \
not past due), overdue (not yet answered and past due). The row total is the number of requests; \
answered = the first two columns.";

/// One table of counts for one period, before any disclosure: every cell is a count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    /// Stable identifier.
    pub id: String,
    /// Title.
    pub title: String,
    /// What is counted.
    pub unit: String,
    /// What a cell counts.
    pub definition: String,
    /// The period.
    pub period: Period,
    /// Row labels (codes: lower-case enum names, ISO 3166-1 alpha-3 countries, recorded text).
    pub rows: Vec<String>,
    /// Column labels.
    pub columns: Vec<String>,
    /// `rows.len()` × `columns.len()` counts.
    pub cells: Vec<Vec<u64>>,
}

impl Table {
    /// The table with its margins as an `(R+1) × (C+1)` grid: the last column holds row totals,
    /// the last row column totals, the corner the grand total (saturating sums).
    pub fn with_margins(&self) -> Vec<Vec<u64>> {
        let cols = self.columns.len();
        let mut out: Vec<Vec<u64>> = Vec::with_capacity(self.rows.len() + 1);
        let mut totals = vec![0u64; cols + 1];
        for row in &self.cells {
            let mut line: Vec<u64> = row
                .iter()
                .copied()
                .chain(std::iter::repeat(0))
                .take(cols)
                .collect();
            let sum = line.iter().fold(0u64, |a, v| a.saturating_add(*v));
            line.push(sum);
            for (t, v) in totals.iter_mut().zip(&line) {
                *t = t.saturating_add(*v);
            }
            out.push(line);
        }
        out.push(totals);
        out
    }

    /// The grand total.
    pub fn total(&self) -> u64 {
        self.cells
            .iter()
            .flatten()
            .fold(0u64, |a, v| a.saturating_add(*v))
    }

    /// The cell at (row label, column label), 0 if absent.
    pub fn get(&self, row: &str, column: &str) -> u64 {
        let r = self.rows.iter().position(|x| x == row);
        let c = self.columns.iter().position(|x| x == column);
        match (r, c) {
            (Some(r), Some(c)) => self
                .cells
                .get(r)
                .and_then(|l| l.get(c))
                .copied()
                .unwrap_or(0),
            _ => 0,
        }
    }
}

/// SDG indicator 16.4.2 for one period (see [`SDG_DEFINITION`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sdg1642 {
    /// The period.
    pub period: Period,
    /// Firearms traced or with illicit origin or context established.
    pub numerator: u64,
    /// Firearms seized, found, surrendered or confiscated.
    pub denominator: u64,
}

impl Sdg1642 {
    /// numerator / denominator; `None` when the denominator is 0.
    pub fn proportion(&self) -> Option<f64> {
        (self.denominator > 0).then(|| self.numerator as f64 / self.denominator as f64)
    }

    /// Reads the indicator from the SDG table ([`SDG_TABLE`]).
    pub fn from_table(table: &Table) -> Sdg1642 {
        let counted = &SEIZURE_KIND_COLUMNS[..4];
        let sum = |row: &str| {
            counted
                .iter()
                .fold(0u64, |a, c| a.saturating_add(table.get(row, c)))
        };
        let numerator = sum("traced_or_established");
        Sdg1642 {
            period: table.period,
            numerator,
            denominator: numerator.saturating_add(sum("not_traced")),
        }
    }
}

/// All tables of one period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The period.
    pub period: Period,
    /// The seizure tables in [`TABLES`] order, then the tracing table.
    pub tables: Vec<Table>,
}

impl Report {
    /// The table with this id.
    pub fn table(&self, id: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.id == id)
    }

    /// SDG 16.4.2 from the report's SDG table.
    pub fn sdg(&self) -> Option<Sdg1642> {
        self.table(SDG_TABLE).map(Sdg1642::from_table)
    }
}

fn enum_code(name: &str, prefix: &str) -> String {
    let short = name.strip_prefix(prefix).unwrap_or(name);
    if short == "UNSPECIFIED" {
        "not_stated".to_string()
    } else {
        short.to_ascii_lowercase()
    }
}

fn kind_column(record: &pb::SeizureRecord) -> usize {
    let kind = record
        .context
        .as_ref()
        .and_then(|c| pb::SeizureKind::try_from(c.seizure_kind).ok())
        .unwrap_or(pb::SeizureKind::Unspecified);
    match kind {
        pb::SeizureKind::Seized => 0,
        pb::SeizureKind::Found => 1,
        pb::SeizureKind::Surrendered => 2,
        pb::SeizureKind::Confiscated => 3,
        pb::SeizureKind::Unspecified => 4,
    }
}

fn all_codes<E>(values: &[E], name: impl Fn(&E) -> &'static str, prefix: &str) -> Vec<String> {
    values.iter().map(|v| enum_code(name(v), prefix)).collect()
}

/// Fixed rows of an enumerated dimension (all values, in proto order, "not stated" last), or
/// `None` for dimensions whose rows are the values seen.
fn fixed_rows(dimension: Dimension) -> Option<Vec<String>> {
    use pb::{AgencyKind as A, ConcealmentMethod as M, CriminalContext as X, PersonRole as P};
    use pb::{TransportMode as T, WeaponCategory as W};
    let mut rows = match dimension {
        Dimension::WeaponCategory => all_codes(
            &[
                W::RevolverOrSelfLoadingPistol,
                W::RifleOrCarbine,
                W::SubMachineGun,
                W::AssaultRifle,
                W::LightMachineGun,
                W::HeavyMachineGun,
                W::GrenadeLauncher,
                W::PortableAntiTank,
                W::PortableAntiAircraft,
                W::MortarUnder75mm,
                W::Shotgun,
                W::Other,
            ],
            W::as_str_name,
            "WEAPON_CATEGORY_",
        ),
        Dimension::TransportMode => all_codes(
            &[
                T::Road,
                T::Rail,
                T::MaritimeContainer,
                T::AirCargo,
                T::PassengerLuggage,
                T::PostalOrCourier,
                T::OnlineOrder,
                T::Other,
            ],
            T::as_str_name,
            "TRANSPORT_MODE_",
        ),
        Dimension::ConcealmentMethod => all_codes(
            &[
                M::None,
                M::VehicleCompartment,
                M::MixedWithCargo,
                M::DisassembledInParts,
                M::FalseBottomLuggage,
                M::DeclaredAsOtherGoods,
                M::OnPerson,
                M::PostalParcel,
                M::Other,
            ],
            M::as_str_name,
            "CONCEALMENT_METHOD_",
        ),
        Dimension::CriminalContext => all_codes(
            &[
                X::DrugTrafficking,
                X::OrganizedCrime,
                X::Terrorism,
                X::ArmedViolence,
                X::ArmsTrafficking,
                X::NoneEstablished,
                X::Other,
            ],
            X::as_str_name,
            "CRIMINAL_CONTEXT_",
        ),
        Dimension::PersonRole => all_codes(
            &[P::Suspect, P::Courier, P::Broker, P::Owner, P::Other],
            P::as_str_name,
            "PERSON_ROLE_",
        ),
        Dimension::PersonSex => all_codes(
            &[
                pb::PersonSex::Female,
                pb::PersonSex::Male,
                pb::PersonSex::Other,
            ],
            pb::PersonSex::as_str_name,
            "PERSON_SEX_",
        ),
        Dimension::PersonAgeBand => all_codes(
            &[
                pb::AgeBand::Under18,
                pb::AgeBand::AgeBand18To24,
                pb::AgeBand::AgeBand25To34,
                pb::AgeBand::AgeBand35To44,
                pb::AgeBand::AgeBand45To54,
                pb::AgeBand::AgeBand55To64,
                pb::AgeBand::AgeBand65AndOver,
            ],
            pb::AgeBand::as_str_name,
            "AGE_BAND_",
        ),
        Dimension::SeizingAgency => all_codes(
            &[A::Police, A::Customs, A::BorderGuard, A::Military, A::Other],
            A::as_str_name,
            "AGENCY_KIND_",
        ),
        Dimension::OriginEstablished => {
            return Some(vec!["traced_or_established".into(), "not_traced".into()]);
        }
        Dimension::CountryOfManufacture
        | Dimension::RouteCountry
        | Dimension::AmmunitionCalibre
        | Dimension::PartKind => return None,
    };
    rows.push("not_stated".into());
    Some(rows)
}

fn enum_label<E: TryFrom<i32>>(v: i32, name: impl Fn(&E) -> &'static str, prefix: &str) -> String {
    match E::try_from(v) {
        Ok(e) => enum_code(name(&e), prefix),
        Err(_) => "not_stated".into(),
    }
}

fn text_or_unknown(s: &str, upper: bool) -> String {
    let t = s.trim();
    if t.is_empty() {
        "unknown".into()
    } else if upper {
        t.to_uppercase()
    } else {
        t.to_lowercase()
    }
}

/// The (row label, weight) contributions of one record to a table.
fn contributions(record: &pb::SeizureRecord, dimension: Dimension) -> Vec<(String, u64)> {
    let firearms = record.firearms.len() as u64;
    let trafficking = record.trafficking.as_ref();
    let context = record.context.as_ref();
    let per_record = |label: String| vec![(label, firearms)];
    match dimension {
        Dimension::WeaponCategory => record
            .firearms
            .iter()
            .map(|f| {
                let l = enum_label(
                    f.category,
                    pb::WeaponCategory::as_str_name,
                    "WEAPON_CATEGORY_",
                );
                (l, 1)
            })
            .collect(),
        Dimension::CountryOfManufacture => record
            .firearms
            .iter()
            .map(|f| (text_or_unknown(&f.country_of_manufacture, true), 1))
            .collect(),
        Dimension::RouteCountry => {
            let mut seen: Vec<String> = Vec::new();
            for p in trafficking.map(|t| t.route.as_slice()).unwrap_or_default() {
                let c = text_or_unknown(&p.country, true);
                if !seen.contains(&c) {
                    seen.push(c);
                }
            }
            if seen.is_empty() {
                seen.push("none_recorded".into());
            }
            seen.into_iter().map(|c| (c, firearms)).collect()
        }
        Dimension::TransportMode => per_record(enum_label(
            trafficking.map_or(0, |t| t.transport_mode),
            pb::TransportMode::as_str_name,
            "TRANSPORT_MODE_",
        )),
        Dimension::ConcealmentMethod => per_record(enum_label(
            trafficking.map_or(0, |t| t.concealment_method),
            pb::ConcealmentMethod::as_str_name,
            "CONCEALMENT_METHOD_",
        )),
        Dimension::CriminalContext => per_record(enum_label(
            context.map_or(0, |c| c.criminal_context),
            pb::CriminalContext::as_str_name,
            "CRIMINAL_CONTEXT_",
        )),
        Dimension::AmmunitionCalibre => record
            .ammunition
            .iter()
            .map(|a| (text_or_unknown(&a.calibre, true), a.quantity))
            .collect(),
        Dimension::PartKind => record
            .parts
            .iter()
            .map(|p| (text_or_unknown(&p.kind, false), p.quantity))
            .collect(),
        Dimension::PersonRole => record
            .persons
            .iter()
            .map(|p| {
                (
                    enum_label(p.role, pb::PersonRole::as_str_name, "PERSON_ROLE_"),
                    1,
                )
            })
            .collect(),
        Dimension::PersonSex => natural_persons(record)
            .map(|p| {
                (
                    enum_label(p.sex, pb::PersonSex::as_str_name, "PERSON_SEX_"),
                    1,
                )
            })
            .collect(),
        Dimension::PersonAgeBand => natural_persons(record)
            .map(|p| {
                (
                    enum_label(p.age_band, pb::AgeBand::as_str_name, "AGE_BAND_"),
                    1,
                )
            })
            .collect(),
        Dimension::SeizingAgency => vec![(
            enum_label(
                record.event.as_ref().map_or(0, |e| e.seizing_agency),
                pb::AgencyKind::as_str_name,
                "AGENCY_KIND_",
            ),
            1,
        )],
        Dimension::OriginEstablished => {
            let t = record.tracing.as_ref();
            let yes = t.is_some_and(|t| t.traced || t.illicit_origin_established);
            let label = if yes {
                "traced_or_established"
            } else {
                "not_traced"
            };
            vec![(label.into(), firearms)]
        }
    }
}

/// The persons of a record not recorded as legal persons (sex and age band describe people).
fn natural_persons(record: &pb::SeizureRecord) -> impl Iterator<Item = &pb::Person> {
    record
        .persons
        .iter()
        .filter(|p| p.kind != pb::PersonKind::Legal as i32)
}

/// The event date of a record, if it has a valid one.
fn event_date(record: &pb::SeizureRecord) -> Option<(u16, u8)> {
    let d = Date::parse(record.event.as_ref()?.date.trim())?;
    let (y, m, _) = d.ymd();
    Some((y, m))
}

/// One seizure table of a period from records (records outside the period are skipped).
pub fn seizure_table(spec: &TableSpec, period: Period, records: &[pb::SeizureRecord]) -> Table {
    let mut counts: BTreeMap<String, [u64; 5]> = BTreeMap::new();
    let fixed = fixed_rows(spec.dimension);
    if let Some(rows) = &fixed {
        for r in rows {
            counts.insert(r.clone(), [0; 5]);
        }
    }
    for record in records {
        // Loss reports are not seizures: no table counts them.
        if record.loss.is_some() {
            continue;
        }
        let Some((y, m)) = event_date(record) else {
            continue;
        };
        if !period.contains(y, m) {
            continue;
        }
        let col = kind_column(record);
        for (label, weight) in contributions(record, spec.dimension) {
            let line = counts.entry(label).or_insert([0; 5]);
            if let Some(cell) = line.get_mut(col) {
                *cell = cell.saturating_add(weight);
            }
        }
    }
    let rows: Vec<String> = match fixed {
        Some(rows) => {
            let mut rows = rows;
            // Labels outside the fixed list (values a newer peer sent) go last, sorted.
            for k in counts.keys() {
                if !rows.contains(k) {
                    rows.push(k.clone());
                }
            }
            rows
        }
        None => counts.keys().cloned().collect(),
    };
    let cells = rows
        .iter()
        .map(|r| counts.get(r).map_or_else(|| vec![0; 5], |l| l.to_vec()))
        .collect();
    Table {
        id: spec.id.into(),
        title: spec.title.into(),
        unit: spec.unit.as_str().into(),
        definition: spec.definition.into(),
        period,
        rows,
        columns: SEIZURE_KIND_COLUMNS
            .iter()
            .map(|c| (*c).to_string())
            .collect(),
        cells,
    }
}

/// UTC calendar (year, month) of a Unix time in seconds.
pub fn year_month_of(unix_secs: i64) -> (i64, u8) {
    // Howard Hinnant's civil_from_days.
    let z = unix_secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as u8)
}

/// The tracing outcomes table of a period from the ledger's trace records (see
/// [`TRACING_DEFINITION`]); `now` decides what is overdue.
pub fn tracing_table(period: Period, traces: &[pb::TraceRecord], now: i64) -> Table {
    let mut cells = vec![vec![0u64; TRACE_COLUMNS.len()]; TRACE_ROWS.len()];
    for rec in traces {
        let Some(req) = rec.request.as_ref() else {
            continue;
        };
        let (y, m) = year_month_of(req.created_at);
        if u16::try_from(y).map_or(true, |y| !period.contains(y, m)) {
            continue;
        }
        let row = match trace::TraceDirection::parse(&rec.direction) {
            Some(trace::TraceDirection::Outgoing) => 0,
            Some(trace::TraceDirection::Incoming) => 1,
            None => continue,
        };
        let status = pb::TraceStatus::try_from(rec.status).unwrap_or(pb::TraceStatus::Unspecified);
        let col = match status {
            pb::TraceStatus::Answered => {
                let chain = rec
                    .response
                    .as_ref()
                    .is_some_and(|r| !r.chain_of_custody.is_empty());
                if chain { 0 } else { 1 }
            }
            pb::TraceStatus::Restricted => 2,
            pb::TraceStatus::Declined => 3,
            _ if trace::is_overdue(rec, now) => 5,
            _ => 4,
        };
        if let Some(cell) = cells.get_mut(row).and_then(|l| l.get_mut(col)) {
            *cell += 1;
        }
    }
    Table {
        id: TRACING_TABLE.into(),
        title: "Tracing outcomes".into(),
        unit: Unit::TraceRequests.as_str().into(),
        definition: TRACING_DEFINITION.into(),
        period,
        rows: TRACE_ROWS.iter().map(|r| (*r).to_string()).collect(),
        columns: TRACE_COLUMNS.iter().map(|c| (*c).to_string()).collect(),
        cells,
    }
}

/// Every table of a period: the seizure tables of [`TABLES`], then the tracing table.
pub fn report(
    period: Period,
    records: &[pb::SeizureRecord],
    traces: &[pb::TraceRecord],
    now: i64,
) -> Report {
    let mut tables: Vec<Table> = TABLES
        .iter()
        .map(|spec| seizure_table(spec, period, records))
        .collect();
    tables.push(tracing_table(period, traces, now));
    Report { period, tables }
}

/// SDG 16.4.2 for each year from `first` to `last` (at most 100 years).
pub fn sdg_series(first: u16, last: u16, records: &[pb::SeizureRecord]) -> Vec<Sdg1642> {
    let Some(spec) = TABLES.iter().find(|t| t.id == SDG_TABLE) else {
        return Vec::new();
    };
    (first..=last.min(first.saturating_add(99)))
        .map(|y| Sdg1642::from_table(&seizure_table(spec, Period::year(y), records)))
        .collect()
}

/// The period of a request: `year`, and `quarter` 1 to 4 or 0 for the whole year.
pub fn period_of(year: u32, quarter: u32) -> Result<Period, String> {
    let y = u16::try_from(year)
        .ok()
        .filter(|y| (1900..=2199).contains(y))
        .ok_or_else(|| format!("year {year} is out of range (1900 to 2199)"))?;
    match quarter {
        0 => Ok(Period::year(y)),
        q => u8::try_from(q)
            .ok()
            .and_then(|q| Period::quarter(y, q))
            .ok_or_else(|| format!("quarter {quarter} is out of range (1 to 4, or 0)")),
    }
}

/// A published table on the wire.
pub fn table_to_pb(t: &suppress::Published) -> pb::StatisticsTable {
    pb::StatisticsTable {
        id: t.id.clone(),
        title: t.title.clone(),
        unit: t.unit.clone(),
        definition: t.definition.clone(),
        period: t.period.label(),
        rows: t.rows.clone(),
        columns: t.columns.clone(),
        cells: t
            .cells
            .iter()
            .flatten()
            .map(|c| match c {
                suppress::Cell::Value(v) => pb::StatisticsCell {
                    value: *v,
                    suppressed: false,
                },
                suppress::Cell::Suppressed => pb::StatisticsCell {
                    value: 0,
                    suppressed: true,
                },
            })
            .collect(),
        threshold: t.threshold,
    }
}

/// SDG 16.4.2 as the published SDG table allows it to be read: a row's count over the four
/// seizure kinds from its cells, or from its total less its `not_stated` cell; withheld when
/// suppression hides it.
pub fn sdg_of_published(t: &suppress::Published) -> pb::StatisticsSdg {
    let row = |label: &str| -> Option<u64> {
        let line = t.cells.get(t.rows.iter().position(|r| r == label)?)?;
        let counted: Option<u64> = line
            .iter()
            .take(4)
            .map(|c| c.value())
            .try_fold(0u64, |a, v| v.map(|v| a.saturating_add(v)));
        counted.or_else(|| {
            let total = line.last()?.value()?;
            let not_stated = line.get(4)?.value()?;
            total.checked_sub(not_stated)
        })
    };
    let (num, not) = (row("traced_or_established"), row("not_traced"));
    match (num, not) {
        (Some(n), Some(o)) => {
            let d = n.saturating_add(o);
            pb::StatisticsSdg {
                period: t.period.label(),
                numerator: n,
                denominator: d,
                suppressed: false,
                proportion: (d > 0).then(|| n as f64 / d as f64),
            }
        }
        _ => pb::StatisticsSdg {
            period: t.period.label(),
            suppressed: true,
            ..Default::default()
        },
    }
}

/// An SDG 16.4.2 figure on the wire.
pub fn sdg_to_pb(s: &Sdg1642) -> pb::StatisticsSdg {
    pb::StatisticsSdg {
        period: s.period.label(),
        numerator: s.numerator,
        denominator: s.denominator,
        suppressed: false,
        proportion: s.proportion(),
    }
}

/// A report published under threshold `k` (0 or 1: nothing suppressed), on the wire; unsigned,
/// without policy rule.
pub fn response(node_id: &str, report: &Report, k: u64) -> pb::StatisticsResponse {
    let published: Vec<suppress::Published> = report
        .tables
        .iter()
        .map(|t| suppress::publish(t, k))
        .collect();
    let sdg = published
        .iter()
        .find(|t| t.id == SDG_TABLE)
        .map(sdg_of_published);
    pb::StatisticsResponse {
        node_id: node_id.to_string(),
        period: report.period.label(),
        tables: published.iter().map(table_to_pb).collect(),
        sdg,
        policy_version: 0,
        policy_rule: String::new(),
        signature: None,
    }
}

/// Published tables back from the wire (for exports of what a peer sent); `None` if a table's
/// cells do not fill its grid.
pub fn table_from_pb(t: &pb::StatisticsTable) -> Option<suppress::Published> {
    let width = t.columns.len() + 1;
    if t.cells.len() != (t.rows.len() + 1) * width {
        return None;
    }
    let period = parse_period_label(&t.period)?;
    Some(suppress::Published {
        id: t.id.clone(),
        title: t.title.clone(),
        unit: t.unit.clone(),
        definition: t.definition.clone(),
        period,
        rows: t.rows.clone(),
        columns: t.columns.clone(),
        cells: t
            .cells
            .chunks(width)
            .map(|line| {
                line.iter()
                    .map(|c| {
                        if c.suppressed {
                            suppress::Cell::Suppressed
                        } else {
                            suppress::Cell::Value(c.value)
                        }
                    })
                    .collect()
            })
            .collect(),
        threshold: t.threshold,
    })
}

/// Parses `2026` or `2026-Q2`.
pub fn parse_period_label(s: &str) -> Option<Period> {
    match s.split_once("-Q") {
        Some((y, q)) => Period::quarter(y.parse().ok()?, q.parse().ok()?),
        None => Some(Period::year(s.parse().ok()?)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
