//! Secrets as an operator meets them: a split deployment without a secret
//! refuses to start and names the setting; a secret is never a flag; the
//! embedded default keeps its data directory to its own user.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use cx_testkit::process::{CxProcess, free_port};

use super::CX;

/// Runs `cx serve profile` with `env` (nothing of the test's own CX_…
/// environment) and `args`; it must exit within 20 s.
fn serve_exits(env: &[(&str, &str)], args: &[&str]) -> Output {
    let listen = format!("127.0.0.1:{}", free_port());
    let mut command = Command::new(CX);
    command.args(["serve", "profile"]).args(args);
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("CX_")) {
        command.env_remove(name);
    }
    let data_dir = cx_testkit::temp_dir();
    command.env("CX_LISTEN", &listen).env("CX_DATA_DIR", &data_dir).envs(env.iter().copied());
    let mut child = command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            panic!("cx serve {args:?} with {env:?} kept running");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    assert!(!data_dir.exists(), "a refused start generated files in {}", data_dir.display());
    output
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn split_deployments_without_secrets_refuse_to_start_naming_the_setting() {
    // The database need not exist: the settings are checked first.
    let postgres = "postgres://postgres@127.0.0.1:5432/cx_never_created";
    let user = "user-secret-0123456789abcdef-0123456789";
    let service = "service-secret-0123456789abcdef-012345";

    let none = serve_exits(&[("CX_DATABASE_URL", postgres)], &[]);
    assert!(!none.status.success());
    assert!(stderr(&none).contains("CX_JWT_SECRET: not set"), "{}", stderr(&none));

    let no_service = serve_exits(&[("CX_DATABASE_URL", postgres), ("CX_JWT_SECRET", user)], &[]);
    assert!(!no_service.status.success());
    assert!(stderr(&no_service).contains("CX_SERVICE_SECRET: not set"), "{}", stderr(&no_service));

    let same = serve_exits(&[("CX_DATABASE_URL", postgres), ("CX_JWT_SECRET", user), ("CX_SERVICE_SECRET", user)], &[]);
    assert!(!same.status.success());
    assert!(stderr(&same).contains("CX_SERVICE_SECRET: must differ from the user-token secret"), "{}", stderr(&same));

    // A secret on the command line would be visible to anyone listing processes.
    let flag = serve_exits(&[("CX_DATABASE_URL", postgres), ("CX_SERVICE_SECRET", service)], &["--jwt-secret", user]);
    assert!(!flag.status.success());
    assert!(stderr(&flag).contains("unexpected argument '--jwt-secret'"), "{}", stderr(&flag));
}

#[test]
fn profile_without_a_customer_data_service_refuses_to_start_unless_told_it_is_not_deployed() {
    // Settings only: the database is never reached.
    let postgres = "postgres://postgres@127.0.0.1:5432/cx_never_created";
    let secrets = [
        ("CX_JWT_SECRET", "user-secret-0123456789abcdef-0123456789"),
        ("CX_SERVICE_SECRET", "service-secret-0123456789abcdef-012345"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let env: Vec<_> = [("CX_DATABASE_URL", postgres)].iter().chain(&secrets).chain(extra).copied().collect();
        serve_exits(&env, &[])
    };
    // Erasures would never complete, or complete without journey's data.
    let alone = with(&[]);
    assert!(!alone.status.success());
    let expected = "CX_JOURNEY_ENDPOINT: the journey service holds customer data and erasures wait for it: \
                    set its endpoint, or name it in CX_NOT_DEPLOYED if this deployment does not run it";
    assert!(stderr(&alone).contains(expected), "{}", stderr(&alone));
    // A misspelt name is not taken for "not deployed".
    let typo = with(&[("CX_NOT_DEPLOYED", "journy")]);
    assert!(!typo.status.success());
    // The choices are the registry's, in its order (a new service adds its name).
    let expected = "CX_NOT_DEPLOYED: unknown service 'journy' (expected one of: profile, journey";
    assert!(stderr(&typo).contains(expected), "{}", stderr(&typo));
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[tokio::test]
async fn the_embedded_data_directory_and_its_files_are_private() {
    // The embedded default: no database URL, no secret; it makes both secrets.
    let process = CxProcess::serve(CX, "all", free_port(), &[("CX_JWT_SECRET", ""), ("CX_SERVICE_SECRET", "")]);
    process.wait_serving().await;
    let dir = process.data_dir();
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    let mut files: Vec<(String, u32)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            (path.file_name().unwrap().to_string_lossy().into_owned(), mode(&path))
        })
        .collect();
    files.sort();
    let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    for expected in ["journey.db", "jwt-secret", "profile.db", "profile.db-wal", "service-secret"] {
        assert!(names.contains(&expected), "{expected} missing from {names:?}");
    }
    assert!(files.iter().all(|(_, mode)| *mode == 0o600), "{files:?}");

    // `cx token` signs with the generated user secret, and reads it only.
    let token = Command::new(CX)
        .args(["token", "--tenant", "acme", "--roles", "writer"])
        .env("CX_DATA_DIR", dir)
        .env_remove("CX_JWT_SECRET")
        .output()
        .unwrap();
    assert!(token.status.success(), "{}", String::from_utf8_lossy(&token.stderr));
    let empty = cx_testkit::temp_dir();
    let refused = Command::new(CX)
        .args(["token", "--tenant", "acme"])
        .env("CX_DATA_DIR", &empty)
        .env_remove("CX_JWT_SECRET")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(!empty.exists(), "cx token created {}", empty.display());
}
