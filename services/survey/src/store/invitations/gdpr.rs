//! The invitations' part in merges and erasures (docs/DOMAIN.md §6.3), for
//! the service's participant to call: a merged customer's invitations and
//! consent decision move to the survivor; an erased customer's go.

use cx_runtime::TenantId;
use cx_runtime::gdpr::Counts;
use cx_runtime::store::{one_of, scoped, scoped_delete, scoped_update};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseTransaction, QueryFilter};
use uuid::Uuid;

use super::consent::{self, Decision};
use super::{IDS_PER_STATEMENT, lock};
use crate::store::Result;
use crate::store::entity::{consent as consent_row, invitation};

/// `merged`'s invitations now belong to `survivor`, under both customers'
/// turns (the budget counts them from now on). Of the two consent
/// decisions announced, the later is the survivor's. Returns how many
/// invitations moved.
pub async fn merge(txn: &DatabaseTransaction, t: &TenantId, survivor: Uuid, merged: Uuid) -> Result<u64> {
    lock::customers(txn, t, &[survivor, merged]).await?;
    lock::forget(txn, t, &[merged]).await?;
    let moved = scoped_update::<invitation::Entity>(t)
        .filter(invitation::Column::CustomerId.eq(merged))
        .col_expr(invitation::Column::CustomerId, Expr::value(survivor))
        .exec(txn)
        .await?;
    let theirs = scoped::<consent_row::Entity>(t).filter(consent_row::Column::CustomerId.eq(merged)).one(txn).await?;
    if let Some(theirs) = theirs {
        scoped_delete::<consent_row::Entity>(t).filter(consent_row::Column::CustomerId.eq(merged)).exec(txn).await?;
        let decision = Decision {
            customer: survivor,
            granted: theirs.granted,
            occurred_at: theirs.occurred_at,
            recorded_at: theirs.recorded_at,
        };
        // Kept if later than the survivor's; a withdrawal in force then
        // suppresses the survivor's pending invitations too.
        consent::apply(txn, t, decision).await?;
    }
    Ok(moved.rows_affected)
}

/// Deletes the invitations and consent decisions of `customers`; the
/// counts by kind of record (`invitations`, `consents`).
pub async fn erase(txn: &DatabaseTransaction, t: &TenantId, customers: &[Uuid]) -> Result<Counts> {
    let backend = sea_orm::ConnectionTrait::get_database_backend(txn);
    let (mut invitations, mut consents) = (0, 0);
    for chunk in customers.chunks(IDS_PER_STATEMENT) {
        lock::forget(txn, t, chunk).await?;
        let gone = scoped_delete::<invitation::Entity>(t)
            .filter(one_of(backend, invitation::Column::CustomerId, chunk))
            .exec(txn)
            .await?;
        invitations += gone.rows_affected;
        let gone = scoped_delete::<consent_row::Entity>(t)
            .filter(one_of(backend, consent_row::Column::CustomerId, chunk))
            .exec(txn)
            .await?;
        consents += gone.rows_affected;
    }
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    Ok(Counts::from([("invitations".to_owned(), count(invitations)), ("consents".to_owned(), count(consents))]))
}
