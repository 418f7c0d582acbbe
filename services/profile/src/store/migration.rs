//! Migrations of the profile schema, applied at start and by `cx migrate`.

use sea_orm_migration::prelude::*;

use cx_runtime::store::column as col;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(M0001Initial),
            Box::new(M0002Activity),
            Box::new(M0003Merges),
            Box::new(M0004Erasures),
            Box::new(M0005ErasureFanOut),
            Box::new(M0006ModelRecompute),
            Box::new(M0007IntensityComponents),
            Box::new(M0008SurveyScores),
            Box::new(M0009PurchaseSquares),
            Box::new(M0010PurchaseSpans),
            Box::new(M0011PurchaseTotals),
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

/// Activity kept as compact daily aggregates (exactly what lifecycle and
/// digital intensity need), and the derived state on each customer.
struct M0002Activity;

impl MigrationName for M0002Activity {
    fn name(&self) -> &str {
        "m0002_activity"
    }
}

fn add_to_customers(column: ColumnDef) -> TableAlterStatement {
    Table::alter().table(Alias::new("customers")).add_column(column).to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for M0002Activity {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        for column in [
            ColumnDef::new(Alias::new("last_touch_at")).timestamp_with_time_zone().null().to_owned(),
            col("lifecycle").string_len(16).default("prospect").to_owned(),
            ColumnDef::new(Alias::new("lifecycle_since")).timestamp_with_time_zone().null().to_owned(),
            ColumnDef::new(Alias::new("lifecycle_next_change")).date().null().to_owned(),
            ColumnDef::new(Alias::new("dii_next_change")).date().null().to_owned(),
            ColumnDef::new(Alias::new("dii")).integer().null().to_owned(),
            ColumnDef::new(Alias::new("dii_category")).string_len(16).null().to_owned(),
            ColumnDef::new(Alias::new("dii_components")).json_binary().null().to_owned(),
        ] {
            m.alter_table(add_to_customers(column)).await?;
        }
        m.create_table(
            Table::create()
                .table(Alias::new("activity_days"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("customer_id").uuid())
                .col(col("day").date())
                .col(col("channel").string_len(16))
                .col(col("initiator").string_len(8))
                .col(col("kind").string_len(16))
                .col(col("touchpoints").big_integer())
                .primary_key(
                    Index::create()
                        .col(Alias::new("tenant_id"))
                        .col(Alias::new("customer_id"))
                        .col(Alias::new("day"))
                        .col(Alias::new("channel"))
                        .col(Alias::new("initiator"))
                        .col(Alias::new("kind")),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("purchase_days"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("customer_id").uuid())
                .col(col("day").date())
                .col(col("currency").string_len(3))
                .col(col("purchases").big_integer())
                .col(col("amount_micros").big_integer())
                .primary_key(
                    Index::create()
                        .col(Alias::new("tenant_id"))
                        .col(Alias::new("customer_id"))
                        .col(Alias::new("day"))
                        .col(Alias::new("currency")),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("devices"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("customer_id").uuid())
                .col(col("device_id").string_len(128))
                .col(col("first_seen").date())
                .col(col("last_seen").date())
                .primary_key(
                    Index::create()
                        .col(Alias::new("tenant_id"))
                        .col(Alias::new("customer_id"))
                        .col(Alias::new("device_id")),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("activity_batches"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("batch_id").string_len(128))
                .col(col("records").integer())
                .col(col("received_at").timestamp_with_time_zone())
                .primary_key(Index::create().col(Alias::new("tenant_id")).col(Alias::new("batch_id")))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("tenant_settings"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("intensity_model").json_binary())
                .col(col("updated_at").timestamp_with_time_zone())
                .primary_key(Index::create().col(Alias::new("tenant_id")))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("lifecycle_transitions"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("id").uuid())
                .col(col("customer_id").uuid())
                .col(col("from_state").string_len(16))
                .col(col("to_state").string_len(16))
                .col(col("at").timestamp_with_time_zone())
                .primary_key(Index::create().col(Alias::new("tenant_id")).col(Alias::new("id")))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("lifecycle_transitions_by_state")
                .table(Alias::new("lifecycle_transitions"))
                .if_not_exists()
                .col(Alias::new("tenant_id"))
                .col(Alias::new("to_state"))
                .col(Alias::new("at"))
                .to_owned(),
        )
        .await?;
        for (name, column) in
            [("customers_lifecycle_due", "lifecycle_next_change"), ("customers_dii_due", "dii_next_change")]
        {
            m.create_index(
                Index::create()
                    .name(name)
                    .table(Alias::new("customers"))
                    .if_not_exists()
                    .col(Alias::new("tenant_id"))
                    .col(Alias::new(column))
                    .to_owned(),
            )
            .await?;
        }
        m.create_index(
            Index::create()
                .name("customers_by_lifecycle")
                .table(Alias::new("customers"))
                .if_not_exists()
                .col(Alias::new("tenant_id"))
                .col(Alias::new("lifecycle"))
                .to_owned(),
        )
        .await
    }
}

/// Merges: which profile was folded into which, so the merged id keeps
/// resolving to the survivor.
struct M0003Merges;

impl MigrationName for M0003Merges {
    fn name(&self) -> &str {
        "m0003_merges"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0003Merges {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Alias::new("merges"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("merged_id").uuid())
                .col(col("survivor_id").uuid())
                .col(col("conflicts").json_binary())
                .col(col("merged_at").timestamp_with_time_zone())
                .primary_key(Index::create().col(Alias::new("tenant_id")).col(Alias::new("merged_id")))
                .to_owned(),
        )
        .await
    }
}

/// Erasure jobs and their per-service steps. Once a job completes it keeps
/// counts and times only: the customer's id is cleared.
struct M0004Erasures;

impl MigrationName for M0004Erasures {
    fn name(&self) -> &str {
        "m0004_erasures"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0004Erasures {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Alias::new("erasures"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("id").uuid())
                .col(ColumnDef::new(Alias::new("profile_id")).uuid().null())
                .col(col("state").string_len(16))
                .col(col("created_at").timestamp_with_time_zone())
                .col(ColumnDef::new(Alias::new("completed_at")).timestamp_with_time_zone().null())
                .primary_key(Index::create().col(Alias::new("tenant_id")).col(Alias::new("id")))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("erasure_steps"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("erasure_id").uuid())
                .col(col("service").string_len(32))
                .col(col("state").string_len(16))
                .col(col("counts").json_binary())
                .col(ColumnDef::new(Alias::new("completed_at")).timestamp_with_time_zone().null())
                .primary_key(
                    Index::create()
                        .col(Alias::new("tenant_id"))
                        .col(Alias::new("erasure_id"))
                        .col(Alias::new("service")),
                )
                .to_owned(),
        )
        .await
    }
}

/// Each erasure step of another service remembers the outbox message that
/// carries the request, so the finished job can forget it.
struct M0005ErasureFanOut;

impl MigrationName for M0005ErasureFanOut {
    fn name(&self) -> &str {
        "m0005_erasure_fan_out"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0005ErasureFanOut {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Alias::new("erasure_steps"))
                .add_column(ColumnDef::new(Alias::new("message_id")).uuid().null())
                .to_owned(),
        )
        .await
    }
}

/// A changed intensity model is applied to stored indexes by the sweep, a
/// chunk at a time from a cursor, instead of in the call that changed it.
struct M0006ModelRecompute;

impl MigrationName for M0006ModelRecompute {
    fn name(&self) -> &str {
        "m0006_model_recompute"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0006ModelRecompute {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Alias::new("tenant_settings"))
                .add_column(ColumnDef::new(Alias::new("recompute_after")).uuid().null())
                .to_owned(),
        )
        .await
    }
}

/// The index and category of a customer are derived when read, from four
/// stored components and the tenant's model, so a model change rewrites no
/// customer. The old `dii`, `dii_category` and `dii_components` columns are
/// no longer written; they stay for replicas of the previous version during a
/// rolling upgrade and go in a later release.
struct M0007IntensityComponents;

pub(crate) const COMPONENT_COLUMNS: [&str; 4] =
    ["dii_digital_share", "dii_digital_breadth", "dii_device_factor", "dii_self_service_share"];

impl MigrationName for M0007IntensityComponents {
    fn name(&self) -> &str {
        "m0007_intensity_components"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0007IntensityComponents {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        for column in COMPONENT_COLUMNS {
            m.alter_table(
                Table::alter()
                    .table(Alias::new("customers"))
                    .add_column(ColumnDef::new(Alias::new(column)).double().null())
                    .to_owned(),
            )
            .await?;
        }
        // The components the previous version kept as a JSON array.
        let element = |i: usize| match m.get_database_backend() {
            sea_orm::DbBackend::Postgres => format!("(dii_components->>{i})::double precision"),
            _ => format!("json_extract(dii_components, '$[{i}]')"),
        };
        let sets: Vec<String> =
            COMPONENT_COLUMNS.iter().enumerate().map(|(i, column)| format!("{column} = {}", element(i))).collect();
        m.get_connection()
            .execute_unprepared(&format!("UPDATE customers SET {} WHERE dii_components IS NOT NULL", sets.join(", ")))
            .await?;
        Ok(())
    }
}

/// The latest survey answers of each customer (one row per kind of survey).
struct M0008SurveyScores;

impl MigrationName for M0008SurveyScores {
    fn name(&self) -> &str {
        "m0008_survey_scores"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0008SurveyScores {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Alias::new("survey_scores"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("customer_id").uuid())
                .col(col("survey_type").small_integer())
                .col(col("score").integer())
                .col(col("survey_id").string_len(128))
                .col(col("response_id").string_len(128))
                .col(col("responded_at").timestamp_with_time_zone())
                .primary_key(
                    Index::create()
                        .col(Alias::new("tenant_id"))
                        .col(Alias::new("customer_id"))
                        .col(Alias::new("survey_type")),
                )
                .to_owned(),
        )
        .await
    }
}

/// The squared amounts of each purchase day, for the spread of a purchase's
/// value (CLV, docs/DOMAIN.md §9.4).
struct M0009PurchaseSquares;

impl MigrationName for M0009PurchaseSquares {
    fn name(&self) -> &str {
        "m0009_purchase_squares"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0009PurchaseSquares {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Alias::new("purchase_days"))
                .add_column(ColumnDef::new(Alias::new("amount_squares")).double().not_null().default(0.0))
                .to_owned(),
        )
        .await?;
        // Single amounts were never kept: each row's purchases count as that
        // many of its mean amount, as new records do (amount² / purchases).
        m.get_connection()
            .execute_unprepared(
                "UPDATE purchase_days SET amount_squares = \
                 (amount_micros / 1000000.0) * (amount_micros / 1000000.0) / purchases WHERE purchases > 0",
            )
            .await?;
        Ok(())
    }
}

/// The lifecycle roll-up (`store::spans`), filled from the purchase days as
/// they are, and the index that counts the customers created by a day
/// (the prospects of a stage distribution). Run again (its record deleted)
/// it fills the roll-up anew, in one transaction, beside running replicas
/// (docs/UPGRADING.md).
struct M0010PurchaseSpans;

impl MigrationName for M0010PurchaseSpans {
    fn name(&self) -> &str {
        "m0010_purchase_spans"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0010PurchaseSpans {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Alias::new("purchase_spans"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("kind").small_integer())
                .col(col("from_day").date())
                .col(col("until_day").date())
                .col(col("next_day").date())
                .col(col("customers").big_integer())
                .primary_key(
                    Index::create()
                        .col(Alias::new("tenant_id"))
                        .col(Alias::new("kind"))
                        .col(Alias::new("from_day"))
                        .col(Alias::new("until_day"))
                        .col(Alias::new("next_day")),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("customers_created")
                .table(Alias::new("customers"))
                .col(Alias::new("tenant_id"))
                .col(Alias::new("created_at"))
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        super::spans::rebuild(m.get_connection()).await
    }
}

/// The purchase roll-up (`store::purchase_totals`), filled from the purchase
/// days as they are; run again (its record deleted), it fills it anew beside
/// running replicas, as `m0010_purchase_spans` does.
struct M0011PurchaseTotals;

impl MigrationName for M0011PurchaseTotals {
    fn name(&self) -> &str {
        "m0011_purchase_totals"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0011PurchaseTotals {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Alias::new("purchase_totals"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("day").date())
                .col(col("currency").string_len(3))
                .col(col("purchases").big_integer())
                .col(col("amount_micros").big_integer())
                .col(col("amount_squares").double())
                .primary_key(
                    Index::create().col(Alias::new("tenant_id")).col(Alias::new("day")).col(Alias::new("currency")),
                )
                .to_owned(),
        )
        .await?;
        super::purchase_totals::refill(m.get_connection()).await
    }
}
