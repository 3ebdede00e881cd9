//! Heap bytes per cached token: realistic tokens ([`tokens`]) compiled and inserted into a
//! `TokenCache` big enough for all of them, counted by dhat as the global allocator. Prints,
//! per token: the cached token alone (held in a plain `Vec`), and the whole cache (entries,
//! map and indexes) once the `Vec` is gone. Runs 100,000 tokens, then 1,000,000 (set
//! `KEYWARD_BENCH_TOKENS` to a comma-separated list to choose).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "tokens.rs"]
mod tokens;

use std::sync::Arc;

use keyward_gate::cache::{CacheConfig, TokenCache};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn live() -> u64 {
    dhat::HeapStats::get().curr_bytes as u64
}

fn run(n: usize) {
    let base = live();
    let cache = Arc::new(TokenCache::new(&CacheConfig {
        capacity: n,
        ttl_secs: 3_600,
        ..CacheConfig::default()
    }));
    let empty = live() - base;
    let mut factory = tokens::Factory::new();
    let start = live();
    let mut made = Vec::with_capacity(n);
    for _ in 0..n {
        made.push(factory.next(&cache));
    }
    let vec_bytes = (made.capacity() * std::mem::size_of::<tokens::Made>()) as u64;
    let tokens_only = live() - start - vec_bytes;
    for m in made.drain(..) {
        let epoch = cache.epoch();
        cache.insert(m.hash, m.token, epoch);
    }
    drop(made);
    let whole = live() - start;
    assert_eq!(cache.len(), n);
    println!(
        "{n:>9} tokens: cached token alone {:>5} B/token; whole cache {:>5} B/token \
         (map and indexes {:>4} B/token); empty cache {empty} B",
        tokens_only / n as u64,
        whole / n as u64,
        (whole.saturating_sub(tokens_only)) / n as u64,
    );
    drop(cache);
}

/// What one cached token is made of: its inline size and its largest heap parts.
fn parts() {
    let cache = TokenCache::new(&CacheConfig::default());
    let mut factory = tokens::Factory::new();
    let t = factory.next(&cache).token;
    let before = live();
    let metadata = t.metadata.clone();
    let metadata_bytes = live() - before;
    drop(metadata);
    let before = live();
    let narrowing = t.narrowing.clone();
    let narrowing_bytes = live() - before;
    drop(narrowing);
    println!(
        "one token: CachedToken {} B inline (CompiledToken {} B), VALID answer {} B, \
         metadata {metadata_bytes} B, narrowing {narrowing_bytes} B on the heap",
        std::mem::size_of::<keyward_gate::cache::CachedToken>(),
        std::mem::size_of::<keyward_core::CompiledToken>(),
        t.valid_prefix.len(),
    );
}

fn main() {
    let _profiler = dhat::Profiler::builder().testing().build();
    parts();
    let sizes = std::env::var("KEYWARD_BENCH_TOKENS").unwrap_or_else(|_| "100000,1000000".into());
    for n in sizes.split(',').filter_map(|s| s.trim().parse().ok()) {
        run(n);
    }
}
