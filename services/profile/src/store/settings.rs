//! Tenant settings: today the digital intensity model.

use chrono::NaiveDate;
use cx_runtime::TenantId;
use cx_runtime::store::scoped;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, QueryFilter, TransactionTrait};

use super::ProfileStore;
use super::entity::{customer, tenant_setting};
use crate::domain::intensity::IntensityModel;
use crate::error::ProfileError;

type Result<T> = std::result::Result<T, ProfileError>;

impl ProfileStore {
    /// The tenant's model, or the defaults of DESIGN §3.
    pub async fn intensity_model(&self, t: &TenantId) -> Result<IntensityModel> {
        intensity_model_on(self.db(), t).await
    }

    /// Stores a (validated) model and marks every customer of the tenant for
    /// the next sweep, which recomputes the stored indexes with it.
    pub async fn set_intensity_model(&self, t: &TenantId, model: &IntensityModel, today: NaiveDate) -> Result<()> {
        let json = serde_json::to_value(model).map_err(|e| ProfileError::Corrupt(e.to_string()))?;
        let txn = self.db().begin().await?;
        let row = tenant_setting::ActiveModel {
            tenant_id: Set(t.to_string()),
            intensity_model: Set(json),
            updated_at: Set(cx_runtime::store::now()),
        };
        let upsert = OnConflict::column(tenant_setting::Column::TenantId)
            .update_columns([tenant_setting::Column::IntensityModel, tenant_setting::Column::UpdatedAt])
            .to_owned();
        tenant_setting::Entity::insert(row).on_conflict(upsert).exec_without_returning(&txn).await?;
        cx_runtime::store::scoped_update::<customer::Entity>(t)
            .col_expr(customer::Column::DiiNextChange, Expr::value(Some(today)))
            .filter(sea_orm::ColumnTrait::is_not_null(&customer::Column::DiiNextChange))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(())
    }
}

/// The tenant's model read on any connection or transaction.
pub async fn intensity_model_on<C: ConnectionTrait>(conn: &C, t: &TenantId) -> Result<IntensityModel> {
    let row = scoped::<tenant_setting::Entity>(t).one(conn).await?;
    match row {
        None => Ok(IntensityModel::default()),
        Some(row) => serde_json::from_value(row.intensity_model)
            .map_err(|e| ProfileError::Corrupt(format!("intensity model of tenant {t}: {e}"))),
    }
}
