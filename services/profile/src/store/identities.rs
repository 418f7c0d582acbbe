//! Identities: which profile owns an identity, resolving (and creating)
//! profiles by identity, one at a time or in batches, and adding or removing
//! a profile's identities.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use cx_runtime::TenantId;
use cx_runtime::deadline::Deadline;
use cx_runtime::store::{increment, is_unique_violation, scoped, scoped_delete, scoped_update};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseTransaction, EntityTrait, QueryFilter, TransactionTrait,
};
use uuid::Uuid;

use super::entity::{customer, identity};
use super::profiles::new_customer;
use super::{ProfileRecord, ProfileStore, Result, inserted};
use crate::domain::identity::{Identity, IdentityKind};
use crate::error::ProfileError;

pub(super) fn identity_of(row: &identity::Model) -> Option<Identity> {
    Some(Identity { kind: IdentityKind::parse(&row.kind)?, value: row.value.clone() })
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

fn new_identity(t: &TenantId, identity: &Identity, customer_id: Uuid, now: DateTime<Utc>) -> identity::ActiveModel {
    identity::ActiveModel {
        tenant_id: Set(t.to_string()),
        kind: Set(identity.kind.as_str().to_owned()),
        value: Set(identity.value.clone()),
        customer_id: Set(customer_id),
        created_at: Set(now),
    }
}

impl ProfileStore {
    /// The profile owning `identity`.
    pub async fn owner_of(&self, t: &TenantId, identity: &Identity) -> Result<Option<Uuid>> {
        let row = scoped::<identity::Entity>(t)
            .filter(identity::Column::Kind.eq(identity.kind.as_str()))
            .filter(identity::Column::Value.eq(&identity.value))
            .one(&self.db)
            .await?;
        Ok(row.map(|r| r.customer_id))
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
                    self.facts_changed(&txn, t, &[id]).await?;
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
            let made: Vec<Uuid> =
                fresh.iter().filter(|(i, id)| winners.get(i) == Some(id)).map(|(_, id)| *id).collect();
            self.facts_changed(&txn, t, &made).await?;
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

    /// Records a change to a profile's identities (bumps version and time).
    async fn touch(&self, txn: &DatabaseTransaction, t: &TenantId, id: Uuid) -> Result<()> {
        let result = scoped_update::<customer::Entity>(t)
            .col_expr(customer::Column::Version, increment(customer::Column::Version))
            .col_expr(customer::Column::UpdatedAt, cx_runtime::store::now().into())
            .filter(customer::Column::Id.eq(id))
            .exec(txn)
            .await?;
        if result.rows_affected == 0 {
            return Err(ProfileError::not_found(format_args!("profile {id}")));
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
            // The customer's contacts are among the facts other services keep.
            self.facts_changed(&txn, t, &[id]).await?;
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
            return Err(ProfileError::not_found(format_args!(
                "this {} identity on profile {id}",
                identity.kind.as_str()
            )));
        }
        self.facts_changed(&txn, t, &[id]).await?;
        txn.commit().await?;
        self.get(t, id).await
    }
}
