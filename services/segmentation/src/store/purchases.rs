//! Writing the purchases segmentation keeps, added up per customer, day and
//! currency as profile adds them.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use cx_runtime::TenantId;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait};
use uuid::Uuid;

use super::entity::purchase_day;
use crate::rfm::PurchaseDay;

/// Adds `rows` to the tenant's purchase days: a day already kept for the
/// customer and currency grows by the row's purchases and amount. The
/// tenant's RFM is then due to be written into the facts again.
pub async fn add<C: ConnectionTrait>(db: &C, tenant: &TenantId, rows: &[(Uuid, PurchaseDay)]) -> Result<(), DbErr> {
    use purchase_day::Column as C;
    if rows.is_empty() {
        return Ok(());
    }
    super::rfm::mark_due(db, tenant).await?;
    // One statement may not touch a row twice (PostgreSQL): sum first.
    let mut summed: BTreeMap<(Uuid, NaiveDate, &str), (i64, i64)> = BTreeMap::new();
    for (customer, d) in rows {
        let sum = summed.entry((*customer, d.day, d.currency.as_str())).or_default();
        *sum = (sum.0.saturating_add(d.purchases), sum.1.saturating_add(d.amount_micros));
    }
    let summed: Vec<_> = summed.into_iter().collect();
    // 6 parameters a row: well under SQLite's 32,766 per statement.
    for chunk in summed.chunks(1000) {
        let models =
            chunk.iter().map(|((customer, day, currency), (purchases, amount_micros))| purchase_day::ActiveModel {
                tenant_id: Set(tenant.as_str().to_owned()),
                customer_id: Set(*customer),
                day: Set(*day),
                currency: Set((*currency).to_owned()),
                purchases: Set(*purchases),
                amount_micros: Set(*amount_micros),
            });
        let conflict = OnConflict::columns([C::TenantId, C::CustomerId, C::Day, C::Currency])
            .value(C::Purchases, Expr::cust("segment_purchase_days.purchases + excluded.purchases"))
            .value(C::AmountMicros, Expr::cust("segment_purchase_days.amount_micros + excluded.amount_micros"))
            .to_owned();
        purchase_day::Entity::insert_many(models).on_conflict(conflict).exec_without_returning(db).await?;
    }
    Ok(())
}
