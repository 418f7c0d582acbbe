//! Where each source of facts (profile, journey, survey) stands per tenant:
//! its load's state, how far it went (the last customer id applied, in the
//! transaction of that page) and its high-water mark between load and feed
//! (docs/DOMAIN.md §8.5). No row: the source is known only from its feed.

use cx_runtime::store::{column as col, primary_key as pk};
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0008_segment_fact_sources"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Alias::new("segment_fact_sources"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                // "profile", "journey" or "survey".
                .col(col("source").string_len(16))
                // "loading" or "loaded".
                .col(col("state").string_len(16))
                .col(ColumnDef::new(Alias::new("cursor")).uuid().null())
                .col(col("loaded_customers").big_integer())
                .col(col("started_at").timestamp_with_time_zone())
                .col(ColumnDef::new(Alias::new("completed_at")).timestamp_with_time_zone().null())
                .col(col("high_water").timestamp_with_time_zone())
                // The loader holding the load, and until when: one replica
                // at a time pages through a source.
                .col(ColumnDef::new(Alias::new("lease_id")).uuid().null())
                .col(ColumnDef::new(Alias::new("lease_until")).timestamp_with_time_zone().null())
                .primary_key(&mut pk(&["tenant_id", "source"]))
                .to_owned(),
        )
        .await
    }
}
