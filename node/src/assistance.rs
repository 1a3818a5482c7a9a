//! The assistance board, pure: needs ranked against offers (category, region, language, timing,
//! capacity) with the reasons, covered needs flagged so other donors do not duplicate, the
//! status of each need and offer derived from its matches, overdue matches, and what a viewer may
//! see of each entry.
//!
//! Visibility: the secretariat sees the whole board, a hub the whole of every entry in one of its
//! regions, a member its own needs, offers, experts and matches whole and, of the rest, the
//! parts each author made public (`public_parts`); category, title, region, priority and status
//! are always public, so that the board can be searched and matched.
//!
//! Ranking reasons are codes (`same_category`, `region_served`, …, see [`Reason`]) the console
//! translates.

use std::collections::BTreeSet;

use tracenet_proto::v1 as pb;

use crate::model::Date;

/// Why an offer ranks where it does against a need (each a code the console translates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// The offer lists the need's category.
    SameCategory,
    /// The offer says it meets needs of any category.
    AnyCategory,
    /// The offer serves the need's region.
    RegionServed,
    /// The offer says it serves any region.
    AnyRegion,
    /// The need and the offer share a language.
    CommonLanguage,
    /// They share no language (or one side states none).
    NoCommonLanguage,
    /// The offer runs at least until the need is wanted by.
    InTime,
    /// The offer ends before the need is wanted by.
    EndsBeforeWanted,
    /// The offer can take on more.
    CapacityLeft,
    /// The offer's stated capacity is taken by accepted matches.
    CapacityFull,
    /// Another match already covers the need (no duplication).
    NeedCovered,
}

impl Reason {
    /// The code the API returns and the console translates.
    pub fn code(self) -> &'static str {
        match self {
            Reason::SameCategory => "same_category",
            Reason::AnyCategory => "any_category",
            Reason::RegionServed => "region_served",
            Reason::AnyRegion => "any_region",
            Reason::CommonLanguage => "common_language",
            Reason::NoCommonLanguage => "no_common_language",
            Reason::InTime => "in_time",
            Reason::EndsBeforeWanted => "ends_before_wanted",
            Reason::CapacityLeft => "capacity_left",
            Reason::CapacityFull => "capacity_full",
            Reason::NeedCovered => "need_covered",
        }
    }
}

/// Every reason code, for the console's catalogue and tests.
pub const REASON_CODES: [&str; 11] = [
    "same_category",
    "any_category",
    "region_served",
    "any_region",
    "common_language",
    "no_common_language",
    "in_time",
    "ends_before_wanted",
    "capacity_left",
    "capacity_full",
    "need_covered",
];

/// A need with what ranking reads besides the entry itself.
#[derive(Debug, Clone, Copy)]
pub struct NeedSide<'a> {
    /// The need.
    pub need: &'a pb::AssistanceNeed,
    /// The regions it is in.
    pub regions: &'a [String],
    /// Already covered by an accepted match.
    pub covered: bool,
}

/// An offer with what ranking reads besides the entry itself.
#[derive(Debug, Clone, Copy)]
pub struct OfferSide<'a> {
    /// The offer.
    pub offer: &'a pb::AssistanceOffer,
    /// The regions it serves.
    pub regions: &'a [String],
    /// Its matches accepted and not yet delivered.
    pub active: u32,
}

fn lower(v: &[String]) -> BTreeSet<String> {
    v.iter().map(|s| s.trim().to_lowercase()).collect()
}

fn closed(s: i32) -> bool {
    s == pb::AssistanceStatus::Closed as i32
}

/// Ranks `offer` against `need`: `None` when it cannot meet it at all (closed, expired on
/// `today`, another category or region unless the offer says it serves any), else a score
/// (higher is better) and the reasons.
pub fn score(
    need: NeedSide<'_>,
    offer: OfferSide<'_>,
    today: Option<Date>,
) -> Option<(i32, Vec<Reason>)> {
    let (n, o) = (need.need, offer.offer);
    if closed(n.status) || closed(o.status) {
        return None;
    }
    let until = Date::parse(&o.until);
    if let (Some(until), Some(today)) = (until, today)
        && until < today
    {
        return None;
    }
    let mut reasons = Vec::new();
    let mut score = 0;
    if o.categories.contains(&n.category) {
        reasons.push(Reason::SameCategory);
        score += 40;
    } else if o.any_category {
        reasons.push(Reason::AnyCategory);
        score += 10;
    } else {
        return None;
    }
    let (nr, or) = (lower(need.regions), lower(offer.regions));
    if nr.intersection(&or).next().is_some() {
        reasons.push(Reason::RegionServed);
        score += 30;
    } else if o.any_region {
        reasons.push(Reason::AnyRegion);
        score += 15;
    } else {
        return None;
    }
    if lower(&n.languages)
        .intersection(&lower(&o.languages))
        .next()
        .is_some()
    {
        reasons.push(Reason::CommonLanguage);
        score += 15;
    } else {
        reasons.push(Reason::NoCommonLanguage);
    }
    match (Date::parse(&n.wanted_by), until) {
        (Some(wanted), Some(until)) if until < wanted => {
            reasons.push(Reason::EndsBeforeWanted);
            score -= 10;
        }
        _ => {
            reasons.push(Reason::InTime);
            score += 10;
        }
    }
    if o.capacity > 0 && offer.active >= o.capacity {
        reasons.push(Reason::CapacityFull);
        score -= 30;
    } else {
        reasons.push(Reason::CapacityLeft);
        score += 5;
    }
    if need.covered {
        reasons.push(Reason::NeedCovered);
        score -= 50;
    }
    Some((score, reasons))
}

/// The offers that can meet `need`, best first (ties by position), with scores and reasons.
pub fn rank<'a>(
    need: NeedSide<'_>,
    offers: &[OfferSide<'a>],
    today: Option<Date>,
) -> Vec<(usize, i32, Vec<Reason>)> {
    let mut out: Vec<(usize, i32, Vec<Reason>)> = offers
        .iter()
        .enumerate()
        .filter_map(|(i, o)| score(need, *o, today).map(|(s, r)| (i, s, r)))
        .collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

fn status(s: i32) -> pb::AssistanceStatus {
    pb::AssistanceStatus::try_from(s).unwrap_or(pb::AssistanceStatus::Unspecified)
}

/// A match that covers its need: accepted and not declined (matched, in progress, delivered, or
/// closed after delivery).
pub fn covers(m: &pb::AssistanceMatch) -> bool {
    use pb::AssistanceStatus as S;
    match status(m.status) {
        S::Matched | S::InProgress | S::Delivered => true,
        S::Closed => m.history.iter().any(|h| h.status == S::Delivered as i32),
        _ => false,
    }
}

/// A match taking up its offer's capacity: accepted, not yet delivered.
pub fn active(m: &pb::AssistanceMatch) -> bool {
    use pb::AssistanceStatus as S;
    matches!(status(m.status), S::Matched | S::InProgress)
}

/// Where an entry stands: CLOSED if its author closed it, else the furthest status of its
/// matches that are not declined (PROPOSED shows as OPEN), else OPEN.
pub fn derived_status<'a>(
    own: i32,
    matches: impl Iterator<Item = &'a pb::AssistanceMatch>,
) -> pb::AssistanceStatus {
    use pb::AssistanceStatus as S;
    if closed(own) {
        return S::Closed;
    }
    let rank = |s: S| match s {
        S::Matched => 1,
        S::InProgress => 2,
        S::Delivered => 3,
        S::Closed => 4,
        _ => 0,
    };
    matches
        .map(|m| status(m.status))
        .filter(|s| rank(*s) > 0)
        .max_by_key(|s| rank(*s))
        .unwrap_or(S::Open)
}

/// Accepted or in progress past the date the need was wanted by.
pub fn overdue(m: &pb::AssistanceMatch, wanted_by: &str, today: Option<Date>) -> bool {
    match (Date::parse(wanted_by), today) {
        (Some(w), Some(t)) => active(m) && w < t,
        _ => false,
    }
}

/// A need reduced to what its author made public.
pub fn public_need(n: &pb::AssistanceNeed) -> pb::AssistanceNeed {
    let has = |p: &str| n.public_parts.iter().any(|x| x == p);
    pb::AssistanceNeed {
        id: n.id.clone(),
        category: n.category,
        title: n.title.clone(),
        description: if has("description") {
            n.description.clone()
        } else {
            String::new()
        },
        priority: n.priority,
        scope: if has("scope") {
            n.scope.clone()
        } else {
            String::new()
        },
        wanted_by: if has("timing") {
            n.wanted_by.clone()
        } else {
            String::new()
        },
        languages: if has("languages") {
            n.languages.clone()
        } else {
            Vec::new()
        },
        contact: if has("contact") {
            n.contact.clone()
        } else {
            String::new()
        },
        region: n.region.clone(),
        public_parts: n.public_parts.clone(),
        status: n.status,
    }
}

/// An offer reduced to what its author made public.
pub fn public_offer(o: &pb::AssistanceOffer) -> pb::AssistanceOffer {
    let has = |p: &str| o.public_parts.iter().any(|x| x == p);
    pb::AssistanceOffer {
        id: o.id.clone(),
        categories: o.categories.clone(),
        title: o.title.clone(),
        description: if has("description") {
            o.description.clone()
        } else {
            String::new()
        },
        donor: o.donor.clone(),
        capacity: if has("scope") { o.capacity } else { 0 },
        regions: o.regions.clone(),
        any_region: o.any_region,
        any_category: o.any_category,
        conditions: if has("scope") {
            o.conditions.clone()
        } else {
            String::new()
        },
        until: if has("timing") {
            o.until.clone()
        } else {
            String::new()
        },
        languages: if has("languages") {
            o.languages.clone()
        } else {
            Vec::new()
        },
        contact: if has("contact") {
            o.contact.clone()
        } else {
            String::new()
        },
        public_parts: o.public_parts.clone(),
        status: o.status,
    }
}

/// An expert entry reduced to what its publisher made public.
pub fn public_expert(x: &pb::AssistanceExpert) -> pb::AssistanceExpert {
    let has = |p: &str| x.public_parts.iter().any(|y| y == p);
    pb::AssistanceExpert {
        id: x.id.clone(),
        name_or_function: if has("name") {
            x.name_or_function.clone()
        } else {
            String::new()
        },
        expertise: x.expertise.clone(),
        languages: if has("languages") {
            x.languages.clone()
        } else {
            Vec::new()
        },
        region: x.region.clone(),
        availability: if has("description") {
            x.availability.clone()
        } else {
            String::new()
        },
        consent: x.consent,
        consent_note: String::new(),
        contact: if has("contact") {
            x.contact.clone()
        } else {
            String::new()
        },
        public_parts: x.public_parts.clone(),
    }
}

/// The UTC calendar date of `unix_secs` (days from civil, H. Hinnant's algorithm).
pub fn date_of(unix_secs: i64) -> Option<Date> {
    let z = unix_secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    Date::parse(&format!("{y:04}-{m:02}-{d:02}"))
}

/// Who is looking at the board.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// Its node id.
    pub node: String,
    /// It is the secretariat: sees everything.
    pub secretariat: bool,
    /// The regions it is the hub of (empty unless a hub).
    pub hub_of: Vec<String>,
}

impl Viewer {
    /// The viewer `node` as the directory lists it.
    pub fn of(state: &pb::DirectoryState, node: &str) -> Viewer {
        let m = state.members.get(node);
        let role = m.map_or(0, |m| m.role);
        Viewer {
            node: node.to_owned(),
            secretariat: role == pb::MemberRole::Secretariat as i32,
            hub_of: if role == pb::MemberRole::Hub as i32 {
                m.map(|m| m.regions.clone()).unwrap_or_default()
            } else {
                Vec::new()
            },
        }
    }

    /// Whether it sees whole an entry by `author` in `regions`.
    pub fn sees_whole(&self, author: &str, regions: &[String]) -> bool {
        self.secretariat || author == self.node || regions.iter().any(|r| self.hub_of.contains(r))
    }
}

/// At most this many ranked offers per need on the board.
pub const SUGGESTIONS_PER_NEED: usize = 5;

fn regions_or(own: &[String], author: Option<&pb::Member>) -> Vec<String> {
    if own.iter().any(|r| !r.trim().is_empty()) {
        own.to_vec()
    } else {
        author.map(|m| m.regions.clone()).unwrap_or_default()
    }
}

/// The whole board as `viewer` may see it on `today`.
pub fn board(
    state: &pb::DirectoryState,
    viewer: &Viewer,
    today: Option<Date>,
) -> pb::AssistanceBoardResponse {
    let country = |id: &str| {
        state
            .members
            .get(id)
            .map(|m| m.country.clone())
            .unwrap_or_default()
    };
    let mut authors: Vec<&String> = state.entries.keys().collect();
    authors.sort();
    let live = |m: &&pb::AssistanceMatch| m.status != pb::AssistanceStatus::Declined as i32;
    let matches_of_need = |author: &str, id: &str| -> Vec<&pb::AssistanceMatch> {
        state
            .assistance_matches
            .iter()
            .filter(|m| m.requester == author && m.need_id == id)
            .filter(live)
            .collect()
    };
    let matches_of_offer = |author: &str, id: &str| -> Vec<&pb::AssistanceMatch> {
        state
            .assistance_matches
            .iter()
            .filter(|m| m.donor == author && m.offer_id == id)
            .filter(live)
            .collect()
    };
    let mut out = pb::AssistanceBoardResponse {
        viewer: viewer.node.clone(),
        whole_board: viewer.secretariat,
        ..Default::default()
    };
    // Full entries for ranking (never sent as they are unless the viewer may see them whole).
    let mut needs: Vec<(
        &str,
        &pb::AssistanceNeed,
        Vec<String>,
        Option<&pb::AssistanceMatch>,
    )> = Vec::new();
    let mut offers: Vec<(&str, &pb::AssistanceOffer, Vec<String>, u32)> = Vec::new();
    for author in authors {
        let e = &state.entries[author];
        let member = state.members.get(author);
        for n in &e.assistance_needs {
            let regions = regions_or(std::slice::from_ref(&n.region), member);
            let covering = matches_of_need(author, &n.id)
                .into_iter()
                .find(|m| covers(m));
            let whole = viewer.sees_whole(author, &regions);
            let mut history = vec![pb::AssistanceHistoryItem {
                status: pb::AssistanceStatus::Open as i32,
                by: author.clone(),
                at: 0,
                note: String::new(),
            }];
            for m in matches_of_need(author, &n.id) {
                let party = whole || m.donor == viewer.node;
                history.extend(m.history.iter().map(|h| pb::AssistanceHistoryItem {
                    note: if party { h.note.clone() } else { String::new() },
                    ..h.clone()
                }));
            }
            if closed(n.status) {
                history.push(pb::AssistanceHistoryItem {
                    status: pb::AssistanceStatus::Closed as i32,
                    by: author.clone(),
                    ..Default::default()
                });
            }
            out.needs.push(pb::AssistanceBoardNeed {
                author: author.clone(),
                country: country(author),
                need: Some(if whole { n.clone() } else { public_need(n) }),
                whole,
                status: derived_status(n.status, matches_of_need(author, &n.id).into_iter()) as i32,
                covered: covering.is_some(),
                covered_by: covering.map(|m| m.id.clone()).unwrap_or_default(),
                regions: regions.clone(),
                history,
            });
            needs.push((author, n, regions, covering));
        }
        for o in &e.assistance_offers {
            let regions = regions_or(&o.regions, member);
            let whole = viewer.sees_whole(author, &regions);
            let active = matches_of_offer(author, &o.id)
                .into_iter()
                .filter(|m| active(m))
                .count();
            let active = u32::try_from(active).unwrap_or(u32::MAX);
            out.offers.push(pb::AssistanceBoardOffer {
                author: author.clone(),
                country: country(author),
                offer: Some(if whole { o.clone() } else { public_offer(o) }),
                whole,
                status: derived_status(o.status, matches_of_offer(author, &o.id).into_iter())
                    as i32,
                active_matches: active,
                regions: regions.clone(),
            });
            offers.push((author, o, regions, active));
        }
        for x in &e.assistance_experts {
            let regions = regions_or(std::slice::from_ref(&x.region), member);
            let whole = viewer.sees_whole(author, &regions);
            out.experts.push(pb::AssistanceBoardExpert {
                author: author.clone(),
                country: country(author),
                expert: Some(if whole { x.clone() } else { public_expert(x) }),
                whole,
            });
        }
    }
    for m in &state.assistance_matches {
        let need = needs
            .iter()
            .find(|(a, n, _, _)| *a == m.requester && n.id == m.need_id);
        let regions = need.map(|n| n.2.as_slice()).unwrap_or_default();
        let party = m.donor == viewer.node || m.requester == viewer.node;
        let whole = party || viewer.sees_whole(&m.requester, regions);
        let wanted_by = need.map(|n| n.1.wanted_by.clone()).unwrap_or_default();
        let mut shown = pb::AssistanceMatch {
            commands: Vec::new(),
            ..m.clone()
        };
        if !whole {
            for h in &mut shown.history {
                h.note.clear();
            }
        }
        out.matches.push(pb::AssistanceBoardMatch {
            overdue: overdue(m, &wanted_by, today),
            wanted_by: if whole { wanted_by } else { String::new() },
            party,
            r#match: Some(shown),
        });
    }
    // Suggestions: for the viewer's own needs and offers, and whatever it sees whole.
    let sides: Vec<OfferSide<'_>> = offers
        .iter()
        .map(|(_, o, r, a)| OfferSide {
            offer: o,
            regions: r,
            active: *a,
        })
        .collect();
    for (author, n, regions, covering) in &needs {
        let side = NeedSide {
            need: n,
            regions,
            covered: covering.is_some(),
        };
        let need_visible = viewer.sees_whole(author, regions);
        let ranked = rank(side, &sides, today)
            .into_iter()
            .filter(|(i, _, _)| {
                need_visible || offers.get(*i).is_some_and(|o| viewer.sees_whole(o.0, &o.2))
            })
            .take(SUGGESTIONS_PER_NEED);
        for (i, score, reasons) in ranked {
            let Some((oa, o, _, _)) = offers.get(i) else {
                continue;
            };
            out.suggestions.push(pb::AssistanceSuggestion {
                need_author: (*author).to_owned(),
                need_id: n.id.clone(),
                offer_author: (*oa).to_owned(),
                offer_id: o.id.clone(),
                score,
                reasons: reasons.iter().map(|r| r.code().to_owned()).collect(),
                need_covered: covering.is_some(),
            });
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
