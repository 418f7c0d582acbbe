//! Profile persistence: every query takes the tenant and goes through the
//! runtime's scoped helpers.
//!
//! [`ProfileStore`] is the one type callers hold; its methods live with the
//! idea they serve: [`profiles`] (the customer record), [`identities`]
//! (resolution and a profile's identities), [`consent`] (decisions and
//! purposes), [`activity`] (applying activity batches), [`derived`]
//! (lifecycle and digital intensity derived from the activity), [`sweep`],
//! [`merge`], [`erase`], [`export`], [`settings`].

pub mod activity;
pub mod check;
pub mod consent;
pub mod derived;
pub mod entity;
pub mod erase;
pub mod events;
pub mod export;
pub mod facts_export;
pub mod facts_feed;
pub mod identities;
pub mod intensity;
pub mod lifecycle_counts;
pub mod merge;
pub mod migration;
pub mod profiles;
pub mod purchase_sums;
pub mod purchase_totals;
pub mod scores;
pub mod settings;
pub mod spans;
pub mod stage_counts;
pub mod standing;
pub mod sweep;

use cx_runtime::store::Db;
use sea_orm::TryInsertResult;

use crate::error::ProfileError;

pub use consent::{ConsentRecord, NewConsent, PurposeRecord};
pub use profiles::{ListFilter, ProfileRecord, ProfileUpdate};

type Result<T> = std::result::Result<T, ProfileError>;

/// The profile service's store: one handle on the database, the configured
/// fan-out and the tenants' intensity models as last read.
#[derive(Clone, Debug)]
pub struct ProfileStore {
    db: Db,
    /// Services told of merges and erasures (docs/ARCHITECTURE.md §2.4), as configured.
    fanout: std::sync::Arc<[&'static str]>,
    /// Services told of every consent decision (those enforcing consent).
    consent_feed: std::sync::Arc<[&'static str]>,
    /// Services told whenever a customer's profile facts change.
    facts_feed: std::sync::Arc<[&'static str]>,
    models: std::sync::Arc<intensity::ModelCache>,
}

/// Whether an insert that skips conflicts stored a row.
fn inserted(result: &TryInsertResult<u64>) -> bool {
    matches!(result, TryInsertResult::Inserted(n) if *n > 0)
}

impl ProfileStore {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            fanout: std::sync::Arc::from([]),
            consent_feed: std::sync::Arc::from([]),
            facts_feed: std::sync::Arc::from([]),
            models: Default::default(),
        }
    }

    /// Tells `services` of every merge and erasure through the outbox.
    pub fn with_fanout(mut self, services: Vec<&'static str>) -> Self {
        self.fanout = services.into();
        self
    }

    pub fn fanout(&self) -> &[&'static str] {
        &self.fanout
    }

    /// Tells `services` of every consent decision through the outbox.
    pub fn with_consent_feed(mut self, services: Vec<&'static str>) -> Self {
        self.consent_feed = services.into();
        self
    }

    pub fn consent_feed(&self) -> &[&'static str] {
        &self.consent_feed
    }

    /// Tells `services` whenever a customer's profile facts change.
    pub fn with_facts_feed(mut self, services: Vec<&'static str>) -> Self {
        self.facts_feed = services.into();
        self
    }

    pub fn facts_feed(&self) -> &[&'static str] {
        &self.facts_feed
    }

    /// Enqueues "the facts of `customers` changed" on `conn`, the
    /// transaction of the change.
    pub async fn facts_changed<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        t: &cx_runtime::TenantId,
        customers: &[uuid::Uuid],
    ) -> Result<()> {
        Ok(events::facts_changed(conn, t, &self.facts_feed, customers).await?)
    }

    pub fn db(&self) -> &Db {
        &self.db
    }
}
