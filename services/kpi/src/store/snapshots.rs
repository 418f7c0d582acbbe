//! Snapshots: one per tenant, metric, filter and day, stored once (a later
//! take keeps the first: history stays as it was computed), listed by day;
//! and the tenants the daily job takes them for.

use std::collections::HashSet;

use chrono::NaiveDate;
use cx_proto::kpi::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::days::{date_number, date_of};
use cx_runtime::error::ServiceError;
use cx_runtime::store::{now, scoped};
use prost::Message;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::entity::{kpi_tenant, snapshot};
use crate::filter::Filter;
use crate::metric::Metric;

pub type Result<T> = std::result::Result<T, ServiceError>;

/// Remembers `t` as a tenant to take snapshots for.
pub async fn known_tenant(conn: &impl ConnectionTrait, t: &TenantId) -> Result<()> {
    let row = kpi_tenant::ActiveModel { tenant_id: Set(t.to_string()), first_seen: Set(now()) };
    kpi_tenant::Entity::insert(row).on_conflict_do_nothing().exec_without_returning(conn).await?;
    Ok(())
}

/// Every tenant to take snapshots for: the one read across tenants, by the
/// job that then reads each tenant's own rows.
#[allow(clippy::disallowed_methods)]
pub async fn tenants(conn: &impl ConnectionTrait) -> Result<Vec<TenantId>> {
    let rows: Vec<String> = kpi_tenant::Entity::find()
        .select_only()
        .column(kpi_tenant::Column::TenantId)
        .order_by_asc(kpi_tenant::Column::TenantId)
        .into_tuple()
        .all(conn)
        .await?;
    // A name another version stored and this one no longer reads is skipped.
    Ok(rows.iter().filter_map(|raw| TenantId::parse(raw).ok()).collect())
}

/// The (metric, filter key) of the snapshots `t` has of `day`.
pub async fn taken(conn: &impl ConnectionTrait, t: &TenantId, day: NaiveDate) -> Result<HashSet<(i16, String)>> {
    let rows: Vec<(i16, String)> = scoped::<snapshot::Entity>(t)
        .filter(snapshot::Column::Day.eq(date_number(day)))
        .select_only()
        .column(snapshot::Column::Metric)
        .column(snapshot::Column::FilterKey)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows.into_iter().collect())
}

/// Stores `snapshots` of `day`, each of its metric and filter; one already
/// there is kept as it is.
pub async fn keep(
    conn: &impl ConnectionTrait,
    t: &TenantId,
    day: NaiveDate,
    snapshots: &[(Metric, Filter, pb::Snapshot)],
) -> Result<()> {
    if snapshots.is_empty() {
        return Ok(());
    }
    let rows = snapshots.iter().map(|(metric, filter, body)| snapshot::ActiveModel {
        tenant_id: Set(t.to_string()),
        metric: Set(metric.code()),
        filter_key: Set(filter.key()),
        day: Set(date_number(day)),
        body: Set(body.encode_to_vec()),
        definition_version: Set(body.definition_version),
        taken_at: Set(now()),
    });
    snapshot::Entity::insert_many(rows).on_conflict_do_nothing().exec_without_returning(conn).await?;
    Ok(())
}

/// The snapshots of `metric` and the filter of key `key` from `first` to
/// `last`, by day.
pub async fn list(
    conn: &impl ConnectionTrait,
    t: &TenantId,
    metric: Metric,
    key: &str,
    (first, last): (NaiveDate, NaiveDate),
) -> Result<Vec<pb::Snapshot>> {
    let rows = scoped::<snapshot::Entity>(t)
        .filter(snapshot::Column::Metric.eq(metric.code()))
        .filter(snapshot::Column::FilterKey.eq(key))
        .filter(snapshot::Column::Day.between(date_number(first), date_number(last)))
        .order_by_asc(snapshot::Column::Day)
        .all(conn)
        .await?;
    rows.iter()
        .map(|row| {
            pb::Snapshot::decode(row.body.as_slice()).map_err(|e| {
                ServiceError::Corrupt(format!("snapshot of {} for metric {}: {e}", date_of(row.day), row.metric))
            })
        })
        .collect()
}
