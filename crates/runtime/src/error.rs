//! Shared pieces of gRPC error reporting.
//!
//! Field violations are collected during validation and turned into
//! `INVALID_ARGUMENT` with a `google.rpc.BadRequest` detail. [`ServiceError`]
//! is what a service's store and handlers return, mapped to gRPC codes in
//! one place (docs/DECISIONS.md, Input).

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

/// Longest value (field path, description, message part) echoed in an
/// error: requests may carry megabytes, and a standard client refuses
/// trailers past a few KiB (RESOURCE_EXHAUSTED instead of the error).
pub const MAX_ECHO: usize = 200;
/// Longest `google.rpc.BadRequest` sent: further violations are counted in
/// the message, not listed.
pub const MAX_DETAILS: usize = 4 * 1024;

/// `text` cut to [`MAX_ECHO`] bytes, at a character boundary.
pub fn clip(text: &str) -> String {
    cx_proto::codec::clip(text, MAX_ECHO)
}

/// `INVALID_ARGUMENT` carrying a `google.rpc.BadRequest` with the violations
/// (each clipped, at most [`MAX_DETAILS`] bytes of them).
pub fn invalid_argument(violations: &[FieldViolation]) -> Status {
    let mut details = ErrorDetails::new();
    let mut size = 0;
    let mut listed = 0;
    for violation in violations {
        let (field, description) = (clip(&violation.field), clip(&violation.description));
        size += field.len() + description.len() + 8;
        if size > MAX_DETAILS {
            break;
        }
        details.add_bad_request_violation(field, description);
        listed += 1;
    }
    let first = violations.first().map(|v| (clip(&v.field), clip(&v.description))).unwrap_or_default();
    let mut message = match violations.len() {
        1 => format!("invalid {}: {}", first.0, first.1),
        n => format!("{n} invalid fields, first {}: {}", first.0, first.1),
    };
    if listed < violations.len() {
        message.push_str(&format!(" ({listed} listed)"));
    }
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
    fn echoed_values_and_details_are_bounded() {
        // A 20 KB path: its violation is clipped to 200 bytes (197 + "…").
        let long = "x".repeat(20_000);
        let status = invalid_argument(&[FieldViolation::new("update_mask.paths[0]", format!("unknown path {long}"))]);
        let found = field_violations(&status);
        assert_eq!(found[0].description.len(), MAX_ECHO);
        assert!(found[0].description.ends_with('…'));
        assert!(status.message().len() < 2 * MAX_ECHO + 20);
        // 1,000 violations of 400 bytes: about 4 KiB of them are listed.
        let many: Vec<_> = (0..1000).map(|i| FieldViolation::new(format!("f{i}"), "y".repeat(400))).collect();
        let status = invalid_argument(&many);
        let listed = field_violations(&status).len();
        assert_eq!(listed, 19, "19 × (2..4 + 200 + 8) bytes fit in 4 KiB");
        assert!(status.message().ends_with("(19 listed)"));
        assert!(status.details().len() <= MAX_DETAILS + 200);
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
    /// The caller may not do this (a complete sentence).
    #[error("{0}")]
    PermissionDenied(String),
    /// The system is not in the state the call needs (a complete sentence).
    #[error("{0}")]
    FailedPrecondition(String),
    /// A dependency failed in a way a retry may cure (a complete sentence,
    /// naming no host).
    #[error("{0}")]
    Unavailable(String),
    /// A bug: logged in full, answered without detail.
    #[error("internal error: {0}")]
    Internal(String),
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
            ServiceError::NotFound(what) => Status::not_found(format!("{} not found", clip(&what))),
            ServiceError::AlreadyExists(what) => Status::already_exists(format!("{} already exists", clip(&what))),
            ServiceError::Aborted(why) => Status::aborted(clip(&why)),
            ServiceError::PermissionDenied(why) => Status::permission_denied(clip(&why)),
            ServiceError::FailedPrecondition(why) => Status::failed_precondition(clip(&why)),
            ServiceError::Unavailable(why) => Status::unavailable(clip(&why)),
            ServiceError::Internal(what) => {
                tracing::error!(what, "internal error");
                Status::internal("internal error")
            }
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
