//! TLS for tests: a private certificate authority with a server and a
//! client certificate (rcgen), and private PostgreSQL and Redis servers that
//! speak TLS only, on loopback ports.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// A CA, a server certificate for `localhost` and 127.0.0.1, and a client
/// certificate, as PEM files in a private directory.
pub struct TestPki {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl TestPki {
    pub fn new() -> Self {
        let dir = crate::temp_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "CX test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let leaf = |names: Vec<String>, common: &str| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(names).unwrap();
            params.distinguished_name.push(DnType::CommonName, common);
            (params.signed_by(&key, &ca).unwrap().pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = leaf(vec!["localhost".into(), "127.0.0.1".into()], "localhost");
        let (client_cert, client_key) = leaf(vec!["cx-client".into()], "cx-client");
        let write = |name: &str, pem: &str| {
            let path = dir.join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };
        Self {
            ca: write("ca.pem", &ca.pem()),
            server_cert: write("server.pem", &server_cert),
            server_key: write("server.key", &server_key),
            client_cert: write("client.pem", &client_cert),
            client_key: write("client.key", &client_key),
            dir,
        }
    }
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The newest PostgreSQL server binaries installed (Debian's layout).
fn postgres_bin(tool: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> =
        std::fs::read_dir("/usr/lib/postgresql").map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    versions.sort_by_key(|p| p.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse::<u32>().ok()));
    versions.last().map(|v| v.join("bin").join(tool)).unwrap_or_else(|| PathBuf::from(tool))
}

/// Runs a PostgreSQL tool as the `postgres` user when this process is root
/// (the server refuses to run as root), else as this user.
fn as_postgres(tool: &str) -> Command {
    if crate::process::running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(postgres_bin(tool));
        command
    } else {
        Command::new(postgres_bin(tool))
    }
}

/// A private PostgreSQL accepting only TLS connections (trust auth), on a
/// free loopback port; stopped and removed when dropped.
pub struct TlsPostgres {
    dir: PathBuf,
    pub port: u16,
}

impl TlsPostgres {
    /// Starts it with `pki`'s server certificate; mutual TLS when
    /// `client_certs` (the client must show a certificate of the CA).
    pub fn start(pki: &TestPki, client_certs: bool) -> Self {
        let dir = crate::temp_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let data = dir.join("data");
        for file in ["server.pem", "server.key", "ca.pem"] {
            std::fs::copy(pki.dir.join(file), dir.join(file)).unwrap();
        }
        let _ = Command::new("chown").arg("-R").arg("postgres:postgres").arg(&dir).status();
        let _ = Command::new("chmod").arg("600").arg(dir.join("server.key")).status();
        let init = as_postgres("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(init.success(), "initdb failed");
        let port = crate::process::free_port();
        let conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{dir}'\nfsync = off\n\
             ssl = on\nssl_cert_file = '{dir}/server.pem'\nssl_key_file = '{dir}/server.key'\n\
             ssl_ca_file = '{dir}/ca.pem'\nmax_connections = 40\n",
            dir = dir.display()
        );
        append(&data.join("postgresql.conf"), &conf);
        let method = if client_certs { "trust clientcert=verify-ca" } else { "trust" };
        std::fs::write(
            data.join("pg_hba.conf"),
            format!("local all all trust\nhostssl all all 127.0.0.1/32 {method}\nhostnossl all all 0.0.0.0/0 reject\n"),
        )
        .unwrap();
        let _ = Command::new("chown").arg("postgres:postgres").arg(data.join("pg_hba.conf")).status();
        let started = as_postgres("pg_ctl")
            .args(["-w", "-t", "30", "-l"])
            .arg(dir.join("log"))
            .arg("-D")
            .arg(&data)
            .arg("start")
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(
            started.success(),
            "pg_ctl start failed: {}",
            std::fs::read_to_string(dir.join("log")).unwrap_or_default()
        );
        Self { dir, port }
    }

    /// `postgres://postgres@localhost:<port>/postgres` with `params`.
    pub fn url(&self, params: &str) -> String {
        format!("postgres://postgres@localhost:{}/postgres?{params}", self.port)
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let _ = as_postgres("pg_ctl").args(["-m", "immediate", "-D"]).arg(self.dir.join("data")).arg("stop").output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// A private `redis-server` speaking TLS only, on a free loopback port.
pub struct TlsRedis {
    child: Child,
    pub port: u16,
}

impl TlsRedis {
    /// Starts it with `pki`'s server certificate; clients must show a
    /// certificate of the CA when `client_certs`.
    pub async fn start(pki: &TestPki, client_certs: bool) -> Self {
        let port = crate::process::free_port();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no", "--protected-mode", "no"])
            .arg("--tls-cert-file")
            .arg(&pki.server_cert)
            .arg("--tls-key-file")
            .arg(&pki.server_key)
            .arg("--tls-ca-cert-file")
            .arg(&pki.ca)
            .args(["--tls-auth-clients", if client_certs { "yes" } else { "no" }])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/test.sh installs it)");
        let answers = || std::future::ready(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        crate::eventually_within(Duration::from_secs(5), "the TLS redis-server listens", answers, |up| *up).await;
        Self { child, port }
    }

    /// `rediss://localhost:<port>`.
    pub fn url(&self) -> String {
        format!("rediss://localhost:{}", self.port)
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
