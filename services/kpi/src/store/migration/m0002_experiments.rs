//! A/B experiments and their exposures (docs/DOMAIN.md §9.6): one exposure
//! per tenant, experiment and customer, its conversion time beside it.

use cx_runtime::store::{column as col, index, primary_key as pk};
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0002_experiments"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Alias::new("kpi_experiments"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("id").uuid())
                .col(col("body").binary())
                .col(col("started_at").timestamp_with_time_zone())
                .col(ColumnDef::new(Alias::new("stopped_at")).timestamp_with_time_zone().null())
                .primary_key(&mut pk(&["tenant_id", "id"]))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("kpi_exposures"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("experiment_id").uuid())
                .col(col("customer_id").uuid())
                .col(col("variant").string_len(64))
                .col(col("exposed_at").timestamp_with_time_zone())
                .col(ColumnDef::new(Alias::new("converted_at")).timestamp_with_time_zone().null())
                .primary_key(&mut pk(&["tenant_id", "experiment_id", "customer_id"]))
                .to_owned(),
        )
        .await?;
        // Merges, erasures and exports look a customer up across experiments.
        m.create_index(index("kpi_exposures_customer", "kpi_exposures", &["tenant_id", "customer_id"]).to_owned()).await
    }
}
