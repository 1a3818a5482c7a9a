//! Synthetic cooperation and assistance board for the demo: needs published by ITA-POL and
//! DEU-CUS, offers by FRA-POL and DEU-CUS, an expert roster entry, and one match (FRA-POL's
//! marking offer for ITA-POL's marking need) accepted and in progress. Every entry says it is
//! synthetic.

use std::fmt::Write as _;

use tracenet_proto::v1 as pb;
use tracenet_proto::v1::directory_command::Op;

use super::{DemoError, call, check};
use crate::DevFederation;

const FRA: usize = 0;
const DEU: usize = 1;
const ITA: usize = 2;

fn need(
    id: &str,
    category: pb::AssistanceCategory,
    title: &str,
    scope: &str,
    wanted_by: &str,
    priority: u32,
) -> Op {
    Op::PublishAssistance(pb::AssistanceEntry {
        entry: Some(pb::assistance_entry::Entry::Need(pb::AssistanceNeed {
            id: id.into(),
            category: category as i32,
            title: title.into(),
            description: format!("{title} (synthetic demo need)"),
            priority,
            scope: scope.into(),
            wanted_by: wanted_by.into(),
            languages: vec!["en".into(), "it".into()],
            contact: "assistance.desk@example.test (synthetic)".into(),
            region: "europe".into(),
            public_parts: vec!["description".into(), "scope".into(), "timing".into()],
            status: pb::AssistanceStatus::Open as i32,
        })),
    })
}

fn offer(id: &str, categories: &[pb::AssistanceCategory], title: &str, donor: &str) -> Op {
    Op::PublishAssistance(pb::AssistanceEntry {
        entry: Some(pb::assistance_entry::Entry::Offer(pb::AssistanceOffer {
            id: id.into(),
            categories: categories.iter().map(|c| *c as i32).collect(),
            title: title.into(),
            description: format!("{title} (synthetic demo offer)"),
            donor: donor.into(),
            capacity: 2,
            regions: vec!["europe".into()],
            any_region: false,
            any_category: false,
            conditions: "Synthetic conditions: travel costs borne by the donor".into(),
            until: "2028-12-31".into(),
            languages: vec!["en".into(), "fr".into(), "it".into()],
            contact: "donor.desk@example.test (synthetic)".into(),
            public_parts: vec![
                "description".into(),
                "scope".into(),
                "timing".into(),
                "languages".into(),
            ],
            status: pb::AssistanceStatus::Open as i32,
        })),
    })
}

/// Publishes the synthetic board and walks one match to "in progress".
pub async fn publish(fed: &DevFederation) -> Result<(), DemoError> {
    use pb::AssistanceCategory as C;
    let steps: Vec<(usize, Op)> = vec![
        (
            ITA,
            need(
                "ita-marking",
                C::Marking,
                "Two marking machines for the national armoury",
                "2 machines and operator training",
                "2027-09-30",
                1,
            ),
        ),
        (
            ITA,
            need(
                "ita-tracing",
                C::TrainingIdentification,
                "Firearms identification course for customs officers",
                "20 officers",
                "2027-12-31",
                2,
            ),
        ),
        (
            DEU,
            need(
                "deu-border",
                C::BorderControl,
                "X-ray scanner training at road crossings",
                "3 crossings",
                "2028-03-31",
                3,
            ),
        ),
        (
            FRA,
            offer(
                "fra-marking",
                &[C::Marking, C::TrainingIdentification],
                "Marking machine loan and training",
                "FRA-POL armoury (synthetic)",
            ),
        ),
        (
            DEU,
            offer(
                "deu-records",
                &[C::RecordKeeping, C::TracingCapacity],
                "Record-keeping software and tracing desk set-up",
                "DEU-CUS (synthetic)",
            ),
        ),
        (
            FRA,
            Op::PublishAssistance(pb::AssistanceEntry {
                entry: Some(pb::assistance_entry::Entry::Expert(pb::AssistanceExpert {
                    id: "fra-examiner".into(),
                    name_or_function: "Senior firearms examiner (synthetic)".into(),
                    expertise: vec![C::TrainingIdentification as i32, C::Marking as i32],
                    languages: vec!["fr".into(), "en".into()],
                    region: "europe".into(),
                    availability: "Two weeks per quarter".into(),
                    consent: true,
                    consent_note: "Synthetic: consent recorded by the demo".into(),
                    contact: "examiner@example.test (synthetic)".into(),
                    public_parts: vec!["name".into(), "description".into(), "languages".into()],
                })),
            }),
        ),
        (
            FRA,
            Op::ProposeAssistance(pb::AssistanceProposal {
                id: "m1".into(),
                offer_id: "fra-marking".into(),
                requester: "ITA-POL".into(),
                need_id: "ita-marking".into(),
                note: "Two machines available from our armoury (synthetic)".into(),
            }),
        ),
        (
            ITA,
            Op::AssistanceStep(pb::AssistanceStep {
                match_id: "FRA-POL/m1".into(),
                status: pb::AssistanceStatus::Matched as i32,
                note: "Accepted (synthetic)".into(),
                lessons: String::new(),
            }),
        ),
        (
            FRA,
            Op::AssistanceStep(pb::AssistanceStep {
                match_id: "FRA-POL/m1".into(),
                status: pb::AssistanceStatus::InProgress as i32,
                note: "Machines shipped (synthetic)".into(),
                lessons: String::new(),
            }),
        ),
    ];
    for (i, op) in steps {
        fed.propose_applied(i, op).await?;
    }
    Ok(())
}

/// Checks the board on ITA-POL's node: the marking need is covered by the match in progress,
/// and another donor sees it flagged.
pub async fn scenario(fed: &DevFederation, out: &mut String) -> Result<(), DemoError> {
    let mut deu = fed.admin_client(DEU).await?;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let board = loop {
        let b = deu
            .assistance_board(pb::AssistanceBoardRequest {})
            .await
            .map_err(call("reading the assistance board on DEU-CUS"))?
            .into_inner();
        if b.matches.len() == 1 || tokio::time::Instant::now() >= deadline {
            break b;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let covered = board
        .needs
        .iter()
        .find(|n| n.need.as_ref().is_some_and(|x| x.id == "ita-marking"));
    check(covered.is_some_and(|n| n.covered), || {
        "DEU-CUS does not see ITA-POL's marking need as covered".into()
    })?;
    let _ = writeln!(
        out,
        "  assistance board: {} needs, {} offers, {} expert; FRA-POL/m1 (marking machines for ITA-POL) in progress, shown covered to DEU-CUS",
        board.needs.len(),
        board.offers.len(),
        board.experts.len()
    );
    Ok(())
}
