//! Follow-up cases of unhappy answers (docs/DOMAIN.md §7.6).

use chrono::{DateTime, Utc};
use cx_runtime::TenantId;
use sea_orm::DatabaseTransaction;
use uuid::Uuid;

use super::Result;
use crate::domain::settings::Settings;
use crate::domain::survey::SurveyType;

/// What a case is opened from: an unhappy response, in its transaction.
#[derive(Clone, Debug, PartialEq)]
pub struct Unhappy {
    pub response_id: String,
    pub survey_id: Uuid,
    pub survey_type: SurveyType,
    pub customer_id: Option<Uuid>,
    pub score: i32,
    pub respond_time: DateTime<Utc>,
}

/// Opens the case of an unhappy response, in the response's transaction,
/// due after the tenant's SLA for its type; returns its id.
pub async fn open(_txn: &DatabaseTransaction, _t: &TenantId, _unhappy: &Unhappy, _settings: &Settings) -> Result<Uuid> {
    Err(super::SurveyError::Internal("follow-up cases are not written yet".into()))
}
