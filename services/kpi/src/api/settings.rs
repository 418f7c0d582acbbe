//! The tenant's KPI settings: read (readers), changed (admins); and the
//! acquisition cost CLV takes from them when a request gives none.

use cx_proto::kpi::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::auth::{Role, tenant};
use cx_runtime::error::{ServiceError, Violations};
use cx_runtime::input::parse_money;
use cx_runtime::validate::mask::Updatable;
use tonic::{Request, Response};

use super::{KpiApi, Reply};
use crate::clv::Cost;
use crate::metric::Metric;
use crate::store::settings;

const UPDATABLE: Updatable<'static> = Updatable {
    resource: "the KPI settings",
    fields: &["acquisition_cost"],
    fixed: &[("update_time", "is output only")],
};

impl KpiApi {
    /// CLV's acquisition cost: the request's, else the tenant's setting;
    /// none for another metric.
    pub(super) async fn cost(
        &self,
        t: &TenantId,
        metric: Metric,
        asked: Option<Cost>,
    ) -> Result<Option<Cost>, ServiceError> {
        match (metric, asked) {
            (Metric::Clv, None) => settings::cost(&self.db, t).await,
            (_, asked) => Ok(asked),
        }
    }
}

pub(super) async fn get_kpi_settings(
    api: &KpiApi,
    request: Request<pb::GetKpiSettingsRequest>,
) -> Reply<pb::GetKpiSettingsResponse> {
    let t = tenant(&request, Role::Reader)?;
    Ok(Response::new(pb::GetKpiSettingsResponse { settings: Some(settings::get(&api.db, &t).await?) }))
}

pub(super) async fn update_kpi_settings(
    api: &KpiApi,
    request: Request<pb::UpdateKpiSettingsRequest>,
) -> Reply<pb::UpdateKpiSettingsResponse> {
    let t = tenant(&request, Role::Admin)?;
    let pb::UpdateKpiSettingsRequest { settings: given, update_mask } = request.into_inner();
    let given = given.unwrap_or_default();
    let mut out = Violations::new();
    let paths = out.check(UPDATABLE.paths(update_mask)).unwrap_or_default();
    if let Some(money) = &given.acquisition_cost {
        out.check(parse_money(money, "settings.acquisition_cost"));
    }
    out.finish()?;
    let mut current = settings::get(&api.db, &t).await?;
    if paths.iter().any(|p| p == "acquisition_cost") {
        current.acquisition_cost = given.acquisition_cost;
    }
    let stored = settings::set(&api.db, &t, current).await?;
    api.cache.advance_generation(&t, crate::NAME).await?;
    tracing::info!("KPI settings changed");
    Ok(Response::new(pb::UpdateKpiSettingsResponse { settings: Some(stored) }))
}
