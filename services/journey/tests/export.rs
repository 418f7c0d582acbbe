//! Access exports across profile and journey (docs/DOMAIN.md §6.1):
//! profile's `ExportCustomerData` streams its own records, then journey's
//! touchpoints of the customer, asked of journey's
//! `cx.gdpr.v1.CustomerDataService` and read a page at a time; a journey
//! that cannot be reached fails the export.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, email, touchpoint};
use cx_proto::common::v1::{Channel, Initiator};
use cx_proto::journey::v1 as pb;
use cx_proto::profile::v1 as profile;
use cx_proto::profile::v1::export_customer_data_response::Record;
use cx_testkit::{authed, eventually};
use tonic::Code;

cx_testkit::on_both_backends!(
    an_export_gives_profiles_records_then_every_touchpoint_of_the_customer,
    an_export_fails_naming_journey_when_it_cannot_be_reached,
);

/// Profile's `ExportCustomerData` of `id`, every message or the error.
async fn export(s: &common::Suite, id: &str) -> Result<Vec<profile::ExportCustomerDataResponse>, tonic::Status> {
    let request = profile::ExportCustomerDataRequest { profile_id: id.into() };
    let mut stream = s.profile_client().await.export_customer_data(authed(request, &s.admin)).await?.into_inner();
    let mut records = Vec::new();
    while let Some(message) = stream.message().await? {
        records.push(message);
    }
    Ok(records)
}

async fn an_export_gives_profiles_records_then_every_touchpoint_of_the_customer(backend: Backend) {
    let s = common::suite_on(backend).await;
    // Ann: one more touchpoint than journey exports a page, hour after hour
    // back; Bob: 2 older ones.
    let ann_count = usize::try_from(cx_journey::inbox::EXPORT_PAGE).unwrap() + 1;
    let at = |id: String, who: &str, hours_ago: usize| {
        touchpoint(&id, email(who), Channel::Web, Initiator::Pull, i64::try_from(hours_ago).unwrap())
    };
    let mut batch: Vec<pb::Touchpoint> =
        (0..ann_count).map(|i| at(format!("ann-{i:04}"), "ann@example.com", i + 1)).collect();
    batch.extend((0..2).map(|i| at(format!("bob-{i}"), "bob@example.com", 2_000 + i)));
    assert_eq!(s.ingest(batch).await.accepted, 1_003);
    let (ann, bob) = (s.id_of("ann@example.com").await, s.id_of("bob@example.com").await);
    s.merge(&ann, &bob).await;
    // Once journey has the merge, Bob's timeline is Ann's (a page of 50).
    eventually("journey learns of the merge", || s.timeline(&bob), |ids| ids.len() == 50).await;

    let records = export(&s, &ann).await.unwrap();
    let (own, others): (Vec<_>, Vec<_>) = records.into_iter().partition(|r| r.source_service == "profile");
    assert!(matches!(&own[0].record, Some(Record::Profile(p)) if p.id == ann));
    assert!(own.iter().any(|r| r.record == Some(Record::MergedProfileId(bob.clone()))));
    // Profile's records came first: everything after them is journey's.
    let mut touchpoints = Vec::new();
    for record in others {
        assert_eq!(record.source_service, "journey");
        let Some(Record::ServiceRecord(any)) = record.record else { panic!("not a service record: {record:?}") };
        assert_eq!(any.type_url, "/cx.journey.v1.Touchpoint");
        let touchpoint: pb::Touchpoint = any.to_msg().unwrap();
        assert_eq!(touchpoint.resolved_profile_id, ann);
        touchpoints.push(touchpoint.id);
    }
    // Newest first, over two pages (1,000 + 3): Ann's 1,001 from 1 hour
    // ago on, then Bob's from 2,000 and 2,001 hours ago, his since the merge.
    let mut expected: Vec<String> = (0..ann_count).map(|i| format!("ann-{i:04}")).collect();
    expected.extend(["bob-0".to_owned(), "bob-1".to_owned()]);
    assert_eq!(touchpoints, expected);
}

async fn an_export_fails_naming_journey_when_it_cannot_be_reached(backend: Backend) {
    let mut s = common::suite_on(backend).await;
    let stored = s.ingest(vec![touchpoint("c1", email("cleo@example.com"), Channel::Store, Initiator::Push, 1)]).await;
    assert_eq!(stored.accepted, 1);
    let cleo = s.id_of("cleo@example.com").await;
    // Her one touchpoint, after profile's records.
    let journey_records = |records: &[profile::ExportCustomerDataResponse]| {
        records.iter().filter(|r| r.source_service == "journey").count()
    };
    assert_eq!(journey_records(&export(&s, &cleo).await.unwrap()), 1);

    let addr = s.cluster.stop("journey").await;
    let status = export(&s, &cleo).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::Unavailable, "the journey service cannot be reached: the export is incomplete, retry later")
    );
    s.cluster.restart("journey", addr).await;
    assert_eq!(journey_records(&export(&s, &cleo).await.unwrap()), 1);
}
