//! Password hashing with argon2id (memory-hard), in PHC string format so parameters can be
//! raised later without invalidating stored hashes. Unknown users are checked against a dummy
//! hash so a login takes as long whether or not the name exists.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use ring::rand::SecureRandom as _;

/// The shortest password accepted.
pub const MIN_LENGTH: usize = 12;

/// Why a password cannot be set or hashed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Too short. Not retryable with the same password.
    #[error("a password needs at least {MIN_LENGTH} characters")]
    TooShort,
    /// The system's random source or the hasher failed. Retrying may help.
    #[error("password hashing failed")]
    Hashing,
}

/// Hashes a new password (checking its length first).
pub fn hash(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_LENGTH {
        return Err(PasswordError::TooShort);
    }
    let mut salt = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| PasswordError::Hashing)?;
    let salt = SaltString::encode_b64(&salt).map_err(|_| PasswordError::Hashing)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| PasswordError::Hashing)
}

/// Whether `password` matches `stored` (false for an unparsable hash).
pub fn verify(stored: &str, password: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Spends the time of one verification, for a user name that does not exist.
pub fn verify_dummy(password: &str) {
    static DUMMY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if let Some(h) = DUMMY.get_or_init(|| hash("dummy-password-never-used").ok()) {
        let _ = verify(h, password);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_salted() {
        let a = hash("correct horse battery").unwrap();
        let b = hash("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "salted");
        assert!(verify(&a, "correct horse battery"));
        assert!(!verify(&a, "correct horse batterx"));
        assert!(!verify("not a hash", "x"));
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(matches!(hash("short"), Err(PasswordError::TooShort)));
    }
}
