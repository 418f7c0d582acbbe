//! The pages of `ProfileInternalService.ExportProfileFacts`: the live
//! customers (a merged or erased one has no profile row left) in id order,
//! each with the facts the feed would send now and the consent decisions
//! in force as the consent feed sent them. A page is three reads however
//! many customers it holds: profiles (with identities and scores), the
//! tenant's intensity model, the decisions.

use cx_proto::profile::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::keyset::Page;
use uuid::Uuid;

use super::events::consent_message;
use super::facts_feed::facts_message;
use super::{ProfileStore, Result};

impl ProfileStore {
    /// Up to `size` customers after `after`, as one page of the export.
    pub async fn facts_page(
        &self,
        t: &TenantId,
        after: Option<Uuid>,
        size: u64,
    ) -> Result<Page<pb::ExportProfileFactsResponse>> {
        // Stamped before the read, as the facts feed stamps it.
        let read_at = cx_runtime::store::now();
        let (records, more) = self.list(t, after, size).await?;
        let model = self.intensity_model(t).await?;
        let ids: Vec<Uuid> = records.iter().map(|r| r.id).collect();
        let consents = self.consents_in_force(t, &ids).await?;
        let message = pb::ExportProfileFactsResponse {
            facts: records.iter().map(|r| facts_message(r, &model, read_at)).collect(),
            consents: consents.iter().map(|(customer, decision)| consent_message(*customer, decision)).collect(),
            cursor: String::new(),
        };
        Ok(Page { message, last: ids.last().copied(), more })
    }
}
