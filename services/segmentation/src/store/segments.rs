//! Segments, each stored as its `cx.segmentation.v1.Segment` message; the
//! name beside it is unique in the tenant.

use cx_proto::segmentation::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::error::ServiceError;
use cx_runtime::store::{is_unique_violation, scoped, scoped_delete, scoped_update};
use prost::Message;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};
use uuid::Uuid;

use super::entity::segment;

pub type Result<T> = std::result::Result<T, ServiceError>;

fn decode(body: &[u8], id: Uuid) -> Result<pb::Segment> {
    pb::Segment::decode(body).map_err(|e| ServiceError::Corrupt(format!("segment {id}: {e}")))
}

fn not_found(id: Uuid) -> ServiceError {
    ServiceError::not_found(format_args!("segment {id}"))
}

/// What a write whose name is taken answers.
fn name_taken(err: DbErr, name: &str) -> ServiceError {
    if is_unique_violation(&err) {
        ServiceError::already_exists(format_args!("a segment named {}", cx_runtime::validate::text::shown(name)))
    } else {
        err.into()
    }
}

/// Stores `segment` (checked, its rule canonical): its id (UUID v7) and times
/// are set here.
pub async fn create(conn: &impl ConnectionTrait, t: &TenantId, mut segment: pb::Segment) -> Result<pb::Segment> {
    let id = Uuid::now_v7();
    let now = cx_proto::timestamp(cx_runtime::store::now());
    segment.id = id.to_string();
    segment.create_time = Some(now);
    segment.update_time = Some(now);
    segment::Entity::insert(segment::ActiveModel {
        tenant_id: Set(t.to_string()),
        id: Set(id),
        name: Set(segment.name.clone()),
        body: Set(segment.encode_to_vec()),
    })
    .exec_without_returning(conn)
    .await
    .map_err(|e| name_taken(e, &segment.name))?;
    Ok(segment)
}

/// The tenant's segment `id`.
pub async fn get(conn: &impl ConnectionTrait, t: &TenantId, id: Uuid) -> Result<pb::Segment> {
    let row = scoped::<segment::Entity>(t).filter(segment::Column::Id.eq(id)).one(conn).await?;
    row.map_or_else(|| Err(not_found(id)), |r| decode(&r.body, r.id))
}

/// Segments in creation order after `after` (the last of the previous
/// page); one more than `limit` when another page follows.
pub async fn list(
    conn: &impl ConnectionTrait,
    t: &TenantId,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<pb::Segment>> {
    let mut query = scoped::<segment::Entity>(t).order_by_asc(segment::Column::Id).limit(limit + 1);
    if let Some(after) = after {
        query = query.filter(segment::Column::Id.gt(after));
    }
    query.all(conn).await?.into_iter().map(|r| decode(&r.body, r.id)).collect()
}

/// Changes segment `id`: `change` is given the stored segment and returns
/// the new one (or why not); its update time is set here. Concurrent
/// updates take turns on its row.
pub async fn update(
    db: &DatabaseConnection,
    t: &TenantId,
    id: Uuid,
    change: impl FnOnce(pb::Segment) -> Result<pb::Segment>,
) -> Result<pb::Segment> {
    let txn = db.begin().await?;
    let mut query = scoped::<segment::Entity>(t).filter(segment::Column::Id.eq(id));
    if txn.get_database_backend() == DbBackend::Postgres {
        query = query.lock_exclusive();
    }
    let row = query.one(&txn).await?.ok_or_else(|| not_found(id))?;
    let mut next = change(decode(&row.body, id)?)?;
    next.update_time = Some(cx_proto::timestamp(cx_runtime::store::now()));
    scoped_update::<segment::Entity>(t)
        .filter(segment::Column::Id.eq(id))
        .col_expr(segment::Column::Name, Expr::value(next.name.clone()))
        .col_expr(segment::Column::Body, Expr::value(next.encode_to_vec()))
        .exec(&txn)
        .await
        .map_err(|e| name_taken(e, &next.name))?;
    txn.commit().await?;
    Ok(next)
}

/// Deletes segment `id`.
pub async fn delete(conn: &impl ConnectionTrait, t: &TenantId, id: Uuid) -> Result<()> {
    let gone = scoped_delete::<segment::Entity>(t).filter(segment::Column::Id.eq(id)).exec(conn).await?;
    if gone.rows_affected == 0 {
        return Err(not_found(id));
    }
    Ok(())
}
