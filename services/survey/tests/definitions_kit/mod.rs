//! The survey service alone on a loopback server (a [`Cluster`] of one: it
//! calls no other service for its definitions), a token per role, and the
//! surveys and triggers the definition tests start from.

#![allow(dead_code)]

use cx_proto::common::v1::Channel;
use cx_proto::survey::v1 as pb;
use cx_proto::survey::v1::survey_service_client::SurveyServiceClient;
use cx_runtime::error::field_violations;
use cx_runtime::registry::Registry;
pub use cx_testkit::Backend;
use cx_testkit::{Cluster, Tokens, authed};
use tonic::transport::Channel as GrpcChannel;

pub const SERVICES: Registry = Registry::new(&[cx_survey::SERVICE]);

pub struct Suite {
    pub cluster: Cluster,
    pub who: Tokens,
}

pub async fn suite(backend: Backend) -> Suite {
    Suite { cluster: Cluster::start(SERVICES, backend).await, who: Tokens::new("survey") }
}

impl std::ops::Deref for Suite {
    type Target = Tokens;

    /// `s.admin`, `s.tenant`…: the tokens are the suite's.
    fn deref(&self) -> &Tokens {
        &self.who
    }
}

impl Suite {
    pub async fn client(&self) -> SurveyServiceClient<GrpcChannel> {
        SurveyServiceClient::new(self.cluster.server("survey").channel().await)
    }

    /// Creates `survey` as the tenant's admin.
    pub async fn create(&self, survey: pb::Survey) -> pb::Survey {
        let request = authed(pb::CreateSurveyRequest { survey: Some(survey) }, &self.admin);
        self.client().await.create_survey(request).await.unwrap().into_inner().survey.unwrap()
    }

    /// Creates `trigger` as the tenant's admin.
    pub async fn create_trigger(&self, trigger: pb::Trigger) -> pb::Trigger {
        let request = authed(pb::CreateTriggerRequest { trigger: Some(trigger) }, &self.admin);
        self.client().await.create_trigger(request).await.unwrap().into_inner().trigger.unwrap()
    }
}

pub fn choice(id: &str, text: &str) -> pb::Choice {
    pb::Choice { id: id.into(), text: text.into() }
}

/// An NPS survey by email, in English with a French translation, asking
/// why (single choice), how fast (scale 1–5) and what else (text).
pub fn nps_survey(name: &str) -> pb::Survey {
    pb::Survey {
        name: name.into(),
        r#type: pb::SurveyType::Nps as i32,
        language: "en".into(),
        title: "Your delivery".into(),
        score_question: "How likely are you to recommend us to a friend?".into(),
        verbatim_enabled: true,
        verbatim_question: "Anything to add?".into(),
        questions: vec![
            pb::Question {
                id: "reason".into(),
                kind: pb::QuestionKind::SingleChoice as i32,
                text: "What mattered most?".into(),
                required: true,
                choices: vec![choice("price", "Price"), choice("speed", "Speed"), choice("care", "Care")],
                ..Default::default()
            },
            pb::Question {
                id: "speed".into(),
                kind: pb::QuestionKind::Scale as i32,
                text: "How fast was it?".into(),
                scale_min: 1,
                scale_max: 5,
                ..Default::default()
            },
            pb::Question {
                id: "else".into(),
                kind: pb::QuestionKind::Text as i32,
                text: "What else?".into(),
                ..Default::default()
            },
        ],
        channel: Channel::Email as i32,
        translations: vec![pb::Translation {
            language: "fr".into(),
            title: "Votre livraison".into(),
            score_question: "Nous recommanderiez-vous à un ami ?".into(),
            questions: [("reason".to_owned(), "Qu'est-ce qui a compté ?".to_owned())].into(),
            choices: [("reason/price".to_owned(), "Le prix".to_owned())].into(),
            ..Default::default()
        }],
        allow_anonymous: false,
        ..Default::default()
    }
}

pub fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() })
}

pub fn seconds(seconds: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration { seconds, nanos: 0 })
}

/// The field violations of a status, as (field, description).
pub fn violations(status: &tonic::Status) -> Vec<(String, String)> {
    field_violations(status).into_iter().map(|v| (v.field, v.description)).collect()
}

/// The violations a refusal must carry, as (field, description).
pub type Expected<'a> = Vec<(&'a str, &'a str)>;

/// (field, description) pairs as owned strings.
pub fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected.iter().map(|(f, d)| ((*f).to_owned(), (*d).to_owned())).collect()
}
