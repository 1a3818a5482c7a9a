//! Who is calling and what they may do: roles and the capabilities they grant (checked on every
//! route), password hashing, login throttling and random secrets for sessions, CSRF and tokens.
//! The rules here are pure and tested by their outputs; the web and API layers only ask them.

use serde::{Deserialize, Serialize};

pub mod password;
pub mod throttle;

/// Bounds the password verifications running at once: argon2 takes about 19 MiB and a core for
/// a while, so unbounded parallel logins would exhaust memory. A login waits up to `wait` for a
/// slot; beyond that it is refused (503 with `Retry-After`) without any hashing.
#[derive(Debug)]
pub struct LoginGate {
    slots: tokio::sync::Semaphore,
    wait: std::time::Duration,
}

impl LoginGate {
    /// At most `slots` verifications at once; a login waits up to `wait` for one.
    pub fn new(slots: usize, wait: std::time::Duration) -> LoginGate {
        LoginGate {
            slots: tokio::sync::Semaphore::new(slots.max(1)),
            wait,
        }
    }

    /// Two slots per core, waiting up to 2 s.
    pub fn for_this_machine() -> LoginGate {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        LoginGate::new(2 * cores, std::time::Duration::from_secs(2))
    }

    /// A slot, held until the permit is dropped; `None` when none freed up in time.
    pub async fn enter(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        tokio::time::timeout(self.wait, self.slots.acquire())
            .await
            .ok()
            .and_then(Result::ok)
    }
}

/// A role a user or API token holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Records seizures, searches, runs hit/no-hit lookups.
    Officer,
    /// Sends, answers, restricts or declines trace requests (and searches).
    TracingOfficer,
    /// Queries routes and concealment methods and produces statistics.
    Analyst,
    /// Manages users, tokens, contact points and the sharing policy; reads the audit.
    Administrator,
}

impl Role {
    /// Every role, in display order.
    pub const ALL: [Role; 4] = [
        Role::Officer,
        Role::TracingOfficer,
        Role::Analyst,
        Role::Administrator,
    ];

    /// The name used in config, CLI and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Officer => "officer",
            Role::TracingOfficer => "tracing_officer",
            Role::Analyst => "analyst",
            Role::Administrator => "administrator",
        }
    }

    /// The role with this name.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s.trim())
    }

    /// The catalogue key of the role's label.
    pub fn label_key(self) -> &'static str {
        match self {
            Role::Officer => "role.officer",
            Role::TracingOfficer => "role.tracing_officer",
            Role::Analyst => "role.analyst",
            Role::Administrator => "role.administrator",
        }
    }
}

/// Something a route does, granted by roles. Deny by default: a capability not listed for a
/// role in [`Capability::granted_to`] is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Read this node's seizure records and search them locally.
    ReadRecords,
    /// Create, edit and import seizure records.
    WriteRecords,
    /// Hit/no-hit lookups across the federation.
    Lookup,
    /// Trace requests: send, answer, restrict, decline, read.
    Trace,
    /// Route and concealment queries and statistics across the federation.
    Analyse,
    /// Read the directory (members, contact points).
    ReadDirectory,
    /// Users, tokens, contact points, sharing policy and its preview, the audit and access logs.
    Administer,
}

impl Capability {
    /// Whether `role` grants this capability.
    pub fn granted_to(self, role: Role) -> bool {
        use Capability as C;
        match role {
            Role::Officer => matches!(
                self,
                C::ReadRecords | C::WriteRecords | C::Lookup | C::ReadDirectory
            ),
            Role::TracingOfficer => matches!(
                self,
                C::ReadRecords | C::Lookup | C::Trace | C::ReadDirectory
            ),
            Role::Analyst => matches!(self, C::Analyse | C::ReadDirectory),
            Role::Administrator => matches!(self, C::Administer | C::ReadDirectory),
        }
    }
}

/// An authenticated caller: a console user (with a session) or an API token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// User name, or `token:<name>`.
    pub name: String,
    /// Its roles.
    pub roles: Vec<Role>,
}

impl Principal {
    /// Whether any of the roles grants `cap`.
    pub fn can(&self, cap: Capability) -> bool {
        self.roles.iter().any(|r| cap.granted_to(*r))
    }
}

/// `n` random bytes from the operating system, URL-safe base64 without padding.
pub fn random_secret(n: usize) -> Result<String, ring::error::Unspecified> {
    use base64::Engine as _;
    use ring::rand::SecureRandom as _;
    let mut buf = vec![0u8; n];
    ring::rand::SystemRandom::new().fill(&mut buf)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf))
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_login_gate_bounds_verifications_and_refuses_after_waiting() {
        let gate = LoginGate::new(2, std::time::Duration::from_millis(50));
        let a = gate.enter().await;
        let b = gate.enter().await;
        assert!(a.is_some() && b.is_some());
        assert!(
            gate.enter().await.is_none(),
            "a third waits, then is refused"
        );
        drop(a);
        assert!(gate.enter().await.is_some(), "a freed slot is used again");
    }

    #[test]
    fn each_role_gets_exactly_its_capabilities() {
        use Capability as C;
        let all = [
            C::ReadRecords,
            C::WriteRecords,
            C::Lookup,
            C::Trace,
            C::Analyse,
            C::ReadDirectory,
            C::Administer,
        ];
        let granted = |r: Role| all.iter().filter(|c| c.granted_to(r)).count();
        assert_eq!(granted(Role::Officer), 4);
        assert_eq!(granted(Role::TracingOfficer), 4);
        assert_eq!(granted(Role::Analyst), 2);
        assert_eq!(granted(Role::Administrator), 2);
        assert!(!C::Trace.granted_to(Role::Officer));
        assert!(!C::WriteRecords.granted_to(Role::TracingOfficer));
        assert!(!C::ReadRecords.granted_to(Role::Analyst));
        assert!(!C::ReadRecords.granted_to(Role::Administrator));
        let nobody = Principal {
            name: "x".into(),
            roles: vec![],
        };
        assert!(
            all.iter().all(|c| !nobody.can(*c)),
            "no role, no capability"
        );
    }

    #[test]
    fn roles_round_trip_by_name() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn secrets_are_random_and_compared_whole() {
        let a = random_secret(32).unwrap();
        let b = random_secret(32).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(same_secret(&a, &a.clone()));
        assert!(!same_secret(&a, &b));
        assert!(!same_secret(&a, &a[..42]));
    }
}
