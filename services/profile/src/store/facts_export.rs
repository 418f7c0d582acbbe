//! The pages of `ProfileInternalService.ExportProfileFacts`: the live
//! customers (a merged or erased one has no profile row left) in id order,
//! each with the facts the feed would send now and the consent decisions
//! in force as the consent feed sent them. A page is three reads however
//! many customers it holds: profiles (with identities and scores), the
//! tenant's intensity model, the decisions; it ends early when its
//! customers' facts stop fitting in `keyset::MAX_PAGE_BYTES`.

use std::collections::HashMap;

use cx_proto::profile::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::keyset::{Page, fitting};
use prost::Message;
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
        let (records, mut more) = self.list(t, after, size).await?;
        let model = self.intensity_model(t).await?;
        let ids: Vec<Uuid> = records.iter().map(|r| r.id).collect();
        let mut facts: Vec<pb::ProfileFactsChanged> =
            records.iter().map(|r| facts_message(r, &model, read_at)).collect();
        let mut consents: Vec<(Uuid, pb::ConsentChanged)> = self
            .consents_in_force(t, &ids)
            .await?
            .iter()
            .map(|(customer, decision)| (*customer, consent_message(*customer, decision)))
            .collect();
        // Customers with large facts: the page ends where they stop fitting.
        let mut sizes: HashMap<Uuid, usize> = facts.iter().zip(&ids).map(|(f, id)| (*id, f.encoded_len())).collect();
        for (customer, consent) in &consents {
            *sizes.entry(*customer).or_default() += consent.encoded_len() + 8;
        }
        let fit = fitting(ids.iter().map(|id| sizes.get(id).copied().unwrap_or_default()));
        let last = fit.checked_sub(1).map(|i| ids[i]);
        if fit < ids.len() {
            facts.truncate(fit);
            // Ids come in order: the page's customers are those up to the last.
            consents.retain(|(customer, _)| Some(*customer) <= last);
            more = true;
        }
        let message = pb::ExportProfileFactsResponse {
            facts,
            consents: consents.into_iter().map(|(_, consent)| consent).collect(),
            cursor: String::new(),
        };
        Ok(Page { message, last, more })
    }
}
