//! Storing touchpoints set-based, and telling the profile service in the
//! same transaction (outbox) what its customers did.
//!
//! PostgreSQL gets one `INSERT … SELECT FROM UNNEST(arrays)` per batch: one
//! array parameter per column whatever the batch size, so the statement
//! plans once and binds fast. Nullable columns travel as sentinels turned
//! back into NULL by `NULLIF` (the driver binds arrays without NULLs).
//! SQLite gets multi-row `VALUES` in chunks. Both skip ids already stored
//! (`ON CONFLICT DO NOTHING`) and return the ids stored now.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use cx_proto::profile::v1 as profile;
use cx_runtime::TenantId;
use cx_runtime::store::{one_of, pg_array, scoped};
use prost::{Message, Name};
use sea_orm::sea_query::ArrayType;
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, QueryFilter, QuerySelect, Statement, TransactionTrait, Value,
};
use uuid::Uuid;

use super::entity::profile_merge;
use super::rollup::{self, Change, MapFact};
use super::{JourneyStore, Result};
use crate::domain::rollup::Fact;
use crate::domain::touchpoint::Touchpoint;

/// The profile service accepts this many activity records per message.
const ACTIVITY_RECORDS_PER_MESSAGE: usize = 10_000;
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
     LEFT JOIN profile_merges AS m ON m.tenant_id = $1 AND m.merged_id = u.customer_id \
     ON CONFLICT (tenant_id, id) DO NOTHING RETURNING id, customer_id";

/// A touchpoint with the profile it is recorded for.
#[derive(Clone, Debug)]
pub struct Resolved<'a> {
    pub customer: Uuid,
    pub touchpoint: &'a Touchpoint,
}

fn attributes_json(tp: &Touchpoint) -> Option<serde_json::Value> {
    (!tp.attributes.is_empty()).then(|| serde_json::to_value(&tp.attributes).unwrap_or_default())
}

impl JourneyStore {
    /// Stores `rows` (ids unique within the batch) and enqueues their
    /// customers' activity for the profile service, in one transaction.
    /// Returns the ids stored now; the others had been stored before.
    pub async fn ingest(&self, t: &TenantId, rows: &[Resolved<'_>]) -> Result<HashSet<String>> {
        if rows.is_empty() {
            return Ok(HashSet::new());
        }
        let txn = self.db().begin().await?;
        // Ids stored now, with the profile each was stored for (the
        // survivor when the customer was merged away).
        let stored: HashMap<String, Uuid> = match txn.get_database_backend() {
            // The merge lookup is a join inside the insert: one round trip.
            DbBackend::Postgres => insert_postgres(&txn, t, rows).await?,
            _ => {
                let survivors = survivors(&txn, t, rows).await?;
                let owners: Vec<Uuid> =
                    rows.iter().map(|r| survivors.get(&r.customer).copied().unwrap_or(r.customer)).collect();
                insert_sqlite(&txn, t, rows, &owners).await?
            }
        };
        let accepted: Vec<(Uuid, &Touchpoint)> =
            rows.iter().filter_map(|r| stored.get(&r.touchpoint.id).map(|owner| (*owner, r.touchpoint))).collect();
        for records in activity(&accepted).chunks(ACTIVITY_RECORDS_PER_MESSAGE) {
            let batch_id = Uuid::now_v7().to_string();
            let message = profile::RecordActivityRequest { batch_id, records: records.to_vec() };
            cx_runtime::outbox::enqueue(
                &txn,
                t,
                "profile",
                &profile::RecordActivityRequest::full_name(),
                message.encode_to_vec(),
            )
            .await?;
        }
        // Last: the day's counter rows are shared by concurrent writers.
        rollup::apply(&txn, t, Change::Added, &facts(&accepted)).await?;
        txn.commit().await?;
        Ok(stored.into_keys().collect())
    }
}

/// Survivors of the batch's customers that were merged away.
async fn survivors(txn: &DatabaseTransaction, t: &TenantId, rows: &[Resolved<'_>]) -> Result<HashMap<Uuid, Uuid>> {
    let customers: Vec<Uuid> = rows.iter().map(|r| r.customer).collect::<HashSet<_>>().into_iter().collect();
    let pairs: Vec<(Uuid, Uuid)> = scoped::<profile_merge::Entity>(t)
        .filter(one_of(txn.get_database_backend(), profile_merge::Column::MergedId, &customers))
        .select_only()
        .column(profile_merge::Column::MergedId)
        .column(profile_merge::Column::SurvivorId)
        .into_tuple()
        .all(txn)
        .await?;
    Ok(pairs.into_iter().collect())
}

async fn insert_postgres(
    txn: &DatabaseTransaction,
    t: &TenantId,
    rows: &[Resolved<'_>],
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
            tp.channel.into(),
            tp.occurred_at.into(),
            tp.kind.into(),
            tp.initiator.into(),
            tp.phase.into(),
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
    let mut values: Vec<Value> = vec![t.to_string().into(), cx_runtime::store::now().into()];
    values.extend(types.into_iter().zip(cols).map(|(ty, col)| pg_array(ty, col)));
    let statement = Statement::from_sql_and_values(DbBackend::Postgres, INSERT_POSTGRES, values);
    let returned = txn.query_all_raw(statement).await?;
    returned.iter().map(|row| Ok((row.try_get::<String>("", "id")?, row.try_get::<Uuid>("", "customer_id")?))).collect()
}

async fn insert_sqlite(
    txn: &DatabaseTransaction,
    t: &TenantId,
    rows: &[Resolved<'_>],
    owners: &[Uuid],
) -> Result<HashMap<String, Uuid>> {
    let now = cx_runtime::store::now();
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
                tp.channel.into(),
                tp.occurred_at.into(),
                tp.kind.into(),
                tp.initiator.into(),
                tp.phase.into(),
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

/// The customers' activity, one record per customer, UTC day, channel,
/// initiator, kind, device and currency (DESIGN §2: journey → profile).
fn activity(accepted: &[(Uuid, &Touchpoint)]) -> Vec<profile::ActivityRecord> {
    type Key<'a> = (Uuid, chrono::NaiveDate, i16, i16, i16, &'a str, &'a str);
    let mut groups: BTreeMap<Key<'_>, (i64, i64, i64, DateTime<Utc>)> = BTreeMap::new();
    for (customer, tp) in accepted {
        let (currency, micros) = tp.purchase.as_ref().map_or(("", 0), |(c, m)| (c.as_str(), *m));
        let key = (
            *customer,
            tp.occurred_at.date_naive(),
            tp.channel,
            tp.initiator,
            tp.kind,
            tp.device_id.as_deref().unwrap_or(""),
            currency,
        );
        let group = groups.entry(key).or_insert((0, 0, 0, tp.occurred_at));
        group.0 += 1;
        if tp.purchase.is_some() {
            group.1 += 1;
            group.2 += micros;
        }
        group.3 = group.3.max(tp.occurred_at);
    }
    groups
        .into_iter()
        .map(|((customer, _, channel, initiator, kind, device, currency), (n, purchases, micros, last))| {
            profile::ActivityRecord {
                profile_id: customer.to_string(),
                occur_time: Some(cx_proto::timestamp(last)),
                channel: i32::from(channel),
                initiator: i32::from(initiator),
                kind: i32::from(kind),
                touchpoints: n,
                purchases,
                purchase_amount: (!currency.is_empty()).then(|| cx_proto::money(currency, micros)),
                device_id: device.to_owned(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::touchpoint::Customer;

    fn tp(id: &str, channel: i16, at: &str, purchase: Option<i64>) -> Touchpoint {
        Touchpoint {
            id: id.into(),
            customer: Customer::Profile(Uuid::nil()),
            channel,
            digital: true,
            occurred_at: at.parse().unwrap(),
            kind: if purchase.is_some() { 2 } else { 1 },
            initiator: 2,
            phase: 0,
            map: None,
            step_key: None,
            instance_id: None,
            score: None,
            purchase: purchase.map(|m| ("EUR".to_owned(), m)),
            device_id: None,
            attributes: Default::default(),
        }
    }

    #[test]
    fn activity_groups_by_day_channel_and_kind_and_sums_purchases() {
        let c = Uuid::from_u128(7);
        let (a, b, p1, p2, d) = (
            tp("a", 1, "2026-03-01T09:00:00Z", None),
            tp("b", 1, "2026-03-01T18:30:00Z", None),
            tp("p1", 1, "2026-03-01T10:00:00Z", Some(12_500_000)),
            tp("p2", 1, "2026-03-01T11:00:00Z", Some(7_250_000)),
            tp("d", 9, "2026-03-02T08:00:00Z", None),
        );
        let records = activity(&[(c, &a), (c, &b), (c, &p1), (c, &p2), (c, &d)]);
        // Web informative on the 1st: 2 touchpoints, last at 18:30; web
        // transactional: 2 purchases of 12.50 + 7.25 = 19.75 EUR; store on the 2nd: 1.
        let summary: Vec<_> = records
            .iter()
            .map(|r| {
                let money = r.purchase_amount.as_ref().map(|m| (m.units, m.nanos));
                (r.channel, r.kind, r.touchpoints, r.purchases, money, r.occur_time.unwrap().seconds % 86_400)
            })
            .collect();
        assert_eq!(
            summary,
            [
                (1, 1, 2, 0, None, 18 * 3600 + 1800),
                (1, 2, 2, 2, Some((19, 750_000_000)), 11 * 3600),
                (9, 1, 1, 0, None, 8 * 3600),
            ]
        );
    }
}
