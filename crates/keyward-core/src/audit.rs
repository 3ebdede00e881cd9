//! The audit trail: who did what to which object, from where, when; and the keyed hash chain
//! that proves the trail has not been edited since.
//!
//! Each workspace has its own chain. Event `n` stores the hash of event `n - 1`
//! (`prev_hash`, empty for the first) and its own hash, HMAC-SHA256 with the server's chain key
//! over `prev_hash` and the event's fields exactly as stored (before/after are kept as the JSON
//! text that was hashed, never re-serialised), so any edit, deletion or reordering breaks the
//! chain at that event, and without the key it cannot be mended. Secrets never reach an event:
//! before/after are the API's views, which hold none.
//!
//! # Layout
//! - this module: events, drafts, their views and queries.
//! - [`chain`]: the chain key, the plain (legacy) and keyed hashes, the chain check.
//! - [`checkpoint`]: signed chain heads kept by the operator.

pub mod chain;
pub mod checkpoint;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use chain::{
    check_chain, keyed_from_mac, keyed_hash, plain_hash, ChainBreak, ChainHead, ChainKey,
    ChainKeyError, ChainRules,
};
pub use checkpoint::Checkpoint;

use crate::{TokenId, UserId, WorkspaceId};

/// The action of the event that starts the keyed part of a chain written before the chain key
/// existed.
pub const CHAIN_KEYED_ACTION: &str = "audit.chain_keyed";

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A person (the dashboard, once built).
    User,
    /// An API token (acting for its owner).
    Token,
    /// keyward itself (start-up, schedulers, aggregated denials).
    System,
}

impl ActorKind {
    /// The stored spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::Token => "token",
            ActorKind::System => "system",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(ActorKind::User),
            "token" => Some(ActorKind::Token),
            "system" => Some(ActorKind::System),
            _ => None,
        }
    }
}

/// The actor of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Actor {
    /// What kind of actor.
    pub kind: ActorKind,
    /// The acting token, for `token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_id: Option<TokenId>,
    /// The user acted for (the token's owner, or the person).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
}

impl Actor {
    /// keyward itself.
    pub const SYSTEM: Actor = Actor {
        kind: ActorKind::System,
        token_id: None,
        user_id: None,
    };

    /// The kind as stored and shown.
    pub fn kind_str(&self) -> &'static str {
        self.kind.as_str()
    }

    /// A token acting for its owner.
    pub fn token(token_id: TokenId, owner: UserId) -> Self {
        Self {
            kind: ActorKind::Token,
            token_id: Some(token_id),
            user_id: Some(owner),
        }
    }

    /// A person acting for themselves (signed in to the dashboard), with no token.
    pub fn person(user_id: UserId) -> Self {
        Self {
            kind: ActorKind::User,
            token_id: None,
            user_id: Some(user_id),
        }
    }
}

/// An event about to be appended: everything but its place in the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditDraft {
    /// The workspace whose chain it joins.
    pub workspace_id: WorkspaceId,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: Actor,
    /// What, e.g. `token.created`, `role.updated`, `security.denied`.
    pub action: String,
    /// The kind of object acted on: `workspace`, `user`, `role`, `permission`, `token`.
    pub target_kind: String,
    /// Its id (or, for a permission, its name).
    pub target_id: String,
    /// The object before, as JSON text (none for creations).
    pub before: Option<String>,
    /// The object after, as JSON text (none for deletions).
    pub after: Option<String>,
    /// The source address of the request.
    pub ip: Option<String>,
    /// How many occurrences this event stands for (aggregated denials), else 1.
    pub count: u32,
}

impl AuditDraft {
    /// A draft with no before/after/ip and a count of 1.
    pub fn new(
        workspace_id: WorkspaceId,
        at: DateTime<Utc>,
        actor: Actor,
        action: &str,
        target_kind: &str,
        target_id: impl Into<String>,
    ) -> Self {
        Self {
            workspace_id,
            at,
            actor,
            action: action.to_owned(),
            target_kind: target_kind.to_owned(),
            target_id: target_id.into(),
            before: None,
            after: None,
            ip: None,
            count: 1,
        }
    }

    /// Sets `before` to the JSON of `value`.
    pub fn before<T: Serialize>(mut self, value: &T) -> Self {
        self.before = serde_json::to_string(value).ok();
        self
    }

    /// Sets `after` to the JSON of `value`.
    pub fn after<T: Serialize>(mut self, value: &T) -> Self {
        self.after = serde_json::to_string(value).ok();
        self
    }

    /// Sets the source address.
    pub fn ip(mut self, ip: Option<std::net::IpAddr>) -> Self {
        self.ip = ip.map(|ip| ip.to_string());
        self
    }

    /// The event this draft becomes as number `seq` after `prev_hash`, keyed with `key`.
    pub fn seal(self, key: &ChainKey, seq: i64, prev_hash: String) -> AuditEvent {
        let hash = keyed_hash(key, &prev_hash, seq, &self);
        AuditEvent {
            seq,
            draft: self,
            prev_hash,
            hash,
        }
    }
}

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// Its number in the workspace's chain, from 1.
    pub seq: i64,
    /// Its content.
    pub draft: AuditDraft,
    /// The previous event's hash (empty for the first).
    pub prev_hash: String,
    /// Its own hash.
    pub hash: String,
}

/// An event as the API shows it (`GET /v1/audit`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEventView {
    /// Its number in the workspace's chain.
    pub seq: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: Actor,
    /// What.
    pub action: String,
    /// The kind of object.
    pub target_kind: String,
    /// The object's id.
    pub target_id: String,
    /// The object before (JSON), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<serde_json::Value>,
    /// The object after (JSON), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<serde_json::Value>,
    /// The source address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Occurrences this event stands for.
    pub count: u32,
    /// The previous event's hash.
    pub prev_hash: String,
    /// This event's hash.
    pub hash: String,
}

impl From<&AuditEvent> for AuditEventView {
    fn from(e: &AuditEvent) -> Self {
        let json = |t: &Option<String>| t.as_deref().and_then(|t| serde_json::from_str(t).ok());
        Self {
            seq: e.seq,
            at: e.draft.at,
            actor: e.draft.actor,
            action: e.draft.action.clone(),
            target_kind: e.draft.target_kind.clone(),
            target_id: e.draft.target_id.clone(),
            before: json(&e.draft.before),
            after: json(&e.draft.after),
            ip: e.draft.ip.clone(),
            count: e.draft.count,
            prev_hash: e.prev_hash.clone(),
            hash: e.hash.clone(),
        }
    }
}

/// The query of `GET /v1/audit`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only events by this token or user (`tok_…`, `usr_…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Only events about or by this token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Only this action, or a family (`token.*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// From this instant (RFC 3339), inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    /// Until this instant (RFC 3339), exclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
    /// `asc` (oldest first, the default) or `desc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    /// Events per page (1–1000, default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// The answer of `GET /v1/audit/verify` and `POST /v1/audit/verify` (with a checkpoint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditVerification {
    /// Whether the whole chain checks (and passes through the checkpoint unchanged, if one was
    /// given).
    pub intact: bool,
    /// Events checked before the first break (all, when intact).
    pub events_checked: u64,
    /// The number the chain head records for the last event.
    pub head_seq: i64,
    /// The first broken event, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_broken: Option<ChainBreak>,
    /// The first keyed event (earlier ones were written before the chain key and carry plain
    /// SHA-256 hashes), when the head records it authentically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyed_from: Option<i64>,
    /// The event number of the checkpoint checked against, if one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_seq: Option<i64>,
}

#[cfg(test)]
mod tests;
