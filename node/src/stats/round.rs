//! Secure-aggregation rounds, pure: the cell layout every member of a round fills, its digest,
//! who the members of a hub's region are, and the checks a member makes before it sends its
//! masked tables or reveals masks. The arithmetic is in [`super::aggregate`]; the messages go
//! through [`crate::hub::aggregation`] (the hub) and [`crate::peer::aggregation`] (a member).
//!
//! # A round
//!
//! 1. **Mask.** The hub sends every member of its region the round id, the period, the sorted
//!    member list and the layout digest. Each member checks them against its own directory
//!    replica and code, computes its tables, flattens them into the layout and sends back the
//!    masked vector ([`super::aggregate::masked`], pairwise secrets from the members' X25519
//!    sealing keys). It keeps what it sent, so asking again returns the same vector (two
//!    different vectors for one round would reveal the difference of its counts).
//! 2. **Confirm.** The hub names the members whose vectors it received. Each of them checks the
//!    list ([`check_confirm`]: it holds this node, only members of the round, and a majority of
//!    them, at least [`MIN_MEMBERS`]), keeps it, and signs it ([`confirmation_statement`]). A
//!    member confirms one list per round and refuses any other.
//! 3. **Reveal.** The hub sends each received member the list with every listed member's
//!    confirmation. With all of them valid ([`check_confirmations`]) and the list the one it
//!    confirmed, a member reveals the seed of its self mask and its pairwise contributions with
//!    the members off the list ([`super::aggregate::pair_contribution`]); the hub removes them
//!    from the sum. If a member fails during confirm or reveal, the round starts again under a
//!    new id.
//!
//! The layout is fixed in advance and does not depend on anyone's data (a layout built from the
//! members' row labels would tell the hub which labels each member has): every value of each
//! closed dimension (enumerations, ISO 3166 countries) times every column. Tables whose rows are
//! free text (calibres, part kinds) have no such layout and are left out of regional rounds.
//!
//! A member refuses a round whose member list differs from its own replica's (the hub cannot
//! pick a subset), with fewer than [`MIN_MEMBERS`] members, or a received list that would leave
//! fewer than [`MIN_MEMBERS`] contributions or no majority in the total. A hub that claims a
//! member dropped when it did not gets that member's pairwise contributions but not its self
//! mask (double masking, see [`super::aggregate`]): unmasking it would take a second confirmed
//! list holding it, signed by every other member on that list, so the hub would need the rest of
//! a majority to collude. What this does not stop: a hub that runs several rounds of one period
//! and subtracts their totals, bounded by [`MAX_ROUNDS_PER_PERIOD`] per hub and period; every
//! round a member takes part in is in its audit log.

use ring::digest;

use super::aggregate::CellKey;
use super::{Dimension, Period, TABLES, Table, fixed_rows};
use crate::country::ALL as COUNTRIES;
use crate::ids::NodeId;
use crate::roster::RosterView;

/// Fewest members a round may have, and fewest contributions a total may hold: with two, each
/// would learn the other's figures from the total.
pub const MIN_MEMBERS: usize = 3;
/// Longest round id.
pub const MAX_ROUND_ID: usize = 64;
/// Most rounds a member answers for one hub and one period (restarts included): it bounds what
/// a hub can make a member store, and how many totals of one period a hub can compare.
pub const MAX_ROUNDS_PER_PERIOD: usize = 10;

/// Why a member refuses a round step. None of these passes on retry as it is: the hub must start
/// a round that agrees with the member's directory and code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoundError {
    /// The request is malformed (round id, period, phase, unsorted lists).
    #[error("{0}")]
    BadRequest(String),
    /// The caller is not an active hub whose region includes this node's State.
    #[error("{0} is not a hub whose region includes this node")]
    NotOurHub(String),
    /// The member list is not the region's as this node's directory replica lists it (or the
    /// replica is behind: retrying after it catches up may help).
    #[error("the round's members differ from the region's: expected {expected:?}")]
    Members {
        /// What this node's replica lists.
        expected: Vec<String>,
    },
    /// Too few members or contributions for a total that hides each one.
    #[error("a round needs at least {MIN_MEMBERS} contributions, this one would have {0}")]
    TooFew(usize),
    /// The hub's layout is not this node's (another version of the tables).
    #[error("the round's cell layout differs from this node's")]
    Layout,
    /// This node already answered [`MAX_ROUNDS_PER_PERIOD`] rounds of that hub for the period.
    #[error("this node answered its last round of {0} for this hub")]
    Budget(String),
    /// The reveal step does not fit the round this node took part in.
    #[error("reveal refused: {0}")]
    Reveal(String),
}

/// The cells a round fills, with the tables they rebuild into.
#[derive(Debug, Clone)]
pub struct RoundLayout {
    /// Every cell, in table order, then row, then column.
    pub cells: Vec<CellKey>,
    /// Empty tables of the period (titles, units, definitions, columns) to rebuild the totals
    /// into, in the order of the report.
    pub templates: Vec<Table>,
    /// Ids of the tables left out (free-text rows).
    pub left_out: Vec<String>,
}

/// The rows a regional round uses for a dimension: every value it can take, or `None` when it
/// is free text.
fn domain(dimension: Dimension) -> Option<Vec<String>> {
    let countries = || COUNTRIES.iter().map(|c| (*c).to_string());
    match dimension {
        Dimension::CountryOfManufacture => Some(countries().chain(["unknown".into()]).collect()),
        Dimension::RouteCountry => Some(
            countries()
                .chain(["unknown".into(), "none_recorded".into()])
                .collect(),
        ),
        Dimension::OriginEstablished => {
            Some(vec!["traced_or_established".into(), "not_traced".into()])
        }
        other => fixed_rows(other),
    }
}

/// The layout of a period's regional round (see the module documentation).
pub fn layout(period: Period) -> RoundLayout {
    let empty = super::report(period, &[], &[], 0);
    let (mut cells, mut templates, mut left_out) = (Vec::new(), Vec::new(), Vec::new());
    for table in empty.tables {
        let rows = match TABLES.iter().find(|s| s.id == table.id) {
            Some(spec) => domain(spec.dimension),
            // The tracing table: its rows are fixed.
            None => Some(table.rows.clone()),
        };
        let Some(rows) = rows else {
            left_out.push(table.id.clone());
            continue;
        };
        for row in &rows {
            for column in &table.columns {
                cells.push(CellKey {
                    table: table.id.clone(),
                    row: row.clone(),
                    column: column.clone(),
                });
            }
        }
        templates.push(Table {
            rows: Vec::new(),
            cells: Vec::new(),
            ..table
        });
    }
    RoundLayout {
        cells,
        templates,
        left_out,
    }
}

/// The regional tables as published: rows of open dimensions (countries) that are zero in every
/// column are dropped, as a node's own tables only list the countries it has; rows of closed
/// dimensions (enumerations) all stay, as they do in a node's own tables. Dropping a row of
/// zeros changes no margin and hides nothing suppression would.
pub fn trim(tables: Vec<Table>) -> Vec<Table> {
    tables
        .into_iter()
        .map(|mut t| {
            let open = TABLES.iter().find(|s| s.id == t.id).is_some_and(|s| {
                matches!(
                    s.dimension,
                    Dimension::CountryOfManufacture | Dimension::RouteCountry
                )
            });
            if open {
                let keep: Vec<bool> = t.cells.iter().map(|l| l.iter().any(|v| *v > 0)).collect();
                let mut k = keep.iter();
                t.rows.retain(|_| k.next().copied().unwrap_or(false));
                let mut k = keep.iter();
                t.cells.retain(|_| k.next().copied().unwrap_or(false));
            }
            t
        })
        .collect()
}

/// SHA-256 of a layout (length-prefixed table, row and column of every cell, in order): what the
/// hub and a member compare to know they fill the same cells.
pub fn layout_digest(cells: &[CellKey]) -> Vec<u8> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"tracenet stats layout v1");
    for c in cells {
        for part in [&c.table, &c.row, &c.column] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part.as_bytes());
        }
    }
    ctx.finish().as_ref().to_vec()
}

/// The members of `hub`'s region, sorted: active nodes of the States its organisation lists,
/// that are not hubs and have published a sealing key (pairwise masks need one). The same
/// function on the hub and on each member, over their own replicas.
pub fn region_members(view: &RosterView, hub: &NodeId) -> Vec<NodeId> {
    let Some(states) = view.hubs.member_states.get(hub) else {
        return Vec::new();
    };
    let mut out: Vec<NodeId> = view
        .hubs
        .sealing_keys
        .keys()
        .filter(|n| !view.hubs.hubs.contains(*n) && n != &hub)
        .filter(|n| n.state().is_some_and(|s| states.contains(&s)))
        .cloned()
        .collect();
    out.sort();
    out
}

/// Whether `hub` may run rounds that include `own`: an active hub whose organisation lists
/// `own`'s State.
pub fn is_our_hub(view: &RosterView, hub: &NodeId, own: &NodeId) -> bool {
    view.hubs.hubs.contains(hub)
        && own.state().is_some_and(|s| {
            view.hubs
                .member_states
                .get(hub)
                .is_some_and(|states| states.contains(&s))
        })
}

/// A list of node ids on the wire: parsed, sorted, without duplicates.
pub fn parse_sorted(list: &[String], what: &str) -> Result<Vec<NodeId>, RoundError> {
    let ids = list
        .iter()
        .map(|s| NodeId::parse(s).map_err(|e| RoundError::BadRequest(format!("{what}: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    if ids.windows(2).any(|w| w[0] >= w[1]) {
        return Err(RoundError::BadRequest(format!(
            "{what} must be sorted and without duplicates"
        )));
    }
    Ok(ids)
}

/// A round id: 1 to [`MAX_ROUND_ID`] characters of `[A-Za-z0-9_-]`.
pub fn check_round_id(id: &str) -> Result<(), RoundError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ROUND_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(RoundError::BadRequest(format!(
            "round_id must be 1 to {MAX_ROUND_ID} characters of letters, digits, '-' and '_'"
        )))
    }
}

/// The mask step's checks on a member: `members` is exactly the region as `expected` (its own
/// replica's) says, holds `own`, is large enough, and the layout is this node's.
pub fn check_mask(
    own: &NodeId,
    members: &[NodeId],
    expected: &[NodeId],
    digest: &[u8],
    own_digest: &[u8],
) -> Result<(), RoundError> {
    if digest != own_digest {
        return Err(RoundError::Layout);
    }
    if members != expected || !members.contains(own) {
        return Err(RoundError::Members {
            expected: expected.iter().map(ToString::to_string).collect(),
        });
    }
    if members.len() < MIN_MEMBERS {
        return Err(RoundError::TooFew(members.len()));
    }
    Ok(())
}

/// The confirm step's checks on a member that sent its mask for the round with `members`: the
/// received list holds `own`, only members of the round, at least [`MIN_MEMBERS`] and more than
/// half of them (so two confirmed lists always share a member). Returns the members off the
/// list (dropped out), whose pairwise contributions this member will reveal.
pub fn check_confirm(
    own: &NodeId,
    members: &[NodeId],
    received: &[NodeId],
) -> Result<Vec<NodeId>, RoundError> {
    if !received.contains(own) {
        return Err(RoundError::Reveal(
            "this node's own vector is not among those received".into(),
        ));
    }
    if let Some(stranger) = received.iter().find(|r| !members.contains(r)) {
        return Err(RoundError::Reveal(format!(
            "{stranger} is not a member of the round"
        )));
    }
    if received.len() < MIN_MEMBERS || received.len() * 2 <= members.len() {
        return Err(RoundError::TooFew(received.len()));
    }
    Ok(members
        .iter()
        .filter(|m| !received.contains(m))
        .cloned()
        .collect())
}

/// Length-prefixed parts and lists, so that no two different sequences encode alike.
#[derive(Default)]
struct Encoder(Vec<u8>);

impl Encoder {
    fn part(mut self, b: &[u8]) -> Encoder {
        self.0
            .extend_from_slice(&u32::try_from(b.len()).unwrap_or(u32::MAX).to_be_bytes());
        self.0.extend_from_slice(b);
        self
    }

    fn list(self, l: &[NodeId]) -> Encoder {
        let n = u32::try_from(l.len()).unwrap_or(u32::MAX).to_be_bytes();
        l.iter()
            .fold(self.part(&n), |e, m| e.part(m.as_str().as_bytes()))
    }
}

/// What every mask of a round is derived from (the `round` input of
/// [`super::aggregate::masked`], [`super::aggregate::pair_contribution`] and
/// [`super::aggregate::self_mask`]): SHA-256 over the hub, the round id, the period, the members
/// and the layout digest. A hub that reuses a round id for another period, member list or layout,
/// or another hub using the same id, gets masks unrelated to the first round's, so subtracting
/// two rounds' vectors leaves them masked.
pub fn round_context(
    hub: &NodeId,
    round_id: &str,
    period: &str,
    members: &[NodeId],
    layout_digest: &[u8],
) -> Vec<u8> {
    let e = Encoder::default()
        .part(b"tracenet aggregation round v2")
        .part(hub.as_str().as_bytes())
        .part(round_id.as_bytes())
        .part(period.as_bytes())
        .list(members)
        .part(layout_digest);
    digest::digest(&digest::SHA256, &e.0).as_ref().to_vec()
}

/// A digest of the sealing keys the directory lists for `members` (absent keys count as empty):
/// a member keeps it with its masked vector, and refuses to reveal pairwise masks once it
/// changed, since masks derived from a rotated key would not cancel those it sent and the
/// published total would be wrong without anyone noticing.
pub fn sealing_keys_digest(
    keys: &std::collections::HashMap<NodeId, Vec<u8>>,
    members: &[NodeId],
) -> Vec<u8> {
    let e = members.iter().fold(
        Encoder::default().part(b"tracenet aggregation sealing keys v1"),
        |e, m| {
            e.part(m.as_str().as_bytes())
                .part(keys.get(m).map(Vec::as_slice).unwrap_or_default())
        },
    );
    digest::digest(&digest::SHA256, &e.0).as_ref().to_vec()
}

/// What a member signs to confirm a round's received list: the hub, the round, the period, the
/// members and the received list, each length-prefixed, so no two rounds or lists share one.
pub fn confirmation_statement(
    hub: &NodeId,
    round_id: &str,
    period: &str,
    members: &[NodeId],
    received: &[NodeId],
) -> Vec<u8> {
    Encoder::default()
        .part(hub.as_str().as_bytes())
        .part(round_id.as_bytes())
        .part(period.as_bytes())
        .list(members)
        .list(received)
        .0
}

/// The reveal step's check that every member on the received list confirmed it: `signature_of`
/// gives the confirmation sent for a member, `valid` whether it verifies over this round's
/// statement. The first member without a valid one is named.
pub fn check_confirmations<'a>(
    received: &[NodeId],
    signature_of: impl Fn(&NodeId) -> Option<&'a [u8]>,
    valid: impl Fn(&NodeId, &[u8]) -> bool,
) -> Result<(), RoundError> {
    for m in received {
        match signature_of(m) {
            Some(sig) if valid(m, sig) => {}
            Some(_) => {
                return Err(RoundError::Reveal(format!(
                    "the confirmation of {m} does not verify for this list"
                )));
            }
            None => {
                return Err(RoundError::Reveal(format!("{m} did not confirm this list")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::country::CountryCode;
    use crate::fixtures;

    fn id(s: &str) -> NodeId {
        NodeId::parse(s).unwrap()
    }

    fn ids(v: &[&str]) -> Vec<NodeId> {
        v.iter().map(|s| id(s)).collect()
    }

    #[test]
    fn layout_is_fixed_and_leaves_free_text_tables_out() {
        let a = layout(Period::year(2026));
        let b = layout(Period::year(2025));
        assert_eq!(layout_digest(&a.cells), layout_digest(&b.cells));
        assert!(a.left_out.contains(&"ammunition_by_calibre".to_string()));
        assert!(a.left_out.contains(&"parts_by_kind".to_string()));
        // Every ISO country is a row of the country-of-manufacture table.
        let n = a
            .cells
            .iter()
            .filter(|c| c.table == "firearms_by_country_of_manufacture" && c.column == "seized")
            .count();
        assert_eq!(n, COUNTRIES.len() + 1);
        assert!(
            a.cells
                .iter()
                .any(|c| c.table == super::super::TRACING_TABLE && c.row == "received")
        );
        // A record's own labels land in the layout: computed tables flatten without loss.
        let rec = crate::fixtures::record(1, "r1");
        let year: u16 = rec.event.as_ref().unwrap().date[..4].parse().unwrap();
        let report = super::super::report(Period::year(year), &[rec], &[], 0);
        let x = super::super::aggregate::flatten(&report.tables, &a.cells);
        let kept: u64 = x.iter().sum();
        let all: u64 = report
            .tables
            .iter()
            .filter(|t| !a.left_out.contains(&t.id))
            .map(Table::total)
            .sum();
        assert_eq!(kept, all);
        assert!(kept > 0);
    }

    #[test]
    fn trimming_drops_only_zero_rows_of_country_tables() {
        let lay = layout(Period::year(2026));
        let mut sum = vec![0u64; lay.cells.len()];
        let at = |t: &str, r: &str| {
            lay.cells
                .iter()
                .position(|c| c.table == t && c.row == r && c.column == "seized")
                .unwrap()
        };
        sum[at("firearms_by_country_of_manufacture", "AUT")] = 4;
        let tables = super::super::aggregate::unflatten(
            &sum,
            &lay.cells,
            &lay.templates,
            Period::year(2026),
        );
        let trimmed = trim(tables);
        let com = trimmed
            .iter()
            .find(|t| t.id == "firearms_by_country_of_manufacture")
            .unwrap();
        assert_eq!(com.rows, vec!["AUT"]);
        assert_eq!(com.get("AUT", "seized"), 4);
        let cat = trimmed
            .iter()
            .find(|t| t.id == "firearms_by_category")
            .unwrap();
        assert_eq!(
            cat.rows.len(),
            fixed_rows(Dimension::WeaponCategory).unwrap().len()
        );
    }

    #[test]
    fn region_members_are_the_listed_states_nodes_with_keys() {
        let mut v = fixtures::roster(&["BEL-POL", "DEU-BKA", "FRA-POL", "ITA-CAR", "WEST-HUB"]);
        let hub = id("WEST-HUB");
        v.hubs.hubs.insert(hub.clone());
        v.hubs.member_states.insert(
            hub.clone(),
            ["BEL", "DEU", "FRA"]
                .iter()
                .map(|c| CountryCode::parse(c).unwrap())
                .collect(),
        );
        for n in ["BEL-POL", "DEU-BKA", "ITA-CAR", "WEST-HUB"] {
            v.hubs.sealing_keys.insert(id(n), vec![1; 32]);
        }
        // FRA-POL has no sealing key; ITA is not in the region; the hub is no member.
        assert_eq!(region_members(&v, &hub), ids(&["BEL-POL", "DEU-BKA"]));
        assert!(is_our_hub(&v, &hub, &id("BEL-POL")));
        assert!(!is_our_hub(&v, &hub, &id("ITA-CAR")));
        assert!(!is_our_hub(&v, &id("DEU-BKA"), &id("BEL-POL")));
    }

    #[test]
    fn members_refuse_subsets_small_rounds_and_bad_reveals() {
        let m = ids(&["BEL-POL", "DEU-BKA", "FRA-POL"]);
        let d = layout_digest(&layout(Period::year(2026)).cells);
        assert_eq!(check_mask(&m[0], &m, &m, &d, &d), Ok(()));
        assert_eq!(
            check_mask(&m[0], &m, &m, b"other", &d),
            Err(RoundError::Layout)
        );
        assert!(matches!(
            check_mask(&m[0], &m[..2], &m, &d, &d),
            Err(RoundError::Members { .. })
        ));
        assert_eq!(
            check_mask(&m[0], &m[..2], &m[..2], &d, &d),
            Err(RoundError::TooFew(2))
        );
        let four = ids(&["BEL-POL", "DEU-BKA", "FRA-POL", "NLD-POL"]);
        assert_eq!(
            check_confirm(&four[0], &four, &four[..3]),
            Ok(ids(&["NLD-POL"]))
        );
        assert_eq!(check_confirm(&four[0], &four, &four), Ok(vec![]));
        assert!(check_confirm(&four[0], &four, &four[1..]).is_err());
        assert_eq!(
            check_confirm(&four[0], &four, &four[..2]),
            Err(RoundError::TooFew(2))
        );
        assert!(check_confirm(&four[0], &four[..3], &four).is_err());
        // Half of the round is not enough: two such lists could be disjoint.
        let six = ids(&[
            "BEL-POL", "DEU-BKA", "ESP-GCV", "FRA-POL", "ITA-CAR", "NLD-POL",
        ]);
        assert_eq!(
            check_confirm(&six[0], &six, &six[..3]),
            Err(RoundError::TooFew(3))
        );
        assert_eq!(
            check_confirm(&six[0], &six, &six[..4]),
            Ok(six[4..].to_vec())
        );
        assert!(parse_sorted(&["DEU-BKA".into(), "BEL-POL".into()], "members").is_err());
        assert!(check_round_id("r-1_a").is_ok());
        assert!(check_round_id("").is_err());
        assert!(check_round_id("a b").is_err());
    }

    #[test]
    fn a_sealing_key_rotation_changes_the_keys_digest() {
        let three = ids(&["BEL-POL", "DEU-BKA", "FRA-POL"]);
        let mut keys: std::collections::HashMap<NodeId, Vec<u8>> =
            three.iter().map(|m| (m.clone(), vec![7u8; 32])).collect();
        let before = sealing_keys_digest(&keys, &three);
        assert_eq!(before, sealing_keys_digest(&keys, &three));
        keys.insert(id("NLD-POL"), vec![9; 32]);
        assert_eq!(
            before,
            sealing_keys_digest(&keys, &three),
            "others' keys do not count"
        );
        keys.insert(id("DEU-BKA"), vec![8; 32]);
        assert_ne!(before, sealing_keys_digest(&keys, &three));
    }

    #[test]
    fn a_round_context_differs_with_each_of_its_inputs() {
        let four = ids(&["BEL-POL", "DEU-BKA", "FRA-POL", "NLD-POL"]);
        let hub = id("WESTREG-HUB");
        let base = round_context(&hub, "r1", "2026", &four, b"layout");
        for other in [
            round_context(&id("EASTREG-HUB"), "r1", "2026", &four, b"layout"),
            round_context(&hub, "r2", "2026", &four, b"layout"),
            round_context(&hub, "r1", "1900", &four, b"layout"),
            round_context(&hub, "r1", "2026", &four[1..], b"layout"),
            round_context(&hub, "r1", "2026", &four, b"other"),
        ] {
            assert_ne!(base, other);
        }
        assert_eq!(base, round_context(&hub, "r1", "2026", &four, b"layout"));
    }

    #[test]
    fn a_confirmation_names_its_hub_round_period_and_lists() {
        let four = ids(&["BEL-POL", "DEU-BKA", "FRA-POL", "NLD-POL"]);
        let hub = id("WESTREG-HUB");
        let base = confirmation_statement(&hub, "r1", "2026", &four, &four[..3]);
        for other in [
            confirmation_statement(&id("EASTREG-HUB"), "r1", "2026", &four, &four[..3]),
            confirmation_statement(&hub, "r2", "2026", &four, &four[..3]),
            confirmation_statement(&hub, "r1", "2025", &four, &four[..3]),
            confirmation_statement(&hub, "r1", "2026", &four, &four[1..]),
            confirmation_statement(&hub, "r1", "2026", &four[..3], &four[..3]),
        ] {
            assert_ne!(base, other);
        }
        let good = b"good".as_slice();
        let sigs = |m: &NodeId| match m.as_str() {
            "NLD-POL" => None,
            "FRA-POL" => Some(b"bad".as_slice()),
            _ => Some(good),
        };
        let valid = |_: &NodeId, s: &[u8]| s == good;
        assert_eq!(check_confirmations(&four[..2], sigs, valid), Ok(()));
        assert!(matches!(
            check_confirmations(&four[..3], sigs, valid),
            Err(RoundError::Reveal(m)) if m.contains("FRA-POL") && m.contains("does not verify")
        ));
        assert!(matches!(
            check_confirmations(&four, |m| if m.as_str() == "FRA-POL" { Some(good) } else { sigs(m) }, valid),
            Err(RoundError::Reveal(m)) if m.contains("NLD-POL did not confirm")
        ));
    }
}
