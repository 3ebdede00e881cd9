//! The audit trail: who did what to which object, from where, when; and the hash chain that
//! proves the trail has not been edited since.
//!
//! Each workspace has its own chain. Event `n` stores the hash of event `n - 1`
//! (`prev_hash`, empty for the first) and its own hash, SHA-256 over `prev_hash` and the
//! event's fields exactly as stored (before/after are kept as the JSON text that was hashed,
//! never re-serialised), so any edit, deletion or reordering breaks the chain at that event.
//! Secrets never reach an event: before/after are the API's views, which hold none.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{TokenId, UserId, WorkspaceId};

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

    /// The event this draft becomes as number `seq` after `prev_hash`.
    pub fn seal(self, seq: i64, prev_hash: String) -> AuditEvent {
        let hash = chain_hash(&prev_hash, seq, &self);
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

/// The hash of an event: SHA-256, hex, over the previous hash and every stored field in a
/// fixed order, each length-prefixed so no two different events encode alike.
pub fn chain_hash(prev_hash: &str, seq: i64, d: &AuditDraft) -> String {
    let mut h = Sha256::new();
    let mut field = |s: &str| {
        h.update((s.len() as u64).to_be_bytes());
        h.update(s.as_bytes());
    };
    field("keyward.audit.v1");
    field(prev_hash);
    field(&seq.to_string());
    field(&d.workspace_id.to_string());
    field(&d.at.timestamp_millis().to_string());
    field(d.actor.kind.as_str());
    field(&d.actor.token_id.map(|t| t.to_string()).unwrap_or_default());
    field(&d.actor.user_id.map(|u| u.to_string()).unwrap_or_default());
    field(&d.action);
    field(&d.target_kind);
    field(&d.target_id);
    field(d.before.as_deref().unwrap_or("\u{0}none"));
    field(d.after.as_deref().unwrap_or("\u{0}none"));
    field(d.ip.as_deref().unwrap_or(""));
    field(&d.count.to_string());
    hex::encode(h.finalize())
}

/// Where a chain is broken, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChainBreak {
    /// The first event that does not check (or, for a missing tail, the head's number).
    pub seq: i64,
    /// What is wrong with it.
    pub reason: String,
}

/// Checks events in order, continuing a chain whose last good event was `prev` (number and
/// hash; `(0, "")` from the start). Returns the last number and hash.
pub fn check_chain<'a>(
    prev: (i64, String),
    events: impl IntoIterator<Item = &'a AuditEvent>,
) -> Result<(i64, String), ChainBreak> {
    let (mut seq, mut hash) = prev;
    for e in events {
        let broken = |reason: &str| ChainBreak {
            seq: e.seq,
            reason: reason.to_owned(),
        };
        if e.seq != seq + 1 {
            return Err(ChainBreak {
                seq: seq + 1,
                reason: format!("event {} is missing (next stored is {})", seq + 1, e.seq),
            });
        }
        if e.prev_hash != hash {
            return Err(broken(
                "its previous-hash does not match the event before it",
            ));
        }
        if chain_hash(&e.prev_hash, e.seq, &e.draft) != e.hash {
            return Err(broken("its content does not match its hash"));
        }
        seq = e.seq;
        hash = e.hash.clone();
    }
    Ok((seq, hash))
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

/// The answer of `GET /v1/audit/verify`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditVerification {
    /// Whether the whole chain checks.
    pub intact: bool,
    /// Events checked before the first break (all, when intact).
    pub events_checked: u64,
    /// The number the chain head records for the last event.
    pub head_seq: i64,
    /// The first broken event, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_broken: Option<ChainBreak>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn draft(action: &str) -> AuditDraft {
        let ws = WorkspaceId::random(&mut rand_core::OsRng);
        let at = Utc.timestamp_millis_opt(1_700_000_000_000).unwrap();
        AuditDraft::new(ws, at, Actor::SYSTEM, action, "token", "tok_x").after(&"x")
    }

    fn chain(n: usize) -> Vec<AuditEvent> {
        let mut out: Vec<AuditEvent> = Vec::new();
        for i in 0..n {
            let prev = out.last().map(|e| e.hash.clone()).unwrap_or_default();
            out.push(draft(&format!("a{i}")).seal(i as i64 + 1, prev));
        }
        out
    }

    #[test]
    fn an_intact_chain_checks() {
        let c = chain(5);
        let (seq, hash) = check_chain((0, String::new()), &c).unwrap();
        assert_eq!((seq, hash.as_str()), (5, c[4].hash.as_str()));
        // Continuing from the middle works too.
        assert!(check_chain((2, c[1].hash.clone()), &c[2..]).is_ok());
    }

    #[test]
    fn an_edit_a_gap_or_a_swap_is_named() {
        let mut c = chain(5);
        c[2].draft.after = Some("\"y\"".into());
        assert_eq!(check_chain((0, String::new()), &c).unwrap_err().seq, 3);

        let mut c = chain(5);
        c.remove(1);
        let b = check_chain((0, String::new()), &c).unwrap_err();
        assert_eq!(b.seq, 2);

        let mut c = chain(5);
        c[3].draft.count = 7;
        c[3].hash = chain_hash(&c[3].prev_hash, 4, &c[3].draft); // rehashed, but the next
        assert_eq!(check_chain((0, String::new()), &c).unwrap_err().seq, 5); // links to the old
    }

    #[test]
    fn absent_and_empty_before_hash_differently() {
        let mut a = draft("x");
        a.before = None;
        let mut b = a.clone();
        b.before = Some(String::new());
        assert_ne!(chain_hash("", 1, &a), chain_hash("", 1, &b));
    }
}
