//! The invitations a batch of offered touchpoints makes (docs/DOMAIN.md
//! §7.4), in three steps, the one call to the profile service between the
//! first and the last:
//!
//! 1. [`plan`]: the tenant's active triggers, the customers (survivors of
//!    merges; erased ones left out) and the touchpoints that meet a
//!    trigger's conditions on the touchpoint itself;
//! 2. the caller asks the profile service for the standing of
//!    [`Plan::customers`] (consent, lifecycle, digital category);
//! 3. [`record`]: the standing conditions, then under each customer's turn
//!    ([`super::lock`]) the decisions (sampling, expiry, duplicate,
//!    consent, budget) and one insert of every row, suppressions included.
//!
//! Set-wise: a batch of any size is a few statements, not a round trip per
//! touchpoint. Idempotent: an invitation's id is derived from its trigger
//! and touchpoint, ids already recorded are left out before deciding, and
//! the insert skips conflicts, so a replayed batch records nothing twice.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use cx_proto::survey::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::cache::Cache;
use cx_runtime::store::{one_of, pg_array, scoped};
use prost::Message;
use sea_orm::sea_query::{ArrayType, Condition};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, QueryFilter, QuerySelect, Statement, Value,
};
use uuid::Uuid;

use super::{IDS_PER_STATEMENT, consent, lock};
use crate::domain::budget::Budget;
use crate::domain::invitation::{Candidate, Facts, Held, Reason, State, decide};
use crate::domain::matching::{Offered, Standing};
use crate::domain::sampling::invitation_id;
use crate::domain::trigger::Trigger;
use crate::store::entity::{invitation, survey, survey_version};
use crate::store::{Result, SurveyError};

/// Rows a SQLite insert statement carries (15 parameters each).
const SQLITE_ROWS_PER_STATEMENT: usize = 400;

/// What a survey gives its invitations: the version current when they are
/// made and the delivery channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SurveyFacts {
    pub version: i32,
    pub channel: i32,
}

/// A batch after the touchpoint conditions: what is left to decide once
/// the customers' standing is known.
#[derive(Clone, Debug)]
pub struct Plan {
    triggers: Vec<Trigger>,
    surveys: HashMap<Uuid, SurveyFacts>,
    budget: Budget,
    touchpoints: Vec<Offered>,
    /// (touchpoint, trigger) indexes whose touchpoint conditions hold.
    pairs: Vec<(usize, usize)>,
}

impl Plan {
    /// The customers whose standing the decisions need, each once.
    pub fn customers(&self) -> Vec<Uuid> {
        let mut customers: Vec<Uuid> = self.pairs.iter().map(|&(tp, _)| self.touchpoints[tp].customer).collect();
        customers.sort_unstable();
        customers.dedup();
        customers
    }
}

/// The matching touchpoints of `offered` for the tenant's active triggers
/// (read through `cache`); `None` when no touchpoint meets any trigger's
/// conditions.
pub async fn plan(
    conn: &impl ConnectionTrait,
    cache: &Cache,
    t: &TenantId,
    mut offered: Vec<Offered>,
) -> Result<Option<Plan>> {
    let triggers = crate::store::triggers::active(conn, cache, t).await?;
    if triggers.is_empty() {
        return Ok(None);
    }
    let fits = |tp: &Offered| triggers.iter().any(|trigger| trigger.condition.fits_touchpoint(tp));
    offered.retain(fits);
    if offered.is_empty() {
        return Ok(None);
    }
    // Data sent for a customer merged away is the survivor's; an erased
    // customer takes none.
    let named: Vec<Uuid> = offered.iter().map(|tp| tp.customer).collect::<HashSet<_>>().into_iter().collect();
    let mut survivors = HashMap::new();
    for chunk in named.chunks(IDS_PER_STATEMENT) {
        survivors.extend(cx_runtime::gdpr::survivors(conn, t, chunk).await?);
    }
    for tp in &mut offered {
        tp.customer = survivors.get(&tp.customer).copied().unwrap_or(tp.customer);
    }
    let owners: Vec<Uuid> = offered.iter().map(|tp| tp.customer).collect::<HashSet<_>>().into_iter().collect();
    let mut erased = HashSet::new();
    for chunk in owners.chunks(IDS_PER_STATEMENT) {
        erased.extend(cx_runtime::gdpr::erased(conn, t, chunk).await?);
    }
    offered.retain(|tp| !erased.contains(&tp.customer));
    let pairs: Vec<(usize, usize)> = offered
        .iter()
        .enumerate()
        .flat_map(|(i, tp)| {
            triggers
                .iter()
                .enumerate()
                .filter(|(_, trigger)| trigger.condition.fits_touchpoint(tp))
                .map(move |(j, _)| (i, j))
        })
        .collect();
    if pairs.is_empty() {
        return Ok(None);
    }
    let surveys = survey_facts(conn, t, &triggers).await?;
    let budget = Budget::new(crate::store::settings::load(conn, t).await?.fatigue_windows);
    Ok(Some(Plan { triggers, surveys, budget, touchpoints: offered, pairs }))
}

/// The current version and channel of the triggers' surveys.
async fn survey_facts(
    conn: &impl ConnectionTrait,
    t: &TenantId,
    triggers: &[Trigger],
) -> Result<HashMap<Uuid, SurveyFacts>> {
    let ids: Vec<Uuid> = triggers.iter().map(|tr| tr.survey_id).collect::<HashSet<_>>().into_iter().collect();
    let current: Vec<(Uuid, i32)> = scoped::<survey::Entity>(t)
        .filter(one_of(conn.get_database_backend(), survey::Column::Id, &ids))
        .select_only()
        .column(survey::Column::Id)
        .column(survey::Column::Version)
        .into_tuple()
        .all(conn)
        .await?;
    if current.is_empty() {
        return Ok(HashMap::new());
    }
    let mut which = Condition::any();
    for (id, version) in &current {
        which = which.add(
            Condition::all()
                .add(survey_version::Column::SurveyId.eq(*id))
                .add(survey_version::Column::Version.eq(*version)),
        );
    }
    let mut facts = HashMap::new();
    for row in scoped::<survey_version::Entity>(t).filter(which).all(conn).await? {
        let body = pb::Survey::decode(row.body.as_slice())
            .map_err(|e| SurveyError::Corrupt(format!("survey {} version {}: {e}", row.survey_id, row.version)))?;
        facts.insert(row.survey_id, SurveyFacts { version: row.version, channel: body.channel });
    }
    Ok(facts)
}

/// What recording a batch did, for its span and log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Touchpoint and trigger pairs whose every condition held.
    pub matched: usize,
    /// Of those, recorded before (a replay): left as they were.
    pub replayed: usize,
    /// Invitations made (pending).
    pub invited: usize,
    /// Suppressions recorded, by reason.
    pub suppressed: BTreeMap<Reason, usize>,
}

/// A decided row, as inserted.
struct Row<'a> {
    candidate: &'a Candidate,
    touchpoint: &'a Offered,
    survey: SurveyFacts,
    state: State,
    reason: Option<Reason>,
}

/// Decides and records the plan's invitations, given the standing of its
/// customers (those the profile service does not know, or knows as erased,
/// are left out: no row names them).
pub async fn record(
    txn: &DatabaseTransaction,
    t: &TenantId,
    plan: &Plan,
    standing: &HashMap<Uuid, Standing>,
    now: DateTime<Utc>,
) -> Result<Outcome> {
    // Each candidate with its touchpoint (an index) and its survey's facts.
    let mut candidates: Vec<(Candidate, usize, SurveyFacts)> = Vec::new();
    let mut seen = HashSet::new();
    for &(i, j) in &plan.pairs {
        let (tp, trigger) = (&plan.touchpoints[i], &plan.triggers[j]);
        let Some(customer) = standing.get(&tp.customer) else { continue };
        let Some(survey) = plan.surveys.get(&trigger.survey_id).copied() else { continue };
        if !trigger.condition.fits_standing(customer) {
            continue;
        }
        let id = invitation_id(trigger.id, &tp.id);
        // The same touchpoint twice in a batch is one invitation.
        if !seen.insert(id) {
            continue;
        }
        let send_after = cx_runtime::store::stored_instant(tp.at + trigger.delay);
        let candidate = Candidate {
            id,
            trigger: trigger.id,
            survey: trigger.survey_id,
            customer: tp.customer,
            sampling_rate: trigger.sampling_rate,
            send_after,
            expire_at: send_after + trigger.expiry,
        };
        candidates.push((candidate, i, survey));
    }
    let mut outcome = Outcome { matched: candidates.len(), ..Outcome::default() };
    if candidates.is_empty() {
        return Ok(outcome);
    }
    // Earliest due first: the budget goes to the first invitations.
    candidates.sort_by(|(a, i, _), (b, j, _)| {
        (a.send_after, &plan.touchpoints[*i].id, a.trigger).cmp(&(b.send_after, &plan.touchpoints[*j].id, b.trigger))
    });
    let customers: Vec<Uuid> =
        candidates.iter().map(|(c, _, _)| c.customer).collect::<HashSet<_>>().into_iter().collect();
    lock::customers(txn, t, &customers).await?;
    let ids: Vec<Uuid> = candidates.iter().map(|(c, _, _)| c.id).collect();
    let recorded = existing(txn, t, &ids).await?;
    candidates.retain(|(c, _, _)| !recorded.contains(&c.id));
    outcome.replayed = outcome.matched - candidates.len();
    if candidates.is_empty() {
        return Ok(outcome);
    }
    let held = held(txn, t, &customers, &candidates, plan.budget.reach(), now).await?;
    // Consent needs both the profile service's answer and no withdrawal
    // announced here since (it may have been asked just before one).
    let announced = consent::recorded(txn, t, &customers).await?;
    let consent: HashMap<Uuid, bool> = customers
        .iter()
        .map(|c| (*c, standing.get(c).is_some_and(|s| s.consent) && announced.get(c).copied().unwrap_or(true)))
        .collect();
    let only: Vec<Candidate> = candidates.iter().map(|(c, _, _)| c.clone()).collect();
    let decisions = decide(&only, Facts { now, budget: &plan.budget, held, consent: &consent });
    let rows: Vec<Row<'_>> = candidates
        .iter()
        .zip(decisions)
        .map(|((candidate, i, survey), reason)| Row {
            candidate,
            touchpoint: &plan.touchpoints[*i],
            survey: *survey,
            state: if reason.is_some() { State::Suppressed } else { State::Pending },
            reason,
        })
        .collect();
    for (state, reason) in insert(txn, t, &rows, now).await? {
        match (State::from_code(state.into()), Reason::from_code(reason.into())) {
            (Some(State::Pending), _) => outcome.invited += 1,
            (_, Some(reason)) => *outcome.suppressed.entry(reason).or_default() += 1,
            _ => {}
        }
    }
    Ok(outcome)
}

/// Those of `ids` already recorded.
async fn existing(txn: &DatabaseTransaction, t: &TenantId, ids: &[Uuid]) -> Result<HashSet<Uuid>> {
    let mut found = HashSet::new();
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let rows: Vec<Uuid> = scoped::<invitation::Entity>(t)
            .filter(one_of(txn.get_database_backend(), invitation::Column::Id, chunk))
            .select_only()
            .column(invitation::Column::Id)
            .into_tuple()
            .all(txn)
            .await?;
        found.extend(rows);
    }
    Ok(found)
}

/// The customers' invitations that were not suppressed and could count:
/// those due within `reach` of a candidate, and those still open.
async fn held(
    txn: &DatabaseTransaction,
    t: &TenantId,
    customers: &[Uuid],
    candidates: &[(Candidate, usize, SurveyFacts)],
    reach: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<HashMap<Uuid, Vec<Held>>> {
    let first = candidates.iter().map(|(c, _, _)| c.send_after).min().unwrap_or(now);
    let last = candidates.iter().map(|(c, _, _)| c.send_after).max().unwrap_or(now);
    let mut out: HashMap<Uuid, Vec<Held>> = HashMap::new();
    for chunk in customers.chunks(IDS_PER_STATEMENT) {
        let counted = Condition::all()
            .add(invitation::Column::State.ne(State::Suppressed.code()))
            .add(invitation::Column::SendAfter.gt(first - reach))
            .add(invitation::Column::SendAfter.lt(last + reach));
        let open = Condition::all()
            .add(invitation::Column::State.is_in([State::Pending.code(), State::Sent.code()]))
            .add(invitation::Column::ExpireAt.gt(now));
        let rows = scoped::<invitation::Entity>(t)
            .filter(one_of(txn.get_database_backend(), invitation::Column::CustomerId, chunk))
            .filter(Condition::any().add(counted).add(open))
            .all(txn)
            .await?;
        for row in rows {
            let Some(state) = State::from_code(row.state.into()) else { continue };
            out.entry(row.customer_id).or_default().push(Held {
                survey: row.survey_id,
                state,
                send_after: row.send_after,
                expire_at: row.expire_at,
            });
        }
    }
    Ok(out)
}

const COLUMNS: &str = "tenant_id, id, survey_id, survey_version, trigger_id, customer_id, touchpoint_id, map_id, \
     step_key, channel, state, reason, created_at, send_after, expire_at";

/// PostgreSQL: one statement whatever the batch, one array per column;
/// absent map and step travel as sentinels that `NULLIF` turns into NULL.
const INSERT_POSTGRES: &str = "INSERT INTO survey_invitations (tenant_id, id, survey_id, survey_version, trigger_id, \
     customer_id, touchpoint_id, map_id, step_key, channel, state, reason, created_at, send_after, expire_at) \
     SELECT $1, u.id, u.survey_id, u.survey_version, u.trigger_id, u.customer_id, u.touchpoint_id, \
       NULLIF(u.map_id, '00000000-0000-0000-0000-000000000000'::uuid), NULLIF(u.step_key, ''), u.channel, u.state, \
       u.reason, $2, u.send_after, u.expire_at \
     FROM UNNEST($3::uuid[], $4::uuid[], $5::int4[], $6::uuid[], $7::uuid[], $8::text[], $9::uuid[], $10::text[], \
       $11::int2[], $12::int2[], $13::int2[], $14::timestamptz[], $15::timestamptz[]) \
       AS u(id, survey_id, survey_version, trigger_id, customer_id, touchpoint_id, map_id, step_key, channel, state, \
       reason, send_after, expire_at) \
     ON CONFLICT (tenant_id, id) DO NOTHING RETURNING state, reason";

/// Inserts `rows`, skipping ids recorded meanwhile; returns the state and
/// reason of each row inserted.
async fn insert(
    txn: &DatabaseTransaction,
    t: &TenantId,
    rows: &[Row<'_>],
    now: DateTime<Utc>,
) -> Result<Vec<(i16, i16)>> {
    let values = |r: &Row<'_>| -> [Value; 13] {
        [
            r.candidate.id.into(),
            r.candidate.survey.into(),
            r.survey.version.into(),
            r.candidate.trigger.into(),
            r.candidate.customer.into(),
            r.touchpoint.id.clone().into(),
            r.touchpoint.map.unwrap_or(Uuid::nil()).into(),
            r.touchpoint.step.clone().unwrap_or_default().into(),
            i16::try_from(r.survey.channel).unwrap_or_default().into(),
            r.state.code().into(),
            r.reason.map_or(0, Reason::code).into(),
            r.candidate.send_after.into(),
            r.candidate.expire_at.into(),
        ]
    };
    let mut inserted = Vec::with_capacity(rows.len());
    if txn.get_database_backend() == DbBackend::Postgres {
        let types = [
            ArrayType::Uuid,
            ArrayType::Uuid,
            ArrayType::Int,
            ArrayType::Uuid,
            ArrayType::Uuid,
            ArrayType::String,
            ArrayType::Uuid,
            ArrayType::String,
            ArrayType::SmallInt,
            ArrayType::SmallInt,
            ArrayType::SmallInt,
            ArrayType::ChronoDateTimeUtc,
            ArrayType::ChronoDateTimeUtc,
        ];
        let mut columns: [Vec<Value>; 13] = Default::default();
        for row in rows {
            for (column, value) in columns.iter_mut().zip(values(row)) {
                column.push(value);
            }
        }
        let mut params: Vec<Value> = vec![t.to_string().into(), now.into()];
        params.extend(types.into_iter().zip(columns).map(|(ty, column)| pg_array(ty, column)));
        let statement = Statement::from_sql_and_values(DbBackend::Postgres, INSERT_POSTGRES, params);
        for row in txn.query_all_raw(statement).await? {
            inserted.push((row.try_get("", "state")?, row.try_get("", "reason")?));
        }
        return Ok(inserted);
    }
    let placeholders = format!("({})", vec!["?"; 15].join(", "));
    for chunk in rows.chunks(SQLITE_ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO survey_invitations ({COLUMNS}) VALUES {} \
             ON CONFLICT (tenant_id, id) DO NOTHING RETURNING state, reason",
            vec![placeholders.as_str(); chunk.len()].join(", ")
        );
        let mut params: Vec<Value> = Vec::with_capacity(chunk.len() * 15);
        for row in chunk {
            let [
                id,
                survey,
                version,
                trigger,
                customer,
                touchpoint,
                _,
                _,
                channel,
                state,
                reason,
                send_after,
                expire_at,
            ] = values(row);
            params.extend([t.to_string().into(), id, survey, version, trigger, customer, touchpoint]);
            params.extend([row.touchpoint.map.into(), row.touchpoint.step.clone().into()]);
            params.extend([channel, state, reason, now.into(), send_after, expire_at]);
        }
        for row in txn.query_all_raw(Statement::from_sql_and_values(DbBackend::Sqlite, sql, params)).await? {
            inserted.push((row.try_get("", "state")?, row.try_get("", "reason")?));
        }
    }
    Ok(inserted)
}
