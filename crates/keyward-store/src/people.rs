//! People: what lets a human user sign in to the dashboard. Part of [`crate::Store`].
//!
//! Four tables: `credentials` (one row per person: the Argon2id password hash in PHC form and
//! the TOTP secret), `recovery_codes` (hashes of one-time codes), `invitations` (one-time links
//! that set the password, stored by the SHA-256 of their secret) and `sessions` (server-side
//! dashboard sessions, stored by the SHA-256 of the cookie's secret). No secret is stored in
//! the clear: a leaked database holds no usable password, code, link or cookie. The TOTP secret
//! is the exception RFC 6238 forces (the server must compute the codes).
//!
//! Every change a person makes to their own credentials takes its [`AuditDraft`] and appends it
//! in the same transaction, as the other stores do.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keyward_core::audit::AuditDraft;
use keyward_core::{User, UserId, WorkspaceId};

use crate::Result;

/// A person's sign-in secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The person.
    pub user_id: UserId,
    /// Their workspace.
    pub workspace_id: WorkspaceId,
    /// Argon2id hash in PHC string form; `None` until an invitation is accepted.
    pub password_hash: Option<String>,
    /// The TOTP secret (base32): while enrolment is pending as well as once it is confirmed.
    pub totp_secret: Option<String>,
    /// When enrolment was confirmed with a correct code; `None` while 2FA is off or pending.
    pub totp_enabled_at: Option<DateTime<Utc>>,
    /// The last TOTP time step accepted, so a code is never accepted twice.
    pub totp_last_step: Option<i64>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl Credentials {
    /// Empty credentials for `user`.
    pub fn empty(user: &User, at: DateTime<Utc>) -> Self {
        Self {
            user_id: user.id,
            workspace_id: user.workspace_id,
            password_hash: None,
            totp_secret: None,
            totp_enabled_at: None,
            totp_last_step: None,
            updated_at: at,
        }
    }

    /// Whether two-factor authentication is on.
    pub fn has_2fa(&self) -> bool {
        self.totp_enabled_at.is_some() && self.totp_secret.is_some()
    }
}

/// A one-time link that lets a person set their password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// SHA-256 of the link's secret, hex.
    pub hash: String,
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// The person invited.
    pub user_id: UserId,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Unusable from then on.
    pub expires_at: DateTime<Utc>,
    /// When it was used; `None` while unused.
    pub used_at: Option<DateTime<Utc>>,
}

/// How far a session has got through sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionStage {
    /// The password was right; the TOTP code (or a recovery code) is still owed.
    SecondFactor,
    /// Signed in, but the workspace requires 2FA and the person has none: only enrolment is
    /// reachable.
    MustEnrol,
    /// Fully signed in.
    Full,
}

impl SessionStage {
    /// The stored spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            SessionStage::SecondFactor => "second_factor",
            SessionStage::MustEnrol => "must_enrol",
            SessionStage::Full => "full",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "second_factor" => Some(SessionStage::SecondFactor),
            "must_enrol" => Some(SessionStage::MustEnrol),
            "full" => Some(SessionStage::Full),
            _ => None,
        }
    }
}

/// A dashboard session, server-side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 of the cookie's secret, hex. Also how a person names a session to end it (it
    /// cannot be turned back into the cookie).
    pub hash: String,
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// The person.
    pub user_id: UserId,
    /// Sign-in progress.
    pub stage: SessionStage,
    /// Created (the absolute timeout counts from here).
    pub created_at: DateTime<Utc>,
    /// Last request (the idle timeout counts from here).
    pub last_seen_at: DateTime<Utc>,
    /// The address it signed in from.
    pub ip: Option<String>,
    /// The browser's User-Agent at sign-in, cut to 200 characters.
    pub user_agent: Option<String>,
}

/// Human users' credentials, invitations and sessions.
#[async_trait]
pub trait PeopleStore: Send + Sync {
    /// The human users with this e-mail address, in any workspace, with their credentials
    /// (empty ones, as of the user's creation, when they have none yet), by creation. E-mail
    /// addresses compare case-insensitively (by their Unicode lower case; the server stores
    /// them lower-cased). Disabled users are included: refusing them is the caller's call.
    async fn people_by_email(&self, email: &str) -> Result<Vec<(User, Credentials)>>;
    /// One person's credentials, if they have any.
    async fn credentials(&self, ws: WorkspaceId, user: UserId) -> Result<Option<Credentials>>;
    /// Inserts or replaces a person's credentials, appending `audit`. `NotFound` when the
    /// user is not one of `c.workspace_id`'s. The TOTP step never goes back: the later of the
    /// stored and the given step is kept, so a write computed from a read older than a
    /// [`claim_totp_step`](Self::claim_totp_step) cannot make a used code acceptable again.
    async fn put_credentials(&self, c: &Credentials, audit: &AuditDraft) -> Result<()>;
    /// Records `step` as the last accepted TOTP step, if it is later than the stored one.
    /// Returns whether it was (a `false` means the code was already used: refuse it; also
    /// `false` when the person has no credentials). One conditional update, so of two
    /// concurrent claims of one step exactly one wins.
    async fn claim_totp_step(&self, ws: WorkspaceId, user: UserId, step: i64) -> Result<bool>;

    /// Replaces the person's recovery codes (used ones included) by these hashes, appending
    /// `audit`. `NotFound` when the user is not one of `ws`'s.
    async fn replace_recovery_codes(
        &self,
        ws: WorkspaceId,
        user: UserId,
        hashes: &[String],
        audit: &AuditDraft,
    ) -> Result<()>;
    /// Marks the unused code with this hash used at `at`, appending `audit`. Returns whether
    /// there was such a code (no event is stored otherwise). One conditional update, so a
    /// code is used once however many requests race for it.
    async fn use_recovery_code(
        &self,
        ws: WorkspaceId,
        user: UserId,
        hash: &str,
        at: DateTime<Utc>,
        audit: &AuditDraft,
    ) -> Result<bool>;
    /// How many unused recovery codes the person has.
    async fn recovery_codes_left(&self, ws: WorkspaceId, user: UserId) -> Result<u32>;

    /// Stores an invitation, deleting the person's earlier unused ones (so their links stop
    /// working), appending `audit`, in one transaction. `NotFound` when the user is not one of
    /// `inv.workspace_id`'s.
    async fn create_invitation(&self, inv: &Invitation, audit: &AuditDraft) -> Result<()>;
    /// The invitation with this hash.
    async fn invitation(&self, hash: &str) -> Result<Option<Invitation>>;
    /// Uses the invitation: if it is unused and not expired at `at`, marks it used and stores
    /// `credentials` (replacing any, as [`put_credentials`](Self::put_credentials)), in one
    /// transaction with `audit`. Returns whether it was used now; `false` (and nothing is
    /// stored) when it is unknown, used, expired, or `credentials` are not those of the person
    /// it invites.
    async fn accept_invitation(
        &self,
        hash: &str,
        at: DateTime<Utc>,
        credentials: &Credentials,
        audit: &AuditDraft,
    ) -> Result<bool>;

    /// Inserts a session. `NotFound` when the user is not one of `s.workspace_id`'s.
    async fn create_session(&self, s: &Session) -> Result<()>;
    /// The session with this hash.
    async fn session(&self, hash: &str) -> Result<Option<Session>>;
    /// Sets a session's stage and last-seen time. `NotFound` when it is gone.
    async fn update_session(
        &self,
        hash: &str,
        stage: SessionStage,
        at: DateTime<Utc>,
    ) -> Result<()>;
    /// A person's sessions, newest first.
    async fn list_sessions(&self, ws: WorkspaceId, user: UserId) -> Result<Vec<Session>>;
    /// Ends one of a person's sessions. Returns whether it existed.
    async fn delete_session(&self, ws: WorkspaceId, user: UserId, hash: &str) -> Result<bool>;
    /// Ends all of a person's sessions. Returns how many there were.
    async fn delete_user_sessions(&self, ws: WorkspaceId, user: UserId) -> Result<u64>;
    /// Deletes sessions last seen before `idle_before` or created before `created_before`, in
    /// every workspace. Returns how many there were.
    async fn delete_stale_sessions(
        &self,
        idle_before: DateTime<Utc>,
        created_before: DateTime<Utc>,
    ) -> Result<u64>;
}
