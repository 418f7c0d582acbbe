//! `cx.profile.v1.ProfileService`: validates, authorises, calls the store,
//! keeps the cache in step with every write.

pub mod activity;
mod check;
pub mod convert;
pub mod export;
pub mod holders;
pub mod internal;
pub mod settings;

use chrono::Utc;
use cx_proto::profile::v1 as pb;
use cx_proto::profile::v1::profile_service_server::ProfileService;
use cx_runtime::TenantId;
use cx_runtime::auth::{Role, tenant};
use cx_runtime::cache::Cache;
use cx_runtime::error::{FieldViolation, Violations, all2, all3, each};
use cx_runtime::page::{decode_uuid_token, next_page_token, page_size};
use prost::Message;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::cache_keys;
use crate::domain::attributes::{MAX_ATTRIBUTES, MAX_PERSONA_LEN, MaskPath};
use crate::domain::consent::{self, check_custom_name};
use crate::domain::identity::Identity;
use crate::domain::merge::Prefer;
use crate::error::ProfileError;
use crate::store::{ListFilter, NewConsent, ProfileStore, ProfileUpdate};
use convert::*;

/// Largest batch of BatchResolveProfiles.
pub const MAX_BATCH: usize = 1000;
/// How far in the future a consent decision may be dated (clock skew).

#[derive(Clone, Debug)]
pub struct ProfileApi {
    store: ProfileStore,
    cache: Cache,
    /// The other services holding customer data, asked for their records.
    holders: holders::Holders,
}

type Reply<T> = Result<Response<T>, Status>;

/// The profile and identity an identity call names.
fn profile_identity(profile_id: &str, identity: Option<pb::Identity>) -> Result<(Uuid, Identity), Violations> {
    all2(parse_id(profile_id, "profile_id"), parse_identity(identity, "identity"))
}

/// The fields an update mask names.
fn mask_paths(mask: Option<prost_types::FieldMask>) -> Result<Vec<MaskPath>, Violations> {
    let paths = mask.map(|m| m.paths).unwrap_or_default();
    if paths.is_empty() {
        return Err(FieldViolation::new("update_mask", "must name the fields to update").into());
    }
    let parsed = each(paths, |i, path| {
        MaskPath::parse(&path).map_err(|why| FieldViolation::new(format!("update_mask.paths[{i}]"), why))
    })?;
    Ok(parsed.into_iter().flatten().collect())
}

pub(crate) use cx_runtime::input::not_future;
use cx_runtime::input::time_range;

/// When a consent decision was made: now by default, never far in the future.
fn occurred_at(occur_time: Option<prost_types::Timestamp>) -> Result<chrono::DateTime<Utc>, FieldViolation> {
    occur_time.map_or_else(|| Ok(Utc::now()), |ts| not_future(&ts, "occur_time"))
}

impl ProfileApi {
    pub fn new(store: ProfileStore, cache: Cache, holders: holders::Holders) -> Self {
        Self { store, cache, holders }
    }

    /// A record as the API returns it, scored under the tenant's model.
    async fn to_proto(&self, t: &TenantId, record: &crate::store::ProfileRecord) -> Result<pb::Profile, ProfileError> {
        Ok(profile_to_proto(record, &self.store.intensity_model(t).await?))
    }

    /// A profile read through the cache (cache-aside), scored under the
    /// tenant's current model whatever model the entry was cached under.
    async fn cached_profile(&self, t: &TenantId, id: Uuid) -> Result<pb::Profile, ProfileError> {
        let model = self.store.intensity_model(t).await?;
        let key = cache_keys::profile(t, id);
        let bytes = self
            .cache
            .get_or_load(&key, || async {
                match self.store.get(t, id).await {
                    Ok(record) => Ok(Some(profile_to_proto(&record, &model).encode_to_vec())),
                    Err(ProfileError::NotFound(_)) => Ok(None),
                    Err(err) => Err(err),
                }
            })
            .await?;
        let bytes = bytes.ok_or_else(|| ProfileError::not_found(format_args!("profile {id}")))?;
        match pb::Profile::decode(bytes.as_slice()) {
            Ok(mut profile) => {
                score_profile(&mut profile, &model);
                Ok(profile)
            }
            Err(err) => {
                tracing::warn!(error = %err, "undecodable cache entry, reading the database");
                self.cache.invalidate(&key).await?;
                Ok(profile_to_proto(&self.store.get(t, id).await?, &model))
            }
        }
    }
}

#[tonic::async_trait]
impl ProfileService for ProfileApi {
    async fn resolve_profile(&self, request: Request<pb::ResolveProfileRequest>) -> Reply<pb::ResolveProfileResponse> {
        let create = request.get_ref().create_if_missing;
        let t = tenant(&request, if create { Role::Writer } else { Role::Reader })?;
        let pb::ResolveProfileRequest { identity, create_if_missing } = request.into_inner();
        let identity = parse_identity(identity, "identity")?;
        let resolved = self.store.resolve(&t, &identity, create_if_missing).await?;
        if resolved.as_ref().is_some_and(|(_, created)| *created) {
            // A new prospect counts in the lifecycle counts.
            self.cache.invalidate(&cache_keys::generation(&t)).await?;
        }
        match resolved {
            Some((record, created)) => Ok(Response::new(pb::ResolveProfileResponse {
                profile: Some(self.to_proto(&t, &record).await?),
                created,
            })),
            None => {
                Err(ProfileError::NotFound(format!("no profile has this {} identity", identity.kind.as_str())).into())
            }
        }
    }

    async fn batch_resolve_profiles(
        &self,
        request: Request<pb::BatchResolveProfilesRequest>,
    ) -> Reply<pb::BatchResolveProfilesResponse> {
        let create = request.get_ref().create_if_missing;
        let t = tenant(&request, if create { Role::Writer } else { Role::Reader })?;
        let pb::BatchResolveProfilesRequest { identities, create_if_missing } = request.into_inner();
        if identities.is_empty() {
            return Err(FieldViolation::new("identities", "must name at least one identity").into());
        }
        if identities.len() > MAX_BATCH {
            let why = format!("has {} items; at most {MAX_BATCH} per call", identities.len());
            return Err(FieldViolation::new("identities", why).into());
        }
        let parsed = each(identities, |i, identity| parse_identity(Some(identity), &format!("identities[{i}]")))?;
        let resolved = self.store.batch_resolve(&t, &parsed, create_if_missing).await?;
        if resolved.iter().flatten().any(|(_, created)| *created) {
            self.cache.invalidate(&cache_keys::generation(&t)).await?;
        }
        let resolutions = resolved
            .into_iter()
            .map(|r| match r {
                Some((id, created)) => pb::Resolution { profile_id: id.to_string(), created },
                None => pb::Resolution { profile_id: String::new(), created: false },
            })
            .collect();
        Ok(Response::new(pb::BatchResolveProfilesResponse { resolutions }))
    }

    async fn check_profiles(&self, request: Request<pb::CheckProfilesRequest>) -> Reply<pb::CheckProfilesResponse> {
        let t = tenant(&request, Role::Reader)?;
        // The codec has bounded the ids' number (100,000) and refused NULs.
        let pb::CheckProfilesRequest { profile_ids } = request.into_inner();
        Ok(Response::new(self.unknown_profiles(&t, profile_ids).await?))
    }

    async fn get_profile(&self, request: Request<pb::GetProfileRequest>) -> Reply<pb::GetProfileResponse> {
        let t = tenant(&request, Role::Reader)?;
        let pb::GetProfileRequest { id, as_of } = request.into_inner();
        let (id, as_of) = all2(parse_id(&id, "id"), as_of.map(|ts| not_future(&ts, "as_of")).transpose())?;
        let mut profile = match self.cached_profile(&t, id).await {
            // A merged id resolves to the profile it was folded into.
            Err(missing @ ProfileError::NotFound(_)) => match self.store.survivor_of(&t, id).await? {
                Some(survivor) => self.cached_profile(&t, survivor).await?,
                None => return Err(missing.into()),
            },
            other => other?,
        };
        let id = Uuid::parse_str(&profile.id).unwrap_or(id);
        if let Some(as_of) = as_of {
            // History is evaluated from the aggregates, past the cache.
            let model = self.store.intensity_model(&t).await?;
            let derived = self.store.derived_as_of(&t, id, as_of.date_naive()).await?;
            profile.lifecycle = lifecycle_to_proto(derived.lifecycle) as i32;
            profile.lifecycle_change_time = None;
            profile.digital_intensity = derived.intensity.map(|c| intensity_to_proto(&model.intensity(&c)));
        }
        Ok(Response::new(pb::GetProfileResponse { profile: Some(profile) }))
    }

    async fn list_profiles(&self, request: Request<pb::ListProfilesRequest>) -> Reply<pb::ListProfilesResponse> {
        let t = tenant(&request, Role::Reader)?;
        let pb::ListProfilesRequest { page_size: size, page_token, lifecycle, digital_category } = request.into_inner();
        let ((size, after), (lifecycle, category)) = all2(
            all2(page_size(size, "page_size"), decode_uuid_token(&page_token, "page_token")),
            all2(parse_lifecycle(lifecycle, "lifecycle"), parse_category(digital_category, "digital_category")),
        )?;
        let filter = ListFilter { lifecycle, category };
        let (records, more) = self.store.list_filtered(&t, after, size, &filter).await?;
        let next_page_token = next_page_token(more, records.last().map(|last| last.id));
        let model = self.store.intensity_model(&t).await?;
        Ok(Response::new(pb::ListProfilesResponse {
            profiles: records.iter().map(|r| profile_to_proto(r, &model)).collect(),
            next_page_token,
        }))
    }

    async fn update_profile(&self, request: Request<pb::UpdateProfileRequest>) -> Reply<pb::UpdateProfileResponse> {
        let t = tenant(&request, Role::Writer)?;
        let pb::UpdateProfileRequest { profile, update_mask } = request.into_inner();
        let Some(pb::Profile {
            id,
            identities: _,
            persona,
            attributes,
            create_time: _,
            update_time: _,
            version: _,
            lifecycle: _,
            lifecycle_change_time: _,
            digital_intensity: _,
            last_touch_time: _,
            latest_scores: _,
        }) = profile
        else {
            return Err(FieldViolation::new("profile", "is required").into());
        };
        let mut content = Violations::new();
        if persona.chars().count() > MAX_PERSONA_LEN {
            content.add("profile.persona", format!("has at most {MAX_PERSONA_LEN} characters"));
        }
        let attributes = parse_attributes(attributes, "profile.attributes", &mut content);
        let (id, paths, ()) = all3(parse_id(&id, "profile.id"), mask_paths(update_mask), content.finish())?;
        let update = ProfileUpdate { paths, persona, attributes };
        let record = self.store.update(&t, id, &update, MAX_ATTRIBUTES).await?;
        self.cache.invalidate(&cache_keys::profile(&t, id)).await?;
        Ok(Response::new(pb::UpdateProfileResponse { profile: Some(self.to_proto(&t, &record).await?) }))
    }

    async fn add_identity(&self, request: Request<pb::AddIdentityRequest>) -> Reply<pb::AddIdentityResponse> {
        let t = tenant(&request, Role::Writer)?;
        let pb::AddIdentityRequest { profile_id, identity } = request.into_inner();
        let (id, identity) = profile_identity(&profile_id, identity)?;
        let result = self.store.add_identity(&t, id, &identity).await;
        self.cache.invalidate(&cache_keys::profile(&t, id)).await?;
        Ok(Response::new(pb::AddIdentityResponse { profile: Some(self.to_proto(&t, &result?).await?) }))
    }

    async fn remove_identity(&self, request: Request<pb::RemoveIdentityRequest>) -> Reply<pb::RemoveIdentityResponse> {
        let t = tenant(&request, Role::Writer)?;
        let pb::RemoveIdentityRequest { profile_id, identity } = request.into_inner();
        let (id, identity) = profile_identity(&profile_id, identity)?;
        let result = self.store.remove_identity(&t, id, &identity).await;
        self.cache.invalidate(&cache_keys::profile(&t, id)).await?;
        Ok(Response::new(pb::RemoveIdentityResponse { profile: Some(self.to_proto(&t, &result?).await?) }))
    }

    async fn set_consent(&self, request: Request<pb::SetConsentRequest>) -> Reply<pb::SetConsentResponse> {
        let t = tenant(&request, Role::Writer)?;
        let pb::SetConsentRequest { profile_id, purpose, granted, source_channel, actor, occur_time, request_id } =
            request.into_inner();
        let mut lengths = Violations::new();
        if actor.chars().count() > 256 {
            lengths.add("actor", "has at most 256 characters");
        }
        if request_id.len() > 128 {
            lengths.add("request_id", "has at most 128 characters");
        }
        let ((id, purpose), (source_channel, occurred_at), ()) = all3(
            all2(parse_id(&profile_id, "profile_id"), parse_purpose(purpose, "purpose")),
            all2(parse_channel(source_channel, "source_channel"), occurred_at(occur_time)),
            lengths.finish(),
        )?;
        self.store.check_purpose(&t, &purpose, "purpose.custom").await?;
        let new = NewConsent {
            purpose: purpose.clone(),
            granted,
            source_channel,
            actor,
            occurred_at,
            request_id: Some(request_id).filter(|r| !r.is_empty()),
        };
        let recorded = self.store.set_consent(&t, id, new).await;
        // Other services' consent checks read the standing: dropped before
        // the decision is acknowledged (and whatever followed the commit).
        self.cache.invalidate(&cache_keys::standing(&t, id)).await?;
        let (event, history) = recorded?;
        let state = state_to_proto(&purpose, consent::current(&history));
        Ok(Response::new(pb::SetConsentResponse { event: Some(consent_to_proto(&event)), state: Some(state) }))
    }

    async fn check_consent(&self, request: Request<pb::CheckConsentRequest>) -> Reply<pb::CheckConsentResponse> {
        let t = tenant(&request, Role::Reader)?;
        let pb::CheckConsentRequest { profile_id, purpose } = request.into_inner();
        let (id, purpose) = all2(parse_id(&profile_id, "profile_id"), parse_purpose(purpose, "purpose"))?;
        self.store.check_purpose(&t, &purpose, "purpose.custom").await?;
        let decided_by = self.store.consent(&t, id, &purpose).await?;
        Ok(Response::new(pb::CheckConsentResponse { state: Some(state_to_proto(&purpose, decided_by.as_ref())) }))
    }

    async fn list_consent_history(
        &self,
        request: Request<pb::ListConsentHistoryRequest>,
    ) -> Reply<pb::ListConsentHistoryResponse> {
        let t = tenant(&request, Role::Reader)?;
        let pb::ListConsentHistoryRequest { profile_id, page_size: size, page_token } = request.into_inner();
        let (id, size, before) = all3(
            parse_id(&profile_id, "profile_id"),
            page_size(size, "page_size"),
            decode_uuid_token(&page_token, "page_token"),
        )?;
        let (events, more) = self.store.consent_history(&t, id, before, size).await?;
        let next_page_token = next_page_token(more, events.last().map(|last| last.id));
        Ok(Response::new(pb::ListConsentHistoryResponse {
            events: events.iter().map(consent_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn create_consent_purpose(
        &self,
        request: Request<pb::CreateConsentPurposeRequest>,
    ) -> Reply<pb::CreateConsentPurposeResponse> {
        let t = tenant(&request, Role::Admin)?;
        let pb::CreateConsentPurposeRequest { purpose } = request.into_inner();
        let Some(pb::ConsentPurposeDefinition { name, description, create_time: _ }) = purpose else {
            return Err(FieldViolation::new("purpose", "is required").into());
        };
        let mut violations = Violations::new();
        if let Err(why) = check_custom_name(&name) {
            violations.add("purpose.name", why);
        }
        if description.len() > 1024 {
            violations.add("purpose.description", "has at most 1024 bytes");
        }
        violations.finish()?;
        let record = self.store.create_purpose(&t, &name, &description).await?;
        Ok(Response::new(pb::CreateConsentPurposeResponse { purpose: Some(purpose_definition_to_proto(&record)) }))
    }

    async fn list_consent_purposes(
        &self,
        request: Request<pb::ListConsentPurposesRequest>,
    ) -> Reply<pb::ListConsentPurposesResponse> {
        let t = tenant(&request, Role::Reader)?;
        let pb::ListConsentPurposesRequest {} = request.into_inner();
        let purposes = self.store.purposes(&t).await?;
        Ok(Response::new(pb::ListConsentPurposesResponse {
            purposes: purposes.iter().map(purpose_definition_to_proto).collect(),
        }))
    }

    async fn record_activity(&self, request: Request<pb::RecordActivityRequest>) -> Reply<pb::RecordActivityResponse> {
        let t = tenant(&request, Role::Writer)?;
        let pb::RecordActivityRequest { batch_id, records } = request.into_inner();
        let records = activity::parse_batch(&batch_id, records)?;
        let Some(customers) = self.store.record_activity(&t, &batch_id, records).await? else {
            return Ok(Response::new(pb::RecordActivityResponse { duplicate: true, profiles_updated: 0 }));
        };
        self.cache.invalidate_all(&cache_keys::customers(&t, customers.iter().copied())).await?;
        let profiles_updated = i32::try_from(customers.len()).unwrap_or(i32::MAX);
        Ok(Response::new(pb::RecordActivityResponse { duplicate: false, profiles_updated }))
    }

    async fn list_lifecycle_transitions(
        &self,
        request: Request<pb::ListLifecycleTransitionsRequest>,
    ) -> Reply<pb::ListLifecycleTransitionsResponse> {
        let t = tenant(&request, Role::Reader)?;
        let pb::ListLifecycleTransitionsRequest { to_state, time_range: range, page_size: size, page_token } =
            request.into_inner();
        let ((to, (since, until)), (size, before)) = all2(
            all2(parse_lifecycle(to_state, "to_state"), time_range(range, "time_range")),
            all2(page_size(size, "page_size"), decode_uuid_token(&page_token, "page_token")),
        )?;
        let (transitions, more) = self.store.transitions(&t, to, since, until, before, size).await?;
        let next_page_token = next_page_token(more, transitions.last().map(|last| last.id));
        let transitions = transitions.iter().map(transition_to_proto).collect();
        Ok(Response::new(pb::ListLifecycleTransitionsResponse { transitions, next_page_token }))
    }

    async fn get_digital_intensity_distribution(
        &self,
        request: Request<pb::GetDigitalIntensityDistributionRequest>,
    ) -> Reply<pb::GetDigitalIntensityDistributionResponse> {
        let t = tenant(&request, Role::Reader)?;
        let pb::GetDigitalIntensityDistributionRequest {} = request.into_inner();
        let counts = self.store.intensity_distribution(&t).await?;
        Ok(Response::new(activity::distribution_to_proto(&counts)))
    }

    async fn get_tenant_settings(
        &self,
        request: Request<pb::GetTenantSettingsRequest>,
    ) -> Reply<pb::GetTenantSettingsResponse> {
        let t = tenant(&request, Role::Reader)?;
        let pb::GetTenantSettingsRequest {} = request.into_inner();
        let model = self.store.intensity_model(&t).await?;
        Ok(Response::new(pb::GetTenantSettingsResponse { settings: Some(settings::settings_to_proto(&model)) }))
    }

    async fn update_tenant_settings(
        &self,
        request: Request<pb::UpdateTenantSettingsRequest>,
    ) -> Reply<pb::UpdateTenantSettingsResponse> {
        let t = tenant(&request, Role::Admin)?;
        let pb::UpdateTenantSettingsRequest { settings: new, update_mask } = request.into_inner();
        let model = new.and_then(|s| s.intensity_model);
        let ((), model) =
            all2(settings::check_mask(update_mask), settings::parse_model(model, "settings.intensity_model"))?;
        self.store.set_intensity_model(&t, &model).await?;
        // Categories of the distribution move with the model.
        self.cache.invalidate(&cache_keys::generation(&t)).await?;
        Ok(Response::new(pb::UpdateTenantSettingsResponse { settings: Some(settings::settings_to_proto(&model)) }))
    }

    async fn merge_profiles(&self, request: Request<pb::MergeProfilesRequest>) -> Reply<pb::MergeProfilesResponse> {
        let t = tenant(&request, Role::Writer)?;
        let pb::MergeProfilesRequest { survivor_id, merged_id, prefer_merged_attributes } = request.into_inner();
        let (survivor, merged) = all2(parse_id(&survivor_id, "survivor_id"), parse_id(&merged_id, "merged_id"))?;
        let prefer = if prefer_merged_attributes { Prefer::Merged } else { Prefer::Survivor };
        let outcome = self.store.merge(&t, survivor, merged, prefer).await?;
        self.cache.invalidate_all(&cache_keys::customers(&t, [survivor, merged])).await?;
        let conflicts = outcome
            .conflicts
            .iter()
            .map(|c| pb::AttributeConflict {
                key: c.key.clone(),
                survivor_value: Some(value_to_proto(&c.survivor)),
                merged_value: Some(value_to_proto(&c.merged)),
                kept_merged: c.kept == Prefer::Merged,
            })
            .collect();
        let profile = self.to_proto(&t, &outcome.profile).await?;
        Ok(Response::new(pb::MergeProfilesResponse { profile: Some(profile), conflicts }))
    }

    type ExportCustomerDataStream =
        std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::ExportCustomerDataResponse, Status>> + Send>>;

    async fn export_customer_data(
        &self,
        request: Request<pb::ExportCustomerDataRequest>,
    ) -> Reply<Self::ExportCustomerDataStream> {
        let t = tenant(&request, Role::Admin)?;
        let pb::ExportCustomerDataRequest { profile_id } = request.into_inner();
        let id = parse_id(&profile_id, "profile_id")?;
        let data = self.store.export(&t, id).await?;
        let model = self.store.intensity_model(&t).await?;
        let own = export::records(&data, &model);
        tracing::info!(records = own.len(), "customer data exported");
        // Every id she has had, so that a service a merge has not reached
        // yet gives what it holds under the merged ids too.
        let ids: Vec<Uuid> = std::iter::once(id).chain(data.merged_tree.iter().copied()).collect();
        let others = self.holders.export(&t, &ids).await?;
        let own = futures::stream::iter(own.into_iter().map(Ok));
        Ok(Response::new(Box::pin(futures::StreamExt::chain(own, others))))
    }

    async fn erase_customer(&self, request: Request<pb::EraseCustomerRequest>) -> Reply<pb::EraseCustomerResponse> {
        let t = tenant(&request, Role::Admin)?;
        let pb::EraseCustomerRequest { profile_id } = request.into_inner();
        let id = parse_id(&profile_id, "profile_id")?;
        let (job, merged_ids) = self.store.erase(&t, id).await?;
        let keys = cache_keys::customers(&t, std::iter::once(id).chain(merged_ids));
        // Acknowledged only once no replica can serve her cached profile.
        self.cache.invalidate_erased(&keys).await?;
        // And once the services that can be reached have forgotten her, so
        // that none files data sent from now on under her (as it remembered).
        let job = self.store.confirmed(&t, job.id).await?;
        Ok(Response::new(pb::EraseCustomerResponse { erasure: Some(export::erasure_to_proto(&job)) }))
    }

    async fn get_erasure(&self, request: Request<pb::GetErasureRequest>) -> Reply<pb::GetErasureResponse> {
        let t = tenant(&request, Role::Admin)?;
        let pb::GetErasureRequest { id } = request.into_inner();
        let id = parse_id(&id, "id")?;
        let job = self.store.erasure(&t, id).await?;
        Ok(Response::new(pb::GetErasureResponse { erasure: Some(export::erasure_to_proto(&job)) }))
    }
}
