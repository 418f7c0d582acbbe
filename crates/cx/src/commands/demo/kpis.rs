//! Fills the dashboard view from KpiService (GetKpi, GetKpiTrend) and the
//! case report, and sets the demo's targets. Later replaced by one
//! `GetDashboard` call feeding the same view.

use anyhow::Context as _;
use chrono::{Datelike as _, Months, NaiveDate};
use cx_proto::kpi::v1::{self as kpi, Metric};
use cx_proto::survey::v1 as survey;

use super::dashboard::{CaseSummary, Cell, Dashboard, KpiRow, Period, Scale, Status, Trend};
use super::load::{Api, Loaded};

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// The last full calendar month, the twelve full months before this one, and
/// the last 30 days with today (where today's answers and cases are).
pub fn periods(today: NaiveDate) -> Vec<Period> {
    let month_start = today.with_day(1).unwrap_or(today);
    let last_end = month_start.pred_opt().unwrap_or(month_start);
    let last_start = last_end.with_day(1).unwrap_or(last_end);
    let year_start = month_start.checked_sub_months(Months::new(12)).unwrap_or(month_start);
    let days30 = today - chrono::Duration::days(29);
    vec![
        Period { label: last_start.format("%b %Y").to_string(), start_day: day(last_start), end_day: day(last_end) },
        Period { label: "12 months".into(), start_day: day(year_start), end_day: day(last_end) },
        Period { label: "30 days".into(), start_day: day(days30), end_day: day(today) },
    ]
}

/// Demo targets, so statuses show: NPS 30, CSAT 80 %, churn 20 %, closed loop 90 %.
pub async fn set_targets(api: &Api) -> anyhow::Result<()> {
    for (metric, value) in
        [(Metric::Nps, 30.0), (Metric::Csat, 0.8), (Metric::Churn, 0.2), (Metric::ClosedLoopSla, 0.9)]
    {
        let target =
            kpi::Target { metric: metric as i32, filter: Some(kpi::Filter::default()), value, ..Default::default() };
        api.kpi
            .clone()
            .set_target(api.req(kpi::SetTargetRequest { target: Some(target) }))
            .await
            .context("SetTarget")?;
    }
    Ok(())
}

pub async fn dashboard(api: &Api, tenant: &str, loaded: &Loaded, today: NaiveDate) -> anyhow::Result<Dashboard> {
    let periods = periods(today);
    let mut rows = vec![
        ("NPS", Metric::Nps, Scale::Points, kpi::Filter::default()),
        ("CSAT", Metric::Csat, Scale::Share, kpi::Filter::default()),
        ("CES", Metric::Ces, Scale::Mean, kpi::Filter::default()),
        ("Churn", Metric::Churn, Scale::Share, kpi::Filter::default()),
        ("Retention", Metric::Retention, Scale::Share, kpi::Filter::default()),
        ("Reactivation", Metric::Reactivation, Scale::Share, kpi::Filter::default()),
        ("Closed-loop SLA", Metric::ClosedLoopSla, Scale::Share, kpi::Filter::default()),
    ];
    for (kind, id) in &loaded.maps {
        let filter = kpi::Filter { map_id: id.clone(), ..Default::default() };
        rows.push((kind.name(), Metric::Conversion, Scale::Share, filter));
    }
    let mut kpis = Vec::new();
    for (name, metric, scale, filter) in rows {
        let mut cells = Vec::new();
        for p in &periods {
            let request = kpi::GetKpiRequest {
                metric: metric as i32,
                start_day: p.start_day.clone(),
                end_day: p.end_day.clone(),
                filter: Some(filter.clone()),
                compare_previous: false,
                acquisition_cost: None,
            };
            let answer = api.kpi.clone().get_kpi(api.req(request)).await.with_context(|| format!("GetKpi {name}"))?;
            let v = answer.into_inner().kpi.context("GetKpi returned no value")?;
            cells.push(Cell {
                value: v.value,
                n: v.n,
                low: v.low,
                high: v.high,
                target: v.target.map(|t| t.value),
                status: status(v.target_status),
            });
        }
        let name = if metric == Metric::Conversion { format!("Conversion: {name}") } else { name.to_owned() };
        kpis.push(KpiRow { name, scale, cells });
    }
    let trend_start = today.with_day(1).unwrap_or(today).checked_sub_months(Months::new(24)).unwrap_or(today);
    let mut trends = Vec::new();
    for (name, metric, scale) in
        [("NPS by month", Metric::Nps, Scale::Points), ("CSAT by month", Metric::Csat, Scale::Share)]
    {
        let request = kpi::GetKpiTrendRequest {
            metric: metric as i32,
            start_day: day(trend_start),
            end_day: day(today),
            filter: Some(kpi::Filter::default()),
            granularity: kpi::Granularity::Month as i32,
            acquisition_cost: None,
        };
        let answer = api.kpi.clone().get_kpi_trend(api.req(request)).await.context("GetKpiTrend")?.into_inner();
        let points = answer.points.into_iter().map(|p| (p.start_day, p.value, p.n)).collect();
        trends.push(Trend { name: name.into(), scale, points });
    }
    let last30 = &periods[2];
    let request = survey::GetCaseReportRequest {
        start_day: last30.start_day.clone(),
        end_day: last30.end_day.clone(),
        survey_id: String::new(),
    };
    let report = api.survey.clone().get_case_report(api.req(request)).await.context("GetCaseReport")?.into_inner();
    let cases = CaseSummary {
        opened: report.opened,
        acted_within_sla: report.acted_within_sla,
        resolved: report.resolved,
        overdue: report.overdue,
    };
    Ok(Dashboard { tenant: tenant.into(), periods, kpis, trends, cases: Some(cases) })
}

fn status(code: i32) -> Status {
    match kpi::TargetStatus::try_from(code).unwrap_or_default() {
        kpi::TargetStatus::Unspecified => Status::NoTarget,
        kpi::TargetStatus::Met => Status::Met,
        kpi::TargetStatus::AtRisk => Status::AtRisk,
        kpi::TargetStatus::Missed => Status::Missed,
        kpi::TargetStatus::NoData => Status::NoData,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_the_last_month_the_twelve_before_and_thirty_days() {
        // Today 2026-03-15: last month February 2026 (28 days, not a leap
        // year); twelve months 2025-03-01 .. 2026-02-28; 30 days back from
        // the 15th with it: 2026-02-14 .. 2026-03-15.
        let p = periods(NaiveDate::from_ymd_opt(2026, 3, 15).unwrap_or_default());
        let spans: Vec<(&str, &str, &str)> =
            p.iter().map(|p| (p.label.as_str(), p.start_day.as_str(), p.end_day.as_str())).collect();
        assert_eq!(
            spans,
            [
                ("Feb 2026", "2026-02-01", "2026-02-28"),
                ("12 months", "2025-03-01", "2026-02-28"),
                ("30 days", "2026-02-14", "2026-03-15")
            ]
        );
    }
}
