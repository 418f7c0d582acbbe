//! The cache epoch, kept in each service's database (docs/DECISIONS.md,
//! Cache coherence). A cached value is trusted only if it was written under
//! the epoch the database holds now; bumping the epoch therefore drops every
//! entry of the service, on every replica, whatever the cache server kept.
//!
//! The row also names the Redis server (its `run_id`) the epoch was last
//! checked against: a Redis that restarted or failed over is another server,
//! whose data may predate invalidations, so meeting one bumps the epoch.

use sea_orm::sea_query::{Alias, Expr, Query};
use sea_orm::{ConnectionTrait, DbErr};
use sea_orm_migration::prelude::*;

use crate::store::{Db, column as col};

fn table() -> Alias {
    Alias::new("cache_epoch")
}

/// The one row's key.
const ROW: i32 = 1;

pub struct CacheEpochTable;

impl MigrationName for CacheEpochTable {
    fn name(&self) -> &str {
        "cx_cache_v1"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CacheEpochTable {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(table())
                .if_not_exists()
                .col(col("id").integer().primary_key())
                .col(col("epoch").big_integer())
                .col(col("redis_run_id").string_len(64))
                .to_owned(),
        )
        .await?;
        let row = Query::insert()
            .into_table(table())
            .columns([Alias::new("id"), Alias::new("epoch"), Alias::new("redis_run_id")])
            .values_panic([ROW.into(), 1i64.into(), "".into()])
            .on_conflict(OnConflict::column(Alias::new("id")).do_nothing().to_owned())
            .to_owned();
        m.exec_stmt(row).await
    }
}

/// An in-memory SQLite database holding the epoch alone: for a cache bound
/// to no service's database (the cache's own tests).
#[doc(hidden)]
pub async fn in_memory_db() -> Result<Db, DbErr> {
    struct EpochOnly;
    impl MigratorTrait for EpochOnly {
        fn migrations() -> Vec<Box<dyn MigrationTrait>> {
            vec![Box::new(CacheEpochTable)]
        }
    }
    let mut options = sea_orm::ConnectOptions::new("sqlite::memory:");
    // One connection: each would be another in-memory database.
    options.max_connections(1);
    let db = sea_orm::Database::connect(options).await?;
    EpochOnly::up(&db, None).await?;
    Ok(db.into())
}

/// The epoch now and the Redis server it was last checked against.
async fn row<C: ConnectionTrait>(db: &C) -> Result<(i64, String), DbErr> {
    let select = Query::select()
        .columns([Alias::new("epoch"), Alias::new("redis_run_id")])
        .from(table())
        .and_where(Expr::col(Alias::new("id")).eq(ROW))
        .to_owned();
    let row = db.query_one(&select).await?.ok_or_else(|| DbErr::RecordNotFound("cache_epoch".into()))?;
    Ok((row.try_get("", "epoch")?, row.try_get("", "redis_run_id")?))
}

/// The epoch now.
pub async fn read<C: ConnectionTrait>(db: &C) -> Result<i64, DbErr> {
    Ok(row(db).await?.0)
}

/// Moves to a new epoch: every value cached before is a miss from now on.
pub async fn bump<C: ConnectionTrait>(db: &C) -> Result<i64, DbErr> {
    let update = Query::update()
        .table(table())
        .value(Alias::new("epoch"), Expr::col(Alias::new("epoch")).add(1))
        .and_where(Expr::col(Alias::new("id")).eq(ROW))
        .to_owned();
    db.execute(&update).await?;
    read(db).await
}

/// The epoch to use with the Redis server `run_id`: a new one if the epoch
/// was last checked against another server (the first replica to meet a
/// restarted Redis bumps; the others find the row already moved).
pub async fn adopt<C: ConnectionTrait>(db: &C, run_id: &str) -> Result<i64, DbErr> {
    let (epoch, checked_against) = row(db).await?;
    if checked_against == run_id {
        return Ok(epoch);
    }
    let update = Query::update()
        .table(table())
        .value(Alias::new("epoch"), Expr::col(Alias::new("epoch")).add(1))
        .value(Alias::new("redis_run_id"), run_id)
        .and_where(Expr::col(Alias::new("id")).eq(ROW))
        .and_where(Expr::col(Alias::new("redis_run_id")).ne(run_id))
        .to_owned();
    if db.execute(&update).await?.rows_affected() > 0 {
        tracing::info!(run_id, "cache epoch moved: redis is another server than before (restart or failover)");
    }
    read(db).await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use sea_orm::{ConnectOptions, Database};

    use super::*;
    use crate::cache::redis::RedisCache;
    use crate::cache::{Cache, CacheKey};
    use crate::tenant::TenantId;

    async fn sqlite() -> Db {
        in_memory_db().await.unwrap()
    }

    /// A Redis nobody answers on (port 1), bound to `db`.
    fn dead_redis(db: &Db) -> Cache {
        let redis = RedisCache::connect_lazy("redis://127.0.0.1:1").unwrap();
        Cache::new(Arc::new(redis), Duration::from_secs(60)).bind(db)
    }

    fn key() -> CacheKey {
        CacheKey::new(&TenantId::parse("acme").unwrap(), "profile", "1")
    }

    #[tokio::test]
    async fn a_new_redis_server_moves_the_epoch_once() {
        let db = sqlite().await;
        assert_eq!(read(&db).await.unwrap(), 1);
        // The first server met, then the same again, then a restarted one.
        assert_eq!(adopt(&db, "run-a").await.unwrap(), 2);
        assert_eq!(adopt(&db, "run-a").await.unwrap(), 2);
        assert_eq!(adopt(&db, "run-b").await.unwrap(), 3);
        assert_eq!(bump(&db).await.unwrap(), 4);
    }

    #[tokio::test]
    async fn an_invalidation_redis_does_not_take_moves_the_epoch() {
        let db = sqlite().await;
        let cache = dead_redis(&db);
        cache.invalidate(&key()).await.unwrap();
        assert_eq!(read(&db).await.unwrap(), 2);
    }

    #[tokio::test]
    async fn an_invalidation_neither_redis_nor_the_database_takes_is_an_error() {
        let mut options = ConnectOptions::new("postgres://postgres@127.0.0.1:1/nowhere");
        options.connect_lazy(true).connect_timeout(Duration::from_secs(1)).acquire_timeout(Duration::from_secs(1));
        let db = Db::from(Database::connect(options).await.unwrap());
        let cache = dead_redis(&db);
        assert!(cache.invalidate(&key()).await.is_err(), "the write must not be acknowledged");
        assert_eq!(cache.epoch(), None, "while the bump is owed, nothing cached is trusted");
    }
}
