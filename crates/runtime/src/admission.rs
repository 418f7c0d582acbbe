//! Admission control in front of every service: calls are refused with
//! `UNAVAILABLE` until the service is ready (migrations ran, database
//! answers), and with `RESOURCE_EXHAUSTED` when the server already serves its
//! limit of calls, rather than queueing without bound. Health checks are
//! always admitted so probes see the truth.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use http::{Request, Response};
use tokio::sync::Semaphore;
use tonic::Status;
use tower::{Layer, Service};

/// Shared switch flipped once the server may take calls.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Release);
    }
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

#[derive(Clone, Debug)]
pub struct AdmissionLayer {
    readiness: Readiness,
    permits: Arc<Semaphore>,
    limit: usize,
}

impl AdmissionLayer {
    pub fn new(readiness: Readiness, max_concurrent: usize) -> Self {
        Self { readiness, permits: Arc::new(Semaphore::new(max_concurrent)), limit: max_concurrent }
    }
}

impl<S> Layer<S> for AdmissionLayer {
    type Service = Admission<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Admission { inner, layer: self.clone() }
    }
}

#[derive(Clone, Debug)]
pub struct Admission<S> {
    inner: S,
    layer: AdmissionLayer,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

fn always_admitted(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/") || path.starts_with("/grpc.reflection.")
}

impl<S, B, R> Service<Request<B>> for Admission<S>
where
    S: Service<Request<B>, Response = Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if always_admitted(request.uri().path()) {
            return Box::pin(inner.call(request));
        }
        if !self.layer.readiness.is_ready() {
            let status = Status::unavailable("service is starting or stopping, retry later");
            return Box::pin(async move { Ok(status.into_http()) });
        }
        let Ok(permit) = self.layer.permits.clone().try_acquire_owned() else {
            let status = Status::resource_exhausted(format!(
                "server is serving its limit of {} concurrent calls, retry later",
                self.layer.limit
            ));
            return Box::pin(async move { Ok(status.into_http()) });
        };
        let future = inner.call(request);
        Box::pin(async move {
            let response = future.await;
            drop(permit);
            response
        })
    }
}
