//! A segment's members and their count, read with the one statement
//! [`crate::evaluate`] compiles from the rule.

use cx_runtime::TenantId;
use sea_orm::{ConnectionTrait, DbErr};
use uuid::Uuid;

use crate::evaluate;
use crate::rules::Checked;

/// How many of the tenant's customers the rule selects as of the day
/// number `today` (days since 1970-01-01, UTC).
pub async fn count<C: ConnectionTrait>(db: &C, tenant: &TenantId, rule: &Checked, today: i32) -> Result<u64, DbErr> {
    let statement = evaluate::count(rule, db.get_database_backend(), tenant, today);
    let Some(row) = db.query_one_raw(statement).await? else {
        return Ok(0);
    };
    let n: i64 = row.try_get("", "n")?;
    u64::try_from(n).map_err(|_| DbErr::Custom(format!("negative count {n}")))
}

/// At most `limit` members after the id `after`, by customer id: the next
/// page starts after the last id of this one.
pub async fn page<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
    rule: &Checked,
    today: i32,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Uuid>, DbErr> {
    let statement = evaluate::members(rule, db.get_database_backend(), tenant, today, after, limit);
    let rows = db.query_all_raw(statement).await?;
    rows.iter().map(|row| row.try_get("", "customer_id")).collect()
}
