//! A private `redis-server` for tests that stop, kill and restart Redis:
//! the shared one must never be. It listens on a free loopback port, keeps
//! its data in its own directory (append-only file, every write synced) and
//! comes back with that data, as a persistent Redis or a failover does.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One private `redis-server`; killed and its directory removed when dropped.
pub struct PrivateRedis {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl PrivateRedis {
    /// Starts it and waits (bounded) until it answers.
    pub async fn start() -> Self {
        let dir = crate::temp_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let mut redis = Self { child: None, port: crate::process::free_port(), dir };
        redis.restart().await;
        redis
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops it cleanly (SIGTERM: its data is on disk).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let _ = child.wait();
        }
    }

    /// Kills it (SIGKILL); every write was synced, so its data survives.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the data it had.
    pub async fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always", "--protected-mode", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/test.sh installs it)");
        self.child = Some(child);
        let what = format!("the private redis-server on port {} answers", self.port);
        crate::eventually_within(Duration::from_secs(5), &what, || self.ping(), |up| *up).await;
    }

    async fn ping(&self) -> bool {
        ping(&self.url()).await
    }

    /// Keys matching `pattern` now.
    pub async fn keys(&self, pattern: &str) -> Vec<String> {
        let client = redis::Client::open(self.url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("KEYS").arg(pattern).query_async(&mut conn).await.unwrap()
    }

    /// The server's `run_id` (a new one after each restart).
    pub async fn run_id(&self) -> String {
        let client = redis::Client::open(self.url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let info: String = redis::cmd("INFO").arg("server").query_async(&mut conn).await.unwrap();
        info.lines().find_map(|l| l.strip_prefix("run_id:")).unwrap().trim().to_owned()
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether the Redis server at `url` answers PING now.
pub async fn ping(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else {
        return false;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return false;
    };
    redis::cmd("PING").query_async::<String>(&mut conn).await.is_ok()
}
