//! A customer's turn at the invitation decisions (the fatigue budget,
//! duplicates, consent), until the transaction ends.
//!
//! PostgreSQL: the customers' rows of `survey_customer_turns`, created when
//! missing and locked `FOR UPDATE`, both in key order so that batches naming
//! the same customers queue instead of deadlocking; replicas share them
//! through the database. Row locks, not advisory locks: those fill
//! PostgreSQL's shared lock table (64 × `max_connections` by default), so a
//! few batches of many customers at once failed with "out of shared memory"
//! and one naming more than that could never be recorded. SQLite: nothing
//! to take, the service's one connection runs one transaction at a time
//! (docs/DECISIONS.md, Runtime and storage).

use cx_runtime::TenantId;
use cx_runtime::store::pg_array;
use sea_orm::sea_query::ArrayType;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement};
use uuid::Uuid;

use crate::store::Result;

/// Creates the missing rows, in key order: a row another transaction is
/// inserting is waited for, never skipped.
const CREATE: &str = "INSERT INTO survey_customer_turns (tenant_id, customer_id) \
     SELECT $1, c FROM (SELECT DISTINCT unnest($2::uuid[]) AS c) AS keys ORDER BY c ON CONFLICT DO NOTHING";
const LOCK: &str = "SELECT customer_id FROM survey_customer_turns \
     WHERE tenant_id = $1 AND customer_id = ANY($2::uuid[]) ORDER BY customer_id FOR UPDATE";
const FORGET: &str = "DELETE FROM survey_customer_turns WHERE tenant_id = $1 AND customer_id = ANY($2::uuid[])";

/// Waits for, then holds until `txn` ends, the turn of each of `customers`.
pub async fn customers(txn: &DatabaseTransaction, t: &TenantId, customers: &[Uuid]) -> Result<()> {
    if txn.get_database_backend() != DbBackend::Postgres || customers.is_empty() {
        return Ok(());
    }
    for sql in [CREATE, LOCK] {
        let ids = pg_array(ArrayType::Uuid, customers.iter().copied());
        txn.execute_raw(Statement::from_sql_and_values(DbBackend::Postgres, sql, [t.as_str().into(), ids])).await?;
    }
    Ok(())
}

/// Drops the turn rows of `customers` (erased, or merged away): no id is
/// kept for a customer who is gone.
pub async fn forget(txn: &DatabaseTransaction, t: &TenantId, customers: &[Uuid]) -> Result<()> {
    if txn.get_database_backend() != DbBackend::Postgres || customers.is_empty() {
        return Ok(());
    }
    let ids = pg_array(ArrayType::Uuid, customers.iter().copied());
    txn.execute_raw(Statement::from_sql_and_values(DbBackend::Postgres, FORGET, [t.as_str().into(), ids])).await?;
    Ok(())
}
