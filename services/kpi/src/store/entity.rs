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

// A KPI's value on a day (its `cx.kpi.v1.Snapshot` message), named by
// metric, filter key and day in the tenant.
table!(snapshot, "kpi_snapshots", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] metric: i16,
    #[sea_orm(primary_key, auto_increment = false)] filter_key: String,
    #[sea_orm(primary_key, auto_increment = false)] day: i32,
    body: Vec<u8>,
    definition_version: i32,
    taken_at: DateTimeUtc,
});

tenant_scoped!(snapshot);

// A tenant the daily snapshots are taken for: one that set a target or
// looked at its dashboard.
table!(kpi_tenant, "kpi_tenants", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    first_seen: DateTimeUtc,
});
