//! The tables of surveys, their versions, triggers and the tenant settings.
//! Definitions are documents: each version of a survey, each trigger and
//! each tenant's settings is its proto message, encoded; the columns beside
//! it are what queries filter on.

use cx_runtime::store::{column as col, index, primary_key as pk};
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0001_definitions"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Alias::new("surveys"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("id").uuid())
                .col(col("survey_type").small_integer())
                .col(col("version").integer())
                .col(col("archived").boolean())
                .col(col("created_at").timestamp_with_time_zone())
                .col(ColumnDef::new(Alias::new("archived_at")).timestamp_with_time_zone().null())
                .primary_key(&mut pk(&["tenant_id", "id"]))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("survey_versions"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("survey_id").uuid())
                .col(col("version").integer())
                .col(col("body").binary())
                .primary_key(&mut pk(&["tenant_id", "survey_id", "version"]))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("survey_triggers"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("id").uuid())
                .col(col("survey_id").uuid())
                .col(col("body").binary())
                .primary_key(&mut pk(&["tenant_id", "id"]))
                .to_owned(),
        )
        .await?;
        // A survey's triggers in creation order (ListTriggers of one survey).
        m.create_index(index("survey_triggers_by_survey", "survey_triggers", &["tenant_id", "survey_id", "id"]))
            .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("survey_settings"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("body").binary())
                .primary_key(&mut pk(&["tenant_id"]))
                .to_owned(),
        )
        .await
    }
}
