//! English and French: the message catalogue, the language a request is served in, and dates
//! and numbers formatted per language. Every label, message and error the console shows goes
//! through [`Lang::t`]; a test checks that every key used by a template or by the code has both
//! translations, so a missing translation fails the build's tests rather than a user's screen.

use serde::{Deserialize, Serialize};

mod catalogue;
mod countries;
mod node_text;

pub use catalogue::CATALOGUE;
pub use countries::COUNTRIES;
pub use node_text::{node_text, refusal};

/// A language of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// English.
    #[default]
    En,
    /// French.
    Fr,
}

const MONTHS_EN: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const MONTHS_FR: [&str; 12] = [
    "janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.",
    "déc.",
];

impl Lang {
    /// Both languages, in the order the switch shows them.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Fr];

    /// The language code (`en`, `fr`), as used in `lang` attributes and URLs.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    /// The language with this code.
    pub fn parse(code: &str) -> Option<Lang> {
        match code.trim().to_ascii_lowercase().as_str() {
            "en" => Some(Lang::En),
            "fr" => Some(Lang::Fr),
            _ => None,
        }
    }

    /// The first supported language of an `Accept-Language` header.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        header
            .split(',')
            .filter_map(|part| part.split(';').next())
            .filter_map(|tag| Lang::parse(tag.trim().get(..2).unwrap_or("")))
            .next()
    }

    /// The translation of `key`, if the catalogue has it.
    pub fn lookup(self, key: &str) -> Option<&'static str> {
        let i = CATALOGUE.binary_search_by(|(k, _, _)| (*k).cmp(key)).ok()?;
        let (_, en, fr) = CATALOGUE[i];
        Some(match self {
            Lang::En => en,
            Lang::Fr => fr,
        })
    }

    /// The translation of `key`. An unknown key shows as `?` (and fails the catalogue test).
    pub fn t(self, key: &str) -> &'static str {
        self.lookup(key).unwrap_or_else(|| {
            tracing::warn!(key, "missing translation");
            "?"
        })
    }

    /// The translation of `key`, or `fallback` as given when the catalogue has no such key
    /// (for keys built from data, such as an audit kind the node may add later).
    pub fn t_or(self, key: &str, fallback: &str) -> String {
        self.lookup(key).unwrap_or(fallback).to_owned()
    }

    /// The name of a country by its ISO 3166-1 alpha-3 code, if known.
    pub fn country_name(self, code: &str) -> Option<&'static str> {
        let i = COUNTRIES
            .binary_search_by(|(c, _, _)| (*c).cmp(code))
            .ok()?;
        let (_, en, fr) = COUNTRIES[i];
        Some(match self {
            Lang::En => en,
            Lang::Fr => fr,
        })
    }

    /// Every country as (code, name), in the alphabetical order of the names in this language
    /// (accents ignored, so "Égypte" sorts with the E).
    pub fn countries_by_name(self) -> Vec<(&'static str, &'static str)> {
        let mut all: Vec<(&str, &str)> = COUNTRIES
            .iter()
            .map(|(c, en, fr)| {
                (
                    *c,
                    match self {
                        Lang::En => *en,
                        Lang::Fr => *fr,
                    },
                )
            })
            .collect();
        all.sort_by_cached_key(|(_, name)| fold_accents(name));
        all
    }

    /// The label of an audit entry's kind (`request_received` → "Request received").
    pub fn audit_kind(self, kind: &str) -> String {
        self.t_or(&format!("audit.kind.{kind}"), &kind.replace('_', " "))
    }

    /// The label of an access-log action (`view record` → "View record" / "Consultation
    /// d'une fiche").
    pub fn access_action(self, action: &str) -> String {
        self.t_or(&format!("access.{}", action.replace(' ', "_")), action)
    }

    /// The label of a field path of a sharing policy (`event.date` → "Date of seizure").
    pub fn policy_field(self, path: &str) -> String {
        self.t_or(&format!("policy_field.{path}"), path)
    }

    /// The label of a protobuf enumeration value by its full name (e.g.
    /// `TRANSPORT_MODE_ROAD`); empty for an unspecified value.
    pub fn enum_label(self, full_name: &str) -> String {
        if full_name.is_empty() || full_name.ends_with("_UNSPECIFIED") {
            return String::new();
        }
        self.lookup(&format!("enum.{full_name}"))
            .unwrap_or(full_name)
            .to_owned()
    }

    /// A whole number with the language's digit grouping (`12,345` / `12 345`).
    pub fn number(self, n: u64) -> String {
        let digits = n.to_string();
        let sep = match self {
            Lang::En => ",",
            Lang::Fr => "\u{202f}",
        };
        let mut out = String::new();
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push_str(sep);
            }
            out.push(ch);
        }
        out
    }

    /// A calendar date given as `YYYY-MM-DD` (or `YYYY-MM`), written out (`14 Mar 2025` /
    /// `14 mars 2025`); anything else is shown as given.
    pub fn date(self, iso: &str) -> String {
        let parts: Vec<&str> = iso.split('-').collect();
        let month = |m: &str| {
            m.parse::<usize>()
                .ok()
                .filter(|m| (1..=12).contains(m))
                .map(|m| match self {
                    Lang::En => MONTHS_EN[m - 1],
                    Lang::Fr => MONTHS_FR[m - 1],
                })
        };
        match parts.as_slice() {
            [y, m, d] if y.len() == 4 => match (month(m), d.parse::<u32>()) {
                (Some(mon), Ok(day)) => format!("{day} {mon} {y}"),
                _ => iso.to_owned(),
            },
            [y, m] if y.len() == 4 => {
                month(m).map_or_else(|| iso.to_owned(), |mon| format!("{mon} {y}"))
            }
            _ => iso.to_owned(),
        }
    }

    /// A moment given in Unix seconds, in UTC (`14 Mar 2025 09:05 UTC`).
    pub fn datetime(self, unix_secs: i64) -> String {
        match time::OffsetDateTime::from_unix_timestamp(unix_secs) {
            Ok(t) => format!(
                "{} {:02}:{:02} UTC",
                self.date(&format!(
                    "{:04}-{:02}-{:02}",
                    t.year(),
                    u8::from(t.month()),
                    t.day()
                )),
                t.hour(),
                t.minute()
            ),
            Err(_) => String::new(),
        }
    }
}

/// Lower case without the accents of Latin letters (for sorting names).
fn fold_accents(s: &str) -> String {
    s.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
            'ç' => 'c',
            'è' | 'é' | 'ê' | 'ë' => 'e',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'ñ' => 'n',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' => 'o',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            'ý' | 'ÿ' => 'y',
            other => other,
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn every_country_code_has_a_name_in_both_languages() {
        for w in COUNTRIES.windows(2) {
            assert!(w[0].0 < w[1].0, "countries out of order at {}", w[1].0);
        }
        let codes: Vec<&str> = COUNTRIES.iter().map(|(c, _, _)| *c).collect();
        assert_eq!(codes, tracenet_ids::country::ALL);
        assert_eq!(Lang::Fr.country_name("DEU"), Some("Allemagne"));
        assert_eq!(Lang::En.country_name("DEU"), Some("Germany"));
        let fr = Lang::Fr.countries_by_name();
        let egypt = fr.iter().position(|(c, _)| *c == "EGY").unwrap();
        let spain = fr.iter().position(|(c, _)| *c == "ESP").unwrap();
        assert!(egypt < spain, "Égypte before Espagne");
    }

    #[test]
    fn catalogue_is_sorted_unique_and_complete() {
        for w in CATALOGUE.windows(2) {
            assert!(w[0].0 < w[1].0, "catalogue out of order at {}", w[1].0);
        }
        for (k, en, fr) in CATALOGUE {
            assert!(!en.trim().is_empty(), "{k}: no English");
            assert!(!fr.trim().is_empty(), "{k}: no French");
        }
    }

    /// Every catalogue-looking string literal (`"ns.key"` with a known namespace) in the
    /// templates and the code exists in the catalogue, and so does every record form label.
    #[test]
    fn every_key_used_is_translated() {
        const NAMESPACES: &[&str] = &[
            "admin",
            "analysis",
            "assistance",
            "audit",
            "common",
            "contacts",
            "dashboard",
            "directory",
            "error",
            "field",
            "footer",
            "handling",
            "import",
            "inquiry",
            "login",
            "lookup",
            "nav",
            "policy",
            "records",
            "role",
            "search",
            "stats",
            "traces",
        ];
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in ["templates", "src", "src/web", "src/api", "src/auth"] {
            for e in std::fs::read_dir(root.join(dir)).unwrap() {
                let p = e.unwrap().path();
                if p.is_file() {
                    files.push(p);
                }
            }
        }
        let known = |k: &str| CATALOGUE.binary_search_by(|(c, _, _)| (*c).cmp(k)).is_ok();
        let mut missing = Vec::new();
        let mut used = 0;
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for piece in text.split('"').skip(1).step_by(2) {
                let Some((ns, rest)) = piece.split_once('.') else {
                    continue;
                };
                let plain = rest
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'.');
                if !NAMESPACES.contains(&ns) || !plain || rest.is_empty() || rest == "html" {
                    continue;
                }
                used += 1;
                if !known(piece) {
                    missing.push(format!("{}: {piece}", f.display()));
                }
            }
        }
        for column in tracenet_proto::files::CSV_COLUMNS {
            if !known(&format!("field.{column}")) {
                missing.push(format!("record form label field.{column}"));
            }
        }
        assert!(used > 150, "only {used} keys found: is the scan broken?");
        assert!(
            missing.is_empty(),
            "untranslated keys:\n{}",
            missing.join("\n")
        );
    }

    #[test]
    fn numbers_and_dates_follow_the_language() {
        assert_eq!(Lang::En.number(1_234_567), "1,234,567");
        assert_eq!(Lang::Fr.number(1_234_567), "1\u{202f}234\u{202f}567");
        assert_eq!(Lang::En.number(999), "999");
        assert_eq!(Lang::En.date("2025-03-14"), "14 Mar 2025");
        assert_eq!(Lang::Fr.date("2025-08-01"), "1 août 2025");
        assert_eq!(Lang::Fr.date("2025-02"), "févr. 2025");
        assert_eq!(Lang::En.date("garbage"), "garbage");
        assert_eq!(Lang::En.datetime(0), "1 Jan 1970 00:00 UTC");
    }

    #[test]
    fn accept_language_picks_the_first_supported() {
        assert_eq!(
            Lang::from_accept_language("de-DE,fr;q=0.8,en;q=0.5"),
            Some(Lang::Fr)
        );
        assert_eq!(Lang::from_accept_language("en-GB"), Some(Lang::En));
        assert_eq!(Lang::from_accept_language("de"), None);
    }

    #[test]
    fn enum_labels_are_translated() {
        assert_eq!(Lang::En.enum_label("TRANSPORT_MODE_ROAD"), "Road");
        assert_eq!(Lang::Fr.enum_label("TRANSPORT_MODE_ROAD"), "Route");
        assert_eq!(Lang::Fr.enum_label("TRANSPORT_MODE_UNSPECIFIED"), "");
    }
}
