//! A private PostgreSQL server on a free loopback port, to crash and
//! restart without touching the shared one the other tests use (Redis's
//! counterpart is `cx_testkit::redis_server::PrivateRedis`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context as _;
use cx_testkit::process::free_port;

/// A PostgreSQL cluster of its own (initdb), to crash and restart.
pub struct PrivatePostgres {
    bin: PathBuf,
    dir: PathBuf,
    pub port: u16,
}

impl PrivatePostgres {
    pub async fn start() -> anyhow::Result<Self> {
        let bin = server_bin()?;
        let dir = cx_testkit::temp_dir();
        std::fs::create_dir_all(&dir)?;
        let pg = Self { bin, dir, port: free_port() };
        if as_root() {
            // PostgreSQL refuses to run as root: the cluster belongs to postgres.
            run(Command::new("chown").arg("postgres:postgres").arg(&pg.dir))?;
        }
        let data = pg.dir.join("data");
        run(pg.command("initdb").args(["-U", "postgres", "--auth=trust", "--no-sync", "-D"]).arg(&data))?;
        pg.restart()?;
        Ok(pg)
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// An immediate stop: no checkpoint, recovery from the WAL at the next
    /// start, as after a crash.
    pub fn crash(&self) -> anyhow::Result<()> {
        run(self.command("pg_ctl").args(["-m", "immediate", "-D"]).arg(self.dir.join("data")).arg("stop"))
    }

    /// Starts the cluster and waits until it accepts connections.
    pub fn restart(&self) -> anyhow::Result<()> {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.dir.display());
        let data = self.dir.join("data");
        let log = self.dir.join("log");
        run(self.command("pg_ctl").args(["-w", "-o", &options, "-l"]).arg(&log).arg("-D").arg(&data).arg("start"))
    }

    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = self.command("pg_ctl").args(["-m", "immediate", "-D"]).arg(&data).arg("stop").output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn as_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// The newest PostgreSQL server binaries installed (Debian's layout).
fn server_bin() -> anyhow::Result<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .context("PostgreSQL server binaries (/usr/lib/postgresql)")?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    found.sort_by_key(|p| p.parent().and_then(Path::file_name).and_then(|v| v.to_str()?.parse::<u32>().ok()));
    found.pop().context("no initdb under /usr/lib/postgresql")
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command.stdout(Stdio::null()).output().with_context(|| format!("{command:?}"))?;
    anyhow::ensure!(output.status.success(), "{command:?}: {}", String::from_utf8_lossy(&output.stderr));
    Ok(())
}
