//! The reads of ExportSegment (docs/DOMAIN.md §8.6): a page of a segment's
//! members, each with whether the purpose's consent is in force now and
//! the contacts of the channel's kind. One statement a page, which yields
//! nothing once the segment has been refreshed again, so a page never
//! mixes two refreshes' members.

use cx_runtime::TenantId;
use sea_orm::{ConnectionTrait, DbErr};
use uuid::Uuid;

use super::entity::segment;
use crate::evaluate::Sql;

/// The refresh an export reads, as its segment row holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refresh {
    /// The refresh's number (`segments.refreshes`); 0: never refreshed.
    pub number: i64,
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    pub members: i64,
    pub erased: i64,
    pub merged: i64,
}

impl From<segment::Model> for Refresh {
    fn from(s: segment::Model) -> Self {
        Refresh {
            number: s.refreshes,
            at: s.refreshed_at,
            members: s.member_count,
            erased: s.erased_members,
            merged: s.merged_members,
        }
    }
}

/// What to read: the members of `segment` after `after`, as refresh
/// `refresh` left them, for consent `purpose` and identity `kind`.
#[derive(Clone, Debug)]
pub struct Page {
    pub segment: Uuid,
    pub refresh: i64,
    pub purpose: String,
    pub kind: i16,
    pub after: Option<Uuid>,
    pub limit: u64,
}

/// One member as the page reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub customer: Uuid,
    pub consents: bool,
    /// In order; empty without consent.
    pub contacts: Vec<String>,
}

/// The page's members in customer order: empty at the end of the members,
/// and when the segment is no longer at `page.refresh`.
pub async fn page(conn: &impl ConnectionTrait, t: &TenantId, page: &Page) -> Result<Vec<Member>, DbErr> {
    let mut sql = Sql::new(conn.get_database_backend());
    sql.push(
        "SELECT m.customer_id, c.granted, k.value FROM (SELECT customer_id FROM segment_members WHERE tenant_id = ",
    );
    sql.bind(t.as_str());
    sql.push(" AND segment_id = ");
    sql.bind(page.segment);
    if let Some(after) = page.after {
        sql.push(" AND customer_id > ");
        sql.bind(after);
    }
    sql.push(" AND EXISTS (SELECT 1 FROM segments s WHERE s.tenant_id = ");
    sql.bind(t.as_str());
    sql.push(" AND s.id = ");
    sql.bind(page.segment);
    sql.push(" AND s.refreshes = ");
    sql.bind(page.refresh);
    sql.push(") ORDER BY customer_id LIMIT ");
    sql.bind(i64::try_from(page.limit).unwrap_or(i64::MAX));
    // Contacts are read only where the consent is in force.
    sql.push(") m LEFT JOIN segment_consents c ON c.tenant_id = ");
    sql.bind(t.as_str());
    sql.push(" AND c.customer_id = m.customer_id AND c.purpose = ");
    sql.bind(page.purpose.as_str());
    sql.push(" LEFT JOIN segment_contacts k ON k.tenant_id = ");
    sql.bind(t.as_str());
    sql.push(" AND k.customer_id = m.customer_id AND k.kind = ");
    sql.bind(page.kind);
    sql.push(" AND c.granted ORDER BY m.customer_id, k.value");
    let rows = conn.query_all_raw(sql.into_statement()).await?;
    let mut members: Vec<Member> = Vec::new();
    for row in rows {
        let customer: Uuid = row.try_get_by_index(0)?;
        let granted: Option<bool> = row.try_get_by_index(1)?;
        let contact: Option<String> = row.try_get_by_index(2)?;
        if members.last().is_none_or(|m| m.customer != customer) {
            members.push(Member { customer, consents: granted == Some(true), contacts: Vec::new() });
        }
        if let (Some(value), Some(member)) = (contact, members.last_mut()) {
            member.contacts.push(value);
        }
    }
    Ok(members)
}
