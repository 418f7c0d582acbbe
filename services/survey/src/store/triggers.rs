//! Triggers (docs/DOMAIN.md §7.6), each stored as its `cx.survey.v1.Trigger`
//! message, and the form the matching reads ([`Trigger`]): the tenant's
//! active triggers, cached.

use std::collections::HashSet;

use cx_proto::survey::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::cache::{Cache, CacheKey};
use cx_runtime::store::{Db, scoped, scoped_delete, scoped_update};
use prost::Message;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use uuid::Uuid;

use super::entity::{survey, trigger};
use super::{Result, SurveyError};
use crate::domain::trigger::{Condition, Trigger};

/// Decodes a stored trigger.
pub fn decode(body: &[u8], id: Uuid) -> Result<pb::Trigger> {
    pb::Trigger::decode(body).map_err(|e| SurveyError::Corrupt(format!("trigger {id}: {e}")))
}

fn not_found(id: Uuid) -> SurveyError {
    SurveyError::not_found(format_args!("trigger {id}"))
}

/// Stores a new trigger: `trigger` is valid, with its id and times set.
pub async fn insert(conn: &impl ConnectionTrait, t: &TenantId, trigger: &pb::Trigger) -> Result<()> {
    let parse = |s: &str| Uuid::parse_str(s).map_err(|e| SurveyError::Corrupt(format!("trigger: {e}")));
    trigger::Entity::insert(trigger::ActiveModel {
        tenant_id: Set(t.to_string()),
        id: Set(parse(&trigger.id)?),
        survey_id: Set(parse(&trigger.survey_id)?),
        body: Set(trigger.encode_to_vec()),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// The cache entry of the tenant's active triggers. Whoever changes a
/// trigger, or archives a survey, drops it after the commit.
pub fn active_key(t: &TenantId) -> CacheKey {
    CacheKey::new(t, "survey-triggers", "active")
}

/// The triggers that invite now: enabled, of surveys not archived, in
/// creation order. Read for every batch of offered touchpoints, so read
/// through the cache ([`active_key`]): one cache read, not a decode of every
/// trigger, per batch.
pub async fn active(conn: &impl ConnectionTrait, cache: &Cache, t: &TenantId) -> Result<Vec<Trigger>> {
    let key = active_key(t);
    let load = || async { Ok::<_, SurveyError>(Some(load_active(conn, t).await?.encode_to_vec())) };
    let cached = cache.get_or_load(&key, load).await?;
    let list = match cached.map(|bytes| pb::ListTriggersResponse::decode(bytes.as_slice())) {
        Some(Ok(list)) => list,
        _ => {
            tracing::warn!("undecodable active triggers in the cache, reading the database");
            cache.invalidate(&key).await?;
            load_active(conn, t).await?
        }
    };
    list.triggers.iter().map(matching).collect()
}

/// The active triggers from the database, as their messages.
async fn load_active(conn: &impl ConnectionTrait, t: &TenantId) -> Result<pb::ListTriggersResponse> {
    let live: HashSet<Uuid> = scoped::<survey::Entity>(t)
        .filter(survey::Column::Archived.eq(false))
        .select_only()
        .column(survey::Column::Id)
        .into_tuple::<Uuid>()
        .all(conn)
        .await?
        .into_iter()
        .collect();
    let mut triggers = Vec::new();
    for row in scoped::<trigger::Entity>(t).order_by_asc(trigger::Column::Id).all(conn).await? {
        if !live.contains(&row.survey_id) {
            continue;
        }
        let trigger = decode(&row.body, row.id)?;
        if trigger.enabled {
            triggers.push(trigger);
        }
    }
    Ok(pb::ListTriggersResponse { triggers, next_page_token: String::new() })
}

/// The matching form of a valid stored trigger.
pub fn matching(p: &pb::Trigger) -> Result<Trigger> {
    let corrupt = |what: &str| SurveyError::Corrupt(format!("trigger {}: {what}", p.id));
    let uuid = |s: &str| Uuid::parse_str(s).map_err(|_| corrupt("bad id"));
    let duration = |d: &Option<prost_types::Duration>, default: chrono::Duration| {
        d.as_ref()
            .map_or(default, |d| chrono::Duration::seconds(d.seconds) + chrono::Duration::nanoseconds(d.nanos.into()))
    };
    let c = p.condition.clone().unwrap_or_default();
    let condition = Condition {
        map_id: (!c.map_id.is_empty()).then(|| uuid(&c.map_id)).transpose()?,
        step_key: (!c.step_key.is_empty()).then_some(c.step_key),
        channels: c.channels,
        kind: (c.kind != 0).then_some(c.kind),
        score_below: c.experience_score_below,
        purchase_above: c.purchase_above.map(|m| (m.currency_code, m.units * 1_000_000 + i64::from(m.nanos) / 1_000)),
        lifecycles: c.lifecycles,
        digital_categories: c.digital_categories,
    };
    Ok(Trigger {
        id: uuid(&p.id)?,
        survey_id: uuid(&p.survey_id)?,
        enabled: p.enabled,
        condition,
        sampling_rate: p.sampling_rate,
        delay: duration(&p.delay, chrono::Duration::zero()),
        expiry: duration(&p.expiry, crate::domain::validate::trigger::DEFAULT_EXPIRY),
    })
}

/// Refuses a change to the triggers of survey `id` unless the tenant has it
/// and it is not archived.
async fn survey_open(conn: &impl ConnectionTrait, t: &TenantId, id: Uuid) -> Result<()> {
    match super::surveys::archived(conn, t, id).await? {
        None => Err(SurveyError::not_found(format_args!("survey {id}"))),
        Some(true) => {
            Err(SurveyError::FailedPrecondition(format!("survey {id} is archived: its triggers cannot change")))
        }
        Some(false) => Ok(()),
    }
}

/// Creates `trigger` (checked) for survey `survey_id`: its id (UUID v7) and
/// times are set here. A survey archived meanwhile is harmless: [`active`]
/// leaves out the triggers of archived surveys.
pub async fn create(
    conn: &impl ConnectionTrait,
    t: &TenantId,
    survey_id: Uuid,
    mut trigger: pb::Trigger,
) -> Result<pb::Trigger> {
    survey_open(conn, t, survey_id).await?;
    let now = cx_proto::timestamp(cx_runtime::store::now());
    trigger.id = Uuid::now_v7().to_string();
    trigger.survey_id = survey_id.to_string();
    trigger.create_time = Some(now);
    trigger.update_time = Some(now);
    insert(conn, t, &trigger).await?;
    Ok(trigger)
}

/// The tenant's trigger `id`.
pub async fn get(conn: &impl ConnectionTrait, t: &TenantId, id: Uuid) -> Result<Option<pb::Trigger>> {
    let row = scoped::<trigger::Entity>(t).filter(trigger::Column::Id.eq(id)).one(conn).await?;
    row.map(|r| decode(&r.body, r.id)).transpose()
}

/// Triggers in creation order, of one survey or all, after `after` (the
/// last of the previous page); one more than `limit` when another page
/// follows.
pub async fn list(
    conn: &impl ConnectionTrait,
    t: &TenantId,
    survey: Option<Uuid>,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<pb::Trigger>> {
    let mut query = scoped::<trigger::Entity>(t).order_by_asc(trigger::Column::Id).limit(limit + 1);
    if let Some(survey) = survey {
        query = query.filter(trigger::Column::SurveyId.eq(survey));
    }
    if let Some(after) = after {
        query = query.filter(trigger::Column::Id.gt(after));
    }
    query.all(conn).await?.into_iter().map(|r| decode(&r.body, r.id)).collect()
}

/// Changes trigger `id`: `change` is given the stored trigger and returns
/// the new one (or why not); its update time is set here. The trigger's
/// survey must not be archived. Concurrent updates take turns on its row.
pub async fn update(
    db: &Db,
    t: &TenantId,
    id: Uuid,
    change: impl FnOnce(pb::Trigger) -> Result<pb::Trigger>,
) -> Result<pb::Trigger> {
    let txn = db.begin().await?;
    let mut query = scoped::<trigger::Entity>(t).filter(trigger::Column::Id.eq(id));
    if txn.get_database_backend() == DbBackend::Postgres {
        query = query.lock_exclusive();
    }
    let row = query.one(&txn).await?.ok_or_else(|| not_found(id))?;
    survey_open(&txn, t, row.survey_id).await?;
    let mut next = change(decode(&row.body, id)?)?;
    next.update_time = Some(cx_proto::timestamp(cx_runtime::store::now()));
    scoped_update::<trigger::Entity>(t)
        .filter(trigger::Column::Id.eq(id))
        .col_expr(trigger::Column::Body, Expr::value(next.encode_to_vec()))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(next)
}

/// Deletes trigger `id`; the invitations it made stay.
pub async fn delete(conn: &impl ConnectionTrait, t: &TenantId, id: Uuid) -> Result<()> {
    let gone = scoped_delete::<trigger::Entity>(t).filter(trigger::Column::Id.eq(id)).exec(conn).await?;
    if gone.rows_affected == 0 {
        return Err(not_found(id));
    }
    Ok(())
}
