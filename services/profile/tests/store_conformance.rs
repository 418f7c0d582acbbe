//! One suite of store behaviour, run against SQLite and PostgreSQL alike so
//! the two backends cannot drift.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, Utc};
use cx_profile::domain::attributes::{AttributeValue, Attributes, MaskPath};
use cx_profile::domain::consent::{Purpose, StandardPurpose};
use cx_profile::domain::identity::{Identity, IdentityKind};
use cx_profile::error::ProfileError;
use cx_profile::store::migration::Migrator;
use cx_profile::store::{NewConsent, ProfileStore, ProfileUpdate};
use cx_runtime::TenantId;
use cx_testkit::{Backend, ServiceDb, TestDb};

/// A migrated profile store on `backend`, with its database.
async fn open(backend: Backend) -> (ProfileStore, ServiceDb) {
    let db = ServiceDb::open(backend, "profile").await;
    cx_runtime::store::migrate::<Migrator>(&db.conn, "profile").await.unwrap();
    (ProfileStore::new(db.conn.clone()), db)
}

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

fn email(raw: &str) -> Identity {
    Identity::normalize(IdentityKind::Email, raw).unwrap()
}

cx_testkit::on_both_backends!(
    resolve_creates_once_then_finds,
    batch_resolve_creates_missing_and_reports_known,
    an_identity_belongs_to_one_profile,
    update_applies_the_mask_and_bumps_the_version,
    list_pages_in_creation_order,
    consent_state_follows_the_latest_decision,
    custom_purposes_must_be_defined,
    tenants_never_see_each_other,
    concurrent_resolves_create_exactly_one_profile,
    activity_accumulates_per_day_and_batches_apply_once,
    the_sweep_moves_customers_as_days_pass,
    a_changed_intensity_model_applies_at_once_without_rewriting,
    the_database_and_rust_agree_on_every_index,
    a_merge_unites_identities_consents_activity_and_keeps_resolving,
    the_lifecycle_roll_up_counts_as_the_purchase_days_do,
);

async fn resolve_creates_once_then_finds(backend: Backend) {
    let (store, _guard) = &open(backend).await;
    let t = tenant("acme");
    let jane = email("jane@example.com");
    assert!(store.resolve(&t, &jane, false).await.unwrap().is_none());
    let (created, was_created) = store.resolve(&t, &jane, true).await.unwrap().unwrap();
    assert!(was_created);
    assert_eq!(created.version, 1);
    assert_eq!(created.identities, vec![jane.clone()]);
    let (found, was_created) = store.resolve(&t, &jane, true).await.unwrap().unwrap();
    assert!(!was_created);
    assert_eq!(found.id, created.id);
}

async fn batch_resolve_creates_missing_and_reports_known(backend: Backend) {
    let (store, _guard) = &open(backend).await;
    let t = tenant("acme");
    let (known, _) = store.resolve(&t, &email("known@example.com"), true).await.unwrap().unwrap();
    let a = email("a@example.com");
    let b = Identity::normalize(IdentityKind::Phone, "+33612345678").unwrap();
    let batch = vec![a.clone(), email("known@example.com"), b.clone(), a.clone()];

    let unresolved = store.batch_resolve(&t, &batch, false).await.unwrap();
    assert_eq!(unresolved, vec![None, Some((known.id, false)), None, None]);

    let resolved = store.batch_resolve(&t, &batch, true).await.unwrap();
    let (a_id, a_created) = resolved[0].unwrap();
    let (b_id, b_created) = resolved[2].unwrap();
    assert!(a_created && b_created);
    assert_ne!(a_id, b_id);
    assert_eq!(resolved[1], Some((known.id, false)));
    assert_eq!(resolved[3], Some((a_id, true)), "a duplicate resolves to the same new profile");

    // Known, known, known: nothing new this time; 3 profiles in all.
    let again = store.batch_resolve(&t, &batch, true).await.unwrap();
    assert_eq!(again, vec![Some((a_id, false)), Some((known.id, false)), Some((b_id, false)), Some((a_id, false))]);
    let (all, _) = store.list(&t, None, 10).await.unwrap();
    assert_eq!(all.len(), 3);
}

async fn an_identity_belongs_to_one_profile(backend: Backend) {
    let (store, _guard) = &open(backend).await;
    let t = tenant("acme");
    let (p1, _) = store.resolve(&t, &email("one@example.com"), true).await.unwrap().unwrap();
    let (p2, _) = store.resolve(&t, &email("two@example.com"), true).await.unwrap().unwrap();
    let card = Identity::normalize(IdentityKind::LoyaltyCard, "CARD-1").unwrap();

    let with_card = store.add_identity(&t, p1.id, &card).await.unwrap();
    assert_eq!(with_card.identities, vec![email("one@example.com"), card.clone()]);
    assert_eq!(with_card.version, 2);
    // Adding it again to its owner is a no-op; to another profile, a conflict.
    assert_eq!(store.add_identity(&t, p1.id, &card).await.unwrap().identities.len(), 2);
    assert!(matches!(store.add_identity(&t, p2.id, &card).await, Err(ProfileError::AlreadyExists(_))));

    let without = store.remove_identity(&t, p1.id, &card).await.unwrap();
    assert_eq!(without.identities, vec![email("one@example.com")]);
    assert!(matches!(store.remove_identity(&t, p1.id, &card).await, Err(ProfileError::NotFound(_))));
    assert_eq!(store.add_identity(&t, p2.id, &card).await.unwrap().identities.len(), 2);
    let missing = uuid::Uuid::now_v7();
    assert!(matches!(store.add_identity(&t, missing, &card).await, Err(ProfileError::NotFound(_))));
}

async fn update_applies_the_mask_and_bumps_the_version(backend: Backend) {
    let (store, _guard) = &open(backend).await;
    let t = tenant("acme");
    let (p, _) = store.resolve(&t, &email("u@example.com"), true).await.unwrap().unwrap();
    let update = ProfileUpdate {
        paths: vec![MaskPath::Persona, MaskPath::Attributes],
        persona: "young family".into(),
        attributes: Attributes::from([
            ("tier".to_owned(), AttributeValue::String("gold".into())),
            ("kids".to_owned(), AttributeValue::Int(2)),
        ]),
    };
    let updated = store.update(&t, p.id, &update, 100).await.unwrap();
    assert_eq!((updated.persona.as_str(), updated.version), ("young family", 2));
    assert_eq!(updated.attributes, update.attributes);

    // Only `kids` changes; persona stays because it is not in the mask.
    let partial = ProfileUpdate {
        paths: vec![MaskPath::Attribute("kids".into())],
        persona: "ignored".into(),
        attributes: Attributes::from([("kids".to_owned(), AttributeValue::Int(3))]),
    };
    let updated = store.update(&t, p.id, &partial, 100).await.unwrap();
    assert_eq!((updated.persona.as_str(), updated.version), ("young family", 3));
    assert_eq!(updated.attributes.get("kids"), Some(&AttributeValue::Int(3)));
    assert_eq!(updated.attributes.get("tier"), Some(&AttributeValue::String("gold".into())));

    // A cap of 2 refuses a third key, and nothing is written.
    let third = ProfileUpdate {
        paths: vec![MaskPath::Attribute("pets".into())],
        persona: String::new(),
        attributes: Attributes::from([("pets".to_owned(), AttributeValue::Bool(true))]),
    };
    assert!(matches!(store.update(&t, p.id, &third, 2).await, Err(ProfileError::InvalidArgument(_))));
    assert_eq!(store.get(&t, p.id).await.unwrap().version, 3);
}

async fn list_pages_in_creation_order(backend: Backend) {
    let (store, _guard) = &open(backend).await;
    let t = tenant("acme");
    let mut ids = Vec::new();
    for i in 0..5 {
        let (p, _) = store.resolve(&t, &email(&format!("p{i}@example.com")), true).await.unwrap().unwrap();
        ids.push(p.id);
    }
    let (first, more) = store.list(&t, None, 2).await.unwrap();
    assert!(more);
    let (second, more) = store.list(&t, Some(first[1].id), 2).await.unwrap();
    assert!(more);
    let (third, more) = store.list(&t, Some(second[1].id), 2).await.unwrap();
    assert!(!more);
    let listed: Vec<_> = first.iter().chain(&second).chain(&third).map(|p| p.id).collect();
    assert_eq!(listed, ids);
    assert_eq!(third[0].identities, vec![email("p4@example.com")]);
}

async fn consent_state_follows_the_latest_decision(backend: Backend) {
    let (store, _guard) = &open(backend).await;
    let t = tenant("acme");
    let (p, _) = store.resolve(&t, &email("c@example.com"), true).await.unwrap().unwrap();
    let purpose = Purpose::Standard(StandardPurpose::Email);
    let now = Utc::now();
    let decision = |granted: bool, minutes_ago: i64, request_id: &str| NewConsent {
        purpose: purpose.clone(),
        granted,
        source_channel: "web".into(),
        actor: "customer".into(),
        occurred_at: now - Duration::minutes(minutes_ago),
        request_id: Some(request_id.to_owned()),
    };
    assert!(store.consent(&t, p.id, &purpose).await.unwrap().is_none(), "no decision: no consent");

    store.set_consent(&t, p.id, decision(true, 30, "r1")).await.unwrap();
    store.set_consent(&t, p.id, decision(false, 10, "r2")).await.unwrap();
    // A paper form signed 20 minutes ago is keyed in last: the withdrawal
    // 10 minutes ago stays in force.
    let (late, _) = store.set_consent(&t, p.id, decision(true, 20, "r3")).await.unwrap();
    let current = store.consent(&t, p.id, &purpose).await.unwrap().unwrap();
    assert!(!current.granted);
    assert_eq!(current.occurred_at, cx_runtime::store::stored_instant(now - Duration::minutes(10)));

    // A retry of r3 records nothing new and returns the first record.
    let (retried, history) = store.set_consent(&t, p.id, decision(true, 20, "r3")).await.unwrap();
    assert_eq!(retried.id, late.id);
    assert_eq!(history.len(), 3);

    let (page, more) = store.consent_history(&t, p.id, None, 2).await.unwrap();
    assert!(more);
    assert_eq!(page[0].id, late.id, "newest recorded first");
    let (rest, more) = store.consent_history(&t, p.id, Some(page[1].id), 2).await.unwrap();
    assert_eq!((rest.len(), more), (1, false));
    assert!(rest[0].granted, "the oldest record is the first grant");
    // Other purposes are untouched.
    let sms = Purpose::Standard(StandardPurpose::Sms);
    assert!(store.consent(&t, p.id, &sms).await.unwrap().is_none());
}

async fn custom_purposes_must_be_defined(backend: Backend) {
    let (store, _guard) = &open(backend).await;
    let t = tenant("acme");
    let club = Purpose::Custom("wine_club".into());
    assert!(matches!(store.check_purpose(&t, &club, "purpose.custom").await, Err(ProfileError::InvalidArgument(_))));
    store.create_purpose(&t, "wine_club", "Monthly wine club offers").await.unwrap();
    assert!(matches!(store.create_purpose(&t, "wine_club", "again").await, Err(ProfileError::AlreadyExists(_))));
    store.check_purpose(&t, &club, "purpose.custom").await.unwrap();
    let listed = store.purposes(&t).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].name.as_str(), listed[0].description.as_str()), ("wine_club", "Monthly wine club offers"));
    // Another tenant has not defined it.
    assert!(store.check_purpose(&tenant("other"), &club, "purpose.custom").await.is_err());
}

async fn tenants_never_see_each_other(backend: Backend) {
    let (store, _guard) = &open(backend).await;
    let (a, b) = (tenant("tenant-a"), tenant("tenant-b"));
    let shared = email("same@example.com");
    let (pa, _) = store.resolve(&a, &shared, true).await.unwrap().unwrap();
    assert!(matches!(store.get(&b, pa.id).await, Err(ProfileError::NotFound(_))));
    assert!(store.resolve(&b, &shared, false).await.unwrap().is_none());
    assert!(store.list(&b, None, 10).await.unwrap().0.is_empty());
    // The same identity may exist once per tenant.
    let (pb, created) = store.resolve(&b, &shared, true).await.unwrap().unwrap();
    assert!(created);
    assert_ne!(pa.id, pb.id);
}

async fn concurrent_resolves_create_exactly_one_profile(backend: Backend) {
    let (store, _guard) = &open(backend).await;
    let t = tenant("acme");
    let racer = email("racer@example.com");
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (store, t, racer) = (store.clone(), t.clone(), racer.clone());
        tasks.push(tokio::spawn(async move { store.resolve(&t, &racer, true).await.unwrap().unwrap() }));
    }
    let mut ids = std::collections::HashSet::new();
    let mut created = 0;
    for task in tasks {
        let (profile, was_created) = task.await.unwrap();
        ids.insert(profile.id);
        created += usize::from(was_created);
    }
    assert_eq!((ids.len(), created), (1, 1));
    assert_eq!(store.list(&t, None, 100).await.unwrap().0.len(), 1, "no orphan profile was left behind");
}

async fn activity_accumulates_per_day_and_batches_apply_once(backend: Backend) {
    let (store, _guard) = &open(backend).await;
    use cx_profile::domain::intensity::{Category, IntensityModel};
    use cx_profile::domain::lifecycle::Lifecycle;
    use cx_profile::store::activity::Activity;

    let t = tenant("acme");
    let (p, _) = store.resolve(&t, &email("act@example.com"), true).await.unwrap().unwrap();
    let yesterday = Utc::now() - Duration::days(1);
    let web = |n: i64| Activity {
        customer: p.id,
        at: yesterday,
        channel: "web".into(),
        digital: true,
        initiator: "pull",
        kind: "informative",
        touchpoints: n,
        purchases: 0,
        currency: String::new(),
        amount_micros: 0,
        device: Some("d1".into()),
    };
    let store_purchase = Activity {
        channel: "store".into(),
        digital: false,
        kind: "transactional",
        touchpoints: 2,
        purchases: 1,
        currency: "EUR".into(),
        amount_micros: 12_500_000,
        device: None,
        ..web(0)
    };
    let model = IntensityModel::default();
    assert!(store.record_activity(&t, "b1", vec![web(3)]).await.unwrap().is_some());
    assert!(store.record_activity(&t, "b1", vec![web(3)]).await.unwrap().is_none(), "a replay is a duplicate");
    assert!(store.record_activity(&t, "b2", vec![web(2), store_purchase]).await.unwrap().is_some());

    // Same day, channel and initiator add up: 7 touchpoints, 5 digital and
    // pull, 1 digital channel, 1 device:
    // 0.50·(5/7) + 0.20·(1/8) + 0.15·(1/4) + 0.15·1 = 0.35714 + 0.025 + 0.0375 + 0.15 = 0.56964 → 57.
    let profile = store.get(&t, p.id).await.unwrap();
    let dii = profile.intensity(&model).unwrap();
    assert_eq!((dii.index, dii.category), (57, Category::Connected));
    assert_eq!(profile.lifecycle, Lifecycle::Active);
    assert_eq!(profile.last_touch_at, Some(cx_runtime::store::stored_instant(yesterday)));
    let derived = store.derived_as_of(&t, p.id, Utc::now().date_naive()).await.unwrap();
    assert_eq!((derived.lifecycle, derived.intensity.map(|c| model.index(&c))), (Lifecycle::Active, Some(57)));
}

async fn the_sweep_moves_customers_as_days_pass(backend: Backend) {
    let (store, _guard) = &open(backend).await;
    use chrono::Days;
    use cx_profile::domain::intensity::{Category, IntensityModel};
    use cx_profile::domain::lifecycle::Lifecycle;
    use cx_profile::store::activity::Activity;

    let t = tenant("acme");
    let model = IntensityModel::default();
    let (buyer, _) = store.resolve(&t, &email("buyer@example.com"), true).await.unwrap().unwrap();
    let (browser, _) = store.resolve(&t, &email("browser@example.com"), true).await.unwrap().unwrap();
    store.resolve(&t, &email("silent@example.com"), true).await.unwrap();
    let visit = |customer, days_ago: i64, channel: &str, kind: &'static str, purchases: i64| Activity {
        customer,
        at: Utc::now() - Duration::days(days_ago),
        channel: channel.into(),
        digital: channel == "web",
        initiator: "pull",
        kind,
        touchpoints: if purchases > 0 { 1 } else { 4 },
        purchases,
        currency: "EUR".into(),
        amount_micros: 10_000_000 * purchases,
        device: None,
    };
    // The buyer bought in a store 80 days ago; the browser visited the web
    // site 4 times 170 days ago.
    let batch = [visit(buyer.id, 80, "store", "transactional", 1), visit(browser.id, 170, "web", "informative", 0)];
    store.record_activity(&t, "b1", batch.to_vec()).await.unwrap();
    let browser_dii = store.get(&t, browser.id).await.unwrap().intensity(&model).unwrap();
    // 4 touchpoints, all digital and pull, 1 channel, no device:
    // 0.50·1 + 0.20·(1/8) + 0 + 0.15·1 = 0.675 → 67.5 → 68.
    assert_eq!((browser_dii.index, browser_dii.category), (68, Category::Connected));

    let today = Utc::now().date_naive();
    let in_days = |n: u64| today.checked_add_days(Days::new(n)).unwrap();
    assert!(store.sweep(in_days(9)).await.unwrap().is_empty(), "nothing changes before day 10");

    // Day 10: the purchase is 90 days old (at risk), the visit 180 days old
    // (out of the window: no index any more).
    let swept = store.sweep(in_days(10)).await.unwrap();
    assert_eq!(swept.len(), 1);
    let mut changed = swept[0].1.clone();
    changed.sort();
    let mut expected = vec![buyer.id, browser.id];
    expected.sort();
    assert_eq!(changed, expected);
    assert_eq!(store.get(&t, buyer.id).await.unwrap().lifecycle, Lifecycle::AtRisk);
    assert_eq!(store.get(&t, browser.id).await.unwrap().intensity_components, None);
    assert!(store.sweep(in_days(10)).await.unwrap().is_empty(), "a second sweep finds nothing to do");

    let (into_risk, _) = store.transitions(&t, Some(Lifecycle::AtRisk), None, None, None, 10).await.unwrap();
    assert_eq!(into_risk.len(), 1);
    assert_eq!((into_risk[0].customer, into_risk[0].from), (buyer.id, Lifecycle::Active));
    let (all, _) = store.transitions(&t, None, None, None, None, 10).await.unwrap();
    let steps: Vec<_> = all.iter().map(|tr| (tr.from, tr.to)).collect();
    assert_eq!(steps, [(Lifecycle::Active, Lifecycle::AtRisk), (Lifecycle::Prospect, Lifecycle::Active)]);

    // The buyer's store visit stays in the window (DII 0, traditional); the
    // two others have no index.
    let distribution = store.intensity_distribution(&t).await.unwrap();
    let summary: Vec<_> = distribution.iter().map(|c| (c.category, c.profiles, c.mean_index)).collect();
    assert_eq!(summary, [(None, 2, None), (Some(Category::Traditional), 1, Some(0.0))]);

    // Day 300: the purchase is 380 days old, the buyer is lost.
    store.sweep(in_days(300)).await.unwrap();
    assert_eq!(store.get(&t, buyer.id).await.unwrap().lifecycle, Lifecycle::Lost);
}

async fn a_changed_intensity_model_applies_at_once_without_rewriting(backend: Backend) {
    let (store, _guard) = &open(backend).await;
    use cx_profile::domain::intensity::{Category, IntensityModel};
    use cx_profile::store::ListFilter;
    use cx_profile::store::activity::Activity;

    let t = tenant("acme");
    let (p, _) = store.resolve(&t, &email("m@example.com"), true).await.unwrap().unwrap();
    let web = Activity {
        customer: p.id,
        at: Utc::now() - Duration::days(2),
        channel: "web".into(),
        digital: true,
        initiator: "push",
        kind: "informative",
        touchpoints: 2,
        purchases: 0,
        currency: String::new(),
        amount_micros: 0,
        device: None,
    };
    let model = store.intensity_model(&t).await.unwrap();
    assert_eq!(model, IntensityModel::default());
    store.record_activity(&t, "b", vec![web]).await.unwrap();
    // All digital, push only, 1 channel, no device: 0.50·1 + 0.20·(1/8) = 0.525 → 53, connected.
    let before = store.get(&t, p.id).await.unwrap();
    assert_eq!(before.intensity(&model).map(|i| (i.index, i.category)), Some((53, Category::Connected)));
    let connected = ListFilter { category: Some(Category::Connected), ..Default::default() };
    assert_eq!(store.list_filtered(&t, None, 10, &connected).await.unwrap().0.len(), 1);

    // Only the digital share counts now: 1.0 → 100, digital_native.
    let share_only = IntensityModel::default().with_weights([1.0, 0.0, 0.0, 0.0]);
    // Another replica has read the old model: it sees the new one once its copy expires.
    let replica = ProfileStore::new(store.db().clone());
    assert_eq!(replica.intensity_model(&t).await.unwrap(), model);
    store.set_intensity_model(&t, &share_only).await.unwrap();
    assert_eq!(store.intensity_model(&t).await.unwrap(), share_only);
    assert_eq!(ProfileStore::new(store.db().clone()).intensity_model(&t).await.unwrap(), share_only);
    // No customer was rewritten, and the new model applies at once.
    let after = store.get(&t, p.id).await.unwrap();
    assert_eq!(after.version, before.version);
    assert_eq!(after.intensity(&share_only).map(|i| (i.index, i.category)), Some((100, Category::DigitalNative)));
    assert!(store.list_filtered(&t, None, 10, &connected).await.unwrap().0.is_empty());
    let native = ListFilter { category: Some(Category::DigitalNative), ..Default::default() };
    assert_eq!(store.list_filtered(&t, None, 10, &native).await.unwrap().0.len(), 1);
    let distribution = store.intensity_distribution(&t).await.unwrap();
    let summary: Vec<_> = distribution.iter().map(|c| (c.category, c.profiles, c.mean_index)).collect();
    assert_eq!(summary, [(Some(Category::DigitalNative), 1, Some(100.0))]);
    // Nothing is owed to the sweep.
    assert_eq!(store.sweep(Utc::now().date_naive()).await.unwrap(), vec![]);
}

/// The database's index (filters, distribution) and Rust's (a profile) are
/// the same number for every mix and model, exact halves included.
async fn the_database_and_rust_agree_on_every_index(backend: Backend) {
    let (store, _guard) = &open(backend).await;
    use cx_profile::domain::intensity::{Category, ChannelMix, Components, IntensityModel};
    use cx_profile::store::ListFilter;
    use cx_profile::store::entity::customer;
    use cx_runtime::store::scoped_update;
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, QueryFilter};
    use std::collections::BTreeMap;

    let t = tenant("acme");
    // 492 mixes: up to 8 touchpoints, every digital and pull count, 0–2
    // devices. In exact arithmetic 90 of them score a half (k + ½) under the
    // default model and 58 under the uneven one, e.g. 4 touchpoints, 1
    // digital and pull, 2 channels, no device: 0.5·¼ + 0.2·²⁄₈ + 0.15·1 =
    // 0.325 → 32.5, which doubles compute as 32.49999999999999 (worked out
    // with fractions): the nudge makes it 33 on both sides.
    let mut mixes = Vec::new();
    for touchpoints in 1..=8u64 {
        for digital in 0..=touchpoints {
            for digital_pull in 0..=digital {
                let channels = if digital == 0 { 0 } else { 1 + (digital as u32 % 3) };
                for devices in 0..=2 {
                    mixes.push(ChannelMix {
                        touchpoints,
                        digital,
                        digital_pull,
                        distinct_digital_channels: channels,
                        devices,
                    });
                }
            }
        }
    }
    let mut components = Vec::new();
    for (i, mix) in mixes.iter().enumerate() {
        let (p, _) = store.resolve(&t, &email(&format!("c{i}@example.com")), true).await.unwrap().unwrap();
        let c = Components::of(mix).unwrap();
        scoped_update::<customer::Entity>(&t)
            .filter(customer::Column::Id.eq(p.id))
            .col_expr(customer::Column::DiiDigitalShare, Expr::value(c.digital_share))
            .col_expr(customer::Column::DiiDigitalBreadth, Expr::value(c.digital_breadth))
            .col_expr(customer::Column::DiiDeviceFactor, Expr::value(c.device_factor))
            .col_expr(customer::Column::DiiSelfServiceShare, Expr::value(c.self_service_share))
            .exec(store.db())
            .await
            .unwrap();
        components.push((p.id, c));
    }
    let uneven =
        IntensityModel { cuts: [10, 33, 90], ..IntensityModel::default().with_weights([0.35, 0.3, 0.1, 0.25]) };
    for model in [IntensityModel::default(), uneven] {
        store.set_intensity_model(&t, &model).await.unwrap();
        let mut expected: BTreeMap<Category, Vec<uuid::Uuid>> = BTreeMap::new();
        let mut sums: BTreeMap<Category, (i64, i64)> = BTreeMap::new();
        for (id, c) in &components {
            let i = model.intensity(c);
            expected.entry(i.category).or_default().push(*id);
            let sum = sums.entry(i.category).or_default();
            *sum = (sum.0 + 1, sum.1 + i64::from(i.index));
        }
        let distribution = store.intensity_distribution(&t).await.unwrap();
        let got: Vec<_> =
            distribution.iter().map(|c| (c.category.unwrap(), c.profiles, c.mean_index.unwrap())).collect();
        let want: Vec<_> = sums.iter().map(|(cat, (n, sum))| (*cat, *n, *sum as f64 / *n as f64)).collect();
        assert_eq!(got, want, "{model:?}");
        for category in Category::ALL {
            let filter = ListFilter { category: Some(category), ..Default::default() };
            let (page, _) = store.list_filtered(&t, None, 1000, &filter).await.unwrap();
            let mut listed: Vec<_> = page.iter().map(|r| r.id).collect();
            let mut want = expected.get(&category).cloned().unwrap_or_default();
            listed.sort();
            want.sort();
            assert_eq!(listed, want, "{category:?} under {model:?}");
        }
    }
}

async fn a_merge_unites_identities_consents_activity_and_keeps_resolving(backend: Backend) {
    let (store, _guard) = &open(backend).await;
    use cx_profile::domain::intensity::IntensityModel;
    use cx_profile::domain::merge::Prefer;
    use cx_profile::store::activity::Activity;

    let t = tenant("acme");
    let (kept, _) = store.resolve(&t, &email("kept@example.com"), true).await.unwrap().unwrap();
    let phone = Identity::normalize(IdentityKind::Phone, "+33612345678").unwrap();
    let (gone, _) = store.resolve(&t, &phone, true).await.unwrap().unwrap();
    let set = |paths: Vec<MaskPath>, persona: &str, attributes: Attributes| ProfileUpdate {
        paths,
        persona: persona.into(),
        attributes,
    };
    store
        .update(
            &t,
            kept.id,
            &set(
                vec![MaskPath::Attributes],
                "",
                Attributes::from([("tier".to_owned(), AttributeValue::String("gold".into()))]),
            ),
            100,
        )
        .await
        .unwrap();
    let theirs = Attributes::from([
        ("tier".to_owned(), AttributeValue::String("silver".into())),
        ("city".to_owned(), AttributeValue::String("Lyon".into())),
    ]);
    store
        .update(&t, gone.id, &set(vec![MaskPath::Persona, MaskPath::Attributes], "bargain hunter", theirs), 100)
        .await
        .unwrap();
    // Consent: granted on the kept profile 20 minutes ago, withdrawn on the other 10 minutes ago.
    let decision = |granted: bool, minutes: i64| NewConsent {
        purpose: Purpose::Standard(StandardPurpose::Email),
        granted,
        source_channel: String::new(),
        actor: "customer".into(),
        occurred_at: Utc::now() - Duration::minutes(minutes),
        request_id: None,
    };
    store.set_consent(&t, kept.id, decision(true, 20)).await.unwrap();
    store.set_consent(&t, gone.id, decision(false, 10)).await.unwrap();
    // Activity: 3 web touchpoints each, same day, channel and initiator, one shared device.
    let web = |customer| Activity {
        customer,
        at: Utc::now() - Duration::days(1),
        channel: "web".into(),
        digital: true,
        initiator: "pull",
        kind: "informative",
        touchpoints: 3,
        purchases: 0,
        currency: String::new(),
        amount_micros: 0,
        device: Some("d1".into()),
    };
    let model = IntensityModel::default();
    store.record_activity(&t, "k", vec![web(kept.id)]).await.unwrap();
    store.record_activity(&t, "g", vec![web(gone.id)]).await.unwrap();

    let outcome = store.merge(&t, kept.id, gone.id, Prefer::Survivor).await.unwrap();
    let merged = outcome.profile;
    assert_eq!(merged.identities, vec![email("kept@example.com"), phone.clone()]);
    assert_eq!(merged.attributes.get("tier"), Some(&AttributeValue::String("gold".into())));
    assert_eq!(merged.attributes.get("city"), Some(&AttributeValue::String("Lyon".into())));
    assert_eq!(merged.persona, "bargain hunter", "the survivor had none");
    assert_eq!(outcome.conflicts.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(), ["tier"]);
    // The most recent decision across both wins; both decisions are kept.
    let email_purpose = Purpose::Standard(StandardPurpose::Email);
    assert!(!store.consent(&t, kept.id, &email_purpose).await.unwrap().unwrap().granted);
    assert_eq!(store.consent_history(&t, kept.id, None, 10).await.unwrap().0.len(), 2);
    // 6 web touchpoints now, one device: 0.50 + 0.20·(1/8) + 0.15·(1/4) + 0.15 = 0.7125 → 71.
    assert_eq!(merged.intensity(&model).map(|i| i.index), Some(71));
    // The merged id is gone but resolves; its phone resolves to the survivor.
    assert!(matches!(store.get(&t, gone.id).await, Err(ProfileError::NotFound(_))));
    assert_eq!(store.survivor_of(&t, gone.id).await.unwrap(), Some(kept.id));
    assert_eq!(store.resolve(&t, &phone, false).await.unwrap().unwrap().0.id, kept.id);
    assert!(matches!(store.merge(&t, kept.id, kept.id, Prefer::Survivor).await, Err(ProfileError::InvalidArgument(_))));
    assert!(matches!(store.merge(&t, kept.id, gone.id, Prefer::Survivor).await, Err(ProfileError::NotFound(_))));
}

/// Replicas starting together on a fresh database (init containers of a
/// scaled Deployment) migrate in turn: all succeed and the schema is whole.
/// Seeded purchase histories with gaps around every boundary of §4.3 (89/90
/// and 364/365/366 days), recorded out of order in several batches, then
/// merges and an erasure: the stages as of many days must equal the rules
/// applied to each customer's days, and the roll-up's lifecycle counts the
/// counts grouped from the purchase days (asked for a population of every
/// customer, which takes that path).
async fn the_lifecycle_roll_up_counts_as_the_purchase_days_do(backend: Backend) {
    use std::collections::BTreeMap;

    use chrono::{Days, NaiveDate};
    use cx_profile::domain::lifecycle::{Lifecycle, lifecycle_as_of};
    use cx_profile::domain::merge::Prefer;
    use cx_profile::store::activity::Activity;

    let (store, db) = &open(backend).await;
    let t = tenant("acme");
    let start = NaiveDate::from_ymd_opt(2022, 1, 3).unwrap();
    let gaps = [1_u64, 30, 89, 90, 91, 200, 364, 365, 366, 500];
    let mut seed = 11_u64;
    let mut next = |n: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let mut days: BTreeMap<uuid::Uuid, Vec<NaiveDate>> = BTreeMap::new();
    let mut late = Vec::new();
    let mut currencies: BTreeMap<uuid::Uuid, &str> = BTreeMap::new();
    let purchase = |customer, day: NaiveDate, currency: &str| Activity {
        customer,
        at: day.and_hms_opt(12, 0, 0).unwrap().and_utc(),
        channel: "store".into(),
        digital: false,
        initiator: "push",
        kind: "transactional",
        touchpoints: 1,
        purchases: 1,
        currency: currency.into(),
        // 10 EUR or 20 USD: squared amounts 100 or 400, exact in doubles
        // whatever the order they are added in.
        amount_micros: if currency == "EUR" { 10_000_000 } else { 20_000_000 },
        device: None,
    };
    for i in 0..36 {
        let (p, _) = store.resolve(&t, &email(&format!("c{i}@example.com")), true).await.unwrap().unwrap();
        let currency = if i % 3 == 0 { "USD" } else { "EUR" };
        currencies.insert(p.id, currency);
        // Every fourth customer never buys: a prospect.
        let mut bought = Vec::new();
        if i % 4 != 0 {
            bought.push(start + Days::new(next(400)));
            for _ in 0..next(5) {
                bought.push(*bought.last().unwrap() + Days::new(gaps[usize::try_from(next(10)).unwrap()]));
            }
        }
        // The odd days first, the even ones in a later batch: days land
        // before, between and after those already stored.
        let (early, later): (Vec<_>, Vec<_>) = bought.iter().enumerate().partition(|(k, _)| k % 2 == 1);
        let early: Vec<_> = early.into_iter().map(|(_, d)| purchase(p.id, *d, currency)).collect();
        if !early.is_empty() {
            store.record_activity(&t, &format!("early-{i}"), early).await.unwrap();
        }
        late.extend(later.into_iter().map(|(_, d)| purchase(p.id, *d, currency)));
        days.insert(p.id, bought);
    }
    for (n, batch) in late.chunks(7).enumerate() {
        store.record_activity(&t, &format!("late-{n}"), batch.to_vec()).await.unwrap();
    }
    // Two merges and an erasure.
    let ids: Vec<_> = days.keys().copied().collect();
    for (survivor, merged) in [(ids[1], ids[2]), (ids[4], ids[5])] {
        store.merge(&t, survivor, merged, Prefer::Survivor).await.unwrap();
        let mut united = days.remove(&merged).unwrap();
        united.extend(days[&survivor].iter().copied());
        united.sort_unstable();
        united.dedup();
        days.insert(survivor, united);
    }
    store.erase(&t, ids[7]).await.unwrap();
    days.remove(&ids[7]);

    // Stages as of a day every 9 days over five years. Every customer was
    // created today, so none is a prospect before today.
    let today = Utc::now().date_naive();
    for n in (0..1830).step_by(9).chain([(today - start).num_days()]) {
        let d = start + Days::new(u64::try_from(n).unwrap());
        let got = store.distributions(&t, d).await.unwrap();
        let mut want: BTreeMap<Lifecycle, i64> = BTreeMap::new();
        for bought in days.values() {
            let stage = lifecycle_as_of(bought, d);
            if stage != Lifecycle::Prospect || d >= today {
                *want.entry(stage).or_default() += 1;
            }
        }
        let stage = |l| want.get(&l).copied().unwrap_or(0);
        assert_eq!(
            [got.prospect, got.active, got.at_risk, got.lost, got.reactivated],
            [
                stage(Lifecycle::Prospect),
                stage(Lifecycle::Active),
                stage(Lifecycle::AtRisk),
                stage(Lifecycle::Lost),
                stage(Lifecycle::Reactivated)
            ],
            "stages as of {d}"
        );
    }
    // Periods of 30 days, 365 and a leap year's 366 every 23 days, and one
    // of 400 days (grouped either way).
    let everyone: Vec<_> = days.keys().copied().collect();
    let mut periods = Vec::new();
    for n in (0..1500).step_by(23) {
        let first = start + Days::new(n);
        for length in [30, 365, 366, 400] {
            periods.push((first, first + Days::new(length - 1)));
        }
    }
    let leap = (NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(), NaiveDate::from_ymd_opt(2024, 12, 31).unwrap());
    periods.push(leap);
    let from_spans = store.lifecycle_counts(&t, &periods, &[]).await.unwrap();
    let grouped = store.lifecycle_counts(&t, &periods, &everyone).await.unwrap();
    for ((period, spans), grouped) in periods.iter().zip(&from_spans).zip(&grouped) {
        assert_eq!(spans, grouped, "period {period:?}");
    }
    // The counts are not all zero: the histories cross every boundary.
    assert!(from_spans.iter().map(|c| c.reactivated).sum::<i64>() > 0);
    assert!(from_spans.iter().map(|c| c.lost_by_end).sum::<i64>() > 0);
    // Filled anew from the purchase days (the migration run again), the
    // roll-up counts the same.
    let stages = store.distributions(&t, today).await.unwrap();
    let txn = sea_orm::TransactionTrait::begin(&db.conn).await.unwrap();
    cx_profile::store::spans::rebuild(&txn).await.unwrap();
    txn.commit().await.unwrap();
    assert_eq!(store.lifecycle_counts(&t, &periods, &[]).await.unwrap(), from_spans);
    assert_eq!(store.distributions(&t, today).await.unwrap(), stages);

    // The purchase totals sum as the purchase days do, merges and the
    // erasure included, and before and after they are filled anew; the
    // busiest currency is the one with the most purchases of the days.
    let sums = || async {
        let mut out = Vec::new();
        for &(first, last) in periods.iter().step_by(4) {
            for currency in ["EUR", "USD"] {
                let totals = store.purchase_sums(&t, currency, (first, last), &[]).await.unwrap();
                let days = store.purchase_sums(&t, currency, (first, last), &everyone).await.unwrap();
                assert_eq!(totals, days, "{currency} purchases of {first} to {last}");
                out.push(totals);
            }
            // EUR before USD: a tie goes to the alphabetically first.
            let (eur, usd) = (out[out.len() - 2].purchases, out[out.len() - 1].purchases);
            let busiest = match (eur, usd) {
                (0, 0) => None,
                (eur, usd) if eur >= usd => Some("EUR".to_owned()),
                _ => Some("USD".to_owned()),
            };
            assert_eq!(store.busiest_currency(&t, first, last).await.unwrap(), busiest, "{first} to {last}");
        }
        out
    };
    let before = sums().await;
    assert!(before.iter().map(|s| s.purchases).sum::<i64>() > 0);
    let txn = sea_orm::TransactionTrait::begin(&db.conn).await.unwrap();
    cx_profile::store::purchase_totals::refill(&txn).await.unwrap();
    txn.commit().await.unwrap();
    assert_eq!(sums().await, before);
}

#[tokio::test]
async fn replicas_migrating_together_all_succeed() {
    let db = TestDb::create().await.unwrap();
    let args = cx_testkit::store_args(Some(db.url.clone()), cx_testkit::temp_dir());
    let mut replicas = Vec::new();
    for _ in 0..4 {
        replicas.push(cx_runtime::store::open(&args, "profile").await.unwrap());
    }
    let runs = replicas.iter().map(|conn| cx_runtime::store::migrate::<Migrator>(conn, "profile"));
    for outcome in futures::future::join_all(runs).await {
        outcome.unwrap();
    }
    let store = ProfileStore::new(replicas.swap_remove(0));
    let (p, created) = store.resolve(&tenant("acme"), &email("jane@example.com"), true).await.unwrap().unwrap();
    assert!(created);
    assert_eq!(p.version, 1);
}
