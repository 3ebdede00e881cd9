//! The hot path: a presented secret → the decision, through the cache.
//!
//! Format is checked first, without storage. A cached token is decided with no storage I/O;
//! on a miss the token, its owner, role and catalogue are loaded once, compiled and cached.

use std::sync::Arc;

use keyward_core::decision::{decide, Code, CompiledToken, DecisionRequest};
use keyward_core::{Clock, Permission, TokenHasher, TokenSecret};
use keyward_store::{Store, StoreError};

use crate::cache::{Lookup, TokenCache};

/// The outcome of one verification.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The decision's code.
    pub code: Code,
    /// The token, when one was found (also for refusals after lookup).
    pub token: Option<Arc<CompiledToken>>,
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
        let Ok(secret) = TokenSecret::parse(raw.trim()) else {
            return Ok(Verdict {
                code: Code::Malformed,
                token: None,
            });
        };
        let hash = self.hasher.hash(&secret);
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
                        let compiled = Arc::new(CompiledToken::compile(
                            &rec.token,
                            &rec.owner,
                            rec.role.as_ref(),
                            &rec.catalogue,
                        ));
                        self.cache.insert(hash, compiled.clone(), epoch);
                        compiled
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

fn not_found() -> Verdict {
    Verdict {
        code: Code::NotFound,
        token: None,
    }
}
