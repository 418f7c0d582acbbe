//! The journey service (`cx.journey.v1.JourneyService`): journey maps,
//! high-volume touchpoint ingest and customer timelines (docs/DOMAIN.md §5).
//!
//! - [`domain`]: pure rules (maps, steps, touchpoints);
//! - [`store`]: sea-orm entities, migrations, set-based ingest, timelines;
//! - [`api`]: the gRPC service, and `cx.journey.v1.JourneyInternalService`
//!   (segmentation's load of touchpoint facts); [`resolver`]: identities through the
//!   profile service; [`inbox`]: merges and erasures from the profile service.

pub mod api;
pub mod cache_keys;
pub mod domain;
pub mod inbox;
pub mod resolver;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use cx_proto::journey::v1::journey_internal_service_server::JourneyInternalServiceServer;
use cx_proto::journey::v1::journey_service_server::{JourneyServiceServer, SERVICE_NAME};
use cx_runtime::config::ConfigError;
use cx_runtime::context::ServiceContext;
use cx_runtime::module::Parts;
use cx_runtime::registry::{Feed, ServiceDef};
use cx_runtime::server::ServiceModule;

use crate::api::JourneyApi;
use crate::api::internal::JourneyInternal;
use crate::resolver::Resolver;
use crate::store::JourneyStore;
use crate::store::activity::{ActivityExpander, STORED_TOUCHPOINTS};
use crate::store::migration::Migrator;
use crate::store::offers::{OFFERED_TOUCHPOINTS, OfferExpander};

pub const NAME: &str = "journey";

/// The journey service's line in the registry: it holds customer data
/// (touchpoints), so it takes part in merges and erasures.
pub const SERVICE: ServiceDef =
    ServiceDef { name: NAME, customer_data: true, feeds: &[], build: |ctx| Box::pin(build(ctx)) };

/// How long a resolved identity is remembered by one replica.
const RESOLUTION_TTL: Duration = Duration::from_secs(600);

/// Builds the service over its own database (opened lazily).
pub async fn build(ctx: &ServiceContext) -> Result<Arc<dyn ServiceModule>, ConfigError> {
    let parts = Parts::open(ctx, NAME).await?;
    let resolver = Resolver::new(parts.peer("profile"), RESOLUTION_TTL, parts.cache.clone());
    // Touchpoints are offered to every deployed service taking them (survey's
    // triggers, segmentation's facts).
    let store = JourneyStore::new(parts.db.clone()).with_offers(ctx.fed(Feed::Touchpoints, NAME)?);
    let api = JourneyApi::new(store.clone(), resolver.clone(), parts.cache.clone());
    let internal = JourneyInternal::new(store.clone(), api.clone());
    let participant = Arc::new(inbox::JourneyParticipant::new(resolver, parts.cache.clone()));
    Ok(parts
        .module::<Migrator>()
        // The codec holds each RPC to its own limit (a batch of touchpoints
        // 16 MiB, a journey map 1 MiB); this admits the largest.
        .serve(
            JourneyServiceServer::new(api).max_decoding_message_size(cx_proto::codec::max_request_bytes(SERVICE_NAME)),
        )
        // Segmentation's load of touchpoint facts, behind the service identity.
        .serve_internal(JourneyInternalServiceServer::new(internal))
        .expand(&STORED_TOUCHPOINTS, Arc::new(ActivityExpander(store.clone())))
        .expand(&OFFERED_TOUCHPOINTS, Arc::new(OfferExpander(store)))
        .participant(participant)
        .build())
}
