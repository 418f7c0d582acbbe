//! The other services holding customer data, as `ExportCustomerData` asks
//! them for their records of a customer (`cx.gdpr.v1.CustomerDataService`,
//! docs/DOMAIN.md §6.1): each is asked as profile, the coordinator, and its
//! records join the stream as `service_record`s naming it. A service that
//! cannot answer fails the export: an incomplete export must not look
//! complete.

use cx_proto::gdpr::v1::customer_data_service_client::CustomerDataServiceClient;
use cx_proto::gdpr::v1::{ExportCustomerRequest, ExportCustomerResponse};
use cx_proto::profile::v1 as pb;
use cx_proto::profile::v1::export_customer_data_response::Record;
use cx_runtime::TenantId;
use cx_runtime::peers::InternalPeer;
use futures::stream::{BoxStream, StreamExt};
use tonic::{Code, Status};
use uuid::Uuid;

/// The services profile asks for their records of a customer: every
/// deployed service holding customer data, in registry order, each called
/// as profile.
#[derive(Clone, Debug)]
pub struct Holders {
    holders: Vec<(&'static str, InternalPeer)>,
}

/// Another service's records of a customer, as `ExportCustomerData` answers.
pub type Records = BoxStream<'static, Result<pb::ExportCustomerDataResponse, Status>>;

impl Holders {
    pub fn new(holders: Vec<(&'static str, InternalPeer)>) -> Self {
        Self { holders }
    }

    /// Opens every service's export of `ids` (the customer first, then the
    /// ids merged into her) at once, before any record is sent, so that a
    /// service that cannot be reached fails the export before it starts;
    /// then their records, one service after the other.
    pub async fn export(&self, t: &TenantId, ids: &[Uuid]) -> Result<Records, Status> {
        let profile_ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let asks = self.holders.iter().map(|(name, peer)| async {
            let name = *name;
            let answers = ask(name, peer, t, profile_ids.clone()).await.map_err(|s| incomplete(name, &s))?;
            Ok::<_, Status>(answers.map(move |answer| match answer {
                Ok(ExportCustomerResponse { record }) => Ok(pb::ExportCustomerDataResponse {
                    source_service: name.to_owned(),
                    record: record.map(Record::ServiceRecord),
                }),
                Err(status) => Err(incomplete(name, &status)),
            }))
        });
        let opened = futures::future::try_join_all(asks).await?;
        Ok(futures::stream::iter(opened).flatten().boxed())
    }
}

async fn ask(
    service: &str,
    peer: &InternalPeer,
    t: &TenantId,
    profile_ids: Vec<String>,
) -> Result<tonic::Streaming<ExportCustomerResponse>, Status> {
    let request = ExportCustomerRequest { service: service.to_owned(), profile_ids };
    let mut client = CustomerDataServiceClient::new(peer.channel());
    Ok(client.export_customer(peer.request(t, request)?).await?.into_inner())
}

/// What the client reads when `service` could not give its records: which
/// service, and that the export is incomplete. A service that cannot be
/// reached (or gave up) is `UNAVAILABLE`, worth a retry; any other refusal
/// is a fault of the deployment, logged in full.
fn incomplete(service: &str, status: &Status) -> Status {
    match status.code() {
        Code::DeadlineExceeded => Status::deadline_exceeded(format!(
            "the {service} service did not give its records in time: the export is incomplete"
        )),
        Code::Unavailable | Code::Unknown | Code::Cancelled | Code::Aborted | Code::ResourceExhausted => {
            tracing::warn!(service, code = ?status.code(), message = status.message(), "export incomplete");
            Status::unavailable(format!(
                "the {service} service cannot be reached: the export is incomplete, retry later"
            ))
        }
        code => {
            tracing::error!(service, ?code, message = status.message(), "export refused by a service");
            Status::internal(format!("the {service} service refused to export the customer's data"))
        }
    }
}
