//! The dashboard as plain data, worked out once from a `GetDashboard`
//! answer, with the number formats both renderers (terminal, HTML) share.

use cx_proto::kpi::v1::{self as kpi, Metric, TargetStatus};

/// Everything the dashboard shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dashboard {
    pub tenant: String,
    pub start_day: String,
    pub end_day: String,
    /// RFC 3339, empty when the answer has none.
    pub computed: String,
    pub missing_services: Vec<String>,
    pub headline: Vec<Kpi>,
    pub trends: Vec<Trend>,
    pub maps: Vec<MapView>,
    pub maps_truncated: bool,
    pub cases: Option<Cases>,
    pub distributions: Option<Distributions>,
    pub experiments: Vec<Experiment>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// −100..100, shown as a signed whole number.
    Points,
    /// 0..1, shown as a percentage.
    Share,
    /// A mean or an amount, shown with two decimals.
    Mean,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    NoTarget,
    Met,
    AtRisk,
    Missed,
    NoData,
}

/// A value with its 95 % interval and sample size.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Figure {
    pub value: f64,
    pub low: f64,
    pub high: f64,
    pub n: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Kpi {
    pub name: String,
    pub scale: Scale,
    pub now: Figure,
    pub target: Option<f64>,
    pub status: Status,
    pub change: Option<Change>,
}

/// From the days just before; `difference` with its interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    pub difference: Figure,
    pub p_value: f64,
    pub significant: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Trend {
    pub name: String,
    pub scale: Scale,
    /// (first day, figure), oldest first; n = 0 is a gap.
    pub points: Vec<(String, Figure)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MapView {
    pub name: String,
    pub conversion: Kpi,
    pub plan: Vec<kpi::PlanStep>,
    pub funnel: Vec<kpi::FunnelStage>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cases {
    pub open: i64,
    pub overdue: i64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Distributions {
    pub as_of_day: String,
    pub lifecycle: Vec<kpi::CustomerShare>,
    pub lifecycle_n: i64,
    pub categories: Vec<kpi::CustomerShare>,
    pub bands: Vec<kpi::CustomerShare>,
    pub with_index: i64,
    pub without_index: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    pub name: String,
    pub conversion: String,
    pub planned: i64,
    pub alpha: f64,
    pub peeking: bool,
    pub variants: Vec<kpi::VariantResult>,
    pub comparisons: Vec<kpi::VariantComparison>,
}

impl Dashboard {
    pub fn from_response(tenant: &str, r: kpi::GetDashboardResponse) -> Self {
        let computed = r.compute_time.map(|t| {
            chrono::DateTime::from_timestamp(t.seconds, 0)
                .map_or_else(String::new, |d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        });
        let experiments = r
            .experiments
            .into_iter()
            .map(|e| {
                let def = e.experiment.unwrap_or_default();
                Experiment {
                    name: def.name,
                    conversion: def.conversion,
                    planned: def.planned_sample_size,
                    alpha: if def.alpha > 0.0 { def.alpha } else { 0.05 },
                    peeking: e.peeking,
                    variants: e.variants,
                    comparisons: e.comparisons,
                }
            })
            .collect();
        Self {
            tenant: tenant.to_owned(),
            start_day: r.start_day,
            end_day: r.end_day,
            computed: computed.unwrap_or_default(),
            missing_services: r.missing_services,
            headline: r.headline.into_iter().filter_map(headline).collect(),
            trends: r.trends.into_iter().map(trend).collect(),
            maps: r
                .maps
                .into_iter()
                .map(|m| MapView {
                    conversion: kpi_of(format!("Conversion: {}", m.name), m.conversion.unwrap_or_default(), None),
                    name: m.name,
                    plan: m.plan,
                    funnel: m.funnel,
                })
                .collect(),
            maps_truncated: r.maps_truncated,
            cases: r.cases.map(|c| Cases { open: c.open, overdue: c.overdue }),
            distributions: r.distributions.map(|d| Distributions {
                as_of_day: d.as_of_day,
                lifecycle: d.lifecycle,
                lifecycle_n: d.lifecycle_n,
                categories: d.categories,
                bands: d.index_bands,
                with_index: d.with_index,
                without_index: d.without_index,
            }),
            experiments,
        }
    }
}

/// The name and scale of a metric, CLV's with its currency.
pub fn describe(metric: i32, currency: &str) -> (String, Scale) {
    let (name, scale) = match Metric::try_from(metric).unwrap_or(Metric::Unspecified) {
        Metric::Nps => ("NPS", Scale::Points),
        Metric::Csat => ("CSAT", Scale::Share),
        Metric::Ces => ("CES", Scale::Mean),
        Metric::Churn => ("Churn", Scale::Share),
        Metric::Retention => ("Retention", Scale::Share),
        Metric::Reactivation => ("Reactivation", Scale::Share),
        Metric::ClosedLoopSla => ("Closed-loop SLA", Scale::Share),
        Metric::Conversion => ("Conversion", Scale::Share),
        Metric::Clv => ("CLV", Scale::Mean),
        Metric::ResolutionTime => ("Time to resolution (h)", Scale::Mean),
        Metric::Unspecified => ("Unknown", Scale::Mean),
    };
    if currency.is_empty() { (name.to_owned(), scale) } else { (format!("{name} ({currency})"), scale) }
}

fn headline(r: kpi::GetKpiResponse) -> Option<Kpi> {
    let v = r.kpi?;
    let (name, _) = describe(v.metric, &v.currency);
    // A change with no data on either side says nothing: shown as "-".
    let compared = v.n > 0 && r.previous.as_ref().is_some_and(|p| p.n > 0);
    let change = r.change.filter(|_| compared).map(|c| Change {
        difference: Figure { value: c.difference, low: c.low, high: c.high, n: 0 },
        p_value: c.p_value,
        significant: c.significant,
    });
    Some(kpi_of(name, v, change))
}

fn kpi_of(name: String, v: kpi::KpiValue, change: Option<Change>) -> Kpi {
    let (_, scale) = describe(v.metric, &v.currency);
    Kpi {
        name,
        scale,
        now: Figure { value: v.value, low: v.low, high: v.high, n: v.n },
        target: v.target.map(|t| t.value),
        status: status(v.target_status),
        change,
    }
}

fn trend(t: kpi::GetKpiTrendResponse) -> Trend {
    let (name, scale) = describe(t.metric, "");
    let points = t
        .points
        .into_iter()
        .map(|p| (p.start_day, Figure { value: p.value, low: p.low, high: p.high, n: p.n }))
        .collect();
    Trend { name, scale, points }
}

fn status(code: i32) -> Status {
    match TargetStatus::try_from(code) {
        Ok(TargetStatus::Met) => Status::Met,
        Ok(TargetStatus::AtRisk) => Status::AtRisk,
        Ok(TargetStatus::Missed) => Status::Missed,
        Ok(TargetStatus::NoData) => Status::NoData,
        _ => Status::NoTarget,
    }
}

pub fn status_text(s: Status) -> &'static str {
    match s {
        Status::NoTarget => "",
        Status::Met => "MET",
        Status::AtRisk => "AT RISK",
        Status::Missed => "MISSED",
        Status::NoData => "NO DATA",
    }
}

pub fn number(scale: Scale, v: f64) -> String {
    match scale {
        Scale::Points => format!("{v:+.0}"),
        Scale::Share => format!("{:.1} %", v * 100.0),
        Scale::Mean => format!("{v:.2}"),
    }
}

/// "81.2 % [73.0 %, 87.0 %]", or "-" without data.
pub fn with_interval(scale: Scale, f: &Figure) -> String {
    if f.n == 0 {
        return "-".to_owned();
    }
    format!("{} [{}, {}]", number(scale, f.value), number(scale, f.low), number(scale, f.high))
}

/// A difference: signed, in points for shares ("+2.5 pp").
pub fn difference(scale: Scale, v: f64) -> String {
    match scale {
        Scale::Points => format!("{v:+.0}"),
        Scale::Share => format!("{:+.1} pp", v * 100.0),
        Scale::Mean => format!("{v:+.2}"),
    }
}

/// "+2.5 pp [-1.0, +6.0] p 0.160", with "*" when significant.
pub fn change_text(scale: Scale, c: &Change) -> String {
    let d = &c.difference;
    let bound = |v: f64| difference(scale, v).trim_end_matches(" pp").to_owned();
    let mark = if c.significant { " *" } else { "" };
    format!("{} [{}, {}] p {}{mark}", difference(scale, d.value), bound(d.low), bound(d.high), p_text(c.p_value))
}

pub fn p_text(p: f64) -> String {
    if p < 0.001 { "< 0.001".to_owned() } else { format!("{p:.3}") }
}

/// "moment of truth" steps are marked, as in DOMAIN §5.5.
pub fn step_name(s: &kpi::PlanStep) -> String {
    if s.moment_of_truth { format!("{} (moment of truth)", s.name) } else { s.name.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_intervals_and_changes() {
        let f = Figure { value: 0.8123, low: 0.73, high: 0.87, n: 120 };
        assert_eq!(with_interval(Scale::Share, &f), "81.2 % [73.0 %, 87.0 %]");
        assert_eq!(
            with_interval(Scale::Points, &Figure { value: 23.4, low: -10.0, high: 56.0, n: 9 }),
            "+23 [-10, +56]"
        );
        assert_eq!(with_interval(Scale::Mean, &Figure::default()), "-");
        // 0.025 → +2.5 pp; bounds −0.01 and 0.06 → −1.0, +6.0; p 0.16.
        let c = Change {
            difference: Figure { value: 0.025, low: -0.01, high: 0.06, n: 0 },
            p_value: 0.16,
            significant: false,
        };
        assert_eq!(change_text(Scale::Share, &c), "+2.5 pp [-1.0, +6.0] p 0.160");
        let c = Change {
            difference: Figure { value: 12.0, low: 4.0, high: 20.0, n: 0 },
            p_value: 0.0004,
            significant: true,
        };
        assert_eq!(change_text(Scale::Points, &c), "+12 [+4, +20] p < 0.001 *");
    }

    #[test]
    fn a_response_becomes_the_view() {
        let v = kpi::KpiValue {
            metric: Metric::Clv as i32,
            value: 120.5,
            n: 40,
            currency: "EUR".into(),
            target_status: TargetStatus::Missed as i32,
            ..Default::default()
        };
        let r = kpi::GetDashboardResponse {
            headline: vec![kpi::GetKpiResponse {
                kpi: Some(v),
                previous: Some(kpi::KpiValue::default()),
                change: Some(kpi::Change::default()),
            }],
            cases: Some(kpi::OpenCases { open: 5, overdue: 2, next_due_time: None }),
            compute_time: Some(prost_types::Timestamp { seconds: 86_400, nanos: 0 }),
            ..Default::default()
        };
        let d = Dashboard::from_response("demo", r);
        assert_eq!(d.headline[0].name, "CLV (EUR)");
        assert_eq!(d.headline[0].status, Status::Missed);
        // The days before had no purchase (n 0): no change shown.
        assert_eq!(d.headline[0].change, None);
        assert_eq!(d.cases, Some(Cases { open: 5, overdue: 2 }));
        // One day after the epoch.
        assert_eq!(d.computed, "1970-01-02 00:00:00 UTC");
    }
}
