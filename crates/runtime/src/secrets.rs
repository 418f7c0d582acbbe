//! Secrets from the environment or a file, never from a flag (a flag is
//! visible to anyone who can list processes), and the private files of the
//! data directory. Only the embedded default generates a missing secret:
//! anywhere else each process would make its own, and services would
//! silently refuse each other.

use std::path::Path;

use crate::config::ConfigError;

/// The shortest secret accepted.
pub const MIN_SECRET_LEN: usize = 32;

/// What to do when no secret is configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// The embedded default: read the data directory's secret, or create it.
    Generate,
    /// Read the data directory's secret if a server made one (`cx token`).
    ReadExisting,
    /// No fallback: a missing secret is a configuration error.
    Refuse,
}

/// One secret's settings.
#[derive(Clone, Copy, Debug)]
pub struct Secret {
    /// The environment variable holding the secret itself.
    pub env: &'static str,
    /// The setting naming a file that holds it.
    pub file_setting: &'static str,
    /// Its name in the data directory, when generated.
    pub generated_file: &'static str,
    pub purpose: &'static str,
}

impl Secret {
    /// The secret from `value` (the environment) or `file`, else as
    /// `fallback` says; `None` when there is none and `fallback` refuses.
    pub fn load(
        &self,
        value: Option<&str>,
        file: Option<&Path>,
        data_dir: &Path,
        fallback: Fallback,
    ) -> Result<Option<String>, ConfigError> {
        let given = match (value.filter(|v| !v.is_empty()), file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    self.env,
                    format!("set either {} or {}, not both", self.env, self.file_setting),
                ));
            }
            (Some(value), None) => Some((self.env, value.to_owned())),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError::new(self.file_setting, format!("cannot read {}: {e}", path.display())))?;
                Some((self.file_setting, text.trim().to_owned()))
            }
            (None, None) => None,
        };
        if let Some((setting, secret)) = given {
            if secret.len() < MIN_SECRET_LEN {
                return Err(ConfigError::new(setting, format!("must be at least {MIN_SECRET_LEN} bytes")));
            }
            return Ok(Some(secret));
        }
        match fallback {
            Fallback::Refuse => Ok(None),
            Fallback::ReadExisting => read_generated(&data_dir.join(self.generated_file)),
            Fallback::Generate => {
                let path = data_dir.join(self.generated_file);
                if let Some(secret) = read_generated(&path)? {
                    return Ok(Some(secret));
                }
                create_private_dir(data_dir)?;
                let secret = random_secret();
                write_private(&path, &secret)
                    .map_err(|e| ConfigError::new("CX_DATA_DIR", format!("cannot write {}: {e}", path.display())))?;
                tracing::info!(path = %path.display(), purpose = self.purpose, "generated a new secret");
                // Another process may have won the race to create it: read back.
                read_generated(&path)
            }
        }
    }
}

/// 32 random bytes in hex.
pub fn random_secret() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn read_generated(path: &Path) -> Result<Option<String>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(secret) if secret.trim().len() >= MIN_SECRET_LEN => Ok(Some(secret.trim().to_owned())),
        Ok(_) => {
            Err(ConfigError::new("CX_DATA_DIR", format!("{} is shorter than {MIN_SECRET_LEN} bytes", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ConfigError::new("CX_DATA_DIR", format!("cannot read {}: {e}", path.display()))),
    }
}

/// Creates `dir` (and its parents) readable by this user alone (0700); a
/// directory that exists keeps its mode, with a warning if others may read it.
pub fn create_private_dir(dir: &Path) -> Result<(), ConfigError> {
    let problem = |e: std::io::Error| ConfigError::new("CX_DATA_DIR", format!("cannot create {}: {e}", dir.display()));
    if dir.is_dir() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir).map_err(problem)?.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %dir.display(),
                    mode = format!("{:o}", mode & 0o777),
                    "the data directory is readable by other users; chmod 700 it"
                );
            }
        }
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(problem)
}

/// Creates `path` with `content`, readable by this user alone (0600); an
/// existing file is left as it is.
pub fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    match private_file(path) {
        Ok(mut file) => file.write_all(content.as_bytes()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Makes sure `path` exists and only this user may read it (0600): SQLite
/// files hold customers' personal data. SQLite gives its `-wal` and `-shm`
/// files the mode of the database file.
pub fn restrict_file(path: &Path) -> std::io::Result<()> {
    match private_file(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                for file in [path.to_path_buf(), suffixed(path, "-wal"), suffixed(path, "-shm")] {
                    if file.exists() {
                        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
                    }
                }
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

fn suffixed(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: Secret =
        Secret { env: "CX_JWT_SECRET", file_setting: "CX_JWT_SECRET_FILE", generated_file: "jwt-secret", purpose: "t" };

    fn temp() -> std::path::PathBuf {
        std::env::temp_dir().join(format!("cx-secrets-{}", uuid::Uuid::new_v4().simple()))
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn only_the_embedded_default_generates_and_it_keeps_the_secret_private() {
        let dir = temp();
        assert_eq!(JWT.load(None, None, &dir, Fallback::Refuse).unwrap(), None);
        assert_eq!(JWT.load(None, None, &dir, Fallback::ReadExisting).unwrap(), None);
        assert!(!dir.exists(), "refusing or reading creates nothing");
        let made = JWT.load(None, None, &dir, Fallback::Generate).unwrap().unwrap();
        assert_eq!(made.len(), 64);
        assert_eq!(JWT.load(None, None, &dir, Fallback::ReadExisting).unwrap(), Some(made.clone()));
        assert_eq!(JWT.load(None, None, &dir, Fallback::Generate).unwrap(), Some(made));
        #[cfg(unix)]
        {
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(&dir.join("jwt-secret")), 0o600);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_given_secret_comes_from_the_environment_or_a_file_and_is_checked() {
        let dir = temp();
        let long = "s".repeat(40);
        assert_eq!(JWT.load(Some(&long), None, &dir, Fallback::Refuse).unwrap(), Some(long.clone()));
        assert_eq!(
            JWT.load(Some("short"), None, &dir, Fallback::Generate).unwrap_err().to_string(),
            "CX_JWT_SECRET: must be at least 32 bytes"
        );
        create_private_dir(&dir).unwrap();
        let file = dir.join("given");
        std::fs::write(&file, format!("{long}\n")).unwrap();
        assert_eq!(JWT.load(None, Some(&file), &dir, Fallback::Refuse).unwrap(), Some(long.clone()));
        assert_eq!(
            JWT.load(Some(&long), Some(&file), &dir, Fallback::Refuse).unwrap_err().to_string(),
            "CX_JWT_SECRET: set either CX_JWT_SECRET or CX_JWT_SECRET_FILE, not both"
        );
        let missing = dir.join("missing");
        assert!(
            JWT.load(None, Some(&missing), &dir, Fallback::Refuse)
                .unwrap_err()
                .to_string()
                .starts_with("CX_JWT_SECRET_FILE: cannot read")
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn database_files_are_made_private_even_when_they_exist() {
        let dir = temp();
        create_private_dir(&dir).unwrap();
        let db = dir.join("profile.db");
        restrict_file(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        // A file left 0644 by an earlier version, and its WAL.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(dir.join("profile.db-wal"), b"").unwrap();
        std::fs::set_permissions(dir.join("profile.db-wal"), std::fs::Permissions::from_mode(0o644)).unwrap();
        restrict_file(&db).unwrap();
        assert_eq!((mode(&db), mode(&dir.join("profile.db-wal"))), (0o600, 0o600));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
