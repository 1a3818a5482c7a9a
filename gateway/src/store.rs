//! The gateway's own small store (sled): users, sessions, API tokens and the access log of who
//! viewed or exported what. Records never live here; they stay on the node.
//!
//! Every value is one format byte followed by JSON (the shared versioned codec,
//! [`tracenet_proto::stored`], that the node uses for its protobuf values), so the encoding can
//! change later without misreading old data (an unknown format byte is an error, never a guess). Secrets are stored
//! only as what verifies them: argon2 hashes of passwords, SHA-256 of session ids and tokens.
//! Anything a caller is told was saved (a user, a token, an access-log entry) is flushed first.
//! Flushes are group-committed: one runs at a time and covers every write made before it began,
//! so concurrent callers share it. (Many concurrent `flush_async` calls starved sled 0.34's own
//! thread pool and hung the gateway under 64 concurrent API calls; found by `tracenet-bench
//! gateway`.)

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracenet_proto::stored;

use crate::auth::Role;
use crate::i18n::Lang;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage engine failed (disk full, I/O error), with its message. Retrying may help
    /// once the cause is fixed.
    #[error("gateway store: {0}")]
    Engine(String),
    /// A value could not be decoded (corruption or a newer format). Not retryable.
    #[error("gateway store holds an unreadable value: {0}")]
    Corrupt(String),
    /// The user name is taken. Not retryable with the same name.
    #[error("user '{0}' exists already")]
    UserExists(String),
    /// No such user. Not retryable.
    #[error("no user '{0}'")]
    NoUser(String),
}

/// A console user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// Login name.
    pub username: String,
    /// What the user may do.
    pub roles: Vec<Role>,
    /// argon2id hash in PHC string format.
    pub password_hash: String,
    /// Preferred console language, if chosen.
    pub language: Option<Lang>,
    /// A disabled user cannot log in and its sessions end.
    pub disabled: bool,
    /// Unix seconds.
    pub created_at: i64,
}

/// A console session (the cookie carries the id; the store keys it by its SHA-256).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// The user.
    pub username: String,
    /// The session's CSRF token, embedded in every form.
    pub csrf: String,
    /// Unix seconds at login.
    pub created_at: i64,
    /// Unix seconds of the last request.
    pub last_seen: i64,
}

/// A bearer token of the JSON API (stored by its SHA-256).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiToken {
    /// A name saying which system uses it.
    pub name: String,
    /// The roles it carries.
    pub roles: Vec<Role>,
    /// The administrator who created it.
    pub created_by: String,
    /// Unix seconds.
    pub created_at: i64,
    /// A revoked token authenticates nothing.
    pub revoked: bool,
}

/// One line of the access log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessEntry {
    /// Position in the log, from 1.
    pub seq: u64,
    /// Unix seconds.
    pub at: i64,
    /// User name, or `token:<name>` for the API.
    pub who: String,
    /// `console` or `api`.
    pub via: String,
    /// What was done, e.g. `view record`, `federated lookup`, `export analysis`.
    pub action: String,
    /// What it concerned (record id, serial, request id...).
    pub target: String,
}

/// Group commit: tickets taken after each write, the highest ticket known durable.
#[derive(Debug, Default)]
struct Flushes {
    requested: std::sync::atomic::AtomicU64,
    done: std::sync::atomic::AtomicU64,
    one_at_a_time: tokio::sync::Mutex<()>,
}

/// The gateway store.
#[derive(Debug, Clone)]
pub struct GatewayStore {
    db: sled::Db,
    flushes: std::sync::Arc<Flushes>,
    users: sled::Tree,
    sessions: sled::Tree,
    tokens: sled::Tree,
    access: sled::Tree,
}

/// sled's errors stop at this module, as text: callers never see the engine's types.
impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> StoreError {
        StoreError::Engine(e.to_string())
    }
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    stored::encode_json(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    stored::decode_json(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// SHA-256 of a secret, as the store keys it.
pub fn secret_key(secret: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, secret.as_bytes())
        .as_ref()
        .to_vec()
}

impl GatewayStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &std::path::Path) -> Result<GatewayStore, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(16 * 1024 * 1024)
            .open()?;
        Ok(GatewayStore {
            users: db.open_tree("users")?,
            sessions: db.open_tree("sessions")?,
            tokens: db.open_tree("tokens")?,
            access: db.open_tree("access_log")?,
            db,
            flushes: std::sync::Arc::default(),
        })
    }

    /// Makes every write made so far durable (sharing a flush with concurrent callers).
    async fn flush(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        let ticket = self.flushes.requested.fetch_add(1, SeqCst) + 1;
        let _turn = self.flushes.one_at_a_time.lock().await;
        if self.flushes.done.load(SeqCst) >= ticket {
            return Ok(());
        }
        let covers = self.flushes.requested.load(SeqCst);
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|e| StoreError::Corrupt(format!("flush task failed: {e}")))??;
        self.flushes.done.fetch_max(covers, SeqCst);
        Ok(())
    }

    /// Adds a user; refuses a taken name.
    pub async fn add_user(&self, user: &User) -> Result<(), StoreError> {
        let value = encode(user)?;
        self.users
            .compare_and_swap(user.username.as_bytes(), None::<&[u8]>, Some(value))?
            .map_err(|_| StoreError::UserExists(user.username.clone()))?;
        self.flush().await
    }

    /// Replaces a user's entry (password, roles, language, disabled).
    pub async fn put_user(&self, user: &User) -> Result<(), StoreError> {
        self.users.insert(user.username.as_bytes(), encode(user)?)?;
        self.flush().await
    }

    /// The user with this name.
    pub fn user(&self, username: &str) -> Result<Option<User>, StoreError> {
        self.users
            .get(username.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// All users, by name.
    pub fn users(&self) -> Result<Vec<User>, StoreError> {
        self.users.iter().values().map(|v| decode(&v?)).collect()
    }

    /// Saves a session under the hash of its id.
    pub async fn put_session(&self, id: &str, s: &Session) -> Result<(), StoreError> {
        self.sessions.insert(secret_key(id), encode(s)?)?;
        self.flush().await
    }

    /// Marks a session used now (not flushed: losing a last-seen time is harmless).
    pub fn touch_session(&self, id: &str, s: &Session) -> Result<(), StoreError> {
        self.sessions.insert(secret_key(id), encode(s)?)?;
        Ok(())
    }

    /// The session with this id.
    pub fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        self.sessions
            .get(secret_key(id))?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Ends a session.
    pub async fn end_session(&self, id: &str) -> Result<(), StoreError> {
        self.sessions.remove(secret_key(id))?;
        self.flush().await
    }

    /// Ends every session of a user (after a password change or when disabled).
    pub async fn end_sessions_of(&self, username: &str) -> Result<usize, StoreError> {
        let mut n = 0;
        for kv in self.sessions.iter() {
            let (k, v) = kv?;
            if decode::<Session>(&v).is_ok_and(|s| s.username == username) {
                self.sessions.remove(k)?;
                n += 1;
            }
        }
        self.flush().await?;
        Ok(n)
    }

    /// Saves a token under the hash of its secret.
    pub async fn put_token(&self, secret: &str, t: &ApiToken) -> Result<(), StoreError> {
        self.tokens.insert(secret_key(secret), encode(t)?)?;
        self.flush().await
    }

    /// The token with this secret.
    pub fn token(&self, secret: &str) -> Result<Option<ApiToken>, StoreError> {
        self.tokens
            .get(secret_key(secret))?
            .map(|v| decode(&v))
            .transpose()
    }

    /// All tokens, with the hex of their key (to revoke them by).
    pub fn tokens(&self) -> Result<Vec<(String, ApiToken)>, StoreError> {
        self.tokens
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                Ok((hex(&k), decode(&v)?))
            })
            .collect()
    }

    /// Revokes the token whose key has this hex; false when there is none.
    pub async fn revoke_token(&self, key_hex: &str) -> Result<bool, StoreError> {
        let Some(key) = unhex(key_hex) else {
            return Ok(false);
        };
        let Some(v) = self.tokens.get(&key)? else {
            return Ok(false);
        };
        let mut t: ApiToken = decode(&v)?;
        t.revoked = true;
        self.tokens.insert(key, encode(&t)?)?;
        self.flush().await?;
        Ok(true)
    }

    /// Appends to the access log and flushes before returning.
    pub async fn log_access(
        &self,
        at: i64,
        who: &str,
        via: &str,
        action: &str,
        target: &str,
    ) -> Result<(), StoreError> {
        let seq = self.db.generate_id()? + 1;
        let entry = AccessEntry {
            seq,
            at,
            who: who.to_owned(),
            via: via.to_owned(),
            action: action.to_owned(),
            target: target.chars().take(200).collect(),
        };
        self.access.insert(seq.to_be_bytes(), encode(&entry)?)?;
        self.flush().await
    }

    /// The newest `limit` access-log entries before `before` (all when 0), newest first.
    pub fn access_log(&self, before: u64, limit: usize) -> Result<Vec<AccessEntry>, StoreError> {
        let end = if before == 0 { u64::MAX } else { before };
        self.access
            .range(..end.to_be_bytes())
            .rev()
            .take(limit)
            .map(|kv| decode(&kv?.1))
            .collect()
    }
}

fn hex(b: &[u8]) -> String {
    tracenet_ids::hex::encode(b)
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    tracenet_ids::hex::decode_array::<32>(s).map(Vec::from)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn user(name: &str) -> User {
        User {
            username: name.into(),
            roles: vec![Role::Officer],
            password_hash: "x".into(),
            language: None,
            disabled: false,
            created_at: 1,
        }
    }

    #[tokio::test]
    async fn users_sessions_tokens_and_log_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = GatewayStore::open(dir.path()).unwrap();
            s.add_user(&user("ana")).await.unwrap();
            assert!(matches!(
                s.add_user(&user("ana")).await,
                Err(StoreError::UserExists(_))
            ));
            let sess = Session {
                username: "ana".into(),
                csrf: "c".into(),
                created_at: 1,
                last_seen: 1,
            };
            s.put_session("sid", &sess).await.unwrap();
            let tok = ApiToken {
                name: "registry".into(),
                roles: vec![Role::Officer],
                created_by: "ana".into(),
                created_at: 1,
                revoked: false,
            };
            s.put_token("secret", &tok).await.unwrap();
            s.log_access(5, "ana", "console", "view record", "r1")
                .await
                .unwrap();
            s.log_access(6, "ana", "console", "view record", "r2")
                .await
                .unwrap();
        }
        let s = GatewayStore::open(dir.path()).unwrap();
        assert_eq!(s.user("ana").unwrap().unwrap(), user("ana"));
        assert_eq!(s.session("sid").unwrap().unwrap().username, "ana");
        assert!(s.session("other").unwrap().is_none());
        assert_eq!(s.token("secret").unwrap().unwrap().name, "registry");
        let log = s.access_log(0, 10).unwrap();
        assert_eq!(log.len(), 2);
        assert_eq!(log[0].target, "r2", "newest first");
        let (key, _) = s.tokens().unwrap().remove(0);
        assert!(s.revoke_token(&key).await.unwrap());
        assert!(s.token("secret").unwrap().unwrap().revoked);
        assert_eq!(s.end_sessions_of("ana").await.unwrap(), 1);
        assert!(s.session("sid").unwrap().is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_concurrent_logged_accesses_all_complete() {
        let dir = tempfile::tempdir().unwrap();
        let s = GatewayStore::open(dir.path()).unwrap();
        let tasks: Vec<_> = (0..128)
            .map(|i| {
                let s = s.clone();
                tokio::spawn(async move {
                    s.log_access(i, "ana", "api", "view record", &i.to_string())
                        .await
                })
            })
            .collect();
        // A starved flush hangs instead of failing: bound the wait so it fails instead.
        let all = async {
            for t in tasks {
                t.await.unwrap().unwrap();
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(60), all)
            .await
            .expect("concurrent flushes hung");
        assert_eq!(s.access_log(0, 500).unwrap().len(), 128);
    }

    #[test]
    fn values_keep_their_layout() {
        // One format byte, then the JSON the gateway has always written.
        let bytes = encode(&user("ana")).unwrap();
        assert_eq!(bytes[0], 1);
        assert!(bytes[1..].starts_with(br#"{"username":"ana","#));
        assert_eq!(decode::<User>(&bytes).unwrap(), user("ana"));
    }

    #[test]
    fn unknown_format_is_an_error_not_a_guess() {
        assert!(matches!(
            decode::<User>(&[9, b'{', b'}']),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(decode::<User>(&[]), Err(StoreError::Corrupt(_))));
    }
}
