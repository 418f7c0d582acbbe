//! Segments, each stored as its `cx.segmentation.v1.Segment` message; the
//! name beside it is unique in the tenant, and the columns of its refresh
//! (interval, when next, when last, members) beside it too: the refresh job
//! writes them without decoding the message.

use cx_proto::segmentation::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::error::ServiceError;
use cx_runtime::store::{Db, is_unique_violation, scoped, scoped_delete, scoped_update};
use prost::Message;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use uuid::Uuid;

use super::entity::{member, segment};

pub type Result<T> = std::result::Result<T, ServiceError>;

/// A stored segment as clients read it: its message, with the counts of its
/// last refresh.
fn read(row: &segment::Model) -> Result<pb::Segment> {
    let mut segment = pb::Segment::decode(row.body.as_slice())
        .map_err(|e| ServiceError::Corrupt(format!("segment {}: {e}", row.id)))?;
    segment.member_count = row.member_count;
    segment.refresh_time = row.refreshed_at.map(cx_proto::timestamp);
    Ok(segment)
}

/// The message as stored: without what the columns hold.
fn body(segment: &pb::Segment) -> Vec<u8> {
    pb::Segment { member_count: 0, refresh_time: None, ..segment.clone() }.encode_to_vec()
}

fn seconds(segment: &pb::Segment) -> i64 {
    crate::segments::refresh_interval(segment).num_seconds()
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
    // A new segment is refreshed at the job's next round.
    segment::Entity::insert(segment::ActiveModel {
        tenant_id: Set(t.to_string()),
        id: Set(id),
        name: Set(segment.name.clone()),
        body: Set(body(&segment)),
        refresh_seconds: Set(seconds(&segment)),
        next_refresh_at: Set(cx_runtime::store::now()),
        refreshed_at: Set(None),
        member_count: Set(0),
        refreshes: Set(0),
        erased_members: Set(0),
        merged_members: Set(0),
    })
    .exec_without_returning(conn)
    .await
    .map_err(|e| name_taken(e, &segment.name))?;
    Ok(segment)
}

/// The tenant's segment `id`.
pub async fn get(conn: &impl ConnectionTrait, t: &TenantId, id: Uuid) -> Result<pb::Segment> {
    read(&row(conn, t, id).await?)
}

/// The tenant's segment `id` as stored.
pub async fn row(conn: &impl ConnectionTrait, t: &TenantId, id: Uuid) -> Result<segment::Model> {
    scoped::<segment::Entity>(t).filter(segment::Column::Id.eq(id)).one(conn).await?.ok_or_else(|| not_found(id))
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
    query.all(conn).await?.iter().map(read).collect()
}

/// Changes segment `id`: `change` is given the stored segment and returns
/// the new one (or why not); its update time is set here. A new rule or
/// interval makes it due for a refresh now. Concurrent updates take turns
/// on its row.
pub async fn update(
    db: &Db,
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
    let before = read(&row)?;
    let mut next = change(before.clone())?;
    let now = cx_runtime::store::now();
    next.update_time = Some(cx_proto::timestamp(now));
    let mut update = scoped_update::<segment::Entity>(t)
        .filter(segment::Column::Id.eq(id))
        .col_expr(segment::Column::Name, Expr::value(next.name.clone()))
        .col_expr(segment::Column::Body, Expr::value(body(&next)))
        .col_expr(segment::Column::RefreshSeconds, Expr::value(seconds(&next)));
    if next.rule != before.rule || next.refresh_interval != before.refresh_interval {
        update = update.col_expr(segment::Column::NextRefreshAt, Expr::value(now));
    }
    update.exec(&txn).await.map_err(|e| name_taken(e, &next.name))?;
    txn.commit().await?;
    Ok(next)
}

/// Deletes segment `id` with its members; its recorded changes stay until
/// they age out, so a follower still reads them.
pub async fn delete(db: &Db, t: &TenantId, id: Uuid) -> Result<()> {
    let txn = db.begin().await?;
    let gone = scoped_delete::<segment::Entity>(t).filter(segment::Column::Id.eq(id)).exec(&txn).await?;
    if gone.rows_affected == 0 {
        return Err(not_found(id));
    }
    scoped_delete::<member::Entity>(t).filter(member::Column::SegmentId.eq(id)).exec(&txn).await?;
    txn.commit().await?;
    Ok(())
}
