//! The demo's KPI targets, so the dashboard shows statuses.

use anyhow::Context as _;
use cx_proto::kpi::v1::{self as kpi, Metric};

use super::data::MapKind;
use super::load::Api;

/// Demo targets, so statuses show: NPS 30, CSAT 80 %, churn 20 %, closed
/// loop 90 %, and 30 % conversion on each map.
pub async fn set_targets(api: &Api, maps: &[(MapKind, String)]) -> anyhow::Result<()> {
    let mut targets: Vec<(Metric, kpi::Filter, f64)> =
        [(Metric::Nps, 30.0), (Metric::Csat, 0.8), (Metric::Churn, 0.2), (Metric::ClosedLoopSla, 0.9)]
            .into_iter()
            .map(|(metric, value)| (metric, kpi::Filter::default(), value))
            .collect();
    for (_, id) in maps {
        targets.push((Metric::Conversion, kpi::Filter { map_id: id.clone(), ..Default::default() }, 0.3));
    }
    for (metric, filter, value) in targets {
        let target = kpi::Target { metric: metric as i32, filter: Some(filter), value, ..Default::default() };
        api.kpi
            .clone()
            .set_target(api.req(kpi::SetTargetRequest { target: Some(target) }))
            .await
            .context("SetTarget")?;
    }
    Ok(())
}
