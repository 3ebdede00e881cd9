//! Which invalidations a fill must respect: a sequence number, and for each scope (token,
//! owner, role, workspace) the sequence number of the last invalidation in it.
//!
//! A load reads [`Scopes::now`] before it goes to storage; its result is cached only if no
//! invalidation that could concern *that* token happened since: none of the token's own id,
//! its owner's, its role's or its workspace's scope was invalidated after the load started,
//! nor everything ([`Scopes::invalidate_all`]). A change elsewhere (another tenant's role
//! edit) no longer discards this load. Scopes are kept in fixed arrays indexed by a hash of
//! the id: two ids sharing a counter only make a fill be refused needlessly (it is loaded
//! again on the next use), never accepted wrongly.
//!
//! Why no stale entry survives: an invalidation first stamps its scope, then removes the
//! entries under each shard's write lock; a fill checks the stamps under that same lock. A
//! load that read the store before the change committed started before the stamp, so either
//! its fill sees the stamp and is refused, or it was inserted before the removal took the
//! lock, and the removal drops it.

use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU64, Ordering};

use keyward_core::CompiledToken;

/// Counters per scope kind (a power of two).
const SLOTS: usize = 1024;

/// A kind of scope.
#[derive(Debug, Clone, Copy)]
pub(super) enum Scope {
    Token = 0,
    Owner = 1,
    Role = 2,
    Workspace = 3,
}

/// The sequence and the per-scope stamps.
pub(super) struct Scopes {
    seq: AtomicU64,
    everything: AtomicU64,
    stamps: Box<[AtomicU64]>,
    hasher: foldhash::fast::FixedState,
}

impl Scopes {
    /// Nothing invalidated yet.
    pub fn new() -> Self {
        Self {
            seq: AtomicU64::new(0),
            everything: AtomicU64::new(0),
            stamps: (0..4 * SLOTS).map(|_| AtomicU64::new(0)).collect(),
            hasher: foldhash::fast::FixedState::with_seed(0x006b_7763_6163_6865),
        }
    }

    /// The sequence number to read before a load and pass to [`Scopes::changed_since`].
    pub fn now(&self) -> u64 {
        self.seq.load(Ordering::SeqCst)
    }

    /// Stamps `id`'s scope: fills of loads started before now that concern it are refused.
    pub fn invalidate(&self, scope: Scope, id: impl Hash) {
        let at = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        self.stamp(scope, id).fetch_max(at, Ordering::SeqCst);
    }

    /// Stamps every scope at once.
    pub fn invalidate_all(&self) {
        let at = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        self.everything.fetch_max(at, Ordering::SeqCst);
    }

    /// Whether an invalidation that concerns `token` happened after `since` ([`Scopes::now`]).
    pub fn changed_since(&self, token: &CompiledToken, since: u64) -> bool {
        let after = |stamp: &AtomicU64| stamp.load(Ordering::SeqCst) > since;
        after(&self.everything)
            || after(self.stamp(Scope::Token, token.token_id))
            || after(self.stamp(Scope::Owner, token.owner_id))
            || after(self.stamp(Scope::Workspace, token.workspace_id))
            || token
                .role
                .as_ref()
                .is_some_and(|r| after(self.stamp(Scope::Role, r.id)))
    }

    fn stamp(&self, scope: Scope, id: impl Hash) -> &AtomicU64 {
        let slot = self.hasher.hash_one(id) as usize & (SLOTS - 1);
        &self.stamps[scope as usize * SLOTS + slot]
    }
}
