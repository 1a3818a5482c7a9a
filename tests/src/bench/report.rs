//! Results of a benchmark run: parameters and figures, printed as a table (and JSON on request),
//! each figure next to its baseline from the same run where one exists.

use std::fmt::Write as _;
use std::time::Duration;

/// One measured figure.
#[derive(Debug, Clone)]
pub struct Figure {
    /// What was measured, e.g. "lookup p50".
    pub name: String,
    /// The value.
    pub value: f64,
    /// Its unit, e.g. "us", "req/s".
    pub unit: &'static str,
    /// The same figure for the baseline, measured in the same run.
    pub baseline: Option<f64>,
}

/// A scenario's parameters and figures.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Parameters as name/value pairs.
    pub params: Vec<(String, String)>,
    /// Figures in the order measured.
    pub figures: Vec<Figure>,
}

impl Report {
    /// An empty report for `scenario`.
    pub fn new(scenario: &str) -> Report {
        Report {
            scenario: scenario.to_owned(),
            ..Default::default()
        }
    }

    /// Records a parameter.
    pub fn param(&mut self, name: &str, value: impl ToString) {
        self.params.push((name.to_owned(), value.to_string()));
    }

    /// Records a figure without baseline.
    pub fn figure(&mut self, name: &str, value: f64, unit: &'static str) {
        self.figures.push(Figure {
            name: name.to_owned(),
            value,
            unit,
            baseline: None,
        });
    }

    /// Records a figure with its baseline.
    pub fn versus(&mut self, name: &str, value: f64, baseline: f64, unit: &'static str) {
        self.figures.push(Figure {
            name: name.to_owned(),
            value,
            unit,
            baseline: Some(baseline),
        });
    }

    /// The figure called `name`, if measured.
    pub fn get(&self, name: &str) -> Option<&Figure> {
        self.figures.iter().find(|f| f.name == name)
    }

    /// A readable table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "== {}", self.scenario);
        for (k, v) in &self.params {
            let _ = writeln!(out, "   {k} = {v}");
        }
        let _ = writeln!(
            out,
            "   {:<44} {:>14} {:>14} {:>8}  unit",
            "figure", "tracenet", "baseline", "ratio"
        );
        for f in &self.figures {
            let (b, r) = match f.baseline {
                Some(b) if b != 0.0 => (format!("{b:.1}"), format!("{:.2}", f.value / b)),
                Some(b) => (format!("{b:.1}"), "-".into()),
                None => ("-".into(), "-".into()),
            };
            let _ = writeln!(
                out,
                "   {:<44} {:>14.1} {:>14} {:>8}  {}",
                f.name, f.value, b, r, f.unit
            );
        }
        out
    }

    /// One JSON object (no external serialiser needed).
    pub fn json(&self) -> String {
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(k, v)| format!("\"{}\":\"{}\"", esc(k), esc(v)))
            .collect();
        let figures: Vec<String> = self
            .figures
            .iter()
            .map(|f| {
                format!(
                    "{{\"name\":\"{}\",\"value\":{},\"unit\":\"{}\",\"baseline\":{}}}",
                    esc(&f.name),
                    f.value,
                    f.unit,
                    f.baseline.map_or("null".into(), |b| b.to_string())
                )
            })
            .collect();
        format!(
            "{{\"scenario\":\"{}\",\"params\":{{{}}},\"figures\":[{}]}}",
            esc(&self.scenario),
            params.join(","),
            figures.join(",")
        )
    }
}

/// Latency samples.
#[derive(Debug, Default, Clone)]
pub struct Samples(Vec<Duration>);

impl Samples {
    /// Room for `n` samples.
    pub fn with_capacity(n: usize) -> Samples {
        Samples(Vec::with_capacity(n))
    }

    /// Adds one.
    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `q` quantile (0..=1) in microseconds; 0 when empty.
    pub fn quantile_us(&self, q: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        let mut v = self.0.clone();
        v.sort();
        let i = ((v.len() - 1) as f64 * q).round() as usize;
        v[i.min(v.len() - 1)].as_secs_f64() * 1e6
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_ratios() {
        let mut s = Samples::default();
        for i in 1..=100 {
            s.push(Duration::from_micros(i));
        }
        assert_eq!(s.quantile_us(0.5).round(), 51.0);
        assert_eq!(s.quantile_us(0.99).round(), 99.0);
        let mut r = Report::new("x");
        r.versus("a", 30.0, 10.0, "us");
        assert!(r.table().contains("3.00"));
        assert!(r.json().contains("\"baseline\":10"));
    }
}
