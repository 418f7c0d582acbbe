//! Test support shared by the services' tests: a fresh PostgreSQL database per
//! test (dropped afterwards), the Redis URL, servers on loopback ports, and
//! tokens. PostgreSQL and Redis are found through `CX_TEST_DATABASE_URL` and
//! `CX_TEST_REDIS_URL` (defaults: the local servers `scripts/test.sh` ensures).

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod cluster;
pub mod eventually;
pub mod outbox;
pub mod pgbouncer;
pub mod process;
pub mod raw;
pub mod redis_server;
pub mod rpc;
pub mod tls;

pub use eventually::{eventually, eventually_within};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cx_runtime::auth::{Keys, Role};
use cx_runtime::config::{AuthArgs, CacheArgs, ServerArgs, ServiceAuthArgs, StoreArgs};
use cx_runtime::context::ServiceContext;
use cx_runtime::peers::{PeerArgs, Peers};
use cx_runtime::registry::Registry;
use cx_runtime::server::ServiceModule;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use tonic::transport::Channel;

pub use cluster::{Backend, Cluster};

/// Traces this test process into memory: after
/// `telemetry.provider().force_flush()` the exporter holds every finished span.
pub fn capture_spans() -> (cx_runtime::telemetry::Telemetry, opentelemetry_sdk::trace::InMemorySpanExporter) {
    use cx_runtime::config::{LogFormat, TelemetryArgs};
    let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
    let provider =
        opentelemetry_sdk::trace::SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    let args = TelemetryArgs { log_format: LogFormat::Json, log: "info".into() };
    (cx_runtime::telemetry::Telemetry::install(provider, &args).unwrap(), exporter)
}

/// The HS256 secret every test server and token uses.
pub const SECRET: &str = "cx-test-secret-0123456789abcdef-0123456789";
/// The secret test services sign their calls to each other with.
pub const SERVICE_SECRET: &str = "cx-test-service-secret-0123456789abcdef";

pub fn admin_url() -> String {
    std::env::var("CX_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn redis_url() -> String {
    std::env::var("CX_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A PostgreSQL database made for one test and dropped when it ends.
#[derive(Debug)]
pub struct TestDb {
    pub url: String,
    name: String,
}

impl TestDb {
    pub async fn create() -> anyhow::Result<Self> {
        let db = Self::reserve();
        db.create_now().await?;
        Ok(db)
    }

    /// A name and URL for a database that does not exist yet (a server
    /// pointed at it waits, NOT_SERVING, until [`TestDb::create_now`]).
    pub fn reserve() -> Self {
        let admin = admin_url();
        let name = format!("cx_test_{}", uuid::Uuid::new_v4().simple());
        let base = admin.rsplit_once('/').map(|(base, _)| base).unwrap_or(&admin);
        Self { url: format!("{base}/{name}"), name }
    }

    pub async fn create_now(&self) -> anyhow::Result<()> {
        let conn = Database::connect(&admin_url()).await?;
        conn.execute_raw(Statement::from_string(DbBackend::Postgres, format!("CREATE DATABASE {}", self.name))).await?;
        conn.close().await?;
        Ok(())
    }

    /// The name, for tests that must point a server at it before it exists.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many sessions on this database wait for a lock: with a row lock
    /// the test holds, that a call is in flight and blocked on it.
    pub async fn lock_waiters(&self) -> i64 {
        let conn = Database::connect(&admin_url()).await.unwrap();
        let sql = format!(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = '{}' AND wait_event_type = 'Lock'",
            self.name
        );
        let row = conn.query_one_raw(Statement::from_string(DbBackend::Postgres, sql)).await.unwrap().unwrap();
        let n = row.try_get("", "n").unwrap();
        conn.close().await.unwrap();
        n
    }

    /// The server's sessions on this database by application name, with how
    /// many each: who holds connections, and how many.
    pub async fn sessions(&self) -> Vec<(String, i64)> {
        let conn = Database::connect(&admin_url()).await.unwrap();
        let sql = format!(
            "SELECT application_name AS name, count(*) AS n FROM pg_stat_activity WHERE datname = '{}' \
             GROUP BY application_name ORDER BY application_name",
            self.name
        );
        let rows = conn.query_all_raw(Statement::from_string(DbBackend::Postgres, sql)).await.unwrap();
        conn.close().await.unwrap();
        rows.iter().map(|r| (r.try_get("", "name").unwrap(), r.try_get("", "n").unwrap())).collect()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime: use a thread with its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let conn = Database::connect(&admin_url()).await?;
                conn.execute_raw(Statement::from_string(
                    DbBackend::Postgres,
                    format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                ))
                .await?;
                conn.close().await
            })
        })
        .join();
        if let Ok(Err(err)) = dropped {
            eprintln!("could not drop test database: {err}");
        }
    }
}

/// Rows of `schema` that mention any of `needles`: in their text form, and
/// inside binary columns (an id inside an encoded protobuf payload).
pub async fn rows_mentioning(db: &TestDb, schema: &str, needles: &[&str]) -> Vec<String> {
    let conn = Database::connect(&db.url).await.unwrap();
    let query = |sql: String| Statement::from_string(DbBackend::Postgres, sql);
    let tables = conn
        .query_all_raw(query(format!(
            "SELECT table_name::text AS name FROM information_schema.tables WHERE table_schema = '{schema}'"
        )))
        .await
        .unwrap();
    let mut found = Vec::new();
    for table in tables {
        let name: String = table.try_get("", "name").unwrap();
        let binary = conn
            .query_all_raw(query(format!(
                "SELECT column_name::text AS name FROM information_schema.columns \
                 WHERE table_schema = '{schema}' AND table_name = '{name}' AND data_type = 'bytea'"
            )))
            .await
            .unwrap();
        for needle in needles {
            let mut condition = format!("r::text ILIKE '%{needle}%'");
            for column in &binary {
                let column: String = column.try_get("", "name").unwrap();
                condition.push_str(&format!(" OR position(convert_to('{needle}', 'UTF8') in r.\"{column}\") > 0"));
            }
            let sql = format!("SELECT count(*) AS n FROM {schema}.\"{name}\" AS r WHERE {condition}");
            let row = conn.query_one_raw(query(sql)).await.unwrap().unwrap();
            let n: i64 = row.try_get("", "n").unwrap();
            if n > 0 {
                found.push(format!("{name}: {n} rows mention {needle}"));
            }
        }
    }
    found
}

/// Redis keys of `tenant` whose name or value mentions `needle`.
pub async fn redis_mentioning(tenant: &str, needle: &str) -> Vec<String> {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut found = Vec::new();
    for key in redis_keys(tenant).await {
        let value: Option<Vec<u8>> = redis::cmd("GET").arg(&key).query_async(&mut conn).await.unwrap_or(None);
        let in_value = value.is_some_and(|v| v.windows(needle.len()).any(|w| w == needle.as_bytes()));
        if key.contains(needle) || in_value {
            found.push(key);
        }
    }
    found
}

/// A fresh data directory path, not created: only what writes there (SQLite,
/// a generated secret) creates it, and whoever asks for one removes it.
pub fn temp_dir() -> PathBuf {
    std::env::temp_dir().join(format!("cx-test-{}", uuid::Uuid::new_v4().simple()))
}

pub fn store_args(database_url: Option<String>, data_dir: PathBuf) -> StoreArgs {
    StoreArgs { database_url, ..StoreArgs::embedded(data_dir, 8) }
}

/// A service context with the test secret and, optionally, Redis.
pub fn context(store: StoreArgs, redis_url: Option<String>) -> ServiceContext {
    let cache = CacheArgs::new(redis_url, Duration::from_secs(300));
    let auth = AuthArgs { jwt_secret: Some(SECRET.into()), ..AuthArgs::default() };
    let internal = ServiceAuthArgs { service_secret: Some(SERVICE_SECRET.into()), ..ServiceAuthArgs::default() };
    ServiceContext::from_args(&store, &cache, &auth, &internal).unwrap()
}

/// [`context`] over `registry`, with the peer `name` deployed at an
/// address nothing answers on (what is owed to it waits in the outbox), or
/// named not deployed (`CX_NOT_DEPLOYED`): how a test checks what a service
/// owes a peer in either deployment.
pub fn context_with_peer(store: &StoreArgs, registry: Registry, name: &str, deployed: bool) -> ServiceContext {
    let mut peers = PeerArgs::default();
    if deployed {
        peers = peers.with(name, "http://127.0.0.1:9");
    } else {
        peers.not_deployed = vec![name.into()];
    }
    context(store.clone(), None).with_registry(registry).with_peers(Peers::resolve(&peers, &registry, None).unwrap())
}

pub fn server_args() -> ServerArgs {
    ServerArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        request_timeout: Duration::from_secs(20),
        max_concurrent_requests: 1024,
        max_connections: 4096,
        handshake_timeout: Duration::from_secs(10),
        stream_idle_timeout: Duration::from_secs(60),
        shutdown_delay: Duration::ZERO,
        shutdown_grace: Duration::from_secs(10),
        metrics_listen: None,
        tls_cert_file: None,
        tls_key_file: None,
        tls_client_ca_file: None,
    }
}

/// A token of `tenant` with `role`, valid for an hour.
pub fn token(tenant: &str, role: Role) -> String {
    Keys::hs256(SECRET.as_bytes()).signer.unwrap().sign(tenant, &[role], "test", Duration::from_secs(3600)).unwrap()
}

/// The service key of test services.
pub fn service_key() -> cx_runtime::identity::ServiceKey {
    cx_runtime::identity::ServiceKey::new(SERVICE_SECRET.as_bytes())
}

/// A token of service `service` acting for `tenant`, as test services sign.
pub fn service_token(service: &str, tenant: &str) -> String {
    let value = service_key().bearer(service, tenant).unwrap();
    value.to_str().unwrap().trim_start_matches("Bearer ").to_owned()
}

/// Wraps `message` in a request carrying `token`.
pub fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// A server running in this process on a loopback port.
#[derive(Debug)]
pub struct RunningServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    /// Starts serving `modules`; returns once the port is bound (not yet SERVING).
    pub async fn start(modules: Vec<Arc<dyn ServiceModule>>, args: ServerArgs) -> Self {
        let listener = tokio::net::TcpListener::bind(args.listen).await.unwrap();
        Self::start_on(listener, modules, args)
    }

    /// A loopback listener to start a server on later: its address can be
    /// given to other services (peers) before the server exists.
    pub async fn bind() -> tokio::net::TcpListener {
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()
    }

    /// Starts serving `modules` on a listener bound earlier.
    pub fn start_on(listener: tokio::net::TcpListener, modules: Vec<Arc<dyn ServiceModule>>, args: ServerArgs) -> Self {
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            cx_runtime::server::serve(modules, &args, listener, async {
                let _ = stopped.await;
            })
            .await
        });
        Self { addr, stop: Some(stop), handle }
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr)).unwrap().connect().await.unwrap()
    }

    /// The status the health service reports for `service` ("" = server).
    pub async fn health(&self, service: &str) -> Option<i32> {
        let mut client = tonic_health::pb::health_client::HealthClient::new(self.channel().await);
        let request = tonic_health::pb::HealthCheckRequest { service: service.into() };
        client.check(request).await.ok().map(|r| r.into_inner().status)
    }

    /// Waits (bounded) until the whole server reports SERVING.
    pub async fn wait_serving(&self) {
        let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
        let what = format!("the server on {} reports SERVING", self.addr);
        eventually_within(Duration::from_secs(15), &what, || self.health(""), |s| *s == Some(serving)).await;
    }

    /// Begins a graceful stop and waits for it to finish.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.handle.await?
    }

    /// Begins a graceful stop and returns the task to await.
    pub fn begin_stop(mut self) -> tokio::task::JoinHandle<anyhow::Result<()>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.handle
    }
}

/// Deletes every Redis key of `tenant` (tests use unique tenants).
pub async fn clear_redis(tenant: &str) {
    let Ok(client) = redis::Client::open(redis_url()) else {
        return;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return;
    };
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("cx:{{{tenant}}}:*")).query_async(&mut conn).await.unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
    }
}

/// Keys of `tenant` currently in Redis.
pub async fn redis_keys(tenant: &str) -> Vec<String> {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("KEYS").arg(format!("cx:{{{tenant}}}:*")).query_async(&mut conn).await.unwrap()
}

/// A tenant id no other test uses.
pub fn unique_tenant(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// A tenant no other test uses, a token of each of its roles, and an admin
/// of another tenant: what a test of a service's RPCs calls with.
#[derive(Clone, Debug)]
pub struct Tokens {
    pub tenant: String,
    pub reader: String,
    pub writer: String,
    pub admin: String,
    /// An admin of another tenant, who must see none of `tenant`'s data.
    pub stranger: String,
}

impl Tokens {
    pub fn new(prefix: &str) -> Self {
        let tenant = unique_tenant(prefix);
        Self {
            reader: token(&tenant, Role::Reader),
            writer: token(&tenant, Role::Writer),
            admin: token(&tenant, Role::Admin),
            stranger: token(&unique_tenant("other"), Role::Admin),
            tenant,
        }
    }
}

/// A stand-in identity provider: an Ed25519 key pair made for these tests
/// alone. Servers verify with [`idp::PUBLIC_KEY`] (`CX_JWT_PUBLIC_KEY_FILE`);
/// [`idp::token`] signs as the provider would.
pub mod idp {
    use cx_runtime::auth::{Claims, Role, unix_now};
    use jsonwebtoken::{Algorithm, EncodingKey, Header};

    pub const PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----\n\
        MCowBQYDK2VwAyEAgqCZWHMEC5Pf9G8SFuIJ/LTgMklg/hbNBt3oG6TSYu4=\n\
        -----END PUBLIC KEY-----\n";
    const PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----\n\
        MC4CAQAwBQYDK2VwBCIEIG8XGGsjsz+/bfuVdsTibETX8hdrbI2LItnXz3wj6Hk+\n\
        -----END PRIVATE KEY-----\n";

    /// An EdDSA token of `tenant` with `role`, valid for an hour.
    pub fn token(tenant: &str, role: Role) -> String {
        let claims = Claims {
            tenant: tenant.into(),
            roles: vec![role.as_str().into()],
            sub: "idp-user".into(),
            exp: unix_now() + 3600,
            iat: Some(unix_now()),
        };
        let key = EncodingKey::from_ed_pem(PRIVATE_KEY.as_bytes()).unwrap();
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &key).unwrap()
    }

    /// Writes the public key to a file in `dir` and returns its path.
    pub fn public_key_file(dir: &std::path::Path) -> std::path::PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join("idp-public.pem");
        std::fs::write(&path, PUBLIC_KEY).unwrap();
        path
    }
}

/// The database of one service on one backend, opened as the service opens
/// it (not migrated): a fresh PostgreSQL database, or SQLite in a fresh data
/// directory. Both are dropped with it.
#[derive(Debug)]
pub struct ServiceDb {
    pub conn: cx_runtime::store::Db,
    _postgres: Option<TestDb>,
    dir: PathBuf,
}

impl ServiceDb {
    /// Panics unless the connection is on `backend`.
    pub async fn open(backend: Backend, service: &'static str) -> Self {
        let (postgres, expected) = match backend {
            Backend::Postgres => (Some(TestDb::create().await.unwrap()), DbBackend::Postgres),
            Backend::Sqlite => (None, DbBackend::Sqlite),
        };
        let dir = temp_dir();
        let args = store_args(postgres.as_ref().map(|db| db.url.clone()), dir.clone());
        let conn = cx_runtime::store::open(&args, service).await.unwrap();
        assert_eq!(conn.get_database_backend(), expected, "the test runs on the backend it names");
        Self { conn, _postgres: postgres, dir }
    }
}

impl Drop for ServiceDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs each named `async fn(Backend)` of the calling test file as two
/// tests, `postgres::<name>` and `sqlite::<name>`: the file must have a
/// `Backend` type with `Postgres` and `Sqlite` values in scope (such as
/// [`Backend`], imported).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(#[tokio::test] async fn $name() { super::$name(super::Backend::Postgres).await })*
        }
        mod sqlite {
            $(#[tokio::test] async fn $name() { super::$name(super::Backend::Sqlite).await })*
        }
    };
}
