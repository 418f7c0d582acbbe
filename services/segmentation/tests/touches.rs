//! Journey's touchpoints as segmentation's facts, on PostgreSQL and SQLite:
//! the inbox handler on batches (touch days, purchases, the journey columns
//! of segment_facts, a redelivery, a late batch, merged and erased
//! customers), the daily move of the windows, and merge and erase.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use cx_proto::common::v1::Channel;
use cx_proto::journey::v1::{OfferedTouchpoint, TouchpointsOffered};
use cx_proto::outbox::v1::DeliverRequest;
use cx_proto::outbox::v1::inbox_service_server::InboxService;
use cx_runtime::TenantId;
use cx_runtime::days::{date_of, day_number};
use cx_runtime::gdpr::Counts;
use cx_runtime::identity::ServiceIdentity;
use cx_runtime::outbox::inbox::{Handlers, Inbox};
use cx_runtime::store::{Db, scoped};
use cx_segmentation::store::entity::{fact, purchase_day, touch_day};
use cx_segmentation::store::migration::Migrator;
use cx_segmentation::store::touches::{self, Touch};
use cx_testkit::{Backend, ServiceDb};
use prost::{Message, Name};
use sea_orm::{ActiveValue::Set, EntityTrait, TransactionTrait};
use uuid::Uuid;

cx_testkit::on_both_backends!(
    batches_become_touch_days_purchases_and_facts,
    the_daily_job_moves_the_windows,
    a_batch_adds_to_windows_summed_today_and_sums_again_older_ones,
    merge_moves_to_the_survivor_and_erase_deletes,
);

async fn migrated(backend: Backend) -> (Db, ServiceDb) {
    let service = ServiceDb::open(backend, "segmentation").await;
    let db = service.conn.clone();
    cx_runtime::store::migrate::<Migrator>(&db, "segmentation").await.unwrap();
    (db, service)
}

fn c(i: u128) -> Uuid {
    Uuid::from_u128(i)
}

/// `hour` o'clock UTC of day number `day`.
fn at(day: i32, hour: u32) -> DateTime<Utc> {
    date_of(day).and_hms_opt(hour, 0, 0).unwrap().and_utc()
}

fn offered(id: &str, customer: Uuid, channel: Channel, when: DateTime<Utc>) -> OfferedTouchpoint {
    OfferedTouchpoint {
        touchpoint_id: id.into(),
        customer_id: customer.to_string(),
        occur_time: Some(cx_proto::timestamp(when)),
        channel: channel as i32,
        ..Default::default()
    }
}

fn bought(tp: OfferedTouchpoint, currency: &str, micros: i64) -> OfferedTouchpoint {
    OfferedTouchpoint { purchase_amount: Some(cx_proto::money(currency, micros)), ..tp }
}

/// Delivers `touchpoints` as journey's message `id` through segmentation's
/// inbox, as the runtime serves it; returns whether it was a duplicate.
async fn deliver(db: &Db, t: &TenantId, id: &str, touchpoints: Vec<OfferedTouchpoint>) -> bool {
    let handlers = cx_segmentation::inbox::routes(Handlers::new("segmentation"));
    let inbox = Inbox::new(db.clone(), Arc::new(handlers));
    let message = TouchpointsOffered { touchpoints };
    let mut request = tonic::Request::new(DeliverRequest {
        message_id: id.into(),
        kind: TouchpointsOffered::full_name(),
        payload: message.encode_to_vec(),
        ..Default::default()
    });
    request.extensions_mut().insert(ServiceIdentity { service: "journey".into(), tenant: t.clone() });
    inbox.deliver(request).await.unwrap().into_inner().duplicate
}

/// (customer, last_touch_day, last_channel, touchpoints_90d, channels_180d), by customer.
type Facts = Vec<(Uuid, Option<i32>, Option<String>, i64, i32)>;

async fn facts(db: &Db, t: &TenantId) -> Facts {
    let mut rows: Facts = scoped::<fact::Entity>(t)
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|f| (f.customer_id, f.last_touch_day, f.last_channel, f.touchpoints_90d, f.channels_180d))
        .collect();
    rows.sort();
    rows
}

fn row(customer: Uuid, day: i32, channel: &str, n90: i64, bits: i32) -> (Uuid, Option<i32>, Option<String>, i64, i32) {
    (customer, Some(day), Some(channel.into()), n90, bits)
}

/// (customer, day, channel index, touchpoints), sorted.
async fn touch_days(db: &Db, t: &TenantId) -> Vec<(Uuid, i32, i16, i64)> {
    let mut rows: Vec<_> = scoped::<touch_day::Entity>(t)
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.customer_id, d.day, d.channel, d.touchpoints))
        .collect();
    rows.sort();
    rows
}

/// (customer, day, currency, purchases, micros), sorted.
async fn purchase_days(db: &Db, t: &TenantId) -> Vec<(Uuid, NaiveDate, String, i64, i64)> {
    let mut rows: Vec<_> = scoped::<purchase_day::Entity>(t)
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.customer_id, p.day, p.currency, p.purchases, p.amount_micros))
        .collect();
    rows.sort();
    rows
}

// Channel indexes in rules::CHANNELS, and their bits in channels_180d.
const WEB: i16 = 0; // bit 1
const MOBILE_APP: i16 = 1; // bit 2
const EMAIL: i16 = 2; // bit 4
const CHAT: i16 = 4; // bit 16
const STORE: i16 = 8; // bit 256
const PHONE: i16 = 9; // bit 512

/// Customers A, B; C erased; D merged into S. Days are offsets from today T.
///
/// Batch 1 (message m1):
/// | tp | customer | channel    | when          | purchase   |
/// | a1 | A        | web        | T 09:00       |            |
/// | a2 | A        | web        | T 11:00       |            |
/// | a3 | A        | email      | T−49 08:00    |            |
/// | a4 | A        | store      | T−129 10:00   | EUR 25.5   |
/// | b1 | B        | mobile_app | T−1 23:00     | EUR 10     |
/// | b2 | B        | mobile_app | T−1 08:00     | EUR 5      |
/// | c1 | C        | web        | T 10:00       | (erased)   |
/// | d1 | D → S    | web        | T−9 12:00     |            |
/// | x  | "nope"   | web        | T             | (skipped)  |
///
/// A: 90 days hold T (2) and T−49 (1) = 3; 180 days web|email|store =
/// 1 + 4 + 256 = 261; last touch a2. B: 2, mobile_app = 2, last b1 on T−1.
/// S: 1, web = 1, last on T−9. C: nothing.
///
/// Batch 2 (m2): a5 A phone T−37 10:00 (older than a2: the last touch
/// stays), b3 B chat T 07:00 (later than b1). A: 3 + 1 = 4, 261 + 512 =
/// 773; B: 3, 2 + 16 = 18.
async fn batches_become_touch_days_purchases_and_facts(backend: Backend) {
    let (db, _service) = migrated(backend).await;
    let t = TenantId::parse("touch").unwrap();
    let (a, b, erased, merged, survivor) = (c(0xA), c(0xB), c(0xC), c(0xD), c(0xF));
    let txn = db.begin().await.unwrap();
    cx_runtime::gdpr::record_merge(&txn, &t, survivor, merged).await.unwrap();
    txn.commit().await.unwrap();
    let tombstone = cx_runtime::gdpr::entity::erased::ActiveModel {
        tenant_id: Set(t.to_string()),
        digest: Set(cx_runtime::gdpr::tombstone(&t, erased)),
        erased_at: Set(Utc::now()),
    };
    cx_runtime::gdpr::entity::erased::Entity::insert(tombstone).exec(&db).await.unwrap();

    let today = day_number(Utc::now());
    let d = |k: i32| today - k;
    let mut nope = offered("x", a, Channel::Web, at(today, 9));
    nope.customer_id = "nope".into();
    let first = vec![
        offered("a1", a, Channel::Web, at(today, 9)),
        offered("a2", a, Channel::Web, at(today, 11)),
        offered("a3", a, Channel::Email, at(d(49), 8)),
        bought(offered("a4", a, Channel::Store, at(d(129), 10)), "EUR", 25_500_000),
        bought(offered("b1", b, Channel::MobileApp, at(d(1), 23)), "EUR", 10_000_000),
        bought(offered("b2", b, Channel::MobileApp, at(d(1), 8)), "EUR", 5_000_000),
        offered("c1", erased, Channel::Web, at(today, 10)),
        offered("d1", merged, Channel::Web, at(d(9), 12)),
        nope,
    ];
    assert!(!deliver(&db, &t, "m1", first.clone()).await);
    // The windows as of the `today` above, should the day have turned since.
    touches::refresh(&db, &t, today).await.unwrap();
    let days = vec![
        (a, d(129), STORE, 1),
        (a, d(49), EMAIL, 1),
        (a, today, WEB, 2),
        (b, d(1), MOBILE_APP, 2),
        (survivor, d(9), WEB, 1),
    ];
    assert_eq!(touch_days(&db, &t).await, days);
    let purchases = vec![
        (a, date_of(d(129)), "EUR".to_owned(), 1, 25_500_000),
        (b, date_of(d(1)), "EUR".to_owned(), 2, 15_000_000),
    ];
    assert_eq!(purchase_days(&db, &t).await, purchases);
    let expected =
        vec![row(a, today, "web", 3, 261), row(b, d(1), "mobile_app", 2, 2), row(survivor, d(9), "web", 1, 1)];
    assert_eq!(facts(&db, &t).await, expected);

    // A redelivery of m1 is a duplicate and changes nothing.
    assert!(deliver(&db, &t, "m1", first).await);
    touches::refresh(&db, &t, today).await.unwrap();
    assert_eq!(touch_days(&db, &t).await, days);
    assert_eq!(purchase_days(&db, &t).await, purchases);
    assert_eq!(facts(&db, &t).await, expected);

    let second = vec![offered("a5", a, Channel::Phone, at(d(37), 10)), offered("b3", b, Channel::Chat, at(today, 7))];
    assert!(!deliver(&db, &t, "m2", second).await);
    touches::refresh(&db, &t, today).await.unwrap();
    assert_eq!(
        facts(&db, &t).await,
        [row(a, today, "web", 4, 773), row(b, today, "chat", 3, 18), row(survivor, d(9), "web", 1, 1)]
    );
    assert_eq!(touch_days(&db, &t).await.len(), 7);
}

fn touch(customer: Uuid, channel: i16, name: &'static str, when: DateTime<Utc>) -> Touch {
    Touch { customer, at: when, channel, channel_name: name, purchase: None }
}

/// Today T = 20,522 (2026-03-10). A: web ×2 on T, phone T−37, email T−49,
/// store T−129; B: mobile_app ×2 on T−1.
///
/// | as of | A 90 days                  | A 180 days (from)           | B     |
/// | T+50  | T, T−37 (from T−39) = 3    | all four (from T−129) = 773 | 2, 2  |
/// | T+51  | 3 (from T−38)              | store leaves (T−128) = 517  | 2, 2  |
/// | T+200 | 0                          | 0                           | 0, 0  |
///
/// At T+51 A's store day is dropped (older than T+51−179); at T+200 all
/// are (older than T+21). Last touches do not move.
async fn the_daily_job_moves_the_windows(backend: Backend) {
    let (db, _service) = migrated(backend).await;
    let t = TenantId::parse("windows").unwrap();
    let (a, b) = (c(0xA), c(0xB));
    let today = 20_522;
    assert_eq!(date_of(today), NaiveDate::from_ymd_opt(2026, 3, 10).unwrap());
    let batch = [
        touch(a, WEB, "web", at(today, 9)),
        touch(a, WEB, "web", at(today, 11)),
        touch(a, PHONE, "phone", at(today - 37, 10)),
        touch(a, EMAIL, "email", at(today - 49, 8)),
        touch(a, STORE, "store", at(today - 129, 10)),
        touch(b, MOBILE_APP, "mobile_app", at(today - 1, 8)),
        touch(b, MOBILE_APP, "mobile_app", at(today - 1, 9)),
    ];
    touches::record(&db, &t, &batch, today).await.unwrap();
    assert_eq!(facts(&db, &t).await, [row(a, today, "web", 4, 773), row(b, today - 1, "mobile_app", 2, 2)]);

    assert_eq!(touches::refresh_all(&db, today + 50).await.unwrap(), 1);
    assert_eq!(facts(&db, &t).await, [row(a, today, "web", 3, 773), row(b, today - 1, "mobile_app", 2, 2)]);
    assert_eq!(touch_days(&db, &t).await.len(), 5);

    touches::refresh_all(&db, today + 51).await.unwrap();
    assert_eq!(facts(&db, &t).await, [row(a, today, "web", 3, 517), row(b, today - 1, "mobile_app", 2, 2)]);
    assert_eq!(
        touch_days(&db, &t).await,
        [(a, today - 49, EMAIL, 1), (a, today - 37, PHONE, 1), (a, today, WEB, 2), (b, today - 1, MOBILE_APP, 2)]
    );

    touches::refresh_all(&db, today + 200).await.unwrap();
    assert_eq!(facts(&db, &t).await, [row(a, today, "web", 0, 0), row(b, today - 1, "mobile_app", 0, 0)]);
    assert!(touch_days(&db, &t).await.is_empty());
    // Nothing left to move: the tenant has no more work.
    assert_eq!(touches::refresh_all(&db, today + 201).await.unwrap(), 0);
}

/// Bits: web 1, mobile_app 2, store 256, phone 512. As of today T:
///
/// 1. web T and store T−129: 90 days 1 (web), 180 days web|store = 257;
///    the windows are summed as of T.
/// 2. Still T: phone T−37 (both windows), email T−200 (neither) and web
///    T+3 (after today: neither, but the last touch): added to the sums,
///    90 days 1 + 1 = 2, 180 days 257|512 = 769, last touch web T+3.
/// 3. As of T+50, mobile_app T+50: the row was summed as of T, so it is
///    summed again from the touch days: 90 days from T−39: web T, phone
///    T−37, web T+3, mobile_app T+50 = 4 (adding would give 3: web T+3
///    enters the window only now); 180 days from T−129: web|store|phone|
///    mobile_app = 771.
async fn a_batch_adds_to_windows_summed_today_and_sums_again_older_ones(backend: Backend) {
    let (db, _service) = migrated(backend).await;
    let t = TenantId::parse("adding").unwrap();
    let a = c(0xA);
    let today = 20_522;
    let first = [touch(a, WEB, "web", at(today, 9)), touch(a, STORE, "store", at(today - 129, 10))];
    touches::record(&db, &t, &first, today).await.unwrap();
    assert_eq!(facts(&db, &t).await, [row(a, today, "web", 1, 257)]);
    let second = [
        touch(a, PHONE, "phone", at(today - 37, 10)),
        touch(a, EMAIL, "email", at(today - 200, 10)),
        touch(a, WEB, "web", at(today + 3, 10)),
    ];
    touches::record(&db, &t, &second, today).await.unwrap();
    assert_eq!(facts(&db, &t).await, [row(a, today + 3, "web", 2, 769)]);
    let third = [touch(a, MOBILE_APP, "mobile_app", at(today + 50, 10))];
    touches::record(&db, &t, &third, today + 50).await.unwrap();
    assert_eq!(facts(&db, &t).await, [row(a, today + 50, "mobile_app", 4, 771)]);
}

/// As of today T: A has web T 07:00, mobile_app T 10:00, and email T−100
/// with a purchase of EUR 10; S has web ×2 T 08:00, sms T−5, and phone
/// T−100 with a purchase of EUR 20; B chat T−2.
///
/// Merging A into S moves A's 3 touch days and 1 purchase day: S's web T
/// is 2 + 1 = 3, and its purchase day T−100 EUR 2 purchases, 30,000,000
/// micros; its last touch is A's mobile_app at 10:00 (after 08:00); 90 days
/// 3 + 1 (mobile_app) + 1 (sms) = 5 (T−100 out); 180 days web|mobile_app|
/// email|sms|phone = 1 + 2 + 4 + 8 + 512 = 527. A keeps an empty journey.
/// Erasing S then deletes its 5 touch days and 1 purchase day; B's stay.
async fn merge_moves_to_the_survivor_and_erase_deletes(backend: Backend) {
    let (db, _service) = migrated(backend).await;
    let t = TenantId::parse("merges").unwrap();
    let (a, b, s) = (c(0xA), c(0xB), c(0xF));
    let today = day_number(Utc::now());
    let paid = |mut tp: Touch, units: i64| {
        tp.purchase = Some(("EUR".into(), units * 1_000_000));
        tp
    };
    let batch = [
        touch(a, WEB, "web", at(today, 7)),
        touch(a, MOBILE_APP, "mobile_app", at(today, 10)),
        paid(touch(a, EMAIL, "email", at(today - 100, 9)), 10),
        touch(s, WEB, "web", at(today, 8)),
        touch(s, WEB, "web", at(today, 8)),
        touch(s, 3, "sms", at(today - 5, 8)),
        paid(touch(s, PHONE, "phone", at(today - 100, 12)), 20),
        touch(b, CHAT, "chat", at(today - 2, 8)),
    ];
    touches::record(&db, &t, &batch, today).await.unwrap();

    let txn = db.begin().await.unwrap();
    let counts = touches::merge(&txn, &t, s, a).await.unwrap();
    txn.commit().await.unwrap();
    assert_eq!(counts, Counts::from([("purchase_days".into(), 1), ("touch_days".into(), 3)]));
    assert_eq!(
        touch_days(&db, &t).await,
        [
            (b, today - 2, CHAT, 1),
            (s, today - 100, EMAIL, 1),
            (s, today - 100, PHONE, 1),
            (s, today - 5, 3, 1),
            (s, today, WEB, 3),
            (s, today, MOBILE_APP, 1),
        ]
    );
    assert_eq!(purchase_days(&db, &t).await, [(s, date_of(today - 100), "EUR".to_owned(), 2, 30_000_000)]);
    assert_eq!(
        facts(&db, &t).await,
        [(a, None, None, 0, 0), row(b, today - 2, "chat", 1, 16), row(s, today, "mobile_app", 5, 527)]
    );

    let txn = db.begin().await.unwrap();
    let counts = touches::erase(&txn, &t, &[s]).await.unwrap();
    txn.commit().await.unwrap();
    assert_eq!(counts, Counts::from([("purchase_days".into(), 1), ("touch_days".into(), 5)]));
    assert_eq!(touch_days(&db, &t).await, [(b, today - 2, CHAT, 1)]);
    assert!(purchase_days(&db, &t).await.is_empty());
}
