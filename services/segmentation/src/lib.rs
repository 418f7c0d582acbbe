//! The segmentation service (`cx.segmentation.v1.SegmentationService`): RFM
//! and segments of customers (docs/DOMAIN.md §8).
//!
//! - [`rfm`]: RFM values, scores and segments, pure (§8.1–§8.3).
//! - [`rules`]: the segment rule language, parsed and type-checked (§8.4, §8.5).
//! - [`segments`]: segments as clients define them, and the templates.
//! - [`evaluate`]: a checked rule as one SQL statement over the fact table.
//! - [`store`]: the fact table, purchases, touch days, RFM in SQL, segments.
//! - [`api`]: the gRPC service; [`catalog`]: the tenant's custom consent
//!   purposes, asked of profile; [`inbox`]: the fact feeds of profile,
//!   journey and survey; [`windows`]: the daily move of the journey windows; [`refresh`]: the
//!   schedule that recomputes segments' members; [`gdpr`]: merges, erasures
//!   and access exports; [`rfm_facts`]: RFM written into the facts;
//!   [`load`]: the load of facts through the other services' exports.

pub mod api;
pub mod catalog;
pub mod evaluate;
pub mod gdpr;
pub mod inbox;
pub mod load;
pub mod refresh;
pub mod rfm;
pub mod rfm_facts;
pub mod rules;
pub mod segments;
pub mod store;
pub mod windows;

use std::sync::Arc;

use cx_proto::segmentation::v1::segmentation_internal_service_server::SegmentationInternalServiceServer;
use cx_proto::segmentation::v1::segmentation_service_server::{SERVICE_NAME, SegmentationServiceServer};
use cx_runtime::config::ConfigError;
use cx_runtime::context::ServiceContext;
use cx_runtime::module::Parts;
use cx_runtime::registry::{Feed, ServiceDef};
use cx_runtime::server::ServiceModule;

use crate::api::{SegmentationApi, SegmentationInternal};
use crate::catalog::Purposes;
use crate::store::migration::Migrator;

pub const NAME: &str = "segmentation";

/// The segmentation service's line in the registry: it holds customer data
/// (memberships, the facts copied from the other services), so it takes
/// part in merges and erasures; its fact table takes the feeds of profile,
/// journey and survey.
pub const SERVICE: ServiceDef = ServiceDef {
    name: NAME,
    customer_data: true,
    feeds: &[Feed::Consents, Feed::Touchpoints, Feed::Scores, Feed::Cases, Feed::ProfileFacts],
    build: |ctx| Box::pin(build(ctx)),
};

/// Builds the service over its own database (opened lazily).
pub async fn build(ctx: &ServiceContext) -> Result<Arc<dyn ServiceModule>, ConfigError> {
    let parts = Parts::open(ctx, NAME).await?;
    let purposes = Purposes::new(parts.internal_peer("profile"));
    let api = SegmentationApi::new(parts.db.clone(), purposes.clone());
    let internal = SegmentationInternal::new(parts.db.clone());
    let db = parts.db.clone();
    let windows_db = parts.db.clone();
    let rfm_db = parts.db.clone();
    let loader = load::Loader::new(
        parts.db.clone(),
        parts.internal_peer(load::PROFILE),
        parts.internal_peer(load::JOURNEY),
        parts.internal_peer(load::SURVEY),
        parts.ctx.jobs.load_settle,
    );
    Ok(parts
        .module::<Migrator>()
        .serve(
            SegmentationServiceServer::new(api)
                .max_decoding_message_size(cx_proto::codec::max_request_bytes(SERVICE_NAME)),
        )
        .serve_internal(SegmentationInternalServiceServer::new(internal))
        .inbox(inbox::routes)
        .leased_job("segment-refresh", move |stop| Box::pin(refresh::run(db.clone(), purposes.clone(), stop)))
        .leased_job("journey-windows", move |stop| Box::pin(windows::run(windows_db.clone(), stop)))
        .leased_job("rfm-facts", move |stop| Box::pin(rfm_facts::run(rfm_db.clone(), stop)))
        .job(move |stop| Box::pin(loader.clone().run(stop)))
        .participant(Arc::new(gdpr::SegmentationData))
        .build())
}
