//! The profile and journey services as two servers on loopback ports, each
//! the other's peer, over one fresh PostgreSQL database and Redis.

#![allow(dead_code)]

use cx_proto::common::v1::{Channel, Initiator, InteractionKind, Money};
use cx_proto::journey::v1 as pb;
use cx_proto::journey::v1::journey_service_client::JourneyServiceClient;
use cx_proto::profile::v1 as profile;
use cx_proto::profile::v1::profile_service_client::ProfileServiceClient;
use cx_runtime::auth::Role;
use cx_runtime::config::StoreArgs;
use cx_runtime::peers::{PeerArgs, Peers};
use cx_testkit::{RunningServer, TestDb};
use tonic::transport::Channel as GrpcChannel;

pub struct Suite {
    pub db: TestDb,
    /// Where both services keep their data (PostgreSQL, or SQLite files).
    pub store: StoreArgs,
    pub profile: RunningServer,
    pub journey: RunningServer,
    pub tenant: String,
    pub writer: String,
    pub admin: String,
}

/// The store both services run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL and Redis, as in production.
    Postgres,
    /// SQLite files and the in-process cache: the embedded default of `cx serve all`.
    Sqlite,
}

/// Starts profile and journey on PostgreSQL and Redis.
pub async fn suite() -> Suite {
    suite_on(Backend::Postgres).await
}

pub async fn suite_on(backend: Backend) -> Suite {
    let db = TestDb::create().await.unwrap();
    let store = match backend {
        Backend::Postgres => cx_testkit::store_args(Some(db.url.clone()), cx_testkit::temp_dir()),
        Backend::Sqlite => cx_testkit::store_args(None, cx_testkit::temp_dir()),
    };
    let profile_listener = RunningServer::bind().await;
    let journey_listener = RunningServer::bind().await;
    let peers = PeerArgs {
        profile_endpoint: Some(format!("http://{}", profile_listener.local_addr().unwrap())),
        journey_endpoint: Some(format!("http://{}", journey_listener.local_addr().unwrap())),
    };
    let ctx = context(&store, &peers);
    let profile_module = cx_profile::ProfileModule::arc(&ctx).await.unwrap();
    let profile = RunningServer::start_on(profile_listener, vec![profile_module], cx_testkit::server_args());
    profile.wait_serving().await;
    let journey = start_journey(&store, &peers, journey_listener).await;
    let tenant = cx_testkit::unique_tenant("journey");
    let writer = cx_testkit::token(&tenant, Role::Writer);
    let admin = cx_testkit::token(&tenant, Role::Admin);
    Suite { db, store, profile, journey, tenant, writer, admin }
}

impl Drop for Suite {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.store.data_dir);
    }
}

pub fn peers_of(profile: &RunningServer, journey_addr: std::net::SocketAddr) -> PeerArgs {
    PeerArgs {
        profile_endpoint: Some(format!("http://{}", profile.addr)),
        journey_endpoint: Some(format!("http://{journey_addr}")),
    }
}

fn context(store: &StoreArgs, peers: &PeerArgs) -> cx_runtime::context::ServiceContext {
    // Redis with PostgreSQL; the in-process cache with SQLite, as `cx serve all` by default.
    let redis = store.database_url.as_ref().map(|_| cx_testkit::redis_url());
    cx_testkit::context(store.clone(), redis).with_peers(Peers::resolve(peers, None).unwrap())
}

/// Starts the journey service on `listener`.
pub async fn start_journey(store: &StoreArgs, peers: &PeerArgs, listener: tokio::net::TcpListener) -> RunningServer {
    start_journey_with(store, peers, listener, cx_testkit::server_args()).await
}

/// Starts the journey service on `listener` with server settings `args`.
pub async fn start_journey_with(
    store: &StoreArgs,
    peers: &PeerArgs,
    listener: tokio::net::TcpListener,
    args: cx_runtime::config::ServerArgs,
) -> RunningServer {
    let ctx = context(store, peers);
    let module = cx_journey::JourneyModule::arc(&ctx).await.unwrap();
    let server = RunningServer::start_on(listener, vec![module], args);
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
