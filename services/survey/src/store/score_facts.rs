//! The pages of `SurveyInternalService.ExportScoreFacts`: the customers who
//! answered a survey or ever had a case, in id order, each with the latest
//! answer of each survey type as the scores feed sent it and her count of
//! unresolved cases now as the cases feed sends it. A merge moves the
//! merged customer's responses and cases to the survivor and an erasure
//! deletes them, so the rows' owners are already the survivors.
//!
//! A page is three statements whatever its size: its keys, then the latest
//! scores and the case counts of its key range. It ends early when its
//! customers' facts stop fitting in `keyset::MAX_PAGE_BYTES`.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use cx_proto::survey::v1::{ExportScoreFactsResponse, OpenCasesChanged, ScoreRecorded};
use cx_runtime::TenantId;
use cx_runtime::keyset::{Page, fitting};
use cx_runtime::store::numbered;
use prost::Message;
use sea_orm::{ConnectionTrait, QueryResult, Value};
use uuid::Uuid;

use super::feeds::{ScoreRow, open_cases, score_recorded};
use super::{Result, SurveyStore};
use crate::domain::case::CaseState;

/// The parameters of one statement, numbered as they are added.
#[derive(Default)]
struct Params(Vec<Value>);

impl Params {
    fn add(&mut self, value: impl Into<Value>) -> String {
        self.0.push(value.into());
        format!("${}", self.0.len())
    }
}

/// A count as the backend returns it (PostgreSQL sums in bigint).
fn int(row: &QueryResult, column: &str) -> Result<i64> {
    Ok(row.try_get::<i64>("", column).or_else(|_| row.try_get::<i32>("", column).map(i64::from))?)
}

impl SurveyStore {
    /// Up to `size` customers after `after`, as one page of the export.
    pub async fn score_page(
        &self,
        t: &TenantId,
        after: Option<Uuid>,
        size: u64,
    ) -> Result<Page<ExportScoreFactsResponse>> {
        let db = self.db();
        let backend = db.get_database_backend();
        // Stamped before the read, as the cases feed stamps its counts.
        let read_at = cx_runtime::store::now();
        // The first keys of the union are among the first of each side:
        // each side stops early on its customer index.
        let mut p = Params::default();
        let (tenant, limit) = (p.add(t.as_str()), p.add(i64::try_from(size).unwrap_or(i64::MAX).saturating_add(1)));
        let from = after.map(|id| format!(" AND customer_id > {}", p.add(id))).unwrap_or_default();
        let side = |table: &str| {
            format!(
                "SELECT customer_id FROM (SELECT DISTINCT customer_id FROM {table} WHERE tenant_id = {tenant} \
                 AND customer_id IS NOT NULL{from} ORDER BY customer_id LIMIT {limit}) AS {table}_keys"
            )
        };
        let sql =
            format!("{} UNION {} ORDER BY customer_id LIMIT {limit}", side("survey_responses"), side("survey_cases"));
        let (keys, more) = cx_runtime::keyset::keys(db, numbered(backend, &sql, p.0), size).await?;
        let Some(last) = keys.last().copied() else {
            return Ok(Page { message: ExportScoreFactsResponse::default(), last: None, more: false });
        };
        let range = |p: &mut Params| {
            let (tenant, last) = (p.add(t.as_str()), p.add(last));
            let from = after.map(|id| format!(" AND customer_id > {}", p.add(id))).unwrap_or_default();
            format!("tenant_id = {tenant} AND customer_id IS NOT NULL AND customer_id <= {last}{from}")
        };

        // The latest answer of each type: by instant, then response id.
        let mut p = Params::default();
        let answered = range(&mut p);
        let sql = format!(
            "SELECT customer_id, survey_type, score, survey_id, id, responded_at FROM (\
               SELECT customer_id, survey_type, score, survey_id, id, responded_at, ROW_NUMBER() OVER (\
                 PARTITION BY customer_id, survey_type ORDER BY responded_at DESC, id DESC) AS nth \
               FROM survey_responses WHERE {answered}) AS ranked \
             WHERE nth = 1 ORDER BY customer_id, survey_type"
        );
        let mut scores: Vec<(Uuid, ScoreRecorded)> = Vec::new();
        for row in db.query_all_raw(numbered(backend, &sql, p.0)).await? {
            let customer: Uuid = row.try_get("", "customer_id")?;
            let response_id: String = row.try_get("", "id")?;
            let responded_at: DateTime<Utc> = row.try_get("", "responded_at")?;
            let scored = ScoreRow {
                survey_type: row.try_get("", "survey_type")?,
                score: row.try_get("", "score")?,
                survey_id: row.try_get("", "survey_id")?,
                response_id: &response_id,
                responded_at,
            };
            scores.push((customer, score_recorded(customer, &scored)));
        }

        let mut p = Params::default();
        let held = range(&mut p);
        let resolved = p.add(CaseState::Resolved.code());
        let sql = format!(
            "SELECT customer_id, SUM(CASE WHEN state <> {resolved} THEN 1 ELSE 0 END) AS open \
             FROM survey_cases WHERE {held} GROUP BY customer_id"
        );
        let mut counts: BTreeMap<Uuid, i64> = BTreeMap::new();
        for row in db.query_all_raw(numbered(backend, &sql, p.0)).await? {
            counts.insert(row.try_get("", "customer_id")?, int(&row, "open")?);
        }
        let mut open: Vec<(Uuid, OpenCasesChanged)> =
            counts.into_iter().map(|(customer, n)| (customer, open_cases(customer, n, read_at))).collect();

        // The page ends early where its customers stop fitting (never with
        // three scores and a count each, but the bound is the page's).
        let mut sizes: HashMap<Uuid, usize> = HashMap::with_capacity(keys.len());
        for (customer, score) in &scores {
            *sizes.entry(*customer).or_default() += score.encoded_len() + 8;
        }
        for (customer, count) in &open {
            *sizes.entry(*customer).or_default() += count.encoded_len() + 8;
        }
        let fit = fitting(keys.iter().map(|id| sizes.get(id).copied().unwrap_or_default()));
        let (last, more) = if fit < keys.len() { (keys[fit - 1], true) } else { (last, more) };
        scores.retain(|(customer, _)| *customer <= last);
        open.retain(|(customer, _)| *customer <= last);
        let message = ExportScoreFactsResponse {
            scores: scores.into_iter().map(|(_, score)| score).collect(),
            open_cases: open.into_iter().map(|(_, count)| count).collect(),
            cursor: String::new(),
        };
        Ok(Page { message, last: Some(last), more })
    }
}
