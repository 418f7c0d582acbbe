//! Targets: one per tenant, metric and filter (the filter's key is a digest
//! of its canonical form).

use cx_runtime::store::{column as col, index, primary_key as pk};
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0001_targets"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Alias::new("kpi_targets"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("id").uuid())
                .col(col("metric").small_integer())
                .col(col("filter_key").string_len(64))
                .col(col("body").binary())
                .col(col("updated_at").timestamp_with_time_zone())
                .primary_key(&mut pk(&["tenant_id", "id"]))
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("kpi_targets_named", "kpi_targets", &["tenant_id", "metric", "filter_key"]).unique().to_owned(),
        )
        .await
    }
}
