//! Score aggregates over whole days, from the daily roll-ups
//! (docs/DOMAIN.md §7.8): one query, figures by domain::aggregates. Users
//! ask through `SurveyService.GetScoreAggregates`, the kpi service through
//! `SurveyInternalService.AggregateScores`: both are [`score_aggregates`].

use std::collections::BTreeMap;

use cx_proto::survey::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::auth::{Role, tenant};
use cx_runtime::channel::Channel;
use cx_runtime::error::Violations;
use cx_runtime::input::parse_uuid;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{Reply, SurveyApi};
use cx_runtime::days::{self, date_number, date_of};

use crate::domain::aggregates::{Counts, ces, csat, nps};
use crate::domain::survey::SurveyType;
use crate::store::SurveyStore;
use crate::store::rollups::{self, Filter, GroupKey, Grouping};

/// Most surveys one request filters on.
pub const MAX_SURVEYS: usize = 1_000;
/// Most channels one request filters on: one per channel (SQLite binds one
/// variable each).
pub const MAX_CHANNELS: usize = 12;
/// Most dimensions one request groups by: each of the four once.
pub const MAX_DIMENSIONS: usize = 4;

/// The request's filter and grouping, every violation at once.
fn parse(r: &pb::GetScoreAggregatesRequest) -> Result<(Filter, Grouping), Violations> {
    let mut out = Violations::new();
    let days = out.check(days::range(&r.start_day, &r.end_day));
    if r.survey_ids.len() > MAX_SURVEYS {
        out.add("survey_ids", format!("has at most {MAX_SURVEYS} ids"));
    }
    let surveys: Vec<Uuid> = r
        .survey_ids
        .iter()
        .take(MAX_SURVEYS)
        .enumerate()
        .filter_map(|(i, id)| out.check(parse_uuid(id, &format!("survey_ids[{i}]"), "a survey id")))
        .collect();
    let map = match r.map_id.as_str() {
        "" => None,
        raw => out.check(parse_uuid(raw, "map_id", "a journey map id")),
    };
    let step = (!r.step_key.is_empty()).then(|| r.step_key.clone());
    if r.step_key.chars().count() > 64 {
        out.add("step_key", "has at most 64 characters");
    } else if step.is_some() && r.map_id.is_empty() {
        out.add("step_key", "needs a map_id");
    }
    let mut channels = Vec::new();
    // A list over its bound is one violation, its items not read.
    let (n, m) = (r.channels.len(), r.group_by.len());
    if n > MAX_CHANNELS {
        out.add("channels", format!("has at most {MAX_CHANNELS} channels (has {n})"));
    }
    if m > MAX_DIMENSIONS {
        out.add("group_by", format!("has at most {MAX_DIMENSIONS} dimensions (has {m})"));
    }
    for (i, &code) in r.channels.iter().enumerate().take_while(|_| n <= MAX_CHANNELS) {
        match Channel::from_code(code) {
            Some(channel) => channels.push(channel.code()),
            None => out.add(format!("channels[{i}]"), format!("{code} is not a known channel")),
        }
    }
    let mut grouping = Grouping::default();
    for (i, &code) in r.group_by.iter().enumerate().take_while(|_| m <= MAX_DIMENSIONS) {
        let slot = match pb::Dimension::try_from(code) {
            Ok(pb::Dimension::Survey) => &mut grouping.survey,
            Ok(pb::Dimension::MapStep) => &mut grouping.map_step,
            Ok(pb::Dimension::Channel) => &mut grouping.channel,
            Ok(pb::Dimension::Day) => &mut grouping.day,
            Ok(pb::Dimension::Unspecified) | Err(_) => {
                out.add(format!("group_by[{i}]"), "must be SURVEY, MAP_STEP, CHANNEL or DAY");
                continue;
            }
        };
        if std::mem::replace(slot, true) {
            out.add(format!("group_by[{i}]"), "names a dimension already named");
        }
    }
    out.finish()?;
    let Some((first, last)) = days.map(|(first, last)| (date_number(first), date_number(last))) else {
        return Err(Violations::new());
    };
    Ok((Filter { first, last, surveys, map, step, channels }, grouping))
}

/// A group's figures: each survey type's from its own answers.
fn group(key: &GroupKey, by_type: &BTreeMap<i16, Counts>) -> pb::ScoreGroup {
    let of = |t: SurveyType| by_type.get(&t.code()).copied().unwrap_or_default();
    let (n, c, e) = (of(SurveyType::Nps), of(SurveyType::Csat), of(SurveyType::Ces));
    let (score, satisfaction, effort) = (nps(&n), csat(&c), ces(&e));
    let (map_id, step_key) = match &key.map_step {
        Some((map, step)) if !map.is_nil() => (map.to_string(), step.clone()),
        Some((_, step)) => (String::new(), step.clone()),
        None => (String::new(), String::new()),
    };
    pb::ScoreGroup {
        survey_id: key.survey_id.map(|s| s.to_string()).unwrap_or_default(),
        map_id,
        step_key,
        channel: key.channel.map_or(0, i32::from),
        day: key.day.map(|d| date_of(d).format("%Y-%m-%d").to_string()).unwrap_or_default(),
        nps: Some(pb::NpsAggregate {
            n: n.n,
            promoters: n.promoters,
            passives: n.passives,
            detractors: n.detractors,
            nps: score.nps,
            margin_of_error: score.margin,
        }),
        csat: Some(pb::CsatAggregate {
            n: c.n,
            satisfied: c.satisfied,
            csat: satisfaction.share,
            wilson_low: satisfaction.low,
            wilson_high: satisfaction.high,
        }),
        ces: Some(pb::CesAggregate {
            n: e.n,
            score_sum: e.score_sum,
            mean: effort.mean,
            low_effort: e.low_effort,
            low_effort_share: effort.low_effort.share,
            low_effort_low: effort.low_effort.low,
            low_effort_high: effort.low_effort.high,
            score_squares: e.score_squares,
            mean_low: effort.mean_low,
            mean_high: effort.mean_high,
        }),
    }
}

pub(super) async fn get_score_aggregates(
    api: &SurveyApi,
    request: Request<pb::GetScoreAggregatesRequest>,
) -> Reply<pb::GetScoreAggregatesResponse> {
    let t = tenant(&request, Role::Reader)?;
    Ok(Response::new(score_aggregates(&api.store, &t, request.get_ref(), &[]).await?))
}

/// The aggregates `r` asks of tenant `t`'s roll-ups (of `customers`' answers
/// only, when given), whoever asks: the caller has checked who it is.
pub(super) async fn score_aggregates(
    store: &SurveyStore,
    t: &TenantId,
    r: &pb::GetScoreAggregatesRequest,
    customers: &[Uuid],
) -> Result<pb::GetScoreAggregatesResponse, Status> {
    let (filter, grouping) = parse(r)?;
    let mut sums = rollups::sums(store.db(), t, &filter, grouping, customers).await?;
    // Not grouped: one group, even of nothing.
    if grouping == Grouping::default() && sums.is_empty() {
        sums.insert(GroupKey::default(), BTreeMap::new());
    }
    let groups = sums.iter().map(|(key, by_type)| group(key, by_type)).collect();
    Ok(pb::GetScoreAggregatesResponse { groups })
}

#[cfg(test)]
mod tests {
    use cx_runtime::error::FieldViolation;

    use super::*;

    fn violations(r: &pb::GetScoreAggregatesRequest) -> Vec<FieldViolation> {
        parse(r).err().map(Vec::from).unwrap_or_default()
    }

    #[test]
    fn a_request_reads_whole_days_and_its_filters() {
        let r = pb::GetScoreAggregatesRequest {
            start_day: "2026-03-01".into(),
            end_day: "2026-03-31".into(),
            survey_ids: vec!["0190c1d2-0000-7000-8000-000000000001".into()],
            map_id: "0190c1d2-0000-7000-8000-000000000002".into(),
            step_key: "order".into(),
            channels: vec![1, 9],
            group_by: vec![pb::Dimension::Day as i32, pb::Dimension::Survey as i32],
        };
        let (filter, grouping) = parse(&r).unwrap();
        // 1 March 2026 is day 20,513; 31 March, 30 days later.
        assert_eq!((filter.first, filter.last), (20_513, 20_543));
        assert_eq!(filter.step.as_deref(), Some("order"));
        assert_eq!(filter.channels, [1, 9]);
        assert_eq!(grouping, Grouping { survey: true, day: true, ..Grouping::default() });
    }

    #[test]
    fn every_bad_field_is_named() {
        let r = pb::GetScoreAggregatesRequest {
            start_day: "2026-3-1".into(),
            end_day: String::new(),
            survey_ids: vec!["x".into()],
            map_id: String::new(),
            step_key: "order".into(),
            channels: vec![0, 13],
            group_by: vec![0, pb::Dimension::Day as i32, pb::Dimension::Day as i32],
        };
        let expected = [
            ("start_day", "must be a day written YYYY-MM-DD"),
            ("end_day", "is required"),
            ("survey_ids[0]", "must be a survey id (a UUID)"),
            ("step_key", "needs a map_id"),
            ("channels[0]", "0 is not a known channel"),
            ("channels[1]", "13 is not a known channel"),
            ("group_by[0]", "must be SURVEY, MAP_STEP, CHANNEL or DAY"),
            ("group_by[2]", "names a dimension already named"),
        ];
        assert_eq!(violations(&r), expected.map(|(f, d)| FieldViolation::new(f, d)));
    }
}
