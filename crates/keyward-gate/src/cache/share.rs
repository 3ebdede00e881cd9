//! One copy of each role's compiled parts: a cached token points at its role's patterns and
//! at the permissions it holds (shared with the role's other tokens when they are the same),
//! instead of a copy of each per token.
//!
//! A freshly loaded token's parts are compared with the ones already handed out for its role
//! and replaced by them only when equal, so a role edited meanwhile gets new parts (and its
//! old tokens keep theirs until their invalidation drops them): sharing never changes what a
//! token decides. Only weak references are kept, swept whenever their number doubles.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use keyward_core::decision::CompiledRole;
use keyward_core::{CompiledToken, Permission, RoleId};

#[derive(Default)]
struct Parts {
    role: Weak<CompiledRole>,
    effective: Option<Weak<[Permission]>>,
}

#[derive(Default)]
struct Known {
    roles: HashMap<RoleId, Parts, foldhash::fast::RandomState>,
    sweep_at: usize,
}

/// The parts handed out, by role.
#[derive(Default)]
pub(super) struct Shared(Mutex<Known>);

/// Fewest entries before a sweep.
const FIRST_SWEEP: usize = 1_024;

impl Shared {
    /// `token` with its role's parts replaced by equal ones already in use, if any.
    pub fn share(&self, mut token: CompiledToken) -> CompiledToken {
        let Some(role) = token.role.clone() else {
            return token;
        };
        let mut known = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let parts = known.roles.entry(role.id).or_default();
        match parts.role.upgrade() {
            Some(same) if *same == *role => token.role = Some(same),
            _ => parts.role = Arc::downgrade(&role),
        }
        match parts.effective.as_ref().and_then(Weak::upgrade) {
            Some(same) if *same == *token.effective => token.effective = same,
            _ => parts.effective = Some(Arc::downgrade(&token.effective)),
        }
        if known.roles.len() >= known.sweep_at.max(FIRST_SWEEP) {
            known.roles.retain(|_, parts| parts.role.strong_count() > 0);
            known.sweep_at = known.roles.len() * 2;
        }
        token
    }
}
