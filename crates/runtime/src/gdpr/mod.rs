//! Merges and erasures: the part every service holding customer data plays
//! (docs/DOMAIN.md, merge and erasure). The profile service decides both and
//! announces them through its outbox; a participant implements
//! [`Participant`] for its own data, and this module does the rest the same
//! way everywhere: decoding, refusing senders other than profile, applying a
//! tenant's merges and erasures one at a time (in whatever order and however
//! many at once they arrive), following merge chains, ignoring merges the
//! erasure of one of their customers overtook, remembering merged and erased
//! ids, forgetting the customer
//! in the outbox, moving the cache epoch, confirming with counts, and a span
//! for each step. Idempotency is the inbox's: a message id is applied once.
//!
//! What a participant gets back: [`survivors`] says where data sent for a
//! merged id belongs now, [`erased`] which ids must take no new data.
//!
//! Access requests go the other way, synchronously: profile asks each
//! participant for its records of a customer ([`export`]).

pub mod entity;
pub mod export;
pub mod migration;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use cx_proto::profile::v1::{ErasureConfirmed, ErasureRequested, ProfileMerged};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait, QueryFilter,
    Statement,
};
use tracing::Instrument;
use uuid::Uuid;

use crate::TenantId;
use crate::cache::Cache;
use crate::error::ServiceError;
use crate::outbox::inbox::{AfterCommit, Handlers, Receive};
use crate::store::{Db, one_of, scoped, scoped_delete, scoped_update};

/// The service that owns profiles: the only one announcing merges and
/// erasures, and the one erasures are confirmed to.
pub const COORDINATOR: &str = "profile";

/// Records deleted by an erasure, by kind of record ("touchpoints": 12).
pub type Counts = BTreeMap<String, i64>;

/// A service's part in merges and erasures, for its own data.
#[async_trait]
pub trait Participant: Send + Sync + 'static {
    /// Everything held under `merged` now belongs to `survivor`, the end of
    /// its merge chain (never itself merged away).
    async fn merge(
        &self,
        txn: &DatabaseTransaction,
        tenant: &TenantId,
        survivor: Uuid,
        merged: Uuid,
    ) -> Result<AfterCommit, ServiceError>;

    /// Deletes everything held about `customers` (the erased profile and
    /// those merged into it); the counts go back to profile, no personal data.
    async fn erase(
        &self,
        txn: &DatabaseTransaction,
        tenant: &TenantId,
        customers: &[Uuid],
    ) -> Result<(Counts, AfterCommit), ServiceError>;

    /// Every record held about `customers` (the customer last, the ids
    /// merged into her before), each as the service's own message in an
    /// `Any` ([`export::record`]), for profile's `ExportCustomerData`. The
    /// stream reads as it is consumed: data that may be large is read a
    /// page at a time ([`export::pages`]).
    async fn export(&self, db: &Db, tenant: &TenantId, customers: &[Uuid]) -> Result<export::Records, ServiceError>;
}

/// Adds the handling of `ProfileMerged` and `ErasureRequested` for
/// `participant` to a service's inbox. Outbox rows of the `spared` kinds
/// name records instead of carrying them, so they are not searched for the
/// erased ids (see [`crate::outbox::dispatcher::forget_mentions`]). A
/// merge starts a new generation of the service's data in `cache`
/// ([`crate::cache::generation`]); an erasure moves the whole epoch on.
pub fn take_part(
    handlers: Handlers,
    service: &'static str,
    participant: Arc<dyn Participant>,
    spared: Vec<String>,
    cache: Cache,
) -> Handlers {
    let gdpr = Arc::new(Gdpr { service, participant, spared, cache });
    handlers.on::<ProfileMerged>(COORDINATOR, gdpr.clone()).on::<ErasureRequested>(COORDINATOR, gdpr)
}

struct Gdpr {
    service: &'static str,
    participant: Arc<dyn Participant>,
    spared: Vec<String>,
    cache: Cache,
}

fn uuid(raw: &str, field: &str) -> Result<Uuid, ServiceError> {
    Uuid::parse_str(raw).map_err(|_| ServiceError::invalid(field, "is not a UUID"))
}

fn database(err: DbErr) -> ServiceError {
    ServiceError::Database(err)
}

#[async_trait]
impl Receive<ProfileMerged> for Gdpr {
    async fn receive(
        &self,
        txn: &DatabaseTransaction,
        t: &TenantId,
        _: &str,
        message: ProfileMerged,
    ) -> Result<AfterCommit, ServiceError> {
        let merged = uuid(&message.merged_profile_id, "merged_profile_id")?;
        let named = uuid(&message.survivor_profile_id, "survivor_profile_id")?;
        if merged == named {
            return Err(ServiceError::invalid("merged_profile_id", "is the survivor itself"));
        }
        one_at_a_time(txn, self.service, t).await.map_err(database)?;
        // Merges arrive in any order: a survivor merged away since is
        // followed to the end of its chain.
        let survivor = survivors(txn, t, &[named]).await.map_err(database)?.get(&named).copied().unwrap_or(named);
        let span = tracing::info_span!("gdpr.merge", cx.service = self.service, %merged, %survivor);
        async {
            let gone = erased(txn, t, &[merged, survivor]).await.map_err(database)?;
            if gone.contains(&merged) {
                tracing::info!("merge of an erased customer ignored");
                return Ok(None);
            }
            if gone.contains(&survivor) {
                // Overtaken by the survivor's erasure: what was merged into
                // an erased customer is erased too.
                let (_, after) = self.participant.erase(txn, t, &[merged]).await?;
                forget(txn, t, &[merged], &self.spared).await.map_err(database)?;
                tracing::info!("merge into an erased customer: the merged customer erased");
                return Ok(after);
            }
            record_merge(txn, t, survivor, merged).await.map_err(database)?;
            let after = self.participant.merge(txn, t, survivor, merged).await?;
            tracing::info!("merged customer's data moved to the survivor");
            // Counts per customer change: what was derived from them is old.
            let (cache, t, service) = (self.cache.clone(), t.clone(), self.service);
            Ok(Some(Box::pin(async move {
                if let Some(after) = after {
                    after.await;
                }
                if let Err(err) = cache.advance_generation(&t, service).await {
                    tracing::error!(error = %err, "merge stored, data generation not advanced");
                }
            }) as futures::future::BoxFuture<'static, ()>))
        }
        .instrument(span)
        .await
    }
}

#[async_trait]
impl Receive<ErasureRequested> for Gdpr {
    async fn receive(
        &self,
        txn: &DatabaseTransaction,
        t: &TenantId,
        _: &str,
        message: ErasureRequested,
    ) -> Result<AfterCommit, ServiceError> {
        let ErasureRequested { erasure_id, profile_id, merged_profile_ids } = message;
        uuid(&erasure_id, "erasure_id")?;
        let mut customers = vec![uuid(&profile_id, "profile_id")?];
        for (i, merged) in merged_profile_ids.iter().enumerate() {
            customers.push(uuid(merged, &format!("merged_profile_ids[{i}]"))?);
        }
        one_at_a_time(txn, self.service, t).await.map_err(database)?;
        // Ids merged into these here, whether or not profile listed them.
        customers.extend(merged_into(txn, t, &customers).await.map_err(database)?);
        customers.sort_unstable();
        customers.dedup();
        let span =
            tracing::info_span!("gdpr.erase", cx.service = self.service, erasure_id, customers = customers.len());
        async {
            let (mut counts, after) = self.participant.erase(txn, t, &customers).await?;
            let merges = forget(txn, t, &customers, &self.spared).await.map_err(database)?;
            counts.insert("merges".to_owned(), i64::try_from(merges).unwrap_or(i64::MAX));
            // A new cache epoch: every replica forgets what it cached of
            // the customer within one epoch check.
            crate::cache::epoch::bump(txn).await.map_err(database)?;
            let confirmation = ErasureConfirmed {
                erasure_id,
                service: self.service.to_owned(),
                counts: counts.into_iter().collect(),
                complete_time: Some(cx_proto::timestamp(chrono::Utc::now())),
            };
            // Confirmed once no replica can trust the epoch before the erasure.
            crate::outbox::send_after(txn, t, COORDINATOR, &confirmation, crate::cache::ERASURE_WAIT)
                .await
                .map_err(database)?;
            tracing::info!("customer erased");
            Ok(after)
        }
        .instrument(span)
        .await
    }
}

/// Takes the tenant's merge-and-erasure turn in this service, until `txn`
/// ends. Two merges of one chain delivered in one round (a into b, b into
/// s) would otherwise each miss the other's uncommitted rows, leaving a's
/// data under b; an erasure beside a merge into the erased customer
/// likewise. SQLite runs one transaction at a time anyway.
async fn one_at_a_time(txn: &DatabaseTransaction, service: &str, t: &TenantId) -> Result<(), DbErr> {
    if txn.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let key = format!("cx-gdpr:{service}:{t}");
    let lock =
        Statement::from_sql_and_values(DbBackend::Postgres, "SELECT pg_advisory_xact_lock(hashtext($1))", [key.into()]);
    txn.execute_raw(lock).await.map(|_| ())
}

/// `merged` now belongs to `survivor`, and so does whatever was merged into
/// `merged` before: every chain points at its end. The inbox records each
/// merge before the participant's part; store tests call it themselves.
pub async fn record_merge(txn: &DatabaseTransaction, t: &TenantId, survivor: Uuid, merged: Uuid) -> Result<(), DbErr> {
    scoped_update::<entity::merge::Entity>(t)
        .filter(entity::merge::Column::SurvivorId.eq(merged))
        .col_expr(entity::merge::Column::SurvivorId, Expr::value(survivor))
        .exec(txn)
        .await?;
    let row = entity::merge::ActiveModel {
        tenant_id: Set(t.to_string()),
        merged_id: Set(merged),
        survivor_id: Set(survivor),
        merged_at: Set(crate::store::now()),
    };
    let upsert = OnConflict::columns([entity::merge::Column::TenantId, entity::merge::Column::MergedId])
        .update_column(entity::merge::Column::SurvivorId)
        .to_owned();
    entity::merge::Entity::insert(row).on_conflict(upsert).exec_without_returning(txn).await?;
    Ok(())
}

/// The erased ids are remembered (they take no new data), their merges
/// forgotten (returns how many), and outbox rows mentioning them deleted.
async fn forget(txn: &DatabaseTransaction, t: &TenantId, customers: &[Uuid], spared: &[String]) -> Result<u64, DbErr> {
    let backend = txn.get_database_backend();
    let merges = scoped_delete::<entity::merge::Entity>(t)
        .filter(sea_orm::Condition::any().add(one_of(backend, entity::merge::Column::MergedId, customers)).add(one_of(
            backend,
            entity::merge::Column::SurvivorId,
            customers,
        )))
        .exec(txn)
        .await?;
    let now = crate::store::now();
    let rows = customers.iter().map(|id| entity::erased::ActiveModel {
        tenant_id: Set(t.to_string()),
        digest: Set(tombstone(t, *id)),
        erased_at: Set(now),
    });
    let keep =
        OnConflict::columns([entity::erased::Column::TenantId, entity::erased::Column::Digest]).do_nothing().to_owned();
    entity::erased::Entity::insert_many(rows).on_conflict(keep).exec_without_returning(txn).await?;
    let spared: Vec<&str> = spared.iter().map(String::as_str).collect();
    for customer in customers {
        crate::outbox::dispatcher::forget_mentions(txn, t, &customer.to_string(), &spared).await?;
    }
    Ok(merges.rows_affected)
}

/// The ids merged into any of `ids`, as this service learnt them.
async fn merged_into<C: ConnectionTrait>(conn: &C, t: &TenantId, ids: &[Uuid]) -> Result<Vec<Uuid>, DbErr> {
    let rows = scoped::<entity::merge::Entity>(t)
        .filter(one_of(conn.get_database_backend(), entity::merge::Column::SurvivorId, ids))
        .all(conn)
        .await?;
    Ok(rows.into_iter().map(|r| r.merged_id).collect())
}

/// For those of `ids` that were merged away, the survivor at the end of
/// their chain: where data sent for them belongs now.
pub async fn survivors<C: ConnectionTrait>(conn: &C, t: &TenantId, ids: &[Uuid]) -> Result<HashMap<Uuid, Uuid>, DbErr> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = scoped::<entity::merge::Entity>(t)
        .filter(one_of(conn.get_database_backend(), entity::merge::Column::MergedId, ids))
        .all(conn)
        .await?;
    Ok(rows.into_iter().map(|r| (r.merged_id, r.survivor_id)).collect())
}

/// Those of `ids` that were erased: they take no new data.
pub async fn erased<C: ConnectionTrait>(conn: &C, t: &TenantId, ids: &[Uuid]) -> Result<HashSet<Uuid>, DbErr> {
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let digests: HashMap<Uuid, Uuid> = ids.iter().map(|id| (tombstone(t, *id), *id)).collect();
    let wanted: Vec<Uuid> = digests.keys().copied().collect();
    let rows = scoped::<entity::erased::Entity>(t)
        .filter(one_of(conn.get_database_backend(), entity::erased::Column::Digest, &wanted))
        .all(conn)
        .await?;
    Ok(rows.into_iter().filter_map(|r| digests.get(&r.digest).copied()).collect())
}

/// What is kept of an erased id: the first 128 bits of SHA-256 over the
/// tenant and the id. An erasure leaves the id nowhere (no row mentions it),
/// while an id sent again is still recognised.
pub fn tombstone(t: &TenantId, id: Uuid) -> Uuid {
    use sha2::Digest as _;
    let digest = sha2::Sha256::new().chain_update(t.as_str()).chain_update([0]).chain_update(id.as_bytes()).finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::from_bytes(bytes)
}
