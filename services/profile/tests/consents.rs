//! Other services' consent checks (`ProfileInternalService.CheckConsents`)
//! and what profile tells them of consent decisions (`ConsentChanged`), on
//! both backends: answers come from each profile's cached standing, which a
//! consent decision drops before it is acknowledged, and which a read that
//! raced the decision never puts back stale.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, Utc};
use cx_proto::common::v1::{Channel, Initiator, InteractionKind, Money};
use cx_proto::profile::v1::profile_internal_service_client::ProfileInternalServiceClient;
use cx_proto::profile::v1::{self as pb, profile_service_client::ProfileServiceClient};
use cx_runtime::TenantId;
use cx_runtime::auth::Role;
use cx_runtime::outbox::entity::message;
use cx_runtime::registry::{Feed, Registry, ServiceDef};
use cx_runtime::store::{Db, scoped};
use cx_testkit::{Backend, Cluster, RunningServer, ServiceDb, authed, token, unique_tenant};
use prost::{Message, Name};
use sea_orm::{ActiveValue::Set, EntityTrait};
use tonic::Code;
use tonic::transport::Channel as GrpcChannel;
use uuid::Uuid;

const PROFILE_ONLY: Registry = Registry::new(&[cx_profile::SERVICE]);

fn email(value: &str) -> Option<pb::Identity> {
    Some(pb::Identity { kind: pb::IdentityKind::Email as i32, value: value.into() })
}

fn survey_purpose() -> Option<pb::Purpose> {
    Some(pb::Purpose { kind: Some(pb::purpose::Kind::Standard(pb::ConsentPurpose::Survey as i32)) })
}

#[derive(Clone)]
struct Tenant {
    name: String,
    writer: String,
    admin: String,
    profiles: ProfileServiceClient<GrpcChannel>,
    internal: ProfileInternalServiceClient<GrpcChannel>,
}

impl Tenant {
    async fn on(server: &RunningServer) -> Self {
        let name = unique_tenant("consents");
        Self {
            writer: token(&name, Role::Writer),
            admin: token(&name, Role::Admin),
            profiles: ProfileServiceClient::new(server.channel().await),
            internal: ProfileInternalServiceClient::new(server.channel().await),
            name,
        }
    }

    async fn profile(&mut self, address: &str) -> String {
        let request = pb::ResolveProfileRequest { identity: email(address), create_if_missing: true };
        self.profiles.resolve_profile(authed(request, &self.writer)).await.unwrap().into_inner().profile.unwrap().id
    }

    async fn set_survey_consent(&mut self, id: &str, granted: bool) {
        self.set_consent(id, survey_purpose(), granted).await;
    }

    async fn set_consent(&mut self, id: &str, purpose: Option<pb::Purpose>, granted: bool) {
        let request = pb::SetConsentRequest {
            profile_id: id.into(),
            purpose,
            granted,
            source_channel: Channel::Web as i32,
            actor: "customer".into(),
            ..Default::default()
        };
        self.profiles.set_consent(authed(request, &self.writer)).await.unwrap();
    }

    /// The survey consent in force, read from the database by the public RPC.
    async fn survey_consent(&mut self, id: &str) -> bool {
        let request = pb::CheckConsentRequest { profile_id: id.into(), purpose: survey_purpose() };
        self.profiles.check_consent(authed(request, &self.writer)).await.unwrap().into_inner().state.unwrap().granted
    }

    /// CheckConsents for the survey purpose, as the survey service calls it.
    async fn check(&mut self, ids: &[&str]) -> Result<Vec<pb::CustomerConsent>, tonic::Status> {
        let request = pb::CheckConsentsRequest {
            purpose: survey_purpose(),
            profile_ids: ids.iter().map(|id| (*id).to_owned()).collect(),
        };
        let call = authed(request, &cx_testkit::service_token("survey", &self.name));
        Ok(self.internal.check_consents(call).await?.into_inner().consents)
    }

    async fn granted(&mut self, ids: &[&str]) -> Vec<(String, bool)> {
        self.check(ids).await.unwrap().into_iter().map(|c| (c.profile_id, c.granted)).collect()
    }
}

/// A decision written straight into the database, behind the service's
/// back: no cache entry is dropped for it.
async fn withdraw_behind_the_back(db: &Db, tenant: &str, id: &str) {
    use cx_profile::store::entity::consent_event;
    let now = cx_runtime::store::now();
    let row = consent_event::ActiveModel {
        tenant_id: Set(tenant.into()),
        id: Set(Uuid::now_v7()),
        customer_id: Set(id.parse().unwrap()),
        purpose: Set("survey".into()),
        granted: Set(false),
        source_channel: Set(String::new()),
        actor: Set("test".into()),
        occurred_at: Set(now),
        recorded_at: Set(now),
        request_id: Set(None),
    };
    consent_event::Entity::insert(row).exec_without_returning(db).await.unwrap();
}

async fn answers_come_from_the_cache_and_a_consent_change_drops_them_first(backend: Backend) {
    let cluster = Cluster::start(PROFILE_ONLY, backend).await;
    let server = cluster.server("profile");
    let mut t = Tenant::on(server).await;
    let ana = t.profile("ana@example.com").await;
    let bea = t.profile("bea@example.com").await;
    let dan = t.profile("dan@example.com").await;
    let eve = t.profile("eve@example.com").await;
    t.set_survey_consent(&ana, true).await;
    // Bea bought online three days ago: active (idle 3 < 90 days, DOMAIN
    // §4.3), with an intensity and so a category.
    let visit = pb::ActivityRecord {
        profile_id: bea.clone(),
        occur_time: Some(cx_proto::timestamp(Utc::now() - Duration::days(3))),
        channel: Channel::Web as i32,
        initiator: Initiator::Pull as i32,
        kind: InteractionKind::Transactional as i32,
        touchpoints: 1,
        purchases: 1,
        purchase_amount: Some(Money { currency_code: "EUR".into(), units: 42, nanos: 0 }),
        ..Default::default()
    };
    let batch = pb::RecordActivityRequest { batch_id: "bea-visit".into(), records: vec![visit] };
    t.profiles.record_activity(authed(batch, &t.writer)).await.unwrap();
    // Dan is merged into Ana; Eve is erased.
    let merge = pb::MergeProfilesRequest { survivor_id: ana.clone(), merged_id: dan.clone(), ..Default::default() };
    t.profiles.merge_profiles(authed(merge, &t.writer)).await.unwrap();
    t.profiles.erase_customer(authed(pb::EraseCustomerRequest { profile_id: eve.clone() }, &t.admin)).await.unwrap();

    // Known ids once each, in the order asked; Dan under his own id with
    // Ana's consent; Eve and an id never seen left out.
    let unknown = Uuid::now_v7().to_string();
    let answer = t.check(&[&ana, &bea, &dan, &eve, &unknown, &ana]).await.unwrap();
    let ids: Vec<(&str, bool)> = answer.iter().map(|c| (c.profile_id.as_str(), c.granted)).collect();
    assert_eq!(ids, [(ana.as_str(), true), (bea.as_str(), false), (dan.as_str(), true)]);
    // Lifecycle and category are the profile's own, as GetProfile shows them.
    let get = pb::GetProfileRequest { id: bea.clone(), as_of: None };
    let shown = t.profiles.get_profile(authed(get, &t.writer)).await.unwrap().into_inner().profile.unwrap();
    let category = shown.digital_intensity.as_ref().map(|i| i.category).unwrap();
    assert_eq!((answer[1].lifecycle, answer[1].digital_category), (shown.lifecycle, category));
    assert_eq!(answer[1].lifecycle, pb::Lifecycle::Active as i32, "bought three days ago");
    assert_ne!(category, pb::DigitalCategory::Unspecified as i32);
    assert_eq!(
        (answer[0].lifecycle, answer[0].digital_category),
        (pb::Lifecycle::Prospect as i32, pb::DigitalCategory::Unspecified as i32),
        "no activity: a prospect without intensity"
    );

    // Answered from the cache: a withdrawal written behind the service's
    // back is not seen (the database says otherwise).
    let db = cx_runtime::store::open(&cluster.store, "profile").await.unwrap();
    withdraw_behind_the_back(&db, &t.name, &ana).await;
    assert!(!t.survey_consent(&ana).await, "the database holds the withdrawal");
    assert_eq!(t.granted(&[&ana]).await, [(ana.clone(), true)], "cached");
    // A decision through the service drops the entry before it answers.
    t.set_survey_consent(&ana, false).await;
    assert_eq!(t.granted(&[&ana, &dan]).await, [(ana.clone(), false), (dan.clone(), false)]);
    t.set_survey_consent(&ana, true).await;
    assert_eq!(t.granted(&[&dan, &ana]).await, [(dan.clone(), true), (ana.clone(), true)]);

    // Only services ask; the asks are checked.
    let user = authed(pb::CheckConsentsRequest { purpose: survey_purpose(), profile_ids: vec![ana.clone()] }, &t.admin);
    assert_eq!(t.internal.check_consents(user).await.unwrap_err().code(), Code::Unauthenticated);
    let bad = t.check(&[&ana, "not-an-id"]).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("profile_ids[1]"), "{}", bad.message());
    let many: Vec<String> = (0..10_001).map(|_| Uuid::now_v7().to_string()).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let too_many = t.check(&many).await.unwrap_err();
    assert_eq!(
        (too_many.code(), too_many.message()),
        (Code::InvalidArgument, "invalid profile_ids: has 10001 items; at most 10000 per call")
    );
    assert_eq!(t.check(&many[..10_000]).await.unwrap(), [], "10,000 unknown ids: none known");
}

async fn a_check_racing_consent_changes_never_leaves_the_cache_behind(backend: Backend) {
    let cluster = Cluster::start(PROFILE_ONLY, backend).await;
    let mut t = Tenant::on(cluster.server("profile")).await;
    let ana = t.profile("ana@example.com").await;
    for round in 0..40 {
        // Each round two decisions, and three checkers asking again and
        // again until both are answered. The first (another purpose) drops
        // the cached standing, so the checkers read the database while the
        // second commits: some read the old consent just before and try to
        // cache it just after.
        let decided = std::sync::atomic::AtomicBool::new(false);
        let mut writer = t.clone();
        let email = Some(pb::Purpose { kind: Some(pb::purpose::Kind::Standard(pb::ConsentPurpose::Email as i32)) });
        let decide = async {
            writer.set_consent(&ana, email, round % 3 == 0).await;
            writer.set_survey_consent(&ana, round % 2 == 0).await;
            decided.store(true, std::sync::atomic::Ordering::SeqCst);
        };
        let checker = |mut asking: Tenant| {
            let (ana, decided) = (&ana, &decided);
            async move {
                while !decided.load(std::sync::atomic::Ordering::SeqCst) {
                    assert_eq!(asking.check(&[ana.as_str()]).await.unwrap().len(), 1);
                }
            }
        };
        tokio::join!(decide, checker(t.clone()), checker(t.clone()), checker(t.clone()));
        // The cache agrees with the database once the decision is answered.
        let in_force = t.survey_consent(&ana).await;
        assert_eq!(in_force, round % 2 == 0);
        assert_eq!(t.granted(&[&ana]).await, [(ana.clone(), in_force)], "round {round}");
    }
}

/// The `ConsentChanged` rows of a tenant: (destination, message).
async fn consent_rows(db: &Db, tenant: &str) -> Vec<(String, pb::ConsentChanged)> {
    let rows = scoped::<message::Entity>(&TenantId::parse(tenant).unwrap()).all(db).await.unwrap();
    rows.into_iter()
        .filter(|r| r.kind == pb::ConsentChanged::full_name())
        .map(|r| (r.destination, pb::ConsentChanged::decode(r.payload.as_slice()).unwrap()))
        .collect()
}

async fn each_new_decision_is_owed_to_the_consent_feed_in_its_transaction(backend: Backend) {
    use cx_profile::domain::consent::{Purpose, StandardPurpose};
    use cx_profile::domain::identity::{Identity, IdentityKind};
    use cx_profile::store::{NewConsent, ProfileStore};
    let db = ServiceDb::open(backend, "profile").await;
    cx_runtime::store::migrate::<cx_profile::store::migration::Migrator>(&db.conn, "profile").await.unwrap();
    let store = ProfileStore::new(db.conn.clone()).with_consent_feed(vec!["survey"]);
    let t = TenantId::parse("feed").unwrap();
    let identity = Identity::normalize(IdentityKind::Email, "ana@example.com").unwrap();
    let (ana, _) = store.resolve(&t, &identity, true).await.unwrap().unwrap();
    let decision = |granted, request: &str| NewConsent {
        purpose: Purpose::Standard(StandardPurpose::Survey),
        granted,
        source_channel: "web".into(),
        actor: "customer".into(),
        occurred_at: "2026-11-20T10:00:00Z".parse().unwrap(),
        request_id: Some(request.to_owned()).filter(|r| !r.is_empty()),
    };
    let (granted, _) = store.set_consent(&t, ana.id, decision(true, "r1")).await.unwrap();
    // A retry of r1 owes nothing more; a withdrawal owes one more message.
    store.set_consent(&t, ana.id, decision(true, "r1")).await.unwrap();
    let (withdrawn, _) = store.set_consent(&t, ana.id, decision(false, "")).await.unwrap();
    let expected = |record: &cx_profile::store::ConsentRecord| pb::ConsentChanged {
        profile_id: ana.id.to_string(),
        purpose: survey_purpose(),
        granted: record.granted,
        occur_time: Some(cx_proto::timestamp("2026-11-20T10:00:00Z".parse().unwrap())),
        record_time: Some(cx_proto::timestamp(record.recorded_at)),
    };
    let mut rows = consent_rows(&db.conn, "feed").await;
    rows.sort_by_key(|(_, m)| m.granted);
    assert_eq!(rows, [("survey".to_owned(), expected(&withdrawn)), ("survey".to_owned(), expected(&granted))]);

    // Nobody enforcing consent is deployed: nothing is owed.
    let alone = ProfileStore::new(db.conn.clone());
    let t = TenantId::parse("no-feed").unwrap();
    let (bea, _) = alone.resolve(&t, &identity, true).await.unwrap().unwrap();
    alone.set_consent(&t, bea.id, decision(true, "r2")).await.unwrap();
    assert_eq!(consent_rows(&db.conn, "no-feed").await, []);
}

cx_testkit::on_both_backends!(
    answers_come_from_the_cache_and_a_consent_change_drops_them_first,
    a_check_racing_consent_changes_never_leaves_the_cache_behind,
    each_new_decision_is_owed_to_the_consent_feed_in_its_transaction,
);

/// What the profile service feeds survey, as `cx serve profile` wires it:
/// when survey is deployed (an endpoint), every decision is owed to it; when
/// the deployment says it does not run survey, nothing is.
#[tokio::test]
async fn the_feed_goes_to_survey_unless_the_deployment_does_not_run_it() {
    // Survey's registry line as far as profile reads it (the survey crate's
    // own line says the same: crates/cx/src/services.rs checks it).
    const SURVEY: ServiceDef = ServiceDef::elsewhere("survey", true, &[Feed::Consents]);
    const WITH_SURVEY: Registry = Registry::new(&[cx_profile::SERVICE, SURVEY]);
    for (deployed, expected) in [(true, vec!["survey".to_owned()]), (false, vec![])] {
        let store = cx_testkit::store_args(None, cx_testkit::temp_dir());
        // Survey holds customer data too: profile needs its endpoint, or to
        // be told it is not there.
        let ctx = cx_testkit::context_with_peer(&store, WITH_SURVEY, "survey", deployed);
        let server =
            RunningServer::start(vec![cx_profile::build(&ctx).await.unwrap()], cx_testkit::server_args()).await;
        server.wait_serving().await;
        let mut t = Tenant::on(&server).await;
        let ana = t.profile("ana@example.com").await;
        t.set_survey_consent(&ana, true).await;
        let db = cx_runtime::store::open(&store, "profile").await.unwrap();
        let sent: Vec<String> = consent_rows(&db, &t.name).await.into_iter().map(|(to, _)| to).collect();
        assert_eq!(sent, expected, "survey deployed: {deployed}");
        server.stop().await.unwrap();
        let _ = std::fs::remove_dir_all(&store.data_dir);
    }
}
