//! TEMPORARY minimal serial module (being replaced by the full implementation).

/// A normalised serial.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NormalisedSerial(String);
impl NormalisedSerial {
    /// as str
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// wildcards
    pub fn has_wildcards(&self) -> bool {
        self.0.contains('*')
    }
    /// prefix
    pub fn literal_prefix(&self) -> &str {
        self.0.split('*').next().unwrap_or("")
    }
    /// len
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// empty
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
/// normalise
pub fn normalise(marked: &str) -> Option<NormalisedSerial> {
    let s: String = marked
        .chars()
        .filter_map(|c| match c {
            'a'..='z' => Some(c.to_ascii_uppercase()),
            'A'..='Z' | '0'..='9' | '*' => Some(c),
            '?' | '#' => Some('*'),
            _ => None,
        })
        .collect();
    (!s.is_empty() && marked.len() <= 256).then_some(NormalisedSerial(s))
}
/// mode
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchMode {
    /// n
    Normalised,
    /// c
    Confusable,
}
/// matches
pub fn matches(q: &NormalisedSerial, c: &NormalisedSerial, _mode: MatchMode) -> bool {
    q.0.len() == c.0.len()
        && q.0
            .bytes()
            .zip(c.0.bytes())
            .all(|(a, b)| a == b || a == b'*' || b == b'*')
}
