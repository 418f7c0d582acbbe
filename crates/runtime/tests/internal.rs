//! A service's internal RPCs (`ModuleBuilder::serve_internal`) and how
//! another service calls them (`Parts::internal_peer`): a toy "orders"
//! service serves `cx.profile.v1.ProfileInternalService` behind the service
//! identity, and a toy "billing" service calls it as itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use cx_proto::profile::v1::profile_internal_service_client::ProfileInternalServiceClient;
use cx_proto::profile::v1::profile_internal_service_server::{ProfileInternalService, ProfileInternalServiceServer};
use cx_proto::profile::v1::{
    CheckConsentsRequest, CheckConsentsResponse, CustomerConsent, ExportProfileFactsRequest,
    ExportProfileFactsResponse, ListCustomPurposesRequest, ListCustomPurposesResponse,
};
use cx_runtime::TenantId;
use cx_runtime::auth::Role;
use cx_runtime::config::ConfigError;
use cx_runtime::context::ServiceContext;
use cx_runtime::identity::{service_identity, tenant_of_call_by};
use cx_runtime::module::Parts;
use cx_runtime::registry::{Registry, ServiceDef};
use cx_runtime::server::ServiceModule;
use cx_testkit::{Backend, Cluster, authed};
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use tonic::{Code, Request, Response, Status};

const SUITE: Registry = Registry::new(&[
    ServiceDef { name: "orders", customer_data: false, feeds: &[], build: |ctx| Box::pin(orders(ctx)) },
    ServiceDef { name: "billing", customer_data: false, feeds: &[], build: |ctx| Box::pin(billing(ctx)) },
]);

struct NoTables;

impl MigratorTrait for NoTables {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        Vec::new()
    }
}

/// Answers who called: the service and tenant of the service token. Its
/// export is billing's alone.
struct WhoCalls;

#[tonic::async_trait]
impl ProfileInternalService for WhoCalls {
    type ExportProfileFactsStream =
        futures::stream::Iter<std::vec::IntoIter<Result<ExportProfileFactsResponse, Status>>>;

    async fn export_profile_facts(
        &self,
        request: Request<ExportProfileFactsRequest>,
    ) -> Result<Response<Self::ExportProfileFactsStream>, Status> {
        let tenant = tenant_of_call_by(&request, "billing")?;
        let page = ExportProfileFactsResponse { cursor: format!("billing@{tenant}"), ..Default::default() };
        Ok(Response::new(futures::stream::iter(vec![Ok(page)])))
    }

    async fn check_consents(
        &self,
        request: Request<CheckConsentsRequest>,
    ) -> Result<Response<CheckConsentsResponse>, Status> {
        let caller = service_identity(&request)?;
        let consent =
            CustomerConsent { profile_id: format!("{}@{}", caller.service, caller.tenant), ..Default::default() };
        Ok(Response::new(CheckConsentsResponse { consents: vec![consent] }))
    }

    async fn list_custom_purposes(
        &self,
        request: Request<ListCustomPurposesRequest>,
    ) -> Result<Response<ListCustomPurposesResponse>, Status> {
        let caller = service_identity(&request)?;
        Ok(Response::new(ListCustomPurposesResponse { names: vec![caller.service.clone()] }))
    }

    /// Not asked here: a service identity gets an empty answer.
    async fn aggregate_lifecycle(
        &self,
        request: Request<cx_proto::profile::v1::AggregateLifecycleRequest>,
    ) -> Result<Response<cx_proto::profile::v1::AggregateLifecycleResponse>, Status> {
        service_identity(&request)?;
        Ok(Response::new(cx_proto::profile::v1::AggregateLifecycleResponse::default()))
    }

    async fn get_data_generation(
        &self,
        request: Request<cx_proto::profile::v1::GetDataGenerationRequest>,
    ) -> Result<Response<cx_proto::profile::v1::GetDataGenerationResponse>, Status> {
        service_identity(&request)?;
        Ok(Response::new(cx_proto::profile::v1::GetDataGenerationResponse::default()))
    }

    /// Not asked here: a service identity gets an empty answer.
    async fn aggregate_purchases(
        &self,
        request: Request<cx_proto::profile::v1::AggregatePurchasesRequest>,
    ) -> Result<Response<cx_proto::profile::v1::AggregatePurchasesResponse>, Status> {
        service_identity(&request)?;
        Ok(Response::new(cx_proto::profile::v1::AggregatePurchasesResponse::default()))
    }

    /// Not asked here: a service identity gets an empty answer.
    async fn aggregate_distributions(
        &self,
        request: Request<cx_proto::profile::v1::AggregateDistributionsRequest>,
    ) -> Result<Response<cx_proto::profile::v1::AggregateDistributionsResponse>, Status> {
        service_identity(&request)?;
        Ok(Response::new(cx_proto::profile::v1::AggregateDistributionsResponse::default()))
    }
}

async fn orders(ctx: &ServiceContext) -> Result<Arc<dyn ServiceModule>, ConfigError> {
    let parts = Parts::open(ctx, "orders").await?;
    Ok(parts.module::<NoTables>().serve_internal(ProfileInternalServiceServer::new(WhoCalls)).build())
}

async fn billing(ctx: &ServiceContext) -> Result<Arc<dyn ServiceModule>, ConfigError> {
    Ok(Parts::open(ctx, "billing").await?.module::<NoTables>().build())
}

#[tokio::test]
async fn an_internal_service_takes_service_tokens_only_and_a_peer_calls_it_as_itself() {
    let cluster = Cluster::start(SUITE, Backend::Sqlite).await;
    let mut direct = ProfileInternalServiceClient::new(cluster.server("orders").channel().await);
    let ask = || CheckConsentsRequest::default();

    // No token, and a user token of any role: refused.
    assert_eq!(direct.check_consents(ask()).await.unwrap_err().code(), Code::Unauthenticated);
    let admin = cx_testkit::token("acme", Role::Admin);
    let status = direct.check_consents(authed(ask(), &admin)).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::Unauthenticated, "this call takes a service identity, not a user token")
    );

    // Billing's peer signs each call as billing, for the tenant it names.
    let parts = Parts::open(&cluster.context(), "billing").await.unwrap();
    let orders = parts.internal_peer("orders").expect("orders is billing's peer");
    assert!(parts.internal_peer("shipping").is_none(), "no such peer");
    let mut client = ProfileInternalServiceClient::new(orders.channel());
    let tenant = TenantId::parse("acme").unwrap();
    let answer = client.check_consents(orders.request(&tenant, ask()).unwrap()).await.unwrap().into_inner();
    assert_eq!(answer.consents[0].profile_id, "billing@acme");
    // A call meant for one service: billing passes, another service not.
    let mut pages = client
        .export_profile_facts(orders.request(&tenant, ExportProfileFactsRequest::default()).unwrap())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pages.message().await.unwrap().unwrap().cursor, "billing@acme");
    let shipping = authed(ExportProfileFactsRequest::default(), &cx_testkit::service_token("shipping", "acme"));
    let status = direct.export_profile_facts(shipping).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::PermissionDenied, "only the billing service makes this call"));

    // Health answers for the service, not for its internal part.
    let health = cluster.server("orders").health("cx.profile.v1.ProfileInternalService").await;
    assert_eq!(health, None, "health answers for the service's own name only");
}
