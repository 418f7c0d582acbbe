//! A private PgBouncer in transaction mode in front of the test PostgreSQL,
//! as a platform team runs one to keep the connection count down: each
//! transaction gets whichever of a few server connections is free, so
//! nothing a session set (a `search_path`, a prepared statement) carries
//! over to the next transaction.

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One `pgbouncer` on a free loopback port; killed and its directory
/// removed when dropped.
pub struct PgBouncer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl PgBouncer {
    /// Starts it in front of the server of `upstream` (a postgres:// URL),
    /// with `server_connections` server connections per database, and waits
    /// (bounded) until it listens. Panics if PgBouncer is not installed
    /// (scripts/test.sh installs it).
    pub async fn start(upstream: &str, server_connections: u32) -> Self {
        Self::start_ignoring(upstream, server_connections, &[]).await
    }

    /// As [`PgBouncer::start`], letting clients send the startup parameters
    /// `ignored` (`ignore_startup_parameters`), as many deployments do for
    /// drivers that send `extra_float_digits`.
    pub async fn start_ignoring(upstream: &str, server_connections: u32, ignored: &[&str]) -> Self {
        let url = url::Url::parse(upstream).expect("a postgres:// URL");
        let mut target = format!(
            "host={} port={} user={}",
            url.host_str().unwrap_or("127.0.0.1"),
            url.port().unwrap_or(5432),
            if url.username().is_empty() { "postgres" } else { url.username() },
        );
        if let Some(password) = url.password() {
            target.push_str(&format!(" password={password}"));
        }
        let dir = crate::temp_dir();
        std::fs::create_dir_all(&dir).unwrap();
        // Readable by the unprivileged user it runs as under root.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let port = crate::process::free_port();
        // `any`: clients are not authenticated (loopback, a test); every
        // database logs in upstream as the URL's user.
        let ini = format!(
            "[databases]\n* = {target}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n\
             unix_socket_dir =\nauth_type = any\npool_mode = transaction\n\
             default_pool_size = {server_connections}\nmax_client_conn = 500\nlogfile = {}\n\
             ignore_startup_parameters = {}\n",
            dir.join("pgbouncer.log").display(),
            ignored.join(",")
        );
        let config = dir.join("pgbouncer.ini");
        std::fs::write(&config, ini).unwrap();
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(dir.join("pgbouncer.log"), "").unwrap();
        std::fs::set_permissions(dir.join("pgbouncer.log"), std::fs::Permissions::from_mode(0o666)).unwrap();
        let mut command = Command::new(binary());
        // It refuses to run as root; it drops to `nobody` when told to.
        if crate::process::running_as_root() {
            command.args(["-u", "nobody"]);
        }
        let child = command
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pgbouncer must be installed (scripts/test.sh installs it)");
        let bouncer = Self { child, port, dir };
        let address = format!("127.0.0.1:{port}");
        let listens = || async { tokio::net::TcpStream::connect(&address).await.is_ok() };
        crate::eventually_within(Duration::from_secs(10), "pgbouncer listens", listens, |up| *up).await;
        bouncer
    }

    /// `upstream` with PgBouncer's address instead of the server's: the same
    /// database, through the pooler.
    pub fn url(&self, upstream: &str) -> String {
        let mut url = url::Url::parse(upstream).expect("a postgres:// URL");
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(self.port)).unwrap();
        url.into()
    }

    /// What it logged so far (its errors name the protocol misuse a client
    /// made, if any).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pgbouncer.log")).unwrap_or_default()
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Debian installs it outside a user's PATH.
fn binary() -> &'static str {
    if std::path::Path::new("/usr/sbin/pgbouncer").exists() { "/usr/sbin/pgbouncer" } else { "pgbouncer" }
}
