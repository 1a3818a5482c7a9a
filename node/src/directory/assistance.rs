//! Cooperation and assistance in the directory, the rules `state::apply` and `state::verify`
//! share: what a need, an offer or an expert roster entry may hold, and how a match moves.
//!
//! - A member publishes (creates or replaces by id) only its own entries: the command carries no
//!   author, it is always the writer.
//! - A donor proposes one of its own open offers to meet another member's open need; the match
//!   is known as `<donor>/<id>`.
//! - Only the requesting State (the need's author) accepts (`MATCHED`) or declines a proposal;
//!   either party records `IN_PROGRESS`, `DELIVERED`, `CLOSED` and lessons learned once
//!   delivered. Statuses only move forward.
//!
//! A match keeps the signed commands that produced it in applied order, and [`replay`] rebuilds
//! it from them with the same transition rules, so a snapshot's matches verify like its entries.

use tracenet_proto::v1 as pb;

use super::state::Refusal;
use crate::model::Date;

/// At most this many needs, offers, expert entries (each) per member.
pub const MAX_ENTRIES: usize = 200;
/// At most this many matches in the directory.
pub const MAX_MATCHES: usize = 10_000;
/// At most this many steps (and lessons) per match.
pub const MAX_STEPS: usize = 64;
/// What an author may make public of a need or an offer.
pub const PUBLIC_PARTS: [&str; 5] = ["description", "scope", "timing", "languages", "contact"];
/// What a member may make public of an expert roster entry.
pub const EXPERT_PUBLIC_PARTS: [&str; 4] = ["name", "description", "languages", "contact"];

const SHORT: usize = 200;
const LONG: usize = 2000;

fn invalid(why: impl Into<String>) -> Refusal {
    Refusal::AssistanceInvalid(why.into())
}

fn text(field: &'static str, v: &str, max: usize) -> Result<(), Refusal> {
    if v.chars().count() > max {
        return Err(invalid(format!("{field} is longer than {max} characters")));
    }
    Ok(())
}

fn id(field: &'static str, v: &str) -> Result<(), Refusal> {
    if v.is_empty()
        || v.len() > 64
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(invalid(format!(
            "{field} must be 1 to 64 letters, digits, '-' or '_'"
        )));
    }
    Ok(())
}

fn date(field: &'static str, v: &str) -> Result<(), Refusal> {
    if !v.is_empty() && Date::parse(v).is_none() {
        return Err(invalid(format!("{field} must be a date YYYY-MM-DD")));
    }
    Ok(())
}

fn list(field: &'static str, v: &[String], max: usize) -> Result<(), Refusal> {
    if v.len() > max {
        return Err(invalid(format!("at most {max} {field}")));
    }
    v.iter().try_for_each(|x| text(field, x, 40))
}

fn parts(v: &[String], allowed: &[&str]) -> Result<(), Refusal> {
    match v.iter().find(|p| !allowed.contains(&p.as_str())) {
        Some(p) => Err(invalid(format!(
            "public part {:?} is not one of {}",
            p.chars().take(40).collect::<String>(),
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

fn category(c: i32) -> Result<pb::AssistanceCategory, Refusal> {
    match pb::AssistanceCategory::try_from(c) {
        Ok(pb::AssistanceCategory::Unspecified) | Err(_) => {
            Err(invalid("category is not one of the listed categories"))
        }
        Ok(c) => Ok(c),
    }
}

fn open_or_closed(s: i32) -> Result<(), Refusal> {
    use pb::AssistanceStatus as S;
    match S::try_from(s) {
        Ok(S::Unspecified | S::Open | S::Closed) => Ok(()),
        _ => Err(invalid("an entry's author sets it open or closed only")),
    }
}

/// Checks an entry as its author publishes it (kept as given when it passes).
pub fn check_entry(e: &pb::AssistanceEntry) -> Result<(), Refusal> {
    use pb::assistance_entry::Entry;
    match e.entry.as_ref() {
        None => Err(invalid("the entry is empty")),
        Some(Entry::Need(n)) => {
            id("id", &n.id)?;
            category(n.category)?;
            if n.title.trim().is_empty() {
                return Err(invalid("a need needs a title"));
            }
            text("title", &n.title, SHORT)?;
            text("description", &n.description, LONG)?;
            if !(1..=3).contains(&n.priority) {
                return Err(invalid("priority must be 1 (highest) to 3"));
            }
            text("scope", &n.scope, SHORT)?;
            date("wanted_by", &n.wanted_by)?;
            list("languages", &n.languages, 10)?;
            text("contact", &n.contact, SHORT)?;
            text("region", &n.region, 40)?;
            parts(&n.public_parts, &PUBLIC_PARTS)?;
            open_or_closed(n.status)
        }
        Some(Entry::Offer(o)) => {
            id("id", &o.id)?;
            if o.categories.is_empty() || o.categories.len() > 11 {
                return Err(invalid("an offer needs 1 to 11 categories"));
            }
            o.categories
                .iter()
                .try_for_each(|c| category(*c).map(|_| ()))?;
            if o.title.trim().is_empty() {
                return Err(invalid("an offer needs a title"));
            }
            text("title", &o.title, SHORT)?;
            text("description", &o.description, LONG)?;
            text("donor", &o.donor, SHORT)?;
            list("regions", &o.regions, 20)?;
            text("conditions", &o.conditions, LONG)?;
            date("until", &o.until)?;
            list("languages", &o.languages, 10)?;
            text("contact", &o.contact, SHORT)?;
            parts(&o.public_parts, &PUBLIC_PARTS)?;
            open_or_closed(o.status)
        }
        Some(Entry::Expert(x)) => {
            id("id", &x.id)?;
            if !x.consent {
                return Err(invalid(
                    "an expert is listed only with the person's consent noted",
                ));
            }
            if x.name_or_function.trim().is_empty() {
                return Err(invalid("an expert needs a name or function"));
            }
            text("name_or_function", &x.name_or_function, SHORT)?;
            if x.expertise.is_empty() || x.expertise.len() > 11 {
                return Err(invalid("an expert needs 1 to 11 areas of expertise"));
            }
            x.expertise
                .iter()
                .try_for_each(|c| category(*c).map(|_| ()))?;
            list("languages", &x.languages, 10)?;
            text("region", &x.region, 40)?;
            text("availability", &x.availability, SHORT)?;
            text("consent_note", &x.consent_note, SHORT)?;
            text("contact", &x.contact, SHORT)?;
            parts(&x.public_parts, &EXPERT_PUBLIC_PARTS)
        }
    }
}

/// Which entry a publication is about: kind and id.
pub fn entry_key(e: &pb::AssistanceEntry) -> Option<(u8, &str)> {
    use pb::assistance_entry::Entry;
    match e.entry.as_ref()? {
        Entry::Need(n) => Some((1, &n.id)),
        Entry::Offer(o) => Some((2, &o.id)),
        Entry::Expert(x) => Some((3, &x.id)),
    }
}

fn upsert<T: Clone>(list: &mut Vec<T>, item: &T, same: impl Fn(&T) -> bool) -> Result<(), Refusal> {
    let full = list.len() >= MAX_ENTRIES;
    match list.iter_mut().find(|x| same(x)) {
        Some(x) => *x = item.clone(),
        None if full => {
            return Err(Refusal::TooMany {
                limit: MAX_ENTRIES,
                what: "assistance entries of one kind",
            });
        }
        None => list.push(item.clone()),
    }
    Ok(())
}

/// Puts a checked entry into its author's entries, replacing the one with the same id.
pub fn put_entry(entries: &mut pb::MemberEntries, e: &pb::AssistanceEntry) -> Result<(), Refusal> {
    use pb::assistance_entry::Entry;
    match e.entry.as_ref() {
        None => Err(invalid("the entry is empty")),
        Some(Entry::Need(n)) => upsert(&mut entries.assistance_needs, n, |x| x.id == n.id),
        Some(Entry::Offer(o)) => upsert(&mut entries.assistance_offers, o, |x| x.id == o.id),
        Some(Entry::Expert(x)) => upsert(&mut entries.assistance_experts, x, |y| y.id == x.id),
    }
}

/// Keeps `cmd` as the proof of the entry it publishes, replacing the previous one.
pub fn put_proof(kept: &mut Vec<pb::DirectoryCommand>, cmd: &pb::DirectoryCommand) {
    let key = |c: &pb::DirectoryCommand| match c.op.as_ref() {
        Some(pb::directory_command::Op::PublishAssistance(e)) => {
            entry_key(e).map(|(k, i)| (k, i.to_owned()))
        }
        _ => None,
    };
    let new = key(cmd);
    match kept.iter_mut().find(|c| key(c) == new) {
        Some(c) => *c = cmd.clone(),
        None => kept.push(cmd.clone()),
    }
}

fn status(s: i32) -> pb::AssistanceStatus {
    pb::AssistanceStatus::try_from(s).unwrap_or(pb::AssistanceStatus::Unspecified)
}

fn is_closed(s: i32) -> bool {
    status(s) == pb::AssistanceStatus::Closed
}

/// A proposal checked against the entries it names (in `apply`; the entries may change later,
/// so [`replay`] does not check them again): the donor's own open offer, another member's open
/// need, a match id not used before by this donor.
pub fn check_proposal(
    state: &pb::DirectoryState,
    donor: &str,
    p: &pb::AssistanceProposal,
) -> Result<(), Refusal> {
    id("id", &p.id)?;
    text("note", &p.note, LONG)?;
    if p.requester == donor {
        return Err(invalid("a member does not propose to meet its own need"));
    }
    let unknown = |what: &'static str, id: String| Refusal::AssistanceUnknown { what, id };
    let offer = state
        .entries
        .get(donor)
        .and_then(|e| e.assistance_offers.iter().find(|o| o.id == p.offer_id))
        .ok_or_else(|| unknown("offer", format!("{donor}/{}", p.offer_id)))?;
    if is_closed(offer.status) {
        return Err(Refusal::AssistanceClosed(format!(
            "offer {donor}/{}",
            p.offer_id
        )));
    }
    let need = state
        .entries
        .get(&p.requester)
        .and_then(|e| e.assistance_needs.iter().find(|n| n.id == p.need_id))
        .ok_or_else(|| unknown("need", format!("{}/{}", p.requester, p.need_id)))?;
    if is_closed(need.status) {
        return Err(Refusal::AssistanceClosed(format!(
            "need {}/{}",
            p.requester, p.need_id
        )));
    }
    let mid = match_id(donor, &p.id);
    if state.assistance_matches.iter().any(|m| m.id == mid) {
        return Err(Refusal::AssistanceDuplicate(mid));
    }
    if state.assistance_matches.len() >= MAX_MATCHES {
        return Err(Refusal::TooMany {
            limit: MAX_MATCHES,
            what: "assistance matches",
        });
    }
    Ok(())
}

/// The directory-wide id of a donor's match.
pub fn match_id(donor: &str, id: &str) -> String {
    format!("{donor}/{id}")
}

/// The match a proposal starts (status `PROPOSED`, its command kept).
pub fn start(cmd: &pb::DirectoryCommand, p: &pb::AssistanceProposal) -> pb::AssistanceMatch {
    pb::AssistanceMatch {
        id: match_id(&cmd.writer, &p.id),
        donor: cmd.writer.clone(),
        offer_id: p.offer_id.clone(),
        requester: p.requester.clone(),
        need_id: p.need_id.clone(),
        status: pb::AssistanceStatus::Proposed as i32,
        history: vec![pb::AssistanceHistoryItem {
            status: pb::AssistanceStatus::Proposed as i32,
            by: cmd.writer.clone(),
            at: cmd.at,
            note: p.note.clone(),
        }],
        lessons: Vec::new(),
        commands: vec![cmd.clone()],
    }
}

/// Applies a step written by `cmd.writer` to `m`: who may take it and from which status.
pub fn step(
    m: &mut pb::AssistanceMatch,
    cmd: &pb::DirectoryCommand,
    s: &pb::AssistanceStep,
) -> Result<(), Refusal> {
    use pb::AssistanceStatus as S;
    let w = cmd.writer.as_str();
    text("note", &s.note, LONG)?;
    text("lessons", &s.lessons, LONG)?;
    let party = w == m.donor || w == m.requester;
    if !party {
        return Err(Refusal::AssistanceNotParty {
            writer: w.to_owned(),
            match_id: m.id.clone(),
        });
    }
    if m.commands.len() > MAX_STEPS {
        return Err(Refusal::TooMany {
            limit: MAX_STEPS,
            what: "steps of one match",
        });
    }
    let from = status(m.status);
    let to = status(s.status);
    let refuse = || {
        Err(Refusal::AssistanceTransition {
            from: from.as_str_name(),
            to: to.as_str_name(),
        })
    };
    match to {
        S::Unspecified => {
            // A lessons-learned note, once delivered.
            if s.lessons.trim().is_empty() || !matches!(from, S::Delivered | S::Closed) {
                return refuse();
            }
            m.lessons.push(pb::AssistanceLesson {
                by: w.to_owned(),
                at: cmd.at,
                text: s.lessons.clone(),
            });
        }
        S::Matched | S::Declined => {
            if w != m.requester {
                return Err(Refusal::AssistanceNotRequester {
                    writer: w.to_owned(),
                    match_id: m.id.clone(),
                });
            }
            if from != S::Proposed {
                return refuse();
            }
        }
        S::InProgress if from == S::Matched => {}
        S::Delivered if matches!(from, S::Matched | S::InProgress) => {}
        S::Closed if !matches!(from, S::Closed | S::Declined) => {}
        _ => return refuse(),
    }
    if to != S::Unspecified {
        if !s.lessons.is_empty() {
            return Err(invalid("lessons learned are recorded on their own step"));
        }
        m.status = to as i32;
        m.history.push(pb::AssistanceHistoryItem {
            status: to as i32,
            by: w.to_owned(),
            at: cmd.at,
            note: s.note.clone(),
        });
    }
    m.commands.push(cmd.clone());
    Ok(())
}

/// Rebuilds a match from its kept commands, checking each signature with `key_of` its writer
/// (a member's key as the rebuilt directory holds it) and each step with the same rules as
/// `apply`.
pub fn replay(
    kept: &pb::AssistanceMatch,
    key_of: &dyn Fn(&str) -> Option<Vec<u8>>,
) -> Result<pb::AssistanceMatch, Refusal> {
    use pb::directory_command::Op;
    let bad = |why: String| Refusal::BadProof(why);
    let signed = |cmd: &pb::DirectoryCommand| {
        let key = key_of(&cmd.writer)
            .ok_or_else(|| bad(format!("match {} names a non-member", kept.id)))?;
        crate::envelope::verify_directory_command(&key, cmd)
            .map_err(|_| Refusal::BadSignature(cmd.writer.clone()))
    };
    let mut cmds = kept.commands.iter();
    let first = cmds
        .next()
        .ok_or_else(|| bad(format!("match {} has no proposal", kept.id)))?;
    let Some(Op::ProposeAssistance(p)) = first.op.as_ref() else {
        return Err(bad(format!(
            "match {} does not start with a proposal",
            kept.id
        )));
    };
    signed(first)?;
    let mut m = start(first, p);
    for cmd in cmds {
        let Some(Op::AssistanceStep(s)) = cmd.op.as_ref() else {
            return Err(bad(format!("match {} holds another command", kept.id)));
        };
        if s.match_id != m.id {
            return Err(bad(format!("a step of match {} names another", kept.id)));
        }
        signed(cmd)?;
        step(&mut m, cmd, s)?;
    }
    Ok(m)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::state::tests::{genesis, member, signed};
    use super::super::state::{apply, verify};
    use super::*;
    use pb::directory_command::Op;

    fn ok(s: &mut pb::DirectoryState, c: &pb::DirectoryCommand) {
        let r = apply(s, &genesis(), c);
        assert!(r.applied, "{}", r.refusal);
    }

    fn refused(s: &mut pb::DirectoryState, c: &pb::DirectoryCommand, why: &str) {
        let before = s.clone();
        let r = apply(s, &genesis(), c);
        assert!(!r.applied, "applied: {c:?}");
        assert!(r.refusal.contains(why), "'{}' lacks '{why}'", r.refusal);
        assert_eq!(*s, before, "a refused command changed the state");
    }

    fn founded() -> pb::DirectoryState {
        let mut s = pb::DirectoryState::default();
        ok(
            &mut s,
            &signed(
                "CHE-SEC",
                Op::Admit(member("CHE-SEC", pb::MemberRole::Secretariat)),
            ),
        );
        for id in ["SEN-POL", "FRA-POL", "DEU-CUS"] {
            let mut m = member(id, pb::MemberRole::National);
            m.regions = vec![
                if id == "SEN-POL" {
                    "west-africa"
                } else {
                    "europe"
                }
                .into(),
            ];
            ok(&mut s, &signed("CHE-SEC", Op::Admit(m)));
        }
        s
    }

    pub(crate) fn need(id: &str) -> pb::AssistanceEntry {
        pb::AssistanceEntry {
            entry: Some(pb::assistance_entry::Entry::Need(pb::AssistanceNeed {
                id: id.into(),
                category: pb::AssistanceCategory::Marking as i32,
                title: "Marking machines".into(),
                priority: 1,
                wanted_by: "2027-06-30".into(),
                status: pb::AssistanceStatus::Open as i32,
                ..Default::default()
            })),
        }
    }

    pub(crate) fn offer(id: &str) -> pb::AssistanceEntry {
        pb::AssistanceEntry {
            entry: Some(pb::assistance_entry::Entry::Offer(pb::AssistanceOffer {
                id: id.into(),
                categories: vec![pb::AssistanceCategory::Marking as i32],
                title: "Marking machine and training".into(),
                any_region: true,
                ..Default::default()
            })),
        }
    }

    fn propose(id: &str) -> Op {
        Op::ProposeAssistance(pb::AssistanceProposal {
            id: id.into(),
            offer_id: "o1".into(),
            requester: "SEN-POL".into(),
            need_id: "n1".into(),
            note: "we can ship in March".into(),
        })
    }

    fn step(id: &str, status: pb::AssistanceStatus) -> Op {
        Op::AssistanceStep(pb::AssistanceStep {
            match_id: id.into(),
            status: status as i32,
            ..Default::default()
        })
    }

    fn board() -> pb::DirectoryState {
        let mut s = founded();
        ok(
            &mut s,
            &signed("SEN-POL", Op::PublishAssistance(need("n1"))),
        );
        ok(
            &mut s,
            &signed("FRA-POL", Op::PublishAssistance(offer("o1"))),
        );
        s
    }

    #[test]
    fn entries_are_checked_and_only_their_author_edits_them() {
        let mut s = board();
        // Another member publishing the same id makes its own entry; the author's is unchanged.
        let mut other = need("n1");
        if let Some(pb::assistance_entry::Entry::Need(n)) = other.entry.as_mut() {
            n.title = "Not yours".into();
        }
        ok(&mut s, &signed("DEU-CUS", Op::PublishAssistance(other)));
        assert_eq!(
            s.entries["SEN-POL"].assistance_needs[0].title,
            "Marking machines"
        );
        assert_eq!(s.entries["DEU-CUS"].assistance_needs[0].title, "Not yours");
        // The author replaces its entry by id.
        let mut edit = need("n1");
        if let Some(pb::assistance_entry::Entry::Need(n)) = edit.entry.as_mut() {
            n.status = pb::AssistanceStatus::Closed as i32;
        }
        ok(&mut s, &signed("SEN-POL", Op::PublishAssistance(edit)));
        assert_eq!(s.entries["SEN-POL"].assistance_needs.len(), 1);
        assert_eq!(s.proofs["SEN-POL"].assistance_entries.len(), 1);
        verify(&s, &genesis()).unwrap();

        let mut bad = need("n2");
        if let Some(pb::assistance_entry::Entry::Need(n)) = bad.entry.as_mut() {
            n.category = 0;
        }
        refused(
            &mut s,
            &signed("SEN-POL", Op::PublishAssistance(bad)),
            "category",
        );
        let mut bad = need("n/2");
        if let Some(pb::assistance_entry::Entry::Need(n)) = bad.entry.as_mut() {
            n.id = "n/2".into();
        }
        refused(
            &mut s,
            &signed("SEN-POL", Op::PublishAssistance(bad)),
            "letters",
        );
        let mut bad = need("n3");
        if let Some(pb::assistance_entry::Entry::Need(n)) = bad.entry.as_mut() {
            n.status = pb::AssistanceStatus::Delivered as i32;
        }
        refused(
            &mut s,
            &signed("SEN-POL", Op::PublishAssistance(bad)),
            "open or closed",
        );
        let expert = |consent| pb::AssistanceEntry {
            entry: Some(pb::assistance_entry::Entry::Expert(pb::AssistanceExpert {
                id: "x1".into(),
                name_or_function: "Firearms examiner".into(),
                expertise: vec![pb::AssistanceCategory::TracingCapacity as i32],
                consent,
                ..Default::default()
            })),
        };
        refused(
            &mut s,
            &signed("FRA-POL", Op::PublishAssistance(expert(false))),
            "consent",
        );
        ok(
            &mut s,
            &signed("FRA-POL", Op::PublishAssistance(expert(true))),
        );
        // A suspended member publishes nothing.
        ok(
            &mut s,
            &signed(
                "CHE-SEC",
                Op::Suspend(pb::StatusChange {
                    node_id: "DEU-CUS".into(),
                    reason: "test".into(),
                }),
            ),
        );
        refused(
            &mut s,
            &signed("DEU-CUS", Op::PublishAssistance(offer("o9"))),
            "SUSPENDED",
        );
        verify(&s, &genesis()).unwrap();
    }

    #[test]
    fn the_donor_proposes_only_the_requesting_state_accepts_both_record_delivery() {
        use pb::AssistanceStatus as S;
        let mut s = board();
        // Only with its own offer, to another member's open need.
        refused(&mut s, &signed("DEU-CUS", propose("m1")), "no offer");
        refused(
            &mut s,
            &signed(
                "SEN-POL",
                Op::ProposeAssistance(pb::AssistanceProposal {
                    id: "m1".into(),
                    offer_id: "o1".into(),
                    requester: "SEN-POL".into(),
                    need_id: "n1".into(),
                    note: String::new(),
                }),
            ),
            "its own need",
        );
        ok(&mut s, &signed("FRA-POL", propose("m1")));
        refused(&mut s, &signed("FRA-POL", propose("m1")), "already exists");
        let id = "FRA-POL/m1";
        // Only the requesting State accepts.
        refused(
            &mut s,
            &signed("FRA-POL", step(id, S::Matched)),
            "only the requesting State",
        );
        refused(
            &mut s,
            &signed("DEU-CUS", step(id, S::Matched)),
            "not a party",
        );
        refused(
            &mut s,
            &signed("SEN-POL", step(id, S::Delivered)),
            "cannot go from",
        );
        ok(&mut s, &signed("SEN-POL", step(id, S::Matched)));
        refused(
            &mut s,
            &signed("SEN-POL", step(id, S::Declined)),
            "cannot go from",
        );
        ok(&mut s, &signed("FRA-POL", step(id, S::InProgress)));
        refused(
            &mut s,
            &signed("SEN-POL", step(id, S::Matched)),
            "cannot go from",
        );
        // Lessons only once delivered.
        let lessons = |by: &str| {
            signed(
                by,
                Op::AssistanceStep(pb::AssistanceStep {
                    match_id: id.into(),
                    lessons: "Train the trainers first".into(),
                    ..Default::default()
                }),
            )
        };
        refused(&mut s, &lessons("SEN-POL"), "cannot go from");
        ok(&mut s, &signed("SEN-POL", step(id, S::Delivered)));
        ok(&mut s, &lessons("SEN-POL"));
        ok(&mut s, &signed("FRA-POL", step(id, S::Closed)));
        let m = &s.assistance_matches[0];
        assert_eq!(m.status, S::Closed as i32);
        let steps: Vec<i32> = m.history.iter().map(|h| h.status).collect();
        assert_eq!(
            steps,
            [
                S::Proposed,
                S::Matched,
                S::InProgress,
                S::Delivered,
                S::Closed
            ]
            .map(|s| s as i32)
        );
        assert_eq!(m.lessons.len(), 1);
        assert_eq!(m.commands.len(), 6);
        verify(&s, &genesis()).unwrap();
        // A resent step is answered as applied and changes nothing.
        let again = m.commands[1].clone();
        let before = s.clone();
        let r = apply(&mut s, &genesis(), &again);
        assert!(r.applied && r.already_applied);
        assert_eq!(s, before);
    }

    #[test]
    fn a_declined_proposal_and_a_closed_need_take_no_more_proposals() {
        use pb::AssistanceStatus as S;
        let mut s = board();
        ok(&mut s, &signed("FRA-POL", propose("m1")));
        ok(&mut s, &signed("SEN-POL", step("FRA-POL/m1", S::Declined)));
        refused(
            &mut s,
            &signed("FRA-POL", step("FRA-POL/m1", S::InProgress)),
            "cannot go from",
        );
        let mut closed = need("n1");
        if let Some(pb::assistance_entry::Entry::Need(n)) = closed.entry.as_mut() {
            n.status = S::Closed as i32;
        }
        ok(&mut s, &signed("SEN-POL", Op::PublishAssistance(closed)));
        refused(&mut s, &signed("FRA-POL", propose("m2")), "is closed");
        refused(
            &mut s,
            &signed("FRA-POL", step("FRA-POL/m9", S::Closed)),
            "no match",
        );
        verify(&s, &genesis()).unwrap();
    }

    mod property {
        use super::*;
        use proptest::prelude::*;

        const WHO: [&str; 3] = ["SEN-POL", "FRA-POL", "DEU-CUS"];

        fn op() -> impl Strategy<Value = (usize, Op)> {
            let status = prop_oneof![
                Just(pb::AssistanceStatus::Unspecified),
                Just(pb::AssistanceStatus::Matched),
                Just(pb::AssistanceStatus::Declined),
                Just(pb::AssistanceStatus::InProgress),
                Just(pb::AssistanceStatus::Delivered),
                Just(pb::AssistanceStatus::Closed),
            ];
            prop_oneof![
                (0usize..3, 0usize..2)
                    .prop_map(|(w, i)| (w, Op::PublishAssistance(need(&format!("n{i}"))))),
                (0usize..3, 0usize..2)
                    .prop_map(|(w, i)| (w, Op::PublishAssistance(offer(&format!("o{i}"))))),
                (0usize..3, 0usize..3, 0usize..2, 0usize..2, 0usize..3).prop_map(
                    |(w, r, n, o, id)| {
                        (
                            w,
                            Op::ProposeAssistance(pb::AssistanceProposal {
                                id: format!("m{id}"),
                                offer_id: format!("o{o}"),
                                requester: WHO[r].into(),
                                need_id: format!("n{n}"),
                                note: String::new(),
                            }),
                        )
                    }
                ),
                (0usize..3, 0usize..3, 0usize..3, status).prop_map(|(w, d, id, s)| {
                    (
                        w,
                        Op::AssistanceStep(pb::AssistanceStep {
                            match_id: format!("{}/m{id}", WHO[d]),
                            status: s as i32,
                            note: String::new(),
                            lessons: if s == pb::AssistanceStatus::Unspecified {
                                "lesson".into()
                            } else {
                                String::new()
                            },
                        }),
                    )
                }),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(48))]
            /// Whatever members write, in any order: the state verifies, every match was
            /// proposed by the author of its offer, only the requesting State accepted or
            /// declined it, and statuses only moved forward.
            #[test]
            fn matches_follow_who_may_do_what(ops in prop::collection::vec(op(), 1..30)) {
                let mut s = founded();
                for (w, o) in ops {
                    let _ = apply(&mut s, &genesis(), &signed(WHO[w], o));
                }
                prop_assert!(verify(&s, &genesis()).is_ok());
                for m in &s.assistance_matches {
                    let offers = s.entries.get(&m.donor).map(|e| e.assistance_offers.clone()).unwrap_or_default();
                    prop_assert!(offers.iter().any(|o| o.id == m.offer_id));
                    prop_assert_ne!(&m.donor, &m.requester);
                    for h in &m.history {
                        if h.status == pb::AssistanceStatus::Matched as i32
                            || h.status == pb::AssistanceStatus::Declined as i32
                        {
                            prop_assert_eq!(&h.by, &m.requester);
                        }
                    }
                    let order: Vec<i32> = m.history.iter().map(|h| match h.status {
                        s if s == pb::AssistanceStatus::Declined as i32 => 3,
                        s if s == pb::AssistanceStatus::Closed as i32 => 10,
                        s => s,
                    }).collect();
                    prop_assert!(order.windows(2).all(|w| w[0] < w[1]), "{:?}", m.history);
                }
            }
        }
    }

    #[test]
    fn a_forged_match_or_entry_does_not_verify() {
        use pb::AssistanceStatus as S;
        let mut s = board();
        ok(&mut s, &signed("FRA-POL", propose("m1")));
        ok(&mut s, &signed("SEN-POL", step("FRA-POL/m1", S::Matched)));
        verify(&s, &genesis()).unwrap();
        // The match says delivered without a signed step.
        let mut forged = s.clone();
        forged.assistance_matches[0].status = S::Delivered as i32;
        assert!(verify(&forged, &genesis()).is_err());
        // An acceptance signed by the donor instead of the requester.
        let mut forged = s.clone();
        let mut c = signed("FRA-POL", step("FRA-POL/m1", S::Matched));
        c.writer = "FRA-POL".into();
        forged.assistance_matches[0].commands[1] = c;
        assert!(verify(&forged, &genesis()).is_err());
        // An entry edited after it was signed.
        let mut forged = s.clone();
        forged.entries.get_mut("SEN-POL").unwrap().assistance_needs[0].title = "x".into();
        assert!(verify(&forged, &genesis()).is_err());
        // A match dropped from the state while its entries stay is caught too.
        let mut forged = s;
        forged.assistance_matches[0].history.pop();
        assert!(verify(&forged, &genesis()).is_err());
    }
}
