//! Survey definitions through gRPC, on both backends: versions, listing,
//! archiving, tenancy, roles, and bad input refused with the exact field at
//! fault (docs/DOMAIN.md §7.5).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod definitions_kit;

use cx_proto::common::v1::Channel;
use cx_proto::survey::v1 as pb;
use cx_testkit::authed;
use definitions_kit::{Backend, Expected, Suite, choice, mask, nps_survey, pairs, suite, violations};
use tonic::Code;
use uuid::Uuid;

cx_testkit::on_both_backends!(
    a_survey_is_created_and_each_update_makes_a_version,
    surveys_are_listed_newest_first_and_archived_once,
    a_page_of_large_surveys_stops_early,
    another_tenants_survey_is_not_found,
    only_admins_define_surveys,
    bad_surveys_are_refused_with_the_field_at_fault,
    bad_updates_are_refused_and_change_nothing,
);

fn instant(ts: &Option<prost_types::Timestamp>) -> chrono::DateTime<chrono::Utc> {
    cx_proto::from_timestamp(ts.as_ref().unwrap()).unwrap()
}

async fn get(s: &Suite, id: &str, version: i32) -> Result<pb::Survey, tonic::Status> {
    let request = authed(pb::GetSurveyRequest { id: id.into(), version }, &s.reader);
    s.client().await.get_survey(request).await.map(|r| r.into_inner().survey.unwrap())
}

async fn update(s: &Suite, survey: pb::Survey, paths: &[&str]) -> Result<pb::Survey, tonic::Status> {
    let request = authed(pb::UpdateSurveyRequest { survey: Some(survey), update_mask: mask(paths) }, &s.admin);
    s.client().await.update_survey(request).await.map(|r| r.into_inner().survey.unwrap())
}

async fn list(s: &Suite, page_size: i32, page_token: &str, show_archived: bool) -> pb::ListSurveysResponse {
    let request = pb::ListSurveysRequest { page_size, page_token: page_token.into(), show_archived };
    s.client().await.list_surveys(authed(request, &s.reader)).await.unwrap().into_inner()
}

fn names(page: &pb::ListSurveysResponse) -> Vec<&str> {
    page.surveys.iter().map(|s| s.name.as_str()).collect()
}

async fn a_survey_is_created_and_each_update_makes_a_version(backend: Backend) {
    let s = suite(backend).await;
    let created = s.create(nps_survey("After delivery")).await;
    assert_eq!(Uuid::parse_str(&created.id).unwrap().get_version_num(), 7, "ids are UUID v7");
    // What was sent is what is stored, with the output-only fields set.
    let mut expected = nps_survey("After delivery");
    expected.id = created.id.clone();
    expected.version = 1;
    expected.state = pb::SurveyState::Active as i32;
    expected.create_time = created.create_time;
    expected.update_time = created.create_time;
    assert_eq!(created, expected);
    assert_eq!(get(&s, &created.id, 0).await.unwrap(), created);

    // Version 2: renamed, the text question dropped; the rest stays.
    let change = pb::Survey {
        id: created.id.clone(),
        name: "After delivery, short".into(),
        questions: created.questions[..2].to_vec(),
        channel: Channel::Sms as i32,
        ..Default::default()
    };
    let v2 = update(&s, change, &["name", "questions"]).await.unwrap();
    assert_eq!((v2.version, v2.name.as_str(), v2.questions.len()), (2, "After delivery, short", 2));
    assert_eq!(v2.channel, Channel::Email as i32, "channel was not in the mask");
    assert_eq!((v2.translations.clone(), v2.create_time), (created.translations.clone(), created.create_time));
    assert!(instant(&v2.update_time) >= instant(&created.update_time));

    // Version 3: only the channel.
    let v3 = update(
        &s,
        pb::Survey { id: created.id.clone(), channel: Channel::Sms as i32, ..Default::default() },
        &["channel"],
    )
    .await
    .unwrap();
    assert_eq!((v3.version, v3.channel, v3.name.as_str()), (3, Channel::Sms as i32, "After delivery, short"));

    // Every version stays readable; the current one is the last.
    assert_eq!(get(&s, &created.id, 1).await.unwrap(), created);
    assert_eq!(get(&s, &created.id, 2).await.unwrap(), v2);
    assert_eq!(get(&s, &created.id, 0).await.unwrap(), v3);
    let missing = get(&s, &created.id, 4).await.unwrap_err();
    assert_eq!(
        (missing.code(), missing.message()),
        (Code::NotFound, format!("version 4 of survey {} not found", created.id).as_str())
    );
}

async fn surveys_are_listed_newest_first_and_archived_once(backend: Backend) {
    let s = suite(backend).await;
    let _a = s.create(nps_survey("A")).await;
    let b = s.create(nps_survey("B")).await;
    let _c = s.create(nps_survey("C")).await;
    let first = list(&s, 2, "", false).await;
    assert_eq!(names(&first), ["C", "B"]);
    assert!(!first.next_page_token.is_empty());
    let second = list(&s, 2, &first.next_page_token, false).await;
    assert_eq!((names(&second), second.next_page_token.as_str()), (vec!["A"], ""));

    let archive = || authed(pb::ArchiveSurveyRequest { id: b.id.clone() }, &s.admin);
    let archived = s.client().await.archive_survey(archive()).await.unwrap().into_inner().survey.unwrap();
    assert_eq!((archived.state, archived.version), (pb::SurveyState::Archived as i32, 1));
    assert!(instant(&archived.archive_time) >= instant(&b.create_time));
    // Again: nothing changes, not even the archive time.
    let again = s.client().await.archive_survey(archive()).await.unwrap().into_inner().survey.unwrap();
    assert_eq!(again, archived);
    assert_eq!(get(&s, &b.id, 1).await.unwrap(), archived, "the state is every version's");

    assert_eq!(names(&list(&s, 0, "", false).await), ["C", "A"]);
    assert_eq!(names(&list(&s, 0, "", true).await), ["C", "B", "A"]);
    let refused = update(&s, pb::Survey { id: b.id.clone(), name: "B2".into(), ..Default::default() }, &["name"])
        .await
        .unwrap_err();
    assert_eq!(
        (refused.code(), refused.message()),
        (Code::FailedPrecondition, format!("survey {} is archived and cannot change", b.id).as_str())
    );

    let bad_page = pb::ListSurveysRequest { page_size: -1, page_token: "%%".into(), show_archived: false };
    let refused = s.client().await.list_surveys(authed(bad_page, &s.reader)).await.unwrap_err();
    assert_eq!(
        violations(&refused),
        pairs(&[("page_size", "must not be negative"), ("page_token", "is not a token this server issued")])
    );
}

/// A survey of about 800 KB: 47 more questions of 17 choices, each choice
/// text 1,000 bytes (799 × ≈1,005 bytes encoded).
fn large(name: &str) -> pb::Survey {
    let mut survey = nps_survey(name);
    survey.questions.extend((0..47).map(|i| pb::Question {
        id: format!("q{i}"),
        kind: pb::QuestionKind::SingleChoice as i32,
        text: "Which one?".into(),
        choices: (0..17).map(|j| definitions_kit::choice(&format!("c{j}"), &"w".repeat(1_000))).collect(),
        ..Default::default()
    }));
    survey
}

async fn a_page_of_large_surveys_stops_early(backend: Backend) {
    let s = suite(backend).await;
    for name in ["1", "2", "3", "4"] {
        s.create(large(name)).await;
    }
    // Two make about 1.6 MB; a third would pass the 2 MiB (2,097,152 bytes)
    // of a page.
    let first = list(&s, 10, "", false).await;
    assert_eq!(names(&first), ["4", "3"]);
    let second = list(&s, 10, &first.next_page_token, false).await;
    assert_eq!((names(&second), second.next_page_token.as_str()), (vec!["2", "1"], ""));
}

async fn another_tenants_survey_is_not_found(backend: Backend) {
    let s = suite(backend).await;
    let created = s.create(nps_survey("Mine")).await;
    let id = created.id.clone();
    let mut client = s.client().await;
    let not_found = |status: tonic::Status, message: String| {
        assert_eq!((status.code(), status.message()), (Code::NotFound, message.as_str()));
    };
    let as_stranger = pb::GetSurveyRequest { id: id.clone(), version: 0 };
    not_found(client.get_survey(authed(as_stranger, &s.stranger)).await.unwrap_err(), format!("survey {id} not found"));
    let as_stranger = pb::GetSurveyRequest { id: id.clone(), version: 1 };
    not_found(
        client.get_survey(authed(as_stranger, &s.stranger)).await.unwrap_err(),
        format!("version 1 of survey {id} not found"),
    );
    let change = pb::UpdateSurveyRequest {
        survey: Some(pb::Survey { id: id.clone(), name: "Theirs".into(), ..Default::default() }),
        update_mask: mask(&["name"]),
    };
    not_found(client.update_survey(authed(change, &s.stranger)).await.unwrap_err(), format!("survey {id} not found"));
    let archive = pb::ArchiveSurveyRequest { id: id.clone() };
    not_found(client.archive_survey(authed(archive, &s.stranger)).await.unwrap_err(), format!("survey {id} not found"));
    let theirs = client.list_surveys(authed(pb::ListSurveysRequest::default(), &s.stranger)).await.unwrap();
    assert_eq!(theirs.into_inner().surveys, []);
    // Untouched for its tenant.
    assert_eq!(get(&s, &id, 0).await.unwrap(), created);
}

async fn only_admins_define_surveys(backend: Backend) {
    let s = suite(backend).await;
    let mut client = s.client().await;
    for token in [&s.reader, &s.writer] {
        let request = pb::CreateSurveyRequest { survey: Some(nps_survey("Nope")) };
        let denied = client.create_survey(authed(request, token)).await.unwrap_err();
        assert_eq!((denied.code(), denied.message()), (Code::PermissionDenied, "this call needs the admin role"));
    }
    let anonymous = tonic::Request::new(pb::CreateSurveyRequest { survey: Some(nps_survey("Nope")) });
    let refused = client.create_survey(anonymous).await.unwrap_err();
    assert_eq!((refused.code(), refused.message()), (Code::Unauthenticated, "missing bearer token"));

    let created = s.create(nps_survey("Yes")).await;
    let change = pb::UpdateSurveyRequest {
        survey: Some(pb::Survey { id: created.id.clone(), name: "Renamed".into(), ..Default::default() }),
        update_mask: mask(&["name"]),
    };
    let denied = client.update_survey(authed(change, &s.writer)).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let denied = client.archive_survey(authed(pb::ArchiveSurveyRequest { id: created.id.clone() }, &s.writer)).await;
    assert_eq!(denied.unwrap_err().code(), Code::PermissionDenied);
    // A reader reads.
    assert_eq!(get(&s, &created.id, 0).await.unwrap(), created);
    assert_eq!(list(&s, 0, "", false).await.surveys, [created]);
}

/// The answer to creating `survey`, which must be refused.
async fn refused(s: &Suite, survey: Option<pb::Survey>) -> tonic::Status {
    let request = authed(pb::CreateSurveyRequest { survey }, &s.admin);
    let status = s.client().await.create_survey(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
}

async fn bad_surveys_are_refused_with_the_field_at_fault(backend: Backend) {
    let s = suite(backend).await;
    let with = |change: &dyn Fn(&mut pb::Survey)| {
        let mut survey = nps_survey("Bad");
        change(&mut survey);
        Some(survey)
    };
    let extra = |i: usize| pb::Question {
        id: format!("extra-{i}"),
        kind: pb::QuestionKind::Text as i32,
        text: "More?".into(),
        ..Default::default()
    };
    let all_channels = "must be CHANNEL_EMAIL, CHANNEL_SMS, CHANNEL_WEB, CHANNEL_MOBILE_APP, CHANNEL_PHONE or \
                        CHANNEL_KIOSK";
    let long_key = "x".repeat(10_000);
    let cases: Vec<(Option<pb::Survey>, Expected)> = vec![
        (None, vec![("survey", "is required")]),
        (with(&|s| s.name = " ".into()), vec![("survey.name", "is required")]),
        // 201 characters of 2 bytes each.
        (with(&|s| s.name = "é".repeat(201)), vec![("survey.name", "has more than 200 characters")]),
        (
            with(&|s| s.r#type = 0),
            vec![("survey.type", "must be SURVEY_TYPE_NPS, SURVEY_TYPE_CSAT or SURVEY_TYPE_CES")],
        ),
        (
            with(&|s| s.language = "english".into()),
            vec![("survey.language", "must be a BCP 47 language tag such as en or pt-BR")],
        ),
        (with(&|s| s.channel = Channel::Chat as i32), vec![("survey.channel", all_channels)]),
        // 3 questions and 48 more: 51.
        (
            with(&|s| s.questions.extend((0..48).map(extra))),
            vec![("survey.questions", "must have at most 50 questions (has 51)")],
        ),
        (
            with(&|s| s.questions[1].id = "reason".into()),
            vec![("survey.questions[1].id", "'reason' is the id of an earlier question")],
        ),
        (
            with(&|s| s.questions[0].choices[2].id = "Care Team".into()),
            vec![("survey.questions[0].choices[2].id", "must be 1 to 64 of a-z, 0-9, '_' and '-'")],
        ),
        (
            with(&|s| s.questions[0].choices.truncate(1)),
            vec![("survey.questions[0].choices", "must have 2 to 50 choices (has 1)")],
        ),
        (
            with(&|s| (s.questions[1].scale_min, s.questions[1].scale_max) = (5, 1)),
            vec![("survey.questions[1].scale_max", "must be greater than scale_min")],
        ),
        (
            with(&|s| s.questions[1].scale_max = 101),
            vec![("survey.questions[1].scale_max", "must be between 0 and 100")],
        ),
        (
            with(&|s| s.questions[2].text = "?".repeat(1_001)),
            vec![("survey.questions[2].text", "has more than 1000 characters")],
        ),
        (with(&|s| s.verbatim_question = String::new()), vec![("survey.verbatim_question", "is required")]),
        (
            with(&|s| s.translations[0].language = "EN".into()),
            vec![("survey.translations[0].language", "is the survey's own language")],
        ),
        (
            with(&|s| {
                s.translations
                    .extend((1..=50).map(|i| pb::Translation { language: format!("de-{i:03}"), ..Default::default() }))
            }),
            vec![("survey.translations", "must have at most 50 translations (has 51)")],
        ),
        // Lists over their bound are one violation, their items not read:
        // 20,000 blank questions were 60,000 violations, 20,000 languages
        // compared pairwise.
        (
            // 3 questions and 19,997 blank ones.
            with(&|s| s.questions.extend(vec![pb::Question::default(); 19_997])),
            vec![("survey.questions", "must have at most 50 questions (has 20000)")],
        ),
        (
            with(&|s| {
                s.translations =
                    (0..20_000).map(|i| pb::Translation { language: format!("x{i}"), ..Default::default() }).collect()
            }),
            vec![("survey.translations", "must have at most 50 translations (has 20000)")],
        ),
        (
            with(&|s| {
                s.translations[0].questions = (0..51).map(|i| (format!("q{i}"), "?".to_owned())).collect();
                s.questions[0].choices = vec![choice("a", "A"); 51];
            }),
            vec![
                ("survey.questions[0].choices", "must have 2 to 50 choices (has 51)"),
                ("survey.translations[0].questions", "has at most 50 entries (has 51)"),
            ],
        ),
        // Three at once, in the order of the message's fields.
        (
            with(&|s| {
                s.name = String::new();
                s.language = String::new();
                s.channel = 0;
            }),
            vec![
                ("survey.name", "is required"),
                ("survey.language", "must be a BCP 47 language tag such as en or pt-BR"),
                ("survey.channel", all_channels),
            ],
        ),
    ];
    for (survey, expected) in cases {
        let status = refused(&s, survey).await;
        assert_eq!(violations(&status), pairs(&expected));
        let message = match expected.as_slice() {
            [(field, why)] => format!("invalid {field}: {why}"),
            [(field, why), ..] => format!("{} invalid fields, first {field}: {why}", expected.len()),
            [] => unreachable!(),
        };
        assert_eq!(status.message(), message);
    }

    // A 10,000-byte key is named, not echoed: cut to 64 characters.
    let status = refused(
        &s,
        with(&|s| {
            s.translations[0].questions.insert(long_key.clone(), "Non".into());
        }),
    )
    .await;
    let field = format!("survey.translations[0].questions[\"{}…\"]", "x".repeat(64));
    assert_eq!(violations(&status), pairs(&[(&field, "names no question of the survey")]));
    assert!(status.message().len() < 200, "{} bytes", status.message().len());

    assert_eq!(list(&s, 0, "", true).await.surveys, [], "nothing refused was stored");
}

async fn bad_updates_are_refused_and_change_nothing(backend: Backend) {
    let s = suite(backend).await;
    let created = s.create(nps_survey("Stays")).await;
    let given = || pb::Survey { id: created.id.clone(), name: "Changed".into(), ..Default::default() };
    let cases: Vec<(pb::Survey, &[&str], Expected)> = vec![
        (
            given(),
            &[],
            vec![(
                "update_mask",
                "must name the fields to change (name, language, title, score_question, verbatim_enabled, \
                 verbatim_question, questions, channel, translations, allow_anonymous)",
            )],
        ),
        (
            given(),
            &["type", "colour"],
            vec![
                ("update_mask", "\"type\" cannot change: a survey keeps the type it was created with"),
                ("update_mask", "\"colour\" is not an updatable field of a survey"),
            ],
        ),
        (pb::Survey { id: "42".into(), ..given() }, &["name"], vec![("survey.id", "must be a survey id (a UUID)")]),
        // Dropping the question a translation names.
        (
            pb::Survey { questions: created.questions[1..].to_vec(), ..given() },
            &["questions"],
            vec![
                ("survey.translations[0].questions[\"reason\"]", "names no question of the survey"),
                (
                    "survey.translations[0].choices[\"reason/price\"]",
                    "names no choice of the survey (keys are question_id/choice_id)",
                ),
            ],
        ),
        (pb::Survey { name: String::new(), ..given() }, &["name"], vec![("survey.name", "is required")]),
    ];
    for (survey, paths, expected) in cases {
        let status = update(&s, survey, paths).await.unwrap_err();
        assert_eq!((status.code(), violations(&status)), (Code::InvalidArgument, pairs(&expected)));
    }
    let missing = update(&s, pb::Survey { id: Uuid::now_v7().to_string(), ..given() }, &["name"]).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    let bad_get = authed(pb::GetSurveyRequest { id: "x".into(), version: -1 }, &s.reader);
    let status = s.client().await.get_survey(bad_get).await.unwrap_err();
    assert_eq!(
        violations(&status),
        pairs(&[("id", "must be a survey id (a UUID)"), ("version", "must not be negative")])
    );
    assert_eq!(get(&s, &created.id, 0).await.unwrap(), created, "still version 1");
}
