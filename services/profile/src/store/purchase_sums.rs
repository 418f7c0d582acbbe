//! The purchases of one currency in a period, summed set-wise: what the kpi
//! service works CLV's average purchase value and its spread from
//! (docs/DOMAIN.md §9.4). Currencies are never added (§1.4). The whole
//! tenant's come from the purchase roll-up (`purchase_totals`), a
//! population's from its customers' purchase days.

use chrono::NaiveDate;
use cx_proto::profile::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::store::{and_one_of, numbered};
use sea_orm::{ConnectionTrait, Value};
use uuid::Uuid;

use super::{ProfileStore, Result};

// The currency with the most purchases of the days, ties to the
// alphabetically first (as segmentation's default RFM currency, §8.1), from
// the whole tenant's totals per day.
const BUSIEST: &str = "SELECT currency FROM purchase_totals \
     WHERE tenant_id = $1 AND day >= $2 AND day <= $3 \
     GROUP BY currency HAVING SUM(purchases) > 0 ORDER BY SUM(purchases) DESC, currency LIMIT 1";

// PostgreSQL sums bigints as numeric: cast back. `{table}`: the totals per
// day for the whole tenant, the purchase days for a population, whose
// condition `{customers}` is.
const SUMS: &str = "SELECT CAST(COALESCE(SUM(purchases), 0) AS BIGINT) AS purchases, \
     CAST(COALESCE(SUM(amount_micros), 0) AS BIGINT) AS amount_micros, \
     COALESCE(SUM(amount_squares), 0.0) AS amount_squares \
     FROM {table} WHERE tenant_id = $1 AND currency = $2 AND day >= $3 AND day <= $4{customers}";

impl ProfileStore {
    /// The currency with the most purchases over days `first..=last`; None
    /// without a purchase.
    pub async fn busiest_currency(&self, t: &TenantId, first: NaiveDate, last: NaiveDate) -> Result<Option<String>> {
        let db = self.db();
        let values: Vec<Value> = vec![t.as_str().into(), first.into(), last.into()];
        let row = db.query_one_raw(numbered(db.get_database_backend(), BUSIEST, values)).await?;
        Ok(row.map(|r| r.try_get::<String>("", "currency")).transpose()?)
    }

    /// The purchases in `currency` of days `first..=last` (the period is the
    /// caller's to name), of `customers` only when given.
    pub async fn purchase_sums(
        &self,
        t: &TenantId,
        currency: &str,
        (first, last): (NaiveDate, NaiveDate),
        customers: &[Uuid],
    ) -> Result<pb::PurchaseSums> {
        let db = self.db();
        let backend = db.get_database_backend();
        let mut values: Vec<Value> = vec![t.as_str().into(), currency.into(), first.into(), last.into()];
        let table = if customers.is_empty() { "purchase_totals" } else { "purchase_days" };
        let sql = SUMS
            .replace("{table}", table)
            .replace("{customers}", &and_one_of(backend, "customer_id", customers, &mut values));
        let row = db.query_one_raw(numbered(backend, &sql, values)).await?;
        let Some(row) = row else { return Ok(pb::PurchaseSums::default()) };
        Ok(pb::PurchaseSums {
            period: None,
            purchases: row.try_get("", "purchases")?,
            amount_micros: row.try_get("", "amount_micros")?,
            amount_squares: row.try_get("", "amount_squares")?,
        })
    }
}
