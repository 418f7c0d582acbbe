//! The survey schema: definitions with their versions, triggers, settings,
//! invitations, responses with their daily roll-ups, and follow-up cases.

pub mod cases;
pub mod entity;
pub mod gdpr;
pub mod invitations;
pub mod migration;
pub mod responses;
pub mod rollups;
pub mod settings;
pub mod submit;
pub mod surveys;
pub mod triggers;

use sea_orm::DatabaseConnection;

pub use cx_runtime::error::ServiceError as SurveyError;

pub type Result<T> = std::result::Result<T, SurveyError>;

#[derive(Clone, Debug)]
pub struct SurveyStore {
    db: DatabaseConnection,
}

impl SurveyStore {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }
}
