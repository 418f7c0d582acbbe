//! The profile service's answer about customers before survey invites
//! them (docs/DOMAIN.md §3.4): the `survey` consent in force, with the
//! lifecycle and digital category the trigger conditions read. One
//! `CheckConsents` call per batch of offered touchpoints (a batch names at
//! most 10,000 customers, what one call takes), as the survey service
//! itself (a service token), never with a user's.

use std::collections::HashMap;

use cx_proto::profile::v1::profile_internal_service_client::ProfileInternalServiceClient;
use cx_proto::profile::v1::{CheckConsentsRequest, ConsentPurpose, Purpose, purpose};
use cx_runtime::TenantId;
use cx_runtime::error::ServiceError;
use cx_runtime::peers::{InternalPeer, internal_call_failed};
use uuid::Uuid;

use crate::domain::matching::Standing;

/// Customers a `CheckConsents` call takes.
const PER_CALL: usize = 10_000;

/// The client of the profile service's consent check.
#[derive(Clone, Debug)]
pub struct Consents {
    profile: Option<InternalPeer>,
}

impl Consents {
    /// `profile`: the profile service's internal RPCs, when configured.
    pub fn new(profile: Option<InternalPeer>) -> Self {
        Self { profile }
    }

    /// The standing of each of `customers` the profile service knows;
    /// unknown and erased ones are left out (and invited by nothing).
    /// Without a profile endpoint, or when profile fails, the batch waits
    /// (`UNAVAILABLE`, redelivered later): no one is invited unchecked.
    pub async fn standing(&self, t: &TenantId, customers: &[Uuid]) -> Result<HashMap<Uuid, Standing>, ServiceError> {
        let mut out = HashMap::with_capacity(customers.len());
        if customers.is_empty() {
            return Ok(out);
        }
        let profile = self.profile.as_ref().ok_or_else(|| {
            ServiceError::Unavailable("no profile endpoint: consent cannot be checked, retry later".into())
        })?;
        let mut client = ProfileInternalServiceClient::new(profile.channel());
        for chunk in customers.chunks(PER_CALL) {
            let request = CheckConsentsRequest {
                purpose: Some(Purpose { kind: Some(purpose::Kind::Standard(ConsentPurpose::Survey as i32)) }),
                profile_ids: chunk.iter().map(Uuid::to_string).collect(),
            };
            let answer = client
                .check_consents(profile.request(t, request)?)
                .await
                .map_err(|s| internal_call_failed("profile", "check consent", &s))?
                .into_inner();
            for consent in answer.consents {
                let Ok(id) = Uuid::parse_str(&consent.profile_id) else { continue };
                out.insert(
                    id,
                    Standing {
                        consent: consent.granted,
                        lifecycle: consent.lifecycle,
                        category: consent.digital_category,
                    },
                );
            }
        }
        Ok(out)
    }
}
