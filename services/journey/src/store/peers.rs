//! What the profile service tells the journey service: merges and erasures.

use std::collections::BTreeMap;

use cx_runtime::TenantId;
use cx_runtime::store::{one_of, scoped_delete, scoped_update};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect,
};
use uuid::Uuid;

use super::Result;
use super::entity::{profile_merge, touchpoint};

/// The merged customer's touchpoints now belong to the survivor; later
/// touchpoints for the merged id are recorded for the survivor too.
pub async fn merge(txn: &DatabaseTransaction, t: &TenantId, survivor: Uuid, merged: Uuid) -> Result<u64> {
    let moved = scoped_update::<touchpoint::Entity>(t)
        .filter(touchpoint::Column::CustomerId.eq(merged))
        .col_expr(touchpoint::Column::CustomerId, Expr::value(survivor))
        .exec(txn)
        .await?;
    // Merges of merges: whatever pointed at the merged id now points further.
    scoped_update::<profile_merge::Entity>(t)
        .filter(profile_merge::Column::SurvivorId.eq(merged))
        .col_expr(profile_merge::Column::SurvivorId, Expr::value(survivor))
        .exec(txn)
        .await?;
    super::rollup::merge(txn, t, survivor, merged).await?;
    let row = profile_merge::ActiveModel {
        tenant_id: Set(t.to_string()),
        merged_id: Set(merged),
        survivor_id: Set(survivor),
        merged_at: Set(cx_runtime::store::now()),
    };
    let upsert = OnConflict::columns([profile_merge::Column::TenantId, profile_merge::Column::MergedId])
        .update_column(profile_merge::Column::SurvivorId)
        .to_owned();
    profile_merge::Entity::insert(row).on_conflict(upsert).exec_without_returning(txn).await?;
    Ok(moved.rows_affected)
}

/// Deletes everything held about `customers`; returns the counts.
pub async fn erase(txn: &DatabaseTransaction, t: &TenantId, customers: &[Uuid]) -> Result<BTreeMap<String, i64>> {
    let backend = txn.get_database_backend();
    let leaving = super::rollup::facts_of_customers(txn, t, customers).await?;
    super::rollup::apply(txn, t, super::rollup::Change::Removed, &leaving).await?;
    let touchpoints = scoped_delete::<touchpoint::Entity>(t)
        .filter(one_of(backend, touchpoint::Column::CustomerId, customers))
        .exec(txn)
        .await?;
    let merges = scoped_delete::<profile_merge::Entity>(t)
        .filter(sea_orm::Condition::any().add(one_of(backend, profile_merge::Column::MergedId, customers)).add(one_of(
            backend,
            profile_merge::Column::SurvivorId,
            customers,
        )))
        .exec(txn)
        .await?;
    for customer in customers {
        cx_runtime::outbox::dispatcher::forget_mentions(
            txn,
            t,
            &customer.to_string(),
            &[super::activity::STORED_TOUCHPOINTS],
        )
        .await?;
    }
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    Ok(BTreeMap::from([
        ("touchpoints".to_owned(), count(touchpoints.rows_affected)),
        ("merges".to_owned(), count(merges.rows_affected)),
    ]))
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
