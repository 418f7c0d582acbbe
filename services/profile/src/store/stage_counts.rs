//! Customers per lifecycle stage as of a day, from the lifecycle roll-up
//! (docs/DOMAIN.md §4.3), and per digital intensity category and band
//! of 10 index points (§4.6): what the kpi service reports the
//! distributions from.

use chrono::{Days, NaiveDate};
use cx_proto::profile::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::store::numbered;
use sea_orm::{ConnectionTrait, Value};

use super::{ProfileStore, Result};
use crate::domain::intensity::Category;
use crate::domain::lifecycle::REACTIVATED_FOR_DAYS;

/// The stages as of `$2`, summed over the lifecycle roll-up (`spans`): not
/// lost is a kept stretch holding the day, lost the day in the gap after
/// one, a purchase in the last 90 days a recent stretch holding it,
/// reactivated a comeback on one of those days (docs/DOMAIN.md §4.3).
/// Prospects are the customers created by then (`$4` the next day's start)
/// less the buyers among them. `$3` the first day a comeback still counts.
const STAGES: &str = "SELECT \
       (SELECT COUNT(*) FROM customers WHERE tenant_id = $1 AND created_at < $4) AS created, \
       CAST(COALESCE(SUM(CASE WHEN kind = 1 AND from_day <= $2 AND until_day <= $2 THEN customers ELSE 0 END), 0) AS BIGINT) AS buyers, \
       CAST(COALESCE(SUM(CASE WHEN kind = 2 AND from_day <= $2 AND until_day > $2 THEN customers ELSE 0 END), 0) AS BIGINT) AS kept, \
       CAST(COALESCE(SUM(CASE WHEN kind = 2 AND until_day <= $2 AND next_day > $2 THEN customers ELSE 0 END), 0) AS BIGINT) AS lost, \
       CAST(COALESCE(SUM(CASE WHEN kind = 3 AND from_day <= $2 AND until_day > $2 THEN customers ELSE 0 END), 0) AS BIGINT) AS recent, \
       CAST(COALESCE(SUM(CASE WHEN kind = 4 AND from_day >= $3 AND from_day <= $2 THEN customers ELSE 0 END), 0) AS BIGINT) AS back \
     FROM purchase_spans WHERE tenant_id = $1";

fn before(day: NaiveDate, days: i64) -> NaiveDate {
    day.checked_sub_days(Days::new(days.unsigned_abs())).unwrap_or(NaiveDate::MIN)
}

impl ProfileStore {
    /// The distributions as of `day`: stages evaluated for it, intensity as
    /// stored now (the period is the caller's to name).
    pub async fn distributions(&self, t: &TenantId, day: NaiveDate) -> Result<pb::AggregateDistributionsResponse> {
        let db = self.db();
        let backend = db.get_database_backend();
        let next = day.succ_opt().unwrap_or(day).and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
        let values: Vec<Value> =
            vec![t.as_str().into(), day.into(), before(day, REACTIVATED_FOR_DAYS - 1).into(), next.into()];
        let row = db.query_one_raw(numbered(backend, STAGES, values)).await?;
        let count = |name: &str| -> Result<i64> {
            Ok(row.as_ref().map(|r| r.try_get::<i64>("", name)).transpose()?.unwrap_or(0))
        };
        let (model, per_index) = self.intensity_per_index(t).await?;
        let mut out = pb::AggregateDistributionsResponse {
            as_of_day: cx_runtime::days::written(day),
            prospect: count("created")? - count("buyers")?,
            active: count("recent")? - count("back")?,
            at_risk: count("kept")? - count("recent")?,
            lost: count("lost")?,
            reactivated: count("back")?,
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
