//! The fact feeds' store on PostgreSQL and SQLite: consents, scores, open
//! cases and profile facts as they arrive (a late, older message changes
//! nothing), then merges and erasures of what they keep.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Utc};
use cx_runtime::TenantId;
use cx_runtime::consent::StandardPurpose;
use cx_runtime::store::{Db, scoped};
use cx_segmentation::store::consents::{self, Decision, Purpose};
use cx_segmentation::store::entity::{attribute, fact};
use cx_segmentation::store::migration::Migrator;
use cx_segmentation::store::profiles::{self, Contact, Facts, Value};
use cx_segmentation::store::scores::{self, CSAT, NPS, Score};
use cx_segmentation::store::{cases, customers, facts};
use cx_testkit::{Backend, ServiceDb};
use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, TransactionTrait};
use uuid::Uuid;

cx_testkit::on_both_backends!(
    the_later_consent_decision_wins_and_standard_ones_are_mirrored,
    scores_keep_the_latest_per_type_and_count_each_response_once,
    the_latest_open_cases_count_wins,
    profile_facts_replace_the_columns_and_attributes,
    a_merge_keeps_the_later_facts_on_the_survivor_and_an_erasure_deletes_all,
);

async fn migrated(backend: Backend) -> (Db, ServiceDb) {
    let service = ServiceDb::open(backend, "segmentation").await;
    let db = service.conn.clone();
    cx_runtime::store::migrate::<Migrator>(&db, "segmentation").await.unwrap();
    (db, service)
}

fn t() -> TenantId {
    TenantId::parse("feeds").unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

const ANN: Uuid = Uuid::from_u128(1);
const BOB: Uuid = Uuid::from_u128(2);

async fn row(db: &Db, customer: Uuid) -> fact::Model {
    scoped::<fact::Entity>(&t()).filter(fact::Column::CustomerId.eq(customer)).one(db).await.unwrap().unwrap()
}

fn decision(customer: Uuid, purpose: Purpose, granted: bool, occurred: &str, recorded: &str) -> Decision {
    Decision { customer, purpose, granted, occurred_at: at(occurred), recorded_at: at(recorded) }
}

async fn consent(db: &Db, d: Decision) -> bool {
    let txn = db.begin().await.unwrap();
    let applied = consents::apply(&txn, &t(), &d).await.unwrap();
    txn.commit().await.unwrap();
    applied
}

fn email() -> Purpose {
    Purpose::Standard(StandardPurpose::Email)
}

async fn the_later_consent_decision_wins_and_standard_ones_are_mirrored(backend: Backend) {
    let (db, _service) = migrated(backend).await;
    // Granted at 10:00 (recorded 10:01): in force, mirrored.
    assert!(consent(&db, decision(ANN, email(), true, "2026-03-01T10:00:00Z", "2026-03-01T10:01:00Z")).await);
    assert!(row(&db, ANN).await.consent_email);
    // A withdrawal that occurred at 09:00 arrives late: older, nothing changes.
    assert!(!consent(&db, decision(ANN, email(), false, "2026-03-01T09:00:00Z", "2026-03-01T12:00:00Z")).await);
    assert!(row(&db, ANN).await.consent_email);
    // Same occur time, recorded later (10:05 > 10:01): it wins.
    assert!(consent(&db, decision(ANN, email(), false, "2026-03-01T10:00:00Z", "2026-03-01T10:05:00Z")).await);
    assert!(!row(&db, ANN).await.consent_email);
    // A custom purpose is kept by name; the fact columns do not change.
    let club = Purpose::Custom("loyalty_club".into());
    assert!(consent(&db, decision(ANN, club, true, "2026-03-02T10:00:00Z", "2026-03-02T10:00:00Z")).await);
    let kept = consents::of(&db, &t(), ANN).await.unwrap();
    assert_eq!(kept, [("email".to_owned(), false), ("loyalty_club".to_owned(), true)]);
    let fact = row(&db, ANN).await;
    assert!(!fact.consent_email && !fact.consent_sms);
}

fn score(customer: Uuid, survey_type: i16, value: i16, when: &str, response: &str) -> Score {
    Score { customer, survey_type, score: value, respond_time: at(when), response_id: response.into() }
}

async fn record(db: &Db, s: Score) -> bool {
    let txn = db.begin().await.unwrap();
    let kept = scores::apply(&txn, &t(), &s).await.unwrap();
    txn.commit().await.unwrap();
    kept
}

async fn scores_keep_the_latest_per_type_and_count_each_response_once(backend: Backend) {
    let (db, _service) = migrated(backend).await;
    assert!(record(&db, score(ANN, NPS, 9, "2026-03-02T10:00:00Z", "r2")).await);
    let f = row(&db, ANN).await;
    assert_eq!((f.last_nps, f.nps_category.as_deref(), f.responses), (Some(9), Some("promoter"), 1));
    // An older NPS (the 1st) arrives late: it counts, but 9 stays.
    assert!(!record(&db, score(ANN, NPS, 3, "2026-03-01T10:00:00Z", "r1")).await);
    let f = row(&db, ANN).await;
    assert_eq!((f.last_nps, f.nps_category.as_deref(), f.responses), (Some(9), Some("promoter"), 2));
    // The kept response announced again does not count again.
    assert!(!record(&db, score(ANN, NPS, 9, "2026-03-02T10:00:00Z", "r2")).await);
    assert_eq!(row(&db, ANN).await.responses, 2);
    // A later NPS of 7 is passive; a CSAT of 4 is kept beside it: 4 responses.
    assert!(record(&db, score(ANN, NPS, 7, "2026-03-03T10:00:00Z", "r3")).await);
    assert!(record(&db, score(ANN, CSAT, 4, "2026-03-01T08:00:00Z", "r4")).await);
    let f = row(&db, ANN).await;
    assert_eq!(
        (f.last_nps, f.nps_category.as_deref(), f.last_csat, f.last_ces, f.responses),
        (Some(7), Some("passive"), Some(4), None, 4)
    );
}

async fn open_cases(db: &Db, customer: Uuid, n: i64, when: &str) -> bool {
    let txn = db.begin().await.unwrap();
    let kept = cases::apply(&txn, &t(), customer, n, at(when)).await.unwrap();
    txn.commit().await.unwrap();
    kept
}

async fn the_latest_open_cases_count_wins(backend: Backend) {
    let (db, _service) = migrated(backend).await;
    assert!(open_cases(&db, ANN, 2, "2026-03-01T10:00:00Z").await);
    assert_eq!(row(&db, ANN).await.open_cases, 2);
    // The count of 09:00 arrives after the one of 10:00.
    assert!(!open_cases(&db, ANN, 1, "2026-03-01T09:00:00Z").await);
    assert_eq!(row(&db, ANN).await.open_cases, 2);
    assert!(open_cases(&db, ANN, 0, "2026-03-01T11:00:00Z").await);
    assert_eq!(row(&db, ANN).await.open_cases, 0);
}

fn facts_of(when: &str, persona: &str, attributes: Vec<(&str, Value)>) -> Facts {
    Facts {
        customer: ANN,
        lifecycle: Some("active".into()),
        persona: Some(persona.into()),
        created_day: Some(20_513),
        digital_index: Some(62.0),
        digital_category: Some("connected".into()),
        attributes: attributes.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        // IdentityKind 1: email.
        contacts: vec![Contact { kind: 1, value: "ann@example.com".into() }],
        changed_at: at(when),
    }
}

async fn keep_facts(db: &Db, f: Facts) -> bool {
    let txn = db.begin().await.unwrap();
    let kept = profiles::apply(&txn, &t(), &f).await.unwrap();
    txn.commit().await.unwrap();
    kept
}

type AttributeRow = (String, Option<String>, Option<f64>, Option<bool>, bool);

async fn attributes(db: &Db) -> Vec<AttributeRow> {
    let rows = scoped::<attribute::Entity>(&t())
        .filter(attribute::Column::CustomerId.eq(ANN))
        .order_by_asc(attribute::Column::Key)
        .all(db)
        .await
        .unwrap();
    rows.into_iter().map(|r| (r.key, r.text_value, r.number_value, r.bool_value, r.is_instant)).collect()
}

async fn profile_facts_replace_the_columns_and_attributes(backend: Backend) {
    let (db, _service) = migrated(backend).await;
    let first = vec![
        ("vip", Value::Bool(true)),
        ("tier", Value::Text("gold".into())),
        ("spend", Value::Number(12.5)),
        ("joined", Value::Instant),
    ];
    assert!(keep_facts(&db, facts_of("2026-03-01T10:00:00Z", "family", first)).await);
    let f = row(&db, ANN).await;
    assert_eq!(
        (f.lifecycle.as_deref(), f.persona.as_deref(), f.created_day, f.digital_index, f.digital_category.as_deref()),
        (Some("active"), Some("family"), Some(20_513), Some(62.0), Some("connected"))
    );
    assert_eq!(
        attributes(&db).await,
        [
            ("joined".to_owned(), None, None, None, true),
            ("spend".to_owned(), None, Some(12.5), None, false),
            ("tier".to_owned(), Some("gold".to_owned()), None, None, false),
            ("vip".to_owned(), None, None, Some(true), false),
        ]
    );
    // Facts read at 09:00 arrive late: nothing changes.
    assert!(!keep_facts(&db, facts_of("2026-03-01T09:00:00Z", "single", vec![])).await);
    assert_eq!(row(&db, ANN).await.persona.as_deref(), Some("family"));
    assert_eq!(attributes(&db).await.len(), 4);
    // Later facts replace every attribute row.
    let later = vec![("tier", Value::Text("silver".into()))];
    assert!(keep_facts(&db, facts_of("2026-03-01T11:00:00Z", "single", later)).await);
    assert_eq!(row(&db, ANN).await.persona.as_deref(), Some("single"));
    assert_eq!(attributes(&db).await, [("tier".to_owned(), Some("silver".to_owned()), None, None, false)]);
}

async fn a_merge_keeps_the_later_facts_on_the_survivor_and_an_erasure_deletes_all(backend: Backend) {
    let (db, _service) = migrated(backend).await;
    // Ann survives: email granted at 10:00, NPS 5 on the 3rd, 1 response.
    consent(&db, decision(ANN, email(), true, "2026-03-01T10:00:00Z", "2026-03-01T10:00:00Z")).await;
    record(&db, score(ANN, NPS, 5, "2026-03-03T10:00:00Z", "a1")).await;
    // Bob is merged into her: email withdrawn at 11:00 (later), sms granted,
    // NPS 10 on the 2nd (older), CSAT 2, 2 responses.
    consent(&db, decision(BOB, email(), false, "2026-03-01T11:00:00Z", "2026-03-01T11:00:00Z")).await;
    let sms = Purpose::Standard(StandardPurpose::Sms);
    consent(&db, decision(BOB, sms, true, "2026-03-01T09:00:00Z", "2026-03-01T09:00:00Z")).await;
    record(&db, score(BOB, NPS, 10, "2026-03-02T10:00:00Z", "b1")).await;
    record(&db, score(BOB, CSAT, 2, "2026-03-02T11:00:00Z", "b2")).await;

    let txn = db.begin().await.unwrap();
    let counts = customers::merge(&txn, &t(), ANN, BOB).await.unwrap();
    txn.commit().await.unwrap();
    // Taken: email and sms (both later than Ann's or new), the CSAT; Bob's
    // 2 consents, 2 scores and fact row deleted.
    assert_eq!(counts["consents.taken"], 2);
    assert_eq!(counts["consents"], 2);
    assert_eq!(counts["scores.taken"], 1);
    assert_eq!(counts["scores"], 2);
    assert_eq!(counts["responses.moved"], 2);
    assert_eq!(counts["facts"], 1);
    let f = row(&db, ANN).await;
    assert_eq!(
        (f.consent_email, f.consent_sms, f.last_nps, f.last_csat, f.responses),
        (false, true, Some(5), Some(2), 3)
    );
    assert!(!facts::exists(&db, &t(), BOB).await.unwrap());
    assert!(consents::of(&db, &t(), BOB).await.unwrap().is_empty());

    keep_facts(&db, facts_of("2026-03-04T10:00:00Z", "family", vec![("vip", Value::Bool(true))])).await;
    let txn = db.begin().await.unwrap();
    let counts = customers::erase(&txn, &t(), &[ANN]).await.unwrap();
    txn.commit().await.unwrap();
    // Ann's email and sms, NPS and CSAT, fact row, vip attribute and email address.
    let expected: Vec<(&str, i64)> =
        vec![("attributes", 1), ("consents", 2), ("contacts", 1), ("facts", 1), ("scores", 2)];
    assert_eq!(counts.iter().map(|(k, v)| (k.as_str(), *v)).collect::<Vec<_>>(), expected);
    assert!(!facts::exists(&db, &t(), ANN).await.unwrap());
}
