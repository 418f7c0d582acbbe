//! Request bodies that cannot hold a call open forever: a client that sends
//! nothing for the idle timeout, or is still sending when the server stops,
//! gets its stream ended with an error. Without it one silent stream kept
//! its permit and, at shutdown, the whole grace period.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::Request;
use http_body::{Frame, SizeHint};
use tokio::sync::watch;
use tokio::time::Sleep;
use tonic::Status;
use tonic::body::Body;
use tower::{Layer, Service};

/// Guards the request body of every call.
#[derive(Clone, Debug)]
pub struct StreamGuardLayer {
    idle: Duration,
    stopping: watch::Receiver<bool>,
}

impl StreamGuardLayer {
    /// `stopping` turns true when the server begins to shut down.
    pub fn new(idle: Duration, stopping: watch::Receiver<bool>) -> Self {
        Self { idle, stopping }
    }
}

impl<S> Layer<S> for StreamGuardLayer {
    type Service = StreamGuard<S>;
    fn layer(&self, inner: S) -> Self::Service {
        StreamGuard { inner, layer: self.clone() }
    }
}

#[derive(Clone, Debug)]
pub struct StreamGuard<S> {
    inner: S,
    layer: StreamGuardLayer,
}

impl<S> Service<Request<Body>> for StreamGuard<S>
where
    S: Service<Request<Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let (idle, stopping) = (self.layer.idle, self.layer.stopping.clone());
        self.inner.call(request.map(|body| Body::new(Guarded { inner: body, idle, stopping, timer: None, stop: None })))
    }
}

struct Guarded {
    inner: Body,
    idle: Duration,
    stopping: watch::Receiver<bool>,
    /// Made on the first wait only: a unary body, already whole, costs nothing.
    timer: Option<Pin<Box<Sleep>>>,
    stop: Option<BoxFuture<'static, ()>>,
}

impl http_body::Body for Guarded {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => {}
            ready => {
                // The idle time counts from the next wait.
                this.timer = None;
                return ready;
            }
        }
        let stop = this.stop.get_or_insert_with(|| {
            let mut stopping = this.stopping.clone();
            Box::pin(async move {
                let _ = stopping.wait_for(|stop| *stop).await;
            })
        });
        if stop.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Status::unavailable("server is shutting down, retry elsewhere"))));
        }
        let idle = this.idle;
        let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
        if timer.as_mut().poll(cx).is_ready() {
            let message = format!("stream closed: nothing received for {}", humantime::format_duration(idle));
            return Poll::Ready(Some(Err(Status::deadline_exceeded(message))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
