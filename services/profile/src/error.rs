//! The profile service's errors: the runtime's, mapped to gRPC codes there.

pub use cx_runtime::error::ServiceError as ProfileError;
