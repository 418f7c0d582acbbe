//! What ExportSegment needs (docs/DOMAIN.md §8.6): the identities a
//! campaign reaches each customer by, as profile's facts feed sends them,
//! and per segment the members erased or merged away since its last
//! refresh, so that an export accounts for every member that refresh found.

use cx_runtime::store::{column as col, primary_key as pk};
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0007_segment_contacts"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Alias::new("segment_contacts"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("customer_id").uuid())
                // cx.profile.v1.IdentityKind: 1 email, 2 phone, 5 app install.
                .col(col("kind").small_integer())
                .col(col("value").string_len(320))
                .primary_key(&mut pk(&["tenant_id", "customer_id", "kind", "value"]))
                .to_owned(),
        )
        .await?;
        // One column a statement: SQLite alters no more at once. `refreshes`
        // numbers a segment's refreshes: an export's cursor names the one it
        // reads.
        for column in ["refreshes", "erased_members", "merged_members"] {
            m.alter_table(
                Table::alter()
                    .table(Alias::new("segments"))
                    .add_column(ColumnDef::new(Alias::new(column)).big_integer().not_null().default(0))
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
