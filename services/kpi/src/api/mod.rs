//! `cx.kpi.v1.KpiService`: each RPC is answered by the module of its area
//! (KPIs, targets, the dashboard); this file only routes.

mod dashboard;
mod kpi;
mod snapshots;
mod targets;

pub(crate) use kpi::{answer, previous, trend_answer, value};

use cx_proto::kpi::v1 as pb;
use cx_proto::kpi::v1::kpi_service_server::KpiService;
use cx_runtime::cache::Cache;
use sea_orm::DatabaseConnection;
use tonic::{Request, Response, Status};

use crate::owners::Owners;

/// The kpi service's gRPC face.
#[derive(Clone, Debug)]
pub struct KpiApi {
    db: DatabaseConnection,
    owners: Owners,
    /// Dashboards, under the generations of the data they were worked from.
    cache: Cache,
}

impl KpiApi {
    pub fn new(db: DatabaseConnection, owners: Owners, cache: Cache) -> Self {
        Self { db, owners, cache }
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
}
