//! A keyward server per test and backend, and an axum app behind the layer over its store.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Extension, Json, Router};
use keyward_client::Client;
use keyward_core::api::{CreateRole, CreateToken, CreateUser, CreatedToken, PutPermission};
use keyward_core::model::{RoleKind, Scope, UserKind};
use keyward_server::{Application, Config};
use keyward_tower::{Gate, GateOptions, KeywardLayer, Principal};

/// Runs a scenario once on SQLite and once on PostgreSQL.
macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(s) =
                    crate::support::Server::spawn(crate::support::Backend::Sqlite).await
                {
                    super::$name(s).await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(s) =
                    crate::support::Server::spawn(crate::support::Backend::Postgres).await
                {
                    super::$name(s).await;
                }
            }
        }
    };
}
pub(crate) use both_backends;

/// Which store.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

fn random_hex() -> String {
    let mut b = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Why PostgreSQL at `url` cannot be reached at all (no TCP connection within 3 s), if so.
async fn postgres_unreachable(url: &str) -> Option<String> {
    use std::str::FromStr as _;
    let options = sqlx::postgres::PgConnectOptions::from_str(url)
        .unwrap_or_else(|e| panic!("the PostgreSQL test URL does not parse: {e}"));
    let (host, port) = (options.get_host().to_owned(), options.get_port());
    let attempt = tokio::net::TcpStream::connect((host.as_str(), port));
    match tokio::time::timeout(std::time::Duration::from_secs(3), attempt).await {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(format!("no connection to {host}:{port}: {e}")),
        Err(_) => Some(format!("no connection to {host}:{port} within 3 s")),
    }
}

/// Fails under `CI=true`; else says loudly, on the uncaptured stderr, that it skipped.
fn skip_postgres(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("PostgreSQL is required under CI=true: {why}");
    }
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED on PostgreSQL ({why}): `{test}` did not run there"
    );
}

/// A running keyward server on a fresh store, with its admin client.
pub struct Server {
    pub backend: Backend,
    pub config: Config,
    pub admin: Client,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl Server {
    /// `None` when PostgreSQL is unreachable outside CI.
    pub async fn spawn(backend: Backend) -> Option<Server> {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Like [`Server::spawn`], the configuration adjusted by `configure` last.
    pub async fn spawn_with(
        backend: Backend,
        configure: impl FnOnce(&mut Config),
    ) -> Option<Server> {
        let mut config = Config::default();
        config.server.listen = "127.0.0.1:0".into();
        config.server.shutdown_grace_secs = 1;
        config.database.max_connections = 4;
        config.tokens.admin_rate_limit_per_minute = 1_000_000;
        match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("keyward-tower-{}.db", random_hex()));
                config.database.url = format!("sqlite://{}", path.display());
            }
            Backend::Postgres => {
                config.database.url = std::env::var("KEYWARD_TEST_DATABASE_URL")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
                config.database.schema = format!("kwtower_{}", random_hex());
                config.audit.chain_key = format!("{}{}", random_hex(), random_hex()).repeat(2);
                if let Some(why) = postgres_unreachable(&config.database.url).await {
                    skip_postgres(&why);
                    return None;
                }
            }
        }
        configure(&mut config);
        let mut app = match Application::build(&config).await {
            Ok(app) => app,
            Err(e) => panic!("starting the server on {backend:?}: {e}"),
        };
        let created = app.take_bootstrap().expect("a fresh store has a workspace");
        let url = format!("http://127.0.0.1:{}", app.port());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        let admin = Client::new(&url, Some(created.admin_token.secret)).unwrap();
        Some(Server {
            backend,
            config,
            admin,
            server,
            stop,
        })
    }

    /// Stops the server gracefully; its configuration stays readable.
    pub async fn shutdown(self) -> Config {
        let _ = self.stop.send(());
        self.server.await.unwrap().unwrap();
        self.config
    }

    /// Gate options over the server's store (and chain key): the test route table, a 1 s
    /// cache TTL, a short usage flush.
    pub fn gate_options(&self) -> GateOptions {
        let mut options: GateOptions = toml::from_str(
            r#"
            cache.ttl_secs = 1
            usage.flush_interval_ms = 20
            [[edge.routes]]
            route = "GET /orders/{id}"
            permissions = ["orders:read"]
            [[edge.routes]]
            route = "GET /public"
            anonymous = true
            "#,
        )
        .unwrap();
        options.database_url = self.config.database.url.clone();
        options.schema = self.config.database.schema.clone();
        options.max_connections = 4;
        options.audit.chain_key = self.config.audit.chain_key.clone();
        options
    }

    /// Adds `perms` to the catalogue; an api role holding `role_perms`; a service user with
    /// it; a token for that user.
    pub async fn token_with(&self, name: &str, perms: &[&str]) -> CreatedToken {
        self.token_adjusted(name, perms, |_| {}).await
    }

    /// Like [`Server::token_with`], the token's request adjusted by `adjust`.
    pub async fn token_adjusted(
        &self,
        name: &str,
        perms: &[&str],
        adjust: impl FnOnce(&mut CreateToken),
    ) -> CreatedToken {
        for p in ["orders:read", "orders:write"] {
            let put = PutPermission {
                description: format!("{p} for tests"),
            };
            self.admin.put_permission(p, &put).await.unwrap();
        }
        let role = self
            .admin
            .create_role(&CreateRole {
                name: format!("{name} role"),
                description: String::new(),
                kind: RoleKind::Api,
                scope: Scope::Workspace,
                permissions: perms.iter().map(|s| (*s).to_owned()).collect(),
                ip_allowlist: None,
                rate_limit_per_minute: None,
                rate_limit_per: None,
            })
            .await
            .unwrap();
        let user = self
            .admin
            .create_user(&CreateUser {
                kind: UserKind::Service,
                name: name.into(),
                email: None,
                role_id: Some(role.id),
            })
            .await
            .unwrap();
        let mut req = CreateToken {
            owner_id: user.id,
            name: format!("{name} token"),
            role_id: None,
            permissions: None,
            metadata: None,
            not_before: None,
            expires_at: None,
            pending: false,
            ip_allowlist: None,
            internal_only: false,
            request_log: false,
            rate_limit_per_minute: None,
            rate_limit_per: None,
        };
        adjust(&mut req);
        self.admin.create_token(&req).await.unwrap()
    }

    /// Makes the store unusable for token lookups: its `tokens` table is renamed away.
    pub async fn break_the_store(&self) {
        let url = &self.config.database.url;
        match self.backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(url).await.unwrap();
                sqlx::query("ALTER TABLE tokens RENAME TO tokens_gone")
                    .execute(&pool)
                    .await
                    .unwrap();
                pool.close().await;
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(url).await.unwrap();
                let schema = &self.config.database.schema;
                sqlx::query(&format!(
                    "ALTER TABLE \"{schema}\".tokens RENAME TO tokens_gone"
                ))
                .execute(&pool)
                .await
                .unwrap();
                pool.close().await;
            }
        }
    }
}

/// An axum app behind the layer, served on 127.0.0.1 with the peer address.
pub struct App {
    pub url: String,
    pub gate: Arc<Gate>,
    /// How many times a handler ran.
    pub calls: Arc<AtomicUsize>,
    pub http: reqwest::Client,
}

impl App {
    pub async fn spawn(options: &GateOptions) -> App {
        let layer = KeywardLayer::connect(options).await.unwrap();
        let gate = layer.gate().clone();
        let calls = Arc::new(AtomicUsize::new(0));
        let (c1, c2) = (calls.clone(), calls.clone());
        let app = Router::new()
            .route(
                "/orders/{id}",
                get(
                    move |Extension(p): Extension<Principal>, headers: HeaderMap| async move {
                        c1.fetch_add(1, Ordering::SeqCst);
                        Json(serde_json::json!({
                            "token_id": p.token_id.to_string(),
                            "permissions": p.permissions.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
                            "forged_header": headers.get("x-keyward-token-id")
                                .map(|v| v.to_str().unwrap_or_default().to_owned()),
                        }))
                    },
                ),
            )
            .route(
                "/public",
                get(move |p: Option<Extension<Principal>>| async move {
                    c2.fetch_add(1, Ordering::SeqCst);
                    if p.is_some() { "someone" } else { "anonymous" }
                }),
            )
            .layer(layer);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
        App {
            url,
            gate,
            calls,
            http: reqwest::Client::new(),
        }
    }

    /// `GET path` with `secret` as a bearer token (if any).
    pub async fn get(&self, path: &str, secret: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(format!("{}{path}", self.url));
        if let Some(s) = secret {
            req = req.bearer_auth(s);
        }
        req.send().await.unwrap()
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// The problem+json body of a refusal, after checking its content type.
pub async fn problem(res: reqwest::Response) -> serde_json::Value {
    let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(ct, "application/problem+json");
    res.json().await.unwrap()
}
