//! [`Db`], a service's handle on its database: the pool, and how the
//! service's statements find its schema.
//!
//! A service's own pool on PostgreSQL carries the schema in each
//! connection's session (`search_path`, set at connect). Two cases cannot:
//! a pool shared by the services of one process (`cx serve all`), and a
//! pooler in transaction mode (PgBouncer), which hands each transaction
//! whichever server connection is free. There the handle opens every
//! statement's transaction with `SET LOCAL search_path`, and a statement run
//! on the handle itself runs in a transaction of its own: the pooler keeps
//! one server connection for a transaction, not for a session.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult, IsolationLevel,
    QueryResult, Statement, TransactionError, TransactionOptions, TransactionTrait,
};

/// A service's database: a cheap clone of the pool and, when the
/// connections cannot carry it, what each transaction sets first.
#[derive(Clone, Debug, Default)]
pub struct Db {
    pool: DatabaseConnection,
    per_transaction: Option<Arc<Prelude>>,
}

/// The statements that open each transaction, sent as one (simple protocol:
/// no prepared statement, one round trip).
#[derive(Debug)]
struct Prelude {
    /// `SET LOCAL search_path TO "<schema>"`.
    schema: String,
    /// Behind a pooler in transaction mode: the prepared statements an
    /// earlier transaction on this server connection left, whoever's it was,
    /// are dropped first. The driver names its statements per client
    /// connection (`sqlx_s_1`, …) and, its cache off, never closes them, so
    /// two clients' names would meet on one server connection.
    deallocate: bool,
}

impl From<DatabaseConnection> for Db {
    /// A pool whose connections carry the schema themselves (a service's own
    /// pool on PostgreSQL, or SQLite, which has none).
    fn from(pool: DatabaseConnection) -> Self {
        Self { pool, per_transaction: None }
    }
}

impl Db {
    /// `pool`'s connections for `schema`'s statements, each transaction
    /// setting the schema for itself; `pooler`: each transaction may get
    /// another server connection. `schema` is a service's name or a test's
    /// generated one: letters, digits and underscores.
    pub fn per_transaction(pool: DatabaseConnection, schema: &str, pooler: bool) -> Self {
        debug_assert!(schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "schema {schema:?}");
        let prelude = Prelude { schema: format!("SET LOCAL search_path TO \"{schema}\""), deallocate: pooler };
        Self { pool, per_transaction: Some(Arc::new(prelude)) }
    }

    /// The backend, without importing [`ConnectionTrait`].
    pub fn get_database_backend(&self) -> DbBackend {
        self.pool.get_database_backend()
    }

    /// The pool underneath (shared with other services when per transaction).
    pub fn pool(&self) -> &DatabaseConnection {
        &self.pool
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), DbErr> {
        self.pool.ping().await
    }

    /// A transaction at the isolation level and access mode asked: the
    /// pool's own, or one opened by the prelude, `SET TRANSACTION` first
    /// (before anything takes a snapshot).
    async fn start(
        &self,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<DatabaseTransaction, DbErr> {
        let Some(prelude) = &self.per_transaction else {
            return self.pool.begin_with_config(isolation_level, access_mode).await;
        };
        let mut sql = String::new();
        let config: Vec<String> =
            [isolation_level.map(|l| format!("ISOLATION LEVEL {l}")), access_mode.map(|m| m.to_string())]
                .into_iter()
                .flatten()
                .collect();
        if !config.is_empty() {
            sql.push_str(&format!("SET TRANSACTION {}; ", config.join(" ")));
        }
        sql.push_str(&prelude.schema);
        if prelude.deallocate {
            sql.push_str("; DEALLOCATE ALL");
        }
        let txn = self.pool.begin().await?;
        txn.execute_unprepared(&sql).await?;
        Ok(txn)
    }
}

/// Runs one statement on `db`: straight on the pool, or in a transaction of
/// its own that sets the schema, committed when the statement succeeded (a
/// failed one is rolled back as the transaction drops).
macro_rules! on {
    ($db:expr, |$conn:ident| $statement:expr) => {
        match $db.per_transaction {
            None => {
                let $conn = &$db.pool;
                $statement.await
            }
            Some(_) => {
                let txn = $db.begin().await?;
                let $conn = &txn;
                let done = $statement.await?;
                txn.commit().await?;
                Ok(done)
            }
        }
    };
}

#[async_trait]
impl ConnectionTrait for Db {
    fn get_database_backend(&self) -> DbBackend {
        self.pool.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        on!(self, |conn| conn.execute_raw(stmt))
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        on!(self, |conn| conn.execute_unprepared(sql))
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        on!(self, |conn| conn.query_one_raw(stmt))
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        on!(self, |conn| conn.query_all_raw(stmt))
    }

    fn support_returning(&self) -> bool {
        self.pool.support_returning()
    }
}

#[async_trait]
impl TransactionTrait for Db {
    type Transaction = DatabaseTransaction;

    async fn begin(&self) -> Result<DatabaseTransaction, DbErr> {
        self.start(None, None).await
    }

    async fn begin_with_config(
        &self,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<DatabaseTransaction, DbErr> {
        self.start(isolation_level, access_mode).await
    }

    async fn begin_with_options(&self, options: TransactionOptions) -> Result<DatabaseTransaction, DbErr> {
        match self.per_transaction {
            None => self.pool.begin_with_options(options).await,
            // SQLite's mode is all the options add, and SQLite has no schema to set.
            Some(_) => self.start(options.isolation_level, options.access_mode).await,
        }
    }

    async fn transaction<F, T, E>(&self, callback: F) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(&'c DatabaseTransaction) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>> + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        self.transaction_with_config(callback, None, None).await
    }

    async fn transaction_with_config<F, T, E>(
        &self,
        callback: F,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(&'c DatabaseTransaction) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>> + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        let txn = self.begin_with_config(isolation_level, access_mode).await.map_err(TransactionError::Connection)?;
        let outcome = callback(&txn).await;
        match outcome {
            Ok(done) => {
                txn.commit().await.map_err(TransactionError::Connection)?;
                Ok(done)
            }
            Err(e) => {
                txn.rollback().await.map_err(TransactionError::Connection)?;
                Err(TransactionError::Transaction(e))
            }
        }
    }
}
