//! The outbox table as a dispatcher keeps it: claiming due rows under a
//! lease, recording each attempt's outcome, leaving unreachable
//! destinations alone, pruning delivered rows, and reading rows back.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, DbErr, QueryFilter, Statement};
use uuid::Uuid;

use super::Dispatcher;
use crate::TenantId;
use crate::config::ClaimShape;
use crate::outbox::entity::message;
use crate::outbox::{DEAD, DELIVERED};
use crate::store::{now, scoped, scoped_update};

/// A row this dispatcher holds the lease of.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub tenant_id: String,
    pub id: Uuid,
    pub destination: String,
    pub kind: String,
    pub payload: Vec<u8>,
    pub traceparent: String,
    pub tracestate: String,
    /// This attempt's number, from 1.
    pub attempt: i32,
    pub created_at: DateTime<Utc>,
}

impl Claimed {
    /// The trace context of the request that wrote the row.
    pub(super) fn trace(&self) -> opentelemetry::Context {
        crate::propagation::from_map(&HashMap::from([
            ("traceparent".to_owned(), self.traceparent.clone()),
            ("tracestate".to_owned(), self.tracestate.clone()),
        ]))
    }
}

// Due rows take turns by stream (tenant, destination, kind): each stream's
// oldest first, then each one's second, and so on. A tenant ingesting
// millions, or one kind of bulk row, never queues another stream's rows
// behind its own backlog (docs/DECISIONS.md, "Fair claims"). Streams of one
// turn come in random order: a claim of one row (for one free place) would
// otherwise always take the stream with the oldest backlog. The window
// reads every due row: cheap next to a round's deliveries, and a backlog
// is the one time it matters. The lock is taken by the outer SELECT, whose
// own conditions PostgreSQL checks again on the row as another dispatcher
// may just have claimed it (a row in the window's snapshot can be claimed
// by then). Tenants already holding their share of the places
// (`DispatcherConfig::tenant_places`) are left out of a claim.
//
// `{TENANT}` is empty in the global claim; the per-tenant claim
// (`ClaimShape::PerTenant`) names the tenant in every part, so that on an
// outbox distributed by tenant (Citus) each claim is routed to one shard,
// where `FOR UPDATE SKIP LOCKED` and the window work as on one server. The
// due rows are found through `outbox_pending` (tenant_id, next_attempt_at)
// WHERE status = 'pending': its size is the backlog, whatever the number of
// delivered rows kept.
const CLAIM_POSTGRES: &str = "UPDATE outbox SET claimed_until = $1, attempts = attempts + 1 \
     WHERE (tenant_id, id) IN (SELECT tenant_id, id FROM outbox WHERE (tenant_id, id) IN ( \
       SELECT tenant_id, id FROM (SELECT tenant_id, id, next_attempt_at, row_number() OVER \
         (PARTITION BY tenant_id, destination, kind ORDER BY next_attempt_at) AS turn FROM outbox \
         WHERE status = 'pending' AND next_attempt_at <= $2 AND (claimed_until IS NULL OR claimed_until < $2) \
         AND NOT (destination = ANY($4)) AND NOT (tenant_id = ANY($5)) {TENANT}) due \
       ORDER BY turn, random() LIMIT $3) \
       AND status = 'pending' AND (claimed_until IS NULL OR claimed_until < $2) {TENANT} FOR UPDATE SKIP LOCKED) \
     {TENANT} RETURNING tenant_id, id, destination, kind, payload, traceparent, tracestate, attempts, created_at";

/// The tenant of a per-tenant claim, in each part of [`CLAIM_POSTGRES`].
const ONE_TENANT: &str = "AND tenant_id = $6";

// The tenants with due rows, and how many each, for a per-tenant claim: a
// read across shards, without locks; tenants in random order so that a
// claim of fewer rows than tenants does not favour any.
const DUE_TENANTS_POSTGRES: &str = "SELECT tenant_id, count(*) AS due FROM outbox \
     WHERE status = 'pending' AND next_attempt_at <= $1 AND (claimed_until IS NULL OR claimed_until < $1) \
       AND NOT (destination = ANY($2)) AND NOT (tenant_id = ANY($3)) \
     GROUP BY tenant_id ORDER BY random() LIMIT $4";

const CLAIM_SQLITE: &str = "UPDATE outbox SET claimed_until = ?, attempts = attempts + 1 \
     WHERE (tenant_id, id) IN (SELECT tenant_id, id FROM (SELECT tenant_id, id, next_attempt_at, row_number() OVER \
         (PARTITION BY tenant_id, destination, kind ORDER BY next_attempt_at) AS turn FROM outbox \
         WHERE status = 'pending' AND next_attempt_at <= ? AND (claimed_until IS NULL OR claimed_until < ?) \
         {DOWN} {FULL}) due \
       ORDER BY turn, random() LIMIT ?) \
     RETURNING tenant_id, id, destination, kind, payload, traceparent, tracestate, attempts, created_at";

impl Dispatcher {
    /// Destinations left alone right now.
    fn down(&self, now: DateTime<Utc>) -> Vec<String> {
        let outages = self.outages.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        outages.iter().filter(|(_, (until, _))| *until > now).map(|(name, _)| name.clone()).collect()
    }

    /// Takes the lease of up to `batch` due rows.
    pub async fn claim(&self) -> Result<Vec<Claimed>, DbErr> {
        self.claim_up_to(self.config.batch, &[]).await
    }

    /// Takes the lease of up to `limit` due rows of tenants other than `full`.
    pub(super) async fn claim_up_to(&self, limit: u64, full: &[String]) -> Result<Vec<Claimed>, DbErr> {
        let now = now();
        let until = now + self.config.lease;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let backend = self.db.get_database_backend();
        let down = self.down(now);
        let statement = match backend {
            DbBackend::Postgres if self.config.claim == ClaimShape::PerTenant => {
                return self.claim_per_tenant(now, until, limit, &down, full).await;
            }
            DbBackend::Postgres => {
                let values = [until.into(), now.into(), limit.into(), strings(down), strings(full.to_vec())];
                Statement::from_sql_and_values(backend, CLAIM_POSTGRES.replace("{TENANT}", ""), values)
            }
            _ => {
                let not_in = |column: &str, n: usize| {
                    if n == 0 { String::new() } else { format!("AND {column} NOT IN ({})", vec!["?"; n].join(", ")) }
                };
                let sql = CLAIM_SQLITE
                    .replace("{DOWN}", &not_in("destination", down.len()))
                    .replace("{FULL}", &not_in("tenant_id", full.len()));
                let mut values: Vec<sea_orm::Value> = vec![until.into(), now.into(), now.into()];
                values.extend(down.into_iter().map(Into::into));
                values.extend(full.iter().map(|t| t.as_str().into()));
                values.push(limit.into());
                Statement::from_sql_and_values(backend, sql, values)
            }
        };
        let rows = self.db.query_all_raw(statement).await?;
        Ok(in_turns(claimed_rows(&rows)?))
    }

    /// A claim of up to `limit` rows as one statement per tenant with due
    /// rows, the rows shared out evenly: a tenant with fewer due rows than
    /// its share leaves the rest to the others.
    async fn claim_per_tenant(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
        down: &[String],
        full: &[String],
    ) -> Result<Vec<Claimed>, DbErr> {
        let backend = DbBackend::Postgres;
        let values = [now.into(), strings(down.to_vec()), strings(full.to_vec()), limit.into()];
        let due = self.db.query_all_raw(Statement::from_sql_and_values(backend, DUE_TENANTS_POSTGRES, values)).await?;
        let mut due: Vec<(String, i64)> = due
            .iter()
            .map(|row| Ok((row.try_get("", "tenant_id")?, row.try_get("", "due")?)))
            .collect::<Result<_, DbErr>>()?;
        let sql = CLAIM_POSTGRES.replace("{TENANT}", ONE_TENANT);
        let mut claimed = Vec::new();
        for (tenant, share) in shares(&mut due, limit) {
            let values =
                [until.into(), now.into(), share.into(), strings(down.to_vec()), strings(full.to_vec()), tenant.into()];
            let rows = self.db.query_all_raw(Statement::from_sql_and_values(backend, &sql, values)).await?;
            claimed.extend(claimed_rows(&rows)?);
        }
        Ok(in_turns(claimed))
    }

    /// Records messages of `tenant` as delivered, in one statement.
    pub(super) async fn mark_delivered(&self, tenant: &TenantId, ids: &[Uuid]) -> Result<(), DbErr> {
        scoped_update::<message::Entity>(tenant)
            .filter(crate::store::one_of(self.db.get_database_backend(), message::Column::Id, ids))
            .col_expr(message::Column::ClaimedUntil, Expr::value(Option::<DateTime<Utc>>::None))
            .col_expr(message::Column::Status, Expr::value(DELIVERED))
            .col_expr(message::Column::DeliveredAt, Expr::value(Some(now())))
            .exec(&self.db)
            .await
            .map(|_| ())
    }

    /// Counts one delivery attempt of `message` (`cx_outbox_attempts_total`).
    pub(super) fn count_attempt(&self, message: &Claimed, outcome: &'static str) {
        let label = crate::metrics::AttemptLabel {
            cx_service: self.config.source.to_owned(),
            destination: message.destination.clone(),
            outcome,
        };
        crate::metrics::process().outbox_attempts.get_or_create(&label).inc();
    }

    /// Sets the outbox's gauges: rows pending and the age of the oldest,
    /// rows dead. Read through the partial indexes of pending and dead rows.
    pub async fn observe(&self) -> Result<(), DbErr> {
        let backend = self.db.get_database_backend();
        let pending = "SELECT count(*) AS n, min(created_at) AS oldest FROM outbox WHERE status = 'pending'";
        let row = self.db.query_one_raw(Statement::from_string(backend, pending)).await?;
        let (count, oldest): (i64, Option<DateTime<Utc>>) = match &row {
            Some(row) => (row.try_get("", "n")?, row.try_get("", "oldest")?),
            None => (0, None),
        };
        let dead = "SELECT count(*) AS n FROM outbox WHERE status = 'dead'";
        let row = self.db.query_one_raw(Statement::from_string(backend, dead)).await?;
        let dead: i64 = match &row {
            Some(row) => row.try_get("", "n")?,
            None => 0,
        };
        let age = oldest.map_or(0.0, |at| std::cmp::max((now() - at).num_milliseconds(), 0) as f64 / 1000.0);
        let label = crate::metrics::ServiceLabel { cx_service: self.config.source.to_owned() };
        let process = crate::metrics::process();
        process.outbox_pending.get_or_create(&label).set(count);
        process.outbox_oldest_age.get_or_create(&label).set(age);
        process.outbox_dead.get_or_create(&label).set(dead);
        Ok(())
    }

    /// Records the outcome of one attempt.
    pub async fn settle(&self, message: &Claimed, outcome: &Result<bool, tonic::Status>) -> Result<(), DbErr> {
        let Ok(tenant) = TenantId::parse(&message.tenant_id) else { return Ok(()) };
        let Err(status) = outcome else {
            self.count_attempt(message, "delivered");
            return self.mark_delivered(&tenant, &[message.id]).await;
        };
        let update = scoped_update::<message::Entity>(&tenant)
            .filter(message::Column::Id.eq(message.id))
            .col_expr(message::Column::ClaimedUntil, Expr::value(Option::<DateTime<Utc>>::None));
        let update = if crate::outbox::inbox::is_hold(status) {
            self.count_attempt(message, "held");
            // The receiver will take it once its state passes: not a failure.
            tracing::info!(
                message_id = %message.id, destination = message.destination, reason = %status.message(),
                "outbox message held by its receiver, will send again"
            );
            let retry_at = now() + self.config.hold;
            update
                .col_expr(message::Column::Attempts, Expr::col(message::Column::Attempts).sub(1))
                .col_expr(message::Column::NextAttemptAt, Expr::value(retry_at))
        } else if message.attempt >= self.config.retry.max_attempts {
            self.count_attempt(message, "dead");
            tracing::error!(
                message_id = %message.id, kind = message.kind, destination = message.destination,
                attempts = message.attempt, error = %status, "outbox message dead-lettered"
            );
            update.col_expr(message::Column::Status, Expr::value(DEAD))
        } else {
            self.count_attempt(message, "failed");
            tracing::warn!(
                message_id = %message.id, destination = message.destination, attempt = message.attempt,
                error = %status, "outbox delivery failed, will retry"
            );
            let retry_at = now() + self.config.retry.delay(message.attempt);
            update.col_expr(message::Column::NextAttemptAt, Expr::value(retry_at))
        };
        let update = update.col_expr(message::Column::LastError, Expr::value(status.to_string()));
        update.exec(&self.db).await.map(|_| ())
    }

    /// Destinations whose messages could not reach them (and none did this
    /// round) are left alone for a while, doubling while they stay down;
    /// their messages wait until then and keep their attempts, so an outage
    /// of a receiver dead-letters nothing. One line is logged per destination.
    pub(super) async fn strand(&self, stranded: &[&Claimed], reached: &HashSet<&str>) -> Result<(), DbErr> {
        let now = now();
        let mut until: HashMap<&str, DateTime<Utc>> = HashMap::new();
        {
            let mut outages = self.outages.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            outages.retain(|name, _| !reached.contains(name.as_str()));
            for message in stranded {
                let name = message.destination.as_str();
                if reached.contains(name) || until.contains_key(name) {
                    continue;
                }
                let rounds = outages.get(name).map_or(1, |(_, rounds)| rounds.saturating_add(1));
                let back = now + self.config.outage.delay(rounds);
                outages.insert(name.to_owned(), (back, rounds));
                until.insert(name, back);
            }
        }
        for (name, back) in &until {
            let waiting = stranded.iter().filter(|m| m.destination == *name).count();
            tracing::warn!(
                destination = name, messages = waiting, retry_at = %back,
                "outbox destination unreachable, its messages wait"
            );
        }
        // One statement per tenant and destination: a round strands up to a batch.
        let mut groups: HashMap<(&str, &str), Vec<Uuid>> = HashMap::new();
        for message in stranded {
            groups.entry((message.tenant_id.as_str(), message.destination.as_str())).or_default().push(message.id);
        }
        for ((tenant, destination), ids) in groups {
            let Ok(tenant) = TenantId::parse(tenant) else { continue };
            // Reached by another message this round: retry at once.
            let retry_at = until.get(destination).copied().unwrap_or(now);
            self.given_back(&tenant, &ids)
                .col_expr(message::Column::NextAttemptAt, Expr::value(retry_at))
                .col_expr(message::Column::LastError, Expr::value("destination unreachable"))
                .exec(&self.db)
                .await?;
        }
        Ok(())
    }

    /// Gives back claimed rows not sent: no longer claimed, their attempt
    /// given back, due as before.
    pub(super) async fn release(&self, rows: &[&Claimed]) -> Result<(), DbErr> {
        let mut groups: HashMap<&str, Vec<Uuid>> = HashMap::new();
        for row in rows {
            groups.entry(row.tenant_id.as_str()).or_default().push(row.id);
        }
        for (tenant, ids) in groups {
            let Ok(tenant) = TenantId::parse(tenant) else { continue };
            self.given_back(&tenant, &ids).exec(&self.db).await?;
        }
        Ok(())
    }

    /// The update giving claimed rows `ids` of `tenant` back to the outbox:
    /// no longer claimed, and the attempt their claim counted given back.
    fn given_back(&self, tenant: &TenantId, ids: &[Uuid]) -> sea_orm::UpdateMany<message::Entity> {
        scoped_update::<message::Entity>(tenant)
            .filter(crate::store::one_of(self.db.get_database_backend(), message::Column::Id, ids))
            .col_expr(message::Column::ClaimedUntil, Expr::value(Option::<DateTime<Utc>>::None))
            .col_expr(message::Column::Attempts, Expr::col(message::Column::Attempts).sub(1))
    }

    /// Deletes delivered rows older than `keep_delivered`.
    pub async fn prune(&self) -> Result<u64, DbErr> {
        let before = now() - self.config.keep_delivered;
        let sql = match self.db.get_database_backend() {
            DbBackend::Postgres => "DELETE FROM outbox WHERE status = $1 AND delivered_at < $2",
            _ => "DELETE FROM outbox WHERE status = ? AND delivered_at < ?",
        };
        let statement =
            Statement::from_sql_and_values(self.db.get_database_backend(), sql, [DELIVERED.into(), before.into()]);
        Ok(self.db.execute_raw(statement).await?.rows_affected())
    }
}

/// A PostgreSQL text array.
fn strings(values: Vec<String>) -> sea_orm::Value {
    crate::store::pg_array(sea_orm::sea_query::ArrayType::String, values)
}

/// Rows `limit` shared out among tenants with `due` rows each: evenly, a
/// tenant with fewer due rows than its share taking only those.
fn shares(due: &mut [(String, i64)], limit: i64) -> Vec<(String, i64)> {
    due.sort_by_key(|(_, n)| *n);
    let mut left = limit;
    let mut out = Vec::with_capacity(due.len());
    for (i, (tenant, n)) in due.iter().enumerate() {
        let others = i64::try_from(due.len() - i).unwrap_or(i64::MAX);
        let share = std::cmp::min(*n, left / others);
        if share > 0 {
            out.push((tenant.clone(), share));
            left -= share;
        }
    }
    out
}

/// The rows a claim returned.
fn claimed_rows(rows: &[sea_orm::QueryResult]) -> Result<Vec<Claimed>, DbErr> {
    rows.iter()
        .map(|row| {
            Ok(Claimed {
                tenant_id: row.try_get("", "tenant_id")?,
                id: row.try_get("", "id")?,
                destination: row.try_get("", "destination")?,
                kind: row.try_get("", "kind")?,
                payload: row.try_get("", "payload")?,
                traceparent: row.try_get("", "traceparent")?,
                tracestate: row.try_get("", "tracestate")?,
                attempt: row.try_get("", "attempts")?,
                created_at: row.try_get("", "created_at")?,
            })
        })
        .collect()
}

/// `claimed` in the order the claim took them (RETURNING keeps none): the
/// streams in turn, each stream oldest first, so a round's first deliveries
/// in flight are of every stream, not of the one with the longest backlog.
fn in_turns(mut claimed: Vec<Claimed>) -> Vec<Claimed> {
    claimed.sort_by(|a, b| {
        (&a.tenant_id, &a.destination, &a.kind, a.created_at).cmp(&(
            &b.tenant_id,
            &b.destination,
            &b.kind,
            b.created_at,
        ))
    });
    let mut turn = 0usize;
    let mut keyed: Vec<(usize, Claimed)> = Vec::with_capacity(claimed.len());
    for row in claimed {
        let same_stream = keyed.last().is_some_and(|(_, last)| {
            (&last.tenant_id, &last.destination, &last.kind) == (&row.tenant_id, &row.destination, &row.kind)
        });
        turn = if same_stream { turn + 1 } else { 0 };
        keyed.push((turn, row));
    }
    // Stable: within a turn, streams keep their sorted order.
    keyed.sort_by_key(|(turn, _)| *turn);
    keyed.into_iter().map(|(_, row)| row).collect()
}

/// Messages of a tenant in a given status (dead letters, for operators).
pub async fn messages<C: ConnectionTrait>(
    conn: &C,
    tenant: &TenantId,
    status: &str,
) -> Result<Vec<message::Model>, DbErr> {
    scoped::<message::Entity>(tenant).filter(message::Column::Status.eq(status)).all(conn).await
}

/// Every message of a tenant, whatever its status, read in one statement (a
/// row delivered between two reads by status would be seen twice).
pub async fn all_messages<C: ConnectionTrait>(conn: &C, tenant: &TenantId) -> Result<Vec<message::Model>, DbErr> {
    scoped::<message::Entity>(tenant).all(conn).await
}
