//! Tenant settings: today the digital intensity model.

use cx_runtime::TenantId;
use cx_runtime::store::scoped;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};

use super::ProfileStore;
use super::entity::tenant_setting;
use crate::domain::intensity::IntensityModel;
use crate::error::ProfileError;

type Result<T> = std::result::Result<T, ProfileError>;

impl ProfileStore {
    /// Stores a (validated) model. Nothing else is written: indexes and
    /// categories are derived from the stored components when read, so the
    /// model applies to every customer at once (on other replicas within
    /// [`super::intensity::MODEL_TTL`]).
    pub async fn set_intensity_model(&self, t: &TenantId, model: &IntensityModel) -> Result<()> {
        let json = serde_json::to_value(model).map_err(|e| ProfileError::Corrupt(e.to_string()))?;
        let row = tenant_setting::ActiveModel {
            tenant_id: Set(t.to_string()),
            intensity_model: Set(json),
            updated_at: Set(cx_runtime::store::now()),
        };
        let upsert = OnConflict::column(tenant_setting::Column::TenantId)
            .update_columns([tenant_setting::Column::IntensityModel, tenant_setting::Column::UpdatedAt])
            .to_owned();
        tenant_setting::Entity::insert(row).on_conflict(upsert).exec_without_returning(self.db()).await?;
        self.models.put(t, *model);
        Ok(())
    }
}

/// The tenant's model read on any connection or transaction.
pub async fn intensity_model_on<C: ConnectionTrait>(conn: &C, t: &TenantId) -> Result<IntensityModel> {
    let row = scoped::<tenant_setting::Entity>(t).one(conn).await?;
    match row {
        None => Ok(IntensityModel::default()),
        Some(row) => model_of(t, row.intensity_model),
    }
}

fn model_of(t: &TenantId, stored: serde_json::Value) -> Result<IntensityModel> {
    serde_json::from_value(stored).map_err(|e| ProfileError::Corrupt(format!("intensity model of tenant {t}: {e}")))
}
