//! Invitations: a one-time link, shown once to whoever creates it, with which a person sets
//! their password (and then enrols TOTP). A new invitation makes the person's earlier unused
//! ones unusable; accepting one replaces the person's password and second factor, so a
//! re-invitation is also how an admin recovers a person who lost both.

use chrono::Duration;
use keyward_core::api::CreatedInvitation;
use keyward_core::model::UserKind;
use keyward_core::{DomainError, UserId};
use keyward_store::Invitation;

use crate::error::ApiError;
use crate::ops::Caller;
use crate::state::AppState;

/// Invites a human user of the caller's workspace (`keyward.users:write`, workspace scope,
/// holding everything the user holds, not the caller's own user).
pub async fn create(
    state: &AppState,
    caller: &Caller,
    user_id: UserId,
) -> Result<CreatedInvitation, ApiError> {
    caller.require("keyward.users:write")?;
    caller.require_workspace_scope()?;
    let user = state
        .store
        .user(caller.workspace_id(), user_id)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    if user.kind != UserKind::Human {
        return Err(DomainError::field(
            "NOT_A_PERSON",
            "id",
            "only human users sign in; a service user is used through its tokens",
        )
        .into());
    }
    // Accepting an invitation replaces the person's password and second factor: only a caller
    // holding everything the person holds may hand one out, and never for themselves.
    if user.id == caller.owner_id() {
        return Err(ApiError::conflict(
            "SELF_LOCKOUT",
            "you cannot invite yourself (it would replace your own password and second factor); ask another admin",
        ));
    }
    crate::ops::users::ensure_holds_user(state, caller, &user).await?;
    if user.disabled {
        return Err(ApiError::conflict(
            "USER_DISABLED",
            "the user is disabled: enable them before inviting them",
        ));
    }
    if user.email.is_none() {
        return Err(DomainError::field(
            "EMAIL_REQUIRED",
            "id",
            "give the user an e-mail address first: people sign in with it",
        )
        .into());
    }
    let now = state.now();
    let secret = super::session::new_secret();
    let expires_at = now + Duration::hours(i64::from(state.people.config.invitation_hours));
    let inv = Invitation {
        hash: super::session::hash(&secret),
        workspace_id: user.workspace_id,
        user_id: user.id,
        created_at: now,
        expires_at,
        used_at: None,
    };
    let audit = caller
        .audit(state, "person.invited", "user", user.id.to_string())
        .after(&serde_json::json!({ "expires_at": expires_at }));
    state.store.create_invitation(&inv, &audit).await?;
    tracing::info!(user = %user.id, "invitation created");
    Ok(CreatedInvitation {
        user_id: user.id,
        url: format!("{}/ui/invite/{secret}", state.people.base_url),
        expires_at,
    })
}
