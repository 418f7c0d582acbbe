//! The tenant's survey settings (docs/DOMAIN.md §7.5): the bounds of each
//! part, and what an update changes.

use std::ops::RangeInclusive;

use chrono::Duration;
use cx_proto::survey::v1 as pb;
use cx_runtime::error::Violations;

use crate::domain::settings::Settings;
use crate::domain::survey::SurveyType;
use cx_runtime::validate::mask::Updatable;
use cx_runtime::validate::text;

pub const WINDOWS: RangeInclusive<usize> = 1..=10;
pub const MAX_INVITATIONS: RangeInclusive<i32> = 1..=1_000;
pub const WINDOW: (Duration, Duration) = (Duration::hours(1), Duration::days(3_660));
pub const SLA: (Duration, Duration) = (Duration::minutes(1), Duration::days(90));
pub const ROOT_CAUSES: RangeInclusive<usize> = 1..=100;
pub const MAX_ROOT_CAUSE: usize = 100;

/// The parts `UpdateSurveySettings` changes (the proto's list).
pub const UPDATABLE: Updatable<'static> =
    Updatable { resource: "the survey settings", fields: &["fatigue_windows", "case_slas", "root_causes"], fixed: &[] };

/// `current` with the parts `paths` names (checked by [`UPDATABLE`]) taken
/// from `given`, each checked. The SLAs are stored for every type, the
/// default for each type not given.
pub fn apply(
    mut current: pb::SurveySettings,
    given: pb::SurveySettings,
    paths: &[String],
) -> Result<pb::SurveySettings, Violations> {
    let mut out = Violations::new();
    let pb::SurveySettings { fatigue_windows, case_slas, root_causes } = given;
    for path in paths {
        match path.as_str() {
            "fatigue_windows" => {
                windows(&fatigue_windows, &mut out);
                current.fatigue_windows = fatigue_windows.clone();
            }
            "case_slas" => current.case_slas = slas(&case_slas, &mut out),
            "root_causes" => {
                causes(&root_causes, &mut out);
                current.root_causes = root_causes.clone();
            }
            _ => {}
        }
    }
    out.finish().map(|()| current)
}

fn windows(windows: &[pb::FatigueWindow], out: &mut Violations) {
    let field = "settings.fatigue_windows";
    if !WINDOWS.contains(&windows.len()) {
        // Its items are not read: each would be compared with the others.
        return out.add(field, format!("must have 1 to 10 windows (has {})", windows.len()));
    }
    let mut seen: Vec<Duration> = Vec::new();
    for (i, w) in windows.iter().enumerate() {
        if !MAX_INVITATIONS.contains(&w.max_invitations) {
            out.add(format!("{field}[{i}].max_invitations"), "must be between 1 and 1,000");
        }
        let at = format!("{field}[{i}].window");
        let Some(raw) = &w.window else {
            out.add(at, "is required");
            continue;
        };
        if let Some(window) = out.check(text::duration(raw, &at, WINDOW, "1 hour to 3,660 days")) {
            match seen.iter().position(|d| *d == window) {
                Some(j) => out.add(at, format!("repeats the window of fatigue_windows[{j}]")),
                None => seen.push(window),
            }
        }
    }
}

fn slas(slas: &[pb::CaseSla], out: &mut Violations) -> Vec<pb::CaseSla> {
    let field = "settings.case_slas";
    if slas.len() > SurveyType::ALL.len() {
        out.add(field, format!("must have at most 3 SLAs, one per survey type (has {})", slas.len()));
        return Vec::new();
    }
    let mut types: Vec<SurveyType> = Vec::new();
    let mut given: Vec<(SurveyType, prost_types::Duration)> = Vec::new();
    for (i, sla) in slas.iter().enumerate() {
        let at = |name: &str| format!("{field}[{i}].{name}");
        let kind = match SurveyType::from_code(sla.survey_type) {
            None => {
                out.add(at("survey_type"), "must be SURVEY_TYPE_NPS, SURVEY_TYPE_CSAT or SURVEY_TYPE_CES");
                None
            }
            Some(t) if types.contains(&t) => {
                let name = pb::SurveyType::try_from(sla.survey_type).map_or("", |t| t.as_str_name());
                out.add(at("survey_type"), format!("repeats {name}"));
                None
            }
            Some(t) => {
                types.push(t);
                Some(t)
            }
        };
        let due = match &sla.due_within {
            None => {
                out.add(at("due_within"), "is required");
                None
            }
            Some(raw) => out.check(text::duration(raw, &at("due_within"), SLA, "1 minute to 90 days")).map(|_| *raw),
        };
        if let (Some(t), Some(due)) = (kind, due) {
            given.push((t, due));
        }
    }
    let default = Settings::default();
    SurveyType::ALL
        .iter()
        .map(|&t| pb::CaseSla {
            survey_type: i32::from(t.code()),
            due_within: Some(given.iter().find(|(seen, _)| *seen == t).map_or_else(
                || prost_types::Duration { seconds: default.sla(t).num_seconds(), nanos: 0 },
                |(_, due)| *due,
            )),
        })
        .collect()
}

fn causes(causes: &[String], out: &mut Violations) {
    let field = "settings.root_causes";
    if !ROOT_CAUSES.contains(&causes.len()) {
        return out.add(field, format!("must have 1 to 100 root causes (has {})", causes.len()));
    }
    for (i, cause) in causes.iter().enumerate() {
        let at = format!("{field}[{i}]");
        if out.check(text::required(cause, &at, MAX_ROOT_CAUSE)).is_some()
            && let Some(j) = causes[..i].iter().position(|c| c == cause)
        {
            out.add(at, format!("repeats root_causes[{j}]"));
        }
    }
}

#[cfg(test)]
mod tests {
    use cx_runtime::error::FieldViolation;

    use super::*;
    use crate::store::settings::to_proto;

    fn d(seconds: i64) -> Option<prost_types::Duration> {
        Some(prost_types::Duration { seconds, nanos: 0 })
    }

    fn paths(p: &[&str]) -> Vec<String> {
        p.iter().map(|p| (*p).to_owned()).collect()
    }

    #[test]
    fn slas_not_given_keep_the_default() {
        let given = pb::SurveySettings {
            case_slas: vec![pb::CaseSla { survey_type: pb::SurveyType::Ces as i32, due_within: d(3_600) }],
            ..Default::default()
        };
        let current = to_proto(&Settings::default());
        let updated = apply(current.clone(), given, &paths(&["case_slas"])).unwrap();
        // NPS and CSAT keep 48 hours = 172,800 s; CES takes 1 hour.
        let dues: Vec<i64> = updated.case_slas.iter().map(|s| s.due_within.unwrap().seconds).collect();
        assert_eq!(dues, [172_800, 172_800, 3_600]);
        assert_eq!((updated.fatigue_windows, updated.root_causes), (current.fatigue_windows, current.root_causes));
    }

    #[test]
    fn each_problem_is_named() {
        let given = pb::SurveySettings {
            fatigue_windows: vec![
                pb::FatigueWindow { max_invitations: 0, window: d(86_400) },
                pb::FatigueWindow { max_invitations: 2, window: d(86_400) },
                pb::FatigueWindow { max_invitations: 2, window: None },
                pb::FatigueWindow { max_invitations: 2, window: d(3_599) },
            ],
            case_slas: vec![
                pb::CaseSla { survey_type: 1, due_within: d(59) },
                pb::CaseSla { survey_type: 1, due_within: d(60) },
                pb::CaseSla { survey_type: 0, due_within: d(60) },
            ],
            root_causes: vec!["price".into(), " ".into(), "price".into(), "x".repeat(101)],
        };
        let found = Vec::from(
            apply(to_proto(&Settings::default()), given, &paths(&["fatigue_windows", "case_slas", "root_causes"]))
                .unwrap_err(),
        );
        let f = |field: &str, why: &str| FieldViolation::new(field, why);
        assert_eq!(
            found,
            [
                f("settings.fatigue_windows[0].max_invitations", "must be between 1 and 1,000"),
                f("settings.fatigue_windows[1].window", "repeats the window of fatigue_windows[0]"),
                f("settings.fatigue_windows[2].window", "is required"),
                f("settings.fatigue_windows[3].window", "must be 1 hour to 3,660 days"),
                f("settings.case_slas[0].due_within", "must be 1 minute to 90 days"),
                f("settings.case_slas[1].survey_type", "repeats SURVEY_TYPE_NPS"),
                f("settings.case_slas[2].survey_type", "must be SURVEY_TYPE_NPS, SURVEY_TYPE_CSAT or SURVEY_TYPE_CES"),
                f("settings.root_causes[1]", "is required"),
                f("settings.root_causes[2]", "repeats root_causes[0]"),
                f("settings.root_causes[3]", "has more than 100 characters"),
            ]
        );
    }
}
