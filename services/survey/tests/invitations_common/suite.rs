//! The profile and survey services on loopback servers over one fresh
//! store, each the other's peer: the real consent check and the real
//! consent feed. Touchpoints are offered to survey as journey's outbox
//! delivers them (a service token of `journey`).

use cx_proto::common::v1::{Channel, InteractionKind};
use cx_proto::journey::v1::{OfferedTouchpoint, TouchpointsOffered};
use cx_proto::outbox::v1::inbox_service_client::InboxServiceClient;
use cx_proto::outbox::v1::{DeliverRequest, DeliverResponse};
use cx_proto::profile::v1::{self as profile, profile_service_client::ProfileServiceClient};
use cx_runtime::TenantId;
use cx_runtime::auth::Role;
use cx_runtime::registry::Registry;
use cx_runtime::store::Db;
use cx_testkit::{Backend, Cluster, RunningServer, authed};
use prost::Message;
use uuid::Uuid;

pub const SERVICES: Registry = Registry::new(&[cx_profile::SERVICE, cx_survey::SERVICE]);

pub struct Suite {
    pub cluster: Cluster,
    pub t: TenantId,
    pub writer: String,
    /// The survey service's store, to set up surveys and triggers and read
    /// invitations back.
    pub conn: Db,
}

impl Suite {
    pub async fn start(backend: Backend) -> Self {
        let cluster = Cluster::start(SERVICES, backend).await;
        let tenant = cx_testkit::unique_tenant("survey");
        let conn = cx_runtime::store::open(&cluster.store, "survey").await.unwrap();
        Self { cluster, t: TenantId::parse(&tenant).unwrap(), writer: cx_testkit::token(&tenant, Role::Writer), conn }
    }

    pub fn survey(&self) -> &RunningServer {
        self.cluster.server("survey")
    }

    pub async fn profiles(&self) -> ProfileServiceClient<tonic::transport::Channel> {
        ProfileServiceClient::new(self.cluster.server("profile").channel().await)
    }

    /// A new customer with the `survey` consent granted or not (none at all
    /// when `None`).
    pub async fn customer(&self, consent: Option<bool>) -> Uuid {
        let identity = profile::Identity {
            kind: profile::IdentityKind::Email as i32,
            value: format!("{}@example.com", Uuid::now_v7().simple()),
        };
        let request = profile::ResolveProfileRequest { identity: Some(identity), create_if_missing: true };
        let mut profiles = self.profiles().await;
        let id =
            profiles.resolve_profile(authed(request, &self.writer)).await.unwrap().into_inner().profile.unwrap().id;
        let id = Uuid::parse_str(&id).unwrap();
        if let Some(granted) = consent {
            self.set_consent(id, granted).await;
        }
        id
    }

    /// Records a `survey` consent decision with the profile service; returns
    /// once it is acknowledged.
    pub async fn set_consent(&self, customer: Uuid, granted: bool) {
        let request = profile::SetConsentRequest {
            profile_id: customer.to_string(),
            purpose: Some(profile::Purpose {
                kind: Some(profile::purpose::Kind::Standard(profile::ConsentPurpose::Survey as i32)),
            }),
            granted,
            source_channel: Channel::Web as i32,
            actor: "customer".into(),
            occur_time: None,
            request_id: String::new(),
        };
        self.profiles().await.set_consent(authed(request, &self.writer)).await.unwrap();
    }

    /// Offers `touchpoints` to `server`'s inbox as the journey service would.
    pub async fn offer_to(
        &self,
        server: &RunningServer,
        touchpoints: Vec<OfferedTouchpoint>,
    ) -> Result<DeliverResponse, tonic::Status> {
        deliver(server, "journey", &self.t, &TouchpointsOffered { touchpoints }).await
    }

    pub async fn offer(&self, touchpoints: Vec<OfferedTouchpoint>) -> Result<DeliverResponse, tonic::Status> {
        self.offer_to(self.survey(), touchpoints).await
    }
}

/// Delivers `message` to `server`'s inbox as service `sender` for `t`.
pub async fn deliver<M: Message + prost::Name>(
    server: &RunningServer,
    sender: &str,
    t: &TenantId,
    message: &M,
) -> Result<DeliverResponse, tonic::Status> {
    deliver_as(server, sender, t, message, Uuid::now_v7()).await
}

/// [`deliver`] under the message id `id`: what an outbox sends again after
/// a delivery it could not confirm.
pub async fn deliver_as<M: Message + prost::Name>(
    server: &RunningServer,
    sender: &str,
    t: &TenantId,
    message: &M,
    id: Uuid,
) -> Result<DeliverResponse, tonic::Status> {
    let request = DeliverRequest {
        message_id: id.to_string(),
        kind: M::full_name(),
        payload: message.encode_to_vec(),
        source: sender.into(),
        create_time: None,
        destination: "survey".into(),
    };
    let token = cx_testkit::service_token(sender, t.as_str());
    let mut inbox = InboxServiceClient::new(server.channel().await);
    inbox.deliver(authed(request, &token)).await.map(tonic::Response::into_inner)
}

/// A touchpoint of `customer` at `step`, `minutes_ago` minutes ago, as
/// journey offers it.
pub fn offered(id: &str, customer: Uuid, step: &str, minutes_ago: i64) -> OfferedTouchpoint {
    let at = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago);
    OfferedTouchpoint {
        touchpoint_id: id.into(),
        customer_id: customer.to_string(),
        occur_time: Some(cx_proto::timestamp(at)),
        channel: Channel::Web as i32,
        kind: InteractionKind::Transactional as i32,
        step_key: step.into(),
        ..Default::default()
    }
}
