//! The table of invitations, suppressions included: one row per trigger and
//! touchpoint that matched (its id derived from the two), whatever became
//! of it; and the `survey` consent decisions the profile service announced.

use cx_runtime::store::{column as col, index, primary_key as pk};
use sea_orm_migration::prelude::*;

pub struct Migration;

const INVITATIONS: &str = "survey_invitations";

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0002_invitations"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Alias::new(INVITATIONS))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("id").uuid())
                .col(col("survey_id").uuid())
                .col(col("survey_version").integer())
                .col(col("trigger_id").uuid())
                .col(col("customer_id").uuid())
                .col(col("touchpoint_id").string_len(128))
                .col(ColumnDef::new(Alias::new("map_id")).uuid().null())
                .col(ColumnDef::new(Alias::new("step_key")).string_len(64).null())
                .col(col("channel").small_integer())
                .col(col("state").small_integer())
                .col(col("reason").small_integer())
                .col(col("created_at").timestamp_with_time_zone())
                .col(col("send_after").timestamp_with_time_zone())
                .col(ColumnDef::new(Alias::new("sent_at")).timestamp_with_time_zone().null())
                .col(col("expire_at").timestamp_with_time_zone())
                .col(ColumnDef::new(Alias::new("answered_at")).timestamp_with_time_zone().null())
                .col(ColumnDef::new(Alias::new("response_id")).string_len(128).null())
                .primary_key(&mut pk(&["tenant_id", "id"]))
                .to_owned(),
        )
        .await?;
        // A customer's invitations by due time: the fatigue budget, duplicates,
        // consent withdrawals and listings. Listings are in due-time order.
        m.create_index(index(
            "survey_invitations_by_customer",
            INVITATIONS,
            &["tenant_id", "customer_id", "send_after"],
        ))
        .await?;
        m.create_index(index("survey_invitations_by_survey", INVITATIONS, &["tenant_id", "survey_id", "send_after"]))
            .await?;
        // What is due: the delivery systems' poll and stream.
        m.create_index(index("survey_invitations_by_state", INVITATIONS, &["tenant_id", "state", "send_after"]))
            .await?;
        // What is expiring: the expiry job, which would otherwise read every
        // sent invitation still open (up to 90 days of them).
        m.create_index(index("survey_invitations_by_expiry", INVITATIONS, &["tenant_id", "state", "expire_at"]))
            .await?;
        // The decision in force for the `survey` purpose of each customer, as
        // ConsentChanged told it (docs/DOMAIN.md §3.4): a withdrawal that
        // arrives before a trigger's batch is stored is seen by it.
        m.create_table(
            Table::create()
                .table(Alias::new("survey_consents"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("customer_id").uuid())
                .col(col("granted").boolean())
                .col(col("occurred_at").timestamp_with_time_zone())
                .col(col("recorded_at").timestamp_with_time_zone())
                .primary_key(&mut pk(&["tenant_id", "customer_id"]))
                .to_owned(),
        )
        .await
    }
}
