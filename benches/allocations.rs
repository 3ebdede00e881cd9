//! Heap allocations per cached `VALID` verify, counted by `dhat` as the global allocator:
//! (a) through the embedded layer (`KeywardLayer` around a trivial service, as in the `layer`
//! bench), (b) through the server's router for `POST /v1/verify` (in process, no socket: what
//! hyper adds to read and write the request is not counted), each with usage records on and
//! off (`[usage] enabled`).
//!
//! Each case warms up, then counts the blocks and bytes allocated over `KEYWARD_BENCH_VERIFIES`
//! (default 10,000) verifies, minus what building the request alone costs (the layer: the
//! trivial service called without the layer; the server: building the request and dropping
//! it). The runtime has one thread and the hot path never waits, so the background tasks
//! (the usage writer above all) do not run inside the counted loop: their share is counted
//! apart, as what a pause long enough for the writer to store the queued records allocates,
//! less what the same pause allocates when idle, per record.
//!
//! `cargo bench --manifest-path benches/Cargo.toml --bench allocations`. With
//! `KEYWARD_BENCH_DHAT=<case>` (`layer`, `layer-no-usage`, `server`, `server-no-usage`) only
//! that case runs, under dhat's profiling mode, and dhat writes `dhat-heap.json` with a
//! backtrace per allocation site (open it in dhat's viewer, `dh_view.html`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixture;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use http::Request;
use keyward_server::Config;
use keyward_tower::{Gate, KeywardLayer, PeerAddr};
use tokio::runtime::Runtime;
use tower_layer::Layer;
use tower_service::Service;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// How long the background tasks get to store what the counted loop queued (the usage
/// writer flushes every 200 ms by default). Long enough that the other periodic tasks (the
/// webhook poll, every second) run about as often in each pause.
const DRAIN: Duration = Duration::from_secs(3);

/// Blocks and bytes per verify.
#[derive(Clone, Copy)]
struct PerVerify {
    blocks: f64,
    bytes: f64,
}

impl PerVerify {
    fn minus(self, other: PerVerify) -> PerVerify {
        PerVerify {
            blocks: self.blocks - other.blocks,
            bytes: self.bytes - other.bytes,
        }
    }
}

/// What the heap counters say now: (blocks, bytes) allocated since the start.
fn totals() -> (u64, u64) {
    let s = dhat::HeapStats::get();
    (s.total_blocks, s.total_bytes)
}

/// Allocations per call of `f`, over `n` calls after `n / 10` to warm up.
fn count(n: u64, mut f: impl FnMut()) -> PerVerify {
    for _ in 0..n / 10 {
        f();
    }
    let (blocks, bytes) = totals();
    for _ in 0..n {
        f();
    }
    let (blocks2, bytes2) = totals();
    PerVerify {
        blocks: (blocks2 - blocks) as f64 / n as f64,
        bytes: (bytes2 - bytes) as f64 / n as f64,
    }
}

/// What the background tasks allocate per queued record: a pause after `n` verifies, less an
/// idle pause of the same length (the mean of one before them and one after). A rough
/// figure: a periodic task running once more in one pause than in the other moves it.
fn writer_share(rt: &Runtime, n: u64, mut f: impl FnMut()) -> PerVerify {
    let pause = || rt.block_on(async { tokio::time::sleep(DRAIN).await });
    pause();
    let before = count_once(pause);
    for _ in 0..n {
        f();
    }
    let drain = count_once(pause);
    let after = count_once(pause);
    let idle = |i: usize| [before, after].iter().map(|p| p[i] as f64).sum::<f64>() / 2.0;
    PerVerify {
        blocks: (drain[0] as f64 - idle(0)) / n as f64,
        bytes: (drain[1] as f64 - idle(1)) / n as f64,
    }
}

/// Blocks and bytes allocated while `f` runs.
fn count_once(f: impl FnOnce()) -> [u64; 2] {
    let (blocks, bytes) = totals();
    f();
    let (blocks2, bytes2) = totals();
    [blocks2 - blocks, bytes2 - bytes]
}

/// One case's figures: the hot path (less building the request) and the background share.
struct Figures {
    name: &'static str,
    hot: PerVerify,
    background: PerVerify,
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn temp_dir(case: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("keyward-bench-alloc-{case}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// (a) `GET /orders/7` with a cached token through `KeywardLayer`.
fn layer(n: u64, usage: bool) -> Figures {
    let rt = runtime();
    let dir = temp_dir("layer");
    let mut options = fixture::orders_gate(&dir);
    options.usage.enabled = usage;
    let gate = Arc::new(rt.block_on(Gate::open(&options)).unwrap());
    let bearer = format!("Bearer {}", rt.block_on(fixture::bootstrap(&gate)).secret);
    let request = || {
        Request::get("/orders/7")
            .extension(PeerAddr("203.0.113.9:4711".parse().unwrap()))
            .header(http::header::AUTHORIZATION, bearer.as_str())
            .body(())
            .unwrap()
    };
    let mut bare = fixture::Trivial;
    let mut layered = KeywardLayer::new(gate.clone()).layer(fixture::Trivial);
    let res = rt.block_on(layered.call(request())).unwrap();
    assert_eq!(res.status(), 200, "the bench token is not admitted");

    let alone = count(n, || drop(rt.block_on(bare.call(request())).unwrap()));
    let through = count(n, || drop(rt.block_on(layered.call(request())).unwrap()));
    let background = writer_share(&rt, n, || {
        drop(rt.block_on(layered.call(request())).unwrap())
    });
    rt.block_on(gate.shutdown());
    let _ = std::fs::remove_dir_all(&dir);
    Figures {
        name: if usage {
            "embedded layer, usage on"
        } else {
            "embedded layer, usage off"
        },
        hot: through.minus(alone),
        background,
    }
}

/// (b) `POST /v1/verify` with a cached token, from a verifier credential, through the
/// server's router.
fn server(n: u64, usage: bool) -> Figures {
    let rt = runtime();
    let dir = temp_dir("server");
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".into();
    config.database.url = format!("sqlite://{}", dir.join("bench.db").display());
    config.cache.ttl_secs = 86_400;
    config.usage.enabled = usage;
    let mut app = rt
        .block_on(keyward_server::Application::build(&config))
        .unwrap();
    let admin = app.take_bootstrap().unwrap().admin_token.secret;
    let state = app.state().clone();
    let boot = rt.block_on(fixture::bootstrap_store(state.store.as_ref()));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = rt.spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let mut router = keyward_server::routes::router(state);
    let bearer = format!("Bearer {admin}");
    let body = bytes::Bytes::from(format!(
        r#"{{"token":"{}","ip":"198.51.100.7","permissions":["orders:read"]}}"#,
        boot.secret
    ));
    let peer: SocketAddr = "127.0.0.1:4711".parse().unwrap();
    let request = || {
        Request::post("/v1/verify")
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::AUTHORIZATION, bearer.as_str())
            .extension(ConnectInfo(peer))
            .body(Body::from(body.clone()))
            .unwrap()
    };
    let call = |router: &mut axum::Router| {
        rt.block_on(async {
            std::future::poll_fn(|cx| Service::<Request<Body>>::poll_ready(router, cx))
                .await
                .unwrap();
            router.call(request()).await.unwrap()
        })
    };
    let res = call(&mut router);
    assert_eq!(res.status(), 200);
    let answer = rt
        .block_on(axum::body::to_bytes(res.into_body(), 1 << 16))
        .unwrap();
    assert!(
        answer.starts_with(br#"{"valid":true"#),
        "not VALID: {}",
        String::from_utf8_lossy(&answer)
    );

    let alone = count(n, || drop(request()));
    let through = count(n, || drop(call(&mut router)));
    let background = writer_share(&rt, n, || drop(call(&mut router)));
    let _ = stop.send(());
    rt.block_on(running).unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    Figures {
        name: if usage {
            "server POST /v1/verify, usage on"
        } else {
            "server POST /v1/verify, usage off"
        },
        hot: through.minus(alone),
        background,
    }
}

/// One way through: the layer or the server, for `n` verifies, usage on or off.
type Case = fn(u64, bool) -> Figures;

fn main() {
    let n: u64 = std::env::var("KEYWARD_BENCH_VERIFIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let profile = std::env::var("KEYWARD_BENCH_DHAT").ok();
    let _profiler = match &profile {
        Some(_) => dhat::Profiler::builder().build(),
        None => dhat::Profiler::builder().testing().build(),
    };
    let cases: [(&str, Case, bool); 4] = [
        ("layer", layer, true),
        ("layer-no-usage", layer, false),
        ("server", server, true),
        ("server-no-usage", server, false),
    ];
    println!("heap allocations per cached VALID verify ({n} verifies per case)");
    println!(
        "{:<36} {:>14} {:>14} {:>22}",
        "case", "blocks/verify", "bytes/verify", "background blocks/rec"
    );
    for (key, case, usage) in cases {
        if profile.as_deref().is_some_and(|p| p != key) {
            continue;
        }
        let f = case(n, usage);
        println!(
            "{:<36} {:>14.2} {:>14.1} {:>22.2}",
            f.name, f.hot.blocks, f.hot.bytes, f.background.blocks
        );
    }
}
