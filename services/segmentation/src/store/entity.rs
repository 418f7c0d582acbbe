//! The tables of the segmentation schema.

use cx_runtime::{table, tenant_scoped};

// Profile's purchases per customer, UTC day and currency (DOMAIN §1.4).
table!(purchase_day, "segment_purchase_days", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] customer_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)] day: Date,
    #[sea_orm(primary_key, auto_increment = false)] currency: String,
    purchases: i64,
    amount_micros: i64,
});

tenant_scoped!(purchase_day);
