//! The hot path: a presented secret → the decision, through the cache.
//!
//! A source that has failed too often is refused first (the brute-force guard). Format is
//! checked without storage. A cached token is decided with no storage I/O; on a miss the
//! token, its workspace, owner, role and catalogue are loaded once, compiled and cached; a
//! token past its TTL is reloaded, or served as cached while the store cannot be reached
//! (stale-if-error, [`crate::cache`]). Then
//! steps 3–6 (pure), step 7 (the rate limiter, skipped for internal sources), steps 8–9.
//! Security refusals of a found token (internal-only, IP, rate limit, permission) are counted
//! in [`crate::denials`] on the way out.

use std::sync::Arc;

use std::net::IpAddr;

use keyward_core::api::{OwnerRef, RateLimitState, RoleRef, VerifyResponse};
use keyward_core::decision::{
    decide_access, decide_permissions, rate_limit_exempt, Code, CompiledToken, DecisionRequest,
    IpLevel,
};
use keyward_core::ip::IpAllowlist;
use keyward_core::ratelimit::{to_nanos, Outcome, Quota};
use keyward_core::{Clock, Permission, TokenHash, TokenHasher, TokenId, TokenSecret, WorkspaceId};
use keyward_store::{Store, StoreError};

use crate::cache::{CachedToken, Lookup, TokenCache};
use crate::denials::{Denial, Denials};
use crate::error::GateError;
use crate::limiter::{self, LimitKey, RateLimiter};
use crate::metrics::GateMetrics;

/// How long loading a token from the store may take before it counts as unavailable.
const LOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The outcome of one verification.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The decision's code.
    pub code: Code,
    /// The token, when one was found (also for refusals after lookup).
    pub token: Option<Arc<CachedToken>>,
    /// For `IP_NOT_ALLOWED`: which list refused.
    pub ip_level: Option<IpLevel>,
    /// The rate limiter's answer, when step 7 ran (or the brute-force guard refused).
    pub rate: Option<Outcome>,
}

impl Verdict {
    fn of(code: Code) -> Self {
        Self {
            code,
            token: None,
            ip_level: None,
            rate: None,
        }
    }

    /// The brute-force guard's refusal, with the guard's rate state.
    fn refused_by_guard(o: Outcome) -> Self {
        Self {
            rate: Some(o),
            ..Self::of(Code::RateLimited)
        }
    }
}

/// One question to the verifier.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    /// The permissions the request needs.
    pub required: &'a [Permission],
    /// The client's address, when known.
    pub ip: Option<IpAddr>,
    /// Who asks: the guard's key and which workspaces' tokens may be seen.
    pub asker: Asker,
    /// Whether the token's rate limit is counted (step 7). A verifier credential's own check
    /// is not: its traffic is the product's whole traffic, limited token by token.
    pub count_rate: bool,
}

impl<'a> Ask<'a> {
    /// A request presenting its own secret (the admin API, a verifier's own credential).
    pub fn own(required: &'a [Permission], ip: Option<IpAddr>) -> Self {
        Self {
            required,
            ip,
            asker: Asker::Itself,
            count_rate: true,
        }
    }
}

/// Who asks about a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asker {
    /// The request presents its own secret; failures count against its source address.
    Itself,
    /// A verifier credential asks about a secret its caller presented. Failures count against
    /// the claimed address *as seen by this credential*, so no other caller can spend that
    /// budget, and it sees only its own workspace's tokens unless it is the operator's.
    Verifier {
        /// The verifier credential.
        token: TokenId,
        /// Its workspace.
        workspace: WorkspaceId,
        /// Whether it may verify any workspace's tokens (the operator workspace's).
        any_workspace: bool,
    },
}

impl Asker {
    /// The brute-force guard's key for failures from `ip`.
    pub fn guard_key(&self, ip: IpAddr) -> LimitKey {
        match *self {
            Asker::Itself => LimitKey::source(ip),
            Asker::Verifier { token, .. } => LimitKey::verifier_source(token, ip),
        }
    }

    /// Whether this asker may learn about `token`.
    pub fn may_see(&self, token: &CompiledToken) -> bool {
        match *self {
            Asker::Itself => true,
            Asker::Verifier {
                workspace,
                any_workspace,
                ..
            } => any_workspace || token.workspace_id == workspace,
        }
    }
}

/// The network side of the decision: where internal networks are, how many failures a source
/// may cause, and who keeps rate-limit state.
pub struct Policy {
    /// Internal networks of the whole server.
    pub internal_networks: IpAllowlist,
    /// Failed verifications per minute per source; `None` for no guard.
    pub brute_force: Option<Quota>,
    /// Rate-limit state.
    pub limiter: Arc<dyn RateLimiter>,
}

/// Verifies secrets. Shared by the verify API and the admin API's authentication.
pub struct Verifier {
    store: Arc<dyn Store>,
    cache: Arc<TokenCache>,
    hasher: TokenHasher,
    clock: Arc<dyn Clock>,
    policy: Policy,
    denials: Arc<Denials>,
    metrics: GateMetrics,
}

impl Verifier {
    /// A verifier over `store`, caching in `cache`.
    pub fn new(
        store: Arc<dyn Store>,
        cache: Arc<TokenCache>,
        hasher: TokenHasher,
        clock: Arc<dyn Clock>,
        policy: Policy,
        denials: Arc<Denials>,
    ) -> Self {
        Self {
            store,
            cache,
            hasher,
            clock,
            policy,
            denials,
            metrics: GateMetrics::default(),
        }
    }

    /// Its decisions counted.
    pub fn metrics(&self) -> &GateMetrics {
        &self.metrics
    }

    /// The server-wide internal networks.
    pub fn internal_networks(&self) -> &IpAllowlist {
        &self.policy.internal_networks
    }

    /// Decides on `raw` for `ask`: its required permissions, its source, who asks.
    pub async fn verify(&self, raw: &str, ask: &Ask<'_>) -> Result<Verdict, GateError> {
        let started = std::time::Instant::now();
        let verdict = self.decide(raw, ask).await;
        match &verdict {
            Ok(v) => self.metrics.decided(v.code, started.elapsed()),
            Err(_) => self.metrics.undecided(),
        }
        verdict
    }

    async fn decide(&self, raw: &str, ask: &Ask<'_>) -> Result<Verdict, GateError> {
        let now = self.clock.now();
        let now_ns = to_nanos(now);
        let ip = ask.ip;
        // Internal sources are not guarded; an unknown source (an unreadable forwarded chain)
        // shares one key, the unspecified address.
        let guard = match (&self.policy.brute_force, ip) {
            (None, _) => None,
            (Some(_), Some(ip)) if self.policy.internal_networks.contains(ip) => None,
            (Some(quota), ip) => {
                let ip = ip.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
                Some((quota, ask.asker.guard_key(ip)))
            }
        };
        // A source past its budget of failures is answered from the cache alone: a token in
        // use stays usable, and guesses no longer reach storage.
        let mut guard_refusal = None;
        if let Some((quota, key)) = guard {
            let o = limiter::peek(&*self.policy.limiter, key, quota, now_ns).await?;
            if !o.allowed {
                guard_refusal = Some(o);
            }
        }
        let Ok(secret) = TokenSecret::check(raw.trim()) else {
            return self
                .failure(Code::Malformed, guard_refusal, guard, now_ns)
                .await;
        };
        let hash = self.hasher.hash_checked(secret);
        let token = match self.cache.get(&hash) {
            Lookup::Hit(token) => token,
            Lookup::Unknown => {
                return self
                    .failure(Code::NotFound, guard_refusal, guard, now_ns)
                    .await;
            }
            Lookup::Stale(stale) if guard_refusal.is_none() => {
                // Past its TTL: reload it, unless the store is known to be unreachable; serve
                // it as it was while the store cannot be reached (stale-if-error).
                if !self.store.reachable() {
                    self.metrics.stale_served();
                    stale
                } else {
                    match self.load(hash).await {
                        Ok(Some(token)) => token,
                        Ok(None) => {
                            self.cache.remove(&hash);
                            return self.unknown(hash, guard, now_ns).await;
                        }
                        Err(GateError::Store(StoreError::Unavailable(_))) => {
                            self.metrics.stale_served();
                            stale
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            Lookup::Miss | Lookup::Stale(_) => {
                if let Some(o) = guard_refusal {
                    return Ok(Verdict::refused_by_guard(o));
                }
                match self.load(hash).await? {
                    Some(token) => token,
                    None => return self.unknown(hash, guard, now_ns).await,
                }
            }
        };
        // Another tenant's token is unknown to this asker: no answer, no usage, no denial
        // and no rate-limit budget spent in that tenant.
        if !ask.asker.may_see(&token) {
            return self
                .failure(Code::NotFound, guard_refusal, guard, now_ns)
                .await;
        }
        let required = ask.required;
        let req = DecisionRequest {
            now,
            required,
            ip,
            server_internal: &self.policy.internal_networks,
        };
        if let Err(refusal) = decide_access(&token, &req) {
            if matches!(refusal.code, Code::InternalOnly | Code::IpNotAllowed) {
                self.denied(&token, refusal.code, refusal.ip_level, ip, None);
            }
            return Ok(Verdict {
                code: refusal.code,
                token: Some(token),
                ip_level: refusal.ip_level,
                rate: None,
            });
        }
        let mut rate = None;
        if ask.count_rate && !rate_limit_exempt(&token, &req) {
            // A per-user budget is the owner's, shared by its tokens whose limit is per user.
            let key = match token.rate_limit_per {
                keyward_core::RateLimitPer::Token => LimitKey::Token(token.token_id),
                keyward_core::RateLimitPer::User => LimitKey::User(token.owner_id),
            };
            let o = limiter::hit(&*self.policy.limiter, key, &token.quota, now_ns).await?;
            if !o.allowed {
                self.denied(&token, Code::RateLimited, None, ip, None);
                return Ok(Verdict {
                    code: Code::RateLimited,
                    token: Some(token),
                    ip_level: None,
                    rate: Some(o),
                });
            }
            rate = Some(o);
        }
        let code = decide_permissions(&token, required);
        if code == Code::InsufficientPermissions {
            let missing = required.iter().find(|p| !token.grants(p));
            let missing = missing.map(Permission::as_str);
            self.denied(&token, code, None, ip, missing);
        }
        Ok(Verdict {
            code,
            token: Some(token),
            ip_level: None,
            rate,
        })
    }

    /// Loads, compiles and caches the token with `hash`; `None` when there is none. The
    /// entry is not cached if an invalidation happened meanwhile (the epoch).
    async fn load(&self, hash: TokenHash) -> Result<Option<Arc<CachedToken>>, GateError> {
        let epoch = self.cache.epoch();
        // A database behind a silently dropped network never answers: give up on it (and
        // free the connection) rather than hold the request until TCP does.
        let loaded = tokio::time::timeout(LOAD_TIMEOUT, self.store.load_verification(&hash))
            .await
            .map_err(|_| StoreError::Unavailable(format!("no answer within {LOAD_TIMEOUT:?}")))?;
        let Some(rec) = loaded? else {
            return Ok(None);
        };
        let compiled = CompiledToken::compile(
            &rec.token,
            &rec.workspace,
            &rec.owner,
            rec.role.as_ref(),
            &rec.catalogue,
        );
        let cached = self.cache.cached(compiled)?;
        self.cache.insert(hash, cached.clone(), epoch);
        Ok(Some(cached))
    }

    /// No token has `hash`: remembered as unknown, counted against the guard.
    async fn unknown(
        &self,
        hash: TokenHash,
        guard: Option<(&Quota, LimitKey)>,
        now_ns: i64,
    ) -> Result<Verdict, GateError> {
        self.cache.insert_unknown(hash);
        self.failed(guard, now_ns).await?;
        Ok(Verdict::of(Code::NotFound))
    }

    /// Counts a security refusal of a found token for the audit trail.
    fn denied(
        &self,
        token: &CompiledToken,
        code: Code,
        refused_by: Option<IpLevel>,
        ip: Option<IpAddr>,
        missing_permission: Option<&str>,
    ) {
        self.denials.record(Denial {
            workspace: token.workspace_id,
            token: token.token_id,
            owner: token.owner_id,
            code,
            refused_by,
            ip,
            missing_permission,
        });
    }

    /// A guess (malformed or unknown secret, or another tenant's token): refused by the guard
    /// when its key is exhausted, else counted against the key and answered with `code`.
    async fn failure(
        &self,
        code: Code,
        guard_refusal: Option<Outcome>,
        guard: Option<(&Quota, LimitKey)>,
        now_ns: i64,
    ) -> Result<Verdict, GateError> {
        if let Some(o) = guard_refusal {
            return Ok(Verdict::refused_by_guard(o));
        }
        self.failed(guard, now_ns).await?;
        Ok(Verdict::of(code))
    }

    /// Counts a guessing attempt (malformed or unknown secret) against its guard key.
    async fn failed(
        &self,
        guard: Option<(&Quota, LimitKey)>,
        now_ns: i64,
    ) -> Result<(), GateError> {
        if let Some((quota, key)) = guard {
            limiter::hit(&*self.policy.limiter, key, quota, now_ns).await?;
        }
        Ok(())
    }
}

/// The rate-limit state as the API shows it.
pub fn rate_state(o: &Outcome) -> RateLimitState {
    RateLimitState {
        limit: o.limit,
        remaining: o.remaining,
        reset: o.reset_after_secs(),
        per: None,
    }
}

/// The verify API's answer for `code`, with the principal when the token is valid.
pub fn response(code: Code, token: Option<&CompiledToken>) -> VerifyResponse {
    let mut res = VerifyResponse {
        valid: code == Code::Valid,
        code,
        message: code.message().to_owned(),
        token_id: token.map(|t| t.token_id),
        workspace_id: None,
        name: None,
        owner: None,
        role: None,
        scope: None,
        permissions: None,
        missing_permissions: None,
        metadata: None,
        expires_at: None,
        refused_by: None,
        retry_after: None,
        rate_limit: None,
    };
    if let Some(t) = token.filter(|_| code == Code::Valid) {
        res.workspace_id = Some(t.workspace_id);
        res.name = Some(t.name.clone());
        res.owner = Some(OwnerRef {
            id: t.owner_id,
            kind: t.owner_kind,
        });
        res.role = t.role.as_ref().map(|r| RoleRef {
            id: r.id,
            name: r.name.clone(),
        });
        res.scope = Some(t.scope());
        res.permissions = Some(t.effective.to_vec());
        res.metadata = Some(t.metadata_value());
        res.expires_at = t.expires_at;
    }
    res
}
