//! Exposures: one per customer and experiment, recorded once; a conversion
//! recorded once on its exposure; counted per variant; moved by merges,
//! deleted by erasures, read by exports (docs/DOMAIN.md §9.6).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use cx_runtime::TenantId;
use cx_runtime::error::ServiceError;
use cx_runtime::gdpr::Counts;
use cx_runtime::store::{one_of, scoped, scoped_delete, scoped_update};
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, TryInsertResult,
};
use uuid::Uuid;

use super::entity::exposure::{self, Column as Col};

pub type Result<T> = std::result::Result<T, ServiceError>;

/// The exposure of `customer` to `experiment`, if she was exposed.
pub async fn find(
    conn: &impl ConnectionTrait,
    t: &TenantId,
    experiment: Uuid,
    customer: Uuid,
) -> Result<Option<exposure::Model>> {
    let row = scoped::<exposure::Entity>(t)
        .filter(Col::ExperimentId.eq(experiment))
        .filter(Col::CustomerId.eq(customer))
        .one(conn)
        .await?;
    Ok(row)
}

fn vanished(what: &str) -> ServiceError {
    ServiceError::Internal(format!("an exposure just {what} cannot be read back"))
}

/// Records `customer`'s exposure to `variant` at `at` unless she has one:
/// her exposure, and whether this call recorded it. A retry, or two replicas
/// at once, leave the first.
pub async fn expose(
    conn: &impl ConnectionTrait,
    t: &TenantId,
    experiment: Uuid,
    customer: Uuid,
    variant: &str,
    at: DateTime<Utc>,
) -> Result<(exposure::Model, bool)> {
    let row = exposure::ActiveModel {
        tenant_id: Set(t.to_string()),
        experiment_id: Set(experiment),
        customer_id: Set(customer),
        variant: Set(variant.to_owned()),
        exposed_at: Set(at),
        converted_at: Set(None),
    };
    let done = exposure::Entity::insert(row).on_conflict_do_nothing().exec_without_returning(conn).await?;
    let fresh = matches!(done, TryInsertResult::Inserted(n) if n > 0);
    let held = find(conn, t, experiment, customer).await?.ok_or_else(|| vanished("recorded"))?;
    Ok((held, fresh))
}

/// Records `customer`'s conversion at `at` unless one is: her exposure and
/// whether this call recorded it; None when she was never exposed.
pub async fn convert(
    conn: &impl ConnectionTrait,
    t: &TenantId,
    experiment: Uuid,
    customer: Uuid,
    at: DateTime<Utc>,
) -> Result<Option<(exposure::Model, bool)>> {
    let done = scoped_update::<exposure::Entity>(t)
        .col_expr(Col::ConvertedAt, Expr::value(Some(at)))
        .filter(Col::ExperimentId.eq(experiment))
        .filter(Col::CustomerId.eq(customer))
        .filter(Col::ConvertedAt.is_null())
        .exec(conn)
        .await?;
    let held = find(conn, t, experiment, customer).await?;
    Ok(held.map(|row| (row, done.rows_affected > 0)))
}

/// Exposures and conversions per variant key of `experiment`.
pub async fn counts(
    conn: &impl ConnectionTrait,
    t: &TenantId,
    experiment: Uuid,
) -> Result<HashMap<String, (i64, i64)>> {
    let rows: Vec<(String, i64, i64)> = scoped::<exposure::Entity>(t)
        .filter(Col::ExperimentId.eq(experiment))
        .select_only()
        .column(Col::Variant)
        .column_as(Expr::expr(Func::count(Expr::col(Col::CustomerId))), "n")
        .column_as(Expr::expr(Func::count(Expr::col(Col::ConvertedAt))), "x")
        .group_by(Col::Variant)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows.into_iter().map(|(variant, n, x)| (variant, (n, x))).collect())
}

/// The earlier of two instants that may be missing.
fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Moves `merged`'s exposures to `survivor`. Where both were exposed to one
/// experiment, one exposure is kept: the earlier one (its variant and
/// time), with the earlier of their conversions. The number moved or
/// folded.
pub async fn merge(conn: &impl ConnectionTrait, t: &TenantId, survivor: Uuid, merged: Uuid) -> Result<u64> {
    let theirs = scoped::<exposure::Entity>(t).filter(Col::CustomerId.eq(merged)).all(conn).await?;
    let ours: HashMap<Uuid, exposure::Model> = scoped::<exposure::Entity>(t)
        .filter(Col::CustomerId.eq(survivor))
        .all(conn)
        .await?
        .into_iter()
        .map(|row| (row.experiment_id, row))
        .collect();
    for row in &theirs {
        let kept = match ours.get(&row.experiment_id) {
            None => (row.variant.clone(), row.exposed_at, row.converted_at),
            Some(own) => {
                let first = if row.exposed_at < own.exposed_at { row } else { own };
                (first.variant.clone(), first.exposed_at, earliest(row.converted_at, own.converted_at))
            }
        };
        if ours.contains_key(&row.experiment_id) {
            scoped_delete::<exposure::Entity>(t)
                .filter(Col::ExperimentId.eq(row.experiment_id))
                .filter(Col::CustomerId.eq(merged))
                .exec(conn)
                .await?;
        }
        let (variant, exposed_at, converted_at) = kept;
        scoped_update::<exposure::Entity>(t)
            .col_expr(Col::CustomerId, Expr::value(survivor))
            .col_expr(Col::Variant, Expr::value(variant))
            .col_expr(Col::ExposedAt, Expr::value(exposed_at))
            .col_expr(Col::ConvertedAt, Expr::value(converted_at))
            .filter(Col::ExperimentId.eq(row.experiment_id))
            .filter(Col::CustomerId.is_in([merged, survivor]))
            .exec(conn)
            .await?;
    }
    Ok(theirs.len() as u64)
}

/// Deletes every exposure of `customers`: the counts of exposures and of
/// conversions among them.
pub async fn erase(conn: &impl ConnectionTrait, t: &TenantId, customers: &[Uuid]) -> Result<Counts> {
    if customers.is_empty() {
        return Ok(Counts::new());
    }
    let held = held(conn, t, customers).await?;
    let conversions = held.iter().filter(|row| row.converted_at.is_some()).count();
    let backend = conn.get_database_backend();
    let deleted =
        scoped_delete::<exposure::Entity>(t).filter(one_of(backend, Col::CustomerId, customers)).exec(conn).await?;
    let exposures = i64::try_from(deleted.rows_affected).unwrap_or(i64::MAX);
    Ok(Counts::from([("exposures".to_owned(), exposures), ("conversions".to_owned(), conversions as i64)]))
}

/// Every exposure of `customers`, by customer then experiment.
pub async fn held(conn: &impl ConnectionTrait, t: &TenantId, customers: &[Uuid]) -> Result<Vec<exposure::Model>> {
    if customers.is_empty() {
        return Ok(Vec::new());
    }
    let backend = conn.get_database_backend();
    let rows = scoped::<exposure::Entity>(t)
        .filter(one_of(backend, Col::CustomerId, customers))
        .order_by_asc(Col::CustomerId)
        .order_by_asc(Col::ExperimentId)
        .all(conn)
        .await?;
    Ok(rows)
}
