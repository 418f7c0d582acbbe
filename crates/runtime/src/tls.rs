//! One TLS stack for every connection the services make or take: rustls
//! with ring (docs/DECISIONS.md, TLS). PostgreSQL takes its settings from
//! the URL (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`), Redis from a
//! `rediss://` URL and the `CX_REDIS_*_FILE` settings.

use std::path::{Path, PathBuf};

use crate::config::ConfigError;

/// Makes ring the process's TLS provider, once: clients that build their
/// TLS settings from the process default (Redis) find it there.
pub fn init() {
    // ring, as sqlx's rustls (through sea-orm) uses: one provider, built
    // with a C compiler alone. rustls marks it as lacking post-quantum key
    // exchange; aws-lc-rs would bring it once sea-orm can select it.
    // An error says a provider is installed already: the same one.
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A PEM file's content; `setting` names it in errors.
pub fn read_pem(path: &Path, setting: &'static str) -> Result<Vec<u8>, ConfigError> {
    let pem =
        std::fs::read(path).map_err(|e| ConfigError::new(setting, format!("cannot read {}: {e}", path.display())))?;
    if !pem.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(ConfigError::new(setting, format!("{} holds no PEM block", path.display())));
    }
    Ok(pem)
}

/// A CA bundle and an optional client certificate and key, as files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// The same files, read.
#[derive(Clone, Default)]
pub struct TlsPem {
    pub ca: Option<Vec<u8>>,
    /// Client certificate and key (mutual TLS).
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for TlsPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("TlsPem").field("ca", &self.ca.is_some()).field("identity", &self.identity.is_some()).finish()
    }
}

impl TlsFiles {
    /// Reads the files; `settings` names (CA, certificate, key) in errors.
    /// A certificate needs its key and a key its certificate.
    pub fn read(&self, settings: [&'static str; 3]) -> Result<TlsPem, ConfigError> {
        let ca = self.ca.as_deref().map(|p| read_pem(p, settings[0])).transpose()?;
        let identity = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Some((read_pem(cert, settings[1])?, read_pem(key, settings[2])?)),
            (None, None) => None,
            (Some(_), None) => return Err(ConfigError::new(settings[2], "a client certificate needs its key")),
            (None, Some(_)) => return Err(ConfigError::new(settings[1], "a client key needs its certificate")),
        };
        Ok(TlsPem { ca, identity })
    }
}

/// The TLS settings of a gRPC client: `pem`'s CA (else the system's
/// roots) and client certificate, and the name the server's certificate
/// must carry (the peer's host, not the address dialled).
pub fn grpc_client(pem: &TlsPem, server_name: &str) -> tonic::transport::ClientTlsConfig {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let mut config = ClientTlsConfig::new().domain_name(server_name);
    config = match &pem.ca {
        Some(ca) => config.ca_certificate(Certificate::from_pem(ca)),
        None => config.with_native_roots(),
    };
    if let Some((cert, key)) = &pem.identity {
        config = config.identity(Identity::from_pem(cert, key));
    }
    config
}

/// The TLS settings of the gRPC server: its certificate and key, and when
/// `client_ca` is given, client certificates it must have signed (mutual TLS).
pub fn grpc_server(cert: &[u8], key: &[u8], client_ca: Option<&[u8]>) -> tonic::transport::ServerTlsConfig {
    use tonic::transport::{Certificate, Identity, ServerTlsConfig};
    let config = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
    match client_ca {
        Some(ca) => config.client_ca_root(Certificate::from_pem(ca)),
        None => config,
    }
}
