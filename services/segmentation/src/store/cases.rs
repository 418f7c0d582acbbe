//! A customer's count of unresolved cases as survey announces it
//! (`OpenCasesChanged`): the count with the latest change_time is kept in
//! the fact row's `open_cases`.

use chrono::{DateTime, Utc};
use cx_runtime::TenantId;
use cx_runtime::store::{scoped_update, stored_instant};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseTransaction, DbErr, QueryFilter};
use uuid::Uuid;

use super::entity::fact;
use super::facts::{self, later};

/// Keeps `open_cases` as of `at` unless a later count is kept; true when
/// it is now the one kept.
pub async fn apply(
    txn: &DatabaseTransaction,
    t: &TenantId,
    customer: Uuid,
    open_cases: i64,
    at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let row = facts::hold(txn, t, customer).await?;
    let at = stored_instant(at);
    if !later(&at, row.open_cases_time.as_ref()) {
        return Ok(false);
    }
    scoped_update::<fact::Entity>(t)
        .filter(fact::Column::CustomerId.eq(customer))
        .col_expr(fact::Column::OpenCases, Expr::value(open_cases))
        .col_expr(fact::Column::OpenCasesTime, Expr::value(Some(at)))
        .exec(txn)
        .await?;
    Ok(true)
}
