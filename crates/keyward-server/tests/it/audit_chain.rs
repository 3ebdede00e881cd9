//! The keyed audit chain against someone who can write the database but does not hold the
//! chain key: a rewritten event with every plain hash recomputed, two events reordered, and a
//! chain cut back behind a checkpoint are each named by the check; checkpoints are signed,
//! and a forged one is refused. The key never lives in the database: SQLite's default key file
//! is created next to it (mode 0600) and kept across restarts; PostgreSQL without a configured
//! key refuses to start.

use keyward_core::audit::{plain_hash, AuditEvent, Checkpoint};
use keyward_core::model::Scope;
use keyward_core::WorkspaceId;
use keyward_server::{Application, Config};
use keyward_store::AuditFilter;

use crate::support::{both_backends, code_of, problem_of, raw_sql, TestApp};

async fn ws(app: &TestApp) -> WorkspaceId {
    app.admin.workspace().await.unwrap().id
}

async fn stored(app: &TestApp) -> Vec<AuditEvent> {
    let f = AuditFilter {
        limit: 1000,
        ..AuditFilter::default()
    };
    app.state.store.list_audit(ws(app).await, &f).await.unwrap()
}

/// A few admin actions, so the chain has events to tamper with.
async fn some_history(app: &TestApp, tag: &str) {
    app.catalogue(&[&format!("{tag}:read"), &format!("{tag}:write")])
        .await;
    app.api_role(&format!("{tag} reader"), Scope::Workspace, &[])
        .await;
}

/// Rewrites event `seq` with `action`, gives it and every later event consistent plain
/// hashes, and points the head at the new last hash: all that SQL alone can do.
async fn rewrite_with_plain_hashes(app: &TestApp, seq: i64, action: &str) {
    let ws = ws(app).await.uuid().to_string();
    let mut events = stored(app).await;
    let mut sql = String::new();
    let mut prev = events[(seq - 2) as usize].hash.clone();
    for e in events.iter_mut().filter(|e| e.seq >= seq) {
        if e.seq == seq {
            e.draft.action = action.into();
        }
        let hash = plain_hash(&prev, e.seq, &e.draft);
        sql.push_str(&format!(
            "UPDATE audit_events SET action = '{}', prev_hash = '{prev}', hash = '{hash}' \
             WHERE workspace_id = '{ws}' AND seq = {};",
            e.draft.action, e.seq
        ));
        prev = hash;
    }
    sql.push_str(&format!(
        "UPDATE audit_heads SET hash = '{prev}' WHERE workspace_id = '{ws}';"
    ));
    raw_sql(app, &sql).await;
}

async fn rewriting_with_recomputed_plain_hashes_is_found(app: TestApp) {
    some_history(&app, "cart").await;
    let before = app.admin.verify_audit().await.unwrap();
    assert!(before.intact, "{before:?}");
    assert_eq!(
        before.keyed_from,
        Some(1),
        "a new database is keyed from its start"
    );
    rewrite_with_plain_hashes(&app, 3, "permission.viewed").await;
    // Every link is consistent again, as an unkeyed chain would accept.
    let events = stored(&app).await;
    for w in events.windows(2) {
        assert_eq!(w[1].prev_hash, w[0].hash);
    }
    let check = app.admin.verify_audit().await.unwrap();
    assert!(!check.intact);
    let b = check.first_broken.unwrap();
    assert_eq!(b.seq, 3, "{b:?}");
    assert!(b.reason.contains("keyed hash"), "{b:?}");
    assert_eq!(check.events_checked, 2);
}
both_backends!(rewriting_with_recomputed_plain_hashes_is_found);

async fn a_reordering_of_two_events_is_named(app: TestApp) {
    some_history(&app, "cart").await;
    assert!(app.admin.verify_audit().await.unwrap().intact);
    // Events 2 and 3 trade numbers; their content, hashes and links are untouched.
    let ws = ws(&app).await.uuid().to_string();
    raw_sql(
        &app,
        &format!(
            "UPDATE audit_events SET seq = -2 WHERE workspace_id = '{ws}' AND seq = 2; \
             UPDATE audit_events SET seq = 2 WHERE workspace_id = '{ws}' AND seq = 3; \
             UPDATE audit_events SET seq = 3 WHERE workspace_id = '{ws}' AND seq = -2;"
        ),
    )
    .await;
    let check = app.admin.verify_audit().await.unwrap();
    assert!(!check.intact);
    let b = check.first_broken.unwrap();
    assert_eq!(b.seq, 2, "the first moved event is named: {b:?}");
    assert_eq!(check.events_checked, 1);
}
both_backends!(a_reordering_of_two_events_is_named);

async fn a_checkpoint_finds_a_chain_cut_back_past_it(app: TestApp) {
    some_history(&app, "cart").await;
    let cp = app.admin.audit_checkpoint().await.unwrap();
    assert_eq!(cp.workspace_id, ws(&app).await);
    let head = app.admin.verify_audit().await.unwrap().head_seq;
    assert_eq!(cp.seq, head);
    // It is one line of JSON, as `keyward audit checkpoint` prints it.
    let line = serde_json::to_string(&cp).unwrap();
    assert!(!line.contains('\n'));
    let cp: Checkpoint = serde_json::from_str(&line).unwrap();
    // More history; the chain still passes through the checkpoint.
    some_history(&app, "order").await;
    let ok = app.admin.verify_audit_checkpoint(&cp).await.unwrap();
    assert!(ok.intact, "{ok:?}");
    assert_eq!(ok.checkpoint_seq, Some(cp.seq));

    // Someone cuts the chain back to two events before the checkpoint and rewinds the head:
    // what is left is a consistent keyed chain, so the check alone cannot see it.
    let ws = ws(&app).await.uuid().to_string();
    let keep = cp.seq - 2;
    let kept_hash = stored(&app).await[(keep - 1) as usize].hash.clone();
    raw_sql(
        &app,
        &format!(
            "DELETE FROM audit_events WHERE workspace_id = '{ws}' AND seq > {keep}; \
             UPDATE audit_heads SET seq = {keep}, hash = '{kept_hash}' WHERE workspace_id = '{ws}';"
        ),
    )
    .await;
    assert!(app.admin.verify_audit().await.unwrap().intact);
    let cut = app.admin.verify_audit_checkpoint(&cp).await.unwrap();
    assert!(!cut.intact);
    let b = cut.first_broken.unwrap();
    assert_eq!(b.seq, cp.seq, "the checkpoint is named: {b:?}");
    assert!(b.reason.contains("removed"), "{b:?}");

    // New events fill the numbers again; the checkpoint's event is another one now.
    some_history(&app, "invoice").await;
    assert!(app.admin.verify_audit().await.unwrap().head_seq > cp.seq);
    let refilled = app.admin.verify_audit_checkpoint(&cp).await.unwrap();
    let b = refilled.first_broken.unwrap();
    assert_eq!(b.seq, cp.seq, "{b:?}");
    assert!(b.reason.contains("checkpoint"), "{b:?}");
}
both_backends!(a_checkpoint_finds_a_chain_cut_back_past_it);

async fn a_forged_checkpoint_is_refused(app: TestApp) {
    some_history(&app, "cart").await;
    let cp = app.admin.audit_checkpoint().await.unwrap();
    let mut later = cp.clone();
    later.seq += 1;
    for forged in [
        Checkpoint {
            seq: cp.seq - 1,
            ..cp.clone()
        },
        Checkpoint {
            hash: "00".repeat(32),
            ..cp.clone()
        },
        Checkpoint {
            at: cp.at + chrono::TimeDelta::seconds(1),
            ..cp.clone()
        },
        later,
    ] {
        let p = problem_of(app.admin.verify_audit_checkpoint(&forged).await);
        assert_eq!(p.code, "INVALID_CHECKPOINT", "{p:?}");
        assert_eq!(p.field.as_deref(), Some("signature"), "{p:?}");
        assert!(!p.detail.contains(&forged.hash));
    }
    // Another workspace's checkpoint, genuine there, is refused here.
    let b = app
        .admin
        .create_workspace(&keyward_core::api::CreateWorkspace {
            name: "Other".into(),
            settings: None,
        })
        .await
        .unwrap();
    let theirs = app
        .client(&b.admin_token.secret)
        .audit_checkpoint()
        .await
        .unwrap();
    let p = problem_of(app.admin.verify_audit_checkpoint(&theirs).await);
    assert_eq!(
        (p.code.as_str(), p.field.as_deref()),
        ("INVALID_CHECKPOINT", Some("workspace_id"))
    );
    // Signing and checking need keyward.audit:read.
    let role = app
        .api_role("No audit", Scope::Workspace, &["keyward.tokens:read"])
        .await;
    let user = app.service_user("no-audit", Some(role.id)).await;
    let c = app.client(&app.token_for(&user).await.secret);
    assert_eq!(
        code_of(c.audit_checkpoint().await),
        "INSUFFICIENT_PERMISSIONS"
    );
    assert_eq!(
        code_of(c.verify_audit_checkpoint(&cp).await),
        "INSUFFICIENT_PERMISSIONS"
    );
}
both_backends!(a_forged_checkpoint_is_refused);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_its_generated_key_next_to_the_database() {
    let Some(app) = TestApp::spawn(crate::support::Backend::Sqlite).await else {
        return;
    };
    let db = app
        .config
        .database
        .url
        .trim_start_matches("sqlite://")
        .to_owned();
    let key_file = format!("{db}.audit-key");
    let text = std::fs::read_to_string(&key_file).unwrap();
    assert_eq!(text.trim().len(), 64, "32 bytes, hex");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The key is nowhere in the database.
    let dump = std::fs::read(&db).unwrap();
    assert!(!dump.windows(64).any(|w| w == text.trim().as_bytes()));
    some_history(&app, "cart").await;
    let cp = app.admin.audit_checkpoint().await.unwrap();
    let ws = cp.workspace_id;
    let app = app.restart().await;
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), text);
    let v = app.admin.verify_audit_checkpoint(&cp).await.unwrap();
    assert!(v.intact, "{v:?}");
    // Without its key file, the database's chain no longer checks.
    let state = app.shutdown().await;
    drop(state);
    std::fs::remove_file(&key_file).unwrap();
    let config: Config = {
        let mut c = Config::default();
        c.server.listen = "127.0.0.1:0".into();
        c.database.url = format!("sqlite://{db}");
        c
    };
    let other = Application::build(&config).await.unwrap();
    let v = other.state().store.verify_audit(ws, None).await.unwrap();
    assert!(!v.intact, "{v:?}");
}

#[tokio::test]
async fn postgres_without_a_chain_key_refuses_to_start() {
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".into();
    config.database.url = "postgres://postgres@127.0.0.1:5432/test".into();
    config.database.schema = format!("kwit_{}", crate::support::random_hex());
    let err = match Application::build(&config).await {
        Ok(_) => panic!("started without a chain key"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("audit.chain_key_file"), "{err}");
}
