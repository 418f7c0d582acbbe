//! The survey service (`cx.survey.v1.SurveyService`): NPS, CSAT and CES
//! surveys, the triggers that invite customers after journey touchpoints,
//! the fatigue budget, consent enforced with the profile service, responses
//! and their verbatims, the closed loop, and score roll-ups
//! (docs/DOMAIN.md §7).
//!
//! - [`domain`]: pure rules (survey types and score ranges, trigger
//!   matching and sampling, the formulas of the aggregates);
//! - [`store`]: sea-orm entities, migrations, queries;
//! - [`api`]: the gRPC service, and `cx.survey.v1.SurveyInternalService`
//!   (segmentation's load of scores and open cases, the kpi service's score
//!   aggregates); [`inbox`]: touchpoints offered by journey
//!   and consent decisions announced by profile; [`consents`]: the profile
//!   service's consent check; [`expiry`]: the expiry of invitations;
//!   [`gdpr`]: merges, erasures and access exports.

pub mod api;
pub mod consents;
pub mod domain;
pub mod expiry;
pub mod gdpr;
pub mod inbox;
pub mod store;

use std::sync::Arc;

use cx_proto::survey::v1::survey_internal_service_server::SurveyInternalServiceServer;
use cx_proto::survey::v1::survey_service_server::{SERVICE_NAME, SurveyServiceServer};
use cx_runtime::config::ConfigError;
use cx_runtime::context::ServiceContext;
use cx_runtime::module::Parts;
use cx_runtime::registry::{Feed, ServiceDef};
use cx_runtime::server::ServiceModule;

use crate::api::SurveyApi;
use crate::api::internal::SurveyInternal;
use crate::store::SurveyStore;
use crate::store::feeds::Feeds;
use crate::store::migration::Migrator;

pub const NAME: &str = "survey";

/// The survey service's line in the registry: it holds customer data
/// (invitations, responses, cases), so it takes part in merges and erasures;
/// it enforces consent, so profile tells it of every consent decision; its
/// triggers read the touchpoints journey stores.
pub const SERVICE: ServiceDef = ServiceDef {
    name: NAME,
    customer_data: true,
    feeds: &[Feed::Consents, Feed::Touchpoints],
    build: |ctx| Box::pin(build(ctx)),
};

/// Builds the service over its own database (opened lazily).
pub async fn build(ctx: &ServiceContext) -> Result<Arc<dyn ServiceModule>, ConfigError> {
    let parts = Parts::open(ctx, NAME).await?;
    let feeds = Feeds { scores: ctx.fed(Feed::Scores, NAME)?.into(), cases: ctx.fed(Feed::Cases, NAME)?.into() };
    let store = SurveyStore::new(parts.db.clone()).with_feeds(feeds.clone());
    let internal = SurveyInternal::new(store.clone(), parts.cache.clone());
    let api = SurveyApi::new(store, parts.cache.clone());
    let db = parts.db.clone();
    let consents = consents::Consents::new(parts.internal_peer("profile"));
    let cache = parts.cache.clone();
    let parts_db = parts.db.clone();
    Ok(parts
        .module::<Migrator>()
        .serve(
            SurveyServiceServer::new(api).max_decoding_message_size(cx_proto::codec::max_request_bytes(SERVICE_NAME)),
        )
        // Segmentation's load of scores and open cases and the kpi service's
        // score aggregates, behind the service identity.
        .serve_internal(SurveyInternalServiceServer::new(internal))
        .inbox(|handlers| inbox::routes(handlers, parts_db, consents, cache))
        .participant(Arc::new(gdpr::SurveyData { feeds }))
        .leased_job("invitation-expiry", move |stop| Box::pin(expiry::run(db.clone(), stop)))
        .build())
}
