//! Calls as any client can make them: any path, any bytes, any token.

use cx_testkit::raw::RawCodec;
use http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// What one call came back with.
#[derive(Clone, Debug)]
pub struct Answer {
    pub code: Code,
    /// A transport failure rather than a gRPC status.
    pub transport: bool,
    /// The response messages (OK) or the status message and details.
    pub bytes: Vec<u8>,
}

impl Answer {
    /// The outcome as the report names it.
    pub fn outcome(&self) -> String {
        if self.transport { "transport".to_owned() } else { format!("{:?}", self.code).to_uppercase_words() }
    }

    /// Whether the answer carries `needle` anywhere.
    pub fn mentions(&self, needle: &[u8]) -> bool {
        !needle.is_empty() && self.bytes.windows(needle.len()).any(|w| w == needle)
    }
}

trait UpperWords {
    fn to_uppercase_words(&self) -> String;
}

impl UpperWords for String {
    /// `PermissionDenied` → `PERMISSION_DENIED`, as gRPC names codes.
    fn to_uppercase_words(&self) -> String {
        let mut out = String::new();
        for (i, c) in self.chars().enumerate() {
            if c.is_uppercase() && i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_uppercase());
        }
        out
    }
}

/// Calls `path` (`/pkg.Service/Method`) with `payload` as its one request
/// message and `authorization` (the whole header value) if any; a streaming
/// RPC gets it as the only message of its request stream.
pub async fn call(
    channel: &Channel,
    path: &str,
    payload: Vec<u8>,
    authorization: Option<&str>,
    streaming: bool,
) -> Answer {
    let failed = |status: Status, transport: bool| {
        let mut bytes = status.message().as_bytes().to_vec();
        bytes.extend_from_slice(status.details());
        Answer { code: status.code(), transport, bytes }
    };
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    if let Err(err) = grpc.ready().await {
        return failed(Status::unavailable(err.to_string()), true);
    }
    let Ok(path) = PathAndQuery::try_from(path.to_owned()) else {
        return failed(Status::invalid_argument("bad path"), true);
    };
    let header = authorization.and_then(|a| a.parse::<tonic::metadata::MetadataValue<_>>().ok());
    let result = if streaming {
        let mut request = tonic::Request::new(tokio_stream::once(payload));
        if let Some(value) = header {
            request.metadata_mut().insert("authorization", value);
        }
        match grpc.streaming(request, path, RawCodec).await {
            Ok(response) => {
                let mut stream = response.into_inner();
                let mut bytes = Vec::new();
                // Bounded: a stream answers a one-message request with few messages.
                let mut outcome = Ok(());
                for _ in 0..1000 {
                    match stream.message().await {
                        Ok(Some(message)) => bytes.extend(message),
                        Ok(None) => break,
                        Err(status) => {
                            outcome = Err(status);
                            break;
                        }
                    }
                }
                outcome.map(|()| bytes)
            }
            Err(status) => Err(status),
        }
    } else {
        let mut request = tonic::Request::new(payload);
        if let Some(value) = header {
            request.metadata_mut().insert("authorization", value);
        }
        grpc.unary(request, path, RawCodec).await.map(tonic::Response::into_inner)
    };
    match result {
        Ok(bytes) => Answer { code: Code::Ok, transport: false, bytes },
        Err(status) => {
            let transport = is_transport(&status);
            failed(status, transport)
        }
    }
}

/// No gRPC status from the server: the connection failed.
fn is_transport(status: &Status) -> bool {
    let lost_connection = ["transport", "h2 protocol error", "connection"];
    status.code() == Code::Unknown && lost_connection.iter().any(|m| status.message().contains(m))
        || std::error::Error::source(status).is_some_and(|e| e.is::<tonic::transport::Error>())
}

/// How the report names the outcome of a failed typed call.
pub fn outcome_of(status: &Status) -> String {
    Answer { code: status.code(), transport: is_transport(status), bytes: Vec::new() }.outcome()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_named_as_grpc_names_them() {
        let answer = Answer { code: Code::PermissionDenied, transport: false, bytes: Vec::new() };
        assert_eq!(answer.outcome(), "PERMISSION_DENIED");
        let ok = Answer { code: Code::Ok, transport: false, bytes: b"abc".to_vec() };
        assert_eq!(ok.outcome(), "OK");
        assert!(ok.mentions(b"bc") && !ok.mentions(b"cd"));
    }
}
