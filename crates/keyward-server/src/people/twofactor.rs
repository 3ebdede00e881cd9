//! Two-factor enrolment and its upkeep: accepting an invitation (which sets the password and
//! leads to enrolment), enrolling TOTP with a QR code, the shown-once recovery codes, and
//! turning 2FA off where the workspace allows it. Every change is audited in the same
//! transaction as the change.

use keyward_core::model::UserKind;
use keyward_core::DomainError;
use keyward_store::{Credentials, SessionStage};

use super::signin::{allowed_from, guarded_code, start, Origin, SignInError, Signed, Started};
use super::{password, person, recovery, session, totp};
use crate::state::AppState;

fn draft(
    state: &AppState,
    s: &Signed,
    action: &str,
    origin: &Origin,
) -> keyward_core::audit::AuditDraft {
    keyward_core::audit::AuditDraft::new(
        s.user.workspace_id,
        state.now(),
        person(s.user.id),
        action,
        "user",
        s.user.id.to_string(),
    )
    .ip(origin.ip)
}

/// Uses an invitation link: sets the password (replacing any password and second factor the
/// person had), ends their other sessions, and starts one that leads to 2FA enrolment.
pub async fn accept_invitation(
    state: &AppState,
    secret: &str,
    password_typed: &str,
    confirm: &str,
    origin: &Origin,
) -> Result<Started, SignInError> {
    let now = state.now();
    let hash = session::hash(secret);
    let inv = state
        .store
        .invitation(&hash)
        .await?
        .filter(|i| i.used_at.is_none() && i.expires_at > now)
        .ok_or(SignInError::InvitationInvalid)?;
    let user = state
        .store
        .user(inv.workspace_id, inv.user_id)
        .await?
        .filter(|u| u.kind == UserKind::Human && !u.disabled)
        .ok_or(SignInError::InvitationInvalid)?;
    let ws = state
        .store
        .workspace(user.workspace_id)
        .await?
        .ok_or(SignInError::InvitationInvalid)?;
    if !allowed_from(state, &ws, &user, origin.ip).await? {
        return Err(SignInError::IpNotAllowed);
    }
    password::check_new(password_typed, confirm).map_err(SignInError::Invalid)?;
    let hashed = password::hash_async(password_typed)
        .await
        .map_err(|e| SignInError::Server(crate::error::ApiError::Internal(e)))?;
    let creds = Credentials {
        password_hash: Some(hashed),
        ..Credentials::empty(&user, now)
    };
    let audit = keyward_core::audit::AuditDraft::new(
        user.workspace_id,
        now,
        person(user.id),
        "person.password_set",
        "user",
        user.id.to_string(),
    )
    .ip(origin.ip)
    .after(&serde_json::json!({"by": "invitation"}));
    if !state
        .store
        .accept_invitation(&hash, now, &creds, &audit)
        .await?
    {
        return Err(SignInError::InvitationInvalid);
    }
    state
        .store
        .replace_recovery_codes(
            user.workspace_id,
            user.id,
            &[],
            &audit_codes(state, &user, origin, 0),
        )
        .await?;
    state
        .store
        .delete_user_sessions(user.workspace_id, user.id)
        .await?;
    start(state, &user, SessionStage::MustEnrol, origin).await
}

fn audit_codes(
    state: &AppState,
    user: &keyward_core::User,
    origin: &Origin,
    count: usize,
) -> keyward_core::audit::AuditDraft {
    keyward_core::audit::AuditDraft::new(
        user.workspace_id,
        state.now(),
        person(user.id),
        "person.recovery_codes_replaced",
        "user",
        user.id.to_string(),
    )
    .ip(origin.ip)
    .after(&serde_json::json!({ "count": count }))
}

/// What the enrolment page shows.
#[derive(Debug, Clone)]
pub struct Enrolment {
    /// The secret, base32, for typing into an app by hand.
    pub secret: String,
    /// The `otpauth://` URL.
    pub url: String,
    /// The QR code of the URL, SVG.
    pub qr_svg: String,
}

/// Starts (or resumes) enrolment: a pending secret stored until a code confirms it.
pub async fn begin(
    state: &AppState,
    s: &Signed,
    origin: &Origin,
) -> Result<Enrolment, SignInError> {
    if s.credentials.has_2fa() {
        return Err(SignInError::Invalid(DomainError::rule(
            "ALREADY_ENROLLED",
            "two-factor authentication is already on",
        )));
    }
    let secret = match &s.credentials.totp_secret {
        Some(pending) => pending.clone(),
        None => {
            let secret = totp::generate_secret();
            let creds = Credentials {
                totp_secret: Some(secret.clone()),
                totp_enabled_at: None,
                updated_at: state.now(),
                ..s.credentials.clone()
            };
            let audit = draft(state, s, "person.2fa_enrolment_started", origin);
            state.store.put_credentials(&creds, &audit).await?;
            secret
        }
    };
    let account = s.user.email.clone().unwrap_or_else(|| s.user.name.clone());
    let url = totp::otpauth_url(&secret, "keyward", &account).ok_or_else(|| {
        SignInError::Server(crate::error::ApiError::Internal("otpauth url".into()))
    })?;
    let qr_svg = totp::qr_svg(&url).unwrap_or_default();
    Ok(Enrolment {
        secret,
        url,
        qr_svg,
    })
}

/// Confirms enrolment with a code from the app: 2FA is on, the session is fully signed in,
/// and the recovery codes (returned, to be shown once) replace any earlier ones.
pub async fn confirm(
    state: &AppState,
    s: &Signed,
    code: &str,
    origin: &Origin,
) -> Result<Vec<String>, SignInError> {
    let now = state.now();
    let Some(secret) = s
        .credentials
        .totp_secret
        .clone()
        .filter(|_| !s.credentials.has_2fa())
    else {
        return Err(SignInError::BadCode);
    };
    let Some(step) = totp::check(&secret, code, now) else {
        return Err(SignInError::BadCode);
    };
    let creds = Credentials {
        totp_enabled_at: Some(now),
        totp_last_step: Some(step),
        updated_at: now,
        ..s.credentials.clone()
    };
    state
        .store
        .put_credentials(&creds, &draft(state, s, "person.2fa_enabled", origin))
        .await?;
    let codes = new_codes(state, s, origin).await?;
    state
        .store
        .update_session(&s.session.hash, SessionStage::Full, now)
        .await?;
    Ok(codes)
}

async fn new_codes(
    state: &AppState,
    s: &Signed,
    origin: &Origin,
) -> Result<Vec<String>, SignInError> {
    let (codes, hashes) = recovery::generate();
    let audit = audit_codes(state, &s.user, origin, codes.len());
    state
        .store
        .replace_recovery_codes(s.user.workspace_id, s.user.id, &hashes, &audit)
        .await?;
    Ok(codes)
}

/// New recovery codes, for a current TOTP code.
pub async fn regenerate_codes(
    state: &AppState,
    s: &Signed,
    code: &str,
    origin: &Origin,
) -> Result<Vec<String>, SignInError> {
    if !guarded_code(state, s, code, origin).await? {
        return Err(SignInError::BadCode);
    }
    new_codes(state, s, origin).await
}

/// Turns 2FA off, for a current code, unless the workspace requires it; the person's other
/// sessions end.
pub async fn disable(
    state: &AppState,
    s: &Signed,
    code: &str,
    origin: &Origin,
) -> Result<(), SignInError> {
    if s.workspace.settings.require_2fa {
        return Err(SignInError::Invalid(DomainError::rule(
            "2FA_REQUIRED",
            "your workspace requires two-factor authentication: it cannot be turned off",
        )));
    }
    if !guarded_code(state, s, code, origin).await? {
        return Err(SignInError::BadCode);
    }
    let creds = Credentials {
        totp_secret: None,
        totp_enabled_at: None,
        updated_at: state.now(),
        ..s.credentials.clone()
    };
    state
        .store
        .put_credentials(&creds, &draft(state, s, "person.2fa_disabled", origin))
        .await?;
    state
        .store
        .replace_recovery_codes(
            s.user.workspace_id,
            s.user.id,
            &[],
            &audit_codes(state, &s.user, origin, 0),
        )
        .await?;
    // Sessions elsewhere were opened with the second factor now gone: they end, this one stays.
    for other in state
        .store
        .list_sessions(s.user.workspace_id, s.user.id)
        .await?
    {
        if other.hash != s.session.hash {
            state
                .store
                .delete_session(s.user.workspace_id, s.user.id, &other.hash)
                .await?;
        }
    }
    Ok(())
}

/// Leaves enrolment for later, where the workspace does not require 2FA.
pub async fn skip(state: &AppState, s: &Signed) -> Result<bool, SignInError> {
    // Only enrolment may be put off: a session waiting for its second factor must give it.
    if s.session.stage != SessionStage::MustEnrol || s.workspace.settings.require_2fa {
        return Ok(false);
    }
    state
        .store
        .update_session(&s.session.hash, SessionStage::Full, state.now())
        .await?;
    Ok(true)
}
