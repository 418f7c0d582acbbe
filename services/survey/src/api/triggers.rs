//! Triggers: the rules on touchpoints that invite customers to a survey
//! (docs/DOMAIN.md §7.6). Every change drops the tenant's cached active
//! triggers after its commit, and is acknowledged only once that is done.

use cx_proto::survey::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::auth::{Role, tenant};
use cx_runtime::error::{FieldViolation, all2};
use cx_runtime::input::parse_uuid;
use cx_runtime::page::{decode_uuid_token, next_page_token, page_size, trim_page};
use tonic::{Request, Response};
use uuid::Uuid;

use super::{Reply, SurveyApi};
use crate::domain::validate::trigger::{UPDATABLE, apply, check};
use crate::store::{SurveyError, surveys, triggers};

fn trigger_id(raw: &str, field: &str) -> Result<Uuid, FieldViolation> {
    parse_uuid(raw, field, "a trigger id")
}

impl SurveyApi {
    async fn triggers_changed(&self, t: &TenantId) -> Result<(), tonic::Status> {
        Ok(self.cache.invalidate(&triggers::active_key(t)).await?)
    }
}

pub(super) async fn create_trigger(
    api: &SurveyApi,
    request: Request<pb::CreateTriggerRequest>,
) -> Reply<pb::CreateTriggerResponse> {
    let t = tenant(&request, Role::Admin)?;
    let trigger = request.into_inner().trigger.ok_or_else(|| FieldViolation::new("trigger", "is required"))?;
    let survey = parse_uuid(&trigger.survey_id, "trigger.survey_id", "a survey id");
    let (survey, trigger) = all2(survey, check(trigger))?;
    let created = triggers::create(api.store.db(), &t, survey, trigger).await?;
    api.triggers_changed(&t).await?;
    tracing::info!(trigger = %created.id, survey = %survey, "trigger created");
    Ok(Response::new(pb::CreateTriggerResponse { trigger: Some(created) }))
}

pub(super) async fn get_trigger(
    api: &SurveyApi,
    request: Request<pb::GetTriggerRequest>,
) -> Reply<pb::GetTriggerResponse> {
    let t = tenant(&request, Role::Reader)?;
    let id = trigger_id(&request.get_ref().id, "id")?;
    let trigger = triggers::get(api.store.db(), &t, id)
        .await?
        .ok_or_else(|| SurveyError::not_found(format_args!("trigger {id}")))?;
    Ok(Response::new(pb::GetTriggerResponse { trigger: Some(trigger) }))
}

pub(super) async fn list_triggers(
    api: &SurveyApi,
    request: Request<pb::ListTriggersRequest>,
) -> Reply<pb::ListTriggersResponse> {
    let t = tenant(&request, Role::Reader)?;
    let pb::ListTriggersRequest { survey_id, page_size: size, page_token } = request.into_inner();
    let survey = match survey_id.as_str() {
        "" => Ok(None),
        raw => parse_uuid(raw, "survey_id", "a survey id").map(Some),
    };
    let (survey, (size, after)) =
        all2(survey, all2(page_size(size, "page_size"), decode_uuid_token(&page_token, "page_token")))?;
    let db = api.store.db();
    if let Some(survey) = survey
        && surveys::archived(db, &t, survey).await?.is_none()
    {
        return Err(SurveyError::not_found(format_args!("survey {survey}")).into());
    }
    let mut triggers = triggers::list(db, &t, survey, after, size).await?;
    let more = trim_page(&mut triggers, size);
    let next_page_token = next_page_token(more, triggers.last().map(|t| t.id.clone()));
    Ok(Response::new(pb::ListTriggersResponse { triggers, next_page_token }))
}

pub(super) async fn update_trigger(
    api: &SurveyApi,
    request: Request<pb::UpdateTriggerRequest>,
) -> Reply<pb::UpdateTriggerResponse> {
    let t = tenant(&request, Role::Admin)?;
    let pb::UpdateTriggerRequest { trigger, update_mask } = request.into_inner();
    let given = trigger.ok_or_else(|| FieldViolation::new("trigger", "is required"))?;
    let (id, paths) = all2(trigger_id(&given.id, "trigger.id"), UPDATABLE.paths(update_mask))?;
    let updated = triggers::update(api.store.db(), &t, id, |mut current| {
        apply(&mut current, given, &paths);
        Ok(check(current)?)
    })
    .await?;
    api.triggers_changed(&t).await?;
    Ok(Response::new(pb::UpdateTriggerResponse { trigger: Some(updated) }))
}

pub(super) async fn delete_trigger(
    api: &SurveyApi,
    request: Request<pb::DeleteTriggerRequest>,
) -> Reply<pb::DeleteTriggerResponse> {
    let t = tenant(&request, Role::Admin)?;
    let id = trigger_id(&request.get_ref().id, "id")?;
    triggers::delete(api.store.db(), &t, id).await?;
    api.triggers_changed(&t).await?;
    Ok(Response::new(pb::DeleteTriggerResponse {}))
}
