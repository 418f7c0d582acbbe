//! `cx.profile.v1.ProfileInternalService`: what other services ask profile
//! while they work, behind the service identity (user tokens are refused by
//! the server): the consent of many customers for one purpose, with their
//! lifecycle and digital category, answered from each profile's standing in
//! the cache; the tenant's custom purposes, which segment rules name; and
//! every customer's facts and consents, page by page, for the service
//! keeping a copy of them ([`cx_runtime::keyset`]).
//!
//! A standing is cached per profile under its own id (`cache_keys::standing`)
//! and dropped by every write that changes it (a consent decision before it
//! is acknowledged; activity, the sweep, merges and erasures), filled under
//! fill leases so a read that raced a write never puts the old one back. A
//! merged id is resolved in the database on each call and answered with
//! its survivor's cached standing: nothing is cached under it that a write
//! to the survivor would have to find.

use std::collections::{BTreeMap, HashMap, HashSet};

use cx_proto::profile::v1 as pb;
use cx_proto::profile::v1::profile_internal_service_server::ProfileInternalService;
use cx_runtime::TenantId;
use cx_runtime::cache::Cache;
use cx_runtime::error::{FieldViolation, all2, all3, each};
use cx_runtime::identity::{KPI, service_identity, tenant_of_call_by};
use cx_runtime::keyset::{FACT_LOADER, Keyset, pages};
use cx_runtime::population;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::convert::{category_to_proto, lifecycle_to_proto, parse_id, parse_purpose};
use crate::cache_keys;
use crate::domain::intensity::Components;
use crate::domain::lifecycle::Lifecycle;
use crate::error::ProfileError;
use crate::store::ProfileStore;
use crate::store::standing::Standing;

/// The currency an aggregate asks for: None when empty.
fn currency_asked(code: &str) -> Result<Option<String>, FieldViolation> {
    if code.is_empty() { Ok(None) } else { cx_runtime::input::parse_currency(code, "currency").map(Some) }
}

/// Most customers one `CheckConsents` call asks about.
pub const MAX_CONSENT_CHECK: usize = 10_000;

#[derive(Clone, Debug)]
pub struct ProfileInternal {
    store: ProfileStore,
    cache: Cache,
}

impl ProfileInternal {
    pub fn new(store: ProfileStore, cache: Cache) -> Self {
        Self { store, cache }
    }

    /// The standing of each of `asked` (distinct) that is known, by the id
    /// asked: from the cache, the rest read together.
    async fn standings(&self, t: &TenantId, asked: &[Uuid]) -> Result<HashMap<Uuid, Standing>, ProfileError> {
        let mut merged: HashMap<Uuid, Uuid> = HashMap::new();
        let redirected = &mut merged;
        let own = self
            .cached(t, asked, |missing| async move {
                let live = self.store.live_ids(t, &missing).await?;
                let profiles: Vec<Uuid> = missing.iter().filter(|id| live.get(id) == Some(id)).copied().collect();
                redirected.extend(live.into_iter().filter(|(asked, now)| asked != now));
                self.store.standings(t, &profiles).await
            })
            .await?;
        let survivors: Vec<Uuid> = merged.values().copied().collect::<HashSet<_>>().into_iter().collect();
        let theirs =
            self.cached(t, &survivors, |missing| async move { self.store.standings(t, &missing).await }).await?;
        let mut standings = own;
        standings
            .extend(merged.into_iter().filter_map(|(asked, survivor)| Some((asked, theirs.get(&survivor)?.clone()))));
        Ok(standings)
    }

    /// The standings of `ids` through the cache; `load` reads those missing
    /// (only profiles' own standings are returned by it, to be cached).
    async fn cached<F, Fut>(&self, t: &TenantId, ids: &[Uuid], load: F) -> Result<HashMap<Uuid, Standing>, ProfileError>
    where
        F: FnOnce(Vec<Uuid>) -> Fut,
        Fut: Future<Output = Result<HashMap<Uuid, Standing>, ProfileError>>,
    {
        let keys: Vec<_> = ids.iter().map(|id| cache_keys::standing(t, *id)).collect();
        let values = self
            .cache
            .get_or_load_many(&keys, |missing| async move {
                let wanted: Vec<Uuid> = missing.iter().map(|i| ids[*i]).collect();
                let mut found = load(wanted).await?;
                Ok::<_, ProfileError>(
                    missing.into_iter().filter_map(|i| Some((i, encode(&found.remove(&ids[i])?)))).collect(),
                )
            })
            .await?;
        let mut standings = HashMap::with_capacity(ids.len());
        for (id, value) in ids.iter().zip(values) {
            let Some(bytes) = value else { continue };
            match decode(&bytes) {
                Some(standing) => {
                    standings.insert(*id, standing);
                }
                None => {
                    // Not this version's shape: dropped, and read afresh.
                    tracing::warn!("undecodable standing in the cache, reading the database");
                    self.cache.invalidate(&cache_keys::standing(t, *id)).await?;
                    standings.extend(self.store.standings(t, &[*id]).await?);
                }
            }
        }
        Ok(standings)
    }
}

/// A standing as cached.
#[derive(Serialize, Deserialize)]
struct Cached {
    consents: BTreeMap<String, bool>,
    lifecycle: String,
    components: Option<[f64; 4]>,
}

fn encode(standing: &Standing) -> Vec<u8> {
    let cached = Cached {
        consents: standing.consents.clone(),
        lifecycle: standing.lifecycle.as_str().to_owned(),
        components: standing
            .components
            .map(|c| [c.digital_share, c.digital_breadth, c.device_factor, c.self_service_share]),
    };
    serde_json::to_vec(&cached).unwrap_or_default()
}

fn decode(bytes: &[u8]) -> Option<Standing> {
    let cached: Cached = serde_json::from_slice(bytes).ok()?;
    Some(Standing {
        consents: cached.consents,
        lifecycle: Lifecycle::parse(&cached.lifecycle)?,
        components: cached.components.map(|[digital_share, digital_breadth, device_factor, self_service_share]| {
            Components { digital_share, digital_breadth, device_factor, self_service_share }
        }),
    })
}

/// The ids asked, each checked; `profile_ids` holds at most
/// [`MAX_CONSENT_CHECK`].
fn parse_ids(ids: Vec<String>) -> Result<Vec<Uuid>, cx_runtime::error::Violations> {
    if ids.len() > MAX_CONSENT_CHECK {
        let why = format!("has {} items; at most {MAX_CONSENT_CHECK} per call", ids.len());
        return Err(FieldViolation::new("profile_ids", why).into());
    }
    each(ids, |i, id| parse_id(&id, &format!("profile_ids[{i}]")))
}

#[tonic::async_trait]
impl ProfileInternalService for ProfileInternal {
    type ExportProfileFactsStream = BoxStream<'static, Result<pb::ExportProfileFactsResponse, Status>>;

    async fn get_data_generation(
        &self,
        request: Request<pb::GetDataGenerationRequest>,
    ) -> Result<Response<pb::GetDataGenerationResponse>, Status> {
        let generation = cx_runtime::cache::generation::asked(&self.cache, &request, crate::NAME).await?;
        Ok(Response::new(pb::GetDataGenerationResponse { generation }))
    }

    async fn check_consents(
        &self,
        request: Request<pb::CheckConsentsRequest>,
    ) -> Result<Response<pb::CheckConsentsResponse>, Status> {
        // Any service of the deployment may ask, for the tenant it acts for.
        let t = service_identity(&request)?.tenant.clone();
        let pb::CheckConsentsRequest { purpose, profile_ids } = request.into_inner();
        let (purpose, ids) = all2(parse_purpose(purpose, "purpose"), parse_ids(profile_ids))?;
        self.store.check_purpose(&t, &purpose, "purpose.custom").await?;
        let mut seen = HashSet::with_capacity(ids.len());
        let asked: Vec<Uuid> = ids.into_iter().filter(|id| seen.insert(*id)).collect();
        let standings = self.standings(&t, &asked).await?;
        let model = self.store.intensity_model(&t).await?;
        let key = purpose.key();
        let consents = asked
            .iter()
            .filter_map(|id| {
                let standing = standings.get(id)?;
                let category = standing.components.map(|c| category_to_proto(model.intensity(&c).category));
                Some(pb::CustomerConsent {
                    profile_id: id.to_string(),
                    // No decision means no consent.
                    granted: standing.consents.get(&key).copied().unwrap_or(false),
                    lifecycle: lifecycle_to_proto(standing.lifecycle) as i32,
                    digital_category: category.unwrap_or(pb::DigitalCategory::Unspecified) as i32,
                })
            })
            .collect();
        Ok(Response::new(pb::CheckConsentsResponse { consents }))
    }

    async fn export_profile_facts(
        &self,
        request: Request<pb::ExportProfileFactsRequest>,
    ) -> Result<Response<Self::ExportProfileFactsStream>, Status> {
        let t = tenant_of_call_by(&request, FACT_LOADER)?;
        let pb::ExportProfileFactsRequest { after_profile_id, page_size } = request.into_inner();
        let start = Keyset::parse(&after_profile_id, "after_profile_id", page_size)?;
        let store = self.store.clone();
        let read = move |after, size| {
            let (store, t) = (store.clone(), t.clone());
            async move { store.facts_page(&t, after, size).await }
        };
        Ok(Response::new(pages(start, |page, cursor| page.cursor = cursor, read)))
    }

    async fn aggregate_lifecycle(
        &self,
        request: Request<pb::AggregateLifecycleRequest>,
    ) -> Result<Response<pb::AggregateLifecycleResponse>, Status> {
        let t = tenant_of_call_by(&request, KPI)?;
        let pb::AggregateLifecycleRequest { periods, customer_ids } = request.get_ref();
        let (ranges, customers) =
            all2(cx_runtime::days::periods(periods), population::customer_ids(customer_ids, "customer_ids"))?;
        let counts = self.store.lifecycle_counts(&t, &ranges, &customers).await?;
        let counted = counts
            .into_iter()
            .zip(periods)
            .map(|(counts, asked)| pb::LifecycleCounts { period: Some(asked.clone()), ..counts })
            .collect();
        Ok(Response::new(pb::AggregateLifecycleResponse { periods: counted }))
    }

    async fn aggregate_purchases(
        &self,
        request: Request<pb::AggregatePurchasesRequest>,
    ) -> Result<Response<pb::AggregatePurchasesResponse>, Status> {
        let t = tenant_of_call_by(&request, KPI)?;
        let pb::AggregatePurchasesRequest { periods, currency, customer_ids } = request.get_ref();
        let (ranges, asked, customers) = all3(
            cx_runtime::days::periods(periods),
            currency_asked(currency),
            population::customer_ids(customer_ids, "customer_ids"),
        )?;
        let currency = match asked {
            Some(code) => code,
            None => {
                let first = ranges.iter().map(|r| r.0).min().unwrap_or_default();
                let last = ranges.iter().map(|r| r.1).max().unwrap_or_default();
                match self.store.busiest_currency(&t, first, last).await? {
                    Some(code) => code,
                    // Nothing bought: nothing to count.
                    None => {
                        let none =
                            periods.iter().map(|p| pb::PurchaseSums { period: Some(p.clone()), ..Default::default() });
                        return Ok(Response::new(pb::AggregatePurchasesResponse {
                            currency: String::new(),
                            periods: none.collect(),
                        }));
                    }
                }
            }
        };
        let mut counted = Vec::with_capacity(ranges.len());
        for ((first, last), asked) in ranges.into_iter().zip(periods) {
            let sums = self.store.purchase_sums(&t, &currency, (first, last), &customers).await?;
            counted.push(pb::PurchaseSums { period: Some(asked.clone()), ..sums });
        }
        Ok(Response::new(pb::AggregatePurchasesResponse { currency, periods: counted }))
    }

    async fn aggregate_distributions(
        &self,
        request: Request<pb::AggregateDistributionsRequest>,
    ) -> Result<Response<pb::AggregateDistributionsResponse>, Status> {
        let t = tenant_of_call_by(&request, KPI)?;
        let day = cx_runtime::days::day_or_today(&request.get_ref().as_of_day, "as_of_day")?;
        Ok(Response::new(self.store.distributions(&t, day).await?))
    }

    async fn list_custom_purposes(
        &self,
        request: Request<pb::ListCustomPurposesRequest>,
    ) -> Result<Response<pb::ListCustomPurposesResponse>, Status> {
        let t = service_identity(&request)?.tenant.clone();
        let names = self.store.purposes(&t).await?.into_iter().map(|p| p.name).collect();
        Ok(Response::new(pb::ListCustomPurposesResponse { names }))
    }
}
