//! Responses' and cases' part in merges, erasures and access exports
//! (docs/DOMAIN.md §6.3; invitations and consent decisions have theirs in
//! [`super::invitations::gdpr`]): a merge moves responses and cases to the
//! survivor; an erasure deletes cases with their comments and anonymises
//! responses, whose counts the roll-ups keep (docs/DECISIONS.md, Merge,
//! export, erasure); an export reads what is held, invitations included.

use cx_runtime::TenantId;
use cx_runtime::gdpr::Counts;
use cx_runtime::store::{one_of, scoped, scoped_delete, scoped_update};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseTransaction, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::Result;
use super::cases::{self, CaseRecord};
use super::entity::{case, case_comment, consent, invitation, response};
use super::responses;

/// What a merge moved, by kind of record.
pub type Moved = Counts;

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `merged`'s responses and cases are the survivor's now. No key of these
/// tables holds the customer, so nothing can collide.
pub async fn merge(txn: &DatabaseTransaction, t: &TenantId, survivor: Uuid, merged: Uuid) -> Result<Moved> {
    let responses = scoped_update::<response::Entity>(t)
        .col_expr(response::Column::CustomerId, Expr::value(Some(survivor)))
        .filter(response::Column::CustomerId.eq(merged))
        .exec(txn)
        .await?;
    let cases = scoped_update::<case::Entity>(t)
        .col_expr(case::Column::CustomerId, Expr::value(Some(survivor)))
        .filter(case::Column::CustomerId.eq(merged))
        .exec(txn)
        .await?;
    Ok(Moved::from([
        ("responses".to_owned(), count(responses.rows_affected)),
        ("cases".to_owned(), count(cases.rows_affected)),
    ]))
}

/// Deletes the cases of `customers` with their comments and anonymises
/// their responses; the counts by kind of record.
pub async fn erase(txn: &DatabaseTransaction, t: &TenantId, customers: &[Uuid]) -> Result<Counts> {
    let backend = txn.get_database_backend();
    // First, as it clears each response's case, deleted next.
    let anonymised = responses::anonymise(txn, t, customers).await?;
    let case_ids: Vec<Uuid> = scoped::<case::Entity>(t)
        .filter(one_of(backend, case::Column::CustomerId, customers))
        .select_only()
        .column(case::Column::Id)
        .into_tuple()
        .all(txn)
        .await?;
    let comments =
        scoped_delete::<case_comment::Entity>(t).filter(one_of(backend, case_comment::Column::CaseId, &case_ids));
    let comments = comments.exec(txn).await?;
    let cases = scoped_delete::<case::Entity>(t).filter(one_of(backend, case::Column::Id, &case_ids)).exec(txn).await?;
    Ok(Counts::from([
        ("responses_anonymised".to_owned(), count(anonymised)),
        ("cases".to_owned(), count(cases.rows_affected)),
        ("case_comments".to_owned(), count(comments.rows_affected)),
    ]))
}

/// What the service holds about some customers, as stored.
#[derive(Clone, Debug, Default)]
pub struct Held {
    /// The `survey` consent decisions profile announced, one a customer.
    pub consents: Vec<consent::Model>,
    /// In due-time order.
    pub invitations: Vec<invitation::Model>,
    /// Oldest first.
    pub responses: Vec<response::Model>,
    /// With their comments, oldest first.
    pub cases: Vec<CaseRecord>,
}

/// Everything held about `customers`: a few rows each (the fatigue budget
/// bounds the invitations, and so the responses and cases), read at once.
pub async fn held(conn: &impl ConnectionTrait, t: &TenantId, customers: &[Uuid]) -> Result<Held> {
    let backend = conn.get_database_backend();
    let consents = scoped::<consent::Entity>(t)
        .filter(one_of(backend, consent::Column::CustomerId, customers))
        .order_by_asc(consent::Column::CustomerId)
        .all(conn)
        .await?;
    let invitations = scoped::<invitation::Entity>(t)
        .filter(one_of(backend, invitation::Column::CustomerId, customers))
        .order_by_asc(invitation::Column::SendAfter)
        .order_by_asc(invitation::Column::Id)
        .all(conn)
        .await?;
    let responses = scoped::<response::Entity>(t)
        .filter(one_of(backend, response::Column::CustomerId, customers))
        .order_by_asc(response::Column::RespondedAt)
        .order_by_asc(response::Column::Id)
        .all(conn)
        .await?;
    let cases = cases::of_customers(conn, t, customers).await?;
    Ok(Held { consents, invitations, responses, cases })
}
