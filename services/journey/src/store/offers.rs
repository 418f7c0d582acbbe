//! The touchpoints journey offers the services taking them (`Feed::Touchpoints`:
//! survey's triggers invite, segmentation keeps facts; docs/ARCHITECTURE.md
//! §2.3): every stored batch owes each a `cx.journey.v1.TouchpointsOffered`,
//! at most [`PER_MESSAGE`] touchpoints a message, never a call per touchpoint.
//!
//! Owed as journey owes profile its activity (see `activity`): the ingest
//! writes an outbox row naming the touchpoints it stored, in the same
//! statement on PostgreSQL (one row more per chunk, no round trip more),
//! and [`OfferExpander`] reads them when the row is delivered. A touchpoint
//! erased in between is left out; one whose customer was merged in between
//! is offered as the survivor's. Written only for the services the
//! deployment runs ([`super::JourneyStore::with_offers`]).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cx_proto::journey::v1::{OfferedTouchpoint, TouchpointsOffered};
use cx_runtime::TenantId;
use cx_runtime::outbox::Kind;
use cx_runtime::outbox::dispatcher::{Claimed, Content, Expand};
use cx_runtime::store::scoped;
use prost::{Message, Name};
use sea_orm::{FromQueryResult, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::activity::{Expanded, Named, PER_MESSAGE, among, expand_named};
use super::entity::touchpoint;
use super::{JourneyStore, Result};

/// The kind of the outbox rows that name touchpoints offered.
pub const OFFERED_TOUCHPOINTS: Kind = Kind::rows("cx.journey.OfferedTouchpoints");

/// The columns of a stored touchpoint that the offer carries.
#[derive(Debug, FromQueryResult)]
struct Offer {
    id: String,
    customer_id: Uuid,
    occurred_at: DateTime<Utc>,
    channel: i16,
    kind: i16,
    initiator: i16,
    map_id: Option<Uuid>,
    step_key: Option<String>,
    instance_id: Option<String>,
    score: Option<i16>,
    currency: Option<String>,
    amount_micros: Option<i64>,
    recorded_at: DateTime<Utc>,
}

impl Offer {
    fn into_proto(self) -> (OfferedTouchpoint, DateTime<Utc>) {
        let offered = OfferedTouchpoint {
            touchpoint_id: self.id,
            customer_id: self.customer_id.to_string(),
            occur_time: Some(cx_proto::timestamp(self.occurred_at)),
            channel: i32::from(self.channel),
            kind: i32::from(self.kind),
            initiator: i32::from(self.initiator),
            map_id: self.map_id.map(|m| m.to_string()).unwrap_or_default(),
            step_key: self.step_key.unwrap_or_default(),
            instance_id: self.instance_id.unwrap_or_default(),
            experience_score: self.score.map(i32::from),
            purchase_amount: self.currency.zip(self.amount_micros).map(|(c, micros)| cx_proto::money(&c, micros)),
        };
        (offered, self.recorded_at)
    }
}

impl JourneyStore {
    /// The stored touchpoints among `ids` as they are offered, by id,
    /// with when each was stored: one query per [`PER_MESSAGE`] ids.
    pub async fn offered(
        &self,
        t: &TenantId,
        ids: &[&str],
    ) -> Result<HashMap<String, (OfferedTouchpoint, DateTime<Utc>)>> {
        use touchpoint::Column as C;
        let mut offered = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(PER_MESSAGE) {
            let rows = scoped::<touchpoint::Entity>(t)
                .filter(among(self.db().get_database_backend(), chunk))
                .select_only()
                .columns([C::Id, C::CustomerId, C::OccurredAt, C::Channel, C::Kind, C::Initiator, C::MapId])
                .columns([C::StepKey, C::InstanceId, C::Score, C::Currency, C::AmountMicros, C::RecordedAt])
                .into_model::<Offer>()
                .all(self.db())
                .await?;
            for row in rows {
                let id = row.id.clone();
                offered.insert(id, row.into_proto());
            }
        }
        Ok(offered)
    }
}

/// Turns rows naming touchpoints offered into `TouchpointsOffered`
/// messages; a row's id is the message's, so a redelivery is a duplicate
/// to its receiver.
#[derive(Debug)]
pub struct OfferExpander(pub JourneyStore);

#[async_trait]
impl Named for OfferExpander {
    type Record = OfferedTouchpoint;

    async fn read(&self, t: &TenantId, ids: &[&str]) -> Result<HashMap<String, (OfferedTouchpoint, DateTime<Utc>)>> {
        self.0.offered(t, ids).await
    }

    fn make(&self, _: &Claimed, offered: Vec<&OfferedTouchpoint>) -> Content {
        let message = TouchpointsOffered { touchpoints: offered.into_iter().cloned().collect() };
        (TouchpointsOffered::full_name(), message.encode_to_vec())
    }
}

#[async_trait]
impl Expand for OfferExpander {
    async fn expand(&self, messages: &[&Claimed]) -> Vec<Expanded> {
        expand_named(self, messages).await
    }
}
