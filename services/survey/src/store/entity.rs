//! Tables of the survey schema. Every primary key starts with `tenant_id`
//! (docs/ARCHITECTURE.md §4).

use cx_runtime::{table, tenant_scoped};

// A survey: what does not change with its versions, its current version
// and its state, which holds for every version (archiving makes none).
table!(survey, "surveys", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] id: Uuid,
    survey_type: i16,
    version: i32,
    archived: bool,
    created_at: DateTimeUtc,
    archived_at: Option<DateTimeUtc>,
});

// One version of a survey: the `cx.survey.v1.Survey` message, encoded.
table!(survey_version, "survey_versions", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] survey_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)] version: i32,
    body: Vec<u8>,
});

// A trigger: the `cx.survey.v1.Trigger` message, encoded.
table!(trigger, "survey_triggers", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] id: Uuid,
    survey_id: Uuid,
    body: Vec<u8>,
});

// A tenant's `cx.survey.v1.SurveySettings`, encoded; no row: the defaults.
table!(settings, "survey_settings", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    body: Vec<u8>,
});

// An invitation, or a suppressed one (`state` and `reason` are the proto
// codes of InvitationState and SuppressionReason, 0 for no reason).
table!(invitation, "survey_invitations", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] id: Uuid,
    survey_id: Uuid,
    survey_version: i32,
    trigger_id: Uuid,
    customer_id: Uuid,
    touchpoint_id: String,
    map_id: Option<Uuid>,
    step_key: Option<String>,
    channel: i16,
    state: i16,
    reason: i16,
    created_at: DateTimeUtc,
    send_after: DateTimeUtc,
    sent_at: Option<DateTimeUtc>,
    expire_at: DateTimeUtc,
    answered_at: Option<DateTimeUtc>,
    response_id: Option<String>,
});

// A follow-up case of an unhappy response (`state` is the proto code of
// CaseState; docs/DOMAIN.md §7.10).
table!(case, "survey_cases", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] id: Uuid,
    response_id: String,
    survey_id: Uuid,
    survey_type: i16,
    customer_id: Option<Uuid>,
    score: i32,
    state: i16,
    owner: Option<String>,
    respond_at: DateTimeUtc,
    due_at: DateTimeUtc,
    created_at: DateTimeUtc,
    first_action_at: Option<DateTimeUtc>,
    resolved_at: Option<DateTimeUtc>,
    first_action_micros: Option<i64>,
    resolution_micros: Option<i64>,
    root_cause: Option<String>,
    resolution_note: Option<String>,
    reopen_count: i32,
});

// A comment of a case, numbered from 1 in the order written.
table!(case_comment, "survey_case_comments", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] case_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)] seq: i32,
    author: String,
    body: String,
    created_at: DateTimeUtc,
});

// A response, keyed by the client's id. `answers` holds the
// `cx.survey.v1.Answer` messages, each length-delimited; `content_digest` is
// SHA-256 of what the client sent (a retry must send the same). On
// PostgreSQL a `ts_config` column, left out here, is written with the row.
table!(response, "survey_responses", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] id: String,
    survey_id: Uuid,
    survey_version: i32,
    survey_type: i16,
    invitation_id: Option<Uuid>,
    customer_id: Option<Uuid>,
    touchpoint_id: Option<String>,
    map_id: Option<Uuid>,
    step_key: Option<String>,
    channel: i16,
    score: i16,
    verbatim: Option<String>,
    answers: Vec<u8>,
    language: String,
    responded_at: DateTimeUtc,
    recorded_at: DateTimeUtc,
    case_id: Option<Uuid>,
    content_digest: Vec<u8>,
});

// The counters of one (UTC day, survey, map, step, channel); the nil UUID
// and "" stand for no map and no step.
table!(rollup, "survey_rollups", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] day: i32,
    #[sea_orm(primary_key, auto_increment = false)] survey_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)] map_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)] step_key: String,
    #[sea_orm(primary_key, auto_increment = false)] channel: i16,
    survey_type: i16,
    n: i64,
    promoters: i64,
    passives: i64,
    detractors: i64,
    satisfied: i64,
    score_sum: i64,
    low_effort: i64,
    score_squares: i64,
});

// The `survey` consent in force for a customer, as the profile service's
// ConsentChanged messages told it (the latest occurred_at, then recorded_at).
table!(consent, "survey_consents", {
    #[sea_orm(primary_key, auto_increment = false)] tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)] customer_id: Uuid,
    granted: bool,
    occurred_at: DateTimeUtc,
    recorded_at: DateTimeUtc,
});

tenant_scoped!(survey);
tenant_scoped!(survey_version);
tenant_scoped!(trigger);
tenant_scoped!(settings);
tenant_scoped!(invitation);
tenant_scoped!(case);
tenant_scoped!(case_comment);
tenant_scoped!(response);
tenant_scoped!(rollup);
tenant_scoped!(consent);
