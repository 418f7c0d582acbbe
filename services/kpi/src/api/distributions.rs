//! `GetDistributions`: customers by lifecycle stage and digital intensity,
//! counted by profile.

use cx_proto::kpi::v1 as pb;
use cx_runtime::auth::{Role, tenant};
use cx_runtime::days::{day_or_today, written};
use tonic::{Request, Response};

use super::{KpiApi, Reply};
use crate::distribution::distributions;

pub(super) async fn get_distributions(
    api: &KpiApi,
    request: Request<pb::GetDistributionsRequest>,
) -> Reply<pb::GetDistributionsResponse> {
    let t = tenant(&request, Role::Reader)?;
    let day = day_or_today(&request.get_ref().as_of_day, "as_of_day")?;
    let counts = api.owners.distributions(&t, written(day)).await?;
    Ok(Response::new(pb::GetDistributionsResponse { distributions: Some(distributions(&counts)) }))
}
