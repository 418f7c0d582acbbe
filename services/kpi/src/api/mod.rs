//! `cx.kpi.v1.KpiService`: each RPC is answered by the module of its area
//! (KPIs, targets, the dashboard, snapshots, experiments and their
//! exposures); this file only routes.

mod dashboard;
mod distributions;
mod experiments;
mod exposures;
mod kpi;
mod settings;
mod snapshots;
mod targets;

pub(crate) use kpi::{answer, previous, trend_answer, value};

use std::sync::Arc;

use cx_proto::kpi::v1 as pb;
use cx_proto::kpi::v1::kpi_service_server::KpiService;
use cx_runtime::TenantId;
use cx_runtime::cache::Cache;
use cx_runtime::fresh_read::FreshReads;
use cx_runtime::store::Db;
use tonic::{Request, Response, Status};

use crate::owners::Owners;

/// The kpi service's gRPC face.
#[derive(Clone, Debug)]
pub struct KpiApi {
    db: Db,
    owners: Owners,
    /// Dashboards, under the generations of the data they were worked from.
    cache: Cache,
    /// The generation reads of dashboard calls, shared per tenant.
    generations: Arc<FreshReads<TenantId, String, Status>>,
    /// The dashboards this process served last, by cache key.
    dashboards: dashboard::Recent,
}

impl KpiApi {
    pub fn new(db: Db, owners: Owners, cache: Cache) -> Self {
        Self { db, owners, cache, generations: Arc::default(), dashboards: dashboard::recent() }
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl KpiService for KpiApi {
    async fn get_kpi(&self, request: Request<pb::GetKpiRequest>) -> Reply<pb::GetKpiResponse> {
        kpi::get_kpi(self, request).await
    }

    async fn get_kpi_trend(&self, request: Request<pb::GetKpiTrendRequest>) -> Reply<pb::GetKpiTrendResponse> {
        kpi::get_kpi_trend(self, request).await
    }

    async fn set_target(&self, request: Request<pb::SetTargetRequest>) -> Reply<pb::SetTargetResponse> {
        targets::set_target(self, request).await
    }

    async fn list_targets(&self, request: Request<pb::ListTargetsRequest>) -> Reply<pb::ListTargetsResponse> {
        targets::list_targets(self, request).await
    }

    async fn delete_target(&self, request: Request<pb::DeleteTargetRequest>) -> Reply<pb::DeleteTargetResponse> {
        targets::delete_target(self, request).await
    }

    async fn get_dashboard(&self, request: Request<pb::GetDashboardRequest>) -> Reply<pb::GetDashboardResponse> {
        dashboard::get_dashboard(self, request).await
    }

    async fn list_snapshots(&self, request: Request<pb::ListSnapshotsRequest>) -> Reply<pb::ListSnapshotsResponse> {
        snapshots::list_snapshots(self, request).await
    }

    async fn take_snapshots(&self, request: Request<pb::TakeSnapshotsRequest>) -> Reply<pb::TakeSnapshotsResponse> {
        snapshots::take_snapshots(self, request).await
    }

    async fn get_kpi_settings(&self, request: Request<pb::GetKpiSettingsRequest>) -> Reply<pb::GetKpiSettingsResponse> {
        settings::get_kpi_settings(self, request).await
    }

    async fn update_kpi_settings(
        &self,
        request: Request<pb::UpdateKpiSettingsRequest>,
    ) -> Reply<pb::UpdateKpiSettingsResponse> {
        settings::update_kpi_settings(self, request).await
    }

    async fn get_distributions(
        &self,
        request: Request<pb::GetDistributionsRequest>,
    ) -> Reply<pb::GetDistributionsResponse> {
        distributions::get_distributions(self, request).await
    }

    async fn create_experiment(
        &self,
        request: Request<pb::CreateExperimentRequest>,
    ) -> Reply<pb::CreateExperimentResponse> {
        experiments::create_experiment(self, request).await
    }

    async fn get_experiment(&self, request: Request<pb::GetExperimentRequest>) -> Reply<pb::GetExperimentResponse> {
        experiments::get_experiment(self, request).await
    }

    async fn list_experiments(
        &self,
        request: Request<pb::ListExperimentsRequest>,
    ) -> Reply<pb::ListExperimentsResponse> {
        experiments::list_experiments(self, request).await
    }

    async fn stop_experiment(&self, request: Request<pb::StopExperimentRequest>) -> Reply<pb::StopExperimentResponse> {
        experiments::stop_experiment(self, request).await
    }

    async fn assign_variant(&self, request: Request<pb::AssignVariantRequest>) -> Reply<pb::AssignVariantResponse> {
        exposures::assign_variant(self, request).await
    }

    async fn record_conversion(
        &self,
        request: Request<pb::RecordConversionRequest>,
    ) -> Reply<pb::RecordConversionResponse> {
        exposures::record_conversion(self, request).await
    }

    async fn get_experiment_results(
        &self,
        request: Request<pb::GetExperimentResultsRequest>,
    ) -> Reply<pb::GetExperimentResultsResponse> {
        exposures::get_experiment_results(self, request).await
    }

    async fn calculate_sample_size(
        &self,
        request: Request<pb::CalculateSampleSizeRequest>,
    ) -> Reply<pb::CalculateSampleSizeResponse> {
        experiments::calculate_sample_size(request).await
    }
}
