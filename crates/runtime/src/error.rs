//! Errors as clients read them, and the one way requests are validated.
//!
//! # What a client reads
//!
//! [`ServiceError`] is what a service's store and handlers return; its
//! conversion into a gRPC [`Status`] is the one place codes are chosen
//! (docs/DECISIONS.md, Input). A variant whose text the client reads carries
//! that text complete: its `Display` is the sentence the status carries (cut
//! to [`MAX_ECHO`] bytes), composed where the error is made and never added
//! to on the way out. The common forms are composed once, by constructors:
//! `ServiceError::not_found(format_args!("profile {id}"))` reads "profile …
//! not found". `Internal`, `Corrupt` and `Database` carry what is logged; the
//! client reads a fixed sentence without the detail. `Peer` passes another
//! service's answer on as it came, and nothing else.
//!
//! # Validating a request
//!
//! - A *check* validates one field: `fn(raw, field) -> Result<T, FieldViolation>`,
//!   the field named by its path (`identity.value`, `identities[3].kind`).
//! - A handler combines its independent checks with [`all2`] / [`all3`]
//!   (nested for more): every value, or every violation at once, so the
//!   client learns of all of them in one round trip. It ends in plain `?`.
//! - A list is checked item by item with [`each`]: every value, or the
//!   violations of every bad item.
//! - A message of many fields (a touchpoint, an activity record, a map's
//!   steps) is checked by one function that records into a [`Violations`] —
//!   [`Violations::check`] for a check's result, [`Violations::add`] for a
//!   rule of its own — and returns [`Violations::finish`]; its result is a
//!   check like any other.
//! - A lone violation is returned as `Err(FieldViolation::new(field, why).into())`.
//!
//! Handlers build no status: [`FieldViolation`], [`Violations`] and
//! [`ServiceError`] each convert into one (`INVALID_ARGUMENT` with a
//! `google.rpc.BadRequest` detail for violations).

use std::fmt::Display;

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

/// Every violation found in a request, so the client learns of all of them
/// at once rather than one per round trip.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }

    /// Records the violations of a check, returning its value if it passed.
    pub fn check<T, E: IntoViolations>(&mut self, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(found) => {
                self.0.extend(found.into_violations());
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when nothing was recorded, otherwise the violations.
    pub fn finish(self) -> Result<(), Self> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl From<FieldViolation> for Violations {
    fn from(violation: FieldViolation) -> Self {
        Self(vec![violation])
    }
}

impl From<Violations> for Vec<FieldViolation> {
    fn from(violations: Violations) -> Self {
        violations.0
    }
}

impl IntoIterator for Violations {
    type Item = FieldViolation;
    type IntoIter = std::vec::IntoIter<FieldViolation>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
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

impl IntoViolations for Violations {
    fn into_violations(self) -> Vec<FieldViolation> {
        self.0
    }
}

/// Both checks' values, or every violation either found. Nest it for more.
pub fn all2<A, B, EA: IntoViolations, EB: IntoViolations>(
    a: Result<A, EA>,
    b: Result<B, EB>,
) -> Result<(A, B), Violations> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (a, b) => {
            let mut found = Violations::new();
            found.check(a);
            found.check(b);
            Err(found)
        }
    }
}

/// The three checks' values, or every violation they found.
pub fn all3<A, B, C, EA: IntoViolations, EB: IntoViolations, EC: IntoViolations>(
    a: Result<A, EA>,
    b: Result<B, EB>,
    c: Result<C, EC>,
) -> Result<(A, B, C), Violations> {
    all2(all2(a, b), c).map(|((a, b), c)| (a, b, c))
}

/// Every item's value, or every violation of every item: `check` is given
/// each item with its index (for paths such as `identities[3].kind`).
pub fn each<I, T, E: IntoViolations>(
    items: impl IntoIterator<Item = I>,
    mut check: impl FnMut(usize, I) -> Result<T, E>,
) -> Result<Vec<T>, Violations> {
    let mut found = Violations::new();
    let values = items.into_iter().enumerate().filter_map(|(i, item)| found.check(check(i, item))).collect();
    found.finish().map(|()| values)
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

/// How many of `violations`, clipped, fit in [`MAX_DETAILS`].
fn listed(violations: &[FieldViolation]) -> usize {
    let mut size = 0;
    violations
        .iter()
        .take_while(|v| {
            size += clip(&v.field).len() + clip(&v.description).len() + 8;
            size <= MAX_DETAILS
        })
        .count()
}

/// The message of `INVALID_ARGUMENT` for `violations`: the first of them,
/// how many there are, how many the detail lists when not all.
fn invalid_message(violations: &[FieldViolation]) -> String {
    let mut message = match violations {
        [] => return "the request is invalid".to_owned(),
        [only] => format!("invalid {}: {}", clip(&only.field), clip(&only.description)),
        [first, ..] => {
            format!("{} invalid fields, first {}: {}", violations.len(), clip(&first.field), clip(&first.description))
        }
    };
    let listed = listed(violations);
    if listed < violations.len() {
        message.push_str(&format!(" ({listed} listed)"));
    }
    message
}

/// `INVALID_ARGUMENT` carrying a `google.rpc.BadRequest` with the violations
/// (each clipped, at most [`MAX_DETAILS`] bytes of them). No violation at
/// all still answers `INVALID_ARGUMENT`, without a detail.
pub fn invalid_argument(violations: &[FieldViolation]) -> Status {
    let message = invalid_message(violations);
    if violations.is_empty() {
        return Status::invalid_argument(message);
    }
    let mut details = ErrorDetails::new();
    for violation in violations.iter().take(listed(violations)) {
        details.add_bad_request_violation(clip(&violation.field), clip(&violation.description));
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

/// The errors of a service's store and handlers. A variant holding a
/// `String` holds the complete sentence its client reads, except `Internal`
/// and `Corrupt`, whose text is logged (see the module's documentation).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Every violation found in the request.
    #[error("{}", invalid_message(.0))]
    InvalidArgument(Vec<FieldViolation>),
    /// What the call names is not there ([`ServiceError::not_found`]).
    #[error("{0}")]
    NotFound(String),
    /// What the call would create is there already
    /// ([`ServiceError::already_exists`]).
    #[error("{0}")]
    AlreadyExists(String),
    /// A concurrent change won; the client may retry.
    #[error("{0}")]
    Aborted(String),
    /// The caller may not do this.
    #[error("{0}")]
    PermissionDenied(String),
    /// The caller's credentials are missing, invalid or expired.
    #[error("{0}")]
    Unauthenticated(String),
    /// The system is not in the state the call needs.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A dependency failed in a way a retry may cure (naming no host).
    #[error("{0}")]
    Unavailable(String),
    /// The caller's deadline passed before the work was done.
    #[error("{0}")]
    DeadlineExceeded(String),
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
    /// One invalid field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description)])
    }

    /// "`what` not found": `not_found(format_args!("profile {id}"))`.
    pub fn not_found(what: impl Display) -> Self {
        Self::NotFound(format!("{what} not found"))
    }

    /// "`what` already exists".
    pub fn already_exists(what: impl Display) -> Self {
        Self::AlreadyExists(format!("{what} already exists"))
    }

    /// The gRPC code the client receives.
    pub fn code(&self) -> Code {
        match self {
            Self::InvalidArgument(_) => Code::InvalidArgument,
            Self::NotFound(_) => Code::NotFound,
            Self::AlreadyExists(_) => Code::AlreadyExists,
            Self::Aborted(_) => Code::Aborted,
            Self::PermissionDenied(_) => Code::PermissionDenied,
            Self::Unauthenticated(_) => Code::Unauthenticated,
            Self::FailedPrecondition(_) => Code::FailedPrecondition,
            Self::Unavailable(_) => Code::Unavailable,
            Self::DeadlineExceeded(_) => Code::DeadlineExceeded,
            Self::Database(err) if crate::store::is_connection_error(err) => Code::Unavailable,
            Self::Internal(_) | Self::Corrupt(_) | Self::Database(_) => Code::Internal,
            Self::Peer(status) => status.code(),
        }
    }
}

impl From<FieldViolation> for ServiceError {
    fn from(violation: FieldViolation) -> Self {
        Self::InvalidArgument(vec![violation])
    }
}

impl From<Violations> for ServiceError {
    fn from(violations: Violations) -> Self {
        Self::InvalidArgument(violations.0)
    }
}

impl From<Vec<FieldViolation>> for ServiceError {
    fn from(violations: Vec<FieldViolation>) -> Self {
        Self::InvalidArgument(violations)
    }
}

impl From<FieldViolation> for Status {
    fn from(violation: FieldViolation) -> Self {
        ServiceError::from(violation).into()
    }
}

impl From<Violations> for Status {
    fn from(violations: Violations) -> Self {
        ServiceError::from(violations).into()
    }
}

impl From<ServiceError> for Status {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::InvalidArgument(violations) => invalid_argument(&violations),
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
            // The rest carry their sentence: sent as it is, bounded.
            told => Status::new(told.code(), clip(&told.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The code and message a client reads of `err`.
    fn answer(err: ServiceError) -> (Code, String) {
        let status = Status::from(err);
        (status.code(), status.message().to_owned())
    }

    #[test]
    fn each_variant_answers_its_complete_sentence() {
        let id = uuid::Uuid::from_u128(7);
        let told = [
            (ServiceError::not_found(format_args!("profile {id}")), Code::NotFound, format!("profile {id} not found")),
            (
                ServiceError::already_exists(format_args!("consent purpose '{}'", "wine_club")),
                Code::AlreadyExists,
                "consent purpose 'wine_club' already exists".to_owned(),
            ),
            // Nothing is appended to a sentence made whole where it was written
            // (it read "… (merge them instead) already exists").
            (
                ServiceError::AlreadyExists(
                    "the email identity belongs to another profile (merge them instead)".into(),
                ),
                Code::AlreadyExists,
                "the email identity belongs to another profile (merge them instead)".to_owned(),
            ),
            (
                ServiceError::NotFound("no profile has this email identity".into()),
                Code::NotFound,
                "no profile has this email identity".to_owned(),
            ),
            (ServiceError::Aborted("retry".into()), Code::Aborted, "retry".to_owned()),
            (ServiceError::PermissionDenied("no".into()), Code::PermissionDenied, "no".to_owned()),
            (ServiceError::Unauthenticated("token expired".into()), Code::Unauthenticated, "token expired".to_owned()),
            (ServiceError::FailedPrecondition("unset".into()), Code::FailedPrecondition, "unset".to_owned()),
            (ServiceError::Unavailable("stopped".into()), Code::Unavailable, "stopped".to_owned()),
            (ServiceError::DeadlineExceeded("late".into()), Code::DeadlineExceeded, "late".to_owned()),
            (
                ServiceError::invalid("identity.value", "must not be empty"),
                Code::InvalidArgument,
                "invalid identity.value: must not be empty".to_owned(),
            ),
        ];
        for (err, code, sentence) in told {
            assert_eq!(err.code(), code, "{sentence}");
            assert_eq!(err.to_string(), sentence, "Display is the sentence");
            assert_eq!(answer(err), (code, sentence), "the status carries the sentence");
        }
    }

    #[test]
    fn internal_detail_is_logged_not_sent() {
        let internal = ServiceError::Internal("outbox row 7 is half written".into());
        assert_eq!(internal.to_string(), "internal error: outbox row 7 is half written");
        assert_eq!(answer(internal), (Code::Internal, "internal error".to_owned()));
        let corrupt = ServiceError::Corrupt("lifecycle 'x' of profile 7".into());
        assert_eq!(answer(corrupt), (Code::Internal, "stored data could not be read".to_owned()));
        let database = ServiceError::Database(sea_orm::DbErr::Custom("syntax error at or near \"x\"".into()));
        assert_eq!(answer(database), (Code::Internal, "database error".to_owned()));
        let down = ServiceError::Database(sea_orm::DbErr::Conn(sea_orm::RuntimeErr::Internal("refused".into())));
        assert_eq!(down.code(), Code::Unavailable);
        assert_eq!(answer(down), (Code::Unavailable, "the database is unavailable, retry later".to_owned()));
    }

    #[test]
    fn a_peer_answer_passes_unchanged() {
        let peer = ServiceError::Peer(Status::permission_denied("this call needs the writer role"));
        assert_eq!(peer.code(), Code::PermissionDenied);
        assert_eq!(answer(peer), (Code::PermissionDenied, "this call needs the writer role".to_owned()));
    }

    #[test]
    fn a_long_sentence_is_clipped() {
        // 197 bytes of the name and "…" (3 bytes): 200.
        let (_, message) = answer(ServiceError::not_found("n".repeat(1000)));
        assert_eq!(message, format!("{}…", "n".repeat(197)));
    }

    #[test]
    fn violations_round_trip_through_status_details() {
        let mut v = Violations::new();
        v.add("identity.value", "must not be empty");
        v.add("page_size", "must not be negative");
        let Err(found) = v.finish() else { panic!("violations were recorded") };
        let err = ServiceError::from(found);
        let message = "2 invalid fields, first identity.value: must not be empty";
        assert_eq!(err.to_string(), message);
        let status = Status::from(err);
        assert_eq!((status.code(), status.message()), (Code::InvalidArgument, message));
        assert_eq!(
            field_violations(&status),
            vec![
                FieldViolation::new("identity.value", "must not be empty"),
                FieldViolation::new("page_size", "must not be negative"),
            ]
        );
    }

    #[test]
    fn no_violation_still_answers_invalid_argument() {
        let status = invalid_argument(&[]);
        assert_eq!((status.code(), status.message()), (Code::InvalidArgument, "the request is invalid"));
        assert_eq!(field_violations(&status), []);
        let err = ServiceError::InvalidArgument(Vec::new());
        assert_eq!(err.to_string(), "the request is invalid");
        assert_eq!(answer(err), (Code::InvalidArgument, "the request is invalid".to_owned()));
        assert_eq!(answer(Violations::new().into()), (Code::InvalidArgument, "the request is invalid".to_owned()));
    }

    #[test]
    fn a_lone_violation_converts_to_its_status() {
        let status = Status::from(FieldViolation::new("touchpoint", "is required"));
        assert_eq!((status.code(), status.message()), (Code::InvalidArgument, "invalid touchpoint: is required"));
        assert_eq!(field_violations(&status), [FieldViolation::new("touchpoint", "is required")]);
    }

    #[test]
    fn combined_checks_report_every_violation() {
        let bad = |f: &str| Err::<u8, _>(FieldViolation::new(f, "bad"));
        assert_eq!(all2(Ok::<_, FieldViolation>(1), Ok::<_, FieldViolation>(2)), Ok((1, 2)));
        let fields: Vec<String> =
            all3(bad("a"), Ok::<u8, FieldViolation>(1), bad("c")).unwrap_err().into_iter().map(|v| v.field).collect();
        assert_eq!(fields, ["a", "c"]);
        // A record's collected violations combine with a field's check.
        let mut record = Violations::new();
        assert_eq!(record.check(bad("r.x")), None);
        record.add("r.y", "bad");
        let fields: Vec<String> = all2(record.finish(), bad("z")).unwrap_err().into_iter().map(|v| v.field).collect();
        assert_eq!(fields, ["r.x", "r.y", "z"]);
    }

    #[test]
    fn each_item_is_checked() {
        let even = |i: usize, n: u8| {
            if n.is_multiple_of(2) { Ok(n / 2) } else { Err(FieldViolation::new(format!("n[{i}]"), "odd")) }
        };
        assert_eq!(each([2, 4, 8], even), Ok(vec![1, 2, 4]));
        let fields: Vec<String> = each([1, 4, 3], even).unwrap_err().into_iter().map(|v| v.field).collect();
        assert_eq!(fields, ["n[0]", "n[2]"]);
        assert_eq!(each(Vec::<u8>::new(), even), Ok(vec![]));
    }

    #[test]
    fn echoed_values_and_details_are_bounded() {
        // A 20 KB path: its violation is clipped to 200 bytes (197 + "…").
        let long = "x".repeat(20_000);
        let status = invalid_argument(&[FieldViolation::new("update_mask.paths[0]", format!("unknown path {long}"))]);
        let found = field_violations(&status);
        let [only] = found.as_slice() else { panic!("one violation: {found:?}") };
        assert_eq!(only.description.len(), MAX_ECHO);
        assert!(only.description.ends_with('…'));
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
