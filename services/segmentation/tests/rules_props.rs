//! Properties of the rule language: no input makes the parser panic or
//! dawdle, and every valid rule survives Display → validate unchanged.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use cx_segmentation::rules::{
    CHANNELS, Catalog, CmpOp, Cond, DIGITAL_CATEGORIES, Expr, Field, LIFECYCLE_STAGES, NPS_CATEGORIES, Number, Purpose,
    RFM_SEGMENTS, Test, Value, validate,
};
use proptest::prelude::*;
use proptest::sample::select;

fn catalog() -> Catalog {
    Catalog { custom_purposes: vec!["loyalty_club".into(), "partner_offers".into()] }
}

/// Generous for a debug build on a loaded machine; a quadratic path on a
/// 10,000-byte rule would take far longer.
const QUICK: Duration = Duration::from_secs(2);

fn validate_quickly(source: &str) {
    let start = Instant::now();
    let outcome = validate(source, &catalog());
    assert!(start.elapsed() < QUICK, "{:?} took {:?}", source, start.elapsed());
    if let Err(errors) = outcome {
        assert!(!errors.is_empty() && errors.len() <= 50);
        assert!(errors.windows(2).all(|w| (w[0].line, w[0].column) <= (w[1].line, w[1].column)));
    }
}

/// Pieces of the language, so that random rules reach deep into the parser.
const PIECES: &[&str] = &[
    "(",
    ")",
    "NOT",
    "not",
    "AND",
    "OR",
    "IN",
    "BETWEEN",
    "CONTAINS",
    "EXISTS",
    "true",
    "FALSE",
    "rfm.r",
    "rfm.monetary",
    "consent.email",
    "consent.loyalty_club",
    "profile.lifecycle",
    "profile.attributes.vip",
    "journey.channels",
    "rfm.monetry",
    "=",
    "!=",
    "<",
    ">=",
    "==",
    "1",
    "-2.5",
    "1.",
    "\"lost\"",
    "\"web\"",
    "\"",
    "\\",
    "[",
    "]",
    ",",
    "\n",
    "日",
    "#",
    " ",
];

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(select(PIECES), 0..60).prop_map(|pieces| pieces.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn any_string_is_answered_quickly(source in any::<String>()) {
        validate_quickly(&source);
    }

    #[test]
    fn any_bytes_are_answered_quickly(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        validate_quickly(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn any_soup_of_tokens_is_answered_quickly(source in soup()) {
        validate_quickly(&source);
    }
}

#[test]
fn hostile_rules_of_10000_bytes_are_answered_quickly() {
    let hostile = [
        "(".repeat(10_000),
        "NOT ".repeat(2_500),
        "\"".repeat(10_000),
        "a".repeat(10_000),
        format!("profile.lifecycle = \"{}\"", "x".repeat(9_970)),
        format!("rfm.r IN [{}1]", "1,".repeat(4_990)),
        "rfm.r = 1 AND ".repeat(714),
        ") ".repeat(5_000),
        "@".repeat(10_000),
        "= ".repeat(5_000),
        "rfm.r BETWEEN ".repeat(714),
        "\n".repeat(10_000),
    ];
    for source in &hostile {
        assert!(source.len() <= 10_000, "{}", source.len());
        validate_quickly(source);
    }
}

// Valid trees, built with the flattening constructors: the canonical shape.

fn number() -> impl Strategy<Value = Number> {
    (-100_000i64..100_000, prop::option::of(0u32..1_000)).prop_map(|(int, frac)| {
        let text = match frac {
            Some(frac) => format!("{int}.{frac:03}"),
            None => int.to_string(),
        };
        Number::parse(&text).unwrap()
    })
}

/// Any text a string literal can hold: everything but line breaks.
fn text() -> impl Strategy<Value = String> + Clone {
    "[^\r\n]{0,12}"
}

fn op() -> impl Strategy<Value = CmpOp> {
    select(vec![CmpOp::Eq, CmpOp::Ne, CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge])
}

fn equality() -> impl Strategy<Value = CmpOp> {
    select(vec![CmpOp::Eq, CmpOp::Ne])
}

fn number_test() -> impl Strategy<Value = Test> {
    prop_oneof![
        (op(), number()).prop_map(|(op, n)| Test::Cmp(op, Value::Number(n))),
        prop::collection::vec(number().prop_map(Value::Number), 1..4).prop_map(Test::In),
        (number(), number()).prop_map(|(a, b)| Test::Between(Value::Number(a), Value::Number(b))),
        Just(Test::Exists),
    ]
}

fn text_test(values: impl Strategy<Value = String> + Clone) -> impl Strategy<Value = Test> {
    prop_oneof![
        (equality(), values.clone()).prop_map(|(op, v)| Test::Cmp(op, Value::Text(v))),
        prop::collection::vec(values.prop_map(Value::Text), 1..4).prop_map(Test::In),
        Just(Test::Exists),
    ]
}

fn closed(values: &'static [&'static str]) -> impl Strategy<Value = String> + Clone {
    select(values).prop_map(str::to_owned)
}

fn attribute_test() -> impl Strategy<Value = Test> {
    prop_oneof![
        number_test(),
        text_test(text()),
        (op(), text()).prop_map(|(op, t)| Test::Cmp(op, Value::Text(t))),
        (text(), text()).prop_map(|(a, b)| Test::Between(Value::Text(a), Value::Text(b))),
        (equality(), any::<bool>()).prop_map(|(op, b)| Test::Cmp(op, Value::Bool(b))),
    ]
}

fn purpose() -> impl Strategy<Value = Purpose> {
    let mut all = Purpose::standard().to_vec();
    all.extend(catalog().custom_purposes.into_iter().map(Purpose::Custom));
    select(all)
}

fn cond() -> impl Strategy<Value = Cond> {
    let numbers: Vec<Field> =
        Field::fixed().filter(|f| f.field_type() == cx_segmentation::rules::FieldType::Number).cloned().collect();
    let closed_fields: [(Field, &'static [&'static str]); 5] = [
        (Field::Lifecycle, LIFECYCLE_STAGES),
        (Field::DigitalCategory, DIGITAL_CATEGORIES),
        (Field::RfmSegment, RFM_SEGMENTS),
        (Field::JourneyLastChannel, CHANNELS),
        (Field::SurveyNpsCategory, NPS_CATEGORIES),
    ];
    let closed_conds: Vec<BoxedStrategy<Cond>> = closed_fields
        .into_iter()
        .map(|(field, values)| {
            text_test(closed(values)).prop_map(move |test| Cond { field: field.clone(), test }).boxed()
        })
        .collect();
    prop_oneof![
        (select(numbers), number_test()).prop_map(|(field, test)| Cond { field, test }),
        prop::strategy::Union::new(closed_conds),
        text_test(text()).prop_map(|test| Cond { field: Field::Persona, test }),
        (
            purpose(),
            prop_oneof![
                (equality(), any::<bool>()).prop_map(|(op, b)| Test::Cmp(op, Value::Bool(b))),
                Just(Test::Exists),
            ]
        )
            .prop_map(|(p, test)| Cond { field: Field::Consent(p), test }),
        prop_oneof![closed(CHANNELS).prop_map(|c| Test::Contains(Value::Text(c))), Just(Test::Exists),]
            .prop_map(|test| Cond { field: Field::JourneyChannels, test }),
        ("[a-zA-Z][a-zA-Z0-9_.-]{0,10}", attribute_test())
            .prop_map(|(key, test)| Cond { field: Field::Attribute(key), test }),
    ]
}

fn expr() -> impl Strategy<Value = Expr> {
    cond().prop_map(Expr::Cond).prop_recursive(6, 48, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::or),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::and),
            inner.prop_map(Expr::negate),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn display_then_validate_gives_back_the_tree(tree in expr()) {
        let printed = tree.to_string();
        let checked = validate(&printed, &catalog())
            .unwrap_or_else(|e| panic!("{printed:?}: {e:?}"));
        prop_assert_eq!(checked.expr(), &tree, "{}", printed);
        prop_assert_eq!(checked.to_string(), printed);
    }
}
