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
pub mod peers;
pub mod rollup;
pub mod timeline;

use sea_orm::DatabaseConnection;

pub use cx_runtime::error::ServiceError as JourneyError;

pub type Result<T> = std::result::Result<T, JourneyError>;

#[derive(Clone, Debug)]
pub struct JourneyStore {
    db: DatabaseConnection,
}

impl JourneyStore {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }
}
