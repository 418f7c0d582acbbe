//! Survey types and the range of their scores (docs/DOMAIN.md §7.1–§7.3).

use cx_runtime::coded_enum;

coded_enum! {
    /// What a survey measures (`cx.survey.v1.SurveyType`).
    pub enum SurveyType {
        Nps = 1,
        Csat = 2,
        Ces = 3,
    }
}

impl SurveyType {
    /// The lowest and highest score, both included.
    pub fn range(self) -> (i32, i32) {
        match self {
            Self::Nps => (0, 10),
            Self::Csat => (1, 5),
            Self::Ces => (1, 7),
        }
    }

    /// Whether `score` is an unhappy answer that opens a follow-up case: a
    /// detractor (NPS ≤ 6), CSAT ≤ 2 or CES ≤ 2.
    pub fn unhappy(self, score: i32) -> bool {
        match self {
            Self::Nps => score <= 6,
            Self::Csat | Self::Ces => score <= 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unhappy_answers_are_the_domain_thresholds() {
        assert!(SurveyType::Nps.unhappy(6) && !SurveyType::Nps.unhappy(7));
        assert!(SurveyType::Csat.unhappy(2) && !SurveyType::Csat.unhappy(3));
        assert!(SurveyType::Ces.unhappy(2) && !SurveyType::Ces.unhappy(3));
        assert_eq!(SurveyType::ALL.map(SurveyType::range), [(0, 10), (1, 5), (1, 7)]);
    }
}
