//! Rows naming a customer whose profile facts changed
//! ([`super::events::PROFILE_FACTS`]) become, when delivered, a
//! `cx.profile.v1.ProfileFactsChanged` of the facts current then: a customer
//! changed ten times before delivery costs ten tiny rows, each delivering
//! current state. A customer gone (merged away or erased) sends nothing;
//! a merge names its survivor.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use cx_proto::profile::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::outbox::dispatcher::{Claimed, Content, Expand};
use prost::{Message, Name};
use uuid::Uuid;

use super::ProfileStore;
use crate::api::convert::profile_to_proto;
use crate::domain::intensity::IntensityModel;
use crate::error::ProfileError;
use crate::store::profiles::ProfileRecord;

/// Makes each row's message from the profile as stored at delivery.
#[derive(Debug)]
pub struct FactsExpander(pub ProfileStore);

#[async_trait]
impl Expand for FactsExpander {
    /// The rows of one claim, read together: per tenant, one read of all
    /// their customers (not one a row), stamped before it.
    async fn expand(&self, messages: &[&Claimed]) -> Vec<Result<Option<Content>, tonic::Status>> {
        let mut out: Vec<Option<Result<Option<Content>, tonic::Status>>> = vec![None; messages.len()];
        let mut by_tenant: BTreeMap<&str, Vec<(usize, Uuid)>> = BTreeMap::new();
        for (i, m) in messages.iter().enumerate() {
            match Uuid::from_slice(&m.payload) {
                Ok(customer) => by_tenant.entry(m.tenant_id.as_str()).or_default().push((i, customer)),
                Err(_) => out[i] = Some(Err(corrupt(m, "payload is not a customer id").into())),
            }
        }
        for (tenant, rows) in by_tenant {
            match self.tenant(tenant, &rows).await {
                Ok(mut found) => {
                    for (i, customer) in rows {
                        out[i] = Some(Ok(found
                            .remove(&customer)
                            .map(|facts| (pb::ProfileFactsChanged::full_name(), facts.encode_to_vec()))));
                    }
                }
                Err(err) => {
                    let status = tonic::Status::from(err);
                    for (i, _) in rows {
                        out[i] = Some(Err(status.clone()));
                    }
                }
            }
        }
        out.into_iter().map(|r| r.unwrap_or_else(|| Err(tonic::Status::internal("row not expanded")))).collect()
    }
}

fn corrupt(m: &Claimed, what: &str) -> ProfileError {
    ProfileError::Corrupt(format!("outbox row {}: {what}", m.id))
}

impl FactsExpander {
    /// The current facts of the customers still stored among `rows`.
    async fn tenant(
        &self,
        tenant: &str,
        rows: &[(usize, Uuid)],
    ) -> Result<HashMap<Uuid, pb::ProfileFactsChanged>, ProfileError> {
        let t = TenantId::parse(tenant).map_err(|_| ProfileError::Corrupt(format!("outbox tenant {tenant:?}")))?;
        let mut ids: Vec<Uuid> = rows.iter().map(|(_, id)| *id).collect();
        ids.sort();
        ids.dedup();
        // Stamped before the read: a read started later sees at least as
        // much, so the receiver's "later change_time wins" keeps the newer.
        let read_at = cx_runtime::store::now();
        let records = self.0.get_many(&t, &ids).await?;
        let model = self.0.intensity_model(&t).await?;
        Ok(records
            .iter()
            .filter_map(|r| {
                let facts = facts_message(r, &model, read_at);
                Uuid::parse_str(&facts.profile_id).ok().map(|id| (id, facts))
            })
            .collect())
    }
}

/// The facts of a stored profile as the feed (and the facts export) sends
/// them, read at `read_at`.
pub fn facts_message(
    record: &ProfileRecord,
    model: &IntensityModel,
    read_at: chrono::DateTime<chrono::Utc>,
) -> pb::ProfileFactsChanged {
    let profile = profile_to_proto(record, model);
    let mut contacts: Vec<pb::Identity> =
        profile.identities.into_iter().filter(|i| CONTACT_KINDS.contains(&i.kind)).collect();
    contacts.sort_by(|a, b| (a.kind, &a.value).cmp(&(b.kind, &b.value)));
    pb::ProfileFactsChanged {
        profile_id: profile.id,
        lifecycle: profile.lifecycle,
        persona: profile.persona,
        attributes: profile.attributes,
        create_time: profile.create_time,
        digital_intensity: profile.digital_intensity,
        version: profile.version,
        change_time: Some(cx_proto::timestamp(read_at)),
        contacts,
    }
}

/// The identities a campaign reaches a customer by: the others (loyalty
/// card, cookies, CRM ids) stay in profile.
const CONTACT_KINDS: [i32; 3] =
    [pb::IdentityKind::Email as i32, pb::IdentityKind::Phone as i32, pb::IdentityKind::AppInstall as i32];
