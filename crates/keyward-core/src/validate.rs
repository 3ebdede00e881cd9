//! Input rules, each refusing with the offending field and a stable code.
//!
//! Text: every text field of the API refuses control characters (`INVALID_TEXT`): NUL (which
//! PostgreSQL cannot store), the other C0 controls, DEL and the C1 controls. Free text meant
//! to span lines (descriptions, metadata strings) may hold tab, line feed and carriage return;
//! names, e-mail addresses and filters may not.
//!
//! Dates: every date taken from input lies in the years 1970 to 9999 (`INVALID_TIME`), and
//! date arithmetic is checked ([`add`]), so no input can overflow chrono's range.

use chrono::{DateTime, Datelike, Duration, Utc};

use crate::model::{RateLimitPer, WorkspaceSettings};
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

/// Earliest year a date taken from input may name.
pub const MIN_YEAR: i32 = 1970;
/// Latest year a date taken from input may name.
pub const MAX_YEAR: i32 = 9999;

/// Refuses control characters in `value` (`INVALID_TEXT` naming `field`). With `multiline`,
/// tab, line feed and carriage return are allowed. Never echoes the value.
pub fn text(value: &str, field: &str, multiline: bool) -> Result<(), DomainError> {
    let allowed = |c: char| multiline && matches!(c, '\t' | '\n' | '\r');
    if value.chars().any(|c| c.is_control() && !allowed(c)) {
        let what = if multiline {
            "control characters other than tab and line breaks"
        } else {
            "control characters"
        };
        return Err(DomainError::field(
            "INVALID_TEXT",
            field,
            format!("{field} must not contain {what}"),
        ));
    }
    Ok(())
}

/// A date taken from input: in the years [`MIN_YEAR`] to [`MAX_YEAR`] (`INVALID_TIME`), cut
/// to whole milliseconds, as storage keeps it, so the answer of a change shows what reading
/// the object back will show.
pub fn time(value: DateTime<Utc>, field: &str) -> Result<DateTime<Utc>, DomainError> {
    if (MIN_YEAR..=MAX_YEAR).contains(&value.year()) {
        return Ok(DateTime::from_timestamp_millis(value.timestamp_millis()).unwrap_or(value));
    }
    Err(DomainError::field(
        "INVALID_TIME",
        field,
        format!("{field} must lie in the years {MIN_YEAR} to {MAX_YEAR}"),
    ))
}

/// [`time`] of an optional date.
pub fn optional_time(
    value: Option<DateTime<Utc>>,
    field: &str,
) -> Result<Option<DateTime<Utc>>, DomainError> {
    value.map(|v| time(v, field)).transpose()
}

/// `at + by`, refused (`INVALID_TIME` naming `field`) when the result would leave the years
/// [`MIN_YEAR`] to [`MAX_YEAR`] or chrono's range.
pub fn add(at: DateTime<Utc>, by: Duration, field: &str) -> Result<DateTime<Utc>, DomainError> {
    at.checked_add_signed(by)
        .ok_or_else(|| {
            DomainError::field(
                "INVALID_TIME",
                field,
                format!("{field} would lie beyond the year {MAX_YEAR}"),
            )
        })
        .and_then(|t| time(t, field))
}

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
    text(trimmed, field, false)?;
    Ok(trimmed.to_owned())
}

/// A free-text description of at most 1024 characters; tab and line breaks are allowed, other
/// control characters are not.
pub fn description(value: &str, field: &str) -> Result<String, DomainError> {
    description_of_at_most(value, field, MAX_DESCRIPTION_CHARS)
}

/// A free-text description of at most `max` characters, like [`description`].
pub fn description_of_at_most(value: &str, field: &str, max: usize) -> Result<String, DomainError> {
    if value.chars().count() > max {
        return Err(DomainError::field(
            "INVALID_DESCRIPTION",
            field,
            format!("{field} must be at most {max} characters"),
        ));
    }
    text(value, field, true)?;
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
    text(v, field, false)?;
    if !ok {
        return Err(DomainError::field(
            "INVALID_EMAIL",
            field,
            format!("{field} is not an e-mail address"),
        ));
    }
    Ok(v.to_lowercase())
}

/// Token metadata: a JSON object of at most 16 KiB, whose keys and strings (at any depth)
/// follow the rule of free text (no control characters but tab and line breaks).
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
    json_text(value, field)
}

/// Checks every key and string of `value` (depth is bounded by serde_json's own limit).
fn json_text(value: &serde_json::Value, field: &str) -> Result<(), DomainError> {
    use serde_json::Value;
    match value {
        Value::String(s) => text(s, field, true),
        Value::Array(items) => items.iter().try_for_each(|v| json_text(v, field)),
        Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            text(k, field, true)?;
            json_text(v, field)
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
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

/// What a role's or token's own limit counts: `user` needs a limit at the same level, since a
/// level without a limit inherits the next level's limit together with what that one counts
/// (a `per` alone would silently do nothing).
pub fn rate_limit_per(limit: Option<u32>, per: RateLimitPer) -> Result<(), DomainError> {
    if limit.is_none() && per == RateLimitPer::User {
        return Err(DomainError::field(
            "INVALID_RATE_LIMIT",
            "rate_limit_per",
            "rate_limit_per applies to a rate_limit_per_minute at the same level: set both \
             (without a limit of its own, the role's or workspace's limit applies with what it \
             counts)",
        ));
    }
    Ok(())
}

/// A role's or token's own limit and what it counts, `current`, after a request: a new limit
/// (`Some(None)` removes it) and a new `per`, each absent to keep. Removing the limit without
/// naming a `per` resets it to `token`, since a level without a limit counts nothing itself.
pub fn patch_rate_limit(
    current: (Option<u32>, RateLimitPer),
    limit: Option<Option<u32>>,
    per: Option<RateLimitPer>,
) -> Result<(Option<u32>, RateLimitPer), DomainError> {
    let limit = match limit {
        Some(l) => l
            .map(|n| rate_limit(n, "rate_limit_per_minute"))
            .transpose()?,
        None => current.0,
    };
    let per = match per {
        Some(p) => p,
        None if limit.is_none() => RateLimitPer::Token,
        None => current.1,
    };
    rate_limit_per(limit, per)?;
    Ok((limit, per))
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
    if !(1..=5).contains(&s.approvals_required) {
        return Err(DomainError::field(
            "INVALID_SETTING",
            "settings.approvals_required",
            "approvals_required must be between 1 and 5",
        ));
    }
    if !(1..=720).contains(&s.approval_expiry_hours) {
        return Err(DomainError::field(
            "INVALID_SETTING",
            "settings.approval_expiry_hours",
            "approval_expiry_hours must be between 1 and 720",
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
    let not_before = optional_time(not_before, "not_before")?;
    let expires_at = optional_time(expires_at, "expires_at")?;
    let latest = |days: u32| {
        issued_at
            .checked_add_signed(Duration::days(i64::from(days)))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    };
    let expires_at = match (expires_at, max_lifetime_days) {
        (Some(e), Some(days)) if e > latest(days) => {
            return Err(DomainError::field(
                "TOKEN_LIFETIME_EXCEEDED",
                "expires_at",
                format!("this workspace allows tokens to live at most {days} days"),
            ))
        }
        (None, Some(days)) => Some(time(latest(days), "expires_at")?),
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
    fn a_per_user_budget_needs_a_limit_at_its_level() {
        use RateLimitPer::{Token, User};
        let none = (None, Token);
        assert_eq!(
            patch_rate_limit(none, Some(Some(150)), Some(User)),
            Ok((Some(150), User))
        );
        let refused = patch_rate_limit(none, None, Some(User)).unwrap_err();
        assert_eq!(refused.field.as_deref(), Some("rate_limit_per"));
        // Changing the limit keeps what it counts; removing it resets that.
        let shared = (Some(150), User);
        assert_eq!(
            patch_rate_limit(shared, Some(Some(60)), None),
            Ok((Some(60), User))
        );
        assert_eq!(
            patch_rate_limit(shared, Some(None), None),
            Ok((None, Token))
        );
        assert!(patch_rate_limit(shared, Some(None), Some(User)).is_err());
        assert_eq!(
            patch_rate_limit(shared, None, Some(Token)),
            Ok((Some(150), Token))
        );
        assert!(patch_rate_limit(none, Some(Some(0)), None).is_err());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("  Cart Editor ", "name").unwrap(), "Cart Editor");
        assert_eq!(
            name("   ", "name").unwrap_err().field.as_deref(),
            Some("name")
        );
        assert!(name(&"x".repeat(129), "name").is_err());
        assert_eq!(name("a\u{0007}b", "name").unwrap_err().code, "INVALID_TEXT");
        assert_eq!(name("a\0b", "name").unwrap_err().code, "INVALID_TEXT");
    }

    #[test]
    fn text_refuses_control_characters() {
        for bad in ["a\0", "\u{1b}[31m", "a\u{7f}", "a\u{85}b", "a\u{9f}"] {
            let e = text(bad, "description", true).unwrap_err();
            assert_eq!(
                (e.code, e.field.as_deref()),
                ("INVALID_TEXT", Some("description"))
            );
            assert!(!e.message.contains(bad));
        }
        assert!(text("two\nlines\tand\r\n", "description", true).is_ok());
        assert!(text("one\nline", "action", false).is_err());
        assert!(text("héllo wörld ✓", "name", false).is_ok());
        assert_eq!(
            description("a\0", "description").unwrap_err().code,
            "INVALID_TEXT"
        );
        assert_eq!(email("a\0@b.c", "email").unwrap_err().code, "INVALID_TEXT");
        let m = serde_json::json!({"ok": ["fine\n", {"deep": "nul\u{0}"}]});
        assert_eq!(metadata(&m, "metadata").unwrap_err().code, "INVALID_TEXT");
        let m = serde_json::json!({"key\u{0}": 1});
        assert_eq!(metadata(&m, "metadata").unwrap_err().code, "INVALID_TEXT");
    }

    #[test]
    fn dates_are_bounded_and_arithmetic_is_checked() {
        let max = Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap();
        assert!(time(max, "expires_at").is_ok());
        assert!(time(Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap(), "x").is_ok());
        let e = time(Utc.with_ymd_and_hms(1969, 12, 31, 0, 0, 0).unwrap(), "from").unwrap_err();
        assert_eq!((e.code, e.field.as_deref()), ("INVALID_TIME", Some("from")));
        assert!(time(Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap(), "x").is_err());
        assert!(time(DateTime::<Utc>::MAX_UTC, "x").is_err());
        assert_eq!(
            add(max, Duration::seconds(1), "expires_at")
                .unwrap_err()
                .code,
            "INVALID_TIME"
        );
        assert!(add(DateTime::<Utc>::MAX_UTC, Duration::days(1), "x").is_err());
        assert!(add(max, Duration::seconds(-1), "x").is_ok());
        // A maximum lifetime counted from a date near the end does not overflow.
        let late = Utc.with_ymd_and_hms(9999, 12, 1, 0, 0, 0).unwrap();
        assert_eq!(
            validity_window(late, late, None, None, Some(MAX_LIFETIME_DAYS))
                .unwrap_err()
                .code,
            "INVALID_TIME"
        );
        assert!(validity_window(late, late, None, Some(max), Some(MAX_LIFETIME_DAYS)).is_ok());
        let far = DateTime::<Utc>::MAX_UTC;
        assert_eq!(
            validity_window(late, late, None, Some(far), None)
                .unwrap_err()
                .code,
            "INVALID_TIME"
        );
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
