//! Where the demo loads: a running suite, or the embedded default started as
//! `cx serve all` on a temporary data directory and a free port.
//!
//! A child process rather than in-process services: its logs go to a file and
//! not between the progress bars, it is exactly what a newcomer runs, and
//! `--keep` can leave it running after the demo exits.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The services the demo calls, by the names `cx serve` knows them.
pub const SERVICES: [&str; 4] = ["profile", "journey", "survey", "kpi"];

pub struct Embedded {
    pub child: Child,
    pub data_dir: PathBuf,
    pub addr: String,
}

impl Embedded {
    pub async fn start() -> anyhow::Result<Self> {
        let stamp =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let data_dir = std::env::temp_dir().join(format!("cx-demo-{}-{stamp}", std::process::id()));
        std::fs::create_dir_all(&data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = std::fs::File::create(data_dir.join("cx.log"))?;
        let mut command = Command::new(std::env::current_exe().context("cannot find the cx binary")?);
        // The embedded default whatever this shell configures (a database URL
        // meant for something else must not receive demo data).
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("CX_") {
                command.env_remove(&name);
            }
        }
        let child = command
            .args(["serve", "all"])
            .env("CX_LISTEN", format!("127.0.0.1:{port}"))
            .env("CX_DATA_DIR", &data_dir)
            .env("CX_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start cx serve all")?;
        let mut embedded = Self { child, data_dir, addr: format!("http://127.0.0.1:{port}") };
        embedded.wait_serving().await?;
        Ok(embedded)
    }

    async fn wait_serving(&mut self) -> anyhow::Result<()> {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("cx serve all exited ({status}); see {}", self.data_dir.join("cx.log").display());
            }
            if let Ok(channel) = Endpoint::from_shared(self.addr.clone())?.connect().await {
                let health = HealthClient::new(channel).check(HealthCheckRequest { service: String::new() }).await;
                if health.is_ok_and(|r| r.into_inner().status == ServingStatus::Serving as i32) {
                    return Ok(());
                }
            }
            anyhow::ensure!(Instant::now() < until, "cx serve all did not report SERVING within 30 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the server and removes its data directory.
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// A channel to each service, as `channel` (as `cx serve` reads its peers).
pub async fn channels(endpoint: &str) -> anyhow::Result<Vec<Channel>> {
    let mut out = Vec::new();
    for name in SERVICES {
        out.push(channel(name, endpoint).await?);
    }
    Ok(out)
}

/// A channel to one service: `CX_<NAME>_ENDPOINT` when set, else `endpoint`.
pub async fn channel(name: &str, endpoint: &str) -> anyhow::Result<Channel> {
    let var = format!("CX_{}_ENDPOINT", name.to_uppercase());
    let url = std::env::var(&var).ok().filter(|u| !u.is_empty()).unwrap_or_else(|| endpoint.to_owned());
    Endpoint::from_shared(url.clone())
        .with_context(|| format!("{var}: not a URL"))?
        .timeout(Duration::from_secs(120))
        .connect()
        .await
        .with_context(|| format!("cannot reach the {name} service at {url}"))
}
