//! How a service finds the others (docs/ARCHITECTURE.md §2.4): one gRPC endpoint per peer,
//! `CX_<SERVICE>_ENDPOINT`. A peer running in the same process (`cx serve
//! all`) is reached on the local port through the same client code, so its
//! calls are traced and authenticated exactly like remote ones.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use crate::config::ConfigError;
use crate::propagation::{ClientSide, ClientTraceLayer, Traced};

/// Endpoints of the other services. Each later service adds its line.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct PeerArgs {
    /// gRPC endpoint of the profile service, e.g. http://cx-profile:50051.
    #[arg(long, env = "CX_PROFILE_ENDPOINT")]
    pub profile_endpoint: Option<String>,

    /// gRPC endpoint of the journey service, e.g. http://cx-journey:50051.
    #[arg(long, env = "CX_JOURNEY_ENDPOINT")]
    pub journey_endpoint: Option<String>,
}

impl PeerArgs {
    fn explicit(&self) -> [(&'static str, &'static str, Option<&str>); 2] {
        [
            ("profile", "CX_PROFILE_ENDPOINT", self.profile_endpoint.as_deref()),
            ("journey", "CX_JOURNEY_ENDPOINT", self.journey_endpoint.as_deref()),
        ]
    }
}

/// A traced client channel.
pub type PeerChannel = Traced<Channel, ClientSide>;

/// The peers this process can call, by service name. Channels connect
/// lazily and reconnect by themselves, so a peer that is down at start (or
/// restarts) is reached when it comes back.
#[derive(Clone, Debug, Default)]
pub struct Peers {
    channels: Arc<BTreeMap<&'static str, (String, Channel)>>,
}

impl Peers {
    /// Explicit endpoints win; a service of `local_services` without one is
    /// called on `local`, the address this process listens on.
    pub fn resolve(args: &PeerArgs, local: Option<(SocketAddr, &[&str])>) -> Result<Self, ConfigError> {
        let mut channels = BTreeMap::new();
        for (service, setting, explicit) in args.explicit() {
            let url = match explicit.map(str::trim).filter(|u| !u.is_empty()) {
                Some(url) => url.to_owned(),
                None => match local {
                    Some((addr, names)) if names.contains(&service) => format!("http://{}", loopback(addr)),
                    _ => continue,
                },
            };
            let endpoint = Endpoint::from_shared(url.clone())
                .map_err(|e| ConfigError::new(setting, format!("not a valid endpoint URL: {e}")))?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::new(setting, "expected an http:// or https:// URL"));
            }
            let channel = endpoint
                .tcp_nodelay(true)
                .connect_timeout(Duration::from_secs(2))
                .http2_keep_alive_interval(Duration::from_secs(30))
                .keep_alive_while_idle(true)
                .connect_lazy();
            channels.insert(service, (url, channel));
        }
        Ok(Self { channels: Arc::new(channels) })
    }

    /// The raw channel to `service`, when it is configured.
    pub fn channel(&self, service: &str) -> Option<Channel> {
        self.channels.get(service).map(|(_, channel)| channel.clone())
    }

    /// The channels of those of `services` that are configured, by name:
    /// where an outbox dispatcher delivers.
    pub fn destinations(&self, services: &[&str]) -> std::collections::HashMap<String, Channel> {
        services.iter().filter_map(|s| Some(((*s).to_owned(), self.channel(s)?))).collect()
    }

    /// A channel to `service` whose calls are client spans carrying the
    /// trace context.
    pub fn traced(&self, service: &str) -> Option<PeerChannel> {
        self.channel(service).map(|c| tower::Layer::layer(&ClientTraceLayer::default(), c))
    }

    /// Configured peers and their URLs.
    pub fn endpoints(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.channels.iter().map(|(name, (url, _))| (*name, url.as_str()))
    }

    pub fn contains(&self, service: &str) -> bool {
        self.channels.contains_key(service)
    }
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

    #[tokio::test]
    async fn explicit_endpoint_wins_and_local_services_use_the_loopback_port() {
        let args = PeerArgs { profile_endpoint: None, journey_endpoint: Some("http://journey.cx:50051".into()) };
        let local: SocketAddr = "0.0.0.0:7000".parse().unwrap();
        let peers = Peers::resolve(&args, Some((local, &["profile", "journey"]))).unwrap();
        let endpoints: Vec<_> = peers.endpoints().collect();
        assert_eq!(endpoints, [("journey", "http://journey.cx:50051"), ("profile", "http://127.0.0.1:7000")]);
    }

    #[tokio::test]
    async fn a_peer_not_running_here_and_not_configured_is_absent() {
        let local: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        let peers = Peers::resolve(&PeerArgs::default(), Some((local, &["profile"]))).unwrap();
        assert!(peers.contains("profile"));
        assert!(!peers.contains("journey"));
    }

    #[tokio::test]
    async fn a_bad_url_names_its_setting() {
        let args = PeerArgs { profile_endpoint: Some("cx-profile:50051".into()), journey_endpoint: None };
        let err = Peers::resolve(&args, None).unwrap_err();
        assert_eq!(err.setting, "CX_PROFILE_ENDPOINT");
    }
}
