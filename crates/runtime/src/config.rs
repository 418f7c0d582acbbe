//! Settings shared by every service, read from flags and `CX_…` environment
//! variables (clap), then validated once at start with errors that name the
//! setting at fault. Precedence: defaults, then environment, then flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where the data lives and how to reach it.
#[derive(clap::Args, Clone, Debug)]
pub struct StoreArgs {
    /// Directory for the embedded SQLite files and the generated JWT secret.
    #[arg(long, env = "CX_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// postgres://… (production; each service migrates its own schema) or
    /// sqlite://… (one file per service; `{service}` in the path is replaced by
    /// the service name, otherwise the name is appended to the file stem).
    /// Absent: SQLite files under the data directory.
    #[arg(long, env = "CX_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Largest number of pooled database connections per process (at least
    /// 2): a service's own pool, or on PostgreSQL the one pool the services
    /// of `cx serve all` share.
    #[arg(long, env = "CX_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,

    /// `transaction` when CX_DATABASE_URL is a pooler in transaction mode
    /// (PgBouncer): no prepared statement outlives its transaction, and every
    /// statement runs in a transaction that sets the service's schema.
    #[arg(long, env = "CX_DB_POOLER", value_enum, default_value_t = Pooler::None)]
    pub db_pooler: Pooler,

    /// How outbox dispatchers claim due rows on PostgreSQL: `global` (one
    /// statement across tenants) or `per-tenant` (one statement per tenant
    /// with due rows, each naming its tenant: for an outbox distributed by
    /// tenant, e.g. with Citus). SQLite always claims globally.
    #[arg(long, env = "CX_OUTBOX_CLAIM", value_enum, default_value_t = ClaimShape::Global)]
    pub outbox_claim: ClaimShape,

    /// How long the inbox remembers a delivered message's id, so that a
    /// redelivery is recognised and not applied again: longer than any
    /// sender retries (minutes) or an operator resends dead letters.
    #[arg(long, env = "CX_INBOX_RETENTION", default_value = "30d", value_parser = humantime::parse_duration)]
    pub inbox_retention: Duration,
}

/// What stands between the services and PostgreSQL (docs/OPERATIONS.md,
/// The connection budget).
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pooler {
    /// PostgreSQL itself, or a pooler in session mode: a connection is the
    /// service's for as long as it is open.
    #[default]
    None,
    /// A pooler in transaction mode: a server connection is the service's
    /// for one transaction.
    Transaction,
}

/// How a dispatcher claims due outbox rows (docs/DECISIONS.md, Outbox).
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClaimShape {
    /// One statement over every tenant's due rows.
    #[default]
    Global,
    /// The tenants with due rows first, then one statement per tenant.
    PerTenant,
}

/// The shared cache.
#[derive(clap::Args, Clone, Debug)]
pub struct CacheArgs {
    /// redis://… shared by every replica. Absent: an in-process cache.
    #[arg(long, env = "CX_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// How long a cached entry may live before it is read again from the database.
    #[arg(long, env = "CX_CACHE_TTL", default_value = "5m", value_parser = humantime::parse_duration)]
    pub cache_ttl: Duration,

    /// `CX_REDIS_URL` is a Redis Cluster: one or more of its nodes (or a
    /// managed service's configuration endpoint), comma-separated.
    #[arg(long, env = "CX_REDIS_CLUSTER", default_value_t = false)]
    pub redis_cluster: bool,

    /// CA bundle (PEM) that signed a `rediss://` server's certificate;
    /// absent: the system's trusted roots.
    #[arg(long, env = "CX_REDIS_CA_FILE")]
    pub redis_ca_file: Option<PathBuf>,

    /// Client certificate (PEM) for Redis servers that ask for one (mutual TLS).
    #[arg(long, env = "CX_REDIS_CLIENT_CERT_FILE")]
    pub redis_client_cert_file: Option<PathBuf>,

    /// Key (PEM) of the Redis client certificate.
    #[arg(long, env = "CX_REDIS_CLIENT_KEY_FILE")]
    pub redis_client_key_file: Option<PathBuf>,
}

/// How callers and services are authenticated. Secrets themselves are read
/// from the environment or a file only: a flag would show them to anyone who
/// can list processes.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct AuthArgs {
    /// Shared HS256 secret of user tokens (at least 32 bytes), from the
    /// environment variable CX_JWT_SECRET only.
    #[arg(skip = env_secret("CX_JWT_SECRET"))]
    pub jwt_secret: Option<String>,

    /// File holding the HS256 secret of user tokens (instead of CX_JWT_SECRET).
    #[arg(long, env = "CX_JWT_SECRET_FILE")]
    pub jwt_secret_file: Option<PathBuf>,

    /// PEM public key (RSA for RS256, Ed25519 for EdDSA) that verifies tokens
    /// issued elsewhere. Excludes a user-token secret.
    #[arg(long, env = "CX_JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<PathBuf>,
}

/// The services' own identity on calls between them (docs/DECISIONS.md,
/// Security): a secret of theirs alone, distinct from whatever signs user
/// tokens, so `cx token` and identity providers cannot speak for a service.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ServiceAuthArgs {
    /// Secret the services sign their calls to each other with (at least 32
    /// bytes, not the user-token secret), from the environment variable
    /// CX_SERVICE_SECRET only.
    #[arg(skip = env_secret("CX_SERVICE_SECRET"))]
    pub service_secret: Option<String>,

    /// File holding the service secret (instead of CX_SERVICE_SECRET).
    #[arg(long, env = "CX_SERVICE_SECRET_FILE")]
    pub service_secret_file: Option<PathBuf>,
}

fn env_secret(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Scheduled background work.
#[derive(clap::Args, Clone, Debug)]
pub struct JobArgs {
    /// How often the lifecycle sweep runs (customers whose lifecycle or digital
    /// intensity changes by the passing of time alone).
    #[arg(long, env = "CX_SWEEP_INTERVAL", default_value = "1h", value_parser = humantime::parse_duration)]
    pub sweep_interval: Duration,

    /// How long segmentation waits, after a load of journey's facts starts,
    /// before reading them: every touchpoint journey stored up to the start
    /// has committed by then (its ingest ends within the request timeout).
    #[arg(
        long = "segmentation-load-settle",
        env = "CX_SEGMENTATION_LOAD_SETTLE",
        default_value = "60s",
        value_parser = humantime::parse_duration
    )]
    pub load_settle: Duration,

    /// How long a replica holds the lease of a job that runs on one replica
    /// at a time (the sweep, segment refreshes, snapshots, …) without
    /// renewing it: another replica takes such a job over within this time
    /// of the holder's death. Renewed every third of it.
    #[arg(long = "job-lease", env = "CX_JOB_LEASE", default_value = "30s", value_parser = humantime::parse_duration)]
    pub lease_ttl: Duration,
}

impl Default for JobArgs {
    fn default() -> Self {
        Self {
            sweep_interval: Duration::from_secs(3600),
            load_settle: Duration::from_secs(60),
            lease_ttl: Duration::from_secs(30),
        }
    }
}

/// The gRPC server.
#[derive(clap::Args, Clone, Debug)]
pub struct ServerArgs {
    /// Address the gRPC server listens on.
    #[arg(long, env = "CX_LISTEN", default_value = "0.0.0.0:50051")]
    pub listen: SocketAddr,

    /// Longest time one call may take before it is cancelled (a shorter
    /// client deadline, `grpc-timeout`, wins).
    #[arg(long, env = "CX_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// Calls served at once; further calls are refused with RESOURCE_EXHAUSTED
    /// instead of queueing without bound.
    #[arg(long, env = "CX_MAX_CONCURRENT_REQUESTS", default_value_t = 1024)]
    pub max_concurrent_requests: usize,

    /// Client connections open at once; further ones are closed on arrival.
    #[arg(long, env = "CX_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,

    /// Time a new connection gets to open HTTP/2 (preface and settings)
    /// before it is closed.
    #[arg(long, env = "CX_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub handshake_timeout: Duration,

    /// A stream whose client sends nothing for this long is closed.
    #[arg(long, env = "CX_STREAM_IDLE_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub stream_idle_timeout: Duration,

    /// Certificate (PEM, with its chain) the gRPC server presents: the
    /// server speaks TLS only. Absent: plain HTTP/2.
    #[arg(long, env = "CX_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,

    /// Key (PEM) of the server certificate.
    #[arg(long, env = "CX_TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,

    /// CA bundle (PEM) of client certificates: with it, the server accepts
    /// only clients showing a certificate it signed (mutual TLS).
    #[arg(long, env = "CX_TLS_CLIENT_CA_FILE")]
    pub tls_client_ca_file: Option<PathBuf>,

    /// On SIGTERM/SIGINT, how long the server keeps serving while its health
    /// says NOT_SERVING, before it stops accepting calls: the time load
    /// balancers and peers need to stop sending it calls (readiness probe
    /// failures, endpoint and DNS updates). 0 outside a cluster.
    #[arg(long, env = "CX_SHUTDOWN_DELAY", default_value = "0s", value_parser = humantime::parse_duration)]
    pub shutdown_delay: Duration,

    /// On SIGTERM/SIGINT, how long in-flight calls may take to finish.
    #[arg(long, env = "CX_SHUTDOWN_GRACE", default_value = "20s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,

    /// Address of the Prometheus metrics endpoint (`GET /metrics`, HTTP);
    /// unset: no endpoint.
    #[arg(long, env = "CX_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

/// Logs and traces. Standard `OTEL_*` variables are honoured as well
/// (`OTEL_EXPORTER_OTLP_ENDPOINT` switches on OTLP export).
#[derive(clap::Args, Clone, Debug)]
pub struct TelemetryArgs {
    /// Log format: json (one object a line, with trace_id/span_id) or text.
    #[arg(long, env = "CX_LOG_FORMAT", default_value = "json")]
    pub log_format: LogFormat,

    /// Log filter in `tracing` syntax, e.g. "info,cx_profile=debug".
    #[arg(long, env = "CX_LOG", default_value = "info")]
    pub log: String,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

/// A setting that failed validation, named as the user wrote it.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {problem}")]
pub struct ConfigError {
    pub setting: std::borrow::Cow<'static, str>,
    pub problem: String,
}

impl ConfigError {
    pub fn new(setting: impl Into<std::borrow::Cow<'static, str>>, problem: impl Into<String>) -> Self {
        Self { setting: setting.into(), problem: problem.into() }
    }
}

/// The database a service uses, after validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseTarget {
    /// One PostgreSQL database; each service lives in its own schema.
    Postgres { url: String },
    /// One SQLite file per service.
    Sqlite { path: PathBuf },
}

impl StoreArgs {
    /// SQLite files under `data_dir` with `pool` connections per service and
    /// the other settings at their defaults.
    pub fn embedded(data_dir: PathBuf, pool: u32) -> Self {
        Self {
            data_dir,
            database_url: None,
            db_max_connections: pool,
            db_pooler: Pooler::None,
            outbox_claim: ClaimShape::Global,
            inbox_retention: Duration::from_secs(30 * 86_400),
        }
    }

    /// Whether this is the embedded default (SQLite files), the one
    /// configuration that may generate its own secrets.
    pub fn is_embedded(&self) -> bool {
        self.database_url.as_deref().is_none_or(|u| {
            let u = u.trim();
            u.is_empty() || u.starts_with("sqlite:")
        })
    }

    /// The database of `service`, validated.
    pub fn database_for(&self, service: &str) -> Result<DatabaseTarget, ConfigError> {
        // One for calls while a migration or a job holds another.
        if self.db_max_connections < 2 {
            return Err(ConfigError::new("CX_DB_MAX_CONNECTIONS", "must be at least 2"));
        }
        let Some(url) = self.database_url.as_deref().filter(|u| !u.trim().is_empty()) else {
            return Ok(DatabaseTarget::Sqlite { path: self.data_dir.join(format!("{service}.db")) });
        };
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseTarget::Postgres { url: url.to_owned() });
        }
        if let Some(rest) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            let file = rest.split('?').next().unwrap_or_default();
            if file.is_empty() {
                return Err(ConfigError::new("CX_DATABASE_URL", "a sqlite:// URL needs a file path"));
            }
            return Ok(DatabaseTarget::Sqlite { path: sqlite_path_for(file, service) });
        }
        let scheme = url.split(':').next().unwrap_or_default();
        Err(ConfigError::new(
            "CX_DATABASE_URL",
            format!("unsupported scheme '{scheme}' (expected postgres:// or sqlite://)"),
        ))
    }
}

fn sqlite_path_for(file: &str, service: &str) -> PathBuf {
    if file.contains("{service}") {
        return PathBuf::from(file.replace("{service}", service));
    }
    let path = PathBuf::from(file);
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{service}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{service}"),
    };
    path.with_file_name(name)
}

impl CacheArgs {
    /// Redis at `redis_url` (or the in-process cache), without TLS files.
    pub fn new(redis_url: Option<String>, cache_ttl: Duration) -> Self {
        Self {
            redis_url,
            cache_ttl,
            redis_cluster: false,
            redis_ca_file: None,
            redis_client_cert_file: None,
            redis_client_key_file: None,
        }
    }

    /// The URLs of `CX_REDIS_URL` (several for a cluster's seed nodes).
    pub fn redis_urls(&self) -> Vec<String> {
        let url = self.redis_url.as_deref().unwrap_or_default();
        url.split(',').map(str::trim).filter(|u| !u.is_empty()).map(str::to_owned).collect()
    }

    /// The TLS files of a `rediss://` connection, read (errors name their
    /// settings); `None` when none is set.
    pub fn redis_tls(&self) -> Result<Option<crate::tls::TlsPem>, ConfigError> {
        let files = crate::tls::TlsFiles {
            ca: self.redis_ca_file.clone(),
            cert: self.redis_client_cert_file.clone(),
            key: self.redis_client_key_file.clone(),
        };
        (files != crate::tls::TlsFiles::default())
            .then(|| files.read(["CX_REDIS_CA_FILE", "CX_REDIS_CLIENT_CERT_FILE", "CX_REDIS_CLIENT_KEY_FILE"]))
            .transpose()
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.redis_url.as_deref().is_some_and(|u| !u.is_empty()) {
            let urls = self.redis_urls();
            if !urls.iter().all(|u| u.starts_with("redis://") || u.starts_with("rediss://")) {
                return Err(ConfigError::new("CX_REDIS_URL", "expected a redis:// or rediss:// URL"));
            }
            if urls.len() > 1 && !self.redis_cluster {
                return Err(ConfigError::new(
                    "CX_REDIS_URL",
                    "several URLs name a Redis Cluster: set CX_REDIS_CLUSTER=true",
                ));
            }
        }
        if self.cache_ttl.is_zero() {
            return Err(ConfigError::new("CX_CACHE_TTL", "must be longer than zero"));
        }
        Ok(())
    }
}

impl ServerArgs {
    /// The server's TLS settings, read from their files, when it has a
    /// certificate.
    pub fn tls(&self) -> Result<Option<tonic::transport::ServerTlsConfig>, ConfigError> {
        let files = crate::tls::TlsFiles {
            ca: self.tls_client_ca_file.clone(),
            cert: self.tls_cert_file.clone(),
            key: self.tls_key_file.clone(),
        };
        let pem = files.read(["CX_TLS_CLIENT_CA_FILE", "CX_TLS_CERT_FILE", "CX_TLS_KEY_FILE"])?;
        match pem.identity {
            Some((cert, key)) => Ok(Some(crate::tls::grpc_server(&cert, &key, pem.ca.as_deref()))),
            None if pem.ca.is_some() => Err(ConfigError::new(
                "CX_TLS_CLIENT_CA_FILE",
                "client certificates need the server's own (CX_TLS_CERT_FILE)",
            )),
            None => Ok(None),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_concurrent_requests == 0 {
            return Err(ConfigError::new("CX_MAX_CONCURRENT_REQUESTS", "must be at least 1"));
        }
        if self.request_timeout.is_zero() {
            return Err(ConfigError::new("CX_REQUEST_TIMEOUT", "must be longer than zero"));
        }
        if self.max_connections == 0 {
            return Err(ConfigError::new("CX_MAX_CONNECTIONS", "must be at least 1"));
        }
        if self.handshake_timeout.is_zero() {
            return Err(ConfigError::new("CX_HANDSHAKE_TIMEOUT", "must be longer than zero"));
        }
        if self.stream_idle_timeout.is_zero() {
            return Err(ConfigError::new("CX_STREAM_IDLE_TIMEOUT", "must be longer than zero"));
        }
        self.tls()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(url: Option<&str>) -> StoreArgs {
        StoreArgs { database_url: url.map(str::to_owned), ..StoreArgs::embedded(PathBuf::from("/var/lib/cx"), 4) }
    }

    #[test]
    fn embedded_default_is_one_sqlite_file_per_service_in_the_data_dir() {
        assert_eq!(
            store(None).database_for("profile").unwrap(),
            DatabaseTarget::Sqlite { path: PathBuf::from("/var/lib/cx/profile.db") }
        );
    }

    #[test]
    fn sqlite_url_gets_the_service_name() {
        assert_eq!(
            store(Some("sqlite:///tmp/cx.db?mode=rwc")).database_for("orders").unwrap(),
            DatabaseTarget::Sqlite { path: PathBuf::from("/tmp/cx-orders.db") }
        );
        assert_eq!(
            store(Some("sqlite://db/{service}.sqlite")).database_for("profile").unwrap(),
            DatabaseTarget::Sqlite { path: PathBuf::from("db/profile.sqlite") }
        );
    }

    #[test]
    fn postgres_url_is_kept_and_other_schemes_are_named_in_the_error() {
        let url = "postgres://cx@db:5432/cx";
        assert_eq!(store(Some(url)).database_for("profile").unwrap(), DatabaseTarget::Postgres { url: url.to_owned() });
        let err = store(Some("mysql://x")).database_for("profile").unwrap_err();
        assert_eq!(err.to_string(), "CX_DATABASE_URL: unsupported scheme 'mysql' (expected postgres:// or sqlite://)");
    }

    #[test]
    fn redis_url_must_be_redis() {
        let args = CacheArgs::new(Some("http://x".into()), Duration::from_secs(1));
        assert_eq!(args.validate().unwrap_err().to_string(), "CX_REDIS_URL: expected a redis:// or rediss:// URL");
    }

    #[test]
    fn several_redis_urls_name_a_cluster_and_only_then() {
        let seeds = Some("redis://a:6379, redis://b:6379".to_owned());
        let single = CacheArgs::new(seeds.clone(), Duration::from_secs(1));
        assert_eq!(
            single.validate().unwrap_err().to_string(),
            "CX_REDIS_URL: several URLs name a Redis Cluster: set CX_REDIS_CLUSTER=true"
        );
        let cluster = CacheArgs { redis_cluster: true, ..CacheArgs::new(seeds, Duration::from_secs(1)) };
        assert!(cluster.validate().is_ok());
        assert_eq!(cluster.redis_urls(), ["redis://a:6379", "redis://b:6379"]);
        let mixed = CacheArgs {
            redis_cluster: true,
            ..CacheArgs::new(Some("redis://a:1,http://b:2".into()), Duration::from_secs(1))
        };
        assert!(mixed.validate().is_err());
    }
}
