//! A checked rule as one SQL boolean expression over `segment_facts f`
//! (docs/DOMAIN.md §8.4, §8.5).
//!
//! Every condition yields TRUE or FALSE, never NULL: a test on a missing
//! value is FALSE, so `NOT` of it is TRUE as §8.4 says. Nullable columns are
//! guarded (`col IS NOT NULL AND col = ?`); subqueries are `EXISTS`, which is
//! never NULL; every literal is a bound parameter.

use cx_runtime::consent::StandardPurpose;
use sea_orm::DbBackend;

use super::integer::{self, Pred, Scale};
use super::sql::Sql;
use crate::rules::{CHANNELS, CmpOp, Cond, Expr, Field, Number, Purpose, Test, Value};
use crate::store::migration::consent_column;

/// Writes `expr` as a condition on the row `f`, `today` the day number
/// (days since 1970-01-01, UTC) the day counts are taken at.
pub fn expr(sql: &mut Sql, expr: &Expr, today: i32) {
    match expr {
        Expr::Or(items) => join(sql, items, " OR ", "FALSE", today),
        Expr::And(items) => join(sql, items, " AND ", "TRUE", today),
        Expr::Not(inner) => {
            sql.push("NOT (");
            self::expr(sql, inner, today);
            sql.push(")");
        }
        Expr::Cond(cond) => self::cond(sql, cond, today),
    }
}

fn join(sql: &mut Sql, items: &[Expr], joiner: &str, empty: &str, today: i32) {
    if items.is_empty() {
        sql.push(empty);
        return;
    }
    sql.push("(");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            sql.push(joiner);
        }
        expr(sql, item, today);
    }
    sql.push(")");
}

/// How a column's value compares with a literal.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Text,
    /// A double column: the literal is bound as the nearest `f64`.
    Float,
    Bool,
    /// An integer column, compared exactly (see [`integer`]).
    Integer(Scale),
}

#[derive(Debug, Clone, Copy)]
struct Col<'a> {
    name: &'a str,
    nullable: bool,
}

fn cond(sql: &mut Sql, cond: &Cond, today: i32) {
    use Kind::{Float, Integer, Text};
    let test = &cond.test;
    let plain = Integer(Scale::Plain);
    let days = Integer(Scale::DaysSince(today));
    let (name, nullable, kind) = match &cond.field {
        Field::Attribute(key) => return attribute(sql, key, test),
        Field::Consent(Purpose::Standard(purpose)) => return standard_consent(sql, *purpose, test),
        Field::Consent(Purpose::Custom(purpose)) => return custom_consent(sql, purpose, test),
        Field::JourneyChannels => return channels(sql, test),
        Field::Lifecycle => ("f.lifecycle", true, Text),
        Field::Persona => ("f.persona", true, Text),
        Field::DaysSinceCreated => ("f.created_day", true, days),
        Field::DigitalIndex => ("f.digital_index", true, Float),
        Field::DigitalCategory => ("f.digital_category", true, Text),
        Field::RfmRecencyDays => ("f.rfm_recency_days", true, plain),
        Field::RfmFrequency => ("f.rfm_frequency", true, plain),
        Field::RfmMonetary => ("f.rfm_monetary_micros", true, Integer(Scale::Micros)),
        Field::RfmR => ("f.rfm_r", true, plain),
        Field::RfmF => ("f.rfm_f", true, plain),
        Field::RfmM => ("f.rfm_m", true, plain),
        Field::RfmSegment => ("f.rfm_segment", true, Text),
        Field::JourneyDaysSinceLastTouch => ("f.last_touch_day", true, days),
        Field::JourneyTouchpoints90d => ("f.touchpoints_90d", false, plain),
        Field::JourneyLastChannel => ("f.last_channel", true, Text),
        Field::SurveyLastNps => ("f.last_nps", true, plain),
        Field::SurveyNpsCategory => ("f.nps_category", true, Text),
        Field::SurveyLastCsat => ("f.last_csat", true, plain),
        Field::SurveyLastCes => ("f.last_ces", true, plain),
        Field::SurveyResponses => ("f.responses", false, plain),
        Field::SurveyOpenCases => ("f.open_cases", false, plain),
    };
    column_test(sql, Col { name, nullable }, kind, test);
}

/// `test` on `col`. A literal of another type than the column's compares
/// false (§8.4), as does a test that does not apply.
fn column_test(sql: &mut Sql, col: Col<'_>, kind: Kind, test: &Test) {
    match (test, kind) {
        (Test::Exists, _) => present(sql, col),
        (Test::Cmp(op, Value::Number(n)), Kind::Integer(scale)) => pred(sql, col, integer::cmp(*op, n, scale)),
        (Test::Cmp(op, Value::Number(n)), Kind::Float) => match float(n) {
            Some(x) => guarded(sql, col, |sql| compare(sql, col.name, *op, x)),
            None => never(sql),
        },
        (Test::Cmp(op, Value::Text(text)), Kind::Text) => {
            let name = ordered(sql.backend(), col.name, *op);
            guarded(sql, col, |sql| compare(sql, &name, *op, text.as_str()));
        }
        (Test::Cmp(op, Value::Bool(b)), Kind::Bool) => guarded(sql, col, |sql| compare(sql, col.name, *op, *b)),
        (Test::In(values), Kind::Integer(scale)) => pred(sql, col, integer::one_of(numbers(values), scale)),
        (Test::In(values), Kind::Float) => {
            let floats: Vec<f64> = numbers(values).filter_map(float).collect();
            one_of(sql, col, floats);
        }
        (Test::In(values), Kind::Text) => {
            let texts: Vec<String> =
                values.iter().filter_map(|v| if let Value::Text(t) = v { Some(t.clone()) } else { None }).collect();
            one_of(sql, col, texts);
        }
        (Test::In(values), Kind::Bool) => {
            let bools: Vec<bool> =
                values.iter().filter_map(|v| if let Value::Bool(b) = v { Some(*b) } else { None }).collect();
            one_of(sql, col, bools);
        }
        (Test::Between(Value::Number(low), Value::Number(high)), Kind::Integer(scale)) => {
            pred(sql, col, integer::between(low, high, scale));
        }
        (Test::Between(Value::Number(low), Value::Number(high)), Kind::Float) => match (float(low), float(high)) {
            (Some(low), Some(high)) => guarded(sql, col, |sql| between(sql, col.name, low, high)),
            _ => never(sql),
        },
        (Test::Between(Value::Text(low), Value::Text(high)), Kind::Text) => {
            let name = ordered(sql.backend(), col.name, CmpOp::Lt);
            guarded(sql, col, |sql| between(sql, &name, low.as_str(), high.as_str()));
        }
        _ => never(sql),
    }
}

fn numbers(values: &[Value]) -> impl Iterator<Item = &Number> {
    values.iter().filter_map(|v| if let Value::Number(n) = v { Some(n) } else { None })
}

/// The nearest `f64`: a canonical number always parses (huge ones to ±∞).
fn float(n: &Number) -> Option<f64> {
    n.as_str().parse().ok()
}

/// Text ordered by code point on both backends: SQLite's default BINARY
/// collation does that; PostgreSQL's database collation may not.
fn ordered(backend: DbBackend, name: &str, op: CmpOp) -> String {
    if backend == DbBackend::Postgres && op.is_ordering() { format!("{name} COLLATE \"C\"") } else { name.to_owned() }
}

fn never(sql: &mut Sql) {
    sql.push("FALSE");
}

fn present(sql: &mut Sql, col: Col<'_>) {
    if col.nullable {
        sql.push(col.name);
        sql.push(" IS NOT NULL");
    } else {
        sql.push("TRUE");
    }
}

/// `write`'s test, FALSE rather than NULL when the column is NULL.
fn guarded(sql: &mut Sql, col: Col<'_>, write: impl FnOnce(&mut Sql)) {
    if col.nullable {
        sql.push("(");
        sql.push(col.name);
        sql.push(" IS NOT NULL AND ");
        write(sql);
        sql.push(")");
    } else {
        write(sql);
    }
}

fn compare(sql: &mut Sql, name: &str, op: CmpOp, value: impl Into<sea_orm::Value>) {
    sql.push(name);
    sql.push(match op {
        CmpOp::Eq => " = ",
        CmpOp::Ne => " <> ",
        CmpOp::Lt => " < ",
        CmpOp::Le => " <= ",
        CmpOp::Gt => " > ",
        CmpOp::Ge => " >= ",
    });
    sql.bind(value);
}

fn between<V: Into<sea_orm::Value>>(sql: &mut Sql, name: &str, low: V, high: V) {
    sql.push(name);
    sql.push(" BETWEEN ");
    sql.bind(low);
    sql.push(" AND ");
    sql.bind(high);
}

fn one_of<V: Into<sea_orm::Value>>(sql: &mut Sql, col: Col<'_>, values: Vec<V>) {
    if values.is_empty() {
        return never(sql);
    }
    guarded(sql, col, |sql| {
        sql.push(col.name);
        sql.push(" IN ");
        sql.bind_list(values);
    });
}

fn pred(sql: &mut Sql, col: Col<'_>, pred: Pred) {
    match pred {
        Pred::Never => never(sql),
        Pred::Present => present(sql, col),
        Pred::Cmp(op, v) => guarded(sql, col, |sql| compare(sql, col.name, op, v)),
        Pred::Between(low, high) => guarded(sql, col, |sql| between(sql, col.name, low, high)),
        Pred::In(values) => one_of(sql, col, values),
    }
}

/// A standard purpose's decision in force, mirrored in `f.consent_<name>`:
/// never missing (no decision is false, §3.2).
fn standard_consent(sql: &mut Sql, purpose: StandardPurpose, test: &Test) {
    let name = format!("f.{}", consent_column(purpose));
    column_test(sql, Col { name: &name, nullable: false }, Kind::Bool, test);
}

/// A custom purpose, stored by its plain name in `segment_consents`: granted
/// when a decision in force grants it, false otherwise, never missing.
fn custom_consent(sql: &mut Sql, purpose: &str, test: &Test) {
    let granted = match test {
        Test::Exists => return sql.push("TRUE"),
        Test::Cmp(CmpOp::Eq, Value::Bool(b)) => *b,
        Test::Cmp(CmpOp::Ne, Value::Bool(b)) => !*b,
        _ => return never(sql),
    };
    if !granted {
        sql.push("NOT ");
    }
    sql.push(
        "EXISTS (SELECT 1 FROM segment_consents c \
         WHERE c.tenant_id = f.tenant_id AND c.customer_id = f.customer_id AND c.purpose = ",
    );
    sql.bind(purpose);
    sql.push(" AND c.granted)");
}

/// `journey.channels`: a bit set in the order of [`CHANNELS`]; empty is missing.
fn channels(sql: &mut Sql, test: &Test) {
    match test {
        Test::Exists => sql.push("f.channels_180d <> 0"),
        Test::Contains(Value::Text(name)) => match CHANNELS.iter().position(|c| c == name) {
            Some(index) => {
                sql.push("(f.channels_180d & ");
                sql.bind(1_i32 << index);
                sql.push(") <> 0");
            }
            None => never(sql),
        },
        _ => never(sql),
    }
}

/// `profile.attributes.<key>`: a row of the key whose column of the
/// literal's type passes the test. An instant matches no literal, only EXISTS.
fn attribute(sql: &mut Sql, key: &str, test: &Test) {
    sql.push(
        "EXISTS (SELECT 1 FROM segment_attributes a \
         WHERE a.tenant_id = f.tenant_id AND a.customer_id = f.customer_id AND a.key = ",
    );
    sql.bind(key);
    let literal = match test {
        Test::Exists => None,
        Test::Cmp(_, v) | Test::Between(v, _) | Test::Contains(v) => Some(v),
        Test::In(values) => values.first(),
    };
    if let Some(literal) = literal {
        let (name, kind) = match literal {
            Value::Number(_) => ("a.number_value", Kind::Float),
            Value::Text(_) => ("a.text_value", Kind::Text),
            Value::Bool(_) => ("a.bool_value", Kind::Bool),
        };
        sql.push(" AND NOT a.is_instant AND ");
        column_test(sql, Col { name, nullable: true }, kind, test);
    } else if !matches!(test, Test::Exists) {
        sql.push(" AND FALSE");
    }
    sql.push(")");
}
