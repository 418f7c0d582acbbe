//! Customer lifetime value with a delta-method 95 % interval (docs/DOMAIN.md §9.4).

use super::change::Change;
use super::mean::{Moments, finite};
use super::{Z95, dist, share};

/// Years a customer is expected to stay at most (docs/DOMAIN.md §9.4).
const MAX_YEARS: f64 = 10.0;

/// What CLV is computed from (docs/DOMAIN.md §9.4).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ClvInputs {
    /// The values of single purchases.
    pub purchase_value: Moments,
    /// Purchases made over `customer_years` of exposure (a Poisson count).
    pub purchases: i64,
    pub customer_years: f64,
    /// Customers lost over a year among `at_risk`: the annual churn.
    pub churned: i64,
    pub at_risk: i64,
    pub acquisition_cost: f64,
}

/// CLV with its 95 % interval (docs/DOMAIN.md §9.4).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Clv {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

/// CLV = m × r × Y − cost, m the mean purchase value, r = purchases / customer-years,
/// Y = min(10, 1 / q) with q = churned / at_risk (10 when q is 0) (docs/DOMAIN.md §9.4).
///
/// Delta method, m, r and q independent:
/// Var(CLV) = (r Y)² s²/n + (m Y)² purchases / customer_years² + (m r)² (dY/dq)² q(1 − q)/at_risk,
/// with dY/dq = −1/q² when 1/q < 10 and 0 when the years are capped; interval CLV ± 1.96 √Var.
/// Zero denominators give 0 (§1.3); negative counts count as 0, churned at most at_risk.
pub fn clv(inputs: ClvInputs) -> Clv {
    let m = inputs.purchase_value.mean();
    let var_m = if inputs.purchase_value.n > 0 {
        inputs.purchase_value.variance() / inputs.purchase_value.n as f64
    } else {
        0.0
    };
    let purchases = inputs.purchases.max(0) as f64;
    let exposure = finite(inputs.customer_years);
    let (r, var_r) = if exposure > 0.0 {
        // A Poisson count's variance is the count itself.
        (purchases / exposure, purchases / (exposure * exposure))
    } else {
        (0.0, 0.0)
    };
    let at_risk = inputs.at_risk.max(0);
    let q = share(inputs.churned.clamp(0, at_risk), at_risk);
    let (years, slope) = if q * MAX_YEARS > 1.0 { (1.0 / q, -1.0 / (q * q)) } else { (MAX_YEARS, 0.0) };
    let var_q = if at_risk > 0 { q * (1.0 - q) / at_risk as f64 } else { 0.0 };
    let value = finite(m * r * years - finite(inputs.acquisition_cost));
    let variance = (r * years).powi(2) * var_m + (m * years).powi(2) * var_r + (m * r * slope).powi(2) * var_q;
    let half = finite(Z95 * variance.max(0.0).sqrt());
    Clv { value, low: value - half, high: value + half }
}

impl Clv {
    /// The standard error the interval was made of (half its width / 1.96).
    pub fn se(&self) -> f64 {
        finite((self.high - self.value) / Z95)
    }
}

/// The change of CLV from `before` to `after` (after − before): a z-test of the difference
/// with the two periods' delta-method errors, taken as independent (docs/DOMAIN.md §9.4, §9.7).
pub fn clv_change(before: Clv, after: Clv, alpha: f64) -> Change {
    let se = before.se().hypot(after.se());
    Change::from_statistic(after.value - before.value, se, Z95, dist::normal_two_sided, alpha)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::round3;

    /// 50 EUR a purchase (40, 50, 60), 3 purchases a customer-year, churn `churned` of 100, cost 40.
    fn domain(churned: i64) -> ClvInputs {
        ClvInputs {
            purchase_value: Moments::of(&[40.0, 50.0, 60.0]),
            purchases: 300,
            customer_years: 100.0,
            churned,
            at_risk: 100,
            acquisition_cost: 40.0,
        }
    }

    #[test]
    fn the_domain_examples() {
        // §9.4: 50 × 3 × 5 − 40 = 710 at churn 20 %; at 5 % the years are capped at 10:
        // 50 × 3 × 10 − 40 = 1,460.
        assert_eq!(round3(clv(domain(20)).value), 710.0);
        assert_eq!(round3(clv(domain(5)).value), 1460.0);
        // Churn 0: 10 years as well.
        assert_eq!(round3(clv(domain(0)).value), 1460.0);
    }

    #[test]
    fn interval_worked_by_hand() {
        // 100 purchases of mean 50 and variance 400: sum 5,000, sum of squares
        // 400 × 99 + 5,000²/100 = 289,600; Var(m) = 400/100 = 4.
        // r = 300/100 = 3, Var(r) = 300/100² = 0.03; q = 0.2, Var(q) = 0.2 × 0.8/100 = 0.0016;
        // Y = 5, dY/dq = −1/0.04 = −25.
        // Var = 15² × 4 + 250² × 0.03 + 150² × 625 × 0.0016 = 900 + 1,875 + 22,500 = 25,275;
        // half 1.96 × 158.981 = 311.603: 398.397 to 1,021.603.
        let purchase_value = Moments { n: 100, sum: 5000.0, sum_sq: 289_600.0 };
        let c = clv(ClvInputs { purchase_value, ..domain(20) });
        assert_eq!((round3(c.value), round3(c.low), round3(c.high)), (710.0, 398.397, 1021.603));
        // Capped at churn 5 %: dY/dq = 0; Var = 30² × 4 + 500² × 0.03 = 3,600 + 7,500 = 11,100;
        // half 1.96 × 105.357 = 206.499: 1,253.501 to 1,666.499.
        let c = clv(ClvInputs { purchase_value, ..domain(5) });
        assert_eq!((round3(c.low), round3(c.high)), (1253.501, 1666.499));
    }

    #[test]
    fn changes_are_z_tested_on_both_errors() {
        // 710 ± 311.603 (se 158.981) then 1,460 ± 206.499 (se 105.357): difference 750,
        // se √(25,275 + 11,100) = 190.723, z 3.932: p 0.0000841; 750 ± 373.816.
        let purchase_value = Moments { n: 100, sum: 5000.0, sum_sq: 289_600.0 };
        let (a, b) = (clv(ClvInputs { purchase_value, ..domain(20) }), clv(ClvInputs { purchase_value, ..domain(5) }));
        let c = clv_change(a, b, 0.05);
        assert_eq!((round3(c.difference), round3(c.ci_low), round3(c.ci_high)), (750.0, 376.184, 1123.816));
        assert!((c.p_value - 0.0000841).abs() < 1e-6 && c.significant, "{c:?}");
        // No error at all and no difference: p 1.
        let none = clv(ClvInputs::default());
        assert_eq!(clv_change(none, none, 0.05).p_value, 1.0);
    }

    #[test]
    fn empty_and_bad_inputs() {
        // Nothing known: no purchase value, no exposure: 0 − cost.
        let c = clv(ClvInputs { acquisition_cost: 40.0, ..ClvInputs::default() });
        assert_eq!((c.value, c.low, c.high), (-40.0, -40.0, -40.0));
        let c = clv(ClvInputs {
            purchases: -5,
            customer_years: f64::NAN,
            churned: 500,
            at_risk: -1,
            acquisition_cost: f64::INFINITY,
            ..domain(0)
        });
        assert_eq!((c.value, c.low, c.high), (0.0, 0.0, 0.0));
        // All customers lost: q = 1, one year: 50 × 3 × 1 − 40 = 110.
        assert_eq!(round3(clv(domain(100)).value), 110.0);
        assert_eq!(round3(clv(domain(250)).value), 110.0);
    }
}
