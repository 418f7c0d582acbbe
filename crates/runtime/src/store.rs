//! Database connections and tenant-scoped queries.
//!
//! Each service owns its data: on PostgreSQL its own schema (named after the
//! service, created and migrated by the service itself), on SQLite its own
//! file. Queries go through [`scoped`], [`scoped_update`] and
//! [`scoped_delete`], which always filter on the caller's tenant; the
//! unscoped sea-orm entry points are refused by clippy (see `clippy.toml`).

pub mod bulk;
mod handle;

pub use handle::Db;

use std::time::Duration;

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectOptions, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, DeleteMany, EntityTrait,
    QueryFilter, Select, SqlErr, Statement, TransactionTrait, UpdateMany,
};
use sea_orm_migration::MigratorTrait;

use crate::config::{ConfigError, DatabaseTarget, Pooler, StoreArgs};
use crate::tenant::TenantId;

/// An entity whose rows belong to a tenant (every CX table).
pub trait TenantScoped: EntityTrait {
    fn tenant_column() -> Self::Column;
}

/// `SELECT … WHERE tenant_id = $tenant`: the only way services read rows.
#[allow(clippy::disallowed_methods)]
pub fn scoped<E: TenantScoped>(tenant: &TenantId) -> Select<E> {
    E::find().filter(E::tenant_column().eq(tenant.as_str()))
}

/// `UPDATE … WHERE tenant_id = $tenant`.
#[allow(clippy::disallowed_methods)]
pub fn scoped_update<E: TenantScoped>(tenant: &TenantId) -> UpdateMany<E> {
    E::update_many().filter(E::tenant_column().eq(tenant.as_str()))
}

/// `DELETE … WHERE tenant_id = $tenant`.
#[allow(clippy::disallowed_methods)]
pub fn scoped_delete<E: TenantScoped>(tenant: &TenantId) -> DeleteMany<E> {
    E::delete_many().filter(E::tenant_column().eq(tenant.as_str()))
}

/// Increments an integer column in an update (`version = version + 1`).
pub fn increment<C: ColumnTrait>(column: C) -> Expr {
    Expr::col(column).add(1)
}

/// `column IN (ids)`. On PostgreSQL it is one array parameter, `= ANY($1)`:
/// a list of a thousand parameters makes PostgreSQL cache a generic plan
/// that runs several times slower than the array's.
pub fn one_of<C: ColumnTrait>(backend: DbBackend, column: C, ids: &[uuid::Uuid]) -> Expr {
    match backend {
        DbBackend::Postgres => Expr::col(column.as_column_ref())
            .eq(sea_orm::sea_query::extension::postgres::PgFunc::any(Expr::val(ids.to_vec()))),
        _ => column.is_in(ids.iter().copied()),
    }
}

/// ` AND column IN (ids)` for SQL written for [`numbered`], its parameters
/// pushed onto `values`; empty when `ids` is: no condition. As [`one_of`],
/// one array parameter on PostgreSQL; one parameter per id on SQLite.
pub fn and_one_of(backend: DbBackend, column: &str, ids: &[uuid::Uuid], values: &mut Vec<sea_orm::Value>) -> String {
    if ids.is_empty() {
        return String::new();
    }
    if backend == DbBackend::Postgres {
        values.push(pg_array(sea_orm::sea_query::ArrayType::Uuid, ids.iter().copied()));
        return format!(" AND {column} = ANY(${}::uuid[])", values.len());
    }
    let mut params = Vec::with_capacity(ids.len());
    for &id in ids {
        values.push(id.into());
        params.push(format!("${}", values.len()));
    }
    format!(" AND {column} IN ({})", params.join(", "))
}

/// A PostgreSQL array parameter of `ty` (for `UNNEST($n::type[])`: one
/// parameter per column however many rows). Elements must not be NULL: the
/// driver binds arrays of plain values; write sentinels and `NULLIF` instead.
pub fn pg_array<T: Into<sea_orm::Value>>(
    ty: sea_orm::sea_query::ArrayType,
    items: impl IntoIterator<Item = T>,
) -> sea_orm::Value {
    sea_orm::Value::Array(ty, Some(Box::new(items.into_iter().map(Into::into).collect())))
}

/// `sql` written with `$n` parameters, as `backend` numbers them (`?n` on
/// SQLite): one text for both backends, each parameter bound once however
/// often the text names it.
pub fn numbered(backend: DbBackend, sql: &str, values: Vec<sea_orm::Value>) -> sea_orm::Statement {
    let sql = if backend == DbBackend::Postgres { sql.to_owned() } else { sql.replace('$', "?") };
    sea_orm::Statement::from_sql_and_values(backend, sql, values)
}

/// SQL for the number of the UTC day of the instant in `column` (days since
/// 1970-01-01, negative before), as Rust's `timestamp().div_euclid(86_400)`
/// gives it: for set-wise roll-ups and the scans that check them. SQLite has
/// no `floor()` unless built with its math functions, so it truncates
/// `julianday` and steps back for negatives.
pub fn utc_day(backend: DbBackend, column: &str) -> String {
    match backend {
        DbBackend::Postgres => format!("CAST(floor(extract(epoch FROM {column}) / 86400) AS INTEGER)"),
        _ => format!(
            "(CAST(julianday({column}) - 2440587.5 AS INTEGER) - \
               (julianday({column}) - 2440587.5 < CAST(julianday({column}) - 2440587.5 AS INTEGER)))"
        ),
    }
}

/// A NOT NULL column for a migration, the default of every CX table;
/// nullable columns are written out in full so they stand out.
pub fn column(name: &'static str) -> sea_orm_migration::prelude::ColumnDef {
    let mut def = sea_orm_migration::prelude::ColumnDef::new(sea_orm::sea_query::Alias::new(name));
    def.not_null();
    def
}

/// A named index for a migration, `IF NOT EXISTS`, on `columns` of `table`
/// in order; a caller adds `unique()` or a predicate.
pub fn index(name: &str, table: &str, columns: &[&str]) -> sea_orm_migration::prelude::IndexCreateStatement {
    let mut index = primary_key(columns);
    index.name(name).table(sea_orm::sea_query::Alias::new(table)).if_not_exists();
    index
}

/// The columns of a table's primary key in order, for a migration.
pub fn primary_key(columns: &[&str]) -> sea_orm_migration::prelude::IndexCreateStatement {
    let mut key = sea_orm_migration::prelude::Index::create();
    for c in columns {
        key.col(sea_orm::sea_query::Alias::new(*c));
    }
    key
}

/// The one pool the services of a process share on PostgreSQL (`cx serve
/// all`): opened by the first service, at the size `CX_DB_MAX_CONNECTIONS`.
#[derive(Clone, Debug, Default)]
pub struct SharedPool(std::sync::Arc<tokio::sync::OnceCell<DatabaseConnection>>);

/// Opens `service`'s database without connecting yet: the server starts
/// answering health checks (NOT_SERVING) while the database comes up.
pub async fn open(args: &StoreArgs, service: &'static str) -> Result<Db, ConfigError> {
    open_with(args, service, None).await
}

/// Opens `service`'s database as [`open`]; on PostgreSQL through `shared`
/// when given. A shared pool, or a pooler in transaction mode, sets the
/// schema per transaction ([`Db`]); otherwise each connection carries it.
pub async fn open_with(
    args: &StoreArgs,
    service: &'static str,
    shared: Option<&SharedPool>,
) -> Result<Db, ConfigError> {
    let url = match args.database_for(service)? {
        DatabaseTarget::Sqlite { path } => return Ok(Db::from(connect(sqlite_options(&path)?).await?)),
        DatabaseTarget::Postgres { url } => url,
    };
    let pooler = args.db_pooler == Pooler::Transaction;
    let pool = match shared {
        Some(shared) => {
            let opened = shared.0.get_or_try_init(|| connect(postgres_options(args, &url, "cx-suite", None)));
            opened.await?.clone()
        }
        None if pooler => connect(postgres_options(args, &url, &format!("cx-{service}"), None)).await?,
        None => {
            let options = postgres_options(args, &url, &format!("cx-{service}"), Some(service));
            return Ok(Db::from(connect(options).await?));
        }
    };
    Ok(Db::per_transaction(pool, service, pooler))
}

/// A PostgreSQL pool's options; `schema` set on each connection when given.
fn postgres_options(args: &StoreArgs, url: &str, application: &str, schema: Option<&str>) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.to_owned());
    options.max_connections(args.db_max_connections).set_application_name(application);
    if let Some(schema) = schema {
        options.set_schema_search_path(schema);
    }
    if args.db_pooler == Pooler::Transaction {
        // A statement prepared in one transaction is gone in the next, which
        // the pooler may give another server connection: none is kept.
        // Nor is a startup parameter PgBouncer does not know sent.
        options.map_sqlx_postgres_opts(|o| o.statement_cache_capacity(0).extra_float_digits(None));
    }
    options
}

fn sqlite_options(path: &std::path::Path) -> Result<ConnectOptions, ConfigError> {
    // Customers' personal data: the directory 0700, the files 0600.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::secrets::create_private_dir(dir)?;
    }
    crate::secrets::restrict_file(path)
        .map_err(|e| ConfigError::new("CX_DATA_DIR", format!("cannot create {}: {e}", path.display())))?;
    let mut options = ConnectOptions::new(format!("sqlite://{}?mode=rwc", path.display()));
    // One connection: SQLite has one writer anyway, and a single
    // connection never meets "database is locked" between its own
    // transactions. Production load belongs on PostgreSQL.
    options.max_connections(1).map_sqlx_sqlite_opts(|o| {
        o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
    });
    Ok(options)
}

async fn connect(mut options: ConnectOptions) -> Result<DatabaseConnection, ConfigError> {
    // A pooled connection is pinged before use only after 30 s idle (one that
    // died meanwhile, e.g. a database restart): pinging on every acquire cost
    // a round trip per transaction on the hot paths.
    options
        .connect_lazy(true)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire_if_idle_for(Duration::from_secs(30))
        .sqlx_logging(false);
    sea_orm::Database::connect(options).await.map_err(|e| ConfigError::new("CX_DATABASE_URL", e.to_string()))
}

/// The tables every service has, whatever its own migrator lists: the
/// outbox and inbox, the cache epoch, merges and erasures, job leases.
fn shared_migrations() -> Vec<Box<dyn sea_orm_migration::MigrationTrait>> {
    vec![
        Box::new(crate::outbox::migration::OutboxTables),
        Box::new(crate::outbox::migration::OutboxIndexes),
        Box::new(crate::cache::epoch::CacheEpochTable),
        Box::new(crate::gdpr::migration::GdprTables),
        Box::new(crate::lease::LeaseTable),
    ]
}

/// A service's migrator with the shared tables first. Migrations are
/// recorded by name, so one a service's migrator also lists runs once.
struct WithShared<M>(std::marker::PhantomData<M>);

impl<M: MigratorTrait> MigratorTrait for WithShared<M> {
    fn migrations() -> Vec<Box<dyn sea_orm_migration::MigrationTrait>> {
        let mut all = shared_migrations();
        let shared: std::collections::HashSet<String> = all.iter().map(|m| m.name().to_owned()).collect();
        all.extend(M::migrations().into_iter().filter(|m| !shared.contains(m.name())));
        all
    }

    fn migration_table_name() -> sea_orm::sea_query::DynIden {
        M::migration_table_name()
    }
}

/// Creates the service's schema (PostgreSQL) and runs the shared and its
/// own migrations.
pub async fn migrate<M: MigratorTrait>(db: &Db, service: &str) -> Result<(), DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return WithShared::<M>::up(db.pool(), None).await;
    }
    // Replicas that start together (Kubernetes init containers, `cx serve`)
    // take turns: a lock held by one transaction for the whole run, released
    // when it ends or the process dies. The migrations run in it (each in a
    // savepoint), so a pooler in transaction mode keeps them on the
    // connection that holds the lock, and a failed run leaves nothing half done.
    let turn = db.begin().await?;
    turn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock(hashtext($1))",
        [format!("cx-migrate:{service}").into()],
    ))
    .await?;
    turn.execute_unprepared(&format!("CREATE SCHEMA IF NOT EXISTS \"{service}\"")).await?;
    WithShared::<M>::up(&turn, None).await?;
    turn.commit().await
}

/// A read-only transaction whose statements all see one snapshot: a count
/// and a page read in it agree. SQLite's transactions are serializable
/// already, and its driver takes no isolation level.
pub async fn read_snapshot(db: &Db) -> Result<sea_orm::DatabaseTransaction, DbErr> {
    use sea_orm::{AccessMode, IsolationLevel, TransactionTrait};
    match db.get_database_backend() {
        DbBackend::Postgres => {
            db.begin_with_config(Some(IsolationLevel::RepeatableRead), Some(AccessMode::ReadOnly)).await
        }
        _ => db.begin().await,
    }
}

/// Whether `err` is a unique-key violation (a concurrent insert won).
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// Whether `err` means the database could not be reached or went away
/// (retriable), as opposed to a statement it refused: a broken or refused
/// connection, an exhausted pool, or PostgreSQL's connection-exception
/// (08…) and operator-intervention (57P…: shutting down, starting up,
/// crashed) states.
pub fn is_connection_error(err: &DbErr) -> bool {
    use sea_orm::{RuntimeErr, sqlx};
    let driver = match err {
        DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => return true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => Some(e),
        _ => None,
    };
    match driver.map(|e| e.as_ref()) {
        Some(sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed) => {
            true
        }
        Some(sqlx::Error::Database(db)) => db.code().is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        // Errors sea-orm wraps as text (transactions, migrations).
        _ => ["Connection refused", "PoolTimedOut", "connection closed", "terminating connection"]
            .iter()
            .any(|needle| err.to_string().contains(needle)),
    }
}

/// An instant as every backend stores it: PostgreSQL keeps microseconds, so
/// every stored time is cut to microseconds and reads back equal everywhere.
pub fn stored_instant(at: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    use chrono::Timelike;
    let micros = at.nanosecond() / 1_000 * 1_000;
    at.with_nanosecond(micros).unwrap_or(at)
}

/// Now, as the store will keep it.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    stored_instant(chrono::Utc::now())
}

/// Declares that a sea-orm entity is scoped by its `tenant_id` column, so
/// [`scoped`] and friends accept it.
#[macro_export]
macro_rules! tenant_scoped {
    ($module:ident) => {
        impl $crate::store::TenantScoped for $module::Entity {
            fn tenant_column() -> Self::Column {
                $module::Column::TenantId
            }
        }
    };
}

/// A plain sea-orm entity in one line per column (no relations: services
/// join in SQL where they need to).
#[macro_export]
macro_rules! table {
    ($module:ident, $name:literal, { $($(#[$meta:meta])* $field:ident: $ty:ty),* $(,)? }) => {
        pub mod $module {
            use sea_orm::entity::prelude::*;

            #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
            #[sea_orm(table_name = $name)]
            pub struct Model {
                $($(#[$meta])* pub $field: $ty,)*
            }

            #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
            pub enum Relation {}

            impl ActiveModelBehavior for ActiveModel {}
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_cut_to_microseconds() {
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
        assert_eq!(stored_instant(at), chrono::DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap());
    }
}
