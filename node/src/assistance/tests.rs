use super::*;
use proptest::prelude::*;

use pb::AssistanceCategory as C;

fn need(id: &str, cat: C, region: &str) -> pb::AssistanceNeed {
    pb::AssistanceNeed {
        id: id.into(),
        category: cat as i32,
        title: format!("need {id}"),
        description: "secret description".into(),
        priority: 1,
        scope: "2 machines".into(),
        wanted_by: "2027-06-30".into(),
        languages: vec!["fr".into()],
        contact: "desk@example.test".into(),
        region: region.into(),
        public_parts: vec!["scope".into()],
        status: pb::AssistanceStatus::Open as i32,
    }
}

fn offer(id: &str, cats: &[C], regions: &[&str]) -> pb::AssistanceOffer {
    pb::AssistanceOffer {
        id: id.into(),
        categories: cats.iter().map(|c| *c as i32).collect(),
        title: format!("offer {id}"),
        regions: regions.iter().map(|r| (*r).to_owned()).collect(),
        languages: vec!["fr".into(), "en".into()],
        until: "2027-12-31".into(),
        capacity: 1,
        status: pb::AssistanceStatus::Open as i32,
        ..Default::default()
    }
}

fn today() -> Option<Date> {
    Date::parse("2026-12-01")
}

#[test]
fn dates_of_unix_times() {
    assert_eq!(date_of(0), Date::parse("1970-01-01"));
    assert_eq!(date_of(1_796_083_200), Date::parse("2026-12-01"));
    assert_eq!(date_of(951_782_400), Date::parse("2000-02-29"));
}

#[test]
fn an_offer_of_the_same_category_and_region_ranks_with_its_reasons() {
    let n = need("n1", C::Marking, "west-africa");
    let regions = vec!["west-africa".to_owned()];
    let good = offer("o1", &[C::Marking], &["west-africa"]);
    let other_cat = offer("o2", &[C::BorderControl], &["west-africa"]);
    let other_region = offer("o3", &[C::Marking], &["caribbean"]);
    let mut anywhere = offer("o4", &[C::Marking], &["caribbean"]);
    anywhere.any_region = true;
    let r1 = vec!["west-africa".to_owned()];
    let r3 = vec!["caribbean".to_owned()];
    let sides = [
        OfferSide {
            offer: &good,
            regions: &r1,
            active: 0,
        },
        OfferSide {
            offer: &other_cat,
            regions: &r1,
            active: 0,
        },
        OfferSide {
            offer: &other_region,
            regions: &r3,
            active: 0,
        },
        OfferSide {
            offer: &anywhere,
            regions: &r3,
            active: 0,
        },
    ];
    let side = NeedSide {
        need: &n,
        regions: &regions,
        covered: false,
    };
    let ranked = rank(side, &sides, today());
    let order: Vec<usize> = ranked.iter().map(|r| r.0).collect();
    assert_eq!(order, vec![0, 3]);
    assert_eq!(
        ranked[0].2,
        vec![
            Reason::SameCategory,
            Reason::RegionServed,
            Reason::CommonLanguage,
            Reason::InTime,
            Reason::CapacityLeft
        ]
    );
    assert!(ranked[1].2.contains(&Reason::AnyRegion));
}

#[test]
fn expired_closed_and_full_offers() {
    let n = need("n1", C::Marking, "r");
    let regions = vec!["r".to_owned()];
    let side = NeedSide {
        need: &n,
        regions: &regions,
        covered: false,
    };
    let mut expired = offer("o", &[C::Marking], &["r"]);
    expired.until = "2026-11-30".into();
    assert!(
        score(
            side,
            OfferSide {
                offer: &expired,
                regions: &regions,
                active: 0
            },
            today()
        )
        .is_none()
    );
    let mut closed_offer = offer("o", &[C::Marking], &["r"]);
    closed_offer.status = pb::AssistanceStatus::Closed as i32;
    assert!(
        score(
            side,
            OfferSide {
                offer: &closed_offer,
                regions: &regions,
                active: 0
            },
            today()
        )
        .is_none()
    );
    let full = offer("o", &[C::Marking], &["r"]);
    let (s_full, r) = score(
        side,
        OfferSide {
            offer: &full,
            regions: &regions,
            active: 1,
        },
        today(),
    )
    .unwrap();
    assert!(r.contains(&Reason::CapacityFull));
    let (s_free, _) = score(
        side,
        OfferSide {
            offer: &full,
            regions: &regions,
            active: 0,
        },
        today(),
    )
    .unwrap();
    assert!(s_free > s_full);
    let mut short = offer("o", &[C::Marking], &["r"]);
    short.until = "2027-01-31".into();
    let (_, r) = score(
        side,
        OfferSide {
            offer: &short,
            regions: &regions,
            active: 0,
        },
        today(),
    )
    .unwrap();
    assert!(r.contains(&Reason::EndsBeforeWanted));
}

fn member(id: &str, role: pb::MemberRole, regions: &[&str]) -> pb::Member {
    pb::Member {
        node_id: id.into(),
        country: id[..3].into(),
        role: role as i32,
        regions: regions.iter().map(|r| (*r).to_owned()).collect(),
        status: pb::MemberStatus::Active as i32,
        ..Default::default()
    }
}

fn state() -> pb::DirectoryState {
    let mut s = pb::DirectoryState::default();
    s.members.insert(
        "CHE-SEC".into(),
        member("CHE-SEC", pb::MemberRole::Secretariat, &[]),
    );
    s.members.insert(
        "SEN-POL".into(),
        member("SEN-POL", pb::MemberRole::National, &["west-africa"]),
    );
    s.members.insert(
        "GHA-POL".into(),
        member("GHA-POL", pb::MemberRole::National, &["west-africa"]),
    );
    s.members.insert(
        "NGA-HUB".into(),
        member("NGA-HUB", pb::MemberRole::Hub, &["west-africa"]),
    );
    s.members.insert(
        "FRA-POL".into(),
        member("FRA-POL", pb::MemberRole::National, &["europe"]),
    );
    s.members.insert(
        "DEU-CUS".into(),
        member("DEU-CUS", pb::MemberRole::National, &["europe"]),
    );
    s.entries
        .entry("SEN-POL".into())
        .or_default()
        .assistance_needs
        .push(need("n1", C::Marking, ""));
    let mut o = offer("o1", &[C::Marking], &["west-africa"]);
    o.description = "offer details".into();
    o.contact = "donor@example.test".into();
    s.entries
        .entry("FRA-POL".into())
        .or_default()
        .assistance_offers
        .push(o.clone());
    let mut o2 = o;
    o2.id = "o2".into();
    s.entries
        .entry("DEU-CUS".into())
        .or_default()
        .assistance_offers
        .push(o2);
    s
}

fn accepted_match() -> pb::AssistanceMatch {
    pb::AssistanceMatch {
        id: "FRA-POL/m1".into(),
        donor: "FRA-POL".into(),
        offer_id: "o1".into(),
        requester: "SEN-POL".into(),
        need_id: "n1".into(),
        status: pb::AssistanceStatus::Matched as i32,
        history: vec![pb::AssistanceHistoryItem {
            status: pb::AssistanceStatus::Matched as i32,
            by: "SEN-POL".into(),
            at: 1,
            note: "private note".into(),
        }],
        ..Default::default()
    }
}

#[test]
fn members_see_their_own_whole_and_only_the_public_parts_of_the_rest() {
    let s = state();
    let b = board(&s, &Viewer::of(&s, "GHA-POL"), today());
    let n = &b.needs[0];
    assert!(!n.whole);
    let shown = n.need.as_ref().unwrap();
    assert_eq!(shown.description, "");
    assert_eq!(shown.contact, "");
    assert_eq!(
        shown.scope, "2 machines",
        "the author made the scope public"
    );
    assert_eq!(
        n.regions,
        vec!["west-africa".to_owned()],
        "the author's region"
    );
    // The author sees it whole, so do the secretariat and the region's hub; not another hub.
    for (who, whole) in [
        ("SEN-POL", true),
        ("CHE-SEC", true),
        ("NGA-HUB", true),
        ("FRA-POL", false),
    ] {
        let b = board(&s, &Viewer::of(&s, who), today());
        assert_eq!(b.needs[0].whole, whole, "{who}");
        assert_eq!(
            b.needs[0].need.as_ref().unwrap().description.is_empty(),
            !whole,
            "{who}"
        );
    }
    assert!(board(&s, &Viewer::of(&s, "CHE-SEC"), today()).whole_board);
}

#[test]
fn a_covered_need_is_flagged_to_other_donors_and_its_status_derived() {
    let mut s = state();
    let b = board(&s, &Viewer::of(&s, "DEU-CUS"), today());
    assert!(!b.needs[0].covered);
    assert_eq!(b.needs[0].status, pb::AssistanceStatus::Open as i32);
    let own = b
        .suggestions
        .iter()
        .find(|x| x.offer_author == "DEU-CUS")
        .unwrap();
    assert!(!own.need_covered);

    s.assistance_matches.push(accepted_match());
    let b = board(&s, &Viewer::of(&s, "DEU-CUS"), today());
    assert!(b.needs[0].covered);
    assert_eq!(b.needs[0].covered_by, "FRA-POL/m1");
    assert_eq!(b.needs[0].status, pb::AssistanceStatus::Matched as i32);
    let own = b
        .suggestions
        .iter()
        .find(|x| x.offer_author == "DEU-CUS")
        .unwrap();
    assert!(own.need_covered);
    assert!(own.reasons.contains(&"need_covered".to_owned()));
    // A non-party sees the match but not its notes.
    let m = b.matches[0].r#match.as_ref().unwrap();
    assert!(m.history.iter().all(|h| h.note.is_empty()));
    assert!(!b.matches[0].party);
    let b = board(&s, &Viewer::of(&s, "FRA-POL"), today());
    assert!(b.matches[0].party);
    assert_eq!(
        b.matches[0].r#match.as_ref().unwrap().history[0].note,
        "private note"
    );
    // Capacity 1 is taken by the accepted match.
    assert_eq!(
        b.offers
            .iter()
            .find(|o| o.author == "FRA-POL")
            .unwrap()
            .active_matches,
        1
    );
}

#[test]
fn a_declined_match_does_not_cover_and_an_accepted_one_past_the_date_is_overdue() {
    let mut m = accepted_match();
    assert!(!overdue(&m, "2026-11-30", Date::parse("2026-11-30")));
    assert!(overdue(&m, "2026-11-30", Date::parse("2026-12-01")));
    m.status = pb::AssistanceStatus::Delivered as i32;
    assert!(!overdue(&m, "2026-11-30", Date::parse("2026-12-01")));
    m.status = pb::AssistanceStatus::Declined as i32;
    assert!(!covers(&m));
}

#[test]
fn suggestions_are_only_shown_to_who_may_see_a_side() {
    let s = state();
    // GHA-POL owns neither side and sees neither whole: no suggestion.
    assert!(
        board(&s, &Viewer::of(&s, "GHA-POL"), today())
            .suggestions
            .is_empty()
    );
    // The requester sees both offers ranked for its need.
    assert_eq!(
        board(&s, &Viewer::of(&s, "SEN-POL"), today())
            .suggestions
            .len(),
        2
    );
    // A donor sees its own offer ranked against the need.
    let b = board(&s, &Viewer::of(&s, "FRA-POL"), today());
    assert_eq!(b.suggestions.len(), 1);
    assert_eq!(b.suggestions[0].offer_author, "FRA-POL");
}

fn category() -> impl Strategy<Value = C> {
    (1i32..=11).prop_map(|c| C::try_from(c).unwrap_or(C::Other))
}

const REGIONS: [&str; 4] = ["west-africa", "caribbean", "europe", "pacific"];

proptest! {
    /// A need is never matched to an offer outside its category or region unless the offer says
    /// so; a covered need is always flagged.
    #[test]
    fn never_outside_category_or_region_unless_the_offer_says_so(
        ncat in category(),
        ocats in prop::collection::vec(category(), 1..4),
        nreg in 0usize..4,
        oregs in prop::collection::vec(0usize..4, 0..3),
        any_region in any::<bool>(),
        any_category in any::<bool>(),
        covered in any::<bool>(),
        active in 0u32..3,
        capacity in 0u32..3,
    ) {
        let n = need("n", ncat, REGIONS[nreg]);
        let mut o = offer("o", &ocats, &[]);
        o.regions = oregs.iter().map(|i| REGIONS[*i].to_owned()).collect();
        o.any_region = any_region;
        o.any_category = any_category;
        o.capacity = capacity;
        let nr = vec![REGIONS[nreg].to_owned()];
        let side = NeedSide { need: &n, regions: &nr, covered };
        let r = score(side, OfferSide { offer: &o, regions: &o.regions, active }, today());
        let same_cat = o.categories.contains(&n.category);
        let same_reg = o.regions.iter().any(|x| *x == REGIONS[nreg]);
        if !same_cat && !any_category || !same_reg && !any_region {
            prop_assert!(r.is_none());
        }
        if let Some((_, reasons)) = r {
            prop_assert_eq!(reasons.contains(&Reason::NeedCovered), covered);
            prop_assert!(reasons.contains(&Reason::SameCategory) || reasons.contains(&Reason::AnyCategory));
            prop_assert!(reasons.contains(&Reason::RegionServed) || reasons.contains(&Reason::AnyRegion));
        } else {
            prop_assert!(!same_cat && !any_category || !same_reg && !any_region);
        }
    }

    /// On the board, every suggestion respects category and region, and a need with an accepted
    /// match is flagged as covered in every suggestion for it.
    #[test]
    fn board_suggestions_respect_category_region_and_coverage(
        ncat in category(),
        ocat in category(),
        oreg in 0usize..4,
        accepted in any::<bool>(),
    ) {
        let mut s = state();
        s.entries.get_mut("SEN-POL").unwrap().assistance_needs[0].category = ncat as i32;
        let o = &mut s.entries.get_mut("DEU-CUS").unwrap().assistance_offers[0];
        o.categories = vec![ocat as i32];
        o.regions = vec![REGIONS[oreg].to_owned()];
        if accepted {
            s.assistance_matches.push(accepted_match());
        }
        let b = board(&s, &Viewer::of(&s, "CHE-SEC"), today());
        for sg in &b.suggestions {
            if sg.offer_author == "DEU-CUS" {
                prop_assert_eq!(ocat, ncat);
                prop_assert_eq!(REGIONS[oreg], "west-africa");
            }
            prop_assert_eq!(sg.need_covered, accepted);
        }
        prop_assert_eq!(b.needs[0].covered, accepted);
    }
}
