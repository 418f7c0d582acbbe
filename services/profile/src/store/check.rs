//! Which profile ids a tenant has (CheckProfiles).

use std::collections::HashSet;

use cx_runtime::TenantId;
use cx_runtime::store::scoped;
use sea_orm::{ColumnTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::ProfileStore;
use super::entity::{customer, merge};
use crate::error::ProfileError;

/// Ids per query: well under SQLite's 32,766 parameters.
const PER_QUERY: usize = 5_000;

impl ProfileStore {
    /// Those of `ids` that are profiles of the tenant, or were merged into
    /// one (they keep answering with their survivor).
    pub async fn known(&self, t: &TenantId, ids: &[Uuid]) -> Result<HashSet<Uuid>, ProfileError> {
        let mut known = HashSet::with_capacity(ids.len());
        for chunk in ids.chunks(PER_QUERY) {
            let live: Vec<Uuid> = scoped::<customer::Entity>(t)
                .select_only()
                .column(customer::Column::Id)
                .filter(customer::Column::Id.is_in(chunk.iter().copied()))
                .into_tuple()
                .all(self.db())
                .await?;
            known.extend(live);
            let rest: Vec<Uuid> = chunk.iter().filter(|id| !known.contains(id)).copied().collect();
            if rest.is_empty() {
                continue;
            }
            let merged: Vec<Uuid> = scoped::<merge::Entity>(t)
                .select_only()
                .column(merge::Column::MergedId)
                .filter(merge::Column::MergedId.is_in(rest))
                .into_tuple()
                .all(self.db())
                .await?;
            known.extend(merged);
        }
        Ok(known)
    }
}
