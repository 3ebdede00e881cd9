//! Input rules, each refusing with the offending field and a stable code.

use chrono::{DateTime, Duration, Utc};

use crate::model::WorkspaceSettings;
use crate::secret::valid_prefix;
use crate::DomainError;

/// Longest name (of a user, role, token or workspace), in characters.
pub const MAX_NAME_CHARS: usize = 128;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1024;
/// Largest metadata object, serialised, in bytes.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
/// Longest token lifetime that can be configured, in days (100 years).
pub const MAX_LIFETIME_DAYS: u32 = 36_500;

/// A display name: trimmed, 1–128 characters, no control characters. Returns the trimmed name.
pub fn name(value: &str, field: &str) -> Result<String, DomainError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(DomainError::field(
            "INVALID_NAME",
            field,
            format!("{field} must not be empty"),
        ));
    }
    if trimmed.chars().count() > MAX_NAME_CHARS {
        return Err(DomainError::field(
            "INVALID_NAME",
            field,
            format!("{field} must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(DomainError::field(
            "INVALID_NAME",
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// A free-text description of at most 1024 characters.
pub fn description(value: &str, field: &str) -> Result<String, DomainError> {
    if value.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(DomainError::field(
            "INVALID_DESCRIPTION",
            field,
            format!("{field} must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(value.trim().to_owned())
}

/// An e-mail address: one `@` with text on both sides, no spaces, at most 254 bytes. Lower-cased.
pub fn email(value: &str, field: &str) -> Result<String, DomainError> {
    let v = value.trim();
    let ok = v.len() <= 254
        && !v.contains(char::is_whitespace)
        && v.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        });
    if !ok {
        return Err(DomainError::field(
            "INVALID_EMAIL",
            field,
            format!("{field} is not an e-mail address"),
        ));
    }
    Ok(v.to_lowercase())
}

/// Token metadata: a JSON object of at most 16 KiB.
pub fn metadata(value: &serde_json::Value, field: &str) -> Result<(), DomainError> {
    if !value.is_object() {
        return Err(DomainError::field(
            "INVALID_METADATA",
            field,
            format!("{field} must be a JSON object"),
        ));
    }
    if value.to_string().len() > MAX_METADATA_BYTES {
        return Err(DomainError::field(
            "INVALID_METADATA",
            field,
            format!("{field} must be at most {MAX_METADATA_BYTES} bytes of JSON"),
        ));
    }
    Ok(())
}

/// A rate limit in requests per minute: 1 to 1,000,000.
pub fn rate_limit(value: u32, field: &str) -> Result<u32, DomainError> {
    if value == 0 || value > 1_000_000 {
        return Err(DomainError::field(
            "INVALID_RATE_LIMIT",
            field,
            format!("{field} must be between 1 and 1000000 requests per minute"),
        ));
    }
    Ok(value)
}

/// A workspace's settings.
pub fn settings(s: &WorkspaceSettings) -> Result<(), DomainError> {
    if !valid_prefix(&s.token_prefix) {
        return Err(DomainError::field(
            "INVALID_PREFIX",
            "settings.token_prefix",
            "token_prefix must be 1-20 letters, digits or inner underscores",
        ));
    }
    if s.default_rate_limit_per_minute == 0 || s.default_rate_limit_per_minute > 1_000_000 {
        return Err(DomainError::field(
            "INVALID_SETTING",
            "settings.default_rate_limit_per_minute",
            "default_rate_limit_per_minute must be between 1 and 1000000",
        ));
    }
    if s.token_max_lifetime_days
        .is_some_and(|d| d == 0 || d > MAX_LIFETIME_DAYS)
    {
        return Err(DomainError::field(
            "INVALID_SETTING",
            "settings.token_max_lifetime_days",
            format!("token_max_lifetime_days must be between 1 and {MAX_LIFETIME_DAYS}"),
        ));
    }
    if s.expiry_warning_days > 365 {
        return Err(DomainError::field(
            "INVALID_SETTING",
            "settings.expiry_warning_days",
            "expiry_warning_days must be at most 365",
        ));
    }
    Ok(())
}

/// A token's validity window at creation or change. The expiry must lie in the future
/// (after `now`). With a workspace maximum lifetime, counted from `issued_at` (the token's
/// creation, so repeated changes cannot extend it), a missing expiry becomes the maximum and a
/// later one is refused. Returns the expiry to store.
pub fn validity_window(
    now: DateTime<Utc>,
    issued_at: DateTime<Utc>,
    not_before: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    max_lifetime_days: Option<u32>,
) -> Result<Option<DateTime<Utc>>, DomainError> {
    let expires_at = match (expires_at, max_lifetime_days) {
        (Some(e), Some(days)) if e > issued_at + Duration::days(i64::from(days)) => {
            return Err(DomainError::field(
                "TOKEN_LIFETIME_EXCEEDED",
                "expires_at",
                format!("this workspace allows tokens to live at most {days} days"),
            ))
        }
        (None, Some(days)) => Some(issued_at + Duration::days(i64::from(days))),
        (e, _) => e,
    };
    if expires_at.is_some_and(|e| e <= now) {
        return Err(DomainError::field(
            "INVALID_EXPIRY",
            "expires_at",
            "expires_at must be in the future",
        ));
    }
    if let (Some(nb), Some(e)) = (not_before, expires_at) {
        if nb >= e {
            return Err(DomainError::field(
                "INVALID_EXPIRY",
                "not_before",
                "not_before must be earlier than expires_at",
            ));
        }
    }
    Ok(expires_at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("  Cart Editor ", "name").unwrap(), "Cart Editor");
        assert_eq!(
            name("   ", "name").unwrap_err().field.as_deref(),
            Some("name")
        );
        assert!(name(&"x".repeat(129), "name").is_err());
        assert!(name("a\u{0007}b", "name").is_err());
    }

    #[test]
    fn metadata_must_be_a_small_object() {
        assert!(metadata(&serde_json::json!({"a": 1}), "metadata").is_ok());
        assert!(metadata(&serde_json::json!([1]), "metadata").is_err());
        let big = serde_json::json!({"a": "x".repeat(MAX_METADATA_BYTES)});
        assert!(metadata(&big, "metadata").is_err());
    }

    #[test]
    fn window_enforces_maximum_lifetime() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(validity_window(now, now, None, None, None).unwrap(), None);
        assert_eq!(
            validity_window(now, now, None, None, Some(30)).unwrap(),
            Some(now + Duration::days(30))
        );
        let err =
            validity_window(now, now, None, Some(now + Duration::days(31)), Some(30)).unwrap_err();
        assert_eq!(err.code, "TOKEN_LIFETIME_EXCEEDED");
        assert!(validity_window(now, now, None, Some(now), None).is_err());
        // Counted from issue: a change 20 days later cannot push the expiry past day 30.
        let later = now + Duration::days(20);
        assert!(
            validity_window(later, now, None, Some(now + Duration::days(31)), Some(30)).is_err()
        );
        assert!(
            validity_window(later, now, None, Some(now + Duration::days(29)), Some(30)).is_ok()
        );
        let nb = now + Duration::days(2);
        assert!(validity_window(now, now, Some(nb), Some(now + Duration::days(1)), None).is_err());
    }

    #[test]
    fn settings_are_checked() {
        let mut s = WorkspaceSettings::default();
        assert!(settings(&s).is_ok());
        s.token_prefix = "bad-prefix".into();
        assert_eq!(settings(&s).unwrap_err().code, "INVALID_PREFIX");
    }
}
