//! Which RPCs a test calls, against those the protos declare: a test that
//! says it calls every RPC of a service fails when one is added to the
//! proto and not to the test.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use prost::Message;
use tonic::codegen::Service;
use tonic::transport::Channel;

/// The paths (`/cx.profile.v1.ProfileService/GetProfile`) of every method
/// of the gRPC service `service` (its full name), as the CX protos declare
/// them. Panics when no proto declares the service.
pub fn methods(service: &str) -> BTreeSet<String> {
    let set = prost_types::FileDescriptorSet::decode(cx_proto::FILE_DESCRIPTOR_SET).unwrap();
    let declared: Vec<BTreeSet<String>> = set
        .file
        .iter()
        .flat_map(|file| file.service.iter().map(move |s| (file.package(), s)))
        .filter(|(package, s)| format!("{package}.{}", s.name()) == service)
        .map(|(_, s)| s.method.iter().map(|m| format!("/{service}/{}", m.name())).collect())
        .collect();
    assert_eq!(declared.len(), 1, "no proto declares the service {service}");
    declared.into_iter().next().unwrap_or_default()
}

/// A channel that notes the path of every call sent through it; clones
/// share one record.
#[derive(Clone, Debug)]
pub struct Recording {
    inner: Channel,
    called: Arc<Mutex<BTreeSet<String>>>,
}

impl Recording {
    pub fn new(inner: Channel) -> Self {
        Self { inner, called: Arc::default() }
    }

    /// The paths called so far.
    pub fn called(&self) -> BTreeSet<String> {
        self.called.lock().unwrap().clone()
    }

    /// Methods of `service` (full name) not called through this channel.
    pub fn not_called(&self, service: &str) -> BTreeSet<String> {
        methods(service).difference(&self.called()).cloned().collect()
    }
}

impl Service<http::Request<tonic::body::Body>> for Recording {
    type Response = <Channel as Service<http::Request<tonic::body::Body>>>::Response;
    type Error = <Channel as Service<http::Request<tonic::body::Body>>>::Error;
    type Future = <Channel as Service<http::Request<tonic::body::Body>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        self.called.lock().unwrap().insert(request.uri().path().to_owned());
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_methods_are_read_from_the_protos() {
        let profile = methods("cx.profile.v1.ProfileService");
        assert!(profile.contains("/cx.profile.v1.ProfileService/GetProfile"), "{profile:?}");
        assert!(profile.contains("/cx.profile.v1.ProfileService/EraseCustomer"), "{profile:?}");
        let inbox = methods("cx.outbox.v1.InboxService");
        assert_eq!(inbox, BTreeSet::from(["/cx.outbox.v1.InboxService/Deliver".to_owned()]));
    }

    #[test]
    #[should_panic(expected = "no proto declares the service cx.profile.v1.Nothing")]
    fn an_unknown_service_is_refused() {
        methods("cx.profile.v1.Nothing");
    }
}
