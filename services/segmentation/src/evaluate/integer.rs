//! Exact tests of an integer column against a decimal literal.
//!
//! A literal is scaled (10^6 for micros) and replaced by the integers around
//! it, so `rfm.r < 2.5` is `r <= 2` and `rfm.monetary >= 1.0000005` is
//! `micros >= 1000001`, with no float in between. A day count `today − col`
//! becomes a range on `col` itself, which an index can serve.

use crate::rules::{CmpOp, Number};

/// How the field's value is read from its integer column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// The column is the value.
    Plain,
    /// The column holds millionths of the value (`rfm_monetary_micros`).
    Micros,
    /// The value is `today − column` (a day number column).
    DaysSince(i32),
}

/// A test on the column, ends included, every bound within `i64`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pred {
    /// No value satisfies it.
    Never,
    /// Any value satisfies it.
    Present,
    Cmp(CmpOp, i64),
    Between(i64, i64),
    In(Vec<i64>),
}

/// Literals beyond this magnitude behave as this: far outside `i64`, so
/// still outside it after a day number is subtracted.
const SATURATE: i128 = 10_i128.pow(30);

/// The integers around `n × 10^shift`: (floor, ceil), equal when exact.
fn around(n: &Number, shift: u32) -> (i128, i128) {
    let text = n.as_str();
    let (negative, body) = text.strip_prefix('-').map_or((false, text), |rest| (true, rest));
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let mut magnitude: i128 = 0;
    let mut push = |digit: u8| {
        magnitude = (magnitude * 10 + i128::from(digit.wrapping_sub(b'0') % 10)).min(SATURATE);
    };
    int.bytes().for_each(&mut push);
    // The first `shift` fractional digits join the integer part, padded.
    let shift = shift as usize;
    (0..shift).for_each(|i| push(frac.as_bytes().get(i).copied().unwrap_or(b'0')));
    let rest = frac.get(shift..).unwrap_or("");
    let fraction = i128::from(rest.bytes().any(|b| b != b'0'));
    if negative { (-magnitude - fraction, -magnitude) } else { (magnitude, magnitude + fraction) }
}

/// The exact value, when the literal scales to an integer.
fn exact(n: &Number, shift: u32) -> Option<i128> {
    let (floor, ceil) = around(n, shift);
    (floor == ceil).then_some(floor)
}

fn shift(scale: Scale) -> u32 {
    if scale == Scale::Micros { 6 } else { 0 }
}

/// An interval of the value, ends included; `None` is unbounded.
type Range = (Option<i128>, Option<i128>);

/// `value op n`.
pub fn cmp(op: CmpOp, n: &Number, scale: Scale) -> Pred {
    let (floor, ceil) = around(n, shift(scale));
    let range = match op {
        CmpOp::Eq => match exact(n, shift(scale)) {
            Some(v) => (Some(v), Some(v)),
            None => return Pred::Never,
        },
        CmpOp::Ne => {
            return match exact(n, shift(scale)) {
                Some(v) => match i64::try_from(on_column(v, scale)) {
                    Ok(v) => Pred::Cmp(CmpOp::Ne, v),
                    Err(_) => Pred::Present,
                },
                None => Pred::Present,
            };
        }
        CmpOp::Lt => (None, Some(ceil - 1)),
        CmpOp::Le => (None, Some(floor)),
        CmpOp::Gt => (Some(floor + 1), None),
        CmpOp::Ge => (Some(ceil), None),
    };
    range_pred(range, scale)
}

/// `low <= value <= high`.
pub fn between(low: &Number, high: &Number, scale: Scale) -> Pred {
    let (_, low) = around(low, shift(scale));
    let (high, _) = around(high, shift(scale));
    range_pred((Some(low), Some(high)), scale)
}

/// `value IN [ns]`: only the literals that scale to an integer can match.
pub fn one_of<'a>(ns: impl IntoIterator<Item = &'a Number>, scale: Scale) -> Pred {
    let values: Vec<i64> = ns
        .into_iter()
        .filter_map(|n| exact(n, shift(scale)))
        .filter_map(|v| i64::try_from(on_column(v, scale)).ok())
        .collect();
    if values.is_empty() { Pred::Never } else { Pred::In(values) }
}

/// The column value for the field value `v`.
fn on_column(v: i128, scale: Scale) -> i128 {
    match scale {
        Scale::DaysSince(today) => i128::from(today) - v,
        Scale::Plain | Scale::Micros => v,
    }
}

/// The value's range as a test on the column.
fn range_pred((low, high): Range, scale: Scale) -> Pred {
    // today − col ∈ [low, high] ⇔ col ∈ [today − high, today − low].
    let (low, high) = match scale {
        Scale::DaysSince(_) => (high.map(|h| on_column(h, scale)), low.map(|l| on_column(l, scale))),
        Scale::Plain | Scale::Micros => (low, high),
    };
    // Clamped to i64: a bound past the column's range is no bound or no match.
    let low = match low {
        Some(l) if l > i128::from(i64::MAX) => return Pred::Never,
        Some(l) => i64::try_from(l).ok(),
        None => None,
    };
    let high = match high {
        Some(h) if h < i128::from(i64::MIN) => return Pred::Never,
        Some(h) => i64::try_from(h).ok(),
        None => None,
    };
    match (low, high) {
        (None, None) => Pred::Present,
        (Some(l), None) => Pred::Cmp(CmpOp::Ge, l),
        (None, Some(h)) => Pred::Cmp(CmpOp::Le, h),
        (Some(l), Some(h)) if l > h => Pred::Never,
        (Some(l), Some(h)) if l == h => Pred::Cmp(CmpOp::Eq, l),
        (Some(l), Some(h)) => Pred::Between(l, h),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str) -> Number {
        Number::parse(text).unwrap_or_else(|| Number::parse("0").expect("0 parses"))
    }

    #[test]
    fn a_fraction_rounds_the_bound_inwards() {
        use CmpOp::*;
        // r < 2.5 ⇔ r ≤ 2; r ≤ 2.5 ⇔ r ≤ 2; r > 2.5 ⇔ r ≥ 3; r ≥ 2.5 ⇔ r ≥ 3.
        assert_eq!(cmp(Lt, &n("2.5"), Scale::Plain), Pred::Cmp(Le, 2));
        assert_eq!(cmp(Le, &n("2.5"), Scale::Plain), Pred::Cmp(Le, 2));
        assert_eq!(cmp(Gt, &n("2.5"), Scale::Plain), Pred::Cmp(Ge, 3));
        assert_eq!(cmp(Ge, &n("2.5"), Scale::Plain), Pred::Cmp(Ge, 3));
        // Whole: r < 3 ⇔ r ≤ 2; r > 3 ⇔ r ≥ 4.
        assert_eq!(cmp(Lt, &n("3"), Scale::Plain), Pred::Cmp(Le, 2));
        assert_eq!(cmp(Gt, &n("3"), Scale::Plain), Pred::Cmp(Ge, 4));
        // Negative: r > −2.5 ⇔ r ≥ −2 (floor −3, + 1); r < −2.5 ⇔ r ≤ −3.
        assert_eq!(cmp(Gt, &n("-2.5"), Scale::Plain), Pred::Cmp(Ge, -2));
        assert_eq!(cmp(Lt, &n("-2.5"), Scale::Plain), Pred::Cmp(Le, -3));
        // = 2.5 matches nobody; != 2.5 every value there is.
        assert_eq!(cmp(Eq, &n("2.5"), Scale::Plain), Pred::Never);
        assert_eq!(cmp(Ne, &n("2.5"), Scale::Plain), Pred::Present);
        assert_eq!(cmp(Ne, &n("2"), Scale::Plain), Pred::Cmp(Ne, 2));
    }

    #[test]
    fn micros_compare_exactly_past_six_decimals() {
        use CmpOp::*;
        // 1.0000005 × 10^6 = 1,000,000.5: ≥ ⇔ ≥ 1,000,001; ≤ ⇔ ≤ 1,000,000.
        assert_eq!(cmp(Ge, &n("1.0000005"), Scale::Micros), Pred::Cmp(Ge, 1_000_001));
        assert_eq!(cmp(Le, &n("1.0000005"), Scale::Micros), Pred::Cmp(Le, 1_000_000));
        assert_eq!(cmp(Eq, &n("500"), Scale::Micros), Pred::Cmp(Eq, 500_000_000));
        assert_eq!(cmp(Eq, &n("0.1"), Scale::Micros), Pred::Cmp(Eq, 100_000));
        // 0.0000001 × 10^6 = 0.1: = matches nobody, > is ≥ 1.
        assert_eq!(cmp(Eq, &n("0.0000001"), Scale::Micros), Pred::Never);
        assert_eq!(cmp(Gt, &n("0.0000001"), Scale::Micros), Pred::Cmp(Ge, 1));
        assert_eq!(between(&n("1.5"), &n("2.0000019"), Scale::Micros), Pred::Between(1_500_000, 2_000_001));
    }

    #[test]
    fn days_since_becomes_a_range_on_the_day() {
        use CmpOp::*;
        let days = Scale::DaysSince(20_000);
        // 20,000 − d ∈ [30, 90] ⇔ d ∈ [19,910, 19,970].
        assert_eq!(between(&n("30"), &n("90"), days), Pred::Between(19_910, 19_970));
        // 20,000 − d ≥ 365 ⇔ d ≤ 19,635; 20,000 − d < 60.5 ⇔ ≤ 60 ⇔ d ≥ 19,940.
        assert_eq!(cmp(Ge, &n("365"), days), Pred::Cmp(Le, 19_635));
        assert_eq!(cmp(Lt, &n("60.5"), days), Pred::Cmp(Ge, 19_940));
        assert_eq!(cmp(Eq, &n("7"), days), Pred::Cmp(Eq, 19_993));
        assert_eq!(cmp(Ne, &n("7"), days), Pred::Cmp(Ne, 19_993));
        assert_eq!(one_of([&n("1"), &n("1.5"), &n("2")], days), Pred::In(vec![19_999, 19_998]));
    }

    #[test]
    fn bounds_past_i64_are_no_bound_or_no_match() {
        use CmpOp::*;
        let huge = n("99999999999999999999999999999999999999999");
        assert_eq!(cmp(Lt, &huge, Scale::Plain), Pred::Present);
        assert_eq!(cmp(Gt, &huge, Scale::Plain), Pred::Never);
        assert_eq!(cmp(Eq, &huge, Scale::Micros), Pred::Never);
        assert_eq!(cmp(Ne, &huge, Scale::Plain), Pred::Present);
        let tiny = n("-99999999999999999999999999999999999999999");
        assert_eq!(cmp(Gt, &tiny, Scale::Plain), Pred::Present);
        assert_eq!(cmp(Lt, &tiny, Scale::Plain), Pred::Never);
        // A huge number of days ago: today − d ≥ huge ⇔ d ≤ −huge: nobody.
        assert_eq!(cmp(Ge, &huge, Scale::DaysSince(20_000)), Pred::Never);
        assert_eq!(one_of([&huge], Scale::Plain), Pred::Never);
        // i64::MAX itself is a bound.
        assert_eq!(cmp(Ge, &n("9223372036854775807"), Scale::Plain), Pred::Cmp(Ge, i64::MAX));
        // BETWEEN 90 AND 30 matches nobody.
        assert_eq!(between(&n("90"), &n("30"), Scale::Plain), Pred::Never);
    }
}
