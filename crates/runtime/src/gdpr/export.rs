//! Access requests (docs/DOMAIN.md §6.1): profile, the coordinator, asks
//! every service holding customer data for its records of a customer
//! through `cx.gdpr.v1.CustomerDataService/ExportCustomer`, and streams them
//! on in its own `ExportCustomerData`. A server mounts the service once for
//! all its modules that take part ([`ExportRouter`], routed by the request's
//! `service` as the inbox routes by destination), behind the service
//! identity; only profile may ask. Each participant answers for its own data
//! ([`super::Participant::export`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use cx_proto::gdpr::v1::customer_data_service_server::CustomerDataService;
use cx_proto::gdpr::v1::{ExportCustomerRequest, ExportCustomerResponse};
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use tonic::{Request, Response, Status};
use tracing::Instrument;
use uuid::Uuid;

use super::{COORDINATOR, Participant};
use crate::TenantId;
use crate::error::{FieldViolation, ServiceError, Violations, each};
use crate::identity::service_identity;
use crate::store::Db;

/// A participant's records of a customer, read as the stream is consumed.
pub type Records = BoxStream<'static, Result<prost_types::Any, ServiceError>>;

/// Most ids one request names: a customer and the ids merged into her.
pub const MAX_IDS: usize = 1_000;

/// `message` as a record of an export: an `Any` whose type URL names it.
pub fn record<M: prost::Name>(message: &M) -> Result<prost_types::Any, ServiceError> {
    prost_types::Any::from_msg(message).map_err(|e| ServiceError::Internal(format!("encoding an export record: {e}")))
}

/// The records `fetch` reads page by page: given where the last page ended
/// (`None` first), it returns a page and where the next one starts (`None`
/// after the last). Only one page is held at a time, so a customer with a
/// million records costs an export no more memory than one with ten.
pub fn pages<C, F, Fut>(fetch: F) -> Records
where
    C: Send + 'static,
    F: FnMut(Option<C>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(Vec<prost_types::Any>, Option<C>), ServiceError>> + Send + 'static,
{
    // State: the fetcher, and where the next page starts (`None`: done).
    let start: Option<Option<C>> = Some(None);
    futures::stream::try_unfold((fetch, start), |(mut fetch, next)| async move {
        let Some(after) = next else { return Ok::<_, ServiceError>(None) };
        let (page, more) = fetch(after).await?;
        Ok(Some((page, (fetch, more.map(Some)))))
    })
    .map_ok(|page| futures::stream::iter(page.into_iter().map(Ok)))
    .try_flatten()
    .boxed()
}

/// One service's part: its database and its participant.
#[derive(Clone)]
pub struct Exporter {
    db: Db,
    participant: Arc<dyn Participant>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Exporter")
    }
}

impl Exporter {
    pub fn new(db: Db, participant: Arc<dyn Participant>) -> Self {
        Self { db, participant }
    }
}

/// `cx.gdpr.v1.CustomerDataService` of a server: hands each request to the
/// participant of the service it names.
#[derive(Clone, Debug, Default)]
pub struct ExportRouter {
    exporters: BTreeMap<&'static str, Exporter>,
}

impl ExportRouter {
    pub fn add(&mut self, service: &'static str, exporter: Exporter) {
        self.exporters.insert(service, exporter);
    }

    pub fn is_empty(&self) -> bool {
        self.exporters.is_empty()
    }
}

/// The customer (first) and the ids merged into her.
fn customers(profile_ids: Vec<String>) -> Result<Vec<Uuid>, Violations> {
    if profile_ids.is_empty() {
        return Err(FieldViolation::new("profile_ids", "must name the customer").into());
    }
    if profile_ids.len() > MAX_IDS {
        let why = format!("has {} ids; at most {MAX_IDS}", profile_ids.len());
        return Err(FieldViolation::new("profile_ids", why).into());
    }
    each(profile_ids, |i, id| {
        Uuid::parse_str(&id).map_err(|_| FieldViolation::new(format!("profile_ids[{i}]"), "is not a UUID"))
    })
}

/// Those of `ids` merged away first, the customer last: a merge committed
/// while the export pages through moves records towards the customer, so
/// they are read late rather than never.
async fn in_reading_order(db: &Db, t: &TenantId, ids: Vec<Uuid>) -> Result<Vec<Uuid>, ServiceError> {
    let customer = ids[0];
    // Ids merged into these here, whether or not profile listed them.
    let mut merged = super::merged_into(db, t, &ids).await?;
    merged.extend(ids);
    merged.retain(|id| *id != customer);
    merged.sort_unstable();
    merged.dedup();
    merged.push(customer);
    Ok(merged)
}

type Exported = BoxStream<'static, Result<ExportCustomerResponse, Status>>;

#[async_trait]
impl CustomerDataService for ExportRouter {
    type ExportCustomerStream = Exported;

    async fn export_customer(
        &self,
        request: Request<ExportCustomerRequest>,
    ) -> Result<Response<Self::ExportCustomerStream>, Status> {
        let caller = service_identity(&request)?.clone();
        if caller.service != COORDINATOR {
            let why = format!("only the {COORDINATOR} service asks for a customer's data");
            return Err(ServiceError::PermissionDenied(why).into());
        }
        let ExportCustomerRequest { service, profile_ids } = request.into_inner();
        let (name, exporter) = self.exporters.get_key_value(service.as_str()).ok_or_else(|| {
            let clipped = crate::error::clip(&service);
            ServiceError::NotFound(format!("no service '{clipped}' holding customer data runs on this server"))
        })?;
        let t = caller.tenant;
        let ids = customers(profile_ids)?;
        let span = tracing::info_span!(
            "gdpr.export",
            cx.service = *name,
            customers = ids.len(),
            records = tracing::field::Empty
        );
        let records = async {
            let ids = in_reading_order(&exporter.db, &t, ids).await?;
            exporter.participant.export(&exporter.db, &t, &ids).await
        }
        .instrument(span.clone())
        .await?;
        Ok(Response::new(traced(records, span)))
    }
}

/// `records` as answers, each read inside `span`, which counts them.
/// Nothing follows an error.
fn traced(records: Records, span: tracing::Span) -> Exported {
    futures::stream::unfold((Some(records), span, 0_u64), |(records, span, sent)| async move {
        let mut records = records?;
        match records.next().instrument(span.clone()).await {
            Some(Ok(record)) => {
                Some((Ok(ExportCustomerResponse { record: Some(record) }), (Some(records), span, sent + 1)))
            }
            Some(Err(err)) => {
                span.in_scope(|| tracing::warn!(error = %err, records = sent, "export failed"));
                Some((Err(Status::from(err)), (None, span, sent)))
            }
            None => {
                span.record("records", sent);
                span.in_scope(|| tracing::info!(records = sent, "customer data exported"));
                None
            }
        }
    })
    .boxed()
}
