//! The local API's directory calls: read the replica (locally or linearizably) and propose
//! commands written by this node. Policies are validated here before they are proposed, so a bad
//! file is refused with its reasons instead of becoming a replicated refusal.

use tonic::Status;
use tracenet_proto::v1 as pb;

use crate::context::NodeContext;
use crate::directory::replica::{Directory, DirectoryError};
use crate::policy::Policy;

fn replica(ctx: &NodeContext) -> Result<&Directory, Status> {
    ctx.directory
        .as_deref()
        .ok_or_else(|| DirectoryError::Disabled.into())
}

/// How much of the state one `GetDirectory` answer carries at most (encoded), under the default
/// 4 MiB message limit; a larger directory is read page by page.
pub const PAGE_BUDGET: usize = 3 * 1024 * 1024;

/// One page of `state`: the members whose node id is above `after`, in node id order, with their
/// entries and signed commands, at most `size` of them (0: no count limit) and at most `budget`
/// encoded bytes (always at least one member, so paging progresses); revocations and assistance
/// matches whole (every page). Returns
/// the page and the node id to continue after, when more follow.
pub fn page(
    state: &pb::DirectoryState,
    after: &str,
    size: usize,
    budget: usize,
) -> (pb::DirectoryState, Option<String>) {
    use prost::Message;
    let mut ids: Vec<&String> = state
        .members
        .keys()
        .chain(state.entries.keys())
        .chain(state.proofs.keys())
        .filter(|id| id.as_str() > after)
        .collect();
    ids.sort();
    ids.dedup();
    let mut out = pb::DirectoryState {
        revocations: state.revocations.clone(),
        assistance_matches: state.assistance_matches.clone(),
        ..Default::default()
    };
    let mut used = out.encoded_len();
    for (n, id) in ids.iter().enumerate() {
        let cost = state.members.get(*id).map_or(0, Message::encoded_len)
            + state.entries.get(*id).map_or(0, Message::encoded_len)
            + state.proofs.get(*id).map_or(0, Message::encoded_len)
            + 3 * (id.len() + 16);
        let full = (size > 0 && n >= size) || (n > 0 && used + cost > budget);
        if full {
            return (out, ids.get(n - 1).map(|id| (*id).clone()));
        }
        used += cost;
        if let Some(v) = state.members.get(*id) {
            out.members.insert((*id).clone(), v.clone());
        }
        if let Some(v) = state.entries.get(*id) {
            out.entries.insert((*id).clone(), v.clone());
        }
        if let Some(v) = state.proofs.get(*id) {
            out.proofs.insert((*id).clone(), v.clone());
        }
    }
    (out, None)
}

/// The directory as this replica holds it, or linearizably, one page of members at a time.
pub async fn get(
    ctx: &NodeContext,
    req: &pb::GetDirectoryRequest,
) -> Result<pb::DirectoryView, Status> {
    let dir = replica(ctx)?;
    let published = if req.linearizable {
        dir.linearizable().await?
    } else {
        dir.local()
    };
    let size = usize::try_from(req.page_size).unwrap_or(usize::MAX);
    let (state, next) = page(&published.state, &req.page_after, size, PAGE_BUDGET);
    let status = dir.status();
    Ok(pb::DirectoryView {
        state: Some(state),
        next_page_after: next.unwrap_or_default(),
        applied_index: published.applied_index,
        leader: status.leader.unwrap_or_default(),
        term: status.term,
        voters: status.voters,
        learners: status.learners,
        snapshot_index: status.snapshot_index,
        purged_index: status.purged_index,
    })
}

/// The assistance board as this node may see it (its own entries whole, the rest as their
/// authors made public, whole for the secretariat and a region's hub), ranked for today.
pub fn assistance_board(ctx: &NodeContext) -> Result<pb::AssistanceBoardResponse, Status> {
    let dir = replica(ctx)?;
    let published = dir.local();
    let viewer = crate::assistance::Viewer::of(&published.state, ctx.node_id.as_str());
    let today = crate::assistance::date_of(ctx.clock.now_secs());
    Ok(crate::assistance::board(&published.state, &viewer, today))
}

/// Proposes `cmd` as written by this node. An admission of this node itself with no keys is
/// completed from its own certificate, signing key and advertised endpoint (how the secretariat
/// founds the directory).
pub async fn propose(
    ctx: &NodeContext,
    mut cmd: pb::DirectoryCommand,
) -> Result<pb::DirectoryResponse, Status> {
    use pb::directory_command::Op;
    let dir = replica(ctx)?;
    match cmd.op.as_mut() {
        None => return Err(Status::invalid_argument("command has no operation")),
        Some(Op::Admit(m)) if m.node_id == ctx.node_id.as_str() => {
            if m.signing_key.is_empty() {
                m.signing_key = ctx.signing.public_key();
            }
            if m.cert_fingerprint.is_empty() {
                m.cert_fingerprint = ctx.cert_fingerprint.clone();
            }
            if m.endpoint.is_empty() {
                m.endpoint = dir.advertise().to_owned();
            }
            // A State's node has its State; an organisation's node has no country.
            if m.country.is_empty()
                && let Some(c) = ctx.node_id.state()
            {
                m.country = c.to_string();
            }
        }
        Some(Op::PublishPolicy(p)) => {
            let parsed = Policy::parse(p.clone())
                .map_err(|e| Status::invalid_argument(format!("policy: {e}")))?;
            if parsed.owner() != ctx.country {
                return Err(Status::invalid_argument(format!(
                    "policy owner_country {} is not this node's country {}",
                    parsed.owner(),
                    ctx.country
                )));
            }
        }
        Some(_) => {}
    }
    Ok(dir.propose(cmd).await?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::directory::state::tests::member;

    fn state(n: usize) -> pb::DirectoryState {
        let mut s = pb::DirectoryState::default();
        for i in 0..n {
            let id = format!("FRA-P{i:02}");
            s.members
                .insert(id.clone(), member(&id, pb::MemberRole::National));
            s.entries.insert(id.clone(), pb::MemberEntries::default());
        }
        s.revocations.push(pb::Revocation {
            node_id: "FRA-P00".into(),
            ..Default::default()
        });
        s
    }

    /// Reads every page and checks each is within the budget and the pages add up to the whole.
    fn all_pages(
        s: &pb::DirectoryState,
        size: usize,
        budget: usize,
    ) -> (usize, pb::DirectoryState) {
        use prost::Message;
        let (mut after, mut pages, mut whole) = (String::new(), 0, pb::DirectoryState::default());
        loop {
            let (p, next) = page(s, &after, size, budget);
            assert!(p.members.len() == 1 || p.encoded_len() <= budget);
            assert_eq!(p.revocations, s.revocations);
            pages += 1;
            whole.members.extend(p.members);
            whole.entries.extend(p.entries);
            whole.revocations = p.revocations;
            match next {
                Some(n) => after = n,
                None => return (pages, whole),
            }
        }
    }

    #[test]
    fn pages_cover_the_whole_state_within_the_budget() {
        let s = state(25);
        let (pages, whole) = all_pages(&s, 0, usize::MAX);
        assert_eq!((pages, &whole), (1, &s), "a small directory is one page");
        let (pages, whole) = all_pages(&s, 10, usize::MAX);
        assert_eq!((pages, &whole), (3, &s));
        let (pages, whole) = all_pages(&s, 0, 1000);
        assert!(pages > 3, "{pages}");
        assert_eq!(whole, s);
        // A member larger than the budget still gets a page of its own.
        let (pages, whole) = all_pages(&s, 0, 10);
        assert_eq!((pages, whole), (25, s));
    }
}
