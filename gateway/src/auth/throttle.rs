//! Login throttling: after too many failed logins for one user name within a window, further
//! attempts for that name are refused for a while, whatever the password (so guessing cannot go
//! on at full speed). Pure: the caller passes the time, tests pass any time they like.

use std::collections::HashMap;

use crate::config::LoginConfig;

/// Failed-login bookkeeping per user name (lower-cased).
#[derive(Debug)]
pub struct Throttle {
    cfg: LoginConfig,
    failures: HashMap<String, Vec<u64>>,
    locked_until: HashMap<String, u64>,
}

impl Throttle {
    /// Empty bookkeeping under these limits.
    pub fn new(cfg: LoginConfig) -> Throttle {
        Throttle {
            cfg,
            failures: HashMap::new(),
            locked_until: HashMap::new(),
        }
    }

    /// `Err(seconds to wait)` when attempts for `name` are refused at `now`.
    pub fn check(&self, name: &str, now: u64) -> Result<(), u64> {
        match self.locked_until.get(&name.to_lowercase()) {
            Some(&until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// Records a failed attempt; returns the lockout in seconds if this one triggered it.
    pub fn failed(&mut self, name: &str, now: u64) -> Option<u64> {
        let key = name.to_lowercase();
        let window = self.cfg.window_secs;
        let list = self.failures.entry(key.clone()).or_default();
        list.retain(|t| now.saturating_sub(*t) < window);
        list.push(now);
        if list.len() >= self.cfg.max_failures as usize {
            list.clear();
            self.locked_until.insert(key, now + self.cfg.lockout_secs);
            Some(self.cfg.lockout_secs)
        } else {
            None
        }
    }

    /// Forgets failures after a successful login.
    pub fn succeeded(&mut self, name: &str) {
        let key = name.to_lowercase();
        self.failures.remove(&key);
        self.locked_until.remove(&key);
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
        })
    }

    #[test]
    fn locks_after_max_failures_in_the_window_then_releases() {
        let mut t = throttle();
        assert_eq!(t.failed("ana", 0), None);
        assert_eq!(t.failed("ANA", 10), None);
        assert_eq!(t.check("ana", 11), Ok(()));
        assert_eq!(t.failed("ana", 20), Some(120));
        assert_eq!(t.check("ana", 21), Err(119));
        assert_eq!(t.check("bob", 21), Ok(()), "other names are not affected");
        assert_eq!(t.check("ana", 140), Ok(()));
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let mut t = throttle();
        t.failed("ana", 0);
        t.failed("ana", 10);
        assert_eq!(t.failed("ana", 100), None);
        assert_eq!(t.check("ana", 101), Ok(()));
    }

    #[test]
    fn success_forgets_failures() {
        let mut t = throttle();
        t.failed("ana", 0);
        t.failed("ana", 1);
        t.succeeded("ana");
        assert_eq!(t.failed("ana", 2), None);
    }
}
