//! Tables of the journey schema. Every primary key starts with `tenant_id`
//! (docs/ARCHITECTURE.md §4).

use cx_runtime::{table, tenant_scoped};

// A journey map; its steps live in its versions.
table!(journey_map, "journey_maps", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] id: Uuid,
    name: String,
    customer_type: String,
    meta_journey: String,
    version: i32,
    created_at: DateTimeUtc,
    updated_at: DateTimeUtc,
});

// The steps of one version of a map (`Vec<domain::map::Step>` as JSON).
table!(map_version, "journey_map_versions", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] map_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)] version: i32,
    steps: Json,
    created_at: DateTimeUtc,
});

// One touchpoint. Enumerations are stored as their proto values (small).
table!(touchpoint, "touchpoints", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] id: String,
    customer_id: Uuid,
    channel: i16,
    occurred_at: DateTimeUtc,
    kind: i16,
    initiator: i16,
    phase: i16,
    map_id: Option<Uuid>,
    map_version: Option<i32>,
    step_key: Option<String>,
    instance_id: Option<String>,
    score: Option<i16>,
    currency: Option<String>,
    amount_micros: Option<i64>,
    device_id: Option<String>,
    attributes: Option<Json>,
    recorded_at: DateTimeUtc,
});

// One journey instance of a map, one customer's (docs/DOMAIN.md §5.3),
// summarised from all its touchpoints (domain::rollup::Summary): what the
// peak-end listing reads, and the lock that serialises updates of the
// instance's roll-ups.
table!(journey_instance, "journey_instances", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] map_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)] customer_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)] instance_id: String,
    first_day: i32,
    touchpoints: i64,
    scored: i64,
    peak: i32,
    last: i32,
    remembered: f64,
    mean: f64,
    gap: f64,
});

// Additive counters of a map per UTC day (domain::rollup).
table!(rollup, "journey_rollups", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] map_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)] day: i32,
    #[sea_orm(primary_key, auto_increment = false)] name: String,
    #[sea_orm(primary_key, auto_increment = false)] label: String,
    n: i64,
    x: f64,
});

tenant_scoped!(journey_map);
tenant_scoped!(map_version);
tenant_scoped!(touchpoint);
tenant_scoped!(journey_instance);
tenant_scoped!(rollup);
