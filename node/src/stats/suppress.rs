//! Small-cell suppression with complementary suppression, pure.
//!
//! A table is published with its margins (row totals, column totals, grand total) as an
//! `(R+1) × (C+1)` grid ([`Table::with_margins`]). With threshold `k`:
//!
//! 1. **Primary suppression**: every cell or margin with `0 < value < k` is suppressed (a count
//!    of one or two firearms can point to one case).
//! 2. **Complementary suppression**: every line of the grid (a row with its total, a column with
//!    its total) is an equation the reader knows. Seen as a bipartite graph (grid rows and grid
//!    columns as vertices, suppressed cells as edges), a suppressed cell's value follows from the
//!    published values exactly when its edge is a *bridge* (lies on no cycle of suppressed
//!    cells): summing the equations of one side of the bridge cancels every other unknown. So
//!    while a suppressed cell is a bridge, one more cell is suppressed that closes a cycle
//!    through it (the smallest non-zero one that does; failing that, one in the same row or
//!    column, and so on). It ends with no bridge: at worst the whole grid, and a complete
//!    bipartite graph with two or more vertices a side has none.
//!
//! Suppressed cells are marked ([`Cell::Suppressed`]), never published as zero. `k` of 0 or 1
//! suppresses nothing.

use serde::{Deserialize, Serialize};

use super::{Period, Table};

/// A published cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cell {
    /// The count.
    Value(u64),
    /// Withheld by small-cell or complementary suppression.
    Suppressed,
}

impl Cell {
    /// The value, if published.
    pub fn value(self) -> Option<u64> {
        match self {
            Cell::Value(v) => Some(v),
            Cell::Suppressed => None,
        }
    }
}

/// A table as disclosed: margins included, small cells suppressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// Stable identifier.
    pub id: String,
    /// Title.
    pub title: String,
    /// What is counted.
    pub unit: String,
    /// What a cell counts.
    pub definition: String,
    /// The period.
    pub period: Period,
    /// Row labels (the last grid row, not listed, is the column totals).
    pub rows: Vec<String>,
    /// Column labels (the last grid column, not listed, is the row totals).
    pub columns: Vec<String>,
    /// `(rows+1) × (columns+1)` cells: the last column holds row totals, the last row column
    /// totals, the corner the grand total.
    pub cells: Vec<Vec<Cell>>,
    /// The threshold applied (cells below it and above 0 are suppressed; 0 or 1: none).
    pub threshold: u64,
}

impl Published {
    /// The grand total, if published.
    pub fn total(&self) -> Option<u64> {
        self.cells
            .last()
            .and_then(|r| r.last())
            .and_then(|c| c.value())
    }

    /// Number of suppressed cells (margins included).
    pub fn suppressed(&self) -> usize {
        self.cells
            .iter()
            .flatten()
            .filter(|c| **c == Cell::Suppressed)
            .count()
    }
}

/// Publishes a table under threshold `k`.
pub fn publish(table: &Table, k: u64) -> Published {
    let grid = table.with_margins();
    let mask = pattern(&grid, k);
    let cells = grid
        .iter()
        .zip(&mask)
        .map(|(vals, sup)| {
            vals.iter()
                .zip(sup)
                .map(|(v, s)| {
                    if *s {
                        Cell::Suppressed
                    } else {
                        Cell::Value(*v)
                    }
                })
                .collect()
        })
        .collect();
    Published {
        id: table.id.clone(),
        title: table.title.clone(),
        unit: table.unit.clone(),
        definition: table.definition.clone(),
        period: table.period,
        rows: table.rows.clone(),
        columns: table.columns.clone(),
        cells,
        threshold: k,
    }
}

/// Which cells of a grid with margins to suppress under threshold `k` (see the module doc).
/// Every grid row must have the same length.
pub fn pattern(grid: &[Vec<u64>], k: u64) -> Vec<Vec<bool>> {
    let mut sup: Vec<Vec<bool>> = grid
        .iter()
        .map(|r| r.iter().map(|v| *v > 0 && *v < k).collect())
        .collect();
    let rows = grid.len();
    let cols = grid.first().map_or(0, Vec::len);
    if rows < 2 || cols < 2 || grid.iter().any(|r| r.len() != cols) {
        return sup;
    }
    // Each round fixes one bridge by suppressing one more cell; at most rows × cols rounds.
    for _ in 0..rows * cols {
        let Some((r, c)) = find_bridge(&sup) else {
            break;
        };
        let Some((i, j)) = complement(grid, &sup, r, c) else {
            break;
        };
        if let Some(cell) = sup.get_mut(i).and_then(|l| l.get_mut(j)) {
            *cell = true;
        }
    }
    sup
}

/// Vertices: grid rows `0..rows`, grid columns `rows..rows+cols`.
fn reachable(sup: &[Vec<bool>], start: usize, skip: (usize, usize)) -> Vec<bool> {
    let rows = sup.len();
    let cols = sup.first().map_or(0, Vec::len);
    let mut seen = vec![false; rows + cols];
    let mut stack = vec![start];
    if let Some(s) = seen.get_mut(start) {
        *s = true;
    }
    while let Some(v) = stack.pop() {
        let neighbours: Vec<usize> = if v < rows {
            (0..cols)
                .filter(|j| (v, *j) != skip && sup[v][*j])
                .map(|j| rows + j)
                .collect()
        } else {
            let j = v - rows;
            (0..rows)
                .filter(|i| (*i, j) != skip && sup[*i][j])
                .collect()
        };
        for n in neighbours {
            if !seen[n] {
                seen[n] = true;
                stack.push(n);
            }
        }
    }
    seen
}

/// A suppressed cell lying on no cycle of suppressed cells.
fn find_bridge(sup: &[Vec<bool>]) -> Option<(usize, usize)> {
    let rows = sup.len();
    for (i, line) in sup.iter().enumerate() {
        for (j, s) in line.iter().enumerate() {
            if *s && !reachable(sup, i, (i, j))[rows + j] {
                return Some((i, j));
            }
        }
    }
    None
}

/// The cell to suppress next so the bridge (r, c) gets onto a cycle (or closer to one).
fn complement(grid: &[Vec<u64>], sup: &[Vec<bool>], r: usize, c: usize) -> Option<(usize, usize)> {
    let rows = sup.len();
    let cols = sup.first().map_or(0, Vec::len);
    let side_r = reachable(sup, r, (r, c));
    let free = |i: usize, j: usize| !sup[i][j];
    // Prefer small non-zero cells; a zero is taken only when nothing else closes the cycle.
    let key = |&(i, j): &(usize, usize)| {
        let v = grid[i][j];
        (v == 0, v)
    };
    // Closing edges: a row on r's side with a column on c's side, or the reverse. Vertices in
    // neither side are outside the component; joining them does not close a cycle.
    let side_c = reachable(sup, rows + c, (r, c));
    let closing = (0..rows)
        .flat_map(|i| (0..cols).map(move |j| (i, j)))
        .filter(|&(i, j)| free(i, j))
        .filter(|&(i, j)| (side_r[i] && side_c[rows + j]) || (side_c[i] && side_r[rows + j]))
        .min_by_key(key);
    if closing.is_some() {
        return closing;
    }
    let in_row = (0..cols).map(|j| (r, j)).filter(|&(i, j)| free(i, j));
    let in_col = (0..rows).map(|i| (i, c)).filter(|&(i, j)| free(i, j));
    if let Some(cell) = in_row.chain(in_col).min_by_key(key) {
        return Some(cell);
    }
    (0..rows)
        .flat_map(|i| (0..cols).map(move |j| (i, j)))
        .filter(|&(i, j)| free(i, j))
        .min_by_key(key)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn table(cells: Vec<Vec<u64>>) -> Table {
        let rows = (0..cells.len()).map(|i| format!("r{i}")).collect();
        let columns = (0..cells.first().map_or(0, Vec::len))
            .map(|j| format!("c{j}"))
            .collect();
        Table {
            id: "t".into(),
            title: "t".into(),
            unit: "firearms".into(),
            definition: String::new(),
            period: Period::year(2026),
            rows,
            columns,
            cells,
        }
    }

    /// Whether the suppressed cell `target` is determined by the published grid: the line
    /// equations restricted to suppressed unknowns (Gaussian elimination over f64 on a 0/±1
    /// system) have the unit vector of `target` in their row space.
    fn determined(published: &Published, target: usize) -> bool {
        let unknowns: Vec<(usize, usize)> = published
            .cells
            .iter()
            .enumerate()
            .flat_map(|(i, l)| {
                l.iter()
                    .enumerate()
                    .filter(|(_, c)| **c == Cell::Suppressed)
                    .map(move |(j, _)| (i, j))
            })
            .collect();
        let rows = published.cells.len();
        let cols = published.cells[0].len();
        let n = unknowns.len();
        // Row equation i: sum of inner cells - row total = 0; column j likewise.
        let mut eqs: Vec<Vec<f64>> = Vec::new();
        for i in 0..rows {
            eqs.push(
                unknowns
                    .iter()
                    .map(|&(a, b)| {
                        if a == i {
                            if b == cols - 1 { -1.0 } else { 1.0 }
                        } else {
                            0.0
                        }
                    })
                    .collect(),
            );
        }
        for j in 0..cols {
            eqs.push(
                unknowns
                    .iter()
                    .map(|&(a, b)| {
                        if b == j {
                            if a == rows - 1 { -1.0 } else { 1.0 }
                        } else {
                            0.0
                        }
                    })
                    .collect(),
            );
        }
        let rank = |m: &mut Vec<Vec<f64>>| -> usize {
            let mut r = 0;
            for c in 0..n {
                let Some(p) = (r..m.len()).find(|&x| m[x][c].abs() > 1e-9) else {
                    continue;
                };
                m.swap(r, p);
                let pivot = m[r].clone();
                for (x, line) in m.iter_mut().enumerate() {
                    if x != r && line[c].abs() > 1e-9 {
                        let f = line[c] / pivot[c];
                        for (a, b) in line.iter_mut().zip(&pivot) {
                            *a -= f * b;
                        }
                    }
                }
                r += 1;
            }
            r
        };
        let mut a = eqs.clone();
        let base = rank(&mut a);
        let mut b = eqs;
        let mut unit = vec![0.0; n];
        unit[target] = 1.0;
        b.push(unit);
        rank(&mut b) == base
    }

    #[test]
    fn a_single_small_cell_takes_complements_in_its_row_and_column() {
        let p = publish(&table(vec![vec![1, 10, 12], vec![9, 8, 15]]), 3);
        assert_eq!(p.cells[0][0], Cell::Suppressed);
        assert!(p.suppressed() >= 4);
        let n = p.suppressed();
        for t in 0..n {
            assert!(!determined(&p, t));
        }
        // Published values are the true ones.
        assert_eq!(p.total(), Some(55));
    }

    #[test]
    fn threshold_one_suppresses_nothing() {
        let p = publish(&table(vec![vec![1, 2], vec![0, 1]]), 1);
        assert_eq!(p.suppressed(), 0);
        assert_eq!(p.cells[2][2], Cell::Value(4));
    }

    #[test]
    fn a_single_row_table_suppresses_the_column_total_too() {
        let p = publish(&table(vec![vec![2, 30, 40]]), 5);
        assert_eq!(p.cells[0][0], Cell::Suppressed);
        assert_eq!(p.cells[1][0], Cell::Suppressed);
        for t in 0..p.suppressed() {
            assert!(!determined(&p, t));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn no_suppressed_cell_is_recoverable_from_the_margins(
            (r, c) in (1usize..6, 1usize..5),
            seed in proptest::collection::vec(0u64..25, 30),
            k in 0u64..8,
        ) {
            let cells: Vec<Vec<u64>> = (0..r).map(|i| (0..c).map(|j| seed[i * 5 + j]).collect()).collect();
            let t = table(cells);
            let p = publish(&t, k);
            let grid = t.with_margins();
            for (i, line) in p.cells.iter().enumerate() {
                for (j, cell) in line.iter().enumerate() {
                    let v = grid[i][j];
                    match cell {
                        Cell::Value(x) => {
                            prop_assert_eq!(*x, v);
                            prop_assert!(v == 0 || v >= k, "small cell published");
                        }
                        Cell::Suppressed => {}
                    }
                }
            }
            for t in 0..p.suppressed() {
                prop_assert!(!determined(&p, t), "suppressed cell {} recoverable: {:?}", t, p.cells);
            }
        }
    }
}
