//! What the response and aggregate tests share: the survey service alone on
//! loopback ([`Cluster`]) with a direct connection to its store, surveys and
//! invitations written straight into it, and responses to send.

#![allow(dead_code)]

use chrono::{DateTime, Duration, Utc};
use cx_proto::common::v1::Channel;
use cx_proto::survey::v1 as pb;
use cx_proto::survey::v1::survey_service_client::SurveyServiceClient;
use cx_runtime::TenantId;
use cx_runtime::auth::Role;
use cx_runtime::registry::Registry;
use cx_runtime::store::Db;
use cx_survey::store::entity::invitation;
use cx_survey::store::surveys;
pub use cx_testkit::Backend;
use cx_testkit::Cluster;
use sea_orm::{ActiveValue::Set, EntityTrait};
use tonic::transport::Channel as GrpcChannel;
use uuid::Uuid;

// Profile takes the scores survey sends.
pub const SERVICES: Registry = Registry::new(&[cx_profile::SERVICE, cx_survey::SERVICE]);

pub struct Suite {
    pub cluster: Cluster,
    /// The survey service's own store, as the service opened it.
    pub db: Db,
    pub t: TenantId,
    pub reader: String,
    pub writer: String,
}

pub async fn suite(backend: Backend) -> Suite {
    let cluster = Cluster::start(SERVICES, backend).await;
    let db = cx_runtime::store::open(&cluster.store, "survey").await.unwrap();
    let tenant = cx_testkit::unique_tenant("survey");
    let reader = cx_testkit::token(&tenant, Role::Reader);
    let writer = cx_testkit::token(&tenant, Role::Writer);
    Suite { cluster, db, t: TenantId::parse(&tenant).unwrap(), reader, writer }
}

impl Suite {
    pub async fn client(&self) -> SurveyServiceClient<GrpcChannel> {
        SurveyServiceClient::new(self.cluster.server("survey").channel().await)
    }

    /// Submits `response` as a writer.
    pub async fn submit(&self, response: pb::Response) -> Result<pb::SubmitResponseResponse, tonic::Status> {
        let request = pb::SubmitResponseRequest { response: Some(response) };
        self.client().await.submit_response(cx_testkit::authed(request, &self.writer)).await.map(|r| r.into_inner())
    }
}

pub fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// A survey of `survey_type`, version 1, in English with a Portuguese
/// translation; NPS surveys ask a required single-choice reason.
pub fn survey(survey_type: pb::SurveyType, allow_anonymous: bool) -> pb::Survey {
    let reason = pb::Question {
        id: "reason".into(),
        kind: pb::QuestionKind::SingleChoice as i32,
        text: "Why?".into(),
        required: true,
        choices: ["price", "service"].map(|c| pb::Choice { id: c.into(), text: c.into() }).to_vec(),
        scale_min: 0,
        scale_max: 0,
    };
    pb::Survey {
        id: Uuid::now_v7().to_string(),
        name: "after delivery".into(),
        r#type: survey_type as i32,
        version: 1,
        language: "en".into(),
        title: "How did we do?".into(),
        score_question: "How likely…".into(),
        verbatim_enabled: true,
        verbatim_question: "Tell us more".into(),
        questions: if survey_type == pb::SurveyType::Nps { vec![reason] } else { vec![] },
        channel: Channel::Email as i32,
        translations: vec![pb::Translation { language: "fr".into(), ..Default::default() }],
        allow_anonymous,
        state: pb::SurveyState::Active as i32,
        create_time: Some(cx_proto::timestamp(at("2026-01-01T00:00:00Z"))),
        ..Default::default()
    }
}

/// Stores `survey` (version 1); its id.
pub async fn create(db: &Db, t: &TenantId, survey: &pb::Survey) -> Uuid {
    surveys::insert(db, t, survey).await.unwrap();
    survey.id.parse().unwrap()
}

/// An invitation as a trigger would have made it.
#[derive(Clone, Debug)]
pub struct Invite {
    pub survey: Uuid,
    pub version: i32,
    pub customer: Uuid,
    pub map: Option<Uuid>,
    pub step: Option<String>,
    pub channel: Channel,
    pub state: pb::InvitationState,
    pub created: DateTime<Utc>,
    pub expires: DateTime<Utc>,
}

impl Invite {
    /// Sent on 2026-02-20, open until 2026-12-31.
    pub fn to(survey: Uuid, customer: Uuid) -> Self {
        Self {
            survey,
            version: 1,
            customer,
            map: Some(Uuid::from_u128(0x3A9)),
            step: Some("delivery".into()),
            channel: Channel::Email,
            state: pb::InvitationState::Sent,
            created: at("2026-02-20T08:00:00Z"),
            expires: at("2026-12-31T00:00:00Z"),
        }
    }
}

/// Stores the invitation; its id.
pub async fn invite(db: &Db, t: &TenantId, i: &Invite) -> Uuid {
    let id = Uuid::now_v7();
    let reason = if i.state == pb::InvitationState::Suppressed { pb::SuppressionReason::Budget as i16 } else { 0 };
    invitation::Entity::insert(invitation::ActiveModel {
        tenant_id: Set(t.to_string()),
        id: Set(id),
        survey_id: Set(i.survey),
        survey_version: Set(i.version),
        trigger_id: Set(Uuid::from_u128(0x7819)),
        customer_id: Set(i.customer),
        touchpoint_id: Set(format!("tp-{id}")),
        map_id: Set(i.map),
        step_key: Set(i.step.clone()),
        channel: Set(i.channel as i16),
        state: Set(i.state as i16),
        reason: Set(reason),
        created_at: Set(i.created),
        send_after: Set(i.created),
        sent_at: Set((i.state == pb::InvitationState::Sent).then_some(i.created)),
        expire_at: Set(i.expires),
        answered_at: Set(None),
        response_id: Set(None),
    })
    .exec(db)
    .await
    .unwrap();
    id
}

/// A response of `id` to `survey` with `score`, answered at `when`.
pub fn answer(id: &str, survey: Uuid, invitation: Option<Uuid>, score: i32, when: &str) -> pb::Response {
    pb::Response {
        id: id.into(),
        survey_id: survey.to_string(),
        invitation_id: invitation.map(|i| i.to_string()).unwrap_or_default(),
        score,
        respond_time: Some(cx_proto::timestamp(at(when))),
        ..Default::default()
    }
}

/// The reason answer NPS surveys require.
pub fn reason(choice: &str) -> pb::Answer {
    pb::Answer { question_id: "reason".into(), choice_ids: vec![choice.into()], ..Default::default() }
}

/// Days before `at` (whole days).
pub fn days_before(when: DateTime<Utc>, days: i64) -> DateTime<Utc> {
    when - Duration::days(days)
}
