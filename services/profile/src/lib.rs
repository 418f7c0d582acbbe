//! The profile service (`cx.profile.v1.ProfileService`): the single view of a
//! customer — identities across channels, typed attributes, persona and
//! consents with their full history (DESIGN §1–3).
//!
//! - [`domain`]: pure rules (identity normal forms, attributes, consent state);
//! - [`store`]: sea-orm entities, migrations and tenant-scoped queries;
//! - [`api`]: the gRPC service, with validation, roles and the profile cache.

pub mod api;
pub mod domain;
pub mod error;
pub mod store;

use std::sync::Arc;

use async_trait::async_trait;
use cx_proto::profile::v1::profile_service_server::ProfileServiceServer;
use cx_runtime::config::ConfigError;
use cx_runtime::context::ServiceContext;
use cx_runtime::server::ServiceModule;
use sea_orm::{DatabaseConnection, DbErr};
use tonic::service::RoutesBuilder;
use tonic::service::interceptor::InterceptedService;

use crate::api::ProfileApi;
use crate::store::ProfileStore;
use crate::store::migration::Migrator;

pub const NAME: &str = "profile";
pub const GRPC_NAME: &str = "cx.profile.v1.ProfileService";

/// The profile service as a server mounts it.
#[derive(Debug)]
pub struct ProfileModule {
    db: DatabaseConnection,
    api: ProfileApi,
    auth: cx_runtime::auth::AuthInterceptor,
}

impl ProfileModule {
    /// Builds the service over its own database (opened lazily).
    pub async fn new(ctx: &ServiceContext) -> Result<Self, ConfigError> {
        let db = cx_runtime::store::open(&ctx.store, NAME).await?;
        let api = ProfileApi::new(ProfileStore::new(db.clone()), ctx.cache.clone());
        Ok(Self { db, api, auth: ctx.auth.clone() })
    }

    pub async fn arc(ctx: &ServiceContext) -> Result<Arc<dyn ServiceModule>, ConfigError> {
        Ok(Arc::new(Self::new(ctx).await?))
    }
}

#[async_trait]
impl ServiceModule for ProfileModule {
    fn name(&self) -> &'static str {
        NAME
    }

    fn grpc_name(&self) -> &'static str {
        GRPC_NAME
    }

    async fn migrate(&self) -> Result<(), DbErr> {
        cx_runtime::store::migrate::<Migrator>(&self.db, NAME).await
    }

    async fn ping(&self) -> Result<(), DbErr> {
        self.db.ping().await
    }

    fn mount(&self, routes: &mut RoutesBuilder) {
        routes.add_service(InterceptedService::new(ProfileServiceServer::new(self.api.clone()), self.auth.clone()));
    }
}
