//! Jobs that run once per deployment, not once per replica
//! (docs/DECISIONS.md, Single-runner jobs). A job such as the lifecycle
//! sweep runs only on the replica holding its lease: a row of the service's
//! `job_leases` table naming the holder and when its hold ends. The holder
//! renews it every third of its length; a replica that stops releases it, and
//! one that dies loses it when it runs out, so another takes over within one
//! lease length.
//!
//! A row rather than a PostgreSQL advisory lock: a session lock needs a
//! connection of its own for as long as it is held and does not survive
//! PgBouncer in transaction mode; a row works on any pool, on SQLite too, and
//! shows operators who runs what (`SELECT * FROM profile.job_leases`).
//!
//! A lease keeps a job to one replica, not a fence: a holder that loses its
//! lease while a round runs finishes that round. Every leased job is safe to
//! overlap (each takes row locks or writes idempotently); the lease saves the
//! work of running it everywhere.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;
use sea_orm::sea_query::{Alias, Expr, OnConflict, Query};
use sea_orm::{ConnectionTrait, DbErr};
use sea_orm_migration::prelude::*;
use tokio::sync::watch;
use tracing::Instrument;

use crate::store::{Db, column as col};

fn table() -> Alias {
    Alias::new("job_leases")
}

/// Longest job name.
const MAX_JOB: usize = 64;

pub struct LeaseTable;

impl MigrationName for LeaseTable {
    fn name(&self) -> &str {
        "cx_leases_v1"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for LeaseTable {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(table())
                .if_not_exists()
                .col(col("job").string_len(MAX_JOB as u32).primary_key())
                .col(col("holder").string_len(160))
                .col(col("expires_at").timestamp_with_time_zone())
                .to_owned(),
        )
        .await
    }
}

/// This process as a lease holder: its pod (or host) name, its pid and a
/// random part, so a restarted process with the same pid is another holder.
pub fn this_process() -> &'static str {
    static HOLDER: OnceLock<String> = OnceLock::new();
    HOLDER.get_or_init(|| {
        let host = ["K8S_POD_NAME", "HOSTNAME"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| "cx".to_owned());
        let host: String = host.chars().take(100).collect();
        let random = uuid::Uuid::new_v4().simple().to_string();
        format!("{host}/{}/{}", std::process::id(), &random[..12])
    })
}

/// The leases of one service's jobs, held by one holder.
#[derive(Clone, Debug)]
pub struct Leases {
    db: Db,
    holder: Arc<str>,
    ttl: Duration,
}

impl Leases {
    pub fn new(db: Db, holder: &str, ttl: Duration) -> Self {
        Self { db, holder: holder.into(), ttl }
    }

    /// Takes `job`'s lease if it is free or ran out, or renews it if this
    /// holder has it: whether this holder has it for one more lease length.
    pub async fn hold(&self, job: &str) -> Result<bool, DbErr> {
        let now = crate::store::now();
        let until = now + chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::MAX);
        let (holder, expires_at) = (Alias::new("holder"), Alias::new("expires_at"));
        let taken = Query::insert()
            .into_table(table())
            .columns([Alias::new("job"), holder.clone(), expires_at.clone()])
            .values_panic([job.into(), self.holder.to_string().into(), until.into()])
            .on_conflict(
                OnConflict::column(Alias::new("job"))
                    .update_columns([holder.clone(), expires_at.clone()])
                    .action_and_where(
                        Expr::col((table(), expires_at))
                            .lt(now)
                            .or(Expr::col((table(), holder)).eq(self.holder.to_string())),
                    )
                    .to_owned(),
            )
            .to_owned();
        Ok(self.db.execute(&taken).await?.rows_affected() == 1)
    }

    /// Gives `job`'s lease up, if this holder has it, so another replica
    /// takes it at its next try instead of when it runs out.
    pub async fn release(&self, job: &str) -> Result<(), DbErr> {
        let delete = Query::delete()
            .from_table(table())
            .and_where(Expr::col(Alias::new("job")).eq(job))
            .and_where(Expr::col(Alias::new("holder")).eq(self.holder.to_string()))
            .to_owned();
        self.db.execute(&delete).await.map(drop)
    }

    /// Runs `work` while this holder has `job`'s lease, until `stop` turns
    /// true: tries to take the lease every third of its length, renews it as
    /// often while `work` runs, and stops `work` (it ends its round) when the
    /// lease is lost or cannot be renewed before it would run out.
    pub async fn run(self, job: &'static str, work: Job, mut stop: watch::Receiver<bool>) {
        let every = self.ttl / 3;
        while !*stop.borrow() {
            match self.hold(job).await {
                Ok(true) => self.while_held(job, &work, &mut stop).await,
                Ok(false) => {}
                Err(err) => tracing::warn!(job, error = %err, "job lease not taken; trying again"),
            }
            // `while_held` may have seen the stop already: `changed` would not.
            if *stop.borrow() {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Runs `work` from when the lease was taken until it is lost or `stop`.
    async fn while_held(&self, job: &'static str, work: &Job, stop: &mut watch::Receiver<bool>) {
        tracing::info!(job, holder = %self.holder, "job lease taken: this replica runs the job");
        let every = self.ttl / 3;
        let (end, ended) = watch::channel(false);
        let span = tracing::info_span!("job", job);
        let mut running = tokio::spawn(work(ended).instrument(span));
        let mut renewed = tokio::time::Instant::now();
        let stopped = loop {
            tokio::select! {
                () = tokio::time::sleep(every) => match self.hold(job).await {
                    Ok(true) => renewed = tokio::time::Instant::now(),
                    Ok(false) => {
                        tracing::warn!(job, "job lease taken by another replica; stopping the job here");
                        break false;
                    }
                    // Give up before the lease runs out, so that another
                    // replica taking it over does not overlap with this one.
                    Err(err) if renewed.elapsed() + every >= self.ttl => {
                        tracing::warn!(job, error = %err, "job lease not renewed in time; stopping the job here");
                        break false;
                    }
                    Err(err) => tracing::warn!(job, error = %err, "job lease not renewed; trying again"),
                },
                _ = stop.changed() => break true,
                done = &mut running => {
                    // A job ends only when told to: it panicked.
                    tracing::error!(job, error = ?done.err(), "job ended on its own; giving its lease up");
                    let _ = self.release(job).await;
                    return;
                }
            }
        };
        let _ = end.send(true);
        let _ = running.await;
        if stopped && let Err(err) = self.release(job).await {
            tracing::warn!(job, error = %err, "job lease not released; it runs out instead");
        }
    }
}

/// A job's loop, run until its stop signal turns true.
pub type Job = Arc<dyn Fn(watch::Receiver<bool>) -> BoxFuture<'static, ()> + Send + Sync>;
