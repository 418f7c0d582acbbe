//! The day a fact row's journey windows (`touchpoints_90d`, `channels_180d`)
//! were last summed as of: a batch of touchpoints adds to the windows of a
//! row summed as of today, and sums again only the rows summed before.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0009_segment_windows_day"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Alias::new("segment_facts"))
                .add_column(ColumnDef::new(Alias::new("windows_day")).integer().null())
                .to_owned(),
        )
        .await
    }
}
