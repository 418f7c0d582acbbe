//! Keeps the analytics roll-ups (domain::rollup) in step with the
//! touchpoints table, in the transaction that changes it.
//!
//! An instance is keyed by map, customer and client instance id: one
//! customer's run (docs/DOMAIN.md §5.3).
//!
//! For the instances a change touches: their rows in `journey_instances` are
//! created if missing and locked (in key order, so concurrent writers queue
//! instead of deadlocking), all their touchpoints are read (one probe of an
//! index per instance), each instance is
//! summarised without and with the change, and the difference of its
//! counters goes into `journey_rollups` with the touchpoints' own counters.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use cx_runtime::TenantId;
use cx_runtime::store::{one_of, pg_array, scoped, scoped_delete};
use sea_orm::sea_query::ArrayType;
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbBackend, QueryFilter, QueryResult, Statement, Value};
use uuid::Uuid;

use super::entity::journey_instance;
use super::{JourneyError, Result};
use crate::domain::channel::Channel;
use crate::domain::rollup::{self, Counters, Fact, Summary};
use cx_runtime::store::bulk::{self, Kind};

/// A map's touchpoint with its instance, as the roll-ups see it.
#[derive(Clone, Debug, PartialEq)]
pub struct MapFact {
    pub map: Uuid,
    pub instance: Option<String>,
    pub fact: Fact,
}

/// Whether the touchpoints were just inserted or are about to be deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Added,
    Removed,
}

/// An instance: map, customer, client instance id.
type Key = (Uuid, Uuid, String);

const FACT_COLUMNS: &str =
    "t.map_id, t.instance_id, t.id, t.occurred_at, t.channel, t.step_key, t.score, t.customer_id";
const SQLITE_KEYS_PER_STATEMENT: usize = 400;
/// Instances refreshed at a time when the roll-ups are rebuilt.
const REBUILD_PAGE: u64 = 5_000;

/// Applies the roll-up changes of `facts`, touchpoints of `t` just inserted
/// or about to be deleted.
pub async fn apply<C: ConnectionTrait>(conn: &C, t: &TenantId, change: Change, facts: &[MapFact]) -> Result<()> {
    if facts.is_empty() {
        return Ok(());
    }
    let sign = if change == Change::Added { 1 } else { -1 };
    let mut counters: BTreeMap<Uuid, Counters> = BTreeMap::new();
    for f in facts {
        f.fact.count(counters.entry(f.map).or_default(), sign);
    }
    let keys: BTreeSet<Key> =
        facts.iter().filter_map(|f| Some((f.map, f.fact.customer, f.instance.clone()?))).collect();
    let changed: HashSet<&str> = facts.iter().map(|f| f.fact.id.as_str()).collect();
    refresh(conn, t, &keys, change, Some(&changed), &mut counters).await?;
    write_counters(conn, t, &counters).await
}

/// Re-summarises the instances `keys` around a change of the touchpoints
/// `changed` (`None`: all of them are new and nobody else writes, as in a
/// rebuild), adding the counter differences.
async fn refresh<C: ConnectionTrait>(
    conn: &C,
    t: &TenantId,
    keys: &BTreeSet<Key>,
    kind: Change,
    changed: Option<&HashSet<&str>>,
    counters: &mut BTreeMap<Uuid, Counters>,
) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    // Creates the rows of new instances and locks every row until the
    // transaction ends, in key order, through the primary key: concurrent
    // writers of an instance queue here. (A separate SELECT … FOR UPDATE
    // once probed another index with stale statistics, for seconds.)
    // Without a change list nobody else writes (a rebuild): no locks needed.
    let tail = if changed.is_some() {
        "ON CONFLICT (tenant_id, map_id, customer_id, instance_id) DO UPDATE SET first_day = journey_instances.first_day"
    } else {
        "ON CONFLICT DO NOTHING"
    };
    let placeholders = keys.iter().map(|key| instance_row(t, key, None)).collect();
    bulk::insert(conn, "journey_instances", INSTANCE_COLUMNS, placeholders, tail).await?;
    let facts = read_facts(conn, t, keys).await?;
    let mut rows = Vec::new();
    let mut emptied: BTreeMap<(Uuid, Uuid), Vec<&str>> = BTreeMap::new();
    let mut step_sets: BTreeSet<(Uuid, BTreeSet<String>)> = BTreeSet::new();
    for key in keys {
        let all: Vec<&Fact> = facts.get(key).map(|f| f.iter().collect()).unwrap_or_default();
        let unchanged: Vec<&Fact> = match changed {
            Some(ids) => all.iter().copied().filter(|f| !ids.contains(f.id.as_str())).collect(),
            None => Vec::new(),
        };
        let (before, after) = match kind {
            Change::Added => (Summary::of(&unchanged), Summary::of(&all)),
            Change::Removed => (Summary::of(&all), Summary::of(&unchanged)),
        };
        rollup::change(counters.entry(key.0).or_default(), before.as_ref(), after.as_ref());
        if let Some(summary) = after.as_ref().filter(|s| !s.steps.is_empty()) {
            step_sets.insert((key.0, summary.steps.clone()));
        }
        match after {
            Some(summary) => rows.push(instance_row(t, key, Some(&summary))),
            None => emptied.entry((key.0, key.1)).or_default().push(key.2.as_str()),
        }
    }
    // Instances left without touchpoints (an erasure): one statement for all.
    if !emptied.is_empty() {
        let any = emptied.into_iter().fold(Condition::any(), |any, ((map, customer), instances)| {
            any.add(
                Condition::all()
                    .add(journey_instance::Column::MapId.eq(map))
                    .add(journey_instance::Column::CustomerId.eq(customer))
                    .add(journey_instance::Column::InstanceId.is_in(instances)),
            )
        });
        scoped_delete::<journey_instance::Entity>(t).filter(any).exec(conn).await?;
    }
    remember_step_sets(conn, t, &step_sets).await?;
    let tail = "ON CONFLICT (tenant_id, map_id, customer_id, instance_id) DO UPDATE SET \
         first_day = excluded.first_day, touchpoints = excluded.touchpoints, scored = excluded.scored, \
         peak = excluded.peak, last = excluded.last, remembered = excluded.remembered, mean = excluded.mean, \
         gap = excluded.gap";
    Ok(bulk::insert(conn, "journey_instances", INSTANCE_COLUMNS, rows, tail).await?)
}

/// Records which steps the step-set counters of `sets` (map, steps) stand
/// for, once per map and set.
async fn remember_step_sets<C: ConnectionTrait>(
    conn: &C,
    t: &TenantId,
    sets: &BTreeSet<(Uuid, BTreeSet<String>)>,
) -> Result<()> {
    const COLUMNS: &[(&str, Kind)] =
        &[("tenant_id", Kind::Text), ("map_id", Kind::Uuid), ("label", Kind::Text), ("steps", Kind::Text)];
    let rows = sets
        .iter()
        .map(|(map, steps)| {
            let keys = serde_json::to_string(steps).unwrap_or_default();
            vec![t.as_str().into(), (*map).into(), rollup::step_set_label(steps).into(), keys.into()]
        })
        .collect();
    Ok(bulk::insert(conn, "journey_step_sets", COLUMNS, rows, "ON CONFLICT DO NOTHING").await?)
}

/// The sets of steps the labels of `map`'s step-set counters stand for.
pub async fn step_sets<C: ConnectionTrait>(
    conn: &C,
    t: &TenantId,
    map: Uuid,
) -> Result<std::collections::HashMap<String, Vec<String>>> {
    let backend = conn.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "SELECT label, steps FROM journey_step_sets WHERE tenant_id = $1 AND map_id = $2",
        _ => "SELECT label, steps FROM journey_step_sets WHERE tenant_id = ? AND map_id = ?",
    };
    let rows =
        conn.query_all_raw(Statement::from_sql_and_values(backend, sql, [t.as_str().into(), map.into()])).await?;
    rows.iter()
        .map(|row| {
            let (label, steps): (String, String) = (row.try_get("", "label")?, row.try_get("", "steps")?);
            let steps = serde_json::from_str(&steps)
                .map_err(|e| JourneyError::Corrupt(format!("steps of step set {label}: {e}")))?;
            Ok((label, steps))
        })
        .collect()
}

const INSTANCE_COLUMNS: &[(&str, Kind)] = &[
    ("tenant_id", Kind::Text),
    ("map_id", Kind::Uuid),
    ("customer_id", Kind::Uuid),
    ("instance_id", Kind::Text),
    ("first_day", Kind::Int),
    ("touchpoints", Kind::BigInt),
    ("scored", Kind::BigInt),
    ("peak", Kind::Int),
    ("last", Kind::Int),
    ("remembered", Kind::Double),
    ("mean", Kind::Double),
    ("gap", Kind::Double),
];

/// An instance's row; without a summary, the empty placeholder a new
/// instance starts from (nothing counts it until it is filled).
fn instance_row(t: &TenantId, (map, customer, instance): &Key, summary: Option<&Summary>) -> Vec<Value> {
    let (day, touchpoints, scored) = summary.map_or((0, 0, 0), |s| (rollup::day(s.first_at), s.touchpoints, s.scored));
    let (peak, last, remembered) = summary.and_then(|s| s.peak_end).unwrap_or((0, 0, 0.0));
    let mean = summary.and_then(Summary::mean).unwrap_or(0.0);
    // Unscored instances sort last in the listing (which skips them anyway).
    let gap = summary.and_then(Summary::gap).unwrap_or(-1.0);
    let small = |v: i64| i32::try_from(v).unwrap_or_default();
    vec![
        t.as_str().into(),
        (*map).into(),
        (*customer).into(),
        instance.as_str().into(),
        day.into(),
        touchpoints.into(),
        scored.into(),
        small(peak).into(),
        small(last).into(),
        remembered.into(),
        mean.into(),
        gap.into(),
    ]
}

fn key_arrays(keys: &BTreeSet<Key>) -> [Value; 3] {
    [
        pg_array(ArrayType::Uuid, keys.iter().map(|k| k.0)),
        pg_array(ArrayType::Uuid, keys.iter().map(|k| k.1)),
        pg_array(ArrayType::String, keys.iter().map(|k| k.2.clone())),
    ]
}

/// A stored channel code as the domain's channel.
fn stored_channel(code: i16, touchpoint: &str) -> Result<Channel> {
    Channel::from_code(i32::from(code))
        .ok_or_else(|| JourneyError::Corrupt(format!("channel {code} of touchpoint '{touchpoint}'")))
}

fn fact_of(row: &QueryResult) -> Result<(Key, Fact)> {
    let id: String = row.try_get("", "id")?;
    let fact = Fact {
        channel: stored_channel(row.try_get("", "channel")?, &id)?,
        id,
        at: row.try_get("", "occurred_at")?,
        step: row.try_get("", "step_key")?,
        score: row.try_get::<Option<i16>>("", "score")?.map(i64::from),
        customer: row.try_get("", "customer_id")?,
    };
    Ok(((row.try_get("", "map_id")?, fact.customer, row.try_get("", "instance_id")?), fact))
}

/// Every touchpoint of the instances `keys`.
async fn read_facts<C: ConnectionTrait>(
    conn: &C,
    t: &TenantId,
    keys: &BTreeSet<Key>,
) -> Result<BTreeMap<Key, Vec<Fact>>> {
    let mut rows = Vec::new();
    if conn.get_database_backend() == DbBackend::Postgres {
        let [maps, customers, instances] = key_arrays(keys);
        // `OFFSET 0` keeps the lateral lookup apart from the join, so each key
        // is one probe of touchpoints_by_instance even when the table's
        // statistics lag behind a bulk load (they once chose to read the
        // tenant's every touchpoint).
        let sql = format!(
            "SELECT {FACT_COLUMNS} FROM UNNEST($2::uuid[], $3::uuid[], $4::text[]) AS k(map_id, customer_id, instance_id) \
             CROSS JOIN LATERAL (SELECT * FROM touchpoints AS t WHERE t.tenant_id = $1 AND t.map_id = k.map_id \
               AND t.instance_id = k.instance_id AND t.instance_id IS NOT NULL AND t.customer_id = k.customer_id \
               OFFSET 0) AS t"
        );
        let values = vec![t.as_str().into(), maps, customers, instances];
        rows = conn.query_all_raw(Statement::from_sql_and_values(DbBackend::Postgres, sql, values)).await?;
    } else {
        let keys: Vec<&Key> = keys.iter().collect();
        for chunk in keys.chunks(SQLITE_KEYS_PER_STATEMENT) {
            let sql = format!(
                "SELECT {FACT_COLUMNS} FROM touchpoints AS t WHERE t.tenant_id = ? AND t.instance_id IS NOT NULL \
                 AND (t.map_id, t.customer_id, t.instance_id) IN (VALUES {})",
                vec!["(?, ?, ?)"; chunk.len()].join(", ")
            );
            let mut values: Vec<Value> = vec![t.as_str().into()];
            for (map, customer, instance) in chunk {
                values.extend([Value::from(*map), Value::from(*customer), Value::from(instance.as_str())]);
            }
            rows.extend(conn.query_all_raw(Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)).await?);
        }
    }
    let mut facts: BTreeMap<Key, Vec<Fact>> = BTreeMap::new();
    for row in &rows {
        let (key, fact) = fact_of(row)?;
        facts.entry(key).or_default().push(fact);
    }
    Ok(facts)
}

/// Adds `counters` to the stored ones, in key order.
async fn write_counters<C: ConnectionTrait>(conn: &C, t: &TenantId, counters: &BTreeMap<Uuid, Counters>) -> Result<()> {
    let columns = &[
        ("tenant_id", Kind::Text),
        ("map_id", Kind::Uuid),
        ("day", Kind::Int),
        ("name", Kind::Text),
        ("label", Kind::Text),
        ("n", Kind::BigInt),
        ("x", Kind::Double),
    ];
    let mut rows = Vec::new();
    for (map, counters) in counters {
        for ((day, name, label), (n, x)) in counters.nonzero() {
            rows.push(vec![
                t.as_str().into(),
                (*map).into(),
                (*day).into(),
                (*name).into(),
                label.as_str().into(),
                (*n).into(),
                (*x).into(),
            ]);
        }
    }
    let tail = "ON CONFLICT (tenant_id, map_id, day, name, label) \
         DO UPDATE SET n = journey_rollups.n + excluded.n, x = journey_rollups.x + excluded.x";
    Ok(bulk::insert(conn, "journey_rollups", columns, rows, tail).await?)
}

/// The customers' touchpoints of maps, as the roll-ups see them.
pub async fn facts_of_customers<C: ConnectionTrait>(
    conn: &C,
    t: &TenantId,
    customers: &[Uuid],
) -> Result<Vec<MapFact>> {
    use super::entity::touchpoint;
    let rows = scoped::<touchpoint::Entity>(t)
        .filter(one_of(conn.get_database_backend(), touchpoint::Column::CustomerId, customers))
        .filter(touchpoint::Column::MapId.is_not_null())
        .all(conn)
        .await?;
    rows.into_iter()
        .filter_map(|tp| Some((tp.map_id?, tp)))
        .map(|(map, tp)| {
            Ok(MapFact {
                map,
                instance: tp.instance_id,
                fact: Fact {
                    channel: stored_channel(tp.channel, &tp.id)?,
                    id: tp.id,
                    at: tp.occurred_at,
                    step: tp.step_key,
                    score: tp.score.map(i64::from),
                    customer: tp.customer_id,
                },
            })
        })
        .collect()
}

/// Fills the roll-ups from the touchpoints already stored (the migration
/// that creates them): touchpoint counters grouped in SQL, then instances a
/// page at a time through the same code as ingest.
pub async fn rebuild<C: ConnectionTrait>(conn: &C) -> Result<()> {
    let backend = conn.get_database_backend();
    let day = cx_runtime::store::utc_day(backend, "occurred_at");
    let sql = format!(
        "SELECT tenant_id, map_id, {day} AS day, step_key, count(*) AS n, count(score) AS scored, \
           coalesce(sum(score), 0) AS score_sum, sum(CASE WHEN score <= 4 THEN 1 ELSE 0 END) AS disappointing, \
           sum(CASE WHEN score BETWEEN 5 AND 6 THEN 1 ELSE 0 END) AS neutral, \
           sum(CASE WHEN score >= 7 THEN 1 ELSE 0 END) AS delight \
         FROM touchpoints WHERE map_id IS NOT NULL GROUP BY tenant_id, map_id, {day}, step_key"
    );
    let mut by_tenant: BTreeMap<String, BTreeMap<Uuid, Counters>> = BTreeMap::new();
    for row in conn.query_all_raw(Statement::from_string(backend, sql)).await? {
        let tenant: String = row.try_get("", "tenant_id")?;
        let counters = by_tenant.entry(tenant).or_default().entry(row.try_get("", "map_id")?).or_default();
        let day: i32 = row.try_get("", "day")?;
        let step: Option<String> = row.try_get("", "step_key")?;
        let get = |column: &str| -> Result<i64> {
            // PostgreSQL sums bigints as numeric: read what comes.
            Ok(row.try_get::<i64>("", column).or_else(|_| row.try_get::<f64>("", column).map(|v| v as i64))?)
        };
        counters.add(day, rollup::TOUCHPOINTS, "", get("n")?, 0.0);
        if let Some(step) = step {
            for (name, column) in [
                (rollup::STEP_TOUCHPOINTS, "n"),
                (rollup::STEP_SCORED, "scored"),
                (rollup::STEP_SCORE_SUM, "score_sum"),
                (rollup::STEP_DISAPPOINTING, "disappointing"),
                (rollup::STEP_NEUTRAL, "neutral"),
                (rollup::STEP_DELIGHT, "delight"),
            ] {
                counters.add(day, name, &step, get(column)?, 0.0);
            }
        }
    }
    for (tenant, counters) in &by_tenant {
        let t = TenantId::parse(tenant).map_err(|e| super::JourneyError::Corrupt(format!("tenant {tenant}: {e}")))?;
        write_counters(conn, &t, counters).await?;
    }

    let mut after: Option<Page> = None;
    loop {
        let page = instance_page(conn, after.as_ref()).await?;
        let Some(last) = page.last().cloned() else { break };
        let mut by_tenant: BTreeMap<&str, BTreeSet<Key>> = BTreeMap::new();
        for (tenant, map, customer, instance) in &page {
            by_tenant.entry(tenant.as_str()).or_default().insert((*map, *customer, instance.clone()));
        }
        for (tenant, keys) in by_tenant {
            let t =
                TenantId::parse(tenant).map_err(|e| super::JourneyError::Corrupt(format!("tenant {tenant}: {e}")))?;
            let mut counters = BTreeMap::new();
            refresh(conn, &t, &keys, Change::Added, None, &mut counters).await?;
            write_counters(conn, &t, &counters).await?;
        }
        after = Some(last);
    }
    Ok(())
}

/// A tenant's instance, in the order a rebuild goes through them.
type Page = (String, Uuid, Uuid, String);

/// The next instances in key order, after `after`.
async fn instance_page<C: ConnectionTrait>(conn: &C, after: Option<&Page>) -> Result<Vec<Page>> {
    let backend = conn.get_database_backend();
    let p = |n: usize| if backend == DbBackend::Postgres { format!("${n}") } else { "?".to_owned() };
    let (condition, mut values): (String, Vec<Value>) = match after {
        Some((tenant, map, customer, instance)) => (
            format!("AND (tenant_id, map_id, customer_id, instance_id) > ({}, {}, {}, {})", p(1), p(2), p(3), p(4)),
            vec![tenant.as_str().into(), (*map).into(), (*customer).into(), instance.as_str().into()],
        ),
        None => (String::new(), Vec::new()),
    };
    let limit = p(values.len() + 1);
    values.push(i64::try_from(REBUILD_PAGE).unwrap_or(i64::MAX).into());
    let sql = format!(
        "SELECT DISTINCT tenant_id, map_id, customer_id, instance_id FROM touchpoints \
         WHERE map_id IS NOT NULL AND instance_id IS NOT NULL {condition} \
         ORDER BY tenant_id, map_id, customer_id, instance_id LIMIT {limit}"
    );
    let rows = conn.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    let page = |row: &QueryResult| -> Result<Page> {
        let customer = row.try_get("", "customer_id")?;
        Ok((row.try_get("", "tenant_id")?, row.try_get("", "map_id")?, customer, row.try_get("", "instance_id")?))
    };
    rows.iter().map(page).collect()
}
