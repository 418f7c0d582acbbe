//! Merging two profiles in one transaction.

use std::collections::HashMap;

use chrono::Utc;
use cx_runtime::TenantId;
use cx_runtime::store::{increment, numbered, scoped, scoped_delete, scoped_update};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use uuid::Uuid;

use super::derived::refresh;
use super::entity::{consent_event, customer, identity, merge};
use super::spans::SpansBefore;
use super::{ProfileRecord, ProfileStore};
use crate::domain::attributes::Attributes;
use crate::domain::merge::{Conflict, Prefer, merge_attributes, merge_persona};
use crate::error::ProfileError;

type Result<T> = std::result::Result<T, ProfileError>;

/// Moves a customer's aggregate rows to another, adding up where both have
/// one. `$1` tenant, `$2` survivor, `$3` merged; SQLite reads `?1`…
const MOVE_AGGREGATES: [&str; 6] = [
    "INSERT INTO activity_days (tenant_id, customer_id, day, channel, initiator, kind, touchpoints) \
     SELECT tenant_id, $2, day, channel, initiator, kind, touchpoints FROM activity_days \
     WHERE tenant_id = $1 AND customer_id = $3 \
     ON CONFLICT (tenant_id, customer_id, day, channel, initiator, kind) \
     DO UPDATE SET touchpoints = activity_days.touchpoints + excluded.touchpoints",
    "DELETE FROM activity_days WHERE tenant_id = $1 AND customer_id = $3",
    "INSERT INTO purchase_days (tenant_id, customer_id, day, currency, purchases, amount_micros, amount_squares) \
     SELECT tenant_id, $2, day, currency, purchases, amount_micros, amount_squares FROM purchase_days \
     WHERE tenant_id = $1 AND customer_id = $3 \
     ON CONFLICT (tenant_id, customer_id, day, currency) DO UPDATE SET \
     purchases = purchase_days.purchases + excluded.purchases, \
     amount_micros = purchase_days.amount_micros + excluded.amount_micros, \
     amount_squares = purchase_days.amount_squares + excluded.amount_squares",
    "DELETE FROM purchase_days WHERE tenant_id = $1 AND customer_id = $3",
    "INSERT INTO devices (tenant_id, customer_id, device_id, first_seen, last_seen) \
     SELECT tenant_id, $2, device_id, first_seen, last_seen FROM devices \
     WHERE tenant_id = $1 AND customer_id = $3 \
     ON CONFLICT (tenant_id, customer_id, device_id) DO UPDATE SET \
     first_seen = CASE WHEN excluded.first_seen < devices.first_seen THEN excluded.first_seen ELSE devices.first_seen END, \
     last_seen = CASE WHEN excluded.last_seen > devices.last_seen THEN excluded.last_seen ELSE devices.last_seen END",
    "DELETE FROM devices WHERE tenant_id = $1 AND customer_id = $3",
];

/// What a merge did.
#[derive(Clone, Debug)]
pub struct MergeOutcome {
    pub profile: ProfileRecord,
    pub conflicts: Vec<Conflict>,
}

impl ProfileStore {
    /// Folds `merged` into `survivor`: identities, consents (full history),
    /// devices and activity unite, the latest survey answers of both are kept; attributes follow `prefer`; the merged id
    /// is recorded so it keeps resolving to the survivor.
    pub async fn merge(&self, t: &TenantId, survivor: Uuid, merged: Uuid, prefer: Prefer) -> Result<MergeOutcome> {
        if survivor == merged {
            return Err(ProfileError::invalid("merged_id", "must differ from survivor_id"));
        }
        let txn = self.db().begin().await?;
        let backend = txn.get_database_backend();
        let mut query = scoped::<customer::Entity>(t)
            .filter(customer::Column::Id.is_in([survivor, merged]))
            .order_by_asc(customer::Column::Id);
        if backend == DbBackend::Postgres {
            query = query.lock_exclusive();
        }
        let rows = query.all(&txn).await?;
        let find = |id: Uuid| rows.iter().find(|r| r.id == id).cloned();
        let (Some(kept), Some(gone)) = (find(survivor), find(merged)) else {
            let missing = if find(survivor).is_none() { survivor } else { merged };
            return Err(ProfileError::not_found(format_args!("profile {missing}")));
        };
        let attributes = |row: &customer::Model| -> Result<Attributes> {
            serde_json::from_value(row.attributes.clone()).map_err(|e| ProfileError::Corrupt(e.to_string()))
        };
        let spans = SpansBefore::take(&txn, t, &[survivor, merged]).await?;
        let (united, conflicts) = merge_attributes(&attributes(&kept)?, &attributes(&gone)?, prefer);
        let persona = merge_persona(&kept.persona, &gone.persona, prefer);

        scoped_update::<identity::Entity>(t)
            .col_expr(identity::Column::CustomerId, Expr::value(survivor))
            .filter(identity::Column::CustomerId.eq(merged))
            .exec(&txn)
            .await?;
        scoped_update::<consent_event::Entity>(t)
            .col_expr(consent_event::Column::CustomerId, Expr::value(survivor))
            .filter(consent_event::Column::CustomerId.eq(merged))
            .exec(&txn)
            .await?;
        super::scores::merge(&txn, t, survivor, merged).await?;
        for sql in MOVE_AGGREGATES {
            let values = vec![t.to_string().into(), survivor.into(), merged.into()];
            txn.execute_raw(numbered(backend, sql, values)).await?;
        }
        let json = serde_json::to_value(&united).map_err(|e| ProfileError::Corrupt(e.to_string()))?;
        scoped_update::<customer::Entity>(t)
            .col_expr(customer::Column::Persona, Expr::value(persona))
            .col_expr(customer::Column::Attributes, Expr::value(json))
            .col_expr(customer::Column::Version, increment(customer::Column::Version))
            .col_expr(customer::Column::UpdatedAt, Expr::value(cx_runtime::store::now()))
            .filter(customer::Column::Id.eq(survivor))
            .exec(&txn)
            .await?;
        scoped_delete::<customer::Entity>(t).filter(customer::Column::Id.eq(merged)).exec(&txn).await?;
        let record = merge::ActiveModel {
            tenant_id: Set(t.to_string()),
            merged_id: Set(merged),
            survivor_id: Set(survivor),
            conflicts: Set(serde_json::json!(conflicts.iter().map(|c| c.key.clone()).collect::<Vec<_>>())),
            merged_at: Set(cx_runtime::store::now()),
        };
        merge::Entity::insert(record).exec_without_returning(&txn).await?;
        let touched: HashMap<Uuid, _> = gone.last_touch_at.map(|at| (survivor, at)).into_iter().collect();
        refresh(&txn, t, &[survivor], Utc::now().date_naive(), &touched).await?;
        spans.apply(&txn, t).await?;
        super::events::profile_merged(&txn, t, self.fanout(), survivor, merged).await?;
        self.facts_changed(&txn, t, &[survivor]).await?;
        txn.commit().await?;
        Ok(MergeOutcome { profile: self.get(t, survivor).await?, conflicts })
    }

    /// The profile a merged id now lives in (following merges of merges).
    pub async fn survivor_of(&self, t: &TenantId, id: Uuid) -> Result<Option<Uuid>> {
        survivor_on(self.db(), t, id).await
    }
}

/// [`ProfileStore::survivor_of`] on any connection or transaction.
pub async fn survivor_on<C: ConnectionTrait>(conn: &C, t: &TenantId, id: Uuid) -> Result<Option<Uuid>> {
    let mut current = id;
    let mut found = None;
    // A chain is as long as the merges done one after another; bounded anyway.
    for _ in 0..32 {
        let next = scoped::<merge::Entity>(t)
            .filter(merge::Column::MergedId.eq(current))
            .select_only()
            .column(merge::Column::SurvivorId)
            .into_tuple::<Uuid>()
            .one(conn)
            .await?;
        match next {
            Some(survivor) => {
                found = Some(survivor);
                current = survivor;
            }
            None => break,
        }
    }
    Ok(found)
}
