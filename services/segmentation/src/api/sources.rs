//! ReloadFacts and ListFactSources: a load of the tenant's facts from the
//! services that own them, asked for and followed (docs/DOMAIN.md §8.5).
//! The load itself runs in the background ([`crate::load`]).

use cx_proto::segmentation::v1 as pb;
use cx_runtime::auth::{Role, tenant};
use cx_runtime::error::{FieldViolation, ServiceError};
use tonic::{Request, Response};

use super::{Reply, SegmentationApi};
use crate::store::entity::fact_source;
use crate::store::sources::{self, ALL, LOADED, LOADING};

pub(super) async fn reload_facts(
    api: &SegmentationApi,
    request: Request<pb::ReloadFactsRequest>,
) -> Reply<pb::ReloadFactsResponse> {
    let t = tenant(&request, Role::Admin)?;
    let named = requested(&request.into_inner().sources)?;
    let rows = sources::reload(&api.db, &t, &named, cx_runtime::store::now()).await.map_err(ServiceError::from)?;
    let sources = named.iter().map(|name| source(name, rows.iter().find(|r| r.source == *name))).collect();
    Ok(Response::new(pb::ReloadFactsResponse { sources }))
}

pub(super) async fn list_fact_sources(
    api: &SegmentationApi,
    request: Request<pb::ListFactSourcesRequest>,
) -> Reply<pb::ListFactSourcesResponse> {
    let t = tenant(&request, Role::Reader)?;
    let rows = sources::list(&api.db, &t).await.map_err(ServiceError::from)?;
    let sources = ALL.iter().map(|name| source(name, rows.iter().find(|r| r.source == *name))).collect();
    Ok(Response::new(pb::ListFactSourcesResponse { sources }))
}

/// The sources a request names, each once, in [`ALL`]'s order; none: all.
fn requested(names: &[String]) -> Result<Vec<&'static str>, ServiceError> {
    if names.len() > ALL.len() {
        let why = format!("has {} items; at most {}", names.len(), ALL.len());
        return Err(ServiceError::invalid("sources", why));
    }
    let violations: Vec<FieldViolation> = names
        .iter()
        .enumerate()
        .filter(|(_, name)| !ALL.contains(&name.as_str()))
        .map(|(i, _)| FieldViolation::new(format!("sources[{i}]"), "is not a source: profile, journey or survey"))
        .collect();
    if !violations.is_empty() {
        return Err(ServiceError::InvalidArgument(violations));
    }
    Ok(ALL.into_iter().filter(|s| names.is_empty() || names.iter().any(|n| n == s)).collect())
}

/// A source as the API shows it; no row: known only from its feed.
fn source(name: &str, row: Option<&fact_source::Model>) -> pb::FactSource {
    let Some(row) = row else {
        return pb::FactSource {
            name: name.to_owned(),
            state: pb::FactSourceState::FeedOnly as i32,
            ..Default::default()
        };
    };
    let state = match row.state.as_str() {
        LOADING => pb::FactSourceState::Loading,
        LOADED => pb::FactSourceState::Loaded,
        _ => pb::FactSourceState::Unspecified,
    };
    pb::FactSource {
        name: name.to_owned(),
        state: state as i32,
        loaded_customers: row.loaded_customers,
        start_time: Some(cx_proto::timestamp(row.started_at)),
        complete_time: row.completed_at.map(cx_proto::timestamp),
        cursor: row.cursor.map(|c| c.to_string()).unwrap_or_default(),
        high_water_time: Some(cx_proto::timestamp(row.high_water)),
    }
}
