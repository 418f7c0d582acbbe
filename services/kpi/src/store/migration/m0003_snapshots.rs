//! Snapshots: a KPI's value per tenant, day, metric and filter key, as it
//! was computed then; and the tenants the daily job takes them for.

use cx_runtime::store::{column as col, primary_key as pk};
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0003_snapshots"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Alias::new("kpi_snapshots"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("day").integer())
                .col(col("metric").small_integer())
                .col(col("filter_key").string_len(64))
                .col(col("body").binary())
                .col(col("definition_version").integer())
                .col(col("taken_at").timestamp_with_time_zone())
                .primary_key(&mut pk(&["tenant_id", "metric", "filter_key", "day"]))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("kpi_tenants"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("first_seen").timestamp_with_time_zone())
                .primary_key(&mut pk(&["tenant_id"]))
                .to_owned(),
        )
        .await
    }
}
