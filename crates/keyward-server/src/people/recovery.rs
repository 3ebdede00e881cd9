//! Recovery codes: ten one-time codes shown once when 2FA is enrolled (or the codes are
//! regenerated), each standing in for one TOTP code. They carry 50 random bits each, so a
//! plain SHA-256 is enough to store them (a slow hash protects low-entropy passwords; these
//! cannot be guessed offline any faster than online).

use sha2::{Digest, Sha256};

/// Codes per set.
pub const COUNT: usize = 10;
// Crockford's base32 without look-alikes: what a person can read off paper and type.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A fresh set: the codes to show once, and their hashes to store.
pub fn generate() -> (Vec<String>, Vec<String>) {
    let codes: Vec<String> = (0..COUNT).map(|_| one()).collect();
    let hashes = codes.iter().map(|c| hash(c)).collect();
    (codes, hashes)
}

fn one() -> String {
    let mut bytes = [0u8; 10];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    let chars: String = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(b & 31)] as char)
        .collect();
    format!("{}-{}", &chars[..5], &chars[5..])
}

/// The stored form of a code as typed: case, spaces and dashes do not matter.
pub fn hash(typed: &str) -> String {
    let canonical: String = typed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    hex::encode(Sha256::digest(format!(
        "keyward recovery code\0{canonical}"
    )))
}

/// Whether what was typed looks like a recovery code rather than a TOTP code.
pub fn looks_like(typed: &str) -> bool {
    typed.chars().filter(|c| c.is_ascii_alphanumeric()).count() == 10
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_their_hash_ignores_typing_noise() {
        let (codes, hashes) = generate();
        assert_eq!(codes.len(), COUNT);
        let unique: std::collections::HashSet<_> = hashes.iter().collect();
        assert_eq!(unique.len(), COUNT);
        let c = &codes[0];
        assert!(looks_like(c));
        assert_eq!(hash(&c.to_uppercase().replace('-', " ")), hashes[0]);
        assert!(!looks_like("123456"));
    }
}
