//! Validation of domain records: a `SeizureRecord` as received becomes a [`ValidRecord`] only
//! after every field has been checked, so the store and the exchange never see unchecked input.
//!
//! Validation is pure and reports every problem at once (field path and reason), which is what a
//! person fixing an import file or a form needs. [`batch`] checks many records at once (import
//! batches and files) and holds the own-country rule.

use std::fmt::{self, Display};

use tracenet_proto::v1 as pb;

use crate::country::CountryCode;
use crate::ids::RecordId;
use crate::serial::{self, NormalisedSerial};

pub mod batch;

/// Longest accepted free-text field, in characters.
pub const MAX_TEXT: usize = 4000;
/// Longest accepted short field (names, references, calibres), in characters.
pub const MAX_SHORT: usize = 200;
/// Most items of one kind (firearms, parts, ammunition lots, persons, route points) in a record.
pub const MAX_ITEMS: usize = 1000;
/// Most ballistic references in a record (each is indexed, so a record cannot flood the index).
pub const MAX_BALLISTIC: usize = 100;

const BAND_ONLY_DISCLOSED: &str =
    "is set only in views disclosed under a policy; record the exact quantity";

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field, e.g. `firearms[2].serial_number`.
    pub field: String,
    /// What is wrong, in words a user can act on.
    pub reason: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// A record that failed validation, with every problem found. Not retryable as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid record: {}", join(.0))]
pub struct Invalid(pub Vec<FieldError>);

fn join(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// A calendar date, checked (month lengths, leap years).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

impl Date {
    /// Parses `YYYY-MM-DD` for years 1900 to 2199.
    pub fn parse(s: &str) -> Option<Date> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u16> {
            s.get(r)?.bytes().try_fold(0u16, |acc, c| {
                c.is_ascii_digit().then(|| acc * 10 + u16::from(c - b'0'))
            })
        };
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        if !(1900..=2199).contains(&year) || !(1..=12).contains(&month) || day == 0 {
            return None;
        }
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let max = match month {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        if day > max {
            return None;
        }
        Some(Date {
            year,
            month: month as u8,
            day: day as u8,
        })
    }

    /// The date as the number YYYYMMDD, which sorts like the date (used in index keys).
    pub fn as_u32(&self) -> u32 {
        u32::from(self.year) * 10_000 + u32::from(self.month) * 100 + u32::from(self.day)
    }

    /// Year, month, day.
    pub fn ymd(&self) -> (u16, u8, u8) {
        (self.year, self.month, self.day)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// A seizure record that passed validation, with the parsed forms the store indexes.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidRecord {
    record: pb::SeizureRecord,
    id: Option<RecordId>,
    date: Date,
    country: CountryCode,
    serials: Vec<NormalisedSerial>,
    route: Vec<CountryCode>,
}

impl ValidRecord {
    /// The record as received (trimmed of surrounding white space).
    pub fn record(&self) -> &pb::SeizureRecord {
        &self.record
    }
    /// Gives the record back.
    pub fn into_record(self) -> pb::SeizureRecord {
        self.record
    }
    /// The record's id, when it carried one (updates do; creates do not).
    pub fn id(&self) -> Option<RecordId> {
        self.id
    }
    /// Sets the id (the store does this when it creates the record).
    pub fn set_id(&mut self, id: RecordId) {
        self.id = Some(id);
        self.record.id = id.to_string();
    }
    /// The national source system's reference.
    pub fn national_ref(&self) -> &str {
        &self.record.national_ref
    }
    /// Date of the seizure event.
    pub fn date(&self) -> Date {
        self.date
    }
    /// Country where the event took place.
    pub fn country(&self) -> CountryCode {
        self.country
    }
    /// Normalised serial numbers of all firearms and parts that have a readable one.
    pub fn serials(&self) -> &[NormalisedSerial] {
        &self.serials
    }
    /// Countries on the trafficking route, in order, without repeats.
    pub fn route_countries(&self) -> &[CountryCode] {
        &self.route
    }
    /// Transport mode, if one was given.
    pub fn transport_mode(&self) -> Option<pb::TransportMode> {
        let t = self.record.trafficking.as_ref()?;
        match pb::TransportMode::try_from(t.transport_mode) {
            Ok(pb::TransportMode::Unspecified) | Err(_) => None,
            Ok(m) => Some(m),
        }
    }
    /// Concealment method, if one was given.
    pub fn concealment_method(&self) -> Option<pb::ConcealmentMethod> {
        let t = self.record.trafficking.as_ref()?;
        match pb::ConcealmentMethod::try_from(t.concealment_method) {
            Ok(pb::ConcealmentMethod::Unspecified) | Err(_) => None,
            Ok(m) => Some(m),
        }
    }
}

/// Accumulates field errors while walking a record.
/// `list[i].name`, formatted only when a check fails.
#[derive(Clone, Copy)]
struct At<'a>(&'static str, usize, &'a dyn Display);

impl Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}].{}", self.0, self.1, self.2)
    }
}

struct Checker {
    errors: Vec<FieldError>,
}

impl Checker {
    /// Field names are built only here, on failure: formatting every field's path up front was
    /// a fifth of validating a record (see BENCHMARKS.md, ingest profile).
    fn fail(&mut self, field: impl Display, reason: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.to_string(),
            reason: reason.into(),
        });
    }

    /// Trims the text and checks its length and characters. `multiline` allows newlines and tabs.
    fn text(&mut self, field: impl Display, value: &mut String, max: usize, multiline: bool) {
        let trimmed = value.trim();
        if trimmed.len() != value.len() {
            *value = trimmed.to_owned();
        }
        if value.chars().count() > max {
            self.fail(&field, format!("longer than {max} characters"));
        }
        if value
            .chars()
            .any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\t')))
        {
            self.fail(&field, "contains control characters");
        }
    }

    fn required(&mut self, field: impl Display, value: &str) {
        if value.is_empty() {
            self.fail(&field, "is required");
        }
    }

    fn country(
        &mut self,
        field: impl Display,
        value: &mut String,
        required: bool,
    ) -> Option<CountryCode> {
        if value.trim().is_empty() {
            value.clear();
            if required {
                self.fail(&field, "is required (ISO 3166-1 alpha-3, e.g. FRA)");
            }
            return None;
        }
        match CountryCode::parse(value) {
            Ok(c) => {
                *value = c.as_str().to_owned();
                Some(c)
            }
            Err(e) => {
                self.fail(&field, e.to_string());
                None
            }
        }
    }

    fn enum_value<E: TryFrom<i32>>(&mut self, field: impl Display, value: i32, required: bool) {
        if E::try_from(value).is_err() {
            self.fail(&field, format!("unknown value {value}"));
        } else if required && value == 0 {
            self.fail(&field, "is required");
        }
    }

    fn count(&mut self, field: impl Display, n: usize) {
        if n > MAX_ITEMS {
            self.fail(&field, format!("more than {MAX_ITEMS} entries"));
        }
    }

    fn year(&mut self, field: impl Display, year: u32) {
        if year != 0 && !(1800..=2199).contains(&year) {
            self.fail(&field, "must be a year between 1800 and 2199");
        }
    }
}

/// Checks a record and returns it in validated form, or every problem found.
pub fn validate(mut rec: pb::SeizureRecord) -> Result<ValidRecord, Invalid> {
    let mut c = Checker { errors: Vec::new() };

    let id = if rec.id.trim().is_empty() {
        rec.id.clear();
        None
    } else {
        match RecordId::parse(rec.id.trim()) {
            Ok(id) => Some(id),
            Err(e) => {
                c.fail("id", e.to_string());
                None
            }
        }
    };

    c.text("national_ref", &mut rec.national_ref, 64, false);
    c.required("national_ref", &rec.national_ref);

    let mut date = None;
    let mut country = None;
    if rec.loss.is_some() {
        // A loss report has no seizure event or context; forms and CSV rows send them empty.
        let blank_event = rec.event.as_ref().is_some_and(|e| {
            e.date.trim().is_empty()
                && e.seizing_agency == 0
                && e.place.as_ref().is_none_or(|p| p.country.trim().is_empty())
        });
        if blank_event {
            rec.event = None;
        }
        if rec
            .context
            .is_some_and(|x| x.seizure_kind == 0 && x.criminal_context == 0)
        {
            rec.context = None;
        }
    }
    if let Some(loss) = rec.loss.as_mut() {
        if rec.event.is_some() {
            c.fail(
                "event",
                "a loss report has no seizure event: give the date and place of the loss",
            );
        }
        if rec.context.is_some() {
            c.fail("context", "a loss report has no seizure context");
        }
        c.enum_value::<pb::LossKind>("loss.kind", loss.kind, true);
        c.enum_value::<pb::LossSource>("loss.source", loss.source, true);
        loss.date = loss.date.trim().to_owned();
        date = Date::parse(&loss.date);
        if date.is_none() {
            c.fail("loss.date", "must be a date as YYYY-MM-DD");
        }
        match loss.place.as_mut() {
            None => c.fail("loss.place", "is required (at least the country)"),
            Some(p) => {
                country = c.country("loss.place.country", &mut p.country, true);
                c.text("loss.place.region", &mut p.region, MAX_SHORT, false);
                c.text("loss.place.locality", &mut p.locality, MAX_SHORT, false);
                c.text(
                    "loss.place.border_crossing_point",
                    &mut p.border_crossing_point,
                    MAX_SHORT,
                    false,
                );
                if p.latitude.is_some() || p.longitude.is_some() {
                    c.fail("loss.place", "coordinates are not recorded for a loss");
                }
            }
        }
        c.text(
            "loss.circumstances",
            &mut loss.circumstances,
            MAX_TEXT,
            true,
        );
        c.text(
            "loss.reporting_agency",
            &mut loss.reporting_agency,
            MAX_SHORT,
            false,
        );
    }
    match rec.event.as_mut() {
        None if rec.loss.is_some() => {}
        None => c.fail("event", "is required (date, place, seizing agency)"),
        Some(ev) => {
            ev.date = ev.date.trim().to_owned();
            date = Date::parse(&ev.date);
            if date.is_none() {
                c.fail("event.date", "must be a date as YYYY-MM-DD");
            }
            c.enum_value::<pb::AgencyKind>("event.seizing_agency", ev.seizing_agency, true);
            match ev.place.as_mut() {
                None => c.fail("event.place", "is required (at least the country)"),
                Some(p) => {
                    country = c.country("event.place.country", &mut p.country, true);
                    c.text("event.place.region", &mut p.region, MAX_SHORT, false);
                    c.text("event.place.locality", &mut p.locality, MAX_SHORT, false);
                    c.text(
                        "event.place.border_crossing_point",
                        &mut p.border_crossing_point,
                        MAX_SHORT,
                        false,
                    );
                    match (p.latitude, p.longitude) {
                        (None, None) => {}
                        (Some(lat), Some(lon)) => {
                            if !(-90.0..=90.0).contains(&lat) {
                                c.fail("event.place.latitude", "must be between -90 and 90");
                            }
                            if !(-180.0..=180.0).contains(&lon) {
                                c.fail("event.place.longitude", "must be between -180 and 180");
                            }
                        }
                        _ => c.fail(
                            "event.place",
                            "latitude and longitude go together: give both or neither",
                        ),
                    }
                }
            }
        }
    }

    match rec.context.as_ref() {
        None if rec.loss.is_some() => {}
        None => c.fail("context", "is required (seizure kind)"),
        Some(ctx) => {
            c.enum_value::<pb::CriminalContext>(
                "context.criminal_context",
                ctx.criminal_context,
                false,
            );
            c.enum_value::<pb::SeizureKind>("context.seizure_kind", ctx.seizure_kind, true);
        }
    }

    if rec.firearms.is_empty() && rec.parts.is_empty() && rec.ammunition.is_empty() {
        c.fail(
            "firearms",
            "a record needs at least one firearm, part or ammunition lot",
        );
    }
    c.count("firearms", rec.firearms.len());
    c.count("parts", rec.parts.len());
    c.count("ammunition", rec.ammunition.len());
    c.count("persons", rec.persons.len());

    let mut serials = Vec::new();
    for (i, f) in rec.firearms.iter_mut().enumerate() {
        let p = |name| At("firearms", i, name);
        c.text(p(&"serial_number"), &mut f.serial_number, 64, false);
        c.text(p(&"manufacturer"), &mut f.manufacturer, MAX_SHORT, false);
        c.text(p(&"model"), &mut f.model, MAX_SHORT, false);
        c.text(p(&"calibre"), &mut f.calibre, 64, false);
        c.country(
            p(&"country_of_manufacture"),
            &mut f.country_of_manufacture,
            false,
        );
        c.enum_value::<pb::WeaponCategory>(p(&"category"), f.category, false);
        c.enum_value::<pb::MarkingCondition>(p(&"marking_condition"), f.marking_condition, false);
        c.enum_value::<pb::WeaponStatus>(p(&"status"), f.status, false);
        c.year(p(&"year_of_manufacture"), f.year_of_manufacture);
        if let Some(im) = f.import_marking.as_mut() {
            c.country(p(&"import_marking.country"), &mut im.country, false);
            c.year(p(&"import_marking.year"), im.year);
        }
        c.count(p(&"other_markings"), f.other_markings.len());
        for (j, m) in f.other_markings.iter_mut().enumerate() {
            c.text(
                format_args!("firearms[{i}].other_markings[{j}].text"),
                &mut m.text,
                MAX_SHORT,
                false,
            );
            c.text(
                format_args!("firearms[{i}].other_markings[{j}].location"),
                &mut m.location,
                MAX_SHORT,
                false,
            );
        }
        let intact = f.marking_condition == pb::MarkingCondition::Intact as i32;
        match serial::normalise(&f.serial_number) {
            Some(s) => serials.push(s),
            None if intact => c.fail(
                p(&"serial_number"),
                "is required when the marking is intact",
            ),
            None => {}
        }
    }
    for (i, part) in rec.parts.iter_mut().enumerate() {
        c.text(
            format_args!("parts[{i}].kind"),
            &mut part.kind,
            MAX_SHORT,
            false,
        );
        c.required(format_args!("parts[{i}].kind"), &part.kind);
        c.text(
            format_args!("parts[{i}].serial_number"),
            &mut part.serial_number,
            64,
            false,
        );
        if part.quantity == 0 {
            c.fail(format!("parts[{i}].quantity"), "must be at least 1");
        }
        if !part.quantity_band.is_empty() {
            c.fail(format!("parts[{i}].quantity_band"), BAND_ONLY_DISCLOSED);
        }
        if let Some(s) = serial::normalise(&part.serial_number) {
            serials.push(s);
        }
        c.text(
            format_args!("parts[{i}].manufacturer"),
            &mut part.manufacturer,
            MAX_SHORT,
            false,
        );
        c.count(format_args!("parts[{i}].markings"), part.markings.len());
        for (j, m) in part.markings.iter_mut().enumerate() {
            c.text(
                format_args!("parts[{i}].markings[{j}].text"),
                &mut m.text,
                MAX_SHORT,
                false,
            );
            c.text(
                format_args!("parts[{i}].markings[{j}].location"),
                &mut m.location,
                MAX_SHORT,
                false,
            );
        }
    }
    for (i, a) in rec.ammunition.iter_mut().enumerate() {
        c.text(
            format_args!("ammunition[{i}].calibre"),
            &mut a.calibre,
            64,
            false,
        );
        c.required(format_args!("ammunition[{i}].calibre"), &a.calibre);
        c.text(
            format_args!("ammunition[{i}].manufacturer"),
            &mut a.manufacturer,
            MAX_SHORT,
            false,
        );
        if a.quantity == 0 {
            c.fail(format!("ammunition[{i}].quantity"), "must be at least 1");
        }
        if !a.quantity_band.is_empty() {
            c.fail(
                format!("ammunition[{i}].quantity_band"),
                BAND_ONLY_DISCLOSED,
            );
        }
        c.enum_value::<pb::AmmunitionType>(
            format_args!("ammunition[{i}].ammunition_type"),
            a.ammunition_type,
            false,
        );
        c.text(
            format_args!("ammunition[{i}].headstamp"),
            &mut a.headstamp,
            64,
            false,
        );
        c.text(format_args!("ammunition[{i}].lot"), &mut a.lot, 64, false);
        c.year(format_args!("ammunition[{i}].year"), a.year);
    }
    serials.sort();
    serials.dedup();

    let mut route = Vec::new();
    if let Some(t) = rec.trafficking.as_mut() {
        c.count("trafficking.route", t.route.len());
        for (i, pt) in t.route.iter_mut().enumerate() {
            if let Some(cc) = c.country(
                format_args!("trafficking.route[{i}].country"),
                &mut pt.country,
                true,
            ) && !route.contains(&cc)
            {
                route.push(cc);
            }
            c.text(
                format_args!("trafficking.route[{i}].point"),
                &mut pt.point,
                MAX_SHORT,
                false,
            );
        }
        c.enum_value::<pb::TransportMode>("trafficking.transport_mode", t.transport_mode, false);
        c.enum_value::<pb::ConcealmentMethod>(
            "trafficking.concealment_method",
            t.concealment_method,
            false,
        );
        c.text(
            "trafficking.concealment_details",
            &mut t.concealment_details,
            MAX_TEXT,
            true,
        );
        c.country(
            "trafficking.suspected_source_country",
            &mut t.suspected_source_country,
            false,
        );
        c.country(
            "trafficking.suspected_destination_country",
            &mut t.suspected_destination_country,
            false,
        );
    }

    for (i, person) in rec.persons.iter_mut().enumerate() {
        c.enum_value::<pb::PersonRole>(format_args!("persons[{i}].role"), person.role, true);
        c.enum_value::<pb::PersonKind>(format_args!("persons[{i}].kind"), person.kind, false);
        c.enum_value::<pb::PersonSex>(format_args!("persons[{i}].sex"), person.sex, false);
        c.enum_value::<pb::AgeBand>(
            format_args!("persons[{i}].age_band"),
            person.age_band,
            false,
        );
        c.text(
            format_args!("persons[{i}].licence_reference"),
            &mut person.licence_reference,
            64,
            false,
        );
        // Sex and age band describe people; a company has neither.
        if person.kind == pb::PersonKind::Legal as i32 {
            if person.sex != 0 {
                c.fail(
                    format!("persons[{i}].sex"),
                    "is for natural persons only, not for a legal person",
                );
            }
            if person.age_band != 0 {
                c.fail(
                    format!("persons[{i}].age_band"),
                    "is for natural persons only, not for a legal person",
                );
            }
        }
        c.country(
            format_args!("persons[{i}].nationality"),
            &mut person.nationality,
            false,
        );
        c.text(
            format_args!("persons[{i}].name"),
            &mut person.name,
            MAX_SHORT,
            false,
        );
    }

    c.text("case_reference", &mut rec.case_reference, 64, false);
    c.text("notes", &mut rec.notes, MAX_TEXT, true);
    c.enum_value::<pb::ProceedingsStatus>("proceedings_status", rec.proceedings_status, false);
    if let Some(sh) = rec.shipment.as_mut() {
        if sh.identifiers.len() > MAX_BALLISTIC {
            c.fail(
                "shipment.identifiers",
                format!("more than {MAX_BALLISTIC} entries"),
            );
        }
        for (i, id) in sh.identifiers.iter_mut().enumerate() {
            let field = format!("shipment.identifiers[{i}]");
            c.enum_value::<pb::ConveyanceKind>(format_args!("{field}.kind"), id.kind, true);
            c.text(format_args!("{field}.value"), &mut id.value, 64, false);
            if serial::normalise(&id.value).is_none() {
                c.fail(format!("{field}.value"), "has no letters or digits");
            }
        }
        c.text("shipment.consignor", &mut sh.consignor, MAX_SHORT, false);
        c.text("shipment.consignee", &mut sh.consignee, MAX_SHORT, false);
        c.text(
            "shipment.online_platform",
            &mut sh.online_platform,
            MAX_SHORT,
            false,
        );
        c.text("shipment.listing", &mut sh.listing, 2000, false);
        c.text(
            "shipment.vendor_handle",
            &mut sh.vendor_handle,
            MAX_SHORT,
            false,
        );
    }
    c.enum_value::<pb::Disposition>("disposition", rec.disposition, false);
    if rec.ballistic_references.len() > MAX_BALLISTIC {
        c.fail(
            "ballistic_references",
            format!("more than {MAX_BALLISTIC} entries"),
        );
    }
    for (i, b) in rec.ballistic_references.iter_mut().enumerate() {
        let field = format!("ballistic_references[{i}]");
        c.text(&field, b, 64, false);
        // Looked up like a serial: an entry must have something to search for.
        if serial::normalise(b).is_none() {
            c.fail(field, "has no letters or digits");
        }
    }

    match (c.errors.is_empty(), date, country) {
        (true, Some(date), Some(country)) => Ok(ValidRecord {
            record: rec,
            id,
            date,
            country,
            serials,
            route,
        }),
        _ => Err(Invalid(c.errors)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::sample;

    #[test]
    fn dates() {
        assert_eq!(Date::parse("2024-02-29").unwrap().as_u32(), 20240229);
        assert_eq!(Date::parse("2000-02-29").unwrap().to_string(), "2000-02-29");
        for bad in [
            "2023-02-29",
            "1900-02-29",
            "2024-13-01",
            "2024-04-31",
            "2024-1-01",
            "20240101",
            "2024-00-10",
            "abcd-ef-gh",
            "1899-12-31",
            "",
        ] {
            assert!(Date::parse(bad).is_none(), "{bad} accepted");
        }
    }

    #[test]
    fn sample_records_are_valid_and_indexed_fields_parsed() {
        for n in 0..50 {
            let rec = sample::record(CountryCode::parse("FRA").unwrap(), n);
            let v = validate(rec.clone()).unwrap();
            assert_eq!(v.country().as_str(), "FRA");
            assert!(!v.serials().is_empty());
            assert_eq!(v.national_ref(), rec.national_ref);
        }
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let mut rec = sample::record(CountryCode::parse("FRA").unwrap(), 1);
        rec.event.as_mut().unwrap().date = "2024-02-30".into();
        rec.event.as_mut().unwrap().place.as_mut().unwrap().country = "XXX".into();
        rec.firearms[0].marking_condition = pb::MarkingCondition::Intact as i32;
        rec.firearms[0].serial_number = " -- ".into();
        rec.trafficking.as_mut().unwrap().transport_mode = 99;
        rec.national_ref = String::new();
        let Invalid(errors) = validate(rec).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "national_ref",
            "event.date",
            "event.place.country",
            "firearms[0].serial_number",
            "trafficking.transport_mode",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
    }

    #[test]
    fn empty_record_and_missing_items_are_refused() {
        assert!(validate(pb::SeizureRecord::default()).is_err());
        let mut rec = sample::record(CountryCode::parse("DEU").unwrap(), 3);
        rec.firearms.clear();
        rec.parts.clear();
        rec.ammunition.clear();
        let Invalid(errors) = validate(rec).unwrap_err();
        assert_eq!(errors[0].field, "firearms");
    }

    #[test]
    fn text_is_trimmed_and_countries_uppercased() {
        let mut rec = sample::record(CountryCode::parse("ITA").unwrap(), 4);
        rec.national_ref = "  SYN-ITA-4  ".into();
        rec.event.as_mut().unwrap().place.as_mut().unwrap().country = "ita".into();
        let v = validate(rec).unwrap();
        assert_eq!(v.national_ref(), "SYN-ITA-4");
        assert_eq!(
            v.record()
                .event
                .as_ref()
                .unwrap()
                .place
                .as_ref()
                .unwrap()
                .country,
            "ITA"
        );
    }

    #[test]
    fn control_characters_and_oversized_text_are_refused() {
        let mut rec = sample::record(CountryCode::parse("ITA").unwrap(), 5);
        rec.case_reference = "A\u{0}B".into();
        rec.notes = "x".repeat(MAX_TEXT + 1);
        let Invalid(errors) = validate(rec).unwrap_err();
        assert!(errors.iter().any(|e| e.field == "case_reference"));
        assert!(errors.iter().any(|e| e.field == "notes"));
    }

    #[test]
    fn case_facts_are_checked_all_at_once() {
        let mut rec = sample::record(CountryCode::parse("ITA").unwrap(), 6);
        rec.firearms[0].status = 99;
        rec.proceedings_status = 42;
        rec.disposition = -1;
        rec.ballistic_references = vec!["BAL-1".into(), " -- ".into(), "x".repeat(65)];
        let Invalid(errors) = validate(rec).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "firearms[0].status",
            "proceedings_status",
            "disposition",
            "ballistic_references[1]",
            "ballistic_references[2]",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
        assert!(!fields.contains(&"ballistic_references[0]"));
    }

    #[test]
    fn ammunition_and_part_details_are_checked_all_at_once() {
        let mut rec = sample::record(CountryCode::parse("ITA").unwrap(), 8);
        rec.ammunition[0].ammunition_type = 40;
        rec.ammunition[0].headstamp = "H\u{7}".into();
        rec.ammunition[0].lot = "L".repeat(65);
        rec.ammunition[0].year = 1700;
        rec.parts.push(pb::PartItem {
            kind: "slide".into(),
            quantity: 1,
            manufacturer: "M".repeat(MAX_SHORT + 1),
            markings: vec![pb::Marking {
                text: "X\u{0}".into(),
                location: String::new(),
            }],
            ..Default::default()
        });
        let Invalid(errors) = validate(rec).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "ammunition[0].ammunition_type",
            "ammunition[0].headstamp",
            "ammunition[0].lot",
            "ammunition[0].year",
            "parts[0].manufacturer",
            "parts[0].markings[0].text",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
    }

    #[test]
    fn shipments_and_persons_are_checked_all_at_once() {
        let mut rec = sample::record(CountryCode::parse("ITA").unwrap(), 9);
        rec.shipment = Some(pb::ShipmentFacts {
            identifiers: vec![
                pb::ConveyanceId {
                    kind: 0,
                    value: "--".into(),
                },
                pb::ConveyanceId {
                    kind: pb::ConveyanceKind::Container as i32,
                    value: "MSCU 123456-7".into(),
                },
            ],
            vendor_handle: "v\u{0}".into(),
            ..Default::default()
        });
        rec.persons.push(pb::Person {
            role: pb::PersonRole::Broker as i32,
            kind: pb::PersonKind::Legal as i32,
            sex: pb::PersonSex::Female as i32,
            age_band: 99,
            ..Default::default()
        });
        let Invalid(errors) = validate(rec).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "shipment.identifiers[0].kind",
            "shipment.identifiers[0].value",
            "shipment.vendor_handle",
            "persons[1].sex",
            "persons[1].age_band",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
        assert!(
            !fields
                .iter()
                .any(|f| f.starts_with("shipment.identifiers[1]"))
        );
    }

    #[test]
    fn a_loss_report_has_loss_facts_instead_of_an_event() {
        let fra = CountryCode::parse("FRA").unwrap();
        let v = validate(sample::loss_report(fra, 3)).unwrap();
        assert_eq!(v.country(), fra);
        assert!(v.record().event.is_none() && v.record().context.is_none());
        // Blank event and context (as a form or CSV row sends them) are dropped.
        let mut rec = sample::loss_report(fra, 4);
        rec.event = Some(pb::SeizureEvent {
            place: Some(pb::Place::default()),
            ..Default::default()
        });
        rec.context = Some(pb::SeizureContext::default());
        assert!(validate(rec).unwrap().record().event.is_none());
        // A loss report with a seizure event, or without its facts, is refused field by field.
        let mut rec = sample::loss_report(fra, 5);
        rec.event = sample::record(fra, 5).event;
        rec.loss = Some(pb::LossReport {
            date: "2025-02-30".into(),
            ..Default::default()
        });
        let Invalid(errors) = validate(rec).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "event",
            "loss.kind",
            "loss.source",
            "loss.date",
            "loss.place",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
    }

    #[test]
    fn case_facts_are_kept_trimmed() {
        let mut rec = sample::record(CountryCode::parse("ITA").unwrap(), 7);
        rec.firearms[0].status = pb::WeaponStatus::Printed3d as i32;
        rec.proceedings_status = pb::ProceedingsStatus::Trial as i32;
        rec.disposition = pb::Disposition::Destroyed as i32;
        rec.ballistic_references = vec![" IBIS-ITA-0001 ".into()];
        let v = validate(rec).unwrap();
        assert_eq!(v.record().ballistic_references, ["IBIS-ITA-0001"]);
        assert_eq!(v.record().disposition, pb::Disposition::Destroyed as i32);
    }
}
