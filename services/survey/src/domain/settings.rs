//! The tenant's survey settings (`cx.survey.v1.SurveySettings`) and their
//! defaults (docs/DOMAIN.md §7.5); their bounds are in
//! [`super::validate::settings`].

use chrono::Duration;

use super::survey::SurveyType;

/// A tenant's settings, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// At most `.0` invitations per customer in any window of `.1`.
    pub fatigue_windows: Vec<(u32, Duration)>,
    /// How long a follow-up case of each type may wait.
    pub case_slas: Vec<(SurveyType, Duration)>,
    pub root_causes: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            fatigue_windows: vec![(1, Duration::days(30)), (3, Duration::days(365))],
            case_slas: SurveyType::ALL.iter().map(|&t| (t, Duration::hours(48))).collect(),
            root_causes: ["product", "delivery", "price", "service", "billing", "other"].map(String::from).to_vec(),
        }
    }
}

impl Settings {
    /// The SLA of a survey type's cases.
    pub fn sla(&self, survey_type: SurveyType) -> Duration {
        self.case_slas.iter().find(|(t, _)| *t == survey_type).map_or(Duration::hours(48), |(_, d)| *d)
    }
}
