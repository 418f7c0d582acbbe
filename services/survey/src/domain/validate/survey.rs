//! Survey definitions (docs/DOMAIN.md §7.5): every problem of a survey's
//! content, named by its path under `survey`; and what an update changes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::RangeInclusive;

use cx_proto::common::v1::Channel;
use cx_proto::survey::v1 as pb;
use cx_proto::survey::v1::QuestionKind;
use cx_runtime::error::Violations;

use super::language;
use crate::domain::survey::SurveyType;
use cx_runtime::validate::mask::Updatable;
use cx_runtime::validate::text::{self, MAX_NAME, MAX_TEXT, shown};

pub const MAX_QUESTIONS: usize = 50;
/// A choice question has 2 to 50 choices.
pub const CHOICES: RangeInclusive<usize> = 2..=50;
pub const MAX_TRANSLATIONS: usize = 50;
/// The bounds of a scale question's ends.
pub const SCALE: RangeInclusive<i32> = 0..=100;

/// The channels a survey is delivered through.
pub const DELIVERY_CHANNELS: [Channel; 6] =
    [Channel::Email, Channel::Sms, Channel::Web, Channel::MobileApp, Channel::Phone, Channel::Kiosk];

/// The fields `UpdateSurvey` changes (the proto's list).
pub const UPDATABLE: Updatable<'static> = Updatable {
    resource: "a survey",
    fields: &[
        "name",
        "language",
        "title",
        "score_question",
        "verbatim_enabled",
        "verbatim_question",
        "questions",
        "channel",
        "translations",
        "allow_anonymous",
    ],
    fixed: &[
        ("type", "cannot change: a survey keeps the type it was created with"),
        ("state", "changes only by ArchiveSurvey"),
    ],
};

/// Every problem of `s`'s content; its output-only fields are not read.
pub fn check(s: &pb::Survey) -> Result<(), Violations> {
    let mut out = Violations::new();
    out.check(text::required(&s.name, "survey.name", MAX_NAME));
    if SurveyType::from_code(s.r#type).is_none() {
        out.add("survey.type", "must be SURVEY_TYPE_NPS, SURVEY_TYPE_CSAT or SURVEY_TYPE_CES");
    }
    out.check(language::tag(&s.language, "survey.language"));
    out.check(text::optional(&s.title, "survey.title", MAX_TEXT));
    out.check(text::required(&s.score_question, "survey.score_question", MAX_TEXT));
    out.check(if s.verbatim_enabled {
        text::required(&s.verbatim_question, "survey.verbatim_question", MAX_TEXT)
    } else {
        text::optional(&s.verbatim_question, "survey.verbatim_question", MAX_TEXT)
    });
    questions(&s.questions, &mut out);
    if !Channel::try_from(s.channel).is_ok_and(|c| DELIVERY_CHANNELS.contains(&c)) {
        let names: Vec<&str> = DELIVERY_CHANNELS.iter().map(|c| c.as_str_name()).collect();
        let (last, first) = names.split_last().unwrap_or((&"", &[]));
        out.add("survey.channel", format!("must be {} or {last}", first.join(", ")));
    }
    translations(s, &mut out);
    out.finish()
}

fn questions(questions: &[pb::Question], out: &mut Violations) {
    if questions.len() > MAX_QUESTIONS {
        // Its items are not read: a megabyte of blank ones was 3 violations each.
        return out
            .add("survey.questions", format!("must have at most {MAX_QUESTIONS} questions (has {})", questions.len()));
    }
    let mut seen = HashSet::new();
    for (i, q) in questions.iter().enumerate() {
        let at = |name: &str| format!("survey.questions[{i}].{name}");
        if out.check(text::key(&q.id, &at("id"))).is_some() && !seen.insert(q.id.as_str()) {
            out.add(at("id"), format!("'{}' is the id of an earlier question", q.id));
        }
        out.check(text::required(&q.text, &at("text"), MAX_TEXT));
        let kind = QuestionKind::try_from(q.kind).unwrap_or(QuestionKind::Unspecified);
        match kind {
            QuestionKind::Unspecified => {
                out.add(
                    at("kind"),
                    "must be QUESTION_KIND_SINGLE_CHOICE, QUESTION_KIND_MULTIPLE_CHOICE, QUESTION_KIND_SCALE or \
                     QUESTION_KIND_TEXT",
                );
                continue;
            }
            QuestionKind::SingleChoice | QuestionKind::MultipleChoice => choices(q, &at("choices"), out),
            QuestionKind::Scale => {
                let min = SCALE.contains(&q.scale_min);
                let max = SCALE.contains(&q.scale_max);
                if !min {
                    out.add(at("scale_min"), "must be between 0 and 100");
                }
                if !max {
                    out.add(at("scale_max"), "must be between 0 and 100");
                }
                if min && max && q.scale_min >= q.scale_max {
                    out.add(at("scale_max"), "must be greater than scale_min");
                }
            }
            QuestionKind::Text => {}
        }
        let choice = matches!(kind, QuestionKind::SingleChoice | QuestionKind::MultipleChoice);
        if !choice && !q.choices.is_empty() {
            out.add(at("choices"), "only choice questions have choices");
        }
        if kind != QuestionKind::Scale && (q.scale_min, q.scale_max) != (0, 0) {
            out.add(at(if q.scale_min != 0 { "scale_min" } else { "scale_max" }), "only scale questions have a scale");
        }
    }
}

fn choices(q: &pb::Question, field: &str, out: &mut Violations) {
    if !CHOICES.contains(&q.choices.len()) {
        out.add(field, format!("must have 2 to 50 choices (has {})", q.choices.len()));
        if q.choices.len() > *CHOICES.end() {
            return;
        }
    }
    let mut seen = HashSet::new();
    for (j, c) in q.choices.iter().enumerate() {
        let id = format!("{field}[{j}].id");
        if out.check(text::key(&c.id, &id)).is_some() && !seen.insert(c.id.as_str()) {
            out.add(id, format!("'{}' is the id of an earlier choice", c.id));
        }
        out.check(text::required(&c.text, &format!("{field}[{j}].text"), MAX_TEXT));
    }
}

fn translations(s: &pb::Survey, out: &mut Violations) {
    if s.translations.len() > MAX_TRANSLATIONS {
        out.add(
            "survey.translations",
            format!("must have at most {MAX_TRANSLATIONS} translations (has {})", s.translations.len()),
        );
        // Not read: each language would be compared with the others.
        return;
    }
    let mut questions: HashMap<&str, &pb::Question> = HashMap::new();
    for q in &s.questions {
        questions.entry(q.id.as_str()).or_insert(q);
    }
    let mut languages: Vec<&str> = Vec::new();
    for (i, tr) in s.translations.iter().enumerate() {
        let at = |name: &str| format!("survey.translations[{i}].{name}");
        if out.check(language::tag(&tr.language, &at("language"))).is_some() {
            if language::same(&tr.language, &s.language) {
                out.add(at("language"), "is the survey's own language");
            } else if let Some(j) = languages.iter().position(|l| language::same(l, &tr.language)) {
                out.add(at("language"), format!("repeats the language of translations[{j}]"));
            }
        }
        languages.push(&tr.language);
        out.check(text::optional(&tr.title, &at("title"), MAX_TEXT));
        out.check(text::optional(&tr.score_question, &at("score_question"), MAX_TEXT));
        out.check(text::optional(&tr.verbatim_question, &at("verbatim_question"), MAX_TEXT));
        // Keys name distinct questions and choices: more than there can be
        // are one violation, not one per key.
        let most_choices = MAX_QUESTIONS * CHOICES.end();
        if tr.questions.len() > MAX_QUESTIONS {
            out.add(at("questions"), format!("has at most {MAX_QUESTIONS} entries (has {})", tr.questions.len()));
            continue;
        }
        if tr.choices.len() > most_choices {
            out.add(at("choices"), format!("has at most {most_choices} entries (has {})", tr.choices.len()));
            continue;
        }
        // Sorted, so the violations come in a stable order.
        for (key, value) in tr.questions.iter().collect::<BTreeMap<_, _>>() {
            let field = format!("{}[{}]", at("questions"), shown(key));
            if questions.contains_key(key.as_str()) {
                out.check(text::required(value, &field, MAX_TEXT));
            } else {
                out.add(field, "names no question of the survey");
            }
        }
        for (key, value) in tr.choices.iter().collect::<BTreeMap<_, _>>() {
            let field = format!("{}[{}]", at("choices"), shown(key));
            let known = key
                .split_once('/')
                .and_then(|(q, c)| questions.get(q).map(|q| q.choices.iter().any(|choice| choice.id == c)))
                .unwrap_or(false);
            if known {
                out.check(text::required(value, &field, MAX_TEXT));
            } else {
                out.add(field, "names no choice of the survey (keys are question_id/choice_id)");
            }
        }
    }
}

/// `current` with the fields `paths` name (checked by [`UPDATABLE`]) taken
/// from `given`.
pub fn apply(current: &mut pb::Survey, mut given: pb::Survey, paths: &[String]) {
    for path in paths {
        match path.as_str() {
            "name" => current.name = std::mem::take(&mut given.name),
            "language" => current.language = std::mem::take(&mut given.language),
            "title" => current.title = std::mem::take(&mut given.title),
            "score_question" => current.score_question = std::mem::take(&mut given.score_question),
            "verbatim_enabled" => current.verbatim_enabled = given.verbatim_enabled,
            "verbatim_question" => current.verbatim_question = std::mem::take(&mut given.verbatim_question),
            "questions" => current.questions = std::mem::take(&mut given.questions),
            "channel" => current.channel = given.channel,
            "translations" => current.translations = std::mem::take(&mut given.translations),
            "allow_anonymous" => current.allow_anonymous = given.allow_anonymous,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use cx_runtime::error::FieldViolation;

    use super::*;

    fn choice(id: &str) -> pb::Choice {
        pb::Choice { id: id.into(), text: id.to_uppercase() }
    }

    fn good() -> pb::Survey {
        pb::Survey {
            name: "After delivery".into(),
            r#type: pb::SurveyType::Nps as i32,
            language: "en".into(),
            score_question: "How likely are you to recommend us?".into(),
            channel: Channel::Email as i32,
            questions: vec![pb::Question {
                id: "reason".into(),
                kind: QuestionKind::SingleChoice as i32,
                text: "Why?".into(),
                choices: vec![choice("price"), choice("speed")],
                ..Default::default()
            }],
            translations: vec![pb::Translation {
                language: "fr".into(),
                questions: [("reason".to_owned(), "Pourquoi ?".to_owned())].into(),
                choices: [("reason/price".to_owned(), "Prix".to_owned())].into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn fields(s: &pb::Survey) -> Vec<String> {
        check(s).err().map(Vec::from).unwrap_or_default().into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn a_good_survey_passes() {
        assert_eq!(check(&good()), Ok(()));
    }

    #[test]
    fn each_question_problem_is_named_by_its_path() {
        let mut s = good();
        s.questions.push(pb::Question {
            id: "reason".into(),
            kind: QuestionKind::Scale as i32,
            text: "How fast?".into(),
            scale_min: 5,
            scale_max: 5,
            choices: vec![choice("x")],
            ..Default::default()
        });
        s.questions.push(pb::Question {
            id: "colour".into(),
            kind: QuestionKind::MultipleChoice as i32,
            text: "Which?".into(),
            choices: vec![choice("red")],
            ..Default::default()
        });
        s.questions.push(pb::Question { id: "free".into(), text: "Tell us".into(), ..Default::default() });
        assert_eq!(
            fields(&s),
            [
                "survey.questions[1].id",
                "survey.questions[1].scale_max",
                "survey.questions[1].choices",
                "survey.questions[2].choices",
                "survey.questions[3].kind",
            ]
        );
    }

    #[test]
    fn translations_name_existing_questions_and_choices() {
        let mut s = good();
        let mut tr = s.translations[0].clone();
        tr.language = "FR".into();
        tr.questions.insert("nope".into(), "Non".into());
        tr.choices.insert("reason/cost".into(), "Coût".into());
        tr.choices.insert("reason".into(), "?".into());
        s.translations.push(tr);
        s.translations.push(pb::Translation { language: "EN".into(), ..Default::default() });
        let found = Vec::from(check(&s).unwrap_err());
        assert_eq!(
            found,
            [
                FieldViolation::new("survey.translations[1].language", "repeats the language of translations[0]"),
                FieldViolation::new("survey.translations[1].questions[\"nope\"]", "names no question of the survey"),
                FieldViolation::new(
                    "survey.translations[1].choices[\"reason\"]",
                    "names no choice of the survey (keys are question_id/choice_id)"
                ),
                FieldViolation::new(
                    "survey.translations[1].choices[\"reason/cost\"]",
                    "names no choice of the survey (keys are question_id/choice_id)"
                ),
                FieldViolation::new("survey.translations[2].language", "is the survey's own language"),
            ]
        );
    }

    #[test]
    fn an_update_takes_only_the_masked_fields() {
        let mut current = good();
        let given = pb::Survey { name: "Renamed".into(), channel: Channel::Sms as i32, ..Default::default() };
        apply(&mut current, given, &["name".to_owned()]);
        assert_eq!((current.name.as_str(), current.channel), ("Renamed", Channel::Email as i32));
        assert_eq!(current.questions, good().questions);
    }
}
