//! Segments, each stored as its `cx.segmentation.v1.Segment` message, with
//! its name beside it so that names stay unique in a tenant, and when it is
//! next refreshed; its members; the changes of membership, in the order
//! they were recorded; and a row per tenant whose lock gives the tenant's
//! refreshes their turns.

use cx_runtime::store::{column as col, index, primary_key as pk};
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0003_segments"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Alias::new("segments"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("id").uuid())
                .col(col("name").string_len(800))
                .col(col("body").binary())
                .col(col("refresh_seconds").big_integer())
                .col(col("next_refresh_at").timestamp_with_time_zone())
                .col(ColumnDef::new(Alias::new("refreshed_at")).timestamp_with_time_zone().null())
                .col(col("member_count").big_integer().default(0))
                .primary_key(&mut pk(&["tenant_id", "id"]))
                .to_owned(),
        )
        .await?;
        m.create_index(index("segments_name", "segments", &["tenant_id", "name"]).unique().to_owned()).await?;
        // The refresh job's question: which segments are due, whatever the tenant.
        m.create_index(index("segments_due", "segments", &["next_refresh_at"]).to_owned()).await?;

        m.create_table(
            Table::create()
                .table(Alias::new("segment_members"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("segment_id").uuid())
                .col(col("customer_id").uuid())
                .col(col("entered_at").timestamp_with_time_zone())
                .primary_key(&mut pk(&["tenant_id", "segment_id", "customer_id"]))
                .to_owned(),
        )
        .await?;
        m.create_index(index("segment_members_customer", "segment_members", &["tenant_id", "customer_id"]).to_owned())
            .await?;

        // `seq` orders the changes: a tenant's refreshes take turns, so its
        // changes commit in the order of their numbers.
        m.create_table(
            Table::create()
                .table(Alias::new("segment_changes"))
                .if_not_exists()
                .col(col("seq").big_integer().auto_increment().primary_key())
                .col(col("tenant_id").string_len(64))
                .col(col("segment_id").uuid())
                .col(col("customer_id").uuid())
                .col(col("entered").boolean())
                .col(col("change_time").timestamp_with_time_zone())
                .col(col("run_id").uuid())
                .to_owned(),
        )
        .await?;
        for (name, columns) in [
            ("segment_changes_tenant", &["tenant_id", "seq"][..]),
            ("segment_changes_segment", &["tenant_id", "segment_id", "seq"][..]),
            ("segment_changes_run", &["run_id"][..]),
            ("segment_changes_customer", &["tenant_id", "customer_id"][..]),
            ("segment_changes_time", &["change_time"][..]),
        ] {
            m.create_index(index(name, "segment_changes", columns).to_owned()).await?;
        }

        m.create_table(
            Table::create()
                .table(Alias::new("segment_turns"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64).primary_key())
                .to_owned(),
        )
        .await
    }
}
