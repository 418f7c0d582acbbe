//! Customers counted by lifecycle at the start and end of a period, from
//! their purchase days, set-wise: what the kpi service reports churn,
//! retention and reactivation from (docs/DOMAIN.md §4.3, §9.2, §9.3).
//!
//! Only `lost` matters here, and it depends on the last purchase alone:
//! lost as of day D when the last purchase on or before D is 365 days or
//! more before D. "At the start" is as of the day before `first`, "at the
//! end" as of `last`.

use chrono::{Days, NaiveDate};
use cx_proto::profile::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::store::{and_one_of, numbered};
use sea_orm::{ConnectionTrait, Value};
use uuid::Uuid;

use super::{ProfileStore, Result};
use crate::domain::lifecycle::LOST_AFTER_DAYS;

/// Periods counted in one statement: each adds two per-customer maxima and
/// five sums to it.
const PERIODS_PER_PASS: usize = 8;

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
        let mut counted = Vec::with_capacity(periods.len());
        for pass in periods.chunks(PERIODS_PER_PASS) {
            counted.extend(self.one_pass(t, pass, customers).await?);
        }
        Ok(counted)
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
        let count = |name: &str| -> Result<i64> {
            Ok(row.as_ref().map(|r| r.try_get::<i64>("", name)).transpose()?.unwrap_or(0))
        };
        (0..periods.len())
            .map(|i| {
                Ok(pb::LifecycleCounts {
                    period: None,
                    customers_at_start: count(&format!("customers_at_start_{i}"))?,
                    lost_by_end: count(&format!("lost_by_end_{i}"))?,
                    new_customers: count(&format!("new_customers_{i}"))?,
                    lost_at_start: count(&format!("lost_at_start_{i}"))?,
                    reactivated: count(&format!("reactivated_{i}"))?,
                })
            })
            .collect()
    }
}
