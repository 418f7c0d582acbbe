//! The closed loop: follow-up cases of unhappy answers (docs/DOMAIN.md
//! §7.10). Readers read and report; writers assign, comment, resolve and
//! reopen.

use chrono::{DateTime, Utc};
use cx_proto::survey::v1 as pb;
use cx_runtime::auth::{Role, caller, tenant};
use cx_runtime::error::{FieldViolation, all2, all3};
use cx_runtime::input::{optional_uuid, parse_uuid};
use cx_runtime::page::{decode_token, encode_token, page_size, trim_page};
use tonic::{Request, Response};
use uuid::Uuid;

use super::{Reply, SurveyApi};
use crate::domain::case::{self as rules, Action, CaseState};
use crate::store::cases::{self, CaseFilter, CaseRecord};
use cx_runtime::days;
use cx_runtime::stats::{share, wilson};

/// Longest owner, comment and note, in characters (the proto's limits).
const MAX_OWNER: usize = 200;
const MAX_TEXT: usize = 4_000;
const MAX_ROOT_CAUSE: usize = 100;

fn duration(d: chrono::Duration) -> prost_types::Duration {
    let seconds = d.num_seconds();
    let nanos = (d - chrono::Duration::seconds(seconds)).num_nanoseconds().unwrap_or(0);
    prost_types::Duration { seconds, nanos: i32::try_from(nanos).unwrap_or(0) }
}

/// A case as clients read it, its overdue flag as of `now`.
pub(crate) fn case_to_proto(case: &CaseRecord, now: DateTime<Utc>) -> pb::FollowUpCase {
    let p = &case.progress;
    let since = |at: Option<DateTime<Utc>>| at.map(|at| duration(rules::since_response(case.respond_at, at)));
    pb::FollowUpCase {
        id: case.id.to_string(),
        response_id: case.response_id.clone(),
        survey_id: case.survey_id.to_string(),
        survey_type: i32::from(case.survey_type.code()),
        customer_id: case.customer_id.map(|c| c.to_string()).unwrap_or_default(),
        score: case.score,
        state: i32::from(p.state.code()),
        owner: p.owner.clone().unwrap_or_default(),
        due_time: Some(cx_proto::timestamp(case.due_at)),
        create_time: Some(cx_proto::timestamp(case.created_at)),
        first_action_time: p.first_action_at.map(cx_proto::timestamp),
        resolve_time: p.resolved_at.map(cx_proto::timestamp),
        root_cause: p.root_cause.clone().unwrap_or_default(),
        resolution_note: p.resolution_note.clone().unwrap_or_default(),
        reopen_count: p.reopen_count,
        comments: case
            .comments
            .iter()
            .map(|c| pb::CaseComment {
                author: c.author.clone(),
                text: c.text.clone(),
                create_time: Some(cx_proto::timestamp(c.created_at)),
            })
            .collect(),
        overdue: rules::overdue(p.state, case.due_at, now),
        time_to_first_action: since(p.first_action_at),
        time_to_resolution: since(p.resolved_at),
        respond_time: Some(cx_proto::timestamp(case.respond_at)),
    }
}

/// A text field of at most `max` characters; a required one not blank.
fn text(raw: String, field: &str, max: usize, required: bool) -> Result<String, FieldViolation> {
    if required && raw.trim().is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    if raw.chars().count() > max {
        return Err(FieldViolation::new(field, format!("has more than {max} characters")));
    }
    Ok(raw)
}

fn case_id(raw: &str) -> Result<Uuid, FieldViolation> {
    parse_uuid(raw, "id", "a case id")
}

/// `(due µs, id)` of the last case of a page.
fn page_token(case: &CaseRecord) -> String {
    encode_token(&format!("{}/{}", case.due_at.timestamp_micros(), case.id))
}

fn parse_page_token(token: &str) -> Result<Option<(DateTime<Utc>, Uuid)>, FieldViolation> {
    let bad = || FieldViolation::new("page_token", "is not a token this server issued");
    let Some(raw) = decode_token(token, "page_token")? else { return Ok(None) };
    let (micros, id) = raw.split_once('/').ok_or_else(bad)?;
    let due = cx_runtime::page::token_instant(micros).ok_or_else(bad)?;
    Ok(Some((due, Uuid::parse_str(id).map_err(|_| bad())?)))
}

/// Applies a writer's action to the case and answers it.
async fn act(
    api: &SurveyApi,
    t: &cx_runtime::TenantId,
    author: &str,
    id: Uuid,
    action: Action,
) -> Result<pb::FollowUpCase, tonic::Status> {
    let now = cx_runtime::store::now();
    let case = cases::act(api.store.db(), api.store.feeds(), t, id, &action, author, now).await?;
    api.cache.advance_generation(t, crate::NAME).await?;
    Ok(case_to_proto(&case, now))
}

pub(super) async fn get_case(api: &SurveyApi, request: Request<pb::GetCaseRequest>) -> Reply<pb::GetCaseResponse> {
    let t = tenant(&request, Role::Reader)?;
    let id = case_id(&request.get_ref().id)?;
    let case = cases::get(api.store.db(), &t, id).await?;
    Ok(Response::new(pb::GetCaseResponse { case: Some(case_to_proto(&case, cx_runtime::store::now())) }))
}

pub(super) async fn list_cases(
    api: &SurveyApi,
    request: Request<pb::ListCasesRequest>,
) -> Reply<pb::ListCasesResponse> {
    let t = tenant(&request, Role::Reader)?;
    let pb::ListCasesRequest { state, owner, overdue_only, survey_id, customer_id, page_size: size, page_token: token } =
        request.into_inner();
    let state = match state {
        0 => Ok(None),
        code => CaseState::from_code(code).map(Some).ok_or_else(|| FieldViolation::new("state", "is not a case state")),
    };
    let owner = text(owner, "owner", MAX_OWNER, false).map(|o| (!o.is_empty()).then_some(o));
    let ((state, owner), (survey_id, customer_id), (size, after)) = all3(
        all2(state, owner),
        all2(
            optional_uuid(&survey_id, "survey_id", "a survey id"),
            optional_uuid(&customer_id, "customer_id", "a profile id"),
        ),
        all2(page_size(size, "page_size"), parse_page_token(&token)),
    )?;
    let filter = CaseFilter { state, owner, overdue_only, survey_id, customer_id };
    let now = cx_runtime::store::now();
    let mut rows = cases::list(api.store.db(), &t, &filter, after, size, now).await?;
    let more = trim_page(&mut rows, size);
    let next_page_token = if more { rows.last().map(page_token).unwrap_or_default() } else { String::new() };
    Ok(Response::new(pb::ListCasesResponse {
        cases: rows.iter().map(|c| case_to_proto(c, now)).collect(),
        next_page_token,
    }))
}

pub(super) async fn assign_case(
    api: &SurveyApi,
    request: Request<pb::AssignCaseRequest>,
) -> Reply<pb::AssignCaseResponse> {
    let t = tenant(&request, Role::Writer)?;
    let author = caller(&request)?.subject.clone();
    let pb::AssignCaseRequest { id, owner } = request.into_inner();
    let (id, owner) = all2(case_id(&id), text(owner, "owner", MAX_OWNER, true))?;
    let case = act(api, &t, &author, id, Action::Assign { owner }).await?;
    Ok(Response::new(pb::AssignCaseResponse { case: Some(case) }))
}

pub(super) async fn comment_case(
    api: &SurveyApi,
    request: Request<pb::CommentCaseRequest>,
) -> Reply<pb::CommentCaseResponse> {
    let t = tenant(&request, Role::Writer)?;
    let author = caller(&request)?.subject.clone();
    let pb::CommentCaseRequest { id, text: raw } = request.into_inner();
    let (id, body) = all2(case_id(&id), text(raw, "text", MAX_TEXT, true))?;
    let case = act(api, &t, &author, id, Action::Comment { text: body }).await?;
    Ok(Response::new(pb::CommentCaseResponse { case: Some(case) }))
}

pub(super) async fn resolve_case(
    api: &SurveyApi,
    request: Request<pb::ResolveCaseRequest>,
) -> Reply<pb::ResolveCaseResponse> {
    let t = tenant(&request, Role::Writer)?;
    let author = caller(&request)?.subject.clone();
    let pb::ResolveCaseRequest { id, root_cause, note } = request.into_inner();
    let (id, root_cause, note) =
        all3(case_id(&id), text(root_cause, "root_cause", MAX_ROOT_CAUSE, true), text(note, "note", MAX_TEXT, false))?;
    let settings = crate::store::settings::load(api.store.db(), &t).await?;
    if !settings.root_causes.contains(&root_cause) {
        return Err(FieldViolation::new("root_cause", "is not one of the tenant's root causes").into());
    }
    let case = act(api, &t, &author, id, Action::Resolve { root_cause, note }).await?;
    Ok(Response::new(pb::ResolveCaseResponse { case: Some(case) }))
}

pub(super) async fn reopen_case(
    api: &SurveyApi,
    request: Request<pb::ReopenCaseRequest>,
) -> Reply<pb::ReopenCaseResponse> {
    let t = tenant(&request, Role::Writer)?;
    let author = caller(&request)?.subject.clone();
    let pb::ReopenCaseRequest { id, reason } = request.into_inner();
    let (id, reason) = all2(case_id(&id), text(reason, "reason", MAX_TEXT, true))?;
    let case = act(api, &t, &author, id, Action::Reopen { reason }).await?;
    Ok(Response::new(pb::ReopenCaseResponse { case: Some(case) }))
}

pub(super) async fn get_case_report(
    api: &SurveyApi,
    request: Request<pb::GetCaseReportRequest>,
) -> Reply<pb::GetCaseReportResponse> {
    let t = tenant(&request, Role::Reader)?;
    let pb::GetCaseReportRequest { start_day, end_day, survey_id } = request.into_inner();
    let ((first, last), survey) =
        all2(days::range(&start_day, &end_day), optional_uuid(&survey_id, "survey_id", "a survey id"))?;
    let report = cases::report(api.store.db(), &t, first, last, survey, cx_runtime::store::now()).await?;
    let (low, high) = wilson(report.acted_within_sla, report.opened);
    Ok(Response::new(pb::GetCaseReportResponse {
        opened: report.opened,
        acted_within_sla: report.acted_within_sla,
        within_sla_share: share(report.acted_within_sla, report.opened),
        within_sla_low: low,
        within_sla_high: high,
        resolved: report.resolved,
        overdue: report.overdue,
        median_time_to_first_action: report.median_time_to_first_action.map(duration),
        median_time_to_resolution: report.median_time_to_resolution.map(duration),
        by_root_cause: report.by_root_cause.into_iter().collect(),
    }))
}
