//! The `cx` binary as operators run it: separate processes on loopback
//! ports, stopped by real signals and started again on the same port.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A free loopback port (free when asked; the process binds it right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Whether this process runs as root: servers that refuse to (PostgreSQL,
/// PgBouncer) are then started as another user.
pub fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

/// One `cx serve <service>` process; killed when dropped.
pub struct CxProcess {
    child: Child,
    bin: PathBuf,
    service: String,
    port: u16,
    env: Vec<(String, String)>,
    data_dir: PathBuf,
    /// `http://127.0.0.1:<port>`.
    pub addr: String,
}

impl CxProcess {
    /// Starts `bin serve service` on `port` with the test secret, a private
    /// data directory and `env` (which may override both).
    pub fn serve(bin: impl Into<PathBuf>, service: &str, port: u16, env: &[(&str, &str)]) -> Self {
        let data_dir = crate::temp_dir();
        let mut all = vec![
            ("CX_LISTEN".to_owned(), format!("127.0.0.1:{port}")),
            ("CX_JWT_SECRET".to_owned(), crate::SECRET.to_owned()),
            ("CX_SERVICE_SECRET".to_owned(), crate::SERVICE_SECRET.to_owned()),
            ("CX_DATA_DIR".to_owned(), data_dir.display().to_string()),
        ];
        all.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let bin = bin.into();
        let child = spawn(&bin, service, &all);
        let addr = format!("http://127.0.0.1:{port}");
        Self { child, bin, service: service.to_owned(), port, env: all, data_dir, addr }
    }

    /// Waits (at most 20 s) until `cx health` says the process serves.
    pub async fn wait_serving(&self) {
        let what = format!("cx serve {} reports SERVING on {}", self.service, self.addr);
        let health = || {
            std::future::ready(Command::new(&self.bin).args(["health", "--addr", &self.addr]).output().unwrap().status)
        };
        crate::eventually_within(Duration::from_secs(20), &what, health, |status| status.success()).await;
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`TERM`, `INT`, …).
    pub fn signal(&self, name: &str) {
        let sent = Command::new("kill").args([&format!("-{name}"), &self.pid().to_string()]).status().unwrap();
        assert!(sent.success(), "kill -{name} failed");
    }

    /// SIGKILL: no drain, no flush; then reaps the process.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Starts the same command again, on the same port and environment.
    pub fn restart(&mut self) {
        self.child = spawn(&self.bin, &self.service, &self.env);
    }

    /// Exit status, if the process has ended.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process's data directory (removed when it is dropped).
    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }
}

fn spawn(bin: &PathBuf, service: &str, env: &[(String, String)]) -> Child {
    Command::new(bin)
        .args(["serve", service])
        .env_remove("CX_REDIS_URL")
        .env_remove("CX_DATABASE_URL")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

impl Drop for CxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
