//! Charts as SVG rendered on the server: seizures per month (columns), concealment methods by
//! frequency (bars) and routes on a map (a geographic tile grid of countries with an arc per
//! hop, as wide as its seizures, coloured by transport mode). No script and no third-party
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

/// The tile grid of the route map: (ISO 3166-1 alpha-3 code, column, row), laid out by hand so
/// that neighbours stay near each other (the Americas on the left, Europe in the middle, Africa
/// below it, Asia to the right). No geographic data is needed or shipped; a country missing
/// from the grid is drawn in a row of its own below it.
const TILES: &[(&str, u8, u8)] = &[
    // The Americas.
    ("CAN", 1, 1),
    ("USA", 1, 2),
    ("MEX", 1, 3),
    ("CUB", 2, 3),
    ("DOM", 3, 3),
    ("GTM", 1, 4),
    ("HND", 2, 4),
    ("JAM", 3, 4),
    ("SLV", 1, 5),
    ("NIC", 2, 5),
    ("PAN", 3, 5),
    ("COL", 2, 6),
    ("VEN", 3, 6),
    ("ECU", 1, 7),
    ("PER", 2, 7),
    ("BRA", 3, 7),
    ("BOL", 2, 8),
    ("PRY", 3, 8),
    ("CHL", 2, 9),
    ("ARG", 3, 9),
    ("URY", 4, 9),
    // Europe.
    ("ISL", 6, 0),
    ("NOR", 10, 0),
    ("SWE", 11, 0),
    ("FIN", 12, 0),
    ("IRL", 7, 1),
    ("GBR", 8, 1),
    ("DNK", 10, 1),
    ("LVA", 12, 1),
    ("EST", 13, 1),
    ("RUS", 14, 1),
    ("NLD", 9, 2),
    ("DEU", 10, 2),
    ("POL", 11, 2),
    ("LTU", 12, 2),
    ("BLR", 13, 2),
    ("BEL", 8, 3),
    ("LUX", 9, 3),
    ("CZE", 10, 3),
    ("SVK", 11, 3),
    ("UKR", 12, 3),
    ("KAZ", 15, 3),
    ("MNG", 19, 3),
    ("FRA", 8, 4),
    ("CHE", 9, 4),
    ("AUT", 10, 4),
    ("HUN", 11, 4),
    ("ROU", 12, 4),
    ("MDA", 13, 4),
    ("UZB", 16, 4),
    ("KGZ", 17, 4),
    ("CHN", 19, 4),
    ("KOR", 20, 4),
    ("JPN", 21, 4),
    ("PRT", 6, 5),
    ("ESP", 7, 5),
    ("ITA", 9, 5),
    ("SVN", 10, 5),
    ("HRV", 11, 5),
    ("SRB", 12, 5),
    ("BGR", 13, 5),
    ("GEO", 15, 5),
    ("TKM", 16, 5),
    ("TJK", 17, 5),
    ("BIH", 11, 6),
    ("MNE", 12, 6),
    ("MKD", 13, 6),
    ("TUR", 14, 6),
    ("ARM", 15, 6),
    ("AZE", 16, 6),
    ("ALB", 12, 7),
    ("GRC", 13, 7),
    ("CYP", 14, 7),
    ("LBN", 15, 7),
    ("SYR", 16, 7),
    ("IRQ", 17, 7),
    ("IRN", 18, 7),
    ("AFG", 19, 7),
    ("PAK", 20, 7),
    // North Africa, the Middle East and South Asia.
    ("MAR", 7, 8),
    ("DZA", 8, 8),
    ("TUN", 9, 8),
    ("MLT", 10, 8),
    ("LBY", 11, 8),
    ("EGY", 13, 8),
    ("ISR", 14, 8),
    ("JOR", 15, 8),
    ("SAU", 16, 8),
    ("KWT", 17, 8),
    ("ARE", 18, 8),
    ("IND", 20, 8),
    ("BGD", 21, 8),
    // Africa, and South-East Asia and Oceania.
    ("SEN", 6, 9),
    ("MLI", 7, 9),
    ("NER", 8, 9),
    ("TCD", 9, 9),
    ("SDN", 10, 9),
    ("ERI", 11, 9),
    ("YEM", 16, 9),
    ("OMN", 17, 9),
    ("THA", 20, 9),
    ("VNM", 21, 9),
    ("PHL", 22, 9),
    ("GIN", 6, 10),
    ("CIV", 7, 10),
    ("GHA", 8, 10),
    ("NGA", 9, 10),
    ("CMR", 10, 10),
    ("ETH", 11, 10),
    ("SOM", 12, 10),
    ("MYS", 20, 10),
    ("IDN", 21, 10),
    ("COD", 10, 11),
    ("KEN", 11, 11),
    ("AUS", 21, 12),
    ("AGO", 10, 12),
    ("TZA", 11, 12),
    ("ZAF", 10, 13),
    ("MOZ", 11, 13),
];

/// One hop of a route on the map: from, to, transport mode (its label), seizures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// Country the hop leaves (ISO alpha-3).
    pub from: String,
    /// Country the hop reaches.
    pub to: String,
    /// The transport mode's label (empty when unknown).
    pub mode: String,
    /// How many seizures made this hop.
    pub seizures: u64,
}

/// Routes on a map: each country a tile on a geographic tile grid, each hop an arc from tile to
/// tile whose width is the number of seizures, coloured by transport mode (with a legend). The
/// map is cropped to the countries involved (with their surroundings); `name` gives a
/// country's name for the tiles' tooltips, `unknown_mode` labels hops without a mode.
pub fn route_map(
    title: &str,
    hops: &[Hop],
    name: &dyn Fn(&str) -> String,
    unknown_mode: &str,
) -> String {
    const TILE: f64 = 40.0;
    const GAP: f64 = 4.0;
    let step = TILE + GAP;
    let involved: BTreeMap<&str, u64> = hops.iter().fold(BTreeMap::new(), |mut m, h| {
        *m.entry(h.from.as_str()).or_default() += h.seizures;
        *m.entry(h.to.as_str()).or_default() += h.seizures;
        m
    });
    let on_grid = |c: &str| {
        TILES
            .iter()
            .find(|(t, _, _)| *t == c)
            .map(|&(_, x, y)| (x, y))
    };
    // The grid area to show: the involved tiles with one tile around them (all when none).
    let cells: Vec<(u8, u8)> = involved.keys().filter_map(|c| on_grid(c)).collect();
    let (x0, x1, y0, y1) = if cells.is_empty() {
        let xs = TILES.iter().map(|t| t.1);
        let ys = TILES.iter().map(|t| t.2);
        (
            xs.clone().min().unwrap_or(0),
            xs.max().unwrap_or(0),
            ys.clone().min().unwrap_or(0),
            ys.max().unwrap_or(0),
        )
    } else {
        (
            cells
                .iter()
                .map(|c| c.0)
                .min()
                .unwrap_or(0)
                .saturating_sub(1),
            cells
                .iter()
                .map(|c| c.0)
                .max()
                .unwrap_or(0)
                .saturating_add(1),
            cells
                .iter()
                .map(|c| c.1)
                .min()
                .unwrap_or(0)
                .saturating_sub(1),
            cells
                .iter()
                .map(|c| c.1)
                .max()
                .unwrap_or(0)
                .saturating_add(1),
        )
    };
    let off_grid: Vec<&str> = involved
        .keys()
        .copied()
        .filter(|c| on_grid(c).is_none())
        .collect();
    let cols = f64::from(x1 - x0 + 1).max(off_grid.len() as f64).max(8.0);
    let rows = f64::from(y1 - y0 + 1);
    // The transport modes, most seizures first, each with its colour.
    let mut modes: BTreeMap<&str, u64> = BTreeMap::new();
    for h in hops {
        *modes.entry(h.mode.as_str()).or_default() += h.seizures;
    }
    let mut modes: Vec<(&str, u64)> = modes.into_iter().collect();
    modes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let colour = |mode: &str| {
        let i = modes.iter().position(|(m, _)| *m == mode).unwrap_or(0);
        PALETTE[i % PALETTE.len()]
    };
    let legend_h = 22.0 * modes.len().div_ceil(3).max(1) as f64 + 8.0;
    let other_h = if off_grid.is_empty() {
        0.0
    } else {
        step + 18.0
    };
    let w = cols * step + GAP;
    let h = legend_h + rows * step + GAP + other_h;
    let mut svg = format!(
        r#"<svg class="chart map" role="img" viewBox="0 0 {w:.0} {h:.0}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>"#,
        escape(title)
    );
    // Legend: one line per transport mode with its total.
    let mode_label = |m: &str| {
        if m.is_empty() {
            unknown_mode.to_owned()
        } else {
            m.to_owned()
        }
    };
    for (i, (m, n)) in modes.iter().enumerate() {
        let (lx, ly) = (
            GAP + (i % 3) as f64 * (w / 3.0),
            14.0 + (i / 3) as f64 * 22.0,
        );
        let _ = write!(
            svg,
            r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{}" stroke-width="5"/><text x="{:.1}" y="{:.1}" font-size="12">{} ({n})</text>"#,
            lx + 24.0,
            colour(m),
            lx + 30.0,
            ly + 4.0,
            escape(&mode_label(m))
        );
    }
    let centre = |c: &str| -> Option<(f64, f64)> {
        if let Some((x, y)) = on_grid(c) {
            if x < x0 || x > x1 || y < y0 || y > y1 {
                return None;
            }
            return Some((
                GAP + f64::from(x - x0) * step + TILE / 2.0,
                legend_h + GAP + f64::from(y - y0) * step + TILE / 2.0,
            ));
        }
        let i = off_grid.iter().position(|o| *o == c)?;
        Some((
            GAP + i as f64 * step + TILE / 2.0,
            legend_h + rows * step + 18.0 + TILE / 2.0,
        ))
    };
    // Tiles: every country of the shown area, the involved ones stronger.
    for &(code, x, y) in TILES {
        if x < x0 || x > x1 || y < y0 || y > y1 {
            continue;
        }
        tile(
            &mut svg,
            code,
            centre(code),
            involved.get(code).copied(),
            name,
        );
    }
    if !off_grid.is_empty() {
        let _ = write!(
            svg,
            r##"<line x1="0" y1="{y:.1}" x2="{w:.0}" y2="{y:.1}" stroke="#aab7b8" stroke-dasharray="4 3"/>"##,
            y = legend_h + rows * step + 8.0
        );
        for code in &off_grid {
            tile(
                &mut svg,
                code,
                centre(code),
                involved.get(code).copied(),
                name,
            );
        }
    }
    // Arcs, widest first so thin ones stay visible on top.
    let max = hops.iter().map(|h| h.seizures).max().unwrap_or(1).max(1) as f64;
    let mut sorted: Vec<&Hop> = hops.iter().collect();
    sorted.sort_by(|a, b| {
        b.seizures
            .cmp(&a.seizures)
            .then((&a.from, &a.to).cmp(&(&b.from, &b.to)))
    });
    for hop in sorted {
        let (Some((ax, ay)), Some((bx, by))) = (centre(&hop.from), centre(&hop.to)) else {
            continue;
        };
        let width = 1.5 + 10.0 * hop.seizures as f64 / max;
        // Bend each arc to its left (so A→B and B→A do not overlap), a little more for each
        // further mode on the same pair.
        let lane = modes.iter().position(|(m, _)| *m == hop.mode).unwrap_or(0) as f64;
        let (dx, dy) = (bx - ax, by - ay);
        let len = (dx * dx + dy * dy).sqrt().max(1.0);
        let bend = len * 0.18 + 8.0 * lane;
        let (cx, cy) = (
            (ax + bx) / 2.0 + dy / len * bend,
            (ay + by) / 2.0 - dx / len * bend,
        );
        let c = colour(&hop.mode);
        let _ = write!(
            svg,
            r#"<path class="route" d="M{ax:.1},{ay:.1} Q{cx:.1},{cy:.1} {bx:.1},{by:.1}" stroke="{c}" stroke-opacity="0.75" stroke-width="{width:.1}" stroke-linecap="round" fill="none"><title>{} → {} · {}: {}</title></path><circle cx="{bx:.1}" cy="{by:.1}" r="{:.1}" fill="{c}"/>"#,
            escape(&name(&hop.from)),
            escape(&name(&hop.to)),
            escape(&mode_label(&hop.mode)),
            hop.seizures,
            (width / 2.0 + 1.5).min(7.0),
        );
    }
    svg.push_str("</svg>");
    svg
}

/// One country tile, with its code and a tooltip naming it (and its seizures when involved).
fn tile(
    svg: &mut String,
    code: &str,
    at: Option<(f64, f64)>,
    seizures: Option<u64>,
    name: &dyn Fn(&str) -> String,
) {
    let Some((cx, cy)) = at else {
        return;
    };
    let half = 20.0;
    let (fill, stroke, ink) = if seizures.is_some() {
        ("#d6eaf8", "#1f5f8b", "#17202a")
    } else {
        ("#f2f3f4", "#d5dbdb", "#85929e")
    };
    let tip = match seizures {
        Some(n) => format!("{} ({code}): {n}", name(code)),
        None => format!("{} ({code})", name(code)),
    };
    let _ = write!(
        svg,
        r#"<g class="tile"><title>{}</title><rect x="{:.1}" y="{:.1}" width="40" height="40" rx="4" fill="{fill}" stroke="{stroke}"/><text x="{cx:.1}" y="{:.1}" font-size="11" text-anchor="middle" fill="{ink}">{}</text></g>"#,
        escape(&tip),
        cx - half,
        cy - half,
        cy + 4.0,
        escape(code)
    );
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
            route_map(
                evil,
                &[Hop {
                    from: evil.into(),
                    to: "FRA".into(),
                    mode: evil.into(),
                    seizures: 2,
                }],
                &|c: &str| c.to_owned(),
                evil,
            ),
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

    fn hop(from: &str, to: &str, mode: &str, seizures: u64) -> Hop {
        Hop {
            from: from.into(),
            to: to.into(),
            mode: mode.into(),
            seizures,
        }
    }

    #[test]
    fn the_map_draws_one_arc_per_hop_as_wide_as_its_seizures() {
        let svg = route_map(
            "routes",
            &[
                hop("TUR", "BGR", "Road", 4),
                hop("BGR", "FRA", "Road", 2),
                hop("TUR", "GRC", "Sea", 1),
                hop("TUR", "NZL", "Sea", 1),
            ],
            &|c: &str| format!("name of {c}"),
            "unknown",
        );
        assert_eq!(svg.matches("<path class=\"route\"").count(), 4);
        // The widest arc is the one with the most seizures, and is the full width.
        assert!(svg.contains(r#"stroke-width="11.5""#), "{svg}");
        assert!(svg.contains(r#"stroke-width="4.0""#), "{svg}");
        // Modes have their own colours and a legend with totals.
        assert!(svg.contains(">Road (6)<") && svg.contains(">Sea (2)<"));
        // Tiles name their country; involved tiles show how many seizures passed.
        assert!(svg.contains("name of TUR (TUR): 6"));
        // Context tiles around the involved ones, and none far away.
        assert!(svg.contains(">SRB<") && !svg.contains(">USA<"));
        // A code not on the grid still gets a tile, below it.
        assert!(svg.contains(">NZL<"));
    }

    #[test]
    fn every_tile_is_a_known_country_in_its_own_cell() {
        let mut cells = std::collections::HashSet::new();
        for (code, x, y) in TILES {
            assert!(
                tracenet_ids::country::ALL.binary_search(code).is_ok(),
                "{code}"
            );
            assert!(cells.insert((x, y)), "{code} shares a cell");
        }
    }

    #[test]
    fn empty_input_still_makes_a_chart() {
        assert!(columns("t", &[]).ends_with("</svg>"));
        assert!(route_map("t", &[], &|c: &str| c.to_owned(), "?").ends_with("</svg>"));
    }
}
