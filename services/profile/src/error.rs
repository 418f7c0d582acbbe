//! The profile service's errors and their gRPC codes.

use cx_runtime::error::{FieldViolation, invalid_argument, unavailable};
use cx_runtime::store::is_connection_error;
use sea_orm::DbErr;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("invalid request")]
    InvalidArgument(Vec<FieldViolation>),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// A concurrent change won; the client may retry.
    #[error("{0}")]
    Aborted(String),
    /// Stored data that does not decode: a bug or a manual edit.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error("database: {0}")]
    Database(#[from] DbErr),
}

impl ProfileError {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description)])
    }
}

impl From<Vec<FieldViolation>> for ProfileError {
    fn from(violations: Vec<FieldViolation>) -> Self {
        Self::InvalidArgument(violations)
    }
}

impl From<ProfileError> for Status {
    fn from(err: ProfileError) -> Self {
        match err {
            ProfileError::InvalidArgument(violations) => invalid_argument(&violations),
            ProfileError::NotFound(what) => Status::not_found(format!("{what} not found")),
            ProfileError::AlreadyExists(what) => Status::already_exists(format!("{what} already exists")),
            ProfileError::Aborted(why) => Status::aborted(why),
            ProfileError::Corrupt(what) => {
                tracing::error!(what, "corrupt profile data");
                Status::internal("stored data could not be read")
            }
            ProfileError::Database(err) if is_connection_error(&err) => unavailable("the profile database", &err),
            ProfileError::Database(err) => {
                tracing::error!(error = %err, "database error");
                Status::internal("database error")
            }
        }
    }
}
