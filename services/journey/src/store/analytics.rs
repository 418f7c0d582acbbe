//! Journey analytics read from the roll-ups kept at ingest (store::rollup):
//! the day counters of the range summed by name, and the instances farthest
//! from their mean from an index. Thousands of rows, whatever the number of
//! touchpoints (docs/BENCHMARKS.md, Floors).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cx_runtime::TenantId;
use cx_runtime::store::numbered;
use sea_orm::{ConnectionTrait, Value};
use uuid::Uuid;

use super::{JourneyStore, Result};
use crate::domain::analysis::StepInput;
use crate::domain::rollup::{self as r, days, parse_switch};

const COUNTERS: &str = "SELECT name, label, CAST(sum(n) AS BIGINT) AS n, CAST(sum(x) AS DOUBLE PRECISION) AS x \
     FROM journey_rollups WHERE tenant_id = $1 AND map_id = $2 AND day >= $3 AND day < $4 GROUP BY name, label";

/// Scored instances started in the days, farthest from their mean first; `$5` of them.
const LISTED: &str = "SELECT instance_id, customer_id, scored, peak, last, remembered, mean FROM journey_instances \
     WHERE tenant_id = $1 AND map_id = $2 AND first_day >= $3 AND first_day < $4 AND scored > 0 \
     ORDER BY gap DESC, instance_id, customer_id LIMIT $5";

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
    /// Instances by the steps they reached (sorted keys), for the funnel.
    pub step_sets: BTreeMap<Vec<String>, i64>,
}

impl JourneyStore {
    /// Counts what the analysis of map `map` over the whole UTC days of
    /// `[since, until)` needs: touchpoints by their day, instances by the day
    /// of their first touchpoint.
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
        let (first, end) = days(since, until);
        let scope: Vec<Value> = vec![t.as_str().into(), map.into(), first.into(), end.into()];
        let mut sums: BTreeMap<(String, String), (i64, f64)> = BTreeMap::new();
        for row in db.query_all_raw(numbered(backend, COUNTERS, scope.clone())).await? {
            let n: Option<i64> = row.try_get("", "n")?;
            let x: Option<f64> = row.try_get("", "x")?;
            sums.insert((row.try_get("", "name")?, row.try_get("", "label")?), (n.unwrap_or(0), x.unwrap_or(0.0)));
        }
        let get = |name: &str, label: &str| sums.get(&(name.to_owned(), label.to_owned())).copied().unwrap_or_default();
        let mut counts = Counts {
            touchpoints: get(r::TOUCHPOINTS, "").0,
            instances: get(r::INSTANCES, "").0,
            multi_touch: get(r::MULTI_TOUCH, "").0,
            cross_channel: get(r::CROSS_CHANNEL, "").0,
            scored_instances: get(r::SCORED_INSTANCES, "").0,
            remembered_sum: get(r::REMEMBERED_SUM, "").1,
            mean_sum: get(r::MEAN_SUM, "").1,
            diverging: get(r::DIVERGING, "").0,
            ..Counts::default()
        };
        let step_keys: std::collections::BTreeSet<&String> = sums
            .iter()
            .filter(|((name, _), (n, _))| name.starts_with("step.") && *n != 0)
            .map(|((_, label), _)| label)
            .collect();
        for key in step_keys {
            let step = StepInput {
                touchpoints: get(r::STEP_TOUCHPOINTS, key).0,
                instances: get(r::STEP_INSTANCES, key).0,
                scored: get(r::STEP_SCORED, key).0,
                score_sum: get(r::STEP_SCORE_SUM, key).0,
                disappointing: get(r::STEP_DISAPPOINTING, key).0,
                neutral: get(r::STEP_NEUTRAL, key).0,
                delight: get(r::STEP_DELIGHT, key).0,
            };
            counts.steps.push((key.clone(), step));
        }
        counts.switches = sums
            .iter()
            .filter(|((name, _), (n, _))| name == r::SWITCH && *n > 0)
            .filter_map(|((_, label), (n, _))| parse_switch(label).map(|(from, to)| (from, to, *n)))
            .collect();
        counts.switches.sort_by(|a, b| b.2.cmp(&a.2).then((a.0, a.1).cmp(&(b.0, b.1))));
        let counted: Vec<(&String, i64)> = sums
            .iter()
            .filter(|((name, _), (n, _))| name == r::STEP_SET && *n != 0)
            .map(|((_, l), (n, _))| (l, *n))
            .collect();
        if !counted.is_empty() {
            let sets = super::rollup::step_sets(db, t, map).await?;
            for (label, n) in counted {
                let steps = sets.get(label).ok_or_else(|| {
                    super::JourneyError::Corrupt(format!("step set {label} of map {map} is not recorded"))
                })?;
                counts.step_sets.insert(steps.clone(), n);
            }
        }

        let mut values = scope;
        values.push(i64::try_from(listed).unwrap_or(i64::MAX).into());
        for row in db.query_all_raw(numbered(backend, LISTED, values)).await? {
            let (peak, end): (i32, i32) = (row.try_get("", "peak")?, row.try_get("", "last")?);
            counts.listed.push(InstanceScores {
                instance_id: row.try_get("", "instance_id")?,
                customer: row.try_get("", "customer_id")?,
                scored: row.try_get("", "scored")?,
                peak: i64::from(peak),
                end: i64::from(end),
                remembered: row.try_get("", "remembered")?,
                mean: row.try_get("", "mean")?,
            });
        }
        Ok(counts)
    }
}
