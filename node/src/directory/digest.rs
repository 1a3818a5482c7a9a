//! Divergence detection between directory replicas: a digest of the applied state, computed by
//! every replica at the same log indexes (every [`EVERY`]th), so a replica can compare its digest
//! at an index with the leader's. Raft makes the logs agree; this checks that applying them did too
//! (a bug, a damaged disk, a forged snapshot installed from a compromised voter).
//!
//! The digest is SHA-256 over a canonical encoding: map entries in node id order (protobuf maps
//! encode in hash-map order, which differs between processes), each value's own encoding (no
//! maps inside them).

use std::collections::VecDeque;

use prost::Message;
use ring::digest::{Context, SHA256};
use tracenet_proto::v1 as pb;

/// Replicas record a digest of the state after applying every log index divisible by this.
pub const EVERY: u64 = 16;
/// How many recorded digests a replica keeps (the leader answers for indexes still among them).
pub const KEPT: usize = 64;

fn sorted<'a>(keys: impl Iterator<Item = &'a String>) -> Vec<&'a String> {
    let mut keys: Vec<&String> = keys.collect();
    keys.sort();
    keys
}

/// The digest of `state`, the same on every replica holding the same state.
pub fn of(state: &pb::DirectoryState) -> [u8; 32] {
    let mut ctx = Context::new(&SHA256);
    let mut part = |tag: &[u8], key: &str, value: &dyn Fn() -> Vec<u8>| {
        let v = value();
        for bytes in [tag, key.as_bytes(), &v] {
            ctx.update(&(bytes.len() as u64).to_be_bytes());
            ctx.update(bytes);
        }
    };
    for id in sorted(state.members.keys()) {
        part(b"member", id, &|| state.members[id].encode_to_vec());
    }
    for id in sorted(state.entries.keys()) {
        part(b"entries", id, &|| state.entries[id].encode_to_vec());
    }
    for id in sorted(state.proofs.keys()) {
        part(b"proofs", id, &|| state.proofs[id].encode_to_vec());
    }
    for r in &state.revocations {
        part(b"revocation", &r.node_id, &|| r.encode_to_vec());
    }
    for m in &state.assistance_matches {
        part(b"assistance-match", &m.id, &|| m.encode_to_vec());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The digests a replica recorded, newest last.
#[derive(Debug, Default, Clone)]
pub struct Recorded {
    kept: VecDeque<(u64, [u8; 32])>,
}

impl Recorded {
    /// Records the digest at `index` (older ones beyond [`KEPT`] are forgotten).
    pub fn record(&mut self, index: u64, digest: [u8; 32]) {
        // A snapshot installed or a log replayed after a restart may go back: forget what follows.
        while self.kept.back().is_some_and(|(i, _)| *i >= index) {
            self.kept.pop_back();
        }
        self.kept.push_back((index, digest));
        while self.kept.len() > KEPT {
            self.kept.pop_front();
        }
    }

    /// The digest recorded at `index`, if still kept.
    pub fn at(&self, index: u64) -> Option<[u8; 32]> {
        self.kept.iter().find(|(i, _)| *i == index).map(|(_, d)| *d)
    }

    /// The newest recorded digest and its index.
    pub fn latest(&self) -> Option<(u64, [u8; 32])> {
        self.kept.back().copied()
    }

    /// Forgets everything (a snapshot replaced the state).
    pub fn clear(&mut self) {
        self.kept.clear();
    }
}

/// What comparing this replica's digest with the leader's at the same index shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// Same state at that index.
    Same,
    /// Different states from the same log: this replica diverged (or the leader did).
    Diverged,
    /// Nothing to compare (the leader no longer or not yet holds a digest at that index).
    Unknown,
}

/// Compares `ours` with what the leader answered for the same index.
pub fn compare(ours: &[u8; 32], leaders: Option<&[u8]>) -> Comparison {
    match leaders {
        None => Comparison::Unknown,
        Some(l) if l == ours.as_slice() => Comparison::Same,
        Some(_) => Comparison::Diverged,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn state(order: &[&str]) -> pb::DirectoryState {
        let mut s = pb::DirectoryState::default();
        for id in order {
            s.members.insert(
                (*id).to_owned(),
                pb::Member {
                    node_id: (*id).to_owned(),
                    ..Default::default()
                },
            );
            s.entries
                .insert((*id).to_owned(), pb::MemberEntries::default());
        }
        s
    }

    #[test]
    fn the_digest_ignores_map_order_and_sees_every_change() {
        let a = state(&["CHE-SEC", "FRA-POL", "DEU-CUS", "BEL-HUB"]);
        let b = state(&["BEL-HUB", "DEU-CUS", "FRA-POL", "CHE-SEC"]);
        assert_eq!(of(&a), of(&b));
        let mut c = a.clone();
        c.members.get_mut("FRA-POL").unwrap().organisation = "changed".into();
        assert_ne!(of(&a), of(&c));
        let mut d = a.clone();
        d.entries.remove("FRA-POL");
        assert_ne!(of(&a), of(&d));
    }

    #[test]
    fn recorded_digests_are_bounded_and_compared() {
        let mut r = Recorded::default();
        for i in 1..=100u64 {
            r.record(i * EVERY, [i as u8; 32]);
        }
        assert_eq!(r.at(EVERY), None, "forgotten beyond KEPT");
        assert_eq!(r.at(100 * EVERY), Some([100; 32]));
        assert_eq!(r.latest(), Some((100 * EVERY, [100; 32])));
        // Going back (a replay after restart) forgets what follows.
        r.record(90 * EVERY, [7; 32]);
        assert_eq!(r.latest(), Some((90 * EVERY, [7; 32])));
        assert_eq!(r.at(95 * EVERY), None);
        let ours = [7u8; 32];
        assert_eq!(compare(&ours, Some(&[7; 32])), Comparison::Same);
        assert_eq!(compare(&ours, Some(&[8; 32])), Comparison::Diverged);
        assert_eq!(compare(&ours, None), Comparison::Unknown);
    }
}
