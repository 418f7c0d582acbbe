//! ExportSegment with profile and segmentation running together, on both
//! backends: the members of the last refresh with their contacts, consent
//! read at export time (a withdrawal after the refresh leaves the customer
//! out), and every member accounted for in the summary (docs/DOMAIN.md §8.6).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cx_proto::common::v1::{AttributeValue, attribute_value};
use cx_proto::profile::v1 as profile;
use cx_proto::profile::v1::profile_service_client::ProfileServiceClient;
use cx_proto::segmentation::v1 as pb;
use cx_proto::segmentation::v1::evaluate_segment_request::Target;
use cx_proto::segmentation::v1::segmentation_service_client::SegmentationServiceClient;
use cx_runtime::error::{FieldViolation, field_violations};
use cx_runtime::registry::Registry;
use cx_testkit::{Backend, Cluster, Tokens, authed, eventually};
use futures::StreamExt;
use tonic::Code;
use tonic::transport::Channel;

cx_testkit::on_both_backends!(an_export_sends_consenting_members_and_accounts_for_the_others);

const SERVICES: Registry = Registry::new(&[cx_profile::SERVICE, cx_segmentation::SERVICE]);

const VIP: &str = "profile.attributes.vip = true";

struct Suite {
    who: Tokens,
    profiles: ProfileServiceClient<Channel>,
    segments: SegmentationServiceClient<Channel>,
}

fn email(value: &str) -> profile::Identity {
    profile::Identity { kind: profile::IdentityKind::Email as i32, value: value.into() }
}

fn phone(value: &str) -> profile::Identity {
    profile::Identity { kind: profile::IdentityKind::Phone as i32, value: value.into() }
}

impl Suite {
    /// A customer known by `identities` (the first resolves her), a VIP or
    /// not, who granted the email consent or never decided.
    async fn customer(&self, identities: &[profile::Identity], vip: bool, consents: bool) -> String {
        let mut profiles = self.profiles.clone();
        let resolve = profile::ResolveProfileRequest { identity: Some(identities[0].clone()), create_if_missing: true };
        let id =
            profiles.resolve_profile(authed(resolve, &self.who.writer)).await.unwrap().into_inner().profile.unwrap().id;
        for identity in &identities[1..] {
            let add = profile::AddIdentityRequest { profile_id: id.clone(), identity: Some(identity.clone()) };
            profiles.add_identity(authed(add, &self.who.writer)).await.unwrap();
        }
        let vip = AttributeValue { kind: Some(attribute_value::Kind::BoolValue(vip)) };
        let update = profile::UpdateProfileRequest {
            profile: Some(profile::Profile {
                id: id.clone(),
                attributes: [("vip".into(), vip)].into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["attributes".into()] }),
        };
        profiles.update_profile(authed(update, &self.who.writer)).await.unwrap();
        if consents {
            self.consent(&id, true).await;
        }
        id
    }

    async fn consent(&self, id: &str, granted: bool) {
        let request = profile::SetConsentRequest {
            profile_id: id.into(),
            purpose: Some(profile::Purpose {
                kind: Some(profile::purpose::Kind::Standard(profile::ConsentPurpose::Email as i32)),
            }),
            granted,
            actor: "customer".into(),
            ..Default::default()
        };
        self.profiles.clone().set_consent(authed(request, &self.who.writer)).await.unwrap();
    }

    async fn evaluate(&self, rule: &str) -> Vec<String> {
        let request = pb::EvaluateSegmentRequest {
            target: Some(Target::Rule(rule.into())),
            page_size: 1000,
            ..Default::default()
        };
        self.segments.clone().evaluate_segment(authed(request, &self.who.reader)).await.unwrap().into_inner().member_ids
    }

    async fn members(&self, segment: &str) -> Vec<String> {
        let request = pb::ListMembersRequest { segment_id: segment.into(), page_size: 1000, ..Default::default() };
        let members = self.segments.clone().list_members(authed(request, &self.who.reader)).await.unwrap();
        members.into_inner().members.into_iter().map(|m| m.customer_id).collect()
    }

    /// Every response of an export, or the status it failed with.
    async fn export(
        &self,
        request: pb::ExportSegmentRequest,
        token: &str,
    ) -> Result<Vec<pb::ExportSegmentResponse>, tonic::Status> {
        let mut stream = self.segments.clone().export_segment(authed(request, token)).await?.into_inner();
        let mut responses = Vec::new();
        while let Some(response) = stream.next().await {
            responses.push(response?);
        }
        Ok(responses)
    }
}

fn exported(responses: &[pb::ExportSegmentResponse]) -> Vec<(String, Vec<String>)> {
    responses.iter().flat_map(|r| r.members.iter().map(|m| (m.customer_id.clone(), m.contacts.clone()))).collect()
}

async fn an_export_sends_consenting_members_and_accounts_for_the_others(backend: Backend) {
    let cluster = Cluster::start(SERVICES, backend).await;
    let suite = Suite {
        who: Tokens::new("export"),
        profiles: ProfileServiceClient::new(cluster.server("profile").channel().await),
        segments: SegmentationServiceClient::new(cluster.server("segmentation").channel().await),
    };
    // Profile ids are time-ordered, so members come in this order.
    let a = suite.customer(&[email("a@example.com")], true, true).await;
    let b = suite.customer(&[email("b@example.com"), email("b2@example.com")], true, true).await;
    let c = suite.customer(&[phone("+33600000003")], true, true).await;
    let d = suite.customer(&[email("d@example.com")], true, false).await;
    let e = suite.customer(&[email("e@example.com")], true, true).await;
    let f = suite.customer(&[email("f@example.com")], true, true).await;
    let h = suite.customer(&[email("h@example.com")], true, true).await;
    let g = suite.customer(&[email("g@example.com")], false, true).await;
    let vips = [&a, &b, &c, &d, &e, &f, &h].map(|id| id.to_string()).to_vec();
    // The attribute is set after the identities: once it is in the facts,
    // the contacts are too (each delivery reads the current facts).
    eventually("the VIPs' facts arrive", || suite.evaluate(VIP), |ids| *ids == vips).await;
    let consenting = [&a, &b, &c, &e, &f, &h, &g].map(|id| id.to_string()).to_vec();
    eventually("the consents arrive", || suite.evaluate("consent.email"), |ids| *ids == consenting).await;

    let segment = pb::Segment {
        name: "VIPs".into(),
        rule: VIP.into(),
        // A week: the schedule leaves it alone during the test.
        refresh_interval: Some(prost_types::Duration { seconds: 7 * 24 * 3600, nanos: 0 }),
        ..Default::default()
    };
    let create = pb::CreateSegmentRequest { segment: Some(segment) };
    let segment = suite.segments.clone().create_segment(authed(create, &suite.who.writer)).await.unwrap();
    let segment = segment.into_inner().segment.unwrap().id;
    let refresh = pb::RefreshSegmentRequest { segment_id: segment.clone() };
    suite.segments.clone().refresh_segment(authed(refresh.clone(), &suite.who.writer)).await.unwrap();
    assert_eq!(suite.members(&segment).await, vips);

    // After the refresh: E withdraws, F is erased, H is merged into G.
    suite.consent(&e, false).await;
    let erase = profile::EraseCustomerRequest { profile_id: f.clone() };
    suite.profiles.clone().erase_customer(authed(erase, &suite.who.admin)).await.unwrap();
    let merge = profile::MergeProfilesRequest { survivor_id: g.clone(), merged_id: h.clone(), ..Default::default() };
    suite.profiles.clone().merge_profiles(authed(merge, &suite.who.writer)).await.unwrap();
    let left = vec![a.clone(), b.clone(), c.clone(), d.clone(), e.clone()];
    eventually("the erasure and the merge reach the members", || suite.members(&segment), |ids| *ids == left).await;
    eventually("the withdrawal arrives", || suite.evaluate("consent.email"), |ids| !ids.contains(&e)).await;

    let request = |after_cursor: &str| pb::ExportSegmentRequest {
        segment_id: segment.clone(),
        channel: pb::CampaignChannel::Email as i32,
        purpose: String::new(),
        after_cursor: after_cursor.into(),
        page_size: 2,
    };
    let responses = suite.export(request(""), &suite.who.writer).await.unwrap();
    // Pages of two members: [A, B] both sent; [C, D]: C has no email, D
    // never consented; [E]: withdrawn since the refresh. A short page ends it.
    assert_eq!(responses.len(), 3);
    assert_eq!(
        exported(&responses),
        vec![
            (a.clone(), vec!["a@example.com".to_owned()]),
            // In order: '2' sorts before '@'.
            (b.clone(), vec!["b2@example.com".to_owned(), "b@example.com".to_owned()]),
        ]
    );
    assert!(responses[..2].iter().all(|r| r.summary.is_none()));
    let summary = responses[2].summary.unwrap();
    // 2 + 2 + 1 + 1 + 1 = 7, the members the refresh found.
    assert_eq!(
        (summary.exported, summary.no_consent, summary.no_identity, summary.erased, summary.merged),
        (2, 2, 1, 1, 1)
    );
    assert!(summary.refresh_time.is_some());

    // Resumed after the first response: the rest, and the whole export's summary.
    let rest = suite.export(request(&responses[0].cursor), &suite.who.writer).await.unwrap();
    assert_eq!(exported(&rest), vec![]);
    assert_eq!(rest.last().unwrap().summary, Some(summary));

    // A cursor names its export: another channel's request refuses it.
    let mut sms = request(&responses[0].cursor);
    sms.channel = pb::CampaignChannel::Sms as i32;
    let refused = suite.export(sms, &suite.who.writer).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(
        field_violations(&refused),
        vec![FieldViolation::new("after_cursor", "is not the cursor of this export")]
    );

    // Readers do not export contacts.
    let refused = suite.export(request(""), &suite.who.reader).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    // A purpose the tenant does not have, named like a standard one.
    let mut typo = request("");
    typo.purpose = "emial".into();
    let refused = suite.export(typo, &suite.who.writer).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(
        field_violations(&refused),
        vec![FieldViolation::new("purpose", "unknown consent purpose consent.emial — did you mean consent.email?")]
    );

    // Refreshed again: the old cursor's members are gone.
    suite.segments.clone().refresh_segment(authed(refresh, &suite.who.writer)).await.unwrap();
    let refused = suite.export(request(&responses[0].cursor), &suite.who.writer).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
}
