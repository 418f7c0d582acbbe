//! The fact table a segment reads (docs/DOMAIN.md §8.5): one row per
//! customer with what profile, journey, survey and RFM know of them, kept
//! current from their change messages. Days are day numbers (days since
//! 1970-01-01, UTC) so that both backends do the same arithmetic.

use cx_runtime::consent::StandardPurpose;
use cx_runtime::store::{column as col, index, primary_key as pk};
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0002_segment_facts"
    }
}

/// The column of a standard purpose's decision in force: `consent_email`.
pub fn consent_column(purpose: StandardPurpose) -> String {
    format!("consent_{}", purpose.as_str())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let mut facts = Table::create();
        facts
            .table(Alias::new("segment_facts"))
            .if_not_exists()
            .col(col("tenant_id").string_len(64))
            .col(col("customer_id").uuid())
            // profile
            .col(ColumnDef::new(Alias::new("lifecycle")).string_len(16).null())
            .col(ColumnDef::new(Alias::new("persona")).string_len(128).null())
            .col(ColumnDef::new(Alias::new("created_day")).integer().null())
            .col(ColumnDef::new(Alias::new("digital_index")).double().null())
            .col(ColumnDef::new(Alias::new("digital_category")).string_len(16).null());
        for purpose in StandardPurpose::ALL {
            facts.col(ColumnDef::new(Alias::new(consent_column(purpose))).boolean().not_null().default(false));
        }
        facts
            // RFM as of `rfm_day` (§8.1–§8.3); NULL when not scored.
            .col(ColumnDef::new(Alias::new("rfm_day")).integer().null())
            .col(ColumnDef::new(Alias::new("rfm_recency_days")).integer().null())
            .col(ColumnDef::new(Alias::new("rfm_frequency")).big_integer().null())
            .col(ColumnDef::new(Alias::new("rfm_monetary_micros")).big_integer().null())
            .col(ColumnDef::new(Alias::new("rfm_r")).small_integer().null())
            .col(ColumnDef::new(Alias::new("rfm_f")).small_integer().null())
            .col(ColumnDef::new(Alias::new("rfm_m")).small_integer().null())
            .col(ColumnDef::new(Alias::new("rfm_segment")).string_len(24).null())
            // journey: channels as a bit set in the order of rules::CHANNELS
            // (web = 1, mobile_app = 2, email = 4, …); 0 = none.
            .col(col("channels_180d").integer().default(0))
            .col(ColumnDef::new(Alias::new("last_touch_day")).integer().null())
            .col(ColumnDef::new(Alias::new("last_channel")).string_len(16).null())
            .col(col("touchpoints_90d").big_integer().default(0))
            // survey
            .col(ColumnDef::new(Alias::new("last_nps")).small_integer().null())
            .col(ColumnDef::new(Alias::new("nps_category")).string_len(16).null())
            .col(ColumnDef::new(Alias::new("last_csat")).small_integer().null())
            .col(ColumnDef::new(Alias::new("last_ces")).small_integer().null())
            .col(col("responses").big_integer().default(0))
            .col(col("open_cases").big_integer().default(0))
            .primary_key(&mut pk(&["tenant_id", "customer_id"]));
        m.create_table(facts.to_owned()).await?;

        // The closed text fields a typical rule tests for equality.
        for (name, column) in [
            ("segment_facts_lifecycle", "lifecycle"),
            ("segment_facts_rfm_segment", "rfm_segment"),
            ("segment_facts_nps_category", "nps_category"),
            ("segment_facts_digital_category", "digital_category"),
        ] {
            m.create_index(index(name, "segment_facts", &["tenant_id", column, "customer_id"]).to_owned()).await?;
        }

        // Profile attributes, one row per key, in a column of its type.
        m.create_table(
            Table::create()
                .table(Alias::new("segment_attributes"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("customer_id").uuid())
                .col(col("key").string_len(64))
                .col(ColumnDef::new(Alias::new("text_value")).text().null())
                .col(ColumnDef::new(Alias::new("number_value")).double().null())
                .col(ColumnDef::new(Alias::new("bool_value")).boolean().null())
                // Instants match no literal, only EXISTS (§8.4).
                .col(col("is_instant").boolean().default(false))
                .primary_key(&mut pk(&["tenant_id", "customer_id", "key"]))
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("segment_attributes_text", "segment_attributes", &["tenant_id", "key", "text_value"]).to_owned(),
        )
        .await?;
        m.create_index(
            index("segment_attributes_number", "segment_attributes", &["tenant_id", "key", "number_value"]).to_owned(),
        )
        .await?;

        // Every consent decision in force, standard and custom, with its
        // times: the latest occur_time, then record_time, wins (§3.2). The
        // standard ones are mirrored in segment_facts' consent_* columns.
        m.create_table(
            Table::create()
                .table(Alias::new("segment_consents"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("customer_id").uuid())
                .col(col("purpose").string_len(64))
                .col(col("granted").boolean())
                .col(col("occur_time").timestamp_with_time_zone())
                .col(col("record_time").timestamp_with_time_zone())
                .primary_key(&mut pk(&["tenant_id", "customer_id", "purpose"]))
                .to_owned(),
        )
        .await
    }
}
