//! TLS to the dependencies: a private PostgreSQL and Redis that speak TLS
//! only, with certificates made for the test (rcgen). The services connect
//! as they would to a managed PostgreSQL or Redis: the server's certificate
//! checked against a CA file, optionally with a client certificate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cx_runtime::cache::CacheBackend;
use cx_runtime::cache::redis::RedisCache;
use cx_runtime::config::StoreArgs;
use cx_runtime::tls::{TlsFiles, TlsPem};
use cx_testkit::tls::{TestPki, TlsPostgres, TlsRedis};
use sea_orm::{ConnectionTrait, DbBackend, Statement};

const SETTINGS: [&str; 3] = ["CA", "CERT", "KEY"];

/// Connects with `url` as a service does and answers whether the session
/// is encrypted, or the error.
async fn encrypted(url: String) -> Result<bool, String> {
    let args = StoreArgs { database_url: Some(url), ..StoreArgs::embedded(cx_testkit::temp_dir(), 2) };
    let db = cx_runtime::store::open(&args, "profile").await.map_err(|e| e.to_string())?;
    let sql = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    let row = db.query_one_raw(Statement::from_string(DbBackend::Postgres, sql)).await.map_err(|e| e.to_string())?;
    Ok(row.unwrap().try_get::<bool>("", "ssl").unwrap())
}

#[tokio::test]
async fn postgres_over_tls_checks_the_servers_certificate() {
    let pki = TestPki::new();
    let pg = TlsPostgres::start(&pki, false);
    let ca = pki.ca.display();
    assert_eq!(encrypted(pg.url(&format!("sslmode=verify-full&sslrootcert={ca}"))).await, Ok(true));
    // The server refuses plain connections; a CA the server's certificate
    // does not chain to is refused by the service.
    let plain = encrypted(pg.url("sslmode=disable")).await.unwrap_err();
    assert!(plain.contains("no pg_hba.conf entry") || plain.contains("rejects"), "{plain}");
    let other = TestPki::new();
    let wrong = encrypted(pg.url(&format!("sslmode=verify-full&sslrootcert={}", other.ca.display()))).await;
    assert!(wrong.is_err(), "a server certificate of another CA must be refused: {wrong:?}");
}

#[tokio::test]
async fn postgres_asking_for_a_client_certificate_gets_the_services() {
    let pki = TestPki::new();
    let pg = TlsPostgres::start(&pki, true);
    let ca = pki.ca.display();
    let without = encrypted(pg.url(&format!("sslmode=verify-full&sslrootcert={ca}"))).await;
    assert!(without.is_err(), "no client certificate: refused ({without:?})");
    let (cert, key) = (pki.client_cert.display(), pki.client_key.display());
    let with = pg.url(&format!("sslmode=verify-full&sslrootcert={ca}&sslcert={cert}&sslkey={key}"));
    assert_eq!(encrypted(with).await, Ok(true));
}

/// Whether the cache reaches its Redis (it names the server it checked).
async fn reaches(url: &str, tls: Option<TlsPem>) -> bool {
    let redis = RedisCache::connect_lazy_with(url, tls).unwrap();
    redis.incarnation().await.is_some()
}

#[tokio::test]
async fn redis_over_tls_checks_the_servers_certificate_and_shows_the_client_one() {
    let pki = TestPki::new();
    let files = |cert: bool| TlsFiles {
        ca: Some(pki.ca.clone()),
        cert: cert.then(|| pki.client_cert.clone()),
        key: cert.then(|| pki.client_key.clone()),
    };
    let redis = TlsRedis::start(&pki, false).await;
    assert!(reaches(&redis.url(), Some(files(false).read(SETTINGS).unwrap())).await);
    // The system's roots do not know the test CA.
    assert!(!reaches(&redis.url(), None).await);
    // Plain text to a TLS port gets nowhere.
    assert!(!reaches(&redis.url().replace("rediss://", "redis://"), None).await);

    let mutual = TlsRedis::start(&pki, true).await;
    assert!(!reaches(&mutual.url(), Some(files(false).read(SETTINGS).unwrap())).await, "no client certificate");
    assert!(reaches(&mutual.url(), Some(files(true).read(SETTINGS).unwrap())).await);
}

#[test]
fn tls_files_are_read_whole_and_named_in_errors() {
    let pki = TestPki::new();
    let lone = TlsFiles { cert: Some(pki.client_cert.clone()), ..TlsFiles::default() };
    assert_eq!(lone.read(SETTINGS).unwrap_err().to_string(), "KEY: a client certificate needs its key");
    let missing = TlsFiles { ca: Some(pki.dir.join("absent.pem")), ..TlsFiles::default() };
    assert!(missing.read(SETTINGS).unwrap_err().to_string().starts_with("CA: cannot read "));
    let not_pem = TlsFiles { ca: Some(pki.dir.clone().join("x")), ..TlsFiles::default() };
    std::fs::write(pki.dir.join("x"), "hello").unwrap();
    assert!(not_pem.read(SETTINGS).unwrap_err().to_string().ends_with("holds no PEM block"));
}
