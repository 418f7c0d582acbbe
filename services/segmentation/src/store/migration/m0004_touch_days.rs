//! Journey's touchpoints as segmentation keeps them: counts per customer,
//! UTC day and channel (what `journey.touchpoints_90d` and
//! `journey.channels` are summed from), and the instant of each customer's
//! last touch, so a batch delivered late never replaces a later one.

use cx_runtime::store::{column as col, index, primary_key as pk};
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0004_segment_touch_days"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // `day` is a day number (days since 1970-01-01, UTC); `channel` the
        // index of its name in rules::CHANNELS, its bit in channels_180d.
        m.create_table(
            Table::create()
                .table(Alias::new("segment_touch_days"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("customer_id").uuid())
                .col(col("day").integer())
                .col(col("channel").small_integer())
                .col(col("touchpoints").big_integer())
                .primary_key(&mut pk(&["tenant_id", "customer_id", "day", "channel"]))
                .to_owned(),
        )
        .await?;
        // The daily job drops a tenant's days older than 180.
        m.create_index(index("segment_touch_days_day", "segment_touch_days", &["tenant_id", "day"]).to_owned()).await?;
        // Microseconds since 1970-01-01 UTC: compares alike on both backends.
        m.alter_table(
            Table::alter()
                .table(Alias::new("segment_facts"))
                .add_column(ColumnDef::new(Alias::new("last_touch_micros")).big_integer().null())
                .to_owned(),
        )
        .await
    }
}
