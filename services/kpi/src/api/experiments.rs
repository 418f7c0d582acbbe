//! Experiments: created and stopped (admins), read and listed (readers),
//! and the sample size calculator (docs/DOMAIN.md §9.6).

use cx_proto::kpi::v1 as pb;
use cx_runtime::auth::{Role, tenant};
use cx_runtime::error::{FieldViolation, Violations};
use cx_runtime::input::parse_uuid;
use cx_runtime::page::{decode_uuid_token, next_page_token, page_size, trim_page};
use cx_runtime::store::now;
use tonic::{Request, Response};

use super::{KpiApi, Reply};
use crate::experiment::definition;
use crate::experiment::sample_size::{DEFAULT_ALPHA, Inputs, level, per_variant};
use crate::store::experiments;

pub(super) async fn create_experiment(
    api: &KpiApi,
    request: Request<pb::CreateExperimentRequest>,
) -> Reply<pb::CreateExperimentResponse> {
    let t = tenant(&request, Role::Admin)?;
    let given = request.into_inner().experiment.ok_or_else(|| FieldViolation::new("experiment", "is required"))?;
    let checked = definition::check(given)?;
    let experiment = experiments::create(&api.db, &t, &checked).await?;
    api.cache.advance_generation(&t, crate::NAME).await?;
    tracing::info!(experiment = experiment.id, variants = experiment.variants.len(), "experiment created");
    Ok(Response::new(pb::CreateExperimentResponse { experiment: Some(experiment) }))
}

pub(super) async fn get_experiment(
    api: &KpiApi,
    request: Request<pb::GetExperimentRequest>,
) -> Reply<pb::GetExperimentResponse> {
    let t = tenant(&request, Role::Reader)?;
    let id = parse_uuid(&request.get_ref().id, "id", "an experiment id")?;
    let experiment = experiments::get(&api.db, &t, id).await?;
    Ok(Response::new(pb::GetExperimentResponse { experiment: Some(experiment) }))
}

pub(super) async fn list_experiments(
    api: &KpiApi,
    request: Request<pb::ListExperimentsRequest>,
) -> Reply<pb::ListExperimentsResponse> {
    let t = tenant(&request, Role::Reader)?;
    let pb::ListExperimentsRequest { page_size: size, page_token } = request.into_inner();
    let (size, after) =
        cx_runtime::error::all2(page_size(size, "page_size"), decode_uuid_token(&page_token, "page_token"))?;
    let mut experiments = experiments::list(&api.db, &t, after, size).await?;
    let more = trim_page(&mut experiments, size);
    let next_page_token = next_page_token(more, experiments.last().map(|e| e.id.clone()));
    Ok(Response::new(pb::ListExperimentsResponse { experiments, next_page_token }))
}

pub(super) async fn stop_experiment(
    api: &KpiApi,
    request: Request<pb::StopExperimentRequest>,
) -> Reply<pb::StopExperimentResponse> {
    let t = tenant(&request, Role::Admin)?;
    let id = parse_uuid(&request.get_ref().id, "id", "an experiment id")?;
    let experiment = experiments::stop(&api.db, &t, id, now()).await?;
    api.cache.advance_generation(&t, crate::NAME).await?;
    tracing::info!(experiment = experiment.id, "experiment stopped");
    Ok(Response::new(pb::StopExperimentResponse { experiment: Some(experiment) }))
}

pub(super) async fn calculate_sample_size(
    request: Request<pb::CalculateSampleSizeRequest>,
) -> Reply<pb::CalculateSampleSizeResponse> {
    tenant(&request, Role::Reader)?;
    let r = request.get_ref();
    let mut out = Violations::new();
    let alpha = level(&mut out, r.alpha, DEFAULT_ALPHA, "alpha");
    let inputs = Inputs { baseline: r.baseline_rate, effect: r.minimum_detectable_effect, alpha, power: r.power };
    let n = per_variant(&mut out, inputs, "");
    out.finish()?;
    let per_variant = n.ok_or_else(Violations::new)?;
    Ok(Response::new(pb::CalculateSampleSizeResponse { per_variant }))
}
