//! The roll-ups kept at ingest against a full scan of the touchpoints: the
//! same analysis whatever the arrival order, replays, erasures, merges, or a
//! rebuild from scratch, on PostgreSQL and SQLite.
//!
//! The scan is the set of grouped and windowed queries analyses used before
//! roll-ups existed: an independent answer worked out by the database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Duration, Utc};
use cx_journey::domain::channel::Channel;
use cx_journey::domain::touchpoint::{Customer, Initiator, InteractionKind, Touchpoint};
use cx_journey::store::analytics::{Counts, InstanceScores};
use cx_journey::store::ingest::Resolved;
use cx_journey::store::migration::Migrator;
use cx_journey::store::{JourneyStore, peers};
use cx_runtime::TenantId;
use cx_runtime::store::Db;
use cx_testkit::{Backend, ServiceDb};
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
use uuid::Uuid;

const SCOPE: &str = "tenant_id = $1 AND map_id = $2";
const STEPS: &str = "SELECT step_key, count(*) AS touchpoints, count(DISTINCT instance_id) AS instances, \
     count(score) AS scored, coalesce(sum(score), 0) AS score_sum, \
     sum(CASE WHEN score <= 4 THEN 1 ELSE 0 END) AS disappointing, \
     sum(CASE WHEN score BETWEEN 5 AND 6 THEN 1 ELSE 0 END) AS neutral, \
     sum(CASE WHEN score >= 7 THEN 1 ELSE 0 END) AS delight \
     FROM touchpoints WHERE {SCOPE} AND step_key IS NOT NULL GROUP BY step_key ORDER BY step_key";
const TOTALS: &str = "SELECT count(*) AS touchpoints, count(DISTINCT instance_id) AS instances \
     FROM touchpoints WHERE {SCOPE}";
const CONTINUITY: &str = "SELECT coalesce(sum(CASE WHEN n >= 2 THEN 1 ELSE 0 END), 0) AS multi, \
     coalesce(sum(CASE WHEN n >= 2 AND channels >= 2 THEN 1 ELSE 0 END), 0) AS crossed \
     FROM (SELECT instance_id, count(*) AS n, count(DISTINCT channel) AS channels \
       FROM touchpoints WHERE {SCOPE} AND instance_id IS NOT NULL GROUP BY instance_id) AS i";
const SWITCHES: &str = "SELECT previous AS from_channel, channel AS to_channel, count(*) AS n \
     FROM (SELECT channel, LAG(channel) OVER (PARTITION BY instance_id ORDER BY occurred_at, id) AS previous \
       FROM touchpoints WHERE {SCOPE} AND instance_id IS NOT NULL) AS s \
     WHERE previous IS NOT NULL AND previous <> channel \
     GROUP BY previous, channel ORDER BY n DESC, previous, channel";
const PEAK_END: &str = "WITH scored AS (\
       SELECT instance_id, customer_id, score, \
         ROW_NUMBER() OVER (PARTITION BY instance_id ORDER BY abs(score - 5) DESC, occurred_at DESC, id DESC) AS peak_rank, \
         ROW_NUMBER() OVER (PARTITION BY instance_id ORDER BY occurred_at DESC, id DESC) AS end_rank, \
         count(*) OVER (PARTITION BY instance_id) AS n, \
         sum(score) OVER (PARTITION BY instance_id) AS total \
       FROM touchpoints WHERE {SCOPE} AND instance_id IS NOT NULL AND score IS NOT NULL) \
     SELECT e.instance_id, e.customer_id, CAST(p.score AS BIGINT) AS peak, CAST(e.score AS BIGINT) AS last, e.n, \
       CAST(p.score + e.score AS DOUBLE PRECISION) / 2 AS remembered, \
       CAST(e.total AS DOUBLE PRECISION) / e.n AS mean \
     FROM scored AS e JOIN scored AS p ON p.instance_id = e.instance_id AND p.peak_rank = 1 \
     WHERE e.end_rank = 1";

const REACHED: &str = "SELECT DISTINCT instance_id, step_key FROM touchpoints \
     WHERE {SCOPE} AND instance_id IS NOT NULL AND step_key IS NOT NULL";

/// The analysis by scanning every touchpoint of the map.
async fn scan(db: &Db, t: &TenantId, map: Uuid) -> Counts {
    let backend = db.get_database_backend();
    let run = |sql: &str| {
        let sql = sql.replace("{SCOPE}", SCOPE);
        let sql = if backend == DbBackend::Postgres { sql } else { sql.replace('$', "?") };
        Statement::from_sql_and_values(backend, sql, [t.as_str().into(), map.into()])
    };
    let int = |row: &sea_orm::QueryResult, c: &str| row.try_get::<i64>("", c).unwrap();
    let mut counts = Counts::default();
    let totals = db.query_one_raw(run(TOTALS)).await.unwrap().unwrap();
    counts.touchpoints = int(&totals, "touchpoints");
    counts.instances = int(&totals, "instances");
    for row in db.query_all_raw(run(STEPS)).await.unwrap() {
        let step = cx_journey::domain::analysis::StepInput {
            touchpoints: int(&row, "touchpoints"),
            instances: int(&row, "instances"),
            scored: int(&row, "scored"),
            score_sum: int(&row, "score_sum"),
            disappointing: int(&row, "disappointing"),
            neutral: int(&row, "neutral"),
            delight: int(&row, "delight"),
        };
        counts.steps.push((row.try_get("", "step_key").unwrap(), step));
    }
    let continuity = db.query_one_raw(run(CONTINUITY)).await.unwrap().unwrap();
    counts.multi_touch = int(&continuity, "multi");
    counts.cross_channel = int(&continuity, "crossed");
    for row in db.query_all_raw(run(SWITCHES)).await.unwrap() {
        counts.switches.push((
            row.try_get("", "from_channel").unwrap(),
            row.try_get("", "to_channel").unwrap(),
            int(&row, "n"),
        ));
    }
    let mut listed = Vec::new();
    for row in db.query_all_raw(run(PEAK_END)).await.unwrap() {
        listed.push(InstanceScores {
            instance_id: row.try_get("", "instance_id").unwrap(),
            customer: row.try_get("", "customer_id").unwrap(),
            scored: int(&row, "n"),
            peak: int(&row, "peak"),
            end: int(&row, "last"),
            remembered: row.try_get("", "remembered").unwrap(),
            mean: row.try_get("", "mean").unwrap(),
        });
    }
    counts.scored_instances = i64::try_from(listed.len()).unwrap();
    counts.remembered_sum = listed.iter().map(|i| i.remembered).sum();
    counts.mean_sum = listed.iter().map(|i| i.mean).sum();
    counts.diverging = i64::try_from(listed.iter().filter(|i| (i.remembered - i.mean).abs() >= 2.0).count()).unwrap();
    listed.sort_by(|a, b| {
        (b.remembered - b.mean).abs().total_cmp(&(a.remembered - a.mean).abs()).then(a.instance_id.cmp(&b.instance_id))
    });
    counts.listed = listed;
    // The steps each instance reached (instance ids are each one customer's here).
    let mut reached: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> = Default::default();
    for row in db.query_all_raw(run(REACHED)).await.unwrap() {
        let instance: String = row.try_get("", "instance_id").unwrap();
        reached.entry(instance).or_default().insert(row.try_get("", "step_key").unwrap());
    }
    for steps in reached.into_values() {
        *counts.step_sets.entry(steps.into_iter().collect()).or_default() += 1;
    }
    counts
}

/// Equal up to the last bits of the floating sums.
fn assert_same(rolled: &Counts, scanned: &Counts, when: &str) {
    let mut rolled = rolled.clone();
    rolled.steps.sort_by(|a, b| a.0.cmp(&b.0));
    assert!((rolled.remembered_sum - scanned.remembered_sum).abs() < 1e-6, "{when}: remembered sums");
    assert!((rolled.mean_sum - scanned.mean_sum).abs() < 1e-6, "{when}: mean sums");
    rolled.remembered_sum = scanned.remembered_sum;
    rolled.mean_sum = scanned.mean_sum;
    let near = |a: &InstanceScores, b: &InstanceScores| {
        (a.instance_id.as_str(), a.customer, a.scored, a.peak, a.end)
            == (b.instance_id.as_str(), b.customer, b.scored, b.peak, b.end)
            && (a.remembered - b.remembered).abs() < 1e-9
            && (a.mean - b.mean).abs() < 1e-9
    };
    assert_eq!(rolled.listed.len(), scanned.listed.len(), "{when}: listed instances");
    for (a, b) in rolled.listed.iter().zip(&scanned.listed) {
        assert!(near(a, b), "{when}: {a:?} vs {b:?}");
    }
    rolled.listed = scanned.listed.clone();
    assert_eq!(&rolled, scanned, "{when}");
}

/// A small deterministic generator (64-bit LCG): the same data every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

const STEP_KEYS: [&str; 5] = ["discover", "compare", "order", "delivery", "after_sales"];
const CHANNELS: [i16; 4] = [1, 2, 9, 10];

/// 40 instances of 1 to 8 touchpoints over 20 days, a third unscored, plus
/// touchpoints of the map outside any instance and some of no map at all.
fn touchpoints(map: Uuid, customers: &[Uuid]) -> Vec<(Uuid, Touchpoint)> {
    let mut rng = Lcg(42);
    let base: DateTime<Utc> = "2026-03-01T00:00:00Z".parse().unwrap();
    let mut out = Vec::new();
    for i in 0..40 {
        let customer = customers[i % customers.len()];
        let start = base + Duration::hours(i64::try_from(rng.next(20 * 24)).unwrap());
        for j in 0..=rng.next(8) {
            let at = start + Duration::minutes(i64::try_from(rng.next(3 * 24 * 60)).unwrap());
            let score = (rng.next(3) > 0).then(|| i16::try_from(rng.next(11)).unwrap());
            out.push((
                customer,
                tp(
                    &format!("i{i}-{j}"),
                    Some(map),
                    Some(STEP_KEYS[usize::try_from(rng.next(5)).unwrap()]),
                    Some(format!("i{i}")),
                    CHANNELS[usize::try_from(rng.next(4)).unwrap()],
                    at,
                    score,
                ),
            ));
        }
    }
    for k in 0..15 {
        let at = base + Duration::hours(i64::try_from(rng.next(20 * 24)).unwrap());
        let step = (k % 2 == 0).then_some(STEP_KEYS[k % 5]);
        out.push((customers[k % customers.len()], tp(&format!("loose-{k}"), Some(map), step, None, 1, at, Some(7))));
        out.push((customers[k % customers.len()], tp(&format!("nomap-{k}"), None, None, None, 2, at, None)));
    }
    out
}

fn tp(
    id: &str,
    map: Option<Uuid>,
    step: Option<&str>,
    instance: Option<String>,
    channel: i16,
    at: DateTime<Utc>,
    score: Option<i16>,
) -> Touchpoint {
    Touchpoint {
        id: id.into(),
        customer: Customer::Profile(Uuid::nil()),
        channel: Channel::from_code(i32::from(channel)).unwrap(),
        digital: channel <= 8,
        occurred_at: at,
        kind: InteractionKind::Informative,
        initiator: Initiator::Pull,
        phase: None,
        map: map.map(|m| (m, 1)),
        step_key: step.map(Into::into),
        instance_id: instance,
        score,
        purchase: None,
        device_id: None,
        attributes: Default::default(),
    }
}

async fn check(db: Db) {
    cx_runtime::store::migrate::<Migrator>(&db, "journey").await.unwrap();
    let store = JourneyStore::new(db.clone());
    let t = TenantId::parse("rollups").unwrap();
    let map = Uuid::from_u128(0xA11);
    let customers = [Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3)];
    let mut all = touchpoints(map, &customers);
    // Shuffled into batches of 37, with every tenth touchpoint sent twice.
    let mut rng = Lcg(7);
    for i in (1..all.len()).rev() {
        all.swap(i, usize::try_from(rng.next(u64::try_from(i + 1).unwrap())).unwrap());
    }
    let replays: Vec<_> = all.iter().step_by(10).cloned().collect();
    for batch in all.chunks(37).chain(replays.chunks(37)) {
        let rows: Vec<Resolved<'_>> = batch.iter().map(|(c, tp)| Resolved { customer: *c, touchpoint: tp }).collect();
        store.ingest(&t, &rows).await.unwrap();
    }
    let (since, until) = (DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC);
    let analyse = || store.analyze(&t, map, since, until, 1_000);
    let scanned = scan(&db, &t, map).await;
    // 40 instances plus 15 loose touchpoints, 8 of them on a step.
    assert_eq!(scanned.instances, 40);
    assert_eq!(scanned.touchpoints, i64::try_from(all.len()).unwrap() - 15);
    assert_same(&analyse().await.unwrap(), &scanned, "after ingest");

    // Customer 2 merges into 1: the listing follows; the counts do not move.
    let txn = db.begin().await.unwrap();
    peers::merge(&txn, &t, customers[0], customers[1]).await.unwrap();
    txn.commit().await.unwrap();
    assert_same(&analyse().await.unwrap(), &scan(&db, &t, map).await, "after a merge");

    // Customer 3 is erased: its touchpoints and instances leave the counts.
    let txn = db.begin().await.unwrap();
    peers::erase(&txn, &t, &[customers[2]]).await.unwrap();
    txn.commit().await.unwrap();
    let scanned = scan(&db, &t, map).await;
    assert!(scanned.instances < 40);
    let after_erasure = analyse().await.unwrap();
    assert_same(&after_erasure, &scanned, "after an erasure");

    // Rebuilt from the touchpoints alone, as the migration does.
    for table in ["journey_rollups", "journey_instances"] {
        db.execute_unprepared(&format!("DELETE FROM {table}")).await.unwrap();
    }
    assert_eq!(analyse().await.unwrap().touchpoints, 0);
    cx_journey::store::rollup::rebuild(&db).await.unwrap();
    assert_same(&analyse().await.unwrap(), &scanned, "after a rebuild");
}

async fn roll_ups_agree_with_a_full_scan(backend: Backend) {
    let db = ServiceDb::open(backend, "journey").await;
    check(db.conn.clone()).await;
}

cx_testkit::on_both_backends!(roll_ups_agree_with_a_full_scan, a_range_reads_whole_days_and_instances_by_their_start);

/// Eight writers at once over the same instances: they queue on the
/// instances' rows instead of deadlocking, and nothing is counted twice.
#[tokio::test]
async fn concurrent_writers_keep_roll_ups_exact_on_postgres() {
    let service = ServiceDb::open(Backend::Postgres, "journey").await;
    let db = service.conn.clone();
    cx_runtime::store::migrate::<Migrator>(&db, "journey").await.unwrap();
    let store = JourneyStore::new(db.clone());
    let t = TenantId::parse("rollups").unwrap();
    let map = Uuid::from_u128(0xB22);
    let all = touchpoints(map, &[Uuid::from_u128(1), Uuid::from_u128(2)]);
    // Writer w takes every eighth touchpoint from w: each instance is spread over writers.
    let writers = (0..8).map(|w| {
        let (store, t) = (store.clone(), t.clone());
        let mine: Vec<(Uuid, Touchpoint)> = all.iter().skip(w).step_by(8).cloned().collect();
        async move {
            for batch in mine.chunks(5) {
                let rows: Vec<Resolved<'_>> =
                    batch.iter().map(|(c, tp)| Resolved { customer: *c, touchpoint: tp }).collect();
                store.ingest(&t, &rows).await.unwrap();
            }
        }
    });
    futures::future::join_all(writers).await;
    let scanned = scan(&db, &t, map).await;
    assert_eq!(scanned.instances, 40);
    assert_same(
        &store.analyze(&t, map, DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC, 1_000).await.unwrap(),
        &scanned,
        "after concurrent writers",
    );
}

/// A range covers whole UTC days: touchpoints count on their day, instances
/// on the day of their first touchpoint.
async fn a_range_reads_whole_days_and_instances_by_their_start(backend: Backend) {
    let db = ServiceDb::open(backend, "journey").await;
    ranges(db.conn.clone()).await;
}

async fn ranges(db: Db) {
    cx_runtime::store::migrate::<Migrator>(&db, "journey").await.unwrap();
    let store = JourneyStore::new(db.clone());
    let t = TenantId::parse("ranges").unwrap();
    let map = Uuid::from_u128(0xC33);
    let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
    let c = Uuid::from_u128(9);
    // A: 1 March (web) then 3 March (store); B: 3 March only.
    let a1 = tp("a1", Some(map), Some("discover"), Some("A".into()), 1, at("2026-03-01T09:00:00Z"), Some(8));
    let a2 = tp("a2", Some(map), Some("order"), Some("A".into()), 9, at("2026-03-03T09:00:00Z"), Some(4));
    let b1 = tp("b1", Some(map), Some("discover"), Some("B".into()), 1, at("2026-03-03T18:00:00Z"), None);
    let rows: Vec<Resolved<'_>> =
        [&a1, &a2, &b1].into_iter().map(|tp| Resolved { customer: c, touchpoint: tp }).collect();
    store.ingest(&t, &rows).await.unwrap();

    // 2 March 12:00 to 4 March 00:00 reads 2 and 3 March: touchpoints a2 and
    // b1; one instance started (B); A's switch web → store belongs to 1 March.
    let counts = store.analyze(&t, map, at("2026-03-02T12:00:00Z"), at("2026-03-04T00:00:00Z"), 10).await.unwrap();
    assert_eq!((counts.touchpoints, counts.instances, counts.multi_touch), (2, 1, 0));
    assert_eq!(counts.switches, vec![]);
    let steps: Vec<_> = counts.steps.iter().map(|(k, s)| (k.as_str(), s.touchpoints, s.instances, s.scored)).collect();
    assert_eq!(steps, [("discover", 1, 1, 0), ("order", 1, 0, 1)]);
    assert_eq!(counts.listed, vec![], "B has no score");
    // 1 March alone: a1, and A with both its touchpoints (8 then 4: peak 8, end 4 → 6; mean 6).
    // The same days from a rebuild: the database's own day arithmetic
    // (not Rust's) places the touchpoints then.
    let ranged = counts.clone();
    for table in ["journey_rollups", "journey_instances"] {
        db.execute_unprepared(&format!("DELETE FROM {table}")).await.unwrap();
    }
    cx_journey::store::rollup::rebuild(&db).await.unwrap();
    let rebuilt = store.analyze(&t, map, at("2026-03-02T12:00:00Z"), at("2026-03-04T00:00:00Z"), 10).await.unwrap();
    assert_eq!(rebuilt, ranged);
    let first = store.analyze(&t, map, at("2026-03-01T00:00:00Z"), at("2026-03-01T23:00:00Z"), 10).await.unwrap();
    assert_eq!((first.touchpoints, first.instances, first.multi_touch, first.cross_channel), (1, 1, 1, 1));
    assert_eq!(first.switches, vec![(1, 9, 1)]);
    assert_eq!(
        first.listed.iter().map(|i| (i.instance_id.as_str(), i.peak, i.end, i.remembered, i.mean)).collect::<Vec<_>>(),
        [("A", 8, 4, 6.0, 6.0)]
    );
}
