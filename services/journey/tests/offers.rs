//! What the survey service is offered of stored touchpoints, on PostgreSQL
//! (the statement that stores a batch writes its rows) and SQLite (one
//! transaction): beside each row owed to profile, a row owed to survey names
//! the same touchpoints, and its delivery reads them as they are then —
//! erased ones left out, merged ones offered as the survivor's, each with
//! the instant it was stored. Nothing is owed to survey when the deployment
//! does not run it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cx_journey::domain::channel::Channel;
use cx_journey::domain::touchpoint::{Customer, Initiator, InteractionKind, Touchpoint};
use cx_journey::store::activity::STORED_TOUCHPOINTS;
use cx_journey::store::entity::touchpoint;
use cx_journey::store::ingest::Resolved;
use cx_journey::store::migration::Migrator;
use cx_journey::store::offers::{OFFERED_TOUCHPOINTS, OfferExpander};
use cx_journey::store::{JourneyStore, peers};
use cx_proto::common::v1 as common;
use cx_proto::journey::v1::{OfferedTouchpoint, TouchpointsOffered};
use cx_runtime::TenantId;
use cx_runtime::outbox::dispatcher::{Claimed, Expand};
use cx_runtime::store::{Db, scoped};
use cx_testkit::{Backend, ServiceDb};
use prost::{Message, Name};
use sea_orm::TransactionTrait;
use uuid::Uuid;

fn tp(id: &str, channel: Channel, at: &str) -> Touchpoint {
    Touchpoint {
        id: id.into(),
        customer: Customer::Profile(Uuid::nil()),
        channel,
        digital: channel == Channel::Web,
        occurred_at: at.parse().unwrap(),
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

/// Every pending row of `tenant`, claimed afresh, oldest first.
async fn claim(db: &Db, tenant: &str) -> Vec<Claimed> {
    let mut claimed = cx_testkit::outbox::claim_pending(db, "journey", tenant).await;
    claimed.sort_by_key(|row| (row.created_at, row.destination.clone(), row.id));
    claimed
}

/// (destination, kind, ids named) of each row.
fn owed(claimed: &[Claimed]) -> Vec<(String, String, Vec<String>)> {
    claimed
        .iter()
        .map(|row| (row.destination.clone(), row.kind.clone(), serde_json::from_slice(&row.payload).unwrap()))
        .collect()
}

/// The touchpoints each row offered to survey delivers (`None`: nothing left).
async fn offered(store: &JourneyStore, claimed: &[Claimed]) -> Vec<Option<Vec<OfferedTouchpoint>>> {
    let rows: Vec<&Claimed> = claimed.iter().filter(|row| row.destination == "survey").collect();
    let contents = OfferExpander(store.clone()).expand(&rows).await;
    contents
        .into_iter()
        .map(|content| {
            content.unwrap().map(|(kind, payload)| {
                assert_eq!(kind, TouchpointsOffered::full_name());
                TouchpointsOffered::decode(payload.as_slice()).unwrap().touchpoints
            })
        })
        .collect()
}

fn offer(id: &str, customer: Uuid, channel: common::Channel, at: &str) -> OfferedTouchpoint {
    OfferedTouchpoint {
        touchpoint_id: id.into(),
        customer_id: customer.to_string(),
        occur_time: Some(cx_proto::timestamp(at.parse().unwrap())),
        channel: channel as i32,
        kind: common::InteractionKind::Informative as i32,
        initiator: common::Initiator::Pull as i32,
        ..Default::default()
    }
}

/// `offered` with the instant its touchpoint was stored, read from the table.
async fn stamped(db: &Db, t: &TenantId, offered: Vec<OfferedTouchpoint>) -> Vec<OfferedTouchpoint> {
    let rows = scoped::<touchpoint::Entity>(t).all(db).await.unwrap();
    let mut stamped = Vec::with_capacity(offered.len());
    for mut offer in offered {
        let row = rows.iter().find(|row| row.id == offer.touchpoint_id).unwrap();
        offer.record_time = Some(cx_proto::timestamp(row.recorded_at));
        stamped.push(offer);
    }
    stamped
}

async fn ingest(store: &JourneyStore, t: &TenantId, rows: &[(Uuid, Touchpoint)]) -> usize {
    let resolved: Vec<Resolved<'_>> =
        rows.iter().map(|(customer, tp)| Resolved { customer: *customer, touchpoint: tp }).collect();
    store.ingest(t, &resolved).await.unwrap().len()
}

async fn each_batch_offers_survey_what_it_stored_as_it_is_when_delivered(backend: Backend) {
    let db = ServiceDb::open(backend, "journey").await;
    cx_runtime::store::migrate::<Migrator>(&db.conn, "journey").await.unwrap();
    let store = JourneyStore::new(db.conn.clone()).with_offers(vec!["survey"]);
    let t = TenantId::parse("offers").unwrap();
    let [a, b, c, d] = [0xA, 0xB, 0xC, 0xD].map(Uuid::from_u128);
    let map = Uuid::from_u128(0x5);

    // First batch: A on the web, B buys in store, C on the web.
    let mut purchase = tp("b1", Channel::Store, "2026-03-01T11:00:00Z");
    (purchase.kind, purchase.purchase) = (InteractionKind::Transactional, Some(("EUR".into(), 25_500_000)));
    let first = [
        (a, tp("a1", Channel::Web, "2026-03-01T09:00:00Z")),
        (b, purchase),
        (c, tp("c1", Channel::Web, "2026-03-01T12:00:00Z")),
    ];
    assert_eq!(ingest(&store, &t, &first).await, 3);
    // Second batch: a replay of a1, and B on a journey map (the transaction
    // that keeps the map's roll-ups), scored 2 at the checkout step.
    let mut on_map = tp("b2", Channel::Web, "2026-03-01T13:00:00Z");
    (on_map.map, on_map.step_key, on_map.instance_id, on_map.score) =
        (Some((map, 1)), Some("checkout".into()), Some("order-1".into()), Some(2));
    assert_eq!(ingest(&store, &t, &[(a, first[0].1.clone()), (b, on_map)]).await, 1);
    // A batch of replays owes nobody anything.
    assert_eq!(ingest(&store, &t, &first).await, 0);

    let claimed = claim(&db.conn, "offers").await;
    let (stored, offered_kind) = (STORED_TOUCHPOINTS.as_str().to_owned(), OFFERED_TOUCHPOINTS.as_str().to_owned());
    let ids = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        owed(&claimed),
        [
            ("profile".into(), stored.clone(), ids(&["a1", "b1", "c1"])),
            ("survey".into(), offered_kind.clone(), ids(&["a1", "b1", "c1"])),
            ("profile".into(), stored, ids(&["b2"])),
            ("survey".into(), offered_kind, ids(&["b2"])),
        ],
        "a row for each service per batch that stored, naming the same touchpoints"
    );
    let paid = OfferedTouchpoint {
        kind: common::InteractionKind::Transactional as i32,
        purchase_amount: Some(cx_proto::money("EUR", 25_500_000)),
        ..offer("b1", b, common::Channel::Store, "2026-03-01T11:00:00Z")
    };
    let scored = OfferedTouchpoint {
        map_id: map.to_string(),
        step_key: "checkout".into(),
        instance_id: "order-1".into(),
        experience_score: Some(2),
        ..offer("b2", b, common::Channel::Web, "2026-03-01T13:00:00Z")
    };
    let a1 = offer("a1", a, common::Channel::Web, "2026-03-01T09:00:00Z");
    let c1 = offer("c1", c, common::Channel::Web, "2026-03-01T12:00:00Z");
    let [paid, scored] = <[_; 2]>::try_from(stamped(&db.conn, &t, vec![paid, scored]).await).unwrap();
    let first_batch = stamped(&db.conn, &t, vec![a1, paid.clone(), c1]).await;
    let stored_at = |o: &OfferedTouchpoint| cx_proto::from_timestamp(o.record_time.as_ref().unwrap()).unwrap();
    assert!(stored_at(&first_batch[0]) <= stored_at(&scored), "the first batch was stored first");
    assert_eq!(offered(&store, &claimed).await, [Some(first_batch), Some(vec![scored.clone()])]);

    // Before delivery, C merges into D and A is erased: A's touchpoint is
    // no longer offered, C's is offered as D's, B's as it was.
    let txn = db.conn.begin().await.unwrap();
    cx_runtime::gdpr::record_merge(&txn, &t, d, c).await.unwrap();
    peers::merge(&txn, &t, d, c).await.unwrap();
    peers::erase(&txn, &t, &[a]).await.unwrap();
    txn.commit().await.unwrap();
    let claimed = claim(&db.conn, "offers").await;
    let c1_of_d = stamped(&db.conn, &t, vec![offer("c1", d, common::Channel::Web, "2026-03-01T12:00:00Z")]).await;
    assert_eq!(offered(&store, &claimed).await, [Some([vec![paid], c1_of_d].concat()), Some(vec![scored])]);
    // B erased too: nothing is left to offer of the second batch.
    let txn = db.conn.begin().await.unwrap();
    peers::erase(&txn, &t, &[b]).await.unwrap();
    txn.commit().await.unwrap();
    let claimed = claim(&db.conn, "offers").await;
    assert_eq!(offered(&store, &claimed).await[1], None);

    // 10,001 touchpoints in one batch: offered in rows of at most 10,000.
    let many: Vec<(Uuid, Touchpoint)> =
        (0..10_001).map(|i| (d, tp(&format!("m{i}"), Channel::Web, "2026-03-03T09:00:00Z"))).collect();
    assert_eq!(ingest(&store, &TenantId::parse("offers-many").unwrap(), &many).await, 10_001);
    let claimed = claim(&db.conn, "offers-many").await;
    let mut sizes: Vec<usize> = offered(&store, &claimed).await.into_iter().map(|offer| offer.unwrap().len()).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [1, 10_000]);
}

async fn nothing_is_offered_when_survey_is_not_deployed(backend: Backend) {
    let db = ServiceDb::open(backend, "journey").await;
    cx_runtime::store::migrate::<Migrator>(&db.conn, "journey").await.unwrap();
    let store = JourneyStore::new(db.conn.clone()).with_offers(Vec::new());
    let t = TenantId::parse("no-survey").unwrap();
    let mut on_map = tp("b2", Channel::Web, "2026-03-01T13:00:00Z");
    on_map.map = Some((Uuid::from_u128(0x5), 1));
    let batches = [
        vec![(Uuid::from_u128(0xA), tp("a1", Channel::Web, "2026-03-01T09:00:00Z"))],
        vec![(Uuid::from_u128(0xB), on_map)],
    ];
    for batch in &batches {
        assert_eq!(ingest(&store, &t, batch).await, 1);
    }
    let destinations: Vec<String> = claim(&db.conn, "no-survey").await.into_iter().map(|row| row.destination).collect();
    assert_eq!(destinations, ["profile", "profile"]);
}

/// Two services taking touchpoints: a row each per chunk, each row an id
/// of its own, all naming the same touchpoints.
async fn each_service_taking_touchpoints_is_offered_its_own_rows(backend: Backend) {
    let db = ServiceDb::open(backend, "journey").await;
    cx_runtime::store::migrate::<Migrator>(&db.conn, "journey").await.unwrap();
    let store = JourneyStore::new(db.conn.clone()).with_offers(vec!["survey", "segmentation"]);
    let t = TenantId::parse("two-offers").unwrap();
    // 10,001 touchpoints: two chunks (10,000 and 1), so 2 rows for each of
    // profile, survey and segmentation.
    let many: Vec<(Uuid, Touchpoint)> = (0..10_001)
        .map(|i| (Uuid::from_u128(0xA), tp(&format!("m{i}"), Channel::Web, "2026-03-03T09:00:00Z")))
        .collect();
    assert_eq!(ingest(&store, &t, &many).await, 10_001);
    let claimed = claim(&db.conn, "two-offers").await;
    let mut rows: Vec<(String, usize)> = owed(&claimed).into_iter().map(|(to, _, ids)| (to, ids.len())).collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            ("profile".into(), 1),
            ("profile".into(), 10_000),
            ("segmentation".into(), 1),
            ("segmentation".into(), 10_000),
            ("survey".into(), 1),
            ("survey".into(), 10_000),
        ]
    );
    let ids: std::collections::HashSet<Uuid> = claimed.iter().map(|row| row.id).collect();
    assert_eq!(ids.len(), 6, "every row has an id of its own");
    let of = |to: &str| {
        let mut named: Vec<String> =
            owed(&claimed).into_iter().filter(|(dest, _, _)| dest == to).flat_map(|(_, _, ids)| ids).collect();
        named.sort();
        named
    };
    assert_eq!(of("segmentation"), of("survey"));
    assert_eq!(of("survey"), of("profile"));
}

cx_testkit::on_both_backends!(
    each_batch_offers_survey_what_it_stored_as_it_is_when_delivered,
    nothing_is_offered_when_survey_is_not_deployed,
    each_service_taking_touchpoints_is_offered_its_own_rows,
);

/// As `cx serve journey` wires it: touchpoints are offered to survey when
/// the deployment runs it (an endpoint, reached or not yet), and not when
/// it says it does not (`CX_NOT_DEPLOYED=survey`).
#[tokio::test]
async fn journey_offers_survey_unless_the_deployment_does_not_run_it() {
    use cx_proto::journey::v1 as pb;
    use cx_runtime::auth::Role;
    use cx_runtime::registry::{Feed, Registry, ServiceDef};
    use cx_testkit::RunningServer;

    // Survey's registry line as far as journey reads it: it takes touchpoints.
    const SURVEY: ServiceDef = ServiceDef::elsewhere("survey", true, &[Feed::Consents, Feed::Touchpoints]);
    const SUITE: Registry = Registry::new(&[cx_journey::SERVICE, SURVEY]);
    for (deployed, expected) in [(true, vec!["profile", "survey"]), (false, vec!["profile"])] {
        let store = cx_testkit::store_args(None, cx_testkit::temp_dir());
        let ctx = cx_testkit::context_with_peer(&store, SUITE, "survey", deployed);
        let server =
            RunningServer::start(vec![cx_journey::build(&ctx).await.unwrap()], cx_testkit::server_args()).await;
        server.wait_serving().await;
        let tenant = cx_testkit::unique_tenant("offers");
        // Without a profile endpoint the profile id is stored unchecked.
        let touchpoint = pb::Touchpoint {
            id: "t1".into(),
            customer: Some(pb::touchpoint::Customer::ProfileId(Uuid::now_v7().to_string())),
            channel: common::Channel::Web as i32,
            occur_time: Some(cx_proto::timestamp(chrono::Utc::now())),
            kind: common::InteractionKind::Informative as i32,
            initiator: common::Initiator::Pull as i32,
            ..Default::default()
        };
        let request = cx_testkit::authed(
            pb::RecordTouchpointRequest { touchpoint: Some(touchpoint) },
            &cx_testkit::token(&tenant, Role::Writer),
        );
        let mut client = pb::journey_service_client::JourneyServiceClient::new(server.channel().await);
        client.record_touchpoint(request).await.unwrap();
        // Stopped first: its own dispatcher claims nothing more.
        server.stop().await.unwrap();
        let db = cx_runtime::store::open(&store, "journey").await.unwrap();
        let destinations: Vec<String> = claim(&db, &tenant).await.into_iter().map(|row| row.destination).collect();
        assert_eq!(destinations, expected, "survey deployed: {deployed}");
        let _ = std::fs::remove_dir_all(&store.data_dir);
    }
}
