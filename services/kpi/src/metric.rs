//! What each KPI measures: its scale, how its 95 % interval is computed,
//! and which targets it takes (docs/DOMAIN.md §9).

use cx_proto::kpi::v1 as pb;
use cx_runtime::error::FieldViolation;
use cx_runtime::stats::target::{TargetStatus, target_status};

/// What a metric field may name.
const KNOWN: &str =
    "must be NPS, CSAT, CES, CHURN, RETENTION, REACTIVATION, CLOSED_LOOP_SLA, CONVERSION, CLV or RESOLUTION_TIME";

/// A KPI the service reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Net Promoter Score of NPS answers, −100 to 100 (§7.1).
    Nps,
    /// Share of CSAT answers of 4 or 5, 0 to 1 (§7.2).
    Csat,
    /// Mean CES score, 1 to 7 (§7.3).
    Ces,
    /// Share of the customers at the start lost at the end (§9.2).
    Churn,
    /// Share of the customers at the start not lost at the end (§9.3).
    Retention,
    /// Share of the customers lost at the start who purchased (§9.7).
    Reactivation,
    /// Share of the cases opened acted on within their SLA (§7.10).
    ClosedLoop,
    /// Share of a map's instances that reached its conversion step (§9.5).
    Conversion,
    /// Customer lifetime value in units of one currency (§9.4).
    Clv,
    /// Median hours from opening to resolution of the cases opened (§9.10).
    ResolutionTime,
}

impl Metric {
    /// The metric named by the proto enum in `field`.
    pub fn parse(code: i32, field: &str) -> Result<Self, FieldViolation> {
        match pb::Metric::try_from(code) {
            Ok(pb::Metric::Nps) => Ok(Self::Nps),
            Ok(pb::Metric::Csat) => Ok(Self::Csat),
            Ok(pb::Metric::Ces) => Ok(Self::Ces),
            Ok(pb::Metric::Churn) => Ok(Self::Churn),
            Ok(pb::Metric::Retention) => Ok(Self::Retention),
            Ok(pb::Metric::Reactivation) => Ok(Self::Reactivation),
            Ok(pb::Metric::ClosedLoopSla) => Ok(Self::ClosedLoop),
            Ok(pb::Metric::Conversion) => Ok(Self::Conversion),
            Ok(pb::Metric::Clv) => Ok(Self::Clv),
            Ok(pb::Metric::ResolutionTime) => Ok(Self::ResolutionTime),
            Ok(pb::Metric::Unspecified) | Err(_) => Err(FieldViolation::new(field, KNOWN)),
        }
    }

    pub fn proto(self) -> pb::Metric {
        match self {
            Self::Nps => pb::Metric::Nps,
            Self::Csat => pb::Metric::Csat,
            Self::Ces => pb::Metric::Ces,
            Self::Churn => pb::Metric::Churn,
            Self::Retention => pb::Metric::Retention,
            Self::Reactivation => pb::Metric::Reactivation,
            Self::ClosedLoop => pb::Metric::ClosedLoopSla,
            Self::Conversion => pb::Metric::Conversion,
            Self::Clv => pb::Metric::Clv,
            Self::ResolutionTime => pb::Metric::ResolutionTime,
        }
    }

    /// Counted by profile from purchase days (every customer, no filter),
    /// not by survey from answers.
    pub fn of_lifecycle(self) -> bool {
        matches!(self, Self::Churn | Self::Retention | Self::Reactivation | Self::Clv)
    }

    /// Counted per period by its owner (a customer or case counts once in a
    /// period, so days do not add up): trends ask for each point.
    pub fn per_period(self) -> bool {
        self.of_lifecycle() || matches!(self, Self::ClosedLoop | Self::ResolutionTime | Self::Conversion)
    }

    /// Whether a higher value is better (against a target): all but churn
    /// and the time to resolution.
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Self::Churn | Self::ResolutionTime)
    }

    /// The follow-up cases' metrics, counted by survey's `AggregateCases`:
    /// their filter takes at most one survey.
    pub fn of_cases(self) -> bool {
        matches!(self, Self::ClosedLoop | Self::ResolutionTime)
    }

    /// Its number in the proto enum, as tables keep it.
    pub fn code(self) -> i16 {
        match self {
            Self::Nps => 1,
            Self::Csat => 2,
            Self::Ces => 3,
            Self::Churn => 4,
            Self::Retention => 5,
            Self::Reactivation => 6,
            Self::ClosedLoop => 7,
            Self::Conversion => 8,
            Self::Clv => 9,
            Self::ResolutionTime => 10,
        }
    }

    /// The version of how the metric is worked out, kept with each snapshot
    /// (docs/DOMAIN.md §9.9): raised when its definition changes, so that
    /// history computed the old way says so.
    pub fn definition_version(self) -> i32 {
        1
    }

    /// Lowest and highest value on the metric's scale.
    pub fn scale(self) -> (f64, f64) {
        match self {
            Self::Nps => (-100.0, 100.0),
            Self::Ces => (1.0, 7.0),
            Self::Clv => (f64::MIN, f64::MAX),
            Self::ResolutionTime => (0.0, f64::MAX),
            Self::Csat | Self::Churn | Self::Retention | Self::Reactivation | Self::ClosedLoop | Self::Conversion => {
                (0.0, 1.0)
            }
        }
    }

    /// How its interval is computed, as `KpiValue.interval_method` says.
    pub fn interval_method(self) -> &'static str {
        match self {
            Self::Nps => "nps-margin",
            Self::Ces => "student-t",
            Self::Clv => "delta-method",
            Self::ResolutionTime => "order-statistics",
            Self::Csat | Self::Churn | Self::Retention | Self::Reactivation | Self::ClosedLoop | Self::Conversion => {
                "wilson"
            }
        }
    }

    /// A target value in `field`: a finite number on the metric's scale.
    pub fn check_target(self, value: f64, field: &str) -> Result<f64, FieldViolation> {
        let (low, high) = self.scale();
        if value.is_finite() && (low..=high).contains(&value) {
            Ok(value)
        } else if self == Self::Clv {
            Err(FieldViolation::new(field, "must be a finite amount"))
        } else if self == Self::ResolutionTime {
            Err(FieldViolation::new(field, "must be a finite number of hours, 0 or more"))
        } else {
            Err(FieldViolation::new(field, format!("must be a number from {low} to {high}")))
        }
    }
}

/// A KPI's value over a period: what the owning service counted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Figure {
    pub value: f64,
    pub n: i64,
    /// The 95 % interval, within the metric's scale.
    pub low: f64,
    pub high: f64,
}

impl Figure {
    /// Nothing to read: 0, and an interval of nothing.
    pub const NONE: Self = Self { value: 0.0, n: 0, low: 0.0, high: 0.0 };

    /// `value` with its interval `[low, high]` kept within `metric`'s scale
    /// (a margin can reach past it for a small n).
    pub fn within(metric: Metric, value: f64, n: i64, low: f64, high: f64) -> Self {
        if n == 0 {
            return Self::NONE;
        }
        let (bottom, top) = metric.scale();
        Self { value, n, low: low.clamp(bottom, top), high: high.clamp(bottom, top) }
    }

    /// Where the figure of `metric` stands against `target`: no data when
    /// nothing was read.
    pub fn against(&self, metric: Metric, target: f64) -> pb::TargetStatus {
        if self.n == 0 {
            return pb::TargetStatus::NoData;
        }
        match target_status(self.low, self.high, target, metric.higher_is_better()) {
            TargetStatus::Met => pb::TargetStatus::Met,
            TargetStatus::AtRisk => pb::TargetStatus::AtRisk,
            TargetStatus::Missed => pb::TargetStatus::Missed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_read_from_the_enum_and_targets_held_to_their_scale() {
        assert_eq!(Metric::parse(1, "metric"), Ok(Metric::Nps));
        assert_eq!(Metric::parse(3, "metric"), Ok(Metric::Ces));
        assert_eq!(Metric::parse(4, "metric"), Ok(Metric::Churn));
        assert_eq!(Metric::parse(7, "metric"), Ok(Metric::ClosedLoop));
        assert_eq!(Metric::parse(8, "metric"), Ok(Metric::Conversion));
        assert_eq!(Metric::parse(9, "metric"), Ok(Metric::Clv));
        assert_eq!(Metric::parse(10, "metric"), Ok(Metric::ResolutionTime));
        for bad in [0, 11, -1] {
            assert_eq!(Metric::parse(bad, "metric"), Err(FieldViolation::new("metric", KNOWN)));
        }
        let all = [
            Metric::Nps,
            Metric::Csat,
            Metric::Ces,
            Metric::Churn,
            Metric::Retention,
            Metric::Reactivation,
            Metric::ClosedLoop,
            Metric::Conversion,
            Metric::Clv,
            Metric::ResolutionTime,
        ];
        for m in all {
            assert_eq!(i32::from(m.code()), i32::from(m.proto()), "{m:?}");
        }
        assert_eq!(Metric::Nps.check_target(-100.0, "v"), Ok(-100.0));
        assert_eq!(Metric::Csat.check_target(0.85, "v"), Ok(0.85));
        let csat = FieldViolation::new("v", "must be a number from 0 to 1");
        assert_eq!(Metric::Csat.check_target(85.0, "v"), Err(csat.clone()));
        assert_eq!(Metric::Csat.check_target(f64::NAN, "v"), Err(csat));
        assert_eq!(Metric::Ces.check_target(0.5, "v"), Err(FieldViolation::new("v", "must be a number from 1 to 7")));
        // CLV is an amount: any finite one, negative included (a cost above the value).
        assert_eq!(Metric::Clv.check_target(-1.0e9, "v"), Ok(-1.0e9));
        let finite = FieldViolation::new("v", "must be a finite amount");
        assert_eq!(Metric::Clv.check_target(f64::INFINITY, "v"), Err(finite));
        // Hours: 0 or more.
        assert_eq!(Metric::ResolutionTime.check_target(48.0, "v"), Ok(48.0));
        let hours = FieldViolation::new("v", "must be a finite number of hours, 0 or more");
        assert_eq!(Metric::ResolutionTime.check_target(-1.0, "v"), Err(hours));
    }

    #[test]
    fn intervals_stay_on_the_scale_and_status_follows_them() {
        // NPS 80 ± 25 from 5 answers reaches past 100: 55 to 100.
        let nps = Figure::within(Metric::Nps, 80.0, 5, 55.0, 105.0);
        assert_eq!((nps.low, nps.high), (55.0, 100.0));
        assert_eq!(nps.against(Metric::Nps, 50.0), pb::TargetStatus::Met);
        assert_eq!(nps.against(Metric::Nps, 60.0), pb::TargetStatus::AtRisk);
        let low = Figure::within(Metric::Nps, 10.0, 40, 2.0, 18.0);
        assert_eq!(low.against(Metric::Nps, 20.0), pb::TargetStatus::Missed);
        // Churn 0.1 to 0.2: lower is better, so a target of 0.25 is met.
        let churn = Figure::within(Metric::Churn, 0.15, 100, 0.1, 0.2);
        assert_eq!(
            (churn.against(Metric::Churn, 0.25), churn.against(Metric::Churn, 0.05)),
            (pb::TargetStatus::Met, pb::TargetStatus::Missed)
        );
        // A median of 20 h within 12 h to 30 h: lower is better, so a target
        // of 36 h is met, one of 24 h at risk, one of 8 h missed.
        let ttr = Figure::within(Metric::ResolutionTime, 20.0, 10, 12.0, 30.0);
        assert_eq!(
            [36.0, 24.0, 8.0].map(|t| ttr.against(Metric::ResolutionTime, t)),
            [pb::TargetStatus::Met, pb::TargetStatus::AtRisk, pb::TargetStatus::Missed]
        );
        let none = Figure::within(Metric::Csat, 0.0, 0, 0.0, 0.0);
        assert_eq!((none, none.against(Metric::Csat, 0.8)), (Figure::NONE, pb::TargetStatus::NoData));
    }
}
