//! Triggers through gRPC, on both backends: their life, the open survey of
//! the tenant they need, bad input refused with the exact field at fault;
//! and the tenant's active triggers, read through the cache until a change
//! drops it (docs/DOMAIN.md §7.6).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod definitions_kit;

use std::sync::Arc;
use std::time::Duration;

use cx_proto::common::v1::{Channel, InteractionKind, Money};
use cx_proto::profile::v1::{DigitalCategory, Lifecycle};
use cx_proto::survey::v1 as pb;
use cx_proto::survey::v1::survey_service_server::SurveyService;
use cx_runtime::TenantId;
use cx_runtime::auth::{Caller, Role};
use cx_runtime::cache::Cache;
use cx_survey::api::SurveyApi;
use cx_survey::domain::trigger::{Condition, Trigger};
use cx_survey::store::migration::Migrator;
use cx_survey::store::{SurveyStore, triggers};
use cx_testkit::{ServiceDb, authed};
use definitions_kit::{Backend, Expected, Suite, mask, nps_survey, pairs, seconds, suite, violations};
use tonic::{Code, Request};
use uuid::Uuid;

cx_testkit::on_both_backends!(
    triggers_are_created_read_listed_updated_and_deleted,
    a_trigger_needs_an_open_survey_of_the_tenant,
    bad_triggers_are_refused_with_the_field_at_fault,
    active_triggers_are_read_through_the_cache_until_a_change,
);

const MAP: &str = "0190c1d2-0000-7000-8000-00000000000a";

/// Late deliveries bought on the web or in store, by hybrid customers who
/// are active: a quarter of them, two hours after.
fn delivered(survey: &pb::Survey, name: &str) -> pb::Trigger {
    pb::Trigger {
        survey_id: survey.id.clone(),
        name: name.into(),
        enabled: true,
        condition: Some(pb::TouchpointCondition {
            map_id: MAP.into(),
            step_key: "delivery".into(),
            channels: vec![Channel::Web as i32, Channel::Store as i32],
            kind: InteractionKind::Transactional as i32,
            experience_score_below: Some(7),
            purchase_above: Some(Money { currency_code: "EUR".into(), units: 50, nanos: 500_000_000 }),
            lifecycles: vec![Lifecycle::Active as i32],
            digital_categories: vec![DigitalCategory::Hybrid as i32],
        }),
        sampling_rate: 0.25,
        delay: seconds(7_200),
        ..Default::default()
    }
}

fn instant(ts: &Option<prost_types::Timestamp>) -> chrono::DateTime<chrono::Utc> {
    cx_proto::from_timestamp(ts.as_ref().unwrap()).unwrap()
}

fn ids(triggers: &[pb::Trigger]) -> Vec<&str> {
    triggers.iter().map(|t| t.id.as_str()).collect()
}

async fn list(s: &Suite, token: &str, survey_id: &str, page_size: i32, page_token: &str) -> pb::ListTriggersResponse {
    let request = pb::ListTriggersRequest { survey_id: survey_id.into(), page_size, page_token: page_token.into() };
    s.client().await.list_triggers(authed(request, token)).await.unwrap().into_inner()
}

async fn update(s: &Suite, token: &str, trigger: pb::Trigger, paths: &[&str]) -> Result<pb::Trigger, tonic::Status> {
    let request = pb::UpdateTriggerRequest { trigger: Some(trigger), update_mask: mask(paths) };
    s.client().await.update_trigger(authed(request, token)).await.map(|r| r.into_inner().trigger.unwrap())
}

async fn get(s: &Suite, token: &str, id: &str) -> Result<pb::Trigger, tonic::Status> {
    let request = authed(pb::GetTriggerRequest { id: id.into() }, token);
    s.client().await.get_trigger(request).await.map(|r| r.into_inner().trigger.unwrap())
}

fn answer(status: &tonic::Status) -> (Code, &str) {
    (status.code(), status.message())
}

async fn triggers_are_created_read_listed_updated_and_deleted(backend: Backend) {
    let s = suite(backend).await;
    let a = s.create(nps_survey("A")).await;
    let b = s.create(nps_survey("B")).await;
    let t1 = s.create_trigger(delivered(&a, "late")).await;
    assert_eq!(Uuid::parse_str(&t1.id).unwrap().get_version_num(), 7);
    // Sent as it was, with the output-only fields set and the unset expiry
    // made 7 days (604,800 s).
    let mut expected = delivered(&a, "late");
    expected.id = t1.id.clone();
    expected.expiry = seconds(604_800);
    expected.create_time = t1.create_time;
    expected.update_time = t1.create_time;
    assert_eq!(t1, expected);
    assert_eq!(get(&s, &s.reader, &t1.id).await.unwrap(), t1);

    let t2 = s.create_trigger(delivered(&b, "late b")).await;
    let t3 = s.create_trigger(delivered(&a, "late again")).await;
    let first = list(&s, &s.reader, "", 2, "").await;
    assert_eq!(ids(&first.triggers), [&t1.id, &t2.id], "creation order");
    let second = list(&s, &s.reader, "", 2, &first.next_page_token).await;
    assert_eq!((ids(&second.triggers), second.next_page_token.as_str()), (vec![t3.id.as_str()], ""));
    assert_eq!(ids(&list(&s, &s.reader, &a.id, 0, "").await.triggers), [&t1.id, &t3.id]);
    assert_eq!(ids(&list(&s, &s.reader, &b.id, 0, "").await.triggers), [&t2.id]);

    // The masked fields change, the rest stays.
    let given = pb::Trigger {
        id: t1.id.clone(),
        name: "ignored".into(),
        sampling_rate: 1.0,
        expiry: seconds(3_600),
        ..Default::default()
    };
    let changed = update(&s, &s.admin, given, &["sampling_rate", "expiry", "enabled"]).await.unwrap();
    assert_eq!((changed.sampling_rate, changed.expiry, changed.enabled), (1.0, seconds(3_600), false));
    assert_eq!((changed.name.as_str(), &changed.condition), ("late", &t1.condition));
    assert!(instant(&changed.update_time) >= instant(&t1.update_time));
    assert_eq!(changed.create_time, t1.create_time);
    // No condition: every touchpoint matches.
    let cleared = update(&s, &s.admin, pb::Trigger { id: t1.id.clone(), ..Default::default() }, &["condition"]);
    let cleared = cleared.await.unwrap();
    assert_eq!((cleared.condition, cleared.sampling_rate), (None, 1.0));
    assert_eq!(get(&s, &s.reader, &t1.id).await.unwrap().condition, None);

    let delete = || authed(pb::DeleteTriggerRequest { id: t2.id.clone() }, &s.admin);
    s.client().await.delete_trigger(delete()).await.unwrap();
    let gone = format!("trigger {} not found", t2.id);
    assert_eq!(answer(&get(&s, &s.reader, &t2.id).await.unwrap_err()), (Code::NotFound, gone.as_str()));
    assert_eq!(answer(&s.client().await.delete_trigger(delete()).await.unwrap_err()), (Code::NotFound, gone.as_str()));
    assert_eq!(list(&s, &s.reader, &b.id, 0, "").await.triggers, []);
}

async fn a_trigger_needs_an_open_survey_of_the_tenant(backend: Backend) {
    let s = suite(backend).await;
    let a = s.create(nps_survey("A")).await;
    let b = s.create(nps_survey("B")).await;
    let on_a = s.create_trigger(delivered(&a, "on a")).await;
    let on_b = s.create_trigger(delivered(&b, "on b")).await;
    let mut client = s.client().await;
    let create = |survey: &pb::Survey, token: &str| {
        authed(pb::CreateTriggerRequest { trigger: Some(delivered(survey, "x")) }, token)
    };

    let nowhere = pb::Survey { id: Uuid::now_v7().to_string(), ..Default::default() };
    let refused = client.create_trigger(create(&nowhere, &s.admin)).await.unwrap_err();
    assert_eq!(answer(&refused), (Code::NotFound, format!("survey {} not found", nowhere.id).as_str()));

    let archive = authed(pb::ArchiveSurveyRequest { id: b.id.clone() }, &s.admin);
    client.archive_survey(archive).await.unwrap();
    let closed = format!("survey {} is archived: its triggers cannot change", b.id);
    let refused = client.create_trigger(create(&b, &s.admin)).await.unwrap_err();
    assert_eq!(answer(&refused), (Code::FailedPrecondition, closed.as_str()));
    let refused = update(&s, &s.admin, pb::Trigger { id: on_b.id.clone(), ..on_b.clone() }, &["name"]).await;
    assert_eq!(answer(&refused.unwrap_err()), (Code::FailedPrecondition, closed.as_str()));
    // Clearing up stays possible.
    client.delete_trigger(authed(pb::DeleteTriggerRequest { id: on_b.id.clone() }, &s.admin)).await.unwrap();

    // Another tenant finds none of it.
    let refused = client.create_trigger(create(&a, &s.stranger)).await.unwrap_err();
    assert_eq!(answer(&refused), (Code::NotFound, format!("survey {} not found", a.id).as_str()));
    let not_found = format!("trigger {} not found", on_a.id);
    assert_eq!(answer(&get(&s, &s.stranger, &on_a.id).await.unwrap_err()), (Code::NotFound, not_found.as_str()));
    let refused = update(&s, &s.stranger, on_a.clone(), &["name"]).await.unwrap_err();
    assert_eq!(answer(&refused), (Code::NotFound, not_found.as_str()));
    let refused = client.delete_trigger(authed(pb::DeleteTriggerRequest { id: on_a.id.clone() }, &s.stranger));
    assert_eq!(answer(&refused.await.unwrap_err()), (Code::NotFound, not_found.as_str()));
    assert_eq!(list(&s, &s.stranger, "", 0, "").await.triggers, []);
    let theirs = pb::ListTriggersRequest { survey_id: a.id.clone(), ..Default::default() };
    let refused = client.list_triggers(authed(theirs, &s.stranger)).await.unwrap_err();
    assert_eq!(answer(&refused), (Code::NotFound, format!("survey {} not found", a.id).as_str()));

    // Readers read; only admins change.
    for token in [&s.reader, &s.writer] {
        let denied = client.create_trigger(create(&a, token)).await.unwrap_err();
        assert_eq!(answer(&denied), (Code::PermissionDenied, "this call needs the admin role"));
        let denied = client.delete_trigger(authed(pb::DeleteTriggerRequest { id: on_a.id.clone() }, token));
        assert_eq!(denied.await.unwrap_err().code(), Code::PermissionDenied);
    }
    assert_eq!(get(&s, &s.reader, &on_a.id).await.unwrap(), on_a);
    assert_eq!(list(&s, &s.reader, "", 0, "").await.triggers, [on_a]);
}

async fn bad_triggers_are_refused_with_the_field_at_fault(backend: Backend) {
    let s = suite(backend).await;
    let survey = s.create(nps_survey("A")).await;
    let with = |change: &dyn Fn(&mut pb::Trigger)| {
        let mut trigger = delivered(&survey, "bad");
        change(&mut trigger);
        Some(trigger)
    };
    let condition = |change: &dyn Fn(&mut pb::TouchpointCondition)| {
        with(&|t: &mut pb::Trigger| change(t.condition.as_mut().unwrap()))
    };
    let euros = |code: &str, units| Some(Money { currency_code: code.into(), units, nanos: 0 });
    let cases: Vec<(Option<pb::Trigger>, Expected)> = vec![
        (None, vec![("trigger", "is required")]),
        (with(&|t| t.survey_id = String::new()), vec![("trigger.survey_id", "is required")]),
        (with(&|t| t.name = String::new()), vec![("trigger.name", "is required")]),
        (
            with(&|t| t.sampling_rate = 0.0),
            vec![("trigger.sampling_rate", "must be above 0 and at most 1 (1 invites on every match)")],
        ),
        (
            condition(&|c| c.map_id = String::new()),
            vec![("trigger.condition.step_key", "needs map_id: a step key names a step of one map")],
        ),
        (
            condition(&|c| c.map_id = "map-1".into()),
            vec![("trigger.condition.map_id", "must be a journey map id (a UUID)")],
        ),
        (
            condition(&|c| c.step_key = "Delivery!".into()),
            vec![("trigger.condition.step_key", "must be 1 to 64 of a-z, 0-9, '_' and '-'")],
        ),
        (
            condition(&|c| c.channels = vec![Channel::Web as i32, 42, Channel::Web as i32]),
            vec![
                ("trigger.condition.channels[1]", "is not a channel"),
                ("trigger.condition.channels[2]", "repeats CHANNEL_WEB"),
            ],
        ),
        (
            condition(&|c| c.kind = 7),
            vec![(
                "trigger.condition.kind",
                "must be INTERACTION_KIND_INFORMATIVE or INTERACTION_KIND_TRANSACTIONAL (or unset: any)",
            )],
        ),
        (
            condition(&|c| c.experience_score_below = Some(0)),
            vec![("trigger.condition.experience_score_below", "must be between 1 and 10")],
        ),
        (
            condition(&|c| c.purchase_above = euros("eur", 5)),
            vec![("trigger.condition.purchase_above.currency_code", "must be an ISO 4217 code such as EUR")],
        ),
        (
            condition(&|c| c.purchase_above = euros("EUR", -5)),
            vec![("trigger.condition.purchase_above", "must not be negative")],
        ),
        (
            condition(&|c| c.kind = InteractionKind::Informative as i32),
            vec![(
                "trigger.condition.purchase_above",
                "never matches an informative touchpoint: only transactions carry a purchase",
            )],
        ),
        (condition(&|c| c.lifecycles = vec![9]), vec![("trigger.condition.lifecycles[0]", "is not a lifecycle state")]),
        (
            condition(&|c| c.digital_categories = vec![0]),
            vec![("trigger.condition.digital_categories[0]", "is not a digital category")],
        ),
        // More entries than there are values is one violation, the entries
        // not read: 100,000 unknown channels were 100,000 violations.
        (
            condition(&|c| c.channels = vec![99; 100_000]),
            vec![("trigger.condition.channels", "has at most 12 entries, one per value (has 100000)")],
        ),
        (
            condition(&|c| c.lifecycles = vec![1; 6]),
            vec![("trigger.condition.lifecycles", "has at most 5 entries, one per value (has 6)")],
        ),
        (
            condition(&|c| c.digital_categories = vec![1; 5]),
            vec![("trigger.condition.digital_categories", "has at most 4 entries, one per value (has 5)")],
        ),
        // 31 days = 2,678,400 s.
        (with(&|t| t.delay = seconds(2_678_400)), vec![("trigger.delay", "must be 0 to 30 days")]),
        (with(&|t| t.expiry = seconds(1_800)), vec![("trigger.expiry", "must be 1 hour to 90 days")]),
        (
            with(&|t| t.expiry = Some(prost_types::Duration { seconds: 3_600, nanos: 1 })),
            vec![("trigger.expiry", "must be whole seconds")],
        ),
    ];
    for (trigger, expected) in cases {
        let request = authed(pb::CreateTriggerRequest { trigger }, &s.admin);
        let status = s.client().await.create_trigger(request).await.unwrap_err();
        assert_eq!((status.code(), violations(&status)), (Code::InvalidArgument, pairs(&expected)));
    }
    assert_eq!(list(&s, &s.reader, "", 0, "").await.triggers, [], "nothing refused was stored");

    let stored = s.create_trigger(delivered(&survey, "good")).await;
    let cases: Vec<(pb::Trigger, &[&str], Expected)> = vec![
        (
            stored.clone(),
            &["survey_id"],
            vec![("update_mask", "\"survey_id\" cannot change: create a trigger for the other survey")],
        ),
        (
            pb::Trigger { sampling_rate: 0.0, ..stored.clone() },
            &["sampling_rate"],
            vec![("trigger.sampling_rate", "must be above 0 and at most 1 (1 invites on every match)")],
        ),
        (
            pb::Trigger { id: "x".into(), ..stored.clone() },
            &["name"],
            vec![("trigger.id", "must be a trigger id (a UUID)")],
        ),
    ];
    for (trigger, paths, expected) in cases {
        let status = update(&s, &s.admin, trigger, paths).await.unwrap_err();
        assert_eq!((status.code(), violations(&status)), (Code::InvalidArgument, pairs(&expected)));
    }
    assert_eq!(get(&s, &s.reader, &stored.id).await.unwrap(), stored, "unchanged");
}

/// `message` as `tenant`'s admin calls it (the interceptor's work done).
fn as_admin<T>(tenant: &TenantId, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.extensions_mut().insert(Caller {
        tenant: tenant.clone(),
        subject: "test".into(),
        role: Some(Role::Admin),
        token: Arc::from(""),
        expires: u64::MAX,
    });
    request
}

async fn active_triggers_are_read_through_the_cache_until_a_change(backend: Backend) {
    let service = ServiceDb::open(backend, "survey").await;
    let db = service.conn.clone();
    cx_runtime::store::migrate::<Migrator>(&db, "survey").await.unwrap();
    let cache = Cache::in_memory(Duration::from_secs(300));
    let api = SurveyApi::new(SurveyStore::new(db.clone()), cache.clone());
    let t = TenantId::parse("acme").unwrap();
    let survey = |name| {
        let request = as_admin(&t, pb::CreateSurveyRequest { survey: Some(nps_survey(name)) });
        let api = &api;
        async move { api.create_survey(request).await.unwrap().into_inner().survey.unwrap() }
    };
    let (s1, s2) = (survey("one").await, survey("two").await);
    let trigger = |trigger: pb::Trigger| async {
        let request = as_admin(&t, pb::CreateTriggerRequest { trigger: Some(trigger) });
        api.create_trigger(request).await.unwrap().into_inner().trigger.unwrap()
    };
    let t1 = trigger(delivered(&s1, "t1")).await;
    let t2 = trigger(pb::Trigger { enabled: false, ..delivered(&s1, "t2") }).await;
    let t3 = trigger(delivered(&s2, "t3")).await;
    let active = || async {
        let found = triggers::active(&db, &cache, &t).await.unwrap();
        found.into_iter().map(|t| t.id.to_string()).collect::<Vec<_>>()
    };
    assert_eq!(active().await, [t1.id.as_str(), t3.id.as_str()], "enabled, of surveys not archived, in creation order");

    // The matching form of t1: 50.5 EUR = 50,500,000 micro-units; 2 hours;
    // the default 7 days.
    let read = triggers::active(&db, &cache, &t).await.unwrap();
    assert_eq!(
        read[0],
        Trigger {
            id: Uuid::parse_str(&t1.id).unwrap(),
            survey_id: Uuid::parse_str(&s1.id).unwrap(),
            enabled: true,
            condition: Condition {
                map_id: Some(Uuid::parse_str(MAP).unwrap()),
                step_key: Some("delivery".into()),
                channels: vec![Channel::Web as i32, Channel::Store as i32],
                kind: Some(InteractionKind::Transactional as i32),
                score_below: Some(7),
                purchase_above: Some(("EUR".into(), 50_500_000)),
                lifecycles: vec![Lifecycle::Active as i32],
                digital_categories: vec![DigitalCategory::Hybrid as i32],
            },
            sampling_rate: 0.25,
            delay: chrono::Duration::hours(2),
            expiry: chrono::Duration::days(7),
        }
    );

    // A trigger written behind the API's back is not seen: the list is cached.
    let sneaked = pb::Trigger {
        id: Uuid::now_v7().to_string(),
        create_time: t1.create_time,
        update_time: t1.create_time,
        ..delivered(&s1, "t4")
    };
    triggers::insert(&db, &t, &sneaked).await.unwrap();
    assert_eq!(active().await, [t1.id.as_str(), t3.id.as_str()], "read from the cache");

    // Each change through the API drops the entry: the next read is fresh.
    api.archive_survey(as_admin(&t, pb::ArchiveSurveyRequest { id: s2.id.clone() })).await.unwrap();
    assert_eq!(active().await, [t1.id.as_str(), sneaked.id.as_str()], "t3's survey is archived");
    let enable = pb::UpdateTriggerRequest {
        trigger: Some(pb::Trigger { id: t2.id.clone(), enabled: true, ..Default::default() }),
        update_mask: mask(&["enabled"]),
    };
    api.update_trigger(as_admin(&t, enable)).await.unwrap();
    assert_eq!(active().await, [t1.id.as_str(), t2.id.as_str(), sneaked.id.as_str()]);
    api.delete_trigger(as_admin(&t, pb::DeleteTriggerRequest { id: t1.id.clone() })).await.unwrap();
    assert_eq!(active().await, [t2.id.as_str(), sneaked.id.as_str()]);
    let t5 = trigger(delivered(&s1, "t5")).await;
    assert_eq!(active().await, [t2.id.as_str(), sneaked.id.as_str(), t5.id.as_str()]);

    // Another tenant's entry is its own.
    let other = TenantId::parse("globex").unwrap();
    assert_eq!(triggers::active(&db, &cache, &other).await.unwrap(), []);
}
