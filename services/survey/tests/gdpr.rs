//! The survey service's part in merges, erasures and access exports
//! (docs/DOMAIN.md §6.3), on PostgreSQL and SQLite: a merge moves
//! invitations, responses and cases to the survivor and keeps the later
//! consent decision; an erasure deletes invitations, consent decisions and
//! cases with their comments and anonymises the responses, and through both
//! the daily roll-ups stay equal to a scan of the responses; an export
//! gives the customer's records as their own messages.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod responding;

use chrono::Utc;
use cx_proto::survey::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::error::Violations;
use cx_runtime::gdpr::{Counts, Participant};
use cx_runtime::store::Db;
use cx_survey::domain::case::Action;
use cx_survey::gdpr::SurveyData;
use cx_survey::store::cases::{self, CaseFilter};
use cx_survey::store::feeds::Feeds;
use cx_survey::store::invitations::consent::{self, Decision};
use cx_survey::store::migration::Migrator;
use cx_survey::store::responses::{self, Owner};
use cx_survey::store::rollups::{self, Cell};
use cx_survey::store::submit::{self, Draft};
use cx_testkit::ServiceDb;
use futures::TryStreamExt;
use responding::{Backend, Invite, at, create, invite, reason, survey};
use sea_orm::TransactionTrait;
use uuid::Uuid;

cx_testkit::on_both_backends!(
    a_merge_then_an_erasure_keep_the_rollups_equal_to_the_scan,
    an_export_gives_everything_held_about_the_customer,
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
    db: Db,
    t: TenantId,
    /// The cases of Ann's, Bob's and Cleo's unhappy answers.
    cases: [Uuid; 3],
    /// Ann's NPS, Bob's NPS and CSAT, Cleo's NPS (all answered), then Ann's
    /// and Bob's open ones to the CSAT survey.
    invitations: [Uuid; 6],
}

/// Ann answers an NPS 3 (a case); Bob an NPS 9 and a CSAT 1 (a case, one
/// comment); Cleo an NPS 2 (a case); someone anonymous an NPS 10. Ann and
/// Bob each hold an open invitation to the CSAT survey too. Profile told
/// of Ann's `survey` consent on 10 January and Bob's withdrawal on the 20th.
async fn setup(backend: Backend) -> Setup {
    let service = ServiceDb::open(backend, "survey").await;
    let db = service.conn.clone();
    cx_runtime::store::migrate::<Migrator>(&db, "survey").await.unwrap();
    let t = TenantId::parse("gdpr").unwrap();
    let nps = create(&db, &t, &survey(pb::SurveyType::Nps, true)).await;
    let csat = create(&db, &t, &survey(pb::SurveyType::Csat, false)).await;
    let sent = |survey, customer| Invite::to(survey, customer);
    let mut invitations = Vec::new();
    for (survey, customer) in [(nps, ANN), (nps, BOB), (csat, BOB), (nps, CLEO), (csat, ANN), (csat, BOB)] {
        invitations.push(invite(&db, &t, &sent(survey, customer)).await);
    }
    for (customer, granted, day) in [(ANN, true, "2026-01-10"), (BOB, false, "2026-01-20")] {
        let when = at(&format!("{day}T09:00:00Z"));
        let decision = Decision { customer, granted, occurred_at: when, recorded_at: when };
        let txn = db.begin().await.unwrap();
        consent::apply(&txn, &t, decision).await.unwrap();
        txn.commit().await.unwrap();
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
        assert!(submit::submit(&db, &Feeds::default(), &t, d).await.unwrap().1);
    }
    let case_of = |id: &str| {
        let (db, t, id) = (db.clone(), t.clone(), id.to_owned());
        async move { responses::get(&db, &t, &id).await.unwrap().unwrap().case_id.unwrap() }
    };
    let cases = [case_of("ann-nps").await, case_of("bob-csat").await, case_of("cleo-nps").await];
    let comment = Action::Comment { text: "called back".into() };
    cases::act(&db, &Feeds::default(), &t, cases[1], &comment, "agent-7", at("2026-03-04T12:00:00Z")).await.unwrap();
    Setup { _service: service, db, t, cases, invitations: invitations.try_into().unwrap() }
}

impl Setup {
    async fn merge(&self, survivor: Uuid, merged: Uuid) {
        let txn = self.db.begin().await.unwrap();
        cx_runtime::gdpr::record_merge(&txn, &self.t, survivor, merged).await.unwrap();
        SurveyData { feeds: Feeds::default() }.merge(&txn, &self.t, survivor, merged).await.unwrap();
        txn.commit().await.unwrap();
    }

    async fn erase(&self, customers: &[Uuid]) -> Counts {
        let txn = self.db.begin().await.unwrap();
        let (counts, _) = SurveyData { feeds: Feeds::default() }.erase(&txn, &self.t, customers).await.unwrap();
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

    /// The ids of the invitations stored under `customer` (a listing would
    /// follow a merged id to its survivor), in creation order.
    async fn invitations_of(&self, customer: Uuid) -> Vec<Uuid> {
        use cx_survey::store::entity::invitation;
        use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};
        let held = cx_runtime::store::scoped::<invitation::Entity>(&self.t)
            .filter(invitation::Column::CustomerId.eq(customer))
            .order_by_asc(invitation::Column::Id);
        held.all(&self.db).await.unwrap().into_iter().map(|i| i.id).collect()
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
    let i = s.invitations;
    // Ann holds two open invitations to the CSAT survey now: both stay.
    assert_eq!(s.invitations_of(ANN).await, [i[0], i[1], i[2], i[4], i[5]]);
    assert_eq!(s.invitations_of(BOB).await, Vec::<Uuid>::new());
    // Bob's withdrawal (20 January) is later than Ann's grant: it is hers.
    let kept = consent::recorded(&s.db, &s.t, &[ANN, BOB]).await.unwrap();
    assert_eq!(kept, std::collections::HashMap::from([(ANN, false)]));
    assert_eq!(s.responses_of(ANN).await, ["bob-csat", "bob-nps", "ann-nps"]);
    assert_eq!(s.responses_of(BOB).await, Vec::<String>::new());
    // Both due 48 hours after their answers: Ann's (2 Mar) first.
    assert_eq!(s.cases_of(ANN).await, [s.cases[0], s.cases[1]]);
    assert_eq!(s.cases_of(BOB).await, Vec::<Uuid>::new());
    assert_eq!(s.rollups().await, before, "a merge changes no count");

    // Ann is erased with Bob's id: her 5 invitations and 1 consent decision
    // deleted, her 3 responses anonymised, her 2 cases and the 1 comment of
    // Bob's deleted.
    let counts = s.erase(&[ANN, BOB]).await;
    let expected =
        [("case_comments", 1), ("cases", 2), ("consents", 1), ("invitations", 5), ("responses_anonymised", 3)];
    assert_eq!(counts, Counts::from(expected.map(|(k, n)| (k.to_owned(), n))));
    assert_eq!(s.responses_of(ANN).await, Vec::<String>::new());
    assert_eq!(s.cases_of(ANN).await, Vec::<Uuid>::new());
    assert_eq!(s.invitations_of(ANN).await, Vec::<Uuid>::new());
    assert_eq!(consent::recorded(&s.db, &s.t, &[ANN, BOB]).await.unwrap(), std::collections::HashMap::new());
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
    assert_eq!(s.invitations_of(CLEO).await, [i[3]]);

    // Erasing again finds nothing more.
    let expected =
        [("case_comments", 0), ("cases", 0), ("consents", 0), ("invitations", 0), ("responses_anonymised", 0)];
    assert_eq!(s.erase(&[ANN, BOB]).await, Counts::from(expected.map(|(k, n)| (k.to_owned(), n))));
}

/// The type and id of each record of an export.
fn exported(records: &[prost_types::Any]) -> Vec<(String, String)> {
    records
        .iter()
        .map(|r| {
            let id = match r.type_url.as_str() {
                "/cx.profile.v1.ConsentChanged" => {
                    let decision = r.to_msg::<cx_proto::profile::v1::ConsentChanged>().unwrap();
                    let at = decision.occur_time.unwrap();
                    format!("{} granted {} at {}", decision.profile_id, decision.granted, at.seconds)
                }
                "/cx.survey.v1.Invitation" => r.to_msg::<pb::Invitation>().unwrap().id,
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

async fn an_export_gives_everything_held_about_the_customer(backend: Backend) {
    let s = setup(backend).await;
    let export = |customers: Vec<Uuid>| {
        let (db, t) = (s.db.clone(), s.t.clone());
        async move {
            let records = SurveyData { feeds: Feeds::default() }.export(&db, &t, &customers).await.unwrap();
            records.try_collect::<Vec<_>>().await.unwrap()
        }
    };
    let decision = |customer: Uuid, granted: bool, day: &str| {
        let at = at(&format!("{day}T09:00:00Z")).timestamp();
        ("/cx.profile.v1.ConsentChanged".to_owned(), format!("{customer} granted {granted} at {at}"))
    };
    let invitation = |id: Uuid| ("/cx.survey.v1.Invitation".to_owned(), id.to_string());
    let response = |id: &str| ("/cx.survey.v1.Response".to_owned(), id.to_owned());
    let case =
        |id: Uuid, comments: usize| ("/cx.survey.v1.FollowUpCase".to_owned(), format!("{id} ({comments} comments)"));
    let i = s.invitations;
    // Bob's merge has not been applied: asked for Ann and Bob, both are
    // given: consent decisions by customer, invitations in due order (all
    // due at once here, so in the order made), answers oldest first, then
    // cases in the order opened.
    let records = export(vec![BOB, ANN]).await;
    let theirs = [
        invitation(i[0]),
        invitation(i[1]),
        invitation(i[2]),
        invitation(i[4]),
        invitation(i[5]),
        response("ann-nps"),
        response("bob-nps"),
        response("bob-csat"),
        case(s.cases[0], 0),
        case(s.cases[1], 1),
    ];
    let before: Vec<_> = [decision(ANN, true, "2026-01-10"), decision(BOB, false, "2026-01-20")]
        .into_iter()
        .chain(theirs.clone())
        .collect();
    assert_eq!(exported(&records), before);
    let decoded: pb::Response = records[7].to_msg().unwrap();
    assert_eq!(
        (decoded.customer_id, decoded.score, decoded.verbatim),
        (ANN.to_string(), 3, "verbatim of ann-nps".to_owned())
    );

    // After the merge, the same records, with Bob's later decision as Ann's.
    s.merge(ANN, BOB).await;
    let after: Vec<_> = std::iter::once(decision(ANN, false, "2026-01-20")).chain(theirs).collect();
    assert_eq!(exported(&export(vec![BOB, ANN]).await), after);
    // Once erased, nothing is left to give.
    s.erase(&[ANN, BOB]).await;
    assert_eq!(export(vec![BOB, ANN]).await, []);
    assert_eq!(exported(&export(vec![CLEO]).await), [invitation(i[3]), response("cleo-nps"), case(s.cases[2], 0)]);
}
