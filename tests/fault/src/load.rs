//! A steady write load: workers calling RecordTouchpoint until told to stop,
//! each call remembered with its time and outcome, so a scenario can tell
//! which writes were acknowledged and when the service came back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cx_proto::journey::v1 as journey;
use cx_proto::journey::v1::journey_service_client::JourneyServiceClient;
use cx_testkit::authed;
use tonic::transport::{Channel, Endpoint};

use crate::Outcomes;

/// One call of the load.
#[derive(Clone, Debug)]
pub struct Call {
    pub at: Instant,
    pub id: String,
    /// A gRPC code name, or `transport`.
    pub outcome: String,
}

/// The calls of a load, in the order they ended.
#[derive(Debug, Default)]
pub struct Calls(pub Vec<Call>);

impl Calls {
    pub fn outcomes(&self) -> Outcomes {
        let mut outcomes = Outcomes::default();
        self.0.iter().for_each(|c| outcomes.add(&c.outcome));
        outcomes
    }

    /// Ids of the acknowledged writes.
    pub fn acknowledged(&self) -> impl Iterator<Item = &String> {
        self.0.iter().filter(|c| c.outcome == "OK").map(|c| &c.id)
    }

    /// The first acknowledged call after `after`.
    pub fn first_ok_after(&self, after: Instant) -> Option<Instant> {
        self.0.iter().filter(|c| c.outcome == "OK" && c.at >= after).map(|c| c.at).min()
    }
}

/// A running load; `stop` ends it and hands over its calls.
pub struct Load {
    stop: Arc<AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<Vec<Call>>>,
}

impl Load {
    /// `workers` writers on `addr`, each at most `max_calls` calls, writing
    /// touchpoints of `profile_id` with ids starting `prefix`.
    pub fn start(addr: &str, token: &str, profile_id: &str, prefix: &str, workers: usize, max_calls: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let endpoint = Endpoint::from_shared(addr.to_owned())
            .expect("a loopback address")
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(5));
        let workers = (0..workers)
            .map(|w| {
                let (stop, token, profile_id) = (stop.clone(), token.to_owned(), profile_id.to_owned());
                let channel = endpoint.connect_lazy();
                let prefix = format!("{prefix}-{w}");
                tokio::spawn(async move { work(channel, &token, &profile_id, &prefix, &stop, max_calls).await })
            })
            .collect();
        Self { stop, workers }
    }

    pub async fn stop(self) -> Calls {
        self.stop.store(true, Ordering::Relaxed);
        let mut calls = Vec::new();
        for worker in self.workers {
            calls.extend(worker.await.unwrap_or_default());
        }
        calls.sort_by_key(|c| c.at);
        Calls(calls)
    }
}

async fn work(
    channel: Channel,
    token: &str,
    profile_id: &str,
    prefix: &str,
    stop: &AtomicBool,
    max_calls: usize,
) -> Vec<Call> {
    let mut client = JourneyServiceClient::new(channel);
    let mut calls = Vec::new();
    for n in 0..max_calls {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let id = format!("{prefix}-{n}");
        let request = journey::RecordTouchpointRequest { touchpoint: Some(crate::data::touchpoint(&id, profile_id)) };
        let outcome = match client.record_touchpoint(authed(request, token)).await {
            Ok(_) => "OK".to_owned(),
            Err(status) => crate::grpc::outcome_of(&status),
        };
        if outcome != "OK" {
            // A failing server is not hammered.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        calls.push(Call { at: Instant::now(), id, outcome });
    }
    calls
}
