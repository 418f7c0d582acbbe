//! Customers per lifecycle stage as of a day, set-wise from their purchase
//! days (docs/DOMAIN.md §4.3), and per digital intensity category and band
//! of 10 index points (§4.6): what the kpi service reports the
//! distributions from.

use chrono::{Days, NaiveDate};
use cx_proto::profile::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::store::numbered;
use sea_orm::{ConnectionTrait, DbBackend, Value};

use super::{ProfileStore, Result};
use crate::domain::intensity::Category;
use crate::domain::lifecycle::{AT_RISK_AFTER_DAYS, LOST_AFTER_DAYS, REACTIVATED_FOR_DAYS};

/// One pass over the tenant's purchase days in customer and day order:
/// each customer's last purchase, and whether one of the last 90 days came
/// after a gap of 365 days or more (a comeback: the purchase before it, by
/// `LAG`, is on or before `{gap}`). Every purchaser is a customer (merges
/// move purchase days, erasures delete them), so the stages need no join;
/// prospects are the customers created by then without a purchase, one
/// anti-join on the primary keys. `$1` tenant, `$2` the day, `$3` the last
/// day of a purchase that leaves one at risk, `$4` lost, `$5` the first day
/// a comeback still counts, `$6` the next day's start.
const STAGES: &str = "WITH last AS (SELECT customer_id, MAX(day) AS last_day, \
       MAX(CASE WHEN day >= $5 AND prev_day IS NOT NULL AND prev_day <= {gap} THEN 1 ELSE 0 END) AS back \
     FROM (SELECT customer_id, day, LAG(day) OVER (PARTITION BY customer_id ORDER BY day) AS prev_day \
       FROM purchase_days WHERE tenant_id = $1 AND day <= $2) AS p GROUP BY customer_id) \
     SELECT \
       (SELECT COUNT(*) FROM customers c WHERE c.tenant_id = $1 AND c.created_at < $6 \
         AND NOT EXISTS (SELECT 1 FROM purchase_days q WHERE q.tenant_id = $1 AND q.customer_id = c.id AND q.day <= $2)) \
         AS prospect, \
       COALESCE(SUM(CASE WHEN l.last_day <= $4 THEN 1 ELSE 0 END), 0) AS lost, \
       COALESCE(SUM(CASE WHEN l.last_day > $4 AND l.last_day <= $3 THEN 1 ELSE 0 END), 0) AS at_risk, \
       COALESCE(SUM(CASE WHEN l.last_day > $3 AND l.back = 1 THEN 1 ELSE 0 END), 0) AS reactivated, \
       COALESCE(SUM(CASE WHEN l.last_day > $3 AND l.back = 0 THEN 1 ELSE 0 END), 0) AS active \
     FROM last l";

fn before(day: NaiveDate, days: i64) -> NaiveDate {
    day.checked_sub_days(Days::new(days.unsigned_abs())).unwrap_or(NaiveDate::MIN)
}

impl ProfileStore {
    /// The distributions as of `day`: stages evaluated for it, intensity as
    /// stored now (the period is the caller's to name).
    pub async fn distributions(&self, t: &TenantId, day: NaiveDate) -> Result<pb::AggregateDistributionsResponse> {
        let db = self.db();
        let backend = db.get_database_backend();
        let gap = match backend {
            DbBackend::Postgres => format!("day - {LOST_AFTER_DAYS}"),
            _ => format!("date(day, '-{LOST_AFTER_DAYS} days')"),
        };
        let next = day.succ_opt().unwrap_or(day).and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
        let values: Vec<Value> = vec![
            t.as_str().into(),
            day.into(),
            before(day, AT_RISK_AFTER_DAYS).into(),
            before(day, LOST_AFTER_DAYS).into(),
            before(day, REACTIVATED_FOR_DAYS - 1).into(),
            next.into(),
        ];
        let row = db.query_one_raw(numbered(backend, &STAGES.replace("{gap}", &gap), values)).await?;
        let count = |name: &str| -> Result<i64> {
            Ok(row.as_ref().map(|r| r.try_get::<i64>("", name)).transpose()?.unwrap_or(0))
        };
        let (model, per_index) = self.intensity_per_index(t).await?;
        let mut out = pb::AggregateDistributionsResponse {
            as_of_day: cx_runtime::days::written(day),
            prospect: count("prospect")?,
            active: count("active")?,
            at_risk: count("at_risk")?,
            lost: count("lost")?,
            reactivated: count("reactivated")?,
            index_bands: vec![0; 10],
            ..Default::default()
        };
        for (index, customers) in per_index {
            let Some(index) = index else {
                out.without_index += customers;
                continue;
            };
            // 100 shares the last band (90–100).
            if let Some(band) = out.index_bands.get_mut(usize::from(index.min(99) / 10)) {
                *band += customers;
            }
            match model.category(index) {
                Category::Traditional => out.traditional += customers,
                Category::Hybrid => out.hybrid += customers,
                Category::Connected => out.connected += customers,
                Category::DigitalNative => out.digital_native += customers,
            }
        }
        Ok(out)
    }
}
