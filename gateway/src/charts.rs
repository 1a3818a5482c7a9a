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

/// Routes on maps: one map of every hop (all transport modes together), and one small map per
/// transport mode, most seizures first.
#[derive(Debug, Clone, Default)]
pub struct RouteMaps {
    /// Every hop, one arc per pair of countries, as wide as all its seizures.
    pub overview: String,
    /// Per transport mode: its label, its seizures (hops counted), and its map.
    pub by_mode: Vec<(String, u64, String)>,
}

/// The part of the grid a set of maps shows, and where each country's tile goes.
struct Frame {
    x0: u8,
    x1: u8,
    y0: u8,
    y1: u8,
    off_grid: Vec<String>,
}

const TILE: f64 = 40.0;
const GAP: f64 = 4.0;
const STEP: f64 = TILE + GAP;

fn on_grid(code: &str) -> Option<(u8, u8)> {
    TILES
        .iter()
        .find(|(t, _, _)| *t == code)
        .map(|&(_, x, y)| (x, y))
}

impl Frame {
    /// The involved countries' tiles with one tile around them (the whole grid when none);
    /// countries not on the grid get a row below it.
    fn around(hops: &[Hop]) -> Frame {
        let mut codes: Vec<&str> = hops
            .iter()
            .flat_map(|h| [h.from.as_str(), h.to.as_str()])
            .collect();
        codes.sort_unstable();
        codes.dedup();
        let cells: Vec<(u8, u8)> = codes.iter().filter_map(|c| on_grid(c)).collect();
        let all: Vec<(u8, u8)> = if cells.is_empty() {
            TILES.iter().map(|t| (t.1, t.2)).collect()
        } else {
            cells
        };
        let pad = u8::from(codes.iter().any(|c| on_grid(c).is_some()));
        Frame {
            x0: all
                .iter()
                .map(|c| c.0)
                .min()
                .unwrap_or(0)
                .saturating_sub(pad),
            x1: all
                .iter()
                .map(|c| c.0)
                .max()
                .unwrap_or(0)
                .saturating_add(pad),
            y0: all
                .iter()
                .map(|c| c.1)
                .min()
                .unwrap_or(0)
                .saturating_sub(pad),
            y1: all
                .iter()
                .map(|c| c.1)
                .max()
                .unwrap_or(0)
                .saturating_add(pad),
            off_grid: codes
                .iter()
                .filter(|c| on_grid(c).is_none())
                .map(|c| (*c).to_owned())
                .collect(),
        }
    }

    fn rows(&self) -> f64 {
        f64::from(self.y1 - self.y0 + 1)
    }

    fn width(&self) -> f64 {
        f64::from(self.x1 - self.x0 + 1).max(self.off_grid.len() as f64) * STEP + GAP
    }

    fn height(&self) -> f64 {
        let other = if self.off_grid.is_empty() {
            0.0
        } else {
            STEP + 18.0
        };
        self.rows() * STEP + GAP + other
    }

    fn shows(&self, x: u8, y: u8) -> bool {
        (self.x0..=self.x1).contains(&x) && (self.y0..=self.y1).contains(&y)
    }

    /// The centre of a country's tile, if the frame shows it.
    fn centre(&self, code: &str) -> Option<(f64, f64)> {
        if let Some((x, y)) = on_grid(code) {
            return self.shows(x, y).then(|| {
                (
                    GAP + f64::from(x - self.x0) * STEP + TILE / 2.0,
                    GAP + f64::from(y - self.y0) * STEP + TILE / 2.0,
                )
            });
        }
        let i = self.off_grid.iter().position(|o| o == code)?;
        Some((
            GAP + i as f64 * STEP + TILE / 2.0,
            self.rows() * STEP + 18.0 + TILE / 2.0,
        ))
    }
}

/// Routes on maps of countries: each country a tile on a geographic tile grid, each hop an arc
/// from tile to tile as wide as its number of seizures (the same scale on every map, so maps
/// compare). `name` gives a country's name for the tooltips; `unknown_mode` labels hops without
/// a transport mode.
pub fn route_maps(
    title: &str,
    hops: &[Hop],
    name: &dyn Fn(&str) -> String,
    unknown_mode: &str,
) -> RouteMaps {
    let frame = Frame::around(hops);
    // All modes together: one arc per pair.
    let mut pairs: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for h in hops {
        *pairs.entry((h.from.as_str(), h.to.as_str())).or_default() += h.seizures;
    }
    let together: Vec<Hop> = pairs
        .into_iter()
        .map(|((from, to), seizures)| Hop {
            from: from.to_owned(),
            to: to.to_owned(),
            mode: String::new(),
            seizures,
        })
        .collect();
    let max = together
        .iter()
        .map(|h| h.seizures)
        .max()
        .unwrap_or(1)
        .max(1);
    let overview = draw_map(title, &frame, &together, max, PALETTE[0], name, "");
    let mut modes: BTreeMap<&str, u64> = BTreeMap::new();
    for h in hops {
        *modes.entry(h.mode.as_str()).or_default() += h.seizures;
    }
    let mut modes: Vec<(&str, u64)> = modes.into_iter().collect();
    modes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let by_mode = modes
        .iter()
        .enumerate()
        .map(|(i, (mode, n))| {
            let label = if mode.is_empty() {
                unknown_mode.to_owned()
            } else {
                (*mode).to_owned()
            };
            let own: Vec<Hop> = hops.iter().filter(|h| h.mode == *mode).cloned().collect();
            let colour = PALETTE[(i + 1) % PALETTE.len()];
            let svg = draw_map(
                &format!("{title}: {label}"),
                &frame,
                &own,
                max,
                colour,
                name,
                &label,
            );
            (label, *n, svg)
        })
        .collect();
    RouteMaps { overview, by_mode }
}

/// One map: the frame's tiles, an arc per hop (width on the scale of `max`), then the labels
/// on top so arcs never hide them.
fn draw_map(
    title: &str,
    frame: &Frame,
    hops: &[Hop],
    max: u64,
    colour: &str,
    name: &dyn Fn(&str) -> String,
    mode: &str,
) -> String {
    let (w, h) = (frame.width(), frame.height());
    let mut svg = format!(
        r#"<svg class="chart map" role="img" viewBox="0 0 {w:.0} {h:.0}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>"#,
        escape(title)
    );
    let mut involved: BTreeMap<&str, u64> = BTreeMap::new();
    for hop in hops {
        *involved.entry(hop.from.as_str()).or_default() += hop.seizures;
        *involved.entry(hop.to.as_str()).or_default() += hop.seizures;
    }
    let shown: Vec<&str> = TILES
        .iter()
        .filter(|(_, x, y)| frame.shows(*x, *y))
        .map(|t| t.0)
        .chain(frame.off_grid.iter().map(String::as_str))
        .collect();
    if !frame.off_grid.is_empty() {
        let _ = write!(
            svg,
            r##"<line x1="0" y1="{y:.1}" x2="{w:.0}" y2="{y:.1}" stroke="#aab7b8" stroke-dasharray="4 3"/>"##,
            y = frame.rows() * STEP + 8.0
        );
    }
    for code in &shown {
        let Some((cx, cy)) = frame.centre(code) else {
            continue;
        };
        let (fill, stroke) = if involved.contains_key(code) {
            ("#d6eaf8", "#1f5f8b")
        } else {
            ("#f2f3f4", "#d5dbdb")
        };
        let tip = match involved.get(code) {
            Some(n) => format!("{} ({code}): {n}", name(code)),
            None => format!("{} ({code})", name(code)),
        };
        let _ = write!(
            svg,
            r#"<rect x="{:.1}" y="{:.1}" width="{TILE}" height="{TILE}" rx="4" fill="{fill}" stroke="{stroke}"><title>{}</title></rect>"#,
            cx - TILE / 2.0,
            cy - TILE / 2.0,
            escape(&tip)
        );
    }
    // Arcs, widest first so thin ones stay visible on top; each bends to its left, so A→B and
    // B→A do not overlap; a dot marks where it arrives.
    let mut sorted: Vec<&Hop> = hops.iter().collect();
    sorted.sort_by(|a, b| {
        b.seizures
            .cmp(&a.seizures)
            .then((&a.from, &a.to).cmp(&(&b.from, &b.to)))
    });
    for hop in sorted {
        let (Some((ax, ay)), Some((bx, by))) = (frame.centre(&hop.from), frame.centre(&hop.to))
        else {
            continue;
        };
        let width = 1.0 + 9.0 * hop.seizures as f64 / max.max(1) as f64;
        let (dx, dy) = (bx - ax, by - ay);
        let len = (dx * dx + dy * dy).sqrt().max(1.0);
        let bend = len * 0.2;
        let (cx, cy) = (
            (ax + bx) / 2.0 + dy / len * bend,
            (ay + by) / 2.0 - dx / len * bend,
        );
        let what = if mode.is_empty() {
            String::new()
        } else {
            format!(" · {mode}")
        };
        let _ = write!(
            svg,
            r#"<path class="route" d="M{ax:.1},{ay:.1} Q{cx:.1},{cy:.1} {bx:.1},{by:.1}" stroke="{colour}" stroke-opacity="0.6" stroke-width="{width:.1}" stroke-linecap="round" fill="none"><title>{} → {}{}: {}</title></path><circle cx="{bx:.1}" cy="{by:.1}" r="{:.1}" fill="{colour}"/>"#,
            escape(&name(&hop.from)),
            escape(&name(&hop.to)),
            escape(&what),
            hop.seizures,
            (width / 2.0 + 1.0).min(5.0),
        );
    }
    for code in &shown {
        let Some((cx, cy)) = frame.centre(code) else {
            continue;
        };
        let ink = if involved.contains_key(code) {
            "#17202a"
        } else {
            "#85929e"
        };
        let _ = write!(
            svg,
            r##"<text x="{cx:.1}" y="{:.1}" font-size="11" text-anchor="middle" fill="{ink}" stroke="#fff" stroke-width="3" paint-order="stroke">{}</text>"##,
            cy + 4.0,
            escape(code)
        );
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
            route_maps(
                evil,
                &[Hop {
                    from: evil.into(),
                    to: "FRA".into(),
                    mode: evil.into(),
                    seizures: 2,
                }],
                &|c: &str| c.to_owned(),
                evil,
            )
            .by_mode[0]
                .2
                .clone(),
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
    fn the_maps_draw_one_arc_per_hop_as_wide_as_its_seizures() {
        let maps = route_maps(
            "routes",
            &[
                hop("TUR", "BGR", "Road", 3),
                hop("TUR", "BGR", "Sea", 1),
                hop("BGR", "FRA", "Road", 2),
                hop("TUR", "GRC", "Sea", 1),
                hop("TUR", "NZL", "Sea", 1),
            ],
            &|c: &str| format!("name of {c}"),
            "unknown",
        );
        // All modes together: one arc per pair, the widest for TUR → BGR (4 seizures).
        assert_eq!(maps.overview.matches("<path class=\"route\"").count(), 4);
        assert!(
            maps.overview.contains(r#"stroke-width="10.0""#),
            "{}",
            maps.overview
        );
        // One map per mode, most seizures first, on the same scale.
        let modes: Vec<(&str, u64)> = maps.by_mode.iter().map(|m| (m.0.as_str(), m.1)).collect();
        assert_eq!(modes, vec![("Road", 5), ("Sea", 3)]);
        let road = &maps.by_mode[0].2;
        assert_eq!(road.matches("<path class=\"route\"").count(), 2);
        assert!(road.contains(r#"stroke-width="7.8""#), "3 of 4: {road}");
        assert!(road.contains("name of TUR → name of BGR · Road: 3"));
        // Tiles name their country; involved tiles show how many seizures passed.
        assert!(maps.overview.contains("name of TUR (TUR): 6"));
        // Context tiles around the involved ones, and none far away.
        assert!(maps.overview.contains(">SRB<") && !maps.overview.contains(">USA<"));
        // A code not on the grid still gets a tile, below it.
        assert!(maps.overview.contains(">NZL<"));
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
        let maps = route_maps("t", &[], &|c: &str| c.to_owned(), "?");
        assert!(maps.overview.ends_with("</svg>") && maps.by_mode.is_empty());
    }
}
