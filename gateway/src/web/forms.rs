//! Form plumbing shared by the pages: select options from the protocol's enumerations (with
//! translated labels), the seizure record form (the same field names and short enumeration values
//! as the CSV import, so one parser serves both), and mapping the node's field paths back to
//! form fields so each message shows next to its field.

use std::collections::HashMap;

use tracenet_proto::files::{self, CSV_COLUMNS};
use tracenet_proto::v1 as pb;

use crate::error::FieldProblem;
use crate::i18n::Lang;

/// One `<option>`.
#[derive(Debug, Clone)]
pub struct SelectOption {
    /// Submitted value.
    pub value: String,
    /// Translated label.
    pub label: String,
    /// Whether it is selected.
    pub selected: bool,
}

/// The values of an enumeration as `(short name, full name)`, in protocol order.
pub fn enum_values(prefix: &str) -> Vec<(String, String)> {
    let name = |i: i32| -> Option<&'static str> {
        Some(match prefix {
            "AGENCY_KIND" => pb::AgencyKind::try_from(i).ok()?.as_str_name(),
            "SEIZURE_KIND" => pb::SeizureKind::try_from(i).ok()?.as_str_name(),
            "CRIMINAL_CONTEXT" => pb::CriminalContext::try_from(i).ok()?.as_str_name(),
            "WEAPON_CATEGORY" => pb::WeaponCategory::try_from(i).ok()?.as_str_name(),
            "MARKING_CONDITION" => pb::MarkingCondition::try_from(i).ok()?.as_str_name(),
            "TRANSPORT_MODE" => pb::TransportMode::try_from(i).ok()?.as_str_name(),
            "CONCEALMENT_METHOD" => pb::ConcealmentMethod::try_from(i).ok()?.as_str_name(),
            "PURPOSE" => pb::Purpose::try_from(i).ok()?.as_str_name(),
            "URGENCY" => pb::Urgency::try_from(i).ok()?.as_str_name(),
            "WEAPON_STATUS" => pb::WeaponStatus::try_from(i).ok()?.as_str_name(),
            "PROCEEDINGS_STATUS" => pb::ProceedingsStatus::try_from(i).ok()?.as_str_name(),
            "DISPOSITION" => pb::Disposition::try_from(i).ok()?.as_str_name(),
            "AMMUNITION_TYPE" => pb::AmmunitionType::try_from(i).ok()?.as_str_name(),
            "PERSON_KIND" => pb::PersonKind::try_from(i).ok()?.as_str_name(),
            "PERSON_ROLE" => pb::PersonRole::try_from(i).ok()?.as_str_name(),
            "PERSON_SEX" => pb::PersonSex::try_from(i).ok()?.as_str_name(),
            "AGE_BAND" => pb::AgeBand::try_from(i).ok()?.as_str_name(),
            "LOSS_KIND" => pb::LossKind::try_from(i).ok()?.as_str_name(),
            "LOSS_SOURCE" => pb::LossSource::try_from(i).ok()?.as_str_name(),
            _ => return None,
        })
    };
    (1..64)
        .map_while(name)
        .map(|full| (files::short_name(full, prefix), full.to_owned()))
        .collect()
}

/// Options for an enumeration, with an empty first option when `blank` is given.
pub fn options(lang: Lang, prefix: &str, selected: &str, blank: Option<&str>) -> Vec<SelectOption> {
    let mut out = Vec::new();
    if let Some(key) = blank {
        out.push(SelectOption {
            value: String::new(),
            label: lang.t(key).to_owned(),
            selected: selected.is_empty(),
        });
    }
    out.extend(
        enum_values(prefix)
            .into_iter()
            .map(|(short, full)| SelectOption {
                selected: short == selected,
                label: lang.enum_label(&full),
                value: short,
            }),
    );
    out
}

/// Every country by name (submitting its ISO 3166-1 alpha-3 code), with a blank first option;
/// a code not in the list (kept from a submitted form) is shown as typed.
pub fn country_options(lang: Lang, selected: &str) -> Vec<SelectOption> {
    let mut out = vec![SelectOption {
        value: String::new(),
        label: lang.t("common.choose").to_owned(),
        selected: selected.is_empty(),
    }];
    out.extend(
        lang.countries_by_name()
            .into_iter()
            .map(|(code, name)| SelectOption {
                value: code.to_owned(),
                label: format!("{name} ({code})"),
                selected: code == selected,
            }),
    );
    if !selected.is_empty() && lang.country_name(selected).is_none() {
        out.push(SelectOption {
            value: selected.to_owned(),
            label: selected.to_owned(),
            selected: true,
        });
    }
    out
}

/// The value of a short enumeration name (`road`) as the protocol number, 0 when empty or
/// unknown.
pub fn enum_number(prefix: &str, short: &str) -> i32 {
    enum_values(prefix)
        .iter()
        .position(|(s, _)| s == short)
        .map_or(0, |i| i32::try_from(i + 1).unwrap_or(0))
}

/// The short enumeration name (`road`) of a protocol number, empty for 0 or unknown (the
/// inverse of [`enum_number`]).
pub fn enum_short(prefix: &str, number: i32) -> String {
    usize::try_from(number)
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|i| enum_values(prefix).get(i).map(|(s, _)| s.clone()))
        .unwrap_or_default()
}

/// The form field a node field path belongs to (`firearms[0].serial_number` → `serial_number`,
/// `event.place.country` → `country`); empty when it has none (shown above the form).
pub fn form_field(path: &str) -> String {
    crate::jobs::column_of(path)
}

/// One field of the record form, with its value and any message.
#[derive(Debug, Clone)]
pub struct FieldView {
    /// Field name (a CSV column).
    pub name: &'static str,
    /// Translated label.
    pub label: &'static str,
    /// Current value.
    pub value: String,
    /// The message for this field, if any.
    pub error: Option<String>,
    /// Options, for a select.
    pub options: Vec<SelectOption>,
    /// Whether the field must be filled.
    pub required: bool,
}

/// The record fields chosen from an enumeration: (CSV column, enumeration prefix).
pub const SELECTS: &[(&str, &str)] = &[
    ("seizing_agency", "AGENCY_KIND"),
    ("seizure_kind", "SEIZURE_KIND"),
    ("criminal_context", "CRIMINAL_CONTEXT"),
    ("category", "WEAPON_CATEGORY"),
    ("marking_condition", "MARKING_CONDITION"),
    ("transport_mode", "TRANSPORT_MODE"),
    ("concealment_method", "CONCEALMENT_METHOD"),
    ("weapon_status", "WEAPON_STATUS"),
    ("proceedings_status", "PROCEEDINGS_STATUS"),
    ("disposition", "DISPOSITION"),
    ("ammunition_type", "AMMUNITION_TYPE"),
    ("person_kind", "PERSON_KIND"),
    ("person_role", "PERSON_ROLE"),
    ("person_sex", "PERSON_SEX"),
    ("person_age_band", "AGE_BAND"),
    ("loss_kind", "LOSS_KIND"),
    ("loss_source", "LOSS_SOURCE"),
];

/// The record fields that must be filled.
pub const REQUIRED: &[&str] = &[
    "national_ref",
    "date",
    "country",
    "seizing_agency",
    "seizure_kind",
];

/// The record form's fields in order, filled from `values` with `problems` placed by field.
pub fn record_fields(
    lang: Lang,
    values: &HashMap<String, String>,
    problems: &[FieldProblem],
) -> (Vec<FieldView>, Vec<String>) {
    let mut general = Vec::new();
    let mut by_field: HashMap<String, String> = HashMap::new();
    for p in problems {
        let f = form_field(&p.field);
        let reason = crate::i18n::node_text(lang, &p.reason);
        if f.is_empty() {
            general.push(format!("{}: {reason}", p.field));
        } else {
            by_field
                .entry(f)
                .and_modify(|m| {
                    m.push_str("; ");
                    m.push_str(&reason);
                })
                .or_insert(reason);
        }
    }
    let fields = CSV_COLUMNS
        .iter()
        .map(|&name| {
            let value = values.get(name).cloned().unwrap_or_default();
            let options = SELECTS
                .iter()
                .find(|(f, _)| *f == name)
                .map(|(_, prefix)| options(lang, prefix, &value, Some("common.choose")))
                .unwrap_or_default();
            FieldView {
                name,
                label: lang.t(&format!("field.{name}")),
                error: by_field.remove(name),
                value,
                options,
                required: REQUIRED.contains(&name),
            }
        })
        .collect();
    general.extend(by_field.into_iter().map(|(f, m)| format!("{f}: {m}")));
    (fields, general)
}

/// The submitted form as a record, with every problem of reading it (an unknown choice, a
/// number that is not one). The record leaves those fields empty, so the node can still check
/// the rest and every mistake is reported in one round.
pub fn record_from_form(
    values: &HashMap<String, String>,
) -> (pb::SeizureRecord, Vec<FieldProblem>) {
    let mut cols: files::Columns = [""; files::N_COLUMNS];
    for (slot, name) in cols.iter_mut().zip(CSV_COLUMNS) {
        *slot = values.get(*name).map_or("", |v| v.trim());
    }
    crate::jobs::record_from_columns(0, cols)
}

/// A record's values keyed by form field.
pub fn values_of(r: &pb::SeizureRecord) -> HashMap<String, String> {
    CSV_COLUMNS
        .iter()
        .map(|c| (*c).to_owned())
        .zip(files::columns_of(r))
        .collect()
}

/// The handling codes attached to a disclosure, as a person reads them.
pub fn handling_label(lang: Lang, h: &pb::Handling) -> String {
    [
        (h.purpose_bound, "handling.purpose_bound"),
        (h.no_court_use_without_consent, "handling.no_court_use"),
        (h.no_onward_without_consent, "handling.no_onward"),
        (
            h.allow_onward && !h.no_onward_without_consent,
            "handling.onward_allowed",
        ),
    ]
    .iter()
    .filter(|(set, _)| *set)
    .map(|(_, key)| lang.t(key))
    .collect::<Vec<_>>()
    .join(", ")
}

/// A record's values as a person reads them: enumerations by their label, dates written out.
pub fn display_values(lang: Lang, r: &pb::SeizureRecord) -> HashMap<String, String> {
    let mut values = values_of(r);
    // A policy may disclose only a band of the quantity ("101-1000") instead of the number.
    if let Some(band) = r
        .ammunition
        .first()
        .map(|a| a.quantity_band.as_str())
        .filter(|b| !b.is_empty())
    {
        values.insert("ammunition_quantity".to_owned(), band.to_owned());
    }
    for (k, v) in &mut values {
        if let Some((_, prefix)) = SELECTS.iter().find(|(f, _)| f == k)
            && !v.is_empty()
        {
            *v = lang.enum_label(&format!("{prefix}_{}", v.to_ascii_uppercase()));
        } else if k == "date" || k == "loss_date" {
            *v = lang.date(v);
        }
    }
    values
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn node_paths_map_to_form_fields() {
        assert_eq!(form_field("firearms[0].serial_number"), "serial_number");
        assert_eq!(form_field("event.place.country"), "country");
        assert_eq!(form_field("event.date"), "date");
        assert_eq!(form_field("ammunition[0].calibre"), "ammunition_calibre");
        assert_eq!(form_field("trafficking.route[2].country"), "route");
        assert_eq!(form_field("national_ref"), "national_ref");
        assert_eq!(form_field("persons[0].name"), "person_name");
        assert_eq!(form_field("persons[0].age_band"), "person_age_band");
        assert_eq!(form_field("persons[1].unknown"), "");
        assert_eq!(
            form_field("shipment.identifiers[1].value"),
            "shipment_identifiers"
        );
        assert_eq!(form_field("shipment.vendor_handle"), "vendor_handle");
        assert_eq!(form_field("loss.place.country"), "loss_country");
        assert_eq!(form_field("loss.date"), "loss_date");
        assert_eq!(form_field("loss"), "loss_country");
        assert_eq!(form_field("firearms[0].status"), "weapon_status");
        assert_eq!(
            form_field("ammunition[0].ammunition_type"),
            "ammunition_type"
        );
        assert_eq!(
            form_field("ammunition[0].headstamp"),
            "ammunition_headstamp"
        );
        assert_eq!(form_field("parts[0].serial_number"), "part_serial_number");
        assert_eq!(form_field("parts[0].markings[2].text"), "part_markings");
        assert_eq!(form_field("proceedings_status"), "proceedings_status");
        assert_eq!(
            form_field("ballistic_references[1]"),
            "ballistic_references"
        );
    }

    #[test]
    fn every_bad_cell_is_reported_at_once() {
        let values: HashMap<String, String> = [
            ("national_ref", "SYN-F-1"),
            ("date", "2025-01-01"),
            ("country", "FRA"),
            ("seizing_agency", "police"),
            ("seizure_kind", "seized"),
            ("serial_number", "F-1"),
            ("year_of_manufacture", "nineteen"),
            ("ammunition_quantity", "-3"),
            ("transport_mode", "teleport"),
            ("category", "laser"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let (record, problems) = record_from_form(&values);
        let mut fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            [
                "ammunition_quantity",
                "category",
                "transport_mode",
                "year_of_manufacture"
            ]
        );
        assert_eq!(record.national_ref, "SYN-F-1", "the rest is still read");
        let (fields, general) = record_fields(Lang::En, &values, &problems);
        assert!(general.is_empty(), "{general:?}");
        let q = fields
            .iter()
            .find(|f| f.name == "ammunition_quantity")
            .unwrap();
        assert_eq!(q.error.as_deref(), Some("'-3' is not a whole number"));
    }

    #[test]
    fn node_problems_add_to_read_problems_without_repeating_a_field() {
        let p = |field: &str, reason: &str| FieldProblem {
            field: field.into(),
            line: 2,
            reason: reason.into(),
        };
        let mut read = vec![p("seizing_agency", "unknown value 'x'")];
        crate::jobs::merge_problems(
            &mut read,
            vec![
                p("event.seizing_agency", "is required"),
                p("event.date", "must be a date as YYYY-MM-DD"),
            ],
        );
        assert_eq!(read.len(), 2, "{read:?}");
        assert_eq!(read[1].field, "event.date");
    }

    #[test]
    fn case_facts_round_trip_through_the_form() {
        let values: HashMap<String, String> = [
            ("national_ref", "SYN-F-2"),
            ("date", "2025-01-01"),
            ("country", "FRA"),
            ("seizing_agency", "police"),
            ("seizure_kind", "seized"),
            ("serial_number", "F-2"),
            ("weapon_status", "reactivated"),
            ("proceedings_status", "investigation"),
            ("disposition", "returned"),
            ("ballistic_references", "IBIS-FRA-7;IBIS-FRA-8"),
            ("ammunition_calibre", "9x19mm"),
            ("ammunition_quantity", "50"),
            ("ammunition_type", "tracer"),
            ("ammunition_headstamp", "SYN 9MM 21"),
            ("ammunition_lot", "LOT-7"),
            ("ammunition_year", "2021"),
            ("part_kind", "barrel"),
            ("part_serial_number", "BR-1"),
            ("part_manufacturer", "Synthetic Arms"),
            ("part_quantity", "1"),
            ("part_markings", "SYN;P-1"),
            ("person_kind", "natural"),
            ("person_role", "courier"),
            ("person_name", "Synthetic Person"),
            ("person_nationality", "NLD"),
            ("person_sex", "female"),
            ("person_age_band", "18_to_24"),
            ("shipment_identifiers", "container:SYNU1234567;flight:SY12"),
            ("consignor", "Synthetic Export Ltd"),
            ("online_platform", "synthetic-market.example"),
            ("vendor_handle", "synthetic_vendor"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let (record, problems) = record_from_form(&values);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            record.firearms[0].status,
            pb::WeaponStatus::Reactivated as i32
        );
        assert_eq!(record.ballistic_references.len(), 2);
        let back = values_of(&record);
        for (k, v) in &values {
            assert_eq!(back.get(k), Some(v), "{k}");
        }
        let shown = display_values(Lang::Fr, &record);
        assert_eq!(
            shown["disposition"],
            Lang::Fr.enum_label("DISPOSITION_RETURNED")
        );
        assert!(!shown["weapon_status"].is_empty());
    }

    #[test]
    fn enum_values_use_short_names_in_protocol_order() {
        let modes = enum_values("TRANSPORT_MODE");
        assert_eq!(modes[0], ("road".into(), "TRANSPORT_MODE_ROAD".into()));
        assert_eq!(modes.len(), 8);
        assert_eq!(
            enum_number("TRANSPORT_MODE", "rail"),
            pb::TransportMode::Rail as i32
        );
        assert_eq!(enum_number("TRANSPORT_MODE", "teleport"), 0);
        assert_eq!(
            enum_short("TRANSPORT_MODE", pb::TransportMode::Rail as i32),
            "rail"
        );
        assert_eq!(enum_short("TRANSPORT_MODE", 0), "");
        assert_eq!(enum_short("TRANSPORT_MODE", 99), "");
        assert_eq!(enum_short("NOPE", 1), "");
        assert_eq!(
            enum_number("PURPOSE", "tracing"),
            pb::Purpose::Tracing as i32
        );
    }

    #[test]
    fn problems_land_next_to_their_fields() {
        let problems = vec![
            FieldProblem {
                field: "event.date".into(),
                line: 0,
                reason: "must be a date".into(),
            },
            FieldProblem {
                field: "persons".into(),
                line: 0,
                reason: "too many".into(),
            },
        ];
        let (fields, general) = record_fields(Lang::En, &HashMap::new(), &problems);
        let date = fields.iter().find(|f| f.name == "date").unwrap();
        assert_eq!(date.error.as_deref(), Some("must be a date"));
        assert_eq!(general, vec!["persons: too many".to_owned()]);
    }
}
