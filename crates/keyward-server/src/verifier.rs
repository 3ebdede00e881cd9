//! The hot path: a presented secret → the decision, through the cache.
//!
//! Format is checked first, without storage. A cached token is decided with no storage I/O;
//! on a miss the token, its owner, role and catalogue are loaded once, compiled and cached.

use std::sync::Arc;

use axum::body::Bytes;
use keyward_core::api::{OwnerRef, RoleRef, VerifyResponse};
use keyward_core::decision::{decide, Code, CompiledToken, DecisionRequest};
use keyward_core::{Clock, Permission, TokenHasher, TokenSecret};
use keyward_store::{Store, StoreError};

use crate::cache::{CachedToken, Lookup, TokenCache};

/// The outcome of one verification.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The decision's code.
    pub code: Code,
    /// The token, when one was found (also for refusals after lookup).
    pub token: Option<Arc<CachedToken>>,
}

/// Verifies secrets. Shared by the verify API and the admin API's authentication.
pub struct Verifier {
    store: Arc<dyn Store>,
    cache: Arc<TokenCache>,
    hasher: TokenHasher,
    clock: Arc<dyn Clock>,
}

impl Verifier {
    /// A verifier over `store`, caching in `cache`.
    pub fn new(
        store: Arc<dyn Store>,
        cache: Arc<TokenCache>,
        hasher: TokenHasher,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            cache,
            hasher,
            clock,
        }
    }

    /// Decides on `raw` needing `required`.
    pub async fn verify(&self, raw: &str, required: &[Permission]) -> Result<Verdict, StoreError> {
        let Ok(secret) = TokenSecret::check(raw.trim()) else {
            return Ok(Verdict {
                code: Code::Malformed,
                token: None,
            });
        };
        let hash = self.hasher.hash_checked(secret);
        let token = match self.cache.get(&hash) {
            Lookup::Hit(token) => token,
            Lookup::Unknown => return Ok(not_found()),
            Lookup::Miss => {
                let epoch = self.cache.epoch();
                match self.store.load_verification(&hash).await? {
                    None => {
                        self.cache.insert_unknown(hash);
                        return Ok(not_found());
                    }
                    Some(rec) => {
                        let compiled = CompiledToken::compile(
                            &rec.token,
                            &rec.owner,
                            rec.role.as_ref(),
                            &rec.catalogue,
                        );
                        let cached = Arc::new(CachedToken {
                            valid_body: valid_body(&compiled),
                            compiled,
                        });
                        self.cache.insert(hash, cached.clone(), epoch);
                        cached
                    }
                }
            }
        };
        let code = decide(
            &token,
            &DecisionRequest {
                now: self.clock.now(),
                required,
            },
        );
        Ok(Verdict {
            code,
            token: Some(token),
        })
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
        res.permissions = Some(t.effective.clone());
        res.metadata = Some(t.metadata.clone());
        res.expires_at = t.expires_at;
    }
    res
}

fn valid_body(token: &CompiledToken) -> Bytes {
    // Serialising plain data cannot fail; an empty body would only ever show up as a 200 with
    // nothing in it, which the client reports as an error.
    Bytes::from(serde_json::to_vec(&response(Code::Valid, Some(token))).unwrap_or_default())
}

fn not_found() -> Verdict {
    Verdict {
        code: Code::NotFound,
        token: None,
    }
}
