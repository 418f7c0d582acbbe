//! Customers counted by lifecycle at the start and end of a period: what
//! the kpi service reports churn, retention and reactivation from
//! (docs/DOMAIN.md §4.3, §9.2, §9.3).
//!
//! Only `lost` matters here, and it depends on the last purchase alone:
//! lost as of day D when the last purchase on or before D is 365 days or
//! more before D. "At the start" is as of the day before `first`, "at the
//! end" as of `last`.
//!
//! The whole tenant's counts are sums over the lifecycle roll-up (`spans`)
//! for periods of up to [`LONGEST_FROM_SPANS`] days; a population's, or a
//! longer period's, group the purchase days by customer.

use chrono::{Days, NaiveDate};
use cx_proto::profile::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::store::{and_one_of, numbered};
use sea_orm::{ConnectionTrait, QueryResult, Value};
use uuid::Uuid;

use super::{ProfileStore, Result};
use crate::domain::lifecycle::LOST_AFTER_DAYS;

/// Periods counted in one statement: each adds two per-customer maxima and
/// five sums to it.
const PERIODS_PER_PASS: usize = 8;

/// The longest period the roll-up counts: customers lost by the end are
/// those whose kept stretch holding the day before the period ends in it,
/// with no stretch holding the last day. Over 366 days a customer could be
/// kept at the start by an earlier stretch than the one ending in the
/// period (a gap, then a whole stretch of 365 days, come between), which
/// the roll-up does not pair.
pub const LONGEST_FROM_SPANS: i64 = 366;

impl ProfileStore {
    /// The counts of each period (days `first..=last`, the periods the
    /// caller's to name), in order, of `customers` only when given: one pass
    /// over the purchase days per [`PERIODS_PER_PASS`] periods, grouped by
    /// customer once for all of them.
    pub async fn lifecycle_counts(
        &self,
        t: &TenantId,
        periods: &[(NaiveDate, NaiveDate)],
        customers: &[Uuid],
    ) -> Result<Vec<pb::LifecycleCounts>> {
        let short = |&(first, last): &(NaiveDate, NaiveDate)| (last - first).num_days() < LONGEST_FROM_SPANS;
        if customers.is_empty() && periods.iter().all(short) {
            return self.counts_from_spans(t, periods).await;
        }
        let mut counted = Vec::with_capacity(periods.len());
        for pass in periods.chunks(PERIODS_PER_PASS) {
            counted.extend(self.one_pass(t, pass, customers).await?);
        }
        Ok(counted)
    }

    /// Every period's counts in one statement over the roll-up: for the day
    /// before the period `a` and its last day `b`, kept at the start is a
    /// kept stretch holding `a`, lost at the start `a` in the gap after one,
    /// reactivated that gap ending by `b`, lost by the end a stretch holding
    /// `a` that ends by `b` with the next starting after `b`, and new a first
    /// purchase in the period.
    async fn counts_from_spans(
        &self,
        t: &TenantId,
        periods: &[(NaiveDate, NaiveDate)],
    ) -> Result<Vec<pb::LifecycleCounts>> {
        let db = self.db();
        let backend = db.get_database_backend();
        let mut values: Vec<Value> = vec![t.as_str().into()];
        let mut sums = Vec::new();
        for (i, &(first, last)) in periods.iter().enumerate() {
            let mut param = |value: NaiveDate| {
                values.push(value.into());
                format!("${}", values.len())
            };
            let (a, first, b) = (param(first.pred_opt().unwrap_or(first)), param(first), param(last));
            let mut sum = |name: &str, condition: String| {
                sums.push(format!(
                    "CAST(COALESCE(SUM(CASE WHEN {condition} THEN customers ELSE 0 END), 0) AS BIGINT) AS {name}_{i}"
                ));
            };
            let kept_at_start = format!("kind = 2 AND from_day <= {a} AND until_day > {a}");
            let lost_at_start = format!("kind = 2 AND until_day <= {a} AND next_day > {a}");
            sum("customers_at_start", kept_at_start.clone());
            sum("lost_by_end", format!("{kept_at_start} AND until_day <= {b} AND next_day > {b}"));
            sum("new_customers", format!("kind = 1 AND from_day >= {first} AND from_day <= {b}"));
            sum("reactivated", format!("{lost_at_start} AND next_day <= {b}"));
            sum("lost_at_start", lost_at_start);
        }
        let sql = format!("SELECT {} FROM purchase_spans WHERE tenant_id = $1 AND kind IN (1, 2)", sums.join(", "));
        let row = db.query_one_raw(numbered(backend, &sql, values)).await?;
        read_counts(row.as_ref(), periods.len())
    }

    async fn one_pass(
        &self,
        t: &TenantId,
        periods: &[(NaiveDate, NaiveDate)],
        customers: &[Uuid],
    ) -> Result<Vec<pb::LifecycleCounts>> {
        let db = self.db();
        let backend = db.get_database_backend();
        let lost_days = Days::new(LOST_AFTER_DAYS.unsigned_abs());
        let mut values: Vec<Value> = vec![t.as_str().into()];
        let mut param = |value: NaiveDate| {
            values.push(value.into());
            format!("${}", values.len())
        };
        let (mut maxima, mut sums) = (Vec::new(), Vec::new());
        let mut through = NaiveDate::MIN;
        for (i, &(first, last)) in periods.iter().enumerate() {
            through = through.max(last);
            // Not lost the day before `first`: a purchase on or after this
            // day. Lost at `last`: no purchase after `lost_until`.
            let kept_from = param(first.checked_sub_days(lost_days).unwrap_or(NaiveDate::MIN));
            let lost_until = param(last.checked_sub_days(lost_days).unwrap_or(NaiveDate::MIN));
            let (first, last) = (param(first), param(last));
            // Per customer: the last purchase before the period, the last up
            // to its end.
            maxima.push(format!(
                "MAX(CASE WHEN day < {first} THEN day END) AS before_{i}, \
                 MAX(CASE WHEN day <= {last} THEN day END) AS end_{i}"
            ));
            let sum = |name: &str, condition: String| {
                format!("COALESCE(SUM(CASE WHEN {condition} THEN 1 ELSE 0 END), 0) AS {name}_{i}")
            };
            sums.push(sum("customers_at_start", format!("c.before_{i} >= {kept_from}")));
            sums.push(sum("lost_by_end", format!("c.before_{i} >= {kept_from} AND c.end_{i} <= {lost_until}")));
            sums.push(sum("new_customers", format!("c.first_day >= {first} AND c.first_day <= {last}")));
            sums.push(sum("lost_at_start", format!("c.before_{i} < {kept_from}")));
            sums.push(sum("reactivated", format!("c.before_{i} < {kept_from} AND c.end_{i} >= {first}")));
        }
        let through = param(through);
        let who = and_one_of(backend, "customer_id", customers, &mut values);
        let sql = format!(
            "SELECT {} FROM (SELECT {}, MIN(day) AS first_day FROM purchase_days \
               WHERE tenant_id = $1 AND day <= {through}{who} GROUP BY customer_id) c",
            sums.join(", "),
            maxima.join(", ")
        );
        let row = db.query_one_raw(numbered(backend, &sql, values)).await?;
        read_counts(row.as_ref(), periods.len())
    }
}

/// The counts of `periods` periods from one row of `{name}_{i}` columns.
fn read_counts(row: Option<&QueryResult>, periods: usize) -> Result<Vec<pb::LifecycleCounts>> {
    let count =
        |name: String| -> Result<i64> { Ok(row.map(|r| r.try_get::<i64>("", &name)).transpose()?.unwrap_or(0)) };
    (0..periods)
        .map(|i| {
            Ok(pb::LifecycleCounts {
                period: None,
                customers_at_start: count(format!("customers_at_start_{i}"))?,
                lost_by_end: count(format!("lost_by_end_{i}"))?,
                new_customers: count(format!("new_customers_{i}"))?,
                lost_at_start: count(format!("lost_at_start_{i}"))?,
                reactivated: count(format!("reactivated_{i}"))?,
            })
        })
        .collect()
}
