//! The sign-in flows: email and password, then the second factor; the check every dashboard
//! request makes of its session; sign-out. Each success and failure of an account that exists
//! is audited in that account's workspace (an unknown address has no workspace to audit in:
//! it is logged and counted by the guard).

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use keyward_core::audit::AuditDraft;
use keyward_core::model::{UserKind, Workspace};
use keyward_core::ratelimit::to_nanos;
use keyward_core::{User, UserId, WorkspaceId};
use keyward_store::{Credentials, Session, SessionStage};

use super::{password, person, recovery, session, totp};
use crate::error::ApiError;
use crate::state::AppState;

/// Why a sign-in step did not go through. The messages are what the page shows.
#[derive(Debug)]
pub enum SignInError {
    /// Wrong address or password (one message for both: no account enumeration).
    BadCredentials,
    /// Several workspaces know this address and password: the person must pick one.
    ChooseWorkspace(Vec<(WorkspaceId, String)>),
    /// Wrong second-factor or recovery code.
    BadCode,
    /// Too many failures: wait this many seconds.
    Throttled(u64),
    /// The workspace's allowlist does not include the address.
    IpNotAllowed,
    /// The invitation link is unknown, used or expired.
    InvitationInvalid,
    /// A field is wrong (password policy).
    Invalid(keyward_core::DomainError),
    /// Storage or another server fault.
    Server(ApiError),
}

impl From<ApiError> for SignInError {
    fn from(e: ApiError) -> Self {
        SignInError::Server(e)
    }
}

impl From<keyward_store::StoreError> for SignInError {
    fn from(e: keyward_store::StoreError) -> Self {
        SignInError::Server(e.into())
    }
}

impl SignInError {
    /// The sentence shown to the person.
    pub fn message(&self) -> String {
        match self {
            SignInError::BadCredentials => "The e-mail address or the password is wrong.".into(),
            SignInError::ChooseWorkspace(_) => {
                "This address has accounts in several workspaces: choose one.".into()
            }
            SignInError::BadCode => "That code is not right (or was already used).".into(),
            SignInError::Throttled(s) => {
                format!("Too many failed attempts: try again in {s} seconds.")
            }
            SignInError::IpNotAllowed => {
                "Your workspace does not allow sign-in from this network address.".into()
            }
            SignInError::InvitationInvalid => {
                "This invitation link is not valid: it was used, replaced or has expired. \
                 Ask your administrator for a new one."
                    .into()
            }
            SignInError::Invalid(e) => e.message.clone(),
            SignInError::Server(_) => "Something went wrong on our side; try again.".into(),
        }
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            SignInError::BadCredentials => "INVALID_CREDENTIALS",
            SignInError::ChooseWorkspace(_) => "WORKSPACE_REQUIRED",
            SignInError::BadCode => "INVALID_CODE",
            SignInError::Throttled(_) => "SIGN_IN_THROTTLED",
            SignInError::IpNotAllowed => "IP_NOT_ALLOWED",
            SignInError::InvitationInvalid => "INVITATION_INVALID",
            SignInError::Invalid(e) => e.code,
            SignInError::Server(_) => "INTERNAL",
        }
    }
}

/// Where a request comes from.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// Client address (by the hardened rules).
    pub ip: Option<IpAddr>,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// The device cookie's value, if the browser sent one.
    pub device: Option<String>,
}

/// A new session: the cookie's secret (to set once) and the stored row.
#[derive(Debug)]
pub struct Started {
    /// The cookie value.
    pub secret: String,
    /// The session.
    pub session: Session,
}

fn audit(
    state: &AppState,
    user: &User,
    action: &str,
    ip: Option<IpAddr>,
    detail: serde_json::Value,
) -> AuditDraft {
    AuditDraft::new(
        user.workspace_id,
        state.now(),
        person(user.id),
        action,
        "user",
        user.id.to_string(),
    )
    .ip(ip)
    .after(&detail)
}

async fn audit_now(state: &AppState, draft: AuditDraft) {
    if let Err(e) = state.store.append_audit(&[draft]).await {
        tracing::error!(error = %e, "could not audit a sign-in event");
    }
}

/// Whether the workspace's allowlist ("applies to all UI and API access") and the person's
/// human role's allowlist both let `ip` in.
pub async fn allowed_from(
    state: &AppState,
    ws: &Workspace,
    user: &User,
    ip: Option<IpAddr>,
) -> Result<bool, keyward_store::StoreError> {
    let inside = |list: &keyward_core::ip::IpAllowlist| {
        list.is_empty() || ip.is_some_and(|ip| list.contains(ip))
    };
    if !inside(&ws.settings.ip_allowlist) {
        return Ok(false);
    }
    // The person's human role may narrow it further, as a token's role does for the token.
    let role = match user.role_id {
        Some(id) => state.store.role(ws.id, id).await?,
        None => None,
    };
    Ok(role
        .filter(|r| r.kind == keyward_core::model::RoleKind::Human)
        .is_none_or(|r| inside(&r.ip_allowlist)))
}

async fn workspace(state: &AppState, id: WorkspaceId) -> Result<Workspace, SignInError> {
    state
        .store
        .workspace(id)
        .await?
        .ok_or(SignInError::Server(ApiError::NotFound("workspace")))
}

/// Step one: e-mail and password (and a workspace, when the address has several).
pub async fn sign_in(
    state: &AppState,
    email: &str,
    password_typed: &str,
    chosen: Option<WorkspaceId>,
    origin: &Origin,
) -> Result<Started, SignInError> {
    let now_ns = to_nanos(state.now());
    let guard = &state.people.guard;
    let email = email.trim();
    let mut people = state.store.people_by_email(email).await?;
    people.retain(|(u, _)| chosen.is_none_or(|ws| u.workspace_id == ws));
    people.truncate(5);
    let device_of = |u: &User| {
        origin
            .device
            .as_deref()
            .is_some_and(|d| guard.is_device_of(d, u.id))
    };
    // The guard is asked before any hash is computed.
    if let Err(wait) = guard.admit(None, origin.ip, false, now_ns).await {
        return Err(SignInError::Throttled(wait));
    }
    if people.is_empty() {
        let nobody = guard.unknown_account(email);
        if let Err(wait) = guard.admit_account(nobody, origin.ip, false, now_ns).await {
            return Err(SignInError::Throttled(wait));
        }
    }
    for (u, _) in &people {
        if let Err(wait) = guard
            .admit_account(u.id, origin.ip, device_of(u), now_ns)
            .await
        {
            audit_now(
                state,
                audit(
                    state,
                    u,
                    "person.sign_in_refused",
                    origin.ip,
                    serde_json::json!({"reason": "throttled"}),
                ),
            )
            .await;
            return Err(SignInError::Throttled(wait));
        }
    }
    let mut matching: Vec<(User, Credentials)> = Vec::new();
    for (u, c) in people.iter() {
        if let Some(h) = &c.password_hash {
            if password::verify_async(password_typed, h).await {
                matching.push((u.clone(), c.clone()));
            }
        }
    }
    if people.iter().all(|(_, c)| c.password_hash.is_none()) {
        password::verify_nothing_async(password_typed).await;
    }
    if matching.is_empty() {
        guard.failed(None, origin.ip, false, now_ns).await;
        if people.is_empty() {
            let nobody = guard.unknown_account(email);
            guard.failed_account(nobody, origin.ip, false, now_ns).await;
        }
        for (u, _) in &people {
            guard
                .failed_account(u.id, origin.ip, device_of(u), now_ns)
                .await;
            audit_now(
                state,
                audit(
                    state,
                    u,
                    "person.sign_in_failed",
                    origin.ip,
                    serde_json::json!({"reason": "password"}),
                ),
            )
            .await;
        }
        tracing::info!(ip = ?origin.ip, known = !people.is_empty(), "sign-in failed");
        return Err(SignInError::BadCredentials);
    }
    if matching.len() > 1 {
        let mut choices = Vec::new();
        for (u, _) in &matching {
            let ws = workspace(state, u.workspace_id).await?;
            choices.push((ws.id, ws.name));
        }
        return Err(SignInError::ChooseWorkspace(choices));
    }
    let Some((user, creds)) = matching.pop() else {
        return Err(SignInError::BadCredentials);
    };
    let ws = workspace(state, user.workspace_id).await?;
    if user.disabled || user.kind != UserKind::Human {
        audit_now(
            state,
            audit(
                state,
                &user,
                "person.sign_in_refused",
                origin.ip,
                serde_json::json!({"reason": "disabled"}),
            ),
        )
        .await;
        return Err(SignInError::BadCredentials);
    }
    if !allowed_from(state, &ws, &user, origin.ip).await? {
        audit_now(
            state,
            audit(
                state,
                &user,
                "person.sign_in_refused",
                origin.ip,
                serde_json::json!({"reason": "ip_not_allowed"}),
            ),
        )
        .await;
        // The same answer as a wrong password, and counted like one: a 403 here would tell
        // a guesser outside the network that the password is right.
        guard.failed(None, origin.ip, false, now_ns).await;
        guard
            .failed_account(user.id, origin.ip, device_of(&user), now_ns)
            .await;
        return Err(SignInError::BadCredentials);
    }
    let stage = if creds.has_2fa() {
        SessionStage::SecondFactor
    } else if ws.settings.require_2fa {
        SessionStage::MustEnrol
    } else {
        SessionStage::Full
    };
    let started = start(state, &user, stage, origin).await?;
    let action = if stage == SessionStage::SecondFactor {
        "person.password_accepted"
    } else {
        "person.signed_in"
    };
    audit_now(
        state,
        audit(
            state,
            &user,
            action,
            origin.ip,
            serde_json::json!({"second_factor": creds.has_2fa()}),
        ),
    )
    .await;
    Ok(started)
}

/// Creates a session for `user` at `stage`.
pub async fn start(
    state: &AppState,
    user: &User,
    stage: SessionStage,
    origin: &Origin,
) -> Result<Started, SignInError> {
    let now = state.now();
    let secret = session::new_secret();
    let s = Session {
        hash: session::hash(&secret),
        workspace_id: user.workspace_id,
        user_id: user.id,
        stage,
        created_at: now,
        last_seen_at: now,
        ip: origin.ip.map(|ip| ip.to_string()),
        user_agent: origin
            .user_agent
            .as_ref()
            .map(|ua| ua.chars().take(200).collect()),
    };
    state.store.create_session(&s).await?;
    Ok(Started { secret, session: s })
}

/// A code asked again of a signed-in person (new recovery codes, turning 2FA off), under the
/// same guard as the second step of sign-in: refused while the account is throttled; a wrong
/// code is counted and audited as `person.code_failed`, so a borrowed session cannot try all
/// million codes.
pub async fn guarded_code(
    state: &AppState,
    current: &Signed,
    code: &str,
    origin: &Origin,
) -> Result<bool, SignInError> {
    let now = state.now();
    let now_ns = to_nanos(now);
    let guard = &state.people.guard;
    let user = &current.user;
    if let Err(wait) = guard.admit(Some(user.id), origin.ip, false, now_ns).await {
        return Err(SignInError::Throttled(wait));
    }
    let ok = check_code(state, user, &current.credentials, code, origin.ip, now).await?;
    if !ok {
        guard.failed(Some(user.id), origin.ip, false, now_ns).await;
        audit_now(
            state,
            audit(
                state,
                user,
                "person.code_failed",
                origin.ip,
                serde_json::json!({"reason": "code"}),
            ),
        )
        .await;
    }
    Ok(ok)
}

/// Step two: a TOTP code, or one of the recovery codes.
pub async fn second_factor(
    state: &AppState,
    current: &Signed,
    code: &str,
    origin: &Origin,
) -> Result<SessionStage, SignInError> {
    let now = state.now();
    let now_ns = to_nanos(now);
    let guard = &state.people.guard;
    let user = &current.user;
    let device = origin
        .device
        .as_deref()
        .is_some_and(|d| guard.is_device_of(d, user.id));
    if let Err(wait) = guard.admit(Some(user.id), origin.ip, device, now_ns).await {
        return Err(SignInError::Throttled(wait));
    }
    let ok = check_code(state, user, &current.credentials, code, origin.ip, now).await?;
    if !ok {
        guard.failed(Some(user.id), origin.ip, device, now_ns).await;
        audit_now(
            state,
            audit(
                state,
                user,
                "person.sign_in_failed",
                origin.ip,
                serde_json::json!({"reason": "second_factor"}),
            ),
        )
        .await;
        return Err(SignInError::BadCode);
    }
    state
        .store
        .update_session(&current.session.hash, SessionStage::Full, now)
        .await?;
    audit_now(
        state,
        audit(
            state,
            user,
            "person.signed_in",
            origin.ip,
            serde_json::json!({"second_factor": true}),
        ),
    )
    .await;
    Ok(SessionStage::Full)
}

/// Checks a TOTP code (once per step) or uses up a recovery code (audited).
pub async fn check_code(
    state: &AppState,
    user: &User,
    creds: &Credentials,
    code: &str,
    ip: Option<IpAddr>,
    now: DateTime<Utc>,
) -> Result<bool, SignInError> {
    let Some(secret) = creds.totp_secret.as_deref().filter(|_| creds.has_2fa()) else {
        return Ok(false);
    };
    if recovery::looks_like(code) {
        let left = state
            .store
            .recovery_codes_left(user.workspace_id, user.id)
            .await?;
        let draft = audit(
            state,
            user,
            "person.recovery_code_used",
            ip,
            serde_json::json!({"left": left.saturating_sub(1)}),
        );
        return Ok(state
            .store
            .use_recovery_code(
                user.workspace_id,
                user.id,
                &recovery::hash(code),
                now,
                &draft,
            )
            .await?);
    }
    match totp::check(secret, code, now) {
        Some(step) => Ok(state
            .store
            .claim_totp_step(user.workspace_id, user.id, step)
            .await?),
        None => Ok(false),
    }
}

/// A live session with the person and workspace it belongs to.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The session (its stage possibly lowered to `MustEnrol` by a policy change).
    pub session: Session,
    /// The person.
    pub user: User,
    /// Their credentials.
    pub credentials: Credentials,
    /// Their workspace.
    pub workspace: Workspace,
}

/// Why a session cookie opens nothing.
#[derive(Debug)]
pub enum SessionRefusal {
    /// No such session, or it timed out, or its person is disabled or gone: sign in again.
    SignedOut,
    /// The workspace's allowlist does not include the address.
    IpNotAllowed,
    /// Storage fault.
    Server(ApiError),
}

/// The session a cookie's secret opens, checked afresh on every request: timeouts, the
/// person (still there, human, enabled), the workspace's allowlist, and the 2FA policy.
pub async fn check_session(
    state: &AppState,
    secret: &str,
    ip: Option<IpAddr>,
) -> Result<Signed, SessionRefusal> {
    let server = |e: keyward_store::StoreError| SessionRefusal::Server(e.into());
    let now = state.now();
    let hash = session::hash(secret);
    let Some(mut s) = state.store.session(&hash).await.map_err(server)? else {
        return Err(SessionRefusal::SignedOut);
    };
    let people = &state.people;
    if session::expired(&s, now, people.idle(), people.absolute()) {
        let _ = state
            .store
            .delete_session(s.workspace_id, s.user_id, &s.hash)
            .await;
        return Err(SessionRefusal::SignedOut);
    }
    let user = state
        .store
        .user(s.workspace_id, s.user_id)
        .await
        .map_err(server)?;
    let Some(user) = user.filter(|u| !u.disabled && u.kind == UserKind::Human) else {
        let _ = state
            .store
            .delete_user_sessions(s.workspace_id, s.user_id)
            .await;
        return Err(SessionRefusal::SignedOut);
    };
    let Some(ws) = state
        .store
        .workspace(s.workspace_id)
        .await
        .map_err(server)?
    else {
        return Err(SessionRefusal::SignedOut);
    };
    if !allowed_from(state, &ws, &user, ip).await.map_err(server)? {
        return Err(SessionRefusal::IpNotAllowed);
    }
    let credentials = state
        .store
        .credentials(ws.id, user.id)
        .await
        .map_err(server)?
        .unwrap_or_else(|| Credentials::empty(&user, now));
    if s.stage == SessionStage::Full && ws.settings.require_2fa && !credentials.has_2fa() {
        s.stage = SessionStage::MustEnrol;
    }
    // Last-seen is written at most once a minute: the idle timeout is in minutes.
    if now - s.last_seen_at >= chrono::Duration::seconds(60) {
        state
            .store
            .update_session(&s.hash, s.stage, now)
            .await
            .map_err(server)?;
        s.last_seen_at = now;
    }
    Ok(Signed {
        session: s,
        user,
        credentials,
        workspace: ws,
    })
}

/// Ends the current session (sign-out), audited.
pub async fn sign_out(
    state: &AppState,
    current: &Signed,
    ip: Option<IpAddr>,
) -> Result<(), ApiError> {
    let s = &current.session;
    state
        .store
        .delete_session(s.workspace_id, s.user_id, &s.hash)
        .await?;
    audit_now(
        state,
        audit(
            state,
            &current.user,
            "person.signed_out",
            ip,
            serde_json::json!({}),
        ),
    )
    .await;
    Ok(())
}

/// Ends one of the person's own sessions by its id (the hash), audited.
pub async fn end_session(
    state: &AppState,
    current: &Signed,
    hash: &str,
    ip: Option<IpAddr>,
) -> Result<bool, ApiError> {
    let u = &current.user;
    let ended = state
        .store
        .delete_session(u.workspace_id, u.id, hash)
        .await?;
    if ended {
        audit_now(
            state,
            audit(
                state,
                u,
                "person.session_ended",
                ip,
                serde_json::json!({"session": &hash[..12.min(hash.len())]}),
            ),
        )
        .await;
    }
    Ok(ended)
}

/// Ends every session of a person (they were disabled, or their second factor was reset).
pub async fn end_all(state: &AppState, ws: WorkspaceId, user: UserId) -> Result<u64, ApiError> {
    Ok(state.store.delete_user_sessions(ws, user).await?)
}
