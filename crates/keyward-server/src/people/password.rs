//! Passwords: Argon2id with OWASP's minimum parameters (19 MiB, 2 passes, 1 lane), stored in
//! PHC string form so the parameters travel with each hash and can be raised later without a
//! migration. A sign-in for an address with no password still runs one hash against a fixed
//! dummy, so the answer's timing does not tell whether the account exists.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use keyward_core::DomainError;

/// Shortest password accepted.
pub const MIN_LEN: usize = 12;
/// Longest password accepted (bounds the hashing cost of a hostile request).
pub const MAX_LEN: usize = 256;

fn hasher() -> Argon2<'static> {
    // OWASP Password Storage Cheat Sheet: m=19456 KiB, t=2, p=1. These constants are valid, so
    // the fallback (argon2's defaults, which are the same) is never taken.
    let params = Params::new(19_456, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks a new password against the policy: 12–256 characters, not only white space, and
/// the same typed twice.
pub fn check_new(password: &str, confirm: &str) -> Result<(), DomainError> {
    let n = password.chars().count();
    if n < MIN_LEN {
        return Err(DomainError::field(
            "PASSWORD_TOO_SHORT",
            "password",
            format!("use at least {MIN_LEN} characters"),
        ));
    }
    if n > MAX_LEN {
        return Err(DomainError::field(
            "PASSWORD_TOO_LONG",
            "password",
            format!("use at most {MAX_LEN} characters"),
        ));
    }
    if password.trim().is_empty() {
        return Err(DomainError::field(
            "PASSWORD_BLANK",
            "password",
            "a password of only spaces is not a password",
        ));
    }
    if password != confirm {
        return Err(DomainError::field(
            "PASSWORD_MISMATCH",
            "confirm",
            "the two passwords differ",
        ));
    }
    Ok(())
}

/// Hashes a password (a fresh random salt each time).
pub fn hash(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut rand_core::OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing a password: {e}"))
}

/// Whether `password` matches the stored hash. A hash that does not parse matches nothing.
pub fn verify(password: &str, stored: &str) -> bool {
    if password.len() > MAX_LEN * 4 {
        return false;
    }
    match PasswordHash::new(stored) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Spends the time of one verification, for a sign-in that has no hash to check.
pub fn verify_nothing(password: &str) {
    static DUMMY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if let Some(h) = DUMMY.get_or_init(|| hash("keyward dummy password").ok()) {
        let _ = verify(password, h);
    }
}

/// At most this many hashes are computed at once (each takes 19 MiB and tens of
/// milliseconds): sign-in floods queue here instead of exhausting memory or the runtime.
const CONCURRENT_HASHES: usize = 4;

fn hash_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| tokio::sync::Semaphore::new(CONCURRENT_HASHES))
}

/// Runs `work` (a hash or a verification) on the blocking pool, a few at a time, so the
/// async workers that answer verifies never wait for Argon2.
pub async fn off_thread<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let _slot = hash_slots().acquire().await.ok()?;
    tokio::task::spawn_blocking(work).await.ok()
}

/// [`verify`] off the async workers.
pub async fn verify_async(password: &str, stored: &str) -> bool {
    let (password, stored) = (password.to_owned(), stored.to_owned());
    off_thread(move || verify(&password, &stored))
        .await
        .unwrap_or(false)
}

/// [`verify_nothing`] off the async workers.
pub async fn verify_nothing_async(password: &str) {
    let password = password.to_owned();
    off_thread(move || verify_nothing(&password)).await;
}

/// [`hash`] off the async workers.
pub async fn hash_async(password: &str) -> Result<String, String> {
    let password = password.to_owned();
    off_thread(move || hash(&password))
        .await
        .unwrap_or_else(|| Err("hashing a password: the worker stopped".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_only_its_password_and_is_argon2id() {
        let h = hash("correct horse battery staple").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse battery staple", &h));
        assert!(!verify("correct horse battery stapler", &h));
        assert!(!verify("anything", "not a phc string"));
        assert_ne!(h, hash("correct horse battery staple").unwrap(), "salted");
    }

    #[test]
    fn the_policy_names_the_field_at_fault() {
        assert_eq!(
            check_new("short", "short").unwrap_err().code,
            "PASSWORD_TOO_SHORT"
        );
        let blank = " ".repeat(20);
        assert_eq!(
            check_new(&blank, &blank).unwrap_err().code,
            "PASSWORD_BLANK"
        );
        let e = check_new("long enough pass", "long enough pas").unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("PASSWORD_MISMATCH", Some("confirm"))
        );
        let long = "x".repeat(MAX_LEN + 1);
        assert_eq!(
            check_new(&long, &long).unwrap_err().code,
            "PASSWORD_TOO_LONG"
        );
        assert!(check_new("long enough pass", "long enough pass").is_ok());
    }
}
