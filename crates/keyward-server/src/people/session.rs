//! Session secrets, cookies and CSRF tokens.
//!
//! The cookie holds 256 random bits; the database holds only their SHA-256, so a copy of the
//! database opens no session. The CSRF token of a session is derived from the cookie's secret
//! (a keyed hash), so it needs no storage, differs per session, and cannot be computed by a
//! page that cannot read the cookie (it is `HttpOnly` and `SameSite=Strict` besides).
//! Forms shown before sign-in (sign-in itself, an invitation) use a double-submit pair: a
//! random pre-session cookie and the same value in the form.

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use keyward_store::Session;
use sha2::{Digest, Sha256};

/// The session cookie's name; `__Host-` when cookies are `Secure` (the browser then refuses
/// it from anything but this host over https, with `Path=/`).
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-keyward_session"
    } else {
        "keyward_session"
    }
}

/// The pre-session (double-submit) cookie's name.
pub fn pre_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-keyward_pre"
    } else {
        "keyward_pre"
    }
}

/// The device cookie's name (see [`super::guard`]).
pub fn device_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-keyward_device"
    } else {
        "keyward_device"
    }
}

/// A fresh random secret, base64url.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// How a secret (session cookie, invitation link) is stored: SHA-256, hex.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The CSRF token of the session whose cookie holds `secret`.
pub fn csrf_token(secret: &str) -> String {
    let d = Sha256::digest(format!("keyward csrf\0{secret}"));
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d)
}

/// Compares two tokens in time independent of where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A `Set-Cookie` value. `max_age` of `None` is a browser-session cookie; `Some(0)` deletes.
pub fn set_cookie(name: &str, value: &str, secure: bool, max_age: Option<i64>) -> String {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if secure {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    c
}

/// Reads one cookie from a `Cookie` header.
pub fn read_cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// Why a session is no longer good, if it is not.
pub fn expired(s: &Session, now: DateTime<Utc>, idle: Duration, absolute: Duration) -> bool {
    now >= s.last_seen_at + idle || now >= s.created_at + absolute
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyward_store::SessionStage;

    #[test]
    fn cookies_are_strict_http_only_and_secure_when_asked() {
        let c = set_cookie("keyward_session", "abc", true, None);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Secure"));
        assert!(!set_cookie("k", "v", false, Some(0)).contains("Secure"));
        assert_eq!(
            read_cookie("a=1; keyward_session=xyz; b=2", "keyward_session"),
            Some("xyz")
        );
        assert_eq!(read_cookie("a=1", "keyward_session"), None);
    }

    #[test]
    fn csrf_tokens_are_per_secret_and_not_the_secret() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(csrf_token(&a), csrf_token(&b));
        assert_ne!(csrf_token(&a), a);
        assert!(same(&csrf_token(&a), &csrf_token(&a)));
        assert_ne!(hash(&a), a);
    }

    #[test]
    fn idle_and_absolute_timeouts() {
        let t0 = Utc::now();
        let s = Session {
            hash: "h".into(),
            workspace_id: keyward_core::WorkspaceId::random(&mut rand_core::OsRng),
            user_id: keyward_core::UserId::random(&mut rand_core::OsRng),
            stage: SessionStage::Full,
            created_at: t0,
            last_seen_at: t0 + Duration::minutes(100),
            ip: None,
            user_agent: None,
        };
        let (idle, abs) = (Duration::minutes(30), Duration::hours(12));
        assert!(!expired(&s, t0 + Duration::minutes(120), idle, abs));
        assert!(expired(&s, t0 + Duration::minutes(131), idle, abs));
        let busy = Session {
            last_seen_at: t0 + Duration::hours(12),
            ..s
        };
        assert!(expired(&busy, t0 + Duration::hours(12), idle, abs));
    }
}
