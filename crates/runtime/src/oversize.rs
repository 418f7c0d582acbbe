//! A request past the server's size limit is RESOURCE_EXHAUSTED, as gRPC's
//! status codes say and clients expect: tonic answers OUT_OF_RANGE, from the
//! length prefix, before it reads the message. Only that answer is changed.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderMap, HeaderValue, Request, Response};
use tower::{Layer, Service};

/// tonic's message, percent-encoded as it is in `grpc-message`.
const TOO_LARGE: &[u8] = b"Error,%20decoded%20message%20length%20too%20large";

#[derive(Clone, Copy, Debug, Default)]
pub struct OversizeLayer;

impl<S> Layer<S> for OversizeLayer {
    type Service = Oversize<S>;

    fn layer(&self, inner: S) -> Oversize<S> {
        Oversize(inner)
    }
}

#[derive(Clone, Debug)]
pub struct Oversize<S>(S);

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, R> Service<Request<B>> for Oversize<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let future = self.0.call(request);
        Box::pin(async move {
            let mut response = future.await?;
            relabel(response.headers_mut());
            Ok(response)
        })
    }
}

/// OUT_OF_RANGE (11) "decoded message length too large" → RESOURCE_EXHAUSTED (8).
fn relabel(headers: &mut HeaderMap) {
    let too_large = headers.get("grpc-status").is_some_and(|s| s == "11")
        && headers.get("grpc-message").is_some_and(|m| m.as_bytes().starts_with(TOO_LARGE));
    if too_large {
        headers.insert("grpc-status", HeaderValue::from_static("8"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tonics_size_refusal_is_relabelled() {
        let status = tonic::Status::out_of_range(
            "Error, decoded message length too large: found 17825792 bytes, the limit is: 16777216 bytes",
        );
        let mut headers = status.into_http::<()>().into_parts().0.headers;
        relabel(&mut headers);
        assert_eq!(headers.get("grpc-status").unwrap(), "8");
        let mut other = tonic::Status::out_of_range("page 9 is past the end").into_http::<()>().into_parts().0.headers;
        relabel(&mut other);
        assert_eq!(other.get("grpc-status").unwrap(), "11");
    }
}
