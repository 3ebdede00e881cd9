//! Spawning the application per test and backend, capturing every log line, and small
//! helpers to set up users, roles and tokens.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{TimeZone, Utc};
use keyward_client::{Client, ClientError};
use keyward_core::api::{
    CreateRole, CreateToken, CreateUser, CreatedToken, PutPermission, VerifyRequest, VerifyResponse,
};
use keyward_core::model::{Role, RoleKind, Scope, User, UserKind};
use keyward_core::RoleId;
use keyward_server::clock::ManualClock;
use keyward_server::state::AppState;
use keyward_server::{Application, Config};

/// Runs a test body once against SQLite and once against PostgreSQL.
macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(app) =
                    crate::support::TestApp::spawn(crate::support::Backend::Sqlite).await
                {
                    super::$name(app).await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) =
                    crate::support::TestApp::spawn(crate::support::Backend::Postgres).await
                {
                    super::$name(app).await;
                }
            }
        }
    };
}
pub(crate) use both_backends;

/// Which store a test runs on.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Every log line written by any test in this binary, at TRACE level.
pub fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buf
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Whether any captured log line contains `needle`.
pub fn logs_contain(needle: &str) -> bool {
    let logs = logs().lock().unwrap();
    String::from_utf8_lossy(&logs).contains(needle)
}

/// A running application with an admin client.
pub struct TestApp {
    pub url: String,
    pub admin: Client,
    pub admin_secret: String,
    pub clock: Arc<ManualClock>,
    /// The running application's state (store, usage pipeline…).
    pub state: AppState,
    /// The configuration it runs with.
    pub config: Config,
    /// The gateway's address (`http://127.0.0.1:port`), when `gateway.upstream` is set.
    pub gateway_url: Option<String>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// `KEYWARD_TEST_DATABASE_URL`, or the local default.
pub fn postgres_url() -> String {
    std::env::var("KEYWARD_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// How many PostgreSQL halves of tests this run skipped so far.
pub static POSTGRES_SKIPS: AtomicUsize = AtomicUsize::new(0);

/// Why PostgreSQL at `url` cannot be reached at all, if it cannot: no TCP (or Unix socket)
/// connection to its host and port within a few seconds. Only this lets a PostgreSQL test
/// skip; any other start-up error fails the test.
pub async fn postgres_unreachable(url: &str) -> Option<String> {
    use std::str::FromStr as _;
    let options = sqlx::postgres::PgConnectOptions::from_str(url)
        .unwrap_or_else(|e| panic!("the PostgreSQL test URL does not parse: {e}"));
    let (host, port) = (options.get_host().to_owned(), options.get_port());
    let socket = options
        .get_socket()
        .cloned()
        .or_else(|| host.starts_with('/').then(|| host.clone().into()))
        .map(|dir: std::path::PathBuf| dir.join(format!(".s.PGSQL.{port}")));
    let place = match &socket {
        Some(path) => path.display().to_string(),
        None => format!("{host}:{port}"),
    };
    let attempt = async {
        match &socket {
            Some(path) => tokio::net::UnixStream::connect(path).await.map(drop),
            None => tokio::net::TcpStream::connect((host.as_str(), port))
                .await
                .map(drop),
        }
    };
    match tokio::time::timeout(std::time::Duration::from_secs(3), attempt).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("no connection to {place}: {e}")),
        Err(_) => Some(format!("no connection to {place} within 3 s")),
    }
}

/// Skips the PostgreSQL half of the running test, or fails it under `CI=true`. The line goes
/// to the process's stderr directly (libtest captures only the print macros), so it shows in
/// `cargo test`'s output, numbered: the last one tells how many were skipped.
pub fn skip_postgres(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("PostgreSQL is required under CI=true: {why}");
    }
    let n = POSTGRES_SKIPS.fetch_add(1, Ordering::SeqCst) + 1;
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED on PostgreSQL ({why}): `{test}` did not run there [{n} PostgreSQL test(s) skipped so far]"
    );
}

/// Sixteen random hex digits, for unique file and schema names.
pub fn random_hex() -> String {
    let mut b = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl TestApp {
    /// Starts the app on a fresh database; `None` (after saying so on stderr, uncaptured) when
    /// PostgreSQL does not accept connections at all, outside CI. Under `CI=true` an
    /// unreachable PostgreSQL fails the test, and so does any other start-up error always.
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Like [`TestApp::spawn`], with the configuration adjusted by `configure`. The server
    /// listens on `[::]` so IPv4 and IPv6 clients can both reach it.
    pub async fn spawn_with(
        backend: Backend,
        configure: impl FnOnce(&mut Config),
    ) -> Option<TestApp> {
        logs();
        let mut config = Config::default();
        config.server.listen = "[::]:0".into();
        config.server.shutdown_grace_secs = 1;
        config.database.max_connections = 4;
        // No token hands out a higher limit than its own: the tests' admin may give any.
        config.tokens.admin_rate_limit_per_minute = 1_000_000;
        // The tests' webhook receivers listen on 127.0.0.1.
        config.webhooks.allowed_destinations = vec!["127.0.0.0/8".into()];
        match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("keyward-it-{}.db", random_hex()));
                config.database.url = format!("sqlite://{}", path.display());
            }
            Backend::Postgres => {
                config.database.url = postgres_url();
                config.database.schema = format!("kwit_{}", random_hex());
                // PostgreSQL needs a configured chain key (SQLite generates its key file).
                config.audit.chain_key = format!("{}{}", random_hex(), random_hex()).repeat(2);
            }
        }
        configure(&mut config);
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap(),
        ));
        if matches!(backend, Backend::Postgres) {
            if let Some(why) = postgres_unreachable(&config.database.url).await {
                skip_postgres(&why);
                return None;
            }
        }
        // PostgreSQL answers: any error now (a refused login, a migration bug, a bad schema
        // name) is a failure, never a skip.
        let mut app = match Application::build_with_clock(&config, clock.clone()).await {
            Ok(app) => app,
            Err(e) => panic!("starting the app on {backend:?}: {e}"),
        };
        let created = app
            .take_bootstrap()
            .expect("a fresh store creates the first workspace");
        let url = format!("http://127.0.0.1:{}", app.port());
        let gateway_url = app
            .gateway_port()
            .map(|port| format!("http://127.0.0.1:{port}"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = app.state().clone();
        let server = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        let admin = Client::new(&url, Some(created.admin_token.secret.clone())).unwrap();
        Some(TestApp {
            url,
            admin,
            admin_secret: created.admin_token.secret,
            clock,
            state,
            config,
            gateway_url,
            server,
            _stop: stop,
        })
    }

    /// Stops the application gracefully and starts it again on the same database (file or
    /// schema), with the same clock and admin token: a restart.
    pub async fn restart(self) -> TestApp {
        let (config, clock, admin_secret) = (
            self.config.clone(),
            self.clock.clone(),
            self.admin_secret.clone(),
        );
        self.shutdown().await;
        Self::start(config, clock, admin_secret).await
    }

    /// Starts another node on this app's database (file or schema), with the same clock and
    /// admin token, its own cache, pool and limiter, and the configuration adjusted by
    /// `configure`; this app keeps running.
    pub async fn another_node(&self, configure: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = self.config.clone();
        configure(&mut config);
        Self::start(config, self.clock.clone(), self.admin_secret.clone()).await
    }

    /// Builds and runs an application on an existing database.
    async fn start(config: Config, clock: Arc<ManualClock>, admin_secret: String) -> TestApp {
        let app = Application::build_with_clock(&config, clock.clone())
            .await
            .expect("starting the app on an existing database");
        let url = format!("http://127.0.0.1:{}", app.port());
        let gateway_url = app
            .gateway_port()
            .map(|port| format!("http://127.0.0.1:{port}"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = app.state().clone();
        let server = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        let admin = Client::new(&url, Some(admin_secret.clone())).unwrap();
        TestApp {
            url,
            admin,
            admin_secret,
            clock,
            state,
            config,
            gateway_url,
            server,
            _stop: stop,
        }
    }

    /// Stops the application gracefully and waits until `run_until` has returned.
    pub async fn shutdown(self) -> AppState {
        let _ = self._stop.send(());
        self.server.await.unwrap().unwrap();
        self.state
    }

    /// A client authenticated with `secret`.
    pub fn client(&self, secret: &str) -> Client {
        Client::new(&self.url, Some(secret.to_owned())).unwrap()
    }

    /// A raw HTTP client whose connections come from `local` (127.0.0.x or ::1), and the base
    /// URL to reach the server from there.
    pub fn http_from(&self, local: &str) -> (reqwest::Client, String) {
        let ip: std::net::IpAddr = local.parse().unwrap();
        let http = reqwest::Client::builder()
            .local_address(ip)
            .build()
            .unwrap();
        let port = self.url.rsplit(':').next().unwrap();
        let base = if ip.is_ipv6() {
            format!("http://[::1]:{port}")
        } else {
            format!("http://127.0.0.1:{port}")
        };
        (http, base)
    }

    /// Like [`TestApp::http_from`], every request carrying the admin token (which holds
    /// `keyward.verify:tokens`) as its bearer credential: a verifier calling from `local`.
    pub fn verifier_from(&self, local: &str) -> (reqwest::Client, String) {
        let ip: std::net::IpAddr = local.parse().unwrap();
        let mut headers = reqwest::header::HeaderMap::new();
        let bearer = format!("Bearer {}", self.admin_secret);
        headers.insert(reqwest::header::AUTHORIZATION, bearer.parse().unwrap());
        let http = reqwest::Client::builder()
            .local_address(ip)
            .default_headers(headers)
            .build()
            .unwrap();
        let (_, base) = self.http_from(local);
        (http, base)
    }

    /// A typed client authenticated with `secret`, connecting from `local`.
    pub fn client_from(&self, local: &str, secret: &str) -> Client {
        let (http, base) = self.http_from(local);
        Client::with_http(http, &base, Some(secret.to_owned())).unwrap()
    }

    /// Adds product permissions to the catalogue.
    pub async fn catalogue(&self, perms: &[&str]) {
        for p in perms {
            self.admin
                .put_permission(
                    p,
                    &PutPermission {
                        description: format!("{p} for tests"),
                    },
                )
                .await
                .unwrap();
        }
    }

    /// An api role.
    pub async fn api_role(&self, name: &str, scope: Scope, perms: &[&str]) -> Role {
        self.admin
            .create_role(&CreateRole {
                name: name.into(),
                description: String::new(),
                kind: RoleKind::Api,
                scope,
                permissions: perms.iter().map(|s| (*s).to_owned()).collect(),
                ip_allowlist: None,
                rate_limit_per_minute: None,
                rate_limit_per: None,
            })
            .await
            .unwrap()
    }

    /// A service user holding `role`.
    pub async fn service_user(&self, name: &str, role: Option<RoleId>) -> User {
        self.admin
            .create_user(&CreateUser {
                kind: UserKind::Service,
                name: name.into(),
                email: None,
                role_id: role,
            })
            .await
            .unwrap()
    }

    /// A service user "erp" whose role "Orders" grants `orders:read` (added to the catalogue).
    pub async fn orders_reader(&self) -> User {
        self.catalogue(&["orders:read"]).await;
        let role = self
            .api_role("Orders", Scope::Workspace, &["orders:read"])
            .await;
        self.service_user("erp", Some(role.id)).await
    }

    /// A token for `owner` inheriting its role.
    pub async fn token_for(&self, owner: &User) -> CreatedToken {
        self.admin
            .create_token(&token_request(owner))
            .await
            .unwrap()
    }

    /// Verifies `secret` needing `perms`.
    pub async fn verify(&self, secret: &str, perms: &[&str]) -> VerifyResponse {
        self.admin
            .verify(&VerifyRequest {
                token: secret.into(),
                permissions: Some(perms.iter().map(|s| (*s).into()).collect()),
                ..VerifyRequest::default()
            })
            .await
            .unwrap()
    }
}

/// A token request for `owner` with defaults.
pub fn token_request(owner: &User) -> CreateToken {
    CreateToken {
        owner_id: owner.id,
        name: format!("{} token", owner.name),
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
    }
}

/// Waits until the usage pipeline has accounted for `n` records (written or dropped). This
/// waits for a condition; the bound only keeps a broken pipeline from hanging the suite.
pub async fn usage_settled(app: &TestApp, n: u64) {
    use std::sync::atomic::Ordering;
    let c = app.state.usage.counters();
    for _ in 0..6_000 {
        let done = c.written.load(Ordering::SeqCst) + c.dropped.load(Ordering::SeqCst);
        if done >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!(
        "usage pipeline did not account for {n} records: {} written, {} dropped",
        c.written.load(Ordering::SeqCst),
        c.dropped.load(Ordering::SeqCst)
    );
}

/// The problem code of a failed call.
pub fn code_of<T: std::fmt::Debug>(r: Result<T, ClientError>) -> String {
    match r {
        Err(e) => e
            .problem()
            .map(|p| p.code.clone())
            .unwrap_or_else(|| format!("{e}")),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

/// The problem of a failed call.
pub fn problem_of<T: std::fmt::Debug>(r: Result<T, ClientError>) -> keyward_core::api::Problem {
    match r {
        Err(e) => e
            .problem()
            .cloned()
            .unwrap_or_else(|| panic!("no problem body: {e}")),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

/// Runs SQL on the test's database behind the application's back (to tamper with it).
pub async fn raw_sql(app: &TestApp, sql: &str) {
    use sqlx::Connection as _;
    let db = &app.config.database;
    if db.url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
    } else {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let sql = format!("SET search_path TO \"{}\"; {sql}", db.schema);
        sqlx::raw_sql(&sql).execute(&mut conn).await.unwrap();
    }
}
