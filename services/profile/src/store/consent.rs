//! Consent: the decisions recorded per customer and purpose (an append-only
//! history, the decision in force derived from it), and the purposes a
//! tenant defines.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cx_runtime::TenantId;
use cx_runtime::store::{one_of, scoped};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use uuid::Uuid;

use super::entity::{consent_event, consent_purpose, customer};
use super::{ProfileStore, Result, inserted};
use crate::domain::consent::{self, Decision, Purpose};
use crate::error::ProfileError;

/// A recorded consent decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentRecord {
    pub id: Uuid,
    pub purpose: Purpose,
    pub granted: bool,
    pub source_channel: String,
    pub actor: String,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
}

impl Decision for ConsentRecord {
    fn occurred_at(&self) -> DateTime<Utc> {
        self.occurred_at
    }
    fn recorded_at(&self) -> DateTime<Utc> {
        self.recorded_at
    }
    fn granted(&self) -> bool {
        self.granted
    }
}

/// A consent decision to record.
#[derive(Clone, Debug)]
pub struct NewConsent {
    pub purpose: Purpose,
    pub granted: bool,
    pub source_channel: String,
    pub actor: String,
    pub occurred_at: DateTime<Utc>,
    pub request_id: Option<String>,
}

/// A tenant-defined purpose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PurposeRecord {
    pub name: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
}

pub(crate) fn consent_of(row: consent_event::Model) -> Option<ConsentRecord> {
    Some(ConsentRecord {
        id: row.id,
        purpose: Purpose::from_key(&row.purpose)?,
        granted: row.granted,
        source_channel: row.source_channel,
        actor: row.actor,
        occurred_at: row.occurred_at,
        recorded_at: row.recorded_at,
    })
}

impl ProfileStore {
    /// Fails unless `purpose` is standard or defined by the tenant.
    pub async fn check_purpose(&self, t: &TenantId, purpose: &Purpose, field: &str) -> Result<()> {
        let Purpose::Custom(name) = purpose else {
            return Ok(());
        };
        let known =
            scoped::<consent_purpose::Entity>(t).filter(consent_purpose::Column::Name.eq(name)).one(&self.db).await?;
        match known {
            Some(_) => Ok(()),
            None => Err(ProfileError::invalid(field, format!("'{name}' is not a consent purpose of this tenant"))),
        }
    }

    /// Appends a decision (once per request id) and returns it with the
    /// purpose's history. In the same transaction, a new decision is owed
    /// to every service enforcing consent (`ConsentChanged`); a retried
    /// request owes nothing more.
    pub async fn set_consent(
        &self,
        t: &TenantId,
        id: Uuid,
        new: NewConsent,
    ) -> Result<(ConsentRecord, Vec<ConsentRecord>)> {
        let txn = self.db.begin().await?;
        // Shared lock: a merge or erasure of the customer waits for this
        // decision, or comes first and it finds no profile.
        let mut customer = scoped::<customer::Entity>(t).filter(customer::Column::Id.eq(id));
        if txn.get_database_backend() == DbBackend::Postgres {
            customer = customer.lock_shared();
        }
        if customer.one(&txn).await?.is_none() {
            return Err(ProfileError::not_found(format_args!("profile {id}")));
        }
        let decision = ConsentRecord {
            id: Uuid::now_v7(),
            purpose: new.purpose.clone(),
            granted: new.granted,
            source_channel: new.source_channel,
            actor: new.actor,
            occurred_at: cx_runtime::store::stored_instant(new.occurred_at),
            recorded_at: cx_runtime::store::now(),
        };
        let row = consent_event::ActiveModel {
            tenant_id: Set(t.to_string()),
            id: Set(decision.id),
            customer_id: Set(id),
            purpose: Set(decision.purpose.key()),
            granted: Set(decision.granted),
            source_channel: Set(decision.source_channel.clone()),
            actor: Set(decision.actor.clone()),
            occurred_at: Set(decision.occurred_at),
            recorded_at: Set(decision.recorded_at),
            request_id: Set(new.request_id.clone()),
        };
        let stored = consent_event::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([consent_event::Column::TenantId, consent_event::Column::RequestId])
                    .do_nothing()
                    .to_owned(),
            )
            .try_insert()
            .exec_without_returning(&txn)
            .await?;
        if inserted(&stored) {
            super::events::consent_changed(&txn, t, self.consent_feed(), id, &decision).await?;
        }
        txn.commit().await?;
        let history = self.consent_history_for(t, id, &new.purpose).await?;
        // A retried request finds the decision its first attempt recorded.
        let recorded = match &new.request_id {
            Some(request_id) => scoped::<consent_event::Entity>(t)
                .filter(consent_event::Column::RequestId.eq(request_id))
                .one(&self.db)
                .await?
                .and_then(consent_of),
            None => history.iter().find(|e| e.id == decision.id).cloned(),
        };
        let recorded =
            recorded.ok_or_else(|| ProfileError::Corrupt(format!("consent event {} vanished", decision.id)))?;
        if recorded.purpose != new.purpose {
            return Err(ProfileError::AlreadyExists("request_id was already used for another decision".into()));
        }
        Ok((recorded, history))
    }

    /// Every decision of one purpose.
    pub async fn consent_history_for(&self, t: &TenantId, id: Uuid, purpose: &Purpose) -> Result<Vec<ConsentRecord>> {
        let rows = scoped::<consent_event::Entity>(t)
            .filter(consent_event::Column::CustomerId.eq(id))
            .filter(consent_event::Column::Purpose.eq(purpose.key()))
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().filter_map(consent_of).collect())
    }

    /// The decision in force for a purpose, if any.
    pub async fn consent(&self, t: &TenantId, id: Uuid, purpose: &Purpose) -> Result<Option<ConsentRecord>> {
        self.exists(t, id).await?;
        let history = self.consent_history_for(t, id, purpose).await?;
        Ok(consent::current(&history).cloned())
    }

    /// The decision in force of each of `ids` for each purpose she decided
    /// on, in customer then purpose key order: one read.
    pub async fn consents_in_force(&self, t: &TenantId, ids: &[Uuid]) -> Result<Vec<(Uuid, ConsentRecord)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let backend = self.db.get_database_backend();
        let rows = scoped::<consent_event::Entity>(t)
            .filter(one_of(backend, consent_event::Column::CustomerId, ids))
            .all(&self.db)
            .await?;
        let mut histories: BTreeMap<(Uuid, String), Vec<ConsentRecord>> = BTreeMap::new();
        for row in rows {
            let key = (row.customer_id, row.purpose.clone());
            if let Some(decision) = consent_of(row) {
                histories.entry(key).or_default().push(decision);
            }
        }
        Ok(histories
            .into_iter()
            .filter_map(|((customer, _), history)| Some((customer, consent::current(&history)?.clone())))
            .collect())
    }

    /// One page of a customer's decisions, newest recorded first.
    pub async fn consent_history(
        &self,
        t: &TenantId,
        id: Uuid,
        before: Option<Uuid>,
        limit: u64,
    ) -> Result<(Vec<ConsentRecord>, bool)> {
        self.exists(t, id).await?;
        let mut query = scoped::<consent_event::Entity>(t)
            .filter(consent_event::Column::CustomerId.eq(id))
            .order_by_desc(consent_event::Column::Id)
            .limit(limit + 1);
        if let Some(before) = before {
            query = query.filter(consent_event::Column::Id.lt(before));
        }
        let mut rows = query.all(&self.db).await?;
        let more = cx_runtime::page::trim_page(&mut rows, limit);
        Ok((rows.into_iter().filter_map(consent_of).collect(), more))
    }

    pub async fn create_purpose(&self, t: &TenantId, name: &str, description: &str) -> Result<PurposeRecord> {
        let now = cx_runtime::store::now();
        let row = consent_purpose::ActiveModel {
            tenant_id: Set(t.to_string()),
            name: Set(name.to_owned()),
            description: Set(description.to_owned()),
            created_at: Set(now),
        };
        let result =
            consent_purpose::Entity::insert(row).on_conflict_do_nothing().exec_without_returning(&self.db).await?;
        if !inserted(&result) {
            return Err(ProfileError::already_exists(format_args!("consent purpose '{name}'")));
        }
        Ok(PurposeRecord { name: name.to_owned(), description: description.to_owned(), created_at: now })
    }

    pub async fn purposes(&self, t: &TenantId) -> Result<Vec<PurposeRecord>> {
        let rows =
            scoped::<consent_purpose::Entity>(t).order_by_asc(consent_purpose::Column::Name).all(&self.db).await?;
        Ok(rows
            .into_iter()
            .map(|r| PurposeRecord { name: r.name, description: r.description, created_at: r.created_at })
            .collect())
    }
}
