//! What the profile service is told of stored touchpoints, on PostgreSQL
//! (one statement stores a batch and its outbox row) and SQLite (one
//! transaction): each row names exactly the touchpoints its ingest stored,
//! and its delivery reads them as they are then — erased ones left out,
//! merged ones counted for the survivor.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cx_journey::domain::channel::Channel;
use cx_journey::domain::touchpoint::{Customer, Initiator, InteractionKind, Touchpoint};
use cx_journey::store::activity::{ActivityExpander, STORED_TOUCHPOINTS};
use cx_journey::store::ingest::Resolved;
use cx_journey::store::migration::Migrator;
use cx_journey::store::{JourneyStore, peers};
use cx_proto::profile::v1 as profile;
use cx_runtime::TenantId;
use cx_runtime::outbox::dispatcher::{Claimed, Expand};
use cx_runtime::store::Db;
use cx_testkit::{Backend, ServiceDb};
use prost::{Message, Name};
use sea_orm::TransactionTrait;
use uuid::Uuid;

const WEB: i16 = 1;
const STORE: i16 = 9;

fn tp(id: &str, channel: i16, at: &str, purchase: Option<i64>) -> Touchpoint {
    Touchpoint {
        id: id.into(),
        customer: Customer::Profile(Uuid::nil()),
        channel: Channel::from_code(i32::from(channel)).unwrap(),
        digital: channel == WEB,
        occurred_at: at.parse().unwrap(),
        kind: if purchase.is_some() { InteractionKind::Transactional } else { InteractionKind::Informative },
        initiator: Initiator::Pull,
        phase: None,
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
    let contents = ActivityExpander(store.clone()).expand(&rows).await;
    assert_eq!(contents.len(), claimed.len());
    contents
        .into_iter()
        .zip(claimed)
        .map(|(content, row)| {
            content.unwrap().map(|(kind, payload)| {
                assert_eq!(kind, profile::RecordActivityRequest::full_name());
                let request = profile::RecordActivityRequest::decode(payload.as_slice()).unwrap();
                assert_eq!(request.batch_id, row.id.to_string(), "a redelivery is the same batch");
                request.records.into_iter().map(|r| (r.profile_id, r.channel, r.touchpoints, r.purchases)).collect()
            })
        })
        .collect()
}

/// The ids each pending row names, sorted, claiming them afresh.
async fn claim(db: &Db, tenant: &str) -> Vec<Claimed> {
    let mut claimed = cx_testkit::outbox::claim_pending(db, "journey", tenant).await;
    claimed.sort_by_key(|row| row.id);
    assert!(claimed.iter().all(|row| row.kind == STORED_TOUCHPOINTS.as_str()));
    claimed
}

fn named(claimed: &[Claimed]) -> Vec<Vec<String>> {
    claimed
        .iter()
        .map(|row| {
            let mut ids: Vec<String> = serde_json::from_slice(&row.payload).unwrap();
            ids.sort();
            ids
        })
        .collect()
}

async fn check(db: Db) {
    cx_runtime::store::migrate::<Migrator>(&db, "journey").await.unwrap();
    let store = JourneyStore::new(db.clone());
    let t = TenantId::parse("activity").unwrap();
    let [a, b, c, d, e] = [0xA, 0xB, 0xC, 0xD, 0xE].map(Uuid::from_u128);
    let ingest = |t: TenantId, rows: Vec<(Uuid, Touchpoint)>| {
        let store = store.clone();
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
    assert_eq!(ingest(t.clone(), first).await, 4);
    // Second batch: a1 and b1 again (replays), and B's b2 on a journey map,
    // which takes the transaction that keeps the map's roll-ups.
    let mut b2 = tp("b2", WEB, "2026-03-01T13:00:00Z", None);
    (b2.map, b2.instance_id) = (Some((Uuid::from_u128(0x5), 1)), Some("order-1".to_owned()));
    let second = vec![
        (a, tp("a1", WEB, "2026-03-01T09:00:00Z", None)),
        (b, tp("b1", STORE, "2026-03-01T11:00:00Z", Some(25_000_000))),
        (b, b2),
    ];
    assert_eq!(ingest(t.clone(), second).await, 1);
    // A batch of replays only owes the profile service nothing.
    assert_eq!(ingest(t.clone(), vec![(c, tp("c1", WEB, "2026-03-01T12:00:00Z", None))]).await, 0);

    let claimed = claim(&db, "activity").await;
    assert_eq!(named(&claimed), [vec!["a1", "a2", "b1", "c1"], vec!["b2"]], "one row per batch that stored");
    let [a, b, c, d, e] = [a, b, c, d, e].map(|id| id.to_string());
    assert_eq!(
        delivered(&store, &claimed).await,
        [
            Some(vec![(a.clone(), 1, 2, 0), (b.clone(), 9, 1, 1), (c.clone(), 1, 1, 0)]),
            Some(vec![(b.clone(), 1, 1, 0)]),
        ]
    );

    // Before delivery, C merges into D and A is erased: the rows stay, A's
    // activity is gone from them, C's counts for D, B's is untouched.
    let txn = db.begin().await.unwrap();
    cx_runtime::gdpr::record_merge(&txn, &t, d.parse().unwrap(), c.parse().unwrap()).await.unwrap();
    peers::merge(&txn, &t, d.parse().unwrap(), c.parse().unwrap()).await.unwrap();
    peers::erase(&txn, &t, &[a.parse().unwrap()]).await.unwrap();
    txn.commit().await.unwrap();
    // Then a1 is used again, for E, and C (merged away) comes back: stored for D.
    let third = vec![
        (e.parse().unwrap(), tp("a1", WEB, "2026-03-02T09:00:00Z", None)),
        (c.parse().unwrap(), tp("c2", WEB, "2026-03-02T10:00:00Z", None)),
    ];
    assert_eq!(ingest(t.clone(), third).await, 2);
    let claimed = claim(&db, "activity").await;
    assert_eq!(named(&claimed).len(), 3);
    // The first row's a1 is the erased one: the new a1 counts in the third row only.
    assert_eq!(
        delivered(&store, &claimed).await,
        [
            Some(vec![(b.clone(), 9, 1, 1), (d.clone(), 1, 1, 0)]),
            Some(vec![(b, 1, 1, 0)]),
            Some(vec![(d.clone(), 1, 1, 0), (e, 1, 1, 0)]),
        ]
    );
    // B erased too: the second row has nothing left to send.
    let txn = db.begin().await.unwrap();
    peers::erase(&txn, &t, &[Uuid::from_u128(0xB)]).await.unwrap();
    txn.commit().await.unwrap();
    let claimed = claim(&db, "activity").await;
    assert_eq!(delivered(&store, &claimed).await[..2], [Some(vec![(d, 1, 1, 0)]), None]);

    // 10,001 touchpoints in one batch: rows of at most 10,000.
    let f = Uuid::from_u128(0xF);
    let many: Vec<(Uuid, Touchpoint)> =
        (0..10_001).map(|i| (f, tp(&format!("f{i}"), WEB, "2026-03-03T09:00:00Z", None))).collect();
    assert_eq!(ingest(TenantId::parse("activity-many").unwrap(), many).await, 10_001);
    let claimed = claim(&db, "activity-many").await;
    let mut sizes: Vec<usize> = named(&claimed).iter().map(Vec::len).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [1, 10_000]);
    let mut totals: Vec<i64> =
        delivered(&store, &claimed).await.into_iter().flatten().flatten().map(|(_, _, n, _)| n).collect();
    totals.sort_unstable();
    assert_eq!(totals, [1, 10_000], "one record a row: one customer, day and channel");
}

async fn each_row_names_what_its_ingest_stored_and_delivers_it_as_it_is_then(backend: Backend) {
    let db = ServiceDb::open(backend, "journey").await;
    check(db.conn.clone()).await;
}

cx_testkit::on_both_backends!(each_row_names_what_its_ingest_stored_and_delivers_it_as_it_is_then);
