//! What the cache benches share: many distinct, realistic compiled tokens, made without a
//! store. A token acts with its owner's api role (8 patterns, 10 tokens per role), has a
//! narrowing of 2 patterns, 2 metadata keys, an expiry and no allowlist; each user owns 2
//! tokens; the roles are spread over 100 workspaces with a 12-permission catalogue.

use std::sync::Arc;

use chrono::{Duration, Utc};
use keyward_core::model::{RoleKind, Scope, TokenStatus, UserKind, Workspace};
use keyward_core::{
    CatalogueEntry, CompiledToken, Permission, PermissionPattern, Role, RoleId, Token, TokenHash,
    TokenId, User, UserId, WorkspaceId,
};
use keyward_gate::cache::{CachedToken, TokenCache};
use rand_core::{impls, Error, RngCore};

/// Tokens acting with one role.
pub const TOKENS_PER_ROLE: usize = 10;
/// Tokens one user owns.
pub const TOKENS_PER_USER: usize = 2;
/// Workspaces the roles are spread over.
pub const WORKSPACES: usize = 100;

/// A small deterministic generator (xorshift64*), so runs cache the same tokens.
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }
}

impl RngCore for Rng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        impls::fill_bytes_via_next(self, dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// One cached token and what it belongs to.
#[allow(dead_code)] // the memory bench needs only the hash and the token
pub struct Made {
    /// Its secret's hash.
    pub hash: TokenHash,
    /// Its compiled form, as the verifier caches it.
    pub token: Arc<CachedToken>,
    /// Its role.
    pub role: RoleId,
    /// Its workspace.
    pub workspace: WorkspaceId,
}

/// Makes token after token.
pub struct Factory {
    rng: Rng,
    made: usize,
    workspaces: Vec<Workspace>,
    catalogue: Vec<CatalogueEntry>,
    role: Role,
    user: User,
    token: Token,
}

fn pattern(s: &str) -> PermissionPattern {
    PermissionPattern::parse(s).unwrap_or_else(|_| unreachable!("valid pattern {s}"))
}

impl Factory {
    /// Ready to make tokens.
    pub fn new() -> Self {
        let mut rng = Rng::new(0x006b_6579_7761_7264);
        let now = Utc::now();
        let workspaces = (0..WORKSPACES)
            .map(|i| Workspace {
                id: WorkspaceId::random(&mut rng),
                name: format!("Workspace {i}"),
                operator: false,
                settings: Default::default(),
                created_at: now,
                updated_at: now,
            })
            .collect();
        let catalogue = [
            "orders:read",
            "orders:write",
            "orders:refund",
            "invoices:read",
            "invoices:write",
            "customers:read",
            "customers:write",
            "reports:read",
            "webhooks:read",
            "webhooks:write",
            "billing.cards:read",
            "billing.cards:write",
        ]
        .iter()
        .map(|p| CatalogueEntry {
            permission: Permission::parse(p).unwrap_or_else(|_| unreachable!("valid {p}")),
            description: format!("Allows {p}"),
            builtin: false,
        })
        .collect();
        let role = Role {
            id: RoleId::random(&mut rng),
            workspace_id: WorkspaceId::random(&mut rng),
            name: "Payments backend".into(),
            description: "What the payments services may do".into(),
            kind: RoleKind::Api,
            scope: Scope::Workspace,
            permissions: [
                "orders:read",
                "orders:write",
                "orders:refund",
                "invoices:*",
                "customers:read",
                "reports:read",
                "webhooks:*",
                "billing.*:read",
            ]
            .iter()
            .map(|p| pattern(p))
            .collect(),
            ip_allowlist: Default::default(),
            rate_limit_per_minute: None,
            rate_limit_per: keyward_core::RateLimitPer::Token,
            created_at: now,
            updated_at: now,
        };
        let user = User {
            id: UserId::random(&mut rng),
            workspace_id: role.workspace_id,
            kind: UserKind::Service,
            name: "payments-service".into(),
            email: None,
            role_id: Some(role.id),
            disabled: false,
            created_at: now,
            updated_at: now,
        };
        let token = Token {
            id: TokenId::random(&mut rng),
            workspace_id: role.workspace_id,
            owner_id: user.id,
            role_id: None,
            permissions: Some(vec![pattern("orders:read"), pattern("invoices:*")]),
            name: String::new(),
            metadata: serde_json::json!({"team": "payments", "env": "production"}),
            status: TokenStatus::Active,
            hash: TokenHash([0; 32]),
            start: "kw_0000000".into(),
            not_before: None,
            expires_at: Some(now + Duration::days(90)),
            ip_allowlist: Default::default(),
            internal_only: false,
            request_log: false,
            rate_limit_per_minute: None,
            rate_limit_per: keyward_core::RateLimitPer::Token,
            created_at: now,
            updated_at: now,
            revoked_at: None,
            family_id: None,
            rotated_from: None,
            created_by: None,
        };
        Self {
            rng,
            made: 0,
            workspaces,
            catalogue,
            role,
            user,
            token,
        }
    }

    /// The next token: a new role every [`TOKENS_PER_ROLE`], a new owner every
    /// [`TOKENS_PER_USER`], compiled as the verifier compiles a loaded token.
    pub fn next(&mut self, cache: &TokenCache) -> Made {
        let i = self.made;
        self.made += 1;
        if i.is_multiple_of(TOKENS_PER_ROLE) {
            let ws = &self.workspaces[(i / TOKENS_PER_ROLE) % WORKSPACES];
            self.role.id = RoleId::random(&mut self.rng);
            self.role.workspace_id = ws.id;
        }
        if i.is_multiple_of(TOKENS_PER_USER) {
            self.user.id = UserId::random(&mut self.rng);
            self.user.workspace_id = self.role.workspace_id;
            self.user.role_id = Some(self.role.id);
        }
        let mut hash = [0u8; 32];
        self.rng.fill_bytes(&mut hash);
        self.token.id = TokenId::random(&mut self.rng);
        self.token.workspace_id = self.role.workspace_id;
        self.token.owner_id = self.user.id;
        self.token.hash = TokenHash(hash);
        self.token.name = format!("deploy-bot-{i:07}");
        let ws = &self.workspaces[(i / TOKENS_PER_ROLE) % WORKSPACES];
        let compiled = CompiledToken::compile(
            &self.token,
            ws,
            &self.user,
            Some(&self.role),
            &self.catalogue,
        );
        let token = cached(cache, compiled);
        Made {
            hash: TokenHash(hash),
            token,
            role: self.role.id,
            workspace: ws.id,
        }
    }
}

/// The cached form, made as the verifier makes it.
fn cached(cache: &TokenCache, compiled: CompiledToken) -> Arc<CachedToken> {
    cache
        .cached(compiled)
        .unwrap_or_else(|_| unreachable!("a valid quota"))
}
