//! The servers under test: `cx serve all` on the embedded SQLite default or
//! on PostgreSQL, and a victim tenant's data to attack.

use std::path::{Path, PathBuf};

use cx_proto::common::v1::AttributeValue;
use cx_proto::common::v1::attribute_value::Kind;
use cx_proto::journey::v1 as journey;
use cx_proto::journey::v1::journey_service_client::JourneyServiceClient;
use cx_proto::profile::v1 as profile;
use cx_proto::profile::v1::profile_service_client::ProfileServiceClient;
use cx_runtime::auth::Role;
use cx_testkit::process::{CxProcess, free_port};
use cx_testkit::{TestDb, authed};
use tonic::transport::Channel;

/// Where the data lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }
}

/// One `cx serve all` process and what it needs to live.
pub struct Server {
    pub process: CxProcess,
    pub backend: Backend,
    _db: Option<TestDb>,
}

impl Server {
    /// Starts `cx` (`bin`) serving everything on `backend`, with `env` added.
    pub async fn start(bin: &Path, backend: Backend, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let db = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(TestDb::create().await?),
        };
        let mut all: Vec<(&str, &str)> = Vec::new();
        if let Some(db) = &db {
            all.push(("CX_DATABASE_URL", db.url.as_str()));
        }
        all.push(("CX_LOG", "error"));
        all.extend_from_slice(env);
        let process = CxProcess::serve(PathBuf::from(bin), "all", free_port(), &all);
        process.wait_serving().await;
        Ok(Self { process, backend, _db: db })
    }

    /// Whether the server answers health SERVING now.
    pub async fn serving(&self) -> bool {
        use tonic_health::pb::health_check_response::ServingStatus;
        let Ok(channel) = self.channel().await else { return false };
        let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
        let request = tonic_health::pb::HealthCheckRequest { service: String::new() };
        client.check(request).await.is_ok_and(|r| r.into_inner().status == ServingStatus::Serving as i32)
    }

    pub async fn channel(&self) -> anyhow::Result<Channel> {
        Ok(Channel::from_shared(self.process.addr.clone())?.connect().await?)
    }
}

/// A tenant's customer whose data must never reach another tenant: the
/// markers appear in no request the suite sends.
#[derive(Clone, Debug)]
pub struct Victim {
    pub tenant: String,
    pub profile_id: String,
    /// Stored in an attribute and as a touchpoint id.
    pub markers: Vec<String>,
}

impl Victim {
    pub async fn plant(server: &Server) -> anyhow::Result<Self> {
        let tenant = cx_testkit::unique_tenant("victim");
        let admin = cx_testkit::token(&tenant, Role::Admin);
        let channel = server.channel().await?;
        let secret = format!("victim-secret-{}", uuid::Uuid::new_v4().simple());
        let touchpoint = format!("victim-tp-{}", uuid::Uuid::new_v4().simple());
        let profile_id = crate::data::customer(&channel, &admin).await?;
        let mut profiles = ProfileServiceClient::new(channel.clone());
        let update = profile::UpdateProfileRequest {
            profile: Some(profile::Profile {
                id: profile_id.clone(),
                attributes: [("note".to_owned(), AttributeValue { kind: Some(Kind::StringValue(secret.clone())) })]
                    .into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["attributes".into()] }),
        };
        profiles.update_profile(authed(update, &admin)).await?;
        let tp = crate::data::touchpoint(&touchpoint, &profile_id);
        let request = journey::IngestTouchpointsRequest { touchpoints: vec![tp], all_or_nothing: true };
        JourneyServiceClient::new(channel).ingest_touchpoints(authed(request, &admin)).await?;
        Ok(Self { tenant, profile_id, markers: vec![secret, touchpoint] })
    }

    /// Whether `answer` gives any of the victim's data away.
    pub fn leaked_in(&self, answer: &crate::grpc::Answer) -> bool {
        self.markers.iter().any(|m| answer.mentions(m.as_bytes()))
    }
}
