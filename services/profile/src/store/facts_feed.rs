//! Rows naming a customer whose profile facts changed
//! ([`super::events::PROFILE_FACTS`]) become, when delivered, a
//! `cx.profile.v1.ProfileFactsChanged` of the facts current then: a customer
//! changed ten times before delivery costs ten tiny rows, each delivering
//! current state. A customer gone (merged away or erased) sends nothing;
//! a merge names its survivor.

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
    async fn expand(&self, messages: &[&Claimed]) -> Vec<Result<Option<Content>, tonic::Status>> {
        let mut out = Vec::with_capacity(messages.len());
        for m in messages {
            out.push(self.one(m).await.map_err(tonic::Status::from));
        }
        out
    }
}

impl FactsExpander {
    async fn one(&self, m: &Claimed) -> Result<Option<Content>, ProfileError> {
        let corrupt = |what: &str| ProfileError::Corrupt(format!("outbox row {}: {what}", m.id));
        let t = TenantId::parse(&m.tenant_id).map_err(|_| corrupt("tenant"))?;
        let customer = Uuid::from_slice(&m.payload).map_err(|_| corrupt("payload is not a customer id"))?;
        // Stamped before the read: a read started later sees at least as
        // much, so the receiver's "later change_time wins" keeps the newer.
        let read_at = cx_runtime::store::now();
        let record = match self.0.get(&t, customer).await {
            Ok(record) => record,
            Err(ProfileError::NotFound(_)) => return Ok(None),
            Err(err) => return Err(err),
        };
        let message = facts_message(&record, &self.0.intensity_model(&t).await?, read_at);
        Ok(Some((pb::ProfileFactsChanged::full_name(), message.encode_to_vec())))
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
