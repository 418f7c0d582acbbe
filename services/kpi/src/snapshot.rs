//! Snapshots (docs/DOMAIN.md §9.9): each day, every known tenant's headline
//! KPIs and the KPI of each of its targets over the 30 days ending that day,
//! stored with the version of their definition, so that history stays as it
//! was computed when the data or the definition change later.

use std::time::Duration;

use chrono::{Days, NaiveDate};
use cx_proto::kpi::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::days::written;
use cx_runtime::error::ServiceError;
use cx_runtime::store::Db;
use futures::{StreamExt, TryStreamExt};
use tracing::Instrument;

use crate::dashboard::HEADLINE;
use crate::filter::Filter;
use crate::metric::Metric;
use crate::owners::{Owners, owner_of};
use crate::store::snapshots;
use crate::store::targets::{self, MAX_TARGETS};

/// Days a snapshot's KPI covers, ending with its day: the dashboard's own.
pub const WINDOW_DAYS: u64 = 30;
/// How often the job looks for a day to snapshot.
const PERIOD: Duration = Duration::from_secs(3600);
/// KPIs asked of the owners at once.
const AT_ONCE: usize = 8;

/// The days of a snapshot of `day`.
pub fn window(day: NaiveDate) -> (NaiveDate, NaiveDate) {
    (day.checked_sub_days(Days::new(WINDOW_DAYS - 1)).unwrap_or(day), day)
}

/// What is snapshotted for a tenant with `targets`: the headline KPIs
/// without a filter, then each target's metric and filter (once each).
pub fn wanted(targets: &[pb::Target]) -> Vec<(Metric, Filter)> {
    let mut wanted: Vec<(Metric, Filter)> = HEADLINE.iter().map(|m| (*m, Filter::default())).collect();
    for target in targets {
        let (Ok(metric), Ok(filter)) =
            (Metric::parse(target.metric, "metric"), Filter::parse(target.filter.as_ref(), "filter"))
        else {
            continue;
        };
        if !wanted.contains(&(metric, filter.clone())) {
            wanted.push((metric, filter));
        }
    }
    wanted
}

/// Takes the snapshots of `day` that `t` does not have yet; answers those
/// taken and how many were already there. A KPI of a service the deployment
/// lacks (segmentation, for a population), or of a map or segment since
/// deleted, is not taken.
pub async fn take(
    db: &Db,
    owners: &Owners,
    t: &TenantId,
    day: NaiveDate,
) -> Result<(Vec<pb::Snapshot>, usize), ServiceError> {
    let targets = targets::list(db, t, None, MAX_TARGETS).await?;
    let cost = crate::store::settings::cost(db, t).await?;
    let cost = cost.as_ref();
    let missing = owners.missing();
    let taken = snapshots::taken(db, t, day).await?;
    let (kept, todo): (Vec<_>, Vec<_>) = wanted(&targets)
        .into_iter()
        .filter(|(metric, _)| !missing.contains(&owner_of(*metric)))
        .filter(|(_, filter)| !filter.has_population() || owners.has_populations())
        .partition(|(metric, filter)| taken.contains(&(metric.code(), filter.key())));
    let range = window(day);
    let take_time = Some(cx_proto::timestamp(chrono::Utc::now()));
    let made: Vec<Option<(Metric, Filter, pb::Snapshot)>> = futures::stream::iter(todo)
        .map(|(metric, filter)| async move {
            let tally = match owners.tally(t, metric, range, &filter, cost).await {
                Ok(tally) => tally,
                Err(ServiceError::NotFound(what)) => {
                    tracing::info!(?metric, what, "no snapshot of a KPI whose subject is gone");
                    return Ok(None);
                }
                Err(err) => return Err(err),
            };
            let kpi = crate::api::value(metric, range, &filter, tally.figure());
            let snapshot = pb::Snapshot {
                day: written(day),
                kpi: Some(kpi),
                definition_version: metric.definition_version(),
                take_time,
            };
            Ok(Some((metric, filter, snapshot)))
        })
        .buffered(AT_ONCE)
        .try_collect()
        .await?;
    let made: Vec<_> = made.into_iter().flatten().collect();
    snapshots::keep(db, t, day, &made).await?;
    Ok((made.into_iter().map(|(_, _, snapshot)| snapshot).collect(), kept.len()))
}

/// The daily job: every [`PERIOD`], yesterday's snapshots of every known
/// tenant that lacks them (every replica may run it: a snapshot is stored
/// once, a second take keeps it).
pub async fn run(db: Db, owners: Owners, mut stop: tokio::sync::watch::Receiver<bool>) {
    while !*stop.borrow() {
        let today = chrono::Utc::now().date_naive();
        if let Some(yesterday) = today.pred_opt() {
            match snapshots::tenants(&db).await {
                Ok(tenants) => {
                    for t in tenants {
                        let span = tracing::info_span!("kpi.snapshots", tenant = %t, day = %yesterday);
                        if let Err(err) = take(&db, &owners, &t, yesterday).instrument(span).await {
                            tracing::warn!(tenant = %t, error = %err, "snapshots not taken, will retry");
                        }
                    }
                }
                Err(err) => tracing::warn!(error = %err, "tenants to snapshot not read, will retry"),
            }
        }
        tokio::select! {
            () = tokio::time::sleep(PERIOD) => {}
            _ = stop.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_covers_the_thirty_days_ending_its_day() {
        let day = |raw: &str| NaiveDate::parse_from_str(raw, "%Y-%m-%d").unwrap();
        assert_eq!(window(day("2026-03-31")), (day("2026-03-02"), day("2026-03-31")));
    }

    #[test]
    fn the_headline_then_each_target_is_wanted_once() {
        let map = "0190c1d2-0000-7000-8000-000000000001";
        let target = |metric: pb::Metric, map_id: &str| pb::Target {
            metric: metric as i32,
            filter: Some(pb::Filter { map_id: map_id.into(), ..Default::default() }),
            ..Default::default()
        };
        let targets = [target(pb::Metric::Nps, ""), target(pb::Metric::Conversion, map), target(pb::Metric::Nps, map)];
        let wanted = wanted(&targets);
        // Eight headline KPIs; the NPS target without a filter is one of them.
        assert_eq!(wanted.len(), HEADLINE.len() + 2);
        let on_map = Filter { map: Some(uuid::Uuid::parse_str(map).unwrap()), ..Filter::default() };
        assert_eq!(wanted[HEADLINE.len()..], [(Metric::Conversion, on_map.clone()), (Metric::Nps, on_map)]);
    }
}
