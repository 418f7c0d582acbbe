//! Admission control in front of every service: calls are refused with
//! `UNAVAILABLE` until the service is ready (migrations ran, database
//! answers), and with `RESOURCE_EXHAUSTED` when the server already serves its
//! limit of calls, rather than queueing without bound. Health checks are
//! always admitted so probes see the truth.
//!
//! A call holds its permit until its response body ends: a stream is
//! returned by its handler at once, and counted until its last message.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;
use tonic::body::Body;
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
    R: http_body::Body<Data = Bytes> + Send + 'static,
    R::Error: Into<tonic::codegen::StdError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if always_admitted(request.uri().path()) {
            let future = inner.call(request);
            return Box::pin(async move { Ok(future.await?.map(Body::new)) });
        }
        if !self.layer.readiness.is_ready() {
            let status = Status::unavailable("service is starting or stopping, retry later");
            let mut response = status.into_http();
            // Nothing was served: a CX client may send it again at once.
            response.headers_mut().insert(crate::retry::NOT_SERVED, http::HeaderValue::from_static("1"));
            return Box::pin(async move { Ok(response) });
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
            let response = future.await?;
            Ok(response.map(|inner| Body::new(Permitted { inner: Body::new(inner), _permit: permit })))
        })
    }
}

/// A response body that holds its call's permit until it is dropped.
struct Permitted {
    inner: Body,
    _permit: OwnedSemaphorePermit,
}

impl http_body::Body for Permitted {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
