//! `GetDashboard`: the dashboard through the cache. An answer is cached
//! under the generations of the owners' data and of this service's own
//! (targets) that it was worked from: a write anywhere starts a new
//! generation, so the next call works the figures out again, and without a
//! write the cached answer is served (docs/DECISIONS.md, "Dashboard").
//! Cases falling due change the overdue count with no write: an answer
//! past its next due time is worked out again.
//!
//! Two things spare a warm call work without making it stale: the
//! generations are read after the call arrives but shared with the calls of
//! the tenant arriving with it (`cx_runtime::fresh_read`), and a key names
//! its answer for good (it holds the generations), so this process keeps
//! the answers it served last and skips Redis for them.

use std::sync::Arc;

use cx_proto::kpi::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::auth::{Role, tenant};
use cx_runtime::cache::CacheKey;
use cx_runtime::cache::generation::GENERATION_TTL;
use cx_runtime::error::ServiceError;
use prost::Message;
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use super::{KpiApi, Reply};
use crate::dashboard::{Span, Targets, compute};
use crate::store::experiments::{self, MAX_EXPERIMENTS};
use crate::store::targets::{self, MAX_TARGETS};

/// Answers kept in this process, at most this many bytes encoded.
const RECENT_BYTES: u64 = 16 << 20;

/// The dashboards this process served last, by cache key: a key is only
/// ever given one answer, so a hit is as fresh as Redis's.
pub(super) type Recent = moka::sync::Cache<String, Arc<pb::GetDashboardResponse>>;

pub(super) fn recent() -> Recent {
    moka::sync::Cache::builder()
        .max_capacity(RECENT_BYTES)
        .weigher(|_, answer: &Arc<pb::GetDashboardResponse>| u32::try_from(answer.encoded_len()).unwrap_or(u32::MAX))
        .time_to_live(GENERATION_TTL)
        .build()
}

/// The generations of the owners' data and of this service's own, read
/// after this call began (shared with the tenant's calls that began with it).
async fn generations(api: &KpiApi, t: &TenantId) -> Result<String, ServiceError> {
    let (owners, cache, tenant) = (api.owners.clone(), api.cache.clone(), t.clone());
    let read = move || async move {
        let (owned, own) = tokio::join!(owners.generations(&tenant), cache.generation(&tenant, crate::NAME));
        Ok(format!("{},{}={own}", owned.map_err(Status::from)?, crate::NAME))
    };
    let gone = || Status::internal("the data generations could not be read");
    Ok(api.generations.get(t, read, gone).await?)
}

/// The cache key of `span`'s dashboard under `generations`.
fn key(t: &TenantId, span: &Span, generations: &str) -> CacheKey {
    let described = format!("{span:?}|{generations}");
    let digest = Sha256::digest(described.as_bytes());
    CacheKey::new(t, "dashboard", &digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// The tenant's targets by metric and filter key (at most [`MAX_TARGETS`]).
async fn all_targets(api: &KpiApi, t: &TenantId) -> Result<Targets, ServiceError> {
    let listed = targets::list(&api.db, t, None, MAX_TARGETS).await?;
    Ok(listed
        .into_iter()
        .map(|target| {
            let filter = crate::filter::Filter::parse(target.filter.as_ref(), "filter").unwrap_or_default();
            ((target.metric, filter.key()), target)
        })
        .collect())
}

/// The results of the tenant's running experiments, by id.
async fn running(api: &KpiApi, t: &TenantId) -> Result<Vec<pb::GetExperimentResultsResponse>, ServiceError> {
    let listed = experiments::list(&api.db, t, None, MAX_EXPERIMENTS).await?;
    let mut results = Vec::new();
    for experiment in listed.into_iter().filter(|e| !experiments::stopped(e)) {
        let id = uuid::Uuid::parse_str(&experiment.id)
            .map_err(|_| ServiceError::Corrupt(format!("experiment id {:?}", experiment.id)))?;
        results.push(super::exposures::results_of(api, t, id, experiment).await?);
    }
    Ok(results)
}

/// Whether the overdue count of `answer` may have grown since.
fn falls_due(answer: &pb::GetDashboardResponse) -> bool {
    let next = answer.cases.as_ref().and_then(|c| c.next_due_time.as_ref()).and_then(cx_proto::from_timestamp);
    next.is_some_and(|due| due <= chrono::Utc::now())
}

pub(super) async fn get_dashboard(
    api: &KpiApi,
    request: Request<pb::GetDashboardRequest>,
) -> Reply<pb::GetDashboardResponse> {
    let t = tenant(&request, Role::Reader)?;
    let span = Span::parse(request.get_ref(), chrono::Utc::now().date_naive())?;
    let key = key(&t, &span, &generations(api, &t).await?);
    if let Some(answer) = api.dashboards.get(key.as_str())
        && !falls_due(&answer)
    {
        return Ok(Response::new(answer.as_ref().clone()));
    }
    let cache = api.cache.with_ttl(GENERATION_TTL);
    let load = || async {
        crate::store::snapshots::known_tenant(&api.db, &t).await?;
        let (targets, experiments, cost) =
            tokio::try_join!(all_targets(api, &t), running(api, &t), crate::store::settings::cost(&api.db, &t))?;
        let answer = compute(&api.owners, &t, &span, &targets, experiments, cost.as_ref()).await?;
        Ok::<_, ServiceError>(Some(answer.encode_to_vec()))
    };
    let decode = |bytes: Option<Vec<u8>>| {
        pb::GetDashboardResponse::decode(bytes.unwrap_or_default().as_slice())
            .map_err(|e| ServiceError::Corrupt(format!("cached dashboard: {e}")))
    };
    let mut answer = decode(cache.get_or_load(&key, load).await?)?;
    if falls_due(&answer) {
        cache.invalidate(&key).await?;
        answer = decode(cache.get_or_load(&key, load).await?)?;
    }
    api.dashboards.insert(key.as_str().to_owned(), Arc::new(answer.clone()));
    Ok(Response::new(answer))
}
