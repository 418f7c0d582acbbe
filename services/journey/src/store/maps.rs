//! Journey maps and their versions.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use cx_runtime::TenantId;
use cx_runtime::store::{one_of, scoped, scoped_delete, scoped_update};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use uuid::Uuid;

use super::entity::{journey_map, map_version};
use super::{JourneyError, JourneyStore, Result};
use crate::domain::map::{MetaJourney, Step};

/// A map as stored, at one version.
#[derive(Clone, Debug, PartialEq)]
pub struct MapRecord {
    pub id: Uuid,
    pub name: String,
    pub customer_type: String,
    pub meta_journey: MetaJourney,
    pub version: i32,
    pub steps: Vec<Step>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The fields of a map a client sets (all of them at creation; the masked
/// ones at update).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MapChanges {
    pub name: Option<String>,
    pub customer_type: Option<String>,
    pub meta_journey: Option<MetaJourney>,
    pub steps: Option<Vec<Step>>,
}

fn steps_json(steps: &[Step]) -> Result<serde_json::Value> {
    serde_json::to_value(steps).map_err(|e| JourneyError::Corrupt(e.to_string()))
}

fn steps_of(json: serde_json::Value, id: Uuid) -> Result<Vec<Step>> {
    serde_json::from_value(json).map_err(|e| JourneyError::Corrupt(format!("steps of map {id}: {e}")))
}

fn record(row: journey_map::Model, version: i32, steps: Vec<Step>) -> Result<MapRecord> {
    let meta_journey = MetaJourney::parse(&row.meta_journey)
        .ok_or_else(|| JourneyError::Corrupt(format!("meta journey '{}' of map {}", row.meta_journey, row.id)))?;
    Ok(MapRecord {
        id: row.id,
        name: row.name,
        customer_type: row.customer_type,
        meta_journey,
        version,
        steps,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

fn version_row(t: &TenantId, map: Uuid, version: i32, steps: &[Step]) -> Result<map_version::ActiveModel> {
    Ok(map_version::ActiveModel {
        tenant_id: Set(t.to_string()),
        map_id: Set(map),
        version: Set(version),
        steps: Set(steps_json(steps)?),
        created_at: Set(cx_runtime::store::now()),
    })
}

impl JourneyStore {
    /// Creates a map at version 1. Every field of `new` is set.
    pub async fn create_map(&self, t: &TenantId, new: MapChanges) -> Result<MapRecord> {
        let id = Uuid::now_v7();
        let now = cx_runtime::store::now();
        let steps = new.steps.unwrap_or_default();
        let txn = self.db().begin().await?;
        journey_map::Entity::insert(journey_map::ActiveModel {
            tenant_id: Set(t.to_string()),
            id: Set(id),
            name: Set(new.name.unwrap_or_default()),
            customer_type: Set(new.customer_type.unwrap_or_default()),
            meta_journey: Set(new.meta_journey.unwrap_or(MetaJourney::Discovery).as_str().to_owned()),
            version: Set(1),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_without_returning(&txn)
        .await?;
        map_version::Entity::insert(version_row(t, id, 1, &steps)?).exec_without_returning(&txn).await?;
        txn.commit().await?;
        self.get_map(t, id, None).await
    }

    /// A map at `version`, or at its current one.
    pub async fn get_map(&self, t: &TenantId, id: Uuid, version: Option<i32>) -> Result<MapRecord> {
        let not_found = || JourneyError::not_found(format_args!("journey map {id}"));
        let row = scoped::<journey_map::Entity>(t)
            .filter(journey_map::Column::Id.eq(id))
            .one(self.db())
            .await?
            .ok_or_else(not_found)?;
        let version = version.unwrap_or(row.version);
        let steps = scoped::<map_version::Entity>(t)
            .filter(map_version::Column::MapId.eq(id))
            .filter(map_version::Column::Version.eq(version))
            .one(self.db())
            .await?
            .ok_or_else(|| JourneyError::not_found(format_args!("version {version} of journey map {id}")))?;
        record(row, version, steps_of(steps.steps, id)?)
    }

    /// Maps in creation order, after `after`; one more than `limit` when
    /// another page follows.
    pub async fn list_maps(&self, t: &TenantId, after: Option<Uuid>, limit: u64) -> Result<Vec<MapRecord>> {
        let mut query = scoped::<journey_map::Entity>(t).order_by_asc(journey_map::Column::Id).limit(limit + 1);
        if let Some(after) = after {
            query = query.filter(journey_map::Column::Id.gt(after));
        }
        let rows = query.all(self.db()).await?;
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let mut current = current_steps(self.db(), t, &ids).await?;
        rows.into_iter()
            .map(|row| {
                let (version, steps) = current.remove(&row.id).unwrap_or((row.version, Vec::new()));
                record(row, version, steps)
            })
            .collect()
    }

    /// Applies `changes`; new steps make a new version.
    pub async fn update_map(&self, t: &TenantId, id: Uuid, changes: MapChanges) -> Result<MapRecord> {
        let txn = self.db().begin().await?;
        let mut query = scoped::<journey_map::Entity>(t).filter(journey_map::Column::Id.eq(id));
        if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
            query = query.lock_exclusive();
        }
        let row = query.one(&txn).await?.ok_or_else(|| JourneyError::not_found(format_args!("journey map {id}")))?;
        let mut update = scoped_update::<journey_map::Entity>(t)
            .filter(journey_map::Column::Id.eq(id))
            .col_expr(journey_map::Column::UpdatedAt, Expr::value(cx_runtime::store::now()));
        if let Some(name) = changes.name {
            update = update.col_expr(journey_map::Column::Name, Expr::value(name));
        }
        if let Some(customer_type) = changes.customer_type {
            update = update.col_expr(journey_map::Column::CustomerType, Expr::value(customer_type));
        }
        if let Some(meta) = changes.meta_journey {
            update = update.col_expr(journey_map::Column::MetaJourney, Expr::value(meta.as_str()));
        }
        if let Some(steps) = changes.steps {
            let version = row.version + 1;
            map_version::Entity::insert(version_row(t, id, version, &steps)?).exec_without_returning(&txn).await?;
            update = update.col_expr(journey_map::Column::Version, Expr::value(version));
        }
        update.exec(&txn).await?;
        txn.commit().await?;
        self.get_map(t, id, None).await
    }

    /// Deletes a map and its versions; touchpoints keep their reference.
    pub async fn delete_map(&self, t: &TenantId, id: Uuid) -> Result<()> {
        let txn = self.db().begin().await?;
        let gone = scoped_delete::<journey_map::Entity>(t).filter(journey_map::Column::Id.eq(id)).exec(&txn).await?;
        if gone.rows_affected == 0 {
            return Err(JourneyError::not_found(format_args!("journey map {id}")));
        }
        scoped_delete::<map_version::Entity>(t).filter(map_version::Column::MapId.eq(id)).exec(&txn).await?;
        txn.commit().await?;
        Ok(())
    }
}

/// The current version and steps of each of `ids` that exists.
pub async fn current_steps<C: ConnectionTrait>(
    conn: &C,
    t: &TenantId,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, (i32, Vec<Step>)>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let backend = conn.get_database_backend();
    let current: Vec<(Uuid, i32)> = scoped::<journey_map::Entity>(t)
        .filter(one_of(backend, journey_map::Column::Id, ids))
        .select_only()
        .column(journey_map::Column::Id)
        .column(journey_map::Column::Version)
        .into_tuple()
        .all(conn)
        .await?;
    let mut out = HashMap::with_capacity(current.len());
    for (id, version) in current {
        let row = scoped::<map_version::Entity>(t)
            .filter(map_version::Column::MapId.eq(id))
            .filter(map_version::Column::Version.eq(version))
            .one(conn)
            .await?
            .ok_or_else(|| JourneyError::Corrupt(format!("version {version} of map {id} is missing")))?;
        out.insert(id, (version, steps_of(row.steps, id)?));
    }
    Ok(out)
}
