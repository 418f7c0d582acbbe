//! The segment rule language (docs/DOMAIN.md §8.4, §8.5): a rule is parsed
//! and type-checked into a [`Checked`] rule, or refused with every error
//! found, each with its line and column.
//!
//! ```
//! use cx_segmentation::rules::{Catalog, validate};
//! let rule = validate("rfm.r >= 4 and consent.email", &Catalog::default()).unwrap();
//! assert_eq!(rule.to_string(), "rfm.r >= 4 AND consent.email");
//! ```

mod ast;
mod check;
mod error;
mod fields;
mod lexer;
mod parser;
mod suggest;

use std::fmt;

pub use ast::{CmpOp, Cond, Expr, Number, Test, Value};
pub use error::{Pos, QUOTE_CHARS, RuleError};
pub use fields::{
    CHANNELS, Catalog, DIGITAL_CATEGORIES, Field, FieldType, LIFECYCLE_STAGES, NPS_CATEGORIES, Purpose, RFM_SEGMENTS,
};

/// Longest rule, in bytes; a longer one is refused unread.
pub const MAX_BYTES: usize = 10_000;
/// Deepest nesting of parentheses and NOT.
pub const MAX_DEPTH: usize = 64;
/// Most conditions in a rule.
pub const MAX_CONDITIONS: usize = 1_000;
/// Most values in an IN list.
pub const MAX_LIST: usize = 1_000;
/// Most errors reported for one rule.
pub const MAX_ERRORS: usize = 50;

/// A rule that parsed and type-checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    expr: Expr,
    fields: Vec<Field>,
}

impl Checked {
    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// The distinct fields the rule reads, in order of first use.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }
}

impl fmt::Display for Checked {
    /// The canonical rule: keywords upper case, the fewest parentheses.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.expr.fmt(f)
    }
}

/// Parses and type-checks `source`. On failure, every error found (at most
/// [`MAX_ERRORS`]), in the order of the source.
pub fn validate(source: &str, catalog: &Catalog) -> Result<Checked, Vec<RuleError>> {
    if source.len() > MAX_BYTES {
        return Err(vec![RuleError::new(
            Pos::START,
            format!("the rule has {} bytes; at most {MAX_BYTES}", source.len()),
        )]);
    }
    unbounded(source, catalog)
}

/// [`validate`] without the size limit.
fn unbounded(source: &str, catalog: &Catalog) -> Result<Checked, Vec<RuleError>> {
    let (tokens, lex_errors) = lexer::lex(source);
    let mut parser = parser::Parser::new(tokens, lex_errors, catalog);
    let expr = parser.rule();
    let mut errors = parser.errors;
    match expr {
        Some(expr) if errors.is_empty() => {
            let mut fields: Vec<Field> = Vec::new();
            expr.for_each_cond(&mut |cond| {
                if !fields.contains(&cond.field) {
                    fields.push(cond.field.clone());
                }
            });
            Ok(Checked { expr, fields })
        }
        _ => {
            // Lexical errors were found first; show all in source order.
            errors.sort_by_key(|e| (e.line, e.column));
            errors.truncate(MAX_ERRORS);
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_1000_conditions() {
        // 1,001 conditions: 7 + 10 × 1,000 = 10,007 bytes, past the size
        // limit, hence the unbounded entry. Repetition k of "OR rfm.r=1"
        // starts at byte 7 + 10(k − 1), its field 3 bytes on; the 1,001st
        // condition is k = 1,000: byte 7 + 9,990 + 3 = 10,000, column 10,001.
        let rule = format!("rfm.r=1{}", "OR rfm.r=1".repeat(1_000));
        let errors = unbounded(&rule, &Catalog::default()).err().unwrap_or_default();
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["1:10001: more than 1000 conditions"]);
    }
}
