//! The dashboard's figures: its days, what each owner is asked (once each,
//! all at once), and the answer combined from their counts
//! (docs/DECISIONS.md, "Dashboard").

use std::collections::HashMap;
use std::future::Future;

use chrono::{Days, NaiveDate};
use cx_proto::journey::v1 as journey;
use cx_proto::kpi::v1 as pb;
use cx_runtime::days::{self, written};
use cx_runtime::error::{FieldViolation, ServiceError, Violations};

use crate::clv::Cost;
use crate::filter::Filter;
use crate::metric::Metric;
use crate::owners::{JOURNEY, Owners, PROFILE, SURVEY, customers, of_cases, tally};
use crate::tally::Tally;
use crate::trend::{Granularity, points};

pub type Range = (NaiveDate, NaiveDate);

/// Headline KPIs counted from survey's score aggregates.
const SCORES: [Metric; 3] = [Metric::Nps, Metric::Csat, Metric::Ces];
/// Those counted from profile's lifecycle counts.
const LIFECYCLE: [Metric; 3] = [Metric::Churn, Metric::Retention, Metric::Reactivation];
/// The headline KPIs, in the order the dashboard shows them.
pub const HEADLINE: [Metric; 9] = [
    Metric::Nps,
    Metric::Csat,
    Metric::Ces,
    Metric::Churn,
    Metric::Retention,
    Metric::Reactivation,
    Metric::Clv,
    Metric::ClosedLoop,
    Metric::ResolutionTime,
];
/// Those counted from survey's counts of the cases opened.
const CASES: [Metric; 2] = [Metric::ClosedLoop, Metric::ResolutionTime];

/// The days a dashboard covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub range: Range,
    /// As many days just before.
    pub previous: Range,
    pub granularity: Granularity,
    /// The trends' days, ending with `range`.
    pub trend: Range,
}

impl Span {
    /// The request's days, or the 30 days ending the day before `today`.
    pub fn parse(request: &pb::GetDashboardRequest, today: NaiveDate) -> Result<Self, Violations> {
        let mut out = Violations::new();
        let range = match (request.start_day.as_str(), request.end_day.as_str()) {
            ("", "") => today.pred_opt().and_then(|end| Some((end.checked_sub_days(Days::new(29))?, end))),
            (start, end) => out.check(days::range(start, end)),
        };
        let granularity = match request.trend_granularity {
            0 => Some(Granularity::Month),
            code => out.check(Granularity::parse(code, "trend_granularity")),
        };
        out.finish()?;
        let (Some(range), Some(granularity)) = (range, granularity) else {
            return Err(FieldViolation::new("end_day", "must be a day after 0001-01-30").into());
        };
        let previous = crate::api::previous(range)
            .ok_or_else(|| FieldViolation::new("start_day", "has no days before it to compare with"))?;
        Ok(Self { range, previous, granularity, trend: granularity.twelve_up_to(range.1) })
    }
}

/// `ask`'s answer when `owner` runs in this deployment, nothing otherwise.
async fn if_runs<T>(
    missing: &[&str],
    owner: &str,
    ask: impl Future<Output = Result<T, ServiceError>>,
) -> Result<Option<T>, ServiceError> {
    if missing.contains(&owner) { Ok(None) } else { ask.await.map(Some) }
}

/// The tenant's targets by metric and filter key.
pub type Targets = HashMap<(i32, String), pb::Target>;

/// What the owners counted for a dashboard.
struct Counted {
    /// Survey's aggregates of the days and of the days before.
    scores: Option<(cx_proto::survey::v1::ScoreGroup, cx_proto::survey::v1::ScoreGroup)>,
    /// Survey's counts of the cases opened in the days before, then in the days.
    cases: Option<Vec<cx_proto::survey::v1::CaseCounts>>,
    /// Profile's lifecycle counts of the days before, then of the days, and
    /// CLV's counts of both (one ask of profile).
    lifecycle: Option<(Vec<cx_proto::profile::v1::LifecycleCounts>, Vec<Tally>)>,
    /// Survey's aggregates of each day of the trends.
    daily: Option<Vec<(NaiveDate, cx_proto::survey::v1::ScoreGroup)>>,
    maps: Option<journey::SummarizeMapsResponse>,
    open: Option<cx_proto::survey::v1::CountOpenCasesResponse>,
    distributions: Option<cx_proto::profile::v1::AggregateDistributionsResponse>,
}

async fn count(
    owners: &Owners,
    t: &cx_runtime::TenantId,
    span: &Span,
    cost: Option<&Cost>,
) -> Result<Counted, ServiceError> {
    let missing = owners.missing();
    let none = Filter::default();
    let both = [span.previous, span.range];
    let (scores, cases, lifecycle, daily, maps, open, distributions) = tokio::try_join!(
        if_runs(&missing, SURVEY, async {
            tokio::try_join!(owners.score_group(t, span.range, &none), owners.score_group(t, span.previous, &none))
        }),
        if_runs(&missing, SURVEY, owners.cases(t, &both, &none)),
        if_runs(&missing, PROFILE, owners.lifecycle_and_clv(t, &both, &none, cost)),
        if_runs(&missing, SURVEY, owners.daily_groups(t, span.trend, &none)),
        if_runs(&missing, JOURNEY, owners.maps(t, span.range)),
        if_runs(&missing, SURVEY, owners.open_cases(t)),
        if_runs(&missing, PROFILE, owners.distributions(t, written(span.range.1))),
    )?;
    Ok(Counted { scores, cases, lifecycle, daily, maps, open, distributions })
}

/// The dashboard of `span` from the owners' counts, the tenant's `targets`,
/// its running `experiments` and CLV's acquisition `cost`.
pub async fn compute(
    owners: &Owners,
    t: &cx_runtime::TenantId,
    span: &Span,
    targets: &Targets,
    experiments: Vec<pb::GetExperimentResultsResponse>,
    cost: Option<&Cost>,
) -> Result<pb::GetDashboardResponse, ServiceError> {
    let counted = count(owners, t, span, cost).await?;
    let none = Filter::default();
    let target = |metric: Metric, filter: &Filter| targets.get(&(metric.proto().into(), filter.key())).cloned();
    let headline_of = |metric: Metric, now: Tally, before: Tally| {
        let before = Some((span.previous, before));
        crate::api::answer(metric, span.range, &none, now, before, target(metric, &none))
    };
    let mut headline = Vec::new();
    if let Some((now, before)) = &counted.scores {
        headline.extend(SCORES.map(|m| headline_of(m, tally(m, now), tally(m, before))));
    }
    if let Some((periods, clv)) = &counted.lifecycle
        && let ([before, now], [clv_before, clv_now]) = (periods.as_slice(), clv.as_slice())
    {
        headline.extend(LIFECYCLE.map(|m| headline_of(m, customers(m, now), customers(m, before))));
        headline.push(headline_of(Metric::Clv, *clv_now, *clv_before));
    }
    if let Some([before, now]) = counted.cases.as_deref() {
        headline.extend(CASES.map(|m| headline_of(m, of_cases(m, now), of_cases(m, before))));
    }
    let trends = match &counted.daily {
        Some(daily) => SCORES
            .map(|m| {
                let days: Vec<_> = daily.iter().map(|(day, g)| (*day, tally(m, g))).collect();
                let counted = points(m, span.granularity, span.trend, &days);
                crate::api::trend_answer(m, span.granularity, &none, counted, target(m, &none))
            })
            .to_vec(),
        None => Vec::new(),
    };
    let (maps, maps_truncated) = match counted.maps {
        Some(summaries) => {
            let maps = summaries.maps.into_iter().map(|m| map_summary(m, span.range, &target)).collect();
            (maps, summaries.truncated)
        }
        None => (Vec::new(), false),
    };
    let cases =
        counted.open.map(|o| pb::OpenCases { open: o.open, overdue: o.overdue, next_due_time: o.next_due_time });
    Ok(pb::GetDashboardResponse {
        start_day: written(span.range.0),
        end_day: written(span.range.1),
        headline,
        trends,
        maps,
        maps_truncated,
        cases,
        missing_services: owners.missing().into_iter().map(str::to_owned).collect(),
        compute_time: Some(cx_proto::timestamp(chrono::Utc::now())),
        distributions: counted.distributions.as_ref().map(crate::distribution::distributions),
        experiments,
    })
}

/// A map's summary: its conversion as METRIC_CONVERSION of its filter, with
/// its target; its plan and funnel as journey counted them.
fn map_summary(
    m: journey::MapSummary,
    range: Range,
    target: &impl Fn(Metric, &Filter) -> Option<pb::Target>,
) -> pb::MapSummary {
    let filter = Filter { map: uuid::Uuid::parse_str(&m.map_id).ok(), ..Filter::default() };
    let metric = Metric::Conversion;
    let tally = Tally::Counted { metric, k: m.conversions, n: m.instances };
    let figure = tally.figure();
    let mut conversion = crate::api::value(metric, range, &filter, figure);
    if let Some(target) = target(metric, &filter) {
        conversion.target_status = figure.against(metric, target.value).into();
        conversion.target = Some(target);
    }
    let plan = m
        .plan
        .into_iter()
        .map(|s| pb::PlanStep {
            step_key: s.step_key,
            name: s.name,
            moment_of_truth: s.moment_of_truth,
            scored: s.scored,
            mean_score: s.mean_score,
            target_score: s.target_score,
            gap: s.gap,
            priority: s.priority,
        })
        .collect();
    let funnel = m
        .funnel
        .into_iter()
        .map(|f| pb::FunnelStage {
            step_key: f.step_key,
            instances: f.instances,
            rate_from_previous: f.rate_from_previous,
            drop_off: f.drop_off,
        })
        .collect();
    pb::MapSummary { map_id: m.map_id, name: m.name, conversion: Some(conversion), plan, funnel }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(raw: &str) -> NaiveDate {
        NaiveDate::parse_from_str(raw, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_default_days_are_the_thirty_before_today() {
        let span = Span::parse(&pb::GetDashboardRequest::default(), day("2026-03-31")).unwrap();
        // 1 to 30 March; before them 30 January to 28 February (30 days).
        assert_eq!(span.range, (day("2026-03-01"), day("2026-03-30")));
        assert_eq!(span.previous, (day("2026-01-30"), day("2026-02-28")));
        assert_eq!(span.granularity, Granularity::Month);
        assert_eq!(span.trend, (day("2025-04-01"), day("2026-03-30")));
    }

    #[test]
    fn bad_days_and_granularity_are_named_together() {
        let request =
            pb::GetDashboardRequest { start_day: "2026-03-01".into(), end_day: String::new(), trend_granularity: 9 };
        let got = Span::parse(&request, day("2026-03-31")).err().map(Vec::from).unwrap_or_default();
        assert_eq!(
            got,
            [
                FieldViolation::new("end_day", "is required"),
                FieldViolation::new("trend_granularity", "must be DAY, WEEK or MONTH")
            ]
        );
    }
}
