//! The typed rule, and its canonical text.
//!
//! `AND` and `OR` are n-ary and never directly hold their own kind: `(a OR b)
//! OR c` and `a OR b OR c` are one tree. That makes the printed form unique
//! with the fewest parentheses.

use std::fmt;

use super::fields::Field;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Cond(Cond),
}

impl Expr {
    /// The disjunction of `items`, nested disjunctions spliced in; one item is itself.
    pub fn or(items: Vec<Expr>) -> Expr {
        Self::flat(items, Expr::Or, |e| match e {
            Expr::Or(inner) => Ok(inner),
            other => Err(other),
        })
    }

    /// The conjunction of `items`, nested conjunctions spliced in; one item is itself.
    pub fn and(items: Vec<Expr>) -> Expr {
        Self::flat(items, Expr::And, |e| match e {
            Expr::And(inner) => Ok(inner),
            other => Err(other),
        })
    }

    pub fn negate(inner: Expr) -> Expr {
        Expr::Not(Box::new(inner))
    }

    fn flat(items: Vec<Expr>, make: fn(Vec<Expr>) -> Expr, split: fn(Expr) -> Result<Vec<Expr>, Expr>) -> Expr {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match split(item) {
                Ok(inner) => out.extend(inner),
                Err(other) => out.push(other),
            }
        }
        if out.len() == 1
            && let Some(only) = out.pop()
        {
            return only;
        }
        make(out)
    }

    /// Binding strength when printed: OR 1, AND 2, NOT and a condition 3.
    fn strength(&self) -> u8 {
        match self {
            Expr::Or(_) => 1,
            Expr::And(_) => 2,
            Expr::Not(_) | Expr::Cond(_) => 3,
        }
    }

    /// Calls `visit` on every condition, left to right.
    pub fn for_each_cond<'a>(&'a self, visit: &mut impl FnMut(&'a Cond)) {
        match self {
            Expr::Or(items) | Expr::And(items) => items.iter().for_each(|item| item.for_each_cond(visit)),
            Expr::Not(inner) => inner.for_each_cond(visit),
            Expr::Cond(cond) => visit(cond),
        }
    }
}

/// `field test`, e.g. `rfm.r >= 4`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cond {
    pub field: Field,
    pub test: Test,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Test {
    /// Also a boolean field alone, read as `= true`.
    Cmp(CmpOp, Value),
    In(Vec<Value>),
    /// Both ends included.
    Between(Value, Value),
    Contains(Value),
    Exists,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    pub fn is_ordering(self) -> bool {
        !matches!(self, CmpOp::Eq | CmpOp::Ne)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Number(Number),
    Text(String),
    Bool(bool),
}

impl Value {
    /// "a number", "a string", "a boolean": for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Number(_) => "a number",
            Value::Text(_) => "a string",
            Value::Bool(_) => "a boolean",
        }
    }

    pub(crate) fn same_type(&self, other: &Value) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

/// A decimal number kept exactly as a canonical string: no leading zeros, no
/// trailing fractional zeros, no `-0`. Exact so that `rfm.monetary >= 0.1`
/// reaches SQL as the decimal written, not as a binary float.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Number(String);

impl Number {
    /// Parses `-?digits(.digits)?`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Number> {
        let (negative, body) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (int, frac) = match body.split_once('.') {
            Some((int, frac)) => (int, frac),
            None => (body, ""),
        };
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() || !digits(int) || !digits(frac) || (body.contains('.') && frac.is_empty()) {
            return None;
        }
        let int = int.trim_start_matches('0');
        let frac = frac.trim_end_matches('0');
        let mut out = String::with_capacity(text.len() + 1);
        if negative && !(int.is_empty() && frac.is_empty()) {
            out.push('-');
        }
        out.push_str(if int.is_empty() { "0" } else { int });
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
        Some(Number(out))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Number(n) => n.fmt(f),
            Value::Bool(true) => f.write_str("true"),
            Value::Bool(false) => f.write_str("false"),
            Value::Text(text) => {
                f.write_str("\"")?;
                for c in text.chars() {
                    if c == '"' || c == '\\' {
                        f.write_str("\\")?;
                    }
                    write!(f, "{c}")?;
                }
                f.write_str("\"")
            }
        }
    }
}

impl fmt::Display for Cond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = &self.field;
        match &self.test {
            Test::Cmp(CmpOp::Eq, Value::Bool(true)) if field.alone_is_condition() => {
                write!(f, "{field}")
            }
            Test::Cmp(op, value) => write!(f, "{field} {} {value}", op.as_str()),
            Test::In(values) => {
                write!(f, "{field} IN [")?;
                for (i, value) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{value}")?;
                }
                f.write_str("]")
            }
            Test::Between(low, high) => write!(f, "{field} BETWEEN {low} AND {high}"),
            Test::Contains(value) => write!(f, "{field} CONTAINS {value}"),
            Test::Exists => write!(f, "{field} EXISTS"),
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A child is parenthesised when it binds no tighter than its parent;
        // flattening guarantees an OR never holds an OR, an AND never an AND.
        let child = |f: &mut fmt::Formatter<'_>, item: &Expr, parent: u8| {
            if item.strength() <= parent { write!(f, "({item})") } else { write!(f, "{item}") }
        };
        match self {
            Expr::Or(items) | Expr::And(items) => {
                let joiner = if matches!(self, Expr::Or(_)) { " OR " } else { " AND " };
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(joiner)?;
                    }
                    child(f, item, self.strength())?;
                }
                Ok(())
            }
            Expr::Not(inner) => {
                f.write_str("NOT ")?;
                child(f, inner, 2)
            }
            Expr::Cond(cond) => cond.fmt(f),
        }
    }
}
