//! The survey service's part in merges, erasures and access exports
//! (docs/DOMAIN.md §6.3): what its data does is [`crate::store::gdpr`]; the
//! runtime ([`cx_runtime::gdpr`]) decodes, checks the sender, follows merge
//! chains, forgets the customer in the outbox (the `ScoreRecorded` messages
//! naming her), confirms and traces. An export gives the customer's
//! invitations, responses and cases as their `cx.survey.v1` messages, and
//! the consent decision kept for her as the `cx.profile.v1.ConsentChanged`
//! that told it.

use async_trait::async_trait;
use cx_runtime::TenantId;
use cx_runtime::gdpr::export::{self, Records};
use cx_runtime::gdpr::{Counts, Participant};
use cx_runtime::outbox::inbox::AfterCommit;
use cx_runtime::store::Db;
use futures::StreamExt;
use sea_orm::DatabaseTransaction;
use uuid::Uuid;

use cx_proto::profile::v1 as profile;

use crate::api::cases::case_to_proto;
use crate::api::invitations::invitation_to_proto;
use crate::store::entity::consent;
use crate::store::feeds::Feeds;
use crate::store::{SurveyError, gdpr, invitations, responses};

/// The survey service's data, as merges, erasures and exports see it. It
/// caches nothing about a customer, so nothing is left to invalidate.
#[derive(Debug)]
pub struct SurveyData {
    /// Told the survivor's open cases after a merge moved some.
    pub feeds: Feeds,
}

#[async_trait]
impl Participant for SurveyData {
    async fn merge(
        &self,
        txn: &DatabaseTransaction,
        t: &TenantId,
        survivor: Uuid,
        merged: Uuid,
    ) -> Result<AfterCommit, SurveyError> {
        let invitations = invitations::gdpr::merge(txn, t, survivor, merged).await?;
        let moved = gdpr::merge(txn, t, survivor, merged).await?;
        if moved.get("cases").is_some_and(|n| *n > 0) {
            self.feeds.open_cases(txn, t, survivor).await?;
        }
        tracing::info!(invitations, ?moved, "merged customer's survey data moved to the survivor");
        Ok(None)
    }

    async fn erase(
        &self,
        txn: &DatabaseTransaction,
        t: &TenantId,
        customers: &[Uuid],
    ) -> Result<(Counts, AfterCommit), SurveyError> {
        let mut counts = invitations::gdpr::erase(txn, t, customers).await?;
        counts.extend(gdpr::erase(txn, t, customers).await?);
        Ok((counts, None))
    }

    async fn export(&self, db: &Db, t: &TenantId, customers: &[Uuid]) -> Result<Records, SurveyError> {
        let held = gdpr::held(db, t, customers).await?;
        let now = chrono::Utc::now();
        let mut records = Vec::new();
        for decision in &held.consents {
            records.push(export::record(&consent_to_proto(decision))?);
        }
        for row in &held.invitations {
            records.push(export::record(&invitation_to_proto(row))?);
        }
        for row in &held.responses {
            records.push(export::record(&responses::to_proto(row)?)?);
        }
        for case in &held.cases {
            records.push(export::record(&case_to_proto(case, now))?);
        }
        Ok(futures::stream::iter(records.into_iter().map(Ok)).boxed())
    }
}

/// The `survey` consent decision kept for a customer, as profile told it.
fn consent_to_proto(row: &consent::Model) -> profile::ConsentChanged {
    let survey = profile::purpose::Kind::Standard(profile::ConsentPurpose::Survey as i32);
    profile::ConsentChanged {
        profile_id: row.customer_id.to_string(),
        purpose: Some(profile::Purpose { kind: Some(survey) }),
        granted: row.granted,
        occur_time: Some(cx_proto::timestamp(row.occurred_at)),
        record_time: Some(cx_proto::timestamp(row.recorded_at)),
    }
}
