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

/// A private Redis Cluster of three masters on free loopback ports; killed
/// and its directory removed when dropped.
pub struct PrivateRedisCluster {
    children: Vec<Child>,
    pub ports: Vec<u16>,
    dir: PathBuf,
}

impl PrivateRedisCluster {
    /// Starts three `redis-server --cluster-enabled` nodes, joins them into
    /// one cluster (`redis-cli --cluster create`) and waits until it serves.
    pub async fn start() -> Self {
        let dir = crate::temp_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let ports: Vec<u16> = (0..3).map(|_| crate::process::free_port()).collect();
        let children = ports.iter().map(|port| cluster_node(*port, &dir)).collect();
        let cluster = Self { children, ports, dir };
        for port in &cluster.ports {
            let url = format!("redis://127.0.0.1:{port}");
            let what = format!("cluster node {port} answers");
            crate::eventually_within(Duration::from_secs(5), &what, || ping(&url), |up| *up).await;
        }
        let nodes: Vec<String> = cluster.ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli must be installed (it comes with redis-server)");
        assert!(created.success(), "redis-cli --cluster create failed");
        cluster.wait_ok().await;
        cluster
    }

    /// Kills master `i` (its data is lost: nothing is persisted) and starts
    /// it again: the same node, slots and port, a new `run_id`.
    pub async fn restart(&mut self, i: usize) {
        let _ = self.children[i].kill();
        let _ = self.children[i].wait();
        self.children[i] = cluster_node(self.ports[i], &self.dir);
        self.wait_ok().await;
    }

    /// Waits (bounded) until every node says the cluster is ok.
    async fn wait_ok(&self) {
        for port in &self.ports {
            let url = format!("redis://127.0.0.1:{port}");
            let state = || async {
                let info: String = match redis::Client::open(url.as_str()) {
                    Ok(client) => match client.get_multiplexed_async_connection().await {
                        Ok(mut conn) => {
                            redis::cmd("CLUSTER").arg("INFO").query_async(&mut conn).await.unwrap_or_default()
                        }
                        Err(_) => String::new(),
                    },
                    Err(_) => String::new(),
                };
                info.contains("cluster_state:ok")
            };
            crate::eventually_within(Duration::from_secs(10), "the cluster is ok", state, |ok| *ok).await;
        }
    }

    /// The seed nodes as `CX_REDIS_URL` takes them: comma-separated.
    pub fn url(&self) -> String {
        self.ports.iter().map(|p| format!("redis://127.0.0.1:{p}")).collect::<Vec<_>>().join(",")
    }

    /// The node holding `key`'s slot and the keys it holds matching `pattern`,
    /// for every node.
    pub async fn keys_by_node(&self, pattern: &str) -> Vec<(u16, Vec<String>)> {
        let mut all = Vec::new();
        for port in &self.ports {
            let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            let keys: Vec<String> = redis::cmd("KEYS").arg(pattern).query_async(&mut conn).await.unwrap();
            all.push((*port, keys));
        }
        all
    }
}

impl Drop for PrivateRedisCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One cluster node on `port`, its cluster configuration kept in `dir`.
fn cluster_node(port: u16, dir: &std::path::Path) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--cluster-enabled", "yes", "--cluster-config-file", &format!("nodes-{port}.conf")])
        .args(["--protected-mode", "no"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server must be installed (scripts/test.sh installs it)")
}
