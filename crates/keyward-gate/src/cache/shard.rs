//! One shard of the cache: its entries in a slab, found by secret hash, and threaded on
//! intrusive doubly linked lists by age, owner, role and workspace (a map from each id to the
//! head of its list), plus a map from token id to its entry. An invalidation walks only the
//! list it drops; an eviction takes the oldest entry (with one TTL for all, the first to
//! expire); an insert or a removal costs a few map operations. Nothing here scans the shard.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Instant;

use keyward_core::{RoleId, TokenHash, TokenId, UserId, WorkspaceId};

use super::CachedToken;

type Map<K> = HashMap<K, u32, foldhash::fast::RandomState>;

/// No slot.
const NIL: u32 = u32::MAX;

/// The most entries one shard may hold (slot numbers are `u32`, `NIL` excluded).
pub(super) const MAX_CAPACITY: usize = (u32::MAX - 1) as usize;

#[derive(Debug, Clone, Copy)]
struct Link {
    prev: u32,
    next: u32,
}

const UNLINKED: Link = Link {
    prev: NIL,
    next: NIL,
};

/// The lists an entry is on (the index into [`Slot::links`]); a free slot's `Age` link
/// chains the free list.
#[derive(Debug, Clone, Copy)]
enum List {
    Age = 0,
    Owner = 1,
    Role = 2,
    Workspace = 3,
}

/// A cached token and when it was cached.
pub(super) struct Entry {
    pub token: Arc<CachedToken>,
    pub loaded: Instant,
    /// The cache's generation when it was inserted ([`super::TokenCache::expire_all`]).
    pub generation: u64,
}

struct Slot {
    hash: TokenHash,
    entry: Option<Entry>,
    links: [Link; 4],
}

/// The entries whose hashes fall in this shard.
pub(super) struct Shard {
    slots: Vec<Slot>,
    /// The first free slot.
    free: u32,
    by_hash: Map<TokenHash>,
    by_token: Map<TokenId>,
    owners: Map<UserId>,
    roles: Map<RoleId>,
    workspaces: Map<WorkspaceId>,
    oldest: u32,
    newest: u32,
}

impl Shard {
    /// An empty shard.
    pub fn new() -> Self {
        Self {
            slots: Vec::new(),
            free: NIL,
            by_hash: Map::default(),
            by_token: Map::default(),
            owners: Map::default(),
            roles: Map::default(),
            workspaces: Map::default(),
            oldest: NIL,
            newest: NIL,
        }
    }

    /// The entry of `hash`.
    pub fn get(&self, hash: &TokenHash) -> Option<&Entry> {
        let slot = *self.by_hash.get(hash)?;
        self.slots.get(slot as usize)?.entry.as_ref()
    }

    /// Caches `entry` under `hash`, replacing this shard's entry of the same hash or token.
    /// Returns how many entries it replaced.
    pub fn insert(&mut self, hash: TokenHash, entry: Entry) -> usize {
        let t = &entry.token;
        let (token, owner, workspace) = (t.token_id, t.owner_id, t.workspace_id);
        let role = t.role.as_ref().map(|r| r.id);
        let before = self.by_hash.len();
        if let Some(&old) = self.by_hash.get(&hash) {
            self.remove_slot(old);
        }
        if let Some(&old) = self.by_token.get(&token) {
            self.remove_slot(old);
        }
        let replaced = before - self.by_hash.len();
        let slot = if self.free != NIL {
            let slot = self.free;
            self.free = self.slots[slot as usize].links[List::Age as usize].next;
            let s = &mut self.slots[slot as usize];
            s.hash = hash;
            s.entry = Some(entry);
            s.links = [UNLINKED; 4];
            slot
        } else {
            self.slots.push(Slot {
                hash,
                entry: Some(entry),
                links: [UNLINKED; 4],
            });
            (self.slots.len() - 1) as u32
        };
        self.push_newest(slot);
        push(&mut self.slots, &mut self.owners, List::Owner, owner, slot);
        if let Some(role) = role {
            push(&mut self.slots, &mut self.roles, List::Role, role, slot);
        }
        push(
            &mut self.slots,
            &mut self.workspaces,
            List::Workspace,
            workspace,
            slot,
        );
        self.by_token.insert(token, slot);
        self.by_hash.insert(hash, slot);
        replaced
    }

    /// Forgets the oldest entry, unless it is the only one (the one just inserted).
    pub fn evict_oldest(&mut self) -> bool {
        self.by_hash.len() > 1 && self.remove_slot(self.oldest).is_some()
    }

    /// Forgets the entry of `hash`.
    pub fn remove(&mut self, hash: &TokenHash) -> Option<Entry> {
        let slot = *self.by_hash.get(hash)?;
        self.remove_slot(slot)
    }

    /// Moves the entry of token `id` into `out`.
    pub fn drop_token(&mut self, id: TokenId, out: &mut Vec<Entry>) {
        self.drain(out, |s| s.by_token.get(&id).copied());
    }

    /// Moves the entries of tokens owned by `id` into `out`.
    pub fn drop_owner(&mut self, id: UserId, out: &mut Vec<Entry>) {
        self.drain(out, |s| s.owners.get(&id).copied());
    }

    /// Moves the entries of tokens acting with role `id` into `out`.
    pub fn drop_role(&mut self, id: RoleId, out: &mut Vec<Entry>) {
        self.drain(out, |s| s.roles.get(&id).copied());
    }

    /// Moves the entries of workspace `id` into `out`.
    pub fn drop_workspace(&mut self, id: WorkspaceId, out: &mut Vec<Entry>) {
        self.drain(out, |s| s.workspaces.get(&id).copied());
    }

    /// Removes `next`'s answer until it has none (each removal unlinks the head it gave).
    fn drain(&mut self, out: &mut Vec<Entry>, next: impl Fn(&Self) -> Option<u32>) {
        while let Some(slot) = next(self) {
            match self.remove_slot(slot) {
                Some(entry) => out.push(entry),
                // A head pointing at a free slot would loop forever; it cannot happen, but
                // stop rather than spin.
                None => break,
            }
        }
    }

    fn remove_slot(&mut self, slot: u32) -> Option<Entry> {
        let entry = self.slots.get_mut(slot as usize)?.entry.take()?;
        let t = &entry.token;
        unlink(
            &mut self.slots,
            &mut self.owners,
            List::Owner,
            t.owner_id,
            slot,
        );
        if let Some(role) = &t.role {
            unlink(&mut self.slots, &mut self.roles, List::Role, role.id, slot);
        }
        unlink(
            &mut self.slots,
            &mut self.workspaces,
            List::Workspace,
            t.workspace_id,
            slot,
        );
        if self.by_token.get(&t.token_id) == Some(&slot) {
            self.by_token.remove(&t.token_id);
        }
        self.unlink_age(slot);
        let s = &mut self.slots[slot as usize];
        self.by_hash.remove(&s.hash);
        s.links[List::Age as usize].next = self.free;
        self.free = slot;
        Some(entry)
    }

    fn push_newest(&mut self, slot: u32) {
        let age = List::Age as usize;
        self.slots[slot as usize].links[age] = Link {
            prev: self.newest,
            next: NIL,
        };
        match self.newest {
            NIL => self.oldest = slot,
            newest => self.slots[newest as usize].links[age].next = slot,
        }
        self.newest = slot;
    }

    fn unlink_age(&mut self, slot: u32) {
        let age = List::Age as usize;
        let Link { prev, next } = self.slots[slot as usize].links[age];
        match prev {
            NIL => self.oldest = next,
            prev => self.slots[prev as usize].links[age].next = next,
        }
        match next {
            NIL => self.newest = prev,
            next => self.slots[next as usize].links[age].prev = prev,
        }
        self.slots[slot as usize].links[age] = UNLINKED;
    }
}

/// Puts `slot` at the head of `key`'s list.
fn push<K: Hash + Eq>(slots: &mut [Slot], heads: &mut Map<K>, list: List, key: K, slot: u32) {
    let l = list as usize;
    let head = heads.entry(key).or_insert(NIL);
    slots[slot as usize].links[l] = Link {
        prev: NIL,
        next: *head,
    };
    if *head != NIL {
        slots[*head as usize].links[l].prev = slot;
    }
    *head = slot;
}

/// Takes `slot` off `key`'s list (the list's entry goes when it empties).
fn unlink<K: Hash + Eq>(slots: &mut [Slot], heads: &mut Map<K>, list: List, key: K, slot: u32) {
    let l = list as usize;
    let Link { prev, next } = slots[slot as usize].links[l];
    if next != NIL {
        slots[next as usize].links[l].prev = prev;
    }
    if prev != NIL {
        slots[prev as usize].links[l].next = next;
    } else if next == NIL {
        heads.remove(&key);
    } else if let Some(head) = heads.get_mut(&key) {
        *head = next;
    }
    slots[slot as usize].links[l] = UNLINKED;
}
