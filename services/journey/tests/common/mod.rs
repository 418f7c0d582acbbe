//! The profile and journey services as two servers on loopback ports, each
//! the other's peer, over one fresh store ([`Cluster`]).

#![allow(dead_code)]

use cx_proto::common::v1::{Channel, Initiator, InteractionKind, Money};
use cx_proto::journey::v1 as pb;
use cx_proto::journey::v1::journey_service_client::JourneyServiceClient;
use cx_proto::profile::v1 as profile;
use cx_proto::profile::v1::profile_service_client::ProfileServiceClient;
use cx_runtime::auth::Role;
use cx_runtime::registry::Registry;
use cx_runtime::store::Db;
pub use cx_testkit::Backend;
use cx_testkit::{Cluster, RunningServer};
use tonic::transport::Channel as GrpcChannel;

/// The suite's two services, each the other's peer.
pub const SERVICES: Registry = Registry::new(&[cx_profile::SERVICE, cx_journey::SERVICE]);

pub struct Suite {
    pub cluster: Cluster,
    pub tenant: String,
    pub writer: String,
    pub admin: String,
}

impl std::ops::Deref for Suite {
    type Target = Cluster;
    fn deref(&self) -> &Cluster {
        &self.cluster
    }
}

/// Starts profile and journey on PostgreSQL and Redis.
pub async fn suite() -> Suite {
    suite_on(Backend::Postgres).await
}

pub async fn suite_on(backend: Backend) -> Suite {
    let cluster = Cluster::start(SERVICES, backend).await;
    let tenant = cx_testkit::unique_tenant("journey");
    let writer = cx_testkit::token(&tenant, Role::Writer);
    let admin = cx_testkit::token(&tenant, Role::Admin);
    Suite { cluster, tenant, writer, admin }
}

impl Suite {
    pub fn profile(&self) -> &RunningServer {
        self.cluster.server("profile")
    }

    pub fn journey(&self) -> &RunningServer {
        self.cluster.server("journey")
    }

    pub async fn journey_client(&self) -> JourneyServiceClient<GrpcChannel> {
        JourneyServiceClient::new(self.journey().channel().await)
    }

    pub async fn profile_client(&self) -> ProfileServiceClient<GrpcChannel> {
        ProfileServiceClient::new(self.profile().channel().await)
    }

    /// A direct connection to the test database, in `schema`.
    pub async fn sql(&self, schema: &str) -> Db {
        let mut options = sea_orm::ConnectOptions::new(self.db.url.clone());
        options.set_schema_search_path(schema).max_connections(2);
        sea_orm::Database::connect(options).await.unwrap().into()
    }

    /// Waits (bounded) until `check` holds for the profile `id`.
    pub async fn eventually_profile(&self, id: &str, check: impl Fn(&profile::Profile) -> bool) -> profile::Profile {
        let client = self.profile_client().await;
        let get = || {
            let mut client = client.clone();
            let request = cx_testkit::authed(profile::GetProfileRequest { id: id.into(), as_of: None }, &self.admin);
            async move { client.get_profile(request).await.unwrap().into_inner().profile.unwrap() }
        };
        cx_testkit::eventually(&format!("profile {id} reaches the expected state"), get, check).await
    }
}

pub fn email(value: &str) -> pb::touchpoint::Customer {
    pb::touchpoint::Customer::Identity(profile::Identity {
        kind: profile::IdentityKind::Email as i32,
        value: value.into(),
    })
}

/// A touchpoint `hours_ago` hours ago.
pub fn touchpoint(
    id: &str,
    customer: pb::touchpoint::Customer,
    channel: Channel,
    initiator: Initiator,
    hours_ago: i64,
) -> pb::Touchpoint {
    pb::Touchpoint {
        id: id.into(),
        customer: Some(customer),
        channel: channel as i32,
        occur_time: Some(cx_proto::timestamp(chrono::Utc::now() - chrono::Duration::hours(hours_ago))),
        kind: InteractionKind::Informative as i32,
        initiator: initiator as i32,
        ..Default::default()
    }
}

pub fn purchase(mut tp: pb::Touchpoint, euros: i64) -> pb::Touchpoint {
    tp.kind = InteractionKind::Transactional as i32;
    tp.purchase_amount = Some(Money { currency_code: "EUR".into(), units: euros, nanos: 0 });
    tp
}

pub async fn count(conn: &Db, sql: &str) -> i64 {
    use sea_orm::ConnectionTrait;
    let row =
        conn.query_one_raw(sea_orm::Statement::from_string(sea_orm::DbBackend::Postgres, sql)).await.unwrap().unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

/// A map of two steps, `visit` and `order` (the conversion step), made by
/// the suite's admin.
pub async fn two_step_map(s: &Suite) -> pb::JourneyMap {
    let step = |key: &str, conversion| pb::Step {
        key: key.into(),
        name: key.into(),
        phase: pb::Phase::Before as i32,
        importance: 3,
        target_score: 8.0,
        conversion,
        ..Default::default()
    };
    let map = pb::JourneyMap {
        name: "Visit and order".into(),
        customer_type: "anyone".into(),
        meta_journey: pb::MetaJourney::Chore as i32,
        steps: vec![step("visit", false), step("order", true)],
        ..Default::default()
    };
    let request = cx_testkit::authed(pb::CreateJourneyMapRequest { journey_map: Some(map) }, &s.admin);
    s.journey_client().await.create_journey_map(request).await.unwrap().into_inner().journey_map.unwrap()
}

/// `tp` on `map`'s `step`, in instance `instance`, scored `score`.
pub fn on_map(mut tp: pb::Touchpoint, map: &pb::JourneyMap, step: &str, instance: &str, score: i32) -> pb::Touchpoint {
    tp.map_id = map.id.clone();
    tp.step_key = step.into();
    tp.instance_id = instance.into();
    tp.experience_score = Some(score);
    tp
}

pub fn profile_id(id: &str) -> pb::touchpoint::Customer {
    pb::touchpoint::Customer::ProfileId(id.into())
}

impl Suite {
    /// Ingests `touchpoints` as one batch, not all or nothing.
    pub async fn ingest(&self, touchpoints: Vec<pb::Touchpoint>) -> pb::IngestTouchpointsResponse {
        let request = pb::IngestTouchpointsRequest { touchpoints, all_or_nothing: false };
        let mut journey = self.journey_client().await;
        journey.ingest_touchpoints(cx_testkit::authed(request, &self.writer)).await.unwrap().into_inner()
    }

    /// The id of the profile that owns the email address `value`.
    pub async fn id_of(&self, value: &str) -> String {
        let identity = profile::Identity { kind: profile::IdentityKind::Email as i32, value: value.into() };
        let request = profile::ResolveProfileRequest { identity: Some(identity), create_if_missing: false };
        let mut profiles = self.profile_client().await;
        let resolved = profiles.resolve_profile(cx_testkit::authed(request, &self.writer)).await.unwrap();
        resolved.into_inner().profile.unwrap().id
    }

    /// Merges `merged` into `survivor` in the profile service.
    pub async fn merge(&self, survivor: &str, merged: &str) {
        let request = profile::MergeProfilesRequest {
            survivor_id: survivor.into(),
            merged_id: merged.into(),
            prefer_merged_attributes: false,
        };
        self.profile_client().await.merge_profiles(cx_testkit::authed(request, &self.admin)).await.unwrap();
    }

    /// The ids of the touchpoints on `profile_id`'s timeline, newest first.
    pub async fn timeline(&self, profile_id: &str) -> Vec<String> {
        let request = pb::ListTimelineRequest { profile_id: profile_id.into(), ..Default::default() };
        let mut journey = self.journey_client().await;
        let page = journey.list_timeline(cx_testkit::authed(request, &self.writer)).await.unwrap().into_inner();
        page.touchpoints.into_iter().map(|t| t.id).collect()
    }
}
