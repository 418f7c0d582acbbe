//! A customer's fact row as the feeds keep it: made when the first fact
//! arrives, and held (on PostgreSQL) while one feed's message is applied,
//! so that two messages of one customer take turns.

use cx_runtime::TenantId;
use cx_runtime::gdpr::Counts;
use cx_runtime::store::{one_of, scoped, scoped_delete};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait, QueryFilter,
    QuerySelect,
};
use uuid::Uuid;

use super::entity::{attribute, contact, fact};

/// The fact row of `customer`, made with every fact unknown when absent,
/// and locked until `txn` ends.
pub async fn hold(txn: &DatabaseTransaction, t: &TenantId, customer: Uuid) -> Result<fact::Model, DbErr> {
    let row = fact::ActiveModel { tenant_id: Set(t.to_string()), customer_id: Set(customer), ..Default::default() };
    fact::Entity::insert(row)
        .on_conflict(OnConflict::columns([fact::Column::TenantId, fact::Column::CustomerId]).do_nothing().to_owned())
        .try_insert()
        .exec_without_returning(txn)
        .await?;
    let mut query = scoped::<fact::Entity>(t).filter(fact::Column::CustomerId.eq(customer));
    if txn.get_database_backend() == DbBackend::Postgres {
        query = query.lock_exclusive();
    }
    query.one(txn).await?.ok_or_else(|| DbErr::RecordNotFound(format!("the fact row of {customer}")))
}

/// Whether an instant `new` replaces `kept` (none kept: it does).
pub fn later<T: PartialOrd>(new: &T, kept: Option<&T>) -> bool {
    kept.is_none_or(|kept| new > kept)
}

/// The merged customer's fact row and attributes go: what survives is the
/// survivor's, which the feeds keep current.
pub async fn merge(txn: &DatabaseTransaction, t: &TenantId, _survivor: Uuid, merged: Uuid) -> Result<Counts, DbErr> {
    erase(txn, t, &[merged]).await
}

/// Deletes the fact rows, attributes and contacts of `customers`.
pub async fn erase(txn: &DatabaseTransaction, t: &TenantId, customers: &[Uuid]) -> Result<Counts, DbErr> {
    let backend = txn.get_database_backend();
    let facts =
        scoped_delete::<fact::Entity>(t).filter(one_of(backend, fact::Column::CustomerId, customers)).exec(txn).await?;
    let attributes = scoped_delete::<attribute::Entity>(t)
        .filter(one_of(backend, attribute::Column::CustomerId, customers))
        .exec(txn)
        .await?;
    let contacts = scoped_delete::<contact::Entity>(t)
        .filter(one_of(backend, contact::Column::CustomerId, customers))
        .exec(txn)
        .await?;
    Ok(Counts::from([
        ("facts".to_owned(), count(facts.rows_affected)),
        ("attributes".to_owned(), count(attributes.rows_affected)),
        ("contacts".to_owned(), count(contacts.rows_affected)),
    ]))
}

pub(super) fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Whether `customer` has a fact row (for tests and checks).
pub async fn exists(conn: &impl ConnectionTrait, t: &TenantId, customer: Uuid) -> Result<bool, DbErr> {
    let found = scoped::<fact::Entity>(t)
        .filter(fact::Column::CustomerId.eq(customer))
        .select_only()
        .column(fact::Column::CustomerId)
        .into_tuple::<Uuid>()
        .one(conn)
        .await?;
    Ok(found.is_some())
}
