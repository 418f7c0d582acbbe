//! Snapshots: listed (readers), taken for a past day (admins).

use cx_proto::kpi::v1 as pb;
use cx_runtime::auth::{Role, tenant};
use cx_runtime::days;
use cx_runtime::error::{FieldViolation, Violations};
use tonic::{Request, Response};

use super::{KpiApi, Reply};
use crate::filter::Filter;
use crate::metric::Metric;
use crate::store::snapshots;

pub(super) async fn list_snapshots(
    api: &KpiApi,
    request: Request<pb::ListSnapshotsRequest>,
) -> Reply<pb::ListSnapshotsResponse> {
    let t = tenant(&request, Role::Reader)?;
    let r = request.get_ref();
    let mut out = Violations::new();
    let metric = out.check(Metric::parse(r.metric, "metric"));
    let range = out.check(days::range(&r.start_day, &r.end_day));
    let filter = Filter::check(&mut out, metric, r.filter.as_ref(), "filter");
    out.finish()?;
    let (Some(metric), Some(range), Some(filter)) = (metric, range, filter) else {
        return Err(Violations::new().into());
    };
    let snapshots = snapshots::list(&api.db, &t, metric, &filter.key(), range).await?;
    Ok(Response::new(pb::ListSnapshotsResponse { snapshots }))
}

pub(super) async fn take_snapshots(
    api: &KpiApi,
    request: Request<pb::TakeSnapshotsRequest>,
) -> Reply<pb::TakeSnapshotsResponse> {
    let t = tenant(&request, Role::Admin)?;
    let day = days::day(&request.get_ref().day, "day")?;
    if day >= chrono::Utc::now().date_naive() {
        return Err(FieldViolation::new("day", "must be before today (UTC): a snapshot is of a whole day").into());
    }
    snapshots::known_tenant(&api.db, &t).await?;
    let (taken, kept) = crate::snapshot::take(&api.db, &api.owners, &t, day).await?;
    tracing::info!(day = %day, taken = taken.len(), kept, "KPI snapshots taken");
    Ok(Response::new(pb::TakeSnapshotsResponse { taken, kept: i32::try_from(kept).unwrap_or(i32::MAX) }))
}
