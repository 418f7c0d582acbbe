//! Migrations of the journey schema, applied at start and by `cx migrate`.

use cx_runtime::store::{column as col, index, primary_key as pk};
use sea_orm_migration::prelude::*;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(M0001Initial),
            Box::new(M0002Rollups),
            Box::new(M0003SharedMerges),
            Box::new(M0004InstancesPerCustomer),
        ]
    }
}

struct M0001Initial;

impl MigrationName for M0001Initial {
    fn name(&self) -> &str {
        "m0001_initial"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0001Initial {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Alias::new("journey_maps"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("id").uuid())
                .col(col("name").string_len(200))
                .col(col("customer_type").string_len(200))
                .col(col("meta_journey").string_len(16))
                .col(col("version").integer())
                .col(col("created_at").timestamp_with_time_zone())
                .col(col("updated_at").timestamp_with_time_zone())
                .primary_key(&mut pk(&["tenant_id", "id"]))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("journey_map_versions"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("map_id").uuid())
                .col(col("version").integer())
                .col(col("steps").json_binary())
                .col(col("created_at").timestamp_with_time_zone())
                .primary_key(&mut pk(&["tenant_id", "map_id", "version"]))
                .to_owned(),
        )
        .await?;
        // The ingest table: its key is the client's id (idempotency) and it
        // has one index, for timelines; every index costs about as much as
        // the table at ingest (docs/BENCHMARKS.md, Floors).
        m.create_table(
            Table::create()
                .table(Alias::new("touchpoints"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("id").string_len(128))
                .col(col("customer_id").uuid())
                .col(col("channel").small_integer())
                .col(col("occurred_at").timestamp_with_time_zone())
                .col(col("kind").small_integer())
                .col(col("initiator").small_integer())
                .col(col("phase").small_integer())
                .col(ColumnDef::new(Alias::new("map_id")).uuid().null())
                .col(ColumnDef::new(Alias::new("map_version")).integer().null())
                .col(ColumnDef::new(Alias::new("step_key")).string_len(64).null())
                .col(ColumnDef::new(Alias::new("instance_id")).string_len(128).null())
                .col(ColumnDef::new(Alias::new("score")).small_integer().null())
                .col(ColumnDef::new(Alias::new("currency")).string_len(3).null())
                .col(ColumnDef::new(Alias::new("amount_micros")).big_integer().null())
                .col(ColumnDef::new(Alias::new("device_id")).string_len(128).null())
                .col(ColumnDef::new(Alias::new("attributes")).json_binary().null())
                .col(col("recorded_at").timestamp_with_time_zone())
                .primary_key(&mut pk(&["tenant_id", "id"]))
                .to_owned(),
        )
        .await?;
        m.create_index(index("touchpoints_by_customer", "touchpoints", &["tenant_id", "customer_id", "occurred_at"]))
            .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("profile_merges"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("merged_id").uuid())
                .col(col("survivor_id").uuid())
                .col(col("merged_at").timestamp_with_time_zone())
                .primary_key(&mut pk(&["tenant_id", "merged_id"]))
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}

/// Analytics roll-ups (docs/BENCHMARKS.md, Floors): instances and per-day
/// counters. [`M0004InstancesPerCustomer`] replaces both tables and fills
/// them from the touchpoints already stored.
struct M0002Rollups;

impl MigrationName for M0002Rollups {
    fn name(&self) -> &str {
        "m0002_rollups"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0002Rollups {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        create_rollups(m, &["tenant_id", "map_id", "instance_id"]).await?;
        // An instance's touchpoints, read when it changes; also GetJourneyInstance.
        m.get_connection()
            .execute_unprepared(
                "CREATE INDEX IF NOT EXISTS touchpoints_by_instance ON touchpoints (tenant_id, map_id, instance_id) \
                 WHERE instance_id IS NOT NULL",
            )
            .await?;
        Ok(())
    }
}

/// The roll-up tables, `journey_instances` keyed by `instance_key`.
async fn create_rollups(m: &SchemaManager<'_>, instance_key: &[&'static str]) -> Result<(), DbErr> {
    m.create_table(
        Table::create()
            .table(Alias::new("journey_instances"))
            .if_not_exists()
            .col(col("tenant_id").string_len(64))
            .col(col("map_id").uuid())
            .col(col("instance_id").string_len(128))
            .col(col("customer_id").uuid())
            .col(col("first_day").integer())
            .col(col("touchpoints").big_integer())
            .col(col("scored").big_integer())
            .col(col("peak").integer())
            .col(col("last").integer())
            .col(col("remembered").double())
            .col(col("mean").double())
            .col(col("gap").double())
            .primary_key(&mut pk(instance_key))
            .to_owned(),
    )
    .await?;
    m.create_table(
        Table::create()
            .table(Alias::new("journey_rollups"))
            .if_not_exists()
            .col(col("tenant_id").string_len(64))
            .col(col("map_id").uuid())
            .col(col("day").integer())
            .col(col("name").string_len(32))
            .col(col("label").string_len(64))
            .col(col("n").big_integer())
            .col(col("x").double())
            .primary_key(&mut pk(&["tenant_id", "map_id", "day", "name", "label"]))
            .to_owned(),
    )
    .await?;
    // The peak-end listing: instances farthest from their mean first. Not
    // ending in instance_id: the planner once took it over the primary key
    // to look instances up.
    m.get_connection()
        .execute_unprepared(
            "CREATE INDEX IF NOT EXISTS journey_instances_by_gap ON journey_instances (tenant_id, map_id, gap DESC)",
        )
        .await?;
    Ok(())
}

/// Merges learnt from the profile service move to the runtime's table,
/// which every service holding customer data keeps (`gdpr_merges`).
struct M0003SharedMerges;

impl MigrationName for M0003SharedMerges {
    fn name(&self) -> &str {
        "m0003_shared_merges"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0003SharedMerges {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // `WHERE true`: SQLite reads ON CONFLICT after a bare SELECT as a join.
        m.get_connection()
            .execute_unprepared(
                "INSERT INTO gdpr_merges (tenant_id, merged_id, survivor_id, merged_at) \
                 SELECT tenant_id, merged_id, survivor_id, merged_at FROM profile_merges WHERE true \
                 ON CONFLICT (tenant_id, merged_id) DO NOTHING",
            )
            .await?;
        m.drop_table(Table::drop().table(Alias::new("profile_merges")).if_exists().to_owned()).await
    }
}

/// An instance is one customer's (docs/DOMAIN.md §5.3): `journey_instances`
/// is keyed by map, customer and instance id, and both roll-up tables are
/// filled anew from the touchpoints stored, through the same code as
/// ingest — an instance id two customers shared was counted as one. With
/// them, instances are counted by the set of steps they reached, and
/// `journey_step_sets` says which steps each set's key stands for (the
/// funnel, docs/DOMAIN.md §5.6).
struct M0004InstancesPerCustomer;

impl MigrationName for M0004InstancesPerCustomer {
    fn name(&self) -> &str {
        "m0004_instances_per_customer"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0004InstancesPerCustomer {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in ["journey_instances", "journey_rollups"] {
            m.drop_table(Table::drop().table(Alias::new(table)).if_exists().to_owned()).await?;
        }
        create_rollups(m, &["tenant_id", "map_id", "customer_id", "instance_id"]).await?;
        m.create_table(
            Table::create()
                .table(Alias::new("journey_step_sets"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("map_id").uuid())
                .col(col("label").string_len(64))
                .col(col("steps").text())
                .primary_key(&mut pk(&["tenant_id", "map_id", "label"]))
                .to_owned(),
        )
        .await?;
        crate::store::rollup::rebuild(m.get_connection()).await.map_err(|e| DbErr::Custom(e.to_string()))
    }
}
