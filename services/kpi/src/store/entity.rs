//! The tables of the kpi schema.

use cx_runtime::{table, tenant_scoped};

// A target, stored as its `cx.kpi.v1.Target` message without what the
// columns hold (id, update time); the metric and the filter's key beside it
// name it in the tenant.
table!(target, "kpi_targets", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] id: Uuid,
    metric: i16,
    filter_key: String,
    body: Vec<u8>,
    updated_at: DateTimeUtc,
});

tenant_scoped!(target);
