//! Identities to profile ids, through the profile service's
//! `BatchResolveProfiles` (creating profiles for new customers), remembered
//! in process for a while: the hot path should not ask twice a second for
//! the same loyalty card.
//!
//! The memory is per replica and short-lived; merges and erasures the
//! profile service announces evict what they concern at once here. Each
//! entry (identity → profile, and profile ids known to exist) keeps the
//! cache epoch it was learnt under and counts only under that epoch: an
//! erasure moves the epoch on, so every replica forgets within one epoch
//! check, before the erasure is confirmed (ingest maps merged ids to their
//! survivors anyway).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use cx_proto::profile::v1 as pb;
use cx_proto::profile::v1::profile_service_client::ProfileServiceClient;
use cx_runtime::TenantId;
use cx_runtime::cache::Cache;
use cx_runtime::deadline::Deadline;
use cx_runtime::error::{FieldViolation, clip, field_violations};
use cx_runtime::peers::PeerChannel;
use tonic::Status;
use tonic::metadata::MetadataValue;
use uuid::Uuid;

use crate::store::JourneyError;

/// The profile service resolves at most this many identities per call.
const PER_CALL: usize = 1_000;

type Key = (TenantId, i32, String);

#[derive(Clone)]
pub struct Resolver {
    profile: Option<PeerChannel>,
    /// Profile id and the cache epoch it was learnt under.
    known: moka::sync::Cache<Key, (Uuid, i64)>,
    cache: Cache,
    /// Profile ids the profile service said the tenant has, with the cache
    /// epoch that was learnt under: an erasure moves the epoch on, so no
    /// replica vouches for an erased id once the erasure is confirmed.
    existing: moka::sync::Cache<(TenantId, Uuid), i64>,
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
        let existing = moka::sync::Cache::builder()
            .max_capacity(200_000)
            .time_to_live(ttl)
            .support_invalidation_closures()
            .build();
        Self { profile, known, cache, existing }
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
    ) -> Result<HashMap<(i32, String), Resolution>, JourneyError> {
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
                    // A resolved id exists: later touchpoints sent by it need no check.
                    self.existing.insert((t.clone(), *id), epoch);
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
    ) -> Result<Vec<((i32, String), Resolution)>, JourneyError> {
        let mut out = Vec::with_capacity(chunk.len());
        let mut asked: Vec<(i32, String)> = chunk.to_vec();
        for _ in 0..attempts {
            match self.batch_resolve(token, &asked).await {
                Ok(ids) => {
                    out.extend(asked.into_iter().zip(ids.into_iter().map(Ok)));
                    return Ok(out);
                }
                Err(JourneyError::Peer(status)) if status.code() == tonic::Code::InvalidArgument => {
                    let refused = refused_indexes(&status);
                    if refused.is_empty() {
                        return Err(JourneyError::Peer(status));
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
                Err(err) => return Err(err),
            }
        }
        // Refused again after the refused identities were taken out: asking
        // again will not help, so not UNAVAILABLE.
        tracing::warn!(tenant = %t, attempts, "identity resolution refused every time");
        Err(JourneyError::Internal("the profile service refused identity resolution".into()))
    }

    async fn batch_resolve(&self, token: &str, identities: &[(i32, String)]) -> Result<Vec<Uuid>, JourneyError> {
        let channel = self.profile.clone().ok_or_else(|| {
            JourneyError::FailedPrecondition("identities cannot be resolved: CX_PROFILE_ENDPOINT is not set".into())
        })?;
        let mut request = tonic::Request::new(pb::BatchResolveProfilesRequest {
            identities: identities
                .iter()
                .map(|(kind, value)| pb::Identity { kind: *kind, value: value.clone() })
                .collect(),
            create_if_missing: true,
        });
        request.metadata_mut().insert("authorization", bearer(token)?);
        let response = ProfileServiceClient::new(channel)
            .batch_resolve_profiles(request)
            .await
            .map_err(|status| peer_error(status, "resolve identities"))?;
        response
            .into_inner()
            .resolutions
            .into_iter()
            .map(|r| {
                Uuid::parse_str(&r.profile_id)
                    .map_err(|_| JourneyError::Internal("the profile service answered no id".into()))
            })
            .collect()
    }

    /// Forgets what resolved to any of `ids` (merged or erased profiles).
    pub fn forget(&self, t: &TenantId, ids: &[Uuid]) {
        let (t, ids): (TenantId, Arc<[Uuid]>) = (t.clone(), ids.into());
        for id in ids.iter() {
            self.existing.invalidate(&(t.clone(), *id));
        }
        let _ = self.known.invalidate_entries_if(move |key, (id, _)| key.0 == t && ids.contains(id));
    }

    /// Those of `ids` not confirmed lately (under the current cache epoch).
    pub fn unconfirmed(&self, t: &TenantId, ids: &[Uuid]) -> Vec<Uuid> {
        let epoch = self.cache.epoch();
        let confirmed = |id: &Uuid| epoch.is_some() && self.existing.get(&(t.clone(), *id)) == epoch;
        ids.iter().filter(|id| !confirmed(id)).copied().collect()
    }

    /// Those of `ids` that name no profile of the tenant, asked of the
    /// profile service in one call (ids it confirmed lately are not asked
    /// again). Without a profile endpoint nothing can be checked: none.
    pub async fn unknown_profiles(
        &self,
        t: &TenantId,
        token: &str,
        ids: &[Uuid],
    ) -> Result<HashSet<Uuid>, JourneyError> {
        let asked = self.unconfirmed(t, ids);
        let epoch = self.cache.epoch();
        let Some(channel) = self.profile.clone().filter(|_| !asked.is_empty()) else {
            return Ok(HashSet::new());
        };
        let mut request =
            tonic::Request::new(pb::CheckProfilesRequest { profile_ids: asked.iter().map(Uuid::to_string).collect() });
        request.metadata_mut().insert("authorization", bearer(token)?);
        // 100,000 unknown ids answer in 3.8 MB, near a client's default 4 MiB.
        let response = ProfileServiceClient::new(channel)
            .max_decoding_message_size(8 * 1024 * 1024)
            .check_profiles(request)
            .await
            .map_err(|status| peer_error(status, "check profile ids"))?;
        let unknown: HashSet<Uuid> =
            response.into_inner().unknown_profile_ids.iter().filter_map(|raw| Uuid::parse_str(raw).ok()).collect();
        if let Some(epoch) = epoch {
            for id in asked.iter().filter(|id| !unknown.contains(id)) {
                self.existing.insert((t.clone(), *id), epoch);
            }
        }
        Ok(unknown)
    }
}

/// The caller's token, to be forwarded on a call to the profile service.
fn bearer(token: &str) -> Result<MetadataValue<tonic::metadata::Ascii>, JourneyError> {
    format!("Bearer {token}").parse().map_err(|_| JourneyError::Unauthenticated("token is not ASCII".into()))
}

/// The profile service's error, as this service answers it: UNAVAILABLE only
/// when asking again may succeed; the caller's own faults (token, data) as
/// they came; anything else, which no retry cures, INTERNAL.
fn peer_error(status: Status, doing: &str) -> JourneyError {
    use tonic::Code;
    let callers_fault = matches!(status.code(), Code::InvalidArgument | Code::Unauthenticated | Code::PermissionDenied);
    if !callers_fault && Deadline::check_current().is_err() {
        // Our caller's deadline, passed on to profile, ran out there.
        return JourneyError::DeadlineExceeded(format!("the caller's deadline passed while asking profile to {doing}"));
    }
    match status.code() {
        Code::Unavailable | Code::ResourceExhausted | Code::Aborted | Code::Cancelled | Code::Unknown => {
            JourneyError::Unavailable(format!("the profile service cannot {doing} now: {}", clip(status.message())))
        }
        Code::DeadlineExceeded => {
            JourneyError::DeadlineExceeded(format!("the profile service did not {doing} in time"))
        }
        Code::InvalidArgument | Code::Unauthenticated | Code::PermissionDenied => JourneyError::Peer(status),
        Code::Ok
        | Code::NotFound
        | Code::AlreadyExists
        | Code::FailedPrecondition
        | Code::OutOfRange
        | Code::Unimplemented
        | Code::Internal
        | Code::DataLoss => JourneyError::Internal(format!(
            "the profile service cannot {doing}: {:?} {}",
            status.code(),
            clip(status.message())
        )),
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

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn only_what_a_retry_may_cure_is_unavailable() {
        let mapped = |code| peer_error(Status::new(code, "why"), "check profile ids").code();
        for code in [Code::Unavailable, Code::ResourceExhausted, Code::Aborted, Code::Cancelled, Code::Unknown] {
            assert_eq!(mapped(code), Code::Unavailable, "{code:?}");
        }
        assert_eq!(mapped(Code::DeadlineExceeded), Code::DeadlineExceeded);
        for code in [Code::InvalidArgument, Code::Unauthenticated, Code::PermissionDenied] {
            assert_eq!(mapped(code), code, "the caller's own fault passes as it came");
        }
        for code in [Code::NotFound, Code::FailedPrecondition, Code::Unimplemented, Code::Internal, Code::DataLoss] {
            assert_eq!(mapped(code), Code::Internal, "{code:?}");
        }
    }
}
