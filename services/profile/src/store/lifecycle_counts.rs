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

// Per customer: the last purchase before the period, the last up to its
// end, the first ever. Each parameter appears once, in order (SQLite binds
// by position).
// `{customers}`: the population's condition, if any.
const COUNTS: &str = "SELECT \
       COALESCE(SUM(CASE WHEN c.last_before >= $1 THEN 1 ELSE 0 END), 0) AS customers_at_start, \
       COALESCE(SUM(CASE WHEN c.last_before >= $2 AND c.last_end <= $3 THEN 1 ELSE 0 END), 0) AS lost_by_end, \
       COALESCE(SUM(CASE WHEN c.first_day >= $4 THEN 1 ELSE 0 END), 0) AS new_customers, \
       COALESCE(SUM(CASE WHEN c.last_before < $5 THEN 1 ELSE 0 END), 0) AS lost_at_start, \
       COALESCE(SUM(CASE WHEN c.last_before < $6 AND c.last_end >= $7 THEN 1 ELSE 0 END), 0) AS reactivated \
     FROM (SELECT MAX(CASE WHEN day < $8 THEN day END) AS last_before, MAX(day) AS last_end, MIN(day) AS first_day \
       FROM purchase_days WHERE tenant_id = $9 AND day <= $10{customers} GROUP BY customer_id) c";

impl ProfileStore {
    /// The counts of days `first..=last` (the period is the caller's to
    /// name), of `customers` only when given.
    pub async fn lifecycle_counts(
        &self,
        t: &TenantId,
        first: NaiveDate,
        last: NaiveDate,
        customers: &[Uuid],
    ) -> Result<pb::LifecycleCounts> {
        let lost_days = Days::new(LOST_AFTER_DAYS.unsigned_abs());
        // Not lost the day before `first`: a purchase on or after this day.
        let kept_from = first.checked_sub_days(lost_days).unwrap_or(NaiveDate::MIN);
        // Lost at `last`: no purchase after this day.
        let lost_until = last.checked_sub_days(lost_days).unwrap_or(NaiveDate::MIN);
        let mut values: Vec<Value> = vec![
            kept_from.into(),
            kept_from.into(),
            lost_until.into(),
            first.into(),
            kept_from.into(),
            kept_from.into(),
            first.into(),
            first.into(),
            t.as_str().into(),
            last.into(),
        ];
        let db = self.db();
        let backend = db.get_database_backend();
        let sql = COUNTS.replace("{customers}", &and_one_of(backend, "customer_id", customers, &mut values));
        let row = db.query_one_raw(numbered(backend, &sql, values)).await?;
        let count = |name: &str| -> Result<i64> {
            Ok(row.as_ref().map(|r| r.try_get::<i64>("", name)).transpose()?.unwrap_or(0))
        };
        Ok(pb::LifecycleCounts {
            period: None,
            customers_at_start: count("customers_at_start")?,
            lost_by_end: count("lost_by_end")?,
            new_customers: count("new_customers")?,
            lost_at_start: count("lost_at_start")?,
            reactivated: count("reactivated")?,
        })
    }
}
