//! What a tenant's rules may name besides the fixed fields: its custom
//! consent purposes, which the profile service keeps. Asked only for a rule
//! that names a purpose that is not standard, as this service itself (a
//! service identity), never with the caller's token.

use cx_proto::profile::v1::ListCustomPurposesRequest;
use cx_proto::profile::v1::profile_internal_service_client::ProfileInternalServiceClient;
use cx_runtime::TenantId;
use cx_runtime::error::ServiceError;
use cx_runtime::peers::{InternalPeer, internal_call_failed};

use crate::rules::{self, Catalog, Checked, RuleError};

/// The profile service's list of custom purposes.
#[derive(Clone, Debug)]
pub struct Purposes {
    profile: Option<InternalPeer>,
}

impl Purposes {
    /// `profile`: the profile service's internal RPCs, when configured.
    pub fn new(profile: Option<InternalPeer>) -> Self {
        Self { profile }
    }

    /// The tenant's catalog. Without a profile endpoint a rule can name only
    /// the standard purposes, which needs no catalog: the answer is
    /// UNAVAILABLE rather than a rule wrongly refused.
    async fn catalog(&self, t: &TenantId) -> Result<Catalog, ServiceError> {
        let profile = self.profile.as_ref().ok_or_else(|| {
            ServiceError::Unavailable("no profile endpoint: custom consent purposes cannot be read".into())
        })?;
        let mut client = ProfileInternalServiceClient::new(profile.channel());
        let names = client
            .list_custom_purposes(profile.request(t, ListCustomPurposesRequest {})?)
            .await
            .map_err(|s| internal_call_failed("profile", "list custom consent purposes", &s))?
            .into_inner()
            .names;
        Ok(Catalog { custom_purposes: names })
    }

    /// Checks `source` for tenant `t`: every error, or the typed rule. The
    /// profile service is asked only when the rule names a purpose that is
    /// not standard.
    pub async fn validate(&self, t: &TenantId, source: &str) -> Result<Result<Checked, Vec<RuleError>>, ServiceError> {
        match rules::validate(source, &Catalog::default()) {
            Err(errors) if errors.iter().any(RuleError::names_unknown_purpose) => {
                Ok(rules::validate(source, &self.catalog(t).await?))
            }
            checked => Ok(checked),
        }
    }

    /// Checks a saved segment's rule. One that no longer checks names a
    /// custom purpose the tenant has since removed: FAILED_PRECONDITION,
    /// naming the first error; the segment stays and can be updated.
    pub async fn saved(&self, t: &TenantId, source: &str) -> Result<Checked, ServiceError> {
        self.validate(t, source).await?.map_err(|errors| {
            ServiceError::FailedPrecondition(format!(
                "the segment's rule no longer checks: {}",
                errors.first().map(ToString::to_string).unwrap_or_default()
            ))
        })
    }
}
