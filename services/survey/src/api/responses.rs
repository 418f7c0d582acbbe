//! Responses: SubmitResponse (idempotent, validated against the survey
//! version), reading, listing and verbatim search (docs/DOMAIN.md §7.7,
//! §7.9).

use cx_proto::survey::v1 as pb;
use cx_runtime::auth::{Role, tenant};
use cx_runtime::error::{FieldViolation, Violations, all2, all3, clip};
use cx_runtime::input::{not_future, parse_uuid};
use cx_runtime::page::{decode_token, next_page_token, page_size, trim_page};
use prost::Message;
use sha2::{Digest, Sha256};
use tonic::{Request, Response};

use super::{Reply, SurveyApi};
use crate::domain::response::MAX_ID;
use crate::domain::validate::survey::{CHOICES, MAX_QUESTIONS};
use crate::store::entity::response;
use crate::store::responses::{self, After, Owner};
use crate::store::submit::{self, Draft};
use crate::store::{SurveyError, surveys};

/// Longest verbatim search, in characters.
const MAX_QUERY: usize = 200;

fn response_id(raw: &str, field: &str) -> Result<(), FieldViolation> {
    match raw.chars().count() {
        1..=MAX_ID => Ok(()),
        _ => Err(FieldViolation::new(field, format!("has 1 to {MAX_ID} characters"))),
    }
}

/// SHA-256 of what the client sent (its output-only fields left out).
fn digest(r: &pb::Response) -> Vec<u8> {
    let sent = pb::Response {
        survey_id: r.survey_id.clone(),
        invitation_id: r.invitation_id.clone(),
        score: r.score,
        verbatim: r.verbatim.clone(),
        answers: r.answers.clone(),
        language: r.language.clone(),
        respond_time: r.respond_time,
        ..pb::Response::default()
    };
    Sha256::digest(sent.encode_to_vec()).to_vec()
}

/// The request's response, its shape checked. Without a usable id and
/// survey id nothing more can be checked; other violations travel with the
/// draft, to be reported with those the survey version finds.
fn draft(r: pb::Response) -> Result<Draft, Violations> {
    let mut violations = Violations::new();
    let id = violations.check(response_id(&r.id, "response.id"));
    let survey_id = violations.check(parse_uuid(&r.survey_id, "response.survey_id", "a survey id"));
    let (Some(()), Some(survey_id)) = (id, survey_id) else {
        return Err(violations);
    };
    // Lists longer than a survey can hold are refused before it is read:
    // each of their items would be a violation.
    if r.answers.len() > MAX_QUESTIONS {
        violations.add("response.answers", format!("has at most {MAX_QUESTIONS} answers (has {})", r.answers.len()));
        return Err(violations);
    }
    let most = *CHOICES.end();
    let long: Vec<_> = r.answers.iter().enumerate().filter(|(_, a)| a.choice_ids.len() > most).collect();
    for (i, a) in &long {
        let why = format!("has at most {most} choices (has {})", a.choice_ids.len());
        violations.add(format!("response.answers[{i}].choice_ids"), why);
    }
    if !long.is_empty() {
        return Err(violations);
    }
    let invitation_id = match r.invitation_id.as_str() {
        "" => None,
        raw => violations.check(parse_uuid(raw, "response.invitation_id", "an invitation id")),
    };
    let respond_time = r
        .respond_time
        .and_then(|ts| violations.check(not_future(&ts, "response.respond_time")))
        .map(cx_runtime::store::stored_instant);
    let digest = digest(&r);
    Ok(Draft {
        id: r.id,
        survey_id,
        invitation_id,
        anonymous: r.invitation_id.is_empty(),
        score: r.score,
        verbatim: r.verbatim,
        answers: r.answers,
        language: r.language,
        respond_time,
        digest,
        violations,
    })
}

pub(super) async fn submit_response(
    api: &SurveyApi,
    request: Request<pb::SubmitResponseRequest>,
) -> Reply<pb::SubmitResponseResponse> {
    let t = tenant(&request, Role::Writer)?;
    let sent = request.into_inner().response.ok_or_else(|| FieldViolation::new("response", "is required"))?;
    let (response, created) = submit::submit(api.store.db(), api.store.feeds(), &t, draft(sent)?).await?;
    if created {
        tracing::info!(survey = %response.survey_id, "response recorded");
        api.cache.advance_generation(&t, crate::NAME).await?;
    }
    Ok(Response::new(pb::SubmitResponseResponse { response: Some(response), created }))
}

pub(super) async fn get_response(
    api: &SurveyApi,
    request: Request<pb::GetResponseRequest>,
) -> Reply<pb::GetResponseResponse> {
    let t = tenant(&request, Role::Reader)?;
    let id = request.into_inner().id;
    response_id(&id, "id")?;
    let found = responses::get(api.store.db(), &t, &id).await?;
    let found = found.ok_or_else(|| SurveyError::not_found(format_args!("response '{}'", clip(&id))))?;
    Ok(Response::new(pb::GetResponseResponse { response: Some(responses::to_proto(&found)?) }))
}

/// The token of the page after `last`: its time (microseconds) and id.
fn token(last: Option<&response::Model>) -> Option<String> {
    last.map(|r| format!("{}/{}", r.responded_at.timestamp_micros(), r.id))
}

fn parse_token(raw: &str) -> Result<Option<After>, FieldViolation> {
    let bad = || FieldViolation::new("page_token", "is not a token this server issued");
    let Some(position) = decode_token(raw, "page_token")? else { return Ok(None) };
    let (micros, id) = position.split_once('/').ok_or_else(bad)?;
    let at = cx_runtime::page::token_instant(micros).ok_or_else(bad)?;
    Ok(Some((at, id.to_owned())))
}

fn owner(survey_id: &str, customer_id: &str) -> Result<Owner, FieldViolation> {
    match (survey_id.is_empty(), customer_id.is_empty()) {
        (false, true) => parse_uuid(survey_id, "survey_id", "a survey id").map(Owner::Survey),
        (true, false) => parse_uuid(customer_id, "customer_id", "a customer (profile) id").map(Owner::Customer),
        _ => Err(FieldViolation::new("survey_id", "give exactly one of survey_id and customer_id")),
    }
}

/// NOT_FOUND unless the tenant has survey `id`.
async fn known_survey(api: &SurveyApi, t: &cx_runtime::TenantId, id: uuid::Uuid) -> Result<(), SurveyError> {
    match surveys::version(api.store.db(), t, id, None).await? {
        Some(_) => Ok(()),
        None => Err(SurveyError::not_found(format_args!("survey {id}"))),
    }
}

pub(super) async fn list_responses(
    api: &SurveyApi,
    request: Request<pb::ListResponsesRequest>,
) -> Reply<pb::ListResponsesResponse> {
    let t = tenant(&request, Role::Reader)?;
    let pb::ListResponsesRequest { survey_id, customer_id, page_size: size, page_token } = request.into_inner();
    let (owner, size, after) =
        all3(owner(&survey_id, &customer_id), page_size(size, "page_size"), parse_token(&page_token))?;
    if let Owner::Survey(id) = owner {
        known_survey(api, &t, id).await?;
    }
    let mut rows = responses::list(api.store.db(), &t, owner, after.as_ref(), size + 1).await?;
    let more = trim_page(&mut rows, size);
    Ok(Response::new(pb::ListResponsesResponse {
        responses: rows.iter().map(responses::to_proto).collect::<Result<_, _>>()?,
        next_page_token: next_page_token(more, token(rows.last())),
    }))
}

fn search_query(raw: &str) -> Result<&str, FieldViolation> {
    let query = raw.trim();
    match query.chars().count() {
        1..=MAX_QUERY => Ok(query),
        _ => Err(FieldViolation::new("query", format!("has 1 to {MAX_QUERY} characters (not counting spaces around)"))),
    }
}

pub(super) async fn search_verbatims(
    api: &SurveyApi,
    request: Request<pb::SearchVerbatimsRequest>,
) -> Reply<pb::SearchVerbatimsResponse> {
    let t = tenant(&request, Role::Reader)?;
    let pb::SearchVerbatimsRequest { survey_id, query, page_size: size, page_token } = request.into_inner();
    let ((survey, query), (size, after)) = all2(
        all2(parse_uuid(&survey_id, "survey_id", "a survey id"), search_query(&query)),
        all2(page_size(size, "page_size"), parse_token(&page_token)),
    )?;
    let db = api.store.db();
    let configs = responses::verbatim_configs(db, &t, survey).await?;
    if configs.is_empty() {
        return Err(SurveyError::not_found(format_args!("survey {survey}")).into());
    }
    let mut rows = responses::search(db, &t, survey, &configs, query, after.as_ref(), size + 1).await?;
    let more = trim_page(&mut rows, size);
    let next_page_token = next_page_token(more, token(rows.last()));
    let hits = rows
        .into_iter()
        .map(|r| pb::VerbatimHit {
            response_id: r.id,
            verbatim: r.verbatim.unwrap_or_default(),
            score: i32::from(r.score),
            map_id: r.map_id.map(|m| m.to_string()).unwrap_or_default(),
            step_key: r.step_key.unwrap_or_default(),
            respond_time: Some(cx_proto::timestamp(r.responded_at)),
        })
        .collect();
    Ok(Response::new(pb::SearchVerbatimsResponse { hits, next_page_token }))
}

#[cfg(test)]
mod tests {
    use cx_runtime::page::encode_token;

    use super::*;

    #[test]
    fn page_tokens_round_trip_ids_with_slashes() {
        let at = chrono::DateTime::from_timestamp_micros(1_772_000_000_123_456).unwrap();
        let raw = encode_token(&format!("{}/{}", at.timestamp_micros(), "web/2026/7"));
        assert_eq!(parse_token(&raw), Ok(Some((at, "web/2026/7".to_owned()))));
        assert_eq!(parse_token(""), Ok(None));
        let bad = FieldViolation::new("page_token", "is not a token this server issued");
        assert_eq!(parse_token(&encode_token("no-slash")), Err(bad.clone()));
        assert_eq!(parse_token("***"), Err(bad));
    }

    #[test]
    fn the_digest_ignores_output_only_fields() {
        let sent = pb::Response { id: "r1".into(), survey_id: "s".into(), score: 9, ..Default::default() };
        let echoed = pb::Response { customer_id: "c".into(), survey_version: 3, channel: 1, ..sent.clone() };
        assert_eq!(digest(&sent), digest(&echoed));
        assert_ne!(digest(&sent), digest(&pb::Response { score: 8, ..sent.clone() }));
    }
}
