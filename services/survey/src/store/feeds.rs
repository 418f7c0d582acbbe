//! What survey tells the services taking its feeds (the registry's
//! `Feed::Scores` and `Feed::Cases`), written in the transaction of the
//! change: each answer's score, and a customer's count of unresolved cases
//! whenever a case opens, resolves, reopens or moves in a merge.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use cx_proto::survey::v1::{OpenCasesChanged, ScoreRecorded};
use cx_runtime::TenantId;
use cx_runtime::store::scoped;
use sea_orm::{ColumnTrait, ConnectionTrait, PaginatorTrait, QueryFilter};
use uuid::Uuid;

use super::Result;
use super::entity::case;
use crate::domain::case::CaseState;

/// The deployed takers of each feed, as the registry names them.
#[derive(Clone, Debug, Default)]
pub struct Feeds {
    pub scores: Arc<[&'static str]>,
    pub cases: Arc<[&'static str]>,
}

impl Feeds {
    /// Enqueues an answer's score for every taker of scores.
    pub async fn score(&self, conn: &impl ConnectionTrait, t: &TenantId, recorded: &ScoreRecorded) -> Result<()> {
        for service in self.scores.iter() {
            cx_runtime::outbox::send(conn, t, service, recorded).await?;
        }
        Ok(())
    }

    /// Enqueues `customer`'s count of unresolved cases, as of now, for
    /// every taker of cases.
    pub async fn open_cases(&self, conn: &impl ConnectionTrait, t: &TenantId, customer: Uuid) -> Result<()> {
        if self.cases.is_empty() {
            return Ok(());
        }
        let open = scoped::<case::Entity>(t)
            .filter(case::Column::CustomerId.eq(customer))
            .filter(case::Column::State.ne(CaseState::Resolved.code()))
            .count(conn)
            .await?;
        let changed = open_cases(customer, i64::try_from(open).unwrap_or(i64::MAX), cx_runtime::store::now());
        for service in self.cases.iter() {
            cx_runtime::outbox::send(conn, t, service, &changed).await?;
        }
        Ok(())
    }
}

/// An answer's score as the scores feed (and the score facts export) sends
/// it: `row` is a response holding a customer.
pub fn score_recorded(customer: Uuid, row: &ScoreRow<'_>) -> ScoreRecorded {
    ScoreRecorded {
        profile_id: customer.to_string(),
        survey_type: i32::from(row.survey_type),
        score: i32::from(row.score),
        survey_id: row.survey_id.to_string(),
        response_id: row.response_id.to_owned(),
        respond_time: Some(cx_proto::timestamp(row.responded_at)),
    }
}

/// The columns of a response a score is told by.
#[derive(Clone, Copy, Debug)]
pub struct ScoreRow<'a> {
    pub survey_type: i16,
    pub score: i16,
    pub survey_id: Uuid,
    pub response_id: &'a str,
    pub responded_at: DateTime<Utc>,
}

/// A customer's count of unresolved cases as of `at`, as the cases feed
/// (and the export) sends it.
pub fn open_cases(customer: Uuid, open: i64, at: DateTime<Utc>) -> OpenCasesChanged {
    OpenCasesChanged { profile_id: customer.to_string(), open_cases: open, change_time: Some(cx_proto::timestamp(at)) }
}
