//! Login throttling, per user name and per client address, so guessing cannot go on at full
//! speed, whether at one name or at many names from one client. Pure: the caller passes the
//! time, tests pass any time they like.
//!
//! The rules (see [`LoginConfig`]):
//!
//! - **Per name.** After `max_failures` failed logins for one user name (case-insensitive) within
//!   `window_secs`, attempts for that name are refused for `lockout_secs`, whatever the password
//!   and wherever they come from. This is the only rule by which other people's failures can keep
//!   a user out, and it does so for at most `lockout_secs` after the last lockout began.
//! - **Per client address.** After `address_max_failures` failed logins from one address (any
//!   names) within `window_secs`, attempts from that address are refused for `lockout_secs`, so
//!   30 names tried from one client are slowed as well. Behind a proxy every client shares the
//!   proxy's address; the refusal then lasts no longer than the per-name one.
//! - An attempt is counted **when it starts**, before the password is checked, so parallel
//!   guesses cannot all pass the check before the first failure is recorded; a successful login
//!   takes its own attempt back (and forgets the name's failures).
//! - Both maps hold at most [`MAX_ENTRIES`] keys: expired entries are pruned first, then the
//!   entries idle longest are forgotten.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::config::LoginConfig;

/// Most names, and most addresses, remembered at once.
pub const MAX_ENTRIES: usize = 10_000;

/// Failures and lockouts under one kind of key (user names or addresses).
#[derive(Debug, Default)]
struct Ledger {
    failures: HashMap<String, Vec<u64>>,
    locked_until: HashMap<String, u64>,
}

impl Ledger {
    fn check(&self, key: &str, now: u64) -> Result<(), u64> {
        match self.locked_until.get(key) {
            Some(&until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// Counts one attempt; returns the lockout when this one reaches `max`.
    fn count(&mut self, key: &str, now: u64, max: u32, window: u64, lockout: u64) -> Option<u64> {
        if !self.failures.contains_key(key) && self.failures.len() >= MAX_ENTRIES {
            self.prune(now, window);
        }
        let list = self.failures.entry(key.to_owned()).or_default();
        list.retain(|t| now.saturating_sub(*t) < window);
        list.push(now);
        if list.len() >= max as usize {
            list.clear();
            if !self.locked_until.contains_key(key) && self.locked_until.len() >= MAX_ENTRIES {
                self.prune(now, window);
            }
            self.locked_until.insert(key.to_owned(), now + lockout);
            Some(lockout)
        } else {
            None
        }
    }

    /// Takes back the most recent attempt of `key` (it succeeded).
    fn take_back(&mut self, key: &str) {
        if let Some(list) = self.failures.get_mut(key) {
            list.pop();
            if list.is_empty() {
                self.failures.remove(key);
            }
        }
    }

    fn forget(&mut self, key: &str) {
        self.failures.remove(key);
        self.locked_until.remove(key);
    }

    /// Drops what no longer counts; if still full, the entries idle longest.
    fn prune(&mut self, now: u64, window: u64) {
        self.failures
            .retain(|_, l| l.iter().any(|t| now.saturating_sub(*t) < window));
        self.locked_until.retain(|_, until| *until > now);
        if self.failures.len() >= MAX_ENTRIES {
            let mut last: Vec<(u64, String)> = self
                .failures
                .iter()
                .map(|(k, l)| (l.last().copied().unwrap_or(0), k.clone()))
                .collect();
            last.sort_unstable();
            for (_, k) in last.into_iter().take(MAX_ENTRIES / 10) {
                self.failures.remove(&k);
            }
        }
        if self.locked_until.len() >= MAX_ENTRIES {
            let mut ends: Vec<(u64, String)> = self
                .locked_until
                .iter()
                .map(|(k, u)| (*u, k.clone()))
                .collect();
            ends.sort_unstable();
            for (_, k) in ends.into_iter().take(MAX_ENTRIES / 10) {
                self.locked_until.remove(&k);
            }
        }
    }

    fn len(&self) -> usize {
        self.failures.len().max(self.locked_until.len())
    }
}

/// Failed-login bookkeeping per user name (lower-cased) and per client address.
#[derive(Debug)]
pub struct Throttle {
    cfg: LoginConfig,
    names: Ledger,
    addresses: Ledger,
}

impl Throttle {
    /// Empty bookkeeping under these limits.
    pub fn new(cfg: LoginConfig) -> Throttle {
        Throttle {
            cfg,
            names: Ledger::default(),
            addresses: Ledger::default(),
        }
    }

    /// `Err(seconds to wait)` when attempts for `name` from `addr` are refused at `now`.
    pub fn check(&self, name: &str, addr: Option<IpAddr>, now: u64) -> Result<(), u64> {
        self.names.check(&name.to_lowercase(), now)?;
        match addr {
            Some(a) => self.addresses.check(&a.to_string(), now),
            None => Ok(()),
        }
    }

    /// Checks and, when allowed, counts an attempt that is about to be verified, in one step
    /// (so parallel attempts cannot all pass the check). `Err(seconds to wait)` when refused;
    /// a refused attempt is not counted.
    pub fn begin(&mut self, name: &str, addr: Option<IpAddr>, now: u64) -> Result<(), u64> {
        self.check(name, addr, now)?;
        let c = &self.cfg;
        self.names.count(
            &name.to_lowercase(),
            now,
            c.max_failures,
            c.window_secs,
            c.lockout_secs,
        );
        if let Some(a) = addr {
            self.addresses.count(
                &a.to_string(),
                now,
                c.address_max_failures,
                c.window_secs,
                c.lockout_secs,
            );
        }
        Ok(())
    }

    /// Records a failed attempt that was not begun with [`Throttle::begin`]; returns the
    /// lockout in seconds if this one triggered it.
    pub fn failed(&mut self, name: &str, now: u64) -> Option<u64> {
        let c = &self.cfg;
        self.names.count(
            &name.to_lowercase(),
            now,
            c.max_failures,
            c.window_secs,
            c.lockout_secs,
        )
    }

    /// A login succeeded: the name's failures are forgotten and the address gets its attempt
    /// back.
    pub fn succeeded(&mut self, name: &str, addr: Option<IpAddr>) {
        self.names.forget(&name.to_lowercase());
        if let Some(a) = addr {
            self.addresses.take_back(&a.to_string());
        }
    }

    /// How many names and addresses are remembered (each at most [`MAX_ENTRIES`]).
    pub fn remembered(&self) -> (usize, usize) {
        (self.names.len(), self.addresses.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> Throttle {
        Throttle::new(LoginConfig {
            max_failures: 3,
            window_secs: 60,
            lockout_secs: 120,
            address_max_failures: 10,
        })
    }

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([192, 0, 2, last]))
    }

    #[test]
    fn locks_after_max_failures_in_the_window_then_releases() {
        let mut t = throttle();
        assert_eq!(t.failed("ana", 0), None);
        assert_eq!(t.failed("ANA", 10), None);
        assert_eq!(t.check("ana", None, 11), Ok(()));
        assert_eq!(t.failed("ana", 20), Some(120));
        assert_eq!(t.check("ana", None, 21), Err(119));
        assert_eq!(
            t.check("bob", None, 21),
            Ok(()),
            "other names are not affected"
        );
        assert_eq!(t.check("ana", None, 140), Ok(()));
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let mut t = throttle();
        t.failed("ana", 0);
        t.failed("ana", 10);
        assert_eq!(t.failed("ana", 100), None);
        assert_eq!(t.check("ana", None, 101), Ok(()));
    }

    #[test]
    fn success_forgets_failures() {
        let mut t = throttle();
        t.failed("ana", 0);
        t.failed("ana", 1);
        t.succeeded("ana", None);
        assert_eq!(t.failed("ana", 2), None);
    }

    #[test]
    fn parallel_attempts_are_counted_before_they_are_verified() {
        let mut t = throttle();
        let begun = (0..10).filter(|_| t.begin("ana", ip(1), 5).is_ok()).count();
        assert_eq!(
            begun, 3,
            "only max_failures attempts may run before the lockout"
        );
        assert_eq!(t.check("ana", ip(1), 6), Err(119));
    }

    #[test]
    fn many_names_from_one_address_are_slowed_for_no_longer_than_a_name_lockout() {
        let mut t = throttle();
        for i in 0..10 {
            assert_eq!(
                t.begin(&format!("user{i}"), ip(1), 0),
                Ok(()),
                "attempt {i}"
            );
        }
        assert_eq!(
            t.begin("user99", ip(1), 1),
            Err(119),
            "the address is slowed"
        );
        assert_eq!(t.begin("ana", ip(2), 1), Ok(()), "another address is not");
        assert_eq!(
            t.check("ana", ip(1), 121),
            Ok(()),
            "and not for longer than a lockout"
        );
    }

    #[test]
    fn a_successful_login_gives_the_address_its_attempt_back() {
        let mut t = throttle();
        for _ in 0..30 {
            assert_eq!(t.begin("ana", ip(1), 0), Ok(()));
            t.succeeded("ana", ip(1));
        }
        assert_eq!(t.check("ana", ip(1), 0), Ok(()));
    }

    #[test]
    fn the_maps_stay_bounded() {
        let mut t = throttle();
        for i in 0..(MAX_ENTRIES as u64 + 500) {
            let _ = t.begin(
                &format!("name{i}"),
                Some(IpAddr::from((i as u128).to_be_bytes())),
                i / 1000,
            );
        }
        let (names, addrs) = t.remembered();
        assert!(
            names <= MAX_ENTRIES && addrs <= MAX_ENTRIES,
            "{names} {addrs}"
        );
    }
}
