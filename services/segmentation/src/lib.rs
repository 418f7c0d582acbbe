//! The segmentation service (`cx.segmentation.v1.SegmentationService`): RFM
//! and segments of customers (docs/DOMAIN.md §8).
//!
//! - [`rfm`]: RFM values, scores and segments, pure (§8.1–§8.3).
//! - [`rules`]: the segment rule language, parsed and type-checked (§8.4, §8.5).
//! - [`segments`]: segments as clients define them, and the templates.
//! - [`evaluate`]: a checked rule as one SQL statement over the fact table.
//! - [`store`]: the fact table, purchases, RFM in SQL, segments.
//! - [`inbox`]: the fact feeds of profile and survey.
//! - [`api`]: the gRPC service; [`catalog`]: the tenant's custom consent
//!   purposes, asked of profile.

pub mod api;
pub mod catalog;
pub mod evaluate;
pub mod inbox;
pub mod rfm;
pub mod rules;
pub mod segments;
pub mod store;

use std::sync::Arc;

use cx_proto::segmentation::v1::segmentation_service_server::{SERVICE_NAME, SegmentationServiceServer};
use cx_runtime::config::ConfigError;
use cx_runtime::context::ServiceContext;
use cx_runtime::module::Parts;
use cx_runtime::registry::{Feed, ServiceDef};
use cx_runtime::server::ServiceModule;

use crate::api::SegmentationApi;
use crate::catalog::Purposes;
use crate::store::migration::Migrator;

pub const NAME: &str = "segmentation";

/// The segmentation service's line in the registry: it takes the fact
/// feeds of profile and survey into its fact table. It joins merges and
/// erasures once its participant is written.
pub const SERVICE: ServiceDef = ServiceDef {
    name: NAME,
    customer_data: false,
    feeds: &[Feed::Consents, Feed::Scores, Feed::Cases, Feed::ProfileFacts],
    build: |ctx| Box::pin(build(ctx)),
};

/// Builds the service over its own database (opened lazily).
pub async fn build(ctx: &ServiceContext) -> Result<Arc<dyn ServiceModule>, ConfigError> {
    let parts = Parts::open(ctx, NAME).await?;
    let api = SegmentationApi::new(parts.db.clone(), Purposes::new(parts.internal_peer("profile")));
    Ok(parts
        .module::<Migrator>()
        .inbox(inbox::routes)
        .serve(
            SegmentationServiceServer::new(api)
                .max_decoding_message_size(cx_proto::codec::max_request_bytes(SERVICE_NAME)),
        )
        .build())
}
