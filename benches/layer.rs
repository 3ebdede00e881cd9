//! The embedded layer's added cost per request: a trivial tower service called in process
//! (no network) through `KeywardLayer` with a cached token, against the same service alone.
//! The token is real (a workspace bootstrapped into a SQLite file in the temp directory), so
//! the usage writer stores what the layer records, on a runtime worker off the measured thread.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixture;

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use http::Request;
use keyward_tower::{Gate, KeywardLayer, PeerAddr};
use tower_layer::Layer;
use tower_service::Service;

fn request(bearer: Option<&str>) -> Request<()> {
    let mut b = Request::get("/orders/7").extension(PeerAddr("203.0.113.9:4711".parse().unwrap()));
    if let Some(value) = bearer {
        b = b.header(http::header::AUTHORIZATION, value);
    }
    b.body(()).unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("keyward-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let options = fixture::orders_gate(&dir);
    let gate = Arc::new(rt.block_on(Gate::open(&options)).unwrap());
    let secret = rt.block_on(fixture::bootstrap(&gate)).secret;
    let bearer = format!("Bearer {secret}");

    let mut bare = fixture::Trivial;
    let mut layered = KeywardLayer::new(gate.clone()).layer(fixture::Trivial);
    // The first call loads the token into the cache; every measured one is a cache hit.
    let first = rt.block_on(layered.call(request(Some(&bearer)))).unwrap();
    assert_eq!(first.status(), 200);

    let mut group = c.benchmark_group("layer");
    group.bench_function("trivial service alone", |b| {
        b.iter(|| rt.block_on(bare.call(request(Some(&bearer)))).unwrap())
    });
    group.bench_function("through KeywardLayer, cached token", |b| {
        b.iter(|| {
            let res = rt.block_on(layered.call(request(Some(&bearer)))).unwrap();
            debug_assert_eq!(res.status(), 200);
            res
        })
    });
    group.bench_function("through KeywardLayer, no credential (401)", |b| {
        b.iter(|| rt.block_on(layered.call(request(None))).unwrap())
    });
    group.finish();

    rt.block_on(gate.shutdown());
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
