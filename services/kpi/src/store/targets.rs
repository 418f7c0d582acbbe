//! Targets: set (created, or its value replaced), found by metric and
//! filter, listed, deleted.

use cx_proto::kpi::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::error::ServiceError;
use cx_runtime::store::{now, scoped, scoped_delete};
use prost::Message;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::entity::target;
use crate::filter::Filter;
use crate::metric::Metric;

pub type Result<T> = std::result::Result<T, ServiceError>;

/// Most targets a tenant keeps: a dashboard shows dozens.
pub const MAX_TARGETS: u64 = 1_000;

fn read(row: &target::Model) -> Result<pb::Target> {
    let mut target = pb::Target::decode(row.body.as_slice())
        .map_err(|e| ServiceError::Corrupt(format!("target {}: {e}", row.id)))?;
    target.id = row.id.to_string();
    target.update_time = Some(cx_proto::timestamp(row.updated_at));
    Ok(target)
}

/// Sets the target of `metric` and `filter` to `value`: a new target, or
/// the same one (its id kept) with the new value.
pub async fn set(
    conn: &impl ConnectionTrait,
    t: &TenantId,
    metric: Metric,
    filter: &Filter,
    value: f64,
) -> Result<pb::Target> {
    let key = filter.key();
    let existing = find(conn, t, metric, &key).await?;
    if existing.is_none() && scoped::<target::Entity>(t).count(conn).await? >= MAX_TARGETS {
        return Err(ServiceError::FailedPrecondition(format!(
            "the tenant has {MAX_TARGETS} targets, the most it keeps: delete one first"
        )));
    }
    let body = pb::Target {
        id: String::new(),
        metric: metric.proto().into(),
        filter: Some(filter.proto()),
        value,
        update_time: None,
    };
    let row = target::ActiveModel {
        tenant_id: Set(t.to_string()),
        id: Set(Uuid::now_v7()),
        metric: Set(metric.code()),
        filter_key: Set(key.clone()),
        body: Set(body.encode_to_vec()),
        updated_at: Set(now()),
    };
    // Two concurrent sets of one target: one inserts, the other replaces.
    let conflict = OnConflict::columns([target::Column::TenantId, target::Column::Metric, target::Column::FilterKey])
        .update_columns([target::Column::Body, target::Column::UpdatedAt])
        .to_owned();
    target::Entity::insert(row).on_conflict(conflict).exec_without_returning(conn).await?;
    find(conn, t, metric, &key)
        .await?
        .ok_or_else(|| ServiceError::Internal("a target just set cannot be read back".into()))
}

/// The target of `metric` and the filter of key `key`, if set.
pub async fn find(conn: &impl ConnectionTrait, t: &TenantId, metric: Metric, key: &str) -> Result<Option<pb::Target>> {
    let row = scoped::<target::Entity>(t)
        .filter(target::Column::Metric.eq(metric.code()))
        .filter(target::Column::FilterKey.eq(key))
        .one(conn)
        .await?;
    row.as_ref().map(read).transpose()
}

/// Targets in id order after `after`; one more than `limit` when another
/// page follows.
pub async fn list(
    conn: &impl ConnectionTrait,
    t: &TenantId,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<pb::Target>> {
    let mut query = scoped::<target::Entity>(t).order_by_asc(target::Column::Id).limit(limit + 1);
    if let Some(after) = after {
        query = query.filter(target::Column::Id.gt(after));
    }
    query.all(conn).await?.iter().map(read).collect()
}

/// Deletes target `id`.
pub async fn delete(conn: &impl ConnectionTrait, t: &TenantId, id: Uuid) -> Result<()> {
    let deleted = scoped_delete::<target::Entity>(t).filter(target::Column::Id.eq(id)).exec(conn).await?;
    if deleted.rows_affected == 0 {
        return Err(ServiceError::not_found(format_args!("target {id}")));
    }
    Ok(())
}
