//! Triggers: which touchpoints invite a customer to which survey
//! (docs/DOMAIN.md §7.6).

use chrono::Duration;
use uuid::Uuid;

/// A trigger as the matching reads it, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Trigger {
    pub id: Uuid,
    pub survey_id: Uuid,
    pub enabled: bool,
    pub condition: Condition,
    /// In (0, 1].
    pub sampling_rate: f64,
    pub delay: Duration,
    pub expiry: Duration,
}

/// Every condition set must hold (`cx.survey.v1.TouchpointCondition`).
/// Enumerations are held as their proto codes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Condition {
    pub map_id: Option<Uuid>,
    pub step_key: Option<String>,
    /// Channel codes; empty: any.
    pub channels: Vec<i32>,
    /// Interaction kind code; `None`: any.
    pub kind: Option<i32>,
    /// The experience score is below this.
    pub score_below: Option<i32>,
    /// The purchase is above this: ISO currency and amount in micro-units.
    pub purchase_above: Option<(String, i64)>,
    /// `cx.profile.v1.Lifecycle` codes; empty: any.
    pub lifecycles: Vec<i32>,
    /// `cx.profile.v1.DigitalCategory` codes; empty: any.
    pub digital_categories: Vec<i32>,
}

impl Condition {
    /// Whether matching needs the customer's standing from the profile
    /// service (lifecycle or digital category).
    pub fn needs_standing(&self) -> bool {
        !self.lifecycles.is_empty() || !self.digital_categories.is_empty()
    }
}
