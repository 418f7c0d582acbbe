//! Storing touchpoints set-based, and owing the profile service (and each
//! deployed service taking touchpoints), atomically with them, an outbox
//! row naming those stored (see `activity` and `offers`).
//!
//! PostgreSQL gets one `INSERT … SELECT FROM UNNEST(arrays)` per batch: one
//! array parameter per column whatever the batch size, so the statement
//! plans once and binds fast. Nullable columns travel as sentinels turned
//! back into NULL by `NULLIF` (the driver binds arrays without NULLs).
//! SQLite gets multi-row `VALUES` in chunks. Both skip ids already stored
//! (`ON CONFLICT DO NOTHING`) and return the ids stored now. On PostgreSQL
//! the outbox row is written by the same statement, so a batch with no
//! touchpoint on a map needs no transaction around it.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use cx_runtime::TenantId;
use cx_runtime::deadline::Deadline;
use cx_runtime::outbox::Pending;
use cx_runtime::store::pg_array;
use sea_orm::sea_query::ArrayType;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement, TransactionTrait, Value};
use uuid::Uuid;

use super::activity::{self, PER_MESSAGE, STORED_TOUCHPOINTS};
use super::offers::OFFERED_TOUCHPOINTS;
use super::rollup::{self, Change, MapFact};
use super::{JourneyStore, Result};
use crate::domain::map::Phase;
use crate::domain::rollup::Fact;
use crate::domain::touchpoint::Touchpoint;

const SQLITE_ROWS_PER_STATEMENT: usize = 500;

const COLUMNS: &str = "tenant_id, id, customer_id, channel, occurred_at, kind, initiator, phase, map_id, \
     map_version, step_key, instance_id, score, currency, amount_micros, device_id, attributes, recorded_at";

const INSERT_POSTGRES: &str = "INSERT INTO touchpoints (tenant_id, id, customer_id, channel, occurred_at, kind, \
     initiator, phase, map_id, map_version, step_key, instance_id, score, currency, amount_micros, device_id, \
     attributes, recorded_at) \
     SELECT $1, u.id, COALESCE(m.survivor_id, u.customer_id), u.channel, u.occurred_at, u.kind, u.initiator, u.phase, \
       NULLIF(u.map_id, '00000000-0000-0000-0000-000000000000'::uuid), NULLIF(u.map_version, 0), \
       NULLIF(u.step_key, ''), NULLIF(u.instance_id, ''), NULLIF(u.score, -1), NULLIF(u.currency, ''), \
       CASE WHEN u.currency = '' THEN NULL ELSE u.amount_micros END, NULLIF(u.device_id, ''), \
       NULLIF(u.attributes, '')::jsonb, $2 \
     FROM UNNEST($3::text[], $4::uuid[], $5::int2[], $6::timestamptz[], $7::int2[], $8::int2[], $9::int2[], \
       $10::uuid[], $11::int4[], $12::text[], $13::text[], $14::int2[], $15::text[], $16::int8[], $17::text[], \
       $18::text[]) AS u(id, customer_id, channel, occurred_at, kind, initiator, phase, map_id, map_version, \
       step_key, instance_id, score, currency, amount_micros, device_id, attributes) \
     LEFT JOIN gdpr_merges AS m ON m.tenant_id = $1 AND m.merged_id = u.customer_id \
     ON CONFLICT (tenant_id, id) DO NOTHING RETURNING id, customer_id";

/// A touchpoint with the profile it is recorded for.
#[derive(Clone, Debug)]
pub struct Resolved<'a> {
    pub customer: Uuid,
    pub touchpoint: &'a Touchpoint,
}

/// The stored phase: 0 when unknown.
fn phase_code(tp: &Touchpoint) -> i16 {
    tp.phase.map_or(0, Phase::code)
}

fn attributes_json(tp: &Touchpoint) -> Option<serde_json::Value> {
    (!tp.attributes.is_empty()).then(|| serde_json::to_value(&tp.attributes).unwrap_or_default())
}

/// The insert, and the outbox rows for profile naming what it stored (a
/// row per [`PER_MESSAGE`] touchpoints, ids from `$19`), in one statement.
static INGEST_POSTGRES: LazyLock<String> = LazyLock::new(|| ingest_postgres(""));

/// Parameters per destination offered: its ids, then [`Pending::values`].
const PARAMS_PER_OFFER: usize = 7;

/// [`INGEST_POSTGRES`] with a row more per chunk for each of `destinations`
/// offered the touchpoints, the same payload: destination `i`'s ids are
/// `$(26 + 7i)`, its message's parameters follow.
fn ingest_postgres_offered(destinations: usize) -> String {
    let offers: String = (0..destinations)
        .map(|i| {
            let ids = 26 + PARAMS_PER_OFFER * i;
            format!(
                ", offered{i} AS (SELECT (${ids}::uuid[])[chunk + 1] AS id, payload FROM named), offers{i} AS ({offer})",
                offer = Pending::insert_sql(&format!("offered{i}"), ids + 1)
            )
        })
        .collect();
    ingest_postgres(&offers)
}

fn ingest_postgres(more: &str) -> String {
    format!(
        "WITH stored AS ({INSERT_POSTGRES}), \
         numbered AS (SELECT (row_number() OVER () - 1) / {PER_MESSAGE} AS chunk, id FROM stored), \
         named AS (SELECT chunk, ($19::uuid[])[chunk + 1] AS id, \
           convert_to(json_agg(numbered.id)::text, 'UTF8') AS payload FROM numbered GROUP BY chunk), \
         queued AS ({queue}){more} \
         SELECT id, customer_id FROM stored",
        queue = Pending::insert_sql("named", 20)
    )
}

/// The message owed to `destination` beside `owed` to profile: the same
/// rows, created at the same instant (the touchpoints' `recorded_at`).
fn offer(owed: &Pending, destination: &str) -> Pending {
    Pending { destination: destination.to_owned(), kind: OFFERED_TOUCHPOINTS.as_str().to_owned(), ..owed.clone() }
}

impl JourneyStore {
    /// Stores `rows` (ids unique within the batch) and enqueues their
    /// customers' activity for the profile service, and their offer to each
    /// service of [`JourneyStore::offers`], at once. Returns the ids stored
    /// now; the others had been stored before.
    pub async fn ingest(&self, t: &TenantId, rows: &[Resolved<'_>]) -> Result<HashSet<String>> {
        if rows.is_empty() {
            return Ok(HashSet::new());
        }
        let backend = self.db().get_database_backend();
        let on_maps = rows.iter().any(|r| r.touchpoint.map.is_some());
        // A caller with a deadline gets a transaction, checked before its
        // commit: a batch its caller gave up on is rolled back.
        let deadline = Deadline::current();
        if let Some(deadline) = deadline {
            deadline.check()?;
        }
        // Ids stored now, with the profile each was stored for (the
        // survivor when the customer was merged away).
        let stored: HashMap<String, Uuid> = if backend == DbBackend::Postgres && !on_maps && deadline.is_none() {
            // One statement is atomic: no BEGIN and COMMIT round trips.
            insert_postgres(self.db(), t, rows, &self.offers).await?
        } else {
            let txn = self.db().begin().await?;
            let stored = if backend == DbBackend::Postgres {
                insert_postgres(&txn, t, rows, &self.offers).await?
            } else {
                let survivors = survivors(&txn, t, rows).await?;
                let owners: Vec<Uuid> =
                    rows.iter().map(|r| survivors.get(&r.customer).copied().unwrap_or(r.customer)).collect();
                // The rows' recorded_at is their messages' created_at.
                let pending = Pending::new(t, "profile", &STORED_TOUCHPOINTS);
                let stored = insert_sqlite(&txn, t, rows, &owners, pending.created_at).await?;
                let ids: Vec<&str> =
                    rows.iter().map(|r| r.touchpoint.id.as_str()).filter(|id| stored.contains_key(*id)).collect();
                let offered: Vec<Pending> = self.offers.iter().map(|d| offer(&pending, d)).collect();
                for chunk in ids.chunks(PER_MESSAGE) {
                    let payload = activity::payload(chunk.iter().copied());
                    for offered in &offered {
                        offered.clone().enqueue(&txn, payload.clone()).await?;
                    }
                    pending.clone().enqueue(&txn, payload).await?;
                }
                stored
            };
            let accepted: Vec<(Uuid, &Touchpoint)> =
                rows.iter().filter_map(|r| stored.get(&r.touchpoint.id).map(|owner| (*owner, r.touchpoint))).collect();
            // Last: the day's counter rows are shared by concurrent writers.
            rollup::apply(&txn, t, Change::Added, &facts(&accepted)).await?;
            Deadline::check_current()?;
            txn.commit().await?;
            stored
        };
        Ok(stored.into_keys().collect())
    }
}

impl JourneyStore {
    /// Those of `ids` that were erased: they take no new data. A query per
    /// 5,000 ids, well under SQLite's 32,766 parameters.
    pub async fn erased(&self, t: &TenantId, ids: &[Uuid]) -> Result<HashSet<Uuid>> {
        let mut erased = HashSet::new();
        for chunk in ids.chunks(5_000) {
            erased.extend(cx_runtime::gdpr::erased(self.db(), t, chunk).await?);
        }
        Ok(erased)
    }
}

/// Survivors of the batch's customers that were merged away.
async fn survivors(txn: &DatabaseTransaction, t: &TenantId, rows: &[Resolved<'_>]) -> Result<HashMap<Uuid, Uuid>> {
    let customers: Vec<Uuid> = rows.iter().map(|r| r.customer).collect::<HashSet<_>>().into_iter().collect();
    Ok(cx_runtime::gdpr::survivors(txn, t, &customers).await?)
}

async fn insert_postgres<C: ConnectionTrait>(
    conn: &C,
    t: &TenantId,
    rows: &[Resolved<'_>],
    offers: &[&'static str],
) -> Result<HashMap<String, Uuid>> {
    let n = rows.len();
    let mut cols: [Vec<Value>; 16] = Default::default();
    for col in &mut cols {
        col.reserve(n);
    }
    for r in rows {
        let tp = r.touchpoint;
        let (map_id, map_version) = tp.map.unwrap_or((Uuid::nil(), 0));
        let (currency, micros) = tp.purchase.clone().unwrap_or_default();
        let values: [Value; 16] = [
            tp.id.clone().into(),
            r.customer.into(),
            tp.channel.code().into(),
            tp.occurred_at.into(),
            tp.kind.code().into(),
            tp.initiator.code().into(),
            phase_code(tp).into(),
            map_id.into(),
            map_version.into(),
            tp.step_key.clone().unwrap_or_default().into(),
            tp.instance_id.clone().unwrap_or_default().into(),
            tp.score.unwrap_or(-1).into(),
            currency.into(),
            micros.into(),
            tp.device_id.clone().unwrap_or_default().into(),
            attributes_json(tp).map(|j| j.to_string()).unwrap_or_default().into(),
        ];
        for (col, value) in cols.iter_mut().zip(values) {
            col.push(value);
        }
    }
    let types = [
        ArrayType::String,
        ArrayType::Uuid,
        ArrayType::SmallInt,
        ArrayType::ChronoDateTimeUtc,
        ArrayType::SmallInt,
        ArrayType::SmallInt,
        ArrayType::SmallInt,
        ArrayType::Uuid,
        ArrayType::Int,
        ArrayType::String,
        ArrayType::String,
        ArrayType::SmallInt,
        ArrayType::String,
        ArrayType::BigInt,
        ArrayType::String,
        ArrayType::String,
    ];
    // The rows' recorded_at is their messages' created_at.
    let pending = Pending::new(t, "profile", &STORED_TOUCHPOINTS);
    let mut values: Vec<Value> = vec![t.to_string().into(), pending.created_at.into()];
    values.extend(types.into_iter().zip(cols).map(|(ty, col)| pg_array(ty, col)));
    let messages = || (0..n.div_ceil(PER_MESSAGE)).map(|_| Uuid::now_v7());
    values.push(pg_array(ArrayType::Uuid, messages()));
    let offered: Vec<Pending> = offers.iter().map(|d| offer(&pending, d)).collect();
    values.extend(pending.values());
    // Each destination's rows get ids of their own: an outbox id is unique.
    for offered in offered {
        values.push(pg_array(ArrayType::Uuid, messages()));
        values.extend(offered.values());
    }
    let sql = match offers.len() {
        0 => INGEST_POSTGRES.clone(),
        n => ingest_postgres_offered(n),
    };
    let statement = Statement::from_sql_and_values(DbBackend::Postgres, sql, values);
    let returned = conn.query_all_raw(statement).await?;
    returned.iter().map(|row| Ok((row.try_get::<String>("", "id")?, row.try_get::<Uuid>("", "customer_id")?))).collect()
}

async fn insert_sqlite(
    txn: &DatabaseTransaction,
    t: &TenantId,
    rows: &[Resolved<'_>],
    owners: &[Uuid],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<HashMap<String, Uuid>> {
    let mut stored = HashMap::with_capacity(rows.len());
    for (chunk, owners) in rows.chunks(SQLITE_ROWS_PER_STATEMENT).zip(owners.chunks(SQLITE_ROWS_PER_STATEMENT)) {
        let placeholders = vec![format!("({})", vec!["?"; 18].join(", ")); chunk.len()].join(", ");
        let sql = format!(
            "INSERT INTO touchpoints ({COLUMNS}) VALUES {placeholders} ON CONFLICT (tenant_id, id) DO NOTHING RETURNING id, customer_id"
        );
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 18);
        for (r, owner) in chunk.iter().zip(owners) {
            let tp = r.touchpoint;
            values.extend([
                t.to_string().into(),
                tp.id.clone().into(),
                (*owner).into(),
                tp.channel.code().into(),
                tp.occurred_at.into(),
                tp.kind.code().into(),
                tp.initiator.code().into(),
                phase_code(tp).into(),
                tp.map.map(|m| m.0).into(),
                tp.map.map(|m| m.1).into(),
                tp.step_key.clone().into(),
                tp.instance_id.clone().into(),
                tp.score.into(),
                tp.purchase.as_ref().map(|p| p.0.clone()).into(),
                tp.purchase.as_ref().map(|p| p.1).into(),
                tp.device_id.clone().into(),
                attributes_json(tp).into(),
                now.into(),
            ]);
        }
        let returned = txn.query_all_raw(Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)).await?;
        for row in returned {
            stored.insert(row.try_get::<String>("", "id")?, row.try_get::<Uuid>("", "customer_id")?);
        }
    }
    Ok(stored)
}

/// What the analytics roll-ups need of the stored touchpoints of maps.
fn facts(accepted: &[(Uuid, &Touchpoint)]) -> Vec<MapFact> {
    accepted
        .iter()
        .filter_map(|(owner, tp)| {
            Some(MapFact {
                map: tp.map?.0,
                instance: tp.instance_id.clone(),
                fact: Fact {
                    id: tp.id.clone(),
                    at: tp.occurred_at,
                    channel: tp.channel,
                    step: tp.step_key.clone(),
                    score: tp.score.map(i64::from),
                    customer: *owner,
                },
            })
        })
        .collect()
}
