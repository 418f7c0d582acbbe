//! Tables of the profile schema. Every primary key starts with `tenant_id`
//! (docs/ARCHITECTURE.md §4: ready to distribute by tenant).

use cx_runtime::{table, tenant_scoped};

/// A customer profile.
pub mod customer {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "customers")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub persona: String,
        /// `domain::attributes::Attributes` as JSON.
        pub attributes: Json,
        pub version: i64,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub last_touch_at: Option<DateTimeUtc>,
        /// `domain::lifecycle::Lifecycle::as_str`.
        pub lifecycle: String,
        pub lifecycle_since: Option<DateTimeUtc>,
        /// The day time alone changes the lifecycle next (for the sweep).
        pub lifecycle_next_change: Option<Date>,
        /// The day the oldest activity leaves the 180-day window (for the sweep).
        pub dii_next_change: Option<Date>,
        /// The digital intensity components (`domain::intensity::Components`);
        /// all four NULL when no touchpoint is in the window.
        pub dii_digital_share: Option<f64>,
        pub dii_digital_breadth: Option<f64>,
        pub dii_device_factor: Option<f64>,
        pub dii_self_service_share: Option<f64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// An identity (kind, normalised value), owned by one customer per tenant.
pub mod identity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "identities")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub kind: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub value: String,
        pub customer_id: Uuid,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// One consent decision; the table is append-only.
pub mod consent_event {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "consent_events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub customer_id: Uuid,
        /// `domain::consent::Purpose::key`.
        pub purpose: String,
        pub granted: bool,
        /// Channel key (`web`, `store`, …), empty when not given.
        pub source_channel: String,
        pub actor: String,
        pub occurred_at: DateTimeUtc,
        pub recorded_at: DateTimeUtc,
        /// Client-chosen id of the request, unique per tenant, for retries.
        pub request_id: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A tenant-defined consent purpose.
pub mod consent_purpose {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "consent_purposes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub description: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

// Touchpoints per customer, UTC day, channel, initiator and kind.
table!(activity_day, "activity_days", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] customer_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)] day: Date,
    #[sea_orm(primary_key, auto_increment = false)] channel: String,
    #[sea_orm(primary_key, auto_increment = false)] initiator: String,
    #[sea_orm(primary_key, auto_increment = false)] kind: String,
    touchpoints: i64,
});

// Purchases per customer, UTC day and currency.
table!(purchase_day, "purchase_days", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] customer_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)] day: Date,
    #[sea_orm(primary_key, auto_increment = false)] currency: String,
    purchases: i64,
    amount_micros: i64,
    // Each purchase's amount squared, in units² (a record of several counts
    // them at its mean amount).
    amount_squares: f64,
});

// Devices a customer used, with the first and last day seen.
table!(device, "devices", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] customer_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)] device_id: String,
    first_seen: Date,
    last_seen: Date,
});

// Activity batches applied, for idempotency.
table!(activity_batch, "activity_batches", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] batch_id: String,
    records: i32,
    received_at: DateTimeUtc,
});

// Lifecycle changes, so "who became lost this week" can be listed.
table!(lifecycle_transition, "lifecycle_transitions", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] id: Uuid,
    customer_id: Uuid,
    from_state: String,
    to_state: String,
    at: DateTimeUtc,
});

// A tenant's settings (the digital intensity model, as JSON). Its
// `recompute_after` column (m0006) is no longer used: indexes are derived
// when read.
table!(tenant_setting, "tenant_settings", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    intensity_model: Json,
    updated_at: DateTimeUtc,
});

// A profile folded into another one.
table!(merge, "merges", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] merged_id: Uuid,
    survivor_id: Uuid,
    conflicts: Json,
    merged_at: DateTimeUtc,
});

// An erasure job; `profile_id` is cleared once every step is done.
table!(erasure, "erasures", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] id: Uuid,
    profile_id: Option<Uuid>,
    state: String,
    created_at: DateTimeUtc,
    completed_at: Option<DateTimeUtc>,
});

// One service's part of an erasure, with what it erased.
table!(erasure_step, "erasure_steps", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] erasure_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)] service: String,
    state: String,
    counts: Json,
    completed_at: Option<DateTimeUtc>,
    message_id: Option<Uuid>,
});

// A customer's latest answer to each kind of survey
// (`domain::scores::SurveyKind` code), as the survey service reports them.
table!(survey_score, "survey_scores", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] customer_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)] survey_type: i16,
    score: i32,
    survey_id: String,
    response_id: String,
    responded_at: DateTimeUtc,
});

tenant_scoped!(customer);
tenant_scoped!(survey_score);
tenant_scoped!(erasure);
tenant_scoped!(erasure_step);
tenant_scoped!(merge);
tenant_scoped!(tenant_setting);
tenant_scoped!(activity_day);
tenant_scoped!(purchase_day);
tenant_scoped!(device);
tenant_scoped!(activity_batch);
tenant_scoped!(lifecycle_transition);
tenant_scoped!(identity);
tenant_scoped!(consent_event);
tenant_scoped!(consent_purpose);
