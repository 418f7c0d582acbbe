//! The latest survey answers of each customer (docs/DOMAIN.md §7.4), as the
//! survey service reports them through its outbox: per kind of survey the
//! answer given last is kept, whatever order the reports arrive in. A report
//! for a merged id goes to the survivor; one for an erased id is dropped.

use std::collections::HashMap;

use cx_runtime::TenantId;
use cx_runtime::store::{one_of, scoped, scoped_delete};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter,
    QuerySelect,
};
use uuid::Uuid;

use super::Result;
use super::entity::{customer, survey_score};
use crate::domain::scores::{Score, SurveyKind};
use cx_runtime::error::{FieldViolation, all2, all3};

fn score_of(row: survey_score::Model) -> Option<(Uuid, Score)> {
    let kind = SurveyKind::from_code(i32::from(row.survey_type))?;
    let score = Score {
        kind,
        score: row.score,
        survey_id: row.survey_id,
        response_id: row.response_id,
        responded_at: row.responded_at,
    };
    Some((row.customer_id, score))
}

/// The latest answers of each of `customers`, by customer, in kind order.
pub async fn latest<C: ConnectionTrait>(
    conn: &C,
    t: &TenantId,
    customers: &[Uuid],
) -> Result<HashMap<Uuid, Vec<Score>>> {
    let mut latest: HashMap<Uuid, Vec<Score>> = HashMap::new();
    if customers.is_empty() {
        return Ok(latest);
    }
    let rows = scoped::<survey_score::Entity>(t)
        .filter(one_of(conn.get_database_backend(), survey_score::Column::CustomerId, customers))
        .all(conn)
        .await?;
    for (customer, score) in rows.into_iter().filter_map(score_of) {
        latest.entry(customer).or_default().push(score);
    }
    for scores in latest.values_mut() {
        scores.sort_by_key(|s| s.kind);
    }
    Ok(latest)
}

/// Keeps `score` for `customer` if it is that customer's latest answer of
/// its kind; returns the profile whose scores changed. The customer's row
/// is locked first (PostgreSQL), so a merge or erasure of the customer
/// either comes before (the score follows the survivor, or is dropped) or
/// after (and sees the score).
pub async fn record(txn: &DatabaseTransaction, t: &TenantId, customer: Uuid, score: &Score) -> Result<Option<Uuid>> {
    let owner = match lock(txn, t, customer).await? {
        Some(owner) => Some(owner),
        None => match super::merge::survivor_on(txn, t, customer).await? {
            Some(survivor) => lock(txn, t, survivor).await?,
            None => None,
        },
    };
    let Some(owner) = owner else {
        tracing::info!("survey score of an erased profile dropped");
        return Ok(None);
    };
    let kept = scoped::<survey_score::Entity>(t)
        .filter(survey_score::Column::CustomerId.eq(owner))
        .filter(survey_score::Column::SurveyType.eq(score.kind.code()))
        .one(txn)
        .await?
        .and_then(score_of);
    if kept.is_some_and(|(_, kept)| !score.supersedes(&kept)) {
        return Ok(None);
    }
    keep(txn, t, owner, score).await?;
    Ok(Some(owner))
}

/// On a merge: the survivor keeps the latest answer of each kind of the two
/// customers; the merged customer's rows go.
pub async fn merge(txn: &DatabaseTransaction, t: &TenantId, survivor: Uuid, merged: Uuid) -> Result<()> {
    let mut both = latest(txn, t, &[survivor, merged]).await?;
    let theirs = both.remove(&merged).unwrap_or_default();
    let ours = both.remove(&survivor).unwrap_or_default();
    for score in theirs {
        if ours.iter().find(|o| o.kind == score.kind).is_none_or(|o| score.supersedes(o)) {
            keep(txn, t, survivor, &score).await?;
        }
    }
    scoped_delete::<survey_score::Entity>(t).filter(survey_score::Column::CustomerId.eq(merged)).exec(txn).await?;
    Ok(())
}

/// Writes `score` as `customer`'s answer of its kind.
async fn keep(txn: &DatabaseTransaction, t: &TenantId, customer: Uuid, score: &Score) -> Result<()> {
    use survey_score::Column as C;
    let row = survey_score::ActiveModel {
        tenant_id: Set(t.to_string()),
        customer_id: Set(customer),
        survey_type: Set(score.kind.code()),
        score: Set(score.score),
        survey_id: Set(score.survey_id.clone()),
        response_id: Set(score.response_id.clone()),
        responded_at: Set(cx_runtime::store::stored_instant(score.responded_at)),
    };
    let replace = OnConflict::columns([C::TenantId, C::CustomerId, C::SurveyType])
        .update_columns([C::Score, C::SurveyId, C::ResponseId, C::RespondedAt])
        .to_owned();
    survey_score::Entity::insert(row).on_conflict(replace).exec_without_returning(txn).await?;
    Ok(())
}

/// The customer's id if it is a profile, its row locked until `txn` ends.
async fn lock(txn: &DatabaseTransaction, t: &TenantId, id: Uuid) -> Result<Option<Uuid>> {
    let mut query =
        scoped::<customer::Entity>(t).filter(customer::Column::Id.eq(id)).select_only().column(customer::Column::Id);
    if txn.get_database_backend() == DbBackend::Postgres {
        query = query.lock_exclusive();
    }
    Ok(query.into_tuple::<Uuid>().one(txn).await?)
}

/// A report as the survey service sends it, checked: every violation at
/// once (the sender's outbox keeps a refused report as dead).
pub fn parse(report: cx_proto::survey::v1::ScoreRecorded) -> Result<(Uuid, Score)> {
    let cx_proto::survey::v1::ScoreRecorded { profile_id, survey_type, score, survey_id, response_id, respond_time } =
        report;
    let ((customer, (kind, score)), (survey_id, response_id), responded_at) = all3(
        all2(crate::api::convert::parse_id(&profile_id, "profile_id"), answer(survey_type, score)),
        all2(reference(survey_id, "survey_id"), reference(response_id, "response_id")),
        respond_time
            .as_ref()
            .and_then(cx_proto::from_timestamp)
            .ok_or_else(|| FieldViolation::new("respond_time", "is required")),
    )?;
    Ok((customer, Score { kind, score, survey_id, response_id, responded_at }))
}

/// The kind of survey and an answer within its range.
fn answer(survey_type: i32, score: i32) -> std::result::Result<(SurveyKind, i32), FieldViolation> {
    let kind = SurveyKind::from_code(survey_type)
        .ok_or_else(|| FieldViolation::new("survey_type", "must be NPS, CSAT or CES"))?;
    let range = kind.range();
    if !range.contains(&score) {
        let why = format!("must be {} to {} for this kind of survey", range.start(), range.end());
        return Err(FieldViolation::new("score", why));
    }
    Ok((kind, score))
}

/// A survey's or response's id: 1 to 128 characters.
fn reference(id: String, field: &str) -> std::result::Result<String, FieldViolation> {
    if id.is_empty() || id.chars().count() > 128 {
        return Err(FieldViolation::new(field, "must have 1 to 128 characters"));
    }
    Ok(id)
}
