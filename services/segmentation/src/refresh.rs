//! The schedule of segments: a job that refreshes each segment when its
//! interval has passed (docs/DOMAIN.md §8), and forgets changes older than
//! 90 days. Replicas share the work: a segment is refreshed under its
//! tenant's turn and only while still due, so two replicas never refresh it
//! twice for one interval.

use std::time::Duration;

use chrono::{DateTime, Utc};
use cx_runtime::TenantId;
use cx_runtime::error::ServiceError;
use cx_runtime::store::{Db, scoped};
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, QueryFilter, QuerySelect, TransactionTrait};
use tokio::sync::watch;
use uuid::Uuid;

use crate::catalog::Purposes;
use crate::store::entity::segment;
use crate::store::members::{self, Refreshed};

/// How often the job looks for due segments.
const ROUND: Duration = Duration::from_secs(5);
/// Segments refreshed in one round at most.
const PER_ROUND: u64 = 20;
/// How long changes of membership are kept.
pub const KEEP_CHANGES: chrono::Duration = chrono::Duration::days(90);

/// Refreshes segment `id` of tenant `t` now, under the tenant's turn;
/// `None` when the segment is gone, or (`only_if_due`) no longer due.
pub async fn refresh_one(
    db: &Db,
    purposes: &Purposes,
    t: &TenantId,
    id: Uuid,
    only_if_due: bool,
    now: DateTime<Utc>,
) -> Result<Option<Refreshed>, ServiceError> {
    let Some(source) = crate::store::segments::get(db, t, id).await.map(|s| Some(s.rule)).or_else(|e| match e {
        ServiceError::NotFound(_) => Ok(None),
        other => Err(other),
    })?
    else {
        return Ok(None);
    };
    // Checked before the turn is taken: checking may ask profile.
    let rule = purposes.saved(t, &source).await?;
    let txn = db.begin().await?;
    members::take_turn(&txn, t).await?;
    let mut query = scoped::<segment::Entity>(t).filter(segment::Column::Id.eq(id));
    if only_if_due {
        query = query.filter(segment::Column::NextRefreshAt.lte(now));
    }
    if txn.get_database_backend() == DbBackend::Postgres {
        query = query.lock_exclusive();
    }
    if query.one(&txn).await?.is_none() {
        return Ok(None);
    }
    let refreshed = members::refresh(&txn, t, id, &rule, now).await?;
    txn.commit().await?;
    Ok(Some(refreshed))
}

/// Runs until `stop` turns true.
pub async fn run(db: Db, purposes: Purposes, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        if let Err(err) = round(&db, &purposes).await {
            tracing::warn!(error = %err, "segment refresh round failed; trying again next round");
        }
        tokio::select! {
            () = tokio::time::sleep(ROUND) => {}
            _ = stop.changed() => {}
        }
    }
}

/// One round: the due segments, then the changes that aged out.
async fn round(db: &Db, purposes: &Purposes) -> Result<(), ServiceError> {
    let now = cx_runtime::store::now();
    for (tenant, id) in members::due(db, now, PER_ROUND).await? {
        let Ok(t) = TenantId::parse(&tenant) else { continue };
        let span = tracing::info_span!("segment.refresh", segment = %id, tenant = %t);
        let refreshed = tracing::Instrument::instrument(refresh_one(db, purposes, &t, id, true, now), span).await;
        match refreshed {
            Ok(Some(r)) => {
                tracing::info!(segment = %id, entered = r.entered, left = r.left, members = r.members, "segment refreshed")
            }
            Ok(None) => {}
            // A rule that no longer checks, or profile away: the segment
            // waits for its next interval rather than blocking the round.
            Err(err) => {
                tracing::warn!(segment = %id, error = %err, "segment not refreshed");
                members::postpone(db, &t, id, now).await?;
            }
        }
    }
    members::age_out(db, now - KEEP_CHANGES).await?;
    Ok(())
}
