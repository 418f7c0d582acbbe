//! The tenants whose purchases changed since their RFM was last written
//! into the facts: the RFM job's list of work.

use cx_runtime::store::column as col;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0006_segment_rfm_due"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Alias::new("segment_rfm_due"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64).primary_key())
                .to_owned(),
        )
        .await
    }
}
