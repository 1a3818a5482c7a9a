//! ISO 3166-1 alpha-3 country codes. Countries are named by these codes everywhere in tracenet
//! (records, node ids, routes, policies); a [`CountryCode`] can only hold an assigned code, so
//! holding one proves the text it came from was valid.

use std::fmt;
use std::str::FromStr;

/// A valid ISO 3166-1 alpha-3 code, uppercase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode([u8; 3]);

/// Why a text is not a country code. Not retryable: the input is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidCountry(pub String);

impl fmt::Display for InvalidCountry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}' is not an ISO 3166-1 alpha-3 country code", self.0)
    }
}

impl std::error::Error for InvalidCountry {}

impl CountryCode {
    /// Parses a code, ignoring surrounding white space and case.
    pub fn parse(s: &str) -> Result<CountryCode, InvalidCountry> {
        let t = s.trim();
        let bad = || InvalidCountry(t.chars().take(16).collect());
        let b = t.as_bytes();
        if b.len() != 3 || !b.iter().all(u8::is_ascii_alphabetic) {
            return Err(bad());
        }
        let up = [
            b[0].to_ascii_uppercase(),
            b[1].to_ascii_uppercase(),
            b[2].to_ascii_uppercase(),
        ];
        let text = std::str::from_utf8(&up).map_err(|_| bad())?;
        ALL.binary_search(&text).map_err(|_| bad())?;
        Ok(CountryCode(up))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("???")
    }

    /// The three ASCII bytes (used in storage keys).
    pub fn as_bytes(&self) -> [u8; 3] {
        self.0
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CountryCode {
    type Err = InvalidCountry;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CountryCode::parse(s)
    }
}

impl<'de> serde::Deserialize<'de> for CountryCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        CountryCode::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for CountryCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Every assigned ISO 3166-1 alpha-3 code, sorted (binary-searched by [`CountryCode::parse`]).
pub const ALL: &[&str] = &[
    "ABW", "AFG", "AGO", "AIA", "ALA", "ALB", "AND", "ARE", "ARG", "ARM", "ASM", "ATA", "ATF",
    "ATG", "AUS", "AUT", "AZE", "BDI", "BEL", "BEN", "BES", "BFA", "BGD", "BGR", "BHR", "BHS",
    "BIH", "BLM", "BLR", "BLZ", "BMU", "BOL", "BRA", "BRB", "BRN", "BTN", "BVT", "BWA", "CAF",
    "CAN", "CCK", "CHE", "CHL", "CHN", "CIV", "CMR", "COD", "COG", "COK", "COL", "COM", "CPV",
    "CRI", "CUB", "CUW", "CXR", "CYM", "CYP", "CZE", "DEU", "DJI", "DMA", "DNK", "DOM", "DZA",
    "ECU", "EGY", "ERI", "ESH", "ESP", "EST", "ETH", "FIN", "FJI", "FLK", "FRA", "FRO", "FSM",
    "GAB", "GBR", "GEO", "GGY", "GHA", "GIB", "GIN", "GLP", "GMB", "GNB", "GNQ", "GRC", "GRD",
    "GRL", "GTM", "GUF", "GUM", "GUY", "HKG", "HMD", "HND", "HRV", "HTI", "HUN", "IDN", "IMN",
    "IND", "IOT", "IRL", "IRN", "IRQ", "ISL", "ISR", "ITA", "JAM", "JEY", "JOR", "JPN", "KAZ",
    "KEN", "KGZ", "KHM", "KIR", "KNA", "KOR", "KWT", "LAO", "LBN", "LBR", "LBY", "LCA", "LIE",
    "LKA", "LSO", "LTU", "LUX", "LVA", "MAC", "MAF", "MAR", "MCO", "MDA", "MDG", "MDV", "MEX",
    "MHL", "MKD", "MLI", "MLT", "MMR", "MNE", "MNG", "MNP", "MOZ", "MRT", "MSR", "MTQ", "MUS",
    "MWI", "MYS", "MYT", "NAM", "NCL", "NER", "NFK", "NGA", "NIC", "NIU", "NLD", "NOR", "NPL",
    "NRU", "NZL", "OMN", "PAK", "PAN", "PCN", "PER", "PHL", "PLW", "PNG", "POL", "PRI", "PRK",
    "PRT", "PRY", "PSE", "PYF", "QAT", "REU", "ROU", "RUS", "RWA", "SAU", "SDN", "SEN", "SGP",
    "SGS", "SHN", "SJM", "SLB", "SLE", "SLV", "SMR", "SOM", "SPM", "SRB", "SSD", "STP", "SUR",
    "SVK", "SVN", "SWE", "SWZ", "SXM", "SYC", "SYR", "TCA", "TCD", "TGO", "THA", "TJK", "TKL",
    "TKM", "TLS", "TON", "TTO", "TUN", "TUR", "TUV", "TWN", "TZA", "UGA", "UKR", "UMI", "URY",
    "USA", "UZB", "VAT", "VCT", "VEN", "VGB", "VIR", "VNM", "VUT", "WLF", "WSM", "YEM", "ZAF",
    "ZMB", "ZWE",
];

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn valid_codes_parse_in_any_case() {
        assert_eq!(CountryCode::parse("FRA").unwrap().as_str(), "FRA");
        assert_eq!(CountryCode::parse("fra").unwrap().as_str(), "FRA");
        assert_eq!(CountryCode::parse(" deu ").unwrap().to_string(), "DEU");
        assert_eq!("ken".parse::<CountryCode>().unwrap().as_bytes(), *b"KEN");
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in ["FR", "FRAN", "XXX", "", "ZZZ", "F1A", "ÉTA", "UK"] {
            assert!(CountryCode::parse(bad).is_err(), "{bad} accepted");
        }
        let e = CountryCode::parse("XXX").unwrap_err();
        assert!(e.to_string().contains("XXX"));
    }

    #[test]
    fn the_list_is_sorted_complete_and_well_formed() {
        assert_eq!(ALL.len(), 249);
        assert!(ALL.windows(2).all(|w| w[0] < w[1]));
        assert!(
            ALL.iter()
                .all(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()))
        );
        for c in ALL {
            assert_eq!(CountryCode::parse(c).unwrap().as_str(), *c);
        }
    }
}
