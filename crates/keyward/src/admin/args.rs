//! Argument types shared by the verbs: the enums' command-line spellings, and parsers for
//! instants, durations, JSON metadata and secrets.

use std::fmt;
use std::io::BufRead;

use chrono::{DateTime, Duration, Utc};
use keyward_core::api::IpListInput;
use keyward_core::model::ShownStatus;
use keyward_core::{RoleKind, Scope, UserKind};

/// `human` or `service`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum UserKindArg {
    /// An employee who logs into the dashboard.
    Human,
    /// An integration user that owns tokens.
    Service,
}

impl From<UserKindArg> for UserKind {
    fn from(k: UserKindArg) -> Self {
        match k {
            UserKindArg::Human => UserKind::Human,
            UserKindArg::Service => UserKind::Service,
        }
    }
}

/// `human` or `api`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum RoleKindArg {
    /// For people using the dashboard.
    Human,
    /// For tokens and service users.
    Api,
}

impl From<RoleKindArg> for RoleKind {
    fn from(k: RoleKindArg) -> Self {
        match k {
            RoleKindArg::Human => RoleKind::Human,
            RoleKindArg::Api => RoleKind::Api,
        }
    }
}

/// `user` or `workspace`.
/// What a rate limit counts (`--rate-limit-per`).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum PerArg {
    /// Each token has a budget of its own.
    Token,
    /// All the tokens of one owner user share one budget.
    User,
}

impl From<PerArg> for keyward_core::RateLimitPer {
    fn from(p: PerArg) -> Self {
        match p {
            PerArg::Token => keyward_core::RateLimitPer::Token,
            PerArg::User => keyward_core::RateLimitPer::User,
        }
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum ScopeArg {
    /// Only what the owner may see personally.
    User,
    /// Account-wide.
    Workspace,
}

impl From<ScopeArg> for Scope {
    fn from(s: ScopeArg) -> Self {
        match s {
            ScopeArg::User => Scope::User,
            ScopeArg::Workspace => Scope::Workspace,
        }
    }
}

/// A token status to filter on.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum StatusArg {
    /// Created, waiting for activation.
    Pending,
    /// Usable.
    Active,
    /// Revoked.
    Revoked,
    /// Past its expiry.
    Expired,
}

impl From<StatusArg> for ShownStatus {
    fn from(s: StatusArg) -> Self {
        match s {
            StatusArg::Pending => ShownStatus::Pending,
            StatusArg::Active => ShownStatus::Active,
            StatusArg::Revoked => ShownStatus::Revoked,
            StatusArg::Expired => ShownStatus::Expired,
        }
    }
}

/// A token secret given on the command line; its `Debug` never shows it.
#[derive(Clone)]
pub(crate) struct SecretArg(pub(crate) String);

impl fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretArg(<redacted>)")
    }
}

/// A secret, or `-` to read it from the first line of standard input (which keeps it out of
/// the process list and the shell history).
pub(crate) fn secret(s: &str) -> Result<SecretArg, String> {
    if s != "-" {
        return Ok(SecretArg(s.trim().to_owned()));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the token from standard input: {e}"))?;
    let line = line.trim();
    if line.is_empty() {
        return Err("no token on standard input".to_owned());
    }
    Ok(SecretArg(line.to_owned()))
}

/// An RFC 3339 instant such as `2026-01-31T00:00:00Z`.
pub(crate) fn instant(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{e}: expected an RFC 3339 time such as 2026-01-31T00:00:00Z"))
}

/// A duration such as `30d`, `12h`, `90m`, `2w` or `1d12h` (units s, m, h, d, w).
pub(crate) fn duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("'{s}' is not a duration: expected e.g. 30d, 12h, 90m, 2w or 1d12h");
    let mut total = Duration::zero();
    let mut digits = String::new();
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: i64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        let part = match c {
            's' => Duration::try_seconds(n),
            'm' => Duration::try_minutes(n),
            'h' => Duration::try_hours(n),
            'd' => Duration::try_days(n),
            'w' => Duration::try_weeks(n),
            _ => None,
        };
        total = part.and_then(|p| total.checked_add(&p)).ok_or_else(bad)?;
    }
    if !digits.is_empty() || total <= Duration::zero() {
        return Err(bad());
    }
    Ok(total)
}

/// `now + d`, refusing instants past chrono's range.
pub(crate) fn from_now(d: Duration) -> anyhow::Result<DateTime<Utc>> {
    Utc::now()
        .checked_add_signed(d)
        .ok_or_else(|| anyhow::anyhow!("that duration reaches too far into the future"))
}

/// A JSON object, for token metadata.
pub(crate) fn json_object(s: &str) -> Result<serde_json::Value, String> {
    let value: serde_json::Value =
        serde_json::from_str(s).map_err(|e| format!("not valid JSON: {e}"))?;
    if !value.is_object() {
        return Err("metadata must be a JSON object, e.g. '{\"team\":\"billing\"}'".to_owned());
    }
    Ok(value)
}

/// A PATCH field from a "set" option and a "clear" flag: absent, `null`, or a value.
pub(crate) fn set_or_clear<T>(value: Option<T>, clear: bool) -> Option<Option<T>> {
    if clear {
        Some(None)
    } else {
        value.map(Some)
    }
}

/// An IP allowlist from repeated `--ip-allowlist` options, each possibly comma-separated: one
/// entry per line for the server, which parses and names a bad entry. `None` when not given.
pub(crate) fn ip_list(values: Vec<String>) -> Option<IpListInput> {
    (!values.is_empty()).then(|| IpListInput::Text(values.join("\n")))
}

/// An allowlist PATCH field from a "set" option and a "clear" flag: an empty list clears it.
pub(crate) fn ip_list_or_clear(values: Vec<String>, clear: bool) -> Option<IpListInput> {
    if clear {
        Some(IpListInput::Text(String::new()))
    } else {
        ip_list(values)
    }
}

/// A rate limit in requests per minute: at least one.
pub(crate) fn rate_limit(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "'{s}' is not a rate limit: expected a number of requests per minute, at least 1"
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("30d").unwrap(), Duration::days(30));
        assert_eq!(duration("12h").unwrap(), Duration::hours(12));
        assert_eq!(duration("1d12h").unwrap(), Duration::hours(36));
        assert_eq!(duration("2w").unwrap(), Duration::days(14));
        for bad in ["", "30", "d", "3x", "0d", "-1d", "99999999999999999999d"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn instants_and_metadata() {
        assert!(instant("2026-01-31T00:00:00Z").is_ok());
        assert!(instant("2026-01-31T01:00:00+01:00").is_ok());
        assert!(instant("2026-01-31").is_err());
        assert!(json_object(r#"{"team":"billing"}"#).is_ok());
        assert!(json_object("[1]").is_err());
        assert!(json_object("{").is_err());
    }

    #[test]
    fn ip_lists_and_rate_limits() {
        assert_eq!(ip_list(Vec::new()), None);
        assert_eq!(
            ip_list(vec![
                "10.0.0.0/8, 192.168.1.7".into(),
                "2001:db8::/32".into()
            ]),
            Some(IpListInput::Text(
                "10.0.0.0/8, 192.168.1.7\n2001:db8::/32".into()
            ))
        );
        assert_eq!(
            ip_list_or_clear(Vec::new(), true),
            Some(IpListInput::Text(String::new()))
        );
        assert_eq!(ip_list_or_clear(Vec::new(), false), None);
        assert_eq!(rate_limit("600").unwrap(), 600);
        for bad in ["0", "-1", "x", "", "4294967296"] {
            assert!(rate_limit(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_are_not_debug_printed() {
        let s = secret("kw_abc").unwrap();
        assert!(!format!("{s:?}").contains("kw_abc"));
    }
}
