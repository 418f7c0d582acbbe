//! Profile, survey and segmentation in one cluster: a consent and an
//! attribute set in profile reach segmentation's fact table through the
//! feeds, so a rule over them counts the customer; a withdrawal takes her
//! out again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cx_proto::common::v1::{AttributeValue, attribute_value};
use cx_proto::profile::v1 as profile;
use cx_proto::profile::v1::profile_service_client::ProfileServiceClient;
use cx_proto::segmentation::v1 as pb;
use cx_proto::segmentation::v1::evaluate_segment_request::Target;
use cx_proto::segmentation::v1::segmentation_service_client::SegmentationServiceClient;
use cx_runtime::auth::Role;
use cx_runtime::registry::Registry;
use cx_testkit::{Backend, Cluster, authed, eventually};

cx_testkit::on_both_backends!(a_consent_and_an_attribute_set_in_profile_count_in_a_segment);

const SERVICES: Registry = Registry::new(&[cx_profile::SERVICE, cx_survey::SERVICE, cx_segmentation::SERVICE]);

const RULE: &str = "consent.email AND profile.attributes.vip = true";

async fn a_consent_and_an_attribute_set_in_profile_count_in_a_segment(backend: Backend) {
    let cluster = Cluster::start(SERVICES, backend).await;
    let tenant = cx_testkit::unique_tenant("fed");
    let (reader, writer) = (cx_testkit::token(&tenant, Role::Reader), cx_testkit::token(&tenant, Role::Writer));
    let mut profiles = ProfileServiceClient::new(cluster.server("profile").channel().await);
    let segments = SegmentationServiceClient::new(cluster.server("segmentation").channel().await);

    let resolve = profile::ResolveProfileRequest {
        identity: Some(profile::Identity {
            kind: profile::IdentityKind::Email as i32,
            value: "vip@example.com".into(),
        }),
        create_if_missing: true,
    };
    let id = profiles.resolve_profile(authed(resolve, &writer)).await.unwrap().into_inner().profile.unwrap().id;
    let vip = AttributeValue { kind: Some(attribute_value::Kind::BoolValue(true)) };
    let update = profile::UpdateProfileRequest {
        profile: Some(profile::Profile {
            id: id.clone(),
            attributes: [("vip".to_owned(), vip)].into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["attributes".into()] }),
    };
    profiles.update_profile(authed(update, &writer)).await.unwrap();
    let consent = |granted: bool| profile::SetConsentRequest {
        profile_id: id.clone(),
        purpose: Some(profile::Purpose {
            kind: Some(profile::purpose::Kind::Standard(profile::ConsentPurpose::Email as i32)),
        }),
        granted,
        actor: "customer".into(),
        ..Default::default()
    };
    profiles.set_consent(authed(consent(true), &writer)).await.unwrap();

    let evaluate = || {
        let (mut client, reader) = (segments.clone(), reader.clone());
        async move {
            let request = pb::EvaluateSegmentRequest { target: Some(Target::Rule(RULE.into())), ..Default::default() };
            let answer = client.evaluate_segment(authed(request, &reader)).await.unwrap().into_inner();
            (answer.count, answer.member_ids)
        }
    };
    // Both the consent and the attribute have arrived: she is the one member.
    let members = eventually("the customer counts in the segment", evaluate, |(n, _)| *n == 1).await;
    assert_eq!(members, (1, vec![id.clone()]));

    profiles.set_consent(authed(consent(false), &writer)).await.unwrap();
    let members = eventually("the withdrawal takes her out", evaluate, |(n, _)| *n == 0).await;
    assert_eq!(members, (0, vec![]));
}
