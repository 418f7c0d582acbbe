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

// Journey's touchpoints per customer, UTC day number and channel (its index
// in rules::CHANNELS).
table!(touch_day, "segment_touch_days", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] customer_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)] day: i32,
    #[sea_orm(primary_key, auto_increment = false)] channel: i16,
    touchpoints: i64,
});

tenant_scoped!(touch_day);

// One row per customer: the facts a rule reads (docs/DOMAIN.md §8.5).
table!(fact, "segment_facts", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] customer_id: Uuid,
    lifecycle: Option<String>,
    persona: Option<String>,
    created_day: Option<i32>,
    digital_index: Option<f64>,
    digital_category: Option<String>,
    consent_email: bool,
    consent_sms: bool,
    consent_push: bool,
    consent_phone: bool,
    consent_post: bool,
    consent_survey: bool,
    consent_profiling: bool,
    consent_personalization: bool,
    rfm_day: Option<i32>,
    rfm_recency_days: Option<i32>,
    rfm_frequency: Option<i64>,
    rfm_monetary_micros: Option<i64>,
    rfm_r: Option<i16>,
    rfm_f: Option<i16>,
    rfm_m: Option<i16>,
    rfm_segment: Option<String>,
    channels_180d: i32,
    last_touch_day: Option<i32>,
    last_channel: Option<String>,
    touchpoints_90d: i64,
    // The day the two windows above were summed as of.
    windows_day: Option<i32>,
    last_nps: Option<i16>,
    nps_category: Option<String>,
    last_csat: Option<i16>,
    last_ces: Option<i16>,
    responses: i64,
    open_cases: i64,
    last_touch_micros: Option<i64>,
    // When the open-cases count and the profile columns were true.
    open_cases_time: Option<DateTimeUtc>,
    profile_time: Option<DateTimeUtc>,
});

tenant_scoped!(fact);

// A profile attribute, in the column of its type.
table!(attribute, "segment_attributes", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] customer_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)] key: String,
    text_value: Option<String>,
    number_value: Option<f64>,
    bool_value: Option<bool>,
    is_instant: bool,
});

tenant_scoped!(attribute);

// A consent decision in force.
table!(consent, "segment_consents", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] customer_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)] purpose: String,
    granted: bool,
    occur_time: DateTimeUtc,
    record_time: DateTimeUtc,
});

tenant_scoped!(consent);

// A customer's latest score of a survey type.
table!(score, "segment_scores", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] customer_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)] survey_type: i16,
    score: i16,
    respond_time: DateTimeUtc,
    response_id: String,
});

tenant_scoped!(score);

// A segment, as its `cx.segmentation.v1.Segment` message.
table!(segment, "segments", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] id: Uuid,
    name: String,
    body: Vec<u8>,
    refresh_seconds: i64,
    next_refresh_at: DateTimeUtc,
    refreshed_at: Option<DateTimeUtc>,
    member_count: i64,
    /// Refreshes so far.
    refreshes: i64,
    /// Members erased, and merged into another customer, since the last
    /// refresh: an export accounts for them.
    erased_members: i64,
    merged_members: i64,
});

tenant_scoped!(segment);

// An identity a campaign reaches a customer by (cx.profile.v1.IdentityKind:
// email, phone, app install), from profile's facts feed.
table!(contact, "segment_contacts", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] customer_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)] kind: i16,
    #[sea_orm(primary_key, auto_increment = false)] value: String,
});

tenant_scoped!(contact);

// A member of a segment, since its last entry.
table!(member, "segment_members", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] segment_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)] customer_id: Uuid,
    entered_at: DateTimeUtc,
});

tenant_scoped!(member);

// A customer entering or leaving a segment.
table!(change, "segment_changes", {
    #[sea_orm(primary_key)] seq: i64,
    tenant_id: String,
    segment_id: Uuid,
    customer_id: Uuid,
    entered: bool,
    change_time: DateTimeUtc,
    run_id: Uuid,
});

tenant_scoped!(change);

// Where a source of facts stands for a tenant (docs/DOMAIN.md §8.5).
table!(fact_source, "segment_fact_sources", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] source: String,
    state: String,
    cursor: Option<Uuid>,
    loaded_customers: i64,
    started_at: DateTimeUtc,
    completed_at: Option<DateTimeUtc>,
    high_water: DateTimeUtc,
    lease_id: Option<Uuid>,
    lease_until: Option<DateTimeUtc>,
});

tenant_scoped!(fact_source);
