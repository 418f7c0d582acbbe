//! The profile and journey services as two servers on loopback ports, each
//! the other's peer, over one fresh PostgreSQL database and Redis.

#![allow(dead_code)]

use std::time::Duration;

use cx_proto::common::v1::{Channel, Initiator, InteractionKind, Money};
use cx_proto::journey::v1 as pb;
use cx_proto::journey::v1::journey_service_client::JourneyServiceClient;
use cx_proto::profile::v1 as profile;
use cx_proto::profile::v1::profile_service_client::ProfileServiceClient;
use cx_runtime::auth::Role;
use cx_runtime::peers::{PeerArgs, Peers};
use cx_testkit::{RunningServer, TestDb};
use tonic::transport::Channel as GrpcChannel;

pub struct Suite {
    pub db: TestDb,
    pub profile: RunningServer,
    pub journey: RunningServer,
    pub tenant: String,
    pub writer: String,
    pub admin: String,
}

/// Starts profile and journey. `journey_up: false` binds journey's port
/// (so profile knows where it will be) without serving it yet.
pub async fn suite() -> Suite {
    let (suite, _) = suite_with(true).await;
    suite
}

pub async fn suite_with(journey_up: bool) -> (Suite, Option<tokio::net::TcpListener>) {
    let db = TestDb::create().await.unwrap();
    let profile_listener = RunningServer::bind().await;
    let journey_listener = RunningServer::bind().await;
    let peers = PeerArgs {
        profile_endpoint: Some(format!("http://{}", profile_listener.local_addr().unwrap())),
        journey_endpoint: Some(format!("http://{}", journey_listener.local_addr().unwrap())),
    };
    let ctx = context(&db, &peers);
    let profile_module = cx_profile::ProfileModule::arc(&ctx).await.unwrap();
    let profile = RunningServer::start_on(profile_listener, vec![profile_module], cx_testkit::server_args());
    profile.wait_serving().await;
    let (journey, parked) = if journey_up {
        (start_journey(&db, &peers, journey_listener).await, None)
    } else {
        // A placeholder that is never SERVING: the real journey starts later on the parked port.
        (
            RunningServer::start_on(RunningServer::bind().await, vec![], cx_testkit::server_args()),
            Some(journey_listener),
        )
    };
    let tenant = cx_testkit::unique_tenant("journey");
    let writer = cx_testkit::token(&tenant, Role::Writer);
    let admin = cx_testkit::token(&tenant, Role::Admin);
    (Suite { db, profile, journey, tenant, writer, admin }, parked)
}

pub fn peers_of(profile: &RunningServer, journey_addr: std::net::SocketAddr) -> PeerArgs {
    PeerArgs {
        profile_endpoint: Some(format!("http://{}", profile.addr)),
        journey_endpoint: Some(format!("http://{journey_addr}")),
    }
}

fn context(db: &TestDb, peers: &PeerArgs) -> cx_runtime::context::ServiceContext {
    let store = cx_testkit::store_args(Some(db.url.clone()), cx_testkit::temp_dir());
    cx_testkit::context(store, Some(cx_testkit::redis_url())).with_peers(Peers::resolve(peers, None).unwrap())
}

/// Starts the journey service on `listener`.
pub async fn start_journey(db: &TestDb, peers: &PeerArgs, listener: tokio::net::TcpListener) -> RunningServer {
    let ctx = context(db, peers);
    let module = cx_journey::JourneyModule::arc(&ctx).await.unwrap();
    let server = RunningServer::start_on(listener, vec![module], cx_testkit::server_args());
    server.wait_serving().await;
    server
}

impl Suite {
    pub async fn journey_client(&self) -> JourneyServiceClient<GrpcChannel> {
        JourneyServiceClient::new(self.journey.channel().await)
    }

    pub async fn profile_client(&self) -> ProfileServiceClient<GrpcChannel> {
        ProfileServiceClient::new(self.profile.channel().await)
    }

    /// A direct connection to the test database, in `schema`.
    pub async fn sql(&self, schema: &str) -> sea_orm::DatabaseConnection {
        let mut options = sea_orm::ConnectOptions::new(self.db.url.clone());
        options.set_schema_search_path(schema).max_connections(2);
        sea_orm::Database::connect(options).await.unwrap()
    }

    /// Waits (bounded) until `check` holds for the profile `id`.
    pub async fn eventually_profile(&self, id: &str, check: impl Fn(&profile::Profile) -> bool) -> profile::Profile {
        let mut client = self.profile_client().await;
        let mut last = None;
        for _ in 0..100 {
            let request = cx_testkit::authed(profile::GetProfileRequest { id: id.into(), as_of: None }, &self.admin);
            let found = client.get_profile(request).await.unwrap().into_inner().profile.unwrap();
            if check(&found) {
                return found;
            }
            last = Some(found);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("profile {id} never reached the expected state; last seen: {last:?}");
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
