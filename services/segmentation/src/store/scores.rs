//! Survey scores as survey announces them (`ScoreRecorded`): per customer
//! and survey type the latest by respond_time is kept and projected into the
//! fact row (`last_nps`, `nps_category`, `last_csat`, `last_ces`), and every
//! response counts once in `responses`. A response is announced once, and
//! the inbox applies a message once; an announcement of the response
//! already kept does not count again either.

use chrono::{DateTime, Utc};
use cx_runtime::TenantId;
use cx_runtime::gdpr::Counts;
use cx_runtime::store::{increment, one_of, scoped, scoped_delete, scoped_update, stored_instant};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::entity::{fact, score};
use super::facts::{self, count, later};

/// cx.survey.v1.SurveyType's codes.
pub const NPS: i16 = 1;
pub const CSAT: i16 = 2;
pub const CES: i16 = 3;

/// One answer's score.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Score {
    pub customer: Uuid,
    pub survey_type: i16,
    pub score: i16,
    pub respond_time: DateTime<Utc>,
    pub response_id: String,
}

/// The NPS category of a score 0–10 (docs/DOMAIN.md §7.1).
pub fn nps_category(score: i16) -> &'static str {
    match score {
        9.. => "promoter",
        7..=8 => "passive",
        _ => "detractor",
    }
}

/// Counts `s` among the customer's responses and keeps it if it is later
/// than the score kept for its type; true when it is now the one kept.
pub async fn apply(txn: &DatabaseTransaction, t: &TenantId, s: &Score) -> Result<bool, DbErr> {
    take(txn, t, s, false).await
}

/// [`apply`] for a score a load read (a customer's latest of its type):
/// counted among the responses only when later than the one kept, since
/// an earlier one was announced, and counted, by the feed already.
pub async fn load(txn: &DatabaseTransaction, t: &TenantId, s: &Score) -> Result<bool, DbErr> {
    take(txn, t, s, true).await
}

async fn take(txn: &DatabaseTransaction, t: &TenantId, s: &Score, loaded: bool) -> Result<bool, DbErr> {
    facts::hold(txn, t, s.customer).await?;
    let at = stored_instant(s.respond_time);
    let kept = scoped::<score::Entity>(t)
        .filter(score::Column::CustomerId.eq(s.customer))
        .filter(score::Column::SurveyType.eq(s.survey_type))
        .one(txn)
        .await?;
    if kept.as_ref().is_some_and(|k| k.response_id == s.response_id) {
        return Ok(false);
    }
    let is_later = later(&at, kept.as_ref().map(|k| &k.respond_time));
    if is_later || !loaded {
        scoped_update::<fact::Entity>(t)
            .filter(fact::Column::CustomerId.eq(s.customer))
            .col_expr(fact::Column::Responses, increment(fact::Column::Responses))
            .exec(txn)
            .await?;
    }
    if !is_later {
        return Ok(false);
    }
    keep(txn, t, &Score { respond_time: at, ..s.clone() }).await?;
    Ok(true)
}

/// Stores `s` as the score of its type and projects it into the fact row.
async fn keep(txn: &DatabaseTransaction, t: &TenantId, s: &Score) -> Result<(), DbErr> {
    let row = score::ActiveModel {
        tenant_id: Set(t.to_string()),
        customer_id: Set(s.customer),
        survey_type: Set(s.survey_type),
        score: Set(s.score),
        respond_time: Set(s.respond_time),
        response_id: Set(s.response_id.clone()),
    };
    let upsert = OnConflict::columns([score::Column::TenantId, score::Column::CustomerId, score::Column::SurveyType])
        .update_columns([score::Column::Score, score::Column::RespondTime, score::Column::ResponseId])
        .to_owned();
    score::Entity::insert(row).on_conflict(upsert).exec_without_returning(txn).await?;
    let update = scoped_update::<fact::Entity>(t).filter(fact::Column::CustomerId.eq(s.customer));
    let update = match s.survey_type {
        NPS => update
            .col_expr(fact::Column::LastNps, Expr::value(Some(s.score)))
            .col_expr(fact::Column::NpsCategory, Expr::value(Some(nps_category(s.score)))),
        CSAT => update.col_expr(fact::Column::LastCsat, Expr::value(Some(s.score))),
        CES => update.col_expr(fact::Column::LastCes, Expr::value(Some(s.score))),
        // Checked by the inbox: no other type is kept.
        _ => return Ok(()),
    };
    update.exec(txn).await?;
    Ok(())
}

/// The merged customer's scores are offered to the survivor (the later per
/// type wins) and its responses added to the survivor's; then they go.
pub async fn merge(txn: &DatabaseTransaction, t: &TenantId, survivor: Uuid, merged: Uuid) -> Result<Counts, DbErr> {
    let merged_fact = scoped::<fact::Entity>(t).filter(fact::Column::CustomerId.eq(merged)).one(txn).await?;
    let responses = merged_fact.map_or(0, |f| f.responses);
    let theirs = scoped::<score::Entity>(t).filter(score::Column::CustomerId.eq(merged)).all(txn).await?;
    let survivor_fact = facts::hold(txn, t, survivor).await?;
    let mut taken = 0;
    for row in theirs {
        let kept = scoped::<score::Entity>(t)
            .filter(score::Column::CustomerId.eq(survivor))
            .filter(score::Column::SurveyType.eq(row.survey_type))
            .one(txn)
            .await?;
        if later(&row.respond_time, kept.as_ref().map(|k| &k.respond_time)) {
            let s = Score {
                customer: survivor,
                survey_type: row.survey_type,
                score: row.score,
                respond_time: row.respond_time,
                response_id: row.response_id,
            };
            keep(txn, t, &s).await?;
            taken += 1;
        }
    }
    scoped_update::<fact::Entity>(t)
        .filter(fact::Column::CustomerId.eq(survivor))
        .col_expr(fact::Column::Responses, Expr::value(survivor_fact.responses.saturating_add(responses)))
        .exec(txn)
        .await?;
    let mut counts = erase(txn, t, &[merged]).await?;
    counts.insert("scores.taken".to_owned(), taken);
    counts.insert("responses.moved".to_owned(), responses);
    Ok(counts)
}

/// Deletes the scores kept for `customers`.
pub async fn erase(txn: &DatabaseTransaction, t: &TenantId, customers: &[Uuid]) -> Result<Counts, DbErr> {
    let done = scoped_delete::<score::Entity>(t)
        .filter(one_of(txn.get_database_backend(), score::Column::CustomerId, customers))
        .exec(txn)
        .await?;
    Ok(Counts::from([("scores".to_owned(), count(done.rows_affected))]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nps_categories_follow_the_score() {
        let cats: Vec<_> = [0, 6, 7, 8, 9, 10].into_iter().map(nps_category).collect();
        assert_eq!(cats, ["detractor", "detractor", "passive", "passive", "promoter", "promoter"]);
    }
}
