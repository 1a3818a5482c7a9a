//! A hub's mailboxes: sealed messages held for outbound-only members until they collect and
//! acknowledge them. Durable (a message is flushed to disk before the hub says it holds it), in
//! arrival order per member, survives restarts of the hub and of the member; a message is removed
//! only by its recipient's acknowledgement. Senders waiting for a reply are woken when it comes.
//!
//! Bounded twice: at most [`MAX_HELD`] messages per recipient, and at most
//! [`MAX_HELD_PER_SENDER`] of them from any one sender, so a member flooding another's mailbox
//! fills only its own share and the other senders' messages are still taken. A sender whose
//! share is used has its own oldest message dropped for the new one rather than being refused:
//! an outbox retry to an offline member seals a new message each time, and the old copies are
//! worthless once their signed context is older than the recipient's skew window, so refusing
//! would let a sender's own retries lock its new traffic out. What is dropped is never lost: an
//! outbox keeps every item until it is answered, and a waiting caller is told at once.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use prost::Message;
use tokio::sync::{Notify, oneshot};
use tracenet_proto::v1 as pb;

use crate::ids::NodeId;

/// Most messages one member's mailbox holds; beyond it new messages are refused (the senders'
/// outboxes retry later), so a silent member cannot fill the hub's disk.
pub const MAX_HELD: usize = 10_000;

/// Most messages one sender may have waiting in one member's mailbox (a tenth of it): past it,
/// each new message from that sender replaces its own oldest, so a member flooding another's
/// mailbox churns its own share while other senders still get through.
pub const MAX_HELD_PER_SENDER: usize = MAX_HELD / 10;

/// Why the mailbox failed. Storage errors may pass on retry; `Full` passes once the member
/// collects its messages.
#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    /// The member's mailbox holds [`MAX_HELD`] messages already (and none of them is this
    /// sender's to replace).
    #[error("the mailbox of {0} is full")]
    Full(String),
    /// Another sender's message with this id is held for this member (ids are random, so an
    /// honest sender never meets this; a new id passes).
    #[error("a message with this id from another sender is held for {0}")]
    IdTaken(String),
    /// sled failed.
    #[error("mailbox storage: {0}")]
    Storage(#[from] sled::Error),
    /// A held message does not decode (the store is damaged).
    #[error("mailbox entry does not decode: {0}")]
    Corrupt(String),
}

/// How much a mailbox holds (the constants above; smaller in unit tests).
#[derive(Debug, Clone, Copy)]
struct Bounds {
    per_recipient: usize,
    per_sender: usize,
}

/// What is held, per recipient (a count) and per (recipient, sender) (the held keys and ids,
/// oldest first). Kept in memory (read from the tree on open), changed under its lock together
/// with the trees, so the bounds hold under concurrent puts and a put costs no scan of the
/// mailbox.
#[derive(Debug, Default)]
struct Counts {
    per_recipient: HashMap<String, usize>,
    per_sender: HashMap<(String, String), VecDeque<Slot>>,
}

/// One held message: its key in the `held` tree and its id.
#[derive(Debug, Clone)]
struct Slot {
    key: Vec<u8>,
    id: String,
}

impl Counts {
    fn add(&mut self, recipient: &str, sender: &str, slot: Slot) {
        *self.per_recipient.entry(recipient.to_owned()).or_default() += 1;
        self.per_sender
            .entry((recipient.to_owned(), sender.to_owned()))
            .or_default()
            .push_back(slot);
    }

    fn remove(&mut self, recipient: &str, sender: &str, key: &[u8]) {
        if let Some(n) = self.per_recipient.get_mut(recipient) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_recipient.remove(recipient);
            }
        }
        let pair = (recipient.to_owned(), sender.to_owned());
        if let Some(slots) = self.per_sender.get_mut(&pair) {
            slots.retain(|s| s.key != key);
            if slots.is_empty() {
                self.per_sender.remove(&pair);
            }
        }
    }

    fn held(&self, recipient: &str) -> usize {
        self.per_recipient.get(recipient).copied().unwrap_or(0)
    }

    fn oldest(&self, recipient: &str, sender: &str) -> Option<(usize, Slot)> {
        let slots = self
            .per_sender
            .get(&(recipient.to_owned(), sender.to_owned()))?;
        Some((slots.len(), slots.front()?.clone()))
    }
}

/// Who waits for the reply to which message: recipient, sender, message id.
type WaitKey = (String, String, String);

/// A registered waiter: its token and where its reply goes.
type Registered = (u64, oneshot::Sender<pb::SealedMessage>);

fn wait_key(recipient: &str, sender: &str, message_id: &str) -> WaitKey {
    (
        recipient.to_owned(),
        sender.to_owned(),
        message_id.to_owned(),
    )
}

/// What [`Mailbox::put`] did with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Put {
    /// Held from now on.
    Held,
    /// Already held (same recipient and id): held once.
    AlreadyHeld,
    /// Held in place of the sender's oldest message to the same member (this id), which is
    /// dropped: the sender's share was used.
    Replaced(String),
}

/// The mailboxes of one hub.
#[derive(Debug, Clone)]
pub struct Mailbox {
    db: sled::Db,
    held: sled::Tree,
    ids: sled::Tree,
    bounds: Bounds,
    counts: Arc<Mutex<Counts>>,
    arrived: Arc<Notify>,
    /// Senders waiting for a reply, by the message's recipient, sender and id, each with the
    /// token of its registration (a later registration of the same key replaces it, and the
    /// earlier one's guard must not then remove the later one).
    waiting: Arc<Mutex<HashMap<WaitKey, Registered>>>,
    next_token: Arc<std::sync::atomic::AtomicU64>,
}

fn key(recipient: &str, seq: u64) -> Vec<u8> {
    let mut k = prefix(recipient);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The `ids` tree's key of a message: its recipient's prefix, then its id.
fn id_key(recipient: &str, message_id: &str) -> Vec<u8> {
    let mut k = prefix(recipient);
    k.extend_from_slice(message_id.as_bytes());
    k
}

fn prefix(recipient: &str) -> Vec<u8> {
    let mut k = recipient.as_bytes().to_vec();
    k.push(0);
    k
}

impl Mailbox {
    /// The mailboxes in `db` (trees `hub_mailbox` and `hub_mailbox_ids`).
    pub fn open(db: &sled::Db) -> Result<Mailbox, MailboxError> {
        Self::open_bounded(
            db,
            Bounds {
                per_recipient: MAX_HELD,
                per_sender: MAX_HELD_PER_SENDER,
            },
        )
    }

    fn open_bounded(db: &sled::Db, bounds: Bounds) -> Result<Mailbox, MailboxError> {
        let held = db.open_tree("hub_mailbox")?;
        let mut counts = Counts::default();
        // In key order, so each sender's slots are oldest first.
        for kv in held.iter() {
            let (k, v) = kv?;
            let recipient = k.split(|b| *b == 0).next().unwrap_or_default();
            let recipient = String::from_utf8_lossy(recipient);
            // An entry that does not decode still takes its recipient's room (under no sender).
            let (sender, id) = pb::SealedMessage::decode(v.as_ref())
                .map(|m| (m.sender, m.message_id))
                .unwrap_or_default();
            let slot = Slot {
                key: k.to_vec(),
                id,
            };
            counts.add(&recipient, &sender, slot);
        }
        Ok(Mailbox {
            db: db.clone(),
            held,
            ids: db.open_tree("hub_mailbox_ids")?,
            bounds,
            counts: Arc::new(Mutex::new(counts)),
            arrived: Arc::new(Notify::new()),
            waiting: Arc::new(Mutex::new(HashMap::new())),
            next_token: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        })
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Holds `msg` for its recipient, durably (blocking: call from the blocking pool). A message
    /// already held (same recipient, sender and id) is held once; another sender's under that
    /// id is refused. When the sender's share is used, its
    /// own oldest message to that member is dropped for this one (and its waiter, if any, told
    /// at once). Refused when the recipient's mailbox is full of other senders' messages.
    pub fn put(&self, msg: &pb::SealedMessage) -> Result<Put, MailboxError> {
        let new_id = id_key(&msg.recipient, &msg.message_id);
        let put = {
            // Check and insert under one lock: concurrent puts can neither pass the bounds
            // together nor hold one message id twice (a copy its acknowledgement would miss).
            let mut counts = self.counts();
            if let Some(k) = self.ids.get(&new_id)?
                && let Some(v) = self.held.get(k)?
            {
                // Held once per recipient and id; another sender's message never stands in for
                // this one (nor is its reply handed to this sender).
                let sender = pb::SealedMessage::decode(v.as_ref())
                    .map(|m| m.sender)
                    .unwrap_or_default();
                if sender != msg.sender {
                    return Err(MailboxError::IdTaken(msg.recipient.clone()));
                }
                return Ok(Put::AlreadyHeld);
            }
            // (An id without its message, left by a crash between the two inserts below, is
            // held afresh: otherwise that id could never be held again.)
            let replace = counts
                .oldest(&msg.recipient, &msg.sender)
                .filter(|(own, _)| *own >= self.bounds.per_sender)
                .map(|(_, oldest)| oldest);
            if replace.is_none() && counts.held(&msg.recipient) >= self.bounds.per_recipient {
                return Err(MailboxError::Full(msg.recipient.clone()));
            }
            let k = key(&msg.recipient, self.db.generate_id()?);
            // The id entry first: a crash between the two leaves an id without a message, which
            // `ack` and `pending` tolerate; never a message that cannot be acknowledged.
            self.ids.insert(new_id.as_slice(), k.clone())?;
            if let Err(e) = self.held.insert(k.as_slice(), msg.encode_to_vec()) {
                let _ = self.ids.remove(&new_id);
                return Err(e.into());
            }
            let slot = Slot {
                key: k,
                id: msg.message_id.clone(),
            };
            counts.add(&msg.recipient, &msg.sender, slot);
            match replace {
                // Only once the new message is in: a failure above drops nothing.
                Some(oldest) => {
                    // The message first, then its id: a crash between leaves an id without a
                    // message, which is tolerated (above, `ack`, `pending`).
                    self.held.remove(&oldest.key)?;
                    counts.remove(&msg.recipient, &msg.sender, &oldest.key);
                    self.ids.remove(id_key(&msg.recipient, &oldest.id))?;
                    Put::Replaced(oldest.id)
                }
                None => Put::Held,
            }
        };
        self.db.flush()?;
        if let Put::Replaced(old) = &put {
            // Its sender, if still waiting, learns now that no reply will come.
            self.stop_waiting(&wait_key(&msg.recipient, &msg.sender, old), None);
        }
        self.arrived.notify_waiters();
        Ok(put)
    }

    /// Up to `max` messages held for `recipient`, oldest first (blocking).
    pub fn pending(
        &self,
        recipient: &NodeId,
        max: usize,
    ) -> Result<Vec<pb::SealedMessage>, MailboxError> {
        self.held
            .scan_prefix(prefix(recipient.as_str()))
            .take(max)
            .map(|kv| {
                let (_, v) = kv?;
                pb::SealedMessage::decode(v.as_ref())
                    .map_err(|e| MailboxError::Corrupt(e.to_string()))
            })
            .collect()
    }

    /// How many messages are held for `recipient` (blocking).
    pub fn len(&self, recipient: &NodeId) -> usize {
        self.held.scan_prefix(prefix(recipient.as_str())).count()
    }

    /// Removes the message `message_id` held for `recipient`, durably (blocking). Returns
    /// whether it was held.
    pub fn ack(&self, recipient: &NodeId, message_id: &str) -> Result<bool, MailboxError> {
        let id_key = id_key(recipient.as_str(), message_id);
        {
            let mut counts = self.counts();
            let Some(k) = self.ids.get(&id_key)? else {
                return Ok(false);
            };
            if let Some(v) = self.held.remove(&k)? {
                let sender = pb::SealedMessage::decode(v.as_ref())
                    .map(|m| m.sender)
                    .unwrap_or_default();
                counts.remove(recipient.as_str(), &sender, &k);
            }
            self.ids.remove(id_key)?;
        }
        self.db.flush()?;
        Ok(true)
    }

    /// Resolves when something new arrives in any mailbox.
    pub fn arrived(&self) -> Arc<Notify> {
        self.arrived.clone()
    }

    /// Registers interest in the reply to a message; the registration's token.
    fn wait_reply(&self, key: WaitKey) -> (u64, oneshot::Receiver<pb::SealedMessage>) {
        let (tx, rx) = oneshot::channel();
        let token = self
            .next_token
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, (token, tx));
        (token, rx)
    }

    /// Forgets the waiter of `key`: only the registration `token` if given (a waiter that gave
    /// up), whichever it is if not (its message was dropped).
    fn stop_waiting(&self, key: &WaitKey, token: Option<u64>) {
        let mut waiting = self
            .waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if token.is_none_or(|t| waiting.get(key).is_some_and(|(held, _)| *held == t)) {
            waiting.remove(key);
        }
    }

    /// Holds `msg` (durably) for its outbound-only recipient and waits up to `wait` for the
    /// recipient to collect and answer it, or until `stop` is cancelled: [`Mailbox::hold`], then
    /// [`Held::reply`].
    pub async fn hold_and_wait(
        &self,
        to: &NodeId,
        msg: pb::SealedMessage,
        wait: std::time::Duration,
        stop: &tokio_util::sync::CancellationToken,
    ) -> Result<pb::SealedMessage, tonic::Status> {
        let (_, held) = self.hold(msg).await?;
        held.reply(to, wait, stop).await
    }

    /// Holds `msg` (durably) for its outbound-only recipient, already waiting for its reply (so
    /// none is missed); what was done with it, and the wait. RESOURCE_EXHAUSTED when the
    /// mailbox has no room, ALREADY_EXISTS when another sender's message holds the id,
    /// UNAVAILABLE when storage failed.
    pub async fn hold(&self, msg: pb::SealedMessage) -> Result<(Put, Held<'_>), tonic::Status> {
        let key = wait_key(&msg.recipient, &msg.sender, &msg.message_id);
        let (token, reply) = self.wait_reply(key.clone());
        // Forgets the waiter however this ends, also when the caller drops the wait (a
        // regional fan-out's deadline), so no waiter outlives its call.
        let waiter = Waiter {
            mailbox: self,
            key,
            token,
        };
        let m = self.clone();
        let put = tokio::task::spawn_blocking(move || m.put(&msg))
            .await
            .map_err(|_| tonic::Status::internal("internal error"))?
            .map_err(|e| match e {
                MailboxError::Full(_) => tonic::Status::resource_exhausted(e.to_string()),
                MailboxError::IdTaken(_) => tonic::Status::already_exists(e.to_string()),
                other => tonic::Status::unavailable(other.to_string()),
            })?;
        Ok((
            put,
            Held {
                reply,
                _waiter: waiter,
            },
        ))
    }

    /// How many senders wait for a reply.
    #[cfg(test)]
    fn waiters(&self) -> usize {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Hands `reply`, from `recipient` (the caller's certificate), to the sender it is addressed
    /// to if that sender still waits for the answer to its message `message_id`: a member's
    /// reply can reach only a sender waiting on a message it sent to that member.
    pub fn reply(&self, recipient: &NodeId, message_id: &str, reply: pb::SealedMessage) {
        let key = wait_key(recipient.as_str(), &reply.recipient, message_id);
        let tx = self
            .waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&key);
        if let Some((_, tx)) = tx {
            let _ = tx.send(reply);
        }
    }
}

/// A held message whose reply is awaited.
#[derive(Debug)]
pub struct Held<'a> {
    reply: oneshot::Receiver<pb::SealedMessage>,
    _waiter: Waiter<'a>,
}

impl Held<'_> {
    /// Waits up to `wait` for the recipient `to` to collect and answer the message, or until
    /// `stop` is cancelled. UNAVAILABLE if no reply came: the message stays held (unless a
    /// newer one from the same sender replaced it), and the sender's outbox (or the caller)
    /// decides whether to send again.
    pub async fn reply(
        self,
        to: &NodeId,
        wait: std::time::Duration,
        stop: &tokio_util::sync::CancellationToken,
    ) -> Result<pb::SealedMessage, tonic::Status> {
        let Held { reply, _waiter } = self;
        let still_held = tokio::select! {
            r = tokio::time::timeout(wait, reply) => match r {
                Ok(Ok(reply)) => return Ok(reply),
                // The waiter was dropped without a reply: the message was replaced.
                Ok(Err(_)) => false,
                Err(_) => true,
            },
            () = stop.cancelled() => true,
        };
        Err(tonic::Status::unavailable(if still_held {
            format!("queued for {to}, which has not collected it yet; it stays in its mailbox")
        } else {
            format!(
                "dropped from the mailbox of {to} for a newer message from the same sender \
                 (its share is used); send again later"
            )
        }))
    }
}

/// A registered interest in a reply, forgotten when dropped.
#[derive(Debug)]
struct Waiter<'a> {
    mailbox: &'a Mailbox,
    key: WaitKey,
    token: u64,
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.mailbox.stop_waiting(&self.key, Some(self.token));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn msg(to: &str, id: &str) -> pb::SealedMessage {
        pb::SealedMessage {
            message_id: id.into(),
            sender: "FRA-POL".into(),
            recipient: to.into(),
            ciphertext: vec![1, 2, 3],
            ..Default::default()
        }
    }

    #[test]
    fn an_id_left_without_its_message_does_not_block_that_message() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let m = Mailbox::open(&db).unwrap();
        // As a crash between the id entry and the message would leave it.
        let orphan = id_key("ITA-CAR", "lost");
        m.ids
            .insert(orphan, key("ITA-CAR", db.generate_id().unwrap()))
            .unwrap();
        m.put(&msg("ITA-CAR", "lost")).unwrap();
        let ita = NodeId::parse("ITA-CAR").unwrap();
        let held = held_ids(&m, &ita);
        assert_eq!(held, ["lost"]);
        assert!(m.ack(&ita, "lost").unwrap());
        assert_eq!(m.len(&ita), 0);
    }

    #[test]
    fn held_in_order_until_acknowledged_and_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let ita = NodeId::parse("ITA-CAR").unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            let m = Mailbox::open(&db).unwrap();
            m.put(&msg("ITA-CAR", "a")).unwrap();
            m.put(&msg("ITA-CAR", "b")).unwrap();
            m.put(&msg("ITA-CAR", "a")).unwrap();
            m.put(&msg("DEU-BKA", "c")).unwrap();
            // Another sender's message under an id already held for ITA: refused, not merged.
            assert!(matches!(
                m.put(&from("AUT-BKA", "ITA-CAR", "b")),
                Err(MailboxError::IdTaken(r)) if r == "ITA-CAR"
            ));
            let ids = held_ids(&m, &ita);
            assert_eq!(ids, ["a", "b"]);
            assert!(m.ack(&ita, "a").unwrap());
            assert!(!m.ack(&ita, "a").unwrap());
        }
        let db = sled::open(dir.path()).unwrap();
        let m = Mailbox::open(&db).unwrap();
        let ids = held_ids(&m, &ita);
        assert_eq!(ids, ["b"]);
        assert_eq!(m.len(&NodeId::parse("DEU-BKA").unwrap()), 1);
    }

    #[tokio::test]
    async fn a_reply_reaches_its_waiter() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let m = Mailbox::open(&db).unwrap();
        let ita = NodeId::parse("ITA-CAR").unwrap();
        let (_, held) = m.hold(msg("ITA-CAR", "a")).await.unwrap();
        // Another member answering that id, or ITA answering it to another sender, reaches no
        // one; ITA's answer to FRA does.
        m.reply(
            &NodeId::parse("DEU-BKA").unwrap(),
            "a",
            msg("FRA-POL", "forged"),
        );
        m.reply(&ita, "a", msg("DEU-BKA", "misaddressed"));
        m.reply(&ita, "a", msg("FRA-POL", "r"));
        let stop = tokio_util::sync::CancellationToken::new();
        let got = held
            .reply(&ita, std::time::Duration::from_secs(3600), &stop)
            .await
            .unwrap();
        assert_eq!(got.message_id, "r");
        m.reply(&ita, "nobody", msg("FRA-POL", "r"));
        assert_eq!(m.waiters(), 0);
    }

    fn from(sender: &str, to: &str, id: &str) -> pb::SealedMessage {
        pb::SealedMessage {
            sender: sender.into(),
            ..msg(to, id)
        }
    }

    /// The ids held for `who`, oldest first.
    fn held_ids(m: &Mailbox, who: &NodeId) -> Vec<String> {
        m.pending(who, 100)
            .unwrap()
            .into_iter()
            .map(|m| m.message_id)
            .collect()
    }

    fn bounded(db: &sled::Db, per_recipient: usize, per_sender: usize) -> Mailbox {
        Mailbox::open_bounded(
            db,
            Bounds {
                per_recipient,
                per_sender,
            },
        )
        .unwrap()
    }

    const SMALL: Bounds = Bounds {
        per_recipient: 6,
        per_sender: 3,
    };

    #[test]
    fn the_production_bounds_leave_room_for_ten_senders() {
        assert_eq!(MAX_HELD, 10_000);
        assert_eq!(MAX_HELD_PER_SENDER * 10, MAX_HELD);
    }

    fn put(m: &Mailbox, sender: &str, to: &str, id: &str) -> Result<Put, MailboxError> {
        m.put(&from(sender, to, id))
    }

    fn replaced(id: &str) -> Put {
        Put::Replaced(id.into())
    }

    #[test]
    fn a_flooding_sender_churns_only_its_share_and_a_mailbox_never_passes_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let ita = NodeId::parse("ITA-CAR").unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            let m = Mailbox::open_bounded(&db, SMALL).unwrap();
            for i in 0..3 {
                assert_eq!(
                    put(&m, "FRA-POL", "ITA-CAR", &format!("f{i}")).unwrap(),
                    Put::Held
                );
            }
            // Past its share: its own oldest is dropped for the new one; a message already held
            // is held once, and one dropped can be held again (as the newest).
            assert_eq!(put(&m, "FRA-POL", "ITA-CAR", "f3").unwrap(), replaced("f0"));
            assert_eq!(
                put(&m, "FRA-POL", "ITA-CAR", "f1").unwrap(),
                Put::AlreadyHeld
            );
            assert_eq!(put(&m, "FRA-POL", "ITA-CAR", "f0").unwrap(), replaced("f1"));
            assert_eq!(m.len(&ita), 3);
            assert!(
                !m.ack(&ita, "f1").unwrap(),
                "a dropped message is gone with its id"
            );
            // Another sender to the same member, and the same sender to another member, get
            // through.
            for i in 0..3 {
                assert_eq!(
                    put(&m, "DEU-BKA", "ITA-CAR", &format!("d{i}")).unwrap(),
                    Put::Held
                );
            }
            assert_eq!(put(&m, "FRA-POL", "ESP-GCV", "e0").unwrap(), Put::Held);
            // The member's whole bound: refused to a sender with nothing of its own to drop;
            // a sender at its share still replaces its own.
            let e = put(&m, "AUT-BKA", "ITA-CAR", "a0").unwrap_err();
            assert!(
                matches!(&e, MailboxError::Full(r) if r == "ITA-CAR"),
                "{e:?}"
            );
            assert_eq!(put(&m, "FRA-POL", "ITA-CAR", "f4").unwrap(), replaced("f2"));
            assert_eq!(m.len(&ita), 6);
            assert_eq!(m.len(&NodeId::parse("ESP-GCV").unwrap()), 1);
            // What was held first is handed over first; collecting makes room again.
            let first = m.pending(&ita, 1).unwrap();
            assert_eq!(first[0].message_id, "f3");
            assert!(m.ack(&ita, "f3").unwrap());
            assert_eq!(put(&m, "AUT-BKA", "ITA-CAR", "a0").unwrap(), Put::Held);
            assert!(put(&m, "AUT-BKA", "ITA-CAR", "a1").is_err());
        }
        // What is held, and in which order, is read again after a restart.
        let db = sled::open(dir.path()).unwrap();
        let m = Mailbox::open_bounded(&db, SMALL).unwrap();
        assert!(put(&m, "AUT-BKA", "ITA-CAR", "a1").is_err());
        assert!(
            put(&m, "FRA-POL", "ITA-CAR", "f5").is_err(),
            "below its share"
        );
        assert_eq!(put(&m, "DEU-BKA", "ITA-CAR", "d3").unwrap(), replaced("d0"));
        assert!(m.ack(&ita, "d1").unwrap());
        assert_eq!(put(&m, "FRA-POL", "ITA-CAR", "f5").unwrap(), Put::Held);
        let held = held_ids(&m, &ita);
        assert_eq!(held, ["f0", "d2", "f4", "a0", "d3", "f5"]);
    }

    #[test]
    fn concurrent_puts_never_pass_the_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let m = bounded(&db, 40, 25);
        let threads: Vec<_> = ["FRA-POL", "DEU-BKA"]
            .into_iter()
            .flat_map(|sender| (0..4).map(move |t| (sender, t)).collect::<Vec<_>>())
            .map(|(sender, t)| {
                let m = m.clone();
                std::thread::spawn(move || {
                    (0..20)
                        .filter(|i| {
                            // Every thread also sends one id another thread sends.
                            let id = format!("{sender}-{}", (t * 20 + i) % 70);
                            m.put(&from(sender, "ITA-CAR", &id)).is_ok()
                        })
                        .count()
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let ita = NodeId::parse("ITA-CAR").unwrap();
        let held = m.pending(&ita, 1000).unwrap();
        assert_eq!(held.len(), 40);
        for sender in ["FRA-POL", "DEU-BKA"] {
            let mut ids: Vec<_> = held
                .iter()
                .filter(|h| h.sender == sender)
                .map(|h| h.message_id.clone())
                .collect();
            assert!(ids.len() <= 25, "{sender}: {}", ids.len());
            let n = ids.len();
            ids.dedup();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), n, "an id held twice");
        }
        // Every held message can be acknowledged.
        for h in &held {
            assert!(m.ack(&ita, &h.message_id).unwrap());
        }
        assert_eq!(m.len(&ita), 0);
    }

    #[tokio::test]
    async fn a_wait_given_up_by_its_caller_forgets_its_waiter() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let m = Mailbox::open(&db).unwrap();
        let ita = NodeId::parse("ITA-CAR").unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        // The caller gives up (as a regional fan-out's deadline does) once the message is
        // held, long before the hub's own reply wait ends.
        let arrived = m.arrived();
        let held = arrived.notified();
        {
            let wait = m.hold_and_wait(
                &ita,
                msg("ITA-CAR", "w1"),
                std::time::Duration::from_secs(60),
                &stop,
            );
            tokio::pin!(wait);
            tokio::select! {
                r = &mut wait => panic!("no reply can come: {r:?}"),
                () = held => {}
            }
            assert_eq!(m.waiters(), 1);
        }
        assert_eq!(m.len(&ita), 1, "the message stays held");
        assert_eq!(m.waiters(), 0);
        // A refused message leaves no waiter either.
        let full = bounded(&db, 1, 1);
        let e = full
            .hold_and_wait(
                &ita,
                from("DEU-BKA", "ITA-CAR", "w2"),
                std::time::Duration::from_secs(60),
                &stop,
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
        assert_eq!(full.waiters(), 0);
    }

    #[tokio::test]
    async fn a_sender_waiting_on_a_message_dropped_for_its_newer_one_is_told_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let m = bounded(&db, 10, 1);
        let ita = NodeId::parse("ITA-CAR").unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        let (put, first) = m.hold(msg("ITA-CAR", "old")).await.unwrap();
        assert_eq!(put, Put::Held);
        let (put, _second) = m.hold(msg("ITA-CAR", "new")).await.unwrap();
        assert_eq!(put, replaced("old"));
        // Told it was dropped, not left to wait out the (here long) reply wait.
        let e = first
            .reply(&ita, std::time::Duration::from_secs(3600), &stop)
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unavailable);
        assert!(e.message().contains("dropped"), "{e:?}");
        assert_eq!(m.waiters(), 1, "only the newer message's");
        // The same message held again (a sender's repeated call): the later wait is the one
        // registered, and the earlier one giving up does not remove it.
        let (put, again) = m.hold(msg("ITA-CAR", "new")).await.unwrap();
        assert_eq!(put, Put::AlreadyHeld);
        drop(_second);
        assert_eq!(m.waiters(), 1);
        m.reply(&ita, "new", msg("FRA-POL", "answer"));
        let got = again
            .reply(&ita, std::time::Duration::from_secs(3600), &stop)
            .await
            .unwrap();
        assert_eq!(got.message_id, "answer");
        let held = held_ids(&m, &ita);
        assert_eq!(held, ["new"]);
    }
}
