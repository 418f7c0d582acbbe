//! What the profile service is told of stored touchpoints, on PostgreSQL
//! (one statement stores a batch and its outbox row) and SQLite (one
//! transaction): each row names exactly the touchpoints its ingest stored,
//! and its delivery reads them as they are then — erased ones left out,
//! merged ones counted for the survivor.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use cx_journey::domain::touchpoint::{Customer, Touchpoint};
use cx_journey::store::activity::{ActivityExpander, STORED_TOUCHPOINTS};
use cx_journey::store::ingest::Resolved;
use cx_journey::store::migration::Migrator;
use cx_journey::store::{JourneyStore, peers};
use cx_proto::profile::v1 as profile;
use cx_runtime::TenantId;
use cx_runtime::outbox::dispatcher::{Claimed, Dispatcher, DispatcherConfig, Expand};
use cx_testkit::TestDb;
use prost::{Message, Name};
use sea_orm::{DatabaseConnection, TransactionTrait};
use uuid::Uuid;

const WEB: i16 = 1;
const STORE: i16 = 9;

fn tp(id: &str, channel: i16, at: &str, purchase: Option<i64>) -> Touchpoint {
    Touchpoint {
        id: id.into(),
        customer: Customer::Profile(Uuid::nil()),
        channel,
        digital: channel == WEB,
        occurred_at: at.parse().unwrap(),
        kind: if purchase.is_some() { 2 } else { 1 },
        initiator: 2,
        phase: 0,
        map: None,
        step_key: None,
        instance_id: None,
        score: None,
        purchase: purchase.map(|m| ("EUR".to_owned(), m)),
        device_id: None,
        attributes: Default::default(),
    }
}

/// The activity each claimed row delivers: (profile, channel, touchpoints,
/// purchases) per record, by the row's payload.
async fn delivered(store: &JourneyStore, claimed: &[Claimed]) -> Vec<Option<Vec<(String, i32, i64, i64)>>> {
    let rows: Vec<&Claimed> = claimed.iter().collect();
    let contents = ActivityExpander(store.clone()).expand(&rows).await.unwrap();
    contents
        .into_iter()
        .zip(claimed)
        .map(|(content, row)| {
            content.map(|(kind, payload)| {
                assert_eq!(kind, profile::RecordActivityRequest::full_name());
                let request = profile::RecordActivityRequest::decode(payload.as_slice()).unwrap();
                assert_eq!(request.batch_id, row.id.to_string(), "a redelivery is the same batch");
                request.records.into_iter().map(|r| (r.profile_id, r.channel, r.touchpoints, r.purchases)).collect()
            })
        })
        .collect()
}

async fn check(db: DatabaseConnection) {
    cx_runtime::store::migrate::<Migrator>(&db, "journey").await.unwrap();
    let store = JourneyStore::new(db.clone());
    let t = TenantId::parse("activity").unwrap();
    let (a, b, c, d) = (Uuid::from_u128(0xA), Uuid::from_u128(0xB), Uuid::from_u128(0xC), Uuid::from_u128(0xD));
    let ingest = |rows: Vec<(Uuid, Touchpoint)>| {
        let store = store.clone();
        let t = t.clone();
        async move {
            let resolved: Vec<Resolved<'_>> =
                rows.iter().map(|(customer, tp)| Resolved { customer: *customer, touchpoint: tp }).collect();
            store.ingest(&t, &resolved).await.unwrap().len()
        }
    };
    // First batch: A twice on the web, B buys in store, C once on the web.
    let first = vec![
        (a, tp("a1", WEB, "2026-03-01T09:00:00Z", None)),
        (a, tp("a2", WEB, "2026-03-01T10:00:00Z", None)),
        (b, tp("b1", STORE, "2026-03-01T11:00:00Z", Some(25_000_000))),
        (c, tp("c1", WEB, "2026-03-01T12:00:00Z", None)),
    ];
    assert_eq!(ingest(first).await, 4);
    // Second batch: a1 and b1 again (replays), one new touchpoint of B.
    let second = vec![
        (a, tp("a1", WEB, "2026-03-01T09:00:00Z", None)),
        (b, tp("b1", STORE, "2026-03-01T11:00:00Z", Some(25_000_000))),
        (b, tp("b2", WEB, "2026-03-01T13:00:00Z", None)),
    ];
    assert_eq!(ingest(second).await, 1);
    // A batch of replays only owes the profile service nothing.
    assert_eq!(ingest(vec![(c, tp("c1", WEB, "2026-03-01T12:00:00Z", None))]).await, 0);

    let dispatcher = Dispatcher::new(db.clone(), DispatcherConfig::new("journey"), HashMap::new(), None);
    let mut claimed = dispatcher.claim().await.unwrap();
    claimed.sort_by_key(|row| row.id);
    let kinds: Vec<&str> = claimed.iter().map(|row| row.kind.as_str()).collect();
    assert_eq!(kinds, [STORED_TOUCHPOINTS, STORED_TOUCHPOINTS], "one row per batch that stored something");
    let payloads: Vec<Vec<String>> = claimed
        .iter()
        .map(|row| {
            let mut ids: Vec<String> = serde_json::from_slice(&row.payload).unwrap();
            ids.sort();
            ids
        })
        .collect();
    assert_eq!(payloads, [vec!["a1", "a2", "b1", "c1"], vec!["b2"]]);

    let (a, b, c, d) = (a.to_string(), b.to_string(), c.to_string(), d.to_string());
    assert_eq!(
        delivered(&store, &claimed).await,
        [
            Some(vec![(a.clone(), 1, 2, 0), (b.clone(), 9, 1, 1), (c.clone(), 1, 1, 0)]),
            Some(vec![(b.clone(), 1, 1, 0)]),
        ]
    );

    // Before delivery, C merges into D and A is erased: A's activity is
    // gone, C's counts for D, B's is untouched.
    let txn = db.begin().await.unwrap();
    peers::merge(&txn, &t, d.parse().unwrap(), c.parse().unwrap()).await.unwrap();
    peers::erase(&txn, &t, &[a.parse().unwrap()]).await.unwrap();
    txn.commit().await.unwrap();
    assert_eq!(
        delivered(&store, &claimed).await,
        [Some(vec![(b.clone(), 9, 1, 1), (d.clone(), 1, 1, 0)]), Some(vec![(b, 1, 1, 0)])]
    );
    // B erased too: the second row has nothing left to send.
    let txn = db.begin().await.unwrap();
    peers::erase(&txn, &t, &[Uuid::from_u128(0xB)]).await.unwrap();
    txn.commit().await.unwrap();
    assert_eq!(delivered(&store, &claimed).await, [Some(vec![(d, 1, 1, 0)]), None]);
}

#[tokio::test]
async fn each_row_names_what_its_ingest_stored_and_delivers_it_as_it_is_then_on_postgres() {
    let test_db = TestDb::create().await.unwrap();
    let args = cx_testkit::store_args(Some(test_db.url.clone()), cx_testkit::temp_dir());
    check(cx_runtime::store::open(&args, "journey").await.unwrap()).await;
}

#[tokio::test]
async fn each_row_names_what_its_ingest_stored_and_delivers_it_as_it_is_then_on_sqlite() {
    let dir = cx_testkit::temp_dir();
    let args = cx_testkit::store_args(None, dir.clone());
    check(cx_runtime::store::open(&args, "journey").await.unwrap()).await;
    let _ = std::fs::remove_dir_all(dir);
}
