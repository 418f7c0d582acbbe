//! The journey schema: maps with their versions, touchpoints, and the
//! merges learnt from the profile service.

pub mod activity;
pub mod analytics;
pub mod entity;
pub mod group;
pub mod ingest;
pub mod maps;
pub mod migration;
pub mod offers;
pub mod peers;
pub mod rollup;
pub mod timeline;
pub mod touch_facts;

use cx_runtime::store::Db;

pub use cx_runtime::error::ServiceError as JourneyError;

pub type Result<T> = std::result::Result<T, JourneyError>;

#[derive(Clone, Debug)]
pub struct JourneyStore {
    db: Db,
    /// The services each stored batch is offered to (`offers`).
    offers: Vec<&'static str>,
}

impl JourneyStore {
    pub fn new(db: Db) -> Self {
        Self { db, offers: Vec::new() }
    }

    /// Offers every stored batch to each of `destinations` (the deployed
    /// services taking touchpoints); none: nothing is owed beyond profile.
    pub fn with_offers(mut self, destinations: Vec<&'static str>) -> Self {
        self.offers = destinations;
        self
    }

    pub fn offers(&self) -> &[&'static str] {
        &self.offers
    }

    pub fn db(&self) -> &Db {
        &self.db
    }
}
