//! What the fact feeds need beside the fact table: each customer's latest
//! score per survey type (the later respond_time wins) and the instants of
//! the open-cases count and of the profile facts kept, so that a message
//! arriving late changes nothing.

use cx_runtime::store::{column as col, primary_key as pk};
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0005_segment_feeds"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Alias::new("segment_scores"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("customer_id").uuid())
                // cx.survey.v1.SurveyType: 1 NPS, 2 CSAT, 3 CES.
                .col(col("survey_type").small_integer())
                .col(col("score").small_integer())
                .col(col("respond_time").timestamp_with_time_zone())
                .col(col("response_id").string_len(128))
                .primary_key(&mut pk(&["tenant_id", "customer_id", "survey_type"]))
                .to_owned(),
        )
        .await?;
        // One column a statement: SQLite alters no more at once.
        for column in ["open_cases_time", "profile_time"] {
            m.alter_table(
                Table::alter()
                    .table(Alias::new("segment_facts"))
                    .add_column(ColumnDef::new(Alias::new(column)).timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
