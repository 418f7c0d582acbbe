//! Everything the profile service holds about one customer (GDPR access).

use cx_runtime::TenantId;
use cx_runtime::store::scoped;
use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use super::consent::consent_of;
use super::entity::{activity_day, consent_event, device, lifecycle_transition, merge, purchase_day};
use super::sweep::{Transition, transition_of};
use super::{ConsentRecord, ProfileRecord, ProfileStore};
use crate::error::ProfileError;

type Result<T> = std::result::Result<T, ProfileError>;

/// A customer's data, as stored.
#[derive(Clone, Debug)]
pub struct CustomerData {
    pub profile: ProfileRecord,
    pub consents: Vec<ConsentRecord>,
    pub activity: Vec<activity_day::Model>,
    pub purchases: Vec<purchase_day::Model>,
    pub devices: Vec<device::Model>,
    pub transitions: Vec<Transition>,
    /// The profiles merged into this one.
    pub merged_ids: Vec<Uuid>,
    /// Every id merged into it, chains included (a into b, then b into
    /// this one): what the other services are asked about.
    pub merged_tree: Vec<Uuid>,
}

impl ProfileStore {
    pub async fn export(&self, t: &TenantId, id: Uuid) -> Result<CustomerData> {
        let profile = self.get(t, id).await?;
        let db = self.db();
        let consents = scoped::<consent_event::Entity>(t)
            .filter(consent_event::Column::CustomerId.eq(id))
            .order_by_asc(consent_event::Column::Id)
            .all(db)
            .await?
            .into_iter()
            .filter_map(consent_of)
            .collect();
        let activity = scoped::<activity_day::Entity>(t)
            .filter(activity_day::Column::CustomerId.eq(id))
            .order_by_asc(activity_day::Column::Day)
            .all(db)
            .await?;
        let purchases = scoped::<purchase_day::Entity>(t)
            .filter(purchase_day::Column::CustomerId.eq(id))
            .order_by_asc(purchase_day::Column::Day)
            .all(db)
            .await?;
        let devices = scoped::<device::Entity>(t)
            .filter(device::Column::CustomerId.eq(id))
            .order_by_asc(device::Column::DeviceId)
            .all(db)
            .await?;
        let transitions = scoped::<lifecycle_transition::Entity>(t)
            .filter(lifecycle_transition::Column::CustomerId.eq(id))
            .order_by_asc(lifecycle_transition::Column::Id)
            .all(db)
            .await?
            .into_iter()
            .filter_map(transition_of)
            .collect();
        let merged_ids = scoped::<merge::Entity>(t)
            .filter(merge::Column::SurvivorId.eq(id))
            .all(db)
            .await?
            .into_iter()
            .map(|m| m.merged_id)
            .collect();
        let merged_tree = super::erase::merged_into(db, t, id).await?;
        Ok(CustomerData { profile, consents, activity, purchases, devices, transitions, merged_ids, merged_tree })
    }
}
