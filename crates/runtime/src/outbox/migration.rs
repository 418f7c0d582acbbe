//! The outbox and inbox tables, one migration that every service's migrator
//! lists (under its own name, so each schema records it).

use sea_orm_migration::prelude::*;

use crate::store::column as col;

pub struct OutboxTables;

impl MigrationName for OutboxTables {
    fn name(&self) -> &str {
        "cx_outbox_v1"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for OutboxTables {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Alias::new("outbox"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("id").uuid())
                .col(col("destination").string_len(32))
                .col(col("kind").string_len(64))
                .col(col("payload").blob())
                .col(col("traceparent").string_len(64))
                .col(col("tracestate").string_len(512))
                .col(col("status").string_len(16))
                .col(col("attempts").integer())
                .col(col("next_attempt_at").timestamp_with_time_zone())
                .col(ColumnDef::new(Alias::new("claimed_until")).timestamp_with_time_zone().null())
                .col(col("last_error").text())
                .col(col("created_at").timestamp_with_time_zone())
                .col(ColumnDef::new(Alias::new("delivered_at")).timestamp_with_time_zone().null())
                .primary_key(Index::create().col(Alias::new("tenant_id")).col(Alias::new("id")))
                .to_owned(),
        )
        .await?;
        // The dispatcher looks for due pending rows across tenants; delivered
        // rows are pruned, so the table stays small.
        m.create_index(
            Index::create()
                .name("outbox_due")
                .table(Alias::new("outbox"))
                .if_not_exists()
                .col(Alias::new("tenant_id"))
                .col(Alias::new("status"))
                .col(Alias::new("next_attempt_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("inbox"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("message_id").string_len(64))
                .col(col("source").string_len(32))
                .col(col("kind").string_len(64))
                .col(col("received_at").timestamp_with_time_zone())
                .primary_key(Index::create().col(Alias::new("tenant_id")).col(Alias::new("message_id")))
                .to_owned(),
        )
        .await
    }
}

/// Indexes that stay small with millions of delivered rows: the claim reads
/// `outbox_pending`, pending rows only (the backlog), by tenant then due
/// time, which serves both claim shapes; pruning reads `outbox_delivered`;
/// the dead-letter gauge `outbox_dead`.
/// `outbox_due` indexed every row, delivered ones included, and is dropped.
/// The inbox is pruned by `inbox_received`.
pub struct OutboxIndexes;

impl MigrationName for OutboxIndexes {
    fn name(&self) -> &str {
        "cx_outbox_v2"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for OutboxIndexes {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let partial = |name: &str, columns: &[&str], status: &str| {
            let mut index = crate::store::index(name, "outbox", columns);
            index.and_where(Expr::col(Alias::new("status")).eq(status));
            index
        };
        m.create_index(partial("outbox_pending", &["tenant_id", "next_attempt_at"], crate::outbox::PENDING)).await?;
        m.create_index(partial("outbox_delivered", &["delivered_at"], crate::outbox::DELIVERED)).await?;
        // Dead rows are few: counted for the dead-letter alert without a scan.
        m.create_index(partial("outbox_dead", &["created_at"], crate::outbox::DEAD)).await?;
        m.create_index(crate::store::index("inbox_received", "inbox", &["received_at"])).await?;
        m.drop_index(Index::drop().name("outbox_due").table(Alias::new("outbox")).if_exists().to_owned()).await
    }
}
