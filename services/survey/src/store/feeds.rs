//! What survey tells the services taking its feeds (the registry's
//! `Feed::Scores` and `Feed::Cases`), written in the transaction of the
//! change: each answer's score, and a customer's count of unresolved cases
//! whenever a case opens, resolves, reopens or moves in a merge.

use std::sync::Arc;

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
        let changed = OpenCasesChanged {
            profile_id: customer.to_string(),
            open_cases: i64::try_from(open).unwrap_or(i64::MAX),
            change_time: Some(cx_proto::timestamp(cx_runtime::store::now())),
        };
        for service in self.cases.iter() {
            cx_runtime::outbox::send(conn, t, service, &changed).await?;
        }
        Ok(())
    }
}
