//! The profile service (`cx.profile.v1.ProfileService`): the single view of a
//! customer — identities across channels, typed attributes, persona and
//! consents with their full history (docs/DOMAIN.md §2–§4, §6) — and, for the
//! other services, `cx.profile.v1.ProfileInternalService` (consent checks).
//!
//! - [`domain`]: pure rules (identity normal forms, attributes, consent state);
//! - [`store`]: sea-orm entities, migrations and tenant-scoped queries;
//! - [`api`]: the gRPC service, with validation, roles and the profile cache.

pub mod api;
pub mod cache_keys;
pub mod domain;
pub mod error;
pub mod inbox;
pub mod store;

use std::sync::Arc;

use cx_proto::profile::v1::profile_internal_service_server::ProfileInternalServiceServer;
use cx_proto::profile::v1::profile_service_server::{ProfileServiceServer, SERVICE_NAME};
use cx_runtime::config::ConfigError;
use cx_runtime::context::ServiceContext;
use cx_runtime::module::Parts;
use cx_runtime::registry::{Feed, ServiceDef};
use cx_runtime::server::ServiceModule;

use crate::api::ProfileApi;
use crate::api::internal::ProfileInternal;
use crate::store::ProfileStore;
use crate::store::migration::Migrator;

pub const NAME: &str = "profile";

/// The profile service's line in the registry. It holds customer data, and
/// is the one that fans merges and erasures out to the others; it keeps
/// each customer's latest scores from survey's score feed.
pub const SERVICE: ServiceDef =
    ServiceDef { name: NAME, customer_data: true, feeds: &[Feed::Scores], build: |ctx| Box::pin(build(ctx)) };

/// Builds the service over its own database (opened lazily).
pub async fn build(ctx: &ServiceContext) -> Result<Arc<dyn ServiceModule>, ConfigError> {
    let parts = Parts::open(ctx, NAME).await?;
    let participants = ctx.participants(NAME)?;
    // Each has an endpoint: participants() refuses the others.
    let peers = participants.iter().filter_map(|name| Some((*name, parts.internal_peer(name)?))).collect();
    let holders = api::holders::Holders::new(peers);
    let store = ProfileStore::new(parts.db.clone())
        .with_fanout(participants)
        .with_consent_feed(ctx.fed(Feed::Consents, NAME)?)
        .with_facts_feed(ctx.fed(Feed::ProfileFacts, NAME)?);
    let api = ProfileApi::new(store.clone(), parts.cache.clone(), holders);
    let internal = ProfileInternal::new(store.clone(), parts.cache.clone());
    let received = Arc::new(inbox::ProfileInbox::new(parts.cache.clone(), store.clone()));
    let expander = Arc::new(store::facts_feed::FactsExpander(store.clone()));
    let (cache, interval) = (parts.cache.clone(), ctx.jobs.sweep_interval);
    Ok(parts
        .module::<Migrator>()
        // The codec holds each RPC to its own limit; this admits the largest.
        .serve(
            ProfileServiceServer::new(api).max_decoding_message_size(cx_proto::codec::max_request_bytes(SERVICE_NAME)),
        )
        // Other services' consent checks, behind the service identity.
        .serve_internal(ProfileInternalServiceServer::new(internal))
        .inbox(|handlers| inbox::routes(handlers, received))
        .expand(&store::events::PROFILE_FACTS, expander)
        .leased_job("lifecycle-sweep", move |stop| Box::pin(sweep_loop(store.clone(), cache.clone(), interval, stop)))
        .build())
}
/// Runs the lifecycle sweep at start and then every `interval` until `stop`.
async fn sweep_loop(
    store: ProfileStore,
    cache: cx_runtime::cache::Cache,
    interval: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        match store.sweep(chrono::Utc::now().date_naive()).await {
            Ok(swept) => {
                for (tenant, ids) in swept {
                    let keys = cache_keys::customers(&tenant, ids);
                    // On failure the bump is owed: this process trusts no
                    // cached value until it is made.
                    if let Err(err) = cache.invalidate_all(&keys).await {
                        tracing::error!(error = %err, "swept profiles not invalidated");
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "lifecycle sweep failed, will retry"),
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = stop.changed() => {}
        }
    }
}
