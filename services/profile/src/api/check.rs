//! CheckProfiles: which of many profile ids the tenant does not have.

use std::collections::HashSet;

use cx_proto::profile::v1 as pb;
use cx_runtime::TenantId;
use uuid::Uuid;

use super::ProfileApi;
use crate::error::ProfileError;

impl ProfileApi {
    /// The ids of `asked` that name no profile of the tenant, in order,
    /// each once; an id that is not a UUID names none.
    pub(super) async fn unknown_profiles(
        &self,
        t: &TenantId,
        asked: Vec<String>,
    ) -> Result<pb::CheckProfilesResponse, ProfileError> {
        let ids: Vec<Uuid> =
            asked.iter().filter_map(|raw| Uuid::parse_str(raw).ok()).collect::<HashSet<_>>().into_iter().collect();
        let known = self.store.known(t, &ids).await?;
        let mut answered = HashSet::new();
        let unknown_profile_ids = asked
            .into_iter()
            .filter(|raw| Uuid::parse_str(raw).map_or(true, |id| !known.contains(&id)))
            .filter(|raw| answered.insert(raw.clone()))
            .collect();
        Ok(pb::CheckProfilesResponse { unknown_profile_ids })
    }
}
