//! Segmentation's load of scores and open cases (`SurveyInternalService.
//! ExportScoreFacts`), on both backends: the customers who answered or ever
//! had a case, in id order a page at a time, each with her latest answer of
//! each survey type as the scores feed sends it and her unresolved cases
//! now; a merged customer's are the survivor's, an erased one is gone; a
//! cursor resumes exactly after itself; only segmentation asks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod responding;

use cx_proto::survey::v1 as pb;
use cx_proto::survey::v1::survey_internal_service_client::SurveyInternalServiceClient;
use cx_runtime::error::Violations;
use cx_runtime::gdpr::Participant;
use cx_survey::domain::case::Action;
use cx_survey::domain::settings::Settings;
use cx_survey::domain::survey::SurveyType;
use cx_survey::gdpr::SurveyData;
use cx_survey::store::cases::{self, Unhappy};
use cx_survey::store::feeds::Feeds;
use cx_survey::store::responses;
use cx_survey::store::submit::{self, Draft};
use cx_testkit::{authed, service_token};
use responding::{Backend, Invite, at, create, invite, survey};
use sea_orm::TransactionTrait;
use tonic::transport::Channel;
use tonic::{Code, Status};
use uuid::Uuid;

const ANN: Uuid = Uuid::from_u128(0xA);
const BOB: Uuid = Uuid::from_u128(0xB);
const CLEO: Uuid = Uuid::from_u128(0xC);
const DAN: Uuid = Uuid::from_u128(0xD);
const FAY: Uuid = Uuid::from_u128(0xF);

/// An answer; NPS surveys ask a reason, which it gives.
fn draft(id: &str, survey: Uuid, invitation: Option<Uuid>, score: i32, when: &str, nps: bool) -> Draft {
    Draft {
        id: id.into(),
        survey_id: survey,
        invitation_id: invitation,
        anonymous: invitation.is_none(),
        score,
        verbatim: String::new(),
        answers: if nps { vec![responding::reason("price")] } else { vec![] },
        language: String::new(),
        respond_time: Some(at(when)),
        digest: id.as_bytes().to_vec(),
        violations: Violations::new(),
    }
}

fn score(
    customer: Uuid,
    survey_type: pb::SurveyType,
    score: i32,
    survey: Uuid,
    id: &str,
    when: &str,
) -> pb::ScoreRecorded {
    pb::ScoreRecorded {
        profile_id: customer.to_string(),
        survey_type: survey_type as i32,
        score,
        survey_id: survey.to_string(),
        response_id: id.into(),
        respond_time: Some(cx_proto::timestamp(at(when))),
    }
}

/// Every page of an export asked for as `caller`.
async fn export(
    client: &mut SurveyInternalServiceClient<Channel>,
    caller: &str,
    after: &str,
    page_size: i32,
) -> Result<Vec<pb::ExportScoreFactsResponse>, Status> {
    let request = pb::ExportScoreFactsRequest { after_profile_id: after.into(), page_size };
    let mut stream = client.export_score_facts(authed(request, caller)).await?.into_inner();
    let mut pages = Vec::new();
    while let Some(page) = stream.message().await? {
        pages.push(page);
    }
    Ok(pages)
}

/// A page's open cases, number of scores and cursor.
type Shape = (Vec<(String, i64)>, usize, String);

/// (customer, open cases) of a page.
fn open_cases(page: &pb::ExportScoreFactsResponse) -> Vec<(String, i64)> {
    page.open_cases.iter().map(|o| (o.profile_id.clone(), o.open_cases)).collect()
}

async fn latest_scores_and_open_cases_are_exported_in_pages(backend: Backend) {
    let s = responding::suite(backend).await;
    let (db, t) = (&s.db, &s.t);
    let nps = create(db, t, &survey(pb::SurveyType::Nps, true)).await;
    let csat = create(db, t, &survey(pb::SurveyType::Csat, false)).await;
    let mut invitations = Vec::new();
    for (survey, customer) in [(nps, ANN), (nps, ANN), (nps, BOB), (csat, BOB), (nps, CLEO), (nps, DAN)] {
        invitations.push(invite(db, t, &Invite::to(survey, customer)).await);
    }
    // Ann: NPS 3 (a case) then NPS 8. Bob: NPS 9, CSAT 1 (a case, resolved
    // later). Cleo: NPS 2 (a case), then merged into Bob. Dan: NPS 10, then
    // erased. Someone anonymous: NPS 10.
    let drafts = [
        draft("ann-nps-1", nps, Some(invitations[0]), 3, "2026-03-02T10:00:00Z", true),
        draft("ann-nps-2", nps, Some(invitations[1]), 8, "2026-03-06T10:00:00Z", true),
        draft("bob-nps", nps, Some(invitations[2]), 9, "2026-03-03T10:00:00Z", true),
        draft("bob-csat", csat, Some(invitations[3]), 1, "2026-03-04T10:00:00Z", false),
        draft("cleo-nps", nps, Some(invitations[4]), 2, "2026-03-05T10:00:00Z", true),
        draft("dan-nps", nps, Some(invitations[5]), 10, "2026-03-05T11:00:00Z", true),
        draft("anon", nps, None, 10, "2026-03-05T12:00:00Z", true),
    ];
    for d in drafts {
        assert!(submit::submit(db, &Feeds::default(), t, d).await.unwrap().1);
    }
    let bob_case = responses::get(db, t, "bob-csat").await.unwrap().unwrap().case_id.unwrap();
    let resolve = Action::Resolve { root_cause: "billing".into(), note: String::new() };
    cases::act(db, &Feeds::default(), t, bob_case, &resolve, "agent", at("2026-03-07T10:00:00Z")).await.unwrap();
    // Fay holds a case and no response kept.
    let unhappy = Unhappy {
        response_id: "fay-gone".into(),
        survey_id: nps,
        survey_type: SurveyType::Nps,
        customer_id: Some(FAY),
        score: 1,
        respond_time: at("2026-03-01T10:00:00Z"),
    };
    let txn = db.begin().await.unwrap();
    cases::open_at(&txn, t, &unhappy, &Settings::default(), at("2026-03-01T10:00:00Z")).await.unwrap();
    cx_runtime::gdpr::record_merge(&txn, t, BOB, CLEO).await.unwrap();
    SurveyData { feeds: Feeds::default() }.merge(&txn, t, BOB, CLEO).await.unwrap();
    SurveyData { feeds: Feeds::default() }.erase(&txn, t, &[DAN]).await.unwrap();
    txn.commit().await.unwrap();

    let mut client = SurveyInternalServiceClient::new(s.cluster.server("survey").channel().await);
    let segmentation = service_token("segmentation", t.as_str());
    let before = cx_runtime::store::now();
    let pages = export(&mut client, &segmentation, "", 2).await.unwrap();
    let after = cx_runtime::store::now();

    // Ann and Bob, then Fay: the second page is short, so the last.
    let cursors: Vec<&str> = pages.iter().map(|p| p.cursor.as_str()).collect();
    assert_eq!(cursors, [BOB.to_string(), FAY.to_string()]);
    // The latest of each type, in customer then type order: Ann's NPS 8;
    // Bob's NPS is Cleo's 2 (5 March, after his 9 of the 3rd), his CSAT 1.
    assert_eq!(
        pages[0].scores,
        [
            score(ANN, pb::SurveyType::Nps, 8, nps, "ann-nps-2", "2026-03-06T10:00:00Z"),
            score(BOB, pb::SurveyType::Nps, 2, nps, "cleo-nps", "2026-03-05T10:00:00Z"),
            score(BOB, pb::SurveyType::Csat, 1, csat, "bob-csat", "2026-03-04T10:00:00Z"),
        ]
    );
    // Ann's case is open; Bob's resolved, Cleo's (now his) open.
    assert_eq!(open_cases(&pages[0]), [(ANN.to_string(), 1), (BOB.to_string(), 1)]);
    assert_eq!((pages[1].scores.clone(), open_cases(&pages[1])), (vec![], vec![(FAY.to_string(), 1)]));
    for counted in pages.iter().flat_map(|p| &p.open_cases) {
        let read = cx_proto::from_timestamp(counted.change_time.as_ref().unwrap()).unwrap();
        assert!(before <= read && read <= after, "counted at {read}, during the call");
    }

    // Resuming after Ann gives exactly Bob and Fay; after Fay, one empty
    // page keeps the cursor.
    let rest = export(&mut client, &segmentation, &ANN.to_string(), 0).await.unwrap();
    let shape = |pages: &[pb::ExportScoreFactsResponse]| -> Vec<Shape> {
        pages.iter().map(|p| (open_cases(p), p.scores.len(), p.cursor.clone())).collect()
    };
    assert_eq!(shape(&rest), [(vec![(BOB.to_string(), 1), (FAY.to_string(), 1)], 2, FAY.to_string())]);
    let end = export(&mut client, &segmentation, &FAY.to_string(), 0).await.unwrap();
    assert_eq!(shape(&end), [(vec![], 0, FAY.to_string())]);

    // Only segmentation asks, with a service identity; the asks are checked.
    let user = export(&mut client, &s.writer, "", 0).await.unwrap_err();
    assert_eq!(user.code(), Code::Unauthenticated);
    let profile = export(&mut client, &service_token("profile", t.as_str()), "", 0).await.unwrap_err();
    assert_eq!(
        (profile.code(), profile.message()),
        (Code::PermissionDenied, "only the segmentation service makes this call")
    );
    let bad_id = export(&mut client, &segmentation, "nope", 0).await.unwrap_err();
    assert_eq!((bad_id.code(), bad_id.message()), (Code::InvalidArgument, "invalid after_profile_id: is not a UUID"));
    let too_big = export(&mut client, &segmentation, "", 5_001).await.unwrap_err();
    assert_eq!(
        (too_big.code(), too_big.message()),
        (Code::InvalidArgument, "invalid page_size: is 5001; at most 5000")
    );
}

cx_testkit::on_both_backends!(latest_scores_and_open_cases_are_exported_in_pages);
