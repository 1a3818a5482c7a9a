//! Regional totals, pure: (a) the sum of members' tables in the clear, as a hub computes it today
//! under each member's statistics rule, with suppression applied to the total; (b) the masking
//! arithmetic of secure aggregation, so that a hub can learn the regional total and nothing of
//! any one member's table.
//!
//! # Secure aggregation (pairwise masks)
//!
//! Members `M = {m_1 < m_2 < … < m_n}` (ordered by node id) agree, per round, on a round id and a
//! layout: the list of cells (table id, row label, column label) every member fills, so each
//! member's table is a vector `x_m` of `L` counts ([`flatten`]). Each pair `{a, b}` holds a
//! 32-byte shared secret `s_ab` (from their X25519 keys; supplied by the caller, key agreement is
//! not in this module). The pair's mask for the round is
//!
//! ```text
//! mask_ab = HKDF-SHA256(salt = "tracenet stats secure aggregation v1", ikm = s_ab,
//!                       info = len‖round ‖ len‖min(a,b) ‖ len‖max(a,b) ‖ block)  as L little-endian u64
//! ```
//!
//! where `round` is the round's context ([`crate::stats::round::round_context`]: a digest of the
//! hub, round id, period, members and layout), so a round id reused in another period or by
//! another hub yields unrelated masks.
//!
//! Each member `a` also draws a fresh 32-byte seed `k_a` per round; its *self mask* is
//!
//! ```text
//! self_a = HKDF-SHA256(salt = "tracenet stats secure aggregation v1", ikm = k_a,
//!                      info = len‖round ‖ len‖"self" ‖ block)  as L little-endian u64
//! ```
//!
//! Member `a` sends `y_a = x_a + self_a + Σ_{b>a} mask_ab − Σ_{b<a} mask_ab` (wrapping `u64`,
//! [`masked`]). Every pairwise mask is added once (by the smaller id) and subtracted once (by the
//! larger), so `Σ_a y_a = Σ_a (x_a + self_a)` (mod 2^64, exact since true totals are far below
//! 2^64). The hub sums what it receives ([`sum_masked`]); each `y_a` alone is uniformly
//! distributed to anyone not holding `k_a` (the hub has no pairwise secret either).
//!
//! **Reveal (double masking).** The hub publishes the list of members whose masked vectors it
//! received, and every member on it confirms that list by signature (once per round: it confirms
//! no other). With every confirmation in hand, each survivor `s` reveals its seed `k_s` (the hub
//! removes `self_s`, [`self_mask`]) and, for each dropped member `d`, its signed contribution of
//! the pair for this round only ([`pair_contribution`]; never the secret `s_ab`, which later
//! rounds reuse); the hub subtracts them ([`remove_masks`]). A member reveals its seed only for a
//! list that holds it, and pairwise contributions only for members off that list, each after
//! every listed member confirmed the same list. So a hub that claims a member dropped while
//! holding its vector gets the pairwise contributions that would unmask it, but never its seed:
//! `y_d` stays masked by `self_d`. Getting both would take two confirmed lists, one with `d` and
//! one without, and an honest member confirms only one; lists must also hold a majority of the
//! round's members ([`crate::stats::round::check_confirm`]), so the hub would need every other
//! member of a majority to collude. If a survivor fails before revealing, the round restarts with
//! a new round id. Suppression is applied to the regional total only, after unmasking.
//!
//! Not covered here: key agreement and transport through the hub.

use std::collections::BTreeMap;

use ring::hkdf;

use super::suppress::{self, Published};
use super::{Period, Table};

/// Errors of aggregation.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AggregateError {
    /// Tables to sum are not the same table.
    #[error("tables differ: {0}")]
    Mismatch(String),
    /// Nothing to sum.
    #[error("no tables to sum")]
    Empty,
    /// A masked vector does not have the layout's length.
    #[error("masked vector has {got} cells, the layout has {want}")]
    Length {
        /// Cells received.
        got: usize,
        /// Cells expected.
        want: usize,
    },
    /// The key derivation refused (an output length beyond HKDF's limit).
    #[error("key derivation failed")]
    Derivation,
    /// A member is paired with itself.
    #[error("a member cannot be paired with itself: {0}")]
    SelfPair(String),
}

/// Sums the same table (id, period, columns) from several members in the clear; rows are the
/// union, in first-seen order.
pub fn sum_tables(tables: &[Table]) -> Result<Table, AggregateError> {
    let first = tables.first().ok_or(AggregateError::Empty)?;
    let mut rows: Vec<String> = Vec::new();
    let mut sums: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let cols = first.columns.len();
    for t in tables {
        if t.id != first.id || t.period != first.period || t.columns != first.columns {
            return Err(AggregateError::Mismatch(format!(
                "{} {} vs {} {}",
                first.id,
                first.period.label(),
                t.id,
                t.period.label()
            )));
        }
        for (label, line) in t.rows.iter().zip(&t.cells) {
            if !sums.contains_key(label) {
                rows.push(label.clone());
            }
            let acc = sums.entry(label.clone()).or_insert_with(|| vec![0; cols]);
            for (a, v) in acc.iter_mut().zip(line) {
                *a = a.saturating_add(*v);
            }
        }
    }
    let cells = rows
        .iter()
        .map(|r| sums.get(r).cloned().unwrap_or_else(|| vec![0; cols]))
        .collect();
    Ok(Table {
        rows,
        cells,
        ..first.clone()
    })
}

/// The regional table in the clear, suppressed with threshold `k` (applied to the total only).
pub fn regional(tables: &[Table], k: u64) -> Result<Published, AggregateError> {
    Ok(suppress::publish(&sum_tables(tables)?, k))
}

/// One cell of a round's layout.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CellKey {
    /// Table id.
    pub table: String,
    /// Row label.
    pub row: String,
    /// Column label.
    pub column: String,
}

/// The layout covering tables (union of their cells, sorted): what a hub announces for a round.
pub fn layout(tables: &[Table]) -> Vec<CellKey> {
    let mut keys: Vec<CellKey> = tables
        .iter()
        .flat_map(|t| {
            t.rows.iter().flat_map(move |r| {
                t.columns.iter().map(move |c| CellKey {
                    table: t.id.clone(),
                    row: r.clone(),
                    column: c.clone(),
                })
            })
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// A member's tables as a vector in layout order (cells it lacks are 0; cells outside the layout
/// are left out).
pub fn flatten(tables: &[Table], layout: &[CellKey]) -> Vec<u64> {
    layout
        .iter()
        .map(|k| {
            tables
                .iter()
                .find(|t| t.id == k.table)
                .map_or(0, |t| t.get(&k.row, &k.column))
        })
        .collect()
}

/// Rebuilds tables from a summed vector in layout order, with the given titles, units and
/// definitions taken from `templates` (one per table id) and `period`.
pub fn unflatten(
    sum: &[u64],
    layout: &[CellKey],
    templates: &[Table],
    period: Period,
) -> Vec<Table> {
    let mut out: Vec<Table> = Vec::new();
    for t in templates {
        let mut rows: Vec<String> = Vec::new();
        let mut columns: Vec<String> = t.columns.clone();
        for k in layout.iter().filter(|k| k.table == t.id) {
            if !rows.contains(&k.row) {
                rows.push(k.row.clone());
            }
            if !columns.contains(&k.column) {
                columns.push(k.column.clone());
            }
        }
        let mut cells = vec![vec![0u64; columns.len()]; rows.len()];
        for (k, v) in layout.iter().zip(sum) {
            if k.table != t.id {
                continue;
            }
            let r = rows.iter().position(|x| *x == k.row);
            let c = columns.iter().position(|x| *x == k.column);
            if let (Some(r), Some(c)) = (r, c)
                && let Some(cell) = cells.get_mut(r).and_then(|l| l.get_mut(c))
            {
                *cell = *v;
            }
        }
        out.push(Table {
            rows,
            columns,
            cells,
            period,
            ..t.clone()
        });
    }
    out
}

const SALT: &[u8] = b"tracenet stats secure aggregation v1";
/// Cells per HKDF expansion (8 bytes each, under HKDF-SHA256's 8160-byte limit).
const BLOCK: usize = 1000;

struct Len(usize);
impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn push_part(info: &mut Vec<u8>, part: &[u8]) {
    info.extend_from_slice(&(part.len() as u64).to_be_bytes());
    info.extend_from_slice(part);
}

/// `cells` pseudo-random `u64`s from `ikm`, the round and a label (HKDF-SHA256, one expansion
/// per [`BLOCK`] cells).
fn expand(
    round: &[u8],
    labels: &[&[u8]],
    ikm: &[u8],
    cells: usize,
) -> Result<Vec<u64>, AggregateError> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(ikm);
    let mut out = Vec::with_capacity(cells);
    let mut block: u64 = 0;
    while out.len() < cells {
        let n = (cells - out.len()).min(BLOCK);
        let mut info = Vec::new();
        push_part(&mut info, round);
        for l in labels {
            push_part(&mut info, l);
        }
        info.extend_from_slice(&block.to_be_bytes());
        let mut bytes = vec![0u8; n * 8];
        prk.expand(&[&info], Len(n * 8))
            .and_then(|okm| okm.fill(&mut bytes))
            .map_err(|_| AggregateError::Derivation)?;
        out.extend(bytes.chunks_exact(8).map(|c| {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            u64::from_le_bytes(w)
        }));
        block += 1;
    }
    Ok(out)
}

/// The mask of the pair `{a, b}` for a round: `cells` pseudo-random `u64`s (the same whichever
/// member of the pair asks).
pub fn pair_mask(
    round: &[u8],
    a: &str,
    b: &str,
    secret: &[u8; 32],
    cells: usize,
) -> Result<Vec<u64>, AggregateError> {
    if a == b {
        return Err(AggregateError::SelfPair(a.to_string()));
    }
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    expand(round, &[lo.as_bytes(), hi.as_bytes()], secret, cells)
}

/// A member's self mask for a round from its seed: `cells` pseudo-random `u64`s, added to its
/// vector and removed by the hub once the member reveals the seed.
pub fn self_mask(round: &[u8], seed: &[u8; 32], cells: usize) -> Result<Vec<u64>, AggregateError> {
    // "self" cannot be a pair's label: a pair's info holds two length-prefixed node ids.
    expand(round, &[b"self"], seed, cells)
}

/// What member `own` adds to its vector for its pair with `other`: `+mask` if `own < other`,
/// `−mask` (wrapping) otherwise. A survivor reveals this for a dropped member.
pub fn pair_contribution(
    round: &[u8],
    own: &str,
    other: &str,
    secret: &[u8; 32],
    cells: usize,
) -> Result<Vec<u64>, AggregateError> {
    let mask = pair_mask(round, own, other, secret, cells)?;
    Ok(if own < other {
        mask
    } else {
        mask.into_iter().map(|m| 0u64.wrapping_sub(m)).collect()
    })
}

/// Member `own`'s masked vector for a round: its true cells plus its self mask (from
/// `self_seed`) plus, for every other member, the signed pairwise mask derived from their shared
/// secret (`pairwise`: other member's node id and the 32-byte secret shared with it).
pub fn masked(
    round: &[u8],
    own: &str,
    cells: &[u64],
    self_seed: &[u8; 32],
    pairwise: &[(String, [u8; 32])],
) -> Result<Vec<u64>, AggregateError> {
    let mut out = cells.to_vec();
    add(&mut out, &self_mask(round, self_seed, cells.len())?);
    for (other, secret) in pairwise {
        add(
            &mut out,
            &pair_contribution(round, own, other, secret, cells.len())?,
        );
    }
    Ok(out)
}

fn add(acc: &mut [u64], v: &[u64]) {
    for (o, m) in acc.iter_mut().zip(v) {
        *o = o.wrapping_add(*m);
    }
}

/// The hub's sum of members' masked vectors (wrapping): the true total once every pair's masks
/// are in and the self masks removed (with [`remove_masks`]).
pub fn sum_masked(vectors: &[Vec<u64>], cells: usize) -> Result<Vec<u64>, AggregateError> {
    let mut sum = vec![0u64; cells];
    for v in vectors {
        if v.len() != cells {
            return Err(AggregateError::Length {
                got: v.len(),
                want: cells,
            });
        }
        for (s, x) in sum.iter_mut().zip(v) {
            *s = s.wrapping_add(*x);
        }
    }
    Ok(sum)
}

/// Removes masks from the survivors' sum: their self masks ([`self_mask`] of the seeds they
/// revealed) and the contributions they revealed for their pairs with dropped members
/// ([`pair_contribution`] with `own` = survivor, `other` = dropped member).
pub fn remove_masks(sum: &mut [u64], revealed: &[Vec<u64>]) -> Result<(), AggregateError> {
    for r in revealed {
        if r.len() != sum.len() {
            return Err(AggregateError::Length {
                got: r.len(),
                want: sum.len(),
            });
        }
        for (s, x) in sum.iter_mut().zip(r) {
            *s = s.wrapping_sub(*x);
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::stats::suppress::Cell;

    fn table(rows: &[&str], cells: Vec<Vec<u64>>) -> Table {
        Table {
            id: "firearms_by_category".into(),
            title: "Firearms by type".into(),
            unit: "firearms".into(),
            definition: String::new(),
            period: Period::year(2026),
            rows: rows.iter().map(|r| (*r).to_string()).collect(),
            columns: vec!["seized".into(), "found".into()],
            cells,
        }
    }

    /// Pairwise secrets of members 0..n: secret(i, j) = secret(j, i).
    fn secrets(members: &[&str]) -> Vec<Vec<(String, [u8; 32])>> {
        members
            .iter()
            .enumerate()
            .map(|(i, _)| {
                members
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(j, m)| {
                        let (lo, hi) = (i.min(j) as u8, i.max(j) as u8);
                        let mut s = [0u8; 32];
                        s[0] = lo;
                        s[1] = hi;
                        s[2] = 0xA5;
                        ((*m).to_string(), s)
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn clear_sum_unions_rows_and_suppresses_the_total() {
        let a = table(&["pistol", "rifle"], vec![vec![10, 1], vec![5, 0]]);
        let b = table(&["rifle", "shotgun"], vec![vec![4, 0], vec![1, 0]]);
        let sum = sum_tables(&[a.clone(), b]).unwrap();
        assert_eq!(sum.rows, vec!["pistol", "rifle", "shotgun"]);
        assert_eq!(sum.cells, vec![vec![10, 1], vec![9, 0], vec![1, 0]]);
        let p = regional(&[a], 3).unwrap();
        assert_eq!(p.cells[0][1], Cell::Suppressed);
        let other = Table {
            id: "x".into(),
            ..table(&[], vec![])
        };
        assert!(matches!(
            sum_tables(&[sum, other]),
            Err(AggregateError::Mismatch(_))
        ));
    }

    fn seed(i: usize) -> [u8; 32] {
        let mut s = [0x5Cu8; 32];
        s[0] = i as u8;
        s
    }

    /// The self masks of members `0..n` for `round`, as the hub derives them from revealed seeds.
    fn self_masks(round: &[u8], n: usize, cells: usize) -> Vec<Vec<u64>> {
        (0..n)
            .map(|i| self_mask(round, &seed(i), cells).unwrap())
            .collect()
    }

    #[test]
    fn masked_tables_sum_to_the_exact_regional_total() {
        let members = ["BEL-POL", "DEU-BKA", "FRA-POL", "NLD-POL"];
        // Canary counts: each member's own figures are distinctive.
        let tables = [
            table(&["pistol", "rifle"], vec![vec![101, 7], vec![3, 0]]),
            table(&["pistol", "rifle"], vec![vec![202, 0], vec![11, 1]]),
            table(&["pistol", "rifle"], vec![vec![303, 5], vec![0, 2]]),
            table(&["pistol", "rifle"], vec![vec![404, 9], vec![17, 3]]),
        ];
        let lay = layout(&tables);
        let secrets = secrets(&members);
        let round = b"round-2026-1";
        let masked_vectors: Vec<Vec<u64>> = members
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let x = flatten(std::slice::from_ref(&tables[i]), &lay);
                let y = masked(round, m, &x, &seed(i), &secrets[i]).unwrap();
                assert_ne!(x, y, "a member's masked table differs from its real one");
                for v in &x {
                    assert!(!y.contains(v), "canary count visible in the masked vector");
                }
                y
            })
            .collect();
        let mut sum = sum_masked(&masked_vectors, lay.len()).unwrap();
        let clear = flatten(std::slice::from_ref(&sum_tables(&tables).unwrap()), &lay);
        assert_ne!(sum, clear, "the self masks are still in");
        remove_masks(&mut sum, &self_masks(round, 4, lay.len())).unwrap();
        assert_eq!(sum, clear);
        let back = unflatten(&sum, &lay, &tables[..1], Period::year(2026));
        assert_eq!(back[0].get("pistol", "seized"), 1010);
        assert_eq!(back[0].get("rifle", "found"), 6);
    }

    #[test]
    fn a_dropped_member_is_removed_with_the_survivors_reveals() {
        let members = ["A", "B", "C"];
        let xs = [vec![5u64, 6, 7], vec![1, 1, 1], vec![100, 200, 300]];
        let secrets = secrets(&members);
        let round = b"r2";
        // C drops: only A and B send.
        let ys: Vec<Vec<u64>> = (0..2)
            .map(|i| masked(round, members[i], &xs[i], &seed(i), &secrets[i]).unwrap())
            .collect();
        let mut sum = sum_masked(&ys, 3).unwrap();
        assert_ne!(sum, vec![6, 7, 8]);
        let mut reveals: Vec<Vec<u64>> = (0..2)
            .map(|i| {
                let s = secrets[i].iter().find(|(m, _)| m == "C").unwrap().1;
                pair_contribution(round, members[i], "C", &s, 3).unwrap()
            })
            .collect();
        reveals.extend(self_masks(round, 2, 3));
        remove_masks(&mut sum, &reveals).unwrap();
        assert_eq!(sum, vec![6, 7, 8]);
    }

    #[test]
    fn a_member_claimed_dropped_stays_masked_by_its_own_seed() {
        // The hub holds C's vector but tells A and B that C dropped: with their pairwise
        // contributions it removes every pairwise mask from C's vector, and what is left is
        // C's figures under its self mask, whose seed C reveals only for a list that holds it.
        let members = ["A", "B", "C"];
        let x_c = vec![100u64, 200, 300];
        let secrets = secrets(&members);
        let round = b"r3";
        let y_c = masked(round, "C", &x_c, &seed(2), &secrets[2]).unwrap();
        let mut unmasked = y_c.clone();
        for i in 0..2 {
            let s = secrets[i].iter().find(|(m, _)| m == "C").unwrap().1;
            let c = pair_contribution(round, members[i], "C", &s, 3).unwrap();
            add(&mut unmasked, &c);
        }
        assert_eq!(
            unmasked,
            masked(round, "C", &x_c, &seed(2), &[]).unwrap(),
            "the pairwise masks are gone"
        );
        assert!(
            unmasked.iter().zip(&x_c).all(|(u, x)| u != x),
            "{unmasked:?}"
        );
        // Without the self mask (the protocol before double masking) it would be C's figures.
        remove_masks(&mut unmasked, &[self_mask(round, &seed(2), 3).unwrap()]).unwrap();
        assert_eq!(unmasked, x_c);
    }

    #[test]
    fn masks_depend_on_the_round_and_span_several_blocks() {
        let s = [7u8; 32];
        let a = pair_mask(b"r1", "A", "B", &s, 2500).unwrap();
        let b = pair_mask(b"r2", "A", "B", &s, 2500).unwrap();
        assert_eq!(a.len(), 2500);
        assert_ne!(a, b);
        assert_eq!(a, pair_mask(b"r1", "B", "A", &s, 2500).unwrap());
        assert_ne!(a[..1000], a[1000..2000]);
        assert!(pair_mask(b"r1", "A", "A", &s, 1).is_err());
        let own = self_mask(b"r1", &s, 2500).unwrap();
        assert_ne!(own, a, "a self mask is not a pair's mask from the same key");
        assert_ne!(own, self_mask(b"r2", &s, 2500).unwrap());
        assert!(matches!(
            sum_masked(&[vec![1]], 2),
            Err(AggregateError::Length { got: 1, want: 2 })
        ));
    }
}
