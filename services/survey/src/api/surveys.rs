//! Survey definitions: create, read, list, update (a new version), archive
//! (docs/DOMAIN.md §7.5).

use cx_proto::survey::v1 as pb;
use cx_runtime::auth::{Role, tenant};
use cx_runtime::error::{FieldViolation, all2};
use cx_runtime::input::parse_uuid;
use cx_runtime::page::{decode_uuid_token, next_page_token, page_size, trim_page};
use tonic::{Request, Response};

use super::{Reply, SurveyApi};
use crate::domain::validate::survey::{UPDATABLE, apply, check};
use crate::store::{SurveyError, surveys, triggers};

/// A page of surveys stops early past this many bytes, within a client's
/// default 4 MiB: a survey may be near the 1 MiB of a request.
const PAGE_BYTES: usize = 2 * 1024 * 1024;

/// How many of `surveys`, in order, fit in [`PAGE_BYTES`]; at least one.
fn fitting(surveys: &[pb::Survey]) -> usize {
    let mut bytes = 0;
    let fit = surveys
        .iter()
        .take_while(|s| {
            bytes += prost::Message::encoded_len(*s);
            bytes <= PAGE_BYTES
        })
        .count();
    fit.max(1).min(surveys.len())
}

fn survey_id(raw: &str, field: &str) -> Result<uuid::Uuid, FieldViolation> {
    parse_uuid(raw, field, "a survey id")
}

pub(super) async fn create_survey(
    api: &SurveyApi,
    request: Request<pb::CreateSurveyRequest>,
) -> Reply<pb::CreateSurveyResponse> {
    let t = tenant(&request, Role::Admin)?;
    let survey = request.into_inner().survey.ok_or_else(|| FieldViolation::new("survey", "is required"))?;
    check(&survey)?;
    let created = surveys::create(api.store.db(), &t, survey).await?;
    tracing::info!(survey = %created.id, "survey created");
    Ok(Response::new(pb::CreateSurveyResponse { survey: Some(created) }))
}

pub(super) async fn get_survey(
    api: &SurveyApi,
    request: Request<pb::GetSurveyRequest>,
) -> Reply<pb::GetSurveyResponse> {
    let t = tenant(&request, Role::Reader)?;
    let pb::GetSurveyRequest { id, version } = request.into_inner();
    let version = match version {
        0 => Ok(None),
        v if v > 0 => Ok(Some(v)),
        _ => Err(FieldViolation::new("version", "must not be negative")),
    };
    let (id, version) = all2(survey_id(&id, "id"), version)?;
    let survey = surveys::version(api.store.db(), &t, id, version).await?.ok_or_else(|| match version {
        None => SurveyError::not_found(format_args!("survey {id}")),
        Some(v) => SurveyError::not_found(format_args!("version {v} of survey {id}")),
    })?;
    Ok(Response::new(pb::GetSurveyResponse { survey: Some(survey) }))
}

pub(super) async fn list_surveys(
    api: &SurveyApi,
    request: Request<pb::ListSurveysRequest>,
) -> Reply<pb::ListSurveysResponse> {
    let t = tenant(&request, Role::Reader)?;
    let pb::ListSurveysRequest { page_size: size, page_token, show_archived } = request.into_inner();
    let (size, before) = all2(page_size(size, "page_size"), decode_uuid_token(&page_token, "page_token"))?;
    let mut surveys = surveys::list(api.store.db(), &t, before, size, show_archived).await?;
    let mut more = trim_page(&mut surveys, size);
    let fit = fitting(&surveys);
    if fit < surveys.len() {
        surveys.truncate(fit);
        more = true;
    }
    let next_page_token = next_page_token(more, surveys.last().map(|s| s.id.clone()));
    Ok(Response::new(pb::ListSurveysResponse { surveys, next_page_token }))
}

pub(super) async fn update_survey(
    api: &SurveyApi,
    request: Request<pb::UpdateSurveyRequest>,
) -> Reply<pb::UpdateSurveyResponse> {
    let t = tenant(&request, Role::Admin)?;
    let pb::UpdateSurveyRequest { survey, update_mask } = request.into_inner();
    let given = survey.ok_or_else(|| FieldViolation::new("survey", "is required"))?;
    let (id, paths) = all2(survey_id(&given.id, "survey.id"), UPDATABLE.paths(update_mask))?;
    let updated = surveys::update(api.store.db(), &t, id, |mut current| {
        apply(&mut current, given, &paths);
        check(&current)?;
        Ok(current)
    })
    .await?;
    tracing::info!(survey = %id, version = updated.version, "survey updated");
    Ok(Response::new(pb::UpdateSurveyResponse { survey: Some(updated) }))
}

pub(super) async fn archive_survey(
    api: &SurveyApi,
    request: Request<pb::ArchiveSurveyRequest>,
) -> Reply<pb::ArchiveSurveyResponse> {
    let t = tenant(&request, Role::Admin)?;
    let id = survey_id(&request.get_ref().id, "id")?;
    let archived = surveys::archive(api.store.db(), &t, id).await?;
    // Its triggers stop inviting. Dropped on every call, so a retry after a
    // failed drop drops it.
    api.cache.invalidate(&triggers::active_key(&t)).await?;
    Ok(Response::new(pb::ArchiveSurveyResponse { survey: Some(archived) }))
}
