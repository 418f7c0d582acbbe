//! The customers' turn rows (PostgreSQL locks them, `store/invitations/lock.rs`):
//! one row per customer whose invitations were ever decided. Row locks live
//! in the rows, not in PostgreSQL's shared lock table, so a batch may take
//! the turns of any number of customers.

use cx_runtime::store::{column as col, primary_key as pk};
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0005_turns"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Alias::new("survey_customer_turns"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("customer_id").uuid())
                .primary_key(&mut pk(&["tenant_id", "customer_id"]))
                .to_owned(),
        )
        .await
    }
}
