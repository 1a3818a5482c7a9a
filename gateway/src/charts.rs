//! Charts as SVG rendered on the server: seizures per month (columns), concealment methods by
//! frequency (bars) and routes as a flow diagram between countries. No script and no third-party
//! resource, so they pass the strict Content-Security-Policy and print as they show.
//!
//! Every text that reaches the SVG is escaped here; the output is embedded in pages as is.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Escapes text for SVG/XML content and attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const PALETTE: [&str; 8] = [
    "#1f5f8b", "#c0392b", "#27865f", "#8e5ea2", "#d68910", "#117a8b", "#7f8c8d", "#a04000",
];

/// Columns, one per label (e.g. months in order), with the value above each.
pub fn columns(title: &str, items: &[(String, u64)]) -> String {
    let max = items.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let (w, h, pad, base) = (720.0_f64, 260.0_f64, 40.0_f64, 220.0_f64);
    let n = items.len().max(1) as f64;
    let slot = (w - 2.0 * pad) / n;
    let bar = (slot * 0.7).max(2.0);
    let mut svg = format!(
        r#"<svg class="chart" role="img" viewBox="0 0 {w} {h}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>"#,
        escape(title)
    );
    let _ = write!(
        svg,
        r##"<line x1="{pad}" y1="{base}" x2="{}" y2="{base}" stroke="#555"/>"##,
        w - pad
    );
    // Label at most about ten columns so the labels never overlap.
    let step = items.len().div_ceil(10).max(1);
    for (i, (label, v)) in items.iter().enumerate() {
        let x = pad + slot * i as f64 + (slot - bar) / 2.0;
        let bh = (base - 20.0) * (*v as f64) / (max as f64);
        let _ = write!(
            svg,
            r##"<rect x="{x:.1}" y="{:.1}" width="{bar:.1}" height="{bh:.1}" fill="#1f5f8b"><title>{}: {v}</title></rect>"##,
            base - bh,
            escape(label),
        );
        if *v > 0 && slot >= 14.0 {
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{v}</text>"#,
                x + bar / 2.0,
                base - bh - 4.0,
            );
        }
        if i % step == 0 {
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">{}</text>"#,
                x + bar / 2.0,
                base + 14.0,
                escape(label)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Horizontal bars, largest first, with labels on the left.
pub fn bars(title: &str, items: &[(String, u64)]) -> String {
    let mut items = items.to_vec();
    items.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let max = items.first().map_or(1, |(_, v)| (*v).max(1));
    let row = 26.0_f64;
    let (w, label_w) = (720.0_f64, 240.0_f64);
    let h = row * items.len().max(1) as f64 + 10.0;
    let mut svg = format!(
        r#"<svg class="chart" role="img" viewBox="0 0 {w} {h}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>"#,
        escape(title)
    );
    for (i, (label, v)) in items.iter().enumerate() {
        let y = 5.0 + row * i as f64;
        let bw = (w - label_w - 60.0) * (*v as f64) / (max as f64);
        let color = PALETTE[i % PALETTE.len()];
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="end">{}</text><rect x="{label_w}" y="{y:.1}" width="{bw:.1}" height="{:.1}" fill="{color}"><title>{}: {v}</title></rect><text x="{:.1}" y="{:.1}" font-size="12">{v}</text>"#,
            label_w - 8.0,
            y + row * 0.6,
            escape(label),
            row - 8.0,
            escape(label),
            label_w + bw + 6.0,
            y + row * 0.6
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A flow diagram: countries a route leaves from on the left, countries it goes to on the
/// right, and a band for each hop as wide as the number of seizures that made it.
pub fn flows(title: &str, edges: &[(String, String, u64)]) -> String {
    let mut from: BTreeMap<&str, u64> = BTreeMap::new();
    let mut to: BTreeMap<&str, u64> = BTreeMap::new();
    for (a, b, n) in edges {
        *from.entry(a).or_default() += n;
        *to.entry(b).or_default() += n;
    }
    let total: u64 = edges.iter().map(|e| e.2).sum::<u64>().max(1);
    let (w, top, left_x, right_x, node_w) = (720.0_f64, 20.0_f64, 120.0_f64, 560.0_f64, 14.0_f64);
    let gap = 10.0_f64;
    let usable = 320.0_f64;
    let scale = usable / total as f64;
    let layout = |m: &BTreeMap<&str, u64>| {
        let mut y = top;
        let mut pos = BTreeMap::new();
        for (k, v) in m {
            let hgt = (*v as f64 * scale).max(2.0);
            pos.insert(k.to_string(), (y, hgt));
            y += hgt + gap;
        }
        (pos, y)
    };
    let (left, lh) = layout(&from);
    let (right, rh) = layout(&to);
    let h = lh.max(rh) + top;
    let mut svg = format!(
        r#"<svg class="chart" role="img" viewBox="0 0 {w} {h:.0}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>"#,
        escape(title)
    );
    let mut out_off: BTreeMap<String, f64> = BTreeMap::new();
    let mut in_off: BTreeMap<String, f64> = BTreeMap::new();
    let mut sorted = edges.to_vec();
    sorted.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    for (i, (a, b, n)) in sorted.iter().enumerate() {
        let (Some((ay, _)), Some((by, _))) = (left.get(a), right.get(b)) else {
            continue;
        };
        let band = (*n as f64 * scale).max(1.0);
        let oa = out_off.entry(a.clone()).or_default();
        let ob = in_off.entry(b.clone()).or_default();
        let (y0, y1) = (ay + *oa + band / 2.0, by + *ob + band / 2.0);
        *oa += band;
        *ob += band;
        let (x0, x1) = (left_x + node_w, right_x);
        let mid = (x0 + x1) / 2.0;
        let color = PALETTE[i % PALETTE.len()];
        let _ = write!(
            svg,
            r#"<path d="M{x0:.1},{y0:.1} C{mid:.1},{y0:.1} {mid:.1},{y1:.1} {x1:.1},{y1:.1}" stroke="{color}" stroke-opacity="0.45" stroke-width="{band:.1}" fill="none"><title>{} → {}: {n}</title></path>"#,
            escape(a),
            escape(b)
        );
    }
    for (side, pos, x, anchor, tx) in [
        (&from, &left, left_x, "end", left_x - 6.0),
        (&to, &right, right_x, "start", right_x + node_w + 6.0),
    ] {
        for (k, (y, hgt)) in pos {
            let n = side.get(k.as_str()).copied().unwrap_or(0);
            let _ = write!(
                svg,
                r##"<rect x="{x}" y="{y:.1}" width="{node_w}" height="{hgt:.1}" fill="#34495e"/><text x="{tx}" y="{:.1}" font-size="12" text-anchor="{anchor}">{} ({n})</text>"##,
                y + hgt / 2.0 + 4.0,
                escape(k)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn hostile_labels_are_escaped() {
        let evil = "<script>alert(1)</script>";
        for svg in [
            columns(evil, &[(evil.into(), 3)]),
            bars(evil, &[(evil.into(), 3)]),
            flows(evil, &[(evil.into(), "FRA".into(), 2)]),
        ] {
            assert!(!svg.contains("<script"), "{svg}");
            assert!(svg.contains("&lt;script&gt;"));
            assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        }
    }

    #[test]
    fn bars_are_sorted_by_frequency_and_scaled() {
        let svg = bars("t", &[("a".into(), 1), ("b".into(), 4)]);
        let a = svg.find(">a<").unwrap();
        let b = svg.find(">b<").unwrap();
        assert!(b < a, "largest first");
        assert!(
            svg.contains(r#"width="420.0""#),
            "the largest bar spans the width: {svg}"
        );
    }

    #[test]
    fn flows_draw_one_band_per_hop() {
        let svg = flows(
            "routes",
            &[
                ("TUR".into(), "BGR".into(), 3),
                ("BGR".into(), "FRA".into(), 3),
                ("TUR".into(), "GRC".into(), 1),
            ],
        );
        assert_eq!(svg.matches("<path").count(), 3);
        assert!(svg.contains("TUR (4)"));
        assert!(svg.contains("FRA (3)"));
    }

    #[test]
    fn empty_input_still_makes_a_chart() {
        assert!(columns("t", &[]).ends_with("</svg>"));
        assert!(flows("t", &[]).ends_with("</svg>"));
    }
}
