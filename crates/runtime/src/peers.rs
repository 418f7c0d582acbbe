//! How a service finds the others (docs/ARCHITECTURE.md §2.4): one gRPC endpoint
//! per peer, looked up by the peer's registered name. `CX_<NAME>_ENDPOINT`
//! is read for every service of the [`Registry`]; `--peer name=url` (or
//! `CX_PEERS`, comma-separated) names any of them too and wins. A peer
//! running in the same process (`cx serve all`) is reached on the local port
//! through the same client code, so its calls are traced and authenticated
//! exactly like remote ones.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tonic::transport::Endpoint;

use crate::balance::{Balanced, Resolve, SystemResolver};
use crate::config::ConfigError;
use crate::propagation::{ClientSide, ClientTraceLayer, Traced};
use crate::registry::Registry;
use crate::retry::Retrying;

/// Endpoints of other services, by name.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct PeerArgs {
    /// The endpoint of another service, as NAME=URL (repeatable), e.g.
    /// profile=http://cx-profile:50051. `CX_<NAME>_ENDPOINT` says the same
    /// for one service.
    #[arg(long = "peer", env = "CX_PEERS", value_delimiter = ',', value_parser = parse_peer)]
    pub peers: Vec<(String, String)>,

    /// Services this deployment does not run (comma-separated). A service
    /// holding customer data must have an endpoint or be named here: the
    /// profile service refuses to start otherwise, rather than complete
    /// erasures without it or never complete them.
    #[arg(long = "not-deployed", env = "CX_NOT_DEPLOYED", value_delimiter = ',')]
    pub not_deployed: Vec<String>,

    /// How often a peer's host name is resolved again: calls spread over
    /// every address it has (the ready pods behind a headless Service).
    #[arg(long = "peer-refresh", env = "CX_PEER_REFRESH", default_value = "5s", value_parser = humantime::parse_duration)]
    pub refresh: Option<Duration>,

    #[command(flatten)]
    pub tls: PeerTlsArgs,
}

/// How this process checks `https://` peers and shows itself to them
/// (`cx serve` and `cx health` alike).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct PeerTlsArgs {
    /// CA bundle (PEM) of `https://` peers' certificates; absent: the
    /// system's roots.
    #[arg(long = "peer-ca-file", env = "CX_PEER_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,

    /// Client certificate (PEM) shown to `https://` peers that ask for one
    /// (mutual TLS); commonly the pod's own.
    #[arg(long = "peer-client-cert-file", env = "CX_PEER_CLIENT_CERT_FILE")]
    pub client_cert_file: Option<std::path::PathBuf>,

    /// Key (PEM) of the peer client certificate.
    #[arg(long = "peer-client-key-file", env = "CX_PEER_CLIENT_KEY_FILE")]
    pub client_key_file: Option<std::path::PathBuf>,
}

impl PeerTlsArgs {
    /// The files, read (errors name their settings).
    pub fn read(&self) -> Result<crate::tls::TlsPem, ConfigError> {
        let files = crate::tls::TlsFiles {
            ca: self.ca_file.clone(),
            cert: self.client_cert_file.clone(),
            key: self.client_key_file.clone(),
        };
        files.read(["CX_PEER_CA_FILE", "CX_PEER_CLIENT_CERT_FILE", "CX_PEER_CLIENT_KEY_FILE"])
    }
}

fn parse_peer(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((name, url)) if !name.trim().is_empty() => Ok((name.trim().to_owned(), url.trim().to_owned())),
        _ => Err("expected NAME=URL, e.g. profile=http://cx-profile:50051".to_owned()),
    }
}

impl PeerArgs {
    /// One peer's endpoint.
    pub fn with(mut self, name: &str, url: impl Into<String>) -> Self {
        self.peers.push((name.to_owned(), url.into()));
        self
    }

    /// Adds `CX_<NAME>_ENDPOINT` of each registered service not named
    /// already, as `lookup` (the process environment) gives it.
    pub fn with_settings(mut self, registry: &Registry, lookup: impl Fn(&str) -> Option<String>) -> Self {
        for def in registry.services() {
            if self.peers.iter().any(|(name, _)| name == def.name) {
                continue;
            }
            if let Some(url) = lookup(&def.endpoint_setting()).filter(|u| !u.trim().is_empty()) {
                self.peers.push((def.name.to_owned(), url));
            }
        }
        self
    }
}

/// A traced client channel over every replica of a peer, sending again the
/// calls that no replica served ([`crate::retry`]).
pub type PeerChannel = Traced<Retrying<Balanced>, ClientSide>;

/// The peers this process can call, by service name. Channels connect
/// lazily and reconnect by themselves, so a peer that is down at start (or
/// restarts) is reached when it comes back.
#[derive(Clone, Debug, Default)]
pub struct Peers {
    channels: Arc<BTreeMap<&'static str, (String, Balanced)>>,
    /// Services the deployment says it does not run.
    absent: Arc<Vec<&'static str>>,
}

impl Peers {
    /// Explicit endpoints win; a service of `local_services` without one is
    /// called on `local`, the address this process listens on. Every name
    /// must be one of `registry`.
    pub fn resolve(
        args: &PeerArgs,
        registry: &Registry,
        local: Option<(SocketAddr, &[&str])>,
    ) -> Result<Self, ConfigError> {
        Self::resolve_with(args, registry, local, Arc::new(SystemResolver))
    }

    /// [`Peers::resolve`], host names resolved by `resolver`.
    pub fn resolve_with(
        args: &PeerArgs,
        registry: &Registry,
        local: Option<(SocketAddr, &[&str])>,
        resolver: Arc<dyn Resolve>,
    ) -> Result<Self, ConfigError> {
        let refresh = args.refresh.unwrap_or(DEFAULT_REFRESH).max(Duration::from_millis(10));
        let tls = args.tls.read()?;
        let connect = |url: &str, setting| connect(url, setting, resolver.clone(), refresh, &tls);
        let known = |setting: &'static str, name: &str| {
            registry.get(name.trim()).ok_or_else(|| {
                let names: Vec<_> = registry.names().collect();
                ConfigError::new(
                    setting,
                    format!("unknown service '{}' (expected one of: {})", crate::error::clip(name), names.join(", ")),
                )
            })
        };
        let mut absent = Vec::new();
        for name in args.not_deployed.iter().filter(|n| !n.trim().is_empty()) {
            absent.push(known("CX_NOT_DEPLOYED", name)?.name);
        }
        let mut channels = BTreeMap::new();
        for (name, url) in &args.peers {
            let def = known("CX_PEERS", name)?;
            if !channels.contains_key(def.name) {
                channels.insert(def.name, connect(url, def.endpoint_setting())?);
            }
        }
        if let Some((addr, names)) = local {
            for name in names {
                if let Some(def) = registry.get(name).filter(|d| !channels.contains_key(d.name)) {
                    channels.insert(def.name, connect(&format!("http://{}", loopback(addr)), def.endpoint_setting())?);
                }
            }
        }
        Ok(Self { channels: Arc::new(channels), absent: Arc::new(absent) })
    }

    /// The channel to `service` over its replicas, when it is configured.
    pub fn channel(&self, service: &str) -> Option<Balanced> {
        self.channels.get(service).map(|(_, channel)| channel.clone())
    }

    /// The channels of every configured peer, by name: where an outbox
    /// dispatcher delivers (it retries by itself).
    pub fn destinations(&self) -> std::collections::HashMap<String, Balanced> {
        self.channels.iter().map(|(name, (_, channel))| ((*name).to_owned(), channel.clone())).collect()
    }

    /// Whether the deployment says it does not run `service`.
    pub fn is_absent(&self, service: &str) -> bool {
        self.absent.contains(&service)
    }

    /// A channel to `service` whose calls are client spans carrying the
    /// trace context.
    pub fn traced(&self, service: &str) -> Option<PeerChannel> {
        self.channel(service).map(|c| tower::Layer::layer(&ClientTraceLayer::default(), Retrying::new(c)))
    }

    /// Configured peers and their URLs.
    pub fn endpoints(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.channels.iter().map(|(name, (url, _))| (*name, url.as_str()))
    }

    pub fn contains(&self, service: &str) -> bool {
        self.channels.contains_key(service)
    }
}

/// Another service's internal RPCs, as this service calls them: a traced
/// channel (the caller's trace and deadline go along) and a service token
/// per call, signed as this service for the tenant the call acts for.
///
/// ```ignore
/// let profile = parts.internal_peer("profile")?;
/// let mut client = ProfileInternalServiceClient::new(profile.channel());
/// let answer = client.check_consents(profile.request(&tenant, request)?).await?;
/// ```
#[derive(Clone, Debug)]
pub struct InternalPeer {
    channel: PeerChannel,
    key: crate::identity::ServiceKey,
    /// The calling service, as its token names it.
    caller: &'static str,
}

impl InternalPeer {
    pub fn new(channel: PeerChannel, key: crate::identity::ServiceKey, caller: &'static str) -> Self {
        Self { channel, key, caller }
    }

    /// The channel to build the peer's generated client on.
    pub fn channel(&self) -> PeerChannel {
        self.channel.clone()
    }

    /// `message` as a call of this service acting for `tenant`.
    pub fn request<M>(&self, tenant: &crate::TenantId, message: M) -> Result<tonic::Request<M>, tonic::Status> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert("authorization", self.key.bearer(self.caller, tenant.as_str())?);
        Ok(request)
    }
}

/// What a failed call to `peer`'s internal service makes of the work in
/// hand: UNAVAILABLE when asking again may succeed (an outbox redelivers, a
/// client retries); otherwise INTERNAL, logged with the peer's answer. Under
/// a service identity nothing the peer refuses is the caller's fault.
pub fn internal_call_failed(peer: &str, doing: &str, status: &tonic::Status) -> crate::error::ServiceError {
    use tonic::Code;
    let told = crate::error::clip(status.message());
    match status.code() {
        Code::Unavailable
        | Code::ResourceExhausted
        | Code::Aborted
        | Code::Cancelled
        | Code::Unknown
        | Code::DeadlineExceeded => {
            tracing::warn!(code = ?status.code(), told, "the {peer} service did not {doing}");
            crate::error::ServiceError::Unavailable(format!("the {peer} service cannot {doing} now, retry later"))
        }
        code => crate::error::ServiceError::Internal(format!("the {peer} service refused to {doing}: {code:?} {told}")),
    }
}

/// How often peers' names are resolved again by default.
const DEFAULT_REFRESH: Duration = Duration::from_secs(5);

/// Lazily connecting channels to every address of `url`'s host; `setting`
/// names it in errors.
fn connect(
    url: &str,
    setting: String,
    resolver: Arc<dyn Resolve>,
    refresh: Duration,
    tls: &crate::tls::TlsPem,
) -> Result<(String, Balanced), ConfigError> {
    let url = url.trim().to_owned();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ConfigError::new(setting, "expected an http:// or https:// URL"));
    }
    let endpoint = Endpoint::from_shared(url.clone())
        .map_err(|e| ConfigError::new(setting.clone(), format!("not a valid endpoint URL: {e}")))?;
    // The certificate must name the peer's host, whatever address is dialled.
    let tls = url.starts_with("https://").then(|| {
        crate::tls::init();
        crate::tls::grpc_client(tls, endpoint.uri().host().unwrap_or_default())
    });
    // Checked once here rather than on each address later.
    if let Some(tls) = &tls {
        Endpoint::from_shared(url.clone())
            .and_then(|e| e.tls_config(tls.clone()))
            .map_err(|e| ConfigError::new(setting, format!("TLS settings refused: {e}")))?;
    }
    let configure = move |endpoint: Endpoint| {
        let endpoint = endpoint
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(2))
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true);
        match &tls {
            // Accepted above for the same settings.
            Some(tls) => endpoint.tls_config(tls.clone()).unwrap_or_else(|_| unreachable!("checked at start")),
            None => endpoint,
        }
    };
    Ok((url, Balanced::new(endpoint, resolver, refresh, configure)))
}

/// A wildcard listen address is called on the loopback of its family.
fn loopback(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()),
        _ => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::ServiceDef;

    const SERVICES: &[ServiceDef] =
        &[ServiceDef::elsewhere("accounts", false, &[]), ServiceDef::elsewhere("orders", true, &[])];
    const REGISTRY: Registry = Registry::new(SERVICES);

    #[tokio::test]
    async fn explicit_endpoint_wins_and_local_services_use_the_loopback_port() {
        let args = PeerArgs::default().with("orders", "http://orders.cx:50051");
        let local: SocketAddr = "0.0.0.0:7000".parse().unwrap();
        let peers = Peers::resolve(&args, &REGISTRY, Some((local, &["accounts", "orders"]))).unwrap();
        let endpoints: Vec<_> = peers.endpoints().collect();
        assert_eq!(endpoints, [("accounts", "http://127.0.0.1:7000"), ("orders", "http://orders.cx:50051")]);
    }

    #[tokio::test]
    async fn every_registered_service_has_its_endpoint_setting() {
        let env = |name: &str| (name == "CX_ORDERS_ENDPOINT").then(|| "http://orders:1".to_owned());
        let args = PeerArgs::default().with_settings(&REGISTRY, env);
        let peers = Peers::resolve(&args, &REGISTRY, None).unwrap();
        assert_eq!(peers.endpoints().collect::<Vec<_>>(), [("orders", "http://orders:1")]);
        // A --peer given for the service wins over its setting.
        let args = PeerArgs::default().with("orders", "http://flag:2").with_settings(&REGISTRY, env);
        let peers = Peers::resolve(&args, &REGISTRY, None).unwrap();
        assert_eq!(peers.endpoints().collect::<Vec<_>>(), [("orders", "http://flag:2")]);
    }

    #[tokio::test]
    async fn a_peer_not_running_here_and_not_configured_is_absent() {
        let local: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        let peers = Peers::resolve(&PeerArgs::default(), &REGISTRY, Some((local, &["accounts"]))).unwrap();
        assert!(peers.contains("accounts"));
        assert!(!peers.contains("orders"));
    }

    #[tokio::test]
    async fn a_bad_url_names_its_setting_and_an_unknown_name_the_choices() {
        let err = Peers::resolve(&PeerArgs::default().with("orders", "orders:50051"), &REGISTRY, None).unwrap_err();
        assert_eq!(err.setting, "CX_ORDERS_ENDPOINT");
        let err = Peers::resolve(&PeerArgs::default().with("order", "http://o:1"), &REGISTRY, None).unwrap_err();
        assert_eq!(err.to_string(), "CX_PEERS: unknown service 'order' (expected one of: accounts, orders)");
        assert_eq!(parse_peer("orders").unwrap_err(), "expected NAME=URL, e.g. profile=http://cx-profile:50051");
    }
}
