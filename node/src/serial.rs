//! Serial numbers as officers record them, reduced to a comparable form, and matched the way a
//! tracing officer would: ignoring case and separators, allowing unreadable characters, and
//! (when asked) treating visually confusable characters as equal.
//!
//! Real registries hold the same weapon as `AB-1234`, `ab 1234`, `A81234` (8 misread for B) or
//! `AB12**` (partly obliterated). [`normalise`] maps all but the misreading to `AB1234` / `AB12**`;
//! [`matches`] in [`MatchMode::Confusable`] and [`confusable_key`] handle the misreading.
//! Everything here is pure and allocation-light: it runs for every record at ingest.

/// A serial number reduced to `A`-`Z`, `0`-`9` and `*` (one unreadable character).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NormalisedSerial(String);

/// Longest input accepted as a serial number; anything longer is not a marking.
pub const MAX_INPUT: usize = 256;

impl NormalisedSerial {
    /// The normalised text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether any position is unreadable.
    pub fn has_wildcards(&self) -> bool {
        self.0.contains('*')
    }

    /// The characters before the first wildcard: the key prefix an index range scan can use.
    pub fn literal_prefix(&self) -> &str {
        self.0.split('*').next().unwrap_or("")
    }

    /// Number of characters.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty (never, for values from [`normalise`]).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The comparable character for one input character, or `None` to drop it.
fn fold(c: char) -> Option<char> {
    Some(match c {
        'A'..='Z' | '0'..='9' => c,
        'a'..='z' => c.to_ascii_uppercase(),
        // Marks officers use for an unreadable character.
        '*' | '?' | '#' | '•' | '…' => '*',
        // Full-width forms typed on East Asian keyboards.
        '\u{FF10}'..='\u{FF19}' | '\u{FF21}'..='\u{FF3A}' | '\u{FF41}'..='\u{FF5A}' => {
            let ascii = char::from_u32(c as u32 - 0xFEE0)?;
            return fold(ascii);
        }
        // Cyrillic and Greek capitals and small letters that look like Latin ones.
        'А' | 'а' | 'Α' | 'α' => 'A',
        'В' | 'в' | 'Β' | 'β' => 'B',
        'С' | 'с' | 'ς' => 'C',
        'Е' | 'е' | 'Ε' | 'ε' => 'E',
        'Н' | 'н' | 'Η' | 'η' => 'H',
        'І' | 'і' | 'Ι' | 'ι' => 'I',
        'Ј' | 'ј' => 'J',
        'К' | 'к' | 'Κ' | 'κ' => 'K',
        'М' | 'м' | 'Μ' | 'μ' => 'M',
        'Ν' | 'ν' => 'N',
        'О' | 'о' | 'Ο' | 'ο' => 'O',
        'Р' | 'р' | 'Ρ' | 'ρ' => 'P',
        'Ѕ' | 'ѕ' => 'S',
        'Т' | 'т' | 'Τ' | 'τ' => 'T',
        'Х' | 'х' | 'Χ' | 'χ' => 'X',
        'У' | 'у' | 'Υ' | 'υ' => 'Y',
        'Ζ' | 'ζ' => 'Z',
        // Latin letters with diacritics typed for plain ones.
        'À'..='Å' | 'à'..='å' | 'Ā' | 'ā' | 'Ă' | 'ă' | 'Ą' | 'ą' => 'A',
        'Ç' | 'ç' | 'Ć' | 'ć' | 'Č' | 'č' => 'C',
        'Ď' | 'ď' | 'Đ' | 'đ' => 'D',
        'È'..='Ë' | 'è'..='ë' | 'Ē' | 'ē' | 'Ę' | 'ę' | 'Ě' | 'ě' => 'E',
        'Ì'..='Ï' | 'ì'..='ï' | 'Ī' | 'ī' | 'İ' | 'ı' => 'I',
        'Ł' | 'ł' | 'Ĺ' | 'ĺ' | 'Ľ' | 'ľ' => 'L',
        'Ñ' | 'ñ' | 'Ń' | 'ń' | 'Ň' | 'ň' => 'N',
        'Ò'..='Ö' | 'Ø' | 'ò'..='ö' | 'ø' | 'Ō' | 'ō' | 'Ő' | 'ő' => 'O',
        'Ř' | 'ř' | 'Ŕ' | 'ŕ' => 'R',
        'Ś' | 'ś' | 'Š' | 'š' | 'Ş' | 'ş' => 'S',
        'Ť' | 'ť' | 'Ţ' | 'ţ' => 'T',
        'Ù'..='Ü' | 'ù'..='ü' | 'Ū' | 'ū' | 'Ů' | 'ů' | 'Ű' | 'ű' => 'U',
        'Ý' | 'ý' | 'ÿ' => 'Y',
        'Ź' | 'ź' | 'Ż' | 'ż' | 'Ž' | 'ž' => 'Z',
        // Separators, spaces and everything else carry no identity.
        _ => return None,
    })
}

/// Normalises a serial as marked. `None` when nothing comparable is left, or the input is too
/// long to be a marking.
pub fn normalise(marked: &str) -> Option<NormalisedSerial> {
    if marked.len() > MAX_INPUT * 4 || marked.chars().count() > MAX_INPUT {
        return None;
    }
    let mut out = String::with_capacity(marked.len());
    out.extend(marked.chars().filter_map(fold));
    (!out.is_empty()).then_some(NormalisedSerial(out))
}

/// The representative of a character's confusable class: 0/O/D/Q, 1/I/L, 2/Z, 5/S, 6/G, 8/B
/// (the pairs misread on worn or stamped markings); other characters stand for themselves.
fn class(b: u8) -> u8 {
    match b {
        b'0' | b'O' | b'D' | b'Q' => b'0',
        b'1' | b'I' | b'L' => b'1',
        b'2' | b'Z' => b'2',
        b'5' | b'S' => b'5',
        b'6' | b'G' => b'6',
        b'8' | b'B' => b'8',
        other => other,
    }
}

/// Maps every character to its confusable class, so serials that could be misreadings of each
/// other share a key (usable as an index key).
pub fn confusable_key(s: &NormalisedSerial) -> String {
    s.0.bytes().map(|b| class(b) as char).collect()
}

/// How strictly two serials must agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchMode {
    /// Same normalised characters; `*` on either side matches any one character.
    Normalised,
    /// As `Normalised`, and confusable characters count as equal.
    Confusable,
}

/// Whether `candidate` could be the same marking as `query`. A wildcard stands for exactly one
/// character, so lengths must agree.
pub fn matches(query: &NormalisedSerial, candidate: &NormalisedSerial, mode: MatchMode) -> bool {
    match_distance_in(query, candidate, mode).is_some()
}

/// A match with a ranking score: 0 identical, +1 per wildcard position, +2 per confusable
/// substitution; `None` if they cannot be the same marking.
pub fn match_distance(query: &NormalisedSerial, candidate: &NormalisedSerial) -> Option<u32> {
    match_distance_in(query, candidate, MatchMode::Confusable)
}

fn match_distance_in(
    query: &NormalisedSerial,
    candidate: &NormalisedSerial,
    mode: MatchMode,
) -> Option<u32> {
    if query.0.len() != candidate.0.len() {
        return None;
    }
    let mut score = 0;
    for (a, b) in query.0.bytes().zip(candidate.0.bytes()) {
        if a == b'*' || b == b'*' {
            score += 1;
        } else if a != b {
            if mode == MatchMode::Confusable && class(a) == class(b) {
                score += 2;
            } else {
                return None;
            }
        }
    }
    Some(score)
}

/// The characters of `b`'s confusable class (itself alone when it has none).
fn members(b: u8) -> &'static [u8] {
    match class(b) {
        b'0' => b"0ODQ",
        b'1' => b"1IL",
        b'2' => b"2Z",
        b'5' => b"5S",
        b'6' => b"6G",
        b'8' => b"8B",
        _ => &[],
    }
}

/// Most variants [`confusable_variants`] produces: each is one exact index read.
pub const MAX_VARIANTS: usize = 256;

/// The serials that differ from `s` only by confusable characters, fewest substitutions first
/// (misreadings rarely touch more than a character or two), at most `cap` of them and never
/// `s` itself. Wildcard positions are kept as they are. Bounded so a serial of confusable
/// characters only cannot make a lookup read thousands of keys.
pub fn confusable_variants(s: &NormalisedSerial, cap: usize) -> Vec<NormalisedSerial> {
    let bytes = s.0.as_bytes();
    let positions: Vec<usize> = (0..bytes.len())
        .filter(|&i| !members(bytes[i]).is_empty())
        .collect();
    let mut out = Vec::new();
    let mut work = bytes.to_vec();
    for k in 1..=positions.len() {
        if out.len() >= cap {
            break;
        }
        substitute(&positions, k, 0, &mut work, bytes, cap, &mut out);
    }
    out
}

/// Every way of changing exactly `k` more of `positions[from..]` to another member of its
/// class, appended to `out` until it holds `cap`.
fn substitute(
    positions: &[usize],
    k: usize,
    from: usize,
    work: &mut Vec<u8>,
    original: &[u8],
    cap: usize,
    out: &mut Vec<NormalisedSerial>,
) {
    if out.len() >= cap {
        return;
    }
    if k == 0 {
        // Only ASCII letters and digits are ever written, so the bytes stay valid UTF-8.
        out.push(NormalisedSerial(work.iter().map(|&b| b as char).collect()));
        return;
    }
    for (n, &pos) in positions.iter().enumerate().skip(from) {
        let Some(&orig) = original.get(pos) else {
            continue;
        };
        for &m in members(orig) {
            if m == orig {
                continue;
            }
            if let Some(slot) = work.get_mut(pos) {
                *slot = m;
            }
            substitute(positions, k - 1, n + 1, work, original, cap, out);
            if let Some(slot) = work.get_mut(pos) {
                *slot = orig;
            }
            if out.len() >= cap {
                return;
            }
        }
    }
}

/// How close a match is, for ranking: fewer confusable substitutions first, then fewer
/// unreadable positions. `Rank::EXACT` is the same normalised serial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rank {
    /// Positions where the two differ by a confusable character.
    pub confusable: u32,
    /// Positions unreadable on either side.
    pub wildcards: u32,
}

impl Rank {
    /// Identical normalised serials.
    pub const EXACT: Rank = Rank {
        confusable: 0,
        wildcards: 0,
    };
}

/// The rank of `candidate` as a match for `query` in `mode`, `None` when it is not one.
pub fn rank(
    query: &NormalisedSerial,
    candidate: &NormalisedSerial,
    mode: MatchMode,
) -> Option<Rank> {
    if query.0.len() != candidate.0.len() {
        return None;
    }
    let mut r = Rank::EXACT;
    for (a, b) in query.0.bytes().zip(candidate.0.bytes()) {
        if a == b'*' || b == b'*' {
            r.wildcards += 1;
        } else if a != b {
            if mode == MatchMode::Confusable && class(a) == class(b) {
                r.confusable += 1;
            } else {
                return None;
            }
        }
    }
    Some(r)
}

const SUFFIXES: &[&str] = &[
    "GMBH",
    "AG",
    "SA",
    "SPA",
    "INC",
    "LLC",
    "LTD",
    "CO",
    "CORP",
    "CORPORATION",
    "COMPANY",
    "SRO",
    "AS",
    "DOO",
    "KFT",
    "ZRT",
    "OY",
    "AB",
    "MFG",
    "MANUFACTURING",
];

const ALIASES: &[(&str, &str)] = &[
    ("FN", "FN HERSTAL"),
    ("FABRIQUE NATIONALE", "FN HERSTAL"),
    ("FABRIQUE NATIONALE DE HERSTAL", "FN HERSTAL"),
    ("HK", "HECKLER KOCH"),
    ("H K", "HECKLER KOCH"),
    ("CZ", "CESKA ZBROJOVKA"),
    ("CZUB", "CESKA ZBROJOVKA"),
    ("CESKA ZBROJOVKA UHERSKY BROD", "CESKA ZBROJOVKA"),
    ("S W", "SMITH WESSON"),
    ("SW", "SMITH WESSON"),
    ("COLTS", "COLT"),
    ("ZASTAVA ARMS", "ZASTAVA"),
    ("ZASTAVA ORUZJE", "ZASTAVA"),
    ("IZHMASH", "KALASHNIKOV"),
    ("KALASHNIKOV CONCERN", "KALASHNIKOV"),
    ("CHINA NORTH INDUSTRIES", "NORINCO"),
    ("MAKINA VE KIMYA", "MKE"),
    ("FABBRICA D ARMI PIETRO BERETTA", "BERETTA"),
    ("PIETRO BERETTA", "BERETTA"),
    ("SIG", "SIG SAUER"),
    ("SIGARMS", "SIG SAUER"),
    ("FORJAS TAURUS", "TAURUS"),
];

/// A canonical key for a manufacturer name as recorded ("H&K", "Heckler & Koch GmbH" and
/// "HECKLER UND KOCH" all give "HECKLER KOCH"): uppercase, joining words and punctuation and
/// corporate suffixes dropped, then known alternative names mapped to one.
pub fn manufacturer_key(name: &str) -> String {
    let upper: String = name
        .chars()
        .map(|c| match fold(c) {
            Some('*') | None => ' ',
            Some(c) => c,
        })
        .collect();
    let words: Vec<&str> = upper
        .split_whitespace()
        .filter(|w| !matches!(*w, "AND" | "UND" | "ET"))
        .collect();
    let mut end = words.len();
    loop {
        // "S.P.A." and "a.s." arrive as runs of single letters.
        let run = words[..end]
            .iter()
            .rev()
            .take_while(|w| w.len() == 1)
            .count();
        if run >= 2 && end > run && SUFFIXES.contains(&words[end - run..end].concat().as_str()) {
            end -= run;
        } else if end > 1 && SUFFIXES.contains(&words[end - 1]) {
            end -= 1;
        } else {
            break;
        }
    }
    let kept = &words[..end];
    let key = kept.join(" ");
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == key)
        .map_or(key, |(_, canon)| (*canon).to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn n(s: &str) -> NormalisedSerial {
        normalise(s).unwrap()
    }

    #[test]
    fn separators_case_and_spaces_disappear() {
        for s in [
            "AB-1234",
            "ab 1234",
            "AB.12/34",
            " ab_12-34 ",
            "A B 1 2 3 4",
            "ab:1234",
            "(AB)1234",
        ] {
            assert_eq!(n(s).as_str(), "AB1234", "{s}");
        }
    }

    #[test]
    fn unreadable_marks_become_wildcards() {
        assert_eq!(n("AB12**").as_str(), "AB12**");
        assert_eq!(n("ab12??").as_str(), "AB12**");
        assert_eq!(n("AB-12#4").as_str(), "AB12*4");
        assert!(n("AB12*4").has_wildcards());
        assert_eq!(n("AB12*4").literal_prefix(), "AB12");
        assert_eq!(n("*B1234").literal_prefix(), "");
        assert!(!n("AB1234").has_wildcards());
    }

    #[test]
    fn homoglyphs_full_width_and_diacritics_fold_to_latin() {
        assert_eq!(n("АВ1234").as_str(), "AB1234"); // Cyrillic А, В
        assert_eq!(n("ΚΜ-77").as_str(), "KM77"); // Greek Κ, Μ
        assert_eq!(n("ＡＢ１２３４").as_str(), "AB1234");
        assert_eq!(n("ÉØ-5Ç").as_str(), "EO5C");
        assert_eq!(n("sn№ 445").as_str(), "SN445");
    }

    #[test]
    fn nothing_comparable_or_too_long_is_none() {
        for s in ["", "---", "   ", "№", "/./"] {
            assert!(normalise(s).is_none(), "{s:?}");
        }
        assert!(normalise(&"A".repeat(300)).is_none());
        assert!(normalise(&"A".repeat(256)).is_some());
    }

    #[test]
    fn wildcard_matching_needs_equal_length() {
        let m = MatchMode::Normalised;
        assert!(matches(&n("AB12**"), &n("AB1234"), m));
        assert!(matches(&n("AB1234"), &n("AB12**"), m));
        assert!(!matches(&n("AB12**"), &n("AB123"), m));
        assert!(!matches(&n("AB1235"), &n("AB1234"), m));
        assert!(matches(&n("ab-1234"), &n("AB 1234"), m));
    }

    #[test]
    fn confusable_characters_match_only_when_asked() {
        assert!(matches(&n("A81234"), &n("AB1234"), MatchMode::Confusable));
        assert!(!matches(&n("A81234"), &n("AB1234"), MatchMode::Normalised));
        assert!(matches(&n("0O1IL"), &n("OD1L1"), MatchMode::Confusable));
        assert!(matches(&n("S5Z2"), &n("5S2Z"), MatchMode::Confusable));
        assert!(matches(&n("G6Q"), &n("6GO"), MatchMode::Confusable));
        assert!(!matches(&n("AX1234"), &n("AB1234"), MatchMode::Confusable));
        assert_eq!(confusable_key(&n("A81234")), confusable_key(&n("AB1234")));
        assert_eq!(confusable_key(&n("AB12**")), "A812**");
    }

    #[test]
    fn distances_rank_identical_then_wildcard_then_confusable() {
        let q = n("AB1234");
        let exact = match_distance(&q, &n("AB1234")).unwrap();
        let wild = match_distance(&q, &n("AB123*")).unwrap();
        let conf = match_distance(&q, &n("A81234")).unwrap();
        assert_eq!(exact, 0);
        assert!(exact < wild && wild < conf);
        assert_eq!(match_distance(&q, &n("XY1234")), None);
    }

    #[test]
    fn normalising_is_idempotent_and_matching_symmetric() {
        let inputs = [
            "AB-1234", "ab12??", "АВ 99", "ＺＺ-0", "x/y/z 7", "A81234", "sn 0O1",
        ];
        for a in inputs {
            let na = n(a);
            assert_eq!(n(na.as_str()), na, "{a}");
            assert_eq!(confusable_key(&na).len(), na.len());
            for b in inputs {
                let nb = n(b);
                for m in [MatchMode::Normalised, MatchMode::Confusable] {
                    assert_eq!(matches(&na, &nb, m), matches(&nb, &na, m), "{a} {b}");
                }
            }
        }
    }

    #[test]
    fn manufacturer_names_fold_to_one_key() {
        let hk = manufacturer_key("Heckler & Koch GmbH");
        assert_eq!(hk, "HECKLER KOCH");
        assert_eq!(manufacturer_key("H&K"), hk);
        assert_eq!(manufacturer_key("HECKLER UND KOCH"), hk);
        assert_eq!(manufacturer_key("FN Herstal S.A."), "FN HERSTAL");
        assert_eq!(manufacturer_key("Fabrique Nationale"), "FN HERSTAL");
        assert_eq!(manufacturer_key("Česká zbrojovka a.s."), "CESKA ZBROJOVKA");
        assert_eq!(manufacturer_key("CZ"), "CESKA ZBROJOVKA");
        assert_eq!(manufacturer_key("Smith & Wesson Inc."), "SMITH WESSON");
        assert_eq!(manufacturer_key("S&W"), "SMITH WESSON");
        assert_eq!(
            manufacturer_key("Fabbrica d'Armi Pietro Beretta S.p.A."),
            "BERETTA"
        );
        assert_eq!(manufacturer_key("Acme Arms Ltd."), "ACME ARMS");
        assert_eq!(manufacturer_key("  "), "");
    }
    #[test]
    fn confusable_variants_come_fewest_substitutions_first_and_capped() {
        let v = confusable_variants(&n("AB12"), MAX_VARIANTS);
        // B has one other member (8), 1 two (I, L), 2 one (Z): 2*3*2 - 1 variants.
        assert_eq!(v.len(), 11);
        assert!(!v.contains(&n("AB12")));
        assert!(v.contains(&n("A812")) && v.contains(&n("A8LZ")));
        let subs = |x: &NormalisedSerial| {
            x.as_str()
                .bytes()
                .zip("AB12".bytes())
                .filter(|(a, b)| a != b)
                .count()
        };
        assert!(v.windows(2).all(|w| subs(&w[0]) <= subs(&w[1])));
        for x in &v {
            assert!(matches(&n("AB12"), x, MatchMode::Confusable));
        }
        let many = n(&"0".repeat(20));
        let capped = confusable_variants(&many, 50);
        assert_eq!(capped.len(), 50);
        assert!(capped.iter().all(|x| subs_of(x, &many) == 1));
        assert!(
            confusable_variants(&n("XYZ*"), 10)
                .iter()
                .all(|x| x.as_str().ends_with('*'))
        );
        assert!(confusable_variants(&n("XY"), 10).is_empty());
    }

    fn subs_of(a: &NormalisedSerial, b: &NormalisedSerial) -> usize {
        a.as_str()
            .bytes()
            .zip(b.as_str().bytes())
            .filter(|(x, y)| x != y)
            .count()
    }

    #[test]
    fn ranks_put_exact_before_wildcard_before_confusable() {
        let q = n("AB1234");
        let m = MatchMode::Confusable;
        assert_eq!(rank(&q, &n("ab-1234"), m), Some(Rank::EXACT));
        let wild = rank(&q, &n("AB123*"), m).unwrap();
        let conf = rank(&q, &n("A81234"), m).unwrap();
        assert!(Rank::EXACT < wild && wild < conf);
        assert_eq!(rank(&q, &n("A81234"), MatchMode::Normalised), None);
        assert_eq!(rank(&q, &n("AB12345"), m), None);
    }
}
