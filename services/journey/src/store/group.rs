//! Group commit for single touchpoints: concurrent `RecordTouchpoint` calls
//! are stored together, one transaction for all the calls waiting at that
//! moment, instead of one commit each. Nothing waits on a timer: a writer
//! takes what has queued while the previous transaction ran, so a lone call
//! goes at once and a busy server commits in larger groups. A call whose
//! caller has gone, or whose deadline passed, is dropped from its group.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use cx_runtime::TenantId;
use cx_runtime::deadline::Deadline;
use tokio::sync::{Mutex, mpsc, oneshot};
use tracing::Instrument;
use uuid::Uuid;

use super::ingest::Resolved;
use super::{JourneyError, JourneyStore, Result};
use crate::domain::touchpoint::Touchpoint;

/// Calls one transaction takes at most.
const MAX_GROUP: usize = 512;

struct Job {
    tenant: TenantId,
    /// The caller's deadline: past it, the job is dropped, not stored.
    deadline: Option<Deadline>,
    rows: Vec<(Uuid, Touchpoint)>,
    /// The caller's span: the group's transaction (and its outbox rows)
    /// joins the trace of the first call of the group.
    span: tracing::Span,
    reply: oneshot::Sender<Result<HashSet<String>>>,
}

#[derive(Clone, Debug)]
pub struct GroupWriter {
    jobs: mpsc::Sender<Job>,
}

impl GroupWriter {
    /// Starts `writers` writer tasks; they end when the last handle drops.
    pub fn start(store: JourneyStore, writers: usize) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>(4 * MAX_GROUP);
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..writers.max(1) {
            tokio::spawn(write_groups(store.clone(), queue.clone()));
        }
        Self { jobs }
    }

    /// Stores `rows` of `tenant` with whatever else is waiting; returns the
    /// ids stored now.
    pub async fn store(&self, tenant: &TenantId, rows: Vec<(Uuid, Touchpoint)>) -> Result<HashSet<String>> {
        let (reply, answer) = oneshot::channel();
        let job =
            Job { tenant: tenant.clone(), deadline: Deadline::current(), rows, span: tracing::Span::current(), reply };
        let stopped = || JourneyError::Unavailable("the touchpoint writer has stopped".into());
        self.jobs.send(job).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn write_groups(store: JourneyStore, queue: Arc<Mutex<mpsc::Receiver<Job>>>) {
    loop {
        let mut jobs = Vec::new();
        {
            let mut queue = queue.lock().await;
            let Some(first) = queue.recv().await else { return };
            jobs.push(first);
            while jobs.len() < MAX_GROUP {
                match queue.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
        }
        let mut by_tenant: HashMap<TenantId, Vec<Job>> = HashMap::new();
        for job in jobs {
            by_tenant.entry(job.tenant.clone()).or_default().push(job);
        }
        for (tenant, jobs) in by_tenant {
            write_live(&store, &tenant, jobs).await;
        }
    }
}

/// Writes the jobs whose callers still wait. The group commits under the
/// earliest deadline among them; when that passes first, the group is rolled
/// back and written again without the jobs out of time.
async fn write_live(store: &JourneyStore, tenant: &TenantId, mut jobs: Vec<Job>) {
    loop {
        let (live, gone): (Vec<Job>, Vec<Job>) =
            jobs.into_iter().partition(|job| !job.reply.is_closed() && job.deadline.is_none_or(|d| d.check().is_ok()));
        for job in gone {
            let _ = job.reply.send(Err(JourneyError::DeadlineExceeded(
                "the caller's deadline passed before the touchpoint was stored".into(),
            )));
        }
        if live.is_empty() {
            return;
        }
        let earliest = live.iter().filter_map(|job| job.deadline).min_by_key(|d| d.0);
        match Deadline::scope(earliest, write_group(store, tenant, live)).await {
            Some(retry) => jobs = retry,
            None => return,
        }
    }
}

/// Stores the group and answers its calls; gives them back unanswered when
/// the earliest deadline stopped the commit.
async fn write_group(store: &JourneyStore, tenant: &TenantId, jobs: Vec<Job>) -> Option<Vec<Job>> {
    // The first call to name an id owns it; a later one in the group is a duplicate.
    let mut owner: HashMap<&str, usize> = HashMap::new();
    let mut rows = Vec::new();
    for (j, job) in jobs.iter().enumerate() {
        for (customer, touchpoint) in &job.rows {
            if *owner.entry(touchpoint.id.as_str()).or_insert(j) == j {
                rows.push(Resolved { customer: *customer, touchpoint });
            }
        }
    }
    let span = jobs.first().map(|j| j.span.clone()).unwrap_or_else(tracing::Span::none);
    let calls = jobs.len();
    let result = async {
        if calls > 1 {
            tracing::debug!(calls, touchpoints = rows.len(), "touchpoints stored as one group");
        }
        store.ingest(tenant, &rows).await
    }
    .instrument(span)
    .await;
    let answers: Vec<Result<HashSet<String>>> = match result {
        Ok(stored) => jobs
            .iter()
            .enumerate()
            .map(|(j, job)| {
                Ok(job
                    .rows
                    .iter()
                    .map(|(_, tp)| tp.id.as_str())
                    .filter(|id| stored.contains(*id) && owner.get(id) == Some(&j))
                    .map(str::to_owned)
                    .collect())
            })
            .collect(),
        Err(JourneyError::DeadlineExceeded(_)) => {
            drop(rows);
            drop(owner);
            return Some(jobs);
        }
        Err(err) => {
            // One failure answers every call of the group: its gRPC answer,
            // made once (the error cannot be copied), passed on as it is.
            let status = tonic::Status::from(err);
            jobs.iter().map(|_| Err(JourneyError::Peer(status.clone()))).collect()
        }
    };
    drop(rows);
    drop(owner);
    for (job, answer) in jobs.into_iter().zip(answers) {
        let _ = job.reply.send(answer);
    }
    None
}
