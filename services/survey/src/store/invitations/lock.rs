//! A customer's turn at the invitation decisions (the fatigue budget,
//! duplicates, consent), until the transaction ends.
//!
//! PostgreSQL: a transaction-scoped advisory lock per (tenant, customer),
//! taken in key order so that batches naming the same customers queue
//! instead of deadlocking; replicas share it through the database. SQLite:
//! nothing to take, the service's one connection runs one transaction at a
//! time (docs/DECISIONS.md, Runtime and storage).

use cx_runtime::TenantId;
use cx_runtime::store::pg_array;
use sea_orm::sea_query::ArrayType;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement};
use uuid::Uuid;

use crate::store::Result;

/// The keys are sorted before the locks are taken: PostgreSQL evaluates a
/// volatile function of the select list after the sort below it.
const LOCK: &str = "SELECT pg_advisory_xact_lock(k) FROM \
     (SELECT DISTINCT hashtextextended($1 || c::text, 0) AS k FROM unnest($2::uuid[]) AS c) AS keys ORDER BY k";

/// Waits for, then holds until `txn` ends, the turn of each of `customers`.
pub async fn customers(txn: &DatabaseTransaction, t: &TenantId, customers: &[Uuid]) -> Result<()> {
    if txn.get_database_backend() != DbBackend::Postgres || customers.is_empty() {
        return Ok(());
    }
    let prefix = format!("cx-survey-invitations:{t}:");
    let ids = pg_array(ArrayType::Uuid, customers.iter().copied());
    txn.execute_raw(Statement::from_sql_and_values(DbBackend::Postgres, LOCK, [prefix.into(), ids])).await?;
    Ok(())
}
