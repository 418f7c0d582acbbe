//! A response checked against the survey version it answers
//! (docs/DOMAIN.md §7.7): the score in the type's range, every required
//! question answered, choices that exist, scales within range, texts and the
//! verbatim within 4,000 characters, and a language of the survey. A
//! verbatim where the survey asks for none is kept like any other: the
//! customer's score is not lost over a comment box.

use std::collections::HashSet;

use cx_proto::survey::v1 as pb;
use cx_runtime::error::{Violations, clip};

use super::survey::SurveyType;

/// Longest verbatim or text answer, in characters.
pub const MAX_TEXT: usize = 4_000;
/// Longest client response id, in characters.
pub const MAX_ID: usize = 128;

/// What a response says, as the survey version judges it.
#[derive(Clone, Copy, Debug)]
pub struct Said<'a> {
    pub score: i32,
    pub verbatim: &'a str,
    pub answers: &'a [pb::Answer],
    /// As sent: empty means the survey's language.
    pub language: &'a str,
}

/// Checks `said` against `survey` (a version of a survey of type
/// `survey_type`), recording every violation into `out`; returns the
/// language answered in, spelt as the survey spells it.
pub fn check(survey: &pb::Survey, survey_type: SurveyType, said: &Said<'_>, out: &mut Violations) -> Option<String> {
    let (low, high) = survey_type.range();
    if !(low..=high).contains(&said.score) {
        out.add("response.score", format!("must be between {low} and {high} ({})", name(survey_type)));
    }
    if said.verbatim.chars().count() > MAX_TEXT {
        out.add("response.verbatim", format!("has at most {MAX_TEXT} characters"));
    }
    answers(survey, said.answers, out);
    language(survey, said.language, out)
}

fn name(t: SurveyType) -> &'static str {
    match t {
        SurveyType::Nps => "NPS",
        SurveyType::Csat => "CSAT",
        SurveyType::Ces => "CES",
    }
}

/// Each answer against its question, then the required questions left out.
fn answers(survey: &pb::Survey, answers: &[pb::Answer], out: &mut Violations) {
    let mut answered = HashSet::new();
    for (i, answer) in answers.iter().enumerate() {
        let field = |part: &str| format!("response.answers[{i}].{part}");
        let Some(question) = survey.questions.iter().find(|q| q.id == answer.question_id) else {
            let why = format!("'{}' is not a question of this survey", clip(&answer.question_id));
            out.add(field("question_id"), why);
            continue;
        };
        if !answered.insert(question.id.as_str()) {
            out.add(field("question_id"), format!("question '{}' is answered twice", question.id));
            continue;
        }
        let kind = pb::QuestionKind::try_from(question.kind).unwrap_or_default();
        let choice = matches!(kind, pb::QuestionKind::SingleChoice | pb::QuestionKind::MultipleChoice);
        if !choice && !answer.choice_ids.is_empty() {
            out.add(field("choice_ids"), "only choice questions take choice_ids");
        }
        if kind != pb::QuestionKind::Scale && answer.scale_value.is_some() {
            out.add(field("scale_value"), "only scale questions take a scale_value");
        }
        if kind != pb::QuestionKind::Text && !answer.text.is_empty() {
            out.add(field("text"), "only text questions take a text");
        }
        match kind {
            pb::QuestionKind::SingleChoice if answer.choice_ids.len() != 1 => {
                out.add(field("choice_ids"), "needs exactly one choice");
            }
            pb::QuestionKind::MultipleChoice if answer.choice_ids.is_empty() => {
                out.add(field("choice_ids"), "needs at least one choice");
            }
            pb::QuestionKind::Scale => match answer.scale_value {
                None => out.add(field("scale_value"), "is required for a scale question"),
                Some(v) if !(question.scale_min..=question.scale_max).contains(&v) => out.add(
                    field("scale_value"),
                    format!("must be between {} and {}", question.scale_min, question.scale_max),
                ),
                Some(_) => {}
            },
            pb::QuestionKind::Text if answer.text.is_empty() => {
                out.add(field("text"), "must not be empty (leave the question out instead)");
            }
            pb::QuestionKind::Text if answer.text.chars().count() > MAX_TEXT => {
                out.add(field("text"), format!("has at most {MAX_TEXT} characters"));
            }
            _ => {}
        }
        if choice {
            choices(question, answer, &field("choice_ids"), out);
        }
    }
    for question in survey.questions.iter().filter(|q| q.required && !answered.contains(q.id.as_str())) {
        out.add("response.answers", format!("question '{}' is required", question.id));
    }
}

/// The chosen ids exist in the question, each once.
fn choices(question: &pb::Question, answer: &pb::Answer, field: &str, out: &mut Violations) {
    let mut seen = HashSet::new();
    for id in &answer.choice_ids {
        if !question.choices.iter().any(|c| &c.id == id) {
            out.add(field, format!("'{}' is not a choice of question '{}'", clip(id), question.id));
        } else if !seen.insert(id.as_str()) {
            out.add(field, format!("lists '{id}' more than once"));
        }
    }
}

/// The survey's language or a translation's, ignoring case; empty: the
/// survey's.
fn language(survey: &pb::Survey, raw: &str, out: &mut Violations) -> Option<String> {
    if raw.is_empty() {
        return Some(survey.language.clone());
    }
    let known =
        std::iter::once(survey.language.as_str()).chain(survey.translations.iter().map(|t| t.language.as_str()));
    let mut known = known.filter(|l| !l.is_empty());
    if let Some(found) = known.clone().find(|l| l.eq_ignore_ascii_case(raw)) {
        return Some(found.to_owned());
    }
    let languages = known.by_ref().collect::<Vec<_>>().join(", ");
    out.add("response.language", format!("'{}' is not a language of this survey ({languages})", clip(raw)));
    None
}

#[cfg(test)]
mod tests {
    use cx_runtime::error::FieldViolation;

    use super::*;

    fn survey() -> pb::Survey {
        let choice = |id: &str| pb::Choice { id: id.into(), text: id.into() };
        let question = |id: &str, kind: pb::QuestionKind, required: bool| pb::Question {
            id: id.into(),
            kind: kind as i32,
            text: id.into(),
            required,
            choices: if matches!(kind, pb::QuestionKind::SingleChoice | pb::QuestionKind::MultipleChoice) {
                vec![choice("a"), choice("b"), choice("c")]
            } else {
                vec![]
            },
            scale_min: 1,
            scale_max: if kind == pb::QuestionKind::Scale { 10 } else { 0 },
        };
        pb::Survey {
            id: "s".into(),
            language: "en".into(),
            verbatim_enabled: true,
            questions: vec![
                question("reason", pb::QuestionKind::SingleChoice, true),
                question("liked", pb::QuestionKind::MultipleChoice, false),
                question("speed", pb::QuestionKind::Scale, false),
                question("other", pb::QuestionKind::Text, false),
            ],
            translations: vec![pb::Translation { language: "pt-BR".into(), ..Default::default() }],
            ..Default::default()
        }
    }

    fn answer(q: &str, choices: &[&str], scale: Option<i32>, text: &str) -> pb::Answer {
        pb::Answer {
            question_id: q.into(),
            choice_ids: choices.iter().map(|c| c.to_string()).collect(),
            scale_value: scale,
            text: text.into(),
        }
    }

    fn run(survey: &pb::Survey, t: SurveyType, said: Said<'_>) -> (Option<String>, Vec<FieldViolation>) {
        let mut out = Violations::new();
        let language = check(survey, t, &said, &mut out);
        (language, out.into())
    }

    #[test]
    fn a_complete_answer_passes_and_takes_the_survey_spelling_of_its_language() {
        let answers = [
            answer("reason", &["b"], None, ""),
            answer("liked", &["a", "c"], None, ""),
            answer("speed", &[], Some(10), ""),
            answer("other", &[], None, &"é".repeat(MAX_TEXT)),
        ];
        let said = Said { score: 10, verbatim: "Fast and kind", answers: &answers, language: "PT-br" };
        assert_eq!(run(&survey(), SurveyType::Nps, said), (Some("pt-BR".into()), vec![]));
        let bare = [answer("reason", &["a"], None, "")];
        let said = Said { score: 1, verbatim: "", answers: &bare, language: "" };
        assert_eq!(run(&survey(), SurveyType::Csat, said), (Some("en".into()), vec![]));
    }

    #[test]
    fn every_violation_is_reported_with_its_field() {
        let answers = [
            answer("reason", &["a", "b"], None, ""),
            answer("liked", &["a", "z", "a"], None, "why"),
            answer("speed", &[], Some(11), ""),
            answer("other", &[], None, ""),
            answer("ghost", &[], None, ""),
            answer("speed", &[], Some(3), ""),
        ];
        let verbatim = "v".repeat(MAX_TEXT + 1);
        let said = Said { score: 8, verbatim: &verbatim, answers: &answers, language: "de" };
        let (language, found) = run(&survey(), SurveyType::Ces, said);
        assert_eq!(language, None);
        let expected = [
            ("response.score", "must be between 1 and 7 (CES)"),
            ("response.verbatim", "has at most 4000 characters"),
            ("response.answers[0].choice_ids", "needs exactly one choice"),
            ("response.answers[1].text", "only text questions take a text"),
            ("response.answers[1].choice_ids", "'z' is not a choice of question 'liked'"),
            ("response.answers[1].choice_ids", "lists 'a' more than once"),
            ("response.answers[2].scale_value", "must be between 1 and 10"),
            ("response.answers[3].text", "must not be empty (leave the question out instead)"),
            ("response.answers[4].question_id", "'ghost' is not a question of this survey"),
            ("response.answers[5].question_id", "question 'speed' is answered twice"),
            ("response.language", "'de' is not a language of this survey (en, pt-BR)"),
        ];
        let expected: Vec<_> = expected.iter().map(|(f, d)| FieldViolation::new(*f, *d)).collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn required_questions_and_kinds_are_enforced_and_an_unasked_verbatim_is_kept() {
        let mut no_verbatim = survey();
        no_verbatim.verbatim_enabled = false;
        let answers = [
            answer("liked", &[], Some(2), ""),
            answer("speed", &["a"], None, ""),
            answer("other", &[], None, &"x".repeat(MAX_TEXT + 1)),
        ];
        let said = Said { score: -1, verbatim: "hello", answers: &answers, language: "EN" };
        let (language, found) = run(&no_verbatim, SurveyType::Nps, said);
        assert_eq!(language.as_deref(), Some("en"));
        let expected = [
            ("response.score", "must be between 0 and 10 (NPS)"),
            ("response.answers[0].scale_value", "only scale questions take a scale_value"),
            ("response.answers[0].choice_ids", "needs at least one choice"),
            ("response.answers[1].choice_ids", "only choice questions take choice_ids"),
            ("response.answers[1].scale_value", "is required for a scale question"),
            ("response.answers[2].text", "has at most 4000 characters"),
            ("response.answers", "question 'reason' is required"),
        ];
        let expected: Vec<_> = expected.iter().map(|(f, d)| FieldViolation::new(*f, *d)).collect();
        assert_eq!(found, expected);
    }
}
