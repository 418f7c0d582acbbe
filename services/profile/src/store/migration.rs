//! Migrations of the profile schema, applied at start and by `cx migrate`.

use sea_orm_migration::prelude::*;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(M0001Initial), Box::new(cx_runtime::outbox::migration::OutboxTables)]
    }
}

struct M0001Initial;

impl MigrationName for M0001Initial {
    fn name(&self) -> &str {
        "m0001_initial"
    }
}

fn col(name: &'static str) -> ColumnDef {
    let mut def = ColumnDef::new(Alias::new(name));
    def.not_null();
    def
}

#[async_trait::async_trait]
impl MigrationTrait for M0001Initial {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Alias::new("customers"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("id").uuid())
                .col(col("persona").string_len(128))
                .col(col("attributes").json_binary())
                .col(col("version").big_integer())
                .col(col("created_at").timestamp_with_time_zone())
                .col(col("updated_at").timestamp_with_time_zone())
                .primary_key(Index::create().col(Alias::new("tenant_id")).col(Alias::new("id")))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("identities"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("kind").string_len(16))
                .col(col("value").string_len(320))
                .col(col("customer_id").uuid())
                .col(col("created_at").timestamp_with_time_zone())
                .primary_key(
                    Index::create().col(Alias::new("tenant_id")).col(Alias::new("kind")).col(Alias::new("value")),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("identities_by_customer")
                .table(Alias::new("identities"))
                .if_not_exists()
                .col(Alias::new("tenant_id"))
                .col(Alias::new("customer_id"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("consent_events"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("id").uuid())
                .col(col("customer_id").uuid())
                .col(col("purpose").string_len(80))
                .col(col("granted").boolean())
                .col(col("source_channel").string_len(32))
                .col(col("actor").string_len(256))
                .col(col("occurred_at").timestamp_with_time_zone())
                .col(col("recorded_at").timestamp_with_time_zone())
                .col(ColumnDef::new(Alias::new("request_id")).string_len(128).null())
                .primary_key(Index::create().col(Alias::new("tenant_id")).col(Alias::new("id")))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("consent_events_by_customer")
                .table(Alias::new("consent_events"))
                .if_not_exists()
                .col(Alias::new("tenant_id"))
                .col(Alias::new("customer_id"))
                .col(Alias::new("purpose"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("consent_events_by_request")
                .table(Alias::new("consent_events"))
                .if_not_exists()
                .unique()
                .col(Alias::new("tenant_id"))
                .col(Alias::new("request_id"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("consent_purposes"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("name").string_len(63))
                .col(col("description").string_len(1024))
                .col(col("created_at").timestamp_with_time_zone())
                .primary_key(Index::create().col(Alias::new("tenant_id")).col(Alias::new("name")))
                .to_owned(),
        )
        .await
    }
}
