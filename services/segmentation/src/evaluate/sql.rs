//! SQL text with its parameters, numbered for the backend as they are bound.

use sea_orm::{DbBackend, Statement, Value};

/// A statement being written: every literal goes through [`Sql::bind`].
#[derive(Debug, Clone)]
pub struct Sql {
    backend: DbBackend,
    text: String,
    values: Vec<Value>,
}

impl Sql {
    pub fn new(backend: DbBackend) -> Self {
        Self { backend, text: String::new(), values: Vec::new() }
    }

    pub fn backend(&self) -> DbBackend {
        self.backend
    }

    pub fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }

    /// Writes the placeholder of `value`: `$n` on PostgreSQL, `?` on SQLite
    /// (positional, so values are bound in the order of the text).
    pub fn bind(&mut self, value: impl Into<Value>) {
        self.values.push(value.into());
        if self.backend == DbBackend::Postgres {
            self.text.push('$');
            self.text.push_str(&self.values.len().to_string());
        } else {
            self.text.push('?');
        }
    }

    /// `(v1, v2, …)`, each bound.
    pub fn bind_list<V: Into<Value>>(&mut self, values: impl IntoIterator<Item = V>) {
        self.push("(");
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(value);
        }
        self.push(")");
    }

    pub fn into_parts(self) -> (String, Vec<Value>) {
        (self.text, self.values)
    }

    pub fn into_statement(self) -> Statement {
        Statement::from_sql_and_values(self.backend, self.text, self.values)
    }
}
