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

// An experiment, stored as its `cx.kpi.v1.Experiment` message without what
// the columns hold (id, state, times); stopped once `stopped_at` is set.
table!(experiment, "kpi_experiments", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] id: Uuid,
    body: Vec<u8>,
    started_at: DateTimeUtc,
    stopped_at: Option<DateTimeUtc>,
});

// A customer's exposure to an experiment: her variant, when she was first
// exposed, and when she first converted.
table!(exposure, "kpi_exposures", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] experiment_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)] customer_id: Uuid,
    variant: String,
    exposed_at: DateTimeUtc,
    converted_at: Option<DateTimeUtc>,
});

tenant_scoped!(experiment);
tenant_scoped!(exposure);

// The tenant's `cx.kpi.v1.KpiSettings`, one row.
table!(kpi_settings, "kpi_settings", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    body: Vec<u8>,
    updated_at: DateTimeUtc,
});

tenant_scoped!(kpi_settings);
