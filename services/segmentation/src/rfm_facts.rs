//! The job that writes RFM into the fact table (docs/DOMAIN.md §8.1–§8.3),
//! where rules read `rfm.*`: every 30 s for the tenants whose purchases
//! changed, and for every tenant with purchases when the day turns (the
//! window and recency move with it). Each tenant is one statement that
//! scores the whole population, plus one that clears the customers no
//! longer scored.

use std::time::Duration;

use chrono::{DateTime, Utc};
use cx_runtime::TenantId;
use cx_runtime::store::Db;
use sea_orm::{DbErr, TransactionTrait};

use crate::store::rfm;
use cx_runtime::days::{date_of, day_number};

/// How often the job looks for tenants whose purchases changed.
pub const ROUND: Duration = Duration::from_secs(30);

/// Writes tenant `t`'s RFM as of the day of `now` into its facts, in the
/// currency with the most purchases of the window; returns how many
/// customers are scored.
pub async fn write(db: &Db, t: &TenantId, now: DateTime<Utc>) -> Result<u64, DbErr> {
    let as_of = date_of(day_number(now));
    let txn = db.begin().await?;
    // No purchase in the window: nobody is scored, and the clear empties
    // what an earlier day wrote.
    let currency = rfm::default_currency(&txn, t, as_of).await?.unwrap_or_default();
    let scored = rfm::write_facts(&txn, t, as_of, &currency).await?;
    txn.commit().await?;
    Ok(scored)
}

/// Runs until `stop` turns true.
pub async fn run(db: Db, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut written_day = None;
    while !*stop.borrow() {
        let now = cx_runtime::store::now();
        let today = day_number(now);
        match round(&db, now, written_day != Some(today)).await {
            Ok(()) => written_day = Some(today),
            Err(err) => tracing::warn!(error = %err, "writing RFM into the facts failed, will retry"),
        }
        tokio::select! {
            () = tokio::time::sleep(ROUND) => {}
            _ = stop.changed() => {}
        }
    }
}

/// One round: the tenants whose purchases changed, or (`all`) every tenant
/// with purchases.
async fn round(db: &Db, now: DateTime<Utc>, all: bool) -> Result<(), DbErr> {
    let due = rfm::take_due(db).await?;
    let tenants = if all { rfm::tenants(db).await? } else { due };
    for t in &tenants {
        let scored = write(db, t, now).await?;
        tracing::info!(tenant = %t, scored, "RFM written into the facts");
    }
    Ok(())
}
