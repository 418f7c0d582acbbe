//! Job leases (cx_runtime::lease): one holder at a time, renewals, release,
//! takeover when the holder stops renewing, and the runner that starts and
//! stops a job with its lease. On both backends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cx_runtime::lease::{Job, LeaseTable, Leases};
use cx_testkit::{Backend, ServiceDb, eventually_within};
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use tokio::sync::watch;

struct Migrator;
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(LeaseTable)]
    }
}

async fn database(backend: Backend) -> ServiceDb {
    let db = ServiceDb::open(backend, "leases").await;
    cx_runtime::store::migrate::<Migrator>(&db.conn, "leases").await.unwrap();
    db
}

async fn one_holder_at_a_time_until_its_lease_runs_out(backend: Backend) {
    let db = database(backend).await;
    let ttl = Duration::from_millis(1500);
    let a = Leases::new(db.conn.clone(), "replica-a", ttl);
    let b = Leases::new(db.conn.clone(), "replica-b", ttl);
    assert!(a.hold("sweep").await.unwrap(), "a free lease is taken");
    assert!(!b.hold("sweep").await.unwrap(), "a held lease is not");
    assert!(b.hold("snapshots").await.unwrap(), "another job's lease is its own");
    tokio::time::sleep(ttl / 2).await;
    assert!(a.hold("sweep").await.unwrap(), "the holder renews");
    tokio::time::sleep(ttl / 2 + Duration::from_millis(200)).await;
    // Past the first hold's end but within the renewal's.
    assert!(!b.hold("sweep").await.unwrap(), "a renewed lease is still held");
    // The holder stops renewing (it died): the lease runs out.
    tokio::time::sleep(ttl).await;
    assert!(b.hold("sweep").await.unwrap(), "a lease that ran out is taken over");
    assert!(!a.hold("sweep").await.unwrap(), "the old holder no longer has it");
    a.release("sweep").await.unwrap();
    assert!(!a.hold("sweep").await.unwrap(), "only the holder can release");
    b.release("sweep").await.unwrap();
    assert!(a.hold("sweep").await.unwrap(), "a released lease is free at once");
}

/// A job counting its rounds, one every 20 ms until stopped.
fn counting(rounds: Arc<AtomicUsize>) -> Job {
    Arc::new(move |mut stop: watch::Receiver<bool>| {
        let rounds = rounds.clone();
        Box::pin(async move {
            while !*stop.borrow() {
                rounds.fetch_add(1, Ordering::SeqCst);
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(20)) => {}
                    _ = stop.changed() => {}
                }
            }
        })
    })
}

async fn only_the_holder_runs_the_job_and_another_takes_over_when_it_stops(backend: Backend) {
    let db = database(backend).await;
    let ttl = Duration::from_secs(1);
    let rounds = [Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0))];
    let mut stops = Vec::new();
    let mut runners = Vec::new();
    for (i, count) in rounds.iter().enumerate() {
        let (stop, stopped) = watch::channel(false);
        let leases = Leases::new(db.conn.clone(), &format!("replica-{i}"), ttl);
        runners.push(tokio::spawn(leases.run("sweep", counting(count.clone()), stopped)));
        stops.push(stop);
    }
    let count = |i: usize| rounds[i].load(Ordering::SeqCst);
    let first = eventually_within(
        Duration::from_secs(10),
        "one replica runs the job",
        || std::future::ready((0..2).find(|&i| count(i) > 0)),
        Option::is_some,
    )
    .await
    .unwrap();
    let other = 1 - first;
    // Three lease lengths: the holder renews, the other never runs it.
    tokio::time::sleep(3 * ttl).await;
    assert_eq!(count(other), 0, "the replica without the lease never ran the job");
    assert!(count(first) > 20, "the holder kept running it ({} rounds)", count(first));

    // The holder stops: its job ends, its lease is released, the other
    // replica takes over at its next try (a third of a lease length).
    stops[first].send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), &mut runners[first]).await.expect("the runner stops").unwrap();
    let ran = count(first);
    eventually_within(
        Duration::from_secs(5),
        "the other replica takes the job over",
        || std::future::ready(count(other)),
        |n| *n > 0,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(count(first), ran, "a stopped runner runs no more rounds");
    stops[other].send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), &mut runners[other]).await.expect("the runner stops").unwrap();
}

/// A runner told to stop ends its job and gives the lease up at once, not
/// at its next renewal (2 s here): a shutdown is not held up by it.
async fn a_stopped_runner_ends_without_waiting_for_its_next_renewal(backend: Backend) {
    let db = database(backend).await;
    let leases = Leases::new(db.conn.clone(), "replica-a", Duration::from_secs(6));
    let rounds = Arc::new(AtomicUsize::new(0));
    let (stop, stopped) = watch::channel(false);
    let mut runner = tokio::spawn(leases.clone().run("sweep", counting(rounds.clone()), stopped));
    let running = || std::future::ready(rounds.load(Ordering::SeqCst));
    eventually_within(Duration::from_secs(5), "the job runs", running, |n| *n > 0).await;
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(1), &mut runner).await.expect("stopped within 1 s").unwrap();
    let other = Leases::new(db.conn.clone(), "replica-b", Duration::from_secs(6));
    assert!(other.hold("sweep").await.unwrap(), "the lease was given up");
}

cx_testkit::on_both_backends!(
    one_holder_at_a_time_until_its_lease_runs_out,
    only_the_holder_runs_the_job_and_another_takes_over_when_it_stops,
    a_stopped_runner_ends_without_waiting_for_its_next_renewal,
);
