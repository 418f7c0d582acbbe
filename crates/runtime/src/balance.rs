//! Calls to a peer spread over its replicas (docs/DECISIONS.md, Calls
//! between services). A peer's host name is resolved to every address it
//! has, again every `CX_PEER_REFRESH`, and calls take the addresses in turn,
//! each over its own HTTP/2 connection. Behind a Kubernetes headless
//! Service the addresses are the ready pods, so replicas the autoscaler adds
//! get their share within one refresh, and a pod leaving readiness stops
//! getting calls. Behind a ClusterIP Service the one address is the
//! Service's, as before.
//!
//! Round-robin rather than least-loaded: the calls between services are
//! alike, replicas too, and [`crate::retry`] sends a call that could not
//! reach one address to the next.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tonic::body::Body;
use tonic::transport::{Channel, Endpoint};
use tower::{Service, ServiceExt};

/// Finds the addresses of a host name.
pub trait Resolve: Send + Sync + std::fmt::Debug + 'static {
    fn resolve(&self, host: &str, port: u16) -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>>;
}

/// The system's resolver (DNS, /etc/hosts).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, host: &str, port: u16) -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>> {
        let host = host.to_owned();
        Box::pin(async move { Ok(tokio::net::lookup_host((host.as_str(), port)).await?.collect()) })
    }
}

/// No address is known for the peer yet (or its name resolves to none):
/// nothing was sent.
#[derive(Debug)]
pub struct NoAddress(pub String);

impl std::fmt::Display for NoAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no address of {} is known", self.0)
    }
}

impl std::error::Error for NoAddress {}

/// A channel over every address of a peer.
#[derive(Clone, Debug)]
pub struct Balanced {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// The peer's host, for errors.
    host: String,
    /// One lazily connecting channel per address, in a stable order.
    channels: RwLock<Vec<(SocketAddr, Channel)>>,
    next: AtomicUsize,
}

impl From<Channel> for Balanced {
    /// One channel as it is (an address, or a test's server).
    fn from(channel: Channel) -> Self {
        let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
        Self::with(String::new(), vec![(unspecified, channel)])
    }
}

impl Balanced {
    fn with(host: String, channels: Vec<(SocketAddr, Channel)>) -> Self {
        Self { shared: Arc::new(Shared { host, channels: RwLock::new(channels), next: AtomicUsize::new(0) }) }
    }

    /// Calls to `endpoint`'s URL: to the address itself when the host is an
    /// IP, else to every address `resolver` gives for it, refreshed every
    /// `refresh` while the channel lives. `configure` sets up the channel of
    /// one address (timeouts, keep-alive, TLS).
    pub fn new(
        endpoint: Endpoint,
        resolver: Arc<dyn Resolve>,
        refresh: Duration,
        configure: impl Fn(Endpoint) -> Endpoint + Send + Sync + 'static,
    ) -> Self {
        let uri = endpoint.uri().clone();
        let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_owned();
        if host.parse::<IpAddr>().is_ok() {
            return Self::from(configure(endpoint).connect_lazy());
        }
        let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
        let balanced = Self::with(host.clone(), Vec::new());
        let weak = Arc::downgrade(&balanced.shared);
        let make = move |address: SocketAddr| {
            // The address to connect to; the URL's authority still names the
            // peer (the `:authority` header, TLS server name).
            let mut parts = uri.clone().into_parts();
            parts.authority = address.to_string().parse().ok();
            let at = http::Uri::from_parts(parts).ok().map(Endpoint::from);
            at.map(|at| configure(at.origin(uri.clone())).connect_lazy())
        };
        tokio::spawn(refresh_loop(weak, resolver, host, port, refresh, make));
        balanced
    }

    /// The channel of the next call.
    fn pick(&self) -> Option<Channel> {
        let channels = self.shared.channels.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = channels.len();
        (n > 0).then(|| channels[self.shared.next.fetch_add(1, Ordering::Relaxed) % n].1.clone())
    }
}

/// Resolves `host` now and then every `every`, replacing the channels of
/// addresses that went and adding those that came, until the channel is
/// dropped. A failed or empty resolution keeps the addresses known.
async fn refresh_loop(
    shared: Weak<Shared>,
    resolver: Arc<dyn Resolve>,
    host: String,
    port: u16,
    every: Duration,
    make: impl Fn(SocketAddr) -> Option<Channel>,
) {
    loop {
        let resolved = resolver.resolve(&host, port).await;
        let Some(shared) = shared.upgrade() else { return };
        match resolved {
            Ok(addresses) if !addresses.is_empty() => {
                let mut channels = shared.channels.write().unwrap_or_else(std::sync::PoisonError::into_inner);
                let mut known: BTreeMap<SocketAddr, Channel> = channels.drain(..).collect();
                let before = known.len();
                let mut next: BTreeMap<SocketAddr, Channel> = BTreeMap::new();
                for address in addresses {
                    if let Some(channel) = known.remove(&address).or_else(|| make(address)) {
                        next.insert(address, channel);
                    }
                }
                // Kept addresses left `known`: what is left went away.
                if !known.is_empty() || next.len() != before - known.len() {
                    tracing::info!(host, addresses = ?next.keys().collect::<Vec<_>>(), "peer addresses changed");
                }
                *channels = next.into_iter().collect();
            }
            Ok(_) => tracing::warn!(host, "peer name resolves to no address; keeping the known ones"),
            Err(err) => tracing::warn!(host, error = %err, "peer name not resolved; keeping the known addresses"),
        }
        drop(shared);
        tokio::time::sleep(every).await;
    }
}

impl Service<http::Request<Body>> for Balanced {
    type Response = http::Response<Body>;
    type Error = tonic::codegen::StdError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Each call waits for its own address's channel.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let Some(channel) = self.pick() else {
            let host = self.shared.host.clone();
            return Box::pin(async move { Err(NoAddress(host).into()) });
        };
        Box::pin(async move { channel.oneshot(request).await.map_err(Into::into) })
    }
}
