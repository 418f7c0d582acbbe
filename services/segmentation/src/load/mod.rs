//! The load of facts (docs/DOMAIN.md §8.5): a job that pages through the
//! export of each source a tenant asked to load (ReloadFacts), as this
//! service (a service identity), from the cursor stored. Each page is
//! applied in one transaction with its cursor, so a crash or restart
//! resumes after the last page applied. A source that is down, or not
//! deployed, is tried again at a later round; its load stays LOADING.
//!
//! Replicas share the work: a load is paged by the replica holding its
//! lease ([`sources::claim`]), which every page renews and checks.

mod pages;

use std::time::Duration;

use cx_proto::journey::v1::ExportTouchFactsRequest;
use cx_proto::journey::v1::journey_internal_service_client::JourneyInternalServiceClient;
use cx_proto::profile::v1::ExportProfileFactsRequest;
use cx_proto::profile::v1::profile_internal_service_client::ProfileInternalServiceClient;
use cx_proto::survey::v1::ExportScoreFactsRequest;
use cx_proto::survey::v1::survey_internal_service_client::SurveyInternalServiceClient;
use cx_runtime::TenantId;
use cx_runtime::days::day_number;
use cx_runtime::error::ServiceError;
use cx_runtime::peers::{InternalPeer, internal_call_failed};
use cx_runtime::store::Db;
use futures::StreamExt as _;
use futures::stream::BoxStream;
use sea_orm::TransactionTrait;
use tokio::sync::watch;
use tracing::Instrument as _;
use uuid::Uuid;

pub use pages::Page;

use crate::store::entity::fact_source;
pub use crate::store::sources::{JOURNEY, PROFILE, SURVEY};

use crate::store::sources;
use crate::store::touches;

/// How often the job looks for loads to run.
const ROUND: Duration = Duration::from_secs(5);
/// Loads run in one round at most (one after the other).
const PER_ROUND: u64 = 10;
/// How long a load that stopped (its source down, a page failed) waits
/// before a loader tries it again.
const RETRY: Duration = Duration::from_secs(30);
/// Customers asked per page.
const PAGE_SIZE: i32 = 500;
/// Largest page accepted: 500 customers of 180 touch days in several
/// channels and a year of purchases fit.
const MAX_PAGE_BYTES: usize = 64 * 1024 * 1024;

/// The loader: the database and the sources' internal RPCs.
#[derive(Clone, Debug)]
pub struct Loader {
    db: Db,
    profile: Option<InternalPeer>,
    journey: Option<InternalPeer>,
    survey: Option<InternalPeer>,
    /// How long a journey load waits after its cut before reading.
    settle: Duration,
}

/// How a load ended this time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The source is not deployed or has no endpoint here: tried later.
    NoSource,
    /// Another loader holds it, or it is no longer loading.
    NotHeld,
    /// It lost its lease, or the load was restarted, midway.
    Lost,
    /// Every page was applied: LOADED.
    Loaded,
}

impl Loader {
    /// Peers are `None` when the deployment has no endpoint for them.
    pub fn new(
        db: Db,
        profile: Option<InternalPeer>,
        journey: Option<InternalPeer>,
        survey: Option<InternalPeer>,
        settle: Duration,
    ) -> Self {
        Self { db, profile, journey, survey, settle }
    }

    /// Runs until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            if let Err(err) = self.round().await {
                tracing::warn!(error = %err, "fact load round failed; trying again next round");
            }
            tokio::select! {
                () = tokio::time::sleep(ROUND) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// One round: every load that may proceed now.
    pub async fn round(&self) -> Result<(), ServiceError> {
        let now = cx_runtime::store::now();
        let reachable: Vec<&str> = [PROFILE, JOURNEY, SURVEY].into_iter().filter(|s| self.peer(s).is_some()).collect();
        for (t, source) in sources::due(&self.db, now, self.settle, &reachable, PER_ROUND).await? {
            let span = tracing::info_span!("segmentation.load", tenant = %t, source);
            match self.load(&t, &source).instrument(span).await {
                Ok(outcome) => tracing::debug!(tenant = %t, source, ?outcome, "fact load round"),
                Err(err) => tracing::warn!(tenant = %t, source, error = %err, "fact load stopped; resumes later"),
            }
        }
        Ok(())
    }

    /// Pages through `source`'s export for tenant `t` from its stored
    /// cursor, if no other loader holds it, to the end.
    pub async fn load(&self, t: &TenantId, source: &str) -> Result<Outcome, ServiceError> {
        let Some(peer) = self.peer(source) else { return Ok(Outcome::NoSource) };
        let lease = Uuid::now_v7();
        let Some(row) = sources::claim(&self.db, t, source, lease, cx_runtime::store::now()).await? else {
            return Ok(Outcome::NotHeld);
        };
        let loaded = self.pages(peer, t, &row, lease).await;
        let retry_at = cx_runtime::store::now() + chrono::Duration::from_std(RETRY).unwrap_or_default();
        if !matches!(loaded, Ok(Outcome::Loaded | Outcome::Lost))
            && let Err(err) = sources::release(&self.db, t, source, lease, Some(retry_at)).await
        {
            tracing::warn!(error = %err, "fact load not released; its lease runs out");
        }
        if matches!(loaded, Ok(Outcome::Loaded)) {
            tracing::info!(tenant = %t, source, "facts loaded");
        }
        loaded
    }

    fn peer(&self, source: &str) -> Option<&InternalPeer> {
        match source {
            PROFILE => self.profile.as_ref(),
            JOURNEY => self.journey.as_ref(),
            SURVEY => self.survey.as_ref(),
            _ => None,
        }
    }

    async fn pages(
        &self,
        peer: &InternalPeer,
        t: &TenantId,
        row: &fact_source::Model,
        lease: Uuid,
    ) -> Result<Outcome, ServiceError> {
        let source = row.source.as_str();
        let mut stream = export(peer, t, row).await?;
        let mut after = row.cursor;
        while let Some(page) = stream.next().await {
            let page = page.map_err(|s| internal_call_failed(source, "export its facts", &s))?;
            match apply_page(&self.db, t, source, lease, after, page).await? {
                Applied::Advanced(through) => after = through,
                Applied::Lost => return Ok(Outcome::Lost),
            }
        }
        Ok(if finish(&self.db, t, source, lease, after).await? { Outcome::Loaded } else { Outcome::Lost })
    }
}

/// What applying a page did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Applied: the load now goes on after this cursor.
    Advanced(Option<Uuid>),
    /// Not applied: the lease was lost or the load restarted.
    Lost,
}

/// Applies `page` of `source`'s load held by `lease`, the first after
/// `after`, in one transaction that also records its cursor and count.
pub async fn apply_page(
    db: &Db,
    t: &TenantId,
    source: &str,
    lease: Uuid,
    after: Option<Uuid>,
    page: Page,
) -> Result<Applied, ServiceError> {
    let through = cursor(&page, after, source)?;
    let now = cx_runtime::store::now();
    let txn = db.begin().await?;
    // First: on PostgreSQL it also locks the row until the commit.
    if !sources::advance(&txn, t, source, lease, through, page.customers(), now).await? {
        return Ok(Applied::Lost);
    }
    pages::apply(&txn, t, after, through, page, day_number(now)).await?;
    txn.commit().await?;
    Ok(Applied::Advanced(through))
}

/// Ends `source`'s load held by `lease` once its stream ended after the
/// cursor `after`: LOADED (for journey, the feed's hold ends), and journey's
/// last range runs to the end of the key space. False when the lease was
/// lost.
pub async fn finish(
    db: &Db,
    t: &TenantId,
    source: &str,
    lease: Uuid,
    after: Option<Uuid>,
) -> Result<bool, ServiceError> {
    let now = cx_runtime::store::now();
    let txn = db.begin().await?;
    if !sources::complete(&txn, t, source, lease, now).await? {
        return Ok(false);
    }
    if source == JOURNEY {
        touches::replace_range(&txn, t, after, None, &[], day_number(now)).await?;
    }
    txn.commit().await?;
    Ok(true)
}

/// The export stream of `row`'s source, from its cursor.
async fn export(
    peer: &InternalPeer,
    t: &TenantId,
    row: &fact_source::Model,
) -> Result<BoxStream<'static, Result<Page, tonic::Status>>, ServiceError> {
    let after = row.cursor.map(|c| c.to_string()).unwrap_or_default();
    let failed = |s: tonic::Status| internal_call_failed(&row.source, "export its facts", &s);
    Ok(match row.source.as_str() {
        PROFILE => {
            let mut client =
                ProfileInternalServiceClient::new(peer.channel()).max_decoding_message_size(MAX_PAGE_BYTES);
            let request = ExportProfileFactsRequest { after_profile_id: after, page_size: PAGE_SIZE };
            let stream = client.export_profile_facts(peer.request(t, request)?).await.map_err(failed)?.into_inner();
            stream.map(|p| p.map(Page::Profile)).boxed()
        }
        JOURNEY => {
            let mut client =
                JourneyInternalServiceClient::new(peer.channel()).max_decoding_message_size(MAX_PAGE_BYTES);
            let request = ExportTouchFactsRequest {
                after_customer_id: after,
                page_size: PAGE_SIZE,
                record_cut_time: Some(cx_proto::timestamp(row.high_water)),
                touch_days: touches::CHANNEL_DAYS,
                purchase_days: i32::try_from(crate::rfm::WINDOW_DAYS).unwrap_or(i32::MAX),
            };
            let stream = client.export_touch_facts(peer.request(t, request)?).await.map_err(failed)?.into_inner();
            stream.map(|p| p.map(Page::Journey)).boxed()
        }
        SURVEY => {
            let mut client = SurveyInternalServiceClient::new(peer.channel()).max_decoding_message_size(MAX_PAGE_BYTES);
            let request = ExportScoreFactsRequest { after_profile_id: after, page_size: PAGE_SIZE };
            let stream = client.export_score_facts(peer.request(t, request)?).await.map_err(failed)?.into_inner();
            stream.map(|p| p.map(Page::Survey)).boxed()
        }
        _ => return Err(ServiceError::Internal("a fact source that is not known is loading".into())),
    })
}

/// The page's cursor: after the previous one (or the same, for an empty
/// page). A source that breaks the export's contract stops the load (it
/// resumes at a later round): a range applied wrongly would lose facts.
fn cursor(page: &Page, after: Option<Uuid>, source: &str) -> Result<Option<Uuid>, ServiceError> {
    let broken = |why: &str| ServiceError::Internal(format!("the {source} service's export {why}"));
    let raw = page.cursor();
    if raw.is_empty() {
        return if page.customers() == 0 { Ok(after) } else { Err(broken("sent customers without a cursor")) };
    }
    let through = Uuid::parse_str(raw).map_err(|_| broken("sent a cursor that is not a UUID"))?;
    if after.is_some_and(|after| through < after) {
        return Err(broken("went back"));
    }
    if let Page::Journey(p) = page {
        // An id that is not a UUID is skipped when applied.
        let inside = |id: &str| match Uuid::parse_str(id) {
            Ok(id) => after.is_none_or(|after| id > after) && id <= through,
            Err(_) => true,
        };
        if !p.customers.iter().all(|c| inside(&c.customer_id)) {
            return Err(broken("sent customers outside its page's range"));
        }
    }
    Ok(Some(through))
}
