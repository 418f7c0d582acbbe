//! SubmitResponse's transaction (docs/DOMAIN.md §7.7–§7.8): a response
//! checked against the survey version it answers and its invitation, the
//! invitation marked answered, the follow-up case of an unhappy customer
//! opened, the response written, the customer's score sent to profile and
//! the day's roll-up raised — all committed together, once per client id.

use chrono::{DateTime, Utc};
use cx_proto::survey::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::deadline::Deadline;
use cx_runtime::error::{Violations, clip};
use cx_runtime::store::{Db, is_unique_violation, scoped, scoped_update};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseTransaction, QueryFilter, TransactionTrait};
use uuid::Uuid;

use super::cases::{self, Unhappy};
use super::entity::{invitation, response, survey};
use super::feeds::Feeds;
use super::responses;
use super::rollups::{self, CellKey};
use super::{Result, SurveyError};
use cx_runtime::days::day_number;

use crate::domain::aggregates::Counts;
use crate::domain::response::{Said, check};
use crate::domain::survey::SurveyType;
use crate::domain::verbatim;

/// A response as the request gave it, its shape already checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Draft {
    /// The client's id, 1 to 128 characters.
    pub id: String,
    pub survey_id: Uuid,
    /// None: anonymous, or an id that did not parse (see `anonymous`).
    pub invitation_id: Option<Uuid>,
    /// No invitation was named: an anonymous web response.
    pub anonymous: bool,
    pub score: i32,
    pub verbatim: String,
    pub answers: Vec<pb::Answer>,
    pub language: String,
    /// None: now.
    pub respond_time: Option<DateTime<Utc>>,
    /// What the client sent, digested: a retry must send the same.
    pub digest: Vec<u8>,
    /// Violations of the request's shape found before, reported with those
    /// of the survey version.
    pub violations: Violations,
}

/// How one attempt ended.
enum Outcome {
    Stored(Box<pb::Response>),
    /// The same id won meanwhile: answer as for a retry.
    Raced,
}

/// Records `draft`, or finds it recorded: the response and whether it is
/// new. The same id with other content is ALREADY_EXISTS.
pub async fn submit(db: &Db, feeds: &Feeds, t: &TenantId, draft: Draft) -> Result<(pb::Response, bool)> {
    // The loser of a race on the id finds the winner's row in the next round.
    for _ in 0..3 {
        if let Some(stored) = responses::get(db, t, &draft.id).await? {
            if stored.content_digest != draft.digest {
                return Err(SurveyError::AlreadyExists(format!(
                    "response '{}' was already recorded with other content",
                    clip(&draft.id)
                )));
            }
            return Ok((responses::to_proto(&stored)?, false));
        }
        let txn = db.begin().await?;
        match attempt(&txn, feeds, t, &draft).await {
            Ok(Outcome::Stored(response)) => {
                Deadline::check_current()?;
                txn.commit().await?;
                return Ok((*response, true));
            }
            Ok(Outcome::Raced) => txn.rollback().await?,
            Err(SurveyError::Database(err)) if is_unique_violation(&err) => txn.rollback().await?,
            Err(err) => return Err(err),
        }
    }
    Err(SurveyError::Aborted(format!("response '{}' is being recorded concurrently: retry", clip(&draft.id))))
}

/// Whether `inv` can take an answer now, and if not, why.
fn refusal(inv: &invitation::Model, draft: &Draft, at: DateTime<Utc>) -> Option<Result<Outcome>> {
    use pb::InvitationState as S;
    let state = S::try_from(i32::from(inv.state)).unwrap_or_default();
    let id = inv.id;
    let refused = match state {
        S::Suppressed => {
            SurveyError::FailedPrecondition(format!("invitation {id} was suppressed: it cannot be answered"))
        }
        S::Answered if inv.response_id.as_deref() == Some(draft.id.as_str()) => return Some(Ok(Outcome::Raced)),
        S::Answered => SurveyError::AlreadyExists(format!("invitation {id} was already answered by another response")),
        S::Expired => SurveyError::FailedPrecondition(format!("invitation {id} has expired: the answer is late")),
        _ if at >= inv.expire_at => SurveyError::FailedPrecondition(format!(
            "invitation {id} expired at {}: the answer is late",
            inv.expire_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        )),
        S::Pending | S::Sent => return None,
        S::Unspecified => SurveyError::Corrupt(format!("invitation {id} has state {}", inv.state)),
    };
    Some(Err(refused))
}

async fn attempt(txn: &DatabaseTransaction, feeds: &Feeds, t: &TenantId, draft: &Draft) -> Result<Outcome> {
    let invitation = match draft.invitation_id {
        None => None,
        Some(id) => Some(
            scoped::<invitation::Entity>(t)
                .filter(invitation::Column::Id.eq(id))
                .one(txn)
                .await?
                .ok_or_else(|| SurveyError::not_found(format_args!("invitation {id}")))?,
        ),
    };
    let survey_id = draft.survey_id;
    let row = scoped::<survey::Entity>(t)
        .filter(survey::Column::Id.eq(survey_id))
        .one(txn)
        .await?
        .ok_or_else(|| SurveyError::not_found(format_args!("survey {survey_id}")))?;
    let survey_type = SurveyType::from_code(i32::from(row.survey_type))
        .ok_or_else(|| SurveyError::Corrupt(format!("survey {survey_id} has type {}", row.survey_type)))?;
    let own = invitation.as_ref().filter(|i| i.survey_id == survey_id);
    // The invitation's version, or the current one.
    let version = own.map_or(row.version, |i| i.survey_version);
    let definition = super::surveys::version(txn, t, survey_id, Some(version))
        .await?
        .ok_or_else(|| SurveyError::Corrupt(format!("survey {survey_id} has no version {version}")))?;
    let at = draft.respond_time.unwrap_or_else(cx_runtime::store::now);

    let mut violations = draft.violations.clone();
    match &invitation {
        Some(i) if i.survey_id != survey_id => {
            violations.add("response.invitation_id", "is an invitation to another survey")
        }
        Some(i) if at < i.created_at => violations.add("response.respond_time", "is before the invitation was made"),
        None if draft.anonymous && !definition.allow_anonymous => {
            violations.add("response.invitation_id", "is required: this survey does not accept anonymous responses")
        }
        _ => {}
    }
    let said =
        Said { score: draft.score, verbatim: &draft.verbatim, answers: &draft.answers, language: &draft.language };
    let language = check(&definition, survey_type, &said, &mut violations);
    violations.finish()?;
    let language = language.unwrap_or_default();

    match &invitation {
        None if draft.anonymous && row.archived => {
            return Err(SurveyError::FailedPrecondition(format!(
                "survey {survey_id} is archived: only its open invitations can be answered"
            )));
        }
        None => {}
        Some(inv) => {
            if let Some(refused) = refusal(inv, draft, at) {
                return refused;
            }
            if !claim(txn, t, inv.id, &draft.id, at).await? {
                // Changed since it was read (answered or expired meanwhile).
                let now = scoped::<invitation::Entity>(t).filter(invitation::Column::Id.eq(inv.id)).one(txn).await?;
                let now = now.ok_or_else(|| SurveyError::not_found(format_args!("invitation {}", inv.id)))?;
                return refusal(&now, draft, at).unwrap_or(Err(SurveyError::Aborted(format!(
                    "invitation {} changed while it was answered: retry",
                    inv.id
                ))));
            }
        }
    }

    let judged = Judged { invitation, survey_type, version, at, language };
    Ok(Outcome::Stored(Box::new(record(txn, feeds, t, draft, judged).await?)))
}

/// What the checks settled about an answer.
struct Judged {
    invitation: Option<invitation::Model>,
    survey_type: SurveyType,
    version: i32,
    at: DateTime<Utc>,
    language: String,
}

/// The writes of an answer found good, its invitation already claimed: its
/// case, its row, its score for the takers of scores, its roll-up.
async fn record(
    txn: &DatabaseTransaction,
    feeds: &Feeds,
    t: &TenantId,
    draft: &Draft,
    judged: Judged,
) -> Result<pb::Response> {
    let Judged { invitation, survey_type, version, at, language } = judged;
    let survey_id = draft.survey_id;
    let customer_id = invitation.as_ref().map(|i| i.customer_id);
    let score = i16::try_from(draft.score).map_err(|_| SurveyError::Internal("checked score out of range".into()))?;
    let case_id = match customer_id {
        Some(customer) if survey_type.unhappy(draft.score) => {
            let settings = super::settings::load(txn, t).await?;
            let unhappy = Unhappy {
                response_id: draft.id.clone(),
                survey_id,
                survey_type,
                customer_id: Some(customer),
                score: draft.score,
                respond_time: at,
            };
            let id = cases::open(txn, t, &unhappy, &settings).await?;
            feeds.open_cases(txn, t, customer).await?;
            Some(id)
        }
        _ => None,
    };
    let row = response::Model {
        tenant_id: t.to_string(),
        id: draft.id.clone(),
        survey_id,
        survey_version: version,
        survey_type: survey_type.code(),
        invitation_id: invitation.as_ref().map(|i| i.id),
        customer_id,
        touchpoint_id: invitation.as_ref().map(|i| i.touchpoint_id.clone()),
        map_id: invitation.as_ref().and_then(|i| i.map_id),
        step_key: invitation.as_ref().and_then(|i| i.step_key.clone()),
        // An anonymous response comes from the web.
        channel: invitation.as_ref().map_or(cx_runtime::channel::Channel::Web.code(), |i| i.channel),
        score,
        verbatim: (!draft.verbatim.is_empty()).then(|| draft.verbatim.clone()),
        answers: responses::encode_answers(&draft.answers),
        language,
        responded_at: at,
        recorded_at: cx_runtime::store::now(),
        case_id,
        content_digest: draft.digest.clone(),
    };
    responses::insert(txn, &row, verbatim::config(&row.language)).await?;
    if let Some(customer) = customer_id {
        let scored = super::feeds::ScoreRow {
            survey_type: row.survey_type,
            score: row.score,
            survey_id,
            response_id: &row.id,
            responded_at: row.responded_at,
        };
        let recorded = super::feeds::score_recorded(customer, &scored);
        feeds.score(txn, t, &recorded).await?;
    }
    // Last: the day's cell is shared by every writer of the day.
    let key = CellKey {
        day: day_number(at),
        survey_id,
        map_id: row.map_id.unwrap_or_default(),
        step_key: row.step_key.clone().unwrap_or_default(),
        channel: row.channel,
    };
    rollups::add(txn, t, &key, row.survey_type, &Counts::of(survey_type, draft.score)).await?;
    responses::to_proto(&row)
}

/// Marks the invitation answered by `response` if it is still open: false
/// when another transaction changed it first.
async fn claim(txn: &DatabaseTransaction, t: &TenantId, id: Uuid, response: &str, at: DateTime<Utc>) -> Result<bool> {
    use pb::InvitationState as S;
    let open = [S::Pending as i16, S::Sent as i16];
    let done = scoped_update::<invitation::Entity>(t)
        .col_expr(invitation::Column::State, Expr::value(S::Answered as i16))
        .col_expr(invitation::Column::AnsweredAt, Expr::value(Some(at)))
        .col_expr(invitation::Column::ResponseId, Expr::value(Some(response.to_owned())))
        .filter(invitation::Column::Id.eq(id))
        .filter(invitation::Column::State.is_in(open))
        .filter(invitation::Column::ResponseId.is_null())
        .exec(txn)
        .await?;
    Ok(done.rows_affected == 1)
}
