//! Shared pieces of gRPC error reporting.
//!
//! Field violations are collected during validation and turned into
//! `INVALID_ARGUMENT` with a `google.rpc.BadRequest` detail. [`ServiceError`]
//! is what a service's store and handlers return, mapped to gRPC codes in
//! one place (DESIGN §5).

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// One invalid field of a request, named by its path (`identity.value`,
/// `identities[3].kind`, `profile.attributes["age"]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self { field: field.into(), description: description.into() }
    }
}

/// Collects every violation of a request so the client learns of all of them
/// at once rather than one per round trip.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }

    /// Records the error of a fallible check, returning its value if it passed.
    pub fn check<T>(&mut self, result: Result<T, FieldViolation>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(violation) => {
                self.0.push(violation);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when nothing was recorded, otherwise the violations.
    pub fn finish(self) -> Result<(), Vec<FieldViolation>> {
        if self.0.is_empty() { Ok(()) } else { Err(self.0) }
    }
}

/// A check's failure: one violation, or several already collected.
pub trait IntoViolations {
    fn into_violations(self) -> Vec<FieldViolation>;
}

impl IntoViolations for FieldViolation {
    fn into_violations(self) -> Vec<FieldViolation> {
        vec![self]
    }
}

impl IntoViolations for Vec<FieldViolation> {
    fn into_violations(self) -> Vec<FieldViolation> {
        self
    }
}

/// Both checks' values, or every violation either found. Nest it for more.
pub fn all2<A, B, EA: IntoViolations, EB: IntoViolations>(
    a: Result<A, EA>,
    b: Result<B, EB>,
) -> Result<(A, B), Vec<FieldViolation>> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (a, b) => {
            let mut found = a.err().map(IntoViolations::into_violations).unwrap_or_default();
            found.extend(b.err().map(IntoViolations::into_violations).unwrap_or_default());
            Err(found)
        }
    }
}

/// The three checks' values, or every violation they found.
pub fn all3<A, B, C, EA: IntoViolations, EB: IntoViolations, EC: IntoViolations>(
    a: Result<A, EA>,
    b: Result<B, EB>,
    c: Result<C, EC>,
) -> Result<(A, B, C), Vec<FieldViolation>> {
    all2(all2(a, b), c).map(|((a, b), c)| (a, b, c))
}

/// `INVALID_ARGUMENT` carrying a `google.rpc.BadRequest` with every violation.
pub fn invalid_argument(violations: &[FieldViolation]) -> Status {
    let mut details = ErrorDetails::new();
    for violation in violations {
        details.add_bad_request_violation(violation.field.clone(), violation.description.clone());
    }
    let message = match violations {
        [one] => format!("invalid {}: {}", one.field, one.description),
        many => format!("{} invalid fields, first {}: {}", many.len(), many[0].field, many[0].description),
    };
    Status::with_error_details(Code::InvalidArgument, message, details)
}

/// Reads the field violations back from a status (clients and tests).
pub fn field_violations(status: &Status) -> Vec<FieldViolation> {
    status
        .get_details_bad_request()
        .map(|bad_request| {
            bad_request.field_violations.into_iter().map(|v| FieldViolation::new(v.field, v.description)).collect()
        })
        .unwrap_or_default()
}

/// `UNAVAILABLE` for a dependency (database, another service) that failed in
/// a way a retry may cure. The cause is logged, not sent: it may name hosts.
pub fn unavailable(what: &str, cause: &dyn std::fmt::Display) -> Status {
    tracing::warn!(dependency = what, error = %cause, "dependency unavailable");
    Status::unavailable(format!("{what} is unavailable, retry later"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_round_trip_through_status_details() {
        let mut v = Violations::new();
        v.add("identity.value", "must not be empty");
        v.add("page_size", "must not be negative");
        let Err(list) = v.finish() else { panic!("violations were recorded") };
        let status = invalid_argument(&list);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "2 invalid fields, first identity.value: must not be empty");
        assert_eq!(
            field_violations(&status),
            vec![
                FieldViolation::new("identity.value", "must not be empty"),
                FieldViolation::new("page_size", "must not be negative"),
            ]
        );
    }

    #[test]
    fn combined_checks_report_every_violation() {
        let bad = |f: &str| Err::<u8, _>(FieldViolation::new(f, "bad"));
        assert_eq!(all2(Ok::<_, FieldViolation>(1), Ok::<_, FieldViolation>(2)), Ok((1, 2)));
        let fields: Vec<String> =
            all3(bad("a"), Ok::<u8, FieldViolation>(1), bad("c")).unwrap_err().into_iter().map(|v| v.field).collect();
        assert_eq!(fields, ["a", "c"]);
    }

    #[test]
    fn no_violation_finishes_ok() {
        assert!(Violations::new().finish().is_ok());
    }
}

/// The errors of a service's store and handlers.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
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
    Database(#[from] sea_orm::DbErr),
    /// Another service's answer, passed on as it came.
    #[error("{0}")]
    Peer(#[from] Status),
}

impl ServiceError {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description)])
    }
}

impl From<Vec<FieldViolation>> for ServiceError {
    fn from(violations: Vec<FieldViolation>) -> Self {
        Self::InvalidArgument(violations)
    }
}

impl From<ServiceError> for Status {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::InvalidArgument(violations) => invalid_argument(&violations),
            ServiceError::NotFound(what) => Status::not_found(format!("{what} not found")),
            ServiceError::AlreadyExists(what) => Status::already_exists(format!("{what} already exists")),
            ServiceError::Aborted(why) => Status::aborted(why),
            ServiceError::Corrupt(what) => {
                tracing::error!(what, "corrupt stored data");
                Status::internal("stored data could not be read")
            }
            ServiceError::Database(err) if crate::store::is_connection_error(&err) => unavailable("the database", &err),
            ServiceError::Database(err) => {
                tracing::error!(error = %err, "database error");
                Status::internal("database error")
            }
            ServiceError::Peer(status) => status,
        }
    }
}
