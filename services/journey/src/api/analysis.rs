//! AnalyzeJourney and GetJourneyInstance: counts from the store, rules from
//! the domain, answers cached per map until the map's next ingest.
//!
//! Each map has a generation key in the cache whose value is the instant it
//! was (re)made; answers are cached under that generation. Ingest drops the
//! generation key of every map it touched (one key per map and batch), so
//! the next reader starts a new generation and old answers are never read
//! again (they expire). Erasure drops the map's answers themselves, since
//! they may name the customer.

use chrono::{DateTime, Utc};
use cx_proto::journey::v1 as pb;
use cx_runtime::TenantId;
use prost::Message;
use uuid::Uuid;

use super::JourneyApi;
use crate::cache_keys::{answer_key, generation_key};
use crate::domain::analysis::{conversion, funnel, improvement_plan, peak_end, share, step_analysis};
use crate::store::JourneyError;
use crate::store::analytics::InstanceScores;
use crate::store::maps::MapRecord;

pub const DEFAULT_LISTED: u64 = 20;
pub const MAX_LISTED: u64 = 1_000;

fn peak_end_to_proto(i: &InstanceScores) -> pb::InstancePeakEnd {
    pb::InstancePeakEnd {
        instance_id: i.instance_id.clone(),
        profile_id: i.customer.to_string(),
        scored: i.scored,
        mean_score: i.mean,
        peak_score: i32::try_from(i.peak).unwrap_or_default(),
        end_score: i32::try_from(i.end).unwrap_or_default(),
        remembered_score: i.remembered,
    }
}

impl JourneyApi {
    /// The analysis of `map` over `[since, until)`, through the cache.
    pub(super) async fn analysis(
        &self,
        t: &TenantId,
        map: &MapRecord,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        listed: u64,
    ) -> Result<pb::AnalyzeJourneyResponse, JourneyError> {
        let generation = self
            .cache
            .get_or_load(&generation_key(t, map.id), || async {
                Ok::<_, JourneyError>(Some(Utc::now().timestamp_micros().to_string().into_bytes()))
            })
            .await?
            .map(|g| String::from_utf8_lossy(&g).into_owned())
            .unwrap_or_default();
        let key = answer_key(t, map.id, &generation, map.version, since, until, listed);
        let bytes = self
            .cache
            .get_or_load(&key, || async {
                let answer = self.compute(t, map, since, until, listed).await?;
                Ok::<_, JourneyError>(Some(answer.encode_to_vec()))
            })
            .await?
            .unwrap_or_default();
        pb::AnalyzeJourneyResponse::decode(bytes.as_slice())
            .map_err(|e| JourneyError::Corrupt(format!("cached analysis of map {}: {e}", map.id)))
    }

    async fn compute(
        &self,
        t: &TenantId,
        map: &MapRecord,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        listed: u64,
    ) -> Result<pb::AnalyzeJourneyResponse, JourneyError> {
        let counts = self.store.analyze(t, map.id, since, until, listed).await?;
        let steps: Vec<_> = map
            .steps
            .iter()
            .map(|step| {
                let found = counts.steps.iter().find(|(key, _)| key == &step.key).map(|(_, c)| c.clone());
                step_analysis(step, found.unwrap_or_default())
            })
            .collect();
        let (conversions, conversion_rate) = conversion(&steps, counts.instances);
        Ok(pb::AnalyzeJourneyResponse {
            map_version: map.version,
            touchpoints: counts.touchpoints,
            instances: counts.instances,
            improvement_plan: improvement_plan(&steps),
            funnel: funnel(&steps, counts.instances, &counts.step_sets)
                .into_iter()
                .map(|f| pb::FunnelStep {
                    step_key: f.key,
                    instances: f.instances,
                    rate_from_previous: f.rate_from_previous,
                    drop_off: f.drop_off,
                })
                .collect(),
            steps: steps
                .into_iter()
                .map(|s| pb::StepStats {
                    step_key: s.step.key,
                    name: s.step.name,
                    moment_of_truth: s.step.moment_of_truth,
                    importance: s.step.importance,
                    target_score: s.step.target_score,
                    touchpoints: s.counts.touchpoints,
                    instances: s.counts.instances,
                    scored: s.counts.scored,
                    mean_score: s.mean,
                    disappointing: s.counts.disappointing,
                    neutral: s.counts.neutral,
                    delight: s.counts.delight,
                    disappointing_share: s.shares[0],
                    neutral_share: s.shares[1],
                    delight_share: s.shares[2],
                    gap: s.gap,
                    priority: s.priority,
                })
                .collect(),
            conversions,
            conversion_rate,
            multi_touch_instances: counts.multi_touch,
            cross_channel_instances: counts.cross_channel,
            continuity: share(counts.cross_channel, counts.multi_touch),
            channel_switches: counts
                .switches
                .iter()
                .map(|(from, to, count)| pb::ChannelSwitch {
                    from_channel: i32::from(*from),
                    to_channel: i32::from(*to),
                    count: *count,
                })
                .collect(),
            scored_instances: counts.scored_instances,
            mean_remembered_score: mean(counts.remembered_sum, counts.scored_instances),
            mean_plain_score: mean(counts.mean_sum, counts.scored_instances),
            peak_end_divergence_share: share(counts.diverging, counts.scored_instances),
            instances_by_gap: counts.listed.iter().map(peak_end_to_proto).collect(),
        })
    }

    /// One instance's touchpoints in time order and its peak-end figures:
    /// `customer`'s, or the only customer's who used the instance id.
    pub(super) async fn instance(
        &self,
        t: &TenantId,
        map: Uuid,
        instance: &str,
        customer: Option<Uuid>,
    ) -> Result<pb::GetJourneyInstanceResponse, JourneyError> {
        let rows = self.store.instance(t, map, instance, customer).await?;
        if rows.is_empty() {
            return Err(JourneyError::not_found(format_args!("journey instance '{instance}' of map {map}")));
        }
        let customers: std::collections::BTreeSet<Uuid> = rows.iter().map(|r| r.customer_id).collect();
        if customers.len() > 1 {
            let why = format!("is needed: {} customers use instance id '{instance}' in this map", customers.len());
            return Err(JourneyError::invalid("profile_id", why));
        }
        let scores: Vec<i64> = rows.iter().filter_map(|r| r.score.map(i64::from)).collect();
        let customer = rows.last().map(|r| r.customer_id).unwrap_or_default();
        let peak_end = peak_end(&scores).map(|(peak, end, remembered)| {
            peak_end_to_proto(&InstanceScores {
                instance_id: instance.to_owned(),
                customer,
                scored: i64::try_from(scores.len()).unwrap_or(i64::MAX),
                peak,
                end,
                remembered,
                mean: scores.iter().sum::<i64>() as f64 / scores.len() as f64,
            })
        });
        Ok(pb::GetJourneyInstanceResponse {
            touchpoints: rows.into_iter().map(super::touchpoint_to_proto).collect(),
            peak_end,
        })
    }
}

fn mean(sum: f64, n: i64) -> f64 {
    if n == 0 { 0.0 } else { sum / n as f64 }
}
