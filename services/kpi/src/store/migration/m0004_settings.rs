//! The tenant's KPI settings: one row per tenant, its `cx.kpi.v1.KpiSettings`.

use cx_runtime::store::{column as col, primary_key as pk};
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0004_settings"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Alias::new("kpi_settings"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("body").binary())
                .col(col("updated_at").timestamp_with_time_zone())
                .primary_key(&mut pk(&["tenant_id"]))
                .to_owned(),
        )
        .await
    }
}
