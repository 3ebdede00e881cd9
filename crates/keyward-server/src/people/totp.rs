//! Second factor: TOTP (RFC 6238: HMAC-SHA1, 6 digits, 30-second steps — what every
//! authenticator app reads from an `otpauth://` QR code), computed by `totp-rs` at the time of
//! the injected clock. A code is accepted for the step before, the current one and the one
//! after (clock drift), and each step only once: the caller records the step returned and
//! refuses a code of a step at or before the last one accepted.

use chrono::{DateTime, Utc};
use totp_rs::{Algorithm, Secret, TOTP};

/// Seconds per step.
pub const STEP_SECS: u64 = 30;
const DIGITS: usize = 6;
/// Secret bytes (160 bits, RFC 4226's recommendation).
const SECRET_LEN: usize = 20;

/// A fresh secret, base32 (as authenticator apps show it for manual entry).
pub fn generate_secret() -> String {
    let mut bytes = [0u8; SECRET_LEN];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    Secret::Raw(bytes.to_vec()).to_encoded().to_string()
}

fn totp(secret_b32: &str, issuer: &str, account: &str) -> Option<TOTP> {
    let bytes = Secret::Encoded(secret_b32.to_owned()).to_bytes().ok()?;
    // `new_unchecked`: the account name may hold any character; the secret length is ours.
    Some(TOTP::new_unchecked(
        Algorithm::SHA1,
        DIGITS,
        1,
        STEP_SECS,
        bytes,
        Some(issuer.to_owned()),
        account.to_owned(),
    ))
}

fn unix(now: DateTime<Utc>) -> u64 {
    u64::try_from(now.timestamp()).unwrap_or(0)
}

/// The code for `now` (tests and the enrolment page's self-check use it).
pub fn code_at(secret_b32: &str, now: DateTime<Utc>) -> Option<String> {
    totp(secret_b32, "keyward", "x").map(|t| t.generate(unix(now)))
}

/// The step a correct `code` belongs to (now ± one step), or `None`.
pub fn check(secret_b32: &str, code: &str, now: DateTime<Utc>) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = totp(secret_b32, "keyward", "x")?;
    let step = unix(now) / STEP_SECS;
    let mut found = None;
    // Every candidate is compared, so the time taken does not say which step matched.
    for s in [step.saturating_sub(1), step, step + 1] {
        let expected = t.generate(s * STEP_SECS);
        if constant_eq(expected.as_bytes(), code.as_bytes()) {
            found = i64::try_from(s).ok();
        }
    }
    found
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `otpauth://` URL an authenticator app reads.
pub fn otpauth_url(secret_b32: &str, issuer: &str, account: &str) -> Option<String> {
    totp(secret_b32, issuer, account).map(|t| t.get_url())
}

/// The URL as a QR code, an SVG document.
pub fn qr_svg(url: &str) -> Option<String> {
    let code = qrcode::QrCode::new(url.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn rfc_6238_sha1_vector() {
        // RFC 6238 appendix B: secret "12345678901234567890", T = 59 s → 94287082 (8 digits);
        // its last six digits are the 6-digit code.
        let secret = Secret::Raw(b"12345678901234567890".to_vec())
            .to_encoded()
            .to_string();
        let at = Utc.timestamp_opt(59, 0).unwrap();
        assert_eq!(code_at(&secret, at).unwrap(), "287082");
        let at = Utc.timestamp_opt(1_111_111_109, 0).unwrap();
        assert_eq!(code_at(&secret, at).unwrap(), "081804");
    }

    #[test]
    fn a_code_is_good_for_one_step_either_side_only() {
        let secret = generate_secret();
        let now = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        let code = code_at(&secret, now).unwrap();
        let step = 1_800_000_000 / 30;
        assert_eq!(check(&secret, &code, now), Some(step));
        assert_eq!(
            check(&secret, &code, now + chrono::Duration::seconds(30)),
            Some(step)
        );
        assert_eq!(
            check(&secret, &code, now - chrono::Duration::seconds(30)),
            Some(step)
        );
        assert_eq!(
            check(&secret, &code, now + chrono::Duration::seconds(90)),
            None
        );
        assert_eq!(check(&secret, "12345", now), None);
        assert_eq!(check(&secret, "abcdef", now), None);
    }

    #[test]
    fn the_qr_code_carries_the_otpauth_url() {
        let secret = generate_secret();
        let url = otpauth_url(&secret, "keyward", "ada@example.com").unwrap();
        assert!(
            url.starts_with("otpauth://totp/keyward:ada%40example.com?"),
            "{url}"
        );
        assert!(url.contains(&format!("secret={secret}")));
        assert!(qr_svg(&url).unwrap().contains("<svg"));
    }
}
