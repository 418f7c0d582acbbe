//! The rule language's golden cases: rules refused with their exact messages
//! (line:column, columns counted in characters), and rules accepted with
//! their canonical form and the fields they read (docs/DOMAIN.md §8.4, §8.5).

use cx_segmentation::rules::{Catalog, validate};

/// The tenant of every case: it declared one custom purpose.
fn catalog() -> Catalog {
    Catalog { custom_purposes: vec!["loyalty_club".into()] }
}

fn messages(rule: &str) -> Vec<String> {
    match validate(rule, &catalog()) {
        Ok(checked) => vec![format!("accepted: {checked}")],
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

/// (rule, every message). Columns worked by hand in the comments.
const REFUSED: &[(&str, &[&str])] = &[
    // Fields. "rfm.monetry" is one deletion from "rfm.monetary".
    ("rfm.monetry > 5", &["1:1: unknown field rfm.monetry — did you mean rfm.monetary?"]),
    ("RFM.Monetary > 1", &["1:1: unknown field RFM.Monetary — field names are lower case: did you mean rfm.monetary?"]),
    // "rfm.mm" is one deletion from "rfm.m"; line 3 col 7 after two spaces and "AND ".
    (
        "rfm.r = 1\n  AND rfm.f = \"x\"\n  AND rfm.mm = 2",
        &["2:7: rfm.f is a number, compared with a string", "3:7: unknown field rfm.mm — did you mean rfm.m?"],
    ),
    // Columns count characters: 日 and 本 are columns 20 and 21, rfm.q starts at 28.
    ("profile.persona = \"日本\" AND rfm.q = 1", &["1:28: unknown field rfm.q — did you mean rfm.r?"]),
    ("(a OR b) AND c = 1", &["1:2: unknown field a", "1:7: unknown field b", "1:14: unknown field c"]),
    (
        "profile.atributes.vip = true",
        &["1:1: unknown field profile.atributes.vip — did you mean profile.attributes.vip?"],
    ),
    (
        "profile.attributes.9x = 1",
        &[
            "1:1: profile.attributes.9x has no valid attribute key: a key is a letter followed by up to 63 letters, digits, _, - or .",
        ],
    ),
    ("profile.attributes = 1", &["1:1: profile.attributes needs a key: write profile.attributes.<key>"]),
    (
        "consent AND consent.",
        &["1:1: consent needs a purpose: write consent.<purpose>", "1:13: unknown consent purpose consent."],
    ),
    ("consent.emial", &["1:1: unknown consent purpose consent.emial — did you mean consent.email?"]),
    // A custom purpose of another tenant, or a typo of ours: nearest is ours.
    (
        "consent.loyalty_clubs",
        &["1:1: unknown consent purpose consent.loyalty_clubs — did you mean consent.loyalty_club?"],
    ),
    // Quoted text is cut to 40 characters, the 40th an ellipsis.
    (
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx = 1",
        &["1:1: unknown field xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…"],
    ),
    // Types: the message sits on the field.
    ("rfm.monetary = \"a\"", &["1:1: rfm.monetary is a number, compared with a string"]),
    ("consent.email = 1", &["1:1: consent.email is a boolean, compared with a number"]),
    ("rfm.r > true", &["1:1: rfm.r is a number, compared with a boolean"]),
    ("rfm.r IN [true]", &["1:1: rfm.r is a number, compared with a boolean"]),
    ("journey.channels CONTAINS 3", &["1:1: journey.channels is a list of channels, compared with a number"]),
    (
        "journey.channels = \"web\"",
        &["1:1: \"=\" does not apply to journey.channels (a list of channels): use CONTAINS"],
    ),
    ("profile.persona < \"b\"", &["1:1: \"<\" does not apply to profile.persona (text)"]),
    ("profile.persona CONTAINS \"x\"", &["1:1: CONTAINS does not apply to profile.persona (text)"]),
    ("rfm.r CONTAINS 3", &["1:1: CONTAINS does not apply to rfm.r (a number)"]),
    ("consent.email IN [true]", &["1:1: IN does not apply to consent.email (a boolean)"]),
    ("consent.email BETWEEN true AND false", &["1:1: BETWEEN does not apply to consent.email (a boolean)"]),
    (
        "profile.attributes.vip",
        &["1:1: profile.attributes.vip alone is not a condition: write profile.attributes.vip = true"],
    ),
    // ">" at 24, "true" at 26.
    ("profile.attributes.vip > true", &["1:26: \">\" does not apply to a boolean"]),
    // "b" at 39: 23 + " BETWEEN " (9) + "1" (1) + " AND " (5) = 38, then 39.
    ("profile.attributes.tier BETWEEN 1 AND \"b\"", &["1:39: values of one type only: a string after a number"]),
    // One message for a list of the wrong type, not one per value.
    ("rfm.r IN [\"a\", \"b\"]", &["1:1: rfm.r is a number, compared with a string"]),
    ("rfm.r IN [1, \"a\", 3]", &["1:14: values of one type only: a string after a number"]),
    // Closed values: the message sits on the literal.
    ("profile.lifecycle = \"lsot\"", &["1:21: profile.lifecycle has no value \"lsot\" — did you mean \"lost\"?"]),
    ("rfm.segment = \"champion\"", &["1:15: rfm.segment has no value \"champion\" — did you mean \"champions\"?"]),
    (
        "survey.nps_category != \"detracter\"",
        &["1:24: survey.nps_category has no value \"detracter\" — did you mean \"detractor\"?"],
    ),
    (
        "digital.category = \"digital\"",
        &[
            "1:20: digital.category has no value \"digital\"; its values: traditional, hybrid, connected, digital_native",
        ],
    ),
    (
        "journey.channels CONTAINS \"stroe\" and journey.last_channel in [\"web\", \"xyz\"]",
        &[
            "1:27: journey.channels has no value \"stroe\" — did you mean \"store\"?",
            "1:71: journey.last_channel has no value \"xyz\"; its values: web, mobile_app, email, sms, chat, chatbot, social, kiosk, store, phone, mail, field_agent",
        ],
    ),
    (
        "profile.lifecycle = \"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\"",
        &[
            "1:21: profile.lifecycle has no value \"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy…; its values: prospect, lost, at_risk, reactivated, active",
        ],
    ),
    // Syntax: what was expected, and what was found.
    ("rfm.r > 1 AND\nrfm.f =", &["2:8: expected a value after \"=\", found end of rule"]),
    ("rfm.r == 1", &["1:8: expected a value after \"=\", found \"=\""]),
    ("", &["1:1: expected a field, found end of rule"]),
    ("AND rfm.r = 1", &["1:1: expected a field, found AND"]),
    ("rfm.r = 1 OR OR rfm.f = 2", &["1:14: expected a field, found OR"]),
    ("\"lost\" = profile.lifecycle", &["1:1: expected a field, found \"lost\""]),
    ("rfm.r", &["1:6: expected an operator after rfm.r, found end of rule"]),
    ("profile.lifecycle AND consent.sms", &["1:19: expected an operator after profile.lifecycle, found AND"]),
    ("rfm.r NOT IN [1]", &["1:7: expected an operator after rfm.r (NOT goes before the condition), found NOT"]),
    ("EXISTS rfm.r", &["1:1: EXISTS follows its field: write rfm.r EXISTS"]),
    ("EXISTS", &["1:1: EXISTS follows its field: write <field> EXISTS"]),
    ("rfm.r = 1 rfm.f = 2", &["1:11: expected AND or OR after a condition, found rfm.f"]),
    ("rfm.r = 1 ) AND rfm.f = 2", &["1:11: unmatched \")\""]),
    ("(rfm.r = 1", &["1:11: expected \")\" to close the \"(\" at 1:1, found end of rule"]),
    ("(rfm.r = 1 rfm.f = 2)", &["1:12: expected AND, OR or \")\" after a condition, found rfm.f"]),
    // One error per place: the missing field, not also the missing ")".
    ("rfm.r = 1 AND (", &["1:16: expected a field, found end of rule"]),
    ("rfm.r IN 1, 2", &["1:10: expected \"[\" after IN, found 1"]),
    ("rfm.r IN [1 2]", &["1:13: expected \",\" or \"]\" in the list, found 2"]),
    ("rfm.r IN [1,", &["1:13: expected a value after \",\", found end of rule"]),
    ("rfm.r IN []", &["1:11: IN needs at least one value"]),
    ("rfm.r BETWEEN AND 5", &["1:15: expected a value after BETWEEN, found AND"]),
    ("rfm.r BETWEEN 1 AND", &["1:20: expected a value after BETWEEN … AND, found end of rule"]),
    (
        "rfm.r BETWEEN 1 OR 2",
        &["1:17: expected AND between the ends of BETWEEN, found OR", "1:20: expected a field, found 2"],
    ),
    // Lexical.
    ("rfm.r = 1.", &["1:11: expected a digit after \"1.\", found end of rule"]),
    ("rfm.r = 1. AND x = 2", &["1:11: expected a digit after \"1.\", found a space", "1:16: unknown field x"]),
    ("rfm.r = \"a\\nb\"", &["1:11: expected \\\" or \\\\ after a backslash, found \"n\""]),
    (
        "profile.persona = \"abc\nAND rfm.r = 1",
        &["1:23: expected \" to close the string opened at 1:19, found end of line"],
    ),
    ("rfm.r && rfm.f", &["1:7: unexpected \"&&\" — write AND"]),
    ("rfm.r = 1 # comment", &["1:11: unexpected \"#\"", "1:13: expected AND or OR after a condition, found comment"]),
    // Several errors in one pass, recovering at AND / OR / ")".
    (
        "rfm.x = 1 OR (profile.lifecycle = \"lsot\" AND rfm.r >) OR consent.emial",
        &[
            "1:1: unknown field rfm.x — did you mean rfm.r?",
            "1:35: profile.lifecycle has no value \"lsot\" — did you mean \"lost\"?",
            "1:53: expected a value after \">\", found \")\"",
            "1:58: unknown consent purpose consent.emial — did you mean consent.email?",
        ],
    ),
];

#[test]
fn refused_rules_report_every_error_exactly() {
    assert!(REFUSED.len() >= 30);
    let mut wrong = Vec::new();
    for (rule, expected) in REFUSED {
        let got = messages(rule);
        if got != *expected {
            wrong.push(format!("{rule:?}\n  expected {expected:#?}\n  got      {got:#?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// (rule, canonical form, fields read in order of first use).
const ACCEPTED: &[(&str, &str, &[&str])] = &[
    (
        "profile.lifecycle = \"lost\" AND rfm.monetary >= 500 AND consent.email",
        "profile.lifecycle = \"lost\" AND rfm.monetary >= 500 AND consent.email",
        &["profile.lifecycle", "rfm.monetary", "consent.email"],
    ),
    (
        "digital.category IN [\"traditional\", \"hybrid\"] OR survey.nps_category = \"detractor\"",
        "digital.category IN [\"traditional\", \"hybrid\"] OR survey.nps_category = \"detractor\"",
        &["digital.category", "survey.nps_category"],
    ),
    // NOT binds tighter than AND: its parentheses go.
    (
        "NOT (journey.channels CONTAINS \"store\") AND journey.days_since_last_touch BETWEEN 30 AND 90",
        "NOT journey.channels CONTAINS \"store\" AND journey.days_since_last_touch BETWEEN 30 AND 90",
        &["journey.channels", "journey.days_since_last_touch"],
    ),
    // Keywords in any case; OR groups flatten, AND groups flatten.
    (
        "((rfm.r > 1 or rfm.f > 2) or rfm.m < 3) and (rfm.r = 1 and (rfm.f = 2))",
        "(rfm.r > 1 OR rfm.f > 2 OR rfm.m < 3) AND rfm.r = 1 AND rfm.f = 2",
        &["rfm.r", "rfm.f", "rfm.m"],
    ),
    (
        "not not consent.post or (consent.push and (consent.phone or consent.survey))",
        "NOT NOT consent.post OR consent.push AND (consent.phone OR consent.survey)",
        &["consent.post", "consent.push", "consent.phone", "consent.survey"],
    ),
    ("NOT (rfm.r = 1 OR rfm.f = 1)", "NOT (rfm.r = 1 OR rfm.f = 1)", &["rfm.r", "rfm.f"]),
    // Numbers are canonical decimals: -1.50 → -1.5, 007 → 7, -0 → 0.
    (
        "rfm.r = -1.50 AND rfm.m >= 007 AND rfm.f != -0",
        "rfm.r = -1.5 AND rfm.m >= 7 AND rfm.f != 0",
        &["rfm.r", "rfm.m", "rfm.f"],
    ),
    (
        "profile.persona = \"say \\\"hi\\\" \\\\o/\" OR profile.attributes.a-b.c EXISTS",
        "profile.persona = \"say \\\"hi\\\" \\\\o/\" OR profile.attributes.a-b.c EXISTS",
        &["profile.persona", "profile.attributes.a-b.c"],
    ),
    (
        "digital.index EXISTS and not digital.index between 0 and 24",
        "digital.index EXISTS AND NOT digital.index BETWEEN 0 AND 24",
        &["digital.index"],
    ),
    // `= true` on a boolean field is the field alone.
    (
        "consent.email = TRUE AND consent.sms = false AND consent.loyalty_club",
        "consent.email AND consent.sms = false AND consent.loyalty_club",
        &["consent.email", "consent.sms", "consent.loyalty_club"],
    ),
    // Attributes take any literal; their case is kept.
    (
        "profile.attributes.VIP = true AND profile.attributes.tier IN [\"gold\", \"silver\"] AND profile.attributes.age BETWEEN 18 AND 30.5",
        "profile.attributes.VIP = true AND profile.attributes.tier IN [\"gold\", \"silver\"] AND profile.attributes.age BETWEEN 18 AND 30.5",
        &["profile.attributes.VIP", "profile.attributes.tier", "profile.attributes.age"],
    ),
    // Out of range is legal, merely empty; so is BETWEEN high AND low.
    (
        "rfm.r > 5 OR survey.last_nps BETWEEN 10 AND 0",
        "rfm.r > 5 OR survey.last_nps BETWEEN 10 AND 0",
        &["rfm.r", "survey.last_nps"],
    ),
    (
        "journey.channels CONTAINS \"web\"\n  AND journey.channels EXISTS\n  AND journey.last_channel != \"field_agent\"",
        "journey.channels CONTAINS \"web\" AND journey.channels EXISTS AND journey.last_channel != \"field_agent\"",
        &["journey.channels", "journey.last_channel"],
    ),
    (
        "survey.last_csat <= 2 or survey.last_ces < 3 or survey.responses > 0 or journey.touchpoints_90d >= 10 or profile.days_since_created < 30 or rfm.recency_days > 90 or rfm.frequency = 1 or rfm.segment = \"at_risk\"",
        "survey.last_csat <= 2 OR survey.last_ces < 3 OR survey.responses > 0 OR journey.touchpoints_90d >= 10 OR profile.days_since_created < 30 OR rfm.recency_days > 90 OR rfm.frequency = 1 OR rfm.segment = \"at_risk\"",
        &[
            "survey.last_csat",
            "survey.last_ces",
            "survey.responses",
            "journey.touchpoints_90d",
            "profile.days_since_created",
            "rfm.recency_days",
            "rfm.frequency",
            "rfm.segment",
        ],
    ),
];

#[test]
fn accepted_rules_print_canonically_and_list_their_fields() {
    for (rule, canonical, fields) in ACCEPTED {
        let checked = validate(rule, &catalog()).unwrap_or_else(|e| panic!("{rule:?}: {e:?}"));
        assert_eq!(checked.to_string(), *canonical, "{rule:?}");
        let read: Vec<String> = checked.fields().iter().map(ToString::to_string).collect();
        assert_eq!(read, *fields, "{rule:?}");
        // The canonical form is a fixed point.
        let again = validate(canonical, &catalog()).unwrap_or_else(|e| panic!("{canonical:?}: {e:?}"));
        assert_eq!(again, checked, "{canonical:?}");
    }
}

#[test]
fn a_syntax_error_says_what_was_expected() {
    let errors = validate("rfm.r > 1 AND\nrfm.f =", &catalog()).err().unwrap_or_default();
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].line, errors[0].column), (2, 8));
    assert_eq!(errors[0].expected.as_deref(), Some("a value"));
    let errors = validate("rfm.r = \"x\"", &catalog()).err().unwrap_or_default();
    assert_eq!(errors[0].expected, None, "a type error expects nothing");
}

#[test]
fn custom_purposes_come_from_the_catalog() {
    let errors = validate("consent.loyalty_club", &Catalog::default()).err().unwrap_or_default();
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["1:1: unknown consent purpose consent.loyalty_club"]);
}
