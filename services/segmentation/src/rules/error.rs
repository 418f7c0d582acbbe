//! Errors of a rule, with their place in the source.

use std::fmt;

/// A place in the rule: 1-based line and column, the column counted in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

impl Pos {
    pub(crate) const START: Pos = Pos { line: 1, column: 1 };
}

/// One thing wrong with a rule. Displays as `line:column: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub line: u32,
    pub column: u32,
    pub message: String,
    /// For a syntax error, what the parser expected there (e.g. "a value").
    pub expected: Option<String>,
}

impl RuleError {
    pub(crate) fn new(pos: Pos, message: impl Into<String>) -> Self {
        RuleError { line: pos.line, column: pos.column, message: message.into(), expected: None }
    }

    /// Whether this error is a consent purpose the catalog did not hold:
    /// one the tenant's own purposes may resolve.
    pub fn names_unknown_purpose(&self) -> bool {
        self.message.starts_with(super::fields::UNKNOWN_PURPOSE)
    }

    /// A syntax error: `expected <what> <context>, found <found>`.
    pub(crate) fn expected(pos: Pos, what: &str, context: &str, found: &str) -> Self {
        let context = if context.is_empty() { String::new() } else { format!(" {context}") };
        RuleError {
            expected: Some(what.to_owned()),
            ..RuleError::new(pos, format!("expected {what}{context}, found {found}"))
        }
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for RuleError {}

/// Longest quoted piece of the user's text in a message, in characters: a
/// hostile rule must not make its errors as long as itself.
pub const QUOTE_CHARS: usize = 40;

/// `text` cut to [`QUOTE_CHARS`] characters, the last of them an ellipsis.
pub(crate) fn shorten(text: &str) -> String {
    if text.chars().count() <= QUOTE_CHARS {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(QUOTE_CHARS - 1).collect();
    out.push('…');
    out
}
