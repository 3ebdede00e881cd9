//! The capability traits. Each is small and async; the server holds one `Arc<dyn Store>`.
//! Every read and write of a workspace's objects takes the workspace id, so one workspace can
//! never reach another's rows through the store. Every mutation takes the [`AuditDraft`] of
//! the change and appends it to the audit trail in the same transaction: a change is never
//! stored without its event, nor an event without its change.
//!
//! Changes are conditional (optimistic concurrency): an update takes the [`Versioned`] copy it
//! was computed from and is refused with [`CONCURRENT_UPDATE`] when the row changed since, so
//! a read-modify-write never writes back values a concurrent change replaced (a PATCH that
//! read a token before its rotation would otherwise restore the rotated-away expiry).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keyward_core::audit::AuditDraft;
use keyward_core::model::ShownStatus;
use keyward_core::{
    CatalogueEntry, Permission, Role, RoleId, Token, TokenHash, TokenId, User, UserId, UserKind,
    Workspace, WorkspaceId,
};

use crate::{PageRequest, Result};

/// The conflict code of a conditional update whose row changed since it was read: read it
/// again, redo the change and retry.
pub const CONCURRENT_UPDATE: &str = "CONCURRENT_UPDATE";

/// A stored object with the version of its row. Every change of the row increments the
/// version; an update names the version it read and matches no row once it is stale.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    /// The object as read.
    pub value: T,
    /// The row's version when it was read.
    pub version: i64,
}

/// A new workspace with its first admin: created together or not at all.
#[derive(Debug, Clone)]
pub struct WorkspaceBootstrap {
    /// The workspace.
    pub workspace: Workspace,
    /// Its admin role.
    pub role: Role,
    /// Further roles the workspace starts with (stored after the admin role, before the user,
    /// so the user may hold one of them).
    pub extra_roles: Vec<Role>,
    /// Its admin service user.
    pub user: User,
    /// The admin user's first token.
    pub token: Token,
}

/// Workspaces.
#[async_trait]
pub trait WorkspaceStore: Send + Sync {
    /// Creates a workspace with its admin role, further roles, user and token, in one
    /// transaction.
    async fn bootstrap_workspace(&self, b: &WorkspaceBootstrap, audit: &AuditDraft) -> Result<()>;
    /// One workspace.
    async fn workspace(&self, id: WorkspaceId) -> Result<Option<Workspace>>;
    /// All workspaces, by creation.
    async fn list_workspaces(&self, page: &PageRequest) -> Result<Vec<Workspace>>;
    /// One workspace with its row version, to change it.
    async fn workspace_versioned(&self, id: WorkspaceId) -> Result<Option<Versioned<Workspace>>>;
    /// Replaces a workspace's name and settings, if its row is still at `ws.version`
    /// ([`CONCURRENT_UPDATE`] otherwise).
    async fn update_workspace(&self, ws: &Versioned<Workspace>, audit: &AuditDraft) -> Result<()>;
    /// How many workspaces exist (zero on a fresh store).
    async fn count_workspaces(&self) -> Result<u64>;
}

/// Which users to list.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Only this kind.
    pub kind: Option<UserKind>,
    /// Only disabled (`true`) or enabled (`false`) users.
    pub disabled: Option<bool>,
    /// Only this user (for user-scoped callers).
    pub id: Option<UserId>,
}

/// Users.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Inserts a user. `EMAIL_TAKEN` when the e-mail is in use in the workspace.
    async fn create_user(&self, user: &User, audit: &AuditDraft) -> Result<()>;
    /// One user of a workspace.
    async fn user(&self, ws: WorkspaceId, id: UserId) -> Result<Option<User>>;
    /// A page of a workspace's users.
    async fn list_users(
        &self,
        ws: WorkspaceId,
        filter: &UserFilter,
        page: &PageRequest,
    ) -> Result<Vec<User>>;
    /// One user with its row version, to change it.
    async fn user_versioned(&self, ws: WorkspaceId, id: UserId) -> Result<Option<Versioned<User>>>;
    /// Replaces a user's mutable fields, if its row is still at `user.version`
    /// ([`CONCURRENT_UPDATE`] otherwise).
    async fn update_user(&self, user: &Versioned<User>, audit: &AuditDraft) -> Result<()>;
    /// Deletes a user. `USER_HAS_TOKENS` while it owns tokens.
    async fn delete_user(&self, ws: WorkspaceId, id: UserId, audit: &AuditDraft) -> Result<()>;
}

/// Roles.
#[async_trait]
pub trait RoleStore: Send + Sync {
    /// Inserts a role. `NAME_TAKEN` when the name is in use in the workspace.
    async fn create_role(&self, role: &Role, audit: &AuditDraft) -> Result<()>;
    /// One role of a workspace.
    async fn role(&self, ws: WorkspaceId, id: RoleId) -> Result<Option<Role>>;
    /// A page of a workspace's roles.
    async fn list_roles(&self, ws: WorkspaceId, page: &PageRequest) -> Result<Vec<Role>>;
    /// One role with its row version, to change it.
    async fn role_versioned(&self, ws: WorkspaceId, id: RoleId) -> Result<Option<Versioned<Role>>>;
    /// Replaces a role's mutable fields, if its row is still at `role.version`
    /// ([`CONCURRENT_UPDATE`] otherwise).
    async fn update_role(&self, role: &Versioned<Role>, audit: &AuditDraft) -> Result<()>;
    /// Deletes a role. `ROLE_IN_USE` while a user or token refers to it.
    async fn delete_role(&self, ws: WorkspaceId, id: RoleId, audit: &AuditDraft) -> Result<()>;
}

/// The permission catalogue (the workspace's own entries; built-ins are added by
/// [`full_catalogue`]).
#[async_trait]
pub trait CatalogueStore: Send + Sync {
    /// The workspace's own entries, sorted.
    async fn catalogue(&self, ws: WorkspaceId) -> Result<Vec<CatalogueEntry>>;
    /// Adds an entry or changes its description. Returns whether it was new.
    async fn put_permission(
        &self,
        ws: WorkspaceId,
        entry: &CatalogueEntry,
        audit: &AuditDraft,
    ) -> Result<bool>;
    /// Removes an entry.
    async fn delete_permission(
        &self,
        ws: WorkspaceId,
        permission: &Permission,
        audit: &AuditDraft,
    ) -> Result<()>;
}

/// Which tokens to list.
#[derive(Debug, Clone)]
pub struct TokenFilter {
    /// Only tokens of this owner.
    pub owner_id: Option<UserId>,
    /// Only tokens with this own role.
    pub role_id: Option<RoleId>,
    /// Only tokens shown with this status as of `now`.
    pub status: Option<ShownStatus>,
    /// The instant `status` is judged at.
    pub now: DateTime<Utc>,
}

/// Tokens.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Inserts a token.
    async fn create_token(&self, token: &Token, audit: &AuditDraft) -> Result<()>;
    /// One token of a workspace.
    async fn token(&self, ws: WorkspaceId, id: TokenId) -> Result<Option<Token>>;
    /// The token with this secret hash, in any workspace.
    async fn token_by_hash(&self, hash: &TokenHash) -> Result<Option<Token>>;
    /// A page of a workspace's tokens.
    async fn list_tokens(
        &self,
        ws: WorkspaceId,
        filter: &TokenFilter,
        page: &PageRequest,
    ) -> Result<Vec<Token>>;
    /// One token with its row version, to change it.
    async fn token_versioned(
        &self,
        ws: WorkspaceId,
        id: TokenId,
    ) -> Result<Option<Versioned<Token>>>;
    /// Replaces a token's mutable fields, if its row is still at `token.version`
    /// ([`CONCURRENT_UPDATE`] otherwise). Revocation is final: once stored as revoked, a
    /// token stays revoked (with its first `revoked_at`) whatever a later update says.
    async fn update_token(&self, token: &Versioned<Token>, audit: &AuditDraft) -> Result<()>;
    /// Revokes a token at `at`, touching nothing else (so it needs no version and never
    /// undoes a concurrent change). Returns whether it was revoked now; `false` (and the audit
    /// event is not stored) when it already was.
    async fn revoke_token(
        &self,
        ws: WorkspaceId,
        id: TokenId,
        at: DateTime<Utc>,
        audit: &AuditDraft,
    ) -> Result<bool>;
    /// Replaces `old` by `new` in one transaction: stores `old`'s expiry (shortened to the end
    /// of the grace period), if its row is still at `old.version`, and inserts `new`.
    /// `ALREADY_ROTATED` when `old` was replaced before (a family never forks);
    /// `TOKEN_REVOKED` when `old` was revoked meanwhile; [`CONCURRENT_UPDATE`] when it
    /// changed otherwise.
    async fn rotate_token(
        &self,
        old: &Versioned<Token>,
        new: &Token,
        audit: &AuditDraft,
    ) -> Result<()>;
    /// The tokens of a rotation family (its first token and every replacement), in rotation
    /// order.
    async fn token_family(&self, ws: WorkspaceId, family: TokenId) -> Result<Vec<Token>>;
    /// Deletes a token.
    async fn delete_token(&self, ws: WorkspaceId, id: TokenId, audit: &AuditDraft) -> Result<()>;
}

/// What the decision needs about one token, fetched together on a cache miss.
#[derive(Debug, Clone, PartialEq)]
pub struct VerificationRecord {
    /// The token's workspace (allowlist, internal networks, default rate limit).
    pub workspace: Workspace,
    /// The token.
    pub token: Token,
    /// Its owner.
    pub owner: User,
    /// The role it acts with: its own, else its owner's.
    pub role: Option<Role>,
    /// The workspace's full catalogue (built-ins included).
    pub catalogue: Vec<CatalogueEntry>,
}

/// The whole store.
#[async_trait]
pub trait Store:
    WorkspaceStore
    + UserStore
    + RoleStore
    + CatalogueStore
    + TokenStore
    + crate::UsageStore
    + crate::AuditStore
    + crate::EventStore
    + crate::PeopleStore
    + crate::ChangeRequestStore
    + Send
    + Sync
{
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Checks the database answers.
    async fn ping(&self) -> Result<()>;

    /// Whether the database is believed reachable: `false` while PostgreSQL's circuit breaker
    /// is open (every operation then fails at once with `Unavailable`). Always `true` for
    /// SQLite.
    fn reachable(&self) -> bool {
        true
    }

    /// How many times the circuit breaker has opened since start (0 for SQLite).
    fn circuit_trips(&self) -> u64 {
        0
    }

    /// A feed of the changes other nodes make, when several nodes can share this store
    /// (PostgreSQL); `None` for SQLite. Each call opens a new listening connection.
    async fn change_feed(&self) -> Result<Option<Box<dyn crate::feed::ChangeFeed>>> {
        Ok(None)
    }

    /// Everything needed to decide on the token with `hash`, or `None` if there is none. Both
    /// SQL backends answer it with one statement; this default composes the separate reads
    /// ([`load_verification_by_parts`]).
    async fn load_verification(&self, hash: &TokenHash) -> Result<Option<VerificationRecord>> {
        load_verification_by_parts(self, hash).await
    }
}

/// `load_verification` composed of five reads (token, owner, role, catalogue, workspace): the
/// trait's default, and the reference the SQL backends' one-statement version is tested and
/// measured against.
#[doc(hidden)]
pub async fn load_verification_by_parts<S: Store + ?Sized>(
    store: &S,
    hash: &TokenHash,
) -> Result<Option<VerificationRecord>> {
    let Some(token) = store.token_by_hash(hash).await? else {
        return Ok(None);
    };
    let Some(owner) = store.user(token.workspace_id, token.owner_id).await? else {
        return Err(crate::StoreError::Internal(format!(
            "token {} has no owner",
            token.id
        )));
    };
    let role = match token.role_id.or(owner.role_id) {
        Some(id) => store.role(token.workspace_id, id).await?,
        None => None,
    };
    let catalogue = full_catalogue(store.catalogue(token.workspace_id).await?);
    let Some(workspace) = store.workspace(token.workspace_id).await? else {
        return Err(crate::StoreError::Internal(format!(
            "token {} has no workspace",
            token.id
        )));
    };
    Ok(Some(VerificationRecord {
        workspace,
        token,
        owner,
        role,
        catalogue,
    }))
}

/// The built-in entries followed by a workspace's own.
pub fn full_catalogue(own: Vec<CatalogueEntry>) -> Vec<CatalogueEntry> {
    let mut all = keyward_core::permission::builtin_catalogue();
    all.extend(own);
    all
}
