//! The journey service's part in merges, erasures and access exports (the
//! runtime's [`cx_runtime::gdpr`] does the handshake): touchpoints and
//! roll-ups move to the survivor, or are deleted, or are read page by page.

use cx_runtime::TenantId;
use cx_runtime::gdpr::Counts;
use cx_runtime::store::{one_of, scoped, scoped_delete, scoped_update};
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseTransaction, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::Result;
use super::entity::touchpoint;

/// The merged customer's touchpoints now belong to the survivor, and so do
/// its instances: one the survivor has of the same id takes its touchpoints
/// (one customer now, one run; docs/DOMAIN.md §5.3), re-summarised like an
/// erasure then an ingest.
pub async fn merge(txn: &DatabaseTransaction, t: &TenantId, survivor: Uuid, merged: Uuid) -> Result<u64> {
    use super::rollup::{Change, apply, facts_of_customers};
    let mut leaving = facts_of_customers(txn, t, &[merged]).await?;
    leaving.retain(|f| f.instance.is_some());
    apply(txn, t, Change::Removed, &leaving).await?;
    let moved = scoped_update::<touchpoint::Entity>(t)
        .filter(touchpoint::Column::CustomerId.eq(merged))
        .col_expr(touchpoint::Column::CustomerId, Expr::value(survivor))
        .exec(txn)
        .await?;
    for fact in &mut leaving {
        fact.fact.customer = survivor;
    }
    apply(txn, t, Change::Added, &leaving).await?;
    Ok(moved.rows_affected)
}

/// Deletes everything held about `customers`; returns the counts.
pub async fn erase(txn: &DatabaseTransaction, t: &TenantId, customers: &[Uuid]) -> Result<Counts> {
    let backend = txn.get_database_backend();
    let leaving = super::rollup::facts_of_customers(txn, t, customers).await?;
    super::rollup::apply(txn, t, super::rollup::Change::Removed, &leaving).await?;
    let touchpoints = scoped_delete::<touchpoint::Entity>(t)
        .filter(one_of(backend, touchpoint::Column::CustomerId, customers))
        .exec(txn)
        .await?;
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    Ok(Counts::from([("touchpoints".to_owned(), count(touchpoints.rows_affected))]))
}
/// Where an export's next page starts: the customer (an index into those
/// exported) and the last touchpoint read of hers (newest first), if any.
pub type ExportCursor = (usize, Option<super::timeline::Position>);

/// One page of the touchpoints of `customers`, one customer after the
/// other, each newest first (one range of the timeline index), from
/// `after`; and where the next page starts, if one follows.
pub async fn export_page(
    conn: &impl ConnectionTrait,
    t: &TenantId,
    customers: &[Uuid],
    after: Option<ExportCursor>,
    limit: u64,
) -> Result<(Vec<touchpoint::Model>, Option<ExportCursor>)> {
    let (i, position) = after.unwrap_or((0, None));
    let Some(customer) = customers.get(i) else { return Ok((Vec::new(), None)) };
    let mut query = scoped::<touchpoint::Entity>(t)
        .filter(touchpoint::Column::CustomerId.eq(*customer))
        .order_by_desc(touchpoint::Column::OccurredAt)
        .order_by_desc(touchpoint::Column::Id)
        .limit(limit);
    if let Some((at, id)) = position {
        query = query.filter(
            Condition::any()
                .add(touchpoint::Column::OccurredAt.lt(at))
                .add(Condition::all().add(touchpoint::Column::OccurredAt.eq(at)).add(touchpoint::Column::Id.lt(id))),
        );
    }
    let page = query.all(conn).await?;
    let next = match page.last() {
        Some(last) if page.len() as u64 == limit => Some((i, Some((last.occurred_at, last.id.clone())))),
        _ => (i + 1 < customers.len()).then_some((i + 1, None)),
    };
    Ok((page, next))
}

/// The maps the customers' touchpoints belong to.
pub async fn maps_of(txn: &DatabaseTransaction, t: &TenantId, customers: &[Uuid]) -> Result<Vec<Uuid>> {
    let maps: Vec<Option<Uuid>> = cx_runtime::store::scoped::<touchpoint::Entity>(t)
        .filter(one_of(txn.get_database_backend(), touchpoint::Column::CustomerId, customers))
        .filter(touchpoint::Column::MapId.is_not_null())
        .select_only()
        .column(touchpoint::Column::MapId)
        .distinct()
        .into_tuple()
        .all(txn)
        .await?;
    Ok(maps.into_iter().flatten().collect())
}
