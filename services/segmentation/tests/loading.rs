//! The load of facts on PostgreSQL and SQLite (docs/DOMAIN.md §8.5): pages
//! applied as the loader applies them, each in one transaction with its
//! cursor and count; journey's replacing their key range; a load resumed
//! after its cursor; journey's feed held during its load and, after it,
//! skipping what the load counted; profile's and survey's pages through the
//! feeds' own rules (the later fact wins).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use cx_proto::common::v1::Channel;
use cx_proto::journey::v1::{
    CustomerTouchFacts, ExportTouchFactsResponse, OfferedTouchpoint, PurchaseDay, TouchDay, TouchpointsOffered,
};
use cx_proto::outbox::v1::DeliverRequest;
use cx_proto::outbox::v1::inbox_service_server::InboxService;
use cx_proto::profile::v1::{
    ConsentChanged, ConsentPurpose, ExportProfileFactsResponse, Lifecycle, ProfileFactsChanged, Purpose, purpose,
};
use cx_proto::survey::v1::{ExportScoreFactsResponse, OpenCasesChanged, ScoreRecorded, SurveyType};
use cx_runtime::TenantId;
use cx_runtime::days::{date_of, day_number};
use cx_runtime::identity::ServiceIdentity;
use cx_runtime::outbox::inbox::{Handlers, Inbox};
use cx_runtime::store::{Db, scoped};
use cx_segmentation::load::{Applied, Page, apply_page, finish};
use cx_segmentation::store::entity::{fact, purchase_day, touch_day};
use cx_segmentation::store::migration::Migrator;
use cx_segmentation::store::sources::{self, JOURNEY, LOADED, LOADING, PROFILE, SURVEY};
use cx_segmentation::store::touches::{self, Touch};
use cx_segmentation::store::{consents, rfm};
use cx_testkit::{Backend, ServiceDb};
use prost::{Message, Name};
use sea_orm::{ColumnTrait, QueryFilter};
use tonic::Code;
use uuid::Uuid;

cx_testkit::on_both_backends!(
    journey_pages_replace_their_range_and_a_load_resumes_after_its_cursor,
    the_feed_is_held_during_a_journey_load_and_skips_what_it_counted,
    survey_pages_keep_the_later_score_and_count_a_response_once,
    profile_pages_keep_the_later_facts_and_consents,
    loads_are_due_when_reachable_settled_and_free,
);

async fn migrated(backend: Backend) -> (Db, ServiceDb) {
    let service = ServiceDb::open(backend, "segmentation").await;
    let db = service.conn.clone();
    cx_runtime::store::migrate::<Migrator>(&db, "segmentation").await.unwrap();
    (db, service)
}

fn tenant() -> TenantId {
    TenantId::parse(&cx_testkit::unique_tenant("load")).unwrap()
}

fn c(i: u128) -> Uuid {
    Uuid::from_u128(i)
}

/// Midnight UTC of day number `day`: never in the future today.
fn midnight(day: i32) -> DateTime<Utc> {
    date_of(day).and_hms_opt(0, 0, 0).unwrap().and_utc()
}

fn ts(at: DateTime<Utc>) -> Option<prost_types::Timestamp> {
    Some(cx_proto::timestamp(at))
}

// Channel indexes in rules::CHANNELS; their bits in channels_180d.
const WEB: i16 = 0; // bit 1
const EMAIL: i16 = 2; // bit 4
const CHAT: i16 = 4; // bit 16

fn touch(customer: Uuid, channel: i16, name: &'static str, at: DateTime<Utc>) -> Touch {
    Touch { customer, at, channel, channel_name: name, purchase: None }
}

fn touch_day(day: i32, channel: Channel, touchpoints: i64) -> TouchDay {
    TouchDay { date: date_of(day).to_string(), channel: channel as i32, touchpoints }
}

fn loaded(customer: Uuid, days: Vec<TouchDay>, last: DateTime<Utc>, channel: Channel) -> CustomerTouchFacts {
    CustomerTouchFacts {
        customer_id: customer.to_string(),
        touch_days: days,
        purchase_days: Vec::new(),
        last_touch_time: ts(last),
        last_channel: channel as i32,
    }
}

fn journey_page(customers: Vec<CustomerTouchFacts>, cursor: Uuid) -> Page {
    Page::Journey(ExportTouchFactsResponse { customers, cursor: cursor.to_string() })
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

/// (customer, touchpoints_90d, channels_180d, last_channel), sorted.
async fn windows(db: &Db, t: &TenantId) -> Vec<(Uuid, i64, i32, Option<String>)> {
    let mut rows: Vec<_> = scoped::<fact::Entity>(t)
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|f| (f.customer_id, f.touchpoints_90d, f.channels_180d, f.last_channel))
        .collect();
    rows.sort();
    rows
}

async fn fact_row(db: &Db, t: &TenantId, customer: Uuid) -> fact::Model {
    scoped::<fact::Entity>(t).filter(fact::Column::CustomerId.eq(customer)).one(db).await.unwrap().unwrap()
}

/// Starts a load of `source` and takes its lease.
async fn started(db: &Db, t: &TenantId, source: &str) -> (Uuid, DateTime<Utc>) {
    sources::reload(db, t, &[source], cx_runtime::store::now()).await.unwrap();
    let lease = Uuid::now_v7();
    let row = sources::claim(db, t, source, lease, cx_runtime::store::now()).await.unwrap().unwrap();
    assert_eq!((row.state.as_str(), row.cursor, row.loaded_customers), (LOADING, None, 0));
    (lease, row.high_water)
}

/// Delivers `message` as `sender`'s message `id` through segmentation's
/// inbox, as the runtime serves it.
async fn deliver<M: Message + Name>(
    db: &Db,
    t: &TenantId,
    sender: &str,
    id: &str,
    message: &M,
) -> Result<bool, tonic::Status> {
    let handlers = cx_segmentation::inbox::routes(Handlers::new("segmentation"));
    let inbox = Inbox::new(db.clone(), Arc::new(handlers));
    let mut request = tonic::Request::new(DeliverRequest {
        message_id: id.into(),
        kind: M::full_name(),
        payload: message.encode_to_vec(),
        ..Default::default()
    });
    request.extensions_mut().insert(ServiceIdentity { service: sender.into(), tenant: t.clone() });
    Ok(inbox.deliver(request).await?.into_inner().duplicate)
}

/// Before the load, the feed left (day T = today):
///   c1 web ×2 (T), c2 email ×1 (T), c4 chat ×1 (T), c6 web ×1 (T).
/// Page 1 covers (start, c3]: c1 web 5 (T), c3 email 2 (T−1) and a
/// purchase (T, EUR 10.00); c2 is absent, so it loses its touch day.
/// The loader then stops; the load is taken again by another lease and
/// resumes after c3: page 2 covers (c3, c5]: c5 chat 1 (T); c4 loses its
/// day. The stream ends: the tail (c5, end] loses c6's day.
async fn journey_pages_replace_their_range_and_a_load_resumes_after_its_cursor(backend: Backend) {
    let (db, _service) = migrated(backend).await;
    let t = tenant();
    let today = day_number(cx_runtime::store::now());
    let fed = [
        touch(c(1), WEB, "web", midnight(today)),
        touch(c(1), WEB, "web", midnight(today)),
        touch(c(2), EMAIL, "email", midnight(today)),
        touch(c(4), CHAT, "chat", midnight(today)),
        touch(c(6), WEB, "web", midnight(today)),
    ];
    touches::record(&db, &t, &fed, today).await.unwrap();
    rfm::take_due(&db).await.unwrap();
    let (lease, _) = started(&db, &t, JOURNEY).await;

    let mut c3 = loaded(c(3), vec![touch_day(today - 1, Channel::Email, 2)], midnight(today - 1), Channel::Email);
    c3.purchase_days = vec![PurchaseDay {
        date: date_of(today).to_string(),
        currency_code: "EUR".into(),
        purchases: 1,
        amount_micros: 10_000_000,
    }];
    let page = journey_page(
        vec![loaded(c(1), vec![touch_day(today, Channel::Web, 5)], midnight(today), Channel::Web), c3],
        c(3),
    );
    assert_eq!(apply_page(&db, &t, JOURNEY, lease, None, page).await.unwrap(), Applied::Advanced(Some(c(3))));
    let after_page_1 =
        vec![(c(1), today, WEB, 5), (c(3), today - 1, EMAIL, 2), (c(4), today, CHAT, 1), (c(6), today, WEB, 1)];
    assert_eq!(touch_days(&db, &t).await, after_page_1);
    let purchases: Vec<_> = scoped::<purchase_day::Entity>(&t)
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.customer_id, p.day, p.currency, p.purchases, p.amount_micros))
        .collect();
    assert_eq!(purchases, [(c(3), date_of(today), "EUR".to_owned(), 1, 10_000_000)]);
    // The cursor and count were stored in the page's transaction.
    let row = sources::get(&db, &t, JOURNEY).await.unwrap().unwrap();
    assert_eq!((row.state.as_str(), row.cursor, row.loaded_customers), (LOADING, Some(c(3)), 2));
    // The tenant's RFM is due again.
    assert_eq!(rfm::take_due(&db).await.unwrap(), std::slice::from_ref(&t));

    // A loader without the lease applies nothing.
    let stray = journey_page(vec![loaded(c(4), vec![], midnight(today), Channel::Web)], c(5));
    assert_eq!(apply_page(&db, &t, JOURNEY, Uuid::now_v7(), Some(c(3)), stray).await.unwrap(), Applied::Lost);
    assert_eq!(touch_days(&db, &t).await, after_page_1);

    // Another loader takes the load over: it resumes after c3.
    sources::release(&db, &t, JOURNEY, lease, None).await.unwrap();
    let lease = Uuid::now_v7();
    let row = sources::claim(&db, &t, JOURNEY, lease, cx_runtime::store::now()).await.unwrap().unwrap();
    assert_eq!(row.cursor, Some(c(3)));
    let page = journey_page(
        vec![loaded(c(5), vec![touch_day(today, Channel::Chat, 1)], midnight(today), Channel::Chat)],
        c(5),
    );
    assert_eq!(apply_page(&db, &t, JOURNEY, lease, row.cursor, page).await.unwrap(), Applied::Advanced(Some(c(5))));
    assert!(finish(&db, &t, JOURNEY, lease, Some(c(5))).await.unwrap());

    assert_eq!(touch_days(&db, &t).await, [(c(1), today, WEB, 5), (c(3), today - 1, EMAIL, 2), (c(5), today, CHAT, 1)]);
    // Windows recomputed for every customer of the ranges; the last touch
    // merges (c2, c4 and c6 keep theirs though their days went).
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(
        windows(&db, &t).await,
        [
            (c(1), 5, 1, some("web")),
            (c(2), 0, 0, some("email")),
            (c(3), 2, 4, some("email")),
            (c(4), 0, 0, some("chat")),
            (c(5), 1, 16, some("chat")),
            (c(6), 0, 0, some("web")),
        ]
    );
    let row = sources::get(&db, &t, JOURNEY).await.unwrap().unwrap();
    // Done: the cursor is needed no more.
    assert_eq!((row.state.as_str(), row.cursor, row.loaded_customers), (LOADED, None, 3));
    assert!(row.completed_at.is_some());
}

fn offered(id: &str, customer: Uuid, at: DateTime<Utc>, stored: Option<DateTime<Utc>>) -> OfferedTouchpoint {
    OfferedTouchpoint {
        touchpoint_id: id.into(),
        customer_id: customer.to_string(),
        occur_time: ts(at),
        channel: Channel::Web as i32,
        record_time: stored.and_then(ts),
        ..Default::default()
    }
}

/// c1 has 1 web touchpoint from the feed. A journey load starts (cut H):
/// the next offer is held (UNAVAILABLE marked as a hold, nothing kept, so
/// journey's outbox sends it again without spending an attempt). The load counts 3 web touchpoints for c1 today. Then
/// the held offer comes again: x1 stored before H (the load counted it) is
/// skipped, x2 stored after H and x3 without a record time are added:
/// 3 + 2 = 5.
async fn the_feed_is_held_during_a_journey_load_and_skips_what_it_counted(backend: Backend) {
    let (db, _service) = migrated(backend).await;
    let t = tenant();
    let today = day_number(cx_runtime::store::now());
    let first = TouchpointsOffered { touchpoints: vec![offered("x0", c(1), midnight(today), None)] };
    assert!(!deliver(&db, &t, "journey", "m1", &first).await.unwrap());
    assert_eq!(touch_days(&db, &t).await, [(c(1), today, WEB, 1)]);

    let (lease, cut) = started(&db, &t, JOURNEY).await;
    let held = TouchpointsOffered {
        touchpoints: vec![
            offered("x1", c(1), midnight(today), Some(cut - Duration::seconds(1))),
            offered("x2", c(1), midnight(today), Some(cut + Duration::seconds(1))),
            offered("x3", c(1), midnight(today), None),
        ],
    };
    let refused = deliver(&db, &t, "journey", "m2", &held).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(cx_runtime::outbox::inbox::is_hold(&refused), "a hold, which spends no attempt of journey's outbox");
    assert_eq!(touch_days(&db, &t).await, [(c(1), today, WEB, 1)]);

    let page =
        journey_page(vec![loaded(c(1), vec![touch_day(today, Channel::Web, 3)], midnight(today), Channel::Web)], c(1));
    assert_eq!(apply_page(&db, &t, JOURNEY, lease, None, page).await.unwrap(), Applied::Advanced(Some(c(1))));
    // Still loading: still held.
    assert_eq!(deliver(&db, &t, "journey", "m2", &held).await.unwrap_err().code(), Code::Unavailable);
    assert!(finish(&db, &t, JOURNEY, lease, Some(c(1))).await.unwrap());
    assert_eq!(touch_days(&db, &t).await, [(c(1), today, WEB, 3)]);

    assert!(!deliver(&db, &t, "journey", "m2", &held).await.unwrap());
    assert_eq!(touch_days(&db, &t).await, [(c(1), today, WEB, 5)]);
    assert_eq!(fact_row(&db, &t, c(1)).await.touchpoints_90d, 5);
}

fn score(response: &str, customer: Uuid, nps: i32, at: DateTime<Utc>) -> ScoreRecorded {
    ScoreRecorded {
        response_id: response.into(),
        profile_id: customer.to_string(),
        survey_type: SurveyType::Nps as i32,
        score: nps,
        respond_time: ts(at),
        ..Default::default()
    }
}

/// The feed brought c1's r1 (NPS 3, day 1) and r2 (9, day 2): 2 responses;
/// and c2's r4 (10, day 4): 1 response. The export read c1's latest, r2,
/// and c2's r3 (7, day 3) before r4 existed, and c1's 2 open cases. Page:
/// r2 is kept already (not counted again), r3 is older than r4 (neither
/// kept nor counted: the feed counts it when it comes); c3's r5 (6, day 5)
/// is new: kept and counted. Then the feed brings r3: counted, c2 has 2.
async fn survey_pages_keep_the_later_score_and_count_a_response_once(backend: Backend) {
    let (db, _service) = migrated(backend).await;
    let t = tenant();
    let day = |n: i64| DateTime::UNIX_EPOCH + Duration::days(20_000 + n);
    deliver(&db, &t, "survey", "s1", &score("r1", c(1), 3, day(1))).await.unwrap();
    deliver(&db, &t, "survey", "s2", &score("r2", c(1), 9, day(2))).await.unwrap();
    deliver(&db, &t, "survey", "s4", &score("r4", c(2), 10, day(4))).await.unwrap();
    let (lease, _) = started(&db, &t, SURVEY).await;
    let cases = OpenCasesChanged { profile_id: c(1).to_string(), open_cases: 2, change_time: ts(day(6)) };
    let page = Page::Survey(ExportScoreFactsResponse {
        scores: vec![score("r2", c(1), 9, day(2)), score("r3", c(2), 7, day(3)), score("r5", c(3), 6, day(5))],
        open_cases: vec![cases],
        cursor: c(3).to_string(),
    });
    assert_eq!(apply_page(&db, &t, SURVEY, lease, None, page).await.unwrap(), Applied::Advanced(Some(c(3))));
    assert!(finish(&db, &t, SURVEY, lease, Some(c(3))).await.unwrap());
    let kept = |f: fact::Model| (f.last_nps, f.nps_category, f.responses, f.open_cases);
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(kept(fact_row(&db, &t, c(1)).await), (Some(9), some("promoter"), 2, 2));
    assert_eq!(kept(fact_row(&db, &t, c(2)).await), (Some(10), some("promoter"), 1, 0));
    assert_eq!(kept(fact_row(&db, &t, c(3)).await), (Some(6), some("detractor"), 1, 0));
    let row = sources::get(&db, &t, SURVEY).await.unwrap().unwrap();
    assert_eq!((row.state.as_str(), row.loaded_customers), (LOADED, 3));

    deliver(&db, &t, "survey", "s3", &score("r3", c(2), 7, day(3))).await.unwrap();
    assert_eq!(kept(fact_row(&db, &t, c(2)).await), (Some(10), some("promoter"), 2, 0));
}

fn facts(customer: Uuid, lifecycle: Lifecycle, at: DateTime<Utc>) -> ProfileFactsChanged {
    ProfileFactsChanged {
        profile_id: customer.to_string(),
        lifecycle: lifecycle as i32,
        change_time: ts(at),
        ..Default::default()
    }
}

fn email_consent(customer: Uuid, granted: bool, at: DateTime<Utc>) -> ConsentChanged {
    ConsentChanged {
        profile_id: customer.to_string(),
        purpose: Some(Purpose { kind: Some(purpose::Kind::Standard(ConsentPurpose::Email as i32)) }),
        granted,
        occur_time: ts(at),
        record_time: ts(at),
    }
}

/// The feed brought c1 prospect (at 1) and c2 lost (at 3), and c2's email
/// consent withdrawn (at 3). The page read c1 active (at 2), c2 active (at
/// 2) and c2's consent granted (at 2), c1's granted (at 2). c1 becomes
/// active with the consent; c2 keeps the later: lost, no consent.
async fn profile_pages_keep_the_later_facts_and_consents(backend: Backend) {
    let (db, _service) = migrated(backend).await;
    let t = tenant();
    let at = |n: i64| DateTime::UNIX_EPOCH + Duration::days(20_000) + Duration::hours(n);
    deliver(&db, &t, "profile", "p1", &facts(c(1), Lifecycle::Prospect, at(1))).await.unwrap();
    deliver(&db, &t, "profile", "p2", &facts(c(2), Lifecycle::Lost, at(3))).await.unwrap();
    deliver(&db, &t, "profile", "p3", &email_consent(c(2), false, at(3))).await.unwrap();
    let (lease, _) = started(&db, &t, PROFILE).await;
    let page = Page::Profile(ExportProfileFactsResponse {
        facts: vec![facts(c(1), Lifecycle::Active, at(2)), facts(c(2), Lifecycle::Active, at(2))],
        consents: vec![email_consent(c(1), true, at(2)), email_consent(c(2), true, at(2))],
        cursor: c(2).to_string(),
    });
    assert_eq!(apply_page(&db, &t, PROFILE, lease, None, page).await.unwrap(), Applied::Advanced(Some(c(2))));
    assert!(finish(&db, &t, PROFILE, lease, Some(c(2))).await.unwrap());
    let kept = |f: fact::Model| (f.lifecycle, f.consent_email);
    assert_eq!(kept(fact_row(&db, &t, c(1)).await), (Some("active".to_owned()), true));
    assert_eq!(kept(fact_row(&db, &t, c(2)).await), (Some("lost".to_owned()), false));
    assert_eq!(consents::of(&db, &t, c(2)).await.unwrap(), [("email".to_owned(), false)]);
    let row = sources::get(&db, &t, PROFILE).await.unwrap().unwrap();
    assert_eq!((row.state.as_str(), row.cursor, row.loaded_customers), (LOADED, None, 2));
}

/// Loads asked at t0 of all three sources. With journey's settle 60 s and
/// only profile and journey reachable: due at t0 is profile alone; at
/// t0+61 s journey too; never survey. A claimed load is not due; one
/// released to retry at t0+30 s is neither due nor claimable before then.
async fn loads_are_due_when_reachable_settled_and_free(backend: Backend) {
    let (db, _service) = migrated(backend).await;
    let t = tenant();
    let t0 = cx_runtime::store::now();
    let later = |s: i64| t0 + Duration::seconds(s);
    sources::reload(&db, &t, &[PROFILE, JOURNEY, SURVEY], t0).await.unwrap();
    let settle = std::time::Duration::from_secs(60);
    let due = |at: DateTime<Utc>| {
        let db = db.clone();
        async move {
            let mut due = sources::due(&db, at, settle, &[PROFILE, JOURNEY], 10).await.unwrap();
            due.sort_by(|a, b| a.1.cmp(&b.1));
            due.into_iter().map(|(tenant, source)| (tenant.to_string(), source)).collect::<Vec<_>>()
        }
    };
    let of = |source: &str| (t.to_string(), source.to_owned());
    assert_eq!(due(t0).await, [of(PROFILE)]);
    assert_eq!(due(later(61)).await, [of(JOURNEY), of(PROFILE)]);

    let first = Uuid::now_v7();
    assert!(sources::claim(&db, &t, PROFILE, first, t0).await.unwrap().is_some());
    assert!(due(t0).await.is_empty());
    sources::release(&db, &t, PROFILE, first, Some(later(30))).await.unwrap();
    assert!(due(later(10)).await.is_empty());
    let second = Uuid::now_v7();
    assert!(sources::claim(&db, &t, PROFILE, second, later(10)).await.unwrap().is_none());
    assert_eq!(due(later(31)).await, [of(PROFILE)]);
    assert!(sources::claim(&db, &t, PROFILE, second, later(31)).await.unwrap().is_some());
}
