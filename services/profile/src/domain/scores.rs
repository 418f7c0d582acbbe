//! The latest survey answers kept on a profile (docs/DOMAIN.md §7.4): one
//! per kind of survey, the one answered last.

use chrono::{DateTime, Utc};
use cx_runtime::coded_enum;

coded_enum! {
    /// The kind of a survey (`cx.survey.v1.SurveyType`).
    pub enum SurveyKind {
        Nps = 1,
        Csat = 2,
        Ces = 3,
    }
}

impl SurveyKind {
    /// The answers a survey of this kind takes (DOMAIN §7.1–§7.3).
    pub fn range(self) -> std::ops::RangeInclusive<i32> {
        match self {
            Self::Nps => 0..=10,
            Self::Csat => 1..=5,
            Self::Ces => 1..=7,
        }
    }
}

/// One answer as the profile keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Score {
    pub kind: SurveyKind,
    pub score: i32,
    pub survey_id: String,
    pub response_id: String,
    pub responded_at: DateTime<Utc>,
}

impl Score {
    /// Whether this answer replaces `kept`: it was answered later. Two
    /// answers of the same instant are ordered by response id, so whatever
    /// order they arrive in, the same one is kept; the same answer again
    /// replaces nothing.
    pub fn supersedes(&self, kept: &Self) -> bool {
        (self.responded_at, &self.response_id) > (kept.responded_at, &kept.response_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(at: i64, response: &str) -> Score {
        Score {
            kind: SurveyKind::Nps,
            score: 9,
            survey_id: "s".into(),
            response_id: response.into(),
            responded_at: DateTime::from_timestamp(at, 0).unwrap(),
        }
    }

    #[test]
    fn the_later_answer_wins_whatever_arrives_first() {
        let (early, late) = (score(100, "b"), score(200, "a"));
        assert!(late.supersedes(&early));
        assert!(!early.supersedes(&late));
        // Same instant: the larger response id, from either side.
        let (x, y) = (score(100, "x"), score(100, "y"));
        assert!(y.supersedes(&x) && !x.supersedes(&y));
        // A redelivery changes nothing.
        assert!(!late.supersedes(&late.clone()));
    }

    #[test]
    fn each_kind_has_its_range_and_its_proto_code() {
        assert_eq!([SurveyKind::Nps, SurveyKind::Csat, SurveyKind::Ces].map(SurveyKind::range), [0..=10, 1..=5, 1..=7]);
        assert_eq!(SurveyKind::from_code(2), Some(SurveyKind::Csat));
        assert_eq!((SurveyKind::from_code(0), SurveyKind::from_code(4)), (None, None));
    }
}
