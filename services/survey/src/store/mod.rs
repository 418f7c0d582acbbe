//! The survey schema: definitions with their versions, triggers, settings,
//! invitations, responses with their daily roll-ups, and follow-up cases.

pub mod cases;
pub mod entity;
pub mod feeds;
pub mod gdpr;
pub mod invitations;
pub mod migration;
pub mod responses;
pub mod rollups;
pub mod score_facts;
pub mod settings;
pub mod submit;
pub mod surveys;
pub mod triggers;

use cx_runtime::store::Db;

pub use cx_runtime::error::ServiceError as SurveyError;

pub type Result<T> = std::result::Result<T, SurveyError>;

#[derive(Clone, Debug)]
pub struct SurveyStore {
    db: Db,
    feeds: feeds::Feeds,
}

impl SurveyStore {
    pub fn new(db: Db) -> Self {
        Self { db, feeds: feeds::Feeds::default() }
    }

    /// Tells the takers of `feeds` of scores and open cases.
    pub fn with_feeds(mut self, feeds: feeds::Feeds) -> Self {
        self.feeds = feeds;
        self
    }

    pub fn feeds(&self) -> &feeds::Feeds {
        &self.feeds
    }

    pub fn db(&self) -> &Db {
        &self.db
    }
}
