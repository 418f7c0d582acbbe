//! Segmentation's load of profile facts (`ProfileInternalService.
//! ExportProfileFacts`), on both backends: the live customers in id order a
//! page at a time, each with the facts the feed would send and the consent
//! decisions in force; a merged customer is her survivor's, an erased one
//! is gone; a cursor resumes exactly after itself; only segmentation asks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use cx_proto::common::v1::{AttributeValue, attribute_value};
use cx_proto::profile::v1::profile_internal_service_client::ProfileInternalServiceClient;
use cx_proto::profile::v1::{self as pb, profile_service_client::ProfileServiceClient};
use cx_runtime::auth::Role;
use cx_runtime::registry::Registry;
use cx_testkit::{Backend, Cluster, authed, service_token, token, unique_tenant};
use prost::Message;
use prost_types::FieldMask;
use tonic::transport::Channel as GrpcChannel;
use tonic::{Code, Status};

const PROFILE_ONLY: Registry = Registry::new(&[cx_profile::SERVICE]);

fn email(value: &str) -> Option<pb::Identity> {
    Some(pb::Identity { kind: pb::IdentityKind::Email as i32, value: value.into() })
}

fn standard(purpose: pb::ConsentPurpose) -> Option<pb::Purpose> {
    Some(pb::Purpose { kind: Some(pb::purpose::Kind::Standard(purpose as i32)) })
}

fn custom(name: &str) -> Option<pb::Purpose> {
    Some(pb::Purpose { kind: Some(pb::purpose::Kind::Custom(name.into())) })
}

struct Tenant {
    name: String,
    writer: String,
    admin: String,
    profiles: ProfileServiceClient<GrpcChannel>,
    internal: ProfileInternalServiceClient<GrpcChannel>,
}

impl Tenant {
    async fn profile(&mut self, address: &str) -> String {
        let request = pb::ResolveProfileRequest { identity: email(address), create_if_missing: true };
        self.profiles.resolve_profile(authed(request, &self.writer)).await.unwrap().into_inner().profile.unwrap().id
    }

    /// The decision recorded, as the consent feed sends it.
    async fn consent(&mut self, id: &str, purpose: Option<pb::Purpose>, granted: bool) -> pb::ConsentChanged {
        let request = pb::SetConsentRequest { profile_id: id.into(), purpose, granted, ..Default::default() };
        let event = self.profiles.set_consent(authed(request, &self.writer)).await.unwrap().into_inner().event.unwrap();
        pb::ConsentChanged {
            profile_id: id.into(),
            purpose: event.purpose,
            granted: event.granted,
            occur_time: event.occur_time,
            record_time: event.record_time,
        }
    }

    async fn get(&mut self, id: &str) -> pb::Profile {
        let request = pb::GetProfileRequest { id: id.into(), as_of: None };
        self.profiles.get_profile(authed(request, &self.writer)).await.unwrap().into_inner().profile.unwrap()
    }

    /// Every page of an export asked for as `caller`.
    async fn export_as(
        &mut self,
        caller: &str,
        after: &str,
        page_size: i32,
    ) -> Result<Vec<pb::ExportProfileFactsResponse>, Status> {
        let request = pb::ExportProfileFactsRequest { after_profile_id: after.into(), page_size };
        let mut stream = self.internal.export_profile_facts(authed(request, caller)).await?.into_inner();
        let mut pages = Vec::new();
        while let Some(page) = stream.message().await? {
            pages.push(page);
        }
        Ok(pages)
    }

    async fn export(&mut self, after: &str, page_size: i32) -> Vec<pb::ExportProfileFactsResponse> {
        let segmentation = service_token("segmentation", &self.name);
        self.export_as(&segmentation, after, page_size).await.unwrap()
    }
}

/// A page's customers and cursor.
fn ids_of(page: &pb::ExportProfileFactsResponse) -> (Vec<&str>, &str) {
    (page.facts.iter().map(|f| f.profile_id.as_str()).collect(), page.cursor.as_str())
}

async fn live_customers_are_exported_in_pages_with_their_consents(backend: Backend) {
    let cluster = Cluster::start(PROFILE_ONLY, backend).await;
    let server = cluster.server("profile");
    let name = unique_tenant("facts-export");
    let mut t = Tenant {
        writer: token(&name, Role::Writer),
        admin: token(&name, Role::Admin),
        profiles: ProfileServiceClient::new(server.channel().await),
        internal: ProfileInternalServiceClient::new(server.channel().await),
        name,
    };
    let definition =
        pb::ConsentPurposeDefinition { name: "wine_club".into(), description: "Wine offers".into(), create_time: None };
    let create = pb::CreateConsentPurposeRequest { purpose: Some(definition) };
    t.profiles.create_consent_purpose(authed(create, &t.admin)).await.unwrap();

    let ana = t.profile("ana@example.com").await;
    let bea = t.profile("bea@example.com").await;
    let cid = t.profile("cid@example.com").await;
    let dan = t.profile("dan@example.com").await;
    let eve = t.profile("eve@example.com").await;
    // Ana withdrew her survey consent after giving it: the withdrawal is in
    // force. Bea gave email; Cid decided nothing; Eve is erased.
    t.consent(&ana, standard(pb::ConsentPurpose::Survey), true).await;
    let ana_survey = t.consent(&ana, standard(pb::ConsentPurpose::Survey), false).await;
    let ana_wine = t.consent(&ana, custom("wine_club"), true).await;
    let bea_email = t.consent(&bea, standard(pb::ConsentPurpose::Email), true).await;
    t.consent(&eve, standard(pb::ConsentPurpose::Survey), true).await;
    // Dan is merged into Ana (his email becomes hers); Eve is erased.
    let merge = pb::MergeProfilesRequest { survivor_id: ana.clone(), merged_id: dan.clone(), ..Default::default() };
    t.profiles.merge_profiles(authed(merge, &t.writer)).await.unwrap();
    t.profiles.erase_customer(authed(pb::EraseCustomerRequest { profile_id: eve.clone() }, &t.admin)).await.unwrap();

    // Three live customers in id order: two pages of 2 (the second short,
    // so the last).
    let mut live = [ana.clone(), bea.clone(), cid.clone()];
    live.sort();
    let before = cx_runtime::store::now();
    let pages = t.export("", 2).await;
    let after = cx_runtime::store::now();
    let shape: Vec<_> = pages.iter().map(ids_of).collect();
    assert_eq!(
        shape,
        [(vec![live[0].as_str(), live[1].as_str()], live[1].as_str()), (vec![live[2].as_str()], live[2].as_str())]
    );

    // Each customer's facts are her profile's, read during the call.
    for fact in pages.iter().flat_map(|p| &p.facts) {
        let read = cx_proto::from_timestamp(fact.change_time.as_ref().unwrap()).unwrap();
        assert!(before <= read && read <= after, "read at {read}, during the call");
        let profile = t.get(&fact.profile_id).await;
        let expected = pb::ProfileFactsChanged {
            profile_id: profile.id.clone(),
            lifecycle: profile.lifecycle,
            persona: profile.persona.clone(),
            attributes: profile.attributes.clone(),
            create_time: profile.create_time,
            digital_intensity: profile.digital_intensity,
            version: profile.version,
            change_time: fact.change_time,
            contacts: fact.contacts.clone(),
        };
        assert_eq!(fact, &expected);
    }
    let contacts = |id: &str| -> Vec<String> {
        let fact = pages.iter().flat_map(|p| &p.facts).find(|f| f.profile_id == id).unwrap();
        fact.contacts.iter().map(|c| c.value.clone()).collect()
    };
    assert_eq!(contacts(&ana), ["ana@example.com", "dan@example.com"], "Dan's email is his survivor's");
    assert_eq!(contacts(&cid), ["cid@example.com"]);

    // The decisions in force, as the feed sent them: Ana's withdrawal and
    // wine club, Bea's email; none of Eve's.
    let mut consents: Vec<pb::ConsentChanged> = pages.iter().flat_map(|p| p.consents.clone()).collect();
    let mut expected = vec![ana_survey, ana_wine, bea_email];
    let order = |c: &pb::ConsentChanged| (c.profile_id.clone(), format!("{:?}", c.purpose));
    consents.sort_by_key(order);
    expected.sort_by_key(order);
    assert_eq!(consents, expected);

    // Resuming after the first customer gives exactly the other two, in one
    // page of the default size; after the last, one empty page keeps it.
    let rest = t.export(&live[0], 0).await;
    assert_eq!(
        rest.iter().map(ids_of).collect::<Vec<_>>(),
        [(vec![live[1].as_str(), live[2].as_str()], live[2].as_str())]
    );
    let end = t.export(&live[2], 0).await;
    assert_eq!(end.iter().map(ids_of).collect::<Vec<_>>(), [(vec![], live[2].as_str())]);
    assert_eq!(end[0].consents, []);

    // Only segmentation asks, with a service identity; the asks are checked.
    let user = t.export_as(&t.admin.clone(), "", 0).await.unwrap_err();
    assert_eq!(user.code(), Code::Unauthenticated);
    let survey = t.export_as(&service_token("survey", &t.name), "", 0).await.unwrap_err();
    assert_eq!(
        (survey.code(), survey.message()),
        (Code::PermissionDenied, "only the segmentation service makes this call")
    );
    let segmentation = service_token("segmentation", &t.name);
    let bad_id = t.export_as(&segmentation, "not-an-id", 0).await.unwrap_err();
    assert_eq!((bad_id.code(), bad_id.message()), (Code::InvalidArgument, "invalid after_profile_id: is not a UUID"));
    let too_big = t.export_as(&segmentation, "", 5_001).await.unwrap_err();
    assert_eq!(
        (too_big.code(), too_big.message()),
        (Code::InvalidArgument, "invalid page_size: is 5001; at most 5000")
    );
}

/// 32 customers of 100 attributes of 1 KiB each (about 104 KB of facts
/// each, 3.3 MB in all): more than a page holds (`MAX_PAGE_BYTES`, 3 MiB),
/// so the first of the 1,000 asked ends early and the next goes on.
async fn a_page_of_large_facts_ends_where_they_stop_fitting(backend: Backend) {
    let cluster = Cluster::start(PROFILE_ONLY, backend).await;
    let server = cluster.server("profile");
    let name = unique_tenant("facts-large");
    let mut t = Tenant {
        writer: token(&name, Role::Writer),
        admin: token(&name, Role::Admin),
        profiles: ProfileServiceClient::new(server.channel().await),
        internal: ProfileInternalServiceClient::new(server.channel().await),
        name,
    };
    let value = || AttributeValue { kind: Some(attribute_value::Kind::StringValue("x".repeat(1024))) };
    let attributes: HashMap<String, AttributeValue> = (0..100).map(|i| (format!("note_{i:03}"), value())).collect();
    let mut ids = Vec::new();
    for n in 0..32 {
        let id = t.profile(&format!("large-{n}@example.com")).await;
        let update = pb::UpdateProfileRequest {
            profile: Some(pb::Profile { id: id.clone(), attributes: attributes.clone(), ..Default::default() }),
            update_mask: Some(FieldMask { paths: vec!["attributes".into()] }),
        };
        t.profiles.update_profile(authed(update, &t.writer)).await.unwrap();
        ids.push(id);
    }
    ids.sort();

    let pages = t.export("", 0).await;
    assert_eq!(pages.len(), 2, "the first page ends early, the second holds the rest");
    assert!(pages[0].facts.len() < 32);
    for page in &pages {
        assert!(page.encoded_len() <= cx_runtime::keyset::MAX_PAGE_BYTES, "{} bytes", page.encoded_len());
        assert_eq!(page.cursor, page.facts.last().unwrap().profile_id, "the cursor is the last customer sent");
    }
    let sent: Vec<&str> = pages.iter().flat_map(|p| &p.facts).map(|f| f.profile_id.as_str()).collect();
    assert_eq!(sent, ids, "every customer once, in order");
}

cx_testkit::on_both_backends!(
    live_customers_are_exported_in_pages_with_their_consents,
    a_page_of_large_facts_ends_where_they_stop_fitting,
);
