//! Purchases per customer, UTC day and currency, as profile keeps them:
//! what RFM is computed from.

use cx_runtime::store::{column as col, primary_key as pk};
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0001_segment_purchase_days"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // The key leads with (tenant, customer, day): RFM groups by customer
        // and keeps the window's days.
        m.create_table(
            Table::create()
                .table(Alias::new("segment_purchase_days"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("customer_id").uuid())
                .col(col("day").date())
                .col(col("currency").char_len(3))
                .col(col("purchases").big_integer())
                .col(col("amount_micros").big_integer())
                .primary_key(&mut pk(&["tenant_id", "customer_id", "day", "currency"]))
                .to_owned(),
        )
        .await
    }
}
