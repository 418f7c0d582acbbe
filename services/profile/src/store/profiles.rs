//! Profiles: the customer record as the store returns it, read one at a
//! time or a page at a time, and updated with optimistic concurrency.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use cx_runtime::TenantId;
use cx_runtime::store::{increment, scoped, scoped_update};
use sea_orm::{ActiveValue::Set, ColumnTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait};
use uuid::Uuid;

use super::entity::{customer, identity};
use super::identities::identity_of;
use super::{ProfileStore, Result, intensity};
use crate::domain::attributes::{Attributes, MaskPath, apply_mask};
use crate::domain::identity::Identity;
use crate::domain::intensity::{Category, Components, Intensity, IntensityModel};
use crate::domain::lifecycle::Lifecycle;
use crate::domain::scores::Score;
use crate::error::ProfileError;

/// A profile as the store returns it.
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileRecord {
    pub id: Uuid,
    pub persona: String,
    pub attributes: Attributes,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Sorted by kind, then value.
    pub identities: Vec<Identity>,
    pub lifecycle: Lifecycle,
    pub lifecycle_since: Option<DateTime<Utc>>,
    /// `None` when no touchpoint is in the window.
    pub intensity_components: Option<Components>,
    pub last_touch_at: Option<DateTime<Utc>>,
    /// The latest answer of each kind of survey, in kind order.
    pub latest_scores: Vec<Score>,
}

impl ProfileRecord {
    /// The digital intensity under the tenant's `model`.
    pub fn intensity(&self, model: &IntensityModel) -> Option<Intensity> {
        self.intensity_components.map(|c| model.intensity(&c))
    }
}

/// What ListProfiles may filter on.
#[derive(Clone, Copy, Debug, Default)]
pub struct ListFilter {
    pub lifecycle: Option<Lifecycle>,
    pub category: Option<Category>,
}

/// The changes an update asks for.
#[derive(Clone, Debug)]
pub struct ProfileUpdate {
    pub paths: Vec<MaskPath>,
    pub persona: String,
    pub attributes: Attributes,
}

fn record_of(row: customer::Model, mut identities: Vec<Identity>, latest_scores: Vec<Score>) -> Result<ProfileRecord> {
    identities.sort();
    let intensity_components = intensity::components_of(&row);
    let attributes: Attributes = serde_json::from_value(row.attributes)
        .map_err(|e| ProfileError::Corrupt(format!("attributes of profile {}: {e}", row.id)))?;
    let lifecycle = Lifecycle::parse(&row.lifecycle)
        .ok_or_else(|| ProfileError::Corrupt(format!("lifecycle '{}' of profile {}", row.lifecycle, row.id)))?;
    Ok(ProfileRecord {
        id: row.id,
        persona: row.persona,
        attributes,
        version: row.version,
        created_at: row.created_at,
        updated_at: row.updated_at,
        identities,
        lifecycle,
        lifecycle_since: row.lifecycle_since,
        intensity_components,
        last_touch_at: row.last_touch_at,
        latest_scores,
    })
}

pub(super) fn new_customer(t: &TenantId, id: Uuid, now: DateTime<Utc>) -> customer::ActiveModel {
    customer::ActiveModel {
        tenant_id: Set(t.to_string()),
        id: Set(id),
        persona: Set(String::new()),
        attributes: Set(serde_json::json!({})),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
        last_touch_at: Set(None),
        lifecycle: Set(Lifecycle::Prospect.as_str().to_owned()),
        lifecycle_since: Set(None),
        lifecycle_next_change: Set(None),
        dii_next_change: Set(None),
        dii_digital_share: Set(None),
        dii_digital_breadth: Set(None),
        dii_device_factor: Set(None),
        dii_self_service_share: Set(None),
    }
}

impl ProfileStore {
    pub async fn get(&self, t: &TenantId, id: Uuid) -> Result<ProfileRecord> {
        self.get_many(t, &[id]).await?.pop().ok_or_else(|| ProfileError::not_found(format_args!("profile {id}")))
    }

    /// One page of profiles in id (creation) order, after `after`.
    pub async fn list(&self, t: &TenantId, after: Option<Uuid>, limit: u64) -> Result<(Vec<ProfileRecord>, bool)> {
        self.list_filtered(t, after, limit, &ListFilter::default()).await
    }

    /// One page of the profiles matching `filter`.
    pub async fn list_filtered(
        &self,
        t: &TenantId,
        after: Option<Uuid>,
        limit: u64,
        filter: &ListFilter,
    ) -> Result<(Vec<ProfileRecord>, bool)> {
        let mut query = scoped::<customer::Entity>(t).order_by_asc(customer::Column::Id).limit(limit + 1);
        if let Some(lifecycle) = filter.lifecycle {
            query = query.filter(customer::Column::Lifecycle.eq(lifecycle.as_str()));
        }
        if let Some(category) = filter.category {
            let model = self.intensity_model(t).await?;
            query = query.filter(intensity::in_category(self.db.get_database_backend(), &model, category));
        }
        if let Some(after) = after {
            query = query.filter(customer::Column::Id.gt(after));
        }
        let mut rows = query.all(&self.db).await?;
        let more = cx_runtime::page::trim_page(&mut rows, limit);
        Ok((self.records(t, rows).await?, more))
    }

    /// The stored profiles among `ids` (merged-away and erased ones are
    /// not), in id order: a few statements whatever their number.
    pub async fn get_many(&self, t: &TenantId, ids: &[Uuid]) -> Result<Vec<ProfileRecord>> {
        let mut rows = Vec::new();
        for chunk in ids.chunks(5_000) {
            rows.extend(
                scoped::<customer::Entity>(t)
                    .filter(cx_runtime::store::one_of(self.db.get_database_backend(), customer::Column::Id, chunk))
                    .order_by_asc(customer::Column::Id)
                    .all(&self.db)
                    .await?,
            );
        }
        self.records(t, rows).await
    }

    /// `rows` with their identities and latest scores.
    async fn records(&self, t: &TenantId, rows: Vec<customer::Model>) -> Result<Vec<ProfileRecord>> {
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let mut identities: HashMap<Uuid, Vec<Identity>> = HashMap::new();
        let mut scores = super::scores::latest(&self.db, t, &ids).await?;
        if !ids.is_empty() {
            for row in
                scoped::<identity::Entity>(t).filter(identity::Column::CustomerId.is_in(ids)).all(&self.db).await?
            {
                if let Some(identity) = identity_of(&row) {
                    identities.entry(row.customer_id).or_default().push(identity);
                }
            }
        }
        rows.into_iter()
            .map(|row| {
                let own = identities.remove(&row.id).unwrap_or_default();
                let answers = scores.remove(&row.id).unwrap_or_default();
                record_of(row, own, answers)
            })
            .collect()
    }

    /// Applies an update with optimistic concurrency on `version`.
    pub async fn update(
        &self,
        t: &TenantId,
        id: Uuid,
        update: &ProfileUpdate,
        max_attributes: usize,
    ) -> Result<ProfileRecord> {
        for _ in 0..5 {
            let current = self.get(t, id).await?;
            let mut attributes = current.attributes.clone();
            apply_mask(&mut attributes, &update.attributes, &update.paths);
            if attributes.len() > max_attributes {
                return Err(ProfileError::invalid(
                    "profile.attributes",
                    format!(
                        "a profile has at most {max_attributes} attributes; this update would leave {}",
                        attributes.len()
                    ),
                ));
            }
            let persona = if update.paths.contains(&MaskPath::Persona) {
                update.persona.clone()
            } else {
                current.persona.clone()
            };
            let json = serde_json::to_value(&attributes).map_err(|e| ProfileError::Corrupt(e.to_string()))?;
            let txn = self.db.begin().await?;
            let result = scoped_update::<customer::Entity>(t)
                .col_expr(customer::Column::Persona, persona.into())
                .col_expr(customer::Column::Attributes, json.into())
                .col_expr(customer::Column::Version, increment(customer::Column::Version))
                .col_expr(customer::Column::UpdatedAt, cx_runtime::store::now().into())
                .filter(customer::Column::Id.eq(id))
                .filter(customer::Column::Version.eq(current.version))
                .exec(&txn)
                .await?;
            if result.rows_affected == 1 {
                self.facts_changed(&txn, t, &[id]).await?;
                txn.commit().await?;
                return self.get(t, id).await;
            }
            txn.rollback().await?;
        }
        Err(ProfileError::Aborted(format!("profile {id} is being changed concurrently, retry")))
    }

    /// Fails with NOT_FOUND unless the profile exists.
    pub(super) async fn exists(&self, t: &TenantId, id: Uuid) -> Result<()> {
        let found = scoped::<customer::Entity>(t)
            .filter(customer::Column::Id.eq(id))
            .select_only()
            .column(customer::Column::Id)
            .into_tuple::<Uuid>()
            .one(&self.db)
            .await?;
        found.map(|_| ()).ok_or_else(|| ProfileError::not_found(format_args!("profile {id}")))
    }
}
