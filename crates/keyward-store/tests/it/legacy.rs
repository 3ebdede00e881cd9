//! Upgrading a database written before the audit chain was keyed: the schema of version 6 is
//! built from its own migration files and filled with a plain SHA-256 chain, as keyward wrote
//! it then; opening it with a chain key keeps every old event verifiable, binds them under the
//! key with an `audit.chain_keyed` event, and keys every new event. A rewrite of an old event
//! with the plain hashes recomputed (all that a writer without the key can do) is found.

use keyward_core::audit::{
    keyed_hash, plain_hash, Actor, AuditDraft, AuditEvent, CHAIN_KEYED_ACTION,
};
use keyward_core::model::WorkspaceSettings;
use keyward_core::WorkspaceId;
use keyward_store::{AuditFilter, Store, StoreOptions};
use sqlx::Connection as _;

use crate::fixtures::now;
use crate::support::{chain_key, drop_schema, postgres_or_skip, random_hex};

const SQLITE_V6: [&str; 6] = [
    include_str!("../../migrations/sqlite/0001_init.sql"),
    include_str!("../../migrations/sqlite/0002_access_policy.sql"),
    include_str!("../../migrations/sqlite/0003_audit.sql"),
    include_str!("../../migrations/sqlite/0004_usage.sql"),
    include_str!("../../migrations/sqlite/0005_events.sql"),
    include_str!("../../migrations/sqlite/0006_rotation.sql"),
];

const POSTGRES_V6: [&str; 6] = [
    include_str!("../../migrations/postgres/0001_init.sql"),
    include_str!("../../migrations/postgres/0002_access_policy.sql"),
    include_str!("../../migrations/postgres/0003_audit.sql"),
    include_str!("../../migrations/postgres/0004_usage.sql"),
    include_str!("../../migrations/postgres/0005_events.sql"),
    include_str!("../../migrations/postgres/0006_rotation.sql"),
];

/// Runs `$body(url, schema, raw)` on a version-6 database per backend.
macro_rules! per_backend {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::on_sqlite_v6(super::$name).await;
            }
            #[tokio::test]
            async fn postgres() {
                super::on_postgres_v6(super::$name).await;
            }
        }
    };
}

/// A database as the test sees it: how to open it as a store, and raw SQL behind its back.
pub struct OldDb {
    options: StoreOptions,
    pg_schema: Option<String>,
    sqlite: bool,
}

impl OldDb {
    async fn raw(&self) -> Raw {
        if self.sqlite {
            Raw::Sqlite(
                sqlx::SqliteConnection::connect(&self.options.url)
                    .await
                    .unwrap(),
            )
        } else {
            let mut c = sqlx::PgConnection::connect(&self.options.url)
                .await
                .unwrap();
            let schema = self.pg_schema.as_deref().unwrap();
            sqlx::raw_sql(&format!("SET search_path TO \"{schema}\""))
                .execute(&mut c)
                .await
                .unwrap();
            Raw::Pg(c)
        }
    }

    async fn open(&self) -> std::sync::Arc<dyn Store> {
        keyward_store::open(&self.options).await.unwrap()
    }
}

enum Raw {
    Sqlite(sqlx::SqliteConnection),
    Pg(sqlx::PgConnection),
}

/// Runs `sql` with `args` bound as text or integers, on either backend.
macro_rules! exec {
    ($raw:expr, $sql:expr $(, $arg:expr)* $(,)?) => {
        match $raw {
            Raw::Sqlite(c) => {
                sqlx::query($sql)$(.bind($arg))*.execute(&mut *c).await.unwrap();
            }
            Raw::Pg(c) => {
                sqlx::query($sql)$(.bind($arg))*.execute(&mut *c).await.unwrap();
            }
        }
    };
}

async fn on_sqlite_v6<F, Fut>(test: F)
where
    F: FnOnce(OldDb) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let path = std::env::temp_dir().join(format!("keyward-legacy-{}.db", random_hex()));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let db = OldDb {
        options: StoreOptions {
            url: url.clone(),
            schema: None,
            max_connections: 2,
            chain_key: chain_key(),
            sqlite_synchronous: keyward_store::SqliteSync::Full,
        },
        pg_schema: None,
        sqlite: true,
    };
    let mut raw = db.raw().await;
    if let Raw::Sqlite(c) = &mut raw {
        for sql in SQLITE_V6 {
            sqlx::raw_sql(sql).execute(&mut *c).await.unwrap();
        }
    }
    record_versions(&mut raw).await;
    drop(raw);
    test(db).await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

async fn on_postgres_v6<F, Fut>(test: F)
where
    F: FnOnce(OldDb) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let url = std::env::var("KEYWARD_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let thread = std::thread::current();
    if !postgres_or_skip(&url, thread.name().unwrap_or("a legacy upgrade test")).await {
        return;
    }
    let schema = format!("kwlegacy_{}", random_hex());
    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(&format!("CREATE SCHEMA \"{schema}\""))
        .execute(&mut c)
        .await
        .unwrap();
    drop(c);
    let db = OldDb {
        options: StoreOptions {
            url: url.clone(),
            schema: Some(schema.clone()),
            max_connections: 2,
            chain_key: chain_key(),
            sqlite_synchronous: keyward_store::SqliteSync::Full,
        },
        pg_schema: Some(schema.clone()),
        sqlite: false,
    };
    let mut raw = db.raw().await;
    if let Raw::Pg(c) = &mut raw {
        for sql in POSTGRES_V6 {
            sqlx::raw_sql(sql).execute(&mut *c).await.unwrap();
        }
    }
    record_versions(&mut raw).await;
    drop(raw);
    test(db).await;
    drop_schema(&url, &schema).await;
}

async fn record_versions(raw: &mut Raw) {
    exec!(
        raw,
        "CREATE TABLE keyward_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, \
         applied_at BIGINT NOT NULL)"
    );
    for v in 1..=6i64 {
        exec!(
            raw,
            "INSERT INTO keyward_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            v,
            format!("v{v}"),
            0i64
        );
    }
}

/// Writes a workspace and a plain chain of `n` events the way version 6 did.
async fn old_chain(raw: &mut Raw, n: usize) -> (WorkspaceId, Vec<AuditEvent>) {
    let ws = WorkspaceId::random(&mut rand_core::OsRng);
    let id = ws.uuid().to_string();
    let settings = serde_json::to_string(&WorkspaceSettings::default()).unwrap();
    let t = now().timestamp_millis();
    match raw {
        Raw::Sqlite(c) => {
            sqlx::query(
                "INSERT INTO workspaces (id, name, operator, settings, created_at, updated_at) \
                 VALUES ($1, 'Old', 1, $2, $3, $3)",
            )
            .bind(&id)
            .bind(&settings)
            .bind(t)
            .execute(&mut *c)
            .await
            .unwrap();
        }
        Raw::Pg(c) => {
            sqlx::query(
                "INSERT INTO workspaces (id, name, operator, settings, created_at, updated_at) \
                 VALUES ($1, 'Old', TRUE, $2, $3, $3)",
            )
            .bind(&id)
            .bind(&settings)
            .bind(t)
            .execute(&mut *c)
            .await
            .unwrap();
        }
    }
    let mut events: Vec<AuditEvent> = Vec::new();
    for i in 0..n {
        let prev = events.last().map(|e| e.hash.clone()).unwrap_or_default();
        let seq = i as i64 + 1;
        let d = AuditDraft::new(ws, now(), Actor::SYSTEM, &format!("old.e{i}"), "x", "y")
            .after(&serde_json::json!({ "i": i }));
        let d = AuditDraft {
            at: chrono::DateTime::from_timestamp_millis(d.at.timestamp_millis()).unwrap(),
            ..d
        };
        let hash = plain_hash(&prev, seq, &d);
        insert_event(raw, &id, seq, &d, &prev, &hash).await;
        events.push(AuditEvent {
            seq,
            draft: d,
            prev_hash: prev,
            hash,
        });
    }
    let last = events.last().unwrap();
    exec!(
        raw,
        "INSERT INTO audit_heads (workspace_id, seq, hash) VALUES ($1, $2, $3)",
        id.clone(),
        last.seq,
        last.hash.clone()
    );
    (ws, events)
}

async fn insert_event(raw: &mut Raw, ws: &str, seq: i64, d: &AuditDraft, prev: &str, hash: &str) {
    exec!(
        raw,
        "INSERT INTO audit_events (workspace_id, seq, at, actor_kind, actor_token, actor_user, \
         action, target_kind, target_id, before, after, ip, count, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, NULL, NULL, $5, $6, $7, NULL, $8, NULL, $9, $10, $11)",
        ws.to_owned(),
        seq,
        d.at.timestamp_millis(),
        d.actor.kind.as_str(),
        d.action.clone(),
        d.target_kind.clone(),
        d.target_id.clone(),
        d.after.clone(),
        i64::from(d.count),
        prev.to_owned(),
        hash.to_owned()
    );
}

async fn events(store: &std::sync::Arc<dyn Store>, ws: WorkspaceId) -> Vec<AuditEvent> {
    let f = AuditFilter {
        limit: 1000,
        ..AuditFilter::default()
    };
    store.list_audit(ws, &f).await.unwrap()
}

async fn an_old_plain_chain_still_verifies_after_the_upgrade(db: OldDb) {
    let (ws, old) = old_chain(&mut db.raw().await, 3).await;
    let store = db.open().await;
    // The upgrade bound the old chain with one keyed event, and everything checks.
    let now_events = events(&store, ws).await;
    assert_eq!(now_events.len(), 4);
    assert_eq!(&now_events[..3], &old[..], "old events are untouched");
    let marker = &now_events[3];
    assert_eq!(marker.draft.action, CHAIN_KEYED_ACTION);
    assert_eq!(marker.prev_hash, old[2].hash);
    let key = chain_key();
    assert_eq!(
        marker.hash,
        keyed_hash(&key, &marker.prev_hash, 4, &marker.draft)
    );
    let v = store.verify_audit(ws, None).await.unwrap();
    assert!(v.intact, "{v:?}");
    assert_eq!((v.events_checked, v.keyed_from), (4, Some(4)));

    // New events are keyed, not plain.
    store
        .append_audit(&[AuditDraft::new(ws, now(), Actor::SYSTEM, "new.e", "x", "y")])
        .await
        .unwrap();
    let e = events(&store, ws).await.pop().unwrap();
    assert_eq!(e.seq, 5);
    assert_eq!(e.hash, keyed_hash(&key, &e.prev_hash, 5, &e.draft));
    assert_ne!(e.hash, plain_hash(&e.prev_hash, 5, &e.draft));
    assert!(store.verify_audit(ws, None).await.unwrap().intact);

    // Opening again keys nothing twice.
    drop(store);
    let store = db.open().await;
    assert_eq!(events(&store, ws).await.len(), 5);
    assert!(store.verify_audit(ws, None).await.unwrap().intact);
}
per_backend!(an_old_plain_chain_still_verifies_after_the_upgrade);

async fn rewriting_an_old_event_with_plain_hashes_recomputed_is_found(db: OldDb) {
    let (ws, old) = old_chain(&mut db.raw().await, 3).await;
    let store = db.open().await;
    assert!(store.verify_audit(ws, None).await.unwrap().intact);
    // Event 2 is rewritten and events 2 and 3 get consistent plain hashes: the old
    // algorithm, which needs no key. The keyed event 4 covers the old event 3's hash.
    let mut raw = db.raw().await;
    let id = ws.uuid().to_string();
    let forged = AuditDraft {
        action: "old.forged".into(),
        ..old[1].draft.clone()
    };
    let h2 = plain_hash(&old[0].hash, 2, &forged);
    let h3 = plain_hash(&h2, 3, &old[2].draft);
    exec!(
        &mut raw,
        "UPDATE audit_events SET action = $1, hash = $2 WHERE workspace_id = $3 AND seq = 2",
        forged.action.clone(),
        h2.clone(),
        id.clone()
    );
    exec!(
        &mut raw,
        "UPDATE audit_events SET prev_hash = $1, hash = $2 WHERE workspace_id = $3 AND seq = 3",
        h2.clone(),
        h3.clone(),
        id.clone()
    );
    let v = store.verify_audit(ws, None).await.unwrap();
    assert!(!v.intact);
    assert_eq!(
        v.first_broken.map(|b| b.seq),
        Some(4),
        "the first keyed event"
    );

    // Moving the border so the keyed events pass as plain ones needs the key.
    let events_now = events(&store, ws).await;
    let mut prev = h3;
    for e in &events_now[3..] {
        let h = plain_hash(&prev, e.seq, &e.draft);
        exec!(
            &mut raw,
            "UPDATE audit_events SET prev_hash = $1, hash = $2 WHERE workspace_id = $3 AND seq = $4",
            prev.clone(),
            h.clone(),
            id.clone(),
            e.seq
        );
        prev = h;
    }
    exec!(
        &mut raw,
        "UPDATE audit_heads SET hash = $1, keyed_from = 99 WHERE workspace_id = $2",
        prev.clone(),
        id.clone()
    );
    let v = store.verify_audit(ws, None).await.unwrap();
    assert!(!v.intact, "{v:?}");
    assert_eq!(v.keyed_from, None);
    let b = v.first_broken.unwrap();
    assert!(b.reason.contains("keyed events begin"), "{b:?}");
    // Erasing the border altogether is found the same way, and opening the store again does
    // not key the rewritten chain afresh.
    exec!(
        &mut raw,
        "UPDATE audit_heads SET keyed_from = NULL, keyed_mac = NULL WHERE workspace_id = $1",
        id.clone()
    );
    assert!(!store.verify_audit(ws, None).await.unwrap().intact);
    drop(store);
    let store = db.open().await;
    assert_eq!(events(&store, ws).await.len(), events_now.len());
    assert!(!store.verify_audit(ws, None).await.unwrap().intact);
}

/// The limit of what the database alone can prove, and what a checkpoint adds: someone who
/// can write the database can make it look like one from before the upgrade (every hash plain,
/// the head marked as never keyed), and the next start keys it as such. A checkpoint kept
/// elsewhere still finds it.
async fn a_chain_passed_off_as_pre_upgrade_fails_its_checkpoint(db: OldDb) {
    let (ws, _) = old_chain(&mut db.raw().await, 2).await;
    let store = db.open().await;
    store
        .append_audit(&[AuditDraft::new(ws, now(), Actor::SYSTEM, "new.e", "x", "y")])
        .await
        .unwrap();
    let cp = store.audit_checkpoint(ws, now()).await.unwrap();
    assert!(store.verify_audit(ws, Some(&cp)).await.unwrap().intact);
    drop(store);
    let mut raw = db.raw().await;
    let id = ws.uuid().to_string();
    let store = db.open().await;
    let mut prev = String::new();
    for e in events(&store, ws).await {
        let h = plain_hash(&prev, e.seq, &e.draft);
        exec!(
            &mut raw,
            "UPDATE audit_events SET prev_hash = $1, hash = $2 WHERE workspace_id = $3 AND seq = $4",
            prev.clone(),
            h.clone(),
            id.clone(),
            e.seq
        );
        prev = h;
    }
    exec!(
        &mut raw,
        "UPDATE audit_heads SET hash = $1, keyed_from = 0, keyed_mac = NULL WHERE workspace_id = $2",
        prev.clone(),
        id.clone()
    );
    drop(store);
    let store = db.open().await;
    assert!(store.verify_audit(ws, None).await.unwrap().intact);
    let v = store.verify_audit(ws, Some(&cp)).await.unwrap();
    assert!(!v.intact, "{v:?}");
    assert_eq!(v.first_broken.map(|b| b.seq), Some(cp.seq));
}
per_backend!(rewriting_an_old_event_with_plain_hashes_recomputed_is_found);
per_backend!(a_chain_passed_off_as_pre_upgrade_fails_its_checkpoint);
