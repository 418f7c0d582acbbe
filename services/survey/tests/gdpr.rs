//! The survey service's part in merges, erasures and access exports
//! (docs/DOMAIN.md §6.3), on PostgreSQL and SQLite: a merge moves
//! responses and cases to the survivor, an erasure deletes the cases with
//! their comments and anonymises the responses, and through both the daily
//! roll-ups stay equal to a scan of the responses; an export gives the
//! customer's records as their `cx.survey.v1` messages.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod responding;

use chrono::Utc;
use cx_proto::survey::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::error::Violations;
use cx_runtime::gdpr::{Counts, Participant};
use cx_survey::domain::case::Action;
use cx_survey::gdpr::SurveyData;
use cx_survey::store::cases::{self, CaseFilter};
use cx_survey::store::migration::Migrator;
use cx_survey::store::responses::{self, Owner};
use cx_survey::store::rollups::{self, Cell};
use cx_survey::store::submit::{self, Draft};
use cx_testkit::ServiceDb;
use futures::TryStreamExt;
use responding::{Backend, Invite, at, create, invite, reason, survey};
use sea_orm::{DatabaseConnection, TransactionTrait};
use uuid::Uuid;

cx_testkit::on_both_backends!(
    a_merge_then_an_erasure_keep_the_rollups_equal_to_the_scan,
    an_export_gives_the_customers_responses_and_cases,
);

const ANN: Uuid = Uuid::from_u128(0xA);
const BOB: Uuid = Uuid::from_u128(0xB);
const CLEO: Uuid = Uuid::from_u128(0xC);
/// 1–31 March 2026 as day numbers (days since 1970-01-01).
const MARCH: (i32, i32) = (20_513, 20_543);

/// A response through `invitation` (or anonymous), with a verbatim.
fn draft(id: &str, survey: Uuid, invitation: Option<Uuid>, score: i32, when: &str, answers: Vec<pb::Answer>) -> Draft {
    Draft {
        id: id.into(),
        survey_id: survey,
        invitation_id: invitation,
        anonymous: invitation.is_none(),
        score,
        verbatim: format!("verbatim of {id}"),
        answers,
        language: String::new(),
        respond_time: Some(at(when)),
        digest: id.as_bytes().to_vec(),
        violations: Violations::new(),
    }
}

struct Setup {
    _service: ServiceDb,
    db: DatabaseConnection,
    t: TenantId,
    /// The cases of Ann's, Bob's and Cleo's unhappy answers.
    cases: [Uuid; 3],
}

/// Ann answers an NPS 3 (a case); Bob an NPS 9 and a CSAT 1 (a case, one
/// comment); Cleo an NPS 2 (a case); someone anonymous an NPS 10.
async fn setup(backend: Backend) -> Setup {
    let service = ServiceDb::open(backend, "survey").await;
    let db = service.conn.clone();
    cx_runtime::store::migrate::<Migrator>(&db, "survey").await.unwrap();
    let t = TenantId::parse("gdpr").unwrap();
    let nps = create(&db, &t, &survey(pb::SurveyType::Nps, true)).await;
    let csat = create(&db, &t, &survey(pb::SurveyType::Csat, false)).await;
    let sent = |survey, customer| Invite::to(survey, customer);
    let [ann, bob_nps, bob_csat, cleo] = [(nps, ANN), (nps, BOB), (csat, BOB), (nps, CLEO)];
    let mut invitations = Vec::new();
    for (survey, customer) in [ann, bob_nps, bob_csat, cleo] {
        invitations.push(invite(&db, &t, &sent(survey, customer)).await);
    }
    let price = || vec![reason("price")];
    let drafts = [
        draft("ann-nps", nps, Some(invitations[0]), 3, "2026-03-02T10:00:00Z", price()),
        draft("bob-nps", nps, Some(invitations[1]), 9, "2026-03-03T10:00:00Z", price()),
        draft("bob-csat", csat, Some(invitations[2]), 1, "2026-03-04T10:00:00Z", vec![]),
        draft("cleo-nps", nps, Some(invitations[3]), 2, "2026-03-05T10:00:00Z", price()),
        draft("anon", nps, None, 10, "2026-03-05T11:00:00Z", price()),
    ];
    for d in drafts {
        assert!(submit::submit(&db, &t, d).await.unwrap().1);
    }
    let case_of = |id: &str| {
        let (db, t, id) = (db.clone(), t.clone(), id.to_owned());
        async move { responses::get(&db, &t, &id).await.unwrap().unwrap().case_id.unwrap() }
    };
    let cases = [case_of("ann-nps").await, case_of("bob-csat").await, case_of("cleo-nps").await];
    let comment = Action::Comment { text: "called back".into() };
    cases::act(&db, &t, cases[1], &comment, "agent-7", at("2026-03-04T12:00:00Z")).await.unwrap();
    Setup { _service: service, db, t, cases }
}

impl Setup {
    async fn merge(&self, survivor: Uuid, merged: Uuid) {
        let txn = self.db.begin().await.unwrap();
        cx_runtime::gdpr::record_merge(&txn, &self.t, survivor, merged).await.unwrap();
        SurveyData.merge(&txn, &self.t, survivor, merged).await.unwrap();
        txn.commit().await.unwrap();
    }

    async fn erase(&self, customers: &[Uuid]) -> Counts {
        let txn = self.db.begin().await.unwrap();
        let (counts, _) = SurveyData.erase(&txn, &self.t, customers).await.unwrap();
        txn.commit().await.unwrap();
        counts
    }

    /// The roll-up cells of March, checked equal to the scan of the responses.
    async fn rollups(&self) -> Vec<Cell> {
        let cells = rollups::cells(&self.db, &self.t, MARCH.0, MARCH.1).await.unwrap();
        assert_eq!(responses::scan_rollups(&self.db, &self.t, MARCH.0, MARCH.1).await.unwrap(), cells);
        cells
    }

    /// The ids of `customer`'s responses, newest first.
    async fn responses_of(&self, customer: Uuid) -> Vec<String> {
        let listed = responses::list(&self.db, &self.t, Owner::Customer(customer), None, 100).await.unwrap();
        listed.into_iter().map(|r| r.id).collect()
    }

    /// The ids of `customer`'s cases, earliest due first.
    async fn cases_of(&self, customer: Uuid) -> Vec<Uuid> {
        let filter = CaseFilter { customer_id: Some(customer), ..CaseFilter::default() };
        let listed = cases::list(&self.db, &self.t, &filter, None, 100, Utc::now()).await.unwrap();
        listed.into_iter().map(|c| c.id).collect()
    }

    /// Every response of the tenant, oldest first.
    async fn all_responses(&self) -> Vec<cx_survey::store::entity::response::Model> {
        let mut all = Vec::new();
        for survey in self.surveys().await {
            all.extend(responses::list(&self.db, &self.t, Owner::Survey(survey), None, 100).await.unwrap());
        }
        all.sort_by_key(|r| r.responded_at);
        all
    }

    async fn surveys(&self) -> Vec<Uuid> {
        use cx_survey::store::entity::survey;
        let rows = cx_runtime::store::scoped::<survey::Entity>(&self.t).all(&self.db).await.unwrap();
        rows.into_iter().map(|s| s.id).collect()
    }
}

async fn a_merge_then_an_erasure_keep_the_rollups_equal_to_the_scan(backend: Backend) {
    let s = setup(backend).await;
    let before = s.rollups().await;
    // 5 answers: NPS 3 (2 Mar), 9 (3 Mar), 2 and 10 (5 Mar); CSAT 1 (4 Mar).
    assert_eq!(before.iter().map(|c| c.counts.n).sum::<i64>(), 5);

    s.merge(ANN, BOB).await;
    assert_eq!(s.responses_of(ANN).await, ["bob-csat", "bob-nps", "ann-nps"]);
    assert_eq!(s.responses_of(BOB).await, Vec::<String>::new());
    // Both due 48 hours after their answers: Ann's (2 Mar) first.
    assert_eq!(s.cases_of(ANN).await, [s.cases[0], s.cases[1]]);
    assert_eq!(s.cases_of(BOB).await, Vec::<Uuid>::new());
    assert_eq!(s.rollups().await, before, "a merge changes no count");

    // Ann is erased with Bob's id: her 3 responses anonymised, her 2 cases
    // and the 1 comment of Bob's deleted.
    let counts = s.erase(&[ANN, BOB]).await;
    let expected = [("case_comments", 1), ("cases", 2), ("responses_anonymised", 3)];
    assert_eq!(counts, Counts::from(expected.map(|(k, n)| (k.to_owned(), n))));
    assert_eq!(s.responses_of(ANN).await, Vec::<String>::new());
    assert_eq!(s.cases_of(ANN).await, Vec::<Uuid>::new());
    assert_eq!(s.rollups().await, before, "the roll-ups keep the anonymised answers' counts");

    // What stays of each answer: its score, survey, map, step, channel and
    // day; Cleo's and the anonymous one untouched.
    let all = s.all_responses().await;
    let kept: Vec<_> = all
        .iter()
        .map(|r| {
            let personal = (r.customer_id.is_some(), r.invitation_id.is_some(), r.touchpoint_id.is_some());
            (r.score, personal, r.verbatim.is_some(), r.answers.is_empty(), r.case_id.is_some())
        })
        .collect();
    assert_eq!(
        kept,
        [
            (3, (false, false, false), false, true, false),
            (9, (false, false, false), false, true, false),
            (1, (false, false, false), false, true, false),
            (2, (true, true, true), true, false, true),
            (10, (false, false, false), true, false, false),
        ]
    );
    // The client's ids are gone: the anonymised answers have random ones.
    for (old, new) in ["ann-nps", "bob-nps", "bob-csat"].iter().zip(&all[..3]) {
        assert!(responses::get(&s.db, &s.t, old).await.unwrap().is_none(), "{old} still found");
        assert!(Uuid::parse_str(&new.id).is_ok(), "{} is not a random id", new.id);
        assert!(new.content_digest.is_empty());
        assert_eq!((new.map_id, new.step_key.as_deref()), (Some(Uuid::from_u128(0x3A9)), Some("delivery")));
    }
    assert_eq!(all[3].id, "cleo-nps");
    assert_eq!(s.cases_of(CLEO).await, [s.cases[2]]);

    // Erasing again finds nothing more.
    let expected = [("case_comments", 0), ("cases", 0), ("responses_anonymised", 0)];
    assert_eq!(s.erase(&[ANN, BOB]).await, Counts::from(expected.map(|(k, n)| (k.to_owned(), n))));
}

/// The type and id of each record of an export.
fn exported(records: &[prost_types::Any]) -> Vec<(String, String)> {
    records
        .iter()
        .map(|r| {
            let id = match r.type_url.as_str() {
                "/cx.survey.v1.Response" => r.to_msg::<pb::Response>().unwrap().id,
                "/cx.survey.v1.FollowUpCase" => {
                    let case = r.to_msg::<pb::FollowUpCase>().unwrap();
                    format!("{} ({} comments)", case.id, case.comments.len())
                }
                other => panic!("unexpected record {other}"),
            };
            (r.type_url.clone(), id)
        })
        .collect()
}

async fn an_export_gives_the_customers_responses_and_cases(backend: Backend) {
    let s = setup(backend).await;
    let export = |customers: Vec<Uuid>| {
        let (db, t) = (s.db.clone(), s.t.clone());
        async move {
            let records = SurveyData.export(&db, &t, &customers).await.unwrap();
            records.try_collect::<Vec<_>>().await.unwrap()
        }
    };
    let response = |id: &str| ("/cx.survey.v1.Response".to_owned(), id.to_owned());
    let case =
        |id: Uuid, comments: usize| ("/cx.survey.v1.FollowUpCase".to_owned(), format!("{id} ({comments} comments)"));
    // Bob's merge has not been applied: asked for Ann and Bob, both are
    // given, answers oldest first, then cases in the order opened.
    let records = export(vec![BOB, ANN]).await;
    assert_eq!(
        exported(&records),
        [response("ann-nps"), response("bob-nps"), response("bob-csat"), case(s.cases[0], 0), case(s.cases[1], 1)]
    );
    let decoded: pb::Response = records[0].to_msg().unwrap();
    assert_eq!(
        (decoded.customer_id, decoded.score, decoded.verbatim),
        (ANN.to_string(), 3, "verbatim of ann-nps".to_owned())
    );

    // After the merge, Ann's records are the same five.
    s.merge(ANN, BOB).await;
    assert_eq!(exported(&export(vec![BOB, ANN]).await), exported(&records));
    // Once erased, nothing is left to give.
    s.erase(&[ANN, BOB]).await;
    assert_eq!(export(vec![BOB, ANN]).await, []);
    assert_eq!(exported(&export(vec![CLEO]).await), [response("cleo-nps"), case(s.cases[2], 0)]);
}
