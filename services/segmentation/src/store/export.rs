//! The read of ExportSegment (docs/DOMAIN.md §8.6): a segment's members in
//! customer order, each with whether the purpose's consent is in force and
//! the contacts of the channel's kind, as ONE statement streamed to the end.
//! One statement reads one snapshot, so the whole export is of one refresh
//! (the statement yields nothing once the segment has been refreshed again)
//! and the counts of erased and merged members are of that same moment; its
//! plan joins the tables once rather than once a page.

use cx_runtime::TenantId;
use sea_orm::{DbBackend, DbErr, QueryResult, Statement};
use uuid::Uuid;

use super::entity::segment;
use crate::evaluate::Sql;

/// The refresh an export reads, as its segment row holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refresh {
    /// The refresh's number (`segments.refreshes`); 0: never refreshed.
    pub number: i64,
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    pub erased: i64,
    pub merged: i64,
}

impl From<segment::Model> for Refresh {
    fn from(s: segment::Model) -> Self {
        Refresh { number: s.refreshes, at: s.refreshed_at, erased: s.erased_members, merged: s.merged_members }
    }
}

/// What to read: the members of `segment` after `after`, as refresh
/// `refresh` left them, for consent `purpose` and identity `kind`.
#[derive(Clone, Debug)]
pub struct Read {
    pub segment: Uuid,
    pub refresh: i64,
    pub purpose: String,
    pub kind: i16,
    pub after: Option<Uuid>,
}

/// One row of the statement: a member, and one of its contacts if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub customer: Uuid,
    pub consents: bool,
    /// `None` without consent or without a contact of the kind.
    pub contact: Option<String>,
    /// The segment's erased and merged members, the same on every row.
    pub erased: i64,
    pub merged: i64,
}

/// The statement: rows in customer then contact order.
pub fn statement(backend: DbBackend, t: &TenantId, read: &Read) -> Statement {
    let mut sql = Sql::new(backend);
    let segment_column = |sql: &mut Sql, column: &str| {
        sql.push(&format!("(SELECT s.{column} FROM segments s WHERE s.tenant_id = "));
        sql.bind(t.as_str());
        sql.push(" AND s.id = ");
        sql.bind(read.segment);
        sql.push(")");
    };
    sql.push("SELECT m.customer_id, c.granted, k.value, ");
    segment_column(&mut sql, "erased_members");
    sql.push(", ");
    segment_column(&mut sql, "merged_members");
    // Contacts are read only where the consent is in force.
    sql.push(" FROM segment_members m LEFT JOIN segment_consents c ON c.tenant_id = m.tenant_id");
    sql.push(" AND c.customer_id = m.customer_id AND c.purpose = ");
    sql.bind(read.purpose.as_str());
    sql.push(" LEFT JOIN segment_contacts k ON k.tenant_id = m.tenant_id AND k.customer_id = m.customer_id");
    sql.push(" AND k.kind = ");
    sql.bind(read.kind);
    sql.push(" AND c.granted WHERE m.tenant_id = ");
    sql.bind(t.as_str());
    sql.push(" AND m.segment_id = ");
    sql.bind(read.segment);
    if let Some(after) = read.after {
        sql.push(" AND m.customer_id > ");
        sql.bind(after);
    }
    sql.push(" AND EXISTS (SELECT 1 FROM segments s WHERE s.tenant_id = ");
    sql.bind(t.as_str());
    sql.push(" AND s.id = ");
    sql.bind(read.segment);
    sql.push(" AND s.refreshes = ");
    sql.bind(read.refresh);
    sql.push(") ORDER BY m.customer_id, k.value");
    sql.into_statement()
}

/// A row of [`statement`].
pub fn row(r: &QueryResult) -> Result<Row, DbErr> {
    let granted: Option<bool> = r.try_get_by_index(1)?;
    Ok(Row {
        customer: r.try_get_by_index(0)?,
        consents: granted == Some(true),
        contact: r.try_get_by_index(2)?,
        erased: r.try_get_by_index::<Option<i64>>(3)?.unwrap_or_default(),
        merged: r.try_get_by_index::<Option<i64>>(4)?.unwrap_or_default(),
    })
}
