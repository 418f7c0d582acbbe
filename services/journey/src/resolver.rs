//! Identities to profile ids, through the profile service's
//! `BatchResolveProfiles` (creating profiles for new customers), remembered
//! in process for a while: the hot path should not ask twice a second for
//! the same loyalty card.
//!
//! The memory is per replica and short-lived; merges and erasures the
//! profile service announces evict what they concern at once here. Each
//! entry keeps the cache epoch it was learnt under and counts only under
//! that epoch: an erasure moves the epoch on, so every replica forgets
//! within one epoch check (ingest maps merged ids to their survivors anyway).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cx_proto::profile::v1 as pb;
use cx_proto::profile::v1::profile_service_client::ProfileServiceClient;
use cx_runtime::TenantId;
use cx_runtime::cache::Cache;
use cx_runtime::deadline::Deadline;
use cx_runtime::error::{FieldViolation, field_violations};
use cx_runtime::peers::PeerChannel;
use tonic::Status;
use uuid::Uuid;

/// The profile service resolves at most this many identities per call.
const PER_CALL: usize = 1_000;

type Key = (TenantId, i32, String);

#[derive(Clone)]
pub struct Resolver {
    profile: Option<PeerChannel>,
    /// Profile id and the cache epoch it was learnt under.
    known: moka::sync::Cache<Key, (Uuid, i64)>,
    cache: Cache,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").field("profile", &self.profile.is_some()).finish()
    }
}

/// The outcome for one identity.
pub type Resolution = Result<Uuid, FieldViolation>;

impl Resolver {
    pub fn new(profile: Option<PeerChannel>, ttl: Duration, cache: Cache) -> Self {
        let known = moka::sync::Cache::builder()
            .max_capacity(200_000)
            .time_to_live(ttl)
            .support_invalidation_closures()
            .build();
        Self { profile, known, cache }
    }

    /// Resolves `identities` (kind, value as sent) on behalf of the caller
    /// whose `token` is forwarded. A bad identity gets its own violation
    /// (field `value` or `kind`); unless `strict`, the others still resolve.
    /// Strict, one bad identity leaves all the others of its call out of the
    /// answer: no profile is created for a batch that will be refused.
    pub async fn resolve(
        &self,
        t: &TenantId,
        token: &str,
        identities: &[(i32, String)],
        strict: bool,
    ) -> Result<HashMap<(i32, String), Resolution>, Status> {
        let mut out = HashMap::with_capacity(identities.len());
        let mut missing = Vec::new();
        let epoch = self.cache.epoch();
        for (kind, value) in identities {
            match self.known.get(&(t.clone(), *kind, value.clone())).filter(|(_, at)| Some(*at) == epoch) {
                Some((id, _)) => {
                    out.insert((*kind, value.clone()), Ok(id));
                }
                None => missing.push((*kind, value.clone())),
            }
        }
        missing.sort();
        missing.dedup();
        for chunk in missing.chunks(PER_CALL) {
            for (identity, resolution) in self.call(t, token, chunk, if strict { 1 } else { 2 }).await? {
                if let (Ok(id), Some(epoch)) = (&resolution, epoch) {
                    self.known.insert((t.clone(), identity.0, identity.1.clone()), (*id, epoch));
                }
                out.insert(identity, resolution);
            }
        }
        Ok(out)
    }

    /// BatchResolveProfiles, up to `attempts` times: identities the profile
    /// service refuses are taken out and the rest asked again.
    async fn call(
        &self,
        t: &TenantId,
        token: &str,
        chunk: &[(i32, String)],
        attempts: usize,
    ) -> Result<Vec<((i32, String), Resolution)>, Status> {
        let mut out = Vec::with_capacity(chunk.len());
        let mut asked: Vec<(i32, String)> = chunk.to_vec();
        for _ in 0..attempts {
            match self.batch_resolve(token, &asked).await {
                Ok(ids) => {
                    out.extend(asked.into_iter().zip(ids.into_iter().map(Ok)));
                    return Ok(out);
                }
                Err(status) if status.code() == tonic::Code::InvalidArgument => {
                    let refused = refused_indexes(&status);
                    if refused.is_empty() {
                        return Err(status);
                    }
                    let mut kept = Vec::with_capacity(asked.len());
                    for (i, identity) in asked.into_iter().enumerate() {
                        match refused.get(&i) {
                            Some(violation) => out.push((identity, Err(violation.clone()))),
                            None => kept.push(identity),
                        }
                    }
                    asked = kept;
                    // Strict: the others stay unresolved (and uncreated).
                    if asked.is_empty() || attempts == 1 {
                        return Ok(out);
                    }
                }
                Err(status) => return Err(status),
            }
        }
        tracing::warn!(tenant = %t, attempts, "identity resolution refused every time");
        Err(Status::unavailable("the profile service refused identity resolution"))
    }

    async fn batch_resolve(&self, token: &str, identities: &[(i32, String)]) -> Result<Vec<Uuid>, Status> {
        let channel = self.profile.clone().ok_or_else(|| {
            Status::failed_precondition("identities cannot be resolved: CX_PROFILE_ENDPOINT is not set")
        })?;
        let mut request = tonic::Request::new(pb::BatchResolveProfilesRequest {
            identities: identities
                .iter()
                .map(|(kind, value)| pb::Identity { kind: *kind, value: value.clone() })
                .collect(),
            create_if_missing: true,
        });
        let bearer = format!("Bearer {token}").parse().map_err(|_| Status::unauthenticated("token is not ASCII"))?;
        request.metadata_mut().insert("authorization", bearer);
        let response = ProfileServiceClient::new(channel).batch_resolve_profiles(request).await.map_err(|status| {
            match status.code() {
                // The caller's own token or data: pass on as it is.
                tonic::Code::InvalidArgument | tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => status,
                // Our caller's deadline, passed on to profile, ran out there.
                _ if Deadline::check_current().is_err() => {
                    Status::deadline_exceeded("the caller's deadline passed while identities were resolved")
                }
                _ => {
                    Status::unavailable(format!("the profile service cannot resolve identities: {}", status.message()))
                }
            }
        })?;
        response
            .into_inner()
            .resolutions
            .into_iter()
            .map(|r| Uuid::parse_str(&r.profile_id).map_err(|_| Status::internal("the profile service answered no id")))
            .collect()
    }

    /// Forgets what resolved to any of `ids` (merged or erased profiles).
    pub fn forget(&self, t: &TenantId, ids: &[Uuid]) {
        let (t, ids): (TenantId, Arc<[Uuid]>) = (t.clone(), ids.into());
        let _ = self.known.invalidate_entries_if(move |key, (id, _)| key.0 == t && ids.contains(id));
    }
}

/// `identities[3].value` → 3 → a violation on the touchpoint's identity.
fn refused_indexes(status: &Status) -> HashMap<usize, FieldViolation> {
    field_violations(status)
        .into_iter()
        .filter_map(|v| {
            let rest = v.field.strip_prefix("identities[")?;
            let (index, field) = rest.split_once(']')?;
            let field = format!("identity{field}");
            Some((index.parse().ok()?, FieldViolation::new(field, v.description)))
        })
        .collect()
}
