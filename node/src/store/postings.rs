//! Posting lists (pure): how layout 3 stores index entries, and the edits a write makes to them.
//!
//! Why: layout 2 wrote one sled key per record and index value (about ten per record, almost all
//! at random positions), and sled 0.34 pays for each key it inserts by descending to its leaf and
//! relinking a copy-on-write page; that was three quarters of an import's cost (see BENCHMARKS.md).
//! Layout 3 keeps one key per index value and *bucket*, whose value lists the records that have
//! it. A record's bucket is the creation time in its id (the first six bytes, milliseconds), and
//! a batch import gives all its new records one creation time, so a batch writes one posting
//! list per index value it contains instead of one key per record and value. A record's place
//! in every list is known from its id alone, so an update removes it exactly. A list holds at
//! most the records created in one millisecond, in practice one import batch (5,000 records, 50 kB), so an
//! update rewrites at most that much per index value it changes, and a record created alone (the
//! console, a trace) sits in lists of its own.
//!
//! ```text
//! key:   index prefix (see super::keys) ++ bucket (6 bytes: the ids' creation milliseconds)
//! value: [format = 1] ++ tail * n   (tail: the id's last 10 bytes; sorted, no duplicates)
//! ```

use std::collections::BTreeMap;

use crate::ids::RecordId;

/// Bytes of an id that name its bucket (the creation time in milliseconds).
pub const BUCKET_LEN: usize = 6;
/// Bytes of an id stored in a posting list (the rest of the id).
const TAIL_LEN: usize = RecordId::LEN - BUCKET_LEN;
/// The posting list encoding this version writes.
const FORMAT: u8 = 1;

/// Why stored posting bytes could not be read. Not retryable: the data directory needs
/// attention (or a newer release wrote it).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PostingError {
    /// The value's format byte is not one this version knows.
    #[error("posting list has unsupported format {0}")]
    UnsupportedFormat(u8),
    /// The value is empty or not a whole number of entries.
    #[error("posting list of {0} bytes is malformed")]
    Malformed(usize),
    /// The key is too short to end with a bucket.
    #[error("posting key of {0} bytes has no bucket")]
    ShortKey(usize),
}

/// Splits a posting key into its index prefix and its bucket.
pub fn split_key(key: &[u8]) -> Result<(&[u8], &[u8]), PostingError> {
    let at = key
        .len()
        .checked_sub(BUCKET_LEN)
        .ok_or(PostingError::ShortKey(key.len()))?;
    Ok(key.split_at(at))
}

/// The record ids a stored posting list under a key with `bucket` names, in id order.
pub fn decode(bucket: &[u8], value: &[u8]) -> Result<Vec<RecordId>, PostingError> {
    let bucket: &[u8; BUCKET_LEN] = bucket
        .try_into()
        .map_err(|_| PostingError::ShortKey(bucket.len()))?;
    let body = tails(value)?;
    let mut out = Vec::with_capacity(body.len() / TAIL_LEN);
    for tail in body.chunks_exact(TAIL_LEN) {
        let mut b = [0u8; RecordId::LEN];
        b[..BUCKET_LEN].copy_from_slice(bucket);
        b[BUCKET_LEN..].copy_from_slice(tail);
        out.push(RecordId::from_bytes(b));
    }
    Ok(out)
}

/// The entries of a stored value, checked.
fn tails(value: &[u8]) -> Result<&[u8], PostingError> {
    match value.split_first() {
        Some((&FORMAT, body)) if !body.is_empty() && body.len().is_multiple_of(TAIL_LEN) => {
            Ok(body)
        }
        Some((&FORMAT, _)) | None => Err(PostingError::Malformed(value.len())),
        Some((&other, _)) => Err(PostingError::UnsupportedFormat(other)),
    }
}

fn tail(id: RecordId) -> [u8; TAIL_LEN] {
    let mut t = [0u8; TAIL_LEN];
    t.copy_from_slice(&id.as_bytes()[BUCKET_LEN..]);
    t
}

/// What one write does to posting lists: per key, which records join and which leave (the last
/// word for a record wins, so adding then removing it within one batch leaves it out).
#[derive(Debug, Default)]
pub struct Edits {
    keys: BTreeMap<Vec<u8>, BTreeMap<[u8; TAIL_LEN], bool>>,
    /// The key being looked up, reused so that a list already touched costs no allocation.
    scratch: Vec<u8>,
}

impl Edits {
    /// Puts `id` in the list of `prefix`.
    pub fn add(&mut self, prefix: &[u8], id: RecordId) {
        self.set(prefix, id, true);
    }

    /// Takes `id` out of the list of `prefix`.
    pub fn remove(&mut self, prefix: &[u8], id: RecordId) {
        self.set(prefix, id, false);
    }

    fn set(&mut self, prefix: &[u8], id: RecordId, present: bool) {
        self.scratch.clear();
        self.scratch.extend_from_slice(prefix);
        self.scratch.extend_from_slice(&id.as_bytes()[..BUCKET_LEN]);
        match self.keys.get_mut(self.scratch.as_slice()) {
            Some(list) => {
                list.insert(tail(id), present);
            }
            None => {
                self.keys
                    .insert(self.scratch.clone(), BTreeMap::from([(tail(id), present)]));
            }
        }
    }

    /// The keys touched, in order, each with what to do to its stored value.
    pub fn into_keys(self) -> impl Iterator<Item = (Vec<u8>, KeyEdit)> {
        self.keys.into_iter().map(|(k, e)| (k, KeyEdit(e)))
    }
}

/// The edits of one posting key.
#[derive(Debug)]
pub struct KeyEdit(BTreeMap<[u8; TAIL_LEN], bool>);

impl KeyEdit {
    /// The new stored value given the current one (`None`: the list is now empty, remove the
    /// key). Entries stay sorted, so a list reads back in id order.
    pub fn apply(self, current: Option<&[u8]>) -> Result<Option<Vec<u8>>, PostingError> {
        let mut set = self.0;
        if let Some(v) = current {
            for t in tails(v)?.chunks_exact(TAIL_LEN) {
                let mut k = [0u8; TAIL_LEN];
                k.copy_from_slice(t);
                set.entry(k).or_insert(true);
            }
        }
        let mut out = Vec::with_capacity(1 + set.len() * TAIL_LEN);
        out.push(FORMAT);
        for (t, present) in set {
            if present {
                out.extend_from_slice(&t);
            }
        }
        Ok((out.len() > 1).then_some(out))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn id(millis: u64, r: u8) -> RecordId {
        RecordId::generate(millis, [r; 10])
    }

    fn ids_after(edits: Edits, current: Option<&[u8]>) -> Vec<(Vec<u8>, Option<Vec<RecordId>>)> {
        edits
            .into_keys()
            .map(|(k, e)| {
                let v = e.apply(current).unwrap();
                let (_, bucket) = split_key(&k).unwrap();
                let ids = v.map(|v| decode(bucket, &v).unwrap());
                (k, ids)
            })
            .collect()
    }

    #[test]
    fn records_of_one_bucket_share_one_key_in_id_order() {
        let mut e = Edits::default();
        e.add(b"\x04road", id(7, 9));
        e.add(b"\x04road", id(7, 3));
        e.add(b"\x04road", id(8, 1));
        let out = ids_after(e, None);
        assert_eq!(out.len(), 2, "two buckets");
        assert_eq!(out[0].1, Some(vec![id(7, 3), id(7, 9)]));
        assert_eq!(out[1].1, Some(vec![id(8, 1)]));
        let (prefix, bucket) = split_key(&out[0].0).unwrap();
        assert_eq!(prefix, b"\x04road");
        assert_eq!(bucket, &id(7, 0).as_bytes()[..BUCKET_LEN]);
    }

    #[test]
    fn removing_the_last_entry_removes_the_key_and_the_last_word_wins() {
        let mut first = Edits::default();
        first.add(b"p", id(1, 1));
        first.add(b"p", id(1, 2));
        let (_, stored) = first.into_keys().next().unwrap();
        let stored = stored.apply(None).unwrap().unwrap();

        let mut e = Edits::default();
        e.remove(b"p", id(1, 1));
        e.add(b"p", id(1, 3));
        e.remove(b"p", id(1, 3));
        let out = ids_after(e, Some(&stored));
        assert_eq!(out[0].1, Some(vec![id(1, 2)]));

        let mut e = Edits::default();
        e.remove(b"p", id(1, 1));
        e.remove(b"p", id(1, 2));
        assert_eq!(ids_after(e, Some(&stored))[0].1, None);
    }

    #[test]
    fn adding_a_present_record_changes_nothing() {
        let mut e = Edits::default();
        e.add(b"p", id(1, 1));
        let (_, edit) = e.into_keys().next().unwrap();
        let stored = edit.apply(None).unwrap().unwrap();
        let mut e = Edits::default();
        e.add(b"p", id(1, 1));
        let (_, edit) = e.into_keys().next().unwrap();
        assert_eq!(edit.apply(Some(&stored)).unwrap().unwrap(), stored);
    }

    #[test]
    fn damaged_values_are_refused() {
        assert_eq!(decode(&[0; 6], &[]), Err(PostingError::Malformed(0)));
        assert_eq!(decode(&[0; 6], &[1]), Err(PostingError::Malformed(1)));
        assert_eq!(decode(&[0; 6], &[1, 2, 3]), Err(PostingError::Malformed(3)));
        assert_eq!(
            decode(&[0; 6], &[2; 11]),
            Err(PostingError::UnsupportedFormat(2))
        );
        assert_eq!(split_key(b"abc"), Err(PostingError::ShortKey(3)));
        let mut e = Edits::default();
        e.add(b"p", id(1, 1));
        let (_, edit) = e.into_keys().next().unwrap();
        assert!(edit.apply(Some(&[1, 0])).is_err());
    }
}
