//! Tenant settings: today the digital intensity model.

use cx_runtime::TenantId;
use cx_runtime::store::{scoped, scoped_update};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::ProfileStore;
use super::entity::tenant_setting;
use crate::domain::intensity::IntensityModel;
use crate::error::ProfileError;

type Result<T> = std::result::Result<T, ProfileError>;

impl ProfileStore {
    /// The tenant's model, or the defaults of DESIGN §3.
    pub async fn intensity_model(&self, t: &TenantId) -> Result<IntensityModel> {
        intensity_model_on(self.db(), t).await
    }

    /// Stores a (validated) model. The stored indexes follow at the next
    /// sweep, which walks the tenant's customers from the start (again, if a
    /// walk was under way): the call stays short whatever the tenant's size.
    pub async fn set_intensity_model(&self, t: &TenantId, model: &IntensityModel) -> Result<()> {
        let json = serde_json::to_value(model).map_err(|e| ProfileError::Corrupt(e.to_string()))?;
        let row = tenant_setting::ActiveModel {
            tenant_id: Set(t.to_string()),
            intensity_model: Set(json),
            updated_at: Set(cx_runtime::store::now()),
            recompute_after: Set(Some(Uuid::nil())),
        };
        let upsert = OnConflict::column(tenant_setting::Column::TenantId)
            .update_columns([
                tenant_setting::Column::IntensityModel,
                tenant_setting::Column::UpdatedAt,
                tenant_setting::Column::RecomputeAfter,
            ])
            .to_owned();
        tenant_setting::Entity::insert(row).on_conflict(upsert).exec_without_returning(self.db()).await?;
        Ok(())
    }

    /// Where the recompute of the tenant's indexes stands: the last customer
    /// done (nil: none yet), or `None` when nothing is owed.
    pub async fn recompute_cursor(&self, t: &TenantId) -> Result<Option<Uuid>> {
        Ok(self.recompute_owed(t).await?.map(|(after, _)| after))
    }

    /// The cursor of an owed recompute with the model it applies, from one
    /// read of the settings row.
    pub(crate) async fn recompute_owed(&self, t: &TenantId) -> Result<Option<(Uuid, IntensityModel)>> {
        let Some(row) = scoped::<tenant_setting::Entity>(t).one(self.db()).await? else { return Ok(None) };
        let Some(after) = row.recompute_after else { return Ok(None) };
        Ok(Some((after, model_of(t, row.intensity_model)?)))
    }

    /// Moves the cursor from `from` to `to` (`None`: done), unless the model
    /// changed meanwhile (the cursor is then no longer `from`); says whether it moved.
    pub(crate) async fn advance_recompute<C: ConnectionTrait>(
        conn: &C,
        t: &TenantId,
        from: Uuid,
        to: Option<Uuid>,
    ) -> Result<bool> {
        let moved = scoped_update::<tenant_setting::Entity>(t)
            .filter(tenant_setting::Column::RecomputeAfter.eq(from))
            .col_expr(tenant_setting::Column::RecomputeAfter, Expr::value(to))
            .exec(conn)
            .await?;
        Ok(moved.rows_affected == 1)
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
