//! The latest survey scores on a profile (`Profile.latest_scores`), fed by
//! the survey service's `ScoreRecorded` messages through the inbox, on both
//! backends: the answer given last wins whatever the order of arrival, a
//! redelivery changes nothing, a merge keeps the newest of each kind, a
//! merged id's score goes to the survivor and an erased id's is dropped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Utc};
use cx_proto::outbox::v1::inbox_service_client::InboxServiceClient;
use cx_proto::profile::v1::{self as pb, profile_service_client::ProfileServiceClient};
use cx_proto::survey::v1::{ScoreRecorded, SurveyType};
use cx_runtime::TenantId;
use cx_runtime::auth::Role;
use cx_runtime::registry::Registry;
use cx_runtime::store::scoped;
use cx_testkit::{Backend, Cluster, authed, token, unique_tenant};
use prost::{Message, Name};
use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter};
use tonic::Code;
use tonic::transport::Channel;

const PROFILE_ONLY: Registry = Registry::new(&[cx_profile::SERVICE]);

fn at(day: u32) -> DateTime<Utc> {
    format!("2026-11-{day:02}T10:00:00Z").parse().unwrap()
}

fn report(profile: &str, kind: SurveyType, score: i32, response: &str, day: u32) -> ScoreRecorded {
    ScoreRecorded {
        profile_id: profile.into(),
        survey_type: kind as i32,
        score,
        survey_id: "survey-1".into(),
        response_id: response.into(),
        respond_time: Some(cx_proto::timestamp(at(day))),
    }
}

struct Suite {
    cluster: Cluster,
    tenant: String,
    inbox: InboxServiceClient<Channel>,
    profiles: ProfileServiceClient<Channel>,
}

impl Suite {
    async fn start(backend: Backend) -> Self {
        let cluster = Cluster::start(PROFILE_ONLY, backend).await;
        let channel = cluster.server("profile").channel().await;
        Self {
            tenant: unique_tenant("scores"),
            inbox: InboxServiceClient::new(channel.clone()),
            profiles: ProfileServiceClient::new(channel),
            cluster,
        }
    }

    fn writer(&self) -> String {
        token(&self.tenant, Role::Writer)
    }

    async fn profile(&mut self, address: &str) -> String {
        let identity = pb::Identity { kind: pb::IdentityKind::Email as i32, value: address.into() };
        let request = pb::ResolveProfileRequest { identity: Some(identity), create_if_missing: true };
        let resolved = self.profiles.resolve_profile(authed(request, &self.writer())).await.unwrap();
        resolved.into_inner().profile.unwrap().id
    }

    /// Delivers `message` as `sender`'s outbox does, under `message_id`;
    /// returns whether it was a duplicate.
    async fn deliver_as(
        &mut self,
        sender: &str,
        message_id: &str,
        message: &ScoreRecorded,
    ) -> Result<bool, tonic::Status> {
        let mut request =
            cx_testkit::raw::forged_delivery("profile", &ScoreRecorded::full_name(), message.encode_to_vec());
        request.message_id = message_id.into();
        request.source = sender.into();
        let call = authed(request, &cx_testkit::service_token(sender, &self.tenant));
        Ok(self.inbox.deliver(call).await?.into_inner().duplicate)
    }

    async fn deliver(&mut self, message: &ScoreRecorded) {
        let id = uuid::Uuid::now_v7().to_string();
        assert!(!self.deliver_as("survey", &id, message).await.unwrap());
    }

    /// (kind, score, response) of each latest score `id` shows, read through
    /// the profile cache.
    async fn scores(&mut self, id: &str) -> Vec<(&'static str, i32, String)> {
        let request = pb::GetProfileRequest { id: id.into(), as_of: None };
        let profile = self.profiles.get_profile(authed(request, &self.writer())).await.unwrap().into_inner();
        let Some(latest) = profile.profile.unwrap().latest_scores else { return Vec::new() };
        [("nps", latest.nps), ("csat", latest.csat), ("ces", latest.ces)]
            .into_iter()
            .filter_map(|(kind, score)| score.map(|s| (kind, s.score, s.response_id)))
            .collect()
    }

    async fn stored_rows(&self, customer: &str) -> u64 {
        use cx_profile::store::entity::survey_score;
        let db = cx_runtime::store::open(&self.cluster.store, "profile").await.unwrap();
        scoped::<survey_score::Entity>(&TenantId::parse(&self.tenant).unwrap())
            .filter(survey_score::Column::CustomerId.eq(customer.parse::<uuid::Uuid>().unwrap()))
            .count(&db)
            .await
            .unwrap()
    }
}

fn row(kind: &'static str, score: i32, response: &str) -> (&'static str, i32, String) {
    (kind, score, response.to_owned())
}

async fn the_answer_given_last_is_kept_whatever_arrives_first(backend: Backend) {
    let mut s = Suite::start(backend).await;
    let ana = s.profile("ana@example.com").await;
    assert_eq!(s.scores(&ana).await, [], "no answer yet: no scores");

    // The answer of the 12th arrives before the one of the 10th.
    s.deliver(&report(&ana, SurveyType::Nps, 9, "r12", 12)).await;
    assert_eq!(s.scores(&ana).await, [row("nps", 9, "r12")]);
    s.deliver(&report(&ana, SurveyType::Nps, 3, "r10", 10)).await;
    // The profile is cached now: a new score drops the entry.
    s.deliver(&report(&ana, SurveyType::Csat, 2, "r11", 11)).await;
    assert_eq!(s.scores(&ana).await, [row("nps", 9, "r12"), row("csat", 2, "r11")]);
    s.deliver(&report(&ana, SurveyType::Nps, 6, "r13", 13)).await;
    assert_eq!(s.scores(&ana).await, [row("nps", 6, "r13"), row("csat", 2, "r11")]);

    // A redelivery is a duplicate; the same answer under another message
    // id changes nothing either.
    let again = report(&ana, SurveyType::Csat, 5, "r14", 14);
    assert!(!s.deliver_as("survey", "message-14", &again).await.unwrap());
    assert!(s.deliver_as("survey", "message-14", &again).await.unwrap());
    s.deliver(&again).await;
    assert_eq!(s.scores(&ana).await, [row("nps", 6, "r13"), row("csat", 5, "r14")]);
    assert_eq!(s.stored_rows(&ana).await, 2);

    // Only survey sends scores, and only sensible ones.
    let late = report(&ana, SurveyType::Nps, 10, "r20", 20);
    assert_eq!(s.deliver_as("journey", "forged", &late).await.unwrap_err().code(), Code::PermissionDenied);
    let bad = s.deliver_as("survey", "bad", &report(&ana, SurveyType::Csat, 6, "r21", 21)).await.unwrap_err();
    assert_eq!(
        (bad.code(), bad.message()),
        (Code::InvalidArgument, "invalid score: must be 1 to 5 for this kind of survey")
    );
    let unknown = s.deliver_as("survey", "bad-kind", &report(&ana, SurveyType::Unspecified, 6, "r22", 22)).await;
    assert_eq!(unknown.unwrap_err().code(), Code::InvalidArgument);
    assert_eq!(s.scores(&ana).await, [row("nps", 6, "r13"), row("csat", 5, "r14")]);
}

async fn a_merge_keeps_the_newest_of_each_kind_and_an_erasure_drops_them(backend: Backend) {
    let mut s = Suite::start(backend).await;
    let ana = s.profile("ana@example.com").await;
    let bea = s.profile("bea@example.com").await;
    // Ana: NPS of the 12th, CSAT of the 10th. Bea: NPS of the 15th, CSAT of
    // the 9th, CES of the 8th.
    s.deliver(&report(&ana, SurveyType::Nps, 9, "a-nps", 12)).await;
    s.deliver(&report(&ana, SurveyType::Csat, 4, "a-csat", 10)).await;
    s.deliver(&report(&bea, SurveyType::Nps, 2, "b-nps", 15)).await;
    s.deliver(&report(&bea, SurveyType::Csat, 1, "b-csat", 9)).await;
    s.deliver(&report(&bea, SurveyType::Ces, 7, "b-ces", 8)).await;
    assert_eq!(s.scores(&ana).await.len(), 2, "cached before the merge");

    let merge = pb::MergeProfilesRequest { survivor_id: ana.clone(), merged_id: bea.clone(), ..Default::default() };
    s.profiles.merge_profiles(authed(merge, &s.writer())).await.unwrap();
    // Bea's NPS (15th) beats Ana's (12th); Ana's CSAT (10th) beats Bea's
    // (9th); Bea's CES is the only one.
    let merged = [row("nps", 2, "b-nps"), row("csat", 4, "a-csat"), row("ces", 7, "b-ces")];
    assert_eq!(s.scores(&ana).await, merged);
    assert_eq!(s.stored_rows(&bea).await, 0, "nothing left under the merged id");
    // Sent later for Bea: Ana's. An older CSAT changes nothing, a newer one does.
    s.deliver(&report(&bea, SurveyType::Csat, 2, "b-old", 7)).await;
    assert_eq!(s.scores(&bea).await, merged, "the merged id shows the survivor");
    s.deliver(&report(&bea, SurveyType::Csat, 5, "b-new", 16)).await;
    assert_eq!(s.scores(&ana).await, [row("nps", 2, "b-nps"), row("csat", 5, "b-new"), row("ces", 7, "b-ces")]);

    // Erased: the scores go; one sent later for either id is dropped.
    let admin = token(&s.tenant, Role::Admin);
    let erase = pb::EraseCustomerRequest { profile_id: ana.clone() };
    let receipt = s.profiles.erase_customer(authed(erase, &admin)).await.unwrap().into_inner().erasure.unwrap();
    let profile_step = receipt.steps.iter().find(|step| step.service == "profile").unwrap();
    assert_eq!(profile_step.erased_counts.get("survey_scores"), Some(&3));
    assert_eq!(s.stored_rows(&ana).await, 0);
    s.deliver(&report(&ana, SurveyType::Nps, 8, "after", 20)).await;
    s.deliver(&report(&bea, SurveyType::Ces, 3, "after-b", 20)).await;
    assert_eq!((s.stored_rows(&ana).await, s.stored_rows(&bea).await), (0, 0));
}

cx_testkit::on_both_backends!(
    the_answer_given_last_is_kept_whatever_arrives_first,
    a_merge_keeps_the_newest_of_each_kind_and_an_erasure_drops_them,
);
