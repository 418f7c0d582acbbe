//! Delivers outbox rows over gRPC: claim due rows, send them, record the
//! outcome. Retries back off exponentially with jitter; after the last
//! attempt a row is dead-lettered (kept and logged, never dropped).
//!
//! Claims are leases: a claimed row carries `claimed_until`, and no other
//! dispatcher takes it before then. On PostgreSQL the claim skips rows
//! another dispatcher is claiming at that moment (`FOR UPDATE SKIP LOCKED`),
//! so several replicas share the work without delivering one message twice
//! at once. SQLite (embedded mode) runs one dispatcher.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use cx_proto::outbox::v1::DeliverRequest;
use cx_proto::outbox::v1::inbox_service_client::InboxServiceClient;
use futures::future::join_all;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, QueryFilter, Statement};
use tonic::transport::Channel;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use uuid::Uuid;

use super::entity::message;
use super::{DEAD, DELIVERED};
use crate::TenantId;
use crate::identity::ServiceKey;
use crate::propagation::{ClientSide, ClientTraceLayer, Traced};
use crate::store::{now, scoped, scoped_update};

/// Exponential backoff with jitter, and when to give up.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts before a message is dead-lettered.
    pub max_attempts: i32,
    /// Delay after the first failure (before jitter).
    pub base: Duration,
    /// Longest delay.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 12, base: Duration::from_millis(500), cap: Duration::from_secs(300) }
    }
}

impl RetryPolicy {
    /// Delay after failed attempt `attempt` (1-based): half of
    /// `min(cap, base·2^(attempt-1))` fixed, the other half random, so
    /// retries of many messages spread out instead of arriving together.
    pub fn delay(&self, attempt: i32) -> Duration {
        let exponent = u32::try_from(attempt.saturating_sub(1)).unwrap_or(0).min(30);
        let full = self.base.saturating_mul(1 << exponent).min(self.cap);
        full / 2 + full.mul_f64(rand::random::<f64>() / 2.0)
    }
}

#[derive(Clone, Debug)]
pub struct DispatcherConfig {
    /// This service's name, sent as the message source.
    pub source: &'static str,
    /// Rows claimed per round.
    pub batch: u64,
    /// How long a claim lasts: longer than any delivery takes.
    pub lease: Duration,
    /// Pause when nothing is due.
    pub poll: Duration,
    pub retry: RetryPolicy,
    /// Delivered rows are kept this long, then pruned.
    pub keep_delivered: Duration,
    /// How long a destination that cannot be reached is left alone, doubling
    /// while it stays down (its messages keep their attempts meanwhile).
    pub outage: RetryPolicy,
}

impl DispatcherConfig {
    pub fn new(source: &'static str) -> Self {
        Self {
            source,
            batch: 100,
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(200),
            retry: RetryPolicy::default(),
            keep_delivered: Duration::from_secs(24 * 3600),
            outage: RetryPolicy {
                max_attempts: i32::MAX,
                base: Duration::from_millis(500),
                cap: Duration::from_secs(30),
            },
        }
    }
}

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
    fn trace(&self) -> opentelemetry::Context {
        crate::propagation::from_map(&HashMap::from([
            ("traceparent".to_owned(), self.traceparent.clone()),
            ("tracestate".to_owned(), self.tracestate.clone()),
        ]))
    }
}

/// Makes, when it is delivered, the message a row stands for: a row may
/// name records of the sender's own (touchpoint ids, say) instead of
/// carrying what the receiver takes, so that the statement writing those
/// records can write the row too.
///
/// A round's rows of one kind are expanded together, so that reading their
/// records takes a query or a few, not a pooled connection per row.
#[async_trait::async_trait]
pub trait Expand: Send + Sync + std::fmt::Debug {
    /// For each of `messages`, in order, the kind and payload to deliver;
    /// `None` when nothing is left to send (the records are gone), which
    /// counts as delivered; an error fails that row's attempt.
    async fn expand(&self, messages: &[&Claimed]) -> Vec<Result<Option<Content>, tonic::Status>>;
}

/// The kind and payload of a delivery.
pub type Content = (String, Vec<u8>);

type InboxClient = InboxServiceClient<Traced<Channel, ClientSide>>;

#[derive(Clone, Debug)]
pub struct Dispatcher {
    db: DatabaseConnection,
    config: DispatcherConfig,
    destinations: HashMap<String, InboxClient>,
    /// By the kind of the rows they expand.
    expanders: HashMap<String, Arc<dyn Expand>>,
    /// Signs each delivery as this service (never a user's token).
    key: ServiceKey,
    outages: Arc<Mutex<Outages>>,
}

/// Destinations that could not be reached: until when they are left alone,
/// and how many rounds in a row they were down.
type Outages = HashMap<String, (DateTime<Utc>, i32)>;

/// Whether a failed delivery never reached the receiver (refused or broken
/// connection, or no endpoint configured for it), as opposed to an answer of
/// the receiver's.
fn unreachable(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::Unavailable
        && std::error::Error::source(status).is_some_and(|e| e.is::<tonic::transport::Error>() || e.is::<NoEndpoint>())
}

/// A destination this process has no endpoint for: its messages wait (as
/// for an outage) until one is configured, never dead-lettered.
#[derive(Debug, thiserror::Error)]
#[error("no endpoint is configured for the {0} service")]
struct NoEndpoint(String);

const CLAIM_POSTGRES: &str = "UPDATE outbox SET claimed_until = $1, attempts = attempts + 1 \
     WHERE (tenant_id, id) IN (SELECT tenant_id, id FROM outbox \
       WHERE status = 'pending' AND next_attempt_at <= $2 AND (claimed_until IS NULL OR claimed_until < $2) \
       AND NOT (destination = ANY($4)) \
       ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
     RETURNING tenant_id, id, destination, kind, payload, traceparent, tracestate, attempts, created_at";

const CLAIM_SQLITE: &str = "UPDATE outbox SET claimed_until = ?, attempts = attempts + 1 \
     WHERE (tenant_id, id) IN (SELECT tenant_id, id FROM outbox \
       WHERE status = 'pending' AND next_attempt_at <= ? AND (claimed_until IS NULL OR claimed_until < ?) \
       {DOWN} ORDER BY next_attempt_at LIMIT ?) \
     RETURNING tenant_id, id, destination, kind, payload, traceparent, tracestate, attempts, created_at";

impl Dispatcher {
    /// `destinations` maps a service name to the channel of its server.
    pub fn new(
        db: DatabaseConnection,
        config: DispatcherConfig,
        destinations: HashMap<String, Channel>,
        key: ServiceKey,
    ) -> Self {
        let destinations = destinations
            .into_iter()
            .map(|(name, channel)| {
                let traced = tower::Layer::layer(&ClientTraceLayer::default(), channel);
                (name, InboxServiceClient::new(traced))
            })
            .collect();
        Self { db, config, destinations, expanders: HashMap::new(), key, outages: Arc::default() }
    }

    /// Rows of `kind` are expanded by `expander` when delivered.
    pub fn expand(mut self, kind: &super::Kind, expander: Arc<dyn Expand>) -> Self {
        self.expanders.insert(kind.as_str().to_owned(), expander);
        self
    }

    /// The kinds of rows this dispatcher expands.
    pub fn expanded_kinds(&self) -> Vec<String> {
        self.expanders.keys().cloned().collect()
    }

    /// Destinations left alone right now.
    fn down(&self, now: DateTime<Utc>) -> Vec<String> {
        let outages = self.outages.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        outages.iter().filter(|(_, (until, _))| *until > now).map(|(name, _)| name.clone()).collect()
    }

    /// Takes the lease of up to `batch` due rows.
    pub async fn claim(&self) -> Result<Vec<Claimed>, DbErr> {
        let now = now();
        let until = now + self.config.lease;
        let limit = i64::try_from(self.config.batch).unwrap_or(i64::MAX);
        let backend = self.db.get_database_backend();
        let down = self.down(now);
        let statement = match backend {
            DbBackend::Postgres => {
                let down = crate::store::pg_array(sea_orm::sea_query::ArrayType::String, down);
                Statement::from_sql_and_values(backend, CLAIM_POSTGRES, [until.into(), now.into(), limit.into(), down])
            }
            _ => {
                let skip = if down.is_empty() {
                    String::new()
                } else {
                    format!("AND destination NOT IN ({})", vec!["?"; down.len()].join(", "))
                };
                let mut values: Vec<sea_orm::Value> = vec![until.into(), now.into(), now.into()];
                values.extend(down.into_iter().map(Into::into));
                values.push(limit.into());
                Statement::from_sql_and_values(backend, CLAIM_SQLITE.replace("{DOWN}", &skip), values)
            }
        };
        let rows = self.db.query_all_raw(statement).await?;
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

    /// Sends one claimed message; `Ok(duplicate)` when the receiver took it,
    /// `Ok(false)` too when an expanded row had nothing left to send.
    pub async fn send(&self, message: &Claimed) -> Result<bool, tonic::Status> {
        match self.contents(std::slice::from_ref(message)).await.pop() {
            Some(Ok(Some(content))) => self.deliver(message, content).await,
            Some(Err(status)) => Err(status),
            Some(Ok(None)) | None => Ok(false),
        }
    }

    /// What each of `claimed` delivers, in order: its own kind and payload,
    /// or what the expander of its kind makes of it.
    async fn contents(&self, claimed: &[Claimed]) -> Vec<Result<Option<Content>, tonic::Status>> {
        // Rows of an expander's kind are filled in below, without copying their payload.
        let mut contents: Vec<_> = claimed
            .iter()
            .map(|m| Ok((!self.expanders.contains_key(&m.kind)).then(|| (m.kind.clone(), m.payload.clone()))))
            .collect();
        for (kind, expander) in &self.expanders {
            let (at, messages): (Vec<usize>, Vec<&Claimed>) =
                claimed.iter().enumerate().filter(|(_, m)| &m.kind == kind).unzip();
            if messages.is_empty() {
                continue;
            }
            let span = tracing::info_span!("outbox.expand", otel.name = %format!("outbox expand {kind}"), rows = messages.len());
            // One span for rows of many traces: linked to each of them.
            for m in &messages {
                span.add_link(opentelemetry::trace::TraceContextExt::span(&m.trace()).span_context().clone());
            }
            let mut expanded = expander.expand(&messages).instrument(span).await;
            expanded.resize_with(messages.len(), || Err(tonic::Status::internal(format!("{kind}: row not expanded"))));
            for (i, content) in at.into_iter().zip(expanded) {
                contents[i] = content;
            }
        }
        contents
    }

    /// Sends `content` for `message`, in a span of the trace that wrote it.
    async fn deliver(&self, message: &Claimed, content: Content) -> Result<bool, tonic::Status> {
        // Named after what is delivered (an expanded row's message).
        let span = tracing::info_span!(
            "outbox.deliver",
            otel.name = %format!("outbox deliver {}", content.0),
            otel.kind = "producer",
            messaging.system = "cx-outbox",
            messaging.operation = "deliver",
            messaging.destination.name = %message.destination,
            messaging.message.id = %message.id,
            cx.outbox.attempt = message.attempt,
        );
        let _ = span.set_parent(message.trace());
        self.send_now(message, content).instrument(span).await
    }

    async fn send_now(&self, message: &Claimed, (kind, payload): Content) -> Result<bool, tonic::Status> {
        let Some(client) = self.destinations.get(&message.destination) else {
            let missing = NoEndpoint(message.destination.clone());
            let mut status = tonic::Status::unavailable(missing.to_string());
            status.set_source(Arc::new(missing));
            return Err(status);
        };
        let mut request = tonic::Request::new(DeliverRequest {
            message_id: message.id.to_string(),
            kind,
            payload,
            source: self.config.source.to_owned(),
            create_time: Some(cx_proto::timestamp(message.created_at)),
            destination: message.destination.clone(),
        });
        // The receiver stops working on a delivery the lease no longer covers.
        request.set_timeout(self.config.lease / 2);
        let identity = self.key.bearer(self.config.source, &message.tenant_id)?;
        request.metadata_mut().insert("authorization", identity);
        if let Ok(id) = message.id.to_string().parse() {
            request.metadata_mut().insert("cx-message-id", id);
        }
        let response = client.clone().deliver(request).await?;
        Ok(response.into_inner().duplicate)
    }

    /// Records messages of `tenant` as delivered, in one statement.
    async fn mark_delivered(&self, tenant: &TenantId, ids: &[Uuid]) -> Result<(), DbErr> {
        scoped_update::<message::Entity>(tenant)
            .filter(crate::store::one_of(self.db.get_database_backend(), message::Column::Id, ids))
            .col_expr(message::Column::ClaimedUntil, Expr::value(Option::<DateTime<Utc>>::None))
            .col_expr(message::Column::Status, Expr::value(DELIVERED))
            .col_expr(message::Column::DeliveredAt, Expr::value(Some(now())))
            .exec(&self.db)
            .await
            .map(|_| ())
    }

    /// Records the outcome of one attempt.
    pub async fn settle(&self, message: &Claimed, outcome: &Result<bool, tonic::Status>) -> Result<(), DbErr> {
        let Ok(tenant) = TenantId::parse(&message.tenant_id) else { return Ok(()) };
        let Err(status) = outcome else { return self.mark_delivered(&tenant, &[message.id]).await };
        let update = scoped_update::<message::Entity>(&tenant)
            .filter(message::Column::Id.eq(message.id))
            .col_expr(message::Column::ClaimedUntil, Expr::value(Option::<DateTime<Utc>>::None));
        let update = if message.attempt >= self.config.retry.max_attempts {
            tracing::error!(
                message_id = %message.id, kind = message.kind, destination = message.destination,
                attempts = message.attempt, error = %status, "outbox message dead-lettered"
            );
            update.col_expr(message::Column::Status, Expr::value(DEAD))
        } else {
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
    async fn strand(&self, stranded: &[&Claimed], reached: &HashSet<&str>) -> Result<(), DbErr> {
        use sea_orm::sea_query::ExprTrait as _;
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
            scoped_update::<message::Entity>(&tenant)
                .filter(crate::store::one_of(self.db.get_database_backend(), message::Column::Id, &ids))
                .col_expr(message::Column::ClaimedUntil, Expr::value(Option::<DateTime<Utc>>::None))
                .col_expr(message::Column::Attempts, Expr::col(message::Column::Attempts).sub(1))
                .col_expr(message::Column::NextAttemptAt, Expr::value(retry_at))
                .col_expr(message::Column::LastError, Expr::value("destination unreachable"))
                .exec(&self.db)
                .await?;
        }
        Ok(())
    }

    /// One round: claim, send everything claimed at once, record outcomes:
    /// the delivered ones in one statement per tenant, each failure on its
    /// own (it has its own next attempt). Returns how many messages it tried.
    pub async fn tick(&self) -> Result<usize, DbErr> {
        let claimed = self.claim().await?;
        let mut delivered: HashMap<&str, Vec<Uuid>> = HashMap::new();
        let mut reached: HashSet<&str> = HashSet::new();
        let mut stranded: Vec<&Claimed> = Vec::new();
        // Rows an expander failed on or found empty never reach the receiver:
        // settled here, they say nothing of whether it is up.
        let mut sending = Vec::with_capacity(claimed.len());
        for (message, content) in claimed.iter().zip(self.contents(&claimed).await) {
            match content {
                Ok(Some(content)) => sending.push((message, content)),
                Ok(None) => delivered.entry(message.tenant_id.as_str()).or_default().push(message.id),
                Err(status) => self.settle(message, &Err(status)).await?,
            }
        }
        let (sent, contents): (Vec<&Claimed>, Vec<Content>) = sending.into_iter().unzip();
        let outcomes = join_all(sent.iter().zip(contents).map(|(m, content)| self.deliver(m, content))).await;
        for (message, outcome) in sent.into_iter().zip(&outcomes) {
            match outcome {
                Err(status) if unreachable(status) => stranded.push(message),
                Ok(_) => {
                    reached.insert(&message.destination);
                    delivered.entry(message.tenant_id.as_str()).or_default().push(message.id);
                }
                Err(_) => {
                    reached.insert(&message.destination);
                    self.settle(message, outcome).await?;
                }
            }
        }
        for (tenant, ids) in delivered {
            let Ok(tenant) = TenantId::parse(tenant) else { continue };
            self.mark_delivered(&tenant, &ids).await?;
        }
        self.strand(&stranded, &reached).await?;
        Ok(claimed.len())
    }

    /// Delivers until `stop` turns true.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut last_prune = tokio::time::Instant::now();
        while !*stop.borrow() {
            let tried = match self.tick().await {
                Ok(n) => n,
                Err(err) => {
                    tracing::warn!(error = %err, "outbox dispatcher cannot reach its database");
                    0
                }
            };
            if last_prune.elapsed() > Duration::from_secs(60) {
                last_prune = tokio::time::Instant::now();
                if let Err(err) = self.prune().await {
                    tracing::warn!(error = %err, "cannot prune delivered outbox rows");
                }
            }
            if tried == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(self.config.poll) => {}
                    _ = stop.changed() => {}
                }
            }
        }
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

/// Messages of a tenant in a given status (dead letters, for operators).
pub async fn messages<C: ConnectionTrait>(
    conn: &C,
    tenant: &TenantId,
    status: &str,
) -> Result<Vec<message::Model>, DbErr> {
    scoped::<message::Entity>(tenant).filter(message::Column::Status.eq(status)).all(conn).await
}

/// Deletes a tenant's messages whose payload mentions `needle` (an erased
/// customer's id), whatever their state: erasure leaves no copy of the id
/// in the outbox, not even in delivered rows kept for a while. Rows of the
/// `spared` kinds are kept: they name records instead of carrying them (see
/// [`Expand`]), so a mention there is a coincidence and the erasure of the
/// records already takes them out of the delivery.
pub async fn forget_mentions<C: ConnectionTrait>(
    conn: &C,
    tenant: &TenantId,
    needle: &str,
    spared: &[&str],
) -> Result<u64, DbErr> {
    let backend = conn.get_database_backend();
    let mut values: Vec<sea_orm::Value> = vec![tenant.as_str().into(), needle.as_bytes().to_vec().into()];
    let sql = match backend {
        DbBackend::Postgres => {
            values.push(crate::store::pg_array(sea_orm::sea_query::ArrayType::String, spared.iter().copied()));
            "DELETE FROM outbox WHERE tenant_id = $1 AND position($2::bytea in payload) > 0 AND kind <> ALL($3)"
                .to_owned()
        }
        _ => {
            values.extend(spared.iter().map(|k| (*k).into()));
            let kept = vec!["?"; spared.len()].join(", ");
            format!("DELETE FROM outbox WHERE tenant_id = ? AND instr(payload, ?) > 0 AND kind NOT IN ({kept})")
        }
    };
    Ok(conn.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_caps() {
        let policy = RetryPolicy { max_attempts: 5, base: Duration::from_millis(100), cap: Duration::from_secs(1) };
        for _ in 0..100 {
            let first = policy.delay(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100), "{first:?}");
            let third = policy.delay(3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400), "{third:?}");
            let late = policy.delay(20);
            assert!(late >= Duration::from_millis(500) && late <= Duration::from_secs(1), "{late:?}");
        }
    }
}
