//! cx-load's survey calls and their set-up: surveys, triggers and the
//! `survey` consents the triggered ingest needs, anonymous responses, and
//! the score aggregates of a range of days.

use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use cx_proto::common::v1::{Channel as Ch, InteractionKind};
use cx_proto::profile::v1::{self as ppb, ConsentPurpose, profile_service_client::ProfileServiceClient};
use cx_proto::survey::v1::{self as pb, survey_service_client::SurveyServiceClient};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

use crate::authed;

/// Creates a survey of `survey_type` delivered on `channel`, accepting
/// anonymous web responses; its id.
pub async fn create_survey(
    target: &Channel,
    token: &MetadataValue<Ascii>,
    name: &str,
    survey_type: pb::SurveyType,
    channel: Ch,
) -> anyhow::Result<String> {
    let survey = pb::Survey {
        name: name.to_owned(),
        r#type: survey_type as i32,
        language: "en".into(),
        title: name.to_owned(),
        score_question: "How likely are you to recommend us?".into(),
        channel: channel as i32,
        allow_anonymous: true,
        ..Default::default()
    };
    let reply = SurveyServiceClient::new(target.clone())
        .create_survey(authed(pb::CreateSurveyRequest { survey: Some(survey) }, token))
        .await?;
    Ok(reply.into_inner().survey.context("no survey in the reply")?.id)
}

/// The triggers of the triggered ingest, each sampling 100 %, on what
/// cx-load's touchpoints carry (6 channels in turn, scores 0 to 10): web
/// touchpoints invite to an NPS survey, store ones to a CSAT survey, and
/// informative touchpoints scored below 2 to a CES survey. Every touchpoint
/// is informative, so 1/6 + 1/6 + 2/11 of them match (≈ 52 %; some twice).
pub async fn create_triggers(target: &Channel, token: &MetadataValue<Ascii>) -> anyhow::Result<()> {
    let nps = create_survey(target, token, "bench web NPS", pb::SurveyType::Nps, Ch::Email).await?;
    let csat = create_survey(target, token, "bench store CSAT", pb::SurveyType::Csat, Ch::Sms).await?;
    let ces = create_survey(target, token, "bench low score CES", pb::SurveyType::Ces, Ch::Email).await?;
    let web = pb::TouchpointCondition { channels: vec![Ch::Web as i32], ..Default::default() };
    let store = pb::TouchpointCondition { channels: vec![Ch::Store as i32], ..Default::default() };
    let unhappy = pb::TouchpointCondition {
        kind: InteractionKind::Informative as i32,
        experience_score_below: Some(2),
        ..Default::default()
    };
    for (survey_id, name, condition) in [(nps, "web", web), (csat, "store", store), (ces, "unhappy", unhappy)] {
        let trigger = pb::Trigger {
            survey_id,
            name: name.to_owned(),
            enabled: true,
            condition: Some(condition),
            sampling_rate: 1.0,
            ..Default::default()
        };
        SurveyServiceClient::new(target.clone())
            .create_trigger(authed(pb::CreateTriggerRequest { trigger: Some(trigger) }, token))
            .await?;
    }
    Ok(())
}

/// Grants the `survey` consent to every `every`-th customer through the
/// profile service, 64 calls at a time.
pub async fn grant_consents(
    profile: &Channel,
    token: &MetadataValue<Ascii>,
    customers: &[String],
    every: usize,
) -> anyhow::Result<usize> {
    let chosen: Vec<String> = customers.iter().step_by(every.max(1)).cloned().collect();
    for chunk in chosen.chunks(64) {
        let mut calls = tokio::task::JoinSet::new();
        for id in chunk {
            let request = ppb::SetConsentRequest {
                profile_id: id.clone(),
                purpose: Some(ppb::Purpose { kind: Some(ppb::purpose::Kind::Standard(ConsentPurpose::Survey as i32)) }),
                granted: true,
                source_channel: Ch::Web as i32,
                actor: "customer".into(),
                request_id: format!("bench-consent-{id}"),
                ..Default::default()
            };
            let (mut client, request) = (ProfileServiceClient::new(profile.clone()), authed(request, token));
            calls.spawn(async move { client.set_consent(request).await });
        }
        while let Some(reply) = calls.join_next().await {
            reply??;
        }
    }
    Ok(chosen.len())
}

static NEXT_RESPONSE: AtomicU64 = AtomicU64::new(0);

/// One anonymous NPS answer never sent before (scores 0 to 10 in turn).
pub fn response(survey_id: &str) -> pb::SubmitResponseRequest {
    let n = NEXT_RESPONSE.fetch_add(1, Ordering::Relaxed);
    pb::SubmitResponseRequest {
        response: Some(pb::Response {
            id: format!("bench-{}-{n}", std::process::id()),
            survey_id: survey_id.to_owned(),
            score: (n % 11) as i32,
            ..Default::default()
        }),
    }
}

/// The aggregates of `survey_id` (or every survey) over days
/// `start..=end`, one group.
pub fn aggregates(survey_id: &str, start: &str, end: &str) -> pb::GetScoreAggregatesRequest {
    pb::GetScoreAggregatesRequest {
        start_day: start.to_owned(),
        end_day: end.to_owned(),
        survey_ids: if survey_id.is_empty() { Vec::new() } else { vec![survey_id.to_owned()] },
        ..Default::default()
    }
}

/// The NPS figures of an aggregates reply, as one line.
pub fn nps_line(reply: &pb::GetScoreAggregatesResponse) -> String {
    match reply.groups.first().and_then(|g| g.nps.as_ref()) {
        Some(n) => format!(
            "n {} promoters {} passives {} detractors {} nps {:.4}",
            n.n, n.promoters, n.passives, n.detractors, n.nps
        ),
        None => "no NPS group".to_owned(),
    }
}
