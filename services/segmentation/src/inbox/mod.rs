//! What other services send the segmentation service through their
//! outboxes, each kept in the fact table: the touchpoints journey stored
//! ([`touchpoints`]); consent decisions and profile facts from profile,
//! scores and open-case counts from survey ([`feeds`]). The runtime's inbox
//! applies each message id once, in the transaction of its effects.

pub(crate) mod feeds;
pub(crate) mod touchpoints;

use std::collections::{HashMap, HashSet};

use cx_runtime::TenantId;
use cx_runtime::error::ServiceError;
use cx_runtime::outbox::inbox::Handlers;
use sea_orm::DatabaseTransaction;
use uuid::Uuid;

pub use feeds::{PROFILE, SURVEY};
pub use touchpoints::{MAX_OFFERED, TOUCHPOINTS_SENDER};

/// The segmentation service's inbox.
pub fn routes(handlers: Handlers) -> Handlers {
    feeds::routes(touchpoints::routes(handlers))
}

/// Ids per GDPR look-up: well under SQLite's 32,766 parameters.
const IDS_PER_STATEMENT: usize = 5_000;

/// Whose data each of `ids` is, as kept here: itself, or the survivor of a
/// merge; an erased customer is left out (their data must not come back).
pub(crate) async fn kept(
    txn: &DatabaseTransaction,
    t: &TenantId,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Uuid>, ServiceError> {
    let mut survivors = HashMap::new();
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        survivors.extend(cx_runtime::gdpr::survivors(txn, t, chunk).await?);
    }
    let owner = |id: &Uuid| survivors.get(id).copied().unwrap_or(*id);
    let owners: Vec<Uuid> = ids.iter().map(owner).collect::<HashSet<_>>().into_iter().collect();
    let mut erased = HashSet::new();
    for chunk in owners.chunks(IDS_PER_STATEMENT) {
        erased.extend(cx_runtime::gdpr::erased(txn, t, chunk).await?);
    }
    Ok(ids.iter().map(|id| (*id, owner(id))).filter(|(_, o)| !erased.contains(o)).collect())
}
