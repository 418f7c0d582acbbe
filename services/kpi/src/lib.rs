//! The kpi service (`cx.kpi.v1.KpiService`): KPIs with their sample sizes
//! and 95 % intervals, and the tenant's targets (docs/DOMAIN.md §9).
//!
//! It computes nothing from other services' tables: each figure is asked of
//! the service owning its data, as this service (a service identity), and
//! combined here.
//!
//! - [`metric`]: what each KPI measures, its scale and its interval.
//! - [`filter`]: which answers a KPI reads, checked, in one canonical form.
//! - [`owners`]: the counts asked of the owning services (survey's score
//!   roll-ups, profile's customers by lifecycle); [`tally`]: the figures, intervals and changes worked from
//!   them; [`trend`]: days grouped by day, week or month.
//! - [`clv`]: CLV's inputs from profile's lifecycle counts and purchases.
//! - [`distribution`]: customers by lifecycle and intensity, as shares.
//! - [`dashboard`]: every figure of one dashboard; [`snapshot`]: the KPIs'
//!   daily values and the job taking them.
//! - [`experiment`]: A/B experiments checked, assigned and tested;
//!   [`gdpr`]: their exposures in merges, erasures and exports.
//! - [`store`]: the targets, snapshots, experiments and exposures; [`api`]:
//!   the gRPC service.

pub mod api;
pub mod clv;
pub mod dashboard;
pub mod distribution;
pub mod experiment;
pub mod filter;
pub mod gdpr;
pub mod metric;
pub mod owners;
pub mod snapshot;
pub mod store;
pub mod tally;
pub mod trend;

use std::sync::Arc;

use cx_proto::kpi::v1::kpi_service_server::KpiServiceServer;
use cx_runtime::config::ConfigError;
use cx_runtime::context::ServiceContext;
use cx_runtime::module::Parts;
use cx_runtime::registry::ServiceDef;
use cx_runtime::server::ServiceModule;

use crate::api::KpiApi;
use crate::owners::Owners;
use crate::store::migration::Migrator;

pub const NAME: &str = "kpi";

/// The kpi service's line in the registry. Experiments' exposures name
/// customers, so it takes part in merges, erasures and exports; it takes no
/// feed: it asks the owners when asked.
pub const SERVICE: ServiceDef =
    ServiceDef { name: NAME, customer_data: true, feeds: &[], build: |ctx| Box::pin(build(ctx)) };

/// Builds the service over its own database (opened lazily).
pub async fn build(ctx: &ServiceContext) -> Result<Arc<dyn ServiceModule>, ConfigError> {
    let parts = Parts::open(ctx, NAME).await?;
    let owners = Owners::new(
        parts.internal_peer(owners::SURVEY),
        parts.internal_peer(owners::PROFILE),
        parts.internal_peer(owners::JOURNEY),
        parts.internal_peer(owners::SEGMENTATION),
    );
    let api = KpiApi::new(parts.db.clone(), owners.clone(), parts.cache.clone());
    let db = parts.db.clone();
    Ok(parts
        .module::<Migrator>()
        .serve(KpiServiceServer::new(api))
        .participant(Arc::new(gdpr::KpiData))
        .leased_job("snapshots", move |stop| Box::pin(snapshot::run(db.clone(), owners.clone(), stop)))
        .build())
}
