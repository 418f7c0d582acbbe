//! Segmentation's load of touchpoint facts (`JourneyInternalService.
//! ExportTouchFacts`), on both backends: per customer with a touchpoint
//! stored by the cut, touch days and purchase days within their windows and
//! the last touch of all time, summed as segmentation sums them; a merged
//! customer's touchpoints are the survivor's, an erased one is gone; pages
//! follow the cursor; only segmentation asks, and the asks are checked.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{DateTime, Duration, Utc};
use common::{Backend, email};
use cx_journey::domain::channel::Channel;
use cx_journey::domain::touchpoint::{Customer, Initiator, InteractionKind, Touchpoint};
use cx_journey::store::ingest::Resolved;
use cx_journey::store::migration::Migrator;
use cx_journey::store::touch_facts::TouchCut;
use cx_journey::store::{JourneyStore, peers};
use cx_proto::common::v1 as pbc;
use cx_proto::journey::v1 as pb;
use cx_proto::journey::v1::journey_internal_service_client::JourneyInternalServiceClient;
use cx_runtime::TenantId;
use cx_runtime::days::{date_of, day_number};
use cx_testkit::{ServiceDb, authed, service_token};
use sea_orm::TransactionTrait;
use tonic::{Code, Status};
use uuid::Uuid;

fn tp(id: &str, channel: Channel, at: DateTime<Utc>) -> Touchpoint {
    Touchpoint {
        id: id.into(),
        customer: Customer::Profile(Uuid::nil()),
        channel,
        digital: channel == Channel::Web,
        occurred_at: at,
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

fn bought(mut touchpoint: Touchpoint, currency: &str, micros: i64) -> Touchpoint {
    (touchpoint.kind, touchpoint.purchase) = (InteractionKind::Transactional, Some((currency.into(), micros)));
    touchpoint
}

async fn ingest(store: &JourneyStore, t: &TenantId, rows: Vec<(Uuid, Touchpoint)>) {
    let resolved: Vec<Resolved<'_>> =
        rows.iter().map(|(customer, tp)| Resolved { customer: *customer, touchpoint: tp }).collect();
    assert_eq!(store.ingest(t, &resolved).await.unwrap().len(), rows.len());
}

fn date(day: i32) -> String {
    date_of(day).format("%Y-%m-%d").to_string()
}

fn touch(day: i32, channel: pbc::Channel, touchpoints: i64) -> pb::TouchDay {
    pb::TouchDay { date: date(day), channel: channel as i32, touchpoints }
}

fn purchase(day: i32, currency: &str, purchases: i64, amount_micros: i64) -> pb::PurchaseDay {
    pb::PurchaseDay { date: date(day), currency_code: currency.into(), purchases, amount_micros }
}

async fn each_customer_sums_the_touchpoints_stored_by_the_cut(backend: Backend) {
    let db = ServiceDb::open(backend, "journey").await;
    cx_runtime::store::migrate::<Migrator>(&db.conn, "journey").await.unwrap();
    let store = JourneyStore::new(db.conn.clone());
    let t = TenantId::parse("touch-facts").unwrap();
    // Ids in the order of their numbers; M is merged into B, E erased.
    let [m, a, b, c, d, e] = [0x1, 0xA, 0xB, 0xC, 0xD, 0xE].map(Uuid::from_u128);
    let today = day_number(Utc::now());
    let at = |days_ago: i32, hour: i64| {
        date_of(today - days_ago).and_hms_opt(0, 0, 0).unwrap().and_utc() + Duration::hours(hour)
    };

    ingest(
        &store,
        &t,
        vec![
            // A: twice on the web today, email yesterday, three purchases
            // three days ago (two in EUR, one in USD), the web 7 days ago
            // (out of 7 touch days: today-6..today) and a purchase 40 days
            // ago (out of 30 purchase days).
            (a, tp("a1", Channel::Web, at(0, 1))),
            (a, tp("a2", Channel::Web, at(0, 2))),
            (a, tp("a3", Channel::Email, at(1, 5))),
            (a, bought(tp("a4", Channel::Store, at(3, 10)), "EUR", 10_500_000)),
            (a, bought(tp("a5", Channel::Store, at(3, 11)), "EUR", 2_000_000)),
            (a, bought(tp("a6", Channel::Store, at(3, 12)), "USD", 1_000_000)),
            (a, tp("a7", Channel::Web, at(7, 9))),
            (a, bought(tp("a8", Channel::Store, at(40, 9)), "EUR", 99_000_000)),
            // B: SMS and chat at the same instant two days ago; M by mail
            // earlier that day.
            (b, tp("b1", Channel::Sms, at(2, 9))),
            (b, tp("b2", Channel::Chat, at(2, 9))),
            (m, tp("m1", Channel::Mail, at(2, 8))),
            // C: by phone yesterday; E on the web today.
            (c, tp("c1", Channel::Phone, at(1, 6))),
            (e, tp("e1", Channel::Web, at(0, 0))),
        ],
    )
    .await;
    // M merges into B; E is erased.
    let txn = db.conn.begin().await.unwrap();
    cx_runtime::gdpr::record_merge(&txn, &t, b, m).await.unwrap();
    peers::merge(&txn, &t, b, m).await.unwrap();
    peers::erase(&txn, &t, &[e]).await.unwrap();
    txn.commit().await.unwrap();
    // The cut; then C on the web today and D's only touchpoint are stored:
    // the feed's, not the load's.
    let cut = cx_runtime::store::now();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    ingest(&store, &t, vec![(c, tp("c2", Channel::Web, at(0, 0))), (d, tp("d1", Channel::Web, at(0, 0)))]).await;

    let window = TouchCut { cut, touch_from: today - 6, purchase_from: today - 29 };
    let last = |days_ago, hour, channel: pbc::Channel| (Some(cx_proto::timestamp(at(days_ago, hour))), channel as i32);
    let facts = |id: Uuid, touch_days, purchase_days, (last_touch_time, last_channel)| pb::CustomerTouchFacts {
        customer_id: id.to_string(),
        touch_days,
        purchase_days,
        last_touch_time,
        last_channel,
    };
    let a_facts = facts(
        a,
        // In date then channel order.
        vec![
            touch(today - 3, pbc::Channel::Store, 3),
            touch(today - 1, pbc::Channel::Email, 1),
            touch(today, pbc::Channel::Web, 2),
        ],
        // EUR: 10.5 + 2 = 12.5 in two purchases.
        vec![purchase(today - 3, "EUR", 2, 12_500_000), purchase(today - 3, "USD", 1, 1_000_000)],
        last(0, 2, pbc::Channel::Web),
    );
    // SMS, chat and mail (channel order); of SMS and chat at 09:00 the last
    // touch is SMS ("sms" sorts after "chat").
    let b_facts = facts(
        b,
        vec![
            touch(today - 2, pbc::Channel::Sms, 1),
            touch(today - 2, pbc::Channel::Chat, 1),
            touch(today - 2, pbc::Channel::Mail, 1),
        ],
        vec![],
        last(2, 9, pbc::Channel::Sms),
    );
    // C's web touch today came after the cut: phone is her last.
    let c_facts = facts(c, vec![touch(today - 1, pbc::Channel::Phone, 1)], vec![], last(1, 6, pbc::Channel::Phone));

    let first = store.touch_page(&t, None, 2, window).await.unwrap();
    assert_eq!((first.message.customers, first.last, first.more), (vec![a_facts, b_facts], Some(b), true));
    // D has nothing stored by the cut: C ends the export.
    let second = store.touch_page(&t, Some(b), 2, window).await.unwrap();
    assert_eq!((second.message.customers, second.last, second.more), (vec![c_facts.clone()], Some(c), false));
    let end = store.touch_page(&t, Some(c), 2, window).await.unwrap();
    assert_eq!((end.message.customers, end.last, end.more), (vec![], None, false));

    // A later cut counts C's web touch and D.
    let later = TouchCut { cut: cx_runtime::store::now(), ..window };
    let page = store.touch_page(&t, Some(b), 2, later).await.unwrap();
    let ids: Vec<String> = page.message.customers.iter().map(|f| f.customer_id.clone()).collect();
    assert_eq!(ids, [c.to_string(), d.to_string()]);
    assert_eq!(
        page.message.customers[0].touch_days,
        [touch(today - 1, pbc::Channel::Phone, 1), touch(today, pbc::Channel::Web, 1)]
    );
}

/// Every page of an export asked for as `caller`.
async fn export(
    client: &mut JourneyInternalServiceClient<tonic::transport::Channel>,
    caller: &str,
    request: pb::ExportTouchFactsRequest,
) -> Result<Vec<pb::ExportTouchFactsResponse>, Status> {
    let mut stream = client.export_touch_facts(authed(request, caller)).await?.into_inner();
    let mut pages = Vec::new();
    while let Some(page) = stream.message().await? {
        pages.push(page);
    }
    Ok(pages)
}

async fn the_rpc_streams_pages_to_segmentation_alone(backend: Backend) {
    let s = common::suite_on(backend).await;
    let yesterday =
        |hour: i64| date_of(day_number(Utc::now()) - 1).and_hms_opt(0, 0, 0).unwrap().and_utc() + Duration::hours(hour);
    let tps: Vec<pb::Touchpoint> = ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, who)| pb::Touchpoint {
            occur_time: Some(cx_proto::timestamp(yesterday(i as i64 + 1))),
            ..common::touchpoint(
                &format!("{who}1"),
                email(&format!("{who}@example.com")),
                pbc::Channel::Web,
                pbc::Initiator::Pull,
                0,
            )
        })
        .collect();
    assert_eq!(s.ingest(tps).await.accepted, 3);
    let mut ids = [s.id_of("a@example.com").await, s.id_of("b@example.com").await, s.id_of("c@example.com").await];
    ids.sort();
    let mut client = JourneyInternalServiceClient::new(s.journey().channel().await);
    let segmentation = service_token("segmentation", &s.tenant);
    let ask = |after: &str, page_size| pb::ExportTouchFactsRequest {
        after_customer_id: after.into(),
        page_size,
        record_cut_time: Some(cx_proto::timestamp(Utc::now())),
        touch_days: 180,
        purchase_days: 365,
    };

    // Three customers in pages of two; resuming after the first gives the rest.
    let pages = export(&mut client, &segmentation, ask("", 2)).await.unwrap();
    let shape = |pages: &[pb::ExportTouchFactsResponse]| -> Vec<(Vec<String>, String)> {
        pages.iter().map(|p| (p.customers.iter().map(|c| c.customer_id.clone()).collect(), p.cursor.clone())).collect()
    };
    assert_eq!(
        shape(&pages),
        [(vec![ids[0].clone(), ids[1].clone()], ids[1].clone()), (vec![ids[2].clone()], ids[2].clone())]
    );
    assert_eq!(pages[0].customers[0].touch_days.iter().map(|d| d.touchpoints).sum::<i64>(), 1);
    let rest = export(&mut client, &segmentation, ask(&ids[0], 0)).await.unwrap();
    assert_eq!(shape(&rest), [(vec![ids[1].clone(), ids[2].clone()], ids[2].clone())]);
    let end = export(&mut client, &segmentation, ask(&ids[2], 0)).await.unwrap();
    assert_eq!(shape(&end), [(vec![], ids[2].clone())]);

    // Only segmentation asks, with a service identity.
    let user = export(&mut client, &s.admin, ask("", 0)).await.unwrap_err();
    assert_eq!(user.code(), Code::Unauthenticated);
    let survey = export(&mut client, &service_token("survey", &s.tenant), ask("", 0)).await.unwrap_err();
    assert_eq!(
        (survey.code(), survey.message()),
        (Code::PermissionDenied, "only the segmentation service makes this call")
    );
    // Bad asks name their field.
    let refused = |status: Status| (status.code(), status.message().to_owned());
    let bad_id = export(&mut client, &segmentation, ask("nope", 0)).await.unwrap_err();
    assert_eq!(refused(bad_id), (Code::InvalidArgument, "invalid after_customer_id: is not a UUID".into()));
    let too_big = export(&mut client, &segmentation, ask("", 5_001)).await.unwrap_err();
    assert_eq!(refused(too_big), (Code::InvalidArgument, "invalid page_size: is 5001; at most 5000".into()));
    let no_cut = pb::ExportTouchFactsRequest { record_cut_time: None, ..ask("", 0) };
    let no_cut = export(&mut client, &segmentation, no_cut).await.unwrap_err();
    assert_eq!(refused(no_cut), (Code::InvalidArgument, "invalid record_cut_time: is required".into()));
    let no_days = pb::ExportTouchFactsRequest { touch_days: 0, ..ask("", 0) };
    let no_days = export(&mut client, &segmentation, no_days).await.unwrap_err();
    assert_eq!(refused(no_days), (Code::InvalidArgument, "invalid touch_days: is 0; must be 1 to 400".into()));
}

cx_testkit::on_both_backends!(
    each_customer_sums_the_touchpoints_stored_by_the_cut,
    the_rpc_streams_pages_to_segmentation_alone
);
