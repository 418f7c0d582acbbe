//! `cx demo --size small` against a `cx serve all` of its own, then `cx
//! dashboard --html` against the same suite: on the embedded default
//! (SQLite), and on PostgreSQL through PgBouncer in transaction mode with the
//! services sharing one pool.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const CX: &str = env!("CARGO_BIN_EXE_cx");

/// `cx serve all` on a fresh data directory and a free port, killed on drop.
struct Suite {
    child: Child,
    dir: PathBuf,
    addr: String,
    /// The settings the server and its clients share (the token secret).
    shared: Vec<(&'static str, String)>,
}

impl Suite {
    /// On the embedded default.
    fn start() -> Self {
        Self::start_with(&[], Vec::new())
    }

    /// With `env` for the server, and `shared` for it and its clients.
    fn start_with(env: &[(&str, String)], shared: Vec<(&'static str, String)>) -> Self {
        let dir = std::env::temp_dir().join(format!("cx-demo-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // Private, as `cx serve` wants its secret's directory.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = std::fs::File::create(dir.join("cx.log")).unwrap();
        let child = clean(Command::new(CX))
            .args(["serve", "all"])
            .env("CX_LISTEN", format!("127.0.0.1:{port}"))
            .env("CX_DATA_DIR", &dir)
            .env("CX_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .envs(shared.iter().map(|(k, v)| (k, v)))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let suite = Self { child, dir, addr: format!("http://127.0.0.1:{port}"), shared };
        let until = Instant::now() + Duration::from_secs(60);
        while !clean(Command::new(CX)).args(["health", "--addr", &suite.addr]).output().unwrap().status.success() {
            assert!(Instant::now() < until, "cx serve all did not start");
            std::thread::sleep(Duration::from_millis(200));
        }
        suite
    }

    fn cx(&self, args: &[&str]) -> Output {
        let output = clean(Command::new(CX))
            .args(args)
            .args(["--endpoint", &self.addr, "--data-dir"])
            .arg(&self.dir)
            .envs(self.shared.iter().map(|(k, v)| (k, v)))
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(output.status.success(), "{}\n{}", text(&output), String::from_utf8_lossy(&output.stderr));
        output
    }
}

impl Drop for Suite {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.join("cx.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            eprintln!("cx serve all logged, last lines first:\n{}", tail.join("\n"));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Without this shell's CX_ settings (a database URL meant for other tests).
fn clean(mut command: Command) -> Command {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CX_") {
            command.env_remove(&name);
        }
    }
    command.stdin(Stdio::null());
    command
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn line<'a>(out: &'a str, start: &str) -> &'a str {
    out.lines().find(|l| l.trim_start().starts_with(start)).unwrap_or_else(|| panic!("no line {start}:\n{out}"))
}

/// The whole number after `after` in `line`.
fn number_after(line: &str, after: &str) -> i64 {
    let rest = line.split(after).nth(1).unwrap_or_else(|| panic!("no {after} in {line}"));
    rest.trim_start().split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

#[test]
fn the_small_demo_prints_the_dashboard_and_cx_dashboard_writes_it_as_html() {
    check_small_demo(&Suite::start());
}

/// The whole suite through a pooler that gives each transaction whichever of
/// three server connections is free: no statement may rely on session
/// state, and the five services share one pool of eight connections to it.
#[tokio::test(flavor = "multi_thread")]
async fn the_small_demo_runs_on_postgres_behind_pgbouncer_in_transaction_mode() {
    let db = cx_testkit::TestDb::create().await.unwrap();
    let bouncer = cx_testkit::pgbouncer::PgBouncer::start(&db.url, 3).await;
    let env = [
        ("CX_DATABASE_URL", bouncer.url(&db.url)),
        ("CX_DB_POOLER", "transaction".to_owned()),
        ("CX_DB_MAX_CONNECTIONS", "8".to_owned()),
    ];
    let shared = vec![
        ("CX_JWT_SECRET", "demo-user-secret-0123456789abcdef-0123".to_owned()),
        ("CX_SERVICE_SECRET", "demo-service-secret-0123456789abcdef-01".to_owned()),
    ];
    tokio::task::spawn_blocking(move || check_small_demo(&Suite::start_with(&env, shared))).await.unwrap();
    drop(bouncer);
}

fn check_small_demo(suite: &Suite) {
    let out = text(&suite.cx(&["demo", "--size", "small"]));
    assert!(!out.contains('\x1b'), "NO_COLOR and no terminal: no colour");

    // Not a terminal: the progress is plain lines. Seed 17, small: 200
    // profiles + 27 survey consents (the customers with a touchpoint in the
    // last 7 days), 3 maps, 4,522 touchpoints; all 200 customers in the A/B
    // test (fewer than its 5,000).
    for done in ["customers: 227 to load", "journey maps: 3 done", "touchpoints: 4522 done", "experiment: 200 done"] {
        assert!(out.contains(done), "no {done}:\n{out}");
    }

    // The dashboard of the default days, its sections in order.
    let dashboard = &out[out.find("== CX dashboard: tenant demo, ").expect("no dashboard")..];
    let mut at = 0;
    for section in [
        "Headline KPIs",
        "Trends",
        "Journey maps",
        "Follow-up cases now:",
        "Lifecycle stages as of",
        "Digital intensity:",
        "Experiments (A/B tests)",
    ] {
        let found =
            dashboard[at..].find(section).unwrap_or_else(|| panic!("no {section} after byte {at}:\n{dashboard}"));
        at += found;
    }
    // The nine headline KPIs in the service's order; NPS has a target of
    // +30 (set by the demo), CES none.
    let names = [
        "NPS ",
        "CSAT ",
        "CES ",
        "Churn ",
        "Retention ",
        "Reactivation ",
        "CLV",
        "Closed-loop SLA ",
        "Time to resolution (h) ",
    ];
    let rows: Vec<&str> = dashboard.lines().skip_while(|l| !l.contains("KPI | Value")).skip(2).take(8).collect();
    for (row, name) in rows.iter().zip(names) {
        assert!(row.trim_start().starts_with(name), "{row} is not {name}:\n{dashboard}");
    }
    assert_eq!(line(dashboard, "NPS ").split('|').nth(3).unwrap().trim(), "+30");
    assert_eq!(line(dashboard, "CES ").split('|').nth(3).unwrap().trim(), "-");
    // NPS, CSAT and CES by month: 12 months, a sparkline each.
    for trend in ["NPS ", "CSAT ", "CES "] {
        let l =
            dashboard.lines().skip_while(|l| l != &"Trends").nth(1 + names.iter().position(|n| *n == trend).unwrap());
        assert!(l.unwrap().contains(" from "), "{dashboard}");
    }
    // Each of the three maps: conversion against the demo's 30 % target, a funnel.
    for map in ["Online purchase", "Store visit", "Support call"] {
        let l = line(dashboard, &format!("{map}: conversion "));
        assert!(l.contains(" n "), "{l}");
    }
    assert_eq!(dashboard.matches("    funnel: ").count(), 3, "{dashboard}");
    // Every one of the 200 customers has an index or not.
    let intensity = line(dashboard, "Digital intensity:");
    assert_eq!(number_after(intensity, ":") + number_after(intensity, "index,"), 200, "{intensity}");
    for category in ["traditional", "hybrid", "connected", "digital_native"] {
        line(dashboard, category);
    }
    // The A/B test: the 200 customers split between the two arms; its
    // planned size, 10 % → 15 % at alpha 0.05 and power 0.8:
    // (1.95996·√(2·0.125·0.875) + 0.84162·√(0.1·0.9 + 0.15·0.85))² / 0.05²
    // = (0.91669 + 0.39251)² / 0.0025 = 685.6 → 686 per arm, is not
    // reached, hence the peeking warning.
    line(dashboard, "Green checkout button (on checkout_completed, planned 686 per variant)");
    let control = number_after(line(dashboard, "control "), "control");
    let green = number_after(line(dashboard, "green "), "green");
    assert_eq!(control + green, 200);
    line(dashboard, "green vs control: lift ");
    line(dashboard, "! peeking: ");

    // `cx dashboard` against the same suite prints the same (cached) figures
    // and writes the page with every section.
    let page = suite.dir.join("dashboard.html");
    let again = text(&suite.cx(&["dashboard", "--tenant", "demo", "--html", page.to_str().unwrap()]));
    assert_eq!(again.trim_end().strip_suffix(&format!("Wrote {}", page.display())).unwrap().trim(), dashboard.trim());
    check_page(&page);
}

fn check_page(page: &Path) {
    let html = std::fs::read_to_string(page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    for section in [
        "<h2>Headline KPIs</h2>",
        "<h2>Trends</h2>",
        "<h2>Journey maps</h2>",
        "<h3>Online purchase</h3>",
        "<h2>Follow-up cases</h2>",
        "<h2>Digital intensity</h2>",
        "<h2>Lifecycle stages</h2>",
        "<h2>Experiments (A/B tests)</h2>",
        "<h3>Green checkout button</h3>",
        "class=\"warn\">Peeking",
        "fill-opacity=\"0.5\"",
    ] {
        assert!(html.contains(section), "no {section} in the page");
    }
    // Self-contained: no script, nothing fetched.
    assert!(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"));
}
