//! A customer's survey data across the services (docs/DOMAIN.md §6):
//! profile, journey and survey each on its own loopback server, on
//! PostgreSQL and SQLite. Profile's `ExportCustomerData` streams its own
//! records, then journey's touchpoints and survey's records of the customer
//! (invitations, responses, cases) and of the customer merged into her;
//! `EraseCustomer` leaves survey's roll-ups equal to a scan of the
//! (anonymised) responses, and no row of survey's schema names her, its
//! outbox included.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod responding;

use cx_proto::common::v1::{Channel, Initiator, InteractionKind};
use cx_proto::journey::v1 as journey;
use cx_proto::journey::v1::journey_service_client::JourneyServiceClient;
use cx_proto::profile::v1 as profile;
use cx_proto::profile::v1::export_customer_data_response::Record;
use cx_proto::profile::v1::profile_service_client::ProfileServiceClient;
use cx_proto::survey::v1 as pb;
use cx_proto::survey::v1::survey_service_client::SurveyServiceClient;
use cx_runtime::TenantId;
use cx_runtime::auth::Role;
use cx_runtime::outbox::dispatcher::all_messages;
use cx_runtime::registry::Registry;
use cx_runtime::store::Db;
use cx_survey::store::responses::{self, Owner};
use cx_survey::store::rollups;
use cx_testkit::{Backend, Cluster, authed, eventually};
use responding::{Invite, answer, at, create, invite, reason, survey};
use tonic::transport::Channel as GrpcChannel;
use uuid::Uuid;

cx_testkit::on_both_backends!(an_export_has_every_services_records_and_an_erasure_leaves_only_counts);

const SERVICES: Registry = Registry::new(&[cx_profile::SERVICE, cx_journey::SERVICE, cx_survey::SERVICE]);
/// 1–31 March 2026 as day numbers.
const MARCH: (i32, i32) = (20_513, 20_543);

struct Suite {
    cluster: Cluster,
    /// Survey's own store.
    survey_db: Db,
    t: TenantId,
    writer: String,
    admin: String,
}

impl Suite {
    async fn start(backend: Backend) -> Self {
        let cluster = Cluster::start(SERVICES, backend).await;
        let survey_db = cx_runtime::store::open(&cluster.store, "survey").await.unwrap();
        let tenant = cx_testkit::unique_tenant("data");
        let (writer, admin) = (cx_testkit::token(&tenant, Role::Writer), cx_testkit::token(&tenant, Role::Admin));
        Self { cluster, survey_db, t: TenantId::parse(&tenant).unwrap(), writer, admin }
    }

    async fn profiles(&self) -> ProfileServiceClient<GrpcChannel> {
        ProfileServiceClient::new(self.cluster.server("profile").channel().await)
    }

    /// The customer of `email`, made by a touchpoint of hers on the web.
    async fn customer(&self, email: &str, touchpoint: &str) -> String {
        let identity = profile::Identity { kind: profile::IdentityKind::Email as i32, value: email.into() };
        let tp = journey::Touchpoint {
            id: touchpoint.into(),
            customer: Some(journey::touchpoint::Customer::Identity(identity.clone())),
            channel: Channel::Web as i32,
            occur_time: Some(cx_proto::timestamp(at("2026-03-01T09:00:00Z"))),
            kind: InteractionKind::Informative as i32,
            initiator: Initiator::Pull as i32,
            ..Default::default()
        };
        let request = journey::IngestTouchpointsRequest { touchpoints: vec![tp], all_or_nothing: true };
        let mut journey = JourneyServiceClient::new(self.cluster.server("journey").channel().await);
        let stored = journey.ingest_touchpoints(authed(request, &self.writer)).await.unwrap().into_inner();
        assert_eq!(stored.accepted, 1);
        let request = profile::ResolveProfileRequest { identity: Some(identity), create_if_missing: false };
        let resolved = self.profiles().await.resolve_profile(authed(request, &self.writer)).await.unwrap();
        resolved.into_inner().profile.unwrap().id
    }

    /// `customer` invited to `survey` answers `score` at `when`.
    async fn answers(&self, survey: Uuid, customer: &str, id: &str, score: i32, when: &str) -> pb::Response {
        let invitation = invite(&self.survey_db, &self.t, &Invite::to(survey, customer.parse().unwrap())).await;
        let mut response = answer(id, survey, Some(invitation), score, when);
        response.verbatim = format!("said by {customer}");
        response.answers = vec![reason("service")];
        let request = pb::SubmitResponseRequest { response: Some(response) };
        let mut client = SurveyServiceClient::new(self.cluster.server("survey").channel().await);
        client.submit_response(authed(request, &self.writer)).await.unwrap().into_inner().response.unwrap()
    }

    async fn export(&self, id: &str) -> Vec<profile::ExportCustomerDataResponse> {
        let request = profile::ExportCustomerDataRequest { profile_id: id.into() };
        let mut stream = self.profiles().await.export_customer_data(authed(request, &self.admin)).await.unwrap();
        let mut records = Vec::new();
        while let Some(message) = stream.get_mut().message().await.unwrap() {
            records.push(message);
        }
        records
    }

    /// Survey's outbox rows whose payload names `id`, in any state.
    async fn outbox_mentions(&self, id: &str) -> usize {
        let rows = all_messages(&self.survey_db, &self.t).await.unwrap();
        rows.iter().filter(|m| m.payload.windows(id.len()).any(|w| w == id.as_bytes())).count()
    }

    /// Survey's roll-up cells of March, checked equal to the scan.
    async fn rollups(&self) -> Vec<rollups::Cell> {
        let cells = rollups::cells(&self.survey_db, &self.t, MARCH.0, MARCH.1).await.unwrap();
        assert_eq!(responses::scan_rollups(&self.survey_db, &self.t, MARCH.0, MARCH.1).await.unwrap(), cells);
        cells
    }
}

/// A record of an export: its service and what it is.
fn described(record: &profile::ExportCustomerDataResponse) -> (String, String) {
    let what = match record.record.as_ref().unwrap() {
        Record::Profile(_) => "profile".to_owned(),
        Record::ServiceRecord(any) => match any.type_url.as_str() {
            "/cx.journey.v1.Touchpoint" => format!("touchpoint {}", any.to_msg::<journey::Touchpoint>().unwrap().id),
            "/cx.survey.v1.Invitation" => {
                format!("invitation answered by {}", any.to_msg::<pb::Invitation>().unwrap().response_id)
            }
            "/cx.survey.v1.Response" => format!("response {}", any.to_msg::<pb::Response>().unwrap().id),
            "/cx.survey.v1.FollowUpCase" => {
                format!("case of {}", any.to_msg::<pb::FollowUpCase>().unwrap().response_id)
            }
            other => other.to_owned(),
        },
        Record::MergedProfileId(_) => "merged id".to_owned(),
        _ => "other profile record".to_owned(),
    };
    (record.source_service.clone(), what)
}

async fn an_export_has_every_services_records_and_an_erasure_leaves_only_counts(backend: Backend) {
    let s = Suite::start(backend).await;
    let (dana, eve) = (s.customer("dana@example.com", "web-d").await, s.customer("eve@example.com", "web-e").await);
    let nps = create(&s.survey_db, &s.t, &survey(pb::SurveyType::Nps, false)).await;
    // Dana is a detractor (a case); Eve, merged into her below, a promoter.
    let dana_said = s.answers(nps, &dana, "dana-1", 2, "2026-03-02T10:00:00Z").await;
    assert!(!dana_said.case_id.is_empty());
    s.answers(nps, &eve, "eve-1", 10, "2026-03-03T10:00:00Z").await;
    let before = s.rollups().await;
    // Two cells of NPS answers by email at map 0x3A9's delivery step:
    // 2 March (1 detractor) and 3 March (1 promoter).
    assert_eq!(
        before.iter().map(|c| (c.key.day, c.counts.n, c.counts.detractors)).collect::<Vec<_>>(),
        [(20_514, 1, 1), (20_515, 1, 0)]
    );

    let merge =
        profile::MergeProfilesRequest { survivor_id: dana.clone(), merged_id: eve.clone(), ..Default::default() };
    s.profiles().await.merge_profiles(authed(merge, &s.admin)).await.unwrap();
    let survivor: Uuid = dana.parse().unwrap();
    let eves = || responses::list(&s.survey_db, &s.t, Owner::Customer(survivor), None, 10);
    eventually("survey learns of the merge", || async { eves().await.unwrap().len() }, |n| *n == 2).await;

    let records: Vec<(String, String)> = s.export(&dana).await.iter().map(described).collect();
    let from = |service: &str, what: &str| (service.to_owned(), what.to_owned());
    let theirs: Vec<_> = records.iter().filter(|(service, _)| service != "profile").cloned().collect();
    assert_eq!(records[0], from("profile", "profile"));
    assert!(records.contains(&from("profile", "merged id")));
    // After profile's own records: journey's (the one of Eve is Dana's
    // since the merge; same time, id descending), then survey's.
    assert_eq!(
        theirs,
        [
            from("journey", "touchpoint web-e"),
            from("journey", "touchpoint web-d"),
            from("survey", "invitation answered by dana-1"),
            from("survey", "invitation answered by eve-1"),
            from("survey", "response dana-1"),
            from("survey", "response eve-1"),
            from("survey", "case of dana-1"),
        ]
    );
    assert_eq!(&records[records.len() - theirs.len()..], &theirs[..], "profile's records come first");

    // The score sent to profile names Dana in survey's outbox.
    assert_eq!(s.outbox_mentions(&dana).await, 1);
    let erase = profile::EraseCustomerRequest { profile_id: dana.clone() };
    let job = s.profiles().await.erase_customer(authed(erase, &s.admin)).await.unwrap().into_inner();
    let id = job.erasure.unwrap().id;
    let read = || async {
        let request = profile::GetErasureRequest { id: id.clone() };
        s.profiles().await.get_erasure(authed(request, &s.admin)).await.unwrap().into_inner().erasure.unwrap()
    };
    let done = eventually("the erasure completes", read, |e| e.state == profile::ErasureState::Completed as i32);
    let done = done.await;
    let step = done.steps.iter().find(|step| step.service == "survey").unwrap();
    // Dana's and Eve's invitations deleted and answers anonymised, Dana's
    // case deleted, the merge forgotten.
    let counts: Vec<(&str, i64)> = step.erased_counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let mut counts = counts;
    counts.sort_unstable();
    assert_eq!(
        counts,
        [
            ("case_comments", 0),
            ("cases", 1),
            ("consents", 0),
            ("invitations", 2),
            ("merges", 1),
            ("responses_anonymised", 2)
        ]
    );

    assert_eq!(s.rollups().await, before, "the roll-ups keep the anonymised answers' counts");
    assert_eq!((s.outbox_mentions(&dana).await, s.outbox_mentions(&eve).await), (0, 0));
    if backend == Backend::Postgres {
        let needles = [dana.as_str(), eve.as_str(), "dana-1", "eve-1", "said by"];
        assert_eq!(cx_testkit::rows_mentioning(&s.cluster.db, "survey", &needles).await, Vec::<String>::new());
    }
}
