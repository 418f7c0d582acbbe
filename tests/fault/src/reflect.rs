//! What a server offers, as its reflection service tells any client.

use anyhow::{Context as _, bail};
use prost::Message as _;
use prost_reflect::{DescriptorPool, MessageDescriptor};
use tonic::transport::Channel;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};

/// Services a CX server runs for other services only: not advertised, but
/// found by name. Each with the advertised service that brings it (`None`:
/// every server runs it).
pub const INTERNAL: &[(&str, Option<&str>)] = &[
    ("cx.outbox.v1.InboxService", None),
    ("cx.gdpr.v1.CustomerDataService", None),
    ("cx.profile.v1.ProfileInternalService", Some("cx.profile.v1.ProfileService")),
    ("cx.journey.v1.JourneyInternalService", Some("cx.journey.v1.JourneyService")),
    ("cx.survey.v1.SurveyInternalService", Some("cx.survey.v1.SurveyService")),
];

/// One RPC.
#[derive(Clone, Debug)]
pub struct Method {
    /// `/cx.profile.v1.ProfileService/GetProfile`.
    pub path: String,
    pub input: MessageDescriptor,
    /// A stream on either side: called as a stream, so that a server stream
    /// that ends without a message is an answer, not a missing one.
    pub streaming: bool,
    /// Internal: for services only.
    pub internal: bool,
}

impl Method {
    /// `ProfileService/GetProfile`, short for tables.
    pub fn short(&self) -> &str {
        self.path.rsplit_once('.').map(|(_, s)| s).unwrap_or(&self.path)
    }
}

async fn ask(client: &mut ServerReflectionClient<Channel>, request: MessageRequest) -> anyhow::Result<MessageResponse> {
    let request = ServerReflectionRequest { host: String::new(), message_request: Some(request) };
    let mut answers = client.server_reflection_info(tokio_stream::once(request)).await?.into_inner();
    let answer: ServerReflectionResponse = answers.message().await?.context("reflection answered nothing")?;
    answer.message_response.context("reflection answered an empty message")
}

/// The CX RPCs `channel`'s server offers: the advertised services (health
/// and reflection left out) and the internal ones.
pub async fn methods(channel: &Channel) -> anyhow::Result<Vec<Method>> {
    let mut client = ServerReflectionClient::new(channel.clone());
    let MessageResponse::ListServicesResponse(list) =
        ask(&mut client, MessageRequest::ListServices(String::new())).await?
    else {
        bail!("reflection did not list services");
    };
    let public: Vec<String> = list.service.into_iter().map(|s| s.name).filter(|n| n.starts_with("cx.")).collect();
    let internal: Vec<&str> = INTERNAL
        .iter()
        .filter(|(_, owner)| owner.is_none_or(|owner| public.iter().any(|p| p == owner)))
        .map(|(name, _)| *name)
        .collect();
    let mut files = std::collections::BTreeMap::new();
    let mut wanted: Vec<MessageRequest> = public
        .iter()
        .map(String::as_str)
        .chain(internal.iter().copied())
        .map(|name| MessageRequest::FileContainingSymbol(name.to_owned()))
        .collect();
    // Each file and, transitively, the files it imports (bounded by the
    // number of files a server can have).
    for _ in 0..1000 {
        let Some(request) = wanted.pop() else { break };
        let MessageResponse::FileDescriptorResponse(found) = ask(&mut client, request.clone()).await? else {
            bail!("reflection has no file for {request:?}");
        };
        for bytes in found.file_descriptor_proto {
            let file = prost_types::FileDescriptorProto::decode(bytes.as_slice())?;
            for dependency in &file.dependency {
                if !files.contains_key(dependency) {
                    wanted.push(MessageRequest::FileByFilename(dependency.clone()));
                }
            }
            files.insert(file.name().to_owned(), file);
        }
    }
    let mut pool = DescriptorPool::new();
    pool.add_file_descriptor_protos(files.into_values())?;
    let mut methods = Vec::new();
    for service in pool.services() {
        let name = service.full_name().to_owned();
        let internal = internal.contains(&name.as_str());
        if !internal && !public.contains(&name) {
            continue;
        }
        for method in service.methods() {
            methods.push(Method {
                path: format!("/{name}/{}", method.name()),
                input: method.input(),
                streaming: method.is_client_streaming() || method.is_server_streaming(),
                internal,
            });
        }
    }
    methods.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(methods)
}
