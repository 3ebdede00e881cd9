//! Conversions between domain values and column values.

use chrono::{DateTime, Utc};
use keyward_core::model::{RoleKind, Scope, TokenStatus, UserKind};
use keyward_core::PermissionPattern;

use crate::{Result, StoreError};

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn opt_ms(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(ms)
}

pub(crate) fn time(v: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(v).ok_or_else(|| corrupt("timestamp", &v.to_string()))
}

pub(crate) fn opt_time(v: Option<i64>) -> Result<Option<DateTime<Utc>>> {
    v.map(time).transpose()
}

pub(crate) fn uuid(v: &str) -> Result<uuid::Uuid> {
    uuid::Uuid::try_parse(v).map_err(|_| corrupt("id", v))
}

pub(crate) fn opt_uuid(v: Option<String>) -> Result<Option<uuid::Uuid>> {
    v.as_deref().map(uuid).transpose()
}

pub(crate) fn user_kind(k: UserKind) -> &'static str {
    match k {
        UserKind::Human => "human",
        UserKind::Service => "service",
    }
}

pub(crate) fn parse_user_kind(v: &str) -> Result<UserKind> {
    match v {
        "human" => Ok(UserKind::Human),
        "service" => Ok(UserKind::Service),
        _ => Err(corrupt("user kind", v)),
    }
}

pub(crate) fn role_kind(k: RoleKind) -> &'static str {
    match k {
        RoleKind::Human => "human",
        RoleKind::Api => "api",
    }
}

pub(crate) fn parse_role_kind(v: &str) -> Result<RoleKind> {
    match v {
        "human" => Ok(RoleKind::Human),
        "api" => Ok(RoleKind::Api),
        _ => Err(corrupt("role kind", v)),
    }
}

pub(crate) fn parse_scope(v: &str) -> Result<Scope> {
    match v {
        "user" => Ok(Scope::User),
        "workspace" => Ok(Scope::Workspace),
        _ => Err(corrupt("scope", v)),
    }
}

pub(crate) fn parse_rate_limit_per(v: &str) -> Result<keyward_core::RateLimitPer> {
    keyward_core::RateLimitPer::parse(v).ok_or_else(|| corrupt("rate limit per", v))
}

pub(crate) fn parse_status(v: &str) -> Result<TokenStatus> {
    TokenStatus::parse(v).ok_or_else(|| corrupt("token status", v))
}

pub(crate) fn patterns_json(p: &[PermissionPattern]) -> String {
    let texts: Vec<&str> = p.iter().map(PermissionPattern::as_str).collect();
    serde_json::Value::from(texts).to_string()
}

pub(crate) fn parse_patterns(v: &str) -> Result<Vec<PermissionPattern>> {
    serde_json::from_str(v).map_err(|_| corrupt("permissions", v))
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(what: &str, v: &str) -> Result<T> {
    serde_json::from_str(v).map_err(|_| corrupt(what, v))
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Internal(format!("encoding JSON: {e}")))
}

fn corrupt(what: &str, value: &str) -> StoreError {
    let shown: String = value.chars().take(64).collect();
    StoreError::Internal(format!("corrupt {what} in storage: {shown:?}"))
}

pub(crate) fn opt_limit(v: Option<i64>) -> Result<Option<u32>> {
    v.map(|n| u32::try_from(n).map_err(|_| corrupt("rate limit", &n.to_string())))
        .transpose()
}

/// A family's tokens in rotation order: each followed by the token that replaced it. Tokens
/// whose predecessor is gone (deleted) follow, by creation.
pub(crate) fn rotation_order(
    mut by_creation: Vec<keyward_core::Token>,
) -> Vec<keyward_core::Token> {
    let mut out: Vec<keyward_core::Token> = Vec::with_capacity(by_creation.len());
    let root = by_creation.iter().position(|t| t.family_id.is_none());
    if let Some(i) = root {
        out.push(by_creation.remove(i));
        while let Some(i) = out.last().and_then(|last| {
            by_creation
                .iter()
                .position(|t| t.rotated_from == Some(last.id))
        }) {
            out.push(by_creation.remove(i));
        }
    }
    out.extend(by_creation);
    out
}
