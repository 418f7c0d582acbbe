//! Profile persistence: every query takes the tenant and goes through the
//! runtime's scoped helpers.

pub mod activity;
pub mod check;
pub mod entity;
pub mod erase;
pub mod events;
pub mod export;
pub mod intensity;
pub mod merge;
pub mod migration;
pub mod settings;
pub mod sweep;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use cx_runtime::TenantId;
use cx_runtime::deadline::Deadline;
use cx_runtime::store::{increment, is_unique_violation, scoped, scoped_delete, scoped_update};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait, TryInsertResult,
};
use uuid::Uuid;

use crate::domain::attributes::{Attributes, MaskPath, apply_mask};
use crate::domain::consent::{self, Decision, Purpose};
use crate::domain::identity::{Identity, IdentityKind};
use crate::domain::intensity::{Category, Components, Intensity, IntensityModel};
use crate::domain::lifecycle::Lifecycle;
use crate::error::ProfileError;
use entity::{consent_event, consent_purpose, customer, identity};

type Result<T> = std::result::Result<T, ProfileError>;

/// A profile as the store returns it.
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileRecord {
    pub id: Uuid,
    pub persona: String,
    pub attributes: Attributes,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Sorted by kind, then value.
    pub identities: Vec<Identity>,
    pub lifecycle: Lifecycle,
    pub lifecycle_since: Option<DateTime<Utc>>,
    /// `None` when no touchpoint is in the window.
    pub intensity_components: Option<Components>,
    pub last_touch_at: Option<DateTime<Utc>>,
}

impl ProfileRecord {
    /// The digital intensity under the tenant's `model`.
    pub fn intensity(&self, model: &IntensityModel) -> Option<Intensity> {
        self.intensity_components.map(|c| model.intensity(&c))
    }
}

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

/// What ListProfiles may filter on.
#[derive(Clone, Copy, Debug, Default)]
pub struct ListFilter {
    pub lifecycle: Option<Lifecycle>,
    pub category: Option<Category>,
}

/// The changes an update asks for.
#[derive(Clone, Debug)]
pub struct ProfileUpdate {
    pub paths: Vec<MaskPath>,
    pub persona: String,
    pub attributes: Attributes,
}

#[derive(Clone, Debug)]
pub struct ProfileStore {
    db: DatabaseConnection,
    /// Services told of merges and erasures (docs/ARCHITECTURE.md §2.4), as configured.
    fanout: std::sync::Arc<[&'static str]>,
    models: std::sync::Arc<intensity::ModelCache>,
}

fn identity_of(row: &identity::Model) -> Option<Identity> {
    Some(Identity { kind: IdentityKind::parse(&row.kind)?, value: row.value.clone() })
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

fn record_of(row: customer::Model, mut identities: Vec<Identity>) -> Result<ProfileRecord> {
    identities.sort();
    let intensity_components = intensity::components_of(&row);
    let attributes: Attributes = serde_json::from_value(row.attributes)
        .map_err(|e| ProfileError::Corrupt(format!("attributes of profile {}: {e}", row.id)))?;
    let lifecycle = Lifecycle::parse(&row.lifecycle)
        .ok_or_else(|| ProfileError::Corrupt(format!("lifecycle '{}' of profile {}", row.lifecycle, row.id)))?;
    Ok(ProfileRecord {
        id: row.id,
        persona: row.persona,
        attributes,
        version: row.version,
        created_at: row.created_at,
        updated_at: row.updated_at,
        identities,
        lifecycle,
        lifecycle_since: row.lifecycle_since,
        intensity_components,
        last_touch_at: row.last_touch_at,
    })
}

fn identity_match(identities: &[Identity]) -> Condition {
    let mut by_kind: BTreeMap<IdentityKind, Vec<&str>> = BTreeMap::new();
    for id in identities {
        by_kind.entry(id.kind).or_default().push(&id.value);
    }
    by_kind.into_iter().fold(Condition::any(), |any, (kind, values)| {
        any.add(
            Condition::all().add(identity::Column::Kind.eq(kind.as_str())).add(identity::Column::Value.is_in(values)),
        )
    })
}

fn new_customer(t: &TenantId, id: Uuid, now: DateTime<Utc>) -> customer::ActiveModel {
    customer::ActiveModel {
        tenant_id: Set(t.to_string()),
        id: Set(id),
        persona: Set(String::new()),
        attributes: Set(serde_json::json!({})),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
        last_touch_at: Set(None),
        lifecycle: Set(Lifecycle::Prospect.as_str().to_owned()),
        lifecycle_since: Set(None),
        lifecycle_next_change: Set(None),
        dii_next_change: Set(None),
        dii_digital_share: Set(None),
        dii_digital_breadth: Set(None),
        dii_device_factor: Set(None),
        dii_self_service_share: Set(None),
    }
}

fn new_identity(t: &TenantId, identity: &Identity, customer_id: Uuid, now: DateTime<Utc>) -> identity::ActiveModel {
    identity::ActiveModel {
        tenant_id: Set(t.to_string()),
        kind: Set(identity.kind.as_str().to_owned()),
        value: Set(identity.value.clone()),
        customer_id: Set(customer_id),
        created_at: Set(now),
    }
}

fn inserted(result: &TryInsertResult<u64>) -> bool {
    matches!(result, TryInsertResult::Inserted(n) if *n > 0)
}

impl ProfileStore {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db, fanout: std::sync::Arc::from([]), models: Default::default() }
    }

    /// Tells `services` of every merge and erasure through the outbox.
    pub fn with_fanout(mut self, services: Vec<&'static str>) -> Self {
        self.fanout = services.into();
        self
    }

    pub fn fanout(&self) -> &[&'static str] {
        &self.fanout
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The profile owning `identity`.
    pub async fn owner_of(&self, t: &TenantId, identity: &Identity) -> Result<Option<Uuid>> {
        let row = scoped::<identity::Entity>(t)
            .filter(identity::Column::Kind.eq(identity.kind.as_str()))
            .filter(identity::Column::Value.eq(&identity.value))
            .one(&self.db)
            .await?;
        Ok(row.map(|r| r.customer_id))
    }

    pub async fn get(&self, t: &TenantId, id: Uuid) -> Result<ProfileRecord> {
        let row = scoped::<customer::Entity>(t)
            .filter(customer::Column::Id.eq(id))
            .one(&self.db)
            .await?
            .ok_or_else(|| ProfileError::NotFound(format!("profile {id}")))?;
        let identities =
            scoped::<identity::Entity>(t).filter(identity::Column::CustomerId.eq(id)).all(&self.db).await?;
        record_of(row, identities.iter().filter_map(identity_of).collect())
    }

    /// Resolves `identity`, creating its profile when asked. Under concurrent
    /// calls for one new identity the identity's primary key picks a single
    /// winner; the losers roll back and read the winner's profile.
    pub async fn resolve(
        &self,
        t: &TenantId,
        identity: &Identity,
        create: bool,
    ) -> Result<Option<(ProfileRecord, bool)>> {
        for _ in 0..3 {
            if let Some(owner) = self.owner_of(t, identity).await? {
                return Ok(Some((self.get(t, owner).await?, false)));
            }
            if !create {
                return Ok(None);
            }
            let id = Uuid::now_v7();
            let now = cx_runtime::store::now();
            let txn = self.db.begin().await?;
            customer::Entity::insert(new_customer(t, id, now)).exec_without_returning(&txn).await?;
            let won = identity::Entity::insert(new_identity(t, identity, id, now))
                .on_conflict_do_nothing()
                .exec_without_returning(&txn)
                .await;
            match won {
                Ok(result) if inserted(&result) => {
                    Deadline::check_current()?;
                    txn.commit().await?;
                    return Ok(Some((self.get(t, id).await?, true)));
                }
                Ok(_) => txn.rollback().await?,
                Err(err) if is_unique_violation(&err) => txn.rollback().await?,
                Err(err) => return Err(err.into()),
            }
        }
        Err(ProfileError::Aborted("the identity kept changing owner, retry".into()))
    }

    /// Resolves many identities at once: one read for the known ones, one
    /// transaction creating the missing ones. Returns, per input, the owner
    /// and whether this call created it.
    pub async fn batch_resolve(
        &self,
        t: &TenantId,
        identities: &[Identity],
        create: bool,
    ) -> Result<Vec<Option<(Uuid, bool)>>> {
        let mut owners = self.owners(&self.db, t, identities).await?;
        let mut created: HashMap<Identity, Uuid> = HashMap::new();
        let missing: Vec<Identity> = {
            let mut m: Vec<Identity> = identities.iter().filter(|i| !owners.contains_key(*i)).cloned().collect();
            m.sort();
            m.dedup();
            m
        };
        if create && !missing.is_empty() {
            let now = cx_runtime::store::now();
            let fresh: Vec<(Identity, Uuid)> = missing.into_iter().map(|i| (i, Uuid::now_v7())).collect();
            let txn = self.db.begin().await?;
            customer::Entity::insert_many(fresh.iter().map(|(_, id)| new_customer(t, *id, now)))
                .exec_without_returning(&txn)
                .await?;
            identity::Entity::insert_many(fresh.iter().map(|(i, id)| new_identity(t, i, *id, now)))
                .on_conflict_do_nothing()
                .exec_without_returning(&txn)
                .await?;
            // Identities that a concurrent call claimed first keep that owner;
            // the customers we made for them are dropped in the same transaction.
            let fresh_identities: Vec<Identity> = fresh.iter().map(|(i, _)| i.clone()).collect();
            let winners = self.owners(&txn, t, &fresh_identities).await?;
            let orphans: Vec<Uuid> =
                fresh.iter().filter(|(i, id)| winners.get(i) != Some(id)).map(|(_, id)| *id).collect();
            if !orphans.is_empty() {
                scoped_delete::<customer::Entity>(t).filter(customer::Column::Id.is_in(orphans)).exec(&txn).await?;
            }
            // Profiles made for a caller that has given up are not kept.
            Deadline::check_current()?;
            txn.commit().await?;
            for (identity, id) in fresh {
                if winners.get(&identity) == Some(&id) {
                    created.insert(identity.clone(), id);
                }
            }
            owners.extend(winners);
        }
        Ok(identities.iter().map(|i| owners.get(i).map(|owner| (*owner, created.get(i) == Some(owner)))).collect())
    }

    async fn owners<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        t: &TenantId,
        identities: &[Identity],
    ) -> Result<HashMap<Identity, Uuid>> {
        if identities.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = scoped::<identity::Entity>(t).filter(identity_match(identities)).all(conn).await?;
        Ok(rows.iter().filter_map(|r| Some((identity_of(r)?, r.customer_id))).collect())
    }

    /// One page of profiles in id (creation) order, after `after`.
    pub async fn list(&self, t: &TenantId, after: Option<Uuid>, limit: u64) -> Result<(Vec<ProfileRecord>, bool)> {
        self.list_filtered(t, after, limit, &ListFilter::default()).await
    }

    /// One page of the profiles matching `filter`.
    pub async fn list_filtered(
        &self,
        t: &TenantId,
        after: Option<Uuid>,
        limit: u64,
        filter: &ListFilter,
    ) -> Result<(Vec<ProfileRecord>, bool)> {
        let mut query = scoped::<customer::Entity>(t).order_by_asc(customer::Column::Id).limit(limit + 1);
        if let Some(lifecycle) = filter.lifecycle {
            query = query.filter(customer::Column::Lifecycle.eq(lifecycle.as_str()));
        }
        if let Some(category) = filter.category {
            let model = self.intensity_model(t).await?;
            query = query.filter(intensity::in_category(self.db.get_database_backend(), &model, category));
        }
        if let Some(after) = after {
            query = query.filter(customer::Column::Id.gt(after));
        }
        let mut rows = query.all(&self.db).await?;
        let more = cx_runtime::page::trim_page(&mut rows, limit);
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let mut identities: HashMap<Uuid, Vec<Identity>> = HashMap::new();
        if !ids.is_empty() {
            for row in
                scoped::<identity::Entity>(t).filter(identity::Column::CustomerId.is_in(ids)).all(&self.db).await?
            {
                if let Some(identity) = identity_of(&row) {
                    identities.entry(row.customer_id).or_default().push(identity);
                }
            }
        }
        let records = rows
            .into_iter()
            .map(|row| {
                let own = identities.remove(&row.id).unwrap_or_default();
                record_of(row, own)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((records, more))
    }

    /// Applies an update with optimistic concurrency on `version`.
    pub async fn update(
        &self,
        t: &TenantId,
        id: Uuid,
        update: &ProfileUpdate,
        max_attributes: usize,
    ) -> Result<ProfileRecord> {
        for _ in 0..5 {
            let current = self.get(t, id).await?;
            let mut attributes = current.attributes.clone();
            apply_mask(&mut attributes, &update.attributes, &update.paths);
            if attributes.len() > max_attributes {
                return Err(ProfileError::invalid(
                    "profile.attributes",
                    format!(
                        "a profile has at most {max_attributes} attributes; this update would leave {}",
                        attributes.len()
                    ),
                ));
            }
            let persona = if update.paths.contains(&MaskPath::Persona) {
                update.persona.clone()
            } else {
                current.persona.clone()
            };
            let json = serde_json::to_value(&attributes).map_err(|e| ProfileError::Corrupt(e.to_string()))?;
            let result = scoped_update::<customer::Entity>(t)
                .col_expr(customer::Column::Persona, persona.into())
                .col_expr(customer::Column::Attributes, json.into())
                .col_expr(customer::Column::Version, increment(customer::Column::Version))
                .col_expr(customer::Column::UpdatedAt, cx_runtime::store::now().into())
                .filter(customer::Column::Id.eq(id))
                .filter(customer::Column::Version.eq(current.version))
                .exec(&self.db)
                .await?;
            if result.rows_affected == 1 {
                return self.get(t, id).await;
            }
        }
        Err(ProfileError::Aborted(format!("profile {id} is being changed concurrently, retry")))
    }

    /// Records a change to a profile's identities (bumps version and time).
    async fn touch(&self, txn: &DatabaseTransaction, t: &TenantId, id: Uuid) -> Result<()> {
        let result = scoped_update::<customer::Entity>(t)
            .col_expr(customer::Column::Version, increment(customer::Column::Version))
            .col_expr(customer::Column::UpdatedAt, cx_runtime::store::now().into())
            .filter(customer::Column::Id.eq(id))
            .exec(txn)
            .await?;
        if result.rows_affected == 0 {
            return Err(ProfileError::NotFound(format!("profile {id}")));
        }
        Ok(())
    }

    pub async fn add_identity(&self, t: &TenantId, id: Uuid, identity: &Identity) -> Result<ProfileRecord> {
        let txn = self.db.begin().await?;
        self.touch(&txn, t, id).await?;
        let result = identity::Entity::insert(new_identity(t, identity, id, cx_runtime::store::now()))
            .on_conflict_do_nothing()
            .exec_without_returning(&txn)
            .await?;
        if inserted(&result) {
            txn.commit().await?;
            return self.get(t, id).await;
        }
        txn.rollback().await?;
        match self.owner_of(t, identity).await? {
            Some(owner) if owner == id => self.get(t, id).await,
            _ => Err(ProfileError::AlreadyExists(format!(
                "the {} identity belongs to another profile (merge them instead)",
                identity.kind.as_str()
            ))),
        }
    }

    pub async fn remove_identity(&self, t: &TenantId, id: Uuid, identity: &Identity) -> Result<ProfileRecord> {
        let txn = self.db.begin().await?;
        self.touch(&txn, t, id).await?;
        let removed = scoped_delete::<identity::Entity>(t)
            .filter(identity::Column::Kind.eq(identity.kind.as_str()))
            .filter(identity::Column::Value.eq(&identity.value))
            .filter(identity::Column::CustomerId.eq(id))
            .exec(&txn)
            .await?;
        if removed.rows_affected == 0 {
            txn.rollback().await?;
            return Err(ProfileError::NotFound(format!("this {} identity on profile {id}", identity.kind.as_str())));
        }
        txn.commit().await?;
        self.get(t, id).await
    }

    async fn exists(&self, t: &TenantId, id: Uuid) -> Result<()> {
        let found = scoped::<customer::Entity>(t)
            .filter(customer::Column::Id.eq(id))
            .select_only()
            .column(customer::Column::Id)
            .into_tuple::<Uuid>()
            .one(&self.db)
            .await?;
        found.map(|_| ()).ok_or_else(|| ProfileError::NotFound(format!("profile {id}")))
    }

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
    /// purpose's history.
    pub async fn set_consent(
        &self,
        t: &TenantId,
        id: Uuid,
        new: NewConsent,
    ) -> Result<(ConsentRecord, Vec<ConsentRecord>)> {
        self.exists(t, id).await?;
        let event_id = Uuid::now_v7();
        let row = consent_event::ActiveModel {
            tenant_id: Set(t.to_string()),
            id: Set(event_id),
            customer_id: Set(id),
            purpose: Set(new.purpose.key()),
            granted: Set(new.granted),
            source_channel: Set(new.source_channel),
            actor: Set(new.actor),
            occurred_at: Set(cx_runtime::store::stored_instant(new.occurred_at)),
            recorded_at: Set(cx_runtime::store::now()),
            request_id: Set(new.request_id.clone()),
        };
        consent_event::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([consent_event::Column::TenantId, consent_event::Column::RequestId])
                    .do_nothing()
                    .to_owned(),
            )
            .try_insert()
            .exec_without_returning(&self.db)
            .await?;
        let history = self.consent_history_for(t, id, &new.purpose).await?;
        // A retried request finds the decision its first attempt recorded.
        let recorded = match &new.request_id {
            Some(request_id) => scoped::<consent_event::Entity>(t)
                .filter(consent_event::Column::RequestId.eq(request_id))
                .one(&self.db)
                .await?
                .and_then(consent_of),
            None => history.iter().find(|e| e.id == event_id).cloned(),
        };
        let recorded = recorded.ok_or_else(|| ProfileError::Corrupt(format!("consent event {event_id} vanished")))?;
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
            return Err(ProfileError::AlreadyExists(format!("consent purpose '{name}'")));
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
