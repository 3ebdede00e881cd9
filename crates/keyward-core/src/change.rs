//! Change requests: security changes that wait for a second person's approval.
//!
//! A request records the change as the API took it (`change`), the target as it was
//! (`before`) and the target row's version then (`base_version`): applying it later is a
//! conditional update on that version, so a request approved after the target changed fails
//! as stale instead of overwriting the newer change. A request is `pending` until it is
//! applied, rejected, cancelled, expired or failed; every one of those is final.
//!
//! The one-time approval code is kept only as its SHA-256 (`code_hash`), which is never
//! serialised into an answer.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::Actor;
pub use crate::ids::ChangeRequestId;
use crate::{RoleId, TokenId, UserId, WorkspaceId};

/// What a change request changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum ChangeTarget {
    /// The workspace's own settings.
    Workspace,
    /// A role.
    Role(RoleId),
    /// A token.
    Token(TokenId),
}

impl ChangeTarget {
    /// `workspace`, `role` or `token`: the wire and stored kind.
    pub fn kind(&self) -> &'static str {
        match self {
            ChangeTarget::Workspace => "workspace",
            ChangeTarget::Role(_) => "role",
            ChangeTarget::Token(_) => "token",
        }
    }

    /// The target's id as shown (`rol_…`, `tok_…`); `None` for the workspace, which the
    /// request's workspace id names.
    pub fn id_string(&self) -> Option<String> {
        match self {
            ChangeTarget::Workspace => None,
            ChangeTarget::Role(id) => Some(id.to_string()),
            ChangeTarget::Token(id) => Some(id.to_string()),
        }
    }
}

/// Where a change request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeState {
    /// Waiting for approvals.
    Pending,
    /// Approved and applied to its target.
    Applied,
    /// Refused by an approver.
    Rejected,
    /// Withdrawn by the person who requested it.
    Cancelled,
    /// Not approved in time.
    Expired,
    /// Approved, but could not be applied (the target changed or went away meanwhile).
    Failed,
}

impl ChangeState {
    /// Every state, in lifecycle order.
    pub const ALL: [ChangeState; 6] = [
        ChangeState::Pending,
        ChangeState::Applied,
        ChangeState::Rejected,
        ChangeState::Cancelled,
        ChangeState::Expired,
        ChangeState::Failed,
    ];

    /// The wire and stored spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            ChangeState::Pending => "pending",
            ChangeState::Applied => "applied",
            ChangeState::Rejected => "rejected",
            ChangeState::Cancelled => "cancelled",
            ChangeState::Expired => "expired",
            ChangeState::Failed => "failed",
        }
    }

    /// Parses [`as_str`](Self::as_str)'s output.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// Whether the request can no longer change (everything but `pending`).
    pub fn is_final(&self) -> bool {
        !matches!(self, ChangeState::Pending)
    }
}

/// One person's approval of a change request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Approval {
    /// The approving person.
    pub user_id: UserId,
    /// The token they approved with, if they used one (none from the dashboard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<TokenId>,
    /// When.
    pub at: DateTime<Utc>,
    /// What they said, possibly empty.
    #[serde(default)]
    pub comment: String,
}

/// A security change waiting for (or decided by) a second person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChangeRequest {
    /// Id.
    pub id: ChangeRequestId,
    /// The workspace it belongs to.
    pub workspace_id: WorkspaceId,
    /// What it changes.
    pub target: ChangeTarget,
    /// The requested patch, as the API took it.
    pub change: serde_json::Value,
    /// The target as it was when the change was requested.
    pub before: serde_json::Value,
    /// The target row's version when the change was requested; applying is conditional on it.
    pub base_version: i64,
    /// Who asked for it (a token and/or a person).
    pub requested_by: Actor,
    /// Why, as the requester said.
    pub reason: String,
    /// Where it stands.
    pub state: ChangeState,
    /// How many approvals it needs before it is applied.
    pub approvals_needed: u32,
    /// The approvals given so far, oldest first.
    #[serde(default)]
    pub approvals: Vec<Approval>,
    /// SHA-256 (hex) of the one-time approval code. Never serialised into an answer.
    #[serde(skip_serializing, default)]
    #[schema(ignore)]
    pub code_hash: String,
    /// When it was requested.
    pub created_at: DateTime<Utc>,
    /// When it expires if it is still pending.
    pub expires_at: DateTime<Utc>,
    /// When it left `pending`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<DateTime<Utc>>,
    /// Who decided it (the last approver, the rejecter, the canceller, or keyward itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<Actor>,
    /// The rejection or cancellation comment, possibly empty.
    #[serde(default)]
    pub comment: String,
    /// What happened when it was decided, e.g. `STALE: …` for a failed request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

impl ChangeRequest {
    /// Whether `user` has approved it already.
    pub fn approved_by(&self, user: UserId) -> bool {
        self.approvals.iter().any(|a| a.user_id == user)
    }

    /// Whether it has passed its expiry at `now` (whatever its state).
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ChangeRequest {
        let mut rng = rand_core::OsRng;
        let at = DateTime::from_timestamp_millis(1_700_000_000_000).unwrap_or_default();
        ChangeRequest {
            id: ChangeRequestId::random(&mut rng),
            workspace_id: WorkspaceId::random(&mut rng),
            target: ChangeTarget::Role(RoleId::random(&mut rng)),
            change: serde_json::json!({"ip_allowlist": ["10.0.0.0/8"]}),
            before: serde_json::json!({"ip_allowlist": []}),
            base_version: 3,
            requested_by: Actor::person(UserId::random(&mut rng)),
            reason: "office move".into(),
            state: ChangeState::Pending,
            approvals_needed: 1,
            approvals: vec![],
            code_hash: "ab".repeat(32),
            created_at: at,
            expires_at: at + chrono::Duration::hours(24),
            decided_at: None,
            decided_by: None,
            comment: String::new(),
            outcome: None,
        }
    }

    #[test]
    fn targets_serialise_with_kind_and_id() {
        let role = RoleId::random(&mut rand_core::OsRng);
        let json = serde_json::to_value(ChangeTarget::Role(role)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "role", "id": role.to_string()})
        );
        let ws = serde_json::to_value(ChangeTarget::Workspace).unwrap();
        assert_eq!(ws, serde_json::json!({"kind": "workspace"}));
        let back: ChangeTarget = serde_json::from_value(json).unwrap();
        assert_eq!(back, ChangeTarget::Role(role));
        assert_eq!(back.kind(), "role");
        assert_eq!(back.id_string(), Some(role.to_string()));
        assert_eq!(ChangeTarget::Workspace.id_string(), None);
        let back: ChangeTarget = serde_json::from_value(ws).unwrap();
        assert_eq!(back, ChangeTarget::Workspace);
    }

    #[test]
    fn states_round_trip_and_only_pending_is_open() {
        for s in ChangeState::ALL {
            assert_eq!(ChangeState::parse(s.as_str()), Some(s));
            let json = serde_json::to_value(s).unwrap();
            assert_eq!(json, serde_json::Value::String(s.as_str().into()));
            assert_eq!(s.is_final(), s != ChangeState::Pending);
        }
        assert_eq!(ChangeState::parse("approved"), None);
    }

    #[test]
    fn code_hash_is_never_serialised() {
        let r = request();
        let text = serde_json::to_string(&r).unwrap();
        assert!(!text.contains(&r.code_hash));
        assert!(!text.contains("code_hash"));
        let back: ChangeRequest = serde_json::from_str(&text).unwrap();
        assert_eq!(back.code_hash, "");
        assert_eq!(back.id, r.id);
    }

    #[test]
    fn the_schema_has_no_code_hash() {
        let schema = <ChangeRequest as utoipa::PartialSchema>::schema();
        let text = serde_json::to_string(&schema).unwrap();
        assert!(text.contains("approvals_needed"), "{text}");
        assert!(!text.contains("code_hash"), "{text}");
    }

    #[test]
    fn approvals_and_expiry() {
        let mut r = request();
        let user = UserId::random(&mut rand_core::OsRng);
        assert!(!r.approved_by(user));
        r.approvals.push(Approval {
            user_id: user,
            token_id: None,
            at: r.created_at,
            comment: String::new(),
        });
        assert!(r.approved_by(user));
        assert!(!r.is_expired(r.created_at));
        assert!(r.is_expired(r.expires_at));
    }
}
