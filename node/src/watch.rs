//! The watch list: values this node's officers keep on watch (today serial numbers; the kind is
//! an enum so ballistic references and shipment identifiers can join when their federated
//! lookups exist). Every `watch_interval_ms` the node re-runs the federated lookup for each
//! watch, through the same fan-out as an officer's lookup (signed, audited, under each peer's
//! policy), and raises an alert for every hit it has not seen before.
//!
//! The first run only records the hits already known (the officer saw them when searching);
//! later runs alert on new ones. Watches and alerts are stored durably in the node's database
//! (tree `watch_list`), flushed before a call returns; alerts are listed newest first and
//! acknowledged by an officer. Deciding what is new ([`new_hits`]) and checking a new watch
//! ([`check_new`], every problem at once) are pure.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use prost::Message;
use tokio_util::sync::CancellationToken;
use tracenet_proto::v1 as pb;

use crate::audit::{Event, EventKind};
use crate::context::NodeContext;

/// Most watches a node keeps.
pub const MAX_WATCHES: usize = 1000;
/// Most known hits remembered per watch (older ones are forgotten first).
pub const MAX_SEEN: usize = 1000;
/// Longest value, manufacturer or note accepted.
pub const MAX_TEXT: usize = 200;
/// Most alerts one list returns.
pub const MAX_LIST: usize = 1000;
const DEFAULT_LIST: usize = 100;

/// Why a watch-list call failed.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The new watch is not valid: every problem, by field. Not retryable as is.
    #[error("{} invalid field(s)", .0.len())]
    Invalid(Vec<pb::RowError>),
    /// No watch or alert with this id. Not retryable.
    #[error("no {0} with this id")]
    NotFound(&'static str),
    /// The node keeps [`MAX_WATCHES`] watches already. Retryable once one is removed.
    #[error("the watch list is full ({MAX_WATCHES} entries)")]
    Full,
    /// The database failed. Retrying may help.
    #[error("watch list storage: {0}")]
    Storage(#[from] sled::Error),
    /// A stored entry does not decode (the store is damaged). Not retryable.
    #[error("watch list entry does not decode: {0}")]
    Corrupt(String),
    /// The change could not be audited, so it was not made. Retrying may help.
    #[error("audit log unavailable: {0}")]
    Audit(String),
}

fn field_error(field: &str, message: &str) -> pb::RowError {
    pb::RowError {
        line: 0,
        field: field.into(),
        reason: message.into(),
    }
}

/// The federated lookup a watch kind re-runs (the numbers are the same); `None` for an unknown
/// or unspecified kind.
pub fn lookup_kind(kind: i32) -> Option<pb::LookupKind> {
    pb::WatchKind::try_from(kind)
        .ok()
        .filter(|k| *k != pb::WatchKind::Unspecified)
        .and_then(|k| pb::LookupKind::try_from(k as i32).ok())
}

/// Checks a new watch, reporting every problem at once.
pub fn check_new(req: &pb::AddWatchRequest) -> Result<(), WatchError> {
    let mut errors = Vec::new();
    match lookup_kind(req.kind) {
        Some(kind) => {
            if crate::serial::normalise(&req.value).is_none() {
                errors.push(field_error(
                    "value",
                    "a value with at least one letter or digit is required",
                ));
            }
            if kind != pb::LookupKind::Serial && !req.manufacturer.trim().is_empty() {
                errors.push(field_error(
                    "manufacturer",
                    "only a serial number watch names a manufacturer",
                ));
            }
        }
        None => errors.push(field_error(
            "kind",
            "must be a serial number, ballistic reference, headstamp, ammunition lot or \
             shipment identifier",
        )),
    }
    for (field, text) in [
        ("value", &req.value),
        ("manufacturer", &req.manufacturer),
        ("note", &req.note),
        ("created_by", &req.created_by),
    ] {
        if text.chars().count() > MAX_TEXT {
            errors.push(field_error(field, "at most 200 characters"));
        }
    }
    match &req.inquiry {
        None => errors.push(field_error("inquiry.purpose", "is required")),
        Some(i) => {
            if i.purpose == 0 || pb::Purpose::try_from(i.purpose).is_err() {
                errors.push(field_error("inquiry.purpose", "is required"));
            }
            if pb::AgencyKind::try_from(i.agency_kind).is_err() {
                errors.push(field_error("inquiry.agency_kind", "unknown agency kind"));
            }
            if i.legal_basis.chars().count() > MAX_TEXT
                || i.case_reference.chars().count() > MAX_TEXT
            {
                errors.push(field_error("inquiry", "at most 200 characters per field"));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(WatchError::Invalid(errors))
    }
}

/// How a hit is remembered: the holder and its reference.
pub fn hit_key(node_id: &str, reference: &str) -> String {
    format!("{node_id}/{reference}")
}

/// The hits of `answers` not in `seen`, each once, in answer order: (holder, hit).
pub fn new_hits(seen: &[String], answers: &[pb::PeerAnswer]) -> Vec<(String, pb::LookupHit)> {
    let known: HashSet<&str> = seen.iter().map(String::as_str).collect();
    let mut fresh = Vec::new();
    let mut added = HashSet::new();
    for a in answers {
        for h in &a.hits {
            let reference = h.reference.as_ref().map_or("", |r| r.reference.as_str());
            let key = hit_key(&a.node_id, reference);
            if known.contains(key.as_str()) || !added.insert(key) {
                continue;
            }
            fresh.push((a.node_id.clone(), h.clone()));
        }
    }
    fresh
}

/// Adds `keys` to a watch's known hits, keeping the newest [`MAX_SEEN`].
pub fn remember(seen: &mut Vec<String>, keys: impl IntoIterator<Item = String>) {
    for k in keys {
        if !seen.contains(&k) {
            seen.push(k);
        }
    }
    if seen.len() > MAX_SEEN {
        let extra = seen.len() - MAX_SEEN;
        seen.drain(..extra);
    }
}

const WATCH: u8 = b'w';
const ALERT: u8 = b'a';

fn key(kind: u8, id: &str) -> Vec<u8> {
    let mut k = vec![kind];
    k.extend_from_slice(id.as_bytes());
    k
}

/// The watch list in the node's database (tree `watch_list`: `w` + watch id, `a` + alert id;
/// alert ids are zero-padded hex of a sled id, so key order is creation order).
#[derive(Debug)]
pub struct WatchStore {
    db: sled::Db,
    tree: sled::Tree,
    /// Serialises writers: a run updating a watch and an officer removing it never interleave.
    writer: Mutex<()>,
    /// One run at a time: two overlapping runs would alert on the same hit twice.
    running: tokio::sync::Mutex<()>,
}

fn decode<M: Message + Default>(bytes: &[u8]) -> Result<M, WatchError> {
    tracenet_proto::stored::decode(bytes).map_err(|e| WatchError::Corrupt(e.to_string()))
}

impl WatchStore {
    /// The watch list in `db`.
    pub fn open(db: &sled::Db) -> Result<WatchStore, WatchError> {
        Ok(WatchStore {
            db: db.clone(),
            tree: db.open_tree("watch_list")?,
            writer: Mutex::new(()),
            running: tokio::sync::Mutex::new(()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        // A panic while holding the lock leaves nothing half-written (sled batches are atomic).
        self.writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores a new watch (checked), flushed. Blocking.
    pub fn add(&self, req: pb::AddWatchRequest, now: i64) -> Result<pb::WatchEntry, WatchError> {
        check_new(&req)?;
        let _w = self.lock();
        if self.tree.scan_prefix([WATCH]).count() >= MAX_WATCHES {
            return Err(WatchError::Full);
        }
        let entry = pb::WatchEntry {
            id: format!("w{:016x}", self.db.generate_id()?),
            kind: req.kind,
            value: req.value.trim().to_owned(),
            manufacturer: req.manufacturer.trim().to_owned(),
            inquiry: req.inquiry,
            created_by: req.created_by,
            created_at: now,
            note: req.note,
            ..Default::default()
        };
        self.tree.insert(
            key(WATCH, &entry.id),
            tracenet_proto::stored::encode(&entry),
        )?;
        self.tree.flush()?;
        Ok(entry)
    }

    /// Every watch, oldest first. Blocking.
    pub fn list(&self) -> Result<Vec<pb::WatchEntry>, WatchError> {
        self.tree
            .scan_prefix([WATCH])
            .values()
            .map(|v| decode(&v?))
            .collect()
    }

    /// Removes a watch (its alerts stay). Blocking.
    pub fn remove(&self, id: &str) -> Result<pb::WatchEntry, WatchError> {
        let _w = self.lock();
        let old = self
            .tree
            .remove(key(WATCH, id))?
            .ok_or(WatchError::NotFound("watch"))?;
        self.tree.flush()?;
        decode(&old)
    }

    /// Writes a watch after a run together with the alerts it raised, atomically, unless the
    /// watch was removed meanwhile. Blocking.
    fn record_run(
        &self,
        entry: &pb::WatchEntry,
        alerts: Vec<pb::WatchAlert>,
    ) -> Result<Vec<pb::WatchAlert>, WatchError> {
        let _w = self.lock();
        let k = key(WATCH, &entry.id);
        if !self.tree.contains_key(&k)? {
            return Ok(Vec::new());
        }
        let mut batch = sled::Batch::default();
        batch.insert(k, tracenet_proto::stored::encode(entry));
        let mut stored = Vec::with_capacity(alerts.len());
        for mut a in alerts {
            a.id = format!("{:016x}", self.db.generate_id()?);
            batch.insert(key(ALERT, &a.id), tracenet_proto::stored::encode(&a));
            stored.push(a);
        }
        self.tree.apply_batch(batch)?;
        self.tree.flush()?;
        Ok(stored)
    }

    /// Alerts, newest first, at most `limit` (0: 100), and how many are unacknowledged in all.
    /// Blocking.
    pub fn alerts(
        &self,
        unacknowledged_only: bool,
        limit: u32,
    ) -> Result<(Vec<pb::WatchAlert>, u32), WatchError> {
        let limit = match limit as usize {
            0 => DEFAULT_LIST,
            n => n.min(MAX_LIST),
        };
        let mut out = Vec::new();
        let mut open = 0u32;
        for v in self.tree.scan_prefix([ALERT]).values().rev() {
            let a: pb::WatchAlert = decode(&v?)?;
            if !a.acknowledged {
                open = open.saturating_add(1);
            }
            if out.len() < limit && (!unacknowledged_only || !a.acknowledged) {
                out.push(a);
            }
        }
        Ok((out, open))
    }

    /// Marks an alert acknowledged (once: a second acknowledgement keeps the first). Blocking.
    pub fn acknowledge(&self, id: &str, by: &str, now: i64) -> Result<pb::WatchAlert, WatchError> {
        let _w = self.lock();
        let k = key(ALERT, id);
        let mut a: pb::WatchAlert =
            decode(&self.tree.get(&k)?.ok_or(WatchError::NotFound("alert"))?)?;
        if !a.acknowledged {
            a.acknowledged = true;
            a.acknowledged_by = by.chars().take(MAX_TEXT).collect();
            a.acknowledged_at = now;
            self.tree.insert(k, tracenet_proto::stored::encode(&a))?;
            self.tree.flush()?;
        }
        Ok(a)
    }
}

/// The audit entry of a watch added or removed.
pub fn change_event(entry: &pb::WatchEntry, what: &str) -> Event {
    let value = crate::serial::normalise(&entry.value)
        .map(|s| s.as_str().to_owned())
        .unwrap_or_default();
    let kind = lookup_kind(entry.kind)
        .unwrap_or(pb::LookupKind::Serial)
        .as_str_name()
        .trim_start_matches("LOOKUP_KIND_")
        .to_lowercase();
    Event {
        request_id: entry.id.clone(),
        detail: format!("watch {what}: {kind} {value} by {}", entry.created_by),
        ..Event::new(EventKind::WatchChange)
    }
}

/// Runs one watch: the federated lookup, then what is new. Returns the watch as updated and
/// the alerts to raise (ids unset).
async fn run_watch(
    ctx: &NodeContext,
    mut entry: pb::WatchEntry,
) -> (pb::WatchEntry, Vec<pb::WatchAlert>) {
    let now = ctx.clock.now_secs();
    entry.last_run_at = now;
    let inquiry = entry.inquiry.clone().unwrap_or_default();
    let answer = crate::fanout::lookup(
        ctx,
        inquiry,
        entry.value.clone(),
        entry.manufacturer.clone(),
        lookup_kind(entry.kind).unwrap_or(pb::LookupKind::Serial) as i32,
    )
    .await;
    let resp = match answer {
        Ok(r) => r,
        Err(e) => {
            entry.last_error = e.to_string();
            return (entry, Vec::new());
        }
    };
    entry.last_error = resp
        .failed
        .iter()
        .map(|f| format!("{}: {}", f.node_id, f.reason))
        .collect::<Vec<_>>()
        .join("; ");
    let fresh = new_hits(&entry.seen, &resp.answers);
    let keys = fresh.iter().map(|(node, h)| {
        hit_key(
            node,
            h.reference.as_ref().map_or("", |r| r.reference.as_str()),
        )
    });
    remember(&mut entry.seen, keys.collect::<Vec<_>>());
    if !entry.baseline_taken {
        // What is already known when the watch starts is no news.
        entry.baseline_taken = true;
        return (entry, Vec::new());
    }
    let alerts: Vec<pb::WatchAlert> = fresh
        .into_iter()
        .map(|(node, hit)| pb::WatchAlert {
            id: String::new(),
            watch_id: entry.id.clone(),
            kind: entry.kind,
            value: entry.value.clone(),
            node_id: node,
            reference: hit
                .reference
                .as_ref()
                .map_or_else(String::new, |r| r.reference.clone()),
            raised_at: now,
            hit: Some(hit),
            lookup_request_id: resp.request_id.clone(),
            ..Default::default()
        })
        .collect();
    entry.alert_count = entry
        .alert_count
        .saturating_add(u32::try_from(alerts.len()).unwrap_or(u32::MAX));
    (entry, alerts)
}

/// Runs every watch once; returns the alerts raised. Each alert is audited before it is
/// stored.
pub async fn run_once(ctx: &NodeContext) -> Result<Vec<pb::WatchAlert>, WatchError> {
    let store = ctx.watches.clone();
    let _one = store.running.lock().await;
    let s = store.clone();
    let watches = tokio::task::spawn_blocking(move || s.list())
        .await
        .map_err(|e| WatchError::Corrupt(e.to_string()))??;
    let mut raised = Vec::new();
    for w in watches {
        let (entry, alerts) = run_watch(ctx, w).await;
        let events: Vec<Event> = alerts
            .iter()
            .map(|a| Event {
                peer: a.node_id.clone(),
                request_id: a.lookup_request_id.clone(),
                detail: format!("watch {}: new hit", a.watch_id),
                record_refs: vec![a.reference.clone()],
                ..Event::new(EventKind::WatchAlert)
            })
            .collect();
        let (s, audit, now) = (store.clone(), ctx.audit.clone(), ctx.clock.now_secs());
        let stored = tokio::task::spawn_blocking(move || {
            if !events.is_empty() {
                audit
                    .append(events, now)
                    .map_err(|e| WatchError::Audit(e.to_string()))?;
            }
            s.record_run(&entry, alerts)
        })
        .await
        .map_err(|e| WatchError::Corrupt(e.to_string()))??;
        raised.extend(stored);
    }
    Ok(raised)
}

/// Runs the watch list every `every` until `shutdown`. Failures are logged and retried on the
/// next tick.
pub async fn run(ctx: NodeContext, every: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match run_once(&ctx).await {
            Ok(alerts) if !alerts.is_empty() => {
                tracing::info!(alerts = alerts.len(), "watch list: new hits");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "watch list run failed"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn answer(node: &str, refs: &[&str]) -> pb::PeerAnswer {
        pb::PeerAnswer {
            node_id: node.into(),
            hit: !refs.is_empty(),
            hits: refs
                .iter()
                .map(|r| pb::LookupHit {
                    reference: Some(pb::RecordRef {
                        owner_node: node.into(),
                        reference: (*r).into(),
                    }),
                    ..Default::default()
                })
                .collect(),
        }
    }

    fn serial_watch(value: &str) -> pb::AddWatchRequest {
        pb::AddWatchRequest {
            kind: pb::WatchKind::Serial as i32,
            value: value.into(),
            inquiry: Some(pb::Inquiry {
                purpose: pb::Purpose::CriminalInvestigation as i32,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn only_unseen_hits_are_new_and_each_once() {
        let seen = vec![hit_key("DEU-POL", "r1")];
        let answers = [
            answer("DEU-POL", &["r1", "r2", "r2"]),
            answer("ITA-POL", &["r1"]),
        ];
        let fresh: Vec<String> = new_hits(&seen, &answers)
            .iter()
            .map(|(n, h)| hit_key(n, &h.reference.as_ref().unwrap().reference))
            .collect();
        assert_eq!(fresh, ["DEU-POL/r2", "ITA-POL/r1"]);
        assert!(
            new_hits(
                &[
                    "DEU-POL/r2".into(),
                    "ITA-POL/r1".into(),
                    "DEU-POL/r1".into()
                ],
                &answers
            )
            .is_empty()
        );
    }

    #[test]
    fn remembered_hits_are_bounded_newest_kept() {
        let mut seen = Vec::new();
        remember(&mut seen, (0..MAX_SEEN + 5).map(|i| format!("n/{i}")));
        assert_eq!(seen.len(), MAX_SEEN);
        assert_eq!(seen[0], "n/5");
        remember(&mut seen, ["n/5".to_owned()]);
        assert_eq!(seen.len(), MAX_SEEN);
    }

    #[test]
    fn a_new_watch_reports_every_problem_at_once() {
        assert!(check_new(&serial_watch("AB-1234")).is_ok());
        let bad = pb::AddWatchRequest {
            kind: 99,
            value: "--".into(),
            note: "x".repeat(201),
            inquiry: None,
            ..Default::default()
        };
        let Err(WatchError::Invalid(errors)) = check_new(&bad) else {
            panic!("accepted")
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["kind", "note", "inquiry.purpose"]);
        let Err(WatchError::Invalid(errors)) = check_new(&serial_watch(" -/- ")) else {
            panic!("accepted")
        };
        assert_eq!(errors[0].field, "value");
    }

    #[test]
    fn the_store_keeps_watches_and_alerts_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let store = WatchStore::open(&db).unwrap();
        let w = store.add(serial_watch("AB-1234"), 10).unwrap();
        assert_eq!(store.list().unwrap(), vec![w.clone()]);
        let alert = |r: &str| pb::WatchAlert {
            watch_id: w.id.clone(),
            reference: r.into(),
            ..Default::default()
        };
        let mut updated = w.clone();
        updated.baseline_taken = true;
        let stored = store
            .record_run(&updated, vec![alert("r1"), alert("r2")])
            .unwrap();
        assert_eq!(stored.len(), 2);
        let (all, open) = store.alerts(false, 0).unwrap();
        assert_eq!(open, 2);
        assert_eq!(all[0].reference, "r2", "newest first");
        let acked = store.acknowledge(&all[1].id, "officer", 20).unwrap();
        assert!(acked.acknowledged && acked.acknowledged_by == "officer");
        let (open_only, open) = store.alerts(true, 0).unwrap();
        assert_eq!((open_only.len(), open), (1, 1));
        assert!(matches!(
            store.acknowledge("nope", "x", 1),
            Err(WatchError::NotFound("alert"))
        ));
        // A removed watch is not written back by a run that was under way.
        store.remove(&w.id).unwrap();
        assert!(
            store
                .record_run(&updated, vec![alert("r3")])
                .unwrap()
                .is_empty()
        );
        assert!(store.list().unwrap().is_empty());
        assert!(matches!(
            store.remove(&w.id),
            Err(WatchError::NotFound("watch"))
        ));
    }
}
