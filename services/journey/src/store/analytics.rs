//! Journey analytics computed where the data is (DESIGN §3): a handful of
//! grouped and windowed queries over the map's touchpoints in the range;
//! only per-step, per-switch and a bounded list of per-instance rows come
//! back.

use chrono::{DateTime, Utc};
use cx_runtime::TenantId;
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement, Value};
use uuid::Uuid;

use super::{JourneyStore, Result};
use crate::domain::analysis::StepInput;

/// `$1` tenant, `$2` map, `$3` since, `$4` until: the touchpoints analysed.
const SCOPE: &str = "tenant_id = $1 AND map_id = $2 AND occurred_at >= $3 AND occurred_at < $4";

const STEPS: &str = "SELECT step_key, count(*) AS touchpoints, count(DISTINCT instance_id) AS instances, \
     count(score) AS scored, coalesce(sum(score), 0) AS score_sum, \
     sum(CASE WHEN score <= 4 THEN 1 ELSE 0 END) AS disappointing, \
     sum(CASE WHEN score BETWEEN 5 AND 6 THEN 1 ELSE 0 END) AS neutral, \
     sum(CASE WHEN score >= 7 THEN 1 ELSE 0 END) AS delight \
     FROM touchpoints WHERE {SCOPE} AND step_key IS NOT NULL GROUP BY step_key";

const TOTALS: &str = "SELECT count(*) AS touchpoints, count(DISTINCT instance_id) AS instances \
     FROM touchpoints WHERE {SCOPE}";

const CONTINUITY: &str = "SELECT coalesce(sum(CASE WHEN n >= 2 THEN 1 ELSE 0 END), 0) AS multi, \
     coalesce(sum(CASE WHEN n >= 2 AND channels >= 2 THEN 1 ELSE 0 END), 0) AS crossed \
     FROM (SELECT instance_id, count(*) AS n, count(DISTINCT channel) AS channels \
       FROM touchpoints WHERE {SCOPE} AND instance_id IS NOT NULL GROUP BY instance_id) AS i";

const SWITCHES: &str = "SELECT previous AS from_channel, channel AS to_channel, count(*) AS n \
     FROM (SELECT channel, LAG(channel) OVER (PARTITION BY instance_id ORDER BY occurred_at, id) AS previous \
       FROM touchpoints WHERE {SCOPE} AND instance_id IS NOT NULL) AS s \
     WHERE previous IS NOT NULL AND previous <> channel \
     GROUP BY previous, channel ORDER BY n DESC, previous, channel";

/// Per instance with a score: peak (farthest from 5, the later on a tie),
/// end (the last), count and sum of scores; `$5` limits the listed ones.
const PEAK_END: &str = "WITH scored AS (\
       SELECT instance_id, customer_id, score, \
         ROW_NUMBER() OVER (PARTITION BY instance_id ORDER BY abs(score - 5) DESC, occurred_at DESC, id DESC) AS peak_rank, \
         ROW_NUMBER() OVER (PARTITION BY instance_id ORDER BY occurred_at DESC, id DESC) AS end_rank, \
         count(*) OVER (PARTITION BY instance_id) AS n, \
         sum(score) OVER (PARTITION BY instance_id) AS total \
       FROM touchpoints WHERE {SCOPE} AND instance_id IS NOT NULL AND score IS NOT NULL), \
     per AS (\
       SELECT e.instance_id, e.customer_id, CAST(p.score AS BIGINT) AS peak, CAST(e.score AS BIGINT) AS last, e.n, \
         CAST(p.score + e.score AS DOUBLE PRECISION) / 2 AS remembered, \
         CAST(e.total AS DOUBLE PRECISION) / e.n AS mean \
       FROM scored AS e JOIN scored AS p ON p.instance_id = e.instance_id AND p.peak_rank = 1 \
       WHERE e.end_rank = 1) \
     SELECT CAST(0 AS BIGINT) AS listed, count(*) AS n, NULL AS instance_id, NULL AS customer_id, \
       CAST(0 AS BIGINT) AS peak, CAST(0 AS BIGINT) AS last, \
       coalesce(sum(remembered), 0) AS remembered, coalesce(sum(mean), 0) AS mean, \
       coalesce(sum(CASE WHEN abs(remembered - mean) >= 2 THEN 1 ELSE 0 END), 0) AS diverging FROM per \
     UNION ALL SELECT * FROM (\
       SELECT CAST(1 AS BIGINT) AS listed, n, instance_id, customer_id, peak, last, remembered, mean, \
         CAST(0 AS BIGINT) AS diverging FROM per \
       ORDER BY abs(remembered - mean) DESC, instance_id LIMIT $5) AS listed";

/// One instance's peak-end figures.
#[derive(Clone, Debug, PartialEq)]
pub struct InstanceScores {
    pub instance_id: String,
    pub customer: Uuid,
    pub scored: i64,
    pub peak: i64,
    pub end: i64,
    pub remembered: f64,
    pub mean: f64,
}

/// Everything [`JourneyStore::analyze`] counts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counts {
    pub touchpoints: i64,
    pub instances: i64,
    pub steps: Vec<(String, StepInput)>,
    pub multi_touch: i64,
    pub cross_channel: i64,
    /// (from, to, count), largest first.
    pub switches: Vec<(i16, i16, i64)>,
    pub scored_instances: i64,
    pub remembered_sum: f64,
    pub mean_sum: f64,
    pub diverging: i64,
    pub listed: Vec<InstanceScores>,
}

fn statement(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = sql.replace("{SCOPE}", SCOPE);
    let sql = if backend == DbBackend::Postgres { sql } else { sql.replace('$', "?") };
    Statement::from_sql_and_values(backend, sql, values)
}

fn int(row: &QueryResult, column: &str) -> Result<i64> {
    Ok(row.try_get::<i64>("", column)?)
}

impl JourneyStore {
    /// Counts what the analysis of map `map` over `[since, until)` needs.
    pub async fn analyze(
        &self,
        t: &TenantId,
        map: Uuid,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        listed: u64,
    ) -> Result<Counts> {
        let db = self.db();
        let backend = db.get_database_backend();
        let scope: Vec<Value> = vec![t.as_str().into(), map.into(), since.into(), until.into()];
        let query = |sql: &str, extra: Option<Value>| {
            let mut values = scope.clone();
            values.extend(extra);
            statement(backend, sql, values)
        };
        let mut counts = Counts::default();
        if let Some(row) = db.query_one_raw(query(TOTALS, None)).await? {
            counts.touchpoints = int(&row, "touchpoints")?;
            counts.instances = int(&row, "instances")?;
        }
        for row in db.query_all_raw(query(STEPS, None)).await? {
            let step = StepInput {
                touchpoints: int(&row, "touchpoints")?,
                instances: int(&row, "instances")?,
                scored: int(&row, "scored")?,
                score_sum: int(&row, "score_sum")?,
                disappointing: int(&row, "disappointing")?,
                neutral: int(&row, "neutral")?,
                delight: int(&row, "delight")?,
            };
            counts.steps.push((row.try_get("", "step_key")?, step));
        }
        if let Some(row) = db.query_one_raw(query(CONTINUITY, None)).await? {
            counts.multi_touch = int(&row, "multi")?;
            counts.cross_channel = int(&row, "crossed")?;
        }
        for row in db.query_all_raw(query(SWITCHES, None)).await? {
            let from: i16 = row.try_get("", "from_channel")?;
            let to: i16 = row.try_get("", "to_channel")?;
            counts.switches.push((from, to, int(&row, "n")?));
        }
        let limit = i64::try_from(listed).unwrap_or(i64::MAX);
        for row in db.query_all_raw(query(PEAK_END, Some(limit.into()))).await? {
            if int(&row, "listed")? == 0 {
                counts.scored_instances = int(&row, "n")?;
                counts.remembered_sum = row.try_get("", "remembered")?;
                counts.mean_sum = row.try_get("", "mean")?;
                counts.diverging = int(&row, "diverging")?;
            } else {
                counts.listed.push(InstanceScores {
                    instance_id: row.try_get("", "instance_id")?,
                    customer: row.try_get("", "customer_id")?,
                    scored: int(&row, "n")?,
                    peak: int(&row, "peak")?,
                    end: int(&row, "last")?,
                    remembered: row.try_get("", "remembered")?,
                    mean: row.try_get("", "mean")?,
                });
            }
        }
        Ok(counts)
    }
}
