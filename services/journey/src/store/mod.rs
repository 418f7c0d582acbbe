//! The journey schema: maps with their versions, touchpoints, and the
//! merges learnt from the profile service.

pub mod activity;
pub mod analytics;
pub mod bulk;
pub mod entity;
pub mod group;
pub mod ingest;
pub mod maps;
pub mod migration;
pub mod offers;
pub mod peers;
pub mod rollup;
pub mod timeline;

use sea_orm::DatabaseConnection;

pub use cx_runtime::error::ServiceError as JourneyError;

pub type Result<T> = std::result::Result<T, JourneyError>;

#[derive(Clone, Debug)]
pub struct JourneyStore {
    db: DatabaseConnection,
    /// Whether each stored batch is offered to survey (`offers`).
    offers: bool,
}

impl JourneyStore {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db, offers: false }
    }

    /// Offers every stored batch to the survey service when `deployed`
    /// (survey runs in this deployment); otherwise nothing is owed to it.
    pub fn with_offers(mut self, deployed: bool) -> Self {
        self.offers = deployed;
        self
    }

    pub fn offers(&self) -> bool {
        self.offers
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }
}
