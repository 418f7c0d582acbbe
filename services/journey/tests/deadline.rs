//! Work stops when the caller has gone: a batch (or a single touchpoint)
//! whose deadline passes before it is committed is not committed, so a
//! client never sees DEADLINE_EXCEEDED for touchpoints that were stored.
//!
//! A client whose own timer fires first (tonic answers CANCELLED without
//! the server's word) cannot know: the server may have committed just
//! before. What it can count on is all or nothing, and a retry with the
//! same ids that stores each touchpoint once and says which were there.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Suite, email, suite, touchpoint};
use cx_proto::common::v1::{Channel, Initiator};
use cx_proto::journey::v1 as pb;
use cx_testkit::authed;
use tonic::Code;

const CALLS: u64 = 30;

/// The deadline of call `i`: 1 to 20 ms.
fn deadline(i: u64) -> Duration {
    Duration::from_millis(1 + i * 19 / (CALLS - 1))
}

#[derive(Debug, Default)]
struct Tally {
    acknowledged_and_stored: u32,
    expired_and_not_stored: u32,
    /// Calls the client's own timer ended, with how many of theirs were stored
    /// (none or all).
    client_gave_up: Vec<(u64, i64)>,
    /// Either of the two broken promises, or any other answer.
    wrong: Vec<String>,
}

/// Touchpoints stored per call, by the prefix of their ids (`dl-7-…` → `dl-7`).
async fn stored_per_call(s: &Suite, prefix: &str) -> HashMap<String, i64> {
    use sea_orm::ConnectionTrait;
    let sql = s.sql("journey").await;
    let query = format!(
        "SELECT split_part(id, '-', 2) AS call, count(*) AS n FROM touchpoints \
         WHERE tenant_id = '{}' AND id LIKE '{prefix}-%' GROUP BY 1",
        s.tenant
    );
    let rows = sql.query_all_raw(sea_orm::Statement::from_string(sea_orm::DbBackend::Postgres, query)).await.unwrap();
    rows.iter().map(|r| (r.try_get::<String>("", "call").unwrap(), r.try_get::<i64>("", "n").unwrap())).collect()
}

/// Sorts each call's answer and what it stored into the tally.
fn tally(answers: &[(u64, Result<(), Code>)], stored: &HashMap<String, i64>, size: i64) -> Tally {
    let mut t = Tally::default();
    for (i, answer) in answers {
        let n = stored.get(&i.to_string()).copied().unwrap_or(0);
        match answer {
            Ok(()) if n == size => t.acknowledged_and_stored += 1,
            Err(Code::DeadlineExceeded) if n == 0 => t.expired_and_not_stored += 1,
            Err(Code::Cancelled) if n == 0 || n == size => t.client_gave_up.push((*i, n)),
            other => t.wrong.push(format!("call {i} ({:?}): {other:?} with {n} of {size} stored", deadline(*i))),
        }
    }
    t
}

#[tokio::test]
async fn a_batch_whose_deadline_passed_before_commit_is_not_stored() {
    let s = suite().await;
    let mut journey = s.journey_client().await;
    const SIZE: i64 = 10;
    // Half known customers, half new ones the profile service creates.
    let batch = |i: u64| pb::IngestTouchpointsRequest {
        touchpoints: (0..SIZE)
            .map(|k| {
                let who = if k % 2 == 0 { format!("known{k}@example.com") } else { format!("new{i}-{k}@example.com") };
                touchpoint(&format!("dl-{i}-{k}"), email(&who), Channel::Web, Initiator::Pull, 1)
            })
            .collect(),
        all_or_nothing: true,
    };
    let mut answers = Vec::new();
    for i in 0..CALLS {
        let mut request = authed(batch(i), &s.writer);
        request.set_timeout(deadline(i));
        let answer = journey.ingest_touchpoints(request).await;
        if let Ok(reply) = &answer {
            assert_eq!(reply.get_ref().accepted as i64, SIZE);
        }
        answers.push((i, answer.map(|_| ()).map_err(|e| e.code())));
    }
    // Let the server finish whatever it still had in hand.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t = tally(&answers, &stored_per_call(&s, "dl").await, SIZE);
    eprintln!("batches: {t:?}");
    assert_eq!(t.wrong, Vec::<String>::new());
    assert_eq!(t.acknowledged_and_stored + t.expired_and_not_stored + t.client_gave_up.len() as u32, CALLS as u32);
    assert!(t.expired_and_not_stored + t.client_gave_up.len() as u32 > 0, "a 1 ms deadline cannot be met");
    for &(i, before) in &t.client_gave_up {
        let reply = journey.ingest_touchpoints(authed(batch(i), &s.writer)).await.unwrap().into_inner();
        assert_eq!((reply.accepted as i64, reply.duplicates as i64), (SIZE - before, before), "retry of call {i}");
    }
    let stored = stored_per_call(&s, "dl").await;
    for &(i, _) in &t.client_gave_up {
        assert_eq!(stored.get(&i.to_string()), Some(&SIZE), "call {i} after its retry");
    }
}

#[tokio::test]
async fn a_single_touchpoint_whose_deadline_passed_is_dropped_from_its_group() {
    let s = suite().await;
    let mut journey = s.journey_client().await;
    let single = |i: u64| pb::RecordTouchpointRequest {
        touchpoint: Some(touchpoint(
            &format!("du-{i}-0"),
            email("single@example.com"),
            Channel::Web,
            Initiator::Pull,
            1,
        )),
    };
    let mut answers = Vec::new();
    for i in 0..CALLS {
        let mut request = authed(single(i), &s.writer);
        request.set_timeout(deadline(i));
        let answer = journey.record_touchpoint(request).await;
        answers.push((i, answer.map(|_| ()).map_err(|e| e.code())));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t = tally(&answers, &stored_per_call(&s, "du").await, 1);
    eprintln!("single touchpoints: {t:?}");
    assert_eq!(t.wrong, Vec::<String>::new());
    assert_eq!(t.acknowledged_and_stored + t.expired_and_not_stored + t.client_gave_up.len() as u32, CALLS as u32);
    for &(i, before) in &t.client_gave_up {
        let reply = journey.record_touchpoint(authed(single(i), &s.writer)).await.unwrap().into_inner();
        assert_eq!(reply.duplicate, before == 1, "retry of call {i}");
    }
    let stored = stored_per_call(&s, "du").await;
    for &(i, _) in &t.client_gave_up {
        assert_eq!(stored.get(&i.to_string()), Some(&1), "call {i} after its retry");
    }
}
