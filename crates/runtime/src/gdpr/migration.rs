//! The merge and erasure tables, part of every service's schema.

use sea_orm_migration::prelude::*;

use crate::store::column as col;

pub struct GdprTables;

impl MigrationName for GdprTables {
    fn name(&self) -> &str {
        "cx_gdpr_v1"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for GdprTables {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Alias::new("gdpr_merges"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("merged_id").uuid())
                .col(col("survivor_id").uuid())
                .col(col("merged_at").timestamp_with_time_zone())
                .primary_key(Index::create().col(Alias::new("tenant_id")).col(Alias::new("merged_id")))
                .to_owned(),
        )
        .await?;
        // Chains are re-pointed by survivor.
        m.create_index(
            Index::create()
                .name("gdpr_merges_survivor")
                .table(Alias::new("gdpr_merges"))
                .if_not_exists()
                .col(Alias::new("tenant_id"))
                .col(Alias::new("survivor_id"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("gdpr_erased"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("digest").uuid())
                .col(col("erased_at").timestamp_with_time_zone())
                .primary_key(Index::create().col(Alias::new("tenant_id")).col(Alias::new("digest")))
                .to_owned(),
        )
        .await
    }
}
