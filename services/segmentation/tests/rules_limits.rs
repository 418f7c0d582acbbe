//! Hostile rules meet the limits of docs/DOMAIN.md §8.4: size, depth,
//! conditions, list length, error count.

use cx_segmentation::rules::{Catalog, validate};

fn messages(rule: &str) -> Vec<String> {
    match validate(rule, &Catalog::default()) {
        Ok(checked) => vec![format!("accepted: {checked}")],
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn a_rule_over_10000_bytes_is_refused_unread() {
    // 10,000 bytes pass the size check ("rfm.r = 1" + 9,991 spaces)…
    let at_limit = format!("rfm.r = 1{}", " ".repeat(9_991));
    assert_eq!(messages(&at_limit), ["accepted: rfm.r = 1"]);
    // …10,001 do not, whatever they hold.
    let over = format!("{at_limit} ");
    assert_eq!(messages(&over), ["1:1: the rule has 10001 bytes; at most 10000"]);
}

#[test]
fn nesting_stops_at_64_without_overflowing_the_stack() {
    let nested = |n: usize| format!("{}rfm.r = 1{}", "(".repeat(n), ")".repeat(n));
    assert_eq!(messages(&nested(64)), ["accepted: rfm.r = 1"]);
    // The 65th "(" is column 65.
    assert_eq!(messages(&nested(65)), ["1:65: nested more than 64 deep (parentheses and NOT)"]);
    // 64 NOTs then one more: "NOT " is 4 characters, so the 65th starts at 4 × 64 + 1 = 257.
    let nots = format!("{}consent.email", "NOT ".repeat(65));
    assert_eq!(messages(&nots), ["1:257: nested more than 64 deep (parentheses and NOT)"]);
    // 5,000 "(" fit in 10,000 bytes and still give one error.
    assert_eq!(messages(&"(".repeat(5_000)).len(), 1);
}

#[test]
fn a_thousand_conditions_fit_in_the_byte_limit() {
    // "rfm.r=1" then "OR rfm.r=1" ×999: 7 + 10 × 999 = 9,997 bytes, 1,000
    // conditions. A 1,001st needs 10 more bytes, past 10,000: for valid
    // rules the size limit comes first (the condition limit is unit-tested).
    let rule = format!("rfm.r=1{}", "OR rfm.r=1".repeat(999));
    assert_eq!(rule.len(), 9_997);
    assert!(validate(&rule, &Catalog::default()).is_ok());
}

#[test]
fn a_list_holds_1_to_1000_values() {
    let list = |n: usize| format!("rfm.r IN [{}]", vec!["1"; n].join(","));
    assert!(validate(&list(1_000), &Catalog::default()).is_ok());
    // "rfm.r IN [" is 10 characters; value k (1-based) is at 11 + 2(k − 1): the 1,001st at 2,011.
    assert_eq!(messages(&list(1_001)), ["1:2011: a list holds at most 1000 values"]);
}

#[test]
fn at_most_50_errors_the_first_50() {
    // 200 conditions on an unknown field, each "q = 1 AND " (10 characters).
    let rule = "q = 1 AND ".repeat(199) + "q = 1";
    let errors = messages(&rule);
    assert_eq!(errors.len(), 50);
    assert_eq!(errors[0], "1:1: unknown field q");
    // The 50th is at 1 + 10 × 49 = 491.
    assert_eq!(errors[49], "1:491: unknown field q");
}

#[test]
fn stray_characters_give_one_error_a_run() {
    assert_eq!(messages("rfm.r = 1 AND @@@@ rfm.f = 2"), ["1:15: unexpected \"@@@@\"",]);
}
