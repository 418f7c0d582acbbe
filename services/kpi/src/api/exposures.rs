//! Assignments, conversions and results of experiments (docs/DOMAIN.md
//! §9.6). The app assigns and records (writers); every token holder reads
//! the results.

use cx_proto::kpi::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::auth::{Role, tenant};
use cx_runtime::error::{ServiceError, all2};
use cx_runtime::input::parse_uuid;
use cx_runtime::store::now;
use tonic::{Request, Response};
use uuid::Uuid;

use super::{KpiApi, Reply};
use crate::experiment::{assign, results};
use crate::store::{experiments, exposures};

/// The experiment and customer a request names, both checked.
fn ids(experiment: &str, customer: &str) -> Result<(Uuid, Uuid), ServiceError> {
    Ok(all2(
        parse_uuid(experiment, "experiment_id", "an experiment id"),
        parse_uuid(customer, "customer_id", "a customer id"),
    )?)
}

/// Where `customer`'s data goes: her survivor if she was merged away;
/// None if she was erased (she takes no new data).
async fn holder(api: &KpiApi, t: &TenantId, customer: Uuid) -> Result<Option<Uuid>, ServiceError> {
    let customer =
        cx_runtime::gdpr::survivors(&api.db, t, &[customer]).await?.get(&customer).copied().unwrap_or(customer);
    let erased = !cx_runtime::gdpr::erased(&api.db, t, &[customer]).await?.is_empty();
    Ok((!erased).then_some(customer))
}

fn stopped(id: Uuid) -> ServiceError {
    ServiceError::FailedPrecondition(format!("experiment {id} is stopped: it takes no new customer or conversion"))
}

pub(super) async fn assign_variant(
    api: &KpiApi,
    request: Request<pb::AssignVariantRequest>,
) -> Reply<pb::AssignVariantResponse> {
    let t = tenant(&request, Role::Writer)?;
    let r = request.get_ref();
    let (id, given) = ids(&r.experiment_id, &r.customer_id)?;
    let experiment = experiments::get(&api.db, &t, id).await?;
    if experiment.variants.is_empty() {
        return Err(ServiceError::Corrupt(format!("experiment {id} has no variant")).into());
    }
    let weights: Vec<u32> = experiment.variants.iter().map(|v| v.weight.unsigned_abs()).collect();
    let chosen = |customer| {
        let at = assign::variant(id, customer, &weights);
        experiment.variants.get(at).map(|v| v.key.clone()).unwrap_or_default()
    };
    let Some(customer) = holder(api, &t, given).await? else {
        // Erased: her variant by the hash, so the app can answer, and
        // nothing recorded.
        let reply = pb::AssignVariantResponse {
            variant_key: chosen(given),
            customer_id: given.to_string(),
            ..Default::default()
        };
        return Ok(Response::new(reply));
    };
    // Held first: a merge may have kept a variant the hash of the survivor
    // would not choose, and a stopped experiment still answers its exposed.
    let (held, new_exposure) = match exposures::find(&api.db, &t, id, customer).await? {
        Some(held) => (held, false),
        None if experiments::stopped(&experiment) => return Err(stopped(id).into()),
        None => exposures::expose(&api.db, &t, id, customer, &chosen(customer), now()).await?,
    };
    if new_exposure {
        tracing::info!(experiment = %id, variant = held.variant, "customer exposed");
        api.cache.advance_generation(&t, crate::NAME).await?;
    }
    Ok(Response::new(pb::AssignVariantResponse {
        variant_key: held.variant,
        customer_id: customer.to_string(),
        expose_time: Some(cx_proto::timestamp(held.exposed_at)),
        new_exposure,
    }))
}

pub(super) async fn record_conversion(
    api: &KpiApi,
    request: Request<pb::RecordConversionRequest>,
) -> Reply<pb::RecordConversionResponse> {
    let t = tenant(&request, Role::Writer)?;
    let r = request.get_ref();
    let (id, given) = ids(&r.experiment_id, &r.customer_id)?;
    let experiment = experiments::get(&api.db, &t, id).await?;
    if experiments::stopped(&experiment) {
        return Err(stopped(id).into());
    }
    let not_exposed = || ServiceError::FailedPrecondition(format!("the customer was never exposed to experiment {id}"));
    let customer = holder(api, &t, given).await?.ok_or_else(not_exposed)?;
    let (held, new_conversion) = exposures::convert(&api.db, &t, id, customer, now()).await?.ok_or_else(not_exposed)?;
    if new_conversion {
        api.cache.advance_generation(&t, crate::NAME).await?;
    }
    Ok(Response::new(pb::RecordConversionResponse {
        variant_key: held.variant,
        convert_time: held.converted_at.map(cx_proto::timestamp),
        new_conversion,
    }))
}

pub(super) async fn get_experiment_results(
    api: &KpiApi,
    request: Request<pb::GetExperimentResultsRequest>,
) -> Reply<pb::GetExperimentResultsResponse> {
    let t = tenant(&request, Role::Reader)?;
    let id = parse_uuid(&request.get_ref().experiment_id, "experiment_id", "an experiment id")?;
    let experiment = experiments::get(&api.db, &t, id).await?;
    Ok(Response::new(results_of(api, &t, id, experiment).await?))
}

/// The results of `experiment` (of id `id`) from its counts now.
pub(super) async fn results_of(
    api: &KpiApi,
    t: &TenantId,
    id: uuid::Uuid,
    experiment: pb::Experiment,
) -> Result<pb::GetExperimentResultsResponse, ServiceError> {
    let counts = exposures::counts(&api.db, t, id).await?;
    let variants = results::variants(&experiment, &counts);
    let comparisons = results::comparisons(experiment.alpha, &variants);
    let peeking = results::peeking(experiment.planned_sample_size, &variants);
    Ok(pb::GetExperimentResultsResponse { experiment: Some(experiment), variants, comparisons, peeking })
}
