//! Cache lookup latency while roles are edited: a `TokenCache` holding 1,000,000 realistic
//! tokens ([`tokens`]; 10 per role, 10,000 per workspace), one thread looking random cached
//! tokens up as fast as it can, timing each `get`, for 3 s each:
//! - quiet: no edits;
//! - role edits: another thread invalidates a random role 100 times per second and caches
//!   its 10 tokens again (as their next verifications would);
//! - workspace edits: another thread invalidates a random workspace (10,000 tokens) once per
//!   second and caches them again.
//!
//! The reader runs open loop, one lookup due every 5 µs (200,000 per second): a lookup's
//! latency counts from when it was due, so a lookup stalled behind a write lock also delays
//! the ones queued behind it, as requests arriving meanwhile would be (no coordinated
//! omission). Prints p50 / p99 / p99.9 / max of that latency, the lookups' own time (p50 /
//! p99), and how long each invalidation took. `KEYWARD_BENCH_TOKENS` sets the number of
//! tokens.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "tokens.rs"]
mod tokens;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keyward_core::{RoleId, TokenHash, WorkspaceId};
use keyward_gate::cache::{CacheConfig, CachedToken, Lookup, TokenCache};
use rand_core::RngCore;

const PHASE: Duration = Duration::from_secs(3);

type Group = Vec<(TokenHash, Arc<CachedToken>)>;

struct World {
    cache: Arc<TokenCache>,
    hashes: Vec<TokenHash>,
    roles: Vec<(RoleId, Group)>,
    workspaces: Vec<(WorkspaceId, Group)>,
}

fn world(n: usize) -> World {
    let cache = Arc::new(TokenCache::new(&CacheConfig {
        capacity: n,
        ttl_secs: 3_600,
        ..CacheConfig::default()
    }));
    let mut factory = tokens::Factory::new();
    let mut hashes = Vec::with_capacity(n);
    let mut roles: Vec<(RoleId, Group)> = Vec::new();
    let mut workspaces: HashMap<WorkspaceId, Group> = HashMap::new();
    for _ in 0..n {
        let m = factory.next(&cache);
        let epoch = cache.epoch();
        cache.insert(m.hash, m.token.clone(), epoch);
        hashes.push(m.hash);
        match roles.last_mut() {
            Some((id, group)) if *id == m.role => group.push((m.hash, m.token.clone())),
            _ => roles.push((m.role, vec![(m.hash, m.token.clone())])),
        }
        workspaces
            .entry(m.workspace)
            .or_default()
            .push((m.hash, m.token));
    }
    World {
        cache,
        hashes,
        roles,
        workspaces: workspaces.into_iter().collect(),
    }
}

fn refill(cache: &TokenCache, group: &Group) {
    for (hash, token) in group {
        let epoch = cache.epoch();
        cache.insert(*hash, token.clone(), epoch);
    }
}

/// One lookup due every this often.
const EVERY: Duration = Duration::from_micros(5);

fn nanos(d: Duration) -> u32 {
    d.as_nanos().min(u32::MAX as u128) as u32
}

/// Looks random tokens up, one due every [`EVERY`], until `stop`: each lookup's latency from
/// when it was due, and its own time.
fn look_up(w: &World, stop: &AtomicBool) -> (Vec<u32>, Vec<u32>) {
    let mut rng = tokens::Rng::new(7);
    let mut latency = Vec::with_capacity(1_000_000);
    let mut own = Vec::with_capacity(1_000_000);
    let mut hits = 0u64;
    let mut due = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        due += EVERY;
        while Instant::now() < due {
            std::hint::spin_loop();
        }
        let hash = &w.hashes[(rng.next_u64() % w.hashes.len() as u64) as usize];
        let t = Instant::now();
        let found = w.cache.get(hash);
        let done = Instant::now();
        if matches!(found, Lookup::Hit(_)) {
            hits += 1;
        }
        latency.push(nanos(done - due));
        own.push(nanos(done - t));
    }
    std::hint::black_box(hits);
    (latency, own)
}

enum Edits {
    None,
    Roles,
    Workspaces,
}

fn phase(w: &World, name: &str, edits: Edits) {
    let stop = AtomicBool::new(false);
    let ((mut times, mut own), held) = std::thread::scope(|s| {
        let reader = s.spawn(|| look_up(w, &stop));
        let mut held = Vec::new();
        let mut rng = tokens::Rng::new(11);
        let (every, started) = match edits {
            Edits::None => (PHASE, Instant::now()),
            Edits::Roles => (Duration::from_millis(10), Instant::now()),
            Edits::Workspaces => (Duration::from_secs(1), Instant::now()),
        };
        let mut next = started;
        while started.elapsed() < PHASE {
            next += every;
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let t = Instant::now();
            match edits {
                Edits::None => continue,
                Edits::Roles => {
                    let (id, group) = &w.roles[(rng.next_u64() % w.roles.len() as u64) as usize];
                    w.cache.invalidate_role(*id);
                    held.push(t.elapsed());
                    refill(&w.cache, group);
                }
                Edits::Workspaces => {
                    let i = (rng.next_u64() % w.workspaces.len() as u64) as usize;
                    let (id, group) = &w.workspaces[i];
                    w.cache.invalidate_workspace(*id);
                    held.push(t.elapsed());
                    refill(&w.cache, group);
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        (reader.join().unwrap(), held)
    });
    times.sort_unstable();
    own.sort_unstable();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    let own_at = |q: f64| own[((own.len() - 1) as f64 * q) as usize];
    let mean_held = if held.is_empty() {
        Duration::ZERO
    } else {
        held.iter().sum::<Duration>() / held.len() as u32
    };
    println!(
        "{name:<16} {:>8} lookups  latency p50 {:>6} ns  p99 {:>9} ns  p99.9 {:>9} ns  \
         max {:>9} ns  (own time p50 {} ns, p99 {} ns)  | {} invalidations, {:?} each on \
         average, longest {:?}",
        times.len(),
        at(0.5),
        at(0.99),
        at(0.999),
        times.last().copied().unwrap_or(0),
        own_at(0.5),
        own_at(0.99),
        held.len(),
        mean_held,
        held.iter().max().copied().unwrap_or_default(),
    );
}

fn main() {
    let n = std::env::var("KEYWARD_BENCH_TOKENS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let built = Instant::now();
    let w = world(n);
    println!(
        "{} tokens cached in {:?} ({} roles, {} workspaces)",
        w.cache.len(),
        built.elapsed(),
        w.roles.len(),
        w.workspaces.len()
    );
    phase(&w, "quiet", Edits::None);
    phase(&w, "role edits", Edits::Roles);
    phase(&w, "workspace edits", Edits::Workspaces);
}
