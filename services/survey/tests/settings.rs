//! The tenant's survey settings through gRPC, on both backends: the
//! defaults, updates of one part at a time, bounds (docs/DOMAIN.md §7.5).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod definitions_kit;

use cx_proto::survey::v1 as pb;
use cx_testkit::authed;
use definitions_kit::{Backend, Expected, Suite, mask, pairs, seconds, suite, violations};
use tonic::Code;

cx_testkit::on_both_backends!(
    settings_start_at_the_defaults,
    each_part_is_updated_alone,
    concurrent_updates_of_two_parts_both_hold,
    bad_settings_are_refused_with_the_field_at_fault,
);

const DAY: i64 = 86_400;

fn window(max_invitations: i32, days: i64) -> pb::FatigueWindow {
    pb::FatigueWindow { max_invitations, window: seconds(days * DAY) }
}

fn sla(survey_type: pb::SurveyType, seconds: i64) -> pb::CaseSla {
    pb::CaseSla { survey_type: survey_type as i32, due_within: definitions_kit::seconds(seconds) }
}

/// The defaults: 1 invitation in 30 days, 3 in 365; 48 hours (172,800 s)
/// for every type's cases; six root causes.
fn defaults() -> pb::SurveySettings {
    pb::SurveySettings {
        fatigue_windows: vec![window(1, 30), window(3, 365)],
        case_slas: vec![
            sla(pb::SurveyType::Nps, 172_800),
            sla(pb::SurveyType::Csat, 172_800),
            sla(pb::SurveyType::Ces, 172_800),
        ],
        root_causes: ["product", "delivery", "price", "service", "billing", "other"].map(String::from).to_vec(),
    }
}

async fn read(s: &Suite, token: &str) -> pb::SurveySettings {
    let request = authed(pb::GetSurveySettingsRequest {}, token);
    s.client().await.get_survey_settings(request).await.unwrap().into_inner().settings.unwrap()
}

async fn write(
    s: &Suite,
    settings: Option<pb::SurveySettings>,
    paths: &[&str],
) -> Result<pb::SurveySettings, tonic::Status> {
    let request = authed(pb::UpdateSurveySettingsRequest { settings, update_mask: mask(paths) }, &s.admin);
    s.client().await.update_survey_settings(request).await.map(|r| r.into_inner().settings.unwrap())
}

async fn settings_start_at_the_defaults(backend: Backend) {
    let s = suite(backend).await;
    assert_eq!(read(&s, &s.reader).await, defaults());
    let denied = authed(
        pb::UpdateSurveySettingsRequest { settings: Some(defaults()), update_mask: mask(&["root_causes"]) },
        &s.writer,
    );
    let denied = s.client().await.update_survey_settings(denied).await.unwrap_err();
    assert_eq!((denied.code(), denied.message()), (Code::PermissionDenied, "this call needs the admin role"));
}

async fn each_part_is_updated_alone(backend: Backend) {
    let s = suite(backend).await;
    let given = pb::SurveySettings {
        fatigue_windows: vec![window(2, 7), window(5, 90)],
        root_causes: vec!["ignored".into()],
        ..Default::default()
    };
    let mut expected = defaults();
    expected.fatigue_windows = vec![window(2, 7), window(5, 90)];
    assert_eq!(write(&s, Some(given), &["fatigue_windows"]).await.unwrap(), expected);
    assert_eq!(read(&s, &s.reader).await, expected);

    // Only CES given: NPS and CSAT keep 48 hours, CES takes 30 minutes.
    let given = pb::SurveySettings { case_slas: vec![sla(pb::SurveyType::Ces, 1_800)], ..Default::default() };
    expected.case_slas[2] = sla(pb::SurveyType::Ces, 1_800);
    assert_eq!(write(&s, Some(given), &["case_slas"]).await.unwrap(), expected);

    let given = pb::SurveySettings { root_causes: vec!["courier".into(), "packaging".into()], ..Default::default() };
    expected.root_causes = vec!["courier".into(), "packaging".into()];
    assert_eq!(write(&s, Some(given), &["root_causes"]).await.unwrap(), expected);
    assert_eq!(read(&s, &s.reader).await, expected);

    // An empty list of SLAs puts back the defaults.
    expected.case_slas = defaults().case_slas;
    assert_eq!(write(&s, Some(pb::SurveySettings::default()), &["case_slas"]).await.unwrap(), expected);

    // Another tenant still has the defaults.
    assert_eq!(read(&s, &s.stranger).await, defaults());
}

async fn concurrent_updates_of_two_parts_both_hold(backend: Backend) {
    let s = suite(backend).await;
    let windows = pb::SurveySettings { fatigue_windows: vec![window(4, 10)], ..Default::default() };
    let causes = pb::SurveySettings { root_causes: vec!["weather".into()], ..Default::default() };
    let (a, b) =
        tokio::join!(write(&s, Some(windows), &["fatigue_windows"]), write(&s, Some(causes), &["root_causes"]));
    a.unwrap();
    b.unwrap();
    let mut expected = defaults();
    expected.fatigue_windows = vec![window(4, 10)];
    expected.root_causes = vec!["weather".into()];
    assert_eq!(read(&s, &s.reader).await, expected, "neither update undid the other");
}

async fn bad_settings_are_refused_with_the_field_at_fault(backend: Backend) {
    let s = suite(backend).await;
    let eleven = pb::SurveySettings { fatigue_windows: (1..=11).map(|d| window(1, d)).collect(), ..Default::default() };
    let cases: Vec<(Option<pb::SurveySettings>, &[&str], Expected)> = vec![
        (
            Some(defaults()),
            &[],
            vec![("update_mask", "must name the fields to change (fatigue_windows, case_slas, root_causes)")],
        ),
        (
            Some(defaults()),
            &["fatigue_window"],
            vec![("update_mask", "\"fatigue_window\" is not an updatable field of the survey settings")],
        ),
        (None, &["root_causes"], vec![("settings", "is required")]),
        // 101 paths are one violation, the paths not read (100,000 unknown
        // ones were 100,000 violations).
        (Some(defaults()), &[""; 101], vec![("update_mask", "names at most 100 paths (has 101)")]),
        (Some(eleven), &["fatigue_windows"], vec![("settings.fatigue_windows", "must have 1 to 10 windows (has 11)")]),
        (
            Some(pb::SurveySettings::default()),
            &["fatigue_windows"],
            vec![("settings.fatigue_windows", "must have 1 to 10 windows (has 0)")],
        ),
        (
            Some(pb::SurveySettings {
                fatigue_windows: vec![window(1_001, 30), window(1, 3_661)],
                ..Default::default()
            }),
            &["fatigue_windows"],
            vec![
                ("settings.fatigue_windows[0].max_invitations", "must be between 1 and 1,000"),
                ("settings.fatigue_windows[1].window", "must be 1 hour to 3,660 days"),
            ],
        ),
        (
            Some(pb::SurveySettings {
                case_slas: vec![sla(pb::SurveyType::Csat, 59), sla(pb::SurveyType::Csat, 91 * DAY)],
                ..Default::default()
            }),
            &["case_slas"],
            vec![
                ("settings.case_slas[0].due_within", "must be 1 minute to 90 days"),
                ("settings.case_slas[1].survey_type", "repeats SURVEY_TYPE_CSAT"),
                ("settings.case_slas[1].due_within", "must be 1 minute to 90 days"),
            ],
        ),
        (
            Some(pb::SurveySettings::default()),
            &["root_causes"],
            vec![("settings.root_causes", "must have 1 to 100 root causes (has 0)")],
        ),
        (
            Some(pb::SurveySettings { root_causes: vec!["price".into(), "price".into()], ..Default::default() }),
            &["root_causes"],
            vec![("settings.root_causes[1]", "repeats root_causes[0]")],
        ),
        // Lists over their bound are one violation, their items not read:
        // 20,000 root causes were compared pairwise (200 million
        // comparisons), 20,000 windows each reported.
        (
            Some(pb::SurveySettings {
                root_causes: (0..20_000).map(|i| format!("c{}", i % 19_999)).collect(),
                ..Default::default()
            }),
            &["root_causes"],
            vec![("settings.root_causes", "must have 1 to 100 root causes (has 20000)")],
        ),
        (
            Some(pb::SurveySettings { fatigue_windows: vec![window(0, 0); 20_000], ..Default::default() }),
            &["fatigue_windows"],
            vec![("settings.fatigue_windows", "must have 1 to 10 windows (has 20000)")],
        ),
        (
            Some(pb::SurveySettings { case_slas: vec![sla(pb::SurveyType::Nps, 0); 4], ..Default::default() }),
            &["case_slas"],
            vec![("settings.case_slas", "must have at most 3 SLAs, one per survey type (has 4)")],
        ),
    ];
    for (settings, paths, expected) in cases {
        let status = write(&s, settings, paths).await.unwrap_err();
        assert_eq!((status.code(), violations(&status)), (Code::InvalidArgument, pairs(&expected)));
    }
    assert_eq!(read(&s, &s.reader).await, defaults(), "nothing refused was stored");
}
