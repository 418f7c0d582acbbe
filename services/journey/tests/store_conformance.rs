//! One suite of journey store behaviour, run against SQLite and PostgreSQL
//! alike so the two backends cannot drift. The store branches on the
//! backend in many places; each branch below is run by the tests named
//! after it, which assert exact values worked out by hand:
//!
//! - `ingest`: PostgreSQL stores a batch with no touchpoint on a map and no
//!   deadline in one statement without a transaction (the insert, the
//!   survivor of a merged customer, NULL sentinels and the outbox rows in
//!   `INGEST_POSTGRES`); otherwise in a transaction; SQLite looks survivors
//!   up, inserts 500 rows a statement and enqueues a row per 10,000 ids —
//!   `every_field_reads_back_as_stored`, `an_ingest_returns_and_names_only_what_it_stored`,
//!   `ten_thousand_and_one_touchpoints_are_named_by_two_outbox_rows`,
//!   `later_touchpoints_of_merged_customers_go_to_the_last_survivor`,
//!   `a_batch_under_a_deadline_is_stored_whole_or_not_at_all`,
//!   `a_rebuild_pages_through_more_instances_than_a_page_holds` (4,999 rows);
//! - `activity::acts`: `= ANY(array)` or `IN (…)` — `every_field_reads_back_as_stored`,
//!   `ten_thousand_and_one_touchpoints_are_named_by_two_outbox_rows`;
//! - `analytics`: `$n` or `?n` placeholders — every test calling `analyze`;
//! - `bulk::insert`: `UNNEST(arrays)` or `VALUES` 400 rows a statement, and
//!   `rollup::read_facts`: a lateral join or `VALUES` 400 keys a statement —
//!   `the_roll_ups_give_the_hand_worked_analysis`, `an_erasure_removes_the_customers_data_and_counts_it`,
//!   `a_rebuild_pages_through_more_instances_than_a_page_holds` (13 statements on SQLite);
//! - `one_of` in `ingest::survivors`, `peers::erase`, `peers::maps_of`,
//!   `rollup::facts_of_customers` and `maps::current_steps` —
//!   `later_touchpoints_of_merged_customers_go_to_the_last_survivor`,
//!   `an_erasure_removes_the_customers_data_and_counts_it`, `a_map_is_versioned_by_its_steps`;
//! - `maps::update_map`: the map's row locked on PostgreSQL — `concurrent_step_updates_each_make_a_version`;
//! - `rollup::rebuild`: the day of a touchpoint in SQL (`floor` or `julianday`)
//!   and the pages of instances (`$n` or `?`, a row-value comparison) —
//!   `a_rebuild_gives_the_analysis_ingest_gave_to_the_second`,
//!   `a_rebuild_pages_through_more_instances_than_a_page_holds`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use cx_journey::domain::channel::Channel;
use cx_journey::domain::map::{MetaJourney, Phase, Step};
use cx_journey::domain::touchpoint::{Customer, Initiator, InteractionKind, Touchpoint};
use cx_journey::store::activity::{Act, STORED_TOUCHPOINTS};
use cx_journey::store::analytics::{Counts, InstanceScores};
use cx_journey::store::entity::touchpoint;
use cx_journey::store::ingest::Resolved;
use cx_journey::store::maps::{MapChanges, MapRecord};
use cx_journey::store::migration::Migrator;
use cx_journey::store::timeline::TimelineFilter;
use cx_journey::store::{JourneyError, JourneyStore, peers};
use cx_runtime::TenantId;
use cx_runtime::attributes::AttributeValue;
use cx_runtime::deadline::Deadline;
use cx_runtime::store::Db;
use cx_testkit::{Backend, ServiceDb};
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait, Value};
use tonic::Code;
use uuid::Uuid;

/// A migrated journey store on one backend, dropped with the test.
struct Fixture {
    store: JourneyStore,
    db: Db,
    _service: ServiceDb,
}

async fn open(backend: Backend) -> Fixture {
    let service = ServiceDb::open(backend, "journey").await;
    let db = service.conn.clone();
    cx_runtime::store::migrate::<Migrator>(&db, "journey").await.unwrap();
    Fixture { store: JourneyStore::new(db.clone()), db, _service: service }
}

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn customer(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

const WEB: Channel = Channel::Web;
const APP: Channel = Channel::MobileApp;
const STORE: Channel = Channel::Store;
const PHONE: Channel = Channel::Phone;

/// A touchpoint with nothing optional: informative, pulled, no phase.
fn tp(id: &str, when: &str, channel: Channel) -> Touchpoint {
    Touchpoint {
        id: id.into(),
        customer: Customer::Profile(Uuid::nil()),
        channel,
        digital: channel.code() <= 8,
        occurred_at: at(when),
        kind: InteractionKind::Informative,
        initiator: Initiator::Pull,
        phase: None,
        map: None,
        step_key: None,
        instance_id: None,
        score: None,
        purchase: None,
        device_id: None,
        attributes: Default::default(),
    }
}

/// `tp` on version 1 of `map`.
fn on(map: Uuid, step: Option<&str>, instance: Option<&str>, score: Option<i16>, tp: Touchpoint) -> Touchpoint {
    Touchpoint {
        map: Some((map, 1)),
        step_key: step.map(Into::into),
        instance_id: instance.map(Into::into),
        score,
        ..tp
    }
}

/// Ingests `rows` (customer, touchpoint); the ids stored now.
async fn ingest(store: &JourneyStore, t: &TenantId, rows: &[(Uuid, Touchpoint)]) -> BTreeSet<String> {
    let resolved: Vec<Resolved<'_>> = rows.iter().map(|(c, tp)| Resolved { customer: *c, touchpoint: tp }).collect();
    store.ingest(t, &resolved).await.unwrap().into_iter().collect()
}

fn ids(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// A statement in PostgreSQL's `$n` placeholders, as SQLite's `?n` there.
fn statement(db: &Db, sql: &str, values: Vec<Value>) -> Statement {
    let backend = db.get_database_backend();
    let sql = if backend == DbBackend::Postgres { sql.to_owned() } else { sql.replace('$', "?") };
    Statement::from_sql_and_values(backend, sql, values)
}

/// An outbox row as the test reads it.
#[derive(Debug, PartialEq)]
struct Owed {
    destination: String,
    kind: String,
    /// The ids the row names, sorted.
    ids: Vec<String>,
    created_at: DateTime<Utc>,
}

/// The tenant's outbox rows, oldest first.
async fn outbox(db: &Db, t: &TenantId) -> Vec<Owed> {
    let sql = "SELECT destination, kind, payload, created_at FROM outbox WHERE tenant_id = $1 ORDER BY created_at, id";
    let rows = db.query_all_raw(statement(db, sql, vec![t.as_str().into()])).await.unwrap();
    rows.iter()
        .map(|row| {
            let payload: Vec<u8> = row.try_get("", "payload").unwrap();
            let mut ids: Vec<String> = serde_json::from_slice(&payload).unwrap();
            ids.sort();
            Owed {
                destination: row.try_get("", "destination").unwrap(),
                kind: row.try_get("", "kind").unwrap(),
                ids,
                created_at: row.try_get("", "created_at").unwrap(),
            }
        })
        .collect()
}

async fn timeline_ids(store: &JourneyStore, t: &TenantId, who: Uuid, filter: &TimelineFilter) -> Vec<String> {
    store.timeline(t, who, filter, None, 100).await.unwrap().into_iter().map(|m| m.id).collect()
}

fn code(err: JourneyError) -> Code {
    tonic::Status::from(err).code()
}

cx_testkit::on_both_backends!(
    every_field_reads_back_as_stored,
    an_ingest_returns_and_names_only_what_it_stored,
    ten_thousand_and_one_touchpoints_are_named_by_two_outbox_rows,
    later_touchpoints_of_merged_customers_go_to_the_last_survivor,
    a_batch_under_a_deadline_is_stored_whole_or_not_at_all,
    the_roll_ups_give_the_hand_worked_analysis,
    an_erasure_removes_the_customers_data_and_counts_it,
    a_rebuild_gives_the_analysis_ingest_gave_to_the_second,
    a_rebuild_pages_through_more_instances_than_a_page_holds,
    a_map_is_versioned_by_its_steps,
    concurrent_step_updates_each_make_a_version,
    a_timeline_pages_newest_first_through_its_filters,
);

/// Every column, empty and set, through both ingest paths of PostgreSQL
/// (one statement; a transaction when on a map) and SQLite's.
async fn every_field_reads_back_as_stored(backend: Backend) {
    let Fixture { store, db, .. } = &open(backend).await;
    let t = tenant("acme");
    let (c1, c2, map) = (customer(1), customer(2), Uuid::from_u128(0xA11));
    let bare = tp("bare", "2026-03-01T09:15:30.123456Z", WEB);
    let attributes = BTreeMap::from([
        ("tier".to_owned(), AttributeValue::String("gold".into())),
        ("visits".to_owned(), AttributeValue::Int(3)),
        ("ratio".to_owned(), AttributeValue::Double(2.5)),
        ("vip".to_owned(), AttributeValue::Bool(true)),
    ]);
    // A score of 0 and an amount are not mistaken for the sentinels of "none".
    let full = Touchpoint {
        kind: InteractionKind::Transactional,
        initiator: Initiator::Push,
        phase: Some(Phase::During),
        score: Some(0),
        purchase: Some(("EUR".into(), 19_750_000)),
        device_id: Some("d-1".into()),
        attributes: attributes.clone(),
        ..tp("full", "2026-03-01T10:00:00Z", STORE)
    };
    let mapped = Touchpoint {
        phase: Some(Phase::Before),
        map: Some((map, 3)),
        step_key: Some("discover".into()),
        instance_id: Some("inst-1".into()),
        score: Some(10),
        ..tp("mapped", "2026-03-02T08:00:00Z", APP)
    };
    assert_eq!(ingest(store, &t, &[(c1, bare.clone()), (c1, full.clone())]).await, ids(&["bare", "full"]));
    assert_eq!(ingest(store, &t, &[(c2, mapped.clone())]).await, ids(&["mapped"]));

    // One row per batch, created when the batch was stored.
    let owed = outbox(db, &t).await;
    let kind = STORED_TOUCHPOINTS.to_owned();
    assert_eq!(
        owed.iter().map(|o| (o.destination.as_str(), o.kind.as_str(), o.ids.clone())).collect::<Vec<_>>(),
        [
            ("profile", kind.as_str(), vec!["bare".into(), "full".into()]),
            ("profile", kind.as_str(), vec!["mapped".into()])
        ]
    );
    let (first, second) = (owed[0].created_at, owed[1].created_at);

    let model = |id: &str, who: Uuid, tp: &Touchpoint, recorded_at| touchpoint::Model {
        tenant_id: "acme".into(),
        id: id.into(),
        customer_id: who,
        channel: tp.channel.code(),
        occurred_at: tp.occurred_at,
        kind: tp.kind.code(),
        initiator: tp.initiator.code(),
        phase: tp.phase.map_or(0, Phase::code),
        map_id: tp.map.map(|m| m.0),
        map_version: tp.map.map(|m| m.1),
        step_key: tp.step_key.clone(),
        instance_id: tp.instance_id.clone(),
        score: tp.score,
        currency: tp.purchase.as_ref().map(|p| p.0.clone()),
        amount_micros: tp.purchase.as_ref().map(|p| p.1),
        device_id: tp.device_id.clone(),
        attributes: (!tp.attributes.is_empty()).then(|| serde_json::to_value(&tp.attributes).unwrap()),
        recorded_at,
    };
    let filter = TimelineFilter::default();
    assert_eq!(
        store.timeline(&t, c1, &filter, None, 10).await.unwrap(),
        [model("full", c1, &full, first), model("bare", c1, &bare, first)],
        "newest first"
    );
    assert_eq!(store.timeline(&t, c2, &filter, None, 10).await.unwrap(), [model("mapped", c2, &mapped, second)]);
    assert_eq!(store.instance(&t, map, "inst-1", None).await.unwrap(), [model("mapped", c2, &mapped, second)]);

    // What the profile service will be told of each, and when it was stored.
    let acts = store.acts(&t, &["bare", "full", "mapped", "missing"]).await.unwrap();
    let act = |who: Uuid, tp: &Touchpoint| Act {
        customer: who,
        occurred_at: tp.occurred_at,
        channel: tp.channel.code(),
        initiator: tp.initiator.code(),
        kind: tp.kind.code(),
        device_id: tp.device_id.clone(),
        purchase: tp.purchase.clone(),
    };
    assert_eq!(
        acts,
        std::collections::HashMap::from([
            ("bare".to_owned(), (act(c1, &bare), first)),
            ("full".to_owned(), (act(c1, &full), first)),
            ("mapped".to_owned(), (act(c2, &mapped), second)),
        ])
    );
    assert!(store.acts(&tenant("other"), &["bare", "full"]).await.unwrap().is_empty(), "another tenant's");
}

/// Ids already stored are skipped, not returned and not named again.
async fn an_ingest_returns_and_names_only_what_it_stored(backend: Backend) {
    let Fixture { store, db, .. } = &open(backend).await;
    let (acme, beta) = (tenant("acme"), tenant("beta"));
    let (c1, map) = (customer(1), Uuid::from_u128(0xA11));
    let a = |n: u32| (c1, tp(&format!("a{n}"), &format!("2026-03-01T0{n}:00:00Z"), WEB));
    let m1 = (c1, on(map, Some("discover"), Some("i1"), Some(7), tp("m1", "2026-03-01T09:00:00Z", WEB)));

    assert_eq!(ingest(store, &acme, &[a(1), a(2)]).await, ids(&["a1", "a2"]));
    assert_eq!(ingest(store, &acme, &[a(2), a(3), a(4)]).await, ids(&["a3", "a4"]));
    assert_eq!(ingest(store, &acme, &[a(1), a(3)]).await, ids(&[]), "a replay stores nothing");
    // On a map (a transaction on PostgreSQL): a4 is known, m1 new.
    assert_eq!(ingest(store, &acme, &[a(4), m1.clone()]).await, ids(&["m1"]));
    // Ids are the tenant's own.
    assert_eq!(ingest(store, &beta, &[(customer(9), a(1).1)]).await, ids(&["a1"]));

    // Batches 1, 2 and 4; the replay owes nothing.
    let named = async |t: &TenantId| outbox(db, t).await.into_iter().map(|o| o.ids).collect::<Vec<_>>();
    assert_eq!(named(&acme).await, [vec!["a1", "a2"], vec!["a3", "a4"], vec!["m1"]]);
    assert_eq!(named(&beta).await, [vec!["a1"]]);
    let filter = TimelineFilter::default();
    assert_eq!(timeline_ids(store, &acme, c1, &filter).await, ["m1", "a4", "a3", "a2", "a1"]);
    assert_eq!(timeline_ids(store, &beta, customer(9), &filter).await, ["a1"]);
    // m1 counted once on its map, though its batch also carried a4.
    let counts = store.analyze(&acme, map, at("2026-03-01T00:00:00Z"), at("2026-03-02T00:00:00Z"), 10).await.unwrap();
    assert_eq!((counts.touchpoints, counts.instances), (1, 1));
}

/// A row names at most 10,000 touchpoints: PostgreSQL numbers the stored
/// rows in SQL, SQLite chunks the ids (and inserts 500 rows a statement).
async fn ten_thousand_and_one_touchpoints_are_named_by_two_outbox_rows(backend: Backend) {
    let Fixture { store, db, .. } = &open(backend).await;
    let t = tenant("acme");
    let c1 = customer(1);
    let all: Vec<String> = (0..10_001).map(|n| format!("n{n:05}")).collect();
    let rows: Vec<(Uuid, Touchpoint)> = all.iter().map(|id| (c1, tp(id, "2026-03-01T09:00:00Z", WEB))).collect();
    assert_eq!(ingest(store, &t, &rows).await.len(), 10_001);

    let owed = outbox(db, &t).await;
    let mut sizes: Vec<usize> = owed.iter().map(|o| o.ids.len()).collect();
    sizes.sort();
    assert_eq!(sizes, [1, 10_000]);
    let named: BTreeSet<&String> = owed.iter().flat_map(|o| &o.ids).collect();
    assert_eq!(named, all.iter().collect(), "each stored id named once");
    assert_eq!(owed[0].created_at, owed[1].created_at, "one batch");

    let asked: Vec<&str> = all.iter().map(String::as_str).chain(["missing"]).collect();
    let acts = store.acts(&t, &asked).await.unwrap();
    assert_eq!(acts.len(), 10_001);
    assert!(acts.values().all(|(act, _)| act.customer == c1 && act.channel == WEB.code()));
}

/// A into B, then B into S: what A and B had, and what comes later for
/// either, belongs to S — through PostgreSQL's join in the insert and
/// SQLite's look-up of survivors alike.
async fn later_touchpoints_of_merged_customers_go_to_the_last_survivor(backend: Backend) {
    let Fixture { store, db, .. } = &open(backend).await;
    let t = tenant("acme");
    let (a, b, s, map) = (customer(1), customer(2), customer(3), Uuid::from_u128(0xA11));
    let on_map = |id: &str, when: &str, score| on(map, Some("order"), Some("ia"), Some(score), tp(id, when, WEB));
    ingest(store, &t, &[(a, tp("a1", "2026-03-01T09:00:00Z", WEB))]).await;
    ingest(store, &t, &[(a, on_map("a2", "2026-03-01T10:00:00Z", 6))]).await;

    let merge = async |survivor, merged| {
        let txn = db.begin().await.unwrap();
        cx_runtime::gdpr::record_merge(&txn, &t, survivor, merged).await.unwrap();
        let moved = peers::merge(&txn, &t, survivor, merged).await.unwrap();
        txn.commit().await.unwrap();
        moved
    };
    assert_eq!(merge(b, a).await, 2, "a1 and a2 move to B");
    assert_eq!(merge(s, b).await, 2, "and on to S");

    // Later: for A, off the map (one statement on PostgreSQL) and on it (a
    // transaction); for B.
    assert_eq!(ingest(store, &t, &[(a, tp("a3", "2026-03-01T11:00:00Z", PHONE))]).await, ids(&["a3"]));
    assert_eq!(ingest(store, &t, &[(a, on_map("a4", "2026-03-01T12:00:00Z", 8))]).await, ids(&["a4"]));
    assert_eq!(ingest(store, &t, &[(b, tp("b1", "2026-03-01T13:00:00Z", WEB))]).await, ids(&["b1"]));

    let filter = TimelineFilter::default();
    assert_eq!(timeline_ids(store, &t, s, &filter).await, ["b1", "a4", "a3", "a2", "a1"]);
    // A merged id reads the survivor's timeline (docs/DOMAIN.md §2.5).
    assert_eq!(timeline_ids(store, &t, a, &filter).await, ["b1", "a4", "a3", "a2", "a1"]);
    assert_eq!(timeline_ids(store, &t, b, &filter).await, ["b1", "a4", "a3", "a2", "a1"]);
    let acts = store.acts(&t, &["a3", "a4", "b1"]).await.unwrap();
    assert!(acts.values().all(|(act, _)| act.customer == s), "{acts:?}");

    // Instance ia: scores 6 then 8, 1 and 3 from 5: peak 8, end 8 →
    // remembered 8; mean 7. Listed for S.
    let counts = store.analyze(&t, map, at("2026-03-01T00:00:00Z"), at("2026-03-02T00:00:00Z"), 10).await.unwrap();
    let ia = InstanceScores {
        instance_id: "ia".into(),
        customer: s,
        scored: 2,
        peak: 8,
        end: 8,
        remembered: 8.0,
        mean: 7.0,
    };
    assert_eq!((counts.touchpoints, counts.instances, counts.listed), (2, 1, vec![ia]));
}

/// With a deadline PostgreSQL takes the transaction path even off maps;
/// a deadline already passed stores nothing and owes nothing.
async fn a_batch_under_a_deadline_is_stored_whole_or_not_at_all(backend: Backend) {
    let Fixture { store, db, .. } = &open(backend).await;
    let t = tenant("acme");
    let c1 = customer(1);
    let batch = [(c1, tp("d1", "2026-03-01T09:00:00Z", WEB)), (c1, tp("d2", "2026-03-01T10:00:00Z", STORE))];
    let resolved: Vec<Resolved<'_>> = batch.iter().map(|(c, tp)| Resolved { customer: *c, touchpoint: tp }).collect();

    let passed = Deadline(tokio::time::Instant::now());
    let refused = Deadline::scope(Some(passed), store.ingest(&t, &resolved)).await.unwrap_err();
    assert_eq!(code(refused), Code::DeadlineExceeded);
    let filter = TimelineFilter::default();
    assert_eq!(timeline_ids(store, &t, c1, &filter).await, Vec::<String>::new());
    assert_eq!(outbox(db, &t).await, Vec::<Owed>::new());

    let live = Deadline(tokio::time::Instant::now() + std::time::Duration::from_secs(30));
    let stored = Deadline::scope(Some(live), store.ingest(&t, &resolved)).await.unwrap();
    assert_eq!(stored.into_iter().collect::<BTreeSet<_>>(), ids(&["d1", "d2"]));
    assert_eq!(timeline_ids(store, &t, c1, &filter).await, ["d2", "d1"]);
    let again = Deadline::scope(Some(live), store.ingest(&t, &resolved)).await.unwrap();
    assert!(again.is_empty());
    let named: Vec<Vec<String>> = outbox(db, &t).await.into_iter().map(|o| o.ids).collect();
    assert_eq!(named, [vec!["d1", "d2"]]);
}

const M: Uuid = Uuid::from_u128(0xA11);
const M2: Uuid = Uuid::from_u128(0xA22);
const D1: &str = "2026-03-01T00:00:00Z";
const D2: &str = "2026-03-02T00:00:00Z";
const D3: &str = "2026-03-03T00:00:00Z";

/// Four instances of map M over two days, a touchpoint of M outside any
/// instance, one of no map and one of map M2. Customers 1 and 2; customer
/// 3 (one touchpoint, no map) is merged into 2, customer 5 into 1.
///
/// | instance | customer | touchpoints (UTC, channel, step, score)                  |
/// |----------|----------|-----------------------------------------------------------|
/// | i1       | 1        | 1 Mar 09 web discover 9, 10 web order 3, 11 store delivery 7, 12 store delivery 5 |
/// | i2       | 2        | 1 Mar 14 app discover 2, 15 phone order 8                  |
/// | i3       | 1        | 2 Mar 08 web discover 10                                   |
/// | i4       | 2        | 2 Mar 09 store discover, 10 store order (unscored)         |
/// | none     | 1        | L1: 2 Mar 11 web order 6                                   |
///
/// Scores 9, 3, 7, 5 are 4, 2, 2, 0 from 5: i1's peak 9, end 5 →
/// remembered 7, mean 24/4 = 6, gap 1. i2: 2 and 8 are both 3 from 5, the
/// later wins: peak 8, end 8 → 8, mean 5, gap 3 (diverging, ≥ 2). i3: 10,
/// 10 → 10, mean 10, gap 0. i4 unscored.
fn fixture() -> Vec<(Uuid, Touchpoint)> {
    let (c1, c2, c3) = (customer(1), customer(2), customer(3));
    let m = |id: &str, when: &str, channel, step, instance, score| {
        on(M, Some(step), instance, score, tp(id, when, channel))
    };
    vec![
        (c1, m("i1-a", "2026-03-01T09:00:00Z", WEB, "discover", Some("i1"), Some(9))),
        (c1, m("i1-b", "2026-03-01T10:00:00Z", WEB, "order", Some("i1"), Some(3))),
        (c1, m("i1-c", "2026-03-01T11:00:00Z", STORE, "delivery", Some("i1"), Some(7))),
        (c1, m("i1-d", "2026-03-01T12:00:00Z", STORE, "delivery", Some("i1"), Some(5))),
        (c2, m("i2-a", "2026-03-01T14:00:00Z", APP, "discover", Some("i2"), Some(2))),
        (c2, m("i2-b", "2026-03-01T15:00:00Z", PHONE, "order", Some("i2"), Some(8))),
        (c1, m("i3-a", "2026-03-02T08:00:00Z", WEB, "discover", Some("i3"), Some(10))),
        (c2, m("i4-a", "2026-03-02T09:00:00Z", STORE, "discover", Some("i4"), None)),
        (c2, m("i4-b", "2026-03-02T10:00:00Z", STORE, "order", Some("i4"), None)),
        (c1, m("l1", "2026-03-02T11:00:00Z", WEB, "order", None, Some(6))),
        (c2, tp("n1", "2026-03-01T16:00:00Z", WEB)),
        (c2, on(M2, None, None, None, tp("x1", "2026-03-01T17:00:00Z", WEB))),
        (c3, tp("m1", "2026-03-01T18:00:00Z", PHONE)),
    ]
}

/// Stores the fixture, in two batches (each instance split between them),
/// and the merges 3 → 2 and 5 → 1.
async fn store_fixture(store: &JourneyStore, db: &Db, t: &TenantId) {
    let all = fixture();
    let (odd, even): (Vec<_>, Vec<_>) = all.iter().cloned().enumerate().partition(|(i, _)| i % 2 == 1);
    for half in [even, odd] {
        let half: Vec<(Uuid, Touchpoint)> = half.into_iter().map(|(_, row)| row).collect();
        assert_eq!(ingest(store, t, &half).await.len(), half.len());
    }
    let txn = db.begin().await.unwrap();
    cx_runtime::gdpr::record_merge(&txn, t, customer(2), customer(3)).await.unwrap();
    assert_eq!(peers::merge(&txn, t, customer(2), customer(3)).await.unwrap(), 1, "m1");
    cx_runtime::gdpr::record_merge(&txn, t, customer(1), customer(5)).await.unwrap();
    assert_eq!(peers::merge(&txn, t, customer(1), customer(5)).await.unwrap(), 0);
    txn.commit().await.unwrap();
}

fn scores(instance: &str, who: u128, scored: i64, peak: i64, end: i64, remembered: f64, mean: f64) -> InstanceScores {
    InstanceScores { instance_id: instance.into(), customer: customer(who), scored, peak, end, remembered, mean }
}

/// Instances by the sorted keys of the steps they reached.
fn step_sets(sets: &[(&[&str], i64)]) -> BTreeMap<Vec<String>, i64> {
    sets.iter().map(|(keys, n)| (keys.iter().map(|k| (*k).to_owned()).collect(), *n)).collect()
}

/// (touchpoints, instances, scored, score sum, disappointing ≤ 4, neutral 5–6, delight ≥ 7).
type StepRow = (i64, i64, i64, i64, i64, i64, i64);

fn steps(counts: &Counts) -> Vec<(&str, StepRow)> {
    counts
        .steps
        .iter()
        .map(|(key, s)| {
            (key.as_str(), (s.touchpoints, s.instances, s.scored, s.score_sum, s.disappointing, s.neutral, s.delight))
        })
        .collect()
}

/// The fixture's analysis of M over both days, then each day alone.
fn fixture_analysis() -> [(&'static str, &'static str, Counts); 3] {
    let both = Counts {
        // i1 4 + i2 2 + i3 1 + i4 2 + l1 = 10; n1, x1 and m1 are not on M.
        touchpoints: 10,
        instances: 4,
        // Filled below: discover i1-a 9, i2-a 2, i3-a 10, i4-a; order i1-b 3,
        // i2-b 8, i4-b, l1 6; delivery i1-c 7, i1-d 5.
        steps: Vec::new(),
        // i1, i2, i4 have 2 or more; i1 (web, store) and i2 (app, phone) cross channels.
        multi_touch: 3,
        cross_channel: 2,
        // Web → store in i1, app → phone in i2: one each, ordered by channel.
        switches: vec![(WEB.code(), STORE.code(), 1), (APP.code(), PHONE.code(), 1)],
        scored_instances: 3,
        remembered_sum: 7.0 + 8.0 + 10.0,
        mean_sum: 6.0 + 5.0 + 10.0,
        diverging: 1,
        // Farthest from their mean first (gaps 3, 1, 0), two of them.
        listed: vec![scores("i2", 2, 2, 8, 8, 8.0, 5.0), scores("i1", 1, 4, 9, 5, 7.0, 6.0)],
        // i1 reached all three steps; i2 and i4 discover and order; i3 discover.
        step_sets: step_sets(&[
            (&["delivery", "discover", "order"], 1),
            (&["discover", "order"], 2),
            (&["discover"], 1),
        ]),
    };
    let first = Counts {
        touchpoints: 6,
        instances: 2,
        multi_touch: 2,
        cross_channel: 2,
        switches: both.switches.clone(),
        scored_instances: 2,
        remembered_sum: 15.0,
        mean_sum: 11.0,
        diverging: 1,
        listed: both.listed.clone(),
        steps: Vec::new(),
        step_sets: step_sets(&[(&["delivery", "discover", "order"], 1), (&["discover", "order"], 1)]),
    };
    // i3 (10), i4 (unscored, one channel) and l1.
    let second = Counts {
        touchpoints: 4,
        instances: 2,
        multi_touch: 1,
        cross_channel: 0,
        switches: vec![],
        scored_instances: 1,
        remembered_sum: 10.0,
        mean_sum: 10.0,
        diverging: 0,
        listed: vec![scores("i3", 1, 1, 10, 10, 10.0, 10.0)],
        steps: Vec::new(),
        step_sets: step_sets(&[(&["discover", "order"], 1), (&["discover"], 1)]),
    };
    [(D1, D3, both), (D1, D2, first), (D2, D3, second)]
}

/// The steps of [`fixture_analysis`], in key order.
fn fixture_steps() -> [Vec<(&'static str, StepRow)>; 3] {
    [
        vec![
            // i1-c 7, i1-d 5: sum 12.
            ("delivery", (2, 1, 2, 12, 0, 1, 1)),
            // 9, 2, 10 and i4-a: sum 21; 2 disappointing, 9 and 10 delight.
            ("discover", (4, 4, 3, 21, 1, 0, 2)),
            // 3, 8, 6, i4-b; l1 is in no instance: 3 instances, sum 17.
            ("order", (4, 3, 3, 17, 1, 1, 1)),
        ],
        vec![
            ("delivery", (2, 1, 2, 12, 0, 1, 1)),
            ("discover", (2, 2, 2, 11, 1, 0, 1)),
            ("order", (2, 2, 2, 11, 1, 0, 1)),
        ],
        vec![("discover", (2, 2, 1, 10, 0, 0, 1)), ("order", (2, 1, 1, 6, 0, 1, 0))],
    ]
}

async fn assert_fixture_analysis(store: &JourneyStore, t: &TenantId, when: &str) {
    for ((since, until, want), want_steps) in fixture_analysis().into_iter().zip(fixture_steps()) {
        let got = store.analyze(t, M, at(since), at(until), 2).await.unwrap();
        assert_eq!(steps(&got), want_steps, "{when}: steps of [{since}, {until})");
        assert_eq!(Counts { steps: Vec::new(), ..got }, want, "{when}: [{since}, {until})");
    }
}

async fn the_roll_ups_give_the_hand_worked_analysis(backend: Backend) {
    let Fixture { store, db, .. } = &open(backend).await;
    let t = tenant("acme");
    store_fixture(store, db, &t).await;
    assert_fixture_analysis(store, &t, "after ingest").await;
    // M2: x1 alone, in no instance.
    let m2 = store.analyze(&t, M2, at(D1), at(D3), 2).await.unwrap();
    assert_eq!((m2.touchpoints, m2.instances, m2.listed.len()), (1, 0, 0));
    let i1: Vec<String> = store.instance(&t, M, "i1", None).await.unwrap().into_iter().map(|m| m.id).collect();
    assert_eq!(i1, ["i1-a", "i1-b", "i1-c", "i1-d"]);
    // Another tenant has nothing of it.
    assert_eq!(store.analyze(&tenant("other"), M, at(D1), at(D3), 2).await.unwrap(), Counts::default());
}

/// Erasing customer 2: i2-a, i2-b, i4-a, i4-b, n1, x1 and m1 (moved from
/// 3 by the merge) are 7 touchpoints.
async fn an_erasure_removes_the_customers_data_and_counts_it(backend: Backend) {
    let Fixture { store, db, .. } = &open(backend).await;
    let t = tenant("acme");
    store_fixture(store, db, &t).await;
    let txn = db.begin().await.unwrap();
    let mut maps = peers::maps_of(&txn, &t, &[customer(2)]).await.unwrap();
    maps.sort();
    assert_eq!(maps, [M, M2]);
    let none: Vec<Uuid> = Vec::new();
    assert_eq!(peers::maps_of(&txn, &t, &[customer(3)]).await.unwrap(), none, "m1 moved, and is on no map");
    let counts = peers::erase(&txn, &t, &[customer(2)]).await.unwrap();
    txn.commit().await.unwrap();
    // The merge 3 → 2 is the runtime's to forget and count (cx_runtime::gdpr).
    assert_eq!(counts, BTreeMap::from([("touchpoints".to_owned(), 7)]));

    // Left on M: i1 (4), i3 (1) and l1: 6 touchpoints, 2 instances, i1
    // multi-touch and cross-channel, remembered 7 + 10, means 6 + 10.
    let got = store.analyze(&t, M, at(D1), at(D3), 10).await.unwrap();
    assert_eq!(
        steps(&got),
        [("delivery", (2, 1, 2, 12, 0, 1, 1)), ("discover", (2, 2, 2, 19, 0, 0, 2)), ("order", (2, 1, 2, 9, 1, 1, 0)),]
    );
    let want = Counts {
        touchpoints: 6,
        instances: 2,
        steps: Vec::new(),
        multi_touch: 1,
        cross_channel: 1,
        switches: vec![(WEB.code(), STORE.code(), 1)],
        scored_instances: 2,
        remembered_sum: 17.0,
        mean_sum: 16.0,
        diverging: 0,
        listed: vec![scores("i1", 1, 4, 9, 5, 7.0, 6.0), scores("i3", 1, 1, 10, 10, 10.0, 10.0)],
        step_sets: step_sets(&[(&["delivery", "discover", "order"], 1), (&["discover"], 1)]),
    };
    assert_eq!(Counts { steps: Vec::new(), ..got }, want);
    assert_eq!(store.analyze(&t, M2, at(D1), at(D3), 10).await.unwrap(), Counts::default());
    let filter = TimelineFilter::default();
    assert_eq!(timeline_ids(store, &t, customer(2), &filter).await, Vec::<String>::new());
    assert_eq!(timeline_ids(store, &t, customer(1), &filter).await.len(), 6, "customer 1 keeps hers");

    // Erased again: nothing left to count.
    let txn = db.begin().await.unwrap();
    let again = peers::erase(&txn, &t, &[customer(2)]).await.unwrap();
    txn.commit().await.unwrap();
    assert_eq!(again, BTreeMap::from([("touchpoints".to_owned(), 0)]));
}

/// The database works out the day of each touchpoint when it rebuilds:
/// the same days Rust gave them at ingest, also before 1970 and in the
/// last millisecond of a day (SQLite's `julianday` would round
/// 23:59:59.9996 up to the next day; it truncates to 23:59:59.999).
async fn a_rebuild_gives_the_analysis_ingest_gave_to_the_second(backend: Backend) {
    let Fixture { store, db, .. } = &open(backend).await;
    let t = tenant("acme");
    store_fixture(store, db, &t).await;
    let edge = Uuid::from_u128(0xED6E);
    let edges = [
        ("e1", "1969-12-31T23:59:59Z"),
        ("e2", "1970-01-01T00:00:00Z"),
        ("e3", "2026-03-01T23:59:59.999Z"),
        ("e3b", "2026-03-01T23:59:59.999999Z"),
        ("e4", "2026-03-02T00:00:00Z"),
    ];
    let rows: Vec<(Uuid, Touchpoint)> =
        edges.iter().map(|(id, when)| (customer(1), on(edge, Some("s"), None, None, tp(id, when, WEB)))).collect();
    ingest(store, &t, &rows).await;
    // Days -1, 0, 20,513 (e3 and e3b) and 20,514.
    let days = [
        ("1969-12-31T00:00:00Z", "1970-01-01T00:00:00Z"),
        ("1970-01-01T00:00:00Z", "1970-01-02T00:00:00Z"),
        (D1, D2),
        (D2, D3),
    ];
    let per_day = async || {
        let mut out = Vec::new();
        for (since, until) in days {
            out.push(store.analyze(&t, edge, at(since), at(until), 2).await.unwrap().touchpoints);
        }
        out
    };
    assert_eq!(per_day().await, [1, 1, 2, 1], "at ingest");

    for table in ["journey_rollups", "journey_instances"] {
        db.execute_unprepared(&format!("DELETE FROM {table}")).await.unwrap();
    }
    assert_eq!(store.analyze(&t, M, at(D1), at(D3), 2).await.unwrap(), Counts::default(), "emptied");
    cx_journey::store::rollup::rebuild(db).await.unwrap();
    assert_fixture_analysis(store, &t, "after a rebuild").await;
    assert_eq!(per_day().await, [1, 1, 2, 1], "after a rebuild");
}

/// A rebuild refreshes 5,000 instances a page, across tenants: 4,999 of
/// acme's and 2 of beta's make a page ending inside beta's and a second
/// page after it.
async fn a_rebuild_pages_through_more_instances_than_a_page_holds(backend: Backend) {
    let Fixture { store, db, .. } = &open(backend).await;
    let (acme, beta) = (tenant("acme"), tenant("beta"));
    let one_each = |n: usize, prefix: &str| -> Vec<(Uuid, Touchpoint)> {
        (0..n)
            .map(|i| {
                let id = format!("{prefix}-{i:04}");
                (customer(1), on(M, Some("visit"), Some(&id), Some(7), tp(&id, "2026-03-01T09:00:00Z", WEB)))
            })
            .collect()
    };
    assert_eq!(ingest(store, &acme, &one_each(4_999, "a")).await.len(), 4_999);
    assert_eq!(ingest(store, &beta, &one_each(2, "b")).await.len(), 2);
    // Each instance: 1 touchpoint scored 7 → remembered 7, mean 7, gap 0;
    // all listed (every instance's row written), by id as the gaps tie.
    let totals = async |t: &TenantId| {
        let c = store.analyze(t, M, at(D1), at(D2), 10_000).await.unwrap();
        let listed = (
            c.listed.len(),
            c.listed.first().map(|i| i.instance_id.clone()),
            c.listed.last().map(|i| i.instance_id.clone()),
        );
        (c.touchpoints, c.instances, c.multi_touch, c.scored_instances, c.remembered_sum, c.diverging, listed)
    };
    let acme_totals = (4_999, 4_999, 0, 4_999, 7.0 * 4_999.0, 0, (4_999, Some("a-0000".into()), Some("a-4998".into())));
    let beta_totals = (2, 2, 0, 2, 14.0, 0, (2, Some("b-0000".into()), Some("b-0001".into())));
    assert_eq!(totals(&acme).await, acme_totals, "at ingest");
    assert_eq!(totals(&beta).await, beta_totals, "at ingest");

    for table in ["journey_rollups", "journey_instances"] {
        db.execute_unprepared(&format!("DELETE FROM {table}")).await.unwrap();
    }
    cx_journey::store::rollup::rebuild(db).await.unwrap();
    assert_eq!(totals(&acme).await, acme_totals, "after a rebuild");
    assert_eq!(totals(&beta).await, beta_totals, "after a rebuild");
}

fn step(key: &str) -> Step {
    Step {
        key: key.into(),
        name: format!("Step {key}"),
        phase: Phase::During,
        expected_channels: vec![Channel::Web, Channel::Store],
        importance: 3,
        target_score: 7.5,
        moment_of_truth: true,
        conversion: false,
    }
}

fn summary(map: &MapRecord) -> (Uuid, &str, &str, MetaJourney, i32, Vec<&str>) {
    let keys = map.steps.iter().map(|s| s.key.as_str()).collect();
    (map.id, map.name.as_str(), map.customer_type.as_str(), map.meta_journey, map.version, keys)
}

async fn a_map_is_versioned_by_its_steps(backend: Backend) {
    let Fixture { store, .. } = &open(backend).await;
    let t = tenant("acme");
    let sofa = store
        .create_map(
            &t,
            MapChanges {
                name: Some("Sofa".into()),
                customer_type: Some("young family".into()),
                meta_journey: Some(MetaJourney::Chore),
                steps: Some(vec![step("discover")]),
            },
        )
        .await
        .unwrap();
    assert_eq!(summary(&sofa), (sofa.id, "Sofa", "young family", MetaJourney::Chore, 1, vec!["discover"]));
    assert_eq!(sofa.steps, [step("discover")], "every field of a step kept");

    // A new name keeps the version; new steps make version 2.
    let renamed = MapChanges { name: Some("Sofa 2".into()), ..MapChanges::default() };
    assert_eq!(summary(&store.update_map(&t, sofa.id, renamed).await.unwrap()).4, 1);
    let more = MapChanges {
        steps: Some(vec![step("discover"), step("order")]),
        meta_journey: Some(MetaJourney::Ritual),
        ..MapChanges::default()
    };
    let v2 = store.update_map(&t, sofa.id, more).await.unwrap();
    assert_eq!(summary(&v2), (sofa.id, "Sofa 2", "young family", MetaJourney::Ritual, 2, vec!["discover", "order"]));
    assert_eq!(summary(&store.get_map(&t, sofa.id, Some(1)).await.unwrap()).5, ["discover"]);
    assert_eq!(store.get_map(&t, sofa.id, None).await.unwrap(), v2);
    assert_eq!(code(store.get_map(&t, sofa.id, Some(3)).await.unwrap_err()), Code::NotFound);

    // Listed in creation order at their current versions; one more than the page.
    let table = MapChanges {
        name: Some("Table".into()),
        customer_type: Some("student".into()),
        meta_journey: Some(MetaJourney::LowestPrice),
        steps: Some(vec![step("compare")]),
    };
    let table = store.create_map(&t, table).await.unwrap();
    let listed = store.list_maps(&t, None, 1).await.unwrap();
    assert_eq!(
        listed.iter().map(summary).collect::<Vec<_>>(),
        [
            (sofa.id, "Sofa 2", "young family", MetaJourney::Ritual, 2, vec!["discover", "order"]),
            (table.id, "Table", "student", MetaJourney::LowestPrice, 1, vec!["compare"]),
        ]
    );
    assert_eq!(store.list_maps(&t, Some(sofa.id), 10).await.unwrap(), std::slice::from_ref(&table));
    assert_eq!(store.list_maps(&tenant("other"), None, 10).await.unwrap(), Vec::<MapRecord>::new());
    assert_eq!(code(store.get_map(&tenant("other"), sofa.id, None).await.unwrap_err()), Code::NotFound);

    store.delete_map(&t, sofa.id).await.unwrap();
    assert_eq!(code(store.get_map(&t, sofa.id, None).await.unwrap_err()), Code::NotFound);
    assert_eq!(code(store.get_map(&t, sofa.id, Some(1)).await.unwrap_err()), Code::NotFound, "versions too");
    assert_eq!(code(store.delete_map(&t, sofa.id).await.unwrap_err()), Code::NotFound);
    assert_eq!(store.list_maps(&t, None, 10).await.unwrap(), [table]);
}

/// Five updates with new steps at once: versions 2 to 6, one each, none
/// lost. (On PostgreSQL the map's row is locked: two updates reading
/// version 1 would both write version 2, and one would fail.)
async fn concurrent_step_updates_each_make_a_version(backend: Backend) {
    let Fixture { store, .. } = &open(backend).await;
    let t = tenant("acme");
    let new = MapChanges {
        name: Some("Sofa".into()),
        customer_type: Some("family".into()),
        meta_journey: Some(MetaJourney::Chore),
        steps: Some(vec![step("start")]),
    };
    let map = store.create_map(&t, new).await.unwrap();
    let updates = (0..5).map(|k| {
        let changes = MapChanges { steps: Some(vec![step(&format!("s{k}"))]), ..MapChanges::default() };
        store.update_map(&t, map.id, changes)
    });
    for updated in futures::future::join_all(updates).await {
        // Read after its commit: its own version or a later one.
        assert!(updated.unwrap().version >= 2);
    }
    assert_eq!(store.get_map(&t, map.id, None).await.unwrap().version, 6);
    let mut keys = BTreeSet::new();
    for version in 2..=6 {
        let at_version = store.get_map(&t, map.id, Some(version)).await.unwrap();
        keys.insert(at_version.steps[0].key.clone());
    }
    assert_eq!(keys, ["s0", "s1", "s2", "s3", "s4"].into_iter().map(str::to_owned).collect());
}

/// Newest first, ties by id; filters by channel, phase and a half-open
/// range; pages after a position, also inside a tie.
async fn a_timeline_pages_newest_first_through_its_filters(backend: Backend) {
    let Fixture { store, .. } = &open(backend).await;
    let t = tenant("acme");
    let (c1, c2) = (customer(1), customer(2));
    let phased = |id: &str, when: &str, channel, phase| Touchpoint { phase: Some(phase), ..tp(id, when, channel) };
    let rows = [
        (c1, phased("t0", "2026-03-01T09:00:00Z", WEB, Phase::Before)),
        (c1, phased("t1", "2026-03-01T09:00:00.5Z", WEB, Phase::Before)),
        (c1, phased("t2", "2026-03-01T10:00:00Z", STORE, Phase::During)),
        (c1, phased("t3", "2026-03-01T10:00:00Z", WEB, Phase::During)),
        (c1, phased("t4", "2026-03-02T08:00:00Z", PHONE, Phase::After)),
        (c1, phased("t5", "2026-03-02T09:00:00Z", WEB, Phase::Before)),
        (c2, phased("other", "2026-03-01T11:00:00Z", WEB, Phase::Before)),
    ];
    ingest(store, &t, &rows).await;
    let all = TimelineFilter::default();
    assert_eq!(timeline_ids(store, &t, c1, &all).await, ["t5", "t4", "t3", "t2", "t1", "t0"]);

    // Pages of 2: each read returns one more when another page follows.
    let page = async |after: Option<(&str, &str)>| -> Vec<String> {
        let after = after.map(|(when, id)| (at(when), id.to_owned()));
        store.timeline(&t, c1, &all, after, 2).await.unwrap().into_iter().map(|m| m.id).collect()
    };
    assert_eq!(page(None).await, ["t5", "t4", "t3"]);
    assert_eq!(page(Some(("2026-03-02T08:00:00Z", "t4"))).await, ["t3", "t2", "t1"]);
    assert_eq!(page(Some(("2026-03-01T10:00:00Z", "t3"))).await, ["t2", "t1", "t0"], "inside the tie");
    assert_eq!(page(Some(("2026-03-01T09:00:00.5Z", "t1"))).await, ["t0"]);

    let web = TimelineFilter { channels: vec![WEB], ..TimelineFilter::default() };
    assert_eq!(timeline_ids(store, &t, c1, &web).await, ["t5", "t3", "t1", "t0"]);
    let during = TimelineFilter { phase: Some(Phase::During), ..TimelineFilter::default() };
    assert_eq!(timeline_ids(store, &t, c1, &during).await, ["t3", "t2"]);
    // From 09:00:00.5 (included) to 2 March 08:00 (excluded).
    let range = TimelineFilter {
        since: Some(at("2026-03-01T09:00:00.5Z")),
        until: Some(at("2026-03-02T08:00:00Z")),
        ..TimelineFilter::default()
    };
    assert_eq!(timeline_ids(store, &t, c1, &range).await, ["t3", "t2", "t1"]);
    let late_web_or_phone =
        TimelineFilter { channels: vec![WEB, PHONE], since: Some(at(D2)), ..TimelineFilter::default() };
    assert_eq!(timeline_ids(store, &t, c1, &late_web_or_phone).await, ["t5", "t4"]);
    assert_eq!(timeline_ids(store, &tenant("other"), c1, &all).await, Vec::<String>::new());
}
