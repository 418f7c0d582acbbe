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
    pub async fn sql(&self, schema: &str) -> sea_orm::DatabaseConnection {
        let mut options = sea_orm::ConnectOptions::new(self.db.url.clone());
        options.set_schema_search_path(schema).max_connections(2);
        sea_orm::Database::connect(options).await.unwrap()
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

pub async fn count(conn: &sea_orm::DatabaseConnection, sql: &str) -> i64 {
    use sea_orm::ConnectionTrait;
    let row =
        conn.query_one_raw(sea_orm::Statement::from_string(sea_orm::DbBackend::Postgres, sql)).await.unwrap().unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}
