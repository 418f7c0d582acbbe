//! Two services behind one PgBouncer in transaction mode with a single
//! server connection: every transaction of either lands on that connection
//! in turn, so whatever one left in the session (its `search_path`, its
//! prepared statements) the next one meets.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cx_runtime::config::{Pooler, StoreArgs};
use cx_runtime::store::Db;
use cx_testkit::TestDb;
use cx_testkit::pgbouncer::PgBouncer;
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};

/// `SELECT v FROM t WHERE v > $1`: one text, a table of that name in each
/// service's schema, each holding its own value.
async fn value(db: &impl ConnectionTrait) -> Result<i32, String> {
    let sql = Statement::from_sql_and_values(DbBackend::Postgres, "SELECT v FROM t WHERE v > $1", [0.into()]);
    let row = db.query_one_raw(sql).await.map_err(|e| e.to_string())?;
    Ok(row.expect("one row").try_get::<i32>("", "v").unwrap())
}

/// Schemas `alpha` (t holds 1) and `beta` (t holds 2), made directly.
async fn two_schemas(db: &TestDb) {
    let direct = sea_orm::Database::connect(&db.url).await.unwrap();
    for (schema, v) in [("alpha", 1), ("beta", 2)] {
        let sql =
            format!("CREATE SCHEMA {schema}; CREATE TABLE {schema}.t (v int); INSERT INTO {schema}.t VALUES ({v})");
        direct.execute_unprepared(&sql).await.unwrap();
    }
    direct.close().await.unwrap();
}

fn through(bouncer: &PgBouncer, db: &TestDb, pooler: Pooler) -> StoreArgs {
    StoreArgs {
        database_url: Some(bouncer.url(&db.url)),
        db_pooler: pooler,
        ..StoreArgs::embedded(cx_testkit::temp_dir(), 2)
    }
}

#[tokio::test]
async fn each_transaction_finds_its_own_schema_and_no_statement_of_another() {
    let db = TestDb::create().await.unwrap();
    two_schemas(&db).await;
    let bouncer = PgBouncer::start(&db.url, 1).await;
    let args = through(&bouncer, &db, Pooler::Transaction);
    let alpha = cx_runtime::store::open(&args, "alpha").await.unwrap();
    let beta = cx_runtime::store::open(&args, "beta").await.unwrap();

    // Lone statements, taking turns on the one server connection: each
    // client names its first statement sqlx_s_1, and each reads its own t.
    for _ in 0..10 {
        assert_eq!(value(&alpha).await, Ok(1));
        assert_eq!(value(&beta).await, Ok(2));
    }
    // In transactions, with an isolation level (set before the schema).
    for _ in 0..3 {
        let snapshot = cx_runtime::store::read_snapshot(&beta).await.unwrap();
        assert_eq!(value(&snapshot).await, Ok(2));
        assert_eq!(value(&snapshot).await, Ok(2), "the same statement twice in one transaction");
        drop(snapshot);
        let txn = alpha.begin().await.unwrap();
        assert_eq!(value(&txn).await, Ok(1));
        txn.commit().await.unwrap();
    }
    let isolation = beta.begin().await.unwrap();
    let level = isolation.query_one_raw(Statement::from_string(DbBackend::Postgres, "SHOW transaction_isolation"));
    assert_eq!(level.await.unwrap().unwrap().try_get::<String>("", "transaction_isolation").unwrap(), "read committed");
    drop(isolation);
    let snapshot = cx_runtime::store::read_snapshot(&alpha).await.unwrap();
    let level = snapshot.query_one_raw(Statement::from_string(DbBackend::Postgres, "SHOW transaction_isolation"));
    assert_eq!(
        level.await.unwrap().unwrap().try_get::<String>("", "transaction_isolation").unwrap(),
        "repeatable read"
    );
}

/// The control: the same two services set up as for PostgreSQL itself
/// (schema per connection, statements kept) fail behind the same pooler,
/// once it lets their driver's startup parameter through.
#[tokio::test]
async fn without_the_pooler_setting_sessions_leak_between_services() {
    let db = TestDb::create().await.unwrap();
    two_schemas(&db).await;
    let bouncer = PgBouncer::start_ignoring(&db.url, 1, &["extra_float_digits"]).await;
    let args = through(&bouncer, &db, Pooler::None);
    let alpha: Db = cx_runtime::store::open(&args, "alpha").await.unwrap();
    let beta: Db = cx_runtime::store::open(&args, "beta").await.unwrap();
    assert_eq!(value(&alpha).await, Ok(1));
    let leaked = value(&beta).await;
    assert!(
        leaked == Ok(1) || leaked.as_ref().is_err_and(|e| e.contains("already exists")),
        "beta read alpha's table or met alpha's statement: {leaked:?}"
    );
}
