//! The customers' activity the profile service learns from journey
//! (docs/ARCHITECTURE.md §2.3: journey → profile), through the outbox.
//!
//! The outbox row an ingest writes names the touchpoints it stored (a JSON
//! array of their ids) instead of carrying their activity: on PostgreSQL
//! the statement that inserts the touchpoints writes that row too, from the
//! ids the insert returns, so one statement in one round trip stores a
//! batch and what it owes the profile service, with no transaction around
//! it. When the row is delivered, [`ActivityExpander`] reads those
//! touchpoints and sends their activity: one record per customer, UTC day,
//! channel, initiator, kind, device and currency. A touchpoint erased in
//! between is left out; one whose customer was merged in between counts for
//! the survivor.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cx_proto::profile::v1 as profile;
use cx_runtime::TenantId;
use cx_runtime::outbox::Kind;
use cx_runtime::outbox::dispatcher::{Claimed, Content, Expand};
use cx_runtime::store::{pg_array, scoped};
use prost::{Message, Name};
use sea_orm::sea_query::extension::postgres::PgFunc;
use sea_orm::sea_query::{ArrayType, Expr, ExprTrait as _};
use sea_orm::{ColumnTrait, DbBackend, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::entity::touchpoint;
use super::{JourneyError, JourneyStore, Result};

/// The kind of the outbox rows that name stored touchpoints.
pub const STORED_TOUCHPOINTS: Kind = Kind::rows("cx.journey.StoredTouchpoints");

/// Touchpoints one row names at most: the profile service takes this many
/// activity records per message, and a touchpoint makes at most one.
pub const PER_MESSAGE: usize = 10_000;

/// What the activity of one stored touchpoint is made of.
#[derive(Clone, Debug, PartialEq)]
pub struct Act {
    pub customer: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub channel: i16,
    pub initiator: i16,
    pub kind: i16,
    pub device_id: Option<String>,
    /// ISO currency and amount in micro-units.
    pub purchase: Option<(String, i64)>,
}

/// The payload of a row naming `ids`.
pub fn payload<'a>(ids: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    serde_json::to_vec(&ids.into_iter().collect::<Vec<_>>()).unwrap_or_default()
}

/// One record per customer, UTC day, channel, initiator, kind, device and
/// currency, with the day's count, purchases and latest time.
pub fn records<'a>(acts: impl IntoIterator<Item = &'a Act>) -> Vec<profile::ActivityRecord> {
    type Key<'a> = (Uuid, chrono::NaiveDate, i16, i16, i16, &'a str, &'a str);
    let mut groups: BTreeMap<Key<'_>, (i64, i64, i64, DateTime<Utc>)> = BTreeMap::new();
    for act in acts {
        let (currency, micros) = act.purchase.as_ref().map_or(("", 0), |(c, m)| (c.as_str(), *m));
        let key = (
            act.customer,
            act.occurred_at.date_naive(),
            act.channel,
            act.initiator,
            act.kind,
            act.device_id.as_deref().unwrap_or(""),
            currency,
        );
        let group = groups.entry(key).or_insert((0, 0, 0, act.occurred_at));
        group.0 += 1;
        if act.purchase.is_some() {
            group.1 += 1;
            group.2 += micros;
        }
        group.3 = Ord::max(group.3, act.occurred_at);
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

type Row = (String, Uuid, DateTime<Utc>, i16, i16, i16, Option<String>, Option<String>, Option<i64>, DateTime<Utc>);

impl JourneyStore {
    /// What the stored touchpoints among `ids` are made of, by id, with when
    /// each was stored: one query per [`PER_MESSAGE`] ids.
    pub async fn acts(&self, t: &TenantId, ids: &[&str]) -> Result<HashMap<String, (Act, DateTime<Utc>)>> {
        use touchpoint::Column as C;
        let mut acts = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(PER_MESSAGE) {
            let rows: Vec<Row> = scoped::<touchpoint::Entity>(t)
                .filter(among(self.db().get_database_backend(), chunk))
                .select_only()
                .columns([C::Id, C::CustomerId, C::OccurredAt, C::Channel, C::Initiator, C::Kind, C::DeviceId])
                .columns([C::Currency, C::AmountMicros, C::RecordedAt])
                .into_tuple()
                .all(self.db())
                .await?;
            for (id, customer, occurred_at, channel, initiator, kind, device_id, currency, micros, recorded_at) in rows
            {
                let purchase = currency.zip(micros);
                let act = Act { customer, occurred_at, channel, initiator, kind, device_id, purchase };
                acts.insert(id, (act, recorded_at));
            }
        }
        Ok(acts)
    }
}

/// The touchpoints whose id is one of `ids` (at most [`PER_MESSAGE`]): one
/// array parameter on PostgreSQL.
pub(super) fn among(backend: DbBackend, ids: &[&str]) -> sea_orm::sea_query::SimpleExpr {
    let ids = ids.iter().map(|id| (*id).to_owned());
    match backend {
        DbBackend::Postgres => Expr::col(touchpoint::Column::Id).eq(PgFunc::any(pg_array(ArrayType::String, ids))),
        _ => touchpoint::Column::Id.is_in(ids),
    }
}

/// Expanded rows, in the order of the rows.
pub(super) type Expanded = std::result::Result<Option<Content>, tonic::Status>;

/// What rows naming stored touchpoints are made into: [`expand_named`]
/// reads with `read` and makes each row's message with `make`.
#[async_trait]
pub(super) trait Named: Send + Sync {
    type Record: Send + Sync;
    /// What each stored touchpoint among `ids` is made of, by id, with when
    /// it was stored.
    async fn read(&self, t: &TenantId, ids: &[&str]) -> Result<HashMap<String, (Self::Record, DateTime<Utc>)>>;
    /// The message of `row`, from its touchpoints.
    fn make(&self, row: &Claimed, records: Vec<&Self::Record>) -> Content;
}

/// What a round's rows naming stored touchpoints deliver, row by row: the
/// named touchpoints of each tenant are read at once, and each row's are
/// made into its message in the order the row names them. A row keeps only
/// the touchpoints stored when it was written (their `recorded_at` is its
/// `created_at`): an id erased and stored again later belongs to the later
/// row alone. A row with none left sends nothing.
pub(super) async fn expand_named<N: Named>(named_by: &N, messages: &[&Claimed]) -> Vec<Expanded> {
    let named: Vec<std::result::Result<Vec<String>, tonic::Status>> = messages
        .iter()
        .map(|m| {
            serde_json::from_slice(&m.payload)
                .map_err(|e| JourneyError::Corrupt(format!("outbox row {}: {e}", m.id)).into())
        })
        .collect();
    let mut by_tenant: HashMap<&str, Vec<&str>> = HashMap::new();
    for (m, ids) in messages.iter().zip(&named) {
        let ids = ids.iter().flatten().map(String::as_str);
        by_tenant.entry(m.tenant_id.as_str()).or_default().extend(ids);
    }
    type Read<T> = std::result::Result<HashMap<String, (T, DateTime<Utc>)>, tonic::Status>;
    let mut records: HashMap<&str, Read<N::Record>> = HashMap::new();
    for (tenant, ids) in by_tenant {
        let found = match TenantId::parse(tenant) {
            Ok(t) => named_by.read(&t, &ids).await.map_err(tonic::Status::from),
            Err(e) => Err(JourneyError::Corrupt(format!("tenant of outbox rows: {e}")).into()),
        };
        records.insert(tenant, found);
    }
    messages
        .iter()
        .zip(named)
        .map(|(m, ids)| {
            let of_tenant = records[m.tenant_id.as_str()].as_ref().map_err(Clone::clone)?;
            let stored: Vec<&N::Record> = ids?
                .iter()
                .filter_map(|id| of_tenant.get(id))
                .filter(|(_, recorded_at)| *recorded_at == m.created_at)
                .map(|(record, _)| record)
                .collect();
            Ok((!stored.is_empty()).then(|| named_by.make(m, stored)))
        })
        .collect()
}

/// Turns rows naming stored touchpoints into `RecordActivity` messages of
/// the profile service ([`expand_named`]); a row's id is its batch id, so a
/// redelivery is the same batch.
#[derive(Debug)]
pub struct ActivityExpander(pub JourneyStore);

#[async_trait]
impl Named for ActivityExpander {
    type Record = Act;

    async fn read(&self, t: &TenantId, ids: &[&str]) -> Result<HashMap<String, (Act, DateTime<Utc>)>> {
        self.0.acts(t, ids).await
    }

    fn make(&self, row: &Claimed, acts: Vec<&Act>) -> Content {
        let request = profile::RecordActivityRequest { batch_id: row.id.to_string(), records: records(acts) };
        (profile::RecordActivityRequest::full_name(), request.encode_to_vec())
    }
}

#[async_trait]
impl Expand for ActivityExpander {
    async fn expand(&self, messages: &[&Claimed]) -> Vec<Expanded> {
        expand_named(self, messages).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn act(channel: i16, at: &str, purchase: Option<i64>) -> Act {
        Act {
            customer: Uuid::from_u128(7),
            occurred_at: at.parse().unwrap(),
            channel,
            initiator: 2,
            kind: if purchase.is_some() { 2 } else { 1 },
            device_id: None,
            purchase: purchase.map(|m| ("EUR".to_owned(), m)),
        }
    }

    #[test]
    fn activity_groups_by_day_channel_and_kind_and_sums_purchases() {
        let records = records(&[
            act(1, "2026-03-01T09:00:00Z", None),
            act(1, "2026-03-01T18:30:00Z", None),
            act(1, "2026-03-01T10:00:00Z", Some(12_500_000)),
            act(1, "2026-03-01T11:00:00Z", Some(7_250_000)),
            act(9, "2026-03-02T08:00:00Z", None),
        ]);
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

    #[test]
    fn a_payload_names_ids_as_a_json_array() {
        let payload = payload(["a", "b\"c"]);
        assert_eq!(payload, br#"["a","b\"c"]"#);
        assert_eq!(serde_json::from_slice::<Vec<String>>(&payload).unwrap(), ["a", "b\"c"]);
    }
}
