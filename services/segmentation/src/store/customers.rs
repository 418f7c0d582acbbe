//! Merges and erasures over everything the feeds keep of a customer, for
//! the service's GDPR participant.

use cx_runtime::TenantId;
use cx_runtime::gdpr::Counts;
use sea_orm::{DatabaseTransaction, DbErr};
use uuid::Uuid;

use super::{consents, facts, scores};

/// What `merged` has becomes the survivor's: consents and scores where
/// they are later, responses summed; the merged customer's rows go. The
/// survivor's open cases and profile facts come from their feeds.
pub async fn merge(txn: &DatabaseTransaction, t: &TenantId, survivor: Uuid, merged: Uuid) -> Result<Counts, DbErr> {
    let mut counts = consents::merge(txn, t, survivor, merged).await?;
    counts.extend(scores::merge(txn, t, survivor, merged).await?);
    counts.extend(facts::merge(txn, t, survivor, merged).await?);
    Ok(counts)
}

/// Deletes everything kept of `customers`.
pub async fn erase(txn: &DatabaseTransaction, t: &TenantId, customers: &[Uuid]) -> Result<Counts, DbErr> {
    let mut counts = consents::erase(txn, t, customers).await?;
    counts.extend(scores::erase(txn, t, customers).await?);
    counts.extend(facts::erase(txn, t, customers).await?);
    Ok(counts)
}
