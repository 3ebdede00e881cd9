//! Change requests: security changes that wait for a second person's approval.
//!
//! A request records the change as the API took it (`change`), the target as it was
//! (`before`) and the target row's version then (`base_version`): applying it later is a
//! conditional update on that version, so a request approved after the target changed fails
//! as stale instead of overwriting the newer change. A request is `pending` until it is
//! applied, rejected, cancelled, expired or failed; every one of those is final.
//!
//! The one-time approval code is kept only as its keyed hash (`code_hash`), which is never
//! serialised into an answer.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::audit::Actor;
pub use crate::ids::ChangeRequestId;
use crate::model::{Role, Token, WorkspaceSettings};
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
    /// The person who made that token, when that is a person other than the approver: they
    /// stand behind this approval too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_maker: Option<UserId>,
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
    /// The person who made the requesting token, when that is a person other than its owner
    /// (an admin's token made for a colleague or a service user): they count as a requester
    /// too, so they cannot approve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by_maker: Option<UserId>,
    /// Why, as the requester said.
    pub reason: String,
    /// Where it stands.
    pub state: ChangeState,
    /// How many approvals it needs before it is applied.
    pub approvals_needed: u32,
    /// The approvals given so far, oldest first.
    #[serde(default)]
    pub approvals: Vec<Approval>,
    /// HMAC-SHA256 (hex) of the one-time approval code. Never serialised into an answer.
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

    /// The people who stand behind the request: the requesting person and the maker of the
    /// requesting token.
    pub fn requesters(&self) -> impl Iterator<Item = UserId> + '_ {
        self.requested_by
            .user_id
            .into_iter()
            .chain(self.requested_by_maker)
    }

    /// Whether `person` stands behind the request or behind one of its approvals (as the
    /// approver or as the maker of the approving token): such a person cannot approve it
    /// (again).
    pub fn involves(&self, person: UserId) -> bool {
        self.requesters().any(|p| p == person)
            || self
                .approvals
                .iter()
                .any(|a| a.user_id == person || a.token_maker == Some(person))
    }

    /// Whether it has passed its expiry at `now` (whatever its state).
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at
    }
}

/// `POST /v1/change-requests/{id}/approve`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveChange {
    /// The request's one-time approval code, as delivered to approvers (`XXXXX-XXXXX`; case,
    /// spaces and dashes do not matter).
    pub code: String,
    /// What the approver says.
    #[serde(default)]
    pub comment: String,
}

/// `POST /v1/change-requests/{id}/reject` and `…/cancel`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideChange {
    /// Why.
    #[serde(default)]
    pub comment: String,
}

/// Whether changing a workspace's settings from `before` to `after` needs approval: only when
/// `before` requires it, and then for any change of the allowlist or internal networks and for
/// anything that weakens the security settings (approval off or fewer approvals or a longer
/// wait, 2FA off, the maximum token lifetime raised or removed). Strengthening applies at once.
pub fn workspace_needs_approval(before: &WorkspaceSettings, after: &WorkspaceSettings) -> bool {
    let lifetime_raised = match (
        before.token_max_lifetime_days,
        after.token_max_lifetime_days,
    ) {
        (Some(_), None) => true,
        (Some(b), Some(a)) => a > b,
        (None, _) => false,
    };
    before.require_approval
        && (before.ip_allowlist != after.ip_allowlist
            || before.internal_networks != after.internal_networks
            || !after.require_approval
            || after.approvals_required != before.approvals_required
            || after.approval_expiry_hours != before.approval_expiry_hours
            || (before.require_2fa && !after.require_2fa)
            || lifetime_raised)
}

/// Whether changing a role from `before` to `after` needs approval in a workspace that
/// requires it: any change of its allowlist.
pub fn role_needs_approval(before: &Role, after: &Role) -> bool {
    before.ip_allowlist != after.ip_allowlist
}

/// Whether changing a token from `before` to `after` needs approval in a workspace that
/// requires it: any change of its allowlist, and turning internal-only off.
pub fn token_needs_approval(before: &Token, after: &Token) -> bool {
    before.ip_allowlist != after.ip_allowlist || (before.internal_only && !after.internal_only)
}

/// Crockford's base32 alphabet (no I, L, O, U): codes read aloud or typed survive.
const CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The approval code of request `id`: ten base32 characters (50 bits) of an HMAC-SHA256 of the
/// id under `key`, a key only the server holds, shown as `XXXXX-XXXXX`. Derived rather than
/// stored, so the approvers' inbox can show it again while the store keeps only its hash.
pub fn approval_code(key: &[u8; 32], id: ChangeRequestId) -> String {
    // HMAC zero-pads a key shorter than its 64-byte block: padding it here is the same key.
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    let mut mac = <Hmac<Sha256> as KeyInit>::new(&block.into());
    mac.update(b"keyward change request approval code\0");
    mac.update(id.to_string().as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut bits: u64 = 0;
    for b in &digest[..8] {
        bits = (bits << 8) | u64::from(*b);
    }
    let mut code = String::with_capacity(11);
    for i in 0..10 {
        if i == 5 {
            code.push('-');
        }
        let index = (bits >> (59 - 5 * i)) & 31;
        code.push(char::from(CODE_ALPHABET[index as usize]));
    }
    code
}

/// HMAC-SHA256 (hex) under `key` of a code as typed, after dropping spaces and dashes and
/// upper-casing (and reading O as 0 and I or L as 1, as Crockford's base32 does): the form
/// stored and compared. Keyed, so a copy of the store alone cannot search the 50-bit codes.
pub fn code_hash(key: &[u8; 32], code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        })
        .collect();
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    let mut mac = <Hmac<Sha256> as KeyInit>::new(&block.into());
    mac.update(b"keyward change request approval code hash\0");
    mac.update(normal.as_bytes());
    hex::encode(mac.finalize().into_bytes())
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
            requested_by_maker: None,
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
    fn codes_are_per_request_and_per_key_and_forgive_typing() {
        let key = [7u8; 32];
        let a = ChangeRequestId::random(&mut rand_core::OsRng);
        let b = ChangeRequestId::random(&mut rand_core::OsRng);
        let code = approval_code(&key, a);
        assert_eq!(code.len(), 11);
        assert_eq!(&code[5..6], "-");
        assert!(code
            .chars()
            .all(|c| c == '-' || CODE_ALPHABET.contains(&(c as u8))));
        assert_eq!(
            approval_code(&key, a),
            code,
            "derived, so shown again alike"
        );
        assert_ne!(approval_code(&key, b), code);
        assert_ne!(approval_code(&[8u8; 32], a), code);
        let typed = format!(" {} ", code.to_lowercase().replace('-', " "));
        let h = |c: &str| code_hash(&key, c);
        assert_eq!(h(&typed), h(&code));
        assert_ne!(h(&approval_code(&key, b)), h(&code));
        assert_eq!(h("0O1IL"), h("00111"));
        assert_ne!(code_hash(&[8u8; 32], &code), h(&code), "keyed");
    }

    #[test]
    fn what_needs_approval() {
        let off = WorkspaceSettings::default();
        let on = WorkspaceSettings {
            require_approval: true,
            require_2fa: true,
            token_max_lifetime_days: Some(90),
            ..WorkspaceSettings::default()
        };
        let with = |f: &dyn Fn(&mut WorkspaceSettings)| {
            let mut s = on.clone();
            f(&mut s);
            s
        };
        let list: crate::ip::IpAllowlist =
            serde_json::from_value(serde_json::json!(["203.0.113.5"])).unwrap();
        // Without approval required nothing waits, not even turning it on.
        assert!(!workspace_needs_approval(&off, &on));
        assert!(!workspace_needs_approval(&on, &on));
        assert!(workspace_needs_approval(
            &on,
            &with(&|s| s.ip_allowlist = list.clone())
        ));
        assert!(workspace_needs_approval(
            &on,
            &with(&|s| s.internal_networks = list.clone())
        ));
        assert!(workspace_needs_approval(
            &on,
            &with(&|s| s.require_approval = false)
        ));
        assert!(workspace_needs_approval(
            &on,
            &with(&|s| s.require_2fa = false)
        ));
        assert!(workspace_needs_approval(
            &on,
            &with(&|s| s.token_max_lifetime_days = None)
        ));
        assert!(workspace_needs_approval(
            &on,
            &with(&|s| s.token_max_lifetime_days = Some(91))
        ));
        assert!(workspace_needs_approval(
            &on,
            &with(&|s| s.approval_expiry_hours = 100)
        ));
        // Stricter applies at once, except the approval rules (they could lock the settings).
        assert!(!workspace_needs_approval(
            &on,
            &with(&|s| s.token_max_lifetime_days = Some(30))
        ));
        assert!(workspace_needs_approval(
            &on,
            &with(&|s| s.approvals_required = 2)
        ));
        assert!(workspace_needs_approval(
            &on,
            &with(&|s| s.approval_expiry_hours = 24)
        ));
        assert!(!workspace_needs_approval(
            &on,
            &with(&|s| s.default_rate_limit_per_minute = 10)
        ));
        let two = with(&|s| s.approvals_required = 2);
        assert!(workspace_needs_approval(&two, &on));
    }

    #[test]
    fn approvals_and_expiry() {
        let mut r = request();
        let user = UserId::random(&mut rand_core::OsRng);
        assert!(!r.approved_by(user));
        let maker = UserId::random(&mut rand_core::OsRng);
        assert!(!r.involves(user) && !r.involves(maker));
        r.approvals.push(Approval {
            user_id: user,
            token_id: None,
            token_maker: Some(maker),
            at: r.created_at,
            comment: String::new(),
        });
        assert!(r.approved_by(user));
        // The maker of the approving token stands behind the approval too.
        assert!(!r.approved_by(maker));
        assert!(r.involves(user) && r.involves(maker));
        let requester = r.requested_by.user_id.unwrap();
        assert!(r.involves(requester));
        let other = UserId::random(&mut rand_core::OsRng);
        r.requested_by_maker = Some(other);
        assert!(r.involves(other));
        assert!(!r.is_expired(r.created_at));
        assert!(r.is_expired(r.expires_at));
    }
}
