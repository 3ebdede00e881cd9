use std::collections::HashMap;

use keyward_core::decision::CompiledRole;
use keyward_core::model::{Scope as RoleScope, TokenStatus, UserKind};
use keyward_core::{CompiledToken, RateLimitPer};
use rand_core::{OsRng, RngCore};

use super::*;

/// Whom a test token belongs to.
#[derive(Clone, Copy)]
struct Of {
    token: TokenId,
    owner: UserId,
    role: Option<RoleId>,
    workspace: WorkspaceId,
}

impl Of {
    fn new() -> Self {
        Self {
            token: TokenId::random(&mut OsRng),
            owner: UserId::random(&mut OsRng),
            role: Some(RoleId::random(&mut OsRng)),
            workspace: WorkspaceId::random(&mut OsRng),
        }
    }

    /// Another token of the same owner, role and workspace.
    fn sibling(&self) -> Self {
        Self {
            token: TokenId::random(&mut OsRng),
            ..*self
        }
    }
}

fn hash() -> TokenHash {
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    TokenHash(b)
}

fn token(of: Of) -> Arc<CachedToken> {
    let compiled = CompiledToken {
        token_id: of.token,
        workspace_id: of.workspace,
        operator: false,
        name: "t".into(),
        owner_id: of.owner,
        owner_kind: UserKind::Service,
        owner_disabled: false,
        status: TokenStatus::Active,
        not_before: None,
        expires_at: None,
        metadata: "{}".into(),
        role: of.role.map(|id| {
            Arc::new(CompiledRole {
                id,
                name: "r".into(),
                scope: RoleScope::Workspace,
                permissions: Vec::new(),
            })
        }),
        narrowing: None,
        effective: Arc::from([]),
        internal_only: false,
        request_log: false,
        token_ips: Default::default(),
        role_ips: Default::default(),
        workspace_ips: Default::default(),
        internal_networks: Default::default(),
        rate_limit_per_minute: 60,
        rate_limit_per: RateLimitPer::Token,
    };
    Arc::new(CachedToken::new(compiled).unwrap())
}

fn cache(capacity: usize) -> TokenCache {
    TokenCache::new(&CacheConfig {
        capacity,
        ..CacheConfig::default()
    })
}

fn put(c: &TokenCache, of: Of) -> TokenHash {
    let h = hash();
    c.insert(h, token(of), c.epoch());
    h
}

fn hit(c: &TokenCache, h: &TokenHash) -> bool {
    matches!(c.get(h), Lookup::Hit(_))
}

#[test]
fn each_invalidation_drops_only_its_entries() {
    let c = cache(1_000);
    let a = Of::new();
    let (a1, a2) = (put(&c, a), put(&c, a.sibling()));
    let b = Of {
        workspace: a.workspace,
        ..Of::new()
    };
    let b1 = put(&c, b);
    let other = put(&c, Of::new());
    assert_eq!(c.len(), 4);

    c.invalidate_role(a.role.unwrap());
    assert!(!hit(&c, &a1) && !hit(&c, &a2));
    assert!(hit(&c, &b1) && hit(&c, &other));
    assert_eq!(c.stats().invalidated.load(Ordering::Relaxed), 2);

    c.invalidate_workspace(a.workspace);
    assert!(!hit(&c, &b1) && hit(&c, &other));
    assert_eq!(c.len(), 1);

    let d = Of::new();
    let (d1, d2) = (put(&c, d), put(&c, d.sibling()));
    c.invalidate_token(d.token);
    assert!(!hit(&c, &d1) && hit(&c, &d2));
    c.invalidate_user(d.owner);
    assert!(!hit(&c, &d2) && hit(&c, &other));
    assert_eq!(c.len(), 1);
}

#[test]
fn a_token_without_a_role_is_dropped_by_its_other_scopes() {
    let c = cache(10);
    let of = Of {
        role: None,
        ..Of::new()
    };
    let h = put(&c, of);
    c.invalidate_role(RoleId::random(&mut OsRng));
    assert!(hit(&c, &h));
    c.invalidate_user(of.owner);
    assert!(c.is_empty());
}

/// A load started, then an invalidation: its fill is refused if the invalidation concerns
/// the loaded token, accepted if not.
#[test]
fn a_fill_is_refused_only_after_an_invalidation_that_concerns_it() {
    type Change = fn(&TokenCache, &Of);
    let concerning: [(&str, Change); 5] = [
        ("token", |c, of| c.invalidate_token(of.token)),
        ("owner", |c, of| c.invalidate_user(of.owner)),
        ("role", |c, of| c.invalidate_role(of.role.unwrap())),
        ("workspace", |c, of| c.invalidate_workspace(of.workspace)),
        ("everything", |c, _| c.expire_all()),
    ];
    for (what, change) in concerning {
        let c = cache(10);
        let of = Of::new();
        let started = c.epoch();
        change(&c, &of);
        let h = hash();
        c.insert(h, token(of), started);
        assert!(
            c.is_empty(),
            "a fill after an invalidation of its {what} was cached"
        );
        // A load started after the change is cached.
        c.insert(h, token(of), c.epoch());
        assert!(hit(&c, &h), "{what}");
    }
    let unrelated: [(&str, Change); 4] = [
        ("another token", |c, _| {
            c.invalidate_token(TokenId::random(&mut OsRng))
        }),
        ("another user", |c, _| {
            c.invalidate_user(UserId::random(&mut OsRng))
        }),
        ("another role", |c, _| {
            c.invalidate_role(RoleId::random(&mut OsRng))
        }),
        ("another workspace", |c, _| {
            c.invalidate_workspace(WorkspaceId::random(&mut OsRng))
        }),
    ];
    for (what, change) in unrelated {
        let c = cache(10);
        let of = Of::new();
        let started = c.epoch();
        change(&c, &of);
        let h = hash();
        c.insert(h, token(of), started);
        // (Two ids may share a counter, 1 in 1,024: then the fill is refused needlessly.)
        assert!(hit(&c, &h), "a fill was refused after a change to {what}");
    }
}

/// Loads racing role edits from other threads: whatever the interleaving, no token loaded
/// before its role's last edit stays cached.
#[test]
fn no_fill_survives_a_concurrent_invalidation_of_its_role() {
    let c = Arc::new(cache(100_000));
    let of = Of::new();
    let role = of.role.unwrap();
    // The "store": the role's version, bumped before each invalidation (a committed change).
    let version = Arc::new(AtomicU64::new(0));
    let loaded_at: Arc<Mutex<HashMap<TokenHash, u64>>> = Arc::default();
    std::thread::scope(|s| {
        for _ in 0..2 {
            let (c, version, loaded_at) = (c.clone(), version.clone(), loaded_at.clone());
            s.spawn(move || {
                for _ in 0..2_000 {
                    let epoch = c.epoch();
                    let seen = version.load(Ordering::SeqCst);
                    let h = hash();
                    loaded_at.lock().unwrap().insert(h, seen);
                    c.insert(h, token(of.sibling()), epoch);
                }
            });
        }
        for _ in 0..500 {
            version.fetch_add(1, Ordering::SeqCst);
            c.invalidate_role(role);
            std::thread::yield_now();
        }
    });
    let last = version.load(Ordering::SeqCst);
    let loaded_at = loaded_at.lock().unwrap();
    for (h, seen) in loaded_at.iter() {
        if hit(&c, h) {
            assert_eq!(
                *seen, last,
                "an entry loaded before the last role edit is cached"
            );
        }
    }
}

#[test]
fn a_full_cache_evicts_its_oldest_entry() {
    let c = cache(2);
    let first = put(&c, Of::new());
    let second = put(&c, Of::new());
    let third = put(&c, Of::new());
    assert_eq!(c.len(), 2);
    assert!(!hit(&c, &first) && hit(&c, &second) && hit(&c, &third));
    assert_eq!(c.stats().evictions.load(Ordering::Relaxed), 1);
}

#[test]
fn a_token_has_one_entry() {
    let c = cache(10);
    let of = Of::new();
    let (old, new) = (put(&c, of), put(&c, of));
    assert_eq!(c.len(), 1);
    assert!(!hit(&c, &old) && hit(&c, &new));
    c.remove(&new);
    assert!(c.is_empty());
}

#[test]
fn expire_all_makes_entries_stale_and_invalidated_ones_stay_gone() {
    let c = cache(10);
    let (kept, gone) = (Of::new(), Of::new());
    let (k, g) = (put(&c, kept), put(&c, gone));
    c.invalidate_token(gone.token);
    c.expire_all();
    assert!(matches!(c.get(&k), Lookup::Stale(_)));
    assert!(matches!(c.get(&g), Lookup::Miss));
}

/// Random inserts, removals and invalidations against a plain model: the lists and maps stay
/// in step through slot reuse and eviction.
#[test]
fn the_indexes_stay_in_step_with_the_entries() {
    let c = cache(64);
    let owners: Vec<Of> = (0..6).map(|_| Of::new()).collect();
    let mut model: Vec<(TokenHash, Of)> = Vec::new();
    let mut rng = OsRng;
    for step in 0..5_000 {
        let pick = |rng: &mut OsRng, n: usize| (rng.next_u32() as usize) % n;
        match pick(&mut rng, 6) {
            0..=2 => {
                let base = owners[pick(&mut rng, owners.len())];
                let of = Of {
                    role: if step % 7 == 0 { None } else { base.role },
                    ..base.sibling()
                };
                let h = put(&c, of);
                if model.len() == 64 {
                    model.remove(0);
                }
                model.push((h, of));
            }
            3 if !model.is_empty() => {
                let (h, _) = model.remove(pick(&mut rng, model.len()));
                c.remove(&h);
            }
            4 if !model.is_empty() => {
                let (_, of) = model[pick(&mut rng, model.len())];
                c.invalidate_token(of.token);
                model.retain(|(_, m)| m.token != of.token);
            }
            _ => {
                let of = owners[pick(&mut rng, owners.len())];
                match pick(&mut rng, 3) {
                    0 => {
                        c.invalidate_user(of.owner);
                        model.retain(|(_, m)| m.owner != of.owner);
                    }
                    1 => {
                        c.invalidate_role(of.role.unwrap());
                        model.retain(|(_, m)| m.role != of.role);
                    }
                    _ => {
                        c.invalidate_workspace(of.workspace);
                        model.retain(|(_, m)| m.workspace != of.workspace);
                    }
                }
            }
        }
        assert_eq!(c.len(), model.len(), "step {step}");
    }
    for (h, _) in &model {
        assert!(hit(&c, h));
    }
}

#[test]
fn tokens_of_one_role_share_its_parts_until_it_changes() {
    let c = cache(10);
    let of = Of::new();
    let (a, b) = (token(of), token(of.sibling()));
    let (a, b) = (
        c.cached(a.compiled.clone()).unwrap(),
        c.cached(b.compiled.clone()).unwrap(),
    );
    let (ra, rb) = (a.role.as_ref().unwrap(), b.role.as_ref().unwrap());
    assert!(Arc::ptr_eq(ra, rb));
    assert!(Arc::ptr_eq(&a.effective, &b.effective));
    // The role edited: a token loaded now gets its new parts, not the old ones.
    let mut edited = b.compiled.clone();
    edited.role = Some(Arc::new(CompiledRole {
        name: "renamed".into(),
        ..(**rb).clone()
    }));
    let e = c.cached(edited).unwrap();
    assert_eq!(e.role.as_ref().unwrap().name, "renamed");
    assert!(!Arc::ptr_eq(e.role.as_ref().unwrap(), ra));
}
