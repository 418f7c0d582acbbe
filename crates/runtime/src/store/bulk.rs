//! Many rows in one statement on either backend: `INSERT … SELECT FROM
//! UNNEST(arrays)` on PostgreSQL (one parameter per column, so the statement
//! plans once), multi-row `VALUES` in chunks on SQLite. Rows go in the order
//! given, so writers that sort their rows take the rows' locks in one order.

use sea_orm::sea_query::ArrayType;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};

use super::pg_array;

const SQLITE_ROWS_PER_STATEMENT: usize = 400;

/// A column's type; values must not be NULL.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Text,
    Uuid,
    SmallInt,
    Int,
    BigInt,
    Double,
    Date,
}

impl Kind {
    fn pg(self) -> (&'static str, ArrayType) {
        match self {
            Self::Text => ("text", ArrayType::String),
            Self::Uuid => ("uuid", ArrayType::Uuid),
            Self::SmallInt => ("int2", ArrayType::SmallInt),
            Self::Int => ("int4", ArrayType::Int),
            Self::BigInt => ("int8", ArrayType::BigInt),
            Self::Double => ("float8", ArrayType::Double),
            Self::Date => ("date", ArrayType::ChronoDate),
        }
    }
}

/// `INSERT INTO table (columns) <rows> tail`, `tail` being an `ON CONFLICT`
/// clause or nothing.
pub async fn insert<C: ConnectionTrait>(
    conn: &C,
    table: &str,
    columns: &[(&str, Kind)],
    rows: Vec<Vec<Value>>,
    tail: &str,
) -> Result<(), DbErr> {
    if rows.is_empty() {
        return Ok(());
    }
    let names = columns.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ");
    if conn.get_database_backend() == DbBackend::Postgres {
        let mut arrays: Vec<Vec<Value>> = vec![Vec::with_capacity(rows.len()); columns.len()];
        for row in rows {
            for (array, value) in arrays.iter_mut().zip(row) {
                array.push(value);
            }
        }
        let casts: Vec<String> =
            columns.iter().enumerate().map(|(i, (_, kind))| format!("${}::{}[]", i + 1, kind.pg().0)).collect();
        let sql = format!("INSERT INTO {table} ({names}) SELECT * FROM UNNEST({}) {tail}", casts.join(", "));
        let values: Vec<Value> =
            columns.iter().zip(arrays).map(|((_, kind), array)| pg_array(kind.pg().1, array)).collect();
        conn.execute_raw(Statement::from_sql_and_values(DbBackend::Postgres, sql, values)).await?;
        return Ok(());
    }
    let row = format!("({})", vec!["?"; columns.len()].join(", "));
    for chunk in rows.chunks(SQLITE_ROWS_PER_STATEMENT) {
        let sql = format!("INSERT INTO {table} ({names}) VALUES {} {tail}", vec![row.as_str(); chunk.len()].join(", "));
        let values: Vec<Value> = chunk.iter().flatten().cloned().collect();
        conn.execute_raw(Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)).await?;
    }
    Ok(())
}
