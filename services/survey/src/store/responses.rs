//! Stored responses: written once (store::submit), read, listed newest
//! first, searched by their verbatim, anonymised, and scanned for the
//! figures the roll-ups must equal (docs/DOMAIN.md §7.7–§7.9).

use chrono::{DateTime, Utc};
use cx_proto::survey::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::store::{numbered, one_of, scoped, scoped_update, utc_day};
use prost::Message;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Value,
};
use uuid::Uuid;

use super::entity::{response, survey_version};
use super::rollups::{Cell, CellKey, SUMS, counts_of};
use super::{Result, SurveyError};
use crate::domain::verbatim;
use cx_runtime::days::date_of;

const COLUMNS: &str = "tenant_id, id, survey_id, survey_version, survey_type, invitation_id, customer_id, \
     touchpoint_id, map_id, step_key, channel, score, verbatim, answers, language, responded_at, recorded_at, \
     case_id, content_digest";

/// Answers as stored: each message length-delimited, one after another.
pub fn encode_answers(answers: &[pb::Answer]) -> Vec<u8> {
    let mut out = Vec::new();
    for answer in answers {
        // Writing into a Vec cannot run out of room.
        let _ = answer.encode_length_delimited(&mut out);
    }
    out
}

fn decode_answers(mut bytes: &[u8], id: &str) -> Result<Vec<pb::Answer>> {
    let mut answers = Vec::new();
    while !bytes.is_empty() {
        let answer = pb::Answer::decode_length_delimited(&mut bytes)
            .map_err(|e| SurveyError::Corrupt(format!("answers of response '{id}': {e}")))?;
        answers.push(answer);
    }
    Ok(answers)
}

/// Writes `row`; on PostgreSQL with the text-search configuration
/// `ts_config` its verbatim is indexed with (one of domain::verbatim's).
/// A row with this id already there is a unique violation.
pub async fn insert<C: ConnectionTrait>(conn: &C, row: &response::Model, ts_config: &str) -> Result<()> {
    let backend = conn.get_database_backend();
    let mut values: Vec<Value> = vec![
        row.tenant_id.as_str().into(),
        row.id.as_str().into(),
        row.survey_id.into(),
        row.survey_version.into(),
        row.survey_type.into(),
        row.invitation_id.into(),
        row.customer_id.into(),
        row.touchpoint_id.clone().into(),
        row.map_id.into(),
        row.step_key.clone().into(),
        row.channel.into(),
        row.score.into(),
        row.verbatim.clone().into(),
        row.answers.clone().into(),
        row.language.as_str().into(),
        row.responded_at.into(),
        row.recorded_at.into(),
        row.case_id.into(),
        row.content_digest.clone().into(),
    ];
    let placeholders: Vec<String> = (1..=values.len()).map(|i| format!("${i}")).collect();
    let sql = if backend == DbBackend::Postgres {
        values.push(ts_config.into());
        format!(
            "INSERT INTO survey_responses ({COLUMNS}, ts_config) VALUES ({}, ${}::regconfig)",
            placeholders.join(", "),
            values.len()
        )
    } else {
        format!("INSERT INTO survey_responses ({COLUMNS}) VALUES ({})", placeholders.join(", "))
    };
    conn.execute_raw(numbered(backend, &sql, values)).await?;
    Ok(())
}

/// The response `id`, if the tenant has it.
pub async fn get<C: ConnectionTrait>(conn: &C, t: &TenantId, id: &str) -> Result<Option<response::Model>> {
    Ok(scoped::<response::Entity>(t).filter(response::Column::Id.eq(id)).one(conn).await?)
}

/// A stored response as the API shows it.
pub fn to_proto(r: &response::Model) -> Result<pb::Response> {
    let text = |id: Option<Uuid>| id.map(|i| i.to_string()).unwrap_or_default();
    Ok(pb::Response {
        id: r.id.clone(),
        survey_id: r.survey_id.to_string(),
        survey_version: r.survey_version,
        survey_type: i32::from(r.survey_type),
        invitation_id: text(r.invitation_id),
        customer_id: text(r.customer_id),
        touchpoint_id: r.touchpoint_id.clone().unwrap_or_default(),
        map_id: text(r.map_id),
        step_key: r.step_key.clone().unwrap_or_default(),
        channel: i32::from(r.channel),
        score: i32::from(r.score),
        verbatim: r.verbatim.clone().unwrap_or_default(),
        answers: decode_answers(&r.answers, &r.id)?,
        language: r.language.clone(),
        respond_time: Some(cx_proto::timestamp(r.responded_at)),
        case_id: text(r.case_id),
    })
}

/// Whose responses a listing reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    Survey(Uuid),
    Customer(Uuid),
}

/// A position in a newest-first listing: the last row's time and id.
pub type After = (DateTime<Utc>, String);

/// Responses of `owner`, newest first (then by id, descending), after
/// `after`; at most `limit`.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    t: &TenantId,
    owner: Owner,
    after: Option<&After>,
    limit: u64,
) -> Result<Vec<response::Model>> {
    let mut query = scoped::<response::Entity>(t);
    query = match owner {
        Owner::Survey(id) => query.filter(response::Column::SurveyId.eq(id)),
        Owner::Customer(id) => query.filter(response::Column::CustomerId.eq(id)),
    };
    if let Some((at, id)) = after {
        query = query.filter(Condition::any().add(response::Column::RespondedAt.lt(*at)).add(
            Condition::all().add(response::Column::RespondedAt.eq(*at)).add(response::Column::Id.lt(id.as_str())),
        ));
    }
    Ok(query
        .order_by_desc(response::Column::RespondedAt)
        .order_by_desc(response::Column::Id)
        .limit(limit)
        .all(conn)
        .await?)
}

/// The text-search configurations of every language `survey` was ever
/// answerable in (each version's, translations included); empty when the
/// tenant has no such survey.
pub async fn verbatim_configs<C: ConnectionTrait>(conn: &C, t: &TenantId, survey: Uuid) -> Result<Vec<&'static str>> {
    let versions =
        scoped::<survey_version::Entity>(t).filter(survey_version::Column::SurveyId.eq(survey)).all(conn).await?;
    let mut configs = std::collections::BTreeSet::new();
    for version in versions {
        let definition = super::surveys::decode(&version.body, survey)?;
        configs.insert(verbatim::config(&definition.language));
        configs.extend(definition.translations.iter().map(|tr| verbatim::config(&tr.language)));
    }
    Ok(configs.into_iter().collect())
}

/// Responses of `survey` whose verbatim holds every word of `query`, newest
/// first, after `after`; at most `limit`. PostgreSQL: full-text search, each
/// verbatim in the configuration of its language, the query in each of
/// `configs` (those of the survey's languages); SQLite: `query` as a
/// substring, ignoring ASCII case.
pub async fn search<C: ConnectionTrait>(
    conn: &C,
    t: &TenantId,
    survey: Uuid,
    configs: &[&str],
    query: &str,
    after: Option<&After>,
    limit: u64,
) -> Result<Vec<response::Model>> {
    let backend = conn.get_database_backend();
    let mut values: Vec<Value> = vec![t.as_str().into(), survey.into(), query.into()];
    let matches = if backend == DbBackend::Postgres {
        // One term per configuration, each the indexed expression against a
        // constant query: the GIN index answers each. The names come from
        // domain::verbatim's fixed list, never from the request.
        let terms: Vec<String> = configs
            .iter()
            .map(|c| {
                format!(
                    "(ts_config = '{c}'::regconfig AND to_tsvector(ts_config, verbatim) @@ plainto_tsquery('{c}'::regconfig, $3))"
                )
            })
            .collect();
        if terms.is_empty() { "FALSE".to_owned() } else { format!("({})", terms.join(" OR ")) }
    } else {
        "instr(lower(verbatim), lower($3)) > 0".to_owned()
    };
    let mut tail = String::new();
    if let Some((at, id)) = after {
        values.extend([Value::from(*at), Value::from(id.as_str())]);
        tail = " AND (responded_at < $4 OR (responded_at = $4 AND id < $5))".to_owned();
    }
    values.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
    let sql = format!(
        "SELECT {COLUMNS} FROM survey_responses WHERE tenant_id = $1 AND survey_id = $2 AND verbatim IS NOT NULL \
         AND {matches}{tail} ORDER BY responded_at DESC, id DESC LIMIT ${}",
        values.len()
    );
    let rows = conn.query_all_raw(numbered(backend, &sql, values)).await?;
    Ok(rows.iter().map(|row| response::Model::from_query_result(row, "")).collect::<std::result::Result<_, _>>()?)
}

/// Anonymises the responses of `customers` (an erasure): customer,
/// invitation, touchpoint, verbatim, answers and case cleared, the client's
/// id replaced by a random one and the digest of what the client sent
/// dropped; the score, survey, version, language, map, step, channel and
/// day stay, so the roll-ups still equal a scan (docs/DECISIONS.md, Merge,
/// export, erasure). Returns how many responses were anonymised.
pub async fn anonymise<C: ConnectionTrait>(conn: &C, t: &TenantId, customers: &[Uuid]) -> Result<u64> {
    if customers.is_empty() {
        return Ok(0);
    }
    let ids: Vec<String> = scoped::<response::Entity>(t)
        .filter(one_of(conn.get_database_backend(), response::Column::CustomerId, customers))
        .select_only()
        .column(response::Column::Id)
        .into_tuple()
        .all(conn)
        .await?;
    // A customer has few responses: one statement each, its new id made here.
    for id in &ids {
        scoped_update::<response::Entity>(t)
            .col_expr(response::Column::Id, Expr::value(Uuid::new_v4().to_string()))
            .col_expr(response::Column::CustomerId, Expr::value(Option::<Uuid>::None))
            .col_expr(response::Column::InvitationId, Expr::value(Option::<Uuid>::None))
            .col_expr(response::Column::TouchpointId, Expr::value(Option::<String>::None))
            .col_expr(response::Column::Verbatim, Expr::value(Option::<String>::None))
            .col_expr(response::Column::Answers, Expr::value(Vec::<u8>::new()))
            .col_expr(response::Column::CaseId, Expr::value(Option::<Uuid>::None))
            .col_expr(response::Column::ContentDigest, Expr::value(Vec::<u8>::new()))
            .filter(response::Column::Id.eq(id.as_str()))
            .exec(conn)
            .await?;
    }
    Ok(u64::try_from(ids.len()).unwrap_or(u64::MAX))
}

/// The roll-up cells of days `first..=last` worked out from the responses
/// themselves, by one query: what the roll-ups must equal (the tests), and
/// the scan the aggregates are measured against (the benchmark).
pub async fn scan_rollups<C: ConnectionTrait>(conn: &C, t: &TenantId, first: i32, last: i32) -> Result<Vec<Cell>> {
    let backend = conn.get_database_backend();
    let day = utc_day(backend, "responded_at");
    let start = date_of(first).and_time(chrono::NaiveTime::MIN).and_utc();
    let end = date_of(last).and_time(chrono::NaiveTime::MIN).and_utc() + chrono::Duration::days(1);
    let sql = format!(
        "SELECT day, survey_id, map_id, step_key, channel, survey_type, {SUMS} FROM (\
           SELECT {day} AS day, survey_id, map_id, step_key, channel, survey_type, 1 AS n, \
             CASE WHEN survey_type = 1 AND score >= 9 THEN 1 ELSE 0 END AS promoters, \
             CASE WHEN survey_type = 1 AND score BETWEEN 7 AND 8 THEN 1 ELSE 0 END AS passives, \
             CASE WHEN survey_type = 1 AND score <= 6 THEN 1 ELSE 0 END AS detractors, \
             CASE WHEN survey_type = 2 AND score >= 4 THEN 1 ELSE 0 END AS satisfied, \
             score AS score_sum, \
             CASE WHEN survey_type = 3 AND score >= 5 THEN 1 ELSE 0 END AS low_effort, \
             score * score AS score_squares \
           FROM survey_responses WHERE tenant_id = $1 AND responded_at >= $2 AND responded_at < $3) AS r \
         GROUP BY day, survey_id, map_id, step_key, channel, survey_type \
         ORDER BY day, survey_id, map_id, step_key, channel"
    );
    let values = vec![t.as_str().into(), start.into(), end.into()];
    let rows = conn.query_all_raw(numbered(backend, &sql, values)).await?;
    let mut cells = rows
        .iter()
        .map(|row| {
            let map: Option<Uuid> = row.try_get("", "map_id")?;
            let step: Option<String> = row.try_get("", "step_key")?;
            Ok(Cell {
                key: CellKey {
                    day: row.try_get("", "day")?,
                    survey_id: row.try_get("", "survey_id")?,
                    map_id: map.unwrap_or_default(),
                    step_key: step.unwrap_or_default(),
                    channel: row.try_get("", "channel")?,
                },
                survey_type: row.try_get("", "survey_type")?,
                counts: counts_of(row)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    // In the key order of the roll-up table (the database may order UUIDs
    // and NULLs its own way).
    cells.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(cells)
}
