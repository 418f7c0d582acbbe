//! The tenant's KPI settings: read (the defaults when never set), replaced.

use cx_proto::kpi::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::error::ServiceError;
use cx_runtime::store::{now, scoped};
use prost::Message;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};

use super::entity::kpi_settings;

pub type Result<T> = std::result::Result<T, ServiceError>;

/// The settings of `t`; the defaults (no acquisition cost) when never set.
pub async fn get(conn: &impl ConnectionTrait, t: &TenantId) -> Result<pb::KpiSettings> {
    let Some(row) = scoped::<kpi_settings::Entity>(t).one(conn).await? else {
        return Ok(pb::KpiSettings::default());
    };
    let mut settings = pb::KpiSettings::decode(row.body.as_slice())
        .map_err(|e| ServiceError::Corrupt(format!("KPI settings of tenant {t}: {e}")))?;
    settings.update_time = Some(cx_proto::timestamp(row.updated_at));
    Ok(settings)
}

/// Stores `settings` as the settings of `t`, and answers them.
pub async fn set(conn: &impl ConnectionTrait, t: &TenantId, mut settings: pb::KpiSettings) -> Result<pb::KpiSettings> {
    settings.update_time = None;
    let at = now();
    let row = kpi_settings::ActiveModel {
        tenant_id: Set(t.to_string()),
        body: Set(settings.encode_to_vec()),
        updated_at: Set(at),
    };
    let conflict = OnConflict::column(kpi_settings::Column::TenantId)
        .update_columns([kpi_settings::Column::Body, kpi_settings::Column::UpdatedAt])
        .to_owned();
    kpi_settings::Entity::insert(row).on_conflict(conflict).exec_without_returning(conn).await?;
    settings.update_time = Some(cx_proto::timestamp(at));
    Ok(settings)
}

/// The acquisition cost CLV takes when a request gives none.
pub async fn cost(conn: &impl ConnectionTrait, t: &TenantId) -> Result<Option<crate::clv::Cost>> {
    let settings = get(conn, t).await?;
    settings
        .acquisition_cost
        .map(|money| {
            cx_runtime::input::parse_money(&money, "acquisition_cost")
                .map_err(|v| ServiceError::Corrupt(format!("KPI settings of tenant {t}: {}", v.description)))
        })
        .transpose()
}
