//! Sending what a dispatcher claimed: the content of each row (its own, or
//! what an expander makes of it), one span per delivery in the trace that
//! wrote the row, a round that settles every outcome, and the loop.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use cx_proto::outbox::v1::DeliverRequest;
use futures::StreamExt as _;
use sea_orm::DbErr;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use uuid::Uuid;

use super::{Claimed, Dispatcher};
use crate::TenantId;

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

impl Dispatcher {
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

    /// Claims due rows and makes their contents: those to send, in claim
    /// order; rows an expander failed on or found empty never reach the
    /// receiver and are settled here (they say nothing of whether it is up).
    async fn claim_contents(&self, limit: u64, full: &[String]) -> Result<(usize, Vec<(Claimed, Content)>), DbErr> {
        let claimed = self.claim_up_to(limit, full).await?;
        let count = claimed.len();
        let contents = self.contents(&claimed).await;
        let mut sending = Vec::with_capacity(count);
        let mut empty = Vec::new();
        for (message, content) in claimed.into_iter().zip(contents) {
            match content {
                Ok(Some(content)) => sending.push((message, content)),
                Ok(None) => empty.push((message, Ok(false))),
                Err(status) => self.settle(&message, &Err(status)).await?,
            }
        }
        self.settle_all(&empty).await?;
        Ok((count, sending))
    }

    /// Records the outcomes of sent messages: the delivered ones in one
    /// statement per tenant, each failure on its own (it has its own next
    /// attempt), and the messages of destinations none of them reached as
    /// stranded.
    async fn settle_all(&self, outcomes: &[(Claimed, Result<bool, tonic::Status>)]) -> Result<(), DbErr> {
        let mut delivered: HashMap<&str, Vec<Uuid>> = HashMap::new();
        let mut reached: HashSet<&str> = HashSet::new();
        let mut stranded: Vec<&Claimed> = Vec::new();
        for (message, outcome) in outcomes {
            match outcome {
                Err(status) if unreachable(status) => {
                    self.count_attempt(message, "unreachable");
                    stranded.push(message);
                }
                Ok(_) => {
                    self.count_attempt(message, "delivered");
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
        self.strand(&stranded, &reached).await
    }

    /// One round: claim, send what was claimed (`in_flight` at once), record
    /// the outcomes. Returns how many messages it tried.
    pub async fn tick(&self) -> Result<usize, DbErr> {
        let (count, sending) = self.claim_contents(self.config.batch, &[]).await?;
        let outcomes: Vec<_> = futures::stream::iter(sending)
            .map(|(message, content)| async move {
                let outcome = self.deliver(&message, content).await;
                (message, outcome)
            })
            .buffered(self.config.in_flight.max(1))
            .collect()
            .await;
        self.settle_all(&outcomes).await?;
        Ok(count)
    }

    /// Delivers until `stop` turns true. Unlike rounds of [`Self::tick`],
    /// a free place of `in_flight` is taken at once: a row claimed while
    /// slow deliveries are under way (a thousand touchpoints each, under
    /// load) waits for one of them, not for all. A tenant takes at most
    /// `tenant_places` places; its other rows wait in the queue, and a free
    /// place claims other tenants' rows. Outcomes are recorded in groups,
    /// when nothing more is due or every `SETTLE_EVERY`.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        const SETTLE_EVERY: Duration = Duration::from_millis(200);
        let in_flight = self.config.in_flight.max(1);
        let mut places = Places::new(self.config.tenant_places.clamp(1, in_flight));
        let mut queue: VecDeque<(Claimed, Content)> = VecDeque::new();
        let mut running = futures::stream::FuturesUnordered::new();
        let mut done: Vec<(Claimed, Result<bool, tonic::Status>)> = Vec::new();
        let mut last_settle = tokio::time::Instant::now();
        let mut last_prune = tokio::time::Instant::now();
        // How often the outbox's gauges (pending, oldest, dead) are read.
        const OBSERVE_EVERY: Duration = Duration::from_secs(15);
        let mut last_observed: Option<tokio::time::Instant> = None;
        while !*stop.borrow() {
            // Claim when no claimed row can start and a place is free.
            let mut idle = false;
            if running.len() < in_flight && places.next(&queue).is_none() {
                let limit = self.claim_limit(in_flight - running.len());
                match self.claim_contents(limit, &places.full()).await {
                    Ok((count, sending)) => {
                        queue.extend(sending);
                        idle = count == 0;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "outbox dispatcher cannot reach its database");
                        idle = true;
                    }
                }
            }
            while running.len() < in_flight {
                let Some(next) = places.next(&queue) else { break };
                let Some((message, content)) = queue.remove(next) else { break };
                places.take(&message);
                let this = &self;
                running.push(async move {
                    let started = std::time::Instant::now();
                    let outcome = this.deliver(&message, content).await;
                    this.timed(started.elapsed());
                    (message, outcome)
                });
            }
            let settle_now = !done.is_empty() && (running.is_empty() || last_settle.elapsed() >= SETTLE_EVERY);
            if settle_now {
                if let Err(err) = self.settle_all(&done).await {
                    tracing::warn!(error = %err, "outbox dispatcher cannot record outcomes, they are sent again");
                }
                done.clear();
                last_settle = tokio::time::Instant::now();
            }
            if last_observed.is_none_or(|at| at.elapsed() >= OBSERVE_EVERY) {
                last_observed = Some(tokio::time::Instant::now());
                if let Err(err) = self.observe().await {
                    tracing::warn!(error = %err, "cannot measure the outbox");
                }
            }
            if last_prune.elapsed() > Duration::from_secs(60) {
                last_prune = tokio::time::Instant::now();
                if let Err(err) = self.prune().await {
                    tracing::warn!(error = %err, "cannot prune delivered outbox rows");
                }
            }
            if running.is_empty() {
                if idle && places.next(&queue).is_none() {
                    tokio::select! {
                        _ = tokio::time::sleep(self.config.poll) => {}
                        _ = stop.changed() => {}
                    }
                }
                continue;
            }
            // Wait for a delivery to end, or for the time to record outcomes.
            let deadline = last_settle + SETTLE_EVERY;
            // A free place looks for due rows again after `poll`.
            let looking = running.len() < in_flight && places.next(&queue).is_none();
            tokio::select! {
                Some(finished) = running.next() => {
                    places.free(&finished.0);
                    done.push(finished);
                    // Deliveries turned out slower than when the queue was
                    // claimed (a backlog of heavy rows begins): what the free
                    // places would not start within `round` goes back, so a
                    // row written meanwhile is not queued behind it.
                    let keep = usize::try_from(self.claim_limit(in_flight)).unwrap_or(usize::MAX);
                    if queue.len() > keep {
                        let back: Vec<(Claimed, Content)> = queue.drain(keep..).collect();
                        let rows: Vec<&Claimed> = back.iter().map(|(row, _)| row).collect();
                        if let Err(err) = self.release(&rows).await {
                            tracing::warn!(error = %err, "outbox dispatcher cannot give back rows, they wait for their lease");
                        }
                    }
                }
                _ = tokio::time::sleep_until(deadline), if !done.is_empty() => {}
                _ = tokio::time::sleep(self.config.poll), if looking => {}
                _ = stop.changed() => {}
            }
        }
        // Stopping: what is under way ends, and is recorded.
        while let Some(finished) = running.next().await {
            done.push(finished);
        }
        if let Err(err) = self.settle_all(&done).await {
            tracing::warn!(error = %err, "outbox dispatcher cannot record outcomes, they are sent again");
        }
    }
}

/// The places each tenant's deliveries hold, against its share.
#[derive(Debug)]
struct Places {
    share: usize,
    held: HashMap<String, usize>,
}

impl Places {
    fn new(share: usize) -> Self {
        Self { share, held: HashMap::new() }
    }

    /// Whether `row`'s tenant may take one more place.
    fn open(&self, row: &Claimed) -> bool {
        self.held.get(&row.tenant_id).copied().unwrap_or(0) < self.share
    }

    /// Where in `queue` the first row whose tenant may take a place is.
    fn next(&self, queue: &VecDeque<(Claimed, Content)>) -> Option<usize> {
        queue.iter().position(|(row, _)| self.open(row))
    }

    /// The tenants holding their whole share.
    fn full(&self) -> Vec<String> {
        self.held.iter().filter(|(_, n)| **n >= self.share).map(|(t, _)| t.clone()).collect()
    }

    fn take(&mut self, row: &Claimed) {
        *self.held.entry(row.tenant_id.clone()).or_default() += 1;
    }

    fn free(&mut self, row: &Claimed) {
        if let Some(n) = self.held.get_mut(&row.tenant_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.held.remove(&row.tenant_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(tenant: &str) -> Claimed {
        Claimed {
            tenant_id: tenant.into(),
            id: Uuid::nil(),
            destination: "journey".into(),
            kind: "k".into(),
            payload: Vec::new(),
            traceparent: String::new(),
            tracestate: String::new(),
            attempt: 1,
            created_at: chrono::DateTime::default(),
        }
    }

    #[test]
    fn a_tenant_holds_at_most_its_share_of_places() {
        let mut places = Places::new(2);
        let (acme, globex) = (row("acme"), row("globex"));
        places.take(&acme);
        assert!(places.open(&acme) && places.full().is_empty());
        places.take(&acme);
        assert_eq!((places.open(&acme), places.open(&globex), places.full()), (false, true, vec!["acme".to_owned()]));
        places.free(&acme);
        assert!(places.open(&acme) && places.full().is_empty());
        // Freeing what was never taken changes nothing.
        places.free(&globex);
        assert!(places.open(&globex));
    }
}
