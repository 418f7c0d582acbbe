//! The daily score roll-ups (docs/DOMAIN.md §7.8): additive counters per
//! tenant, UTC day, survey, map, step and channel, raised in the response's
//! transaction and read by the aggregates instead of the responses.

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveTime};
use cx_runtime::TenantId;
use cx_runtime::days::date_of;
use cx_runtime::store::{and_one_of, numbered, pg_array, scoped, utc_day};
use sea_orm::sea_query::ArrayType;
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, QueryFilter, QueryResult, Value};
use uuid::Uuid;

use super::entity::rollup;
use super::{Result, SurveyError};
use crate::domain::aggregates::Counts;
use crate::domain::survey::SurveyType;

/// Where an answer counts. No map is the nil UUID, no step "".
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CellKey {
    pub day: i32,
    pub survey_id: Uuid,
    pub map_id: Uuid,
    pub step_key: String,
    pub channel: i16,
}

/// One roll-up row: its key, its survey's type and its counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    pub key: CellKey,
    pub survey_type: i16,
    pub counts: Counts,
}

const ADD: &str = "INSERT INTO survey_rollups (tenant_id, day, survey_id, map_id, step_key, channel, survey_type, \
       n, promoters, passives, detractors, satisfied, score_sum, low_effort, score_squares) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
     ON CONFLICT (tenant_id, day, survey_id, map_id, step_key, channel) DO UPDATE SET \
       n = survey_rollups.n + excluded.n, promoters = survey_rollups.promoters + excluded.promoters, \
       passives = survey_rollups.passives + excluded.passives, \
       detractors = survey_rollups.detractors + excluded.detractors, \
       satisfied = survey_rollups.satisfied + excluded.satisfied, \
       score_sum = survey_rollups.score_sum + excluded.score_sum, \
       low_effort = survey_rollups.low_effort + excluded.low_effort, \
       score_squares = survey_rollups.score_squares + excluded.score_squares";

/// Adds `counts` to the cell `key` (of a survey of type `survey_type`):
/// one upsert, which holds the cell's row until the transaction ends.
pub async fn add<C: ConnectionTrait>(
    conn: &C,
    t: &TenantId,
    key: &CellKey,
    survey_type: i16,
    counts: &Counts,
) -> Result<()> {
    let values: Vec<Value> = vec![
        t.as_str().into(),
        key.day.into(),
        key.survey_id.into(),
        key.map_id.into(),
        key.step_key.as_str().into(),
        key.channel.into(),
        survey_type.into(),
        counts.n.into(),
        counts.promoters.into(),
        counts.passives.into(),
        counts.detractors.into(),
        counts.satisfied.into(),
        counts.score_sum.into(),
        counts.low_effort.into(),
        counts.score_squares.into(),
    ];
    conn.execute_raw(numbered(conn.get_database_backend(), ADD, values)).await?;
    Ok(())
}

/// Every cell of days `first..=last`, in key order ([`CellKey`]'s).
pub async fn cells<C: ConnectionTrait>(conn: &C, t: &TenantId, first: i32, last: i32) -> Result<Vec<Cell>> {
    let rows = scoped::<rollup::Entity>(t).filter(rollup::Column::Day.between(first, last)).all(conn).await?;
    let mut cells: Vec<Cell> = rows
        .into_iter()
        .map(|r| Cell {
            key: CellKey {
                day: r.day,
                survey_id: r.survey_id,
                map_id: r.map_id,
                step_key: r.step_key,
                channel: r.channel,
            },
            survey_type: r.survey_type,
            counts: Counts {
                n: r.n,
                promoters: r.promoters,
                passives: r.passives,
                detractors: r.detractors,
                satisfied: r.satisfied,
                score_sum: r.score_sum,
                score_squares: r.score_squares,
                low_effort: r.low_effort,
            },
        })
        .collect();
    // The database may order text by its collation: Rust's order, always.
    cells.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(cells)
}

/// The sums of the counter columns, as every reader of them names them.
pub(super) const SUMS: &str = "CAST(sum(n) AS BIGINT) AS n, CAST(sum(promoters) AS BIGINT) AS promoters, \
     CAST(sum(passives) AS BIGINT) AS passives, CAST(sum(detractors) AS BIGINT) AS detractors, \
     CAST(sum(satisfied) AS BIGINT) AS satisfied, CAST(sum(score_sum) AS BIGINT) AS score_sum, \
     CAST(sum(low_effort) AS BIGINT) AS low_effort, CAST(sum(score_squares) AS BIGINT) AS score_squares";

/// The counters of a row read with [`SUMS`] (or the same names).
pub(super) fn counts_of(row: &QueryResult) -> Result<Counts> {
    let get = |c: &str| -> Result<i64> { Ok(row.try_get::<Option<i64>>("", c)?.unwrap_or(0)) };
    Ok(Counts {
        n: get("n")?,
        promoters: get("promoters")?,
        passives: get("passives")?,
        detractors: get("detractors")?,
        satisfied: get("satisfied")?,
        score_sum: get("score_sum")?,
        score_squares: get("score_squares")?,
        low_effort: get("low_effort")?,
    })
}

/// Which cells an aggregate reads: days `first..=last`, and when given,
/// these surveys, this map (and step) and these channels.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    pub first: i32,
    pub last: i32,
    pub surveys: Vec<Uuid>,
    pub map: Option<Uuid>,
    pub step: Option<String>,
    pub channels: Vec<i16>,
}

/// The dimensions an aggregate groups by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Grouping {
    pub survey: bool,
    pub map_step: bool,
    pub channel: bool,
    pub day: bool,
}

/// A group's values of the dimensions grouped by (`None` for the others).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupKey {
    pub survey_id: Option<Uuid>,
    pub map_step: Option<(Uuid, String)>,
    pub channel: Option<i16>,
    pub day: Option<i32>,
}

/// The counters of each group, by survey type (proto code), in the order of
/// the group values: one query, over the primary key's days of the tenant.
/// With `customers`, only their answers: read from the responses (the
/// roll-ups do not know who answered), through the index by customer.
pub async fn sums<C: ConnectionTrait>(
    conn: &C,
    t: &TenantId,
    filter: &Filter,
    grouping: Grouping,
    customers: &[Uuid],
) -> Result<BTreeMap<GroupKey, BTreeMap<i16, Counts>>> {
    let backend = conn.get_database_backend();
    let columns = group_columns(grouping);
    let (sql, values) = if customers.is_empty() {
        let mut values: Vec<Value> = vec![t.as_str().into(), filter.first.into(), filter.last.into()];
        let conditions = conditions(backend, filter, &mut values);
        let sql = format!(
            "SELECT {columns}, {SUMS} FROM survey_rollups \
             WHERE tenant_id = $1 AND day >= $2 AND day <= $3{conditions} GROUP BY {columns}"
        );
        (sql, values)
    } else {
        // The days as instants, so the index's responded_at bounds the read.
        let since = date_of(filter.first).and_time(NaiveTime::MIN).and_utc();
        let until = date_of(filter.last).succ_opt().unwrap_or(NaiveDate::MAX).and_time(NaiveTime::MIN).and_utc();
        let mut values: Vec<Value> = vec![t.as_str().into(), since.into(), until.into(), Uuid::nil().into()];
        let conditions = conditions(backend, filter, &mut values);
        let who = and_one_of(backend, "customer_id", customers, &mut values);
        // Keyed as the roll-ups are (store::submit): no map the nil UUID, no
        // step "".
        let day = utc_day(backend, "responded_at");
        let sql = format!(
            "SELECT {columns}, score, CAST(count(*) AS BIGINT) AS answers FROM (\
               SELECT survey_id, COALESCE(map_id, $4) AS map_id, COALESCE(step_key, '') AS step_key, channel, \
                 {day} AS day, survey_type, score FROM survey_responses \
               WHERE tenant_id = $1 AND responded_at >= $2 AND responded_at < $3{conditions}{who}) AS r \
             GROUP BY {columns}, score"
        );
        (sql, values)
    };
    let mut groups: BTreeMap<GroupKey, BTreeMap<i16, Counts>> = BTreeMap::new();
    for row in conn.query_all_raw(numbered(backend, &sql, values)).await? {
        let key = GroupKey {
            survey_id: grouping.survey.then(|| row.try_get("", "survey_id")).transpose()?,
            map_step: grouping
                .map_step
                .then(|| Ok::<_, sea_orm::DbErr>((row.try_get("", "map_id")?, row.try_get("", "step_key")?)))
                .transpose()?,
            channel: grouping.channel.then(|| row.try_get("", "channel")).transpose()?,
            day: grouping.day.then(|| row.try_get("", "day")).transpose()?,
        };
        let survey_type: i16 = row.try_get("", "survey_type")?;
        let counts = if customers.is_empty() { counts_of(&row)? } else { answers_of(&row, survey_type)? };
        groups.entry(key).or_default().entry(survey_type).or_default().add(&counts);
    }
    Ok(groups)
}

/// The conditions of `filter` beyond its days, for either table (both name
/// the columns alike), their parameters pushed onto `values`.
fn conditions(backend: DbBackend, filter: &Filter, values: &mut Vec<Value>) -> String {
    let mut conditions = and_one_of(backend, "survey_id", &filter.surveys, values);
    if let Some(map) = filter.map {
        conditions.push_str(&format!(" AND map_id = {}", param(map.into(), values)));
    }
    if let Some(step) = &filter.step {
        conditions.push_str(&format!(" AND step_key = {}", param(step.as_str().into(), values)));
    }
    if !filter.channels.is_empty() {
        let list = match backend {
            DbBackend::Postgres => {
                format!("= ANY({}::int2[])", param(pg_array(ArrayType::SmallInt, filter.channels.clone()), values))
            }
            _ => in_list(filter.channels.iter().map(|&c| param(c.into(), values))),
        };
        conditions.push_str(&format!(" AND channel {list}"));
    }
    conditions
}

/// The columns grouped by, the survey type last.
fn group_columns(grouping: Grouping) -> String {
    let mut columns = Vec::new();
    for (on, names) in [
        (grouping.survey, &["survey_id"][..]),
        (grouping.map_step, &["map_id", "step_key"][..]),
        (grouping.channel, &["channel"][..]),
        (grouping.day, &["day"][..]),
    ] {
        if on {
            columns.extend_from_slice(names);
        }
    }
    columns.push("survey_type");
    columns.join(", ")
}

/// The counters of `answers` answers of one score, as each answer adds them.
fn answers_of(row: &QueryResult, survey_type: i16) -> Result<Counts> {
    let score: i16 = row.try_get("", "score")?;
    let answers: i64 = row.try_get("", "answers")?;
    let kind = SurveyType::from_code(i32::from(survey_type))
        .ok_or_else(|| SurveyError::Corrupt(format!("a response has survey type {survey_type}")))?;
    Ok(Counts::of(kind, i32::from(score)).times(answers))
}

/// Adds a parameter; its `$n`.
fn param(value: Value, values: &mut Vec<Value>) -> String {
    values.push(value);
    format!("${}", values.len())
}

/// `IN (a, b, …)` of parameters already numbered.
fn in_list(params: impl Iterator<Item = String>) -> String {
    format!("IN ({})", params.collect::<Vec<_>>().join(", "))
}
