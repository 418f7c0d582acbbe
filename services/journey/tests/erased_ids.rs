//! After an erasure, no id of the erased customer takes new data, from the
//! moment EraseCustomer returns: the profile id and every id merged into it
//! are refused per item (`NOT_FOUND`), and the customer's old email address
//! is resolved anew, to a new profile that the erasure leaves alone
//! (docs/DOMAIN.md §6.2, docs/DECISIONS.md, Merge, export, erasure).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, email, profile_id, touchpoint};
use cx_proto::common::v1::{Channel, Initiator};
use cx_proto::journey::v1 as pb;
use cx_proto::journey::v1::journey_service_client::JourneyServiceClient;
use cx_proto::profile::v1 as profile;
use cx_testkit::{RunningServer, authed, eventually};
use tonic::transport::Channel as GrpcChannel;

cx_testkit::on_both_backends!(from_the_moment_an_erasure_returns_no_id_of_the_customer_takes_new_data);

async fn ingest(
    client: &JourneyServiceClient<GrpcChannel>,
    writer: &str,
    batch: Vec<pb::Touchpoint>,
) -> pb::IngestTouchpointsResponse {
    let request = pb::IngestTouchpointsRequest { touchpoints: batch, all_or_nothing: false };
    client.clone().ingest_touchpoints(authed(request, writer)).await.unwrap().into_inner()
}

async fn from_the_moment_an_erasure_returns_no_id_of_the_customer_takes_new_data(backend: Backend) {
    let s = common::suite_on(backend).await;
    // On PostgreSQL a second journey replica, which profile's outbox never
    // delivers to: it learns of the erasure through the shared database.
    let second = match backend {
        Backend::Postgres => {
            let listener = RunningServer::bind().await;
            Some(s.cluster.start_service("journey", listener, cx_testkit::server_args()).await)
        }
        Backend::Sqlite => None,
    };
    let mut replicas = vec![s.journey_client().await];
    if let Some(server) = &second {
        replicas.push(JourneyServiceClient::new(server.channel().await));
    }
    let at = |id: &str, customer, hours_ago| touchpoint(id, customer, Channel::Web, Initiator::Pull, hours_ago);
    let sue_email = "sue@example.com";
    let first = vec![
        at("a1", email("ann@example.com"), 9),
        at("b1", email("bea@example.com"), 8),
        at("s1", email(sue_email), 7),
    ];
    assert_eq!(s.ingest(first).await.accepted, 3);
    let (ann, bea, sue) =
        (s.id_of("ann@example.com").await, s.id_of("bea@example.com").await, s.id_of(sue_email).await);
    // Ann is Bea, who is Sue: the chain ann → bea → sue.
    s.merge(&bea, &ann).await;
    s.merge(&sue, &bea).await;
    eventually("the merges reach journey", || s.timeline(&sue), |ids| ids.len() == 3).await;

    // A touchpoint by each of her ids, then one by her address: `{prefix}-a{n}`,
    // `-b{n}`, `-s{n}`, `-e{n}`, the last an hour later.
    let by_every_id = |prefix: &str, n: usize, hours_ago: i64| {
        let ids = [("a", profile_id(&ann)), ("b", profile_id(&bea)), ("s", profile_id(&sue))];
        let mut batch: Vec<_> =
            ids.into_iter().map(|(who, id)| at(&format!("{prefix}-{who}{n}"), id, hours_ago + 1)).collect();
        batch.push(at(&format!("{prefix}-e{n}"), email(sue_email), hours_ago));
        batch
    };
    // Every replica learns Sue's address and every id of hers.
    for (n, replica) in replicas.iter().enumerate() {
        assert_eq!(ingest(replica, &s.writer, by_every_id("known", n, 3)).await.accepted, 4);
    }

    let mut profiles = s.profile_client().await;
    let erase = profile::EraseCustomerRequest { profile_id: sue.clone() };
    let job = profiles.erase_customer(authed(erase, &s.admin)).await.unwrap().into_inner().erasure.unwrap();

    // At once, through every replica: each of her ids is refused alone;
    // her old address is a new customer's.
    for (n, replica) in replicas.iter().enumerate() {
        let answer = ingest(replica, &s.writer, by_every_id("late", n, 1)).await;
        let refused: Vec<(i32, &str, i32)> =
            answer.errors.iter().map(|e| (e.index, e.field.as_str(), e.code)).collect();
        let not_found = tonic::Code::NotFound as i32;
        assert_eq!(
            refused,
            [(0, "profile_id", not_found), (1, "profile_id", not_found), (2, "profile_id", not_found)],
            "replica {n}"
        );
        assert_eq!((answer.accepted, answer.refused), (1, 3), "replica {n}");
    }

    let completed = profile::ErasureState::Completed as i32;
    let receipt = || {
        let (mut profiles, request) =
            (profiles.clone(), authed(profile::GetErasureRequest { id: job.id.clone() }, &s.admin));
        async move { profiles.get_erasure(request).await.unwrap().into_inner().erasure.unwrap() }
    };
    let receipt = eventually("the erasure completes", receipt, |e| e.state == completed).await;
    let journey_step = receipt.steps.iter().find(|step| step.service == "journey").unwrap();
    // s1, b1, a1 and the 4 "known" touchpoints of each replica.
    let known = 4 * i64::try_from(replicas.len()).unwrap();
    assert_eq!(journey_step.erased_counts.get("touchpoints"), Some(&(3 + known)));

    // The address sent after the erasure belongs to a new profile, whose
    // touchpoints the erasure left alone.
    let fresh = s.id_of(sue_email).await;
    assert!(![&ann, &bea, &sue].contains(&&fresh), "a new profile");
    let mut expected: Vec<String> = (0..replicas.len()).map(|n| format!("late-e{n}")).collect();
    expected.reverse();
    let mut timeline = s.timeline(&fresh).await;
    timeline.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(timeline, expected);
    for id in [&ann, &bea, &sue] {
        assert_eq!(s.timeline(id).await, Vec::<String>::new(), "nothing under {id}");
    }
    if backend == Backend::Postgres {
        // Nor does any row of either service name them, the merge ann → bea included.
        let needles = [ann.as_str(), bea.as_str(), sue.as_str(), "ann@example.com", "bea@example.com"];
        assert_eq!(cx_testkit::rows_mentioning(&s.db, "profile", &needles).await, Vec::<String>::new());
        assert_eq!(cx_testkit::rows_mentioning(&s.db, "journey", &needles).await, Vec::<String>::new());
    }
    if let Some(server) = second {
        server.stop().await.unwrap();
    }
}
