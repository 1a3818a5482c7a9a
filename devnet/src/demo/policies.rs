//! The demo federation's sharing policies: synthetic, written to show different States sharing
//! different fields with different partners for different purposes. Not any State's law.
//!
//! Onward transmission is denied unless a rule grants it (`allow_onward`, optionally limited to
//! `onward_countries`); `retention_days` is how long a recipient keeps a copy before purging it.

/// FRA-POL: border agencies get routes and methods, at different levels of detail; DEU may pass
/// what it receives on to ITA (explicitly granted) and keeps it a year.
pub const FRA: &str = r#"
owner_country = "FRA"
version = 1
legal_basis = "Synthetic Code of Criminal Procedure art. 1 (demo)"

[[rules]]
id = "deu-border-risk"
purposes = ["PURPOSE_BORDER_RISK_ANALYSIS"]
data_classes = ["DATA_CLASS_SEIZURE"]
audience = { countries = ["DEU"] }
handling = { purpose_bound = true, allow_onward = true, onward_countries = ["ITA"], retention_days = 365, reliability = "SOURCE_RELIABILITY_B", accuracy = "INFORMATION_ACCURACY_2" }
fields = [
  { field = "event.date", treatment = "FIELD_TREATMENT_GENERALISE", generalisation = "GENERALISATION_DATE_TO_MONTH" },
  { field = "event.place", treatment = "FIELD_TREATMENT_GENERALISE", generalisation = "GENERALISATION_PLACE_TO_REGION" },
  { field = "trafficking.route", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "trafficking.transport_mode", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "trafficking.concealment_method", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "ammunition.quantity", treatment = "FIELD_TREATMENT_GENERALISE", generalisation = "GENERALISATION_QUANTITY_TO_BAND" },
  { field = "case_reference", treatment = "FIELD_TREATMENT_REDACT" },
]

[[rules]]
id = "ita-border-risk"
purposes = ["PURPOSE_BORDER_RISK_ANALYSIS"]
data_classes = ["DATA_CLASS_SEIZURE"]
audience = { countries = ["ITA"] }
handling = { purpose_bound = true, no_court_use_without_consent = true, no_onward_without_consent = true }
fields = [
  { field = "event.date", treatment = "FIELD_TREATMENT_GENERALISE", generalisation = "GENERALISATION_DATE_TO_YEAR" },
  { field = "trafficking.route", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "trafficking.transport_mode", treatment = "FIELD_TREATMENT_ALLOW" },
]

[[rules]]
id = "partners-trace-results"
purposes = ["PURPOSE_TRACING"]
data_classes = ["DATA_CLASS_TRACE_RESULT"]
audience = { countries = ["DEU", "ITA"] }
handling = { purpose_bound = true, no_onward_without_consent = true }
"#;

/// DEU-CUS: shares weapon identification (with the weapon's status, the disposition of the
/// seized items and ballistic references, so FRA's ballistic lookups find DEU's cases) with FRA
/// for tracing (kept two years, never passed on), its reports of lost and stolen weapons (what
/// was lost, from whom, when, in which country), and trace results.
pub const DEU: &str = r#"
owner_country = "DEU"
version = 1
legal_basis = "Synthetic Customs Act s. 2 (demo)"

[[rules]]
id = "fra-tracing"
purposes = ["PURPOSE_TRACING", "PURPOSE_CRIMINAL_INVESTIGATION"]
data_classes = ["DATA_CLASS_SEIZURE"]
audience = { countries = ["FRA"] }
handling = { purpose_bound = true, no_onward_without_consent = true, retention_days = 730, reliability = "SOURCE_RELIABILITY_A", accuracy = "INFORMATION_ACCURACY_1" }
fields = [
  { field = "firearms.serial_number", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "firearms.manufacturer", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "firearms.model", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "firearms.category", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "firearms.status", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "event.date", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "disposition", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "ballistic_references", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "ammunition.headstamp", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "ammunition.lot", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "shipment.identifiers", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "shipment.online_platform", treatment = "FIELD_TREATMENT_ALLOW" },
]

[[rules]]
id = "fra-loss-reports"
purposes = ["PURPOSE_TRACING", "PURPOSE_CRIMINAL_INVESTIGATION"]
data_classes = ["DATA_CLASS_LOSS_REPORT"]
audience = { countries = ["FRA"] }
handling = { purpose_bound = true, no_onward_without_consent = true, retention_days = 730 }
fields = [
  { field = "firearms.serial_number", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "firearms.manufacturer", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "loss.kind", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "loss.source", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "loss.date", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "loss.place", treatment = "FIELD_TREATMENT_GENERALISE", generalisation = "GENERALISATION_PLACE_TO_COUNTRY" },
]

[[rules]]
id = "trace-results"
purposes = ["PURPOSE_TRACING"]
data_classes = ["DATA_CLASS_TRACE_RESULT"]
audience = { countries = ["FRA", "ITA"] }
handling = { purpose_bound = true, no_court_use_without_consent = true, no_onward_without_consent = true }

[[rules]]
id = "centreg-statistics"
purposes = ["PURPOSE_STATISTICS"]
data_classes = ["DATA_CLASS_STATISTICS_AGGREGATE"]
audience = { organisations = ["CENTREG"] }
statistics_min_cell = 3
"#;

/// ITA-POL: shares trace results with FRA, and answers FRA's serial lookups "hit only" (that it
/// holds the weapon and whom to ask, nothing of the record).
pub const ITA: &str = r#"
owner_country = "ITA"
version = 1
legal_basis = "Synthetic Police Act art. 9 (demo)"

[[rules]]
id = "fra-hit-only"
purposes = ["PURPOSE_TRACING", "PURPOSE_CRIMINAL_INVESTIGATION"]
data_classes = ["DATA_CLASS_SEIZURE"]
audience = { countries = ["FRA"] }
hit_only = true
handling = { purpose_bound = true, no_onward_without_consent = true }
fields = [
  { field = "firearms.serial_number", treatment = "FIELD_TREATMENT_ALLOW" },
]

[[rules]]
id = "fra-trace-results"
purposes = ["PURPOSE_TRACING"]
data_classes = ["DATA_CLASS_TRACE_RESULT"]
audience = { countries = ["FRA"] }
handling = { purpose_bound = true, no_onward_without_consent = true }

[[rules]]
id = "centreg-statistics"
purposes = ["PURPOSE_STATISTICS"]
data_classes = ["DATA_CLASS_STATISTICS_AGGREGATE"]
audience = { organisations = ["CENTREG"] }
statistics_min_cell = 3
"#;

/// AUT-POL: gives its regional organisation's hub statistical aggregates (for secure
/// aggregation: the hub learns the region's total only), and nothing else.
pub const AUT: &str = r#"
owner_country = "AUT"
version = 1
legal_basis = "Synthetic Statistics Act s. 4 (demo)"

[[rules]]
id = "centreg-statistics"
purposes = ["PURPOSE_STATISTICS"]
data_classes = ["DATA_CLASS_STATISTICS_AGGREGATE"]
audience = { organisations = ["CENTREG"] }
statistics_min_cell = 3
"#;
