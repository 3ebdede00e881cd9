//! Several nodes on one PostgreSQL schema: a change made on one node reaches the others'
//! caches through the change feed (LISTEN/NOTIFY) long before the TTL would; a node whose
//! database goes away keeps verifying the tokens it had cached, answers everything else 503
//! at once, and reconciles its cache when the database is back.

mod proxy;

use std::time::{Duration, Instant};

use keyward_core::api::{
    IpListInput, RolePatch, SettingsPatch, TokenPatch, UserPatch, VerifyRequest, WorkspacePatch,
};
use keyward_core::{Clock, Code, Scope};

use crate::support::{code_of, postgres_url, Backend, TestApp};

/// Three nodes on one fresh schema, each caching for a minute (so only the feed can explain
/// a change seen within a second).
async fn three_nodes() -> Option<(TestApp, TestApp, TestApp)> {
    let a = TestApp::spawn_with(Backend::Postgres, |c| c.cache.ttl_secs = 60).await?;
    unlimited(&a).await;
    let b = a.another_node(|_| {}).await;
    let c = a.another_node(|_| {}).await;
    Some((a, b, c))
}

/// The workspace's default rate limit out of the way of the polling below.
async fn unlimited(app: &TestApp) {
    app.admin
        .update_workspace(&WorkspacePatch {
            settings: Some(SettingsPatch {
                default_rate_limit_per_minute: Some(1_000_000),
                ..SettingsPatch::default()
            }),
            ..WorkspacePatch::default()
        })
        .await
        .unwrap();
}

/// Waits until `node` answers `secret` (needing `perms`, from `ip`) with something other than
/// VALID; returns what and how long it took.
async fn until_refused(node: &TestApp, secret: &str, perms: &[&str], ip: &str) -> (Code, Duration) {
    let started = Instant::now();
    loop {
        let code = verify_from(node, secret, perms, ip).await;
        if code != Code::Valid {
            return (code, started.elapsed());
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the change did not reach {} within 5 s",
            node.url
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn verify_from(node: &TestApp, secret: &str, perms: &[&str], ip: &str) -> Code {
    node.admin
        .verify(&VerifyRequest {
            token: secret.into(),
            permissions: Some(perms.iter().map(|s| (*s).into()).collect()),
            ip: Some(ip.to_owned().into()),
            ..VerifyRequest::default()
        })
        .await
        .unwrap()
        .code
}

/// The value of the sample `name` (with its labels, if any) in `node`'s `/metrics`.
async fn metric(node: &TestApp, name: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics", node.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in:\n{text}"))
}

/// Every node caches `secret` as VALID.
async fn cached_everywhere(nodes: [&TestApp; 3], secret: &str, perms: &[&str]) {
    for node in nodes {
        assert_eq!(
            verify_from(node, secret, perms, "10.1.2.3").await,
            Code::Valid
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_node_reaches_the_others_at_once() {
    let Some((a, b, c)) = three_nodes().await else {
        return;
    };
    a.catalogue(&["orders:read", "orders:write"]).await;
    let role = a
        .api_role("Orders", Scope::Workspace, &["orders:read", "orders:write"])
        .await;
    let mut lags = Vec::new();

    // A revocation.
    let user = a.service_user("Revoked", Some(role.id)).await;
    let token = a.token_for(&user).await;
    cached_everywhere([&a, &b, &c], &token.secret, &["orders:read"]).await;
    a.admin.revoke_token(token.token.id).await.unwrap();
    for node in [&b, &c] {
        let (code, took) = until_refused(node, &token.secret, &["orders:read"], "10.1.2.3").await;
        assert_eq!(code, Code::Revoked);
        lags.push(("revoke", took));
    }

    // A role losing a permission.
    let user = a.service_user("Narrowed", Some(role.id)).await;
    let token = a.token_for(&user).await;
    cached_everywhere([&a, &b, &c], &token.secret, &["orders:write"]).await;
    a.admin
        .update_role(
            role.id,
            &RolePatch {
                permissions: Some(vec!["orders:read".into()]),
                ..RolePatch::default()
            },
        )
        .await
        .unwrap();
    for node in [&b, &c] {
        let (code, took) = until_refused(node, &token.secret, &["orders:write"], "10.1.2.3").await;
        assert_eq!(code, Code::InsufficientPermissions);
        lags.push(("role edit", took));
        assert_eq!(
            verify_from(node, &token.secret, &["orders:read"], "10.1.2.3").await,
            Code::Valid
        );
    }

    // A user disabled, from the third node this time.
    let user = a.service_user("Disabled", Some(role.id)).await;
    let token = a.token_for(&user).await;
    cached_everywhere([&a, &b, &c], &token.secret, &["orders:read"]).await;
    c.admin
        .update_user(
            user.id,
            &UserPatch {
                disabled: Some(true),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    for node in [&a, &b] {
        let (code, took) = until_refused(node, &token.secret, &["orders:read"], "10.1.2.3").await;
        assert_eq!(code, Code::OwnerDisabled);
        lags.push(("user disabled", took));
    }

    // The workspace's allowlist.
    let user = a.service_user("Fenced", Some(role.id)).await;
    let token = a.token_for(&user).await;
    cached_everywhere([&a, &b, &c], &token.secret, &["orders:read"]).await;
    a.admin
        .update_workspace(&WorkspacePatch {
            settings: Some(SettingsPatch {
                // The admin calls come from loopback.
                ip_allowlist: Some(IpListInput::Text("192.0.2.0/24, 127.0.0.0/8, ::1".into())),
                ..SettingsPatch::default()
            }),
            ..WorkspacePatch::default()
        })
        .await
        .unwrap();
    for node in [&b, &c] {
        let (code, took) = until_refused(node, &token.secret, &["orders:read"], "10.1.2.3").await;
        assert_eq!(code, Code::IpNotAllowed);
        lags.push(("workspace allowlist", took));
    }

    let worst = lags.iter().map(|(_, d)| *d).max().unwrap();
    eprintln!("propagation to the other nodes: {lags:?}");
    assert!(
        worst < Duration::from_secs(2),
        "a change took {worst:?} to reach another node (TTL is 60 s)"
    );
    assert!(
        b.state
            .follower
            .stats()
            .received
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
}

/// Another deployment in another schema of the same database hears nothing of this one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_ignores_another_schemas_changes() {
    let Some(a) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let Some(other) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let role = a.api_role("Reader", Scope::Workspace, &[]).await;
    let user = a.service_user("Mine", Some(role.id)).await;
    let token = a.token_for(&user).await;
    let received = || {
        other
            .state
            .follower
            .stats()
            .received
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let before = received();
    a.admin.revoke_token(token.token.id).await.unwrap();
    // The notification is on the same channel; give it time to (not) arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(received(), before);
    assert!(
        a.state
            .follower
            .stats()
            .received
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
}

/// Node A on a fresh schema (caching for a minute), and a proxy to its PostgreSQL with the
/// database URL that goes through it, for other nodes.
async fn behind_a_proxy() -> Option<(TestApp, proxy::Proxy, reqwest::Url)> {
    let a = TestApp::spawn_with(Backend::Postgres, |c| c.cache.ttl_secs = 60).await?;
    unlimited(&a).await;
    let mut upstream = reqwest::Url::parse(&postgres_url()).unwrap();
    let target = format!(
        "{}:{}",
        upstream.host_str().unwrap_or("127.0.0.1"),
        upstream.port().unwrap_or(5432)
    );
    let pg = proxy::Proxy::start(target).await;
    upstream.set_host(Some("127.0.0.1")).unwrap();
    upstream.set_port(Some(pg.port)).unwrap();
    Some((a, pg, upstream))
}

/// The database behind one node goes away and comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_rides_out_a_database_outage_and_reconciles() {
    let Some((a, pg, upstream)) = behind_a_proxy().await else {
        return;
    };
    // Nodes B and C reach PostgreSQL only through the proxy. B trusts a cached token for 1 s
    // (to show stale-if-error), C for a minute (so only the reconciliation after the gap can
    // explain C learning of a revocation it could not hear).
    let b = a
        .another_node(|c| {
            c.database.url = upstream.to_string();
            c.cache.ttl_secs = 1;
        })
        .await;
    let c = a
        .another_node(|c| c.database.url = upstream.to_string())
        .await;
    let role = a.api_role("Reader", Scope::Workspace, &[]).await;
    let user = a.service_user("Integration", Some(role.id)).await;
    let kept = a.token_for(&user).await;
    let revoked_meanwhile = a.token_for(&user).await;
    let never_seen = a.token_for(&user).await;
    for t in [&kept, &revoked_meanwhile] {
        for node in [&b, &c] {
            assert_eq!(node.verify(&t.secret, &[]).await.code, Code::Valid);
        }
    }
    // B's admin token is cached too (an admin call authenticates through the same cache).
    b.admin.workspace().await.unwrap();
    let http = reqwest::Client::new();

    pg.cut();
    let started = Instant::now();
    loop {
        let r = http.get(format!("{}/readyz", b.url)).send().await.unwrap();
        if r.status() == 503 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "B never noticed the outage"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("outage noticed after {:?}", started.elapsed());
    // The revocation happens while B cannot hear of it.
    a.admin
        .revoke_token(revoked_meanwhile.token.id)
        .await
        .unwrap();
    // Past B's TTL, its cached tokens still verify (stale-if-error), and their usage waits.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let counters = b.state.usage.counters();
    let written_before = counters.written.load(std::sync::atomic::Ordering::SeqCst);
    for _ in 0..5 {
        assert_eq!(b.verify(&kept.secret, &[]).await.code, Code::Valid);
    }
    // What needs the database is refused at once: an uncached token, a write, readiness.
    let t = Instant::now();
    let r = b
        .admin
        .verify(&VerifyRequest {
            token: never_seen.secret.clone().into(),
            ..VerifyRequest::default()
        })
        .await;
    let uncached = t.elapsed();
    assert_eq!(code_of(r), "STORAGE_UNAVAILABLE");
    let t = Instant::now();
    let r = b
        .admin
        .update_token(
            kept.token.id,
            &TokenPatch {
                name: Some("renamed".into()),
                ..TokenPatch::default()
            },
        )
        .await;
    let write = t.elapsed();
    assert_eq!(code_of(r), "STORAGE_UNAVAILABLE");
    let t = Instant::now();
    let r = http.get(format!("{}/readyz", b.url)).send().await.unwrap();
    let ready = t.elapsed();
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    eprintln!("while down: uncached verify {uncached:?}, write {write:?}, /readyz {ready:?}");
    assert_eq!(metric(&b, "keyward_store_reachable").await, 0.0);
    assert_eq!(metric(&b, "keyward_store_circuit_trips_total").await, 1.0);
    assert!(metric(&b, "keyward_cache_stale_served_total").await >= 1.0);
    assert!(metric(&b, "keyward_verify_undecided_total").await >= 1.0);
    // Far from the pool's 5 s acquire timeout: the circuit answers.
    for took in [uncached, write, ready] {
        assert!(took < Duration::from_secs(1), "{took:?}");
    }

    pg.restore();
    let started = Instant::now();
    loop {
        let r = http.get(format!("{}/readyz", b.url)).send().await.unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "B never recovered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("recovered after {:?}", started.elapsed());
    let resumed = |node: &TestApp| {
        node.state
            .follower
            .stats()
            .resumed
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    while resumed(&b) < 2 || resumed(&c) < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the feeds never resumed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!("both feeds resumed after {:?}", started.elapsed());
    // The usage recorded during the outage is written, none of it lost.
    while counters.written.load(std::sync::atomic::Ordering::SeqCst) < written_before + 5 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "usage never written"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        counters.dropped.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    // The revocation the nodes could not hear of is applied once they follow changes again
    // (C's cache would have trusted the token for a minute), and everything else works
    // without a restart.
    for node in [&b, &c] {
        let (code, took) = until_refused(node, &revoked_meanwhile.secret, &[], "10.1.2.3").await;
        assert_eq!(code, Code::Revoked);
        eprintln!("revocation made during the gap applied {took:?} after the feed resumed");
        assert_eq!(node.verify(&kept.secret, &[]).await.code, Code::Valid);
        assert_eq!(node.verify(&never_seen.secret, &[]).await.code, Code::Valid);
    }
}

/// Usage written by three nodes, and rolled up by all three at once, counts every verify
/// exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_from_several_nodes_is_counted_exactly_once() {
    let Some((a, b, c)) = three_nodes().await else {
        return;
    };
    let role = a.api_role("Reader", Scope::Workspace, &[]).await;
    let user = a.service_user("Busy", Some(role.id)).await;
    let token = a.token_for(&user).await;
    let t0 = a.clock.now();
    const PER_NODE: usize = 100;
    let mut tasks = Vec::new();
    for node in [&a, &b, &c] {
        for _ in 0..PER_NODE {
            let (admin, secret) = (node.admin.clone(), token.secret.clone());
            tasks.push(tokio::spawn(async move {
                let v = admin
                    .verify(&VerifyRequest {
                        token: secret.into(),
                        ..VerifyRequest::default()
                    })
                    .await
                    .unwrap();
                assert_eq!(v.code, Code::Valid);
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Each node writes its own records when it stops (a graceful stop flushes the queue).
    let report = |app: &TestApp| {
        let admin = app.admin.clone();
        async move {
            admin
                .token_usage(
                    token.token.id,
                    &keyward_client::UsageParams {
                        from: Some(t0 - chrono::Duration::hours(1)),
                        to: Some(t0 + chrono::Duration::hours(1)),
                        granularity: None,
                    },
                )
                .await
                .unwrap()
                .total
        }
    };
    let (b_usage, c_usage) = (b.state.usage.clone(), c.state.usage.clone());
    b.shutdown().await;
    c.shutdown().await;
    let a_counters = a.state.usage.counters();
    for _ in 0..500 {
        if a_counters.written.load(std::sync::atomic::Ordering::SeqCst) >= PER_NODE as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(report(&a).await, 3 * PER_NODE as u64);
    // Past the raw retention, three nodes roll up at the same time: each record moves once.
    a.clock.advance(chrono::Duration::days(31));
    let (ma, mb, mc) = tokio::join!(
        a.state.usage.maintain_now(),
        b_usage.maintain_now(),
        c_usage.maintain_now()
    );
    let moved = ma.unwrap().rolled_up + mb.unwrap().rolled_up + mc.unwrap().rolled_up;
    assert_eq!(moved, 3 * PER_NODE as u64);
    assert_eq!(report(&a).await, 3 * PER_NODE as u64);
}

/// A network that silently drops everything between a node and PostgreSQL (no reset, no
/// refusal): the node notices within a few seconds, keeps verifying what it cached, answers
/// the rest 503 without waiting, and recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_notices_a_silently_dropped_network() {
    let Some((a, pg, upstream)) = behind_a_proxy().await else {
        return;
    };
    let b = a
        .another_node(|c| {
            c.database.url = upstream.to_string();
            c.cache.ttl_secs = 1;
        })
        .await;
    let role = a.api_role("Reader", Scope::Workspace, &[]).await;
    let user = a.service_user("Integration", Some(role.id)).await;
    let kept = a.token_for(&user).await;
    let never_seen = a.token_for(&user).await;
    assert_eq!(b.verify(&kept.secret, &[]).await.code, Code::Valid);
    b.admin.workspace().await.unwrap();
    let http = reqwest::Client::new();

    pg.freeze();
    let frozen = Instant::now();
    while metric(&b, "keyward_store_reachable").await != 0.0 {
        assert!(
            frozen.elapsed() < Duration::from_secs(10),
            "B never noticed the silence"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("a silent network noticed after {:?}", frozen.elapsed());
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(b.verify(&kept.secret, &[]).await.code, Code::Valid);
    let t = Instant::now();
    let r = b
        .admin
        .verify(&VerifyRequest {
            token: never_seen.secret.clone().into(),
            ..VerifyRequest::default()
        })
        .await;
    assert_eq!(code_of(r), "STORAGE_UNAVAILABLE");
    let r = http.get(format!("{}/readyz", b.url)).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());

    pg.restore();
    let back = Instant::now();
    while http
        .get(format!("{}/readyz", b.url))
        .send()
        .await
        .unwrap()
        .status()
        != 200
    {
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "B never recovered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("recovered after {:?}", back.elapsed());
    assert_eq!(b.verify(&never_seen.secret, &[]).await.code, Code::Valid);
}
