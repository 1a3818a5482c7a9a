//! A hub's mailboxes: sealed messages held for outbound-only members until they collect and
//! acknowledge them. Durable (a message is flushed to disk before the hub says it holds it), in
//! arrival order per member, survives restarts of the hub and of the member; a message is removed
//! only by its recipient's acknowledgement. Senders waiting for a reply are woken when it comes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prost::Message;
use tokio::sync::{Notify, oneshot};
use tracenet_proto::v1 as pb;

use crate::ids::NodeId;

/// Most messages one member's mailbox holds; beyond it new messages are refused (the senders'
/// outboxes retry later), so a silent member cannot fill the hub's disk.
pub const MAX_HELD: usize = 10_000;

/// Why the mailbox failed. Storage errors may pass on retry; `Full` passes once the member
/// collects its messages.
#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    /// The member's mailbox holds [`MAX_HELD`] messages already.
    #[error("the mailbox of {0} is full")]
    Full(String),
    /// sled failed.
    #[error("mailbox storage: {0}")]
    Storage(#[from] sled::Error),
    /// A held message does not decode (the store is damaged).
    #[error("mailbox entry does not decode: {0}")]
    Corrupt(String),
}

/// The mailboxes of one hub.
#[derive(Debug, Clone)]
pub struct Mailbox {
    db: sled::Db,
    held: sled::Tree,
    ids: sled::Tree,
    arrived: Arc<Notify>,
    waiting: Arc<Mutex<HashMap<String, oneshot::Sender<pb::SealedMessage>>>>,
}

fn key(recipient: &str, seq: u64) -> Vec<u8> {
    let mut k = recipient.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&seq.to_be_bytes());
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
        Ok(Mailbox {
            db: db.clone(),
            held: db.open_tree("hub_mailbox")?,
            ids: db.open_tree("hub_mailbox_ids")?,
            arrived: Arc::new(Notify::new()),
            waiting: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// Holds `msg` for its recipient, durably (blocking: call from the blocking pool). A message
    /// already held (same recipient and id) is held once.
    pub fn put(&self, msg: &pb::SealedMessage) -> Result<(), MailboxError> {
        let id_key = [prefix(&msg.recipient), msg.message_id.as_bytes().to_vec()].concat();
        if self.ids.contains_key(&id_key)? {
            return Ok(());
        }
        if self.held.scan_prefix(prefix(&msg.recipient)).count() >= MAX_HELD {
            return Err(MailboxError::Full(msg.recipient.clone()));
        }
        let k = key(&msg.recipient, self.db.generate_id()?);
        // The id entry first: a crash between the two leaves an id without a message, which
        // `ack` and `pending` tolerate; never a message that cannot be acknowledged.
        self.ids.insert(id_key, k.clone())?;
        self.held.insert(k, msg.encode_to_vec())?;
        self.db.flush()?;
        self.arrived.notify_waiters();
        Ok(())
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
        let id_key = [prefix(recipient.as_str()), message_id.as_bytes().to_vec()].concat();
        let Some(k) = self.ids.get(&id_key)? else {
            return Ok(false);
        };
        self.held.remove(k)?;
        self.ids.remove(id_key)?;
        self.db.flush()?;
        Ok(true)
    }

    /// Resolves when something new arrives in any mailbox.
    pub fn arrived(&self) -> Arc<Notify> {
        self.arrived.clone()
    }

    /// Registers interest in the reply to `message_id`.
    pub fn wait_reply(&self, message_id: &str) -> oneshot::Receiver<pb::SealedMessage> {
        let (tx, rx) = oneshot::channel();
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(message_id.to_owned(), tx);
        rx
    }

    /// Forgets a waiter that gave up.
    pub fn stop_waiting(&self, message_id: &str) {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(message_id);
    }

    /// Holds `msg` (durably) for its outbound-only recipient and waits up to `wait` for the
    /// recipient to collect and answer it, or until `stop` is cancelled. Unavailable if no
    /// reply came in time: the message stays held, and the sender's outbox (or the caller)
    /// decides whether to send again.
    pub async fn hold_and_wait(
        &self,
        to: &NodeId,
        msg: pb::SealedMessage,
        wait: std::time::Duration,
        stop: &tokio_util::sync::CancellationToken,
    ) -> Result<pb::SealedMessage, tonic::Status> {
        let id = msg.message_id.clone();
        let reply = self.wait_reply(&id);
        let m = self.clone();
        let held = tokio::task::spawn_blocking(move || m.put(&msg))
            .await
            .map_err(|_| tonic::Status::internal("internal error"))?;
        if let Err(e) = held {
            self.stop_waiting(&id);
            return Err(match e {
                MailboxError::Full(_) => tonic::Status::resource_exhausted(e.to_string()),
                other => tonic::Status::unavailable(other.to_string()),
            });
        }
        let replied = tokio::select! {
            r = tokio::time::timeout(wait, reply) => r.ok().and_then(Result::ok),
            () = stop.cancelled() => None,
        };
        replied.ok_or_else(|| {
            self.stop_waiting(&id);
            tonic::Status::unavailable(format!(
                "queued for {to}, which has not collected it yet; it stays in its mailbox"
            ))
        })
    }

    /// Hands a reply to the sender waiting for it, if one still is.
    pub fn reply(&self, message_id: &str, reply: pb::SealedMessage) {
        let tx = self
            .waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(message_id);
        if let Some(tx) = tx {
            let _ = tx.send(reply);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
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
            let ids: Vec<_> = m
                .pending(&ita, 10)
                .unwrap()
                .into_iter()
                .map(|m| m.message_id)
                .collect();
            assert_eq!(ids, ["a", "b"]);
            assert!(m.ack(&ita, "a").unwrap());
            assert!(!m.ack(&ita, "a").unwrap());
        }
        let db = sled::open(dir.path()).unwrap();
        let m = Mailbox::open(&db).unwrap();
        let ids: Vec<_> = m
            .pending(&ita, 10)
            .unwrap()
            .into_iter()
            .map(|m| m.message_id)
            .collect();
        assert_eq!(ids, ["b"]);
        assert_eq!(m.len(&NodeId::parse("DEU-BKA").unwrap()), 1);
    }

    #[tokio::test]
    async fn a_reply_reaches_its_waiter() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let m = Mailbox::open(&db).unwrap();
        let rx = m.wait_reply("a");
        m.reply("a", msg("FRA-POL", "r"));
        assert_eq!(rx.await.unwrap().message_id, "r");
        m.reply("nobody", msg("FRA-POL", "r"));
    }
}
