//! Targets: set (admins), listed (readers), deleted (admins).

use cx_proto::kpi::v1 as pb;
use cx_runtime::auth::{Role, tenant};
use cx_runtime::error::{FieldViolation, Violations};
use cx_runtime::input::parse_uuid;
use cx_runtime::page::{decode_uuid_token, next_page_token, page_size, trim_page};
use tonic::{Request, Response};

use super::{KpiApi, Reply};
use crate::filter::Filter;
use crate::metric::Metric;
use crate::store::targets;

pub(super) async fn set_target(api: &KpiApi, request: Request<pb::SetTargetRequest>) -> Reply<pb::SetTargetResponse> {
    let t = tenant(&request, Role::Admin)?;
    let given = request.into_inner().target.ok_or_else(|| FieldViolation::new("target", "is required"))?;
    let mut out = Violations::new();
    let metric = out.check(Metric::parse(given.metric, "target.metric"));
    let filter = Filter::check(&mut out, metric, given.filter.as_ref(), "target.filter");
    let value = metric.and_then(|m| out.check(m.check_target(given.value, "target.value")));
    out.finish()?;
    let (Some(metric), Some(filter), Some(value)) = (metric, filter, value) else {
        return Err(Violations::new().into());
    };
    let target = targets::set(&api.db, &t, metric, &filter, value).await?;
    crate::store::snapshots::known_tenant(&api.db, &t).await?;
    api.cache.advance_generation(&t, crate::NAME).await?;
    tracing::info!(target = target.id, metric = ?metric, "KPI target set");
    Ok(Response::new(pb::SetTargetResponse { target: Some(target) }))
}

pub(super) async fn list_targets(
    api: &KpiApi,
    request: Request<pb::ListTargetsRequest>,
) -> Reply<pb::ListTargetsResponse> {
    let t = tenant(&request, Role::Reader)?;
    let pb::ListTargetsRequest { page_size: size, page_token } = request.into_inner();
    let (size, after) =
        cx_runtime::error::all2(page_size(size, "page_size"), decode_uuid_token(&page_token, "page_token"))?;
    let mut targets = targets::list(&api.db, &t, after, size).await?;
    let more = trim_page(&mut targets, size);
    let next_page_token = next_page_token(more, targets.last().map(|s| s.id.clone()));
    Ok(Response::new(pb::ListTargetsResponse { targets, next_page_token }))
}

pub(super) async fn delete_target(
    api: &KpiApi,
    request: Request<pb::DeleteTargetRequest>,
) -> Reply<pb::DeleteTargetResponse> {
    let t = tenant(&request, Role::Admin)?;
    let id = parse_uuid(&request.get_ref().id, "id", "a target id")?;
    targets::delete(&api.db, &t, id).await?;
    api.cache.advance_generation(&t, crate::NAME).await?;
    Ok(Response::new(pb::DeleteTargetResponse {}))
}
