//! Populations the kpi service filters KPIs by (docs/DOMAIN.md §9.11): a
//! segment's members as its last refresh left them, the customers whose
//! digital category is one of some, or both, a page at a time in customer
//! id order.

use cx_runtime::TenantId;
use cx_runtime::store::scoped;
use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, ConnectionTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::entity::{fact, member};
use super::members::Result;

/// At most `limit` + 1 customers after `after` of segment `segment` (any
/// customer when None) whose category is one of `categories` (any when
/// empty); the one more tells that more follow.
pub async fn page(
    conn: &impl ConnectionTrait,
    t: &TenantId,
    segment: Option<Uuid>,
    categories: &[&'static str],
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Uuid>> {
    let in_categories = fact::Column::DigitalCategory.is_in(categories.iter().copied());
    let ids = match segment {
        Some(id) => {
            let mut query = scoped::<member::Entity>(t).filter(member::Column::SegmentId.eq(id));
            if !categories.is_empty() {
                let of = Query::select()
                    .column(fact::Column::CustomerId)
                    .from(fact::Entity)
                    .and_where(fact::Column::TenantId.eq(t.as_str()))
                    .and_where(in_categories)
                    .to_owned();
                query = query.filter(member::Column::CustomerId.in_subquery(of));
            }
            if let Some(after) = after {
                query = query.filter(member::Column::CustomerId.gt(after));
            }
            query
                .select_only()
                .column(member::Column::CustomerId)
                .order_by_asc(member::Column::CustomerId)
                .limit(limit + 1)
                .into_tuple::<Uuid>()
                .all(conn)
                .await?
        }
        None => {
            let mut query = scoped::<fact::Entity>(t).filter(in_categories);
            if let Some(after) = after {
                query = query.filter(fact::Column::CustomerId.gt(after));
            }
            query
                .select_only()
                .column(fact::Column::CustomerId)
                .order_by_asc(fact::Column::CustomerId)
                .limit(limit + 1)
                .into_tuple::<Uuid>()
                .all(conn)
                .await?
        }
    };
    Ok(ids)
}
