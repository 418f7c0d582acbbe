//! Recursive descent with recovery: after an error, skip to the next AND, OR,
//! `)` or the end, and go on, so that one pass reports every error.
//!
//! ```text
//! rule    = or
//! or      = and { OR and }
//! and     = not { AND not }
//! not     = NOT not | "(" or ")" | cond
//! cond    = field [ op value | IN list | BETWEEN value AND value
//!                 | CONTAINS value | EXISTS ]
//! ```

use super::ast::{Expr, Value};
use super::check::{self, Lit, Written};
use super::error::RuleError;
use super::fields::{Catalog, FieldType, resolve};
use super::lexer::{Keyword, Kind, Token};
use super::{MAX_CONDITIONS, MAX_DEPTH, MAX_ERRORS, MAX_LIST};

pub(crate) struct Parser<'a> {
    tokens: Vec<Token>,
    at: usize,
    catalog: &'a Catalog,
    pub errors: Vec<RuleError>,
    depth: usize,
    conditions: usize,
    /// A limit was passed: stop at once, report what was found so far.
    stopped: bool,
}

impl<'a> Parser<'a> {
    /// `tokens` ends with [`Kind::End`]; `errors` are the lexer's.
    pub fn new(tokens: Vec<Token>, errors: Vec<RuleError>, catalog: &'a Catalog) -> Self {
        let stopped = errors.len() >= MAX_ERRORS;
        Parser { tokens, at: 0, catalog, errors, depth: 0, conditions: 0, stopped }
    }

    /// The whole rule; `None` when anything was reported.
    pub fn rule(&mut self) -> Option<Expr> {
        let expr = self.or();
        self.rest(false);
        expr.filter(|_| self.errors.is_empty())
    }

    fn token(&self) -> &Token {
        // The last token is End and is never stepped over.
        &self.tokens[self.at.min(self.tokens.len() - 1)]
    }

    fn kind(&self) -> &Kind {
        &self.token().kind
    }

    fn bump(&mut self) {
        if self.at + 1 < self.tokens.len() {
            self.at += 1;
        }
    }

    fn at_keyword(&self, keyword: Keyword) -> bool {
        *self.kind() == Kind::Keyword(keyword)
    }

    /// Where a condition may end: AND, OR, `)` or the end.
    fn at_boundary(&self) -> bool {
        matches!(self.kind(), Kind::Keyword(Keyword::And | Keyword::Or) | Kind::RParen | Kind::End)
    }

    fn report(&mut self, error: RuleError) {
        // One error per place: a second there would only echo the first.
        let echo = self.errors.last().is_some_and(|last| (last.line, last.column) == (error.line, error.column));
        if self.stopped || echo {
            return;
        }
        self.errors.push(error);
        if self.errors.len() >= MAX_ERRORS {
            self.stopped = true;
        }
    }

    /// `expected <what> <context>, found <the token>`, unless the token is
    /// one the lexer already reported.
    fn expected(&mut self, what: &str, context: &str) {
        if *self.kind() != Kind::Bad {
            let token = self.token();
            let error = RuleError::expected(token.pos, what, context, &found(token));
            self.report(error);
        }
    }

    /// Skips to the next place a condition may end.
    fn sync(&mut self) {
        while !self.at_boundary() {
            self.bump();
        }
    }

    /// After a complete expression, anything but the end (or the `)` of an
    /// open group) is an error; the rest is still parsed for its errors.
    fn rest(&mut self, in_group: bool) {
        loop {
            match self.kind() {
                _ if self.stopped => return,
                Kind::End => return,
                Kind::RParen if in_group => return,
                Kind::RParen => {
                    let pos = self.token().pos;
                    self.report(RuleError::new(pos, "unmatched \")\""));
                    self.bump();
                    if matches!(self.kind(), Kind::Keyword(Keyword::And | Keyword::Or)) {
                        self.bump();
                        self.or();
                    }
                }
                _ => {
                    let what = if in_group { "AND, OR or \")\"" } else { "AND or OR" };
                    self.expected(what, "after a condition");
                    let start = self.at;
                    if matches!(self.kind(), Kind::Keyword(Keyword::And | Keyword::Or)) {
                        self.bump();
                    }
                    if self.starts_condition() {
                        self.or();
                    }
                    if self.at == start {
                        self.bump();
                    }
                }
            }
        }
    }

    fn starts_condition(&self) -> bool {
        matches!(self.kind(), Kind::Word(_) | Kind::LParen | Kind::Keyword(Keyword::Not | Keyword::Exists))
    }

    fn or(&mut self) -> Option<Expr> {
        self.chain(Keyword::Or, Self::and, Expr::or)
    }

    fn and(&mut self) -> Option<Expr> {
        self.chain(Keyword::And, Self::not, Expr::and)
    }

    /// `item { joiner item }`; `None` if any item failed.
    fn chain(
        &mut self,
        joiner: Keyword,
        item: fn(&mut Self) -> Option<Expr>,
        make: fn(Vec<Expr>) -> Expr,
    ) -> Option<Expr> {
        let mut items = Vec::new();
        let mut ok = true;
        loop {
            match item(self) {
                Some(expr) => items.push(expr),
                None => ok = false,
            }
            if self.stopped || !self.at_keyword(joiner) {
                break;
            }
            self.bump();
        }
        (ok && !self.stopped).then(|| make(items))
    }

    /// Enters a `(` or a NOT; false (and stopped) past [`MAX_DEPTH`]: the
    /// recursion is bounded, whatever the rule.
    fn enter(&mut self) -> bool {
        if self.depth >= MAX_DEPTH {
            let pos = self.token().pos;
            self.report(RuleError::new(pos, format!("nested more than {MAX_DEPTH} deep (parentheses and NOT)")));
            self.stopped = true;
            return false;
        }
        self.depth += 1;
        true
    }

    fn not(&mut self) -> Option<Expr> {
        match self.kind() {
            Kind::Keyword(Keyword::Not) => {
                if !self.enter() {
                    return None;
                }
                self.bump();
                let inner = self.not();
                self.depth -= 1;
                inner.map(Expr::negate)
            }
            Kind::LParen => {
                if !self.enter() {
                    return None;
                }
                let open = self.token().pos;
                self.bump();
                let inner = self.or();
                self.rest(true);
                self.depth -= 1;
                if *self.kind() == Kind::RParen {
                    self.bump();
                    inner
                } else {
                    let context = format!("to close the \"(\" at {}:{}", open.line, open.column);
                    self.expected("\")\"", &context);
                    None
                }
            }
            _ => self.condition(),
        }
    }

    fn condition(&mut self) -> Option<Expr> {
        let token = self.token().clone();
        let name = match &token.kind {
            Kind::Word(name) => name.clone(),
            Kind::Keyword(Keyword::Exists) => {
                self.bump();
                let field = match self.kind() {
                    Kind::Word(name) => name.clone(),
                    _ => "<field>".into(),
                };
                self.report(RuleError::new(
                    token.pos,
                    format!("EXISTS follows its field: write {} EXISTS", super::error::shorten(&field)),
                ));
                self.sync();
                return None;
            }
            _ => {
                self.expected("a field", "");
                if !self.at_boundary() {
                    self.bump();
                    self.sync();
                }
                return None;
            }
        };
        self.conditions += 1;
        if self.conditions > MAX_CONDITIONS {
            self.report(RuleError::new(token.pos, format!("more than {MAX_CONDITIONS} conditions")));
            self.stopped = true;
            return None;
        }
        self.bump();
        let field =
            resolve(&name, self.catalog).map_err(|message| self.report(RuleError::new(token.pos, message))).ok();
        // A field that cannot stand alone wants an operator (attributes get
        // their own message from the checker).
        let alone =
            field.as_ref().is_none_or(|f| f.alone_is_condition() || matches!(f.field_type(), FieldType::Attribute));
        let Some(written) = self.test(&token.shown, alone) else {
            self.sync();
            return None;
        };
        let mut errors = Vec::new();
        let cond = check::condition(field?, token.pos, written, &mut errors);
        errors.into_iter().for_each(|e| self.report(e));
        cond.map(Expr::Cond)
    }

    /// What follows the field `shown`.
    fn test(&mut self, shown: &str, alone: bool) -> Option<Written> {
        let written = match self.kind().clone() {
            Kind::Op(op) => {
                self.bump();
                Written::Cmp(op, self.value(&format!("after \"{}\"", op.as_str()))?)
            }
            Kind::Keyword(Keyword::In) => {
                self.bump();
                Written::In(self.list()?)
            }
            Kind::Keyword(Keyword::Between) => {
                self.bump();
                let low = self.value("after BETWEEN");
                // Missing low end: still read `AND high` rather than take the
                // AND for a logical one.
                if !self.at_keyword(Keyword::And) {
                    if low.is_some() {
                        self.expected("AND", "between the ends of BETWEEN");
                    }
                    return None;
                }
                self.bump();
                let high = self.value("after BETWEEN … AND");
                Written::Between(low?, high?)
            }
            Kind::Keyword(Keyword::Contains) => {
                self.bump();
                Written::Contains(self.value("after CONTAINS")?)
            }
            Kind::Keyword(Keyword::Exists) => {
                self.bump();
                Written::Exists
            }
            _ if alone && self.at_boundary() => Written::Alone,
            Kind::Keyword(Keyword::Not) => {
                self.expected("an operator", &format!("after {shown} (NOT goes before the condition)"));
                return None;
            }
            _ => {
                self.expected("an operator", &format!("after {shown}"));
                return None;
            }
        };
        Some(written)
    }

    /// A literal, or `None` after reporting what is there instead (not consumed).
    fn value(&mut self, context: &str) -> Option<Lit> {
        let pos = self.token().pos;
        let value = match self.kind() {
            Kind::Number(n) => Value::Number(n.clone()),
            Kind::Text(t) => Value::Text(t.clone()),
            Kind::Keyword(Keyword::True) => Value::Bool(true),
            Kind::Keyword(Keyword::False) => Value::Bool(false),
            _ => {
                self.expected("a value", context);
                return None;
            }
        };
        self.bump();
        Some(Lit { value, pos })
    }

    /// `[v, …]`: not empty, at most [`MAX_LIST`] values.
    fn list(&mut self) -> Option<Vec<Lit>> {
        if *self.kind() != Kind::LBracket {
            self.expected("\"[\"", "after IN");
            return None;
        }
        self.bump();
        if *self.kind() == Kind::RBracket {
            let pos = self.token().pos;
            self.report(RuleError::new(pos, "IN needs at least one value"));
            self.bump();
            return None;
        }
        let mut lits = Vec::new();
        let mut context = "after \"[\"";
        loop {
            match self.value(context) {
                Some(lit) if lits.len() == MAX_LIST => {
                    self.report(RuleError::new(lit.pos, format!("a list holds at most {MAX_LIST} values")));
                    self.skip_list();
                    return None;
                }
                Some(lit) => lits.push(lit),
                None => {
                    self.skip_list();
                    return None;
                }
            }
            context = "after \",\"";
            match self.kind() {
                Kind::Comma => self.bump(),
                Kind::RBracket => {
                    self.bump();
                    break;
                }
                _ => {
                    self.expected("\",\" or \"]\"", "in the list");
                    self.skip_list();
                    return None;
                }
            }
        }
        Some(lits)
    }

    /// Skips past the list's `]`, or to where a condition may end.
    fn skip_list(&mut self) {
        while !self.at_boundary() {
            let closing = *self.kind() == Kind::RBracket;
            self.bump();
            if closing {
                return;
            }
        }
    }
}

/// The token as a message shows it: operators and punctuation quoted.
fn found(token: &Token) -> String {
    match token.kind {
        Kind::Op(_) | Kind::LParen | Kind::RParen | Kind::LBracket | Kind::RBracket | Kind::Comma => {
            format!("\"{}\"", token.shown)
        }
        _ => token.shown.clone(),
    }
}
