//! The segmentation service through gRPC, on both backends, next to the
//! profile service it asks for custom purposes: rules checked with every
//! error, segments' life, the templates, and evaluation over the fact table
//! (docs/DOMAIN.md §8.4, §8.5).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cx_proto::profile::v1 as profile;
use cx_proto::profile::v1::profile_service_client::ProfileServiceClient;
use cx_proto::segmentation::v1 as pb;
use cx_proto::segmentation::v1::evaluate_segment_request::Target;
use cx_proto::segmentation::v1::segmentation_service_client::SegmentationServiceClient;
use cx_runtime::error::field_violations;
use cx_runtime::registry::Registry;
use cx_segmentation::store::entity::fact;
use cx_testkit::{Backend, Cluster, Tokens, authed};
use sea_orm::{ActiveValue::Set, EntityTrait};
use tonic::Code;
use tonic::transport::Channel;
use uuid::Uuid;

cx_testkit::on_both_backends!(
    a_rule_is_answered_with_its_canonical_form_or_every_error,
    a_custom_purpose_is_one_the_profile_service_knows,
    segments_are_created_read_listed_updated_and_deleted,
    bad_segments_are_refused_with_the_field_at_fault,
    the_templates_are_listed,
    evaluation_counts_the_members_and_pages_them,
);

const SERVICES: Registry = Registry::new(&[cx_profile::SERVICE, cx_segmentation::SERVICE]);

struct Suite {
    cluster: Cluster,
    who: Tokens,
}

async fn suite(backend: Backend) -> Suite {
    Suite { cluster: Cluster::start(SERVICES, backend).await, who: Tokens::new("segments") }
}

impl std::ops::Deref for Suite {
    type Target = Tokens;

    fn deref(&self) -> &Tokens {
        &self.who
    }
}

impl Suite {
    async fn client(&self) -> SegmentationServiceClient<Channel> {
        SegmentationServiceClient::new(self.cluster.server("segmentation").channel().await)
    }

    async fn validate(&self, rule: &str) -> pb::ValidateRuleResponse {
        let request = authed(pb::ValidateRuleRequest { rule: rule.into() }, &self.reader);
        self.client().await.validate_rule(request).await.unwrap().into_inner()
    }

    async fn create(&self, name: &str, rule: &str) -> Result<pb::Segment, tonic::Status> {
        let segment = pb::Segment { name: name.into(), rule: rule.into(), ..Default::default() };
        let request = authed(pb::CreateSegmentRequest { segment: Some(segment) }, &self.writer);
        Ok(self.client().await.create_segment(request).await?.into_inner().segment.unwrap())
    }

    async fn evaluate(
        &self,
        target: Target,
        size: i32,
        token: &str,
    ) -> Result<pb::EvaluateSegmentResponse, tonic::Status> {
        let request = pb::EvaluateSegmentRequest { target: Some(target), page_size: size, page_token: token.into() };
        Ok(self.client().await.evaluate_segment(authed(request, &self.reader)).await?.into_inner())
    }
}

fn violations(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    field_violations(status).into_iter().map(|v| format!("{}: {}", v.field, v.description)).collect()
}

async fn a_rule_is_answered_with_its_canonical_form_or_every_error(backend: Backend) {
    let s = suite(backend).await;
    let good = s.validate("profile.lifecycle = \"lost\" and (rfm.monetary >= 0500.0) and consent.email").await;
    assert!(good.valid);
    assert_eq!(good.canonical_rule, "profile.lifecycle = \"lost\" AND rfm.monetary >= 500 AND consent.email");
    assert_eq!(good.fields, ["profile.lifecycle", "rfm.monetary", "consent.email"]);
    assert!(good.errors.is_empty());

    let bad = s.validate("rfm.monetry >= 500 AND\nprofile.lifecycle = \"lsot\"").await;
    assert!(!bad.valid);
    assert_eq!(bad.canonical_rule, "");
    let errors: Vec<_> = bad.errors.iter().map(|e| (e.line, e.column, e.message.as_str())).collect();
    assert_eq!(
        errors,
        [
            (1, 1, "unknown field rfm.monetry — did you mean rfm.monetary?"),
            (2, 21, "profile.lifecycle has no value \"lsot\" — did you mean \"lost\"?"),
        ]
    );
}

async fn a_custom_purpose_is_one_the_profile_service_knows(backend: Backend) {
    let s = suite(backend).await;
    // Unknown to profile yet: refused, with the standard purposes to choose from.
    let before = s.validate("consent.wine_club").await;
    assert_eq!(
        before.errors.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(),
        ["unknown consent purpose consent.wine_club"]
    );

    let mut profiles = ProfileServiceClient::new(s.cluster.server("profile").channel().await);
    let wine_club = profile::ConsentPurposeDefinition { name: "wine_club".into(), ..Default::default() };
    let declare = profile::CreateConsentPurposeRequest { purpose: Some(wine_club) };
    profiles.create_consent_purpose(authed(declare, &s.admin)).await.unwrap();

    let after = s.validate("consent.wine_club AND consent.email").await;
    assert!(after.valid, "{after:?}");
    assert_eq!(after.fields, ["consent.wine_club", "consent.email"]);
    let near = s.validate("consent.wine_clu").await;
    assert_eq!(
        near.errors.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(),
        ["unknown consent purpose consent.wine_clu — did you mean consent.wine_club?"]
    );
    // Another tenant's purposes are its own.
    let request = authed(pb::ValidateRuleRequest { rule: "consent.wine_club".into() }, &s.stranger);
    let theirs = s.client().await.validate_rule(request).await.unwrap().into_inner();
    assert!(!theirs.valid);
}

async fn segments_are_created_read_listed_updated_and_deleted(backend: Backend) {
    let s = suite(backend).await;
    let lost = s.create("Lost big spenders", "profile.lifecycle = \"lost\" and rfm.monetary >= 500").await.unwrap();
    assert_eq!(lost.rule, "profile.lifecycle = \"lost\" AND rfm.monetary >= 500");
    assert_eq!(lost.fields, ["profile.lifecycle", "rfm.monetary"]);
    assert!(Uuid::parse_str(&lost.id).is_ok());
    assert_eq!(lost.create_time, lost.update_time);
    let detractors = s.create("Detractors", "survey.nps_category = \"detractor\"").await.unwrap();

    let mut client = s.client().await;
    let got = client.get_segment(authed(pb::GetSegmentRequest { id: lost.id.clone() }, &s.reader)).await;
    assert_eq!(got.unwrap().into_inner().segment.unwrap(), lost);

    // Two pages of one, in creation order.
    let page = |token: &str| pb::ListSegmentsRequest { page_size: 1, page_token: token.into() };
    let first = client.list_segments(authed(page(""), &s.reader)).await.unwrap().into_inner();
    assert_eq!(first.segments, std::slice::from_ref(&lost));
    let second = client.list_segments(authed(page(&first.next_page_token), &s.reader)).await.unwrap().into_inner();
    assert_eq!(second.segments, std::slice::from_ref(&detractors));
    assert_eq!(second.next_page_token, "");

    // A name taken in the tenant.
    let taken = s.create("Detractors", "rfm.r = 1").await.unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists);
    assert_eq!(taken.message(), "a segment named \"Detractors\" already exists");

    // The rule changes; the name stays.
    let changed = pb::Segment {
        id: lost.id.clone(),
        name: "ignored".into(),
        rule: "rfm.segment = \"lost\"".into(),
        ..Default::default()
    };
    let mask = prost_types::FieldMask { paths: vec!["rule".into()] };
    let request = pb::UpdateSegmentRequest { segment: Some(changed), update_mask: Some(mask) };
    let updated = client.update_segment(authed(request, &s.writer)).await.unwrap().into_inner().segment.unwrap();
    assert_eq!((updated.name.as_str(), updated.rule.as_str()), ("Lost big spenders", "rfm.segment = \"lost\""));
    assert_eq!(updated.fields, ["rfm.segment"]);
    let instant = |t: &Option<prost_types::Timestamp>| t.map(|t| (t.seconds, t.nanos));
    assert!(instant(&updated.update_time) > instant(&updated.create_time));

    // Another tenant sees none of it; a reader changes nothing.
    let theirs = client.get_segment(authed(pb::GetSegmentRequest { id: lost.id.clone() }, &s.stranger)).await;
    assert_eq!(theirs.unwrap_err().code(), Code::NotFound);
    let denied = client.delete_segment(authed(pb::DeleteSegmentRequest { id: lost.id.clone() }, &s.reader)).await;
    assert_eq!(denied.unwrap_err().code(), Code::PermissionDenied);

    client.delete_segment(authed(pb::DeleteSegmentRequest { id: lost.id.clone() }, &s.writer)).await.unwrap();
    let gone = client.get_segment(authed(pb::GetSegmentRequest { id: lost.id.clone() }, &s.reader)).await;
    assert_eq!(gone.unwrap_err().message(), format!("segment {} not found", lost.id));
    // Its name is free again.
    s.create("Lost big spenders", "rfm.r = 1").await.unwrap();
}

async fn bad_segments_are_refused_with_the_field_at_fault(backend: Backend) {
    let s = suite(backend).await;
    let refused = s.create(&"n".repeat(201), "rfm.r >= AND rfm.monetry = 1").await.unwrap_err();
    assert_eq!(
        violations(&refused),
        [
            "segment.name: has more than 200 characters",
            "segment.rule: 1:10: expected a value after \">=\", found AND",
            "segment.rule: 1:14: unknown field rfm.monetry — did you mean rfm.monetary?",
        ]
    );
    let segment = s.create("Champions", "rfm.segment = \"champions\"").await.unwrap();
    let mut client = s.client().await;
    let fixed = pb::UpdateSegmentRequest {
        segment: Some(pb::Segment { id: segment.id.clone(), template_id: "reactivation".into(), ..Default::default() }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["template_id".into(), "colour".into()] }),
    };
    let refused = client.update_segment(authed(fixed, &s.writer)).await.unwrap_err();
    assert_eq!(
        violations(&refused),
        [
            "update_mask: \"template_id\" cannot change: it says where the segment came from",
            "update_mask: \"colour\" is not an updatable field of a segment",
        ]
    );
    let missing = client.get_segment(authed(pb::GetSegmentRequest { id: "nope".into() }, &s.reader)).await.unwrap_err();
    assert_eq!(violations(&missing), ["id: must be a segment id (a UUID)"]);
}

async fn the_templates_are_listed(backend: Backend) {
    let s = suite(backend).await;
    let request = authed(pb::ListTemplatesRequest {}, &s.reader);
    let templates = s.client().await.list_templates(request).await.unwrap().into_inner().templates;
    let ids: Vec<_> = templates.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["reactivation", "at_risk_champions", "detractors_to_call_back", "digital_migration"]);
    // A template's rule makes a segment as it is.
    let reactivation = &templates[0];
    assert_eq!(reactivation.rule, "profile.lifecycle = \"lost\" AND rfm.monetary >= 500 AND consent.email");
    let made = s.create(&reactivation.name, &reactivation.rule).await.unwrap();
    assert_eq!(made.rule, reactivation.rule);
}

async fn evaluation_counts_the_members_and_pages_them(backend: Backend) {
    let s = suite(backend).await;
    // Six customers of the tenant, one of another. Lost with email consent:
    // c1, c3, c5 (c2 did not agree, c4 is active, c7 has no lifecycle yet,
    // the stranger's c6 is not ours).
    let db = cx_runtime::store::open(&s.cluster.store, "segmentation").await.unwrap();
    let customer = |n: u128| Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + n);
    let rows = [
        (1, Some("lost"), true),
        (2, Some("lost"), false),
        (3, Some("lost"), true),
        (4, Some("active"), true),
        (5, Some("lost"), true),
        (7, None, true),
    ];
    let mut facts: Vec<fact::ActiveModel> = rows
        .iter()
        .map(|&(n, lifecycle, email)| fact::ActiveModel {
            tenant_id: Set(s.tenant.clone()),
            customer_id: Set(customer(n)),
            lifecycle: Set(lifecycle.map(Into::into)),
            consent_email: Set(email),
            ..Default::default()
        })
        .collect();
    facts.push(fact::ActiveModel {
        tenant_id: Set("someone-else".into()),
        customer_id: Set(customer(6)),
        lifecycle: Set(Some("lost".into())),
        consent_email: Set(true),
        ..Default::default()
    });
    fact::Entity::insert_many(facts).exec_without_returning(&db).await.unwrap();

    let rule = || Target::Rule("profile.lifecycle = \"lost\" AND consent.email".into());
    let first = s.evaluate(rule(), 2, "").await.unwrap();
    assert_eq!(first.count, 3);
    assert_eq!(first.member_ids, [customer(1).to_string(), customer(3).to_string()]);
    let second = s.evaluate(rule(), 2, &first.next_page_token).await.unwrap();
    assert_eq!((second.count, second.member_ids.as_slice()), (3, [customer(5).to_string()].as_slice()));
    assert_eq!(second.next_page_token, "");

    // A saved segment reads the same. A test on a missing value is false and
    // NOT of it true (c4 and c7), != on it false (c4 alone).
    let segment = s.create("Not lost", "NOT profile.lifecycle = \"lost\"").await.unwrap();
    let saved = s.evaluate(Target::SegmentId(segment.id), 0, "").await.unwrap();
    assert_eq!((saved.count, saved.member_ids), (2, vec![customer(4).to_string(), customer(7).to_string()]));
    let other = s.evaluate(Target::Rule("profile.lifecycle != \"lost\"".into()), 0, "").await.unwrap();
    assert_eq!((other.count, other.member_ids), (1, vec![customer(4).to_string()]));

    let bad = s.evaluate(Target::Rule("rfm.r >".into()), 0, "").await.unwrap_err();
    assert_eq!(violations(&bad), ["rule: 1:8: expected a value after \">\", found end of rule"]);
    let unknown = s.evaluate(Target::SegmentId(Uuid::nil().to_string()), 0, "").await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
}
