//! The tables of responses and their daily roll-ups.
//!
//! On PostgreSQL a response also keeps the text-search configuration of its
//! language (`ts_config`, a `regconfig`: `to_tsvector` over it is immutable,
//! so it can be indexed) and verbatims have a GIN index led by the tenant
//! and the survey, through the `btree_gin` extension (a trusted extension:
//! the role that may create the service's schema may create it).

use cx_runtime::store::{column as col, index, primary_key as pk};
use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0003_responses"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Alias::new("survey_responses"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("id").string_len(128))
                .col(col("survey_id").uuid())
                .col(col("survey_version").integer())
                .col(col("survey_type").small_integer())
                .col(ColumnDef::new(Alias::new("invitation_id")).uuid().null())
                .col(ColumnDef::new(Alias::new("customer_id")).uuid().null())
                .col(ColumnDef::new(Alias::new("touchpoint_id")).string_len(128).null())
                .col(ColumnDef::new(Alias::new("map_id")).uuid().null())
                .col(ColumnDef::new(Alias::new("step_key")).string_len(64).null())
                .col(col("channel").small_integer())
                .col(col("score").small_integer())
                .col(ColumnDef::new(Alias::new("verbatim")).text().null())
                .col(col("answers").binary())
                .col(col("language").string_len(35))
                .col(col("responded_at").timestamp_with_time_zone())
                .col(col("recorded_at").timestamp_with_time_zone())
                .col(ColumnDef::new(Alias::new("case_id")).uuid().null())
                .col(col("content_digest").binary())
                .primary_key(&mut pk(&["tenant_id", "id"]))
                .to_owned(),
        )
        .await?;
        // Listings, newest first: a survey's, a customer's.
        m.create_index(index(
            "survey_responses_by_survey",
            "survey_responses",
            &["tenant_id", "survey_id", "responded_at", "id"],
        ))
        .await?;
        m.create_index(index(
            "survey_responses_by_customer",
            "survey_responses",
            &["tenant_id", "customer_id", "responded_at", "id"],
        ))
        .await?;
        // One row per tenant, UTC day, survey, map, step and channel: the key
        // starts with the day so a range of days reads one stretch of it.
        // Rows without a map or step hold the nil UUID and "".
        m.create_table(
            Table::create()
                .table(Alias::new("survey_rollups"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("day").integer())
                .col(col("survey_id").uuid())
                .col(col("map_id").uuid())
                .col(col("step_key").string_len(64))
                .col(col("channel").small_integer())
                .col(col("survey_type").small_integer())
                .col(col("n").big_integer())
                .col(col("promoters").big_integer())
                .col(col("passives").big_integer())
                .col(col("detractors").big_integer())
                .col(col("satisfied").big_integer())
                .col(col("score_sum").big_integer())
                .col(col("low_effort").big_integer())
                .primary_key(&mut pk(&["tenant_id", "day", "survey_id", "map_id", "step_key", "channel"]))
                .to_owned(),
        )
        .await?;
        if m.get_database_backend() == DbBackend::Postgres {
            let conn = m.get_connection();
            conn.execute_unprepared("CREATE EXTENSION IF NOT EXISTS btree_gin").await?;
            conn.execute_unprepared(
                "ALTER TABLE survey_responses ADD COLUMN IF NOT EXISTS ts_config regconfig NOT NULL DEFAULT 'simple'",
            )
            .await?;
            conn.execute_unprepared(
                "CREATE INDEX IF NOT EXISTS survey_responses_verbatim ON survey_responses \
                 USING GIN (tenant_id, survey_id, to_tsvector(ts_config, verbatim)) WHERE verbatim IS NOT NULL",
            )
            .await?;
        }
        Ok(())
    }
}
