//! The token format and its hashing.
//!
//! A secret is `{prefix}_{43 base62 random}{6 base62 CRC32}`: 43 base62 digits carry
//! 43·log2(62) ≈ 256.03 bits, and the checksum (CRC32 of everything before it, prefix included)
//! lets secret scanners recognise tokens and lets keyward refuse a mistyped one without touching
//! storage. Only a hash of the secret is stored: SHA-256, or HMAC-SHA256 keyed with a server
//! pepper when one is configured.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::base62;

/// Number of random base62 digits in a secret.
pub const RANDOM_LEN: usize = 43;
/// Number of checksum digits.
pub const CHECKSUM_LEN: usize = 6;
/// Longest accepted prefix.
pub const MAX_PREFIX_LEN: usize = 20;
/// Random digits kept (after the prefix) for display.
const DISPLAY_RANDOM_LEN: usize = 6;

/// Why a presented string is not a keyward token. Never carries the string itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// Empty, too long, or no `_` separating prefix and body.
    #[error("token is not of the form prefix_body")]
    Shape,
    /// The prefix has characters other than letters, digits and inner underscores.
    #[error("token prefix is invalid")]
    Prefix,
    /// The body is not 49 base62 digits.
    #[error("token body has the wrong length or characters")]
    Body,
    /// The checksum does not match: a typo or a truncated copy.
    #[error("token checksum does not match")]
    Checksum,
}

/// A token secret. It cannot be printed by accident: `Debug` shows only the display prefix, and
/// there is no `Display`; [`TokenSecret::expose`] is the one deliberate way to the text.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret(String);

impl TokenSecret {
    /// Generates a fresh secret with `prefix` (which must satisfy [`valid_prefix`]).
    pub fn generate(prefix: &str, rng: &mut impl rand_core::RngCore) -> Self {
        let mut s = String::with_capacity(prefix.len() + 1 + RANDOM_LEN + CHECKSUM_LEN);
        s.push_str(prefix);
        s.push('_');
        let mut filled = 0;
        let mut buf = [0u8; 64];
        while filled < RANDOM_LEN {
            rng.fill_bytes(&mut buf);
            for &b in &buf {
                // 248 = 4·62: rejecting larger bytes keeps every digit uniformly likely.
                if b < 248 && filled < RANDOM_LEN {
                    s.push(char::from(base62::ALPHABET[usize::from(b % 62)]));
                    filled += 1;
                }
            }
        }
        for d in checksum(s.as_bytes()) {
            s.push(char::from(d));
        }
        Self(s)
    }

    /// Checks the format and the checksum, without any storage, and keeps a copy.
    pub fn parse(s: &str) -> Result<Self, Malformed> {
        Self::check(s).map(|c| Self(c.0.to_owned()))
    }

    /// Checks the format and the checksum of a presented secret without copying it: the hot
    /// path hashes it straight from the request.
    pub fn check(s: &str) -> Result<CheckedSecret<'_>, Malformed> {
        let (prefix, body) = s.rsplit_once('_').ok_or(Malformed::Shape)?;
        if !valid_prefix(prefix) {
            return Err(Malformed::Prefix);
        }
        if body.len() != RANDOM_LEN + CHECKSUM_LEN || !body.bytes().all(base62::is_digit) {
            return Err(Malformed::Body);
        }
        let split = s.len() - CHECKSUM_LEN;
        let expected = checksum(&s.as_bytes()[..split]);
        if expected[..] != s.as_bytes()[split..] {
            return Err(Malformed::Checksum);
        }
        Ok(CheckedSecret(s))
    }

    /// The secret text. Call only to hand it to its owner, once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The prefix (before the last `_`).
    pub fn prefix(&self) -> &str {
        self.0.rsplit_once('_').map_or("", |(p, _)| p)
    }

    /// What may be shown of the secret later: the prefix and the first few random digits.
    pub fn display_start(&self) -> String {
        let keep = self.prefix().len() + 1 + DISPLAY_RANDOM_LEN;
        self.0[..keep.min(self.0.len())].to_owned()
    }
}

/// The checksum digits of everything before them.
fn checksum(text: &[u8]) -> [u8; CHECKSUM_LEN] {
    base62::encode_fixed(u64::from(crc32fast::hash(text)))
}

/// A presented secret that passed [`TokenSecret::check`], borrowed from the request. Like
/// [`TokenSecret`], it cannot be printed by accident.
#[derive(Clone, Copy)]
pub struct CheckedSecret<'a>(&'a str);

impl fmt::Debug for CheckedSecret<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CheckedSecret(<redacted>)")
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenSecret({}…)", self.display_start())
    }
}

/// Whether `prefix` is acceptable: 1–20 ASCII letters, digits or inner underscores.
pub fn valid_prefix(prefix: &str) -> bool {
    !prefix.is_empty()
        && prefix.len() <= MAX_PREFIX_LEN
        && !prefix.starts_with('_')
        && !prefix.ends_with('_')
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The stored form of a secret: 32 bytes of SHA-256 or HMAC-SHA256.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Lower-case hex, for storage and logs (a hash is not a secret).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Self(out))
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({}…)", &self.to_hex()[..12])
    }
}

/// Hashes secrets for storage and lookup; holds the optional pepper.
#[derive(Clone, Default)]
pub struct TokenHasher {
    pepper: Option<Vec<u8>>,
}

impl TokenHasher {
    /// Plain SHA-256 (`None`) or HMAC-SHA256 keyed with `pepper`.
    pub fn new(pepper: Option<Vec<u8>>) -> Self {
        Self { pepper }
    }

    /// The stored form of `secret`.
    pub fn hash(&self, secret: &TokenSecret) -> TokenHash {
        self.hash_bytes(secret.expose().as_bytes())
    }

    /// The stored form of a checked, presented secret.
    pub fn hash_checked(&self, secret: CheckedSecret<'_>) -> TokenHash {
        self.hash_bytes(secret.0.as_bytes())
    }

    fn hash_bytes(&self, bytes: &[u8]) -> TokenHash {
        match &self.pepper {
            None => TokenHash(Sha256::digest(bytes).into()),
            Some(pepper) => match Hmac::<Sha256>::new_from_slice(pepper) {
                Ok(mut mac) => {
                    mac.update(bytes);
                    TokenHash(mac.finalize().into_bytes().into())
                }
                // HMAC accepts keys of any length; this arm cannot be reached.
                Err(_) => TokenHash(Sha256::digest(bytes).into()),
            },
        }
    }
}

impl fmt::Debug for TokenHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenHasher")
            .field("peppered", &self.pepper.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    #[test]
    fn generated_secrets_parse_and_have_the_documented_shape() {
        for prefix in ["kw", "acme_live", "X9"] {
            let s = TokenSecret::generate(prefix, &mut OsRng);
            let text = s.expose();
            assert_eq!(text.len(), prefix.len() + 1 + RANDOM_LEN + CHECKSUM_LEN);
            assert_eq!(s.prefix(), prefix);
            assert_eq!(TokenSecret::parse(text), Ok(s.clone()));
            assert!(s.display_start().starts_with(&format!("{prefix}_")));
        }
    }

    #[test]
    fn every_single_character_typo_is_refused() {
        let s = TokenSecret::generate("kw", &mut OsRng);
        let text = s.expose().to_owned();
        for i in 3..text.len() {
            let mut bytes = text.clone().into_bytes();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let typo = String::from_utf8(bytes).unwrap();
            assert_eq!(TokenSecret::parse(&typo), Err(Malformed::Checksum), "{i}");
        }
    }

    #[test]
    fn refuses_bad_shapes() {
        let good = TokenSecret::generate("kw", &mut OsRng).expose().to_owned();
        assert_eq!(TokenSecret::parse(""), Err(Malformed::Shape));
        assert_eq!(TokenSecret::parse("nounderscore"), Err(Malformed::Shape));
        assert_eq!(
            TokenSecret::parse(&good[..good.len() - 1]),
            Err(Malformed::Body)
        );
        assert_eq!(
            TokenSecret::parse(&format!("{good}x")),
            Err(Malformed::Body)
        );
        assert_eq!(
            TokenSecret::parse(&good.replacen("kw", "k-", 1)),
            Err(Malformed::Prefix)
        );
        // Same body under a different prefix: the checksum covers the prefix.
        assert_eq!(
            TokenSecret::parse(&good.replacen("kw", "kx", 1)),
            Err(Malformed::Checksum)
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let s = TokenSecret::generate("kw", &mut OsRng);
        let shown = format!("{s:?}");
        assert!(!shown.contains(s.expose()));
        assert!(shown.contains(&s.display_start()));
    }

    #[test]
    fn pepper_changes_the_hash() {
        let s = TokenSecret::generate("kw", &mut OsRng);
        let plain = TokenHasher::new(None).hash(&s);
        let peppered = TokenHasher::new(Some(b"pepper".to_vec())).hash(&s);
        assert_ne!(plain, peppered);
        assert_eq!(TokenHash::from_hex(&plain.to_hex()), Some(plain));
        let checked = TokenSecret::check(s.expose()).unwrap();
        assert_eq!(TokenHasher::new(None).hash_checked(checked), plain);
        assert!(!format!("{checked:?}").contains(s.expose()));
    }

    /// A source of the same bytes over and over (alternating with a rejected byte when
    /// `reject` is set), to generate a secret whose random part is known in advance.
    struct Fixed {
        byte: u8,
        reject: bool,
    }

    impl rand_core::RngCore for Fixed {
        fn next_u32(&mut self) -> u32 {
            u32::from(self.byte)
        }
        fn next_u64(&mut self) -> u64 {
            u64::from(self.byte)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for (i, b) in dest.iter_mut().enumerate() {
                *b = if self.reject && i % 2 == 1 {
                    250
                } else {
                    self.byte
                };
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }

    /// Known answers, computed outside keyward (Python's `zlib.crc32` of everything before
    /// the checksum, written as 6 base62 digits `0-9A-Za-z`, most significant first).
    #[test]
    fn checksums_match_known_answers() {
        let known = "kw_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg0azNt7";
        assert!(TokenSecret::check(known).is_ok());
        // CRC32 0x20941e0d = 546577933 = 0·62⁵ + 36·62⁴ + 61·62³ + 23·62² + 55·62 + 7.
        assert_eq!(crc32fast::hash(&known.as_bytes()[..46]), 0x2094_1e0d);
        assert_eq!(
            TokenSecret::check("kw_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg0azNt8").err(),
            Some(Malformed::Checksum)
        );
        // Byte 1 → digit '1'; byte 123 → 123 mod 62 = 61 → 'z'; byte 250 is rejected.
        let ones = TokenSecret::generate(
            "kw",
            &mut Fixed {
                byte: 1,
                reject: false,
            },
        );
        assert_eq!(
            ones.expose(),
            "kw_11111111111111111111111111111111111111111110eGQPA"
        );
        let zs = TokenSecret::generate(
            "acme_live",
            &mut Fixed {
                byte: 123,
                reject: true,
            },
        );
        assert_eq!(
            zs.expose(),
            "acme_live_zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz4ZPjXr"
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn check_never_panics(s in "\\PC{0,80}", bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
                let _ = TokenSecret::check(&s);
                let lossy = String::from_utf8_lossy(&bytes);
                let _ = TokenSecret::check(&lossy);
            }

            #[test]
            fn near_misses_never_panic(prefix in "[a-z_]{0,22}", body in "[0-9A-Za-z_é]{40,55}") {
                let _ = TokenSecret::check(&format!("{prefix}_{body}"));
            }

            #[test]
            fn generated_tokens_round_trip(prefix in "[A-Za-z0-9]([A-Za-z0-9_]{0,18}[A-Za-z0-9])?", seed in any::<u64>()) {
                let mut rng = Seeded(seed);
                let s = TokenSecret::generate(&prefix, &mut rng);
                prop_assert_eq!(s.prefix(), prefix.as_str());
                prop_assert_eq!(TokenSecret::parse(s.expose()), Ok(s.clone()));
            }
        }

        /// xorshift64*, enough to vary the random part deterministically.
        struct Seeded(u64);

        impl rand_core::RngCore for Seeded {
            fn next_u32(&mut self) -> u32 {
                (self.next_u64() >> 32) as u32
            }
            fn next_u64(&mut self) -> u64 {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1
            }
            fn fill_bytes(&mut self, dest: &mut [u8]) {
                rand_core::impls::fill_bytes_via_next(self, dest);
            }
            fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
                self.fill_bytes(dest);
                Ok(())
            }
        }
    }
}
