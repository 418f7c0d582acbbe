//! Offered touchpoints through the survey service's inbox, with the real
//! profile service answering the consent check and announcing consent
//! decisions: the decisions, replays, senders, the fatigue budget under 50
//! concurrent deliveries through two survey servers, and the race between a
//! withdrawal and a trigger.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod invitations_common;

use cx_proto::journey::v1::TouchpointsOffered;
use cx_proto::profile::v1::{self as profile, ConsentChanged};
use cx_proto::survey::v1 as pb;
use cx_runtime::store::scoped;
use cx_survey::store::entity::invitation;
use cx_testkit::Backend;
use invitations_common::suite::{Suite, deliver, deliver_as, offered};
use invitations_common::{Rule, at_step, states, write_budget, write_survey, write_trigger};
use sea_orm::{ColumnTrait, QueryFilter};
use tonic::Code;
use uuid::Uuid;

cx_testkit::on_both_backends!(
    offered_touchpoints_are_decided_with_the_profile_services_answer,
    fifty_triggers_at_once_let_exactly_the_budget_through,
    a_withdrawal_racing_a_trigger_leaves_no_pending_invitation,
);

async fn trigger(s: &Suite, rule: Rule) -> Uuid {
    let survey = write_survey(&s.conn, &s.t, cx_proto::common::v1::Channel::Email).await;
    write_trigger(&s.conn, &s.t, Uuid::now_v7(), survey, rule).await;
    survey
}

/// The customer's invitations, by touchpoint id.
async fn rows_of(s: &Suite, customer: Uuid) -> Vec<invitation::Model> {
    let mut rows = scoped::<invitation::Entity>(&s.t)
        .filter(invitation::Column::CustomerId.eq(customer))
        .all(&s.conn)
        .await
        .unwrap();
    rows.sort_by(|a, b| a.touchpoint_id.cmp(&b.touchpoint_id));
    rows
}

async fn offered_touchpoints_are_decided_with_the_profile_services_answer(backend: Backend) {
    let s = Suite::start(backend).await;
    write_budget(&s.conn, &s.t, &[(10, 30)]).await;
    let checkout = trigger(&s, at_step("checkout")).await;
    // New customers have never purchased: prospects, never active.
    let lifecycle = |l: profile::Lifecycle| Rule {
        condition: pb::TouchpointCondition {
            step_key: "browse".into(),
            lifecycles: vec![l as i32],
            ..Default::default()
        },
        ..Rule::default()
    };
    let prospects = trigger(&s, lifecycle(profile::Lifecycle::Prospect)).await;
    trigger(&s, lifecycle(profile::Lifecycle::Active)).await;
    let granted = s.customer(Some(true)).await;
    let withdrawn = s.customer(Some(true)).await;
    s.set_consent(withdrawn, false).await;
    let never_asked = s.customer(None).await;
    let unknown = Uuid::now_v7();
    let mut batch = vec![
        offered("t1", granted, "checkout", 10),
        offered("t2", withdrawn, "checkout", 10),
        offered("t3", never_asked, "checkout", 10),
        offered("t4", unknown, "checkout", 10),
        offered("t5", granted, "browse", 5),
    ];
    // Journey never sends this: skipped, the rest decided.
    let mut broken = offered("t6", granted, "checkout", 1);
    broken.customer_id = "not-a-uuid".into();
    batch.push(broken);
    let answer = s.offer(batch.clone()).await.unwrap();
    assert!(!answer.duplicate);
    let granted_rows = rows_of(&s, granted).await;
    assert_eq!(
        granted_rows.iter().map(|r| (r.touchpoint_id.as_str(), r.survey_id)).collect::<Vec<_>>(),
        [("t1", checkout), ("t5", prospects)],
        "t5 fires the prospects' trigger, not the active customers'"
    );
    assert_eq!(states(&granted_rows), [("pending", ""), ("pending", "")]);
    assert_eq!(states(&rows_of(&s, withdrawn).await), [("suppressed", "consent")]);
    assert_eq!(states(&rows_of(&s, never_asked).await), [("suppressed", "consent")], "no decision is no consent");
    assert!(rows_of(&s, unknown).await.is_empty(), "a customer profile does not know is invited by nothing");

    // The same touchpoints in another message: nothing new.
    s.offer(batch).await.unwrap();
    let all = scoped::<invitation::Entity>(&s.t).all(&s.conn).await.unwrap();
    assert_eq!(all.len(), 4);

    // Only journey offers touchpoints, only profile announces consent.
    let from_profile = deliver(s.survey(), "profile", &s.t, &TouchpointsOffered::default()).await.unwrap_err();
    assert_eq!(from_profile.code(), Code::PermissionDenied);
    let from_journey = deliver(s.survey(), "journey", &s.t, &ConsentChanged::default()).await.unwrap_err();
    assert_eq!(from_journey.code(), Code::PermissionDenied);
    let too_many = vec![offered("x", granted, "checkout", 1); 10_001];
    let status = s.offer(too_many).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::InvalidArgument, "invalid touchpoints: has 10001 items; at most 10000 a message")
    );
}

async fn fifty_triggers_at_once_let_exactly_the_budget_through(backend: Backend) {
    let mut s = Suite::start(backend).await;
    // On PostgreSQL, two survey servers on the one database (replicas);
    // SQLite is one process's.
    if backend == Backend::Postgres {
        let replica =
            s.cluster.start_service("survey", cx_testkit::RunningServer::bind().await, cx_testkit::server_args()).await;
        s.cluster.servers.insert("survey-2", replica);
    }
    for i in 0..50 {
        trigger(&s, at_step(&format!("s{i}"))).await;
    }
    let customer = s.customer(Some(true)).await;
    let servers: Vec<&cx_testkit::RunningServer> =
        s.cluster.servers.iter().filter(|(n, _)| n.starts_with("survey")).map(|(_, v)| v).collect();
    // The 50 take turns on the customer: on a loaded machine some outlast
    // the server's deadline or wait too long for a pooled connection
    // (UNAVAILABLE), and are sent again under their id, as an outbox does
    // (at most 5 tries).
    let t = s.t.clone();
    let deliveries = (0..50).map(|i| {
        let server = servers[i % servers.len()];
        let message =
            TouchpointsOffered { touchpoints: vec![offered(&format!("tp{i}"), customer, &format!("s{i}"), 1)] };
        let (t, id) = (t.clone(), Uuid::now_v7());
        async move {
            let mut tries = 0;
            loop {
                tries += 1;
                match deliver_as(server, "journey", &t, &message, id).await {
                    Err(status)
                        if tries < 5
                            && matches!(
                                status.code(),
                                Code::Cancelled | Code::DeadlineExceeded | Code::Unavailable
                            ) => {}
                    done => return done,
                }
            }
        }
    });
    for delivered in futures::future::join_all(deliveries).await {
        delivered.unwrap();
    }
    let mut seen = states(&rows_of(&s, customer).await);
    seen.sort_unstable();
    let mut expected = vec![("pending", "")];
    expected.extend([("suppressed", "budget"); 49]);
    assert_eq!(seen, expected, "1 in 30 days: one of 50 invited");
}

async fn a_withdrawal_racing_a_trigger_leaves_no_pending_invitation(backend: Backend) {
    let s = Suite::start(backend).await;
    write_budget(&s.conn, &s.t, &[(100, 30)]).await;
    trigger(&s, at_step("race")).await;
    trigger(&s, at_step("later")).await;

    // The plain order first: invited, then withdrawn, then suppressed once
    // the profile service's ConsentChanged arrives.
    let first = s.customer(Some(true)).await;
    s.offer(vec![offered("first", first, "race", 1)]).await.unwrap();
    assert_eq!(states(&rows_of(&s, first).await), [("pending", "")]);
    s.set_consent(first, false).await;
    let suppressed = || async { states(&rows_of(&s, first).await) };
    cx_testkit::eventually("the withdrawal reaches survey", suppressed, |r| r == &[("suppressed", "consent")]).await;

    // Then the race, a bounded number of times: the withdrawal and the
    // trigger at the same moment, one or the other let go first by 0 to 20
    // ms, so that both orders happen.
    let (mut invited_first, mut suppressed_first) = (0, 0);
    for round in 0..12u64 {
        let customer = s.customer(Some(true)).await;
        let head_start = std::time::Duration::from_millis(round / 2 * 4);
        let withdraw = async {
            if round % 2 == 1 {
                tokio::time::sleep(head_start).await;
            }
            s.set_consent(customer, false).await;
        };
        let offer = async {
            if round % 2 == 0 {
                tokio::time::sleep(head_start).await;
            }
            s.offer(vec![offered(&format!("r{round}-a"), customer, "race", 1)]).await
        };
        let ((), offered_now) = tokio::join!(withdraw, offer);
        offered_now.unwrap();
        match states(&rows_of(&s, customer).await).as_slice() {
            [("pending", "")] => invited_first += 1,
            [("suppressed", "consent")] => suppressed_first += 1,
            other => panic!("round {round}: {other:?}"),
        }
        // After the withdrawal is acknowledged, no trigger invites.
        s.offer(vec![offered(&format!("r{round}-b"), customer, "later", 0)]).await.unwrap();
        let later = rows_of(&s, customer).await.into_iter().find(|r| r.touchpoint_id.ends_with("-b")).unwrap();
        assert_eq!(states(std::slice::from_ref(&later)), [("suppressed", "consent")], "round {round}");
        // And in the end nothing is pending for the customer.
        let pending = || async { rows_of(&s, customer).await.into_iter().filter(|r| r.state == 1).count() };
        cx_testkit::eventually(&format!("round {round}: nothing pending"), pending, |n| *n == 0).await;
    }
    eprintln!(
        "{backend:?}: the trigger invited before the withdrawal in {invited_first} rounds, after in {suppressed_first}"
    );
}
