//! One KPI over whole days, or its trend: checked here, counted by its
//! owner, worked out and set against its target.

use chrono::{Days, NaiveDate};
use cx_proto::common::v1::Money;
use cx_proto::kpi::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::auth::{Role, tenant};
use cx_runtime::days::{self, MAX_PERIODS, written};
use cx_runtime::error::{ServiceError, Violations};
use cx_runtime::input::parse_money;
use cx_runtime::stats::Change;
use tonic::{Request, Response};

use super::{KpiApi, Reply};
use crate::clv::Cost;
use crate::filter::Filter;
use crate::metric::{Figure, Metric};
use crate::store::targets;
use crate::tally::{Tally, change_test};
use crate::trend::{Granularity, Point, groups, points};

pub(crate) type Range = (NaiveDate, NaiveDate);

/// What a request asks: its metric, days, filter and (CLV only) acquisition cost.
struct Asked {
    metric: Metric,
    range: Range,
    filter: Filter,
    cost: Option<Cost>,
}

/// A request's metric, days, filter and acquisition cost, every violation
/// at once (with those `more` finds in the rest of the request).
fn parse(
    metric: i32,
    (start, end): (&str, &str),
    (filter, cost): (Option<&pb::Filter>, Option<&Money>),
    more: impl FnOnce(&mut Violations),
) -> Result<Asked, Violations> {
    let mut out = Violations::new();
    let metric = out.check(Metric::parse(metric, "metric"));
    let range = out.check(days::range(start, end));
    let filter = Filter::check(&mut out, metric, filter, "filter");
    let cost = match (cost, metric) {
        (None, _) => None,
        (Some(money), Some(Metric::Clv)) => out.check(parse_money(money, "acquisition_cost")),
        (Some(_), _) => {
            out.add("acquisition_cost", "is for CLV only");
            None
        }
    };
    more(&mut out);
    out.finish()?;
    match (metric, range, filter) {
        (Some(metric), Some(range), Some(filter)) => Ok(Asked { metric, range, filter, cost }),
        _ => Err(Violations::new()),
    }
}

/// The same number of days just before `range`.
pub(crate) fn previous((first, last): Range) -> Option<Range> {
    let length = u64::try_from((last - first).num_days()).ok()?.checked_add(1)?;
    let end = first.pred_opt()?;
    Some((first.checked_sub_days(Days::new(length))?, end))
}

pub(crate) fn value(metric: Metric, (first, last): Range, filter: &Filter, figure: Figure) -> pb::KpiValue {
    pb::KpiValue {
        metric: metric.proto().into(),
        start_day: written(first),
        end_day: written(last),
        filter: Some(filter.proto()),
        value: figure.value,
        n: figure.n,
        low: figure.low,
        high: figure.high,
        interval_method: metric.interval_method().to_owned(),
        target: None,
        target_status: pb::TargetStatus::Unspecified.into(),
        currency: String::new(),
    }
}

fn change(metric: Metric, c: Change) -> pb::Change {
    pb::Change {
        difference: c.difference,
        low: c.ci_low,
        high: c.ci_high,
        p_value: c.p_value,
        significant: c.significant,
        test: change_test(metric).to_owned(),
    }
}

impl KpiApi {
    /// The previous period's counts, when asked.
    async fn before(
        &self,
        t: &TenantId,
        metric: Metric,
        range: Range,
        (filter, cost): (&Filter, Option<&Cost>),
        asked: bool,
    ) -> Result<Option<(Range, Tally)>, ServiceError> {
        let Some(before) = previous(range).filter(|_| asked) else { return Ok(None) };
        Ok(Some((before, self.owners.tally(t, metric, before, filter, cost).await?)))
    }
}

pub(super) async fn get_kpi(api: &KpiApi, request: Request<pb::GetKpiRequest>) -> Reply<pb::GetKpiResponse> {
    let t = tenant(&request, Role::Reader)?;
    let r = request.get_ref();
    let asked = (r.filter.as_ref(), r.acquisition_cost.as_ref());
    let Asked { metric, range, filter, cost } = parse(r.metric, (&r.start_day, &r.end_day), asked, |_| ())?;
    let cost = api.cost(&t, metric, cost).await?;
    let key = filter.key();
    let (now, before, target) = tokio::try_join!(
        api.owners.tally(&t, metric, range, &filter, cost.as_ref()),
        api.before(&t, metric, range, (&filter, cost.as_ref()), r.compare_previous),
        targets::find(&api.db, &t, metric, &key)
    )?;
    Ok(Response::new(answer(metric, range, &filter, now, before, target)))
}

/// A KPI's answer: `now`'s figure over `range` against `target`, and the
/// change from `before` when asked.
pub(crate) fn answer(
    metric: Metric,
    range: Range,
    filter: &Filter,
    now: Tally,
    before: Option<(Range, Tally)>,
    target: Option<pb::Target>,
) -> pb::GetKpiResponse {
    let figure = now.figure();
    let mut kpi = value(metric, range, filter, figure);
    kpi.currency = now.currency();
    if let Some(target) = target {
        kpi.target_status = figure.against(metric, target.value).into();
        kpi.target = Some(target);
    }
    let (previous, change) = match before {
        Some((days, counts)) => {
            let previous = pb::KpiValue { currency: counts.currency(), ..value(metric, days, filter, counts.figure()) };
            (Some(previous), Some(self::change(metric, now.change_from(&counts))))
        }
        None => (None, None),
    };
    pb::GetKpiResponse { kpi: Some(kpi), previous, change }
}

/// A trend's answer from its points.
pub(crate) fn trend_answer(
    metric: Metric,
    granularity: Granularity,
    filter: &Filter,
    counted: Vec<Point>,
    target: Option<pb::Target>,
) -> pb::GetKpiTrendResponse {
    let points = counted
        .into_iter()
        .map(|p| {
            let f = p.tally.figure();
            pb::TrendPoint {
                start_day: written(p.first),
                end_day: written(p.last),
                value: f.value,
                n: f.n,
                low: f.low,
                high: f.high,
            }
        })
        .collect();
    pb::GetKpiTrendResponse {
        metric: metric.proto().into(),
        granularity: granularity.proto().into(),
        filter: Some(filter.proto()),
        points,
        target,
    }
}

/// A trend's points: a score's from the owner's daily counts, a per-period
/// metric's each counted as its own period (at most `MAX_PERIODS`).
async fn trend_points(
    api: &KpiApi,
    t: &TenantId,
    metric: Metric,
    granularity: Granularity,
    range: Range,
    (filter, cost): (&Filter, Option<&Cost>),
) -> Result<Vec<Point>, ServiceError> {
    if !metric.per_period() {
        let daily = api.owners.daily(t, metric, range, filter).await?;
        return Ok(points(metric, granularity, range, &daily));
    }
    let periods = groups(granularity, range);
    if periods.len() > MAX_PERIODS {
        let described = format!(
            "gives {} points; a trend of this metric has at most {MAX_PERIODS}: take a longer one",
            periods.len()
        );
        return Err(ServiceError::invalid("granularity", described));
    }
    let counted = api.owners.periods(t, metric, &periods, filter, cost).await?;
    Ok(periods.into_iter().zip(counted).map(|((first, last), tally)| Point { first, last, tally }).collect())
}

pub(super) async fn get_kpi_trend(
    api: &KpiApi,
    request: Request<pb::GetKpiTrendRequest>,
) -> Reply<pb::GetKpiTrendResponse> {
    let t = tenant(&request, Role::Reader)?;
    let r = request.get_ref();
    let mut granularity = None;
    let asked = (r.filter.as_ref(), r.acquisition_cost.as_ref());
    let Asked { metric, range, filter, cost } = parse(r.metric, (&r.start_day, &r.end_day), asked, |out| {
        granularity = out.check(Granularity::parse(r.granularity, "granularity"));
    })?;
    let granularity = granularity.ok_or_else(Violations::new)?;
    let cost = api.cost(&t, metric, cost).await?;
    let key = filter.key();
    let (counted, target) = tokio::try_join!(
        trend_points(api, &t, metric, granularity, range, (&filter, cost.as_ref())),
        targets::find(&api.db, &t, metric, &key)
    )?;
    Ok(Response::new(trend_answer(metric, granularity, &filter, counted, target)))
}

#[cfg(test)]
mod tests {
    use cx_runtime::error::FieldViolation;

    use super::*;

    fn date(raw: &str) -> NaiveDate {
        NaiveDate::parse_from_str(raw, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn every_bad_field_is_named_at_once() {
        let filter = pb::Filter { channels: vec![13], ..Default::default() };
        let cost = Money { currency_code: "eur".into(), units: 40, nanos: 0 };
        let got =
            parse(0, ("2026-03-31", "2026-03-01"), (Some(&filter), Some(&cost)), |out| out.add("granularity", "x"));
        let expected = [
            (
                "metric",
                "must be NPS, CSAT, CES, CHURN, RETENTION, REACTIVATION, CLOSED_LOOP_SLA, CONVERSION, CLV or RESOLUTION_TIME",
            ),
            ("end_day", "must not be before start_day"),
            ("filter.channels[0]", "13 is not a known channel"),
            ("acquisition_cost", "is for CLV only"),
            ("granularity", "x"),
        ];
        assert_eq!(got.err().map(Vec::from).unwrap_or_default(), expected.map(|(f, d)| FieldViolation::new(f, d)));
    }

    #[test]
    fn the_previous_period_is_as_long_and_ends_the_day_before() {
        // March (31 days) follows 29 January to 28 February 2026.
        assert_eq!(previous((date("2026-03-01"), date("2026-03-31"))), Some((date("2026-01-29"), date("2026-02-28"))));
        assert_eq!(previous((date("2026-03-02"), date("2026-03-02"))), Some((date("2026-03-01"), date("2026-03-01"))));
    }
}
