//! Types a condition: which tests a field takes, with which values.

use super::ast::{CmpOp, Cond, Test, Value};
use super::error::{Pos, RuleError, shorten};
use super::fields::{Field, FieldType};
use super::suggest::nearest;

/// A literal and where it was written.
#[derive(Debug, Clone)]
pub(crate) struct Lit {
    pub value: Value,
    pub pos: Pos,
}

/// A condition as parsed, before typing.
#[derive(Debug)]
pub(crate) enum Written {
    /// The field alone.
    Alone,
    Cmp(CmpOp, Lit),
    In(Vec<Lit>),
    Between(Lit, Lit),
    Contains(Lit),
    Exists,
}

impl Written {
    /// The operator as written, for messages.
    fn op(&self) -> String {
        match self {
            Written::Alone => String::new(),
            Written::Cmp(op, _) => format!("\"{}\"", op.as_str()),
            Written::In(_) => "IN".into(),
            Written::Between(..) => "BETWEEN".into(),
            Written::Contains(_) => "CONTAINS".into(),
            Written::Exists => "EXISTS".into(),
        }
    }
}

/// `field written`, typed; `None` after pushing what is wrong onto `errors`.
pub(crate) fn condition(field: Field, at: Pos, written: Written, errors: &mut Vec<RuleError>) -> Option<Cond> {
    let before = errors.len();
    let ty = field.field_type();
    let applies = match (&written, ty) {
        (Written::Exists, _) => true,
        (Written::Alone, FieldType::Boolean) => true,
        (Written::Alone, FieldType::Attribute) => {
            errors.push(RuleError::new(at, format!("{field} alone is not a condition: write {field} = true")));
            return None;
        }
        (Written::Alone, _) => {
            // The parser only builds `Alone` where a condition may end.
            errors.push(RuleError::new(
                at,
                format!("{field} is {} and not a condition alone: compare it", ty.describe()),
            ));
            return None;
        }
        (Written::Cmp(..), FieldType::Number | FieldType::Attribute) => true,
        (Written::Cmp(op, _), FieldType::Text(_) | FieldType::Boolean) => !op.is_ordering(),
        (Written::In(_), FieldType::Number | FieldType::Text(_) | FieldType::Attribute) => true,
        (Written::Between(..), FieldType::Number | FieldType::Attribute) => true,
        (Written::Contains(_), FieldType::ChannelList) => true,
        _ => false,
    };
    if !applies {
        let hint = if ty == FieldType::ChannelList { ": use CONTAINS" } else { "" };
        errors
            .push(RuleError::new(at, format!("{} does not apply to {field} ({}){hint}", written.op(), ty.describe())));
        return None;
    }
    let test = match written {
        Written::Alone => Test::Cmp(CmpOp::Eq, Value::Bool(true)),
        Written::Exists => Test::Exists,
        Written::Cmp(op, lit) => {
            // A fixed field's own type check covers this.
            if op.is_ordering() && ty == FieldType::Attribute {
                not_boolean(&lit, &format!("\"{}\"", op.as_str()), errors);
            }
            values(&field, at, std::slice::from_ref(&lit), errors);
            Test::Cmp(op, lit.value)
        }
        Written::In(lits) => {
            values(&field, at, &lits, errors);
            Test::In(lits.into_iter().map(|lit| lit.value).collect())
        }
        Written::Between(low, high) => {
            if ty == FieldType::Attribute {
                not_boolean(&low, "BETWEEN", errors);
            }
            values(&field, at, &[low.clone(), high.clone()], errors);
            Test::Between(low.value, high.value)
        }
        Written::Contains(lit) => {
            values(&field, at, std::slice::from_ref(&lit), errors);
            Test::Contains(lit.value)
        }
    };
    (errors.len() == before).then_some(Cond { field, test })
}

/// The literals are of one type, that of the field, and for a closed field
/// among its values. One message for a wrong type, not one per literal.
fn values(field: &Field, at: Pos, lits: &[Lit], errors: &mut Vec<RuleError>) {
    let Some(first) = lits.first() else { return };
    if let Some(other) = lits.iter().find(|lit| !lit.value.same_type(&first.value)) {
        errors.push(RuleError::new(
            other.pos,
            format!("values of one type only: {} after {}", other.value.type_name(), first.value.type_name()),
        ));
        return;
    }
    let ty = field.field_type();
    let wanted = match ty {
        FieldType::Attribute => return,
        FieldType::Number => "a number",
        FieldType::Boolean => "a boolean",
        FieldType::Text(_) | FieldType::ChannelList => "a string",
    };
    if first.value.type_name() != wanted {
        errors.push(RuleError::new(
            at,
            format!("{field} is {}, compared with {}", ty.describe(), first.value.type_name()),
        ));
        return;
    }
    let closed = match ty {
        FieldType::Text(Some(values)) => values,
        FieldType::ChannelList => super::fields::CHANNELS,
        _ => return,
    };
    for lit in lits {
        closed_value(field, lit, closed, errors);
    }
}

fn closed_value(field: &Field, lit: &Lit, closed: &[&str], errors: &mut Vec<RuleError>) {
    if let Value::Text(text) = &lit.value
        && !closed.contains(&text.as_str())
    {
        let shown = shorten(&lit.value.to_string());
        let message = match nearest(text, closed) {
            Some(near) => format!("{field} has no value {shown} — did you mean \"{near}\"?"),
            None => format!("{field} has no value {shown}; its values: {}", closed.join(", ")),
        };
        errors.push(RuleError::new(lit.pos, message));
    }
}

fn not_boolean(lit: &Lit, op: &str, errors: &mut Vec<RuleError>) {
    if matches!(lit.value, Value::Bool(_)) {
        errors.push(RuleError::new(lit.pos, format!("{op} does not apply to a boolean")));
    }
}
